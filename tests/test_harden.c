/* What an adversarial pass found (issue 9), each with a positive control
 * built the same way: messages that print what was checked (finding 4),
 * CRC-32 of the zip members whose bytes are read (finding 2), and memory
 * bounded by a small multiple of the header for the table-building readers
 * (finding 3, measured through the allocator hook, not RSS). */
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
    free(npy.p);

    /* formats without checksums: nothing to check, not a failure */
    bytes st = {0};
    const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    put64(&st, strlen(hdr)); put_str(&st, hdr); put(&st, FOUR, sizeof FOUR);
    o = crc_try(write_tmp("plain.safetensors", &st), 1);
    CHECKF(o.open == VP_OK && o.read == VP_OK && o.check == VP_OK && o.checked == 0, "safetensors: %s", o.msg);
    free(st.p);
}

int main(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_harden");
    messages();
    crc_checks();
    tu_rmtree(tmpdir);
    TEST_MAIN_END();
}
