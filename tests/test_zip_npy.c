/*
 * The ZIP reader and the NumPy .npy/.npz readers.
 *
 * Inputs are built here, byte by byte, following the formats' definitions
 * (PKWARE APPNOTE, numpy.lib.format) with the tests' zip writer (stored,
 * deflated via zlib, ZIP64, torch-style 64-byte alignment) and npy writer
 * in tests/util/testutil.c. Then real
 * files made by numpy are checked against what numpy reported for them:
 * tests/fixtures/{npy,npz}_* against fixtures/manifest.json and the
 * conformance .npz checkpoints against their manifest.json.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "format/zip.h"
#include "test.h"
#include "test_bytes.h"
#include "test_util.h"

/* ---- temporary files ------------------------------------------------------ */

static char g_dir[512];

/* Write bytes to g_dir/name; returns the path (static buffer, reused). */
static const char *write_tmp(const char *name, const void *data, size_t n)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    tu_write_file(path, data, n);
    return path;
}

/* A fresh temporary file made with mkstemp (for the many truncation cases). */
static const char *write_mkstemp(const void *data, size_t n)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/trunc_XXXXXX", g_dir);
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    if (n && write(fd, data, n) != (ssize_t)n) { perror("write"); exit(2); }
    close(fd);
    return path;
}

/* ---- helpers ------------------------------------------------------------------------ */

static int open_bytes(const char *name, const bytes *b, vp_source **s)
{
    return vp_source_open(s, write_tmp(name, b->p, b->n), NULL);
}

/* Opening must fail with `code` and a one-line message containing `needle`. */
#define EXPECT_FAIL(b, code, needle) expect_fail(__LINE__, (b), (code), (needle))
static void expect_fail(int line, const bytes *b, int code, const char *needle)
{
    vp_source *s;
    int rc = open_bytes("bad.bin", b, &s);
    const char *m = vp_source_errmsg(s);
    CHECKF(rc == code, "line %d: rc %d (%s), expected %d", line, rc, m, code);
    CHECKF(tu_one_line(m) && strstr(m, needle), "line %d: message \"%s\" lacks \"%s\"", line, m, needle);
    vp_source_close(s);
}

/* Tensor i's values as float64. */
static double *values(vp_source *s, size_t i)
{
    const vp_tensor *t = vp_source_tensor(s, i);
    double *v = malloc((t ? t->numel : 0) * sizeof *v + 8);
    int rc = t ? vp_source_read_as(s, i, VP_F64, v, (size_t)t->numel * sizeof *v) : VP_ERR_ARG;
    CHECKF(rc == VP_OK, "read %zu: %s", i, vp_source_errmsg(s));
    return v;
}

static bool same_values(const double *v, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++) if (v[i] != want[i]) return false;
    return true;
}

/* A raw vp_source on a file with just the zip parsed (torch-style archives
 * would otherwise be handed to the torch reader). Close with vp_source_close. */
static vp_source *raw_zip(const bytes *b, int *rc)
{
    const char *path = write_tmp("raw.zip", b->p, b->n);
    vp_source *s = NULL;
    *rc = vp__source_new(&s, path);
    /* the zip format's free() releases the directory at vp_source_close */
    for (const vp_format *const *f = vp__formats; s && *f; f++)
        if (!strcmp((*f)->name, "zip")) s->reader = *f;
    if (!*rc) *rc = vp__zip_open(s);
    return s;
}

/* ---- .npy ---------------------------------------------------------------------------- */

static void test_npy_basic(void)
{
    float f[12];
    for (int i = 0; i < 12; i++) f[i] = (float)i * 0.5f - 1.0f;
    bytes b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", f, sizeof f);
    CHECK_EQ_INT(b.n % 64, 48 % 64);       /* header padded to 128 bytes, then 48 data bytes */
    vp_source *s;
    int rc = vp_source_open(&s, write_tmp("weights.npy", b.p, b.n), NULL);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(s));
    CHECK_STR(vp_source_format(s), "npy");
    CHECK_EQ_INT(vp_source_count(s), 1);
    const vp_tensor *t = vp_source_tensor(s, 0);
    if (t) {
        CHECK_STR(t->name, "weights");
        CHECK_EQ_INT(t->dtype, VP_F32);
        CHECK_EQ_INT(t->ndim, 2);
        CHECK_EQ_INT(t->shape[0], 3);
        CHECK_EQ_INT(t->shape[1], 4);
        CHECK_EQ_INT(t->nbytes, 48);
        const void *p = vp_source_data(s, 0);
        CHECK(p && !memcmp(p, f, sizeof f));
        uint64_t off = 0;
        CHECK(vp_source_file_range(s, 0, &off) == VP_OK && off == 128);
    }
    vp_source_close(s);
    free(b.p);
}

