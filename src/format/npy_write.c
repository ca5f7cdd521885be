/*
 * Writing .npy files and .npz archives (stored members, CRC-32 from zlib,
 * ZIP64 records when a member or the archive passes 4 GiB), as NumPy's
 * np.save / np.savez lay them out: header version 1.0 (2.0 when the header
 * does not fit), little-endian dtype descr, C order, header padded so the
 * data starts on a 64-byte boundary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/internal.h"
#include "vitport/engine.h"

static const char *descr(vp_dtype t)
{
    switch (t) {
    case VP_F64: return "<f8";
    case VP_F32: return "<f4";
    case VP_F16: return "<f2";
    case VP_I64: return "<i8";
    case VP_I32: return "<i4";
    case VP_I16: return "<i2";
    case VP_I8: return "|i1";
    case VP_U8: return "|u1";
    case VP_BOOL: return "|b1";
    default: return NULL;                 /* NumPy has no bfloat16 */
    }
}

/* The .npy header for the array; returns its length (0 on error). */
static size_t npy_header(char *buf, size_t cap, vp_dtype t, int ndim, const int64_t *shape)
{
    const char *d = descr(t);
    if (!d || ndim < 0 || ndim > VP_MAX_DIMS) return 0;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", d);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t pre = 10, total = pre + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    if (padded - pre > 65535 || padded > cap) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((padded - pre) & 0xff);
    buf[9] = (char)((padded - pre) >> 8);
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', padded - pre - (size_t)n - 1);
    buf[padded - 1] = '\n';
    return padded;
}

static int array_bytes(vp_dtype t, int ndim, const int64_t *shape, uint64_t *out)
{
    uint64_t n = vp_dtype_size(t);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !vp__mul_u64(n, (uint64_t)shape[i], &n)) return VP_ERR_ARG;
    }
    *out = n;
    return VP_OK;
}

static int write_all(int fd, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t w = write(fd, b, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return VP_ERR_IO;
        b += w; n -= (uint64_t)w;
    }
    return VP_OK;
}

static int temp_open(const char *path, char *tmp, size_t len)
{
    if ((size_t)snprintf(tmp, len, "%s.tmp-XXXXXX", path) >= len) return -1;
    int fd = mkstemp(tmp);
    if (fd >= 0) fchmod(fd, 0644);
    return fd;
}

int vp_npy_save(const char *path, vp_dtype dtype, int ndim, const int64_t *shape,
                const void *data, char *err, size_t errlen)
{
    char hdr[1024], tmp[4096];
    uint64_t nbytes;
    size_t hl = npy_header(hdr, sizeof hdr, dtype, ndim, shape);
    if (!hl || array_bytes(dtype, ndim, shape, &nbytes)) {
        snprintf(err, errlen, "%s: cannot write a %s array of %d dimensions as .npy", path, vp_dtype_name(dtype), ndim);
        return VP_ERR_ARG;
    }
    int fd = temp_open(path, tmp, sizeof tmp);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    int rc = write_all(fd, hdr, hl);
    if (!rc) rc = write_all(fd, data, nbytes);
    if (close(fd) && !rc) rc = VP_ERR_IO;
    if (!rc && rename(tmp, path)) rc = VP_ERR_IO;
    if (rc) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); unlink(tmp); }
    return rc;
}

/* ---- .npz ----------------------------------------------------------------- */
typedef struct member { char *name; uint32_t crc; uint64_t size, offset; } member;

struct vp_npz_writer {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[512];
    char *path;
    char tmp[4096];
    int fd;
    uint64_t pos;
    member *m;
    size_t n, cap;
    int done;
};

static int nerr(vp_npz_writer *w, int code, const char *what)
{
    snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", w->path ? w->path : "", what);
    return code;
}

static void le16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static int emit(vp_npz_writer *w, const void *p, uint64_t n)
{
    if (write_all(w->fd, p, n)) return nerr(w, VP_ERR_IO, strerror(errno));
    w->pos += n;
    return VP_OK;
}

static int vp_npz_writer_open__impl(vp_npz_writer **out, const char *path)
{
    vp_npz_writer *w = vp__calloc(1, sizeof *w);
    *out = w;
    if (!w) return VP_ERR_NOMEM;
    w->alloc = vp__alloc_get();
    w->fd = -1;
    w->path = vp__strdup(path);
    if (!w->path) return nerr(w, VP_ERR_NOMEM, "out of memory");
    w->fd = temp_open(path, w->tmp, sizeof w->tmp);
    if (w->fd < 0) return nerr(w, VP_ERR_IO, strerror(errno));
    return VP_OK;
}

int vp_npz_writer_open_ex(vp_npz_writer **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_npz_writer_open__impl(out, path));
}

int vp_npz_writer_open(vp_npz_writer **out, const char *path)
{
    return vp_npz_writer_open_ex(out, path, vp__alloc_current());
}

