/* Shared by the fuzz targets: put the input in a memfd, open it through
 * vp_source_open, read every tensor of bounded size, walk the value tree.
 * Any crash, sanitizer report or broken invariant (abort) is a finding. */
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

#define FZ_MAX_TENSOR_BYTES ((uint64_t)64 << 20)
#define FZ_MAX_VALUES 200000   /* pickles share values through the memo: bound the walk */

static void fz_walk(const vp_value *v, int depth, long *budget)
{
    if (!v || depth > 1000 || --*budget < 0) return;
    (void)vp_value_str(v);
    (void)vp_value_int(v);
    (void)vp_value_float(v);
    (void)vp_value_tensor(v);
    vp_kind k = vp_value_kind(v);
    size_t n = vp_value_len(v);
    if (k == VP_V_STR || k == VP_V_BYTES) {
        const char *s = vp_value_str(v);
        if (s && n) { volatile char c = s[n - 1]; (void)c; }   /* the length must be readable */
    }
    if (k == VP_V_TUPLE || k == VP_V_LIST || k == VP_V_SET || k == VP_V_DICT) {
        for (size_t i = 0; i < n && *budget > 0; i++) {
            if (k == VP_V_DICT) {
                const vp_value *key = vp_value_key(v, i);
                fz_walk(key, depth + 1, budget);
                if (vp_value_kind(key) == VP_V_STR) (void)vp_value_get(v, vp_value_str(key));
            }
            fz_walk(vp_value_item(v, i), depth + 1, budget);
        }
        (void)vp_value_item(v, n);   /* out of range: NULL, no crash */
    }
    if (k == VP_V_OBJECT) {
        fz_walk(vp_value_state(v), depth + 1, budget);
        fz_walk(vp_value_args(v), depth + 1, budget);
    }
}

/* Bytes the tensor's storage would make the library hold (inflating a
 * member allocates all of it). */
static uint64_t fz_storage_bytes(const vp_source *src, const vp_tensor *t)
{
    if (t->storage < 0 || (size_t)t->storage >= src->nstorages) return 0;
    return src->storages[t->storage].nbytes + src->storages[t->storage].skip;
}

static void fz_read_all(vp_source *src)
{
    size_t n = vp_source_count(src);
    for (size_t i = 0; i < n; i++) {
        const vp_tensor *t = vp_source_tensor(src, i);
        if (!t) abort();
        if (!t->name) abort();
        (void)vp_source_find(src, t->name);
        uint64_t f32bytes = t->numel * 4;
        if (t->nbytes > FZ_MAX_TENSOR_BYTES || f32bytes > FZ_MAX_TENSOR_BYTES ||
            fz_storage_bytes(src, t) > FZ_MAX_TENSOR_BYTES)
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

static void fz_open(const char *path, const char *key)
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
        long budget = FZ_MAX_VALUES;
        fz_walk(vp_source_root(src), 0, &budget);
    }
    vp_source_close(src);
}

/* Write the input to a memfd and open it as a file. */
static void fz_run(const uint8_t *data, size_t size, const char *key)
{
    char path[64];
    int fd = fz_memfd(data, size, "vp-fuzz", path, sizeof path);
    fz_open(path, key);
    close(fd);
}

#endif
