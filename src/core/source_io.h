/*
 * What a consumer that streams a source's bytes (the converter's writer)
 * may use beyond the public vp_source_* API, without seeing the source's
 * fields or the format hooks (those are core/internal.h's, for core and
 * src/format/ alone). Not installed.
 */
#ifndef VP_CORE_SOURCE_IO_H
#define VP_CORE_SOURCE_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vitport/vitport.h"

/* The bytes of tensor i's storage (loading / inflating it if needed, its
 * CRC-32 checked first), so that the tensor's elements lie at
 * storage_offset * dtype size from the result; NULL on error (message and
 * code on the source). */
const uint8_t *vp__source_storage_bytes(vp_source *src, size_t i);
/* Whether tensor i's storage lies in the file mapping (not inflated or
 * built in memory): its pages can be released as a reader goes. */
bool vp__source_in_file(const vp_source *src, size_t i);
/* The code of the failure vp_source_errmsg() describes (VP_OK if none). */
int vp__source_errcode(const vp_source *src);
/* When *cancel becomes non-zero, long reads (CRC checks, inflating) stop
 * with "interrupted". NULL: never. */
void vp__source_set_cancel(vp_source *src, const atomic_int *cancel);

#endif
