/*
 * The engine on ViT / DeiT / SigLIP model folders made by transformers
 * (tests/fixtures/gen_engine_vit_siglip.py): every output of every case
 * within the case's tolerance of what transformers computed, through the
 * public API and through `vitport run`; f16 / bf16 checkpoints also against
 * transformers run in their own dtype (looser, stated tolerance); the
 * conformance cases of these families; broken folders and bad inputs give
 * the right code and a one-line message naming the field or tensor.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vitport/vitport.h"
#include "test.h"
#include "test_util.h"

static char tmpdir[256];
static const char *bin;

/* ---- arrays from .npz ------------------------------------------------------ */
typedef struct arr {
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    size_t n;
    void *data;
} arr;

/* Array `name` of an open source as `dtype`; 0 ok, -1 absent or unreadable. */
static int arr_get(vp_source *s, const char *name, vp_dtype dtype, arr *a)
{
    memset(a, 0, sizeof *a);
    long i = vp_source_find(s, name);
    if (i < 0) return -1;
    const vp_tensor *t = vp_source_tensor(s, (size_t)i);
    a->ndim = t->ndim;
    memcpy(a->shape, t->shape, sizeof a->shape);
    a->n = (size_t)t->numel;
    a->data = malloc(a->n * vp_dtype_size(dtype) + 1);
    if (!a->data || vp_source_read_as(s, (size_t)i, dtype, a->data, a->n * vp_dtype_size(dtype))) {
        free(a->data);
        a->data = NULL;
        return -1;
    }
    return 0;
}

static vp_source *open_npz(const char *dir, const char *file)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (access(path, F_OK)) return NULL;
    vp_source *s = NULL;
    int rc = vp_source_open(&s, path, NULL);
    CHECKF(rc == VP_OK, "%s: %s", path, vp_source_errmsg(s));
    if (rc) { vp_source_close(s); return NULL; }
    return s;
}

/* Max |got - want| when the shapes agree, else INFINITY. */
static double max_diff(int ndim, const int64_t *shape, const float *got, const arr *want)
{
    if (ndim != want->ndim) return INFINITY;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != want->shape[d]) return INFINITY;
        n *= (size_t)shape[d];
    }
    double m = 0;
    const float *w = want->data;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)w[i]);
        if (isnan(d)) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* Every array of `exp` among the outputs (name, shape, values within tol)
 * and no output that `exp` lacks. Prints each difference. */
typedef struct outs {
    size_t n;
    const char *name[16];
    int ndim[16];
    int64_t shape[16][VP_MAX_DIMS];
    const float *data[16];
} outs;

static void compare(const char *what, const outs *o, vp_source *exp, double tol)
{
    CHECKF(o->n == vp_source_count(exp), "%s: %zu outputs, expected %zu", what, o->n, vp_source_count(exp));
    for (size_t i = 0; i < vp_source_count(exp); i++) {
        const char *name = vp_source_tensor(exp, i)->name;
        arr want;
        CHECKF(arr_get(exp, name, VP_F32, &want) == 0, "%s: cannot read expected %s", what, name);
        size_t k = 0;
        while (k < o->n && strcmp(o->name[k], name)) k++;
        CHECKF(k < o->n, "%s: no output %s", what, name);
        if (k < o->n && want.data) {
            double d = max_diff(o->ndim[k], o->shape[k], o->data[k], &want);
            CHECKF(d <= tol, "%s: %s differs by %g (tolerance %g)", what, name, d, tol);
            fprintf(stderr, "  %-26s %-24s max abs diff %.3g (tolerance %g)\n", what, name, d, tol);
        }
        free(want.data);
    }
}

static void ctx_outs(const vp_ctx *c, outs *o)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < vp_ctx_output_count(c) && i < 16; i++) {
        const vp_output *v = vp_ctx_output(c, i);
        o->name[i] = v->name;
        o->ndim[i] = v->ndim;
        memcpy(o->shape[i], v->shape, sizeof o->shape[i]);
        o->data[i] = v->data;
        o->n++;
    }
}

/* ---- the cases ---------------------------------------------------------------- */
typedef struct inputs_t { arr pix, ids; vp_inputs in; } inputs_t;

