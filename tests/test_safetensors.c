/* safetensors reader and writer: round trips, golden refusals, truncation,
 * writer misuse, copy_file_range and 64-bit offsets.
 * (tests/py_safetensors.py checks both directions against the reference
 * `safetensors` package.)  Set VP_TEST_LARGE=1 to also write a 5 GiB file. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "test.h"
#include "test_util.h"

static char dir[128];

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

/* Open path and expect failure with `code` and a message holding `want`. */
static void expect_fail(const char *what, const char *path, int code, const char *want)
{
    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    const char *msg = vp_source_errmsg(src);
    CHECKF(rc == code, "%s: code %d (%s), expected %d", what, rc, msg, code);
    CHECKF(strstr(msg, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, msg, want);
    CHECKF(tu_one_line(msg) && !strncmp(msg, path, strlen(path)), "%s: message \"%s\" is not one line naming the file", what, msg);
    vp_source_close(src);
}

/* ---- round trip ------------------------------------------------------------ */
typedef struct { const char *name; vp_dtype dt; int ndim; int64_t shape[3]; } decl;

static size_t nbytes_of(const decl *d)
{
    size_t n = vp_dtype_size(d->dt);
    for (int i = 0; i < d->ndim; i++) n *= (size_t)d->shape[i];
    return n;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 3));
}

static void test_round_trip(void)
{
    decl d[VP_DTYPE_COUNT + 4];
    char names[VP_DTYPE_COUNT][32];
    int n = 0;
    for (int t = 0; t < VP_DTYPE_COUNT; t++) {
        snprintf(names[t], sizeof names[t], "layer.%d.%s", t, vp_dtype_st_name((vp_dtype)t));
        d[n++] = (decl){names[t], (vp_dtype)t, 2, {2, 3}};
    }
    d[n++] = (decl){"scalar", VP_F32, 0, {0}};
    d[n++] = (decl){"empty", VP_F16, 2, {0, 4}};
    d[n++] = (decl){"aaa.empty", VP_BF16, 1, {0}};
    d[n++] = (decl){"also \"quoted\" \xc3\xa9", VP_I64, 3, {1, 1, 3}};

    const char *path = tmp("rt.safetensors");
    vp_st_writer *w;
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(vp_st_writer_meta(w, "format", "pt"), VP_OK);
    CHECK_EQ_INT(vp_st_writer_meta(w, "note", "two\nlines \"q\" \\ \t"), VP_OK);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(vp_st_writer_add(w, d[i].name, d[i].dt, d[i].ndim, d[i].shape), VP_OK);
    uint8_t buf[256];
    for (int i = 0; i < n; i++) {
        size_t nb = nbytes_of(&d[i]);
        fill(buf, nb, (unsigned)i);
        /* write in two pieces to check that a tensor may be split */
        CHECK_EQ_INT(vp_st_writer_write(w, buf, nb / 2), VP_OK);
        CHECK_EQ_INT(vp_st_writer_write(w, buf + nb / 2, nb - nb / 2), VP_OK);
    }
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
    CHECK_STR(vp_st_writer_errmsg(w), "");
    vp_st_writer_close(w);

    /* The header is padded with spaces to a multiple of 8, as the reference writes it. */
    FILE *f = fopen(path, "rb");
    uint8_t head[8];
    CHECK(f && fread(head, 1, 8, f) == 8);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | head[i];
    CHECK_EQ_INT(hn % 8, 0);
    if (f) fclose(f);

    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "open: %s", vp_source_errmsg(src));
    if (rc) { vp_source_close(src); return; }
    CHECK_STR(vp_source_format(src), "safetensors");
    CHECK_EQ_INT(vp_source_count(src), n);
    /* the whole table is the same tensors, in the same order */
    size_t tn = 0;
    const vp_tensor *tab = vp_source_tensors(src, &tn);
    CHECK_EQ_INT(tn, n);
    CHECK(tab != NULL && tab == vp_source_tensor(src, 0) && tab + (tn - 1) == vp_source_tensor(src, tn - 1));
    CHECK(vp_source_tensors(NULL, &tn) == NULL && tn == 0);
    /* a bad index is refused with a message, not a bare code */
    uint8_t scratch[8];
    CHECK(vp_source_read(src, vp_source_count(src) + 5, scratch, sizeof scratch) == VP_ERR_ARG && strstr(vp_source_errmsg(src), "no tensor"));
    CHECK_STR(vp_source_metadata(src, "format"), "pt");
    CHECK_STR(vp_source_metadata(src, "note"), "two\nlines \"q\" \\ \t");
    CHECK(vp_source_metadata(src, "missing") == NULL);
    CHECK(vp_source_metadata(NULL, "format") == NULL);
    /* Data-offset order: the declaration order, except that empty tensors
     * come before a non-empty one at the same offset. */
    const int order[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 11, 13};
    for (int k = 0; k < n && (size_t)k < vp_source_count(src); k++) {
        const decl *e = &d[order[k]];
        const vp_tensor *t = vp_source_tensor(src, (size_t)k);
        CHECK_STR(t->name, e->name);
        CHECK_EQ_INT(t->dtype, e->dt);
        CHECK_EQ_INT(t->ndim, e->ndim);
        for (int i = 0; i < e->ndim; i++) CHECK_EQ_INT(t->shape[i], e->shape[i]);
        size_t nb = nbytes_of(e);
        CHECK_EQ_INT(t->nbytes, nb);
        uint8_t want[256], got[256];
        fill(want, nb, (unsigned)order[k]);
        memset(got, 0xee, sizeof got);
        CHECK_EQ_INT(vp_source_read(src, (size_t)k, got, sizeof got), VP_OK);
        CHECKF(!memcmp(got, want, nb), "tensor %s: bytes differ", e->name);
        const void *z = vp_source_data(src, (size_t)k);
        CHECKF(z && !memcmp(z, want, nb), "tensor %s: zero-copy bytes differ", e->name);
        uint64_t off;
        CHECK_EQ_INT(vp_source_file_range(src, (size_t)k, &off), VP_OK);
        if (k == 0) CHECK_EQ_INT(off, 8 + hn);
        CHECK_EQ_INT(vp_source_find(src, e->name), k);
    }
    /* A conversion through the generic path, against values known by construction. */
    long s = vp_source_find(src, "scalar");
    float one;
    uint8_t sb[4];
    fill(sb, 4, 10);
    float sv;
    memcpy(&sv, sb, 4);
    CHECK_EQ_INT(vp_source_read_as(src, (size_t)s, VP_F32, &one, sizeof one), VP_OK);
    CHECK(!memcmp(&one, &sv, 4));
    vp_source_close(src);
}

