/* Arena, growable buffer, file mapping and error formatting. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---- arena -------------------------------------------------------------- */
struct vp_arena_block { struct vp_arena_block *next; size_t size, used; unsigned char data[]; };

void vp__arena_init(vp_arena *a, size_t cap) { a->head = NULL; a->used = 0; a->cap = cap; }

void *vp__arena_alloc(vp_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (n > a->cap - a->used || a->used > a->cap) return NULL;
    struct vp_arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > 65536 ? n : 65536;
        b = vp__malloc(sizeof *b + sz);
        if (!b) return NULL;
        b->size = sz; b->used = 0; b->next = a->head; a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *vp__arena_strndup(vp_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *d = vp__arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void vp__arena_free(vp_arena *a)
{
    struct vp_arena_block *b = a->head;
    while (b) { struct vp_arena_block *n = b->next; vp__free(b); b = n; }
    a->head = NULL; a->used = 0;
}

/* ---- shapes -------------------------------------------------------------- */
const char *vp__shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    if (!len) return buf;
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
    return buf;
}

int64_t vp__isqrt(int64_t n)
{
    if (n < 0) return -1;
    int64_t r = (int64_t)sqrt((double)n);   /* exact after the corrections below */
    while (r > 0 && r > n / r) r--;
    while ((r + 1) <= n / (r + 1)) r++;
    return r * r == n ? r : -1;
}

const char *vp__shown(char buf[static VP_SHOWN_LEN], const char *name)
{
    size_t i = 0;
    for (; name[i] && i < 150; i++) buf[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
    if (name[i]) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = 0;
    return buf;
}

/* ---- buffer ------------------------------------------------------------- */
void vp__buf_add(vp_buf *b, const void *data, size_t n)
{
    if (b->oom) return;
    if (b->cap - b->n <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= n) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        char *p = vp__realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

void vp__buf_puts(vp_buf *b, const char *s) { vp__buf_add(b, s, strlen(s)); }

void vp__buf_printf(vp_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { vp__buf_add(b, tmp, (size_t)n); return; }
    char *big = vp__malloc((size_t)n + 1);
    if (!big) { b->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    vp__buf_add(b, big, (size_t)n);
    vp__free(big);
}

void vp__buf_free(vp_buf *b) { vp__free(b->p); b->p = NULL; b->n = b->cap = 0; b->oom = false; }

void vp__buf_json_str(vp_buf *b, const char *s, bool ascii)
{
    vp__buf_add(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned c = *u;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        }
        if (esc) { vp__buf_puts(b, esc); u++; continue; }
        if (c < 0x20 || (ascii && c == 0x7f)) { vp__buf_printf(b, "\\u%04x", c); u++; continue; }
        if (c < 0x80 || !ascii) { vp__buf_add(b, u, 1); u++; continue; }
        /* ensure_ascii: a UTF-8 sequence as \uXXXX (a surrogate pair above
         * U+FFFF), a byte that starts no well-formed one as U+FFFD (Python
         * could not have held it) */
        unsigned cp = 0xfffd;
        int n = c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        int ok = n > 0;
        unsigned v = n == 4 ? c & 7 : n == 3 ? c & 15 : c & 31;
        for (int k = 1; ok && k < n; k++) {   /* stops at the NUL, which is no continuation byte */
            if ((u[k] & 0xc0) != 0x80) ok = 0;
            else v = (v << 6) | (u[k] & 0x3f);
        }
        if (ok && ((n == 3 && (v < 0x800 || (v >= 0xd800 && v < 0xe000))) || (n == 4 && (v < 0x10000 || v > 0x10ffff))))
            ok = 0;
        if (ok) cp = v;
        u += ok ? n : 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            vp__buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            vp__buf_printf(b, "\\u%04x", cp);
        }
    }
    vp__buf_add(b, "\"", 1);
}

/* ---- mapping ------------------------------------------------------------ */
const char *vp__file_kind(unsigned mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file";
}

int vp__map_open(vp_map *m, const char *path, char *err, size_t errlen)
{
    m->fd = -1; m->base = NULL; m->size = 0;
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer (and a
     * device node may block too); the descriptor is only kept for a
     * regular file, where the flag changes nothing, and is cleared anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return VP_ERR_IO; }
    struct stat st;
    if (fstat(fd, &st) != 0) { snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno)); close(fd); return VP_ERR_IO; }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file (%s)", path, vp__file_kind(st.st_mode));
        close(fd);
        return VP_ERR_IO;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    m->fd = fd;
    m->size = (uint64_t)st.st_size;
    if (m->size == 0) return VP_OK;
    void *p = mmap(NULL, (size_t)m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { snprintf(err, errlen, "%s: cannot map: %s", path, strerror(errno)); close(fd); m->fd = -1; return VP_ERR_IO; }
    m->base = p;
    return VP_OK;
}

void vp__map_close(vp_map *m)
{
    if (m->base) munmap((void *)m->base, (size_t)m->size);
    if (m->fd >= 0) close(m->fd);
    m->base = NULL; m->fd = -1; m->size = 0;
}

void vp__map_release(vp_map *m, uint64_t off, uint64_t len)
{
    if (!m->base || off >= m->size) return;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t start = off & ~(uint64_t)(pg - 1);
    uint64_t end = off + len;
    if (end > m->size) end = m->size;
    if (end <= start) return;
    /* Read-only private mapping of a file: dropping pages loses nothing. */
    madvise((void *)(m->base + start), (size_t)(end - start), MADV_DONTNEED);
}

void vp__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
}

/* ---- errors ------------------------------------------------------------- */
int vp__verr(char *dst, size_t dstlen, const char *prefix, const char *fmt, va_list ap)
{
    if (!dst || !dstlen) return 0;
    size_t n = 0;
    if (prefix && *prefix) {
        int k = snprintf(dst, dstlen, "%s: ", prefix);
        n = k < 0 ? 0 : ((size_t)k < dstlen ? (size_t)k : dstlen - 1);
    }
    vsnprintf(dst + n, dstlen - n, fmt, ap);
    vp__oneline(dst);
    return 0;
}

void vp__oneline(char *s)
{
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
}

int vp__errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (!err || !errlen) return code;
    va_list ap;
    va_start(ap, fmt);
    vp__verr(err, errlen, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int vp__err(vp_source *src, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(src->errmsg, sizeof src->errmsg, src->path, fmt, ap);
    va_end(ap);
    src->errcode = code;
    return code;
}

const char *vp_strerror(int code)
{
    switch (code) {
    case VP_OK: return "ok";
    case VP_ERR_IO: return "input/output error";
    case VP_ERR_FORMAT: return "malformed input";
    case VP_ERR_UNSUPPORTED: return "unsupported input";
    case VP_ERR_REFUSED: return "refused unsafe pickle";
    case VP_ERR_LIMIT: return "limit exceeded";
    case VP_ERR_NOMEM: return "out of memory";
    case VP_ERR_NOTFOUND: return "not found";
    case VP_ERR_ARG: return "invalid argument";
    case VP_ERR_AMBIGUOUS: return "ambiguous choice";
    case VP_ERR_MISMATCH: return "check failed";
    default: return "unknown error";
    }
}

const char *vp_version(void) { return VITPORT_VERSION_STRING; }