static int load_inputs(const char *dir, int interp, inputs_t *t)
{
    memset(t, 0, sizeof *t);
    vp_source *s = open_npz(dir, "inputs.npz");
    if (!s) return -1;
    if (!arr_get(s, "pixel_values", VP_F32, &t->pix)) {
        t->in.pixel_values = t->pix.data;
        t->in.batch = t->pix.shape[0]; t->in.height = t->pix.shape[2]; t->in.width = t->pix.shape[3];
    }
    if (!arr_get(s, "input_ids", VP_I64, &t->ids)) {
        t->in.input_ids = t->ids.data;
        t->in.text_batch = t->ids.shape[0]; t->in.text_len = t->ids.shape[1];
    }
    t->in.interpolate_pos_encoding = interp;
    vp_source_close(s);
    return 0;
}

static void free_inputs(inputs_t *t) { free(t->pix.data); free(t->ids.data); }

static void run_cli(const char *name, const char *dir, int interp, vp_source *exp, double tol)
{
    char inputs[2048], out[512], errp[512], what[160];
    snprintf(inputs, sizeof inputs, "%s/inputs.npz", dir);
    snprintf(out, sizeof out, "%s/%s.npz", tmpdir, name);
    snprintf(errp, sizeof errp, "%s/%s.stderr", tmpdir, name);
    char *argv[] = {(char *)bin, "run", (char *)dir, "--inputs", inputs, "--out", out, "--quiet", "--threads", "2",
                    interp ? "--interpolate-pos-encoding" : NULL, NULL};
    int rc = tu_run(argv, NULL, errp);
    char *err = tu_slurp(errp, NULL);
    CHECKF(rc == 0, "vitport run %s: exit %d: %s", name, rc, err ? err : "");
    free(err);
    if (rc) return;
    vp_source *got = NULL;
    CHECK(vp_source_open(&got, out, NULL) == VP_OK);
    outs o = {0};
    arr a[16] = {{0}};
    for (size_t i = 0; got && i < vp_source_count(got) && i < 16; i++) {
        const vp_tensor *t = vp_source_tensor(got, i);
        CHECK(t->dtype == VP_F32);
        if (arr_get(got, t->name, VP_F32, &a[i])) continue;
        o.name[o.n] = t->name; o.ndim[o.n] = a[i].ndim;
        memcpy(o.shape[o.n], a[i].shape, sizeof o.shape[0]);
        o.data[o.n++] = a[i].data;
    }
    snprintf(what, sizeof what, "%s (cli)", name);
    compare(what, &o, exp, tol);
    for (int i = 0; i < 16; i++) free(a[i].data);
    vp_source_close(got);
}

/* One model folder: the API with 2 threads, the same ctx again with other
 * inputs in between (buffers reused), 1 thread, and the program. */
static void run_case(const char *name, const char *dir, int with_cli)
{
    char path[2048], what[160];
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *cj = tu_load_json(path);
    const char *cls = tu_jstr(cj, "class");
    const cJSON *ip = cJSON_GetObjectItem(cj, "interpolate_pos_encoding");
    const cJSON *tj = cJSON_GetObjectItem(cj, "tolerance");
    const cJSON *nt = cJSON_GetObjectItem(cj, "native_tolerance");
    int interp = cJSON_IsTrue(ip);
    double tol = cJSON_IsNumber(tj) ? tj->valuedouble : 1e-4;

    vp_model *m = NULL;
    int rc = vp_model_open(&m, dir);
    CHECKF(rc == VP_OK, "%s: %s", name, vp_model_errmsg(m));
    if (cls) CHECK_STR(vp_model_class(m), cls);
    inputs_t in;
    vp_source *exp = open_npz(dir, "expected.npz"), *nat = open_npz(dir, "expected_native.npz");
    CHECKF(exp != NULL, "%s: no expected.npz", name);
    if (!rc && exp && !load_inputs(dir, interp, &in)) {
        CHECK(vp_model_inputs(m) == ((in.pix.data ? VP_INPUT_PIXELS : 0) | (in.ids.data ? VP_INPUT_IDS : 0)));
        vp_ctx *c = NULL;
        CHECK(vp_ctx_new(&c, m, 2) == VP_OK);
        rc = vp_ctx_run(c, &in.in);
        CHECKF(rc == VP_OK, "%s: run: %s", name, vp_ctx_errmsg(c));
        outs o;
        ctx_outs(c, &o);
        if (!rc) compare(name, &o, exp, tol);
        if (!rc && nat && cJSON_IsNumber(nt)) {
            snprintf(what, sizeof what, "%s (native %s)", name, tu_jstr(cj, "dtype"));
            compare(what, &o, nat, nt->valuedouble);
        }
        /* A smaller run in between, then the case again on the same ctx. */
        vp_inputs small = in.in;
        if (small.batch > 1) small.batch = 1;
        if (small.text_batch > 1) small.text_batch = 1;
        CHECK(vp_ctx_run(c, &small) == VP_OK);
        rc = vp_ctx_run(c, &in.in);
        ctx_outs(c, &o);
        snprintf(what, sizeof what, "%s (reused ctx)", name);
        if (!rc) compare(what, &o, exp, tol);
        vp_ctx_free(c);
        CHECK(vp_ctx_new(&c, m, 1) == VP_OK);
        rc = vp_ctx_run(c, &in.in);
        ctx_outs(c, &o);
        snprintf(what, sizeof what, "%s (1 thread)", name);
        if (!rc) compare(what, &o, exp, tol);
        vp_ctx_free(c);
        if (with_cli) run_cli(name, dir, interp, exp, tol);
        free_inputs(&in);
    }
    vp_source_close(exp);
    vp_source_close(nat);
    vp_model_close(m);
    cJSON_Delete(cj);
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the sub-folders of dir (not starting with '.'). */
static int list_dirs(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    int n = 0;
    *out = NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(p, &st) || !S_ISDIR(st.st_mode)) continue;
        *out = realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*out, (size_t)n, sizeof **out, cmpstr);
    return n;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- errors -------------------------------------------------------------------- */
