/* Element-wise and row-wise ops: layer norm, activations, softmax, resize. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

static _Thread_local int nn_threads = 1;
void vp_nn_set_threads(int n) { nn_threads = n > 0 ? n : 1; }
int vp_nn_threads(void) { return nn_threads; }

void vp_nn_layer_norm(float *y, const float *x, int64_t m, int64_t n,
                      const float *gamma, const float *beta, float eps)
{
    #pragma omp parallel for num_threads(nn_threads) schedule(static) if (m > 16)
    for (int64_t i = 0; i < m; i++) {
        const float *r = x + i * n;
        float *o = y + i * n;
        /* Two passes in float, as PyTorch's CPU kernel keeps float32 moments;
         * the mean first, then the centred second moment. */
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += r[j];
        float mean = (float)(s / (double)n);
        double v = 0;
        for (int64_t j = 0; j < n; j++) { float d = r[j] - mean; v += (double)d * d; }
        float rstd = 1.0f / sqrtf((float)(v / (double)n) + eps);
        for (int64_t j = 0; j < n; j++) {
            float t = (r[j] - mean) * rstd;
            o[j] = t * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
        }
    }
}

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

void vp_nn_act(float *x, size_t n, vp_act a)
{
    switch (a) {
    case VP_ACT_GELU:
        #pragma omp parallel for num_threads(nn_threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        break;
    case VP_ACT_GELU_TANH:
        #pragma omp parallel for num_threads(nn_threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);
            x[i] = 0.5f * v * (1.0f + tanhf(inner));
        }
        break;
    case VP_ACT_QUICK_GELU:
        #pragma omp parallel for num_threads(nn_threads) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case VP_ACT_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    }
}

void vp_nn_add(float *y, const float *x, size_t n)
{
    #pragma omp parallel for num_threads(nn_threads) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void softmax_row(float *r, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = r[j] > mx ? r[j] : mx;
    float s = 0;
    for (int64_t j = 0; j < n; j++) { r[j] = expf(r[j] - mx); s += r[j]; }
    float inv = 1.0f / s;
    for (int64_t j = 0; j < n; j++) r[j] *= inv;
}

void vp_nn_softmax(float *x, int64_t m, int64_t n)
{
    #pragma omp parallel for num_threads(nn_threads) schedule(static) if (m * n > 65536)
    for (int64_t i = 0; i < m; i++) softmax_row(x + i * n, n);
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
