/*
 * The engine's op set (src/nn) against PyTorch: layer norm, the three
 * GELUs and ReLU, softmax, l2-normalize, multi-head attention with and
 * without the causal mask, patch embedding, bicubic resize, linear with and
 * without bias and accumulation. The expected values are torch's, in
 * tests/fixtures/nn_ops.npz (written by tests/fixtures/gen_nn_ops.py).
 * Every op runs with 1 and with 2 threads, and inputs are laid out with
 * row strides wider than a row, as the encoder lays them out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "nn/nn.h"

static vp_source *fx;

/* Array `name` as float32 (malloc'ed); its element count in *n. Missing
 * arrays end the program: the fixture and the test must agree. */
static float *arr(const char *name, size_t *n)
{
    long i = vp_source_find(fx, name);
    if (i < 0) { fprintf(stderr, "nn_ops.npz: no array '%s'\n", name); exit(2); }
    const vp_tensor *t = vp_source_tensor(fx, (size_t)i);
    float *d = malloc((t->numel ? t->numel : 1) * sizeof *d);
    if (!d || vp_source_read_as(fx, (size_t)i, VP_F32, d, t->numel * sizeof *d)) {
        fprintf(stderr, "nn_ops.npz: cannot read '%s': %s\n", name, vp_source_errmsg(fx));
        exit(2);
    }
    if (n) *n = (size_t)t->numel;
    return d;
}

static float *arrf(const char *fmt, const char *c, size_t *n)
{
    char name[128];
    snprintf(name, sizeof name, fmt, c);
    return arr(name, n);
}

static void dims(const char *c, int64_t *d, size_t want)
{
    char name[128];
    snprintf(name, sizeof name, "%s_dims", c);
    long i = vp_source_find(fx, name);
    const vp_tensor *t = i >= 0 ? vp_source_tensor(fx, (size_t)i) : NULL;
    if (!t || t->numel != want || vp_source_read_as(fx, (size_t)i, VP_I64, d, want * sizeof *d)) {
        fprintf(stderr, "nn_ops.npz: bad '%s'\n", name);
        exit(2);
    }
}

/* Largest |got - want| / (1 + |want|) over n values (NaN counts as huge). */
static double maxdiff(const float *got, const float *want, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]) / (1.0 + fabs((double)want[i]));
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

#define CLOSE(got, want, n, tol, what, ...) do { double _d = maxdiff(got, want, n); \
    CHECKF(_d <= (tol), what ": max relative difference %.3g > %.3g", __VA_ARGS__, _d, (double)(tol)); } while (0)

static void test_layer_norm(int threads)
{
    const char *cases[] = {"ln1", "ln2", "ln3", "ln4"};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t nx, n;
        float *x = arrf("%s_x", cases[c], &nx), *g = arrf("%s_g", cases[c], &n), *b = arrf("%s_b", cases[c], NULL);
        float *want = arrf("%s_y", cases[c], NULL), *eps = arrf("%s_eps", cases[c], NULL);
        int64_t m = (int64_t)(nx / n);
        float *y = malloc(nx * sizeof *y);
        vp_nn_layer_norm(y, x, m, (int64_t)n, g, b, *eps);
        CLOSE(y, want, nx, 1e-5, "layer norm %s (%d threads)", cases[c], threads);
        /* in place, as the op allows */
        memcpy(y, x, nx * sizeof *y);
        vp_nn_layer_norm(y, y, m, (int64_t)n, g, b, *eps);
        CLOSE(y, want, nx, 1e-5, "layer norm %s in place (%d threads)", cases[c], threads);
        free(x); free(g); free(b); free(want); free(eps); free(y);
    }
}

