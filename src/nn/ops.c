/*
 * Element-wise and row-wise ops: layer norm, activations (alone and fused
 * with a bias), softmax, l2-normalize, bicubic resize.
 *
 * Each op splits its rows into one contiguous block per thread (OpenMP,
 * the same thread pool the BLAS uses, see gemm.c) and runs a row kernel
 * compiled for several x86-64 levels (VP_NN_CLONES in simd.h). Small
 * inputs stay on the calling thread: waking a thread costs more than the
 * work.
 */
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/simd.h"

static _Thread_local int nn_threads = 1;
void vp_nn_set_threads(int n)
{
    nn_threads = n > 0 ? n : 1;
    vp__nn_blas_set_threads(nn_threads);
}
int vp_nn_threads(void) { return nn_threads; }

/* Threads for `work` floats of element-wise work over `rows` rows. */
static int threads_for(int64_t rows, int64_t work)
{
    int nt = work >= (1 << 15) ? nn_threads : 1;
    return rows < nt ? (int)(rows > 0 ? rows : 1) : nt;
}

/* ---- layer norm ----------------------------------------------------------- */
VP_NN_CLONES
static void ln_rows(float *y, const float *x, int64_t m, int64_t n, const float *g, const float *b, float eps)
{
    for (int64_t i = 0; i < m; i++) {
        const float *r = x + i * n;
        float *o = y + i * n;
        /* Float moments, the mean first, then the centred second moment
         * (as PyTorch's CPU kernel); lane-wise partial sums. */
        float s = 0;
        VP_SIMD_SUM(s)
        for (int64_t j = 0; j < n; j++) s += r[j];
        float mean = s / (float)n, v = 0;
        VP_SIMD_SUM(v)
        for (int64_t j = 0; j < n; j++) { float d = r[j] - mean; v += d * d; }
        float rstd = 1.0f / sqrtf(v / (float)n + eps);
        if (g && b) {
            VP_SIMD
            for (int64_t j = 0; j < n; j++) o[j] = (r[j] - mean) * rstd * g[j] + b[j];
        } else {
            for (int64_t j = 0; j < n; j++)
                o[j] = (r[j] - mean) * rstd * (g ? g[j] : 1.0f) + (b ? b[j] : 0.0f);
        }
    }
}

void vp_nn_layer_norm(float *y, const float *x, int64_t m, int64_t n,
                      const float *gamma, const float *beta, float eps)
{
    int nt = threads_for(m, m * n);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(m, &lo, &hi);
        ln_rows(y + lo * n, x + lo * n, hi - lo, n, gamma, beta, eps);
    }
}

/* ---- activations ---------------------------------------------------------- */
int vp_nn_act_parse(const char *name, vp_act *out)
{
    if (!strcmp(name, "gelu")) *out = VP_ACT_GELU;
    else if (!strcmp(name, "gelu_pytorch_tanh") || !strcmp(name, "gelu_new") || !strcmp(name, "gelu_fast"))
        *out = VP_ACT_GELU_TANH;
    else if (!strcmp(name, "quick_gelu")) *out = VP_ACT_QUICK_GELU;
    else if (!strcmp(name, "relu")) *out = VP_ACT_RELU;
    else return VP_ERR_UNSUPPORTED;
    return VP_OK;
}

/* x (1 + erf(x / sqrt 2)) / 2 with erf by Abramowitz & Stegun 7.1.26
 * (|error| < 1.5e-7), the form PyTorch's vectorised CPU kernel evaluates. */
static inline float gelu_erf(float x)
{
    float z = x * 0.70710678118654752f;
    float a = z < 0 ? -z : z;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float e = 1.0f - p * t * vp__expf(-a * a);
    return 0.5f * x * (1.0f + (z < 0 ? -e : e));
}

/* x (1 + tanh(u)) / 2 = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline float gelu_tanh(float x)
{
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + vp__expf(-2.0f * u));
}

static inline float quick_gelu(float x) { return x / (1.0f + vp__expf(-1.702f * x)); }

/* y[i] = act(y[i] + (bias ? bias[i] : 0)) for i < n */
VP_NN_CLONES
static void act_span(float *y, const float *bias, int64_t n, vp_act a)
{
    switch (a) {
    case VP_ACT_GELU:
        if (bias) { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = gelu_erf(y[i] + bias[i]); }
        else { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = gelu_erf(y[i]); }
        break;
    case VP_ACT_GELU_TANH:
        if (bias) { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh(y[i] + bias[i]); }
        else { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh(y[i]); }
        break;
    case VP_ACT_QUICK_GELU:
        if (bias) { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = quick_gelu(y[i] + bias[i]); }
        else { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = quick_gelu(y[i]); }
        break;
    case VP_ACT_RELU:
        if (bias) { VP_SIMD for (int64_t i = 0; i < n; i++) { float v = y[i] + bias[i]; y[i] = v > 0 ? v : 0; } }
        else { VP_SIMD for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0; }
        break;
    }
}

