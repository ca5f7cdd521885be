/* Put a fuzz input into an in-memory file, so targets can open it by path. */
#ifndef VP_FUZZ_MEMFD_H
#define VP_FUZZ_MEMFD_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns the descriptor (close it when done) and writes "/proc/self/fd/N"
 * into path. Aborts on failure: the harness, not the input, is broken. */
static inline int fz_memfd(const uint8_t *data, size_t size, const char *label, char *path, size_t pathlen)
{
    int fd = memfd_create(label, MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) abort();
        done += (size_t)k;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}
#endif
