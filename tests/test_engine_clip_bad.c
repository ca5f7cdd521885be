/*
 * CLIP / CLIPSeg model directories and inputs the engine must refuse with a
 * one-line message naming the field, tensor or input (and never crash):
 * copies of the engine fixtures with one config field changed, and runs on
 * inputs that do not fit the model. A context stays usable after a refused
 * run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "test_util.h"
#include "vitport/vitport.h"

static char tmp[4096];

/* snprintf into a path buffer; a path that does not fit ends the test (2). */
#define PATHF(buf, ...) do { int _n = snprintf(buf, sizeof buf, __VA_ARGS__); \
    if (_n < 0 || (size_t)_n >= sizeof buf) { fprintf(stderr, "path too long\n"); exit(2); } } while (0)

/* tmp/<n>/ = fixture `name` with config.json's key (in sub-config `sub`
 * when not NULL) replaced by the JSON text `value` ("null" deletes it). */
static const char *variant(const char *name, const char *sub, const char *key, const char *value)
{
    static char dir[4096];
    static int n;
    char src[4096], dst[4096];
    PATHF(dir, "%s/%d", tmp, n++);
    PATHF(src, "%s/engine/%s/model.safetensors", tu_fixtures_dir(), name);
    size_t len;
    char *bytes = tu_slurp(src, &len);
    if (!bytes) { fprintf(stderr, "cannot read %s\n", src); exit(2); }
    if (mkdir(dir, 0700)) { perror(dir); exit(2); }
    PATHF(dst, "%s/model.safetensors", dir);
    tu_write_file(dst, bytes, len);
    free(bytes);
    PATHF(src, "%s/engine/%s/config.json", tu_fixtures_dir(), name);
    cJSON *cfg = tu_load_json(src);
    if (!cfg) { fprintf(stderr, "cannot read %s\n", src); exit(2); }
    cJSON *obj = sub ? cJSON_GetObjectItemCaseSensitive(cfg, sub) : cfg;
    if (key) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        if (strcmp(value, "null")) cJSON_AddItemToObject(obj, key, cJSON_Parse(value));
    }
    char *text = cJSON_Print(cfg);
    PATHF(dst, "%s/config.json", dir);
    tu_write_file(dst, text, strlen(text));
    free(text);
    cJSON_Delete(cfg);
    return dir;
}

static void refuse_open(const char *name, const char *sub, const char *key, const char *value, const char *part)
{
    vp_model *m = NULL;
    int rc = vp_model_open(&m, variant(name, sub, key, value));
    const char *msg = vp_model_errmsg(m);
    printf("%s %s%s%s = %s: %s\n", name, sub ? sub : "", sub ? "." : "", key, value, msg);
    CHECKF(rc != VP_OK, "%s: %s = %s opened", name, key, value);
    CHECKF(tu_has(msg, part) && tu_one_line(msg), "%s: message '%s' lacks '%s'", name, msg, part);
    vp_model_close(m);
}

static void refuse_run(vp_ctx *c, const vp_inputs *in, const char *part)
{
    int rc = vp_ctx_run(c, in);
    const char *msg = vp_ctx_errmsg(c);
    printf("run: %s\n", msg);
    CHECKF(rc == VP_ERR_ARG, "run gave %d, not VP_ERR_ARG", rc);
    CHECKF(tu_has(msg, part) && tu_one_line(msg), "message '%s' lacks '%s'", msg, part);
    CHECK_EQ_INT(vp_ctx_output_count(c), 0);
}

