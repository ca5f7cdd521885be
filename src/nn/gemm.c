/*
 * Matrix products. f32 goes to the BLAS (OpenBLAS from Debian); the
 * vp_nn_w descriptor is where a bf16 / int8 path would dispatch.
 */
#include <cblas.h>

#include "nn/nn.h"

void vp_nn_gemm(int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb,
                beta, c, (blasint)ldc);
}

void vp_nn_linear(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t m,
                  const vp_nn_w *w, const float *bias, int accumulate)
{
    int64_t n = w->n;
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias) {
        for (int64_t i = 0; i < m; i++) {
            float *row = y + i * ldy;
            if (accumulate) for (int64_t j = 0; j < n; j++) row[j] += bias[j];
            else for (int64_t j = 0; j < n; j++) row[j] = bias[j];
        }
        beta = 1.0f;
    }
    vp_nn_gemm(1, m, n, w->k, 1.0f, x, ldx, (const float *)w->data, w->ld, beta, y, ldy);
}
