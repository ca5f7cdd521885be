/* Internal declarations shared by the library's parts. Not installed. */
#ifndef VP_INTERNAL_H
#define VP_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitport/vitport.h"
#include "config.h"

/* ---- one allocator path (after Lua) ------------------------------------ */
/* Every allocation in the library goes through these. Tests may install a
 * failing allocator to exercise out-of-memory paths. */
void *vp__malloc(size_t n);
void *vp__calloc(size_t n, size_t size);
void *vp__realloc(void *p, size_t n);
void vp__free(void *p);
char *vp__strdup(const char *s);
char *vp__strndup(const char *s, size_t n);
typedef void *(*vp_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
/* NULL restores the default. cJSON is routed through it too (cJSON_InitHooks),
 * so set it only while no library object or cJSON tree is alive. */
void vp__set_allocator(vp_alloc_fn fn, void *ud);
/* How many allocations have failed so far (process-wide). */
size_t vp__alloc_failures(void);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool vp__mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline bool vp__add_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_add_overflow(a, b, r); }

/* "[3, 4]": a shape as messages print it, into buf (truncated to len, which
 * VP_SHAPE_STR_LEN always suffices for); returns buf. */
#define VP_SHAPE_STR_LEN (VP_MAX_DIMS * 22 + 4)
const char *vp__shape_str(char *buf, size_t len, int ndim, const int64_t *shape);

/* The exact integer square root of n, or -1 when n is negative or not a
 * perfect square. */
int64_t vp__isqrt(int64_t n);

/* ---- text ------------------------------------------------------------------ */
/* UTF-8 check: the offset of the first byte that does not start a well-formed
 * sequence, or n. Well-formed as Python's strict decode and Rust's
 * str::from_utf8 take it (no overlong forms, nothing past U+10FFFF, no
 * surrogates); surrogates true accepts U+D800..U+DFFF too (Python's
 * "surrogatepass", which pickle's BINUNICODE uses). NUL bytes are valid. */
size_t vp__utf8_check(const uint8_t *s, size_t n, bool surrogates);
/* Does a JSON text hold the escape \u0000 inside a string? cJSON would cut
 * the string (a key or a value) there, silently changing it. */
bool vp__json_has_nul_escape(const char *s, size_t n);

/* ---- small files --------------------------------------------------------- */
/* The whole of the regular file path, at most limit bytes, into *out
 * (vp__malloc'ed, NUL-terminated; its length in *len). Opened without
 * blocking and checked with fstat, so a FIFO or a device is refused at once
 * instead of waiting for a writer. VP_OK, or with "PATH: reason" in err:
 * VP_ERR_IO (cannot open or read, not a regular file), VP_ERR_LIMIT
 * (larger than limit: "larger than N bytes"), VP_ERR_NOMEM. */
int vp__read_file(const char *path, size_t limit, char **out, size_t *len, char *err, size_t errlen);

/* ---- arena: bump allocator with a hard cap ------------------------------ */
typedef struct vp_arena {
    struct vp_arena_block *head;
    size_t used, cap;   /* bytes handed out, and the most allowed */
} vp_arena;
void vp__arena_init(vp_arena *a, size_t cap);
void *vp__arena_alloc(vp_arena *a, size_t n);          /* 16-aligned, zeroed; NULL past cap */
char *vp__arena_strndup(vp_arena *a, const char *s, size_t n);
void vp__arena_free(vp_arena *a);