static void test_acts(int threads)
{
    static const struct { const char *name, *field; vp_act a; double tol; } acts[] = {
        {"gelu", "act_gelu", VP_ACT_GELU, 2e-6},
        {"gelu_pytorch_tanh", "act_gelu_tanh", VP_ACT_GELU_TANH, 2e-6},
        {"quick_gelu", "act_quick_gelu", VP_ACT_QUICK_GELU, 2e-6},
        {"relu", "act_relu", VP_ACT_RELU, 0},
    };
    size_t n;
    float *x = arr("act_x", &n);
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        vp_act a;
        CHECK(vp_nn_act_parse(acts[i].name, &a) == VP_OK && a == acts[i].a);
        float *want = arr(acts[i].field, NULL), *y = malloc(n * sizeof *y);
        memcpy(y, x, n * sizeof *y);
        vp_nn_act(y, n, a);
        CLOSE(y, want, n, acts[i].tol, "%s (%d threads)", acts[i].name, threads);
        /* the fused bias + activation pass: rows of 7 with a bias subtracted
         * beforehand and added back by the op */
        size_t cols = 7, rows = n / cols;
        float bias[7] = {0.5f, -1.25f, 3.0f, 0.0f, -0.0625f, 2.5f, -7.0f};
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < cols; j++) y[r * cols + j] = x[r * cols + j] - bias[j];
        vp_nn_bias_act(y, (int64_t)cols, (int64_t)rows, (int64_t)cols, bias, a);
        /* (x - b) + b is not always x in float: compare against the
         * activation of what the op actually summed */
        float *ref = malloc(rows * cols * sizeof *ref);
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < cols; j++) ref[r * cols + j] = (x[r * cols + j] - bias[j]) + bias[j];
        vp_nn_act(ref, rows * cols, a);
        CLOSE(y, ref, rows * cols, 1e-7, "bias + %s (%d threads)", acts[i].name, threads);
        free(ref); free(want); free(y);
    }
    vp_act a;
    CHECK(vp_nn_act_parse("gelu_new", &a) == VP_OK && a == VP_ACT_GELU_TANH);
    CHECK(vp_nn_act_parse("swish", &a) == VP_ERR_UNSUPPORTED);
    free(x);
}

static void test_softmax_l2(int threads)
{
    const char *cases[] = {"softmax", "softmax1"};
    for (size_t c = 0; c < 2; c++) {
        size_t n;
        float *x = arrf("%s_x", cases[c], &n), *want = arrf("%s_y", cases[c], NULL);
        int64_t cols = c ? 1 : 13;
        vp_nn_softmax(x, (int64_t)n / cols, cols);
        CLOSE(x, want, n, 1e-6, "%s (%d threads)", cases[c], threads);
        free(x); free(want);
    }
    size_t n;
    float *x = arr("l2_x", &n), *want = arr("l2_y", NULL);
    vp_nn_l2_normalize(x, (int64_t)n / 10, 10);
    CLOSE(x, want, n, 1e-6, "l2 normalize (%d threads)", threads);
    free(x); free(want);
}

/* Copy rows of w floats into a buffer of row stride ld (filled with NaN
 * elsewhere, so a read outside the rows shows). */
static float *strided(const float *src, size_t rows, size_t w, size_t ld)
{
    float *d = malloc((rows * ld + 1) * sizeof *d);
    for (size_t i = 0; i < rows * ld + 1; i++) d[i] = NAN;
    for (size_t r = 0; r < rows; r++) memcpy(d + r * ld, src + r * w, w * sizeof *d);
    return d;
}

