/*
 * Convolutions over one image in channel-major layout, as matrix products:
 * Conv2d by im2col (cols [C kh kw, OH OW], out = W cols), ConvTranspose2d
 * by the transpose (cols [H W, O kh kw] = in^T W, then each column block
 * is added into the output at its stride offset: col2im).
 */
#include <string.h>

#include "nn/nn.h"

static int64_t conv_out(int64_t n, int64_t k, int64_t stride, int64_t pad)
{
    return (n + 2 * pad - k) / stride + 1;
}

size_t vp_nn_conv2d_scratch(int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                            int64_t stride, int64_t pad)
{
    int64_t oh = conv_out(H, kh, stride, pad), ow = conv_out(W, kw, stride, pad);
    if (oh <= 0 || ow <= 0) return 1;
    return (size_t)(C * kh * kw) * (size_t)(oh * ow);
}

void vp_nn_conv2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                  const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                  int64_t stride, int64_t pad, float *cols)
{
    int64_t oh = conv_out(H, kh, stride, pad), ow = conv_out(W, kw, stride, pad);
    if (oh <= 0 || ow <= 0) return;
    int64_t n = oh * ow, K = C * kh * kw;
    #pragma omp parallel for num_threads(vp_nn_threads()) schedule(static) if (K * n > 65536)
    for (int64_t r = 0; r < K; r++) {
        int64_t c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
        float *row = cols + r * n;
        for (int64_t y = 0; y < oh; y++) {
            int64_t iy = y * stride - pad + ky;
            for (int64_t x = 0; x < ow; x++) {
                int64_t ix = x * stride - pad + kx;
                row[y * ow + x] = iy >= 0 && iy < H && ix >= 0 && ix < W ? in[(c * H + iy) * W + ix] : 0.0f;
            }
        }
    }
    for (int64_t o = 0; o < O; o++) {
        float b = bias ? bias[o] : 0.0f;
        for (int64_t i = 0; i < n; i++) out[o * n + i] = b;
    }
    vp_nn_gemm(0, O, n, K, 1.0f, weight, K, cols, n, 1.0f, out, n);
}

size_t vp_nn_conv_transpose2d_scratch(int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw)
{
    return (size_t)(H * W) * (size_t)(C + O * kh * kw);
}

void vp_nn_conv_transpose2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                            const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                            int64_t stride, float *scratch)
{
    int64_t hw = H * W, N = O * kh * kw;
    int64_t oh = (H - 1) * stride + kh, ow = (W - 1) * stride + kw;
    float *inT = scratch, *cols = scratch + hw * C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < hw; p++) inT[p * C + c] = in[c * hw + p];
    /* cols[p, (o, ky, kx)] = sum_c in[c, p] W[c, (o, ky, kx)] */
    vp_nn_gemm(0, hw, N, C, 1.0f, inT, C, weight, N, 0.0f, cols, N);
    #pragma omp parallel for num_threads(vp_nn_threads()) schedule(static) if (O > 1 && O * oh * ow > 65536)
    for (int64_t o = 0; o < O; o++) {
        float *plane = out + o * oh * ow;
        float b = bias ? bias[o] : 0.0f;
        for (int64_t i = 0; i < oh * ow; i++) plane[i] = b;
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                const float *k = cols + (y * W + x) * N + o * kh * kw;
                for (int64_t ky = 0; ky < kh; ky++) {
                    float *dst = plane + (y * stride + ky) * ow + x * stride;
                    for (int64_t kx = 0; kx < kw; kx++) dst[kx] += k[ky * kw + kx];
                }
            }
    }
}
