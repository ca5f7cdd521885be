/*
 * Matrix products: the one place the engine multiplies matrices.
 *
 * f32 goes to OpenBLAS's sgemm. The build links OpenBLAS's OpenMP variant
 * when Debian's libopenblas-openmp-dev is installed (CMakeLists.txt): then
 * the BLAS and the other ops share one OpenMP thread pool (no second pool
 * spinning against the first on the same cores), a product called inside
 * one of our parallel regions runs on its calling thread (OpenBLAS checks
 * omp_in_parallel), and vp_nn_gemm_serial costs nothing extra. With the
 * pthreads variant everything still works, but the attention heads run one
 * after the other with threaded products (vp__nn_blas_nests() says 0).
 *
 * Where other weight types go: vp_nn_linear is the only entry point the
 * model code uses for weights, and it dispatches on w->dtype. A bf16 path
 * (AVX512-BF16: vdpbf16ps on weights packed once at load into the
 * kernel's panel layout, activations rounded to bf16 per row panel) and an
 * int8 path (VNNI: vpdpbusd on per-row-scaled int8 weights with
 * activations quantised per row, an s32 -> f32 epilogue applying the
 * scales, the bias and beta) slot in as further cases of the switch below,
 * each with a runtime CPU check (__builtin_cpu_supports) and this f32 path
 * as the fallback; the vp_nn_w descriptor then carries the packed data and
 * scales. Nothing above this file changes: the encoder, the heads and the
 * families pass vp_nn_w values they got from the loader.
 */
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "nn/nn.h"
#include "nn/simd.h"

void vp_nn_gemm(int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb,
                beta, c, (blasint)ldc);
}

int vp__nn_blas_nests(void)
{
    /* 0 sequential build, 1 pthreads, 2 OpenMP */
    return openblas_get_parallel() != 1;
}

void vp__nn_blas_set_threads(int n)
{
    static _Atomic int current;
    if (current != n) {
        openblas_set_num_threads(n);
        current = n;
    }
}

const char *vp_nn_blas_info(void)
{
    static char buf[160];
    int par = openblas_get_parallel();
    snprintf(buf, sizeof buf, "OpenBLAS (%s, %s kernels)",
             par == 2 ? "OpenMP" : par == 1 ? "pthreads" : "sequential", openblas_get_corename());
    return buf;
}

void vp_nn_linear(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t m,
                  const vp_nn_w *w, const float *bias, int accumulate)
{
    int64_t n = w->n;
    float beta = accumulate ? 1.0f : 0.0f;
    if (m <= 0 || n <= 0) return;
    if (bias) {
        /* y = bias (or y += bias), then the product adds onto it: one pass
         * over y, no separate bias pass after the product. */
        int nt = m * n >= (1 << 16) ? vp_nn_threads() : 1;
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int64_t lo, hi;
            vp__my_rows(m, &lo, &hi);
            for (int64_t i = lo; i < hi; i++) {
                float *row = y + i * ldy;
                if (accumulate) { VP_SIMD for (int64_t j = 0; j < n; j++) row[j] += bias[j]; }
                else memcpy(row, bias, (size_t)n * sizeof *row);
            }
        }
        beta = 1.0f;
    }
    switch (w->dtype) {
    case VP_F32:
    default:
        /* the loader hands out f32 only today (f16 / bf16 are widened once
         * at load, see src/models/model.c) */
        vp_nn_gemm(1, m, n, w->k, 1.0f, x, ldx, (const float *)w->data, w->ld, beta, y, ldy);
        break;
    }
}