static const struct { const char *name; int code; } codes[] = {
    {"VP_ERR_IO", VP_ERR_IO}, {"VP_ERR_FORMAT", VP_ERR_FORMAT}, {"VP_ERR_UNSUPPORTED", VP_ERR_UNSUPPORTED},
    {"VP_ERR_LIMIT", VP_ERR_LIMIT}, {"VP_ERR_NOTFOUND", VP_ERR_NOTFOUND}, {"VP_ERR_ARG", VP_ERR_ARG},
    {"VP_ERR_MISMATCH", VP_ERR_MISMATCH},
};

static int code_of(const char *name)
{
    for (size_t i = 0; name && i < sizeof codes / sizeof *codes; i++)
        if (!strcmp(codes[i].name, name)) return codes[i].code;
    return -1;
}

/* A failed open: the code, a one-line message with every `has` part, and a
 * ctx on the failed model that refuses to run. */
static void expect_open_fails(const char *what, const char *dir, int code, const char *const *has, int nhas)
{
    vp_model *m = NULL;
    int rc = vp_model_open(&m, dir);
    const char *msg = vp_model_errmsg(m);
    CHECKF(rc == code, "%s: code %d (%s), expected %d; message: %s", what, rc, vp_strerror(rc), code, msg);
    CHECKF(tu_one_line(msg), "%s: message '%s' is not one line", what, msg);
    for (int i = 0; i < nhas; i++) CHECKF(tu_has(msg, has[i]), "%s: message '%s' lacks '%s'", what, msg, has[i]);
    vp_ctx *c = NULL;
    vp_inputs in = {0};
    CHECK(vp_ctx_new(&c, m, 1) != VP_OK);
    CHECK(vp_ctx_run(c, &in) != VP_OK);
    vp_ctx_free(c);
    vp_model_close(m);
}

static void error_cases(const char *root)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/errors", root);
    char **names;
    int n = list_dirs(dir, &names);
    CHECKF(n >= 10, "%s: %d error cases", dir, n);
    for (int i = 0; i < n; i++) {
        char cdir[2048], path[2100], target[2200];
        snprintf(cdir, sizeof cdir, "%s/%s", dir, names[i]);
        snprintf(path, sizeof path, "%s/case.json", cdir);
        cJSON *cj = tu_load_json(path);
        const cJSON *has = cJSON_GetObjectItem(cj, "message_has");
        const char *parts[8];
        int np = 0;
        for (const cJSON *h = has ? has->child : NULL; h && np < 8; h = h->next) parts[np++] = h->valuestring;
        snprintf(target, sizeof target, "%s/%s", cdir, tu_jstr(cj, "open") ? tu_jstr(cj, "open") : ".");
        int code = code_of(tu_jstr(cj, "code"));
        CHECKF(code > 0, "%s: bad code in case.json", names[i]);
        expect_open_fails(names[i], target, code, parts, np);
        cJSON_Delete(cj);
    }
    free_list(names, n);
    /* No folder at all, and no name. */
    snprintf(dir, sizeof dir, "%s/errors/no-such-folder", root);
    expect_open_fails("no such folder", dir, VP_ERR_IO, (const char *const[]){"No such file or directory"}, 1);
    expect_open_fails("empty name", "", VP_ERR_ARG, (const char *const[]){"no model directory"}, 1);
}