/* Every supported descr, with each spelling of little/native byte order. */
static void test_npy_dtypes(void)
{
    static const struct { const char *descr; vp_dtype t; uint8_t bytes[16]; double want[2]; } C[] = {
        {"<f8", VP_F64, {0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0, 0, 0, 0, 0, 0, 0x04, 0xC0}, {1.5, -2.5}},
        {"<f4", VP_F32, {0, 0, 0xC0, 0x3F, 0, 0, 0x20, 0xC0}, {1.5, -2.5}},
        {"<f2", VP_F16, {0x00, 0x3E, 0x00, 0xC1}, {1.5, -2.5}},
        {"=f2", VP_F16, {0x00, 0x3C, 0x00, 0x38}, {1.0, 0.5}},
        {"<i8", VP_I64, {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01, 0, 0, 0}, {-2.0, 4294967296.0}},
        {"<i4", VP_I32, {0xFF, 0xFF, 0xFF, 0xFF, 0x10, 0x27, 0, 0}, {-1.0, 10000.0}},
        {"=i4", VP_I32, {0x02, 0, 0, 0, 0x03, 0, 0, 0}, {2.0, 3.0}},
        {"<i2", VP_I16, {0x00, 0x80, 0xFF, 0x7F}, {-32768.0, 32767.0}},
        {"|i1", VP_I8, {0x80, 0x7F}, {-128.0, 127.0}},
        {"|u1", VP_U8, {0xFF, 0x07}, {255.0, 7.0}},
        {"|b1", VP_BOOL, {0x01, 0x00}, {1.0, 0.0}},
        {"<u1", VP_U8, {0x01, 0x02}, {1.0, 2.0}},
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", C[k].descr);
        size_t es = vp_dtype_size(C[k].t);
        bytes b = make_npy(1, dict, C[k].bytes, 2 * es);
        vp_source *s;
        int rc = open_bytes("d.npy", &b, &s);
        CHECKF(rc == VP_OK, "%s: %s", C[k].descr, vp_source_errmsg(s));
        const vp_tensor *t = vp_source_tensor(s, 0);
        CHECKF(t && t->dtype == C[k].t && t->ndim == 1 && t->shape[0] == 2, "descr %s", C[k].descr);
        if (t) {
            double *v = values(s, 0);
            CHECKF(same_values(v, C[k].want, 2), "%s: %g %g", C[k].descr, v[0], v[1]);
            free(v);
        }
        vp_source_close(s);
        free(b.p);
    }
}

/* '>' data: values, not bytes, come out; the reader swaps into memory. */
static void test_npy_big_endian(void)
{
    static const struct { const char *descr; vp_dtype t; uint8_t bytes[16]; double want[2]; } C[] = {
        {">f4", VP_F32, {0x3F, 0xC0, 0, 0, 0xC0, 0x20, 0, 0}, {1.5, -2.5}},
        {">f8", VP_F64, {0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0xC0, 0x04, 0, 0, 0, 0, 0, 0}, {1.5, -2.5}},
        {">f2", VP_F16, {0x3E, 0x00, 0xC1, 0x00}, {1.5, -2.5}},
        {">i8", VP_I64, {0, 0, 0, 0x01, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD}, {4294967296.0, -3.0}},
        {">i4", VP_I32, {0, 0, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFE}, {256.0, -2.0}},
        {">i2", VP_I16, {0x01, 0x02, 0x80, 0x00}, {258.0, -32768.0}},
        {">i1", VP_I8, {0xFF, 0x05}, {-1.0, 5.0}},
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", C[k].descr);
        bytes b = make_npy(1, dict, C[k].bytes, 2 * vp_dtype_size(C[k].t));
        vp_source *s;
        int rc = open_bytes("be.npy", &b, &s);
        CHECKF(rc == VP_OK, "%s: %s", C[k].descr, vp_source_errmsg(s));
        const vp_tensor *t = vp_source_tensor(s, 0);
        CHECKF(t && t->dtype == C[k].t, "descr %s", C[k].descr);
        if (t) {
            double *v = values(s, 0);
            CHECKF(same_values(v, C[k].want, 2), "%s: %g %g", C[k].descr, v[0], v[1]);
            free(v);
            CHECK(vp_source_data(s, 0) != NULL);   /* a swapped copy, contiguous */
        }
        vp_source_close(s);
        free(b.p);
    }
}

/* fortran_order True: the first index varies fastest in the file; the
 * source reads it back in C order. */
static void test_npy_fortran(void)
{
    double fdata[24], want[24];
    /* value of element (i, j, k) of a (2, 3, 4) array is 100i + 10j + k */
    int n = 0;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++) fdata[n++] = 100 * i + 10 * j + k;
    n = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[n++] = 100 * i + 10 * j + k;
    bytes b = make_npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }", fdata, sizeof fdata);
    vp_source *s;
    int rc = open_bytes("f.npy", &b, &s);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(s));
    const vp_tensor *t = vp_source_tensor(s, 0);
    if (t) {
        CHECK(t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 4);
        CHECK(t->strides[0] == 1 && t->strides[1] == 2 && t->strides[2] == 6);
        double *v = values(s, 0);
        CHECK(same_values(v, want, 24));
        free(v);
        CHECK(vp_source_data(s, 0) == NULL);   /* not C-contiguous */
    }
    vp_source_close(s);
    free(b.p);

    /* big-endian and Fortran together: int16 (2, 2) = [[1, 2], [3, 4]] */
    uint8_t be[8] = {0, 1, 0, 3, 0, 2, 0, 4};
    double w2[4] = {1, 2, 3, 4};
    b = make_npy(1, "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }", be, sizeof be);
    rc = open_bytes("fb.npy", &b, &s);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(s));
    if (rc == VP_OK) { double *v = values(s, 0); CHECK(same_values(v, w2, 4)); free(v); }
    vp_source_close(s);
    free(b.p);
}

