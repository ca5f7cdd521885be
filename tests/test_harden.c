/* What an adversarial pass found (issue 9), each with a positive control
 * built the same way: messages that print what was checked (finding 4),
 * CRC-32 of the zip members whose bytes are read (finding 2), and memory
 * bounded by a small multiple of the header for the table-building readers
 * (finding 3, measured through the allocator hook, not RSS). */
#include <cjson/cJSON.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "test.h"
#include "test_bytes.h"
#include "test_util.h"
#include "vitport/vitport.h"

static char tmpdir[4096];

static const float FOUR[4] = {1.5f, -2.0f, 0.25f, 8.0f};

/* LONG1 with 8 bytes: any int64 (pk_int is 32-bit). */
static void pk_i64(bytes *b, int64_t v)
{
    put8(b, 0x8a); put8(b, 8); put64(b, (uint64_t)v);
}

/* {"x": _rebuild_tensor_v2(persid(pid), offset, (n,), (1,), False, OrderedDict())}
 * where pid is ('storage', FloatStorage, '0', 'cpu', numel), or the empty
 * tuple when empty_pid. */
static bytes pk_tensor64(int64_t numel, int64_t offset, int64_t n, int empty_pid)
{
    bytes b = {0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, '}');
    pk_str(&b, "x");
    pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    put8(&b, '(');
    if (empty_pid) put8(&b, ')');
    else { put8(&b, '('); pk_str(&b, "storage"); pk_global(&b, "torch", "FloatStorage"); pk_str(&b, "0"); pk_str(&b, "cpu"); pk_i64(&b, numel); put8(&b, 't'); }
    put8(&b, 'Q');
    pk_i64(&b, offset);
    put8(&b, '('); pk_i64(&b, n); put8(&b, 't');
    put8(&b, '('); pk_i64(&b, 1); put8(&b, 't');
    put8(&b, 0x89);
    pk_global(&b, "collections", "OrderedDict"); put8(&b, ')'); put8(&b, 'R');
    put8(&b, 't'); put8(&b, 'R');
    put8(&b, 's'); put8(&b, '.');
    return b;
}

/* A torch.save archive (members stored or deflated, data aligned to 64). */
static bytes torch_zip(const bytes *pkl, const void *data, size_t len, int method, zlayout *L)
{
    zmember m[4] = {{"t/data.pkl", pkl->p, pkl->n, 0, true}, {"t/byteorder", "little", 6, 0, true},
                    {"t/data/0", data, len, method, true}, {"t/version", "3\n", 2, 0, true}};
    return build_zip(m, 4, false, L);
}

static const char *write_tmp(const char *name, const bytes *b)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    tu_write_file(path, b->p, b->n);
    return path;
}

/* Open and read every tensor; the code of the first failure, its message in msg. */
static int open_read(const char *path, char *msg, size_t len)
{
    vp_source *src = NULL;
    int rc = vp_source_open(&src, path, NULL);
    for (size_t i = 0; rc == VP_OK && i < vp_source_count(src); i++) {
        const vp_tensor *t = vp_source_tensor(src, i);
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        rc = vp_source_read(src, i, buf, (size_t)t->nbytes);
        free(buf);
    }
    snprintf(msg, len, "%s", rc ? vp_source_errmsg(src) : "");
    vp_source_close(src);
    return rc;
}