static void test_attention(int threads)
{
    const char *cases[] = {"att1", "att2", "att3", "att4", "att5", "att6", "att7", "att8", "att9"};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t d[6];
        dims(cases[c], d, 6);
        int64_t B = d[0], Lq = d[1], Lk = d[2], H = d[3], dh = d[4], causal = d[5], D = H * dh;
        float *q = arrf("%s_q", cases[c], NULL), *k = arrf("%s_k", cases[c], NULL);
        float *v = arrf("%s_v", cases[c], NULL), *want = arrf("%s_out", cases[c], NULL);
        /* q, k, v side by side in one [rows, 3D + 1] buffer for the
         * self-attention cases (as a fused q/k/v product leaves them);
         * separate buffers with their own strides otherwise */
        float *qs, *ks, *vs, *buf = NULL;
        int64_t ldq, ldk, ldv;
        if (Lq == Lk) {
            int64_t ld = 3 * D + 1;
            buf = malloc((size_t)(B * Lq * ld) * sizeof *buf);
            for (int64_t r = 0; r < B * Lq; r++) {
                memcpy(buf + r * ld, q + r * D, (size_t)D * sizeof *buf);
                memcpy(buf + r * ld + D, k + r * D, (size_t)D * sizeof *buf);
                memcpy(buf + r * ld + 2 * D, v + r * D, (size_t)D * sizeof *buf);
                buf[r * ld + 3 * D] = NAN;
            }
            qs = buf; ks = buf + D; vs = buf + 2 * D;
            ldq = ldk = ldv = ld;
        } else {
            ldq = D + 2; ldk = D + 3; ldv = D + 1;
            qs = strided(q, (size_t)(B * Lq), (size_t)D, (size_t)ldq);
            ks = strided(k, (size_t)(B * Lk), (size_t)D, (size_t)ldk);
            vs = strided(v, (size_t)(B * Lk), (size_t)D, (size_t)ldv);
        }
        int64_t ldo = D + 5;
        float *o = malloc((size_t)(B * Lq * ldo) * sizeof *o);
        for (int64_t i = 0; i < B * Lq * ldo; i++) o[i] = -12345.0f;
        float *s = malloc(vp_nn_attention_scratch(B, Lq, Lk, H) * sizeof *s);
        vp_nn_attention(o, ldo, qs, ldq, ks, ldk, vs, ldv, B, Lq, Lk, H, dh, 1.0f / sqrtf((float)dh), (int)causal, s);
        float *packed = malloc((size_t)(B * Lq * D) * sizeof *packed);
        int untouched = 1;
        for (int64_t r = 0; r < B * Lq; r++) {
            memcpy(packed + r * D, o + r * ldo, (size_t)D * sizeof *packed);
            for (int64_t j = D; j < ldo; j++) untouched &= o[r * ldo + j] == -12345.0f;
        }
        CLOSE(packed, want, (size_t)(B * Lq * D), 2e-6, "attention %s B=%lld Lq=%lld Lk=%lld H=%lld dh=%lld causal=%lld (%d threads)",
              cases[c], (long long)B, (long long)Lq, (long long)Lk, (long long)H, (long long)dh, (long long)causal, threads);
        CHECKF(untouched, "attention %s wrote past its rows", cases[c]);
        if (buf) free(buf);
        else { free(qs); free(ks); free(vs); }
        free(q); free(k); free(v); free(want); free(o); free(s); free(packed);
    }
}

static void test_patch_embed(int threads)
{
    const char *cases[] = {"pe1", "pe2", "pe3"};
    for (size_t c = 0; c < 3; c++) {
        int64_t d[6];
        dims(cases[c], d, 6);
        int64_t B = d[0], C = d[1], H = d[2], W = d[3], p = d[4], D = d[5], np = (H / p) * (W / p);
        char name[64];
        snprintf(name, sizeof name, "%s_bias", cases[c]);
        float *pix = arrf("%s_pix", cases[c], NULL), *w = arrf("%s_w", cases[c], NULL);
        float *bias = vp_source_find(fx, name) >= 0 ? arr(name, NULL) : NULL;
        float *want = arrf("%s_y", cases[c], NULL);
        int64_t ldo = D + 3;
        float *o = malloc((size_t)(B * np * ldo) * sizeof *o);
        float *cols = malloc(vp_nn_patch_embed_scratch(C, H, W, p) * sizeof *cols);
        vp_nn_patch_embed(o, ldo, pix, B, C, H, W, w, bias, p, D, cols);
        float *packed = malloc((size_t)(B * np * D) * sizeof *packed);
        for (int64_t r = 0; r < B * np; r++) memcpy(packed + r * D, o + r * ldo, (size_t)D * sizeof *packed);
        CLOSE(packed, want, (size_t)(B * np * D), 1e-5, "patch embedding %s (%d threads)", cases[c], threads);
        free(pix); free(w); free(bias); free(want); free(o); free(cols); free(packed);
    }
}

