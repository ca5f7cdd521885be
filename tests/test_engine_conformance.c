/*
 * The engine against reference outputs computed elsewhere, for every case
 * there is (none is named here):
 *  - every conformance case ($VP_CONFORMANCE/<case>/): reference/ run on
 *    inputs.npz must give expected.npz within case.json's
 *    tolerances.output_max_abs; a case whose model_type the engine does not
 *    run yet is reported with a SKIP line;
 *  - every engine fixture (tests/fixtures/engine/<case>/, written by
 *    gen_engine_clip.py and its siblings with transformers): the folder run
 *    on its inputs.npz must give expected.npz within
 *    tolerances.output_max_abs, and expected_native.npz (transformers in the
 *    checkpoint's own f16 / bf16) within tolerances.native_max_abs. These
 *    must never skip.
 * Each case runs through the API and through `vitport run` ($VP_BIN, its
 * out.npz held to expected.npz likewise). Every array of the expected file
 * must be among the outputs, with its shape. The largest difference per
 * output is printed.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "vitport/vitport.h"

/* snprintf into a path buffer; a path that does not fit ends the test (2). */
#define PATHF(buf, ...) do { int _n = snprintf(buf, sizeof buf, __VA_ARGS__); \
    if (_n < 0 || (size_t)_n >= sizeof buf) { fprintf(stderr, "path too long\n"); exit(2); } } while (0)

static char tmpdir[4096];

typedef struct arr { void *data; int ndim; int64_t shape[VP_MAX_DIMS]; } arr;

/* Array `name` of an .npz as dtype; 0 when absent, -1 on a read failure. */
static int load(const char *path, const char *name, vp_dtype dtype, arr *a)
{
    memset(a, 0, sizeof *a);
    vp_source *s = NULL;
    if (vp_source_open(&s, path, NULL)) { vp_source_close(s); return -1; }
    long i = vp_source_find(s, name);
    int rc = 0;
    if (i >= 0) {
        const vp_tensor *t = vp_source_tensor(s, (size_t)i);
        size_t bytes = (size_t)t->numel * vp_dtype_size(dtype);
        a->data = malloc(bytes ? bytes : 1);
        a->ndim = t->ndim;
        memcpy(a->shape, t->shape, sizeof a->shape);
        rc = a->data && !vp_source_read_as(s, (size_t)i, dtype, a->data, bytes) ? 1 : -1;
    }
    vp_source_close(s);
    return rc;
}

/* Where the outputs come from: the API's ctx, or the .npz `vitport run`
 * wrote (arrays read on demand into `buf`). */
typedef struct outs { const vp_ctx *c; vp_source *npz; float *buf; vp_output o; } outs;

static const vp_output *out_named(outs *u, const char *name)
{
    if (u->c) return vp_ctx_output_named(u->c, name);
    long i = vp_source_find(u->npz, name);
    if (i < 0) return NULL;
    const vp_tensor *t = vp_source_tensor(u->npz, (size_t)i);
    free(u->buf);
    u->buf = malloc((size_t)t->numel * sizeof *u->buf + 1);
    if (!u->buf || vp_source_read_as(u->npz, (size_t)i, VP_F32, u->buf, (size_t)t->numel * sizeof *u->buf)) return NULL;
    u->o = (vp_output){ .name = t->name, .ndim = t->ndim, .data = u->buf };
    memcpy(u->o.shape, t->shape, sizeof u->o.shape);
    return &u->o;
}

