/*
 * The ZIP reader shared by the torch (torch.save >= 1.6, torch.jit.save) and
 * NumPy (.npz) readers. Not installed.
 *
 * vp__zip_open() parses the central directory of src->map once and keeps a
 * table of members; nothing is inflated until asked. Every offset and size
 * is checked against the file at open time, so a member's data range
 * [data_offset, data_offset + csize) always lies inside the mapping.
 *
 * What is accepted: stored (method 0) and deflated (method 8) members, ZIP64
 * (end-of-central-directory record + locator, and the 0x0001 extra field in
 * central headers), data descriptors (the central sizes are used). What is
 * refused: multi-disk archives, encryption, other methods, duplicate names,
 * names with NUL bytes, members that overlap one another or the central
 * directory, more than VP_ZIP_MAX_ENTRIES members, and a deflated member that
 * claims more than VP_ZIP_MAX_RATIO times its compressed size (+1 KiB).
 *
 * Indices are `long`, 0 <= i < vp__zip_count(src), in central-directory order.
 * Functions that take an index return NULL / 0 for one out of range or when
 * src has no zip.
 */
#ifndef VP_ZIP_H
#define VP_ZIP_H

#include <stdint.h>

#include "format/format.h"

enum { VP_ZIP_STORED = 0, VP_ZIP_DEFLATED = 8 };

typedef struct vp_zip_entry {
    const char *name;       /* NUL-terminated (names holding NUL are refused) */
    uint32_t name_len;
    uint16_t method;        /* VP_ZIP_STORED or VP_ZIP_DEFLATED */
    uint16_t flags;         /* general-purpose bit flags */
    uint32_t crc32;         /* of the uncompressed bytes, from the central header */
    uint64_t csize;         /* compressed size (== usize when stored) */
    uint64_t usize;         /* uncompressed size */
    uint64_t header_offset; /* local file header */
    uint64_t data_offset;   /* first data byte: header + 30 + local name + local extra */
} vp_zip_entry;

struct vp_zip {
    vp_zip_entry *entries;
    long count;
    char *names;            /* all names, each NUL-terminated */
    uint32_t *hash;         /* open addressing: entry index + 1, 0 = empty */
    size_t hash_mask;
    uint8_t *crc_state;     /* per member: 0 not checked yet, 1 CRC-32 matches, 2 it does not */
    uint32_t *crc_got;      /* per member: the CRC-32 its bytes gave, once checked */
    struct vp_crc_ahead *ahead;   /* the background checker of stored members (zip.c), or NULL */
    bool ahead_tried;
};

/* Number of members (0 when src has no zip). */
long vp__zip_count(const vp_source *src);

/* Member i, with every field validated; NULL when out of range. */
const vp_zip_entry *vp__zip_entry(const vp_source *src, long i);

/* Member i's name ("archive/data.pkl"), NULL when out of range. */
const char *vp__zip_name(const vp_source *src, long i);

/* Member i's method (VP_ZIP_STORED/VP_ZIP_DEFLATED, -1 out of range), its
 * compressed and uncompressed sizes and the file offset of its first data
 * byte (0 out of range). For a stored member the bytes are
 * src->map.base + data_offset .. + usize, already bounds-checked. */
int vp__zip_method(const vp_source *src, long i);
uint64_t vp__zip_csize(const vp_source *src, long i);
uint64_t vp__zip_usize(const vp_source *src, long i);
uint64_t vp__zip_data_offset(const vp_source *src, long i);

/* Index of the member named exactly `name`, or -1. Hashed: O(1), so call it
 * freely (e.g. once per storage "archive/data/123"). */
long vp__zip_find(const vp_source *src, const char *name);

/*
 * Index of the one member whose name is `suffix` or ends with "/" + suffix
 * (torch archives keep everything under one top folder whose name varies:
 * the file's stem, "archive", ...). -1 if none, -2 if more than one matches
 * (ambiguous). Linear in the member count: use it to discover the folder
 * (e.g. with "data.pkl"), then vp__zip_find with the full name.
 */
long vp__zip_find_suffix(const vp_source *src, const char *suffix);

/*
 * Read a whole small member (pickles, version files). Stored: *data points
 * into the mapping (CRC-32 verified) and *owned is NULL. Deflated: the
 * member is inflated (CRC-32 and stream end verified) into a vp__malloc
 * buffer returned both as *data and in *owned, which the caller frees with
 * vp__free. *len receives the size. A member larger than `max` bytes is
 * refused with VP_ERR_LIMIT. Returns VP_OK or an error (message set, naming
 * the member); on error *data and *owned are NULL.
 */
int vp__zip_read(vp_source *src, long i, const uint8_t **data, size_t *len, uint8_t **owned, size_t max);

/* Also declared in format/format.h (used by the format table, formats.c):
 *   int  vp__zip_open(vp_source *src);
 *       parse src->map, set src->zip; VP_OK or an error with message.
 *   bool vp__zip_has_suffix(const vp_source *src, const char *suffix);
 *       true when any member name ends with `suffix` (plain byte suffix).
 *   void vp__zip_free(struct vp_zip *zip);             NULL is a no-op.
 *   int  vp__zip_inflate(vp_source *src, long entry, uint8_t *dst, uint64_t want);
 *       the first `want` bytes (want <= usize) of member `entry` into dst,
 *       inflating a deflated member (raw deflate) or copying a stored one.
 *       When want == usize the CRC-32 is checked (and the outcome kept for
 *       vp__zip_verify) and, for deflate, that the stream ends exactly there.
 *   int  vp__zip_verify(vp_source *src, long entry, bool force);
 *       the CRC-32 of all of member `entry`, computed once per member. */

#endif