/* ---- finding 4: messages print what was checked ------------------------ */
static void messages(void)
{
    char msg[1024];
    /* control: offset 0, 4 elements of a 4-element storage */
    bytes p = pk_tensor64(4, 0, 4, 0);
    bytes z = torch_zip(&p, FOUR, sizeof FOUR, 0, NULL);
    CHECKF(open_read(write_tmp("ok.pth", &z), msg, sizeof msg) == VP_OK, "control: %s", msg);
    free(p.p); free(z.p);

    /* offset 2^62: (2^62 + 1) * 4 bytes wraps to 4; the old message said
     * "needs 4 bytes ... but it holds 16" */
    p = pk_tensor64(4, (int64_t)1 << 62, 1, 0);
    z = torch_zip(&p, FOUR, sizeof FOUR, 0, NULL);
    CHECK(open_read(write_tmp("off62.pth", &z), msg, sizeof msg) == VP_ERR_FORMAT);
    CHECKF(tu_has(msg, "4611686018427387904") && tu_has(msg, "overflows") && tu_has(msg, "holds 16"), "%s", msg);
    CHECKF(!tu_has(msg, "needs 4 bytes"), "wrapped product printed: %s", msg);
    free(p.p); free(z.p);

    /* offset 2^63 - 2: the product wraps to 0 */
    p = pk_tensor64(4, INT64_MAX - 1, 1, 0);
    z = torch_zip(&p, FOUR, sizeof FOUR, 0, NULL);
    CHECK(open_read(write_tmp("off63.pth", &z), msg, sizeof msg) == VP_ERR_FORMAT);
    CHECKF(tu_has(msg, "9223372036854775806") && tu_has(msg, "overflows"), "%s", msg);
    CHECKF(!tu_has(msg, "needs 0 bytes") && !tu_has(msg, "needs 8 bytes"), "wrapped product printed: %s", msg);
    free(p.p); free(z.p);

    /* no overflow, too short: the bytes needed, the elements reached */
    p = pk_tensor64(4, 2, 3, 0);
    z = torch_zip(&p, FOUR, sizeof FOUR, 0, NULL);
    CHECK(open_read(write_tmp("short.pth", &z), msg, sizeof msg) == VP_ERR_FORMAT);
    CHECKF(tu_has(msg, "needs 20 bytes") && tu_has(msg, "holds 16"), "%s", msg);
    free(p.p); free(z.p);

    /* BINPERSID on an empty tuple */
    p = pk_tensor64(4, 0, 4, 1);
    z = torch_zip(&p, FOUR, sizeof FOUR, 0, NULL);
    CHECK(open_read(write_tmp("emptypid.pth", &z), msg, sizeof msg) == VP_ERR_FORMAT);
    CHECKF(tu_has(msg, "empty tuple") && !tu_has(msg, "is a tuple, not a tuple"), "%s", msg);
    free(p.p); free(z.p);
}


/* ---- finding 2: CRC-32 of the zip members whose bytes are read ----------- */
typedef struct crc_outcome { int open, read, range, data_null, check; size_t checked; char msg[1024]; } crc_outcome;

/* Open path, then: vp_source_read of tensor 0 (with the check on or off),
 * vp_source_file_range and vp_source_data on a fresh handle each, and
 * vp_source_check_data. */
static crc_outcome crc_try(const char *path, int on)
{
    crc_outcome o;
    memset(&o, 0, sizeof o);
    float buf[8];
    vp_source *s = NULL;
    o.open = vp_source_open(&s, path, NULL);
    if (o.open == VP_OK) {
        vp_source_set_crc_check(s, on);
        o.read = vp_source_read(s, 0, buf, sizeof buf);
        snprintf(o.msg, sizeof o.msg, "%s", vp_source_errmsg(s));
    } else snprintf(o.msg, sizeof o.msg, "%s", vp_source_errmsg(s));
    vp_source_close(s);
    if (o.open) return o;
    uint64_t off;
    vp_source_open(&s, path, NULL);
    vp_source_set_crc_check(s, on);
    o.range = vp_source_file_range(s, 0, &off);
    vp_source_close(s);
    vp_source_open(&s, path, NULL);
    vp_source_set_crc_check(s, on);
    o.data_null = vp_source_data(s, 0) == NULL;
    vp_source_close(s);
    vp_source_open(&s, path, NULL);
    vp_source_set_crc_check(s, 0);   /* an explicit check ignores the setting */
    o.check = vp_source_check_data(s, &o.checked);
    vp_source_close(s);
    return o;
}

