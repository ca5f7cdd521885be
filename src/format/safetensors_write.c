/*
 * safetensors: a streaming writer (the reader: safetensors.c). Tensors are
 * declared first (names, dtypes, shapes), which fixes the header; their
 * bytes then follow in declaration order, written or copied from a file
 * descriptor, into a temporary file renamed into place when complete. The
 * header is laid out as the reference writer (serde_json) writes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/format.h"

typedef struct st_decl {
    char *name;
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    uint64_t begin, end;   /* in the data buffer */
} st_decl;

struct vp_st_writer {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    int rc;                  /* sticky: the first failure */
    char *path, *tmppath;
    int fd;
    st_decl *t;
    size_t nt, capt;
    size_t *hash;            /* open addressing over t (index + 1; 0 = empty) */
    size_t caphash;
    char **mkeys, **mvals;
    size_t nm, capm;
    bool started, finished;
    uint64_t total;          /* declared data bytes */
    uint64_t written;        /* data bytes written so far */
    uint8_t *chunk;          /* pread fallback buffer, allocated on first need */
    uint64_t data_start;     /* file offset of the first data byte (8 + header) */
    bool durable;            /* fsync before the rename */
};

static int werr(vp_st_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int werr(vp_st_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(w->errmsg, sizeof w->errmsg, w->path, fmt, ap);
    va_end(ap);
    if (code != VP_ERR_ARG && !w->rc) w->rc = code;   /* misuse leaves the file usable */
    return code;
}

const char *vp_st_writer_errmsg(const vp_st_writer *w) { return w ? w->errmsg : "out of memory"; }

static int vp_st_writer_open__impl(vp_st_writer **out, const char *path)
{
    vp_st_writer *w = vp__calloc(1, sizeof *w);
    *out = w;
    if (!w) return VP_ERR_NOMEM;
    w->alloc = vp__alloc_get();
    w->fd = -1;
    if (!path || !*path) { w->rc = VP_ERR_ARG; snprintf(w->errmsg, sizeof w->errmsg, "no output path"); return VP_ERR_ARG; }
    w->path = vp__strdup(path);
    if (!w->path) return werr(w, VP_ERR_NOMEM, "out of memory");
    /* The temporary lives beside the target so that rename() is atomic. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    vp_buf b = {0};
    vp__buf_add(&b, path, dirlen);
    vp__buf_printf(&b, ".%s.tmp-XXXXXX", path + dirlen);
    if (b.oom) { vp__buf_free(&b); return werr(w, VP_ERR_NOMEM, "out of memory"); }
    w->tmppath = b.p;
    w->fd = mkostemp(w->tmppath, O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        vp__free(w->tmppath);
        w->tmppath = NULL;
        return werr(w, VP_ERR_IO, "cannot create a temporary file beside it: %s", strerror(e));
    }
    /* mkstemp makes the file private (0600); the result is an ordinary data file. */
    if (fchmod(w->fd, 0644) != 0) return werr(w, VP_ERR_IO, "cannot set the file mode: %s", strerror(errno));
    return VP_OK;
}

int vp_st_writer_open_ex(vp_st_writer **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_st_writer_open__impl(out, path));
}

int vp_st_writer_open(vp_st_writer **out, const char *path)
{
    return vp_st_writer_open_ex(out, path, vp__alloc_current());
}

/* Names become JSON keys and appear in messages: valid UTF-8, no control
 * characters, not the reserved key. */
static int check_name(vp_st_writer *w, const char *what, const char *s, bool allow_ctl)
{
    size_t n = strlen(s);
    if (n > VP_MAX_NAME) return werr(w, VP_ERR_ARG, "%s longer than %d bytes", what, VP_MAX_NAME);
    if (vp__utf8_check((const uint8_t *)s, n, false) != n) return werr(w, VP_ERR_ARG, "%s is not valid UTF-8", what);
    if (!allow_ctl)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                char b[VP_SHOWN_LEN];
                return werr(w, VP_ERR_ARG, "%s '%s' holds a control character", what, vp__shown(b, s));
            }
    return VP_OK;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Find name in the hash set; returns the slot (empty or holding it). */
static size_t hash_slot(const vp_st_writer *w, const char *name)
{
    size_t mask = w->caphash - 1, i = (size_t)hash_name(name) & mask;
    while (w->hash[i] && strcmp(w->t[w->hash[i] - 1].name, name)) i = (i + 1) & mask;
    return i;
}