/* A file with no tensors, or only metadata, is valid. */
static void test_empty_files(void)
{
    const char *path = tmp("none.safetensors");
    vp_st_writer *w;
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
    vp_st_writer_close(w);
    /* exactly the bytes the reference writes for an empty dict */
    uint8_t got[32];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f) fclose(f);
    static const uint8_t want[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    CHECK(n == sizeof want && !memcmp(got, want, n));
    vp_source *src;
    CHECK_EQ_INT(vp_source_open(&src, path, NULL), VP_OK);
    CHECK_EQ_INT(vp_source_count(src), 0);
    vp_source_close(src);

    tu_write_st(path, "{\"__metadata__\":{\"a\":\"b\"}}", NULL, 0);
    CHECK_EQ_INT(vp_source_open(&src, path, NULL), VP_OK);
    CHECK_EQ_INT(vp_source_count(src), 0);
    CHECK_STR(vp_source_metadata(src, "a"), "b");
    vp_source_close(src);

    tu_write_st(path, "{\"__metadata__\":null,\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}} \t\r\n", "ab", 2);
    CHECK_EQ_INT(vp_source_open(&src, path, NULL), VP_OK);
    CHECK_EQ_INT(vp_source_count(src), 1);
    CHECK(vp_source_metadata(src, "a") == NULL);
    vp_source_close(src);

    /* extra fields in an entry are ignored, as by the reference */
    tu_write_st(path, "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"extra\":[1,{}]}}", "ab", 2);
    CHECK_EQ_INT(vp_source_open(&src, path, NULL), VP_OK);
    vp_source_close(src);
}

