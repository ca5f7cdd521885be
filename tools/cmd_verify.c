/* vitport verify: a converted model directory against its source checkpoint
 * run in its own layout (and/or reference outputs), on the same inputs;
 * also the check `vitport convert` runs before it publishes OUT_DIR. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport verify OUT_DIR --source SRC [--key K] [--family F]\n"
            "                      [--pixel-values FILE] [--input-ids FILE] [--expect FILE.npz]\n"
            "                      [--tolerance X] [--threads N] [--json] [--quiet]\n"
            "\n"
            "Run the Hugging Face model directory OUT_DIR with vitport's engine and the source\n"
            "checkpoint SRC with an evaluator written against the source's own layout (timm /\n"
            "DINO ViT state dicts with the fused qkv, OpenAI CLIP with in_proj and x @ proj,\n"
            "big_vision SigLIP .npz with [in, out] and [heads, head_dim] kernels, the original\n"
            "CLIPSeg decoder), on the same inputs, and compare every output the source gives\n"
            "(last_hidden_state, logits, image_embeds, text_embeds, logits_per_image,\n"
            "logits_per_text, conditional_embeddings, pooled_output, ...) by its largest\n"
            "absolute difference. Head counts and CLIPSeg's decoder settings, which no tensor\n"
            "shows, are read from OUT_DIR's config.json.\n"
            "\n"
            "Tolerance: 1e-4 when OUT_DIR's weights are float32; with float16 weights\n"
            "1e-2 x max(1, largest |value| of the output), with bfloat16 8e-2 x the same.\n"
            "\n"
            "options:\n"
            "  --source SRC          the checkpoint OUT_DIR was converted from\n"
            "  --key K               its sub-dictionary (teacher, model, ...); without it the\n"
            "                        top level, then teacher, model, state_dict, module are tried\n"
            "  --family F            the source's layout: timm (vit, deit), dino, clip, siglip,\n"
            "                        clipseg (default: recognised from the tensor names)\n"
            "  --pixel-values FILE   pixel_values [B, C, H, W] (.npy, an .npz / torch / safetensors\n"
            "                        array named pixel_values, or a file's only tensor); default:\n"
            "                        2 seeded images at the config's image size\n"
            "  --input-ids FILE      input_ids [B, L] the same way; default: seeded ids within the\n"
            "                        vocabulary, EOS the largest id of its row (where OpenAI's\n"
            "                        argmax and transformers' eos_token_id rule both pool)\n"
            "  --expect FILE.npz     also compare with reference outputs from elsewhere, arrays\n"
            "                        named as transformers' output fields (needs the inputs they\n"
            "                        were computed from; without --source, only this check runs)\n"
            "  --tolerance X         fail above X instead of the rule above\n"
            "  --threads N           engine threads (default: all cores)\n"
            "  --json                print the comparisons as JSON on stdout\n"
            "  --quiet               print nothing on success\n"
            "  -h, --help            show this help\n"
            "\n"
            "exit status: 0 every output within tolerance; 1 an output differs (the message\n"
            "names it and the difference), the engine cannot run the model (its model_type\n"
            "or a config it cannot honour: nothing compared), or bad input; 2 usage error\n");
}

cJSON *vp_cli_verify_json(const vp_verify *v, int rc)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    vp_cli_json_set(j, "check", cJSON_CreateString(vp_verify_check(v)));
    vp_cli_json_set(j, "class", cJSON_CreateString(vp_verify_class(v)));
    vp_cli_json_set(j, "passed", cJSON_CreateBool(rc == VP_OK));
    vp_cli_json_set(j, "engine_missing", cJSON_CreateBool(vp_verify_engine_missing(v)));
    vp_cli_json_set(j, "error", rc ? cJSON_CreateString(vp_verify_errmsg(v)) : cJSON_CreateNull());
    const vp_verify_item *w = vp_verify_worst(v);
    vp_cli_json_set(j, "max_abs", w ? cJSON_CreateNumber(isfinite(w->max_abs) ? w->max_abs : 1e308) : cJSON_CreateNull());
    cJSON *outs = cJSON_CreateArray();
    for (size_t i = 0; outs && i < vp_verify_count(v); i++) {
        const vp_verify_item *it = vp_verify_item_at(v, i);
        cJSON *o = cJSON_CreateObject();
        vp_cli_json_set(o, "name", cJSON_CreateString(it->name));
        vp_cli_json_set(o, "against", cJSON_CreateString(it->against));
        vp_cli_json_set(o, "numel", cJSON_CreateNumber((double)((int64_t)it->numel)));
        vp_cli_json_set(o, "max_abs", cJSON_CreateNumber(isfinite(it->max_abs) ? it->max_abs : 1e308));
        vp_cli_json_set(o, "tolerance", cJSON_CreateNumber(it->tolerance));
        vp_cli_json_set(o, "ok", cJSON_CreateBool(it->ok));
        cJSON_AddItemToArray(outs, o);
    }
    vp_cli_json_set(j, "outputs", outs);
    return j;
}

int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL, *pix_path = NULL, *ids_path = NULL;
    vp_verify_opts o;
    memset(&o, 0, sizeof o);
    int json = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--source") ? &o.source : !strcmp(a, "--key") ? &o.key
                          : !strcmp(a, "--family") ? &o.family : !strcmp(a, "--pixel-values") ? &pix_path
                          : !strcmp(a, "--input-ids") ? &ids_path : !strcmp(a, "--expect") ? &o.expect : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); return VP_EXIT_OK; }
        else if (slot || !strcmp(a, "--tolerance") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport verify: %s needs a value\n", a); return VP_EXIT_USAGE; }
            const char *val = argv[++i];
            char *end;
            if (slot) *slot = val;
            else if (!strcmp(a, "--tolerance")) {
                o.tolerance = strtod(val, &end);
                if (*end || !(o.tolerance > 0) || !isfinite(o.tolerance)) {
                    fprintf(stderr, "vitport verify: --tolerance wants a positive number\n");
                    return VP_EXIT_USAGE;
                }
            } else {
                long n = strtol(val, &end, 10);
                if (*end || n < 1 || n > 1024) { fprintf(stderr, "vitport verify: --threads wants 1..1024\n"); return VP_EXIT_USAGE; }
                o.threads = (int)n;
            }
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "vitport verify: unknown option '%s' (see vitport verify --help)\n", a); return VP_EXIT_USAGE; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "vitport verify: unexpected argument '%s'\n", a); return VP_EXIT_USAGE; }
    }
    if (!dir) { help(stderr); return VP_EXIT_USAGE; }
    if (!o.source && !o.expect) { fprintf(stderr, "vitport verify: give --source SRC (and/or --expect FILE.npz)\n"); return VP_EXIT_USAGE; }
    if (o.expect && !pix_path && !ids_path) {
        fprintf(stderr, "vitport verify: --expect needs the inputs its outputs came from (--pixel-values / --input-ids)\n");
        return VP_EXIT_USAGE;
    }
    if (o.family) {
        static const char *const F[] = {"timm", "vit", "deit", "dino", "clip", "siglip", "clipseg", NULL};
        const char *const *f = F;
        while (*f && strcmp(*f, o.family)) f++;
        if (!*f) { fprintf(stderr, "vitport verify: unknown family '%s' (timm, vit, deit, dino, clip, siglip, clipseg)\n", o.family); return VP_EXIT_USAGE; }
    }

    char err[1024];
    int status = VP_EXIT_FAIL;
    vp_cli_array pix = {0}, ids = {0};
    vp_verify *v = NULL;
    if (pix_path) {
        if (vp_cli_load_array(pix_path, "pixel_values", VP_F32, &pix, err, sizeof err)) { fprintf(stderr, "vitport verify: %s\n", err); goto done; }
        if (pix.ndim != 4 || pix.shape[1] < 1 || pix.shape[1] > 64) { fprintf(stderr, "vitport verify: %s: pixel_values must be [batch, channels, height, width]\n", pix_path); goto done; }
        o.pixel_values = pix.data; o.batch = pix.shape[0]; o.height = pix.shape[2]; o.width = pix.shape[3];
        o.channels = pix.shape[1];
    }
    if (ids_path) {
        if (vp_cli_load_array(ids_path, "input_ids", VP_I64, &ids, err, sizeof err)) { fprintf(stderr, "vitport verify: %s\n", err); goto done; }
        if (ids.ndim != 2) { fprintf(stderr, "vitport verify: %s: input_ids must be [batch, length]\n", ids_path); goto done; }
        o.input_ids = ids.data; o.text_batch = ids.shape[0]; o.text_len = ids.shape[1];
    }
    if (vp_verify_new(&v)) { fprintf(stderr, "vitport verify: out of memory\n"); goto done; }
    int rc = vp_verify_run(v, dir, &o);
    if (json) {
        cJSON *j = vp_cli_verify_json(v, rc);
        vp_cli_json_set(j, "model_dir", cJSON_CreateString(dir));
        vp_cli_json_print(j);
        cJSON_Delete(j);
    } else if (!quiet || rc) {
        for (size_t i = 0; i < vp_verify_count(v); i++) {
            const vp_verify_item *it = vp_verify_item_at(v, i);
            printf("  %-24s vs %-6s max abs %-10.3g tolerance %-8.2g %s\n", it->name, it->against, it->max_abs,
                   it->tolerance, it->ok ? "ok" : "FAILED");
        }
    }
    if (rc) {
        fprintf(stderr, "vitport verify: %s\n", vp_verify_errmsg(v));
        goto done;
    }
    if (!json && !quiet) {
        char line[256];
        vp_verify_summary(v, line, sizeof line);
        printf("%s: verified %s against the %s: %s\n", dir, vp_verify_class(v), vp_verify_check(v), line);
    }
    status = VP_EXIT_OK;
done:
    vp_verify_free(v);
    vp_cli_array_free(&pix);
    vp_cli_array_free(&ids);
    return status;
}

/* ---- the check `vitport convert` runs before publishing ------------------ */
int vp_cli_convert_verify(void *arg, const char *tmp, const char *src, const char *key, const char *family,
                          char *err, size_t errlen)
{
    vp_cli_convert_check *ck = arg;
    if (!ck->quiet) fprintf(stderr, "vitport convert: verifying against the source model...\n");
    int rc = vp_verify_convert(&ck->st, tmp, src, key, family, err, errlen);
    cJSON_Delete(ck->json);
    ck->json = ck->st.v ? vp_cli_verify_json(ck->st.v, ck->st.rc) : NULL;
    if (ck->json && ck->st.rc) vp_cli_json_set(ck->json, "error", cJSON_CreateString(ck->st.error));
    return rc;
}
