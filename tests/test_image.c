/* Images against Pillow 13.0.0 and transformers' PIL-backend image
 * processors: every fixture of tests/fixtures/image (made by
 * gen_images.py) decoded, resized and preprocessed, compared with the
 * arrays those tools wrote. Decoding and resizing must be byte-exact;
 * pixel_values within 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "vitport/image.h"
#include "core/internal.h"   /* vp__set_allocator */

static char root[1024];

static const char *fx(const char *rel)
{
    static char buf[4][1400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

/* A member of an npz, read whole (malloc'ed); its shape in shape[] (ndim in *nd). */
static void *member(vp_source *s, const char *name, vp_dtype want, int64_t *shape, int *nd)
{
    long i = vp_source_find(s, name);
    if (i < 0) return NULL;
    const vp_tensor *t = vp_source_tensor(s, (size_t)i);
    if (t->dtype != want) return NULL;
    void *p = malloc(t->nbytes ? t->nbytes : 1);
    if (!p || vp_source_read(s, (size_t)i, p, t->nbytes) != VP_OK) { free(p); return NULL; }
    if (shape) memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (nd) *nd = t->ndim;
    return p;
}

static size_t count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

static void test_decode(const cJSON *man)
{
    vp_source *s;
    CHECK(vp_source_open(&s, fx("decode.npz"), NULL) == VP_OK);
    const cJSON *f;
    int files = 0, exact = 0, white_exact = 0, whites = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(man, "files")) {
        const char *stem = tu_jstr(f, "stem"), *file = tu_jstr(f, "file");
        int w = cJSON_GetObjectItem(f, "width")->valueint, h = cJSON_GetObjectItem(f, "height")->valueint;
        int alpha = cJSON_IsTrue(cJSON_GetObjectItem(f, "has_alpha"));
        vp_image *img;
        int rc = vp_image_load(&img, fx(file));
        CHECKF(rc == VP_OK, "%s: %s", file, vp_image_errmsg(img));
        files++;
        if (rc) { vp_image_free(img); continue; }
        CHECK_EQ_INT(vp_image_width(img), w);
        CHECK_EQ_INT(vp_image_height(img), h);
        CHECK_STR(vp_image_mode(img), tu_jstr(f, "mode"));
        CHECKF(vp_image_has_alpha(img) == alpha, "%s: has_alpha %d", stem, vp_image_has_alpha(img));
        size_t n = (size_t)w * (size_t)h * 3;
        uint8_t *want = member(s, stem, VP_U8, NULL, NULL);
        if (!strcmp(stem, "png_rgba_all_pairs")) {
            /* stored as .white only: its RGB is the file's first three bands */
            want = malloc(n);
            uint8_t *o = want;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++, o += 3) {
                    int v = 2 * x, a = y;
                    o[0] = (uint8_t)v; o[1] = (uint8_t)(255 - v); o[2] = (uint8_t)(v ^ a);
                }
        }
        CHECKF(want != NULL, "decode.npz has no %s", stem);
        if (want) {
            size_t d = count_diff(vp_image_pixels(img), want, n);
            CHECKF(d == 0, "%s: %zu of %zu bytes differ from Pillow's convert(\"RGB\")", stem, d, n);
            exact += d == 0;
        }
        free(want);
        char key[256];
        snprintf(key, sizeof key, "%s.white", stem);
        uint8_t *wwant = member(s, key, VP_U8, NULL, NULL);
        CHECKF((wwant != NULL) == alpha, "%s: white member present %d", stem, wwant != NULL);
        const uint8_t *wp = vp_image_pixels_on_white(img);
        if (wwant) {
            whites++;
            size_t d = count_diff(wp, wwant, n);
            CHECKF(d == 0, "%s: %zu of %zu bytes differ from transformers' convert_to_rgb", stem, d, n);
            white_exact += d == 0;
        } else {
            CHECK(wp == vp_image_pixels(img));
        }
        free(wwant);
        /* the same bytes from memory */
        size_t len;
        char *bytes = tu_slurp(fx(file), &len);
        vp_image *m = NULL;
        CHECK(bytes && vp_image_load_memory(&m, bytes, len, stem) == VP_OK);
        CHECK(m && vp_image_pixels(m) && !memcmp(vp_image_pixels(m), vp_image_pixels(img), n));
        vp_image_free(m);
        free(bytes);
        vp_image_free(img);
    }
    printf("decode: %d/%d files byte-exact to Pillow 13.0.0 convert(\"RGB\"), %d/%d alpha images exact on white\n",
           exact, files, white_exact, whites);
    CHECK(files >= 40);
    vp_source_close(s);
}