/* Header spellings numpy's literal_eval accepts and numpy has written. */
static void test_npy_header_variants(void)
{
    int32_t d[6] = {1, -2, 3, -4, 5, -6};
    double w[6] = {1, -2, 3, -4, 5, -6};
    static const struct { int major; const char *dict; int ndim; int64_t s0, s1; } C[] = {
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3)}", 2, 2, 3},        /* no trailing comma */
        {1, "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (6,)}", 1, 6, 0},  /* double quotes */
        {1, "{'shape': (2, 3,), 'fortran_order': False, 'descr': '<i4'}", 2, 2, 3},       /* other key order */
        {1, "{'descr':'<i4','fortran_order':False,'shape':(6,),}", 1, 6, 0},              /* no spaces */
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2, 3},    /* Python 2 longs */
        {2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3},      /* version 2.0 */
        {3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", 1, 6, 0},       /* version 3.0 */
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        bytes b = make_npy(C[k].major, C[k].dict, d, sizeof d);
        vp_source *s;
        int rc = open_bytes("v.npy", &b, &s);
        CHECKF(rc == VP_OK, "%s: %s", C[k].dict, vp_source_errmsg(s));
        const vp_tensor *t = vp_source_tensor(s, 0);
        CHECKF(t && t->ndim == C[k].ndim && t->shape[0] == C[k].s0 && (C[k].ndim < 2 || t->shape[1] == C[k].s1), "%s", C[k].dict);
        if (t) { double *v = values(s, 0); CHECK(same_values(v, w, 6)); free(v); }
        vp_source_close(s);
        free(b.p);
    }
    /* 0-d and empty arrays */
    double x = 3.25;
    bytes b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &x, 8);
    vp_source *s;
    CHECK(open_bytes("scalar.npy", &b, &s) == VP_OK);
    const vp_tensor *t = vp_source_tensor(s, 0);
    CHECK(t && t->ndim == 0 && t->numel == 1);
    if (t) { double *v = values(s, 0); CHECK(v[0] == 3.25); free(v); }
    vp_source_close(s);
    free(b.p);
    b = make_npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 5), }", NULL, 0);
    CHECK(open_bytes("empty.npy", &b, &s) == VP_OK);
    t = vp_source_tensor(s, 0);
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 5 && t->numel == 0 && t->nbytes == 0);
    vp_source_close(s);
    free(b.p);
}

static void test_npy_bad(void)
{
    float f[4] = {1, 2, 3, 4};
    static const struct { const char *dict; int code; const char *needle; } C[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), ", VP_ERR_FORMAT, "npy header ends"},   /* unterminated dict */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", VP_ERR_FORMAT, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", VP_ERR_FORMAT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", VP_ERR_FORMAT, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }", VP_ERR_FORMAT, "data needs"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }", VP_ERR_FORMAT, "overflows"},
        {"{'descr': '<i1', 'fortran_order': True, 'shape': (0, 4611686018427387904, 2), }", VP_ERR_FORMAT, "overflows"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "'<c8' is not supported"},
        {"{'descr': '<U5', 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "not supported"},
        {"{'descr': '<u4', 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "not supported"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "pickled Python objects"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'shape': (4,), }", VP_ERR_FORMAT, "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1}", VP_ERR_FORMAT, "unexpected key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", VP_ERR_FORMAT, "twice"},
        {"{'descr': '<f4', 'fortran_order': 1, 'shape': (4,), }", VP_ERR_FORMAT, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4), }", VP_ERR_FORMAT, "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [4], }", VP_ERR_FORMAT, "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 4), }", VP_ERR_UNSUPPORTED, "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } x", VP_ERR_FORMAT, "after the dict"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (4,), }", VP_ERR_UNSUPPORTED, "escape"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (4,), }", VP_ERR_FORMAT, "npy header"},
        {"('descr', '<f4')", VP_ERR_FORMAT, "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (04,), }", VP_ERR_FORMAT, "leading zero"},
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        bytes b = make_npy(1, C[k].dict, f, sizeof f);
        expect_fail(__LINE__ * 1000 + (int)k, &b, C[k].code, C[k].needle);
        free(b.p);
    }
    /* Python 2 longs only in versions 1.0/2.0 (numpy filters them only there) */
    bytes b = make_npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (4L,), }", f, sizeof f);
    EXPECT_FAIL(&b, VP_ERR_FORMAT, "npy header");
    free(b.p);

    /* wrong version, header past the end, header over the limit */
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
    b.p[6] = 9;
    EXPECT_FAIL(&b, VP_ERR_UNSUPPORTED, "version 9.0");
    b.p[6] = 1;
    b.p[7] = 1;
    EXPECT_FAIL(&b, VP_ERR_UNSUPPORTED, "version 1.1");
    b.p[7] = 0;
    wr16(b.p + 8, 60000);
    EXPECT_FAIL(&b, VP_ERR_FORMAT, "runs past the end");
    free(b.p);
    b = make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f, sizeof f);
    wr32(b.p + 8, VP_NPY_MAX_HEADER + 1);
    EXPECT_FAIL(&b, VP_ERR_LIMIT, "npy header of");
    free(b.p);
    bytes tiny = {(uint8_t *)"\x93NUMPY\x01", 7, 0};
    EXPECT_FAIL(&tiny, VP_ERR_FORMAT, "truncated npy preamble");
}

/* Every proper prefix of a valid file fails cleanly (no crash, no leak). */
static void truncations(const bytes *b, const char *what)
{
    int bad = 0;
    for (size_t k = 0; k < b->n; k++) {
        vp_source *s;
        const char *path = write_mkstemp(b->p, k);
        int rc = vp_source_open(&s, path, NULL);
        if (rc == VP_OK || !tu_one_line(vp_source_errmsg(s))) {
            if (bad++ < 3) fprintf(stderr, "%s cut at %zu: rc %d (%s)\n", what, k, rc, vp_source_errmsg(s));
        }
        vp_source_close(s);
        unlink(path);
    }
    CHECKF(bad == 0, "%s: %d of %zu truncations opened or gave no message", what, bad, b->n);
}