/* A copy of model folder `src` whose config.json has `key` (a '.'-separated
 * path) set to the JSON value `json` (NULL: removed); the weight files are
 * linked. */
static void edited_copy(const char *src, const char *dst, const char *key, const char *json)
{
    char path[1024];
    tu_rmtree(dst);
    if (mkdir(dst, 0755)) { perror(dst); exit(2); }
    char abs[4096];
    if (!realpath(src, abs)) { perror(src); exit(2); }
    DIR *d = opendir(src);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".safetensors")) continue;
        char from[4400], to[1024];
        snprintf(from, sizeof from, "%s/%s", abs, e->d_name);   /* links hold absolute paths */
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        if (symlink(from, to)) { perror(to); exit(2); }
    }
    if (d) closedir(d);
    snprintf(path, sizeof path, "%s/config.json", src);
    cJSON *cfg = tu_load_json(path);
    if (!cfg) { fprintf(stderr, "%s unreadable\n", path); exit(2); }
    char k[256];
    snprintf(k, sizeof k, "%s", key);
    cJSON *obj = cfg;
    char *dot;
    char *leaf = k;
    while ((dot = strchr(leaf, '.'))) {
        *dot = 0;
        obj = cJSON_GetObjectItem(obj, leaf);
        leaf = dot + 1;
    }
    if (obj) {
        cJSON_DeleteItemFromObject(obj, leaf);
        if (json) cJSON_AddItemToObject(obj, leaf, cJSON_Parse(json));
    }
    char *text = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", dst);
    tu_write_file(path, text, strlen(text));
    free(text);
    cJSON_Delete(cfg);
}

/* Config edits a SigLIP / ViT folder cannot honour. */
static void config_edits(const char *root)
{
    static const struct { const char *base, *key, *json; int code; const char *has; } e[] = {
        {"siglip_p8", "vision_config.vision_use_head", "false", VP_ERR_UNSUPPORTED, "vision_config.vision_use_head is false"},
        {"siglip_p8", "vision_config.vision_use_head", "\"yes\"", VP_ERR_FORMAT, "vision_config.vision_use_head is not a boolean"},
        {"siglip_p8", "text_config.projection_size", "5", VP_ERR_MISMATCH,
         "tensor 'text_model.head.weight' has shape [12, 12], the config needs [5, 12]"},
        {"siglip_p8", "text_config.hidden_act", "\"swish\"", VP_ERR_UNSUPPORTED, "text_config.hidden_act = \"swish\""},
        {"siglip_p8", "vision_config.num_attention_heads", "5", VP_ERR_MISMATCH,
         "vision_config.hidden_size 12 is not a multiple of num_attention_heads 5"},
        {"siglip_p8", "vision_config.patch_size", "[8, 8]", VP_ERR_FORMAT, "vision_config.patch_size is not an integer"},
        {"siglip_p8", "vision_config.image_size", "24", VP_ERR_MISMATCH,
         "tensor 'vision_model.embeddings.position_embedding.weight' has shape [4, 12], the config needs [9, 12]"},
        {"siglip_p8", "text_config.vocab_size", "41", VP_ERR_MISMATCH, "text_model.embeddings.token_embedding.weight"},
        {"siglip_p8", "text_config", "7", VP_ERR_FORMAT, "config.json: text_config is not an object"},
        {"siglip_p8", "architectures", "[\"SiglipForPretraining\"]", VP_ERR_UNSUPPORTED,
         "architectures[0] \"SiglipForPretraining\" is not a class vitport runs for siglip"},
        {"siglip_p8", "vision_config.num_hidden_layers", "3", VP_ERR_NOTFOUND,
         "tensor 'vision_model.encoder.layers.2.layer_norm1.weight' is missing"},
        {"siglip_vision", "architectures", "[\"SiglipModel\"]", VP_ERR_UNSUPPORTED, "for siglip_vision_model"},
        {"siglip_text", "max_position_embeddings", "-3", VP_ERR_UNSUPPORTED, "max_position_embeddings = -3 is outside"},
        {"vit_pooler_p8_h3", "pooler_act", "\"relu\"", VP_ERR_UNSUPPORTED, "pooler_act must be \"tanh\""},
        {"vit_pooler_p8_h3", "qkv_bias", "false", VP_ERR_UNSUPPORTED, "qkv_bias"},
        {"vit_pooler_p8_h3", "model_type", "3", VP_ERR_FORMAT, "model_type is missing or not a string"},
        {"vit_pooler_p8_h3", "layer_norm_eps", "\"small\"", VP_ERR_FORMAT, "config.json: layer_norm_eps is not a number"},
        {"vit_cls_odd", "id2label", "{\"0\": \"a\"}", VP_ERR_MISMATCH, "id2label has 1 labels"},
        {"deit_teacher", "architectures", "[\"ViTModel\"]", VP_ERR_UNSUPPORTED, "architectures[0] \"ViTModel\""},
    };
    for (size_t i = 0; i < sizeof e / sizeof *e; i++) {
        char src[600], dst[400], what[300];
        snprintf(src, sizeof src, "%s/%s", root, e[i].base);
        snprintf(dst, sizeof dst, "%s/edited", tmpdir);
        snprintf(what, sizeof what, "%s with %s = %s", e[i].base, e[i].key, e[i].json);
        edited_copy(src, dst, e[i].key, e[i].json);
        expect_open_fails(what, dst, e[i].code, &e[i].has, 1);
    }
}

