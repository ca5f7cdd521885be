/*
 * Convolutions beyond the patch embedding: a general Conv2d (stride,
 * zero padding) by im2col + one matrix product, and the transposed
 * convolution with kernel == stride (no overlap, as CLIPSeg's decoder
 * upsamples), one matrix product and a scatter.
 */
#include <string.h>

#include "nn/nn.h"

size_t vp_nn_conv2d_scratch(int64_t Cin, int64_t H, int64_t W, int64_t k, int64_t stride, int64_t pad)
{
    int64_t oh = (H + 2 * pad - k) / stride + 1, ow = (W + 2 * pad - k) / stride + 1;
    if (oh <= 0 || ow <= 0) return 1;
    return (size_t)(oh * ow) * (size_t)(Cin * k * k);
}

void vp_nn_conv2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                  const float *weight, const float *bias, int64_t Cout, int64_t k,
                  int64_t stride, int64_t pad, float *cols)
{
    int64_t oh = (H + 2 * pad - k) / stride + 1, ow = (W + 2 * pad - k) / stride + 1, kk = Cin * k * k;
    if (oh <= 0 || ow <= 0) return;
    /* cols [kk, oh*ow]: row (c, i, j) holds in[c, y*s + i - pad, x*s + j - pad] or 0 */
    for (int64_t c = 0; c < Cin; c++)
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                float *row = cols + ((c * k + i) * k + j) * oh * ow;
                for (int64_t y = 0; y < oh; y++) {
                    int64_t sy = y * stride + i - pad;
                    for (int64_t x = 0; x < ow; x++) {
                        int64_t sx = x * stride + j - pad;
                        row[y * ow + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? in[(c * H + sy) * W + sx] : 0.0f;
                    }
                }
            }
    for (int64_t o = 0; o < Cout; o++)
        for (int64_t p = 0; p < oh * ow; p++) out[o * oh * ow + p] = bias ? bias[o] : 0.0f;
    /* out[Cout, oh*ow] += weight[Cout, kk] @ cols[kk, oh*ow] */
    vp_nn_gemm(0, Cout, oh * ow, kk, 1.0f, weight, kk, cols, oh * ow, 1.0f, out, oh * ow);
}

size_t vp_nn_conv_transpose2d_scratch(int64_t Cin, int64_t Cout, int64_t H, int64_t W, int64_t k)
{
    return (size_t)(H * W) * (size_t)(Cin + Cout * k * k);
}

void vp_nn_conv_transpose2d(float *out, const float *in, int64_t Cin, int64_t H, int64_t W,
                            const float *weight, const float *bias, int64_t Cout, int64_t k,
                            float *scratch)
{
    int64_t n = Cout * k * k, OW = W * k;
    float *t = scratch + H * W * n;
    /* t = in^T [H*W, Cin]; scratch[H*W, Cout*k*k] = t @ weight [Cin, Cout*k*k] */
    for (int64_t c = 0; c < Cin; c++)
        for (int64_t p = 0; p < H * W; p++) t[p * Cin + c] = in[c * H * W + p];
    vp_nn_gemm(0, H * W, n, Cin, 1.0f, t, Cin, weight, n, 0.0f, scratch, n);
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            const float *s = scratch + (y * W + x) * n;
            for (int64_t o = 0; o < Cout; o++)
                for (int64_t i = 0; i < k; i++)
                    for (int64_t j = 0; j < k; j++)
                        out[(o * H * k + y * k + i) * OW + x * k + j] = s[(o * k + i) * k + j] + (bias ? bias[o] : 0.0f);
        }
}
