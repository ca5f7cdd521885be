/* fuzz/fuzz_common.h and fuzz/fuzz_memfd.h. */
#include "../fuzz_common.h"

int fz_memfd(const uint8_t *data, size_t size, const char *label, char *path, size_t pathlen)
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

/* Bytes the tensor's storage would make the library hold (inflating a
 * member allocates all of it). */
static uint64_t storage_bytes(const vp_source *src, const vp_tensor *t)
{
    if (t->storage < 0 || (size_t)t->storage >= src->nstorages) return 0;
    return src->storages[t->storage].nbytes + src->storages[t->storage].skip;
}

void fz_read_all(vp_source *src)
{
    size_t n = vp_source_count(src);
    for (size_t i = 0; i < n; i++) {
        const vp_tensor *t = vp_source_tensor(src, i);
        if (!t) abort();
        if (!t->name) abort();
        (void)vp_source_find(src, t->name);
        uint64_t f32bytes = t->numel * 4;
        if (t->nbytes > FZ_MAX_TENSOR_BYTES || f32bytes > FZ_MAX_TENSOR_BYTES ||
            storage_bytes(src, t) > FZ_MAX_TENSOR_BYTES)
            continue;
        size_t cap = (size_t)(f32bytes > t->nbytes ? f32bytes : t->nbytes);
        void *buf = malloc(cap ? cap : 1);
        if (!buf) continue;
        if (vp_source_read_as(src, i, VP_F32, buf, cap) != VP_OK && !*vp_source_errmsg(src)) abort();
        if (vp_source_read(src, i, buf, cap) != VP_OK && !*vp_source_errmsg(src)) abort();
        const uint8_t *p = vp_source_data(src, i);
        if (p && t->nbytes) { volatile uint8_t c = p[t->nbytes - 1]; (void)c; }
        uint64_t off;
        (void)vp_source_file_range(src, i, &off);
        vp_source_release(src, i);
        free(buf);
    }
    (void)vp_source_tensor(src, n);   /* out of range: NULL */
}

void fz_open(const char *path, const char *key)
{
    vp_source *src = NULL;
    int rc = vp_source_open(&src, path, key);
    if (!src) return;
    /* A failure always says why, on one line. */
    const char *msg = vp_source_errmsg(src);
    if (rc != VP_OK && (!*msg || strchr(msg, '\n'))) abort();
    if (rc == VP_OK) {
        (void)vp_source_format(src);
        (void)vp_source_metadata(src, "format");
        fz_read_all(src);
        tu_walk_values(vp_source_root(src), FZ_MAX_DEPTH, FZ_MAX_VALUES);
    }
    vp_source_close(src);
}

void fz_run(const uint8_t *data, size_t size, const char *key)
{
    char path[64];
    int fd = fz_memfd(data, size, "vp-fuzz", path, sizeof path);
    fz_open(path, key);
    close(fd);
}
