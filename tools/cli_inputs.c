/* Helpers the model-facing commands share (embed, classify, segment,
 * preprocess, tokenize): images to pixel_values, texts to input_ids, a
 * progress line, option values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vitport/vitport.h"
#include "cli.h"

double vp_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int vp_cli_int(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || n < lo || n > hi) {
        fprintf(stderr, "vitport %s: %s wants an integer in %ld..%ld\n", cmd, opt, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

int vp_cli_images(vp_preproc *pp, const char *const *paths, size_t n, int strict, const char *cmd,
                  float **pix, int64_t *H, int64_t *W, size_t *n_ok, unsigned char *ok)
{
    return vp_cli_images_timed(pp, paths, n, strict, cmd, pix, H, W, n_ok, ok, NULL);
}

int vp_cli_images_timed(vp_preproc *pp, const char *const *paths, size_t n, int strict, const char *cmd,
                        float **pix, int64_t *H, int64_t *W, size_t *n_ok, unsigned char *ok, vp_cli_timing *t)
{
    double t0 = t ? vp_cli_now() : 0, t_dec = 0;
    *pix = NULL;
    *n_ok = 0;
    vp_image **img = calloc(n ? n : 1, sizeof *img);
    if (!img) { fprintf(stderr, "vitport %s: out of memory\n", cmd); return VP_EXIT_FAIL; }
    int status = VP_EXIT_OK, h0 = 0, w0 = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] = 0;
        vp_image *im = NULL;
        int h, w;
        if (vp_image_load(&im, paths[i])) {
            fprintf(stderr, "vitport %s: %s\n", cmd, vp_image_errmsg(im));
        } else if (vp_preproc_output_size(pp, im, &h, &w)) {
            fprintf(stderr, "vitport %s: %s: %s\n", cmd, paths[i], vp_preproc_errmsg(pp));
        } else if (k && (h != h0 || w != w0)) {
            fprintf(stderr, "vitport %s: %s: preprocesses to %dx%d, the batch's first image to %dx%d "
                    "(this preprocessor keeps the aspect ratio; use --batch 1)\n", cmd, paths[i], w, h, w0, h0);
        } else {
            h0 = h; w0 = w;
            img[k++] = im;
            ok[i] = 1;
            continue;
        }
        vp_image_free(im);
        status = VP_EXIT_FAIL;
        if (strict) goto done;
    }
    if (t) t_dec = vp_cli_now();
    if (k) {
        size_t per = (size_t)3 * (size_t)h0 * (size_t)w0;
        *pix = malloc(k * per * sizeof **pix);
        if (!*pix) { fprintf(stderr, "vitport %s: out of memory for %zu images\n", cmd, k); status = VP_EXIT_FAIL; goto done; }
        if (vp_preproc_run(pp, img, k, *pix, k * per)) {
            fprintf(stderr, "vitport %s: %s\n", cmd, vp_preproc_errmsg(pp));
            free(*pix); *pix = NULL;
            status = VP_EXIT_FAIL;
            goto done;
        }
    }
    *n_ok = k;
    *H = h0; *W = w0;
done:
    for (size_t i = 0; i < n; i++) vp_image_free(img[i]);
    free(img);
    if (t) {
        double t1 = vp_cli_now();
        if (!t_dec) t_dec = t1;     /* stopped while decoding (--strict) */
        t->decode += t_dec - t0;
        t->preprocess += t1 - t_dec;
    }
    if (strict && status) { free(*pix); *pix = NULL; *n_ok = 0; }
    return status;
}

int vp_cli_tokenize(const char *dir, const char *const *texts, size_t n, const char *cmd,
                    int64_t **ids, int64_t *L)
{
    vp_tokenizer *tok = NULL;
    *ids = NULL;
    int status = VP_EXIT_FAIL;
    int *trunc = calloc(n ? n : 1, sizeof *trunc);
    if (vp_tokenizer_open(&tok, dir)) {
        fprintf(stderr, "vitport %s: %s\n", cmd, tok ? vp_tokenizer_errmsg(tok) : "out of memory");
        goto done;
    }
    *L = vp_tokenizer_length(tok);
    *ids = trunc ? malloc((n ? n : 1) * (size_t)*L * sizeof **ids) : NULL;
    if (!*ids) { fprintf(stderr, "vitport %s: out of memory\n", cmd); goto done; }
    if (vp_tokenizer_encode(tok, texts, NULL, n, *ids, NULL, trunc)) {
        fprintf(stderr, "vitport %s: %s\n", cmd, vp_tokenizer_errmsg(tok));
        free(*ids); *ids = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (trunc[i])
            fprintf(stderr, "vitport %s: warning: text %zu has more tokens than fit in %lld; truncated, as the "
                    "tokenizer does\n", cmd, i, (long long)*L);
    status = VP_EXIT_OK;
done:
    free(trunc);
    vp_tokenizer_close(tok);
    return status;
}

void vp_cli_progress(const char *what, size_t done, size_t total, double t0)
{
    if (!isatty(2) || !total) return;
    double dt = vp_cli_now() - t0, rate = dt > 0 ? (double)done / dt : 0;
    int width = 30, fill = (int)((double)width * (double)done / (double)total);
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu %s, %.1f/s", fill, "==============================", width - fill, "",
            done, total, what, rate);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}
