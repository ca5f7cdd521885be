/* vitport segment: CLIPSeg heat maps of text prompts on an image, as PNG. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport segment MODEL_DIR --image FILE --prompt TEXT [--prompt TEXT ...]\n"
            "                       --out MASK.png [--overlay] [--threads N]\n"
            "\n"
            "Run CLIPSegForImageSegmentation on one image with each prompt (the image is\n"
            "repeated per prompt, as CLIPSegProcessor(text=prompts, images=[image]*n) does)\n"
            "and write the heat map sigmoid(logits), resized to the image's size with\n"
            "bilinear interpolation (half-pixel centres, as torch's\n"
            "interpolate(align_corners=False)), as an 8-bit grayscale PNG (value\n"
            "round(255 * p)). With --overlay the PNG is the image in colour, tinted red\n"
            "where p is high (pixel * (1 - 0.6 p) + red * 0.6 p) instead.\n"
            "With one prompt the file is MASK.png; with several, MASK-0.png, MASK-1.png, ...\n"
            "(the index inserted before the extension), in the prompts' order. Each PNG is\n"
            "written under a temporary name and renamed when complete.\n"
            "\n"
            "options:\n"
            "  --image FILE     the image (JPEG or PNG)\n"
            "  --prompt TEXT    a text prompt (repeatable)\n"
            "  --out FILE.png   where to write\n"
            "  --overlay        write the tinted image instead of the gray mask\n"
            "  --threads N      threads to use (default: all cores)\n"
            "  -h, --help       show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input, 2 usage error\n");
}

/* MASK.png -> MASK-i.png */
static void out_name(char *buf, size_t len, const char *out, size_t i, size_t n)
{
    if (n == 1) { snprintf(buf, len, "%s", out); return; }
    const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash)) { snprintf(buf, len, "%s-%zu", out, i); return; }
    snprintf(buf, len, "%.*s-%zu%s", (int)(dot - out), out, i, dot);
}

