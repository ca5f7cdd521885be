/* vitport classify: zero-shot label probabilities (CLIP, SigLIP) or the top
 * classes of an image classifier (ViT, DeiT, SigLIP), from image files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport classify MODEL_DIR --image FILE [--image FILE ...]\n"
            "                        [--labels \"a cat,a dog\" | --top K] [--threads N]\n"
            "\n"
            "CLIPModel / SiglipModel (zero-shot): the probability of each label for each\n"
            "image, printed as the SigLIP conversion script prints them:\n"
            "  31.9%% that image 0 is 'a photo of 2 cats'\n"
            "CLIP: softmax of logits_per_image over the labels (they sum to 1 per image);\n"
            "SigLIP: sigmoid of each logit (independent). The labels are tokenized with\n"
            "MODEL_DIR's tokenizer files as they are given (no prompt template added).\n"
            "ViTForImageClassification, DeiT, SiglipForImageClassification: the K most\n"
            "probable classes (softmax of logits) with their id2label names from config.json.\n"
            "A bad image is reported, naming the file, and the others are classified\n"
            "(exit status 1).\n"
            "\n"
            "options:\n"
            "  --image FILE     an image (repeatable; numbered from 0 in the output)\n"
            "  --labels LIST    comma-separated labels (zero-shot models)\n"
            "  --top K          classes to show for a classifier (default 5)\n"
            "  --threads N      threads to use (default: all cores)\n"
            "  -h, --help       show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input, 2 usage error\n");
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n >= 0 && n < (64L << 20) && !fseek(f, 0, SEEK_SET) && (b = malloc((size_t)n + 1))) {
        if (fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
        else b[n] = 0;
    }
    fclose(f);
    return b;
}

int cmd_classify(int argc, char **argv)
{
    const char *dir = NULL, *labels = NULL;
    const char **imgs = calloc((size_t)argc, sizeof *imgs);
    size_t ni = 0;
    long top = 5, threads = 0;
    int status = VP_EXIT_USAGE, top_set = 0;
    if (!imgs) return VP_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int val = !strcmp(a, "--image") || !strcmp(a, "--labels") || !strcmp(a, "--top") || !strcmp(a, "--threads");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); status = VP_EXIT_OK; goto done; }
        else if (val) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport classify: %s needs a value\n", a); goto done; }
            const char *v = argv[++i];
            if (!strcmp(a, "--image")) imgs[ni++] = v;
            else if (!strcmp(a, "--labels")) labels = v;
            else if (!strcmp(a, "--top")) { if (vp_cli_int("classify", a, v, 1, 1000000, &top)) goto done; top_set = 1; }
            else if (vp_cli_int("classify", a, v, 1, 1024, &threads)) goto done;
        } else if (a[0] == '-' && a[1]) { fprintf(stderr, "vitport classify: unknown option '%s' (see vitport classify --help)\n", a); goto done; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "vitport classify: unexpected argument '%s'\n", a); goto done; }
    }
    if (!dir) { help(stderr); goto done; }
    if (!ni) { fprintf(stderr, "vitport classify: give at least one --image\n"); goto done; }
    if (labels && top_set) { fprintf(stderr, "vitport classify: give --labels or --top, not both\n"); goto done; }

    status = VP_EXIT_FAIL;
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    vp_preproc *pp = NULL;
    float *pix = NULL;
    int64_t *ids = NULL, L = 0, H = 0, W = 0;
    char *lab = NULL, *cfgtext = NULL;
    const char **lv = NULL;
    size_t nl = 0, k = 0;
    cJSON *cfg = NULL;
    unsigned char *ok = malloc(ni);
    if (!ok) goto end;
    if (vp_model_open(&m, dir)) { fprintf(stderr, "vitport classify: %s\n", m ? vp_model_errmsg(m) : "out of memory"); goto end; }
    const char *cls = vp_model_class(m);
    int zero_shot = !strcmp(cls, "CLIPModel") || !strcmp(cls, "SiglipModel");
    int sig = !strcmp(cls, "SiglipModel");
    if (!zero_shot && !strstr(cls, "Classification")) {
        fprintf(stderr, "vitport classify: %s is neither a zero-shot model (CLIPModel, SiglipModel) nor a classifier\n", cls);
        goto end;
    }
    if (zero_shot && !labels) { fprintf(stderr, "vitport classify: %s is zero-shot: give --labels \"a,b,...\"\n", cls); status = VP_EXIT_USAGE; goto end; }
    if (!zero_shot && labels) { fprintf(stderr, "vitport classify: %s has its own classes: use --top K, not --labels\n", cls); status = VP_EXIT_USAGE; goto end; }
    if (vp_preproc_open(&pp, dir)) { fprintf(stderr, "vitport classify: %s\n", pp ? vp_preproc_errmsg(pp) : "out of memory"); goto end; }
    if (zero_shot) {
        lab = malloc(strlen(labels) + 1);
        lv = calloc(strlen(labels) + 1, sizeof *lv);
        if (!lab || !lv) goto end;
        strcpy(lab, labels);
        for (char *s = lab, *e; s; s = e) {
            e = strchr(s, ',');
            if (e) *e++ = 0;
            lv[nl++] = s;
        }
        if (vp_cli_tokenize(dir, lv, nl, "classify", &ids, &L)) goto end;
    }
    int bad = vp_cli_images(pp, imgs, ni, 0, "classify", &pix, &H, &W, &k, ok) != VP_EXIT_OK;
    if (!k) goto end;
    if (vp_ctx_new(&c, m, (int)threads)) { fprintf(stderr, "vitport classify: %s\n", vp_ctx_errmsg(c)); goto end; }
    vp_inputs in = {0};
    in.pixel_values = pix; in.batch = (int64_t)k; in.height = H; in.width = W;
    if (zero_shot) { in.input_ids = ids; in.text_batch = (int64_t)nl; in.text_len = L; }
    if (vp_ctx_run(c, &in)) { fprintf(stderr, "vitport classify: %s\n", vp_ctx_errmsg(c)); goto end; }
    const vp_output *o = vp_ctx_output_named(c, zero_shot ? "logits_per_image" : "logits");
    if (!o || o->ndim != 2 || o->shape[0] != (int64_t)k) { fprintf(stderr, "vitport classify: %s gave no logits\n", cls); goto end; }
    int64_t nc = o->shape[1];
    double *p = malloc((size_t)nc * sizeof *p);
    if (!p) goto end;
    if (!zero_shot) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", dir);
        cfgtext = read_text(path);
        cfg = cfgtext ? cJSON_Parse(cfgtext) : NULL;
    }
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(cfg, "id2label");
    for (size_t r = 0, i = 0; r < k; i++) {
        if (!ok[i]) continue;
        const float *lg = o->data + r * (size_t)nc;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < nc; j++) mx = fmax(mx, lg[j]);
        for (int64_t j = 0; j < nc; j++) {
            p[j] = sig ? 1.0 / (1.0 + exp(-(double)lg[j])) : exp((double)lg[j] - mx);
            sum += p[j];
        }
        if (!sig) for (int64_t j = 0; j < nc; j++) p[j] /= sum;
        if (zero_shot) {
            for (int64_t j = 0; j < nc; j++) printf("%.1f%% that image %zu is '%s'\n", 100.0 * p[j], i, lv[j]);
        } else {
            printf("image %zu (%s):\n", i, imgs[i]);
            for (long t = 0; t < top && t < nc; t++) {
                int64_t best = -1;
                for (int64_t j = 0; j < nc; j++) if (p[j] >= 0 && (best < 0 || p[j] > p[best])) best = j;
                char key[32];
                snprintf(key, sizeof key, "%lld", (long long)best);
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(id2label, key);
                char pb[512];
                printf("  %5.1f%%  %s (%lld)\n", 100.0 * p[best],
                       cJSON_IsString(nm) ? vp_cli_printable(nm->valuestring, pb, sizeof pb) : "?", (long long)best);
                p[best] = -1;
            }
        }
        r++;
    }
    free(p);
    status = bad ? VP_EXIT_FAIL : VP_EXIT_OK;
end:
    cJSON_Delete(cfg);
    free(cfgtext); free(lab); free(lv); free(ids); free(pix); free(ok);
    vp_preproc_free(pp);
    vp_ctx_free(c);
    vp_model_close(m);
done:
    free(imgs);
    return status;
}
