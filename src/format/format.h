/*
 * The format layer (src/format/): one reader per file format, and the table
 * of formats (formats.c) that vp_source_open walks. Core (src/core/) knows
 * no reader: it calls one only through the vp_format pointers a source
 * holds (read, free). Not installed.
 */
#ifndef VP_FORMAT_H
#define VP_FORMAT_H

#include "core/internal.h"

struct vp_zip;   /* zip.h */

/* The formats, in the order their sniff() is tried; NULL-terminated. */
extern const vp_format *const vp__formats[];
/* Two of them, by name: a reader tells that a source's `state` is its own
 * by comparing src->reader with these. */
extern const vp_format vp__format_zip;          /* state: struct vp_zip (zip.h) */
extern const vp_format vp__format_safetensors;  /* state: the __metadata__ table */

/* Reader entry points: each fills src (format, tensors, storages, root).
 * On failure they set the message and return the code; the source is
 * closed by the caller. */
int vp__zip_open(vp_source *src);          /* parses src->map into src->zip (zip.c) */
int vp__open_torch_zip(vp_source *src);    /* after vp__zip_open: torch zip or TorchScript (torch.c) */
int vp__open_npz(vp_source *src);          /* after vp__zip_open (npy.c) */
int vp__open_torch_legacy(vp_source *src); /* torch.c */
int vp__open_npy(vp_source *src);          /* npy.c */
int vp__open_safetensors(vp_source *src);  /* safetensors.c */
/* The largest size or offset a safetensors header holds (reader and writer):
 * JSON numbers arrive as doubles, and every integer up to 2^53 is exact. */
#define VP_ST_MAX_JSON_INT 9007199254740992.0
bool vp__zip_has_suffix(const vp_source *src, const char *suffix); /* any entry name ends so */
void vp__zip_free(struct vp_zip *zip);
/* Free the safetensors reader's state (safetensors.c). */
void vp__safetensors_free(vp_source *src);
/* Inflate zip entry `entry` (deflated) into dst: exactly `want` bytes from its
 * start (want <= its uncompressed size). VP_OK or an error with message. */
int vp__zip_inflate(vp_source *src, long entry, uint8_t *dst, uint64_t want);
/* Check member `entry`'s CRC-32 over all its bytes (stored: through the
 * mapping, pages released as it goes; deflated: inflated through a bounded
 * buffer), once: the outcome is kept. VP_OK when it matches or when checks
 * are off and not `force`; else an error naming the member (zip.c). */
int vp__zip_verify(vp_source *src, long entry, bool force);
long vp__zip_count(const vp_source *src);
/* True (message set) when src->cancel is set (zip.c). */
bool vp__interrupted(vp_source *src);

/* Value tree helpers (src/format/value.c / pickle_values.c). */
void vp__value_free_all(vp_source *src);

#endif
