/*
 * vitport — read vision-transformer checkpoints in their release formats,
 * convert them to the Hugging Face layout, and run them natively.
 *
 * Conventions (after SQLite and zstd):
 *  - Objects are opaque handles. Each function is documented as a
 *    constructor, destructor or method. Destroying NULL is a no-op.
 *  - Functions return an int result code (VP_OK == 0); the one-line
 *    message of the last failure is kept in the handle, never in global
 *    state, so separate handles may be used from separate threads.
 *  - Every length, offset and count read from a file is checked before use.
 */
#ifndef VITPORT_H
#define VITPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define VP_API __attribute__((visibility("default")))
#else
#  define VP_API
#endif

#define VITPORT_VERSION_MAJOR 0
#define VITPORT_VERSION_MINOR 1
#define VITPORT_VERSION_PATCH 0
#define VITPORT_VERSION_STRING "0.1.0"

/** Library version string, e.g. "0.1.0". */
VP_API const char *vp_version(void);

/* ------------------------------------------------------------------ */
/* Result codes                                                        */
/* ------------------------------------------------------------------ */
enum {
    VP_OK = 0,
    VP_ERR_IO,          /* a file could not be opened, read or written */
    VP_ERR_FORMAT,      /* malformed, truncated or inconsistent input */
    VP_ERR_UNSUPPORTED, /* well-formed input that vitport does not handle */
    VP_ERR_REFUSED,     /* a pickle asked to call a global outside the allowlist */
    VP_ERR_LIMIT,       /* a documented limit (nesting, memo, size) was exceeded */
    VP_ERR_NOMEM,       /* out of memory */
    VP_ERR_NOTFOUND,    /* no such tensor or key */
    VP_ERR_ARG,         /* invalid argument (API misuse, bad option) */
    VP_ERR_AMBIGUOUS,   /* a choice is needed (e.g. which sub-dictionary) */
    VP_ERR_MISMATCH     /* a consistency check failed (conversion, verification) */
};

/** Short English text for a result code ("malformed input", ...). */
VP_API const char *vp_strerror(int code);

/* ------------------------------------------------------------------ */
/* Allocators (after Lua's lua_Alloc and zstd's ZSTD_customMem)         */
/* ------------------------------------------------------------------ */
/**
 * A custom allocator for one handle. alloc(ud, ptr, osize, nsize) must
 * behave like realloc(ptr, nsize) when nsize > 0 (ptr NULL: a new block)
 * and like free(ptr), returning NULL, when nsize == 0; osize is always 0
 * (the library does not track block sizes). NULL for a vp_allocator *, or
 * alloc NULL, means the default: malloc / realloc / free.
 *
 * The *_ex constructors take one (vp_source_open_ex, vp_model_open_ex,
 * vp_tokenizer_open_ex, vp_image_load_ex, vp_preproc_open_ex,
 * vp_verify_new_ex, vp_st_writer_open_ex, vp_npz_writer_open_ex;
 * vp_convert_opts.allocator) and the handle keeps a copy: every allocation
 * made for it and its methods, and its destruction, go through it (a
 * vp_ctx through its model's; the handles a conversion opens inside through
 * the conversion's). The constructors without it use the default (in a
 * callback vitport calls, such as vp_convert_opts.verify: the conversion's).
 * Handles with different allocators may be used from different threads at
 * once; one allocator shared by handles used at once must be thread-safe.
 * The library makes no allocation on the worker threads of its OpenMP
 * regions (the engine's ops work in scratch allocated before), so alloc is
 * only ever called on the thread that called into the library. cJSON's
 * global hooks (cJSON_InitHooks) are set when the library loads to forward
 * to the calling thread's current allocator, which is malloc / free outside
 * vitport's calls. The libraries vitport calls into for images (libjpeg-turbo,
 * libpng), yajl, zlib and text (PCRE2, utf8proc, SentencePiece) allocate
 * with their own.
 */
typedef struct vp_allocator {
    void *(*alloc)(void *ud, void *ptr, size_t osize, size_t nsize);
    void *ud;
} vp_allocator;

/* ------------------------------------------------------------------ */
/* Element types                                                       */
/* ------------------------------------------------------------------ */
typedef enum vp_dtype {
    VP_F64 = 0, VP_F32, VP_F16, VP_BF16,
    VP_I64, VP_I32, VP_I16, VP_I8, VP_U8, VP_BOOL,
    VP_DTYPE_COUNT
} vp_dtype;

/** Bytes per element (bool is one byte). */
VP_API size_t vp_dtype_size(vp_dtype t);
/** NumPy's name: "float32", "float16", "bfloat16", "int64", "bool", ... */
VP_API const char *vp_dtype_name(vp_dtype t);
/** safetensors' name: "F32", "F16", "BF16", "I64", "BOOL", ... */
VP_API const char *vp_dtype_st_name(vp_dtype t);
/** Parse either a NumPy or a safetensors name. Returns VP_OK or VP_ERR_NOTFOUND. */
VP_API int vp_dtype_parse(const char *name, vp_dtype *out);

