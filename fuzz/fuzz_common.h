/* Shared by the fuzz targets: put the input in a memfd, open it through
 * vp_source_open, read every tensor of bounded size, walk the value tree
 * (tests/util/value_walk.h, the walk the C tests use too). Any crash,
 * sanitizer report or broken invariant (abort) is a finding. The bodies
 * are in fuzz/util/fuzz_common.c, linked into every target. */
#ifndef VP_FUZZ_COMMON_H
#define VP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "fuzz_memfd.h"
#include "../tests/util/value_walk.h"

#define FZ_MAX_TENSOR_BYTES ((uint64_t)64 << 20)
#define FZ_MAX_VALUES 200000   /* pickles share values through the memo: bound the walk */
#define FZ_MAX_DEPTH 1000

/* Read every tensor of src whose bytes (as stored, as float32, and its
 * storage's) stay under FZ_MAX_TENSOR_BYTES, through every read call. */
void fz_read_all(vp_source *src);
/* Open path (sub-dictionary key, or NULL): a failure must say why on one
 * line; on success read every tensor and walk the value tree. */
void fz_open(const char *path, const char *key);
/* Write the input to a memfd and fz_open it as a file. */
void fz_run(const uint8_t *data, size_t size, const char *key);

#endif
