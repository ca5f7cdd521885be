/*
 * The op set the models are written in (after ggml: a small set of plain
 * functions over row-major float arrays). Activations are float32; weights
 * are described by vp_nn_w so that a bf16 (AVX512-BF16) or int8 (VNNI)
 * matrix-product path can be added in gemm.c without touching model code.
 *
 * Threading: every op takes the thread count from the vp_nn_threads()
 * setting of the calling thread (set by the engine per run).
 */
#ifndef VP_NN_H
#define VP_NN_H

#include <stddef.h>
#include <stdint.h>

#include "vitport/vitport.h"

/* Threads the ops of the calling thread may use (>= 1). Also sets the
 * BLAS's thread count, which is one setting for the whole process. */
void vp_nn_set_threads(int n);
int vp_nn_threads(void);
/* The BLAS in use, for reports: e.g. "OpenBLAS (OpenMP, Zen kernels)". */
const char *vp_nn_blas_info(void);

/* A weight matrix in nn.Linear's layout: n rows (outputs) of k inputs,
 * row-major, row stride ld (>= k) elements. Only VP_F32 today. */
typedef struct vp_nn_w {
    vp_dtype dtype;
    const void *data;
    int64_t n, k, ld;
} vp_nn_w;

/* y[m, n] = x[m, k] @ W^T (+ bias[n]) (+= when accumulate). x has row
 * stride ldx, y row stride ldy. */
void vp_nn_linear(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t m,
                  const vp_nn_w *w, const float *bias, int accumulate);

/* C[m, n] = alpha * A[m, k] @ B (+ beta * C), B given as [k, n] (trans_b = 0)
 * or [n, k] (trans_b = 1); plain single-threaded-or-threaded sgemm. */
void vp_nn_gemm(int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float beta, float *c, int64_t ldc);

/* LayerNorm over the last dimension n of m rows: y may equal x. */
void vp_nn_layer_norm(float *y, const float *x, int64_t m, int64_t n,
                      const float *gamma, const float *beta, float eps);

typedef enum vp_act {
    VP_ACT_GELU = 0,      /* exact: x * (1 + erf(x / sqrt 2)) / 2 ("gelu") */
    VP_ACT_GELU_TANH,     /* tanh approximation ("gelu_pytorch_tanh", "gelu_new") */
    VP_ACT_QUICK_GELU,    /* x * sigmoid(1.702 x) ("quick_gelu") */
    VP_ACT_RELU
} vp_act;
/* transformers' hidden_act name to vp_act; VP_ERR_UNSUPPORTED if unknown. */
int vp_nn_act_parse(const char *name, vp_act *out);
void vp_nn_act(float *x, size_t n, vp_act a);

/* y[i, j] = act(y[i, j] + bias[j]) over m rows of n (row stride ldy);
 * bias may be NULL: the pass after a product without bias. */
void vp_nn_bias_act(float *y, int64_t ldy, int64_t m, int64_t n, const float *bias, vp_act a);

/* y[i] += x[i] */
void vp_nn_add(float *y, const float *x, size_t n);
/* Softmax of each of m rows of n (in place). */
void vp_nn_softmax(float *x, int64_t m, int64_t n);
/* x[i] /= ||x row||_2 for each of m rows of n (F.normalize, eps 1e-12). */
void vp_nn_l2_normalize(float *x, int64_t m, int64_t n);

/*
 * Multi-head scaled dot-product attention.
 * q: [B, Lq] rows of stride ldq, head h in columns [h*dh, (h+1)*dh);
 * k, v: [B, Lk] rows of stride ldk / ldv; out: [B, Lq] rows of stride ldo.
 * scores = q k^T * scale, with key j > query i masked when causal;
 * softmax over keys (float32, max-subtracted), out = P v.
 * The (batch, head) pairs are shared among the calling thread's
 * vp_nn_threads() threads, each with its own [Lq, Lk] scores.
 * scratch: vp_nn_attention_scratch(B, Lq, Lk, H) floats, asked for with the
 * same vp_nn_threads() setting as the call (it grows with the threads).
 */
void vp_nn_attention(float *out, int64_t ldo,
                     const float *q, int64_t ldq, const float *k, int64_t ldk,
                     const float *v, int64_t ldv,
                     int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t dh,
                     float scale, int causal, float *scratch);
size_t vp_nn_attention_scratch(int64_t B, int64_t Lq, int64_t Lk, int64_t H);

/*
 * Non-overlapping patch embedding (Conv2d with kernel = stride = p, no
 * padding): pix [B, C, H, W] -> out [B, (H/p)*(W/p), D] (rows of stride
 * ldo), weight [D, C, p, p], bias [D] or NULL. Trailing pixels that do not
 * fill a patch are dropped, as Conv2d drops them.
 * scratch: vp_nn_patch_embed_scratch(C, H, W, p) floats.
 */
void vp_nn_patch_embed(float *out, int64_t ldo, const float *pix, int64_t B, int64_t C,
                       int64_t H, int64_t W, const float *weight, const float *bias,
                       int64_t p, int64_t D, float *scratch);
size_t vp_nn_patch_embed_scratch(int64_t C, int64_t H, int64_t W, int64_t p);

/*
 * Bicubic resize of a [C, h, w] grid to [C, oh, ow], as
 * torch.nn.functional.interpolate(mode="bicubic", align_corners=False)
 * with an explicit output size (A = -0.75, borders clamped).
 */
void vp_nn_resize_bicubic(float *out, const float *in, int64_t C, int64_t h, int64_t w,
                          int64_t oh, int64_t ow);

/* ---- convolutions (conv.c) ----------------------------------------------- */
/*
 * Conv2d of one image: in [C, H, W] -> out [O, OH, OW] with
 * OH = (H + 2 pad - kh) / stride + 1 (likewise OW), zero padding, weight
 * [O, C, kh, kw] (nn.Conv2d's layout), bias [O] or NULL (groups 1,
 * dilation 1). scratch: vp_nn_conv2d_scratch(...) floats.
 */
void vp_nn_conv2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                  const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                  int64_t stride, int64_t pad, float *scratch);
size_t vp_nn_conv2d_scratch(int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                            int64_t stride, int64_t pad);
/*
 * ConvTranspose2d of one image (padding 0, output_padding 0, groups 1,
 * dilation 1): in [C, H, W] -> out [O, (H-1) stride + kh, (W-1) stride + kw],
 * weight [C, O, kh, kw] (nn.ConvTranspose2d's layout), bias [O] or NULL.
 * Overlapping kernels (kh > stride) are summed as torch sums them.
 * scratch: vp_nn_conv_transpose2d_scratch(...) floats.
 */
void vp_nn_conv_transpose2d(float *out, const float *in, int64_t C, int64_t H, int64_t W,
                            const float *weight, const float *bias, int64_t O, int64_t kh, int64_t kw,
                            int64_t stride, float *scratch);
size_t vp_nn_conv_transpose2d_scratch(int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw);

#endif