/* ---- golden refusals -------------------------------------------------------- */
#define E(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void golden(const char *what, const char *header, size_t ndata, int code, const char *want)
{
    static const char zeros[64];
    const char *path = tmp("bad.safetensors");
    tu_write_st(path, header, zeros, ndata);
    expect_fail(what, path, code, want);
}

static void test_golden(void)
{
    golden("overlap", "{" E("a", "U8", "[4]", 0, 4) "," E("b", "U8", "[2]", 2, 4) "}", 4, VP_ERR_FORMAT,
           "tensor 'b' (bytes 2-4) overlaps 'a' (which ends at byte 4)");
    golden("gap", "{" E("a", "U8", "[2]", 0, 2) "," E("b", "U8", "[2]", 3, 5) "}", 5, VP_ERR_FORMAT,
           "gap in the data buffer: tensor 'a' ends at byte 2 but 'b' begins at 3");
    golden("gap at start", "{" E("a", "U8", "[2]", 1, 3) "}", 3, VP_ERR_FORMAT,
           "tensor 'a' begins at byte 1 of the data buffer, leaving a gap at its start");
    golden("beyond the file", "{" E("a", "U8", "[4]", 0, 4) "}", 2, VP_ERR_FORMAT,
           "tensor 'a': data_offsets [0, 4] lie past the end of the 2-byte data buffer");
    golden("byte count", "{" E("w", "F32", "[2,3]", 0, 20) "}", 20, VP_ERR_FORMAT,
           "tensor 'w': data_offsets span 20 bytes but 6 F32 elements need 24");
    golden("duplicate", "{" E("a", "U8", "[2]", 0, 2) "," E("a", "U8", "[2]", 0, 2) "}", 2, VP_ERR_FORMAT,
           "duplicate tensor name 'a'");
    golden("trailing data", "{" E("a", "U8", "[2]", 0, 2) "}", 3, VP_ERR_FORMAT,
           "the tensors cover 2 bytes but the data buffer holds 3 (trailing bytes)");
    golden("invalid JSON", "{\"a\":{\"dtype\":", 0, VP_ERR_FORMAT, "JSON header is not valid JSON");
    golden("trailing characters", "{}x", 0, VP_ERR_FORMAT, "JSON header has trailing characters at byte 2");
    golden("trailing control byte", "{}\x01", 0, VP_ERR_FORMAT, "trailing characters");
    golden("unknown dtype", "{" E("a", "Q8", "[2]", 0, 2) "}", 2, VP_ERR_UNSUPPORTED, "tensor 'a': unknown dtype 'Q8'");
    golden("unsupported dtype", "{" E("a", "U16", "[1]", 0, 2) "}", 2, VP_ERR_UNSUPPORTED, "tensor 'a': unsupported dtype 'U16'");
    golden("lower-case dtype", "{" E("a", "u8", "[2]", 0, 2) "}", 2, VP_ERR_UNSUPPORTED, "unknown dtype 'u8'");
    golden("dtype not a string", "{\"a\":{\"dtype\":1,\"shape\":[2],\"data_offsets\":[0,2]}}", 2, VP_ERR_FORMAT,
           "tensor 'a': \"dtype\" is missing or not a string");
    golden("missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,2]}}", 2, VP_ERR_FORMAT,
           "tensor 'a': \"shape\" is missing or not a list");
    golden("negative shape", "{" E("a", "U8", "[-2]", 0, 2) "}", 2, VP_ERR_FORMAT, "tensor 'a': shape entry 0 is not a non-negative integer");
    golden("fractional shape", "{" E("a", "U8", "[2.5]", 0, 2) "}", 2, VP_ERR_FORMAT, "shape entry 0 is not a non-negative integer");
    golden("too many dims", "{" E("a", "U8", "[1,1,1,1,1,1,1,1,2]", 0, 2) "}", 2, VP_ERR_UNSUPPORTED, "tensor 'a': more than 8 dimensions");
    golden("three offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2,2]}}", 2, VP_ERR_FORMAT,
           "tensor 'a': \"data_offsets\" is not a pair of non-negative integers");
    golden("end before begin", "{" E("a", "U8", "[0]", 2, 0) "}", 2, VP_ERR_FORMAT, "tensor 'a': data_offsets [2, 0] end before they begin");
    golden("shape overflow", "{" E("a", "F64", "[4294967296,4294967296]", 0, 0) "}", 0, VP_ERR_FORMAT, "tensor 'a': element count overflows");
    golden("byte size overflow", "{" E("a", "F64", "[4294967296,4294967295]", 0, 0) "}", 0, VP_ERR_FORMAT, "tensor 'a': byte size overflows");
    golden("huge offset", "{" E("a", "U8", "[2]", 18446744073709551614, 18446744073709551616) "}", 2, VP_ERR_FORMAT,
           "\"data_offsets\" is not a pair of non-negative integers");
    golden("entry not an object", "{\"a\":3}", 0, VP_ERR_FORMAT, "tensor 'a': entry is not an object");
    golden("metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, VP_ERR_FORMAT, "__metadata__ value of 'k' is not a string");
    golden("metadata a list", "{\"__metadata__\":[]}", 0, VP_ERR_FORMAT, "__metadata__ is not an object of strings");
    golden("duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, VP_ERR_FORMAT, "duplicate __metadata__ key 'k'");
    golden("invalid UTF-8", "{\"a\xff\":{}}", 0, VP_ERR_FORMAT, "JSON header is not valid UTF-8 (at byte 3)");
    golden("overlong UTF-8", "{\"a\xc0\xaf\":{}}", 0, VP_ERR_FORMAT, "not valid UTF-8");
    golden("NUL escape", "{" E("a\\u0000b", "U8", "[2]", 0, 2) "}", 2, VP_ERR_UNSUPPORTED, "NUL character");
    golden("control character in a name", "{" E("a\\nb", "U8", "[2]", 0, 2) "," E("a\\nb", "U8", "[0]", 0, 0) "}", 2,
           VP_ERR_FORMAT, "duplicate tensor name 'a?b'");

    /* header size beyond the file, and beyond the limit */
    const char *path = tmp("bad.safetensors");
    uint8_t b[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};   /* N = 1000 */
    tu_write_file(path, b, sizeof b);
    expect_fail("header beyond the file", path, VP_ERR_FORMAT, "JSON header of 1000 bytes runs past the end of the file (16 bytes)");
    uint64_t big = (uint64_t)VP_ST_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(big >> (8 * i));
    tu_write_file(path, b, sizeof b);
    expect_fail("header beyond the limit", path, VP_ERR_LIMIT, "exceeds the limit");
    memset(b, 0xff, 8);
    tu_write_file(path, b, sizeof b);
    expect_fail("header size 2^64-1", path, VP_ERR_LIMIT, "exceeds the limit");
}

/* Every proper prefix of a valid file is refused as malformed, cleanly. */
static void test_truncation(void)
{
    const char *path = tmp("whole.safetensors");
    vp_st_writer *w;
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    int64_t s1[] = {3}, s2[] = {2, 2};
    CHECK_EQ_INT(vp_st_writer_meta(w, "k", "v"), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_F32, 1, s1), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "b", VP_I16, 2, s2), VP_OK);
    uint8_t data[20];
    fill(data, sizeof data, 1);
    CHECK_EQ_INT(vp_st_writer_write(w, data, sizeof data), VP_OK);
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
    vp_st_writer_close(w);

    FILE *f = fopen(path, "rb");
    uint8_t whole[512];
    size_t n = f ? fread(whole, 1, sizeof whole, f) : 0;
    if (f) fclose(f);
    CHECK(n > 60 && n < sizeof whole);
    const char *cut = tmp("cut.safetensors");
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        tu_write_file(cut, whole, len);
        vp_source *src;
        int rc = vp_source_open(&src, cut, NULL);
        if (rc != VP_ERR_FORMAT || !tu_one_line(vp_source_errmsg(src))) {
            bad++;
            fprintf(stderr, "truncated to %zu bytes: rc %d: %s\n", len, rc, vp_source_errmsg(src));
        }
        vp_source_close(src);
    }
    CHECK_EQ_INT(bad, 0);
    tu_write_file(cut, whole, n);
    vp_source *src;
    CHECK_EQ_INT(vp_source_open(&src, cut, NULL), VP_OK);
    vp_source_close(src);
}