static void crc_checks(void)
{
    zlayout L;
    /* stored member, as torch.save writes */
    bytes p = pk_tensor64(4, 0, 4, 0);
    bytes z = torch_zip(&p, FOUR, sizeof FOUR, 0, &L);
    crc_outcome o = crc_try(write_tmp("crc-ok.pth", &z), 1);
    CHECKF(o.open == VP_OK && o.read == VP_OK && o.range == VP_OK && !o.data_null && o.check == VP_OK && o.checked == 1,
           "control: %d %d %d %d %d %zu %s", o.open, o.read, o.range, o.data_null, o.check, o.checked, o.msg);

    z.p[L.data[2] + 5] ^= 0x01;   /* one bit inside t/data/0 */
    const char *bad = write_tmp("crc-bad.pth", &z);
    o = crc_try(bad, 1);
    CHECK_EQ_INT(o.open, VP_OK);                 /* opening reads no tensor bytes */
    CHECK_EQ_INT(o.read, VP_ERR_FORMAT);
    CHECKF(tu_has(o.msg, "'t/data/0'") && tu_has(o.msg, "CRC-32") && tu_one_line(o.msg), "%s", o.msg);
    CHECK_EQ_INT(o.range, VP_ERR_FORMAT);        /* the copy_file_range path is checked too */
    CHECK(o.data_null);
    CHECK_EQ_INT(o.check, VP_ERR_FORMAT);
    o = crc_try(bad, 0);                         /* the escape hatch */
    CHECKF(o.read == VP_OK && o.range == VP_OK && !o.data_null, "check off: %d %d %d %s", o.read, o.range, o.data_null, o.msg);
    CHECK_EQ_INT(o.check, VP_ERR_FORMAT);
    free(z.p);

    /* deflated member whose central CRC-32 is wrong, read whole and in part
     * (a storage of 2 elements in a member of 4: not inflated whole) */
    for (int part = 0; part < 2; part++) {
        free(p.p);
        p = pk_tensor64(part ? 2 : 4, 0, part ? 2 : 4, 0);
        z = torch_zip(&p, FOUR, sizeof FOUR, 8, &L);
        o = crc_try(write_tmp("crc-dok.pth", &z), 1);
        CHECKF(o.open == VP_OK && o.read == VP_OK && o.check == VP_OK && o.checked == 1, "deflated control %d: %s", part, o.msg);
        wr32(z.p + L.cen[2] + 16, rd32(z.p + L.cen[2] + 16) ^ 0x100u);
        o = crc_try(write_tmp("crc-dbad.pth", &z), 1);
        CHECKF(o.open == VP_OK && o.read == VP_ERR_FORMAT && tu_has(o.msg, "'t/data/0'") && tu_has(o.msg, "CRC-32"),
               "deflated, part %d: open %d read %d: %s", part, o.open, o.read, o.msg);
        CHECK_EQ_INT(o.check, VP_ERR_FORMAT);
        free(z.p);
    }
    free(p.p);

    /* npz: a stored member with one bit flipped in its data */
    bytes npy = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", FOUR, sizeof FOUR);
    zmember m[1] = {{"x.npy", npy.p, npy.n, 0, false}};
    z = build_zip(m, 1, false, &L);
    o = crc_try(write_tmp("crc-ok.npz", &z), 1);
    CHECKF(o.open == VP_OK && o.read == VP_OK && o.range == VP_OK && o.checked == 1, "npz control: %s", o.msg);
    z.p[L.data[0] + npy.n - 2] ^= 0x80;
    o = crc_try(write_tmp("crc-bad.npz", &z), 1);
    CHECKF(o.read == VP_ERR_FORMAT && tu_has(o.msg, "'x.npy'") && tu_has(o.msg, "CRC-32"), "npz: %d %s", o.read, o.msg);
    CHECK_EQ_INT(o.range, VP_ERR_FORMAT);
    free(z.p);
    /* the same npz deflated: inflating it whole checks it */
    m[0].method = 8;
    z = build_zip(m, 1, false, &L);
    wr32(z.p + L.cen[0] + 16, rd32(z.p + L.cen[0] + 16) ^ 1u);
    o = crc_try(write_tmp("crc-dbad.npz", &z), 1);
    CHECKF(o.read == VP_ERR_FORMAT && tu_has(o.msg, "'x.npy'") && tu_has(o.msg, "CRC-32"), "deflated npz: %d %s", o.read, o.msg);
    free(z.p);
    /* a member named with a terminal escape (ESC [ 2 J clears the screen):
     * the message names it with the control characters as spaces */
    zmember me[1] = {{"x\033[2J\177.npy", npy.p, npy.n, 0, false}};
    z = build_zip(me, 1, false, &L);
    z.p[L.data[0] + npy.n - 2] ^= 0x80;
    o = crc_try(write_tmp("crc-esc.npz", &z), 1);
    CHECKF(o.read == VP_ERR_FORMAT && tu_no_control(o.msg) && tu_has(o.msg, "'x [2J .npy'"),
           "escape in a member name: %s", o.msg);
    free(z.p);
    free(npy.p);

    /* formats without checksums: nothing to check, not a failure */
    bytes st = {0};
    const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    put64(&st, strlen(hdr)); put_str(&st, hdr); put(&st, FOUR, sizeof FOUR);
    o = crc_try(write_tmp("plain.safetensors", &st), 1);
    CHECKF(o.open == VP_OK && o.read == VP_OK && o.check == VP_OK && o.checked == 0, "safetensors: %s", o.msg);
    free(st.p);
}