static void test_bad(const cJSON *man)
{
    const cJSON *f;
    int n = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(man, "bad")) {
        const char *file = tu_jstr(f, "file");
        vp_image *img;
        int rc = vp_image_load(&img, fx(file));
        const char *msg = vp_image_errmsg(img);
        CHECKF(rc != VP_OK, "%s: loaded", file);
        CHECKF(tu_one_line(msg) && tu_has(msg, fx(file)), "%s: message \"%s\"", file, msg);
        CHECK(vp_image_pixels(img) == NULL && vp_image_width(img) == 0);
        if (strstr(file, "bomb") || strstr(file, "scans")) CHECKF(rc == VP_ERR_LIMIT, "%s: rc %d (%s)", file, rc, msg);
        if (strstr(file, "truncated")) CHECKF(tu_has(msg, "truncated") || tu_has(msg, "bad"), "%s: %s", file, msg);
        vp_image_free(img);
        n++;
    }
    CHECK(n >= 10);
    /* every prefix of a JPEG and a PNG fails cleanly or (whole file) succeeds */
    const char *files[] = { "files/photo_chelsea_q90.jpg", "files/png_p4_trns.png", "files/jpeg_progressive.jpg" };
    for (int k = 0; k < 3; k++) {
        size_t len;
        char *b = tu_slurp(fx(files[k]), &len);
        CHECK(b != NULL);
        vp_image *full = NULL;
        CHECK(b && vp_image_load_memory(&full, b, len, "full") == VP_OK);
        size_t npx = (size_t)vp_image_width(full) * (size_t)vp_image_height(full) * 3;
        int cuts = 0, bad = 0;
        for (size_t cut = 0; b && cut < len; cut += (len / 97) + 1) {
            vp_image *img;
            int rc = vp_image_load_memory(&img, b, cut, "cut");
            cuts++;
            /* a prefix fails with a message, or (cut after the pixel data) gives the same pixels */
            if (rc) bad += !tu_one_line(vp_image_errmsg(img));
            else bad += cut < len / 2 || vp_image_width(img) != vp_image_width(full) ||
                        memcmp(vp_image_pixels(img), vp_image_pixels(full), npx) != 0;
            vp_image_free(img);
        }
        CHECKF(bad == 0 && cuts > 40, "%s: %d of %d truncated prefixes misbehaved", files[k], bad, cuts);
        vp_image_free(full);
        free(b);
    }
    vp_image *img;
    CHECK(vp_image_load(&img, fx("no/such/file.png")) == VP_ERR_IO);
    CHECK(tu_has(vp_image_errmsg(img), "no/such/file.png"));
    vp_image_free(img);
    vp_image_free(NULL);
    CHECK(vp_image_from_rgb(&img, 0, 3, (const uint8_t *)"") == VP_ERR_ARG);
    vp_image_free(img);
}