/* Each byte flipped in turn: any result but a crash (ASan/UBSan watch),
 * and a failure always has a message. Reads every tensor that opens. */
static void corruptions(const bytes *b, const char *what)
{
    int silent = 0;
    uint8_t *c = malloc(b->n);
    for (size_t k = 0; k < b->n; k++) {
        memcpy(c, b->p, b->n);
        c[k] ^= 0xFF;
        vp_source *s;
        int rc = vp_source_open(&s, write_tmp("flip.bin", c, b->n), NULL);
        if (rc && !tu_one_line(vp_source_errmsg(s))) silent++;
        for (size_t i = 0; rc == VP_OK && i < vp_source_count(s); i++) {
            const vp_tensor *t = vp_source_tensor(s, i);
            void *buf = malloc(t->nbytes + 1);
            if (vp_source_read(s, i, buf, t->nbytes) && !tu_one_line(vp_source_errmsg(s))) silent++;
            free(buf);
        }
        vp_source_close(s);
    }
    free(c);
    CHECKF(silent == 0, "%s: %d corruptions failed without a message", what, silent);
}

static void test_npy_truncation(void)
{
    int64_t d[3] = {7, 8, 9};
    bytes b = make_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d);
    truncations(&b, "npy");
    corruptions(&b, "npy");
    free(b.p);
    b = make_npy(2, "{'descr': '>i8', 'fortran_order': True, 'shape': (3,), }", d, sizeof d);
    truncations(&b, "npy v2 big-endian");
    free(b.p);
}

/* ---- .npz ------------------------------------------------------------------------------- */

typedef struct npz_case {
    bytes npy[4];
    zmember m[4];
    double want[4][6];
} npz_case;

/* Four members: stored f32 (3,), stored f16 (2,2) under a nested name,
 * deflated i64 (6,), deflated big-endian f8 (2,). */
static void npz_members(npz_case *c, int method_a, int method_b)
{
    float a[3] = {0.5f, -1.25f, 3.0f};
    uint16_t h[4] = {0x3C00, 0xC000, 0x3800, 0x0000};   /* 1, -2, 0.5, 0 */
    int64_t i[6] = {1, -2, 3, -4, 5, 1LL << 40};
    uint8_t be[16] = {0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0};   /* pi, -1 */
    c->npy[0] = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", a, sizeof a);
    c->npy[1] = make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", h, sizeof h);
    c->npy[2] = make_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", i, sizeof i);
    c->npy[3] = make_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", be, sizeof be);
    static const char *names[4] = {"a.npy", "params/img/embedding/kernel.npy", "ints.npy", "be.npy"};
    int methods[4] = {method_a, method_a, method_b, method_b};
    for (int k = 0; k < 4; k++) c->m[k] = (zmember){names[k], c->npy[k].p, c->npy[k].n, methods[k], false};
    double w[4][6] = {{0.5, -1.25, 3.0}, {1, -2, 0.5, 0}, {1, -2, 3, -4, 5, 1099511627776.0}, {3.141592653589793, -1}};
    memcpy(c->want, w, sizeof w);
}

static void npz_case_free(npz_case *c) { for (int k = 0; k < 4; k++) free(c->npy[k].p); }

/* Bytes before an npy file's data: preamble + header. */
static size_t npy_data_start(const bytes *npy) { return 10 + (size_t)(npy->p[8] | npy->p[9] << 8); }

static void check_npz(const bytes *z, const zlayout *L, const npz_case *c, const char *what)
{
    static const char *names[4] = {"a", "params/img/embedding/kernel", "ints", "be"};
    static const vp_dtype types[4] = {VP_F32, VP_F16, VP_I64, VP_F64};
    static const uint64_t numel[4] = {3, 4, 6, 2};
    vp_source *s;
    int rc = open_bytes("m.npz", z, &s);
    CHECKF(rc == VP_OK, "%s: %s", what, vp_source_errmsg(s));
    CHECK_STR(vp_source_format(s), "npz");
    CHECK_EQ_INT(vp_source_count(s), 4);
    for (size_t i = 0; i < vp_source_count(s) && i < 4; i++) {
        const vp_tensor *t = vp_source_tensor(s, i);
        CHECKF(!strcmp(t->name, names[i]) && t->dtype == types[i] && t->numel == numel[i], "%s: tensor %zu is %s", what, i, t->name);
        bool stored = c->m[i].method == 0;
        bool swapped = i == 3;
        if (stored && !swapped) {
            /* zero-copy: the pointer lies in the mapping, at the member's data + npy header */
            uint64_t off = 0;
            CHECK(vp_source_file_range(s, i, &off) == VP_OK && off == L->data[i] + npy_data_start(&c->npy[i]));
            const void *p = vp_source_data(s, i);
            CHECK(p && !memcmp(p, c->npy[i].p + npy_data_start(&c->npy[i]), (size_t)t->nbytes));
        } else if (!stored && !swapped) {
            CHECK(vp_source_data(s, i) == NULL);   /* not inflated until read */
            CHECK(vp_source_file_range(s, i, &(uint64_t){0}) == VP_ERR_UNSUPPORTED);
        }
        double *v = values(s, i);
        CHECKF(same_values(v, c->want[i], (size_t)t->numel), "%s: values of %s", what, t->name);
        free(v);
        vp_source_release(s, i);
        v = values(s, i);      /* a released deflated member inflates again */
        CHECKF(same_values(v, c->want[i], (size_t)t->numel), "%s: values of %s after release", what, t->name);
        free(v);
    }
    CHECK_EQ_INT(vp_source_find(s, "params/img/embedding/kernel"), 1);
    CHECK_EQ_INT(vp_source_find(s, "a.npy"), -1);
    vp_source_close(s);
}