/**
 * Convert n elements from one dtype to another (both contiguous).
 * Floats round to nearest-even as PyTorch's .to() does; integer targets
 * truncate toward zero.
 */
VP_API void vp_dtype_convert(void *dst, vp_dtype dst_t, const void *src, vp_dtype src_t, size_t n);

/* ------------------------------------------------------------------ */
/* Tensor descriptions                                                 */
/* ------------------------------------------------------------------ */
#define VP_MAX_DIMS 8

typedef struct vp_tensor {
    const char *name;                /* full name ('/' joins nested keys) */
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    int64_t strides[VP_MAX_DIMS];    /* in elements, as torch reports them */
    int64_t storage_offset;          /* in elements, into its storage */
    uint64_t numel;
    uint64_t nbytes;                 /* numel * vp_dtype_size(dtype) */
    int64_t storage;                 /* index of the storage it views, -1 if none */
} vp_tensor;

/* ------------------------------------------------------------------ */
/* Tensor sources: one API that every reader fills                     */
/* ------------------------------------------------------------------ */
typedef struct vp_source vp_source;
typedef struct vp_value vp_value;

/**
 * Constructor. Opens `path` (torch zip / legacy / TorchScript, .npy, .npz,
 * .safetensors; the format is recognised from the bytes, not the name)
 * and reads its headers and pickles, never the tensor data.
 *
 * `key` (may be NULL) narrows the tensors to one sub-dictionary of a
 * pickled checkpoint ("teacher", "model", "state_dict/backbone"); names are
 * then relative to it.
 *
 * *out always receives a handle unless memory runs out (then NULL), so
 * that vp_source_errmsg() can tell why opening failed; close it in either
 * case.
 */
VP_API int vp_source_open(vp_source **out, const char *path, const char *key);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_source_open_ex(vp_source **out, const char *path, const char *key, const vp_allocator *allocator);

/** Destructor. NULL is a harmless no-op. */
VP_API void vp_source_close(vp_source *src);

/** The message of the last failure on this handle ("" if none), one line,
 * naming the file and what is wrong. */
VP_API const char *vp_source_errmsg(const vp_source *src);

/** Format name: "torch-zip", "torch-legacy", "torchscript", "npy", "npz",
 * "safetensors". */
VP_API const char *vp_source_format(const vp_source *src);

/** Number of tensors (after narrowing by key). */
VP_API size_t vp_source_count(const vp_source *src);

/** Tensor i (0 <= i < count), in file order; NULL when out of range. */
VP_API const vp_tensor *vp_source_tensor(const vp_source *src, size_t i);
/** The whole table: vp_source_count() tensors, the i-th being
 *  vp_source_tensor(src, i); valid until the source is closed. */
VP_API const vp_tensor *vp_source_tensors(const vp_source *src, size_t *count);

/** Index of the tensor named `name`, or -1. */
VP_API long vp_source_find(const vp_source *src, const char *name);

/**
 * Copy tensor i's values, in C order and its own dtype, to dst
 * (dst_bytes must be at least its nbytes). Views, transposes and shared
 * storages come out right; compressed members are inflated.
 */
VP_API int vp_source_read(vp_source *src, size_t i, void *dst, size_t dst_bytes);

/** As vp_source_read, converting to dtype `to` on the way. */
VP_API int vp_source_read_as(vp_source *src, size_t i, vp_dtype to, void *dst, size_t dst_bytes);

/**
 * Zero-copy access: a pointer to tensor i's bytes inside the file mapping
 * when they lie there contiguously in C order, else NULL (use
 * vp_source_read). Valid until vp_source_close.
 */
VP_API const void *vp_source_data(vp_source *src, size_t i);

/**
 * Where tensor i's bytes lie in the file, when they are stored contiguously
 * in C order: sets *offset (bytes from the start of the file) and returns
 * VP_OK; otherwise VP_ERR_UNSUPPORTED. Lets a writer use copy_file_range.
 * A stored zip member's CRC-32 is checked first (once per member): a
 * mismatch is an error (VP_ERR_FORMAT, message naming the member).
 */
VP_API int vp_source_file_range(vp_source *src, size_t i, uint64_t *offset);

/**
 * Zip-based formats (torch zip, TorchScript, npz) carry a CRC-32 per member.
 * By default every member whose bytes are read (vp_source_read, _read_as,
 * _data, _file_range) is checked over all its bytes once, before they are
 * first used, and a mismatch fails the read naming the member. `on` = 0
 * skips the check of stored members and of deflated ones not inflated whole
 * (inflating a whole member still checks it, at little cost next to the
 * inflating). Other formats carry no checksums.
 */
VP_API void vp_source_set_crc_check(vp_source *src, int on);

/**
 * Check now, whatever vp_source_set_crc_check says, the CRC-32 of every zip
 * member that holds bytes of the (narrowed) tensors; *checked (may be NULL)
 * receives how many. VP_OK when all match or the format has no checksums
 * (then *checked is 0).
 */
VP_API int vp_source_check_data(vp_source *src, size_t *checked);

/** The file descriptor of the open file (read-only), for copy_file_range. */
VP_API int vp_source_fd(const vp_source *src);

