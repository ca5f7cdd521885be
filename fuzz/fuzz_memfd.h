/* Put a fuzz input into an in-memory file, so targets can open it by path
 * (fuzz/util/fuzz_common.c). */
#ifndef VP_FUZZ_MEMFD_H
#define VP_FUZZ_MEMFD_H
#include <stddef.h>
#include <stdint.h>

/* Returns the descriptor (close it when done) and writes "/proc/self/fd/N"
 * into path. Aborts on failure: the harness, not the input, is broken. */
int fz_memfd(const uint8_t *data, size_t size, const char *label, char *path, size_t pathlen);
#endif