/* Inputs a model cannot take: the code and the message. */
static void bad_inputs(const char *root)
{
    char dir[600];
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    inputs_t in;

    snprintf(dir, sizeof dir, "%s/siglip_p8", root);
    CHECK(vp_model_open(&m, dir) == VP_OK);
    CHECK(vp_model_image_size(m) == 16);
    CHECK(vp_model_max_text_len(m) == 8);
    CHECK_STR(vp_model_type(m), "siglip");
    CHECK(vp_ctx_new(&c, m, 1) == VP_OK);
    if (!load_inputs(dir, 0, &in)) {
        vp_inputs b = in.in;
        int64_t *ids = malloc((size_t)(b.text_batch * b.text_len) * sizeof *ids);
        memcpy(ids, b.input_ids, (size_t)(b.text_batch * b.text_len) * sizeof *ids);
        ids[b.text_len + 2] = 40;
        b.input_ids = ids;
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "input_ids[1][2] = 40 is outside the vocabulary [0, 40)"), "%s", vp_ctx_errmsg(c));
        CHECK(vp_ctx_output_count(c) == 0);
        ids[b.text_len + 2] = -1;
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        free(ids);
        b = in.in;
        b.text_batch = 0;                   /* input_ids given, but no rows */
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "SiglipModel needs input_ids"), "%s", vp_ctx_errmsg(c));
        b = in.in;
        b.input_ids = NULL;                 /* pixel_values alone: the vision tower alone */
        CHECK(vp_ctx_run(c, &b) == VP_OK && vp_ctx_output_named(c, "image_embeds") &&
              !vp_ctx_output_named(c, "text_embeds"));
        b.pixel_values = NULL;              /* neither */
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "SiglipModel needs pixel_values"), "%s", vp_ctx_errmsg(c));
        b = in.in;
        b.text_len = 9;                     /* more than max_position_embeddings (the array is long enough: 3x8) */
        b.text_batch = 2;
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "9 tokens, more than max_position_embeddings 8"), "%s", vp_ctx_errmsg(c));
        b = in.in;
        b.height = 7;                       /* smaller than a patch */
        CHECK(vp_ctx_run(c, &b) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "smaller than one 8-pixel patch"), "%s", vp_ctx_errmsg(c));
        b = in.in;
        b.pixel_values = NULL;              /* input_ids alone: the text tower alone */
        CHECK(vp_ctx_run(c, &b) == VP_OK && vp_ctx_output_named(c, "text_embeds") &&
              !vp_ctx_output_named(c, "image_embeds"));
        CHECK(vp_ctx_run(c, &in.in) == VP_OK);   /* and the ctx still runs */
        CHECK(vp_ctx_output_named(c, "logits_per_image") != NULL);
        CHECK(vp_ctx_output_named(c, "nothing") == NULL);
        CHECK(vp_ctx_output(c, 99) == NULL);
        free_inputs(&in);
    }
    vp_ctx_free(c);
    vp_model_close(m);

    /* ViT: another size without interpolate_pos_encoding is refused, as transformers refuses it. */
    snprintf(dir, sizeof dir, "%s/vit_cls_odd", root);
    m = NULL; c = NULL;
    CHECK(vp_model_open(&m, dir) == VP_OK);
    CHECK(vp_ctx_new(&c, m, 1) == VP_OK);
    if (!load_inputs(dir, 0, &in)) {
        CHECK(vp_ctx_run(c, &in.in) == VP_ERR_ARG);
        CHECKF(tu_has(vp_ctx_errmsg(c), "input image size (35*27) doesn't match model (16*16)"), "%s", vp_ctx_errmsg(c));
        free_inputs(&in);
    }
    vp_ctx_free(c);
    vp_model_close(m);

    /* NULL handles are no-ops; their messages say why. */
    vp_model_close(NULL);
    vp_ctx_free(NULL);
    CHECK(vp_ctx_run(NULL, NULL) == VP_ERR_ARG);
    CHECK(vp_ctx_output_count(NULL) == 0);
}