static bool hash_grow(vp_st_writer *w)
{
    size_t cap = w->caphash ? w->caphash * 2 : 64;
    size_t *h = vp__calloc(cap, sizeof *h);
    if (!h) return false;
    vp__free(w->hash);
    w->hash = h;
    w->caphash = cap;
    for (size_t k = 0; k < w->nt; k++) w->hash[hash_slot(w, w->t[k].name)] = k + 1;
    return true;
}

static int check_declaring(vp_st_writer *w)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->started || w->finished) return werr(w, VP_ERR_ARG, "tensors and metadata must be declared before the first write");
    return VP_OK;
}

static int vp_st_writer_meta__impl(vp_st_writer *w, const char *key, const char *value)
{
    int rc = check_declaring(w);
    if (rc) return rc;
    if (!key || !value) return werr(w, VP_ERR_ARG, "metadata key or value is NULL");
    if ((rc = check_name(w, "metadata key", key, false)) || (rc = check_name(w, "metadata value", value, true))) return rc;
    char b[VP_SHOWN_LEN];
    for (size_t i = 0; i < w->nm; i++)
        if (!strcmp(w->mkeys[i], key)) return werr(w, VP_ERR_ARG, "duplicate metadata key '%s'", vp__shown(b, key));
    if (w->nm == w->capm) {
        size_t cap = w->capm ? w->capm * 2 : 16;
        char **k = vp__realloc(w->mkeys, cap * sizeof *k);
        if (!k) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->mkeys = k;
        char **v = vp__realloc(w->mvals, cap * sizeof *v);
        if (!v) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->mvals = v;
        w->capm = cap;
    }
    char *k = vp__strdup(key), *v = vp__strdup(value);
    if (!k || !v) { vp__free(k); vp__free(v); return werr(w, VP_ERR_NOMEM, "out of memory"); }
    w->mkeys[w->nm] = k;
    w->mvals[w->nm++] = v;
    return VP_OK;
}

int vp_st_writer_meta(vp_st_writer *w, const char *key, const char *value)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_meta__impl(w, key, value));
}

static int vp_st_writer_add__impl(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape)
{
    int rc = check_declaring(w);
    if (rc) return rc;
    if (!name) return werr(w, VP_ERR_ARG, "tensor name is NULL");
    if ((rc = check_name(w, "tensor name", name, false))) return rc;
    char b[VP_SHOWN_LEN];
    const char *nm = vp__shown(b, name);
    if (!strcmp(name, "__metadata__")) return werr(w, VP_ERR_ARG, "'__metadata__' is reserved, not a tensor name");
    if ((unsigned)dtype >= VP_DTYPE_COUNT) return werr(w, VP_ERR_ARG, "tensor '%s': bad dtype %d", nm, (int)dtype);
    if (ndim < 0 || ndim > VP_MAX_DIMS || (ndim && !shape))
        return werr(w, VP_ERR_ARG, "tensor '%s': %d dimensions (0 to %d, with a shape)", nm, ndim, VP_MAX_DIMS);
    uint64_t bytes = vp_dtype_size(dtype), end;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return werr(w, VP_ERR_ARG, "tensor '%s': negative size in dimension %d", nm, i);
        if ((double)shape[i] > VP_ST_MAX_JSON_INT || !vp__mul_u64(bytes, (uint64_t)shape[i], &bytes))
            return werr(w, VP_ERR_ARG, "tensor '%s': size overflows", nm);
    }
    if (!vp__add_u64(w->total, bytes, &end) || (double)end > VP_ST_MAX_JSON_INT)
        return werr(w, VP_ERR_ARG, "tensor '%s': total size overflows", nm);
    if (w->nt * 2 >= w->caphash && !hash_grow(w)) return werr(w, VP_ERR_NOMEM, "out of memory");
    size_t slot = hash_slot(w, name);
    if (w->hash[slot]) return werr(w, VP_ERR_ARG, "duplicate tensor name '%s'", nm);
    if (w->nt >= VP_MAX_TENSORS) return werr(w, VP_ERR_LIMIT, "more than %u tensors", VP_MAX_TENSORS);
    if (w->nt == w->capt) {
        size_t cap = w->capt ? w->capt * 2 : 64;
        st_decl *p = vp__realloc(w->t, cap * sizeof *p);
        if (!p) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->t = p;
        w->capt = cap;
    }
    st_decl *d = &w->t[w->nt];
    memset(d, 0, sizeof *d);
    if (!(d->name = vp__strdup(name))) return werr(w, VP_ERR_NOMEM, "out of memory");
    d->dtype = dtype;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->begin = w->total;
    d->end = end;
    w->total = end;
    w->hash[slot] = ++w->nt;
    return VP_OK;
}