void vp_nn_act(float *x, size_t n, vp_act a)
{
    int64_t len = (int64_t)n;
    int nt = threads_for(len, len);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(len, &lo, &hi);
        act_span(x + lo, NULL, hi - lo, a);
    }
}

void vp_nn_bias_act(float *y, int64_t ldy, int64_t m, int64_t n, const float *bias, vp_act a)
{
    int nt = threads_for(m, m * n);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(m, &lo, &hi);
        if (ldy == n && !bias) act_span(y + lo * n, NULL, (hi - lo) * n, a);
        else for (int64_t i = lo; i < hi; i++) act_span(y + i * ldy, bias, n, a);
    }
}

/* ---- add, softmax, l2 ----------------------------------------------------- */
VP_NN_CLONES
static void add_span(float *y, const float *x, int64_t n)
{
    VP_SIMD
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void vp_nn_add(float *y, const float *x, size_t n)
{
    int64_t len = (int64_t)n;
    int nt = threads_for(len, len / 4);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(len, &lo, &hi);
        add_span(y + lo, x + lo, hi - lo);
    }
}

VP_NN_CLONES
static void softmax_row(float *r, int64_t n, int64_t total)
{
    /* the max in 16 lanes: vectorised by GCC and Clang alike (Clang will not
     * vectorise a float max reduction that must keep NaN semantics) */
    float lane[16];
    for (int l = 0; l < 16; l++) lane[l] = -INFINITY;
    int64_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16)
        for (int l = 0; l < 16; l++) lane[l] = r[j0 + l] > lane[l] ? r[j0 + l] : lane[l];
    float mx = -INFINITY;
    for (int64_t j = j0; j < n; j++) mx = r[j] > mx ? r[j] : mx;
    for (int l = 0; l < 16; l++) mx = lane[l] > mx ? lane[l] : mx;
    float s = 0;
    VP_SIMD_SUM(s)
    for (int64_t j = 0; j < n; j++) { float e = vp__expf(r[j] - mx); r[j] = e; s += e; }
    float inv = 1.0f / s;
    VP_SIMD
    for (int64_t j = 0; j < n; j++) r[j] *= inv;
    for (int64_t j = n; j < total; j++) r[j] = 0.0f;
}

/* Not cloned itself: Clang before 16 names a cloned function's resolver
 * NAME.ifunc, so calls from other files would not link. */
void vp__softmax_row(float *r, int64_t n, int64_t total)
{
    softmax_row(r, n, total);
}

void vp_nn_softmax(float *x, int64_t m, int64_t n)
{
    int nt = threads_for(m, m * n * 4);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(m, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) softmax_row(x + i * n, n, n);
    }
}

void vp_nn_l2_normalize(float *x, int64_t m, int64_t n)
{
    for (int64_t i = 0; i < m; i++) {
        float *r = x + i * n;
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += (double)r[j] * r[j];
        float norm = sqrtf((float)s);
        float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
        for (int64_t j = 0; j < n; j++) r[j] *= inv;
    }
}

/* ---- bicubic resize (torch's upsample_bicubic2d, align_corners=False) -- */
static void cubic_coeffs(float t, float w[4])
{
    const float A = -0.75f;
    float x1 = t + 1.0f, x2 = t, x3 = 1.0f - t, x4 = 2.0f - t;
    w[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    w[1] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    w[2] = ((A + 2.0f) * x3 - (A + 3.0f)) * x3 * x3 + 1.0f;
    w[3] = ((A * x4 - 5.0f * A) * x4 + 8.0f * A) * x4 - 4.0f * A;
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void vp_nn_resize_bicubic(float *out, const float *in, int64_t C, int64_t h, int64_t w,
                          int64_t oh, int64_t ow)
{
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int64_t y = 0; y < oh; y++) {
        float fy = ((float)y + 0.5f) * sy - 0.5f;
        int64_t iy = (int64_t)floorf(fy);
        float wy[4]; cubic_coeffs(fy - (float)iy, wy);
        for (int64_t x = 0; x < ow; x++) {
            float fx = ((float)x + 0.5f) * sx - 0.5f;
            int64_t ix = (int64_t)floorf(fx);
            float wx[4]; cubic_coeffs(fx - (float)ix, wx);
            for (int64_t c = 0; c < C; c++) {
                const float *p = in + c * h * w;
                float acc = 0;
                for (int a = 0; a < 4; a++) {
                    const float *row = p + clampi(iy - 1 + a, 0, h - 1) * w;
                    float r = 0;
                    for (int b = 0; b < 4; b++) r += wx[b] * row[clampi(ix - 1 + b, 0, w - 1)];
                    acc += wy[a] * r;
                }
                out[(c * oh + y) * ow + x] = acc;
            }
        }
    }
}
