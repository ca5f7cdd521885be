/* The engine's model loader and forward pass (vp_model_open, vp_ctx_run)
 * on hostile model folders. The input is split at NUL bytes:
 *
 *   CONFIG \0 WEIGHTS            config.json and model.safetensors
 *   CONFIG \0 {INDEX} \0 WEIGHTS  config.json, model.safetensors.index.json
 *                                 and model-00001-of-00001.safetensors
 *   CONFIG                        config.json alone (no weight file)
 *
 * (the index form is chosen when the part after the first NUL starts with
 * '{'). Seeds: the engine fixtures' folders, concatenated (fuzz/run.sh).
 *
 * Invariants (abort = finding): a failed open says why on one non-empty
 * line and leaves a model no ctx can run; a model that opens and is small
 * runs on pixel_values / input_ids of the sizes it states and on an image
 * of another size, and every failure of a run is one line too; an input id
 * outside any vocabulary is refused. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vitport/vitport.h"

#define FZ_RUN_MAX_INPUT ((size_t)256 << 10)   /* run the forward pass only for inputs this small */
#define FZ_RUN_MAX_IMAGE 32
#define FZ_RUN_MAX_TEXT 16

static char g_dir[256];
static int g_verbose;           /* FZ_MODEL_VERBOSE=1: print each result (to study a seed) */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    if (g_dir[0]) nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    struct stat st;
    const char *tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/vp-fuzz-model-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    atexit(cleanup);
    g_verbose = getenv("FZ_MODEL_VERBOSE") != NULL;
    return 0;
}

static void put_file(const char *name, const uint8_t *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) abort();
    for (size_t done = 0; done < n;) {
        ssize_t k = write(fd, data + done, n - done);
        if (k <= 0) abort();
        done += (size_t)k;
    }
    close(fd);
}

static void drop_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    unlink(path);
}

static int one_line(const char *msg)
{
    return msg && msg[0] && !strchr(msg, '\n') && !strchr(msg, '\r');
}

/* Run once; a failure must say why on one line. */
static int run(vp_ctx *c, const vp_inputs *in)
{
    int rc = vp_ctx_run(c, in);
    if (g_verbose) fprintf(stderr, "run %lldx%lld, %lldx%lld ids: %s\n", (long long)in->batch, (long long)in->height,
                           (long long)in->text_batch, (long long)in->text_len, rc ? vp_ctx_errmsg(c) : "ok");
    if (rc != VP_OK && !one_line(vp_ctx_errmsg(c))) abort();
    if (rc != VP_OK && vp_ctx_output_count(c) != 0) abort();
    for (size_t i = 0; rc == VP_OK && i < vp_ctx_output_count(c); i++) {
        const vp_output *o = vp_ctx_output(c, i);
        if (!o || !o->name || !o->data || o->ndim < 0 || o->ndim > VP_MAX_DIMS) abort();
        size_t n = 1;
        for (int d = 0; d < o->ndim; d++) n *= (size_t)o->shape[d];
        if (n) { volatile float f = o->data[n - 1]; (void)f; }   /* the whole buffer is readable */
    }
    return rc;
}

static void exercise(vp_model *m)
{
    int want = vp_model_inputs(m);
    int64_t S = vp_model_image_size(m), T = vp_model_max_text_len(m);
    if ((want & VP_INPUT_PIXELS) && (S < 1 || S > FZ_RUN_MAX_IMAGE)) return;
    if ((want & VP_INPUT_IDS) && T < 1) return;
    if (T > FZ_RUN_MAX_TEXT) T = FZ_RUN_MAX_TEXT;
    vp_ctx *c = NULL;
    if (vp_ctx_new(&c, m, 1) != VP_OK) abort();   /* an opened model always gets a ctx */

    int64_t H2 = S + 3, W2 = S > 1 ? S - 1 : 1;    /* another size: interpolation, dropped pixels */
    size_t npix = (size_t)(2 * 3 * H2 * (S > W2 ? S : W2));
    float *pix = calloc(npix + 1, sizeof *pix);
    int64_t *ids = calloc((size_t)(2 * (T > 0 ? T : 1)), sizeof *ids);
    if (!pix || !ids) abort();
    for (size_t i = 0; i < npix; i++) pix[i] = (float)((int)(i % 17) - 8) / 8.0f;

    vp_inputs in = {0};
    if (want & VP_INPUT_PIXELS) { in.pixel_values = pix; in.batch = 2; in.height = S; in.width = S; }
    if (want & VP_INPUT_IDS) { in.input_ids = ids; in.text_batch = 2; in.text_len = T; }
    (void)run(c, &in);
    if (want & VP_INPUT_PIXELS) {
        vp_inputs b = in;
        b.batch = 1; b.height = H2; b.width = W2; b.interpolate_pos_encoding = 1;
        (void)run(c, &b);
    }
    if (want & VP_INPUT_IDS) {
        vp_inputs b = in;
        ids[0] = (int64_t)1 << 40;                  /* in no vocabulary */
        if (run(c, &b) == VP_OK) abort();
        ids[0] = 0;
    }
    free(pix);
    free(ids);
    vp_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "config.json", "model.safetensors", "model.safetensors.index.json",
                                         "model-00001-of-00001.safetensors" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) drop_file(names[i]);
    const uint8_t *nul = memchr(data, 0, size);
    size_t clen = nul ? (size_t)(nul - data) : size;
    put_file("config.json", data, clen);
    if (nul) {
        const uint8_t *rest = nul + 1;
        size_t rlen = size - clen - 1;
        const uint8_t *nul2 = rlen && rest[0] == '{' ? memchr(rest, 0, rlen) : NULL;
        if (nul2) {
            put_file("model.safetensors.index.json", rest, (size_t)(nul2 - rest));
            put_file("model-00001-of-00001.safetensors", nul2 + 1, rlen - (size_t)(nul2 - rest) - 1);
        } else {
            put_file("model.safetensors", rest, rlen);
        }
    }

    vp_model *m = NULL;
    int rc = vp_model_open(&m, g_dir);
    if (!m) return 0;                               /* out of memory */
    if (g_verbose) fprintf(stderr, "open: %s\n", rc ? vp_model_errmsg(m) : vp_model_class(m));
    if (rc != VP_OK) {
        if (!one_line(vp_model_errmsg(m))) abort();
        vp_ctx *c = NULL;
        vp_inputs in = {0};
        if (vp_ctx_new(&c, m, 1) == VP_OK) abort(); /* a failed model cannot be run */
        if (vp_ctx_run(c, &in) == VP_OK) abort();
        vp_ctx_free(c);
    } else {
        (void)vp_model_type(m);
        (void)vp_model_class(m);
        if (size <= FZ_RUN_MAX_INPUT) exercise(m);
    }
    vp_model_close(m);
    return 0;
}