/* ---- finding 3: memory bounded by a small multiple of the input --------- */
/* An allocator that counts live bytes (a header before each block keeps
 * its size) and the peak. */

/* cJSON takes hooks without a context: they count into this one. (The
 * safetensors reader once built a cJSON tree outside the library's
 * allocator; counting it too keeps this test able to see that.) */
static tu_counting *cjson_count;
static void *cjson_malloc(size_t n) { return tu_counting_alloc(cjson_count, NULL, 0, n); }
static void cjson_free(void *p) { if (p) tu_counting_alloc(cjson_count, p, 0, 0); }

/* Peak bytes allocated while opening (and closing) path: the library's
 * allocator hook, and cJSON's. */
static size_t peak_open(const char *path, int *rc, size_t *count)
{
    tu_counting c = {0, 0};
    cjson_count = &c;
    cJSON_Hooks hooks = {cjson_malloc, cjson_free};
    cJSON_InitHooks(&hooks);
    vp__set_allocator(tu_counting_alloc, &c);
    vp_source *src = NULL;
    *rc = vp_source_open(&src, path, NULL);
    *count = vp_source_count(src);
    vp_source_close(src);
    vp__set_allocator(NULL, NULL);
    cJSON_InitHooks(NULL);
    if (c.live) fprintf(stderr, "%s: %zu bytes still allocated after close\n", path, c.live);
    return c.peak;
}

/* A safetensors file whose header holds n entries made by entry(i). */
static bytes st_file(size_t n, int kind)
{
    bytes h = {0};
    put_str(&h, kind == 2 ? "{\"__metadata__\":{" : "{");
    char b[256];
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        switch (kind) {
        case 0: k = snprintf(b, sizeof b, "\"t%zu\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", i); break;
        case 1: k = snprintf(b, sizeof b, "\"t%zu\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,0],\"data_offsets\":[0,0]}", i); break;
        case 2: k = snprintf(b, sizeof b, "\"m%zu\":\"\"", i); break;   /* inside __metadata__ */
        }
        if (i) put_str(&h, ",");
        put(&h, b, (size_t)k);
    }
    put_str(&h, kind == 2 ? "}}" : "}");
    put8(&h, 0);
    bytes f = st_build((const char *)h.p, NULL, 0);
    free(h.p);
    return f;
}