/** A safetensors file's `__metadata__` value for `key`, or NULL (no such
 * key, or not a safetensors file). Valid until vp_source_close. */
VP_API const char *vp_source_metadata(const vp_source *src, const char *key);

/**
 * Tell the source that tensor i's bytes will not be needed again soon:
 * its pages in the mapping are released and inflated copies freed, so
 * peak memory stays flat while streaming through a model.
 */
VP_API void vp_source_release(vp_source *src, size_t i);

/* ------------------------------------------------------------------ */
/* The pickled object tree (torch files), read-only                   */
/* ------------------------------------------------------------------ */
typedef enum vp_kind {
    VP_V_NONE = 0, VP_V_BOOL, VP_V_INT, VP_V_FLOAT, VP_V_STR, VP_V_BYTES,
    VP_V_TUPLE, VP_V_LIST, VP_V_DICT, VP_V_SET,
    VP_V_TENSOR,   /* a rebuilt tensor: vp_value_tensor() gives its index */
    VP_V_OBJECT,   /* an inert record of a class outside the allowlist */
    VP_V_OTHER     /* anything else kept as a marker (storage, dtype, ...) */
} vp_kind;

/** Root of the pickled object (NULL for formats without one). Not narrowed by key. */
VP_API const vp_value *vp_source_root(const vp_source *src);

VP_API vp_kind vp_value_kind(const vp_value *v);
/** Items of a tuple/list/set/dict, or the size of str/bytes. */
VP_API size_t vp_value_len(const vp_value *v);
/** Item i of a tuple/list/set; value i of a dict. NULL when out of range. */
VP_API const vp_value *vp_value_item(const vp_value *v, size_t i);
/** Key i of a dict. */
VP_API const vp_value *vp_value_key(const vp_value *v, size_t i);
/** Dict lookup by string key; NULL if absent. */
VP_API const vp_value *vp_value_get(const vp_value *v, const char *key);
/** Text of a str, bytes, or an object's class name; NULL otherwise. */
VP_API const char *vp_value_str(const vp_value *v);
/** Integer (bool and small int); 0 otherwise. Integers beyond 64 bits are
 * kept as VP_V_INT with vp_value_str() giving their decimal text. */
VP_API int64_t vp_value_int(const vp_value *v);
VP_API double vp_value_float(const vp_value *v);
/** For VP_V_OBJECT: its state (what BUILD gave it) or NULL; for the class
 * name use vp_value_str(). */
VP_API const vp_value *vp_value_state(const vp_value *v);
/** For VP_V_OBJECT: the arguments it was created with, or NULL. */
VP_API const vp_value *vp_value_args(const vp_value *v);
/** For VP_V_TENSOR: index into the full (un-narrowed) tensor table, or -1. */
VP_API long vp_value_tensor(const vp_value *v);

/* ------------------------------------------------------------------ */
/* safetensors writer                                                  */
/* ------------------------------------------------------------------ */
typedef struct vp_st_writer vp_st_writer;

/**
 * Constructor. Prepares a safetensors file at `path`, written under a
 * temporary name and renamed into place by vp_st_writer_finish().
 * Declare every tensor with vp_st_writer_add() first (that fixes the
 * header), then write each tensor's bytes, in the declared order.
 * *out always receives a handle unless memory runs out.
 */
VP_API int vp_st_writer_open(vp_st_writer **out, const char *path);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_st_writer_open_ex(vp_st_writer **out, const char *path, const vp_allocator *allocator);
/** Method: add a `__metadata__` entry (before the first write). */
VP_API int vp_st_writer_meta(vp_st_writer *w, const char *key, const char *value);
/** Method: declare a tensor (before the first write). */
VP_API int vp_st_writer_add(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape);
/** Method: append bytes of the current tensor; tensors are filled in order. */
VP_API int vp_st_writer_write(vp_st_writer *w, const void *data, size_t n);
/** Method: append n bytes copied in the kernel from fd at offset (copy_file_range, falling back to pread). */
VP_API int vp_st_writer_copy(vp_st_writer *w, int fd, uint64_t offset, uint64_t n);
/** Method: with on != 0, vp_st_writer_finish() flushes the file to disk
 * (fsync) before renaming it, so the rename survives a power loss. Off by
 * default, as for cp and torch.save: a killed process never leaves a partial
 * file either way, only a crash of the whole machine is at stake. */
VP_API void vp_st_writer_durable(vp_st_writer *w, int on);
/** Method: check every declared byte was written, rename into place. */
VP_API int vp_st_writer_finish(vp_st_writer *w);
/** Destructor: removes the temporary file if not finished. NULL is a no-op. */
VP_API void vp_st_writer_close(vp_st_writer *w);
VP_API const char *vp_st_writer_errmsg(const vp_st_writer *w);

#ifdef __cplusplus
}
#endif

#include "vitport/engine.h"
#include "vitport/text.h"
#include "vitport/image.h"
#include "vitport/verify.h"
#include "vitport/convert.h"   /* conversion to the Hugging Face layout */

#endif /* VITPORT_H */