static void test_resize(const cJSON *man)
{
    vp_source *s;
    CHECK(vp_source_open(&s, fx("resize.npz"), NULL) == VP_OK);
    const cJSON *r;
    int n = 0, exact = 0;
    int per[6] = { 0 }, per_ok[6] = { 0 };
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(man, "resize")) {
        char key[128];
        snprintf(key, sizeof key, "src.%s", tu_jstr(r, "src"));
        int64_t sh[3];
        uint8_t *src = member(s, key, VP_U8, sh, NULL);
        uint8_t *want = member(s, tu_jstr(r, "key"), VP_U8, NULL, NULL);
        CHECK(src && want);
        int fnum = cJSON_GetObjectItem(r, "filter")->valueint;
        int w = cJSON_GetObjectItem(r, "width")->valueint, h = cJSON_GetObjectItem(r, "height")->valueint;
        vp_image *img = NULL;
        CHECK(src && vp_image_from_rgb(&img, (int)sh[1], (int)sh[0], src) == VP_OK);
        size_t nb = (size_t)w * (size_t)h * 3;
        uint8_t *out = malloc(nb);
        int rc = vp_image_resize(img, 0, w, h, fnum, out, nb);
        CHECKF(rc == VP_OK, "%s: %s", tu_jstr(r, "key"), vp_image_errmsg(img));
        size_t d = want && rc == VP_OK ? count_diff(out, want, nb) : nb;
        CHECKF(d == 0, "%s: %zu of %zu bytes differ from PIL resize", tu_jstr(r, "key"), d, nb);
        n++; exact += d == 0; per[fnum]++; per_ok[fnum] += d == 0;
        /* too small an output buffer is refused */
        CHECK(vp_image_resize(img, 0, w, h, fnum, out, nb - 1) == VP_ERR_ARG);
        free(out); free(src); free(want);
        vp_image_free(img);
    }
    printf("resize: %d/%d cases byte-exact to PIL Image.resize (NEAREST %d/%d, LANCZOS %d/%d, BILINEAR %d/%d, "
           "BICUBIC %d/%d, BOX %d/%d, HAMMING %d/%d)\n", exact, n, per_ok[0], per[0], per_ok[1], per[1],
           per_ok[2], per[2], per_ok[3], per[3], per_ok[4], per[4], per_ok[5], per[5]);
    CHECK(n >= 100);
    vp_image *img;
    uint8_t px[3] = { 1, 2, 3 }, out[12];
    CHECK(vp_image_from_rgb(&img, 1, 1, px) == VP_OK);
    CHECK(vp_image_resize(img, 0, 2, 2, 6, out, sizeof out) == VP_ERR_ARG);
    CHECK(tu_has(vp_image_errmsg(img), "filter"));
    CHECK(vp_image_resize(img, 0, 0, 2, 2, out, sizeof out) == VP_ERR_ARG);
    vp_image_free(img);
    vp_source_close(s);
}

static void test_preproc(const cJSON *man)
{
    vp_source *s;
    CHECK(vp_source_open(&s, fx("preproc.npz"), NULL) == VP_OK);
    const cJSON *p;
    int procs = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(man, "preproc")) {
        const char *name = tu_jstr(p, "name");
        vp_preproc *pp;
        int rc = vp_preproc_open(&pp, fx(tu_jstr(p, "dir")));
        CHECKF(rc == VP_OK, "%s: %s", name, vp_preproc_errmsg(pp));
        if (rc) { vp_preproc_free(pp); continue; }
        char cls[80];
        snprintf(cls, sizeof cls, "%s", tu_jstr(p, "class"));
        size_t cl = strlen(cls);
        if (cl > 3 && !strcmp(cls + cl - 3, "Pil")) cls[cl - 3] = 0;
        CHECK_STR(vp_preproc_class(pp), cls);
        double maxd = 0;
        int nimg = 0;
        vp_image *batch[32];
        float *bwant[32];
        int nb = 0, bh = 0, bw = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(p, "images")) {
            const char *stem = tu_jstr(e, "stem");
            vp_image *img = NULL;
            if (cJSON_IsTrue(cJSON_GetObjectItem(e, "raw"))) {
                char key[128];
                snprintf(key, sizeof key, "input.%s", stem);
                int64_t sh[3];
                uint8_t *a = member(s, key, VP_U8, sh, NULL);
                CHECK(a && vp_image_from_rgb(&img, (int)sh[1], (int)sh[0], a) == VP_OK);
                free(a);
            } else {
                CHECK(vp_image_load(&img, fx(tu_jstr(e, "file"))) == VP_OK);
            }
            char key[160];
            snprintf(key, sizeof key, "%s.%s", name, stem);
            int64_t sh[4];
            int nd = 0;
            float *want = member(s, key, VP_F32, sh, &nd);
            CHECKF(want && nd == 4 && sh[0] == 1 && sh[1] == 3, "%s", key);
            int oh = 0, ow = 0;
            CHECK(vp_preproc_output_size(pp, img, &oh, &ow) == VP_OK);
            CHECKF(want && oh == sh[2] && ow == sh[3], "%s: %dx%d", key, ow, oh);
            size_t nf = 3 * (size_t)oh * (size_t)ow;
            float *out = calloc(nf ? nf : 1, sizeof(float));
            rc = vp_preproc_run(pp, &img, 1, out, nf);
            CHECKF(rc == VP_OK, "%s: %s", key, vp_preproc_errmsg(pp));
            double d = 0;
            if (want && rc == VP_OK && oh == sh[2] && ow == sh[3])
                for (size_t i = 0; i < nf; i++) { double x = fabs((double)out[i] - want[i]); if (!(x <= d)) d = x; }
            else
                d = INFINITY;
            CHECKF(d < 1e-6, "%s: max abs diff %g", key, d);
            if (d > maxd) maxd = d;
            nimg++;
            free(out);
            if (nb < 32 && want && (nb == 0 || (oh == bh && ow == bw))) {
                bh = oh; bw = ow;
                batch[nb] = img; bwant[nb] = want; nb++;
            } else {
                vp_image_free(img);
                free(want);
            }
        }
        /* the same images as one batch */
        if (nb > 1) {
            size_t per = 3 * (size_t)bh * (size_t)bw;
            float *out = malloc(sizeof(float) * per * (size_t)nb);
            CHECK(vp_preproc_run(pp, batch, (size_t)nb, out, per * (size_t)nb) == VP_OK);
            int same = 1;
            for (int b = 0; b < nb; b++)
                for (size_t i = 0; i < per; i++) if (fabsf(out[(size_t)b * per + i] - bwant[b][i]) >= 1e-6f) same = 0;
            CHECKF(same, "%s: batch of %d differs", name, nb);
            CHECK(vp_preproc_run(pp, batch, (size_t)nb, out, per * (size_t)nb - 1) == VP_ERR_ARG);
            free(out);
        }
        for (int b = 0; b < nb; b++) { vp_image_free(batch[b]); free(bwant[b]); }
        printf("preproc %-18s %-22s %2d images, max abs diff %g\n", name, vp_preproc_class(pp), nimg, maxd);
        vp_preproc_free(pp);
        procs++;
    }
    CHECK(procs >= 8);
    vp_source_close(s);
}