/* ---- writer misuse ---------------------------------------------------------- */
/* The writer's temporaries (OUT.tmp-XXXXXX) left in the scratch folder. */
static int count_temporaries(void) { return tu_count_entries(dir, ".tmp-"); }

static void test_writer_errors(void)
{
    const char *path = tmp("w.safetensors");
    int64_t s[] = {2};
    vp_st_writer *w;
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(count_temporaries(), 1);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_F32, 1, s), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_F32, 1, s), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "duplicate tensor name 'a'"));
    CHECK_EQ_INT(vp_st_writer_add(w, "b\nc", VP_F32, 1, s), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "tensor name 'b?c' holds a control character"));
    CHECK(tu_one_line(vp_st_writer_errmsg(w)));
    CHECK_EQ_INT(vp_st_writer_add(w, "b\x7f", VP_F32, 1, s), VP_ERR_ARG);
    CHECK_EQ_INT(vp_st_writer_add(w, "bad\xff", VP_F32, 1, s), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "not valid UTF-8"));
    CHECK_EQ_INT(vp_st_writer_add(w, "__metadata__", VP_F32, 1, s), VP_ERR_ARG);
    int64_t neg[] = {-1};
    CHECK_EQ_INT(vp_st_writer_add(w, "n", VP_F32, 1, neg), VP_ERR_ARG);
    CHECK_EQ_INT(vp_st_writer_add(w, "n", VP_F32, 9, s), VP_ERR_ARG);
    CHECK_EQ_INT(vp_st_writer_add(w, "n", VP_DTYPE_COUNT, 1, s), VP_ERR_ARG);
    int64_t huge[] = {INT64_MAX / 2, 4};
    CHECK_EQ_INT(vp_st_writer_add(w, "n", VP_F32, 2, huge), VP_ERR_ARG);
    CHECK_EQ_INT(vp_st_writer_meta(w, "k", "v"), VP_OK);
    CHECK_EQ_INT(vp_st_writer_meta(w, "k", "w"), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "duplicate metadata key 'k'"));
    CHECK_EQ_INT(vp_st_writer_add(w, "b", VP_U8, 1, s), VP_OK);
    float v[2] = {1, 2};
    CHECK_EQ_INT(vp_st_writer_write(w, v, 4), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "late", VP_U8, 1, s), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "before the first write"));
    CHECK_EQ_INT(vp_st_writer_meta(w, "late", "x"), VP_ERR_ARG);
    /* 10 bytes declared, 4 written: 7 more is too many, and the message names where */
    uint8_t more[8] = {0};
    CHECK_EQ_INT(vp_st_writer_write(w, more, 7), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "7 bytes at data byte 4 (tensor 'a') run past the 10 declared"));
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "only 4 of 10 data bytes were written (tensor 'a' is incomplete)"));
    CHECK(tu_one_line(vp_st_writer_errmsg(w)));
    CHECK(!strncmp(vp_st_writer_errmsg(w), path, strlen(path)));
    vp_st_writer_close(w);   /* not finished: nothing is left behind */
    CHECK(!tu_exists(path));
    CHECK_EQ_INT(count_temporaries(), 0);

    /* finish replaces an existing file; writing after the last byte is refused */
    tu_write_file(path, "old", 3);
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "b", VP_U8, 1, s), VP_OK);
    CHECK_EQ_INT(vp_st_writer_write(w, "xy", 2), VP_OK);
    CHECK_EQ_INT(vp_st_writer_write(w, "z", 1), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "1 bytes written past the 2 declared"));
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_ERR_ARG);
    CHECK_EQ_INT(vp_st_writer_write(w, "z", 1), VP_ERR_ARG);
    vp_st_writer_close(w);
    CHECK_EQ_INT(count_temporaries(), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 10 && (st.st_size - 2) % 8 == 0 && (st.st_mode & 0777) == 0644);

    /* a directory that does not exist */
    CHECK_EQ_INT(vp_st_writer_open(&w, tmp("no/such/dir.safetensors")), VP_ERR_IO);
    CHECK(strstr(vp_st_writer_errmsg(w), "cannot create a temporary file"));
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_U8, 1, s), VP_ERR_IO);
    vp_st_writer_close(w);
    vp_st_writer_close(NULL);
}