/* Compare every array of expected (an .npz) with the outputs. */
static void compare(const char *label, outs *u, const char *expected, double tol, const char *what)
{
    vp_source *s = NULL;
    int rc = vp_source_open(&s, expected, NULL);
    CHECKF(!rc, "%s: cannot read %s: %s", label, expected, s ? vp_source_errmsg(s) : "?");
    if (rc) { vp_source_close(s); return; }
    size_t n = vp_source_count(s);
    CHECKF(n > 0, "%s: %s holds no arrays", label, expected);
    for (size_t i = 0; i < n; i++) {
        const vp_tensor *t = vp_source_tensor(s, i);
        const vp_output *o = out_named(u, t->name);
        CHECKF(o != NULL, "%s: no output named %s", label, t->name);
        if (!o) continue;
        int same = o->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = o->shape[d] == t->shape[d];
        CHECKF(same, "%s: output %s has another shape than %s's", label, t->name, expected);
        if (!same) continue;
        float *e = malloc((size_t)t->numel * sizeof *e + 1);
        CHECK(e && !vp_source_read_as(s, i, VP_F32, e, (size_t)t->numel * sizeof *e));
        double mx = 0;
        for (int64_t j = 0; e && j < (int64_t)t->numel; j++) {
            double d = fabs((double)o->data[j] - (double)e[j]);
            if (!(d <= mx)) mx = d;            /* NaN sticks */
        }
        printf("  %s %-32s max abs %.3g (%s, tolerance %.3g)\n", label, t->name, mx, what, tol);
        CHECKF(mx <= tol, "%s: %s differs from %s by %.3g > %.3g", label, t->name, what, mx, tol);
        free(e);
    }
    vp_source_close(s);
}

/* tolerances.KEY as the conformance cases write it; the ViT/SigLIP engine
 * fixtures (gen_engine_vit_siglip.py) write the same two figures flat, as
 * "tolerance" and "native_tolerance". */
static double tolerance(const cJSON *cj, const char *key)
{
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cj, "tolerances");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tol, key);
    if (!v) v = cJSON_GetObjectItemCaseSensitive(cj, !strcmp(key, "output_max_abs") ? "tolerance" : "native_tolerance");
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The same case through `vitport run` ($VP_BIN), its out.npz against
 * expected.npz. */
static void run_cli(const char *label, const char *model_dir, const char *case_dir, int interp, double tol)
{
    const char *bin = tu_env("VP_BIN", NULL);
    if (!bin) { printf("  %s: VP_BIN unset, vitport run not checked\n", label); return; }
    char cmd[16384], out[4096], exp[4096];
    PATHF(out, "%s/out.npz", tmpdir);
    PATHF(cmd, "'%s' run '%s' --inputs '%s/inputs.npz' --out '%s' --threads 2 --quiet%s", bin, model_dir, case_dir,
          out, interp ? " --interpolate-pos-encoding" : "");
    int st = system(cmd);
    CHECKF(st == 0, "%s: `%s` exited with %d", label, cmd, st);
    if (st) return;
    outs u = {0};
    int rc = vp_source_open(&u.npz, out, NULL);
    CHECKF(!rc, "%s: vitport run's %s: %s", label, out, u.npz ? vp_source_errmsg(u.npz) : "?");
    PATHF(exp, "%s/expected.npz", case_dir);
    if (!rc) compare(label, &u, exp, tol, "expected.npz, vitport run");
    vp_source_close(u.npz);
    free(u.buf);
    remove(out);
}