static void test_npz_good(void)
{
    npz_case c;
    zlayout L;
    npz_members(&c, 0, 8);
    bytes z = build_zip(c.m, 4, false, &L);
    check_npz(&z, &L, &c, "npz stored+deflated");
    truncations(&z, "npz");
    corruptions(&z, "npz");
    free(z.p);
    z = build_zip(c.m, 4, true, &L);
    check_npz(&z, &L, &c, "npz zip64");
    truncations(&z, "npz zip64");
    corruptions(&z, "npz zip64");
    free(z.p);
    npz_case_free(&c);

    npz_members(&c, 8, 0);
    z = build_zip(c.m, 4, false, &L);
    check_npz(&z, &L, &c, "npz deflated+stored");
    free(z.p);
    npz_case_free(&c);

    /* Python's zipfile writes directory entries for folders: skipped */
    float one = 1.0f;
    bytes npy = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &one, 4);
    zmember m[2] = {{"params/", "", 0, 0, false}, {"params/x.npy", npy.p, npy.n, 0, false}};
    z = build_zip(m, 2, false, &L);
    vp_source *s;
    CHECK(open_bytes("dir.npz", &z, &s) == VP_OK);
    CHECK(vp_source_count(s) == 1 && !strcmp(vp_source_tensor(s, 0)->name, "params/x"));
    vp_source_close(s);
    free(z.p);
    free(npy.p);
}

/* Patch a valid two-member archive and expect each defect to be named. */
static void test_zip_bad(void)
{
    int32_t v[64];
    for (int i = 0; i < 64; i++) v[i] = i % 5;   /* compressible */
    bytes n1 = make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (64,), }", v, sizeof v);
    bytes n2 = make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (64,), }", v, sizeof v);
    zmember m[2] = {{"x.npy", n1.p, n1.n, 0, false}, {"y.npy", n2.p, n2.n, 8, false}};
    zlayout L;
    bytes z = build_zip(m, 2, false, &L);
    bytes t = {malloc(z.n), z.n, z.n};
#define RESET() memcpy(t.p, z.p, z.n)

    RESET(); memcpy(t.p + L.eocd, "PK\x05\x07", 4);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "no end-of-central-directory record");
    RESET(); wr32(t.p + L.eocd + 16, (uint32_t)z.n * 4);      /* directory offset past EOF */
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "central directory");
    RESET(); wr32(t.p + L.eocd + 12, (uint32_t)L.cdsize + 1000);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "central directory");
    RESET(); wr16(t.p + L.eocd + 8, 1000); wr16(t.p + L.eocd + 10, 1000);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "cannot hold 1000 entries");
    RESET(); wr16(t.p + L.eocd + 8, 1); wr16(t.p + L.eocd + 10, 1);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "after its 1 entries");
    RESET(); wr32(t.p + L.cen[0] + 20, 1u << 30); wr32(t.p + L.cen[0] + 24, 1u << 30);   /* stored member far beyond the file */
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "'x.npy'");
    RESET(); wr32(t.p + L.cen[0] + 20, (uint32_t)L.csize[0] + 20); wr32(t.p + L.cen[0] + 24, (uint32_t)L.csize[0] + 20);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "overlap");               /* x's data runs into y's local header */
    RESET(); wr32(t.p + L.cen[1] + 24, (uint32_t)(L.csize[1] * VP_ZIP_MAX_RATIO + 2048));
    EXPECT_FAIL(&t, VP_ERR_LIMIT, "zip bomb");
    RESET(); wr32(t.p + L.cen[1] + 24, 0xFFFFFFFFu);         /* 0xFFFFFFFF without a ZIP64 extra */
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "ZIP64");
    RESET(); wr16(t.p + L.cen[1] + 8, 1);
    EXPECT_FAIL(&t, VP_ERR_UNSUPPORTED, "encrypted");
    RESET(); wr16(t.p + L.cen[1] + 10, 12);
    EXPECT_FAIL(&t, VP_ERR_UNSUPPORTED, "method 12");
    RESET(); wr16(t.p + L.cen[0] + 10, 8); wr32(t.p + L.cen[0] + 24, (uint32_t)L.csize[0]);   /* "deflated" garbage */
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "'x.npy' inflates to");
    RESET(); t.p[L.lho[1] + 30] = 'z';                         /* local header names "z.npy" */
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "local header names a different member");
    RESET(); wr32(t.p + L.cen[1] + 42, (uint32_t)L.lho[1] + 1);
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "no local header");
    RESET(); t.p[L.cen[1] + 46] = 'x';                        /* central name "x.npy" twice (local says y) */
    t.p[L.lho[1] + 30] = 'x';
    EXPECT_FAIL(&t, VP_ERR_FORMAT, "duplicate member name 'x.npy'");
    RESET(); wr16(t.p + L.eocd + 4, 1);
    EXPECT_FAIL(&t, VP_ERR_UNSUPPORTED, "multi-disk");

    /* Corrupt CRC in a deflated member: opens (headers only), the read fails. */
    RESET(); wr32(t.p + L.cen[1] + 16, 0x12345678);
    vp_source *s;
    CHECK(open_bytes("crc.npz", &t, &s) == VP_OK);
    void *buf = malloc(256);
    int rc = vp_source_read(s, 1, buf, 256);
    CHECKF(rc == VP_ERR_FORMAT && strstr(vp_source_errmsg(s), "CRC-32"), "rc %d %s", rc, vp_source_errmsg(s));
    free(buf);
    vp_source_close(s);

    /* A member that is not an array; an empty archive. */
    zmember m2[2] = {{"x.npy", n1.p, n1.n, 0, false}, {"readme.txt", "hello", 5, 0, false}};
    bytes z2 = build_zip(m2, 2, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_UNSUPPORTED, "'readme.txt' is not an .npy array");
    free(z2.p);
    zmember m3[2] = {{"x.npy", n1.p, n1.n, 0, false}, {".npy", n2.p, n2.n, 0, false}};
    z2 = build_zip(m3, 2, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "empty tensor name");
    free(z2.p);
    z2 = build_zip(NULL, 0, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_UNSUPPORTED, "neither");
    free(z2.p);

    /* A member whose npy data is cut short, stored and deflated. */
    zmember m4[1] = {{"short.npy", n1.p, n1.n - 4, 0, false}};
    z2 = build_zip(m4, 1, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "member 'short.npy': data needs 256 bytes");
    free(z2.p);
    m4[0].method = 8;
    z2 = build_zip(m4, 1, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "member 'short.npy': data needs 256 bytes");
    free(z2.p);
    m4[0].len = 11;
    z2 = build_zip(m4, 1, false, &L);
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "runs past the member");
    free(z2.p);

    /* ZIP64 entry count over the cap, before anything is allocated */
    z2 = build_zip(m, 2, true, &L);
    wr64(z2.p + L.eocd64 + 24, (uint64_t)VP_ZIP_MAX_ENTRIES + 1);
    wr64(z2.p + L.eocd64 + 32, (uint64_t)VP_ZIP_MAX_ENTRIES + 1);
    EXPECT_FAIL(&z2, VP_ERR_LIMIT, "entries (at most");
    free(z2.p);
    z2 = build_zip(m, 2, true, &L);
    wr64(z2.p + L.loc64 + 8, 1ull << 40);
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "ZIP64 end record");
    free(z2.p);
    z2 = build_zip(m, 2, true, &L);
    wr16(z2.p + L.cen[0] + 46 + 5 + 2, 16);   /* ZIP64 extra of 16 bytes: the offset field is missing */
    EXPECT_FAIL(&z2, VP_ERR_FORMAT, "ZIP64 extra field too short");
    free(z2.p);

    free(t.p);
    free(z.p);
    free(n1.p);
    free(n2.p);