/* ---- copy_file_range and its fallback ---------------------------------------- */
static void copy_from(int fd, const char *what)
{
    const char *path = tmp("copy.safetensors");
    uint8_t data[10000];
    fill(data, sizeof data, 3);
    CHECK(pwrite(fd, data, sizeof data, 0) == (ssize_t)sizeof data);
    vp_st_writer *w;
    int64_t s1[] = {2500}, s2[] = {100};
    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_F32, 1, s1), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "b", VP_U8, 1, s2), VP_OK);
    unlink(path);
    int rc = vp_st_writer_copy(w, fd, 0, 10000);
    CHECKF(rc == VP_OK, "%s: %s", what, vp_st_writer_errmsg(w));
    CHECK_EQ_INT(vp_st_writer_copy(w, fd, 9950, 100), VP_ERR_IO);   /* the source ends */
    CHECK(strstr(vp_st_writer_errmsg(w), "the source ends before byte 10000"));
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_ERR_IO);                 /* the failure sticks */
    vp_st_writer_close(w);
    CHECK(!tu_exists(path));

    CHECK_EQ_INT(vp_st_writer_open(&w, path), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_F32, 1, s1), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "b", VP_U8, 1, s2), VP_OK);
    CHECK_EQ_INT(vp_st_writer_copy(w, fd, 0, 9999), VP_OK);
    CHECK_EQ_INT(vp_st_writer_write(w, data + 9999, 1), VP_OK);
    CHECK_EQ_INT(vp_st_writer_copy(w, fd, 17, 100), VP_OK);
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
    vp_st_writer_close(w);
    vp_source *src;
    rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s: %s", what, vp_source_errmsg(src));
    uint8_t got[10000];
    CHECK_EQ_INT(vp_source_read(src, 0, got, sizeof got), VP_OK);
    CHECKF(!memcmp(got, data, 10000), "%s: copied bytes differ", what);
    CHECK_EQ_INT(vp_source_read(src, 1, got, sizeof got), VP_OK);
    CHECKF(!memcmp(got, data + 17, 100), "%s: copied bytes differ", what);
    vp_source_close(src);
}