static void memory_bounds(void)
{
    static const char *what[] = {"empty tensors", "8-d empty tensors", "metadata pairs"};
    for (int kind = 0; kind < 3; kind++) {
        size_t n = 200000;
        bytes f = st_file(n, kind);
        int rc;
        size_t count;
        size_t peak = peak_open(write_tmp("many.safetensors", &f), &rc, &count);
        size_t header = f.n - 8;
        double ratio = (double)peak / (double)header;
        printf("safetensors, %zu %s: header %zu bytes, peak %zu bytes allocated (%.1fx)\n", n, what[kind], header, peak, ratio);
        CHECKF(rc == VP_OK && count == (kind == 2 ? 0 : n), "%s: rc %d, %zu tensors", what[kind], rc, count);
        CHECKF(peak <= (size_t)VP_ST_MEM_PER_HEADER_BYTE * header + VP_ST_MEM_FIXED,
               "%s: peak %zu bytes for a %zu-byte header is more than %u per byte + %u", what[kind], peak, header,
               VP_ST_MEM_PER_HEADER_BYTE, VP_ST_MEM_FIXED);
        free(f.p);
    }
}

/* A zip of n stored members (n < 65536), for tables too big for
 * build_zip's ZIP_MAX_MEMBERS. */
static bytes build_zip_many(const zmember *m, int n)
{
    bytes b = {0};
    size_t *lho = malloc((size_t)n * sizeof *lho);
    uint32_t *crc = malloc((size_t)n * sizeof *crc);
    for (int i = 0; i < n; i++) {
        size_t nlen = strlen(m[i].name);
        crc[i] = (uint32_t)libdeflate_crc32(0, m[i].data, m[i].len);
        lho[i] = b.n;
        put32(&b, 0x04034b50); put16(&b, 20); put16(&b, 0); put16(&b, 0); put16(&b, 0); put16(&b, 0x21);
        put32(&b, crc[i]); put32(&b, (uint32_t)m[i].len); put32(&b, (uint32_t)m[i].len);
        put16(&b, (unsigned)nlen); put16(&b, 0); put(&b, m[i].name, nlen); put(&b, m[i].data, m[i].len);
    }
    size_t cd = b.n;
    for (int i = 0; i < n; i++) {
        size_t nlen = strlen(m[i].name);
        put32(&b, 0x02014b50); put16(&b, 0x031e); put16(&b, 20); put16(&b, 0); put16(&b, 0); put16(&b, 0); put16(&b, 0x21);
        put32(&b, crc[i]); put32(&b, (uint32_t)m[i].len); put32(&b, (uint32_t)m[i].len);
        put16(&b, (unsigned)nlen); put16(&b, 0); put16(&b, 0); put16(&b, 0); put16(&b, 0); put32(&b, 0);
        put32(&b, (uint32_t)lho[i]); put(&b, m[i].name, nlen);
    }
    size_t cdsize = b.n - cd;
    put32(&b, 0x06054b50); put16(&b, 0); put16(&b, 0); put16(&b, (unsigned)n); put16(&b, (unsigned)n);
    put32(&b, (uint32_t)cdsize); put32(&b, (uint32_t)cd); put16(&b, 0);
    free(lho);
    free(crc);
    return b;
}

/* The same measure for the other readers' tables: a zip central directory
 * of many members, an npz of many tiny arrays, a pickle of one-byte
 * opcodes that each make a value (the worst per input byte). */