#undef RESET
}

/* ---- the zip API the torch reader uses ---------------------------------------------------- */

static void test_zip_api(void)
{
    char pkl[200], code[300];
    for (int i = 0; i < (int)sizeof pkl; i++) pkl[i] = (char)(i * 7);
    for (int i = 0; i < (int)sizeof code; i++) code[i] = "def forward(self):\n"[i % 19];
    float w[5] = {1, 2, 3, 4, 5};
    zmember m[5] = {
        {"archive/data.pkl", pkl, sizeof pkl, 0, true},
        {"archive/data/0", w, sizeof w, 0, true},
        {"archive/code/__torch__.py", code, sizeof code, 8, false},
        {"archive/version", "3\n", 2, 0, true},
        {"archive/data/10", w, 0, 0, true},
    };
    for (int zip64 = 0; zip64 < 2; zip64++) {
        zlayout L;
        bytes z = build_zip(m, 5, zip64, &L);
        int rc;
        vp_source *s = raw_zip(&z, &rc);
        CHECKF(rc == VP_OK, "%s", s->errmsg);
        CHECK_EQ_INT(vp__zip_count(s), 5);
        CHECK_STR(vp__zip_name(s, 2), "archive/code/__torch__.py");
        CHECK(vp__zip_name(s, 5) == NULL && vp__zip_name(s, -1) == NULL && vp__zip_entry(s, 9) == NULL);
        CHECK_EQ_INT(vp__zip_find(s, "archive/data/0"), 1);
        CHECK_EQ_INT(vp__zip_find(s, "archive/data/10"), 4);
        CHECK_EQ_INT(vp__zip_find(s, "archive/data/1"), -1);
        CHECK_EQ_INT(vp__zip_find(s, "data.pkl"), -1);
        CHECK_EQ_INT(vp__zip_find_suffix(s, "data.pkl"), 0);
        CHECK_EQ_INT(vp__zip_find_suffix(s, "version"), 3);
        CHECK_EQ_INT(vp__zip_find_suffix(s, "ata.pkl"), -1);    /* whole path components only */
        CHECK_EQ_INT(vp__zip_find_suffix(s, "0"), 1);
        CHECK(vp__zip_has_suffix(s, "data.pkl") && vp__zip_has_suffix(s, "ata.pkl") && !vp__zip_has_suffix(s, ".npy"));
        CHECK_EQ_INT(vp__zip_method(s, 2), VP_ZIP_DEFLATED);
        CHECK_EQ_INT(vp__zip_method(s, 1), VP_ZIP_STORED);
        CHECK_EQ_INT(vp__zip_method(s, 7), -1);
        CHECK_EQ_INT(vp__zip_usize(s, 2), sizeof code);
        CHECK_EQ_INT(vp__zip_csize(s, 2), L.csize[2]);
        CHECK(vp__zip_csize(s, 2) < sizeof code);
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(vp__zip_data_offset(s, i), L.data[i]);
        if (!zip64) CHECK(vp__zip_data_offset(s, 0) % 64 == 0 && vp__zip_data_offset(s, 1) % 64 == 0);

        const uint8_t *d;
        size_t n;
        uint8_t *owned;
        rc = vp__zip_read(s, 0, &d, &n, &owned, 1 << 20);
        CHECK(rc == VP_OK && n == sizeof pkl && owned == NULL && d == s->map.base + L.data[0] && !memcmp(d, pkl, n));
        rc = vp__zip_read(s, 2, &d, &n, &owned, 1 << 20);
        CHECK(rc == VP_OK && n == sizeof code && owned != NULL && d == owned && !memcmp(d, code, n));
        vp__free(owned);
        rc = vp__zip_read(s, 4, &d, &n, &owned, 1 << 20);
        CHECK(rc == VP_OK && n == 0 && owned == NULL);
        rc = vp__zip_read(s, 2, &d, &n, &owned, 100);
        CHECK(rc == VP_ERR_LIMIT && d == NULL && owned == NULL && strstr(s->errmsg, "archive/code/__torch__.py"));
        CHECK(vp__zip_read(s, 99, &d, &n, &owned, 100) == VP_ERR_ARG);
        uint8_t part[40];
        CHECK(vp__zip_inflate(s, 2, part, sizeof part) == VP_OK && !memcmp(part, code, sizeof part));
        CHECK(vp__zip_inflate(s, 1, part, 8) == VP_OK && !memcmp(part, w, 8));
        CHECK(vp__zip_inflate(s, 1, part, 40) == VP_ERR_ARG);
        vp_source_close(s);

        /* a stored member with a bad CRC is caught by vp__zip_read */
        wr32(z.p + L.cen[0] + 16, 0xDEADBEEF);
        s = raw_zip(&z, &rc);
        CHECK(rc == VP_OK);
        rc = vp__zip_read(s, 0, &d, &n, &owned, 1 << 20);
        CHECK(rc == VP_ERR_FORMAT && strstr(s->errmsg, "CRC-32") && d == NULL);
        vp_source_close(s);
        free(z.p);
    }

    /* declared sizes that disagree with the deflate stream */
    zlayout L;
    bytes z = build_zip(&m[2], 1, false, &L);
    wr32(z.p + L.cen[0] + 24, sizeof code + 10);
    int rc;
    vp_source *s = raw_zip(&z, &rc);
    const uint8_t *d;
    size_t n;
    uint8_t *owned;
    CHECK(rc == VP_OK && vp__zip_read(s, 0, &d, &n, &owned, 1 << 20) == VP_ERR_FORMAT && strstr(s->errmsg, "fewer than"));
    vp_source_close(s);
    wr32(z.p + L.cen[0] + 24, sizeof code - 10);
    s = raw_zip(&z, &rc);
    CHECK(rc == VP_OK && vp__zip_read(s, 0, &d, &n, &owned, 1 << 20) == VP_ERR_FORMAT && strstr(s->errmsg, "more than its declared"));
    vp_source_close(s);
    free(z.p);

    /* one top folder of any name; two folders are ambiguous; a bare name counts */
    zmember a[3] = {{"a/data.pkl", pkl, 4, 0, false}, {"b/data.pkl", pkl, 4, 0, false}, {"version", "3", 1, 0, false}};
    z = build_zip(a, 3, false, &L);
    s = raw_zip(&z, &rc);
    CHECK(rc == VP_OK);
    CHECK_EQ_INT(vp__zip_find_suffix(s, "data.pkl"), -2);
    CHECK_EQ_INT(vp__zip_find_suffix(s, "version"), 2);
    vp_source_close(s);
    free(z.p);

    /* an archive comment, and data before the EOCD signature inside it */
    z = build_zip(a, 1, false, &L);
    wr16(z.p + z.n - 2, 26);
    put(&z, "PK\x05\x06 a comment of 26 bytes", 26);
    s = raw_zip(&z, &rc);
    CHECKF(rc == VP_OK && vp__zip_count(s) == 1, "comment: %s", s->errmsg);
    vp_source_close(s);
    free(z.p);
}

