/*
 * Image.resize of an 8-bit RGB image, as Pillow 13.0.0 computes it
 * (src/libImaging/Resample.c and, for NEAREST, Geometry.c's scaled affine
 * transform; reducing_gap=None and the whole image as the box, as
 * transformers calls it). Written from a reading of those files; the
 * facts that decide the bytes:
 *  - same size: a copy. NEAREST: source x = int(a/2 + i*a) accumulated in
 *    double, a = in/out (same for rows).
 *  - other filters: separable, each pass skipped when that side keeps its
 *    size; horizontal pass first (only over the rows the vertical pass
 *    reads), except when the height shrinks by more than twice as many
 *    pixels as the width does (new in Pillow 13; found by experiment,
 *    tests/fixtures/gen_images.py covers both sides of the boundary). The filter is widened by in/out when shrinking (antialias);
 *    taps cover [int(center - support + 0.5), int(center + support + 0.5))
 *    clamped to the image, weights normalised to sum 1 in double, then
 *    rounded half away from zero to 22 fractional bits; a pixel is
 *    (2^21 + sum of w*v) >> 22 clipped to 0..255.
 */
#include <math.h>
#include <string.h>

#include "image_internal.h"

#define PREC 22   /* 32 - 8 - 2 */

typedef double (*filter_fn)(double);

static double f_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
static double f_bilinear(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}
static double f_hamming(double x)
{
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));
}
static double f_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}
static double f_lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

/* Per output index: first tap, tap count, and ksize fixed-point weights. */
typedef struct { int ksize; int *first, *count; int32_t *w; } coeffs;

static void coeffs_free(coeffs *c)
{
    vp__free(c->first);
    vp__free(c->count);
    vp__free(c->w);
}

static int coeffs_make(coeffs *c, int in, int out, filter_fn f, double fsupport)
{
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    double support = fsupport * fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    memset(c, 0, sizeof *c);
    c->ksize = ksize;
    c->first = vp__malloc(sizeof(int) * (size_t)out);
    c->count = vp__malloc(sizeof(int) * (size_t)out);
    c->w = vp__malloc(sizeof(int32_t) * (size_t)out * (size_t)ksize);
    double *k = vp__malloc(sizeof(double) * (size_t)ksize);
    if (!c->first || !c->count || !c->w || !k) { vp__free(k); coeffs_free(c); return VP_ERR_NOMEM; }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale, ww = 0.0, ss = 1.0 / fscale;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in) hi = in;
        int cnt = hi - lo;
        for (int x = 0; x < cnt; x++) {
            double w = f((x + lo - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        int32_t *wo = c->w + (size_t)o * (size_t)ksize;
        for (int x = 0; x < ksize; x++) {
            double v = 0.0;
            if (x < cnt) v = ww != 0.0 ? k[x] / ww : k[x];
            wo[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC)) : (int32_t)(0.5 + v * (1 << PREC));
        }
        c->first[o] = lo;
        c->count[o] = cnt;
    }
    vp__free(k);
    return VP_OK;
}

static inline uint8_t clip8(int32_t s)
{
    int32_t v = s >> PREC;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Horizontal pass over rows [y0, y0 + rows) of src (width sw) into dst (width dw). */
static void pass_h(const uint8_t *src, int sw, int y0, int rows, uint8_t *dst, int dw, const coeffs *c)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *r = src + (size_t)(y + y0) * (size_t)sw * 3;
        uint8_t *o = dst + (size_t)y * (size_t)dw * 3;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = c->w + (size_t)x * (size_t)c->ksize;
            const uint8_t *p = r + (size_t)c->first[x] * 3;
            int32_t s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
            for (int i = 0; i < c->count[x]; i++) {
                s0 += p[3 * i] * k[i];
                s1 += p[3 * i + 1] * k[i];
                s2 += p[3 * i + 2] * k[i];
            }
            o[3 * x] = clip8(s0); o[3 * x + 1] = clip8(s1); o[3 * x + 2] = clip8(s2);
        }
    }
}