static void memory_bounds_others(void)
{
    enum { NZ = 20000, NNPZ = 4000 };
    static zmember m[NZ];
    static char names[NZ][16];
    int rc;
    size_t count;
    /* zip: many empty stored members; the archive is refused (neither
     * data.pkl nor .npy) after its directory is read */
    for (int i = 0; i < NZ; i++) { snprintf(names[i], sizeof names[i], "m%d", i); m[i] = (zmember){names[i], "", 0, 0, false}; }
    bytes z = build_zip_many(m, NZ);
    size_t peak = peak_open(write_tmp("many.zip", &z), &rc, &count);
    printf("zip, %d members: %zu bytes, peak %zu bytes allocated (%.1fx)\n", NZ, z.n, peak, (double)peak / (double)z.n);
    CHECKF(rc == VP_ERR_UNSUPPORTED, "many-member zip: rc %d", rc);
    CHECKF(peak <= (size_t)VP_ZIP_MEM_PER_BYTE * z.n + VP_ZIP_MEM_FIXED, "zip: peak %zu for %zu bytes", peak, z.n);
    free(z.p);

    /* npz: many one-byte arrays */
    bytes npy = make_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }", "x", 1);
    static char npz_names[NNPZ][20];
    for (int i = 0; i < NNPZ; i++) { snprintf(npz_names[i], sizeof npz_names[i], "a%d.npy", i); m[i] = (zmember){npz_names[i], npy.p, npy.n, 0, false}; }
    z = build_zip_many(m, NNPZ);
    peak = peak_open(write_tmp("many.npz", &z), &rc, &count);
    printf("npz, %d members: %zu bytes, peak %zu bytes allocated (%.1fx)\n", NNPZ, z.n, peak, (double)peak / (double)z.n);
    CHECKF(rc == VP_OK && count == NNPZ, "many-member npz: rc %d, %zu tensors", rc, count);
    CHECKF(peak <= (size_t)VP_ZIP_MEM_PER_BYTE * z.n + VP_ZIP_MEM_FIXED, "npz: peak %zu for %zu bytes", peak, z.n);
    free(z.p);
    free(npy.p);

    /* pickle: PROTO 2, then EMPTY_LIST + MEMOIZE pairs (each byte pair a
     * new value, a stack slot and a memo entry), then STOP */
    enum { NP = 1 << 19 };
    bytes pk = {0};
    put8(&pk, 0x80); put8(&pk, 4);
    for (int i = 0; i < NP; i++) { put8(&pk, ']'); put8(&pk, 0x94); }
    put8(&pk, '.');
    z = torch_zip(&pk, FOUR, sizeof FOUR, 0, NULL);
    peak = peak_open(write_tmp("lists.pth", &z), &rc, &count);
    printf("pickle, %d lists: %zu bytes of pickle, peak %zu bytes allocated (%.1fx)\n", NP, pk.n, peak, (double)peak / (double)pk.n);
    CHECKF(rc == VP_OK ? count == 0 : 1, "the list pickle gave %zu tensors", count);
    CHECKF(peak <= (size_t)VP_PICKLE_MEM_PER_BYTE * pk.n + VP_ARENA_FIXED + VP_PICKLE_MEM_FIXED,
           "pickle: peak %zu for %zu bytes", peak, pk.n);
    free(z.p);
    free(pk.p);
}

/* Big stored members are checked by a thread ahead of the reader
 * (VP_CRC_AHEAD_MIN): the outcome must be the same, whichever side checks
 * a member, and closing the source mid-check must neither hang nor leak. */