int main(void)
{
    tu_mkdtemp(tmp, sizeof tmp, "vp_clip_bad");

    refuse_open("clip_p8_h3", "vision_config", "num_attention_heads", "5",
                "vision_config.hidden_size 12 is not a multiple of num_attention_heads 5");
    refuse_open("clip_p8_h3", "text_config", "hidden_act", "\"swish\"", "text_config.hidden_act");
    refuse_open("clip_p8_h3", "vision_config", "image_size", "24", "vision_model.embeddings.position_embedding.weight");
    refuse_open("clip_p8_h3", NULL, "text_config", "\"hello\"", "text_config is not an object");
    refuse_open("clip_p8_h3", NULL, "architectures", "[\"CLIPForImageClassification\"]", "is not a class vitport runs");
    refuse_open("clip_p8_h3", NULL, "projection_dim", "7", "visual_projection.weight");
    refuse_open("clip_p8_h3", "text_config", "eos_token_id", "\"x\"", "text_config.eos_token_id is not an integer");
    refuse_open("clipseg_plain", NULL, "extract_layers", "[0, 5]", "extract_layers[1] = 5");
    refuse_open("clipseg_plain", NULL, "extract_layers", "[]", "extract_layers has 0 entries");
    refuse_open("clipseg_plain", NULL, "extract_layers", "\"x\"", "extract_layers is not a list");
    refuse_open("clipseg_plain", NULL, "extract_layers", "[0, 1.5]", "extract_layers[1] is not an integer");
    refuse_open("clipseg_plain", NULL, "extract_layers", "[0, 1, 2]", "decoder.reduces.2.weight' is missing");
    refuse_open("clipseg_plain", NULL, "reduce_dim", "6", "decoder.film_mul.weight");
    refuse_open("clipseg_plain", NULL, "use_complex_transposed_convolution", "1", "use_complex_transposed_convolution");
    refuse_open("clipseg_plain", NULL, "use_complex_transposed_convolution", "true", "decoder.transposed_convolution.0.weight");
    refuse_open("clipseg_refined", NULL, "use_complex_transposed_convolution", "false", "decoder.transposed_convolution.weight");
    refuse_open("clipseg_plain", NULL, "decoder_num_attention_heads", "3",
                "reduce_dim 8 is not a multiple of decoder_num_attention_heads 3");

    /* Inputs that do not fit. */
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    int rc = vp_model_open(&m, variant("clip_p8_h3", NULL, NULL, NULL));
    CHECKF(!rc, "%s", vp_model_errmsg(m));
    if (!rc) rc = vp_ctx_new(&c, m, 1);
    if (!rc) {
        static float pix[2 * 3 * 16 * 16];
        static int64_t ids[2 * 13];
        for (int i = 0; i < 26; i++) ids[i] = 5;
        vp_inputs in = { .pixel_values = pix, .batch = 2, .height = 16, .width = 16,
                         .input_ids = ids, .text_batch = 2, .text_len = 12 };
        CHECK(vp_ctx_run(c, &in) == VP_OK && vp_ctx_output_named(c, "logits_per_image"));
        ids[7] = 64;
        refuse_run(c, &in, "input_ids[0][7] = 64 is outside the vocabulary [0, 64)");
        ids[7] = -1;
        refuse_run(c, &in, "input_ids[0][7] = -1");
        ids[7] = 5;
        in.text_len = 13;
        refuse_run(c, &in, "more than max_position_embeddings 12");
        in.text_len = 12;
        in.text_batch = 0;                   /* input_ids given, but no rows */
        refuse_run(c, &in, "needs input_ids");
        in.text_batch = 2;
        in.input_ids = NULL;                 /* pixel_values alone: the vision tower alone */
        CHECK(vp_ctx_run(c, &in) == VP_OK && vp_ctx_output_named(c, "image_embeds") &&
              !vp_ctx_output_named(c, "logits_per_image"));
        in.pixel_values = NULL;              /* neither */
        refuse_run(c, &in, "needs pixel_values");
        in.pixel_values = pix;
        in.input_ids = ids;
        in.height = in.width = 7;
        refuse_run(c, &in, "smaller than one 8-pixel patch");
        in.height = in.width = 16;
        CHECK(vp_ctx_run(c, &in) == VP_OK && vp_ctx_output_count(c) > 0);   /* still usable */
    }
    vp_ctx_free(c);
    vp_model_close(m);

    m = NULL; c = NULL;
    rc = vp_model_open(&m, variant("clipseg_plain", NULL, NULL, NULL));
    CHECKF(!rc, "%s", vp_model_errmsg(m));
    if (!rc) rc = vp_ctx_new(&c, m, 1);
    if (!rc) {
        static float pix[2 * 3 * 48 * 32];
        static int64_t ids[2 * 8];
        vp_inputs in = { .pixel_values = pix, .batch = 2, .height = 32, .width = 32,
                         .input_ids = ids, .text_batch = 1, .text_len = 8 };
        refuse_run(c, &in, "1 texts for 2 images");
        in.text_batch = 2;
        in.height = 48;
        refuse_run(c, &in, "not a square grid");
        in.height = 32;
        CHECK(vp_ctx_run(c, &in) == VP_OK);
        const vp_output *o = vp_ctx_output_named(c, "logits");
        CHECK(o && o->ndim == 3 && o->shape[0] == 2 && o->shape[1] == 32 && o->shape[2] == 32);
    }
    vp_ctx_free(c);
    vp_model_close(m);
    tu_rmtree(tmp);
    TEST_MAIN_END();
}
