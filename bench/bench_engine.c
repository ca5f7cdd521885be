/*
 * The C side of bench/bench_engine.sh (not installed; built on demand as
 * the CMake target vp_bench_engine).
 *
 *   vp_bench_engine forward MODEL_DIR INPUTS.npz TOWER THREADS REPS
 *       open the model, run one untimed forward, then REPS timed ones;
 *       TOWER image passes only pixel_values, text only input_ids, both
 *       both. Prints "seconds BEST" (the best forward's wall time),
 *       "cpu_seconds BEST" (the least process CPU time of a forward: with
 *       one thread, the work without the time other processes took the
 *       core) and "blas INFO".
 *   vp_bench_engine sgemm THREADS REPS M N K [M N K ...]
 *       C[M, N] = A[M, K] W[N, K]^T through vp_nn_gemm (the engine's
 *       product, the BLAS it links) for each shape: prints
 *       "sgemm M N K seconds BEST gflops G" per shape.
 * Exit status 3 when the model is of a type or class vitport does not open
 * (VP_ERR_UNSUPPORTED), 4 when its run refuses the inputs given (e.g. one
 * tower alone), so the script can skip or fall back with a clear line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitport/vitport.h"
#include "nn/nn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *read_array(vp_source *s, const char *name, vp_dtype t, const vp_tensor **info)
{
    long i = vp_source_find(s, name);
    if (i < 0) return NULL;
    *info = vp_source_tensor(s, (size_t)i);
    size_t bytes = (*info)->numel * vp_dtype_size(t);
    void *d = malloc(bytes ? bytes : 1);
    if (!d || vp_source_read_as(s, (size_t)i, t, d, bytes)) {
        fprintf(stderr, "%s: %s\n", name, vp_source_errmsg(s));
        exit(1);
    }
    return d;
}

static int forward(int argc, char **argv)
{
    if (argc != 7) return 2;
    const char *dir = argv[2], *inputs = argv[3], *tower = argv[4];
    int threads = atoi(argv[5]), reps = atoi(argv[6]);
    vp_model *m = NULL;
    int rc = vp_model_open(&m, dir);
    if (rc) {
        fprintf(stderr, "%s\n", vp_model_errmsg(m));
        vp_model_close(m);
        return rc == VP_ERR_UNSUPPORTED ? 3 : 1;
    }
    vp_source *s = NULL;
    if (vp_source_open(&s, inputs, NULL)) { fprintf(stderr, "%s\n", vp_source_errmsg(s)); return 1; }
    vp_inputs in = {0};
    const vp_tensor *t;
    float *pix = NULL;
    int64_t *ids = NULL;
    if (strcmp(tower, "text") && (pix = read_array(s, "pixel_values", VP_F32, &t))) {
        in.pixel_values = pix; in.batch = t->shape[0]; in.height = t->shape[2]; in.width = t->shape[3];
    }
    if (strcmp(tower, "image") && (ids = read_array(s, "input_ids", VP_I64, &t))) {
        in.input_ids = ids; in.text_batch = t->shape[0]; in.text_len = t->shape[1];
    }
    vp_source_close(s);
    vp_ctx *c = NULL;
    if (vp_ctx_new(&c, m, threads)) { fprintf(stderr, "%s\n", vp_ctx_errmsg(c)); return 1; }
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now(), c0 = cpu();
        rc = vp_ctx_run(c, &in);
        double dt = now() - t0, dc = cpu() - c0;
        if (r && dc < best_cpu) best_cpu = dc;
        if (rc) {
            fprintf(stderr, "%s\n", vp_ctx_errmsg(c));
            return rc == VP_ERR_UNSUPPORTED || rc == VP_ERR_ARG ? 4 : 1;
        }
        if (r && dt < best) best = dt;
    }
    printf("seconds %.6f\ncpu_seconds %.6f\nblas %s\n", best, best_cpu, vp_nn_blas_info());
    vp_ctx_free(c);
    vp_model_close(m);
    free(pix);
    free(ids);
    return 0;
}

static int sgemm(int argc, char **argv)
{
    if (argc < 7 || (argc - 4) % 3) return 2;
    int threads = atoi(argv[2]), reps = atoi(argv[3]);
    vp_nn_set_threads(threads);
    for (int i = 4; i < argc; i += 3) {
        long M = atol(argv[i]), N = atol(argv[i + 1]), K = atol(argv[i + 2]);
        if (M <= 0 || N <= 0 || K <= 0) return 2;
        float *a = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)(N * K));
        float *c = malloc(sizeof(float) * (size_t)(M * N));
        if (!a || !w || !c) return 1;
        for (long j = 0; j < M * K; j++) a[j] = (float)(j % 17) * 0.01f - 0.08f;
        for (long j = 0; j < N * K; j++) w[j] = (float)(j % 13) * 0.01f - 0.06f;
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = now(), c0 = cpu();
            vp_nn_gemm(1, M, N, K, 1.0f, a, K, w, K, 0.0f, c, N);
            double dt = now() - t0, dc = cpu() - c0;
            if (r && dt < best) best = dt;
            if (r && dc < best_cpu) best_cpu = dc;
        }
        printf("sgemm %ld %ld %ld seconds %.6f gflops %.1f cpu_seconds %.6f\n", M, N, K, best,
               2.0 * M * N * K / best / 1e9, best_cpu);
        free(a); free(w); free(c);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "forward")) rc = forward(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "sgemm")) rc = sgemm(argc, argv);
    if (rc == 2) fprintf(stderr, "usage: vp_bench_engine forward MODEL_DIR INPUTS.npz image|text|both THREADS REPS\n"
                                 "       vp_bench_engine sgemm THREADS REPS M N K [M N K ...]\n");
    return rc;
}