/* The conformance cases of the families this file covers. */
static void conformance(void)
{
    tu_cases cs;
    if (tu_cases_open(&cs)) { fprintf(stderr, "no conformance cases; skipped\n"); return; }
    int ran = 0;
    for (size_t i = 0; i < cs.n; i++) {
        char p[2048], ref[2048], cdir[1024];
        snprintf(cdir, sizeof cdir, "%s/%s", cs.root, cs.name[i]);
        snprintf(p, sizeof p, "%s/case.json", cdir);
        cJSON *cj = tu_load_json(p);
        const char *cls = tu_jstr(cj, "hf_class");
        const cJSON *tol = cJSON_GetObjectItem(cJSON_GetObjectItem(cj, "tolerances"), "output_max_abs");
        if (cls && (!strncmp(cls, "ViT", 3) || !strncmp(cls, "DeiT", 4) || !strncmp(cls, "Siglip", 6))) {
            snprintf(ref, sizeof ref, "%s/reference", cdir);
            vp_model *m = NULL;
            int rc = vp_model_open(&m, ref);
            CHECKF(rc == VP_OK, "%s: %s", cs.name[i], vp_model_errmsg(m));
            inputs_t in;
            vp_source *exp = open_npz(cdir, "expected.npz");
            if (!rc && exp && !load_inputs(cdir, 0, &in)) {
                vp_ctx *c = NULL;
                CHECK(vp_ctx_new(&c, m, 2) == VP_OK);
                rc = vp_ctx_run(c, &in.in);
                CHECKF(rc == VP_OK, "%s: %s", cs.name[i], vp_ctx_errmsg(c));
                if (!rc) {
                    /* expected.npz may hold fewer fields than the class gives: compare those it has. */
                    outs o, sel = {0};
                    ctx_outs(c, &o);
                    for (size_t k = 0; k < o.n; k++)
                        if (vp_source_find(exp, o.name[k]) >= 0) {
                            sel.name[sel.n] = o.name[k]; sel.ndim[sel.n] = o.ndim[k];
                            memcpy(sel.shape[sel.n], o.shape[k], sizeof sel.shape[0]);
                            sel.data[sel.n++] = o.data[k];
                        }
                    char what[300];
                    snprintf(what, sizeof what, "conformance %s", cs.name[i]);
                    compare(what, &sel, exp, cJSON_IsNumber(tol) ? tol->valuedouble : 1e-4);
                }
                vp_ctx_free(c);
                free_inputs(&in);
                ran++;
            }
            vp_source_close(exp);
            vp_model_close(m);
        }
        cJSON_Delete(cj);
    }
    tu_cases_free(&cs);
    CHECKF(ran >= 1, "no ViT / SigLIP conformance case ran");
}

int main(void)
{
    bin = tu_env("VP_BIN", NULL);
    char root[512];
    snprintf(root, sizeof root, "%s/engine", tu_fixtures_dir());
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_engine_vit_siglip");
    char **names;
    int n = list_dirs(root, &names), ran = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], "errors")) continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        run_case(names[i], dir, bin != NULL);
        ran++;
    }
    free_list(names, n);
    CHECKF(ran >= 15, "%s: %d model cases", root, ran);
    if (!bin) fprintf(stderr, "VP_BIN unset: vitport run not exercised\n");
    error_cases(root);
    config_edits(root);
    bad_inputs(root);
    conformance();
    tu_rmtree(tmpdir);
    fprintf(stderr, "test_engine_vit_siglip: %d model cases\n", ran);
    TEST_MAIN_END();
}