static void test_resize(int threads)
{
    const char *cases[] = {"bi1", "bi2", "bi3", "bi4"};
    for (size_t c = 0; c < 4; c++) {
        int64_t d[5];
        dims(cases[c], d, 5);
        size_t n;
        float *x = arrf("%s_x", cases[c], NULL), *want = arrf("%s_y", cases[c], &n);
        float *y = malloc(n * sizeof *y);
        vp_nn_resize_bicubic(y, x, d[0], d[1], d[2], d[3], d[4]);
        CLOSE(y, want, n, 1e-5, "bicubic %s %lldx%lld -> %lldx%lld (%d threads)", cases[c],
              (long long)d[1], (long long)d[2], (long long)d[3], (long long)d[4], threads);
        free(x); free(want); free(y);
    }
}

static void test_linear(int threads)
{
    const char *cases[] = {"lin1", "lin2", "lin3"};
    for (size_t c = 0; c < 3; c++) {
        size_t nb, nx, ny;
        float *x = arrf("%s_x", cases[c], &nx), *w = arrf("%s_w", cases[c], NULL), *b = arrf("%s_b", cases[c], &nb);
        float *y0 = arrf("%s_y0", cases[c], &ny);
        int64_t n = (int64_t)nb, m = (int64_t)ny / n, k = (int64_t)nx / m;
        /* the weight rows with a stride wider than k, as a slice of a
         * concatenated weight would have */
        int64_t ldw = k + 4;
        float *ws = strided(w, (size_t)n, (size_t)k, (size_t)ldw);
        vp_nn_w W = {VP_F32, ws, n, k, ldw};
        int64_t ldx = k + 1, ldy = n + 2;
        float *xs = strided(x, (size_t)m, (size_t)k, (size_t)ldx);
        static const struct { const char *field; int bias, acc; } v[] = {
            {"nobias", 0, 0}, {"bias", 1, 0}, {"acc", 1, 1}, {"accnobias", 0, 1}};
        for (size_t i = 0; i < 4; i++) {
            float *want = arrf(v[i].field[0] == 'n' ? "%s_nobias" : v[i].field[0] == 'b' ? "%s_bias"
                               : v[i].bias ? "%s_acc" : "%s_accnobias", cases[c], NULL);
            float *ys = strided(y0, (size_t)m, (size_t)n, (size_t)ldy);
            vp_nn_linear(ys, ldy, xs, ldx, m, &W, v[i].bias ? b : NULL, v[i].acc);
            float *y = malloc(ny * sizeof *y);
            int pad_ok = 1;
            for (int64_t r = 0; r < m; r++) {
                memcpy(y + r * n, ys + r * ldy, (size_t)n * sizeof *y);
                for (int64_t j = n; j < ldy; j++) pad_ok &= isnan(ys[r * ldy + j]);
            }
            CLOSE(y, want, ny, 1e-5, "linear %s %s m=%lld k=%lld n=%lld (%d threads)", cases[c], v[i].field,
                  (long long)m, (long long)k, (long long)n, threads);
            CHECKF(pad_ok, "linear %s %s wrote past its rows", cases[c], v[i].field);
            free(want); free(ys); free(y);
        }
        free(x); free(w); free(b); free(y0); free(ws); free(xs);
    }
}

int main(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/nn_ops.npz", tu_fixtures_dir());
    if (vp_source_open(&fx, path, NULL)) {
        fprintf(stderr, "%s: %s\n", path, vp_source_errmsg(fx));
        return 2;
    }
    for (int threads = 1; threads <= 2; threads++) {
        vp_nn_set_threads(threads);
        test_layer_norm(threads);
        test_acts(threads);
        test_softmax_l2(threads);
        test_attention(threads);
        test_patch_embed(threads);
        test_resize(threads);
        test_linear(threads);
    }
    vp_source_close(fx);
    TEST_MAIN_END();
}