/* Vertical pass: src rows are offset by `shift` (the first row kept). */
static void pass_v(const uint8_t *src, int w, int shift, uint8_t *dst, int dh, const coeffs *c)
{
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < dh; y++) {
        const int32_t *k = c->w + (size_t)y * (size_t)c->ksize;
        const uint8_t *base = src + (size_t)(c->first[y] - shift) * stride;
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int32_t s = 1 << (PREC - 1);
            for (int i = 0; i < c->count[y]; i++) s += base[(size_t)i * stride + x] * k[i];
            o[x] = clip8(s);
        }
    }
}

static void nearest(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    double ax = (double)sw / dw, ay = (double)sh / dh;
    memset(dst, 0, (size_t)dw * (size_t)dh * 3);
    /* Column table as Pillow accumulates it. */
    int *xt = vp__malloc(sizeof(int) * (size_t)dw);
    double xo = ax * 0.5;
    if (xt) {
        for (int x = 0; x < dw; x++) {
            int xi = xo < 0.0 ? -1 : (int)xo;
            xt[x] = (xi >= 0 && xi < sw) ? xi : -1;
            xo += ax;
        }
    }
    double yo = ay * 0.5;
    for (int y = 0; y < dh; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        yo += ay;
        if (yi < 0 || yi >= sh) continue;
        const uint8_t *r = src + (size_t)yi * (size_t)sw * 3;
        uint8_t *o = dst + (size_t)y * (size_t)dw * 3;
        double xo2 = ax * 0.5;
        for (int x = 0; x < dw; x++) {
            int xi;
            if (xt) xi = xt[x];
            else { xi = xo2 < 0.0 ? -1 : (int)xo2; if (xi >= sw) xi = -1; xo2 += ax; }
            if (xi >= 0) memcpy(o + 3 * x, r + 3 * xi, 3);
        }
    }
    vp__free(xt);
}

int vp__resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int filter)
{
    filter_fn f;
    double support;
    switch (filter) {
    case VP_RESAMPLE_NEAREST: f = NULL; support = 0; break;
    case VP_RESAMPLE_BOX: f = f_box; support = 0.5; break;
    case VP_RESAMPLE_BILINEAR: f = f_bilinear; support = 1.0; break;
    case VP_RESAMPLE_HAMMING: f = f_hamming; support = 1.0; break;
    case VP_RESAMPLE_BICUBIC: f = f_bicubic; support = 2.0; break;
    case VP_RESAMPLE_LANCZOS: f = f_lanczos; support = 3.0; break;
    default: return VP_ERR_ARG;
    }
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0) return VP_ERR_ARG;
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh * 3);
        return VP_OK;
    }
    if (!f) {
        nearest(src, sw, sh, dst, dw, dh);
        return VP_OK;
    }
    int need_h = dw != sw, need_v = dh != sh;
    coeffs cv, ch;
    int rc = coeffs_make(&cv, sh, dh, f, support);
    if (rc) return rc;
    int y_first = cv.first[0], y_last = cv.first[dh - 1] + cv.count[dh - 1];
    if (need_h) {
        rc = coeffs_make(&ch, sw, dw, f, support);
        if (rc) { coeffs_free(&cv); return rc; }
        if (!need_v) {
            pass_h(src, sw, 0, sh, dst, dw, &ch);
        } else if (dh < sh && sh - dh > 2 * (sw - dw)) {
            /* Pillow 13 resizes vertically first when the height shrinks
             * by more than twice as many pixels as the width. */
            uint8_t *tmp = vp__malloc((size_t)sw * (size_t)dh * 3);
            if (!tmp) { coeffs_free(&ch); coeffs_free(&cv); return VP_ERR_NOMEM; }
            pass_v(src, sw, 0, tmp, dh, &cv);
            pass_h(tmp, sw, 0, dh, dst, dw, &ch);
            vp__free(tmp);
        } else {
            int rows = y_last - y_first;
            uint8_t *tmp = vp__malloc((size_t)dw * (size_t)rows * 3);
            if (!tmp) { coeffs_free(&ch); coeffs_free(&cv); return VP_ERR_NOMEM; }
            pass_h(src, sw, y_first, rows, tmp, dw, &ch);
            pass_v(tmp, dw, y_first, dst, dh, &cv);
            vp__free(tmp);
        }
        coeffs_free(&ch);
    } else {
        pass_v(src, sw, 0, dst, dh, &cv);
    }
    coeffs_free(&cv);
    return VP_OK;
}