/* Run one case; returns 0 ran, 1 skipped. */
static int run_case(const char *label, const char *model_dir, const char *case_dir, int may_skip)
{
    char path[4096], exp[4096];
    PATHF(path, "%s/case.json", case_dir);
    cJSON *cj = tu_load_json(path);
    CHECKF(cj != NULL, "%s: cannot read %s", label, path);
    if (!cj) return 0;
    double tol = tolerance(cj, "output_max_abs");
    CHECKF(tol > 0, "%s: case.json has no tolerances.output_max_abs", label);
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(cj, "interpolate_pos_encoding");

    vp_model *m = NULL;
    int rc = vp_model_open(&m, model_dir);
    if (rc == VP_ERR_UNSUPPORTED && may_skip && tu_has(vp_model_errmsg(m), "is not one vitport runs")) {
        printf("SKIP %s: %s\n", label, vp_model_errmsg(m));
        vp_model_close(m);
        cJSON_Delete(cj);
        return 1;
    }
    CHECKF(!rc, "%s: %s", label, vp_model_errmsg(m));
    if (rc) { vp_model_close(m); cJSON_Delete(cj); return 0; }

    PATHF(path, "%s/inputs.npz", case_dir);
    arr pix, ids;
    int hp = (vp_model_inputs(m) & VP_INPUT_PIXELS) ? load(path, "pixel_values", VP_F32, &pix) : (memset(&pix, 0, sizeof pix), 0);
    int hi = (vp_model_inputs(m) & VP_INPUT_IDS) ? load(path, "input_ids", VP_I64, &ids) : (memset(&ids, 0, sizeof ids), 0);
    CHECKF(hp >= 0 && hi >= 0, "%s: cannot read %s", label, path);
    CHECKF(!(vp_model_inputs(m) & VP_INPUT_PIXELS) || (hp == 1 && pix.ndim == 4), "%s: no pixel_values [B, C, H, W]", label);
    CHECKF(!(vp_model_inputs(m) & VP_INPUT_IDS) || (hi == 1 && ids.ndim == 2), "%s: no input_ids [B, L]", label);

    vp_inputs in = {0};
    if (hp == 1 && pix.ndim == 4) {
        in.pixel_values = pix.data; in.batch = pix.shape[0]; in.height = pix.shape[2]; in.width = pix.shape[3];
    }
    if (hi == 1 && ids.ndim == 2) { in.input_ids = ids.data; in.text_batch = ids.shape[0]; in.text_len = ids.shape[1]; }
    in.interpolate_pos_encoding = cJSON_IsTrue(ip);

    vp_ctx *c = NULL;
    rc = vp_ctx_new(&c, m, 2);
    if (!rc) rc = vp_ctx_run(c, &in);
    CHECKF(!rc, "%s: run failed: %s", label, vp_ctx_errmsg(c));
    if (!rc) {
        printf("%s: %s\n", label, vp_model_class(m));
        outs u = { .c = c };
        PATHF(exp, "%s/expected.npz", case_dir);
        compare(label, &u, exp, tol, "expected.npz");
        PATHF(exp, "%s/expected_native.npz", case_dir);
        if (tu_exists(exp)) {
            double nt = tolerance(cj, "native_max_abs");
            CHECKF(nt > 0, "%s: expected_native.npz without tolerances.native_max_abs", label);
            compare(label, &u, exp, nt, "expected_native.npz");
        }
        run_cli(label, model_dir, case_dir, cJSON_IsTrue(ip), tol);
    }
    vp_ctx_free(c);
    vp_model_close(m);
    free(pix.data);
    free(ids.data);
    cJSON_Delete(cj);
    return 0;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    char md[4096], cd[4096];
    int ran = 0, skipped = 0;
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_engine_conf");

    tu_cases cases;
    if (tu_cases_open(&cases) == 0) {
        for (size_t i = 0; i < cases.n; i++) {
            PATHF(cd, "%s/%s", cases.root, cases.name[i]);
            PATHF(md, "%s/reference", cd);
            if (run_case(cases.name[i], md, cd, 1)) skipped++;
            else ran++;
        }
        tu_cases_free(&cases);
    } else {
        printf("SKIP conformance: VP_CONFORMANCE is not set or not readable\n");
    }

    /* The engine fixtures: every sub-folder of fixtures/engine with a case.json. */
    char root[4096];
    PATHF(root, "%s/engine", tu_fixtures_dir());
    DIR *d = opendir(root);
    CHECKF(d != NULL, "cannot list %s", root);
    char *names[256];
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n < 256;) {
        if (e->d_name[0] == '.') continue;
        PATHF(cd, "%s/%s/case.json", root, e->d_name);
        if (tu_exists(cd)) names[n++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    CHECKF(n >= 10, "only %zu engine fixtures in %s", n, root);
    for (size_t i = 0; i < n; i++) {
        PATHF(cd, "%s/%s", root, names[i]);
        run_case(names[i], cd, cd, 0);
        ran++;
        free(names[i]);
    }
    printf("%d cases run, %d skipped\n", ran, skipped);
    tu_rmtree(tmpdir);
    TEST_MAIN_END();
}