static void test_preproc_errors(void)
{
    static const struct { const char *json; int rc; const char *part; } cases[] = {
        { "", VP_ERR_FORMAT, "JSON" },
        { "[1]", VP_ERR_FORMAT, "object" },
        { "{}", VP_ERR_FORMAT, "image_processor_type" },
        { "{\"image_processor_type\": \"BeitImageProcessor\"}", VP_ERR_UNSUPPORTED, "BeitImageProcessor" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"size\": {\"height\": 0, \"width\": 4}}", VP_ERR_FORMAT, "size" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"size\": {\"max_height\": 9, \"max_width\": 4}}", VP_ERR_UNSUPPORTED, "size" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"size\": 1e9}", VP_ERR_FORMAT, "VP_PREPROC_MAX_SIDE" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"resample\": 7}", VP_ERR_UNSUPPORTED, "resample" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"do_resize\": \"yes\"}", VP_ERR_FORMAT, "do_resize" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"image_mean\": [1, 2]}", VP_ERR_FORMAT, "image_mean" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"do_center_crop\": true}", VP_ERR_FORMAT, "crop_size" },
        { "{\"image_processor_type\": \"ViTImageProcessor\", \"do_pad\": true}", VP_ERR_UNSUPPORTED, "do_pad" },
        { "{\"image_processor_type\": \"CLIPImageProcessorFast\"}", VP_OK, "" },
        { "{\"image_processor_type\": \"SiglipImageProcessorPil\", \"size\": 20}", VP_OK, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vp_preproc *pp;
        int rc = vp_preproc_open_json(&pp, cases[i].json, strlen(cases[i].json), "cfg.json");
        CHECKF(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, vp_preproc_errmsg(pp));
        if (rc) CHECKF(tu_one_line(vp_preproc_errmsg(pp)) && tu_has(vp_preproc_errmsg(pp), "cfg.json") &&
                       tu_has(vp_preproc_errmsg(pp), cases[i].part), "case %zu: %s", i, vp_preproc_errmsg(pp));
        vp_preproc_free(pp);
    }
    vp_preproc_free(NULL);
    /* shortest edge without a crop: sizes follow the image; unequal ones do not batch */
    const char *j = "{\"image_processor_type\": \"CLIPImageProcessor\", \"do_center_crop\": false, \"size\": {\"shortest_edge\": 10}}";
    vp_preproc *pp;
    CHECK(vp_preproc_open_json(&pp, j, strlen(j), "se.json") == VP_OK);
    uint8_t px[5 * 3 * 3] = { 0 };
    vp_image *a = NULL, *b = NULL;
    CHECK(vp_image_from_rgb(&a, 5, 3, px) == VP_OK && vp_image_from_rgb(&b, 3, 5, px) == VP_OK);
    int h, w;
    CHECK(vp_preproc_output_size(pp, a, &h, &w) == VP_OK && h == 10 && w == 16);
    CHECK(vp_preproc_output_size(pp, b, &h, &w) == VP_OK && h == 16 && w == 10);
    vp_image *ab[2] = { a, b };
    float out[2 * 3 * 160];
    CHECK(vp_preproc_run(pp, ab, 2, out, 2 * 3 * 160) == VP_ERR_ARG);
    CHECK(tu_has(vp_preproc_errmsg(pp), "batched"));
    vp_image_free(a); vp_image_free(b);
    vp_preproc_free(pp);
    /* a long thin image whose shortest-edge resize exceeds the pixel limit: refused, named */
    j = "{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": {\"shortest_edge\": 10000}}";
    CHECK(vp_preproc_open_json(&pp, j, strlen(j), "long.json") == VP_OK);
    uint8_t *thin = calloc(2 * 40000 * 3, 1);
    CHECK(thin && vp_image_from_rgb(&a, 2, 40000, thin) == VP_OK);
    CHECK(vp_preproc_output_size(pp, a, &h, &w) == VP_ERR_LIMIT);
    CHECK(vp_preproc_run(pp, &a, 1, out, 1) == VP_ERR_LIMIT);
    CHECKF(tu_one_line(vp_preproc_errmsg(pp)) && tu_has(vp_preproc_errmsg(pp), "long.json: array: ") &&
           tu_has(vp_preproc_errmsg(pp), "VP_IMAGE_MAX_PIXELS"), "%s", vp_preproc_errmsg(pp));
    vp_image_free(a);
    free(thin);
    vp_preproc_free(pp);
    CHECK(vp_preproc_open(&pp, fx("no/such/dir")) == VP_ERR_IO);
    CHECK(tu_has(vp_preproc_errmsg(pp), "no/such/dir"));
    vp_preproc_free(pp);
}

/* Every allocation failure point of loading and preprocessing is handled. */
static void test_oom(void)
{
    int ok = 0;
    for (long left = 0; left < 200 && !ok; left++) {
        tu_failing fa = { left };
        vp__set_allocator(tu_failing_alloc, &fa);
        vp_image *img = NULL;
        vp_preproc *pp = NULL;
        int rc = vp_image_load(&img, fx("files/png_p8_trns.png"));
        if (rc == VP_OK) rc = vp_preproc_open(&pp, fx("preproc/clip"));
        float out[3 * 28 * 28];
        if (rc == VP_OK) rc = vp_preproc_run(pp, &img, 1, out, sizeof out / sizeof out[0]);
        vp__set_allocator(NULL, NULL);
        if (rc) CHECKF(rc == VP_ERR_NOMEM, "left %ld: rc %d (%s / %s)", left, rc, vp_image_errmsg(img),
                       pp ? vp_preproc_errmsg(pp) : "");
        ok = rc == VP_OK;
        vp_preproc_free(pp);
        vp_image_free(img);
    }
    CHECK(ok);
}

int main(void)
{
    snprintf(root, sizeof root, "%s/image", tu_fixtures_dir());
    cJSON *man = tu_load_json(fx("manifest.json"));
    CHECK(man != NULL);
    if (!man) TEST_MAIN_END();
    CHECK_STR(tu_jstr(man, "pillow"), "13.0.0");
    test_decode(man);
    test_bad(man);
    test_resize(man);
    test_preproc(man);
    test_preproc_errors();
    test_oom();
    cJSON_Delete(man);
    TEST_MAIN_END();
}