static void test_copy(void)
{
    int fd = open(tmp("src.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    copy_from(fd, "regular file");   /* copy_file_range in the kernel */
    close(fd);
    fd = memfd_create("vp-test", 0);  /* another file system: EXDEV on older kernels */
    CHECK(fd >= 0);
    copy_from(fd, "memfd");
    close(fd);
    /* A pipe: copy_file_range refuses (EINVAL), pread too: an I/O error, no crash. */
    int p[2];
    CHECK(pipe(p) == 0);
    vp_st_writer *w;
    int64_t s[] = {4};
    CHECK_EQ_INT(vp_st_writer_open(&w, tmp("pipe.safetensors")), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "a", VP_U8, 1, s), VP_OK);
    CHECK_EQ_INT(vp_st_writer_copy(w, p[0], 0, 4), VP_ERR_IO);
    CHECK(tu_one_line(vp_st_writer_errmsg(w)));
    vp_st_writer_close(w);
    close(p[0]);
    close(p[1]);
}

/* ---- 64-bit offsets ---------------------------------------------------------- */
#define BIG ((uint64_t)5 << 30)   /* 5 GiB */

/* Read a file's JSON header. */
static cJSON *header_of(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t h[8];
    if (!f || fread(h, 1, 8, f) != 8) { if (f) fclose(f); return NULL; }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | h[i];
    char *j = n < 4096 ? malloc(n) : NULL;
    cJSON *r = j && fread(j, 1, n, f) == n ? cJSON_ParseWithLength(j, n) : NULL;
    free(j);
    fclose(f);
    return r;
}

static uint64_t offset_of(const cJSON *h, const char *name, int which)
{
    const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, name), "data_offsets");
    const cJSON *v = cJSON_GetArrayItem(o, which);
    return v ? (uint64_t)v->valuedouble : 0;
}

