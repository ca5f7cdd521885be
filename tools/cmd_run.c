/* vitport run: the raw forward pass of a model directory on input arrays,
 * every output saved under its transformers field name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport run MODEL_DIR (--inputs FILE.npz | --pixel-values FILE [--input-ids FILE])\n"
            "                   --out OUT.npz [--threads N] [--interpolate-pos-encoding] [--quiet]\n"
            "\n"
            "Run a Hugging Face model directory (config.json + model.safetensors, a sharded\n"
            "index, or pytorch_model.bin) natively: ViTModel, ViTForImageClassification,\n"
            "DeiT (with teacher), CLIPModel, SiglipModel (also SiglipVisionModel,\n"
            "SiglipTextModel, SiglipForImageClassification), CLIPSegForImageSegmentation.\n"
            "Outputs are saved in OUT.npz under transformers' field names (last_hidden_state,\n"
            "pooler_output, logits, image_embeds, text_embeds, logits_per_image, ...); a\n"
            "classifier's run also saves its base model's last_hidden_state.\n"
            "\n"
            "options:\n"
            "  --inputs FILE         .npz (or safetensors / torch file) holding pixel_values\n"
            "                        (float, [B, 3, H, W]) and/or input_ids (integers, [B, L])\n"
            "  --pixel-values FILE   pixel_values alone (.npy, or the one tensor of a file)\n"
            "  --input-ids FILE      input_ids alone (.npy, or the one tensor of a file)\n"
            "  --out FILE            where to write the outputs (.npz; written whole or not at all)\n"
            "  --threads N           threads to use (default: all cores)\n"
            "  --interpolate-pos-encoding\n"
            "                        ViT / DeiT: accept image sizes other than the config's by\n"
            "                        resizing the position embeddings (bicubic), as transformers\n"
            "                        does (SigLIP, CLIP and CLIPSeg resize them whenever the grid\n"
            "                        differs, as their classes with the flag set)\n"
            "  --quiet               print nothing on success\n"
            "  -h, --help            show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input, 2 usage error\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *inputs = NULL, *pix_path = NULL, *ids_path = NULL, *out = NULL;
    int threads = 0, interp = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--inputs") ? &inputs : !strcmp(a, "--pixel-values") ? &pix_path
                          : !strcmp(a, "--input-ids") ? &ids_path : !strcmp(a, "--out") ? &out : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); return VP_EXIT_OK; }
        else if (slot) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport run: %s needs a value\n", a); return VP_EXIT_USAGE; }
            *slot = argv[++i];
        } else if (!strcmp(a, "--threads")) {
            char *end;
            if (i + 1 >= argc) { fprintf(stderr, "vitport run: --threads needs a value\n"); return VP_EXIT_USAGE; }
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 1024) { fprintf(stderr, "vitport run: --threads wants 1..1024\n"); return VP_EXIT_USAGE; }
            threads = (int)n;
        } else if (!strcmp(a, "--interpolate-pos-encoding")) interp = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "vitport run: unknown option '%s' (see vitport run --help)\n", a); return VP_EXIT_USAGE; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "vitport run: unexpected argument '%s'\n", a); return VP_EXIT_USAGE; }
    }
    if (!dir) { help(stderr); return VP_EXIT_USAGE; }
    if (!out) { fprintf(stderr, "vitport run: --out OUT.npz is required\n"); return VP_EXIT_USAGE; }
    if (inputs && (pix_path || ids_path)) {
        fprintf(stderr, "vitport run: give --inputs, or --pixel-values / --input-ids, not both\n");
        return VP_EXIT_USAGE;
    }
    if (!inputs && !pix_path && !ids_path) {
        fprintf(stderr, "vitport run: no inputs (--inputs, --pixel-values or --input-ids)\n");
        return VP_EXIT_USAGE;
    }

    char err[1024];
    int status = VP_EXIT_FAIL;
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    vp_cli_array pix = {0}, ids = {0};
    double t0 = now();
    if (vp_model_open(&m, dir)) { fprintf(stderr, "vitport run: %s\n", vp_model_errmsg(m)); goto done; }
    int want = vp_model_inputs(m);
    /* What the model takes, from --inputs or the per-array options. */
    if ((want & VP_INPUT_PIXELS) && (inputs || pix_path) &&
        vp_cli_load_array(inputs ? inputs : pix_path, "pixel_values", VP_F32, &pix, err, sizeof err)) {
        fprintf(stderr, "vitport run: %s\n", err); goto done;
    }
    if ((want & VP_INPUT_IDS) && (inputs || ids_path) &&
        vp_cli_load_array(inputs ? inputs : ids_path, "input_ids", VP_I64, &ids, err, sizeof err)) {
        fprintf(stderr, "vitport run: %s\n", err); goto done;
    }
    if (((want & VP_INPUT_PIXELS) && !pix.data) || ((want & VP_INPUT_IDS) && !ids.data)) {
        fprintf(stderr, "vitport run: %s takes %s%s%s\n", vp_model_class(m),
                (want & VP_INPUT_PIXELS) ? "pixel_values" : "", want == (VP_INPUT_PIXELS | VP_INPUT_IDS) ? " and " : "",
                (want & VP_INPUT_IDS) ? "input_ids" : "");
        goto done;
    }
    if (pix.data && (pix.ndim != 4)) {
        fprintf(stderr, "vitport run: pixel_values must be [batch, channels, height, width], got %d dimensions\n", pix.ndim);
        goto done;
    }
    if (ids.data && ids.ndim != 2) {
        fprintf(stderr, "vitport run: input_ids must be [batch, length], got %d dimensions\n", ids.ndim);
        goto done;
    }
    double t1 = now();
    if (vp_ctx_new(&c, m, threads)) { fprintf(stderr, "vitport run: %s\n", vp_ctx_errmsg(c)); goto done; }
    vp_inputs in = {0};
    if (pix.data) {
        in.pixel_values = pix.data; in.batch = pix.shape[0]; in.height = pix.shape[2]; in.width = pix.shape[3];
    }
    if (ids.data) { in.input_ids = ids.data; in.text_batch = ids.shape[0]; in.text_len = ids.shape[1]; }
    in.interpolate_pos_encoding = interp;
    if (pix.data && pix.shape[1] != 3) {
        fprintf(stderr, "vitport run: pixel_values has %lld channels; vitport's models take 3\n", (long long)pix.shape[1]);
        goto done;
    }
    if (vp_ctx_run(c, &in)) { fprintf(stderr, "vitport run: %s\n", vp_ctx_errmsg(c)); goto done; }
    double t2 = now();

    vp_npz_writer *w = NULL;
    int rc = vp_npz_writer_open(&w, out);
    for (size_t i = 0; !rc && i < vp_ctx_output_count(c); i++) {
        const vp_output *o = vp_ctx_output(c, i);
        rc = vp_npz_writer_add(w, o->name, VP_F32, o->ndim, o->shape, o->data);
    }
    if (!rc) rc = vp_npz_writer_finish(w);
    if (rc) { fprintf(stderr, "vitport run: %s\n", vp_npz_writer_errmsg(w)); vp_npz_writer_close(w); goto done; }
    vp_npz_writer_close(w);
    double t3 = now();
    if (!quiet) {
        printf("%s: ran %s", dir, vp_model_class(m));
        for (size_t i = 0; i < vp_ctx_output_count(c); i++) {
            const vp_output *o = vp_ctx_output(c, i);
            printf("%s %s [", i ? "," : ";", o->name);
            for (int d = 0; d < o->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)o->shape[d]);
            printf("]");
        }
        printf("\nload %.3f s, forward %.3f s; wrote %s in %.3f s\n", t1 - t0, t2 - t1, out, t3 - t2);
    }
    status = VP_EXIT_OK;
done:
    vp_cli_array_free(&pix);
    vp_cli_array_free(&ids);
    vp_ctx_free(c);
    vp_model_close(m);
    return status;
}
