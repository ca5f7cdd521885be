/*
 * What the op kernels share (internal to src/nn): how a kernel gets
 * compiled for several x86-64 levels and picked at run time, a
 * vectorisable exp, and the work split between threads.
 *
 * Portability: the library is built for baseline x86-64 (or whatever the
 * compiler targets); the hot row kernels carry VP_NN_CLONES, which makes
 * GCC/Clang emit an AVX-512 (x86-64-v4), an AVX2+FMA (x86-64-v3) and a
 * baseline copy and resolve the best one for the CPU at load time (an
 * ifunc). The loops are written so that `#pragma omp simd` vectorises them
 * (no calls to libm inside them, no branches).
 */
#ifndef VP_NN_SIMD_H
#define VP_NN_SIMD_H

#include <stdint.h>
#include <string.h>

/* GCC only: Clang 14 emits no resolver for a clone defined in one file and
 * called from another (an undefined symbol at link time), so Clang builds
 * (the fuzz targets) compile the baseline kernels alone. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(VP_NN_NO_CLONES)
#define VP_NN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VP_NN_CLONES
#endif

#define VP_NN_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
/* Clang warns (-Wpass-failed) wherever it cannot honour the pragma; its
 * auto-vectoriser still runs on these loops without it. */
#define VP_SIMD
#define VP_SIMD_SUM(v)
#define VP_SIMD_MAX(v)
#else
#define VP_SIMD VP_NN_PRAGMA(omp simd)
#define VP_SIMD_SUM(v) VP_NN_PRAGMA(omp simd reduction(+ : v))
#define VP_SIMD_MAX(v) VP_NN_PRAGMA(omp simd reduction(max : v))
#endif

static inline float vp__bits_f(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t vp__f_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/*
 * e^x in float, within 2 ulp over [-87.3, 88.7]: x = n ln2 + r with
 * |r| <= ln2/2 (n by the round-to-nearest of adding 1.5 * 2^23), e^r by
 * Cephes' degree-6 minimax polynomial, 2^n built in the exponent bits.
 * Below -87.3 it returns 0, above 88.37 it returns e^88.37 (no caller
 * needs more: softmax feeds it values <= 0, and the activations only
 * divide by 1 + e^x, where that is as good as infinity).
 */
static inline float vp__expf(float x)
{
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    const float shift = 12582912.0f;                  /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f + shift;
    float n = t - shift;                              /* round(x / ln2) */
    int32_t ni = (int32_t)(vp__f_bits(t) - vp__f_bits(shift));
    float r = x - n * 0.693359375f;                   /* ln2, split in two */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* n in [-126, 128]: split 2^n in two factors so 2^128 and 2^-126 stay
     * representable (the clamped ends of the range) */
    int32_t n1 = ni >> 1, n2 = ni - n1;
    float s1 = vp__bits_f((uint32_t)(n1 + 127) << 23), s2 = vp__bits_f((uint32_t)(n2 + 127) << 23);
    float y = p * s1 * s2;
    return x <= -87.33654f ? 0.0f : y;
}

/* Rows [lo, hi) of m for thread t of nt, in contiguous blocks. */
static inline void vp__split(int64_t m, int nt, int t, int64_t *lo, int64_t *hi)
{
    int64_t q = m / nt, r = m % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

/* The calling thread's block of m rows inside a parallel region (by the
 * team's actual size, which may be smaller than asked for). */
#ifdef _OPENMP
#include <omp.h>
static inline void vp__my_rows(int64_t m, int64_t *lo, int64_t *hi)
{
    vp__split(m, omp_get_num_threads(), omp_get_thread_num(), lo, hi);
}
static inline int vp__thread_id(void) { return omp_get_thread_num(); }
#else
static inline void vp__my_rows(int64_t m, int64_t *lo, int64_t *hi) { *lo = 0; *hi = m; }
static inline int vp__thread_id(void) { return 0; }
#endif

/* Softmax of row r[0, n) in place, zeroing r[n, total) (a causal row's
 * masked tail). */
void vp__softmax_row(float *r, int64_t n, int64_t total);

/* gemm.c: whether a product called inside one of our parallel regions
 * runs on its calling thread (OpenBLAS's OpenMP or sequential build), and
 * the BLAS's own thread count. */
int vp__nn_blas_nests(void);
void vp__nn_blas_set_threads(int n);

#endif