static int write_png(const char *path, int w, int h, int rgb, const unsigned char *px)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = rgb ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&img, tmp, 0, px, 0, NULL)) {
        fprintf(stderr, "vitport segment: cannot write %s: %s\n", path, img.message);
        remove(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        fprintf(stderr, "vitport segment: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Bilinear sample of map [mh, mw] at output pixel (x, y) of a w x h grid. */
static double sample(const float *map, int64_t mh, int64_t mw, int x, int y, int w, int h)
{
    double sy = ((double)y + 0.5) * (double)mh / h - 0.5, sx = ((double)x + 0.5) * (double)mw / w - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
    if (y0 > mh - 1) y0 = mh - 1;
    if (x0 > mw - 1) x0 = mw - 1;
    int64_t y1 = y0 + 1 < mh ? y0 + 1 : y0, x1 = x0 + 1 < mw ? x0 + 1 : x0;
    double fy = sy - (double)y0, fx = sx - (double)x0;
    double a = map[y0 * mw + x0], b = map[y0 * mw + x1], c = map[y1 * mw + x0], d = map[y1 * mw + x1];
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
}

int cmd_segment(int argc, char **argv)
{
    const char *dir = NULL, *image = NULL, *out = NULL;
    const char **prompts = calloc((size_t)argc, sizeof *prompts);
    size_t np = 0;
    long threads = 0;
    int overlay = 0, status = VP_EXIT_USAGE;
    if (!prompts) return VP_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int val = !strcmp(a, "--image") || !strcmp(a, "--prompt") || !strcmp(a, "--out") || !strcmp(a, "--threads");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); status = VP_EXIT_OK; goto done; }
        else if (val) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport segment: %s needs a value\n", a); goto done; }
            const char *v = argv[++i];
            if (!strcmp(a, "--image")) {
                if (image) { fprintf(stderr, "vitport segment: one --image per run\n"); goto done; }
                image = v;
            } else if (!strcmp(a, "--prompt")) prompts[np++] = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (vp_cli_int("segment", a, v, 1, 1024, &threads)) goto done;
        } else if (!strcmp(a, "--overlay")) overlay = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "vitport segment: unknown option '%s' (see vitport segment --help)\n", a); goto done; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "vitport segment: unexpected argument '%s'\n", a); goto done; }
    }
    if (!dir) { help(stderr); goto done; }
    if (!image || !np || !out) { fprintf(stderr, "vitport segment: give --image, at least one --prompt and --out\n"); goto done; }

    status = VP_EXIT_FAIL;
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    vp_preproc *pp = NULL;
    vp_image *img = NULL;
    float *pix = NULL, *rep = NULL;
    int64_t *ids = NULL, L = 0, H = 0, W = 0;
    unsigned char ok = 0, *png = NULL;
    size_t k = 0;
    if (vp_model_open(&m, dir)) { fprintf(stderr, "vitport segment: %s\n", m ? vp_model_errmsg(m) : "out of memory"); goto end; }
    if (strcmp(vp_model_type(m), "clipseg")) {
        fprintf(stderr, "vitport segment: %s is not a CLIPSeg model\n", vp_model_class(m));
        goto end;
    }
    if (vp_preproc_open(&pp, dir)) { fprintf(stderr, "vitport segment: %s\n", pp ? vp_preproc_errmsg(pp) : "out of memory"); goto end; }
    if (vp_cli_images(pp, &image, 1, 1, "segment", &pix, &H, &W, &k, &ok)) goto end;
    if (vp_image_load(&img, image)) { fprintf(stderr, "vitport segment: %s\n", vp_image_errmsg(img)); goto end; }
    if (vp_cli_tokenize(dir, prompts, np, "segment", &ids, &L)) goto end;
    size_t per = (size_t)(3 * H * W);
    rep = malloc(np * per * sizeof *rep);
    if (!rep) { fprintf(stderr, "vitport segment: out of memory\n"); goto end; }
    for (size_t i = 0; i < np; i++) memcpy(rep + i * per, pix, per * sizeof *rep);
    if (vp_ctx_new(&c, m, (int)threads)) { fprintf(stderr, "vitport segment: %s\n", vp_ctx_errmsg(c)); goto end; }
    vp_inputs in = {0};
    in.pixel_values = rep; in.batch = (int64_t)np; in.height = H; in.width = W;
    in.input_ids = ids; in.text_batch = (int64_t)np; in.text_len = L;
    if (vp_ctx_run(c, &in)) { fprintf(stderr, "vitport segment: %s\n", vp_ctx_errmsg(c)); goto end; }
    const vp_output *o = vp_ctx_output_named(c, "logits");
    if (!o || o->ndim != 3 || o->shape[0] != (int64_t)np) { fprintf(stderr, "vitport segment: no logits [n, h, w]\n"); goto end; }
    int w = vp_image_width(img), h = vp_image_height(img);
    int64_t mh = o->shape[1], mw = o->shape[2];
    float *map = malloc((size_t)(mh * mw) * sizeof *map);
    png = malloc((size_t)w * (size_t)h * 3);
    if (!map || !png) { free(map); fprintf(stderr, "vitport segment: out of memory\n"); goto end; }
    const uint8_t *rgb = vp_image_pixels(img);
    for (size_t i = 0; i < np; i++) {
        const float *lg = o->data + i * (size_t)(mh * mw);
        for (int64_t j = 0; j < mh * mw; j++) map[j] = (float)(1.0 / (1.0 + exp(-(double)lg[j])));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double p = sample(map, mh, mw, x, y, w, h);
                size_t q = (size_t)y * (size_t)w + (size_t)x;
                if (!overlay) { png[q] = (unsigned char)lrint(255.0 * p); continue; }
                for (int ch = 0; ch < 3; ch++) {
                    double v = rgb[q * 3 + ch] * (1 - 0.6 * p) + (ch == 0 ? 255.0 : 0.0) * 0.6 * p;
                    png[q * 3 + ch] = (unsigned char)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        char name[4096];
        out_name(name, sizeof name, out, i, np);
        if (write_png(name, w, h, overlay, png)) { free(map); goto end; }
        printf("%s: '%s' -> %s\n", image, prompts[i], name);
    }
    free(map);
    status = VP_EXIT_OK;
end:
    free(pix); free(rep); free(ids); free(png);
    vp_image_free(img);
    vp_preproc_free(pp);
    vp_ctx_free(c);
    vp_model_close(m);
done:
    free(prompts);
    return status;
}