static int vp_npz_writer_add__impl(vp_npz_writer *w, const char *name, vp_dtype dtype,
                      int ndim, const int64_t *shape, const void *data)
{
    if (w->fd < 0 || w->done) return nerr(w, VP_ERR_ARG, "writer is not open");
    char hdr[1024];
    uint64_t nbytes;
    size_t hl = npy_header(hdr, sizeof hdr, dtype, ndim, shape);
    if (!hl || array_bytes(dtype, ndim, shape, &nbytes)) return nerr(w, VP_ERR_ARG, "array cannot be written as .npy");
    size_t nl = strlen(name);
    if (nl == 0 || nl > 1000) return nerr(w, VP_ERR_ARG, "bad member name");
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        member *m = vp__realloc(w->m, cap * sizeof *m);
        if (!m) return nerr(w, VP_ERR_NOMEM, "out of memory");
        w->m = m; w->cap = cap;
    }
    member *m = &w->m[w->n];
    m->name = vp__malloc(nl + 5);
    if (!m->name) return nerr(w, VP_ERR_NOMEM, "out of memory");
    memcpy(m->name, name, nl);
    memcpy(m->name + nl, ".npy", 5);
    m->size = hl + nbytes;
    m->offset = w->pos;
    uLong crc = crc32(0L, (const Bytef *)hdr, (uInt)hl);
    const uint8_t *d = data;
    for (uint64_t off = 0; off < nbytes;) {
        uInt chunk = nbytes - off > (1u << 30) ? (1u << 30) : (uInt)(nbytes - off);
        crc = crc32(crc, d + off, chunk);
        off += chunk;
    }
    m->crc = (uint32_t)crc;
    w->n++;
    /* Local header; sizes in a ZIP64 extra (always, so one layout). */
    uint8_t lh[30 + 20];
    le32(lh, 0x04034b50); le16(lh + 4, 45); le16(lh + 6, 0); le16(lh + 8, 0);
    le16(lh + 10, 0); le16(lh + 12, 0x21); le32(lh + 14, m->crc);
    le32(lh + 18, 0xffffffffu); le32(lh + 22, 0xffffffffu);
    le16(lh + 26, (unsigned)(nl + 4)); le16(lh + 28, 20);
    le16(lh + 30, 1); le16(lh + 32, 16); le64(lh + 34, m->size); le64(lh + 42, m->size);
    int rc = emit(w, lh, 30);
    if (!rc) rc = emit(w, m->name, nl + 4);
    if (!rc) rc = emit(w, lh + 30, 20);
    if (!rc) rc = emit(w, hdr, hl);
    if (!rc) rc = emit(w, data, nbytes);
    return rc;
}

int vp_npz_writer_add(vp_npz_writer *w, const char *name, vp_dtype dtype,
                      int ndim, const int64_t *shape, const void *data)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_npz_writer_add__impl(w, name, dtype, ndim, shape, data));
}

static int vp_npz_writer_finish__impl(vp_npz_writer *w)
{
    if (w->fd < 0 || w->done) return nerr(w, VP_ERR_ARG, "writer is not open");
    uint64_t cd_start = w->pos;
    int rc = VP_OK;
    for (size_t i = 0; i < w->n && !rc; i++) {
        member *m = &w->m[i];
        size_t nl = strlen(m->name);
        uint8_t ch[46 + 28];
        le32(ch, 0x02014b50); le16(ch + 4, 45); le16(ch + 6, 45); le16(ch + 8, 0); le16(ch + 10, 0);
        le16(ch + 12, 0); le16(ch + 14, 0x21); le32(ch + 16, m->crc);
        le32(ch + 20, 0xffffffffu); le32(ch + 24, 0xffffffffu);
        le16(ch + 28, (unsigned)nl); le16(ch + 30, 28); le16(ch + 32, 0); le16(ch + 34, 0);
        le16(ch + 36, 0); le32(ch + 38, 0644u << 16); le32(ch + 42, 0xffffffffu);
        le16(ch + 46, 1); le16(ch + 48, 24); le64(ch + 50, m->size); le64(ch + 58, m->size); le64(ch + 66, m->offset);
        rc = emit(w, ch, 46);
        if (!rc) rc = emit(w, m->name, nl);
        if (!rc) rc = emit(w, ch + 46, 28);
    }
    uint64_t cd_size = w->pos - cd_start, z64 = w->pos;
    uint8_t e[56 + 20 + 22];
    le32(e, 0x06064b50); le64(e + 4, 44); le16(e + 12, 45); le16(e + 14, 45); le32(e + 16, 0); le32(e + 20, 0);
    le64(e + 24, w->n); le64(e + 32, w->n); le64(e + 40, cd_size); le64(e + 48, cd_start);
    le32(e + 56, 0x07064b50); le32(e + 60, 0); le64(e + 64, z64); le32(e + 72, 1);
    uint8_t *eo = e + 76;
    le32(eo, 0x06054b50); le16(eo + 4, 0); le16(eo + 6, 0);
    le16(eo + 8, w->n > 0xfffe ? 0xffff : (unsigned)w->n); le16(eo + 10, w->n > 0xfffe ? 0xffff : (unsigned)w->n);
    le32(eo + 12, cd_size > 0xfffffffeu ? 0xffffffffu : (uint32_t)cd_size);
    le32(eo + 16, cd_start > 0xfffffffeu ? 0xffffffffu : (uint32_t)cd_start); le16(eo + 20, 0);
    if (!rc) rc = emit(w, e, sizeof e);
    if (close(w->fd) && !rc) rc = nerr(w, VP_ERR_IO, strerror(errno));
    w->fd = -1;
    if (!rc && rename(w->tmp, w->path)) rc = nerr(w, VP_ERR_IO, strerror(errno));
    if (rc) unlink(w->tmp);
    else w->done = 1;
    return rc;
}

int vp_npz_writer_finish(vp_npz_writer *w)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_npz_writer_finish__impl(w));
}

static void vp_npz_writer_close__impl(vp_npz_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) { close(w->fd); unlink(w->tmp); }
    for (size_t i = 0; i < w->n; i++) vp__free(w->m[i].name);
    vp__free(w->m);
    vp__free(w->path);
    vp__free(w);
}

void vp_npz_writer_close(vp_npz_writer *w)
{
    VP__WITH_ALLOC_VOID(w ? &w->alloc : vp__alloc_current(), vp_npz_writer_close__impl(w));
}

const char *vp_npz_writer_errmsg(const vp_npz_writer *w) { return w ? w->errmsg : "out of memory"; }
