/*
 * The tensor source's private side: its fields, its storages and the format
 * hooks, for src/core/ and the format layer (src/format/) alone. Other layers
 * include the narrow headers below that they need (core/alloc.h, ...), and
 * scripts/check_layers.py keeps it so. Not installed.
 */
#ifndef VP_INTERNAL_H
#define VP_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitport/vitport.h"
#include "config.h"

/* The narrow headers, each usable alone by a layer that needs only it. */
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/util.h"
#include "core/source_io.h"

/* ---- storages and sources ---------------------------------------------- */
enum vp_store_kind {
    VP_STORE_FILE = 0,   /* bytes lie in the file at `offset` */
    VP_STORE_DEFLATE,    /* a compressed member: the format's read() inflates it, then skip `skip` bytes */
    VP_STORE_MEMORY      /* bytes already in `owned` (e.g. built by the reader) */
};

typedef struct vp_storage {
    int kind;
    vp_dtype dtype;          /* element type of the storage */
    uint64_t nbytes;         /* usable bytes of the storage */
    uint64_t offset;         /* FILE: byte offset in the file */
    long member;             /* DEFLATE, crc: the archive member, as the format's
                                read() / verify() hooks number them */
    uint64_t skip;           /* DEFLATE: bytes to skip after inflating (npy header) */
    uint8_t *owned;          /* DEFLATE/MEMORY: the bytes, NULL until loaded */
    const char *label;       /* for messages: "archive/data/3", "params/x.npy" */
    bool crc;                /* the bytes come from archive member `member` (any kind):
                                its checksum (verify()) is checked before they are first used */
} vp_storage;

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
    /* free what the reader keeps beside the tables, its `state` among it
     * (vp_source_close) */
    void (*free)(vp_source *src);
    /* archives with checksums (NULL otherwise): how many members, and check
     * member `entry`'s CRC-32 once (VP_OK when it matches, or when checks
     * are off and not `force`; else an error naming the member) */
    long (*members)(const vp_source *src);
    int (*verify)(vp_source *src, long entry, bool force);
} vp_format;

struct vp_source {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    int errcode;             /* the code of the failure errmsg describes (vp__err) */
    char *path;
    const char *format;
    vp_map map;
    vp_arena arena;          /* names, labels, pickle values */
    const vp_format *reader; /* the format that opened it (src/format/formats.c) */
    void *state;             /* that format's own state, opaque to core (the zip
                                directory, safetensors' __metadata__); freed by
                                reader->free */

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
};

/* Record a failure: formats "PATH: message" into src->errmsg, keeps code in
 * src->errcode, returns code. */
int vp__err(vp_source *src, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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


/* Bytes of storage st (loading/inflating it if needed); NULL on error. */
const uint8_t *vp__storage_bytes(vp_source *src, long st);


#endif