static void crc_ahead(void)
{
    enum { K = 4 };
    const size_t per = (VP_CRC_AHEAD_MIN / K) + (1u << 20);   /* together above the threshold */
    const size_t numel = per / 4;
    bytes p = {0};
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    char key[8];
    for (int k = 0; k < K; k++) {
        snprintf(key, sizeof key, "t%d", k);
        pk_str(&p, key);
        snprintf(key, sizeof key, "%d", k);
        pk_global(&p, "torch._utils", "_rebuild_tensor_v2");
        put8(&p, '(');
        put8(&p, '('); pk_str(&p, "storage"); pk_global(&p, "torch", "FloatStorage"); pk_str(&p, key); pk_str(&p, "cpu"); pk_i64(&p, (int64_t)numel); put8(&p, 't');
        put8(&p, 'Q'); pk_i64(&p, 0);
        put8(&p, '('); pk_i64(&p, (int64_t)numel); put8(&p, 't');
        put8(&p, '('); pk_i64(&p, 1); put8(&p, 't');
        put8(&p, 0x89); pk_global(&p, "collections", "OrderedDict"); put8(&p, ')'); put8(&p, 'R');
        put8(&p, 't'); put8(&p, 'R');
    }
    put8(&p, 'u'); put8(&p, '.');
    uint8_t *data = malloc(per * K);
    for (size_t i = 0; i < per * K; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    zmember m[K + 1];
    char names[K][16];
    m[0] = (zmember){"t/data.pkl", p.p, p.n, 0, true};
    for (int k = 0; k < K; k++) {
        snprintf(names[k], sizeof names[k], "t/data/%d", k);
        m[k + 1] = (zmember){names[k], data + (size_t)k * per, numel * 4, 0, true};
    }
    zlayout L;
    bytes z = build_zip(m, K + 1, false, &L);
    const char *path = write_tmp("ahead.pth", &z);
    uint64_t off;
    /* all good: every tensor's range is offered, in any order */
    vp_source *s = NULL;
    CHECK_EQ_INT(vp_source_open(&s, path, NULL), VP_OK);
    for (int k = K - 1; k >= 0; k--) CHECKF(vp_source_file_range(s, (size_t)k, &off) == VP_OK, "%s", vp_source_errmsg(s));
    CHECKF(vp_source_check_data(s, &(size_t){0}) == VP_OK, "%s", vp_source_errmsg(s));
    vp_source_close(s);
    /* closing right after the thread starts: no hang, no leak */
    CHECK_EQ_INT(vp_source_open(&s, path, NULL), VP_OK);
    CHECK_EQ_INT(vp_source_file_range(s, 0, &off), VP_OK);
    vp_source_close(s);
    /* the last member damaged: found whichever side checks it */
    z.p[L.data[K] + per / 2] ^= 0x10;
    path = write_tmp("ahead-bad.pth", &z);
    for (int order = 0; order < 2; order++) {
        CHECK_EQ_INT(vp_source_open(&s, path, NULL), VP_OK);
        int bad_rc = 0;
        for (int i = 0; i < K; i++) {
            int k = order ? K - 1 - i : i;
            int rc = vp_source_file_range(s, (size_t)k, &off);
            if (k == K - 1) {
                bad_rc = rc;
                CHECKF(tu_has(vp_source_errmsg(s), "'t/data/3'") && tu_has(vp_source_errmsg(s), "CRC-32"), "%s", vp_source_errmsg(s));
            } else CHECKF(rc == VP_OK, "order %d, tensor %d: %s", order, k, vp_source_errmsg(s));
        }
        CHECK_EQ_INT(bad_rc, VP_ERR_FORMAT);
        vp_source_close(s);
    }
    /* cancelled: the reader stops with "interrupted" (the caller's flag) */
    atomic_int flag;
    atomic_init(&flag, 1);
    CHECK_EQ_INT(vp_source_open(&s, path, NULL), VP_OK);
    s->cancel = &flag;
    CHECK_EQ_INT(vp_source_file_range(s, 1, &off), VP_ERR_IO);
    CHECKF(tu_has(vp_source_errmsg(s), "interrupted"), "%s", vp_source_errmsg(s));
    vp_source_close(s);
    free(z.p);
    free(data);
    free(p.p);
}

int main(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_harden");
    messages();
    crc_checks();
    crc_ahead();
    memory_bounds();
    memory_bounds_others();
    if (!getenv("VP_HARDEN_KEEP")) tu_rmtree(tmpdir);
    TEST_MAIN_END();
}