static void test_large(void)
{
    /* Reader: a sparse file with a 5 GiB tensor and a small one after it. */
    char header[256];
    snprintf(header, sizeof header, "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
             "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)BIG, (unsigned long long)BIG, (unsigned long long)BIG, (unsigned long long)BIG + 8);
    const char *path = tmp("big.safetensors");
    tu_write_st(path, header, NULL, 0);
    uint64_t start = 8 + strlen(header);
    float tail[2] = {1.5f, -2.0f};
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)(start + BIG + 8)) == 0);
    CHECK(pwrite(fd, tail, 8, (off_t)(start + BIG)) == 8);
    close(fd);
    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
    if (!rc) {
        CHECK_EQ_INT(vp_source_tensor(src, 0)->nbytes, BIG);
        uint64_t off;
        CHECK_EQ_INT(vp_source_file_range(src, 1, &off), VP_OK);
        CHECK_EQ_INT(off, start + BIG);
        float got[2];
        CHECK_EQ_INT(vp_source_read(src, 1, got, sizeof got), VP_OK);
        CHECK(got[0] == 1.5f && got[1] == -2.0f);
        const uint8_t *p = vp_source_data(src, 0);
        CHECK(p && p[BIG - 1] == 0);
    }
    vp_source_close(src);

    /* Writer: the header it writes for a 5 GiB tensor (read from the temporary). */
    const char *out = tmp("big-out.safetensors");
    vp_st_writer *w;
    int64_t sb[] = {(int64_t)BIG}, st[] = {2};
    CHECK_EQ_INT(vp_st_writer_open(&w, out), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "big", VP_U8, 1, sb), VP_OK);
    CHECK_EQ_INT(vp_st_writer_add(w, "tail", VP_F32, 1, st), VP_OK);
    CHECK_EQ_INT(vp_st_writer_write(w, "", 1), VP_OK);
    char tmpname[600] = "";
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, "big-out.safetensors.tmp-")) snprintf(tmpname, sizeof tmpname, "%s/%s", dir, e->d_name);
    if (d) closedir(d);
    cJSON *h = header_of(tmpname);
    CHECK(h != NULL);
    CHECK_EQ_INT(offset_of(h, "big", 1), BIG);
    CHECK_EQ_INT(offset_of(h, "tail", 0), BIG);
    CHECK_EQ_INT(offset_of(h, "tail", 1), BIG + 8);
    cJSON_Delete(h);
    CHECK_EQ_INT(vp_st_writer_finish(w), VP_ERR_ARG);
    CHECK(strstr(vp_st_writer_errmsg(w), "only 1 of 5368709128 data bytes were written (tensor 'big' is incomplete)"));

    const char *large = getenv("VP_TEST_LARGE");
    if (large && *large == '1') {
        /* Fill it from the sparse file through copy_file_range: 5 GiB on disk. */
        int in = open(path, O_RDONLY);
        CHECK_EQ_INT(vp_st_writer_copy(w, in, start + 1, BIG - 1 + 8), VP_OK);
        close(in);
        CHECK_EQ_INT(vp_st_writer_finish(w), VP_OK);
        vp_st_writer_close(w);
        rc = vp_source_open(&src, out, NULL);
        CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
        float got[2] = {0};
        CHECK_EQ_INT(vp_source_read(src, 1, got, sizeof got), VP_OK);
        CHECK(got[0] == 1.5f && got[1] == -2.0f);
        vp_source_close(src);
        unlink(out);
    } else {
        vp_st_writer_close(w);
    }
    CHECK(!tu_exists(out) && count_temporaries() == 0);
    unlink(path);
}

int main(void)
{
    tu_mkdtemp(dir, sizeof dir, "vp-st");
    test_round_trip();
    test_empty_files();
    test_golden();
    test_truncation();
    test_writer_errors();
    test_copy();
    test_large();
    tu_rmtree(dir);
    TEST_MAIN_END();
}