int vp_st_writer_add(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_add__impl(w, name, dtype, ndim, shape));
}

/* The header as the reference writer (serde_json) lays it out. */
static void build_header(const vp_st_writer *w, vp_buf *b)
{
    vp__buf_puts(b, "{");
    if (w->nm) {
        vp__buf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nm; i++) {
            if (i) vp__buf_puts(b, ",");
            vp__buf_json_str(b, w->mkeys[i], false);
            vp__buf_puts(b, ":");
            vp__buf_json_str(b, w->mvals[i], false);
        }
        vp__buf_puts(b, w->nt ? "}," : "}");
    }
    for (size_t i = 0; i < w->nt; i++) {
        const st_decl *d = &w->t[i];
        if (i) vp__buf_puts(b, ",");
        vp__buf_json_str(b, d->name, false);
        vp__buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", vp_dtype_st_name(d->dtype));
        for (int k = 0; k < d->ndim; k++) vp__buf_printf(b, k ? ",%lld" : "%lld", (long long)d->shape[k]);
        vp__buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)d->begin, (unsigned long long)d->end);
    }
    vp__buf_puts(b, "}");
    while (!b->oom && b->n % 8) vp__buf_add(b, " ", 1);   /* data starts 8-aligned, as the reference pads */
}

static int write_all(vp_st_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return werr(w, VP_ERR_IO, "write failed: %s", k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return VP_OK;
}

/* Write the header: on the first data write, or at finish. */
static int start(vp_st_writer *w)
{
    if (w->started) return VP_OK;
    w->started = true;
    vp_buf b = {0};
    build_header(w, &b);
    if (b.oom) { vp__buf_free(&b); return werr(w, VP_ERR_NOMEM, "out of memory building the header"); }
    if (b.n > VP_ST_MAX_HEADER) {
        vp__buf_free(&b);
        return werr(w, VP_ERR_LIMIT, "JSON header of %zu bytes exceeds the limit of %u", b.n, VP_ST_MAX_HEADER);
    }
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
    int rc = write_all(w, le, 8);
    if (!rc) rc = write_all(w, b.p, b.n);
    w->data_start = 8 + (uint64_t)b.n;
    vp__buf_free(&b);
    return rc;
}

/* The tensor that data byte `at` belongs to (for messages). */
static const char *tensor_at(const vp_st_writer *w, uint64_t at, char buf[static VP_SHOWN_LEN])
{
    size_t lo = 0, hi = w->nt;
    while (lo < hi) {   /* first tensor whose end > at */
        size_t mid = lo + (hi - lo) / 2;
        if (w->t[mid].end > at) hi = mid; else lo = mid + 1;
    }
    return lo < w->nt ? vp__shown(buf, w->t[lo].name) : "?";
}

static int check_writing(vp_st_writer *w, uint64_t n)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->finished) return werr(w, VP_ERR_ARG, "write after finish");
    if (n > w->total - w->written) {
        char b[VP_SHOWN_LEN];
        if (w->written == w->total)
            return werr(w, VP_ERR_ARG, "%llu bytes written past the %llu declared", (unsigned long long)n, (unsigned long long)w->total);
        return werr(w, VP_ERR_ARG, "%llu bytes at data byte %llu (tensor '%s') run past the %llu declared",
                    (unsigned long long)n, (unsigned long long)w->written, tensor_at(w, w->written, b),
                    (unsigned long long)w->total);
    }
    return start(w);
}

static int vp_st_writer_write__impl(vp_st_writer *w, const void *data, size_t n)
{
    int rc = check_writing(w, n);
    if (rc) return rc;
    if (n && !data) return werr(w, VP_ERR_ARG, "NULL data");
    if ((rc = write_all(w, data, n))) return rc;
    w->written += n;
    return VP_OK;
}

int vp_st_writer_write(vp_st_writer *w, const void *data, size_t n)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_write__impl(w, data, n));
}