/* ---- growable byte buffer (for building JSON, names) ------------------- */
typedef struct vp_buf { char *p; size_t n, cap; bool oom; } vp_buf;
void vp__buf_add(vp_buf *b, const void *data, size_t n);
void vp__buf_puts(vp_buf *b, const char *s);
void vp__buf_printf(vp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vp__buf_free(vp_buf *b);

/* ---- read-only file mapping --------------------------------------------- */
typedef struct vp_map { int fd; const uint8_t *base; uint64_t size; } vp_map;
/* Opens without blocking (a FIFO or device never stalls the open) and
 * refuses anything but a regular file, naming what it is. */
int vp__map_open(vp_map *m, const char *path, char *err, size_t errlen);
/* "a directory", "a FIFO", ... for a stat st_mode (messages). */
const char *vp__file_kind(unsigned mode);
void vp__map_close(vp_map *m);
/* Release pages of [off, off+len) (MADV_DONTNEED on a read-only mapping). */
void vp__map_release(vp_map *m, uint64_t off, uint64_t len);

/* fsync a directory so a rename or create in it is durable; failures are
 * ignored (nothing written is lost, only the durability guarantee). */
void vp__fsync_dir(const char *dir);

/* ---- storages and sources ---------------------------------------------- */
enum vp_store_kind {
    VP_STORE_FILE = 0,   /* bytes lie in the file at `offset` */
    VP_STORE_DEFLATE,    /* a deflated zip member: inflate, then skip `skip` bytes */
    VP_STORE_MEMORY      /* bytes already in `owned` (e.g. built by the reader) */
};

typedef struct vp_storage {
    int kind;
    vp_dtype dtype;          /* element type of the storage */
    uint64_t nbytes;         /* usable bytes of the storage */
    uint64_t offset;         /* FILE: byte offset in the file */
    long zip_entry;          /* DEFLATE: index of the zip entry */
    uint64_t skip;           /* DEFLATE: bytes to skip after inflating (npy header) */
    uint8_t *owned;          /* DEFLATE/MEMORY: the bytes, NULL until loaded */
    const char *label;       /* for messages: "archive/data/3", "params/x.npy" */
    bool crc;                /* the bytes come from zip member `zip_entry` (any kind):
                                its CRC-32 is checked before they are first used */
} vp_storage;

struct vp_zip;   /* src/format/zip.h */

/* A reader as the format layer's table lists it (src/format/formats.c).
 * Core calls a reader only through these pointers, never by name. */
typedef struct vp_format {
    const char *name;
    /* do the file's leading bytes (n = the file's size) look like this format */
    bool (*sniff)(const uint8_t *b, uint64_t n);
    /* fill the source's tables; VP_OK or an error with the message set */
    int (*open)(vp_source *src);
    /* the first `want` bytes of a VP_STORE_DEFLATE storage's entry into dst
     * (NULL: the reader makes no such storages) */
    int (*read)(vp_source *src, long entry, uint8_t *dst, uint64_t want);
    /* free what the reader keeps beside the tables (vp_source_close) */
    void (*free)(vp_source *src);
    /* archives with checksums (NULL otherwise): how many members, and check
     * member `entry`'s CRC-32 once (VP_OK when it matches, or when checks
     * are off and not `force`; else an error naming the member) */
    long (*members)(const vp_source *src);
    int (*verify)(vp_source *src, long entry, bool force);
} vp_format;

struct vp_source {
    char errmsg[768];
    int errcode;             /* the code of the failure errmsg describes (vp__err) */
    char *path;
    const char *format;
    vp_map map;
    vp_arena arena;          /* names, labels, pickle values */
    struct vp_zip *zip;      /* when the file is a zip archive (the zip reader's) */
    const vp_format *reader; /* the format that opened it */

    vp_tensor *all;          /* every tensor found, full names */
    size_t nall, capall;
    vp_storage *storages;
    size_t nstorages, capstorages;

    vp_tensor *view;         /* narrowed by key (points into own array) */
    size_t nview;
    size_t *view_index;      /* view i -> index in all */

    vp_value *root;          /* pickled object, if any */

    bool no_crc;                     /* skip the zip members' CRC-32 checks (vp_source_set_crc_check) */
    const atomic_int *cancel;        /* when set non-zero, long reads (CRC, inflate) stop with
                                        "interrupted"; set by the converter from its options */

    void *format_data;               /* reader-private data (safetensors: __metadata__) */
    void (*format_free)(void *);     /* frees format_data; called by vp_source_close */
};

/* Record a failure: formats "PATH: message" into src->errmsg, keeps code in
 * src->errcode, returns code. */
int vp__err(vp_source *src, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vp__verr(char *dst, size_t dstlen, const char *prefix, const char *fmt, va_list ap);

/* Make room for this many more tensors and storages at once (a reader that
 * knows its count spares the doubling's slack). VP_OK or an error. */
int vp__reserve_tables(vp_source *src, size_t tensors, size_t storages);
/* A new source for path: allocated, mapped, arena sized; *out is set even
 * on failure (close it). The format layer's vp_source_open then fills it
 * and narrows it with vp__source_narrow (key NULL or "": everything). */
int vp__source_new(vp_source **out, const char *path);
int vp__source_narrow(vp_source *src, const char *key);

/* Add a storage; returns its index or -1 (error set). */
long vp__add_storage(vp_source *src, const vp_storage *st);
/*
 * Add a tensor that views storage `storage` (or -1 for none, then nbytes
 * must be 0). Copies the name into the arena. Validates everything a reader
 * cannot be trusted with: ndim <= VP_MAX_DIMS, non-negative sizes and
 * strides, numel and nbytes without overflow, and that the furthest element
 * lies inside the storage (stricter than torch, which reads past it).
 * Returns VP_OK or an error (message set, naming the tensor).
 */
int vp__add_tensor(vp_source *src, const char *name, vp_dtype dtype, int ndim,
                   const int64_t *shape, const int64_t *strides, /* NULL: C-contiguous */
                   int64_t storage_offset, long storage);


/* Whether strides (in elements) lay the shape out in C order; size-1
 * dimensions may have any stride. Products of in-bounds views cannot
 * overflow: vp__add_tensor checked the extent. */
bool vp__c_contiguous(int ndim, const int64_t *shape, const int64_t *strides);

/* Bytes of storage st (loading/inflating it if needed); NULL on error. */
const uint8_t *vp__storage_bytes(vp_source *src, long st);


#endif
