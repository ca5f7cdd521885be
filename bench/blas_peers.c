/*
 * sgemm at a transformer encoder's shapes, for bench/bench_blas.sh, which
 * compiles this file once per BLAS (OpenBLAS pthreads / OpenMP, BLIS
 * OpenMP: their cblas_sgemm; oneDNN: dnnl_sgemm with -DUSE_DNNL).
 *
 *   blas_peers REPS M N K [M N K ...]
 * C[M, N] = A[M, K] W[N, K]^T (nn.Linear's layout, as the engine calls it),
 * row-major; per shape the best wall time and the least process CPU time of
 * REPS runs after one untimed run: "M N K gflops G cpu_gflops C".
 * The thread count comes from the library's own environment variable
 * (OPENBLAS_NUM_THREADS, BLIS_NUM_THREADS, OMP_NUM_THREADS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef USE_DNNL
#include <dnnl.h>
#else
#include <cblas.h>
#endif

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void gemm(long M, long N, long K, const float *a, const float *w, float *c)
{
#ifdef USE_DNNL
    dnnl_sgemm('N', 'T', M, N, K, 1.0f, a, K, w, K, 0.0f, c, N);
#else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a, (int)K, w, (int)K,
                0.0f, c, (int)N);
#endif
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 2) % 3) {
        fprintf(stderr, "usage: blas_peers REPS M N K [M N K ...]\n");
        return 2;
    }
    int reps = atoi(argv[1]);
    for (int i = 2; i < argc; i += 3) {
        long M = atol(argv[i]), N = atol(argv[i + 1]), K = atol(argv[i + 2]);
        float *a = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)(N * K));
        float *c = malloc(sizeof(float) * (size_t)(M * N));
        if (!a || !w || !c || M <= 0 || N <= 0 || K <= 0) return 1;
        for (long j = 0; j < M * K; j++) a[j] = (float)(j % 17) * 0.01f - 0.08f;
        for (long j = 0; j < N * K; j++) w[j] = (float)(j % 13) * 0.01f - 0.06f;
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            gemm(M, N, K, a, w, c);
            double dt = clock_s(CLOCK_MONOTONIC) - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            if (r && dt < best) best = dt;
            if (r && dc < best_cpu) best_cpu = dc;
        }
        double f = 2.0 * M * N * K / 1e9;
        printf("%ld %ld %ld gflops %.1f cpu_gflops %.1f\n", M, N, K, f / best, f / best_cpu);
        free(a); free(w); free(c);
    }
    return 0;
}