/* pread+write, for when the kernel cannot copy between these files. */
static int copy_by_reading(vp_st_writer *w, int fd, uint64_t off, uint64_t n)
{
    if (!w->chunk && !(w->chunk = vp__malloc(VP_COPY_CHUNK))) return werr(w, VP_ERR_NOMEM, "out of memory");
    while (n) {
        size_t want = n < VP_COPY_CHUNK ? (size_t)n : VP_COPY_CHUNK;
        ssize_t k = pread(fd, w->chunk, want, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return werr(w, VP_ERR_IO, "cannot read the source at byte %llu: %s", (unsigned long long)off, strerror(errno));
        if (k == 0) return werr(w, VP_ERR_IO, "the source ends before byte %llu", (unsigned long long)off);
        int rc = write_all(w, w->chunk, (size_t)k);
        if (rc) return rc;
        off += (uint64_t)k;
        n -= (uint64_t)k;
        w->written += (uint64_t)k;
    }
    return VP_OK;
}

static int vp_st_writer_copy__impl(vp_st_writer *w, int fd, uint64_t offset, uint64_t n)
{
    int rc = check_writing(w, n);
    if (rc) return rc;
    if (offset > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - offset)
        return werr(w, VP_ERR_ARG, "source range overflows");
    /* The kernel's copy (splice through the page cache) is fastest when
     * source and destination share their offset within a page; otherwise
     * it shifts every page and measures slower than a read and a write
     * through a small buffer that stays in cache (bench/bench_convert.sh). */
    if (((offset ^ (w->data_start + w->written)) & 4095u) != 0) return copy_by_reading(w, fd, offset, n);
    loff_t in = (loff_t)offset;
    while (n) {
        size_t want = n < (1u << 30) ? (size_t)n : (1u << 30);
        ssize_t k = copy_file_range(fd, &in, w->fd, NULL, want, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
            return copy_by_reading(w, fd, (uint64_t)in, n);
        if (k < 0) return werr(w, VP_ERR_IO, "copy_file_range failed: %s", strerror(errno));
        if (k == 0) return werr(w, VP_ERR_IO, "the source ends before byte %llu", (unsigned long long)in);
        n -= (uint64_t)k;
        w->written += (uint64_t)k;
    }
    return VP_OK;
}

int vp_st_writer_copy(vp_st_writer *w, int fd, uint64_t offset, uint64_t n)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_copy__impl(w, fd, offset, n));
}

/* Make the rename itself durable; a failure here loses nothing written. */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? vp__strndup(path, slash == path ? 1 : (size_t)(slash - path)) : vp__strdup(".");
    if (dir) vp__fsync_dir(dir);
    vp__free(dir);
}

void vp_st_writer_durable(vp_st_writer *w, int on)
{
    if (w) w->durable = on != 0;
}

static int vp_st_writer_finish__impl(vp_st_writer *w)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->finished) return werr(w, VP_ERR_ARG, "already finished");
    int rc = start(w);
    if (rc) return rc;
    if (w->written != w->total) {
        char b[VP_SHOWN_LEN];
        return werr(w, VP_ERR_ARG, "only %llu of %llu data bytes were written (tensor '%s' is incomplete)",
                    (unsigned long long)w->written, (unsigned long long)w->total, tensor_at(w, w->written, b));
    }
    if (w->durable && fsync(w->fd) != 0) return werr(w, VP_ERR_IO, "fsync failed: %s", strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) return werr(w, VP_ERR_IO, "close failed: %s", strerror(errno));
    if (rename(w->tmppath, w->path) != 0) return werr(w, VP_ERR_IO, "cannot rename the temporary into place: %s", strerror(errno));
    w->finished = true;
    if (w->durable) sync_parent(w->path);
    return VP_OK;
}

int vp_st_writer_finish(vp_st_writer *w)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_finish__impl(w));
}

static void vp_st_writer_close__impl(vp_st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (!w->finished && w->tmppath) unlink(w->tmppath);
    for (size_t i = 0; i < w->nt; i++) vp__free(w->t[i].name);
    for (size_t i = 0; i < w->nm; i++) { vp__free(w->mkeys[i]); vp__free(w->mvals[i]); }
    vp__free(w->t);
    vp__free(w->hash);
    vp__free(w->mkeys);
    vp__free(w->mvals);
    vp__free(w->chunk);
    vp__free(w->tmppath);
    vp__free(w->path);
    vp__free(w);
}

void vp_st_writer_close(vp_st_writer *w)
{
    VP__WITH_ALLOC_VOID(w ? &w->alloc : vp__alloc_current(), vp_st_writer_close__impl(w));
}