/* ---- out of memory -------------------------------------------------------------------------- */

/* Fail the 1st, 2nd, ... allocation of opening and reading an npz: every
 * failure must be reported (no crash, no leak under ASan). */
static void test_oom(void)
{
    npz_case c;
    zlayout L;
    npz_members(&c, 0, 8);
    bytes z = build_zip(c.m, 4, false, &L);
    const char *path = write_tmp("oom.npz", z.p, z.n);
    int failures = 0, silent = 0;
    for (long k = 0; k < 200; k++) {
        tu_failing f = {k};
        vp__set_allocator(tu_failing_alloc, &f);
        vp_source *s;
        int rc = vp_source_open(&s, path, NULL);
        double v[6];
        for (size_t i = 0; rc == VP_OK && i < vp_source_count(s); i++) rc = vp_source_read_as(s, i, VP_F64, v, sizeof v);
        if (rc) { failures++; if (s && !*vp_source_errmsg(s)) silent++; }
        vp_source_close(s);
        vp__set_allocator(NULL, NULL);
        if (rc == VP_OK) break;
    }
    CHECK(failures > 5);
    CHECK_EQ_INT(silent, 0);
    free(z.p);
    npz_case_free(&c);
}

/* ---- real files made by numpy ------------------------------------------------------------------- */

/* numpy's descr ('<f4') or name ('float32') to ours. */
static int dtype_of(const char *s, vp_dtype *t)
{
    static const struct { const char *descr; vp_dtype t; } D[] = {
        {"<f8", VP_F64}, {"<f4", VP_F32}, {"<f2", VP_F16}, {"<i8", VP_I64}, {"<i4", VP_I32},
        {"<i2", VP_I16}, {"|i1", VP_I8}, {"|u1", VP_U8}, {"|b1", VP_BOOL},
    };
    for (size_t i = 0; i < sizeof D / sizeof D[0]; i++) if (!strcmp(s, D[i].descr)) { *t = D[i].t; return 0; }
    return vp_dtype_parse(s, t);
}

