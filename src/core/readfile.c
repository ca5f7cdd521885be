/* Whole small files (configs, label lists, vocabularies), read safely. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int vp__read_file(const char *path, size_t limit, char **out, size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    if (len) *len = 0;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
     * it is refused below before anything is read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return VP_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return VP_ERR_IO;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > limit) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, limit);
        close(fd);
        return VP_ERR_LIMIT;
    }
    /* The size may change while reading: read at most limit + 1 bytes and
     * look at what arrived, not at st_size. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = vp__malloc(cap + 1);
    if (!buf) { snprintf(err, errlen, "%s: out of memory", path); close(fd); return VP_ERR_NOMEM; }
    for (;;) {
        if (n == cap) {
            if (cap > limit) break;
            size_t nc = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *g = vp__realloc(buf, nc + 1);
            if (!g) { vp__free(buf); snprintf(err, errlen, "%s: out of memory", path); close(fd); return VP_ERR_NOMEM; }
            buf = g;
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
            vp__free(buf);
            close(fd);
            return VP_ERR_IO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > limit) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, limit);
        vp__free(buf);
        return VP_ERR_LIMIT;
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return VP_OK;
}
