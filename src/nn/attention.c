/* Multi-head attention and the patch embedding. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/simd.h"

/* One (batch, head) pair: scores in s [Lq, Lk], then out = softmax(s) v. */
static void head_attention(float *out, int64_t ldo, const float *q, int64_t ldq,
                           const float *k, int64_t ldk, const float *v, int64_t ldv,
                           int64_t Lq, int64_t Lk, int64_t dh, float scale, int causal, float *s)
{
    vp_nn_gemm(1, Lq, Lk, dh, scale, q, ldq, k, ldk, 0.0f, s, Lk);
    for (int64_t i = 0; i < Lq; i++)
        vp__softmax_row(s + i * Lk, causal ? (i + 1 < Lk ? i + 1 : Lk) : Lk, Lk);
    vp_nn_gemm(0, Lq, dh, Lk, 1.0f, s, Lk, v, ldv, 0.0f, out, ldo);
}

/* Threads the (batch, head) pairs are shared among: all of them when the
 * BLAS runs a product called inside a parallel region on the calling
 * thread and there is work enough to pay for waking them; otherwise one
 * (the products inside may then be threaded instead). */
static int64_t attention_threads(int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t dh)
{
    int64_t pairs = B * H;
    double flops = 4.0 * (double)pairs * (double)Lq * (double)Lk * (double)dh;
    int64_t nt = vp__nn_blas_nests() && flops >= 1e6 ? vp_nn_threads() : 1;
    return pairs < nt ? (pairs > 0 ? pairs : 1) : nt;
}

void vp_nn_attention(float *out, int64_t ldo,
                     const float *q, int64_t ldq, const float *k, int64_t ldk,
                     const float *v, int64_t ldv,
                     int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t dh,
                     float scale, int causal, float *scratch)
{
    int64_t nt = attention_threads(B, Lq, Lk, H, dh), pairs = B * H;
    /* Each thread takes a contiguous block of pairs and its own Lq x Lk
     * slice of the scratch; the products inside run on that thread. */
    #pragma omp parallel num_threads((int)nt) if (nt > 1)
    {
        int64_t lo, hi;
        vp__my_rows(pairs, &lo, &hi);
        float *s = scratch + (size_t)vp__thread_id() * (size_t)Lq * (size_t)Lk;
        for (int64_t p = lo; p < hi; p++) {
            int64_t b = p / H, h = p % H;
            head_attention(out + b * Lq * ldo + h * dh, ldo,
                           q + b * Lq * ldq + h * dh, ldq,
                           k + b * Lk * ldk + h * dh, ldk,
                           v + b * Lk * ldv + h * dh, ldv,
                           Lq, Lk, dh, scale, causal, s);
        }
    }
}

size_t vp_nn_attention_scratch(int64_t B, int64_t Lq, int64_t Lk, int64_t H)
{
    /* one [Lq, Lk] slice per thread that may share the pairs (at least
     * attention_threads() for any head size) */
    int64_t nt = vp__nn_blas_nests() ? vp_nn_threads() : 1, pairs = B * H;
    nt = pairs < nt ? (pairs > 0 ? pairs : 1) : nt;
    return (size_t)nt * (size_t)Lq * (size_t)Lk;
}

size_t vp_nn_patch_embed_scratch(int64_t C, int64_t H, int64_t W, int64_t p)
{
    return (size_t)(H / p) * (size_t)(W / p) * (size_t)(C * p * p);
}

void vp_nn_patch_embed(float *out, int64_t ldo, const float *pix, int64_t B, int64_t C,
                       int64_t H, int64_t W, const float *weight, const float *bias,
                       int64_t p, int64_t D, float *cols)
{
    int64_t gh = H / p, gw = W / p, np = gh * gw, kk = C * p * p;
    vp_nn_w w = {VP_F32, weight, D, kk, kk};
    for (int64_t b = 0; b < B; b++) {
        const float *img = pix + b * C * H * W;
        for (int64_t gy = 0; gy < gh; gy++)
            for (int64_t gx = 0; gx < gw; gx++) {
                float *col = cols + (gy * gw + gx) * kk;
                for (int64_t c = 0; c < C; c++)
                    for (int64_t y = 0; y < p; y++)
                        memcpy(col + (c * p + y) * p, img + (c * H + gy * p + y) * W + gx * p, (size_t)p * sizeof *col);
            }
        vp_nn_linear(out + b * np * ldo, ldo, cols, kk, np, &w, bias, 0);
    }
}