/* Compare a file with a list of {name, dtype, shape, sum[, sumsq]} that
 * numpy produced. Sums agree within 1e-6 relative (to the sum of |x|, so
 * that sums that cancel to near zero are judged fairly). */
static void check_against(const char *path, const cJSON *tensors, const char *what)
{
    vp_source *s;
    int rc = vp_source_open(&s, path, NULL);
    CHECKF(rc == VP_OK, "%s: %s", what, vp_source_errmsg(s));
    CHECKF((size_t)cJSON_GetArraySize(tensors) == vp_source_count(s), "%s: %zu tensors, manifest lists %d", what,
           vp_source_count(s), cJSON_GetArraySize(tensors));
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, tensors) {
        const vp_tensor *t = vp_source_tensor(s, i);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
        if (!t || !name) { CHECKF(0, "%s: tensor %zu missing", what, i); break; }
        CHECKF(!strcmp(t->name, name), "%s: tensor %zu is '%s', numpy says '%s'", what, i, t->name, name);
        vp_dtype want = VP_DTYPE_COUNT;
        const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(e, "dtype"));
        CHECKF(dt && dtype_of(dt, &want) == 0 && want == t->dtype, "%s: '%s' dtype %s vs %s", what, name, vp_dtype_name(t->dtype), dt ? dt : "?");
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        bool same = cJSON_GetArraySize(shape) == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble == t->shape[d];
        CHECKF(same, "%s: '%s' shape differs", what, name);
        double *v = values(s, i), sum = 0, sumsq = 0, sumabs = 0;
        for (uint64_t k = 0; k < t->numel; k++) { sum += v[k]; sumsq += v[k] * v[k]; sumabs += fabs(v[k]); }
        free(v);
        const cJSON *js = cJSON_GetObjectItem(e, "sum"), *jq = cJSON_GetObjectItem(e, "sumsq");
        if (cJSON_IsNumber(js))
            CHECKF(fabs(sum - js->valuedouble) <= 1e-6 * fmax(fabs(js->valuedouble), sumabs), "%s: '%s' sum %.17g, numpy %.17g", what, name, sum, js->valuedouble);
        if (cJSON_IsNumber(jq))
            CHECKF(fabs(sumsq - jq->valuedouble) <= 1e-6 * fabs(jq->valuedouble), "%s: '%s' sumsq %.17g, numpy %.17g", what, name, sumsq, jq->valuedouble);
        i++;
    }
    vp_source_close(s);
}

/* tests/fixtures: np.save / np.savez / savez_compressed / zipfile files with
 * the values numpy reported (fixtures/manifest.json). */
static void test_fixtures(void)
{
    const char *dir = tu_fixtures_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (!tu_exists(path)) { printf("fixtures: no %s, skipped\n", path); return; }
    cJSON *root = tu_load_json(path);
    int seen = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(root, "fixtures")) {
        const char *fmt = cJSON_GetStringValue(cJSON_GetObjectItem(f, "format"));
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(f, "file"));
        if (!fmt || !file || (strcmp(fmt, "npy") && strcmp(fmt, "npz"))) continue;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        check_against(path, cJSON_GetObjectItem(f, "tensors"), file);
        seen++;
    }
    CHECKF(seen >= 10, "only %d npy/npz fixtures listed", seen);
    cJSON_Delete(root);
}

/* Conformance checkpoints whose source is an .npz (big_vision SigLIP). */
static void test_conformance(void)
{
    tu_cases cases;
    if (tu_cases_open(&cases)) {
        printf("conformance: %s not found, skipped\n", tu_env("VP_CONFORMANCE", "(VP_CONFORMANCE unset)"));
        return;
    }
    int seen = 0;
    char path[1024];
    for (size_t k = 0; k < cases.n; k++) {
        const char *name = cases.name[k];
        snprintf(path, sizeof path, "%s/%s/case.json", cases.root, name);
        cJSON *c = tu_load_json(path);
        const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(c, "source_file"));
        size_t n = src ? strlen(src) : 0;
        if (n > 4 && !strcmp(src + n - 4, ".npz")) {
            snprintf(path, sizeof path, "%s/%s/manifest.json", cases.root, name);
            cJSON *m = tu_load_json(path);
            CHECKF(m != NULL, "%s unreadable", path);
            snprintf(path, sizeof path, "%s/%s/%s", cases.root, name, src);
            if (m) check_against(path, cJSON_GetObjectItem(m, "tensors"), name);
            /* stored members: every tensor reads in place */
            vp_source *s;
            if (vp_source_open(&s, path, NULL) == VP_OK && cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "zip"), "stored_only")))
                for (size_t i = 0; i < vp_source_count(s); i++) CHECK(vp_source_data(s, i) != NULL);
            vp_source_close(s);
            cJSON_Delete(m);
            seen++;
        }
        cJSON_Delete(c);
    }
    CHECKF(seen >= 1, "no .npz conformance case in %s", cases.root);
    tu_cases_free(&cases);
}

int main(void)
{
    tu_mkdtemp(g_dir, sizeof g_dir, "vp_zipnpy");
    test_npy_basic();
    test_npy_dtypes();
    test_npy_big_endian();
    test_npy_fortran();
    test_npy_header_variants();
    test_npy_bad();
    test_npy_truncation();
    test_npz_good();
    test_zip_bad();
    test_zip_api();
    test_oom();
    test_fixtures();
    test_conformance();
    tu_rmtree(g_dir);
    TEST_MAIN_END();
}
