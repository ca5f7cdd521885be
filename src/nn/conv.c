/*
 * Convolutions beyond the patch embedding, for CLIPSeg's decoder: Conv2d
 * (stride, zero padding) by im2col + one matrix product, and
 * ConvTranspose2d (stride, padding 0) as one matrix product of the input
 * pixels with the kernels, scatter-added into the output.
 * (The same API as the engine's CLIPSeg branch declares: when both meet,
 * one implementation stays.)
 */
#include <string.h>

#include "nn/nn.h"

size_t vp_nn_conv2d_scratch(int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                            int64_t stride, int64_t pad)
{
    int64_t oh = (H + 2 * pad - kh) / stride + 1, ow = (W + 2 * pad - kw) / stride + 1;
    if (oh <= 0 || ow <= 0) return 1;
    return (size_t)(oh * ow) * (size_t)(C * kh * kw);
}

void vp_nn_conv2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                  const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                  int64_t stride, int64_t pad, float *cols)
{
    int64_t oh = (H + 2 * pad - kh) / stride + 1, ow = (W + 2 * pad - kw) / stride + 1, kk = C * kh * kw;
    if (oh <= 0 || ow <= 0) return;
    /* cols [kk, oh*ow]: row (c, i, j) holds in[c, y*s + i - pad, x*s + j - pad] or 0 */
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
                float *row = cols + ((c * kh + i) * kw + j) * oh * ow;
                for (int64_t y = 0; y < oh; y++) {
                    int64_t sy = y * stride + i - pad;
                    for (int64_t x = 0; x < ow; x++) {
                        int64_t sx = x * stride + j - pad;
                        row[y * ow + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? in[(c * H + sy) * W + sx] : 0.0f;
                    }
                }
            }
    for (int64_t o = 0; o < O; o++)
        for (int64_t p = 0; p < oh * ow; p++) out[o * oh * ow + p] = bias ? bias[o] : 0.0f;
    /* out[O, oh*ow] += weight[O, kk] @ cols[kk, oh*ow] */
    vp_nn_gemm(0, O, oh * ow, kk, 1.0f, weight, kk, cols, oh * ow, 1.0f, out, oh * ow);
}

size_t vp_nn_conv_transpose2d_scratch(int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw)
{
    return (size_t)(H * W) * (size_t)(C + O * kh * kw);
}

void vp_nn_conv_transpose2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                            const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                            int64_t stride, float *scratch)
{
    int64_t n = O * kh * kw, OH = (H - 1) * stride + kh, OW = (W - 1) * stride + kw;
    float *t = scratch + H * W * n;
    /* t = in^T [H*W, C]; scratch [H*W, O*kh*kw] = t @ weight [C, O*kh*kw] */
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < H * W; p++) t[p * C + c] = in[c * H * W + p];
    vp_nn_gemm(0, H * W, n, C, 1.0f, t, C, weight, n, 0.0f, scratch, n);
    for (int64_t o = 0; o < O; o++)
        for (int64_t p = 0; p < OH * OW; p++) out[o * OH * OW + p] = bias ? bias[o] : 0.0f;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            const float *s = scratch + (y * W + x) * n;
            for (int64_t o = 0; o < O; o++)
                for (int64_t i = 0; i < kh; i++)
                    for (int64_t j = 0; j < kw; j++)
                        out[(o * OH + y * stride + i) * OW + x * stride + j] += s[(o * kh + i) * kw + j];
        }
}
