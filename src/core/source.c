/* The tensor-source API: the source object, tensor validation, strided
 * reads, narrowing by key. Readers in src/format/ fill the tables; the
 * format layer's vp_source_open (src/format/formats.c) picks the reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- tables ------------------------------------------------------------- */
long vp__add_storage(vp_source *src, const vp_storage *st)
{
    if (src->nstorages == src->capstorages) {
        size_t cap = src->capstorages ? src->capstorages * 2 : 64;
        if (cap > VP_MAX_TENSORS) { vp__err(src, VP_ERR_LIMIT, "more than %u storages", VP_MAX_TENSORS); return -1; }
        vp_storage *p = vp__realloc(src->storages, cap * sizeof *p);
        if (!p) { vp__err(src, VP_ERR_NOMEM, "out of memory"); return -1; }
        src->storages = p; src->capstorages = cap;
    }
    src->storages[src->nstorages] = *st;
    return (long)src->nstorages++;
}

int vp__reserve_tables(vp_source *src, size_t tensors, size_t storages)
{
    if (tensors > VP_MAX_TENSORS || storages > VP_MAX_TENSORS)
        return vp__err(src, VP_ERR_LIMIT, "more than %u tensors", VP_MAX_TENSORS);
    if (src->capall - src->nall < tensors) {
        vp_tensor *p = vp__realloc(src->all, (src->nall + tensors) * sizeof *p);
        if (!p) return vp__err(src, VP_ERR_NOMEM, "out of memory");
        src->all = p; src->capall = src->nall + tensors;
    }
    if (src->capstorages - src->nstorages < storages) {
        vp_storage *p = vp__realloc(src->storages, (src->nstorages + storages) * sizeof *p);
        if (!p) return vp__err(src, VP_ERR_NOMEM, "out of memory");
        src->storages = p; src->capstorages = src->nstorages + storages;
    }
    return VP_OK;
}

int vp__add_tensor(vp_source *src, const char *name, vp_dtype dtype, int ndim,
                   const int64_t *shape, const int64_t *strides, int64_t storage_offset, long storage)
{
    if ((unsigned)dtype >= VP_DTYPE_COUNT) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': bad dtype", name);
    if (ndim < 0 || ndim > VP_MAX_DIMS)
        return vp__err(src, VP_ERR_UNSUPPORTED, "tensor '%s': %d dimensions (at most %d)", name, ndim, VP_MAX_DIMS);
    size_t namelen = strlen(name);
    if (namelen > VP_MAX_NAME) return vp__err(src, VP_ERR_LIMIT, "tensor name longer than %d bytes", VP_MAX_NAME);
    if (src->nall >= VP_MAX_TENSORS) return vp__err(src, VP_ERR_LIMIT, "more than %u tensors", VP_MAX_TENSORS);

    vp_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim;
    t.storage = storage;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': negative size in dimension %d", name, i);
        t.shape[i] = shape[i];
        if (!vp__mul_u64(numel, (uint64_t)shape[i], &numel) || numel > (UINT64_MAX >> 4))
            return vp__err(src, VP_ERR_FORMAT, "tensor '%s': element count overflows", name);
    }
    if (strides) {
        for (int i = 0; i < ndim; i++) {
            if (strides[i] < 0) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': negative stride in dimension %d", name, i);
            t.strides[i] = strides[i];
        }
    } else {
        /* C order, a size 0 counting as 1 (as torch). With no elements the
         * other sizes are unchecked and their product may overflow: the
         * strides of an empty tensor are never used, so saturate them. */
        uint64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            t.strides[i] = (int64_t)s;
            if (!vp__mul_u64(s, shape[i] ? (uint64_t)shape[i] : 1, &s) || s > INT64_MAX) s = INT64_MAX;
        }
    }
    if (storage_offset < 0) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': negative storage offset", name);
    t.storage_offset = storage_offset;
    t.numel = numel;
    size_t es = vp_dtype_size(dtype);
    if (!vp__mul_u64(numel, es, &t.nbytes)) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': byte size overflows", name);

    if (storage < 0) {
        if (numel) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': has %llu elements but no storage", name, (unsigned long long)numel);
    } else {
        if ((size_t)storage >= src->nstorages) return vp__err(src, VP_ERR_FORMAT, "tensor '%s': no such storage", name);
        const vp_storage *st = &src->storages[storage];
        if (numel) {
            /* furthest element: offset + sum((size-1)*stride), checked for overflow */
            uint64_t last = (uint64_t)storage_offset, term;
            for (int i = 0; i < ndim; i++) {
                if (!vp__mul_u64((uint64_t)(t.shape[i] - 1), (uint64_t)t.strides[i], &term) || !vp__add_u64(last, term, &last))
                    return vp__err(src, VP_ERR_FORMAT,
                                   "tensor '%s': view extent overflows 64 bits (storage offset %lld, dimension %d: size %lld, stride %lld)",
                                   name, (long long)storage_offset, i, (long long)t.shape[i], (long long)t.strides[i]);
            }
            /* Print what was checked, never a wrapped product. */
            uint64_t need;
            if (!vp__add_u64(last, 1, &need) || !vp__mul_u64(need, es, &need))
                return vp__err(src, VP_ERR_FORMAT,
                               "tensor '%s' reaches element %llu of storage '%s' (storage offset %lld): at %zu bytes each "
                               "that overflows 64 bits; the storage holds %llu bytes",
                               name, (unsigned long long)last, st->label ? st->label : "?", (long long)storage_offset, es,
                               (unsigned long long)st->nbytes);
            if (need > st->nbytes)
                return vp__err(src, VP_ERR_FORMAT,
                               "tensor '%s' needs %llu bytes of storage '%s' (elements 0..%llu of %zu bytes, storage offset %lld) "
                               "but it holds %llu",
                               name, (unsigned long long)need, st->label ? st->label : "?", (unsigned long long)last, es,
                               (long long)storage_offset, (unsigned long long)st->nbytes);
        }
    }
    t.name = vp__arena_strndup(&src->arena, name, namelen);
    if (!t.name) return vp__err(src, VP_ERR_LIMIT, "out of name memory");
    if (src->nall == src->capall) {
        size_t cap = src->capall ? src->capall * 2 : 64;
        vp_tensor *p = vp__realloc(src->all, cap * sizeof *p);
        if (!p) return vp__err(src, VP_ERR_NOMEM, "out of memory");
        src->all = p; src->capall = cap;
    }
    src->all[src->nall++] = t;
    return VP_OK;
}

/* ---- storage access --------------------------------------------------- */
/* The reader's checksum hooks (zip members' CRC-32), when it has them. */
static int check_member(vp_source *src, long entry, bool force)
{
    return src->reader && src->reader->verify ? src->reader->verify(src, entry, force) : VP_OK;
}

static long members(const vp_source *src)
{
    return src->reader && src->reader->members ? src->reader->members(src) : 0;
}

const uint8_t *vp__storage_bytes(vp_source *src, long idx)
{
    if (idx < 0 || (size_t)idx >= src->nstorages) { vp__err(src, VP_ERR_ARG, "no such storage"); return NULL; }
    vp_storage *st = &src->storages[idx];
    switch (st->kind) {
    case VP_STORE_FILE:
        if (st->offset > src->map.size || st->nbytes > src->map.size - st->offset) {
            vp__err(src, VP_ERR_FORMAT, "storage '%s' lies past the end of the file", st->label ? st->label : "?");
            return NULL;
        }
        if (st->crc && check_member(src, st->member, false) != VP_OK) return NULL;
        return src->map.base ? src->map.base + st->offset : (const uint8_t *)"";
    case VP_STORE_MEMORY:
        if (st->crc && check_member(src, st->member, false) != VP_OK) return NULL;
        return st->owned ? st->owned : (const uint8_t *)"";
    case VP_STORE_DEFLATE: {
        if (st->owned) return st->owned + st->skip;
        uint64_t total;
        if (!vp__add_u64(st->nbytes, st->skip, &total) || total > SIZE_MAX) { vp__err(src, VP_ERR_LIMIT, "storage too large"); return NULL; }
        uint8_t *buf = vp__malloc((size_t)total ? (size_t)total : 1);
        if (!buf) { vp__err(src, VP_ERR_NOMEM, "out of memory inflating '%s' (%llu bytes)", st->label ? st->label : "?", (unsigned long long)total); return NULL; }
        /* Inflating the whole member checks its CRC-32; a storage that ends
         * before its member is checked over all of it. */
        if (!src->reader || !src->reader->read) { vp__free(buf); vp__err(src, VP_ERR_FORMAT, "storage '%s' cannot be read", st->label ? st->label : "?"); return NULL; }
        if (src->reader->read(src, st->member, buf, total) != VP_OK ||
            (st->crc && check_member(src, st->member, false) != VP_OK)) { vp__free(buf); return NULL; }
        st->owned = buf;
        return buf + st->skip;
    }
    }
    return NULL;
}

/* ---- core/source_io.h: what a streaming consumer may use ---------------- */
const uint8_t *vp__source_storage_bytes(vp_source *src, size_t i)
{
    if (!src) return NULL;
    if (i >= src->nview || src->view[i].storage < 0) { vp__err(src, VP_ERR_ARG, "no such tensor or storage"); return NULL; }
    return vp__storage_bytes(src, (long)src->view[i].storage);
}

bool vp__source_in_file(const vp_source *src, size_t i)
{
    return src && i < src->nview && src->view[i].storage >= 0 &&
           src->storages[src->view[i].storage].kind == VP_STORE_FILE;
}

int vp__source_errcode(const vp_source *src) { return src ? src->errcode : VP_ERR_NOMEM; }

void vp__source_set_cancel(vp_source *src, const atomic_int *cancel) { if (src) src->cancel = cancel; }

bool vp__c_contiguous(int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] != 1 && strides[i] != s) return false;
        s *= shape[i];
    }
    return true;
}

static bool is_c_contiguous(const vp_tensor *t) { return vp__c_contiguous(t->ndim, t->shape, t->strides); }

/* ---- public API --------------------------------------------------------- */

int vp__source_new(vp_source **out, const char *path)
{
    vp_source *src = vp__calloc(1, sizeof *src);
    *out = src;
    if (!src) return VP_ERR_NOMEM;
    src->alloc = vp__alloc_get();
    src->map.fd = -1;
    src->path = vp__strdup(path ? path : "");
    if (!src->path) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    int rc = vp__map_open(&src->map, path, src->errmsg, sizeof src->errmsg);
    if (rc) return rc;
    size_t cap = VP_ARENA_FIXED;
    uint64_t extra;
    if (vp__mul_u64(src->map.size, VP_ARENA_PER_INPUT_BYTE, &extra) && extra < SIZE_MAX - cap) cap += (size_t)extra;
    else cap = SIZE_MAX / 2;
    vp__arena_init(&src->arena, cap);
    return VP_OK;
}

/* Names of the sub-dictionaries that hold tensors, for "did you mean". */
static void list_candidates(vp_source *src, vp_buf *b)
{
    size_t shown = 0;
    for (size_t i = 0; i < src->nall && shown < 12; i++) {
        const char *nm = src->all[i].name;
        for (const char *p = strchr(nm, '/'); p; p = strchr(p + 1, '/')) {
            size_t len = (size_t)(p - nm);
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                if (!strncmp(src->all[j].name, nm, len) && src->all[j].name[len] == '/') seen = true;
            if (seen) continue;
            /* not printed yet in this buffer? */
            vp__buf_printf(b, "%s'%.*s'", shown ? ", " : "", (int)len, nm);
            shown++;
        }
    }
    if (!shown) vp__buf_puts(b, "none (the tensors are not nested)");
}

int vp__source_narrow(vp_source *src, const char *key)
{
    if (!key || !*key) {
        src->view = src->all;
        src->nview = src->nall;
        return VP_OK;
    }
    size_t klen = strlen(key);
    while (klen && key[klen - 1] == '/') klen--;
    src->view = vp__calloc(src->nall ? src->nall : 1, sizeof *src->view);
    src->view_index = vp__calloc(src->nall ? src->nall : 1, sizeof *src->view_index);
    if (!src->view || !src->view_index) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < src->nall; i++) {
        const char *nm = src->all[i].name;
        if (strncmp(nm, key, klen) || nm[klen] != '/') continue;
        src->view[src->nview] = src->all[i];
        src->view[src->nview].name = nm + klen + 1;
        src->view_index[src->nview++] = i;
    }
    if (src->nview == 0) {
        vp_buf b = {0};
        list_candidates(src, &b);
        int rc = vp__err(src, VP_ERR_NOTFOUND, "no sub-dictionary '%.*s' holds tensors; candidates: %s",
                         (int)klen, key, b.p ? b.p : "?");
        vp__buf_free(&b);
        return rc;
    }
    return VP_OK;
}

static void vp_source_close__impl(vp_source *src)
{
    if (!src) return;
    for (size_t i = 0; i < src->nstorages; i++)
        if (src->storages[i].kind != VP_STORE_FILE) vp__free(src->storages[i].owned);
    vp__free(src->storages);
    if (src->view != src->all) vp__free(src->view);
    vp__free(src->view_index);
    vp__free(src->all);
    if (src->reader && src->reader->free) src->reader->free(src);
    vp__arena_free(&src->arena);
    vp__map_close(&src->map);
    vp__free(src->path);
    vp__free(src);
}

void vp_source_close(vp_source *src)
{
    VP__WITH_ALLOC_VOID(src ? &src->alloc : vp__alloc_current(), vp_source_close__impl(src));
}

const char *vp_source_errmsg(const vp_source *src) { return src ? src->errmsg : "out of memory"; }
const char *vp_source_format(const vp_source *src) { return src && src->format ? src->format : ""; }
size_t vp_source_count(const vp_source *src) { return src ? src->nview : 0; }
const vp_tensor *vp_source_tensor(const vp_source *src, size_t i) { return src && i < src->nview ? &src->view[i] : NULL; }
const vp_tensor *vp_source_tensors(const vp_source *src, size_t *count)
{
    if (count) *count = src ? src->nview : 0;
    return src ? src->view : NULL;
}
const vp_value *vp_source_root(const vp_source *src) { return src ? src->root : NULL; }
int vp_source_fd(const vp_source *src) { return src ? src->map.fd : -1; }

long vp_source_find(const vp_source *src, const char *name)
{
    if (!src || !name) return -1;
    for (size_t i = 0; i < src->nview; i++)
        if (!strcmp(src->view[i].name, name)) return (long)i;
    return -1;
}

/* Copy a strided view into dst (C order), one innermost run at a time. */
static void gather(uint8_t *dst, const uint8_t *base, const vp_tensor *t, size_t es)
{
    if (t->numel == 0) return;
    if (t->ndim == 0) { memcpy(dst, base + (size_t)t->storage_offset * es, es); return; }
    int64_t idx[VP_MAX_DIMS] = {0};
    int last = t->ndim - 1;
    int64_t inner = t->shape[last], istride = t->strides[last];
    uint64_t outer = t->numel / (uint64_t)inner;
    for (uint64_t o = 0; o < outer; o++) {
        int64_t off = t->storage_offset;
        for (int d = 0; d < last; d++) off += idx[d] * t->strides[d];
        const uint8_t *s = base + (size_t)off * es;
        if (istride == 1) {
            memcpy(dst, s, (size_t)inner * es);
            dst += (size_t)inner * es;
        } else {
            for (int64_t k = 0; k < inner; k++, dst += es) memcpy(dst, s + (size_t)(k * istride) * es, es);
        }
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static int vp_source_read__impl(vp_source *src, size_t i, void *dst, size_t dst_bytes)
{
    if (!src) return VP_ERR_ARG;
    if (i >= src->nview) return vp__err(src, VP_ERR_ARG, "no tensor %zu (the source has %zu)", i, src->nview);
    const vp_tensor *t = &src->view[i];
    if (dst_bytes < t->nbytes) return vp__err(src, VP_ERR_ARG, "tensor '%s': buffer of %zu bytes, needs %llu", t->name, dst_bytes, (unsigned long long)t->nbytes);
    if (t->numel == 0) return VP_OK;
    const uint8_t *base = vp__storage_bytes(src, (long)t->storage);
    if (!base) return VP_ERR_FORMAT;
    size_t es = vp_dtype_size(t->dtype);
    if (is_c_contiguous(t)) memcpy(dst, base + (size_t)t->storage_offset * es, (size_t)t->nbytes);
    else gather(dst, base, t, es);
    return VP_OK;
}

int vp_source_read(vp_source *src, size_t i, void *dst, size_t dst_bytes)
{
    VP__WITH_ALLOC(src ? &src->alloc : vp__alloc_current(), int, vp_source_read__impl(src, i, dst, dst_bytes));
}

static int vp_source_read_as__impl(vp_source *src, size_t i, vp_dtype to, void *dst, size_t dst_bytes)
{
    if (!src) return VP_ERR_ARG;
    if (i >= src->nview) return vp__err(src, VP_ERR_ARG, "no tensor %zu (the source has %zu)", i, src->nview);
    if ((unsigned)to >= VP_DTYPE_COUNT) return vp__err(src, VP_ERR_ARG, "no dtype %d", (int)to);
    const vp_tensor *t = &src->view[i];
    if (to == t->dtype) return vp_source_read(src, i, dst, dst_bytes);
    uint64_t need;
    if (!vp__mul_u64(t->numel, vp_dtype_size(to), &need) || dst_bytes < need)
        return vp__err(src, VP_ERR_ARG, "tensor '%s': buffer too small", t->name);
    if (t->numel == 0) return VP_OK;
    const void *p = vp_source_data(src, i);
    void *tmp = NULL;
    if (!p) {
        if (t->nbytes > SIZE_MAX) return vp__err(src, VP_ERR_LIMIT, "tensor too large");
        tmp = vp__malloc((size_t)t->nbytes);
        if (!tmp) return vp__err(src, VP_ERR_NOMEM, "out of memory reading '%s'", t->name);
        int rc = vp_source_read(src, i, tmp, (size_t)t->nbytes);
        if (rc) { vp__free(tmp); return rc; }
        p = tmp;
    }
    vp_dtype_convert(dst, to, p, t->dtype, (size_t)t->numel);
    vp__free(tmp);
    return VP_OK;
}

int vp_source_read_as(vp_source *src, size_t i, vp_dtype to, void *dst, size_t dst_bytes)
{
    VP__WITH_ALLOC(src ? &src->alloc : vp__alloc_current(), int, vp_source_read_as__impl(src, i, to, dst, dst_bytes));
}

static const void *vp_source_data__impl(vp_source *src, size_t i)
{
    if (!src || i >= src->nview) return NULL;
    const vp_tensor *t = &src->view[i];
    if (t->storage < 0 || !is_c_contiguous(t)) return NULL;
    vp_storage *st = &src->storages[t->storage];
    if (st->kind == VP_STORE_DEFLATE && !st->owned) return NULL;
    const uint8_t *base = vp__storage_bytes(src, (long)t->storage);
    return base ? base + (size_t)t->storage_offset * vp_dtype_size(t->dtype) : NULL;
}

const void *vp_source_data(vp_source *src, size_t i)
{
    VP__WITH_ALLOC(src ? &src->alloc : vp__alloc_current(), const void *, vp_source_data__impl(src, i));
}

static int vp_source_file_range__impl(vp_source *src, size_t i, uint64_t *offset)
{
    /* a query on a const source: codes only, no message */
    if (!src || i >= src->nview) return VP_ERR_ARG;
    const vp_tensor *t = &src->view[i];
    if (t->storage < 0 || !is_c_contiguous(t)) return VP_ERR_UNSUPPORTED;
    const vp_storage *st = &src->storages[t->storage];
    if (st->kind != VP_STORE_FILE) return VP_ERR_UNSUPPORTED;
    /* The caller copies the bytes without looking at them: check first. */
    if (st->crc) {
        int rc = check_member(src, st->member, false);
        if (rc) return rc;
    }
    *offset = st->offset + (uint64_t)t->storage_offset * vp_dtype_size(t->dtype);
    return VP_OK;
}

int vp_source_file_range(vp_source *src, size_t i, uint64_t *offset)
{
    VP__WITH_ALLOC(src ? &src->alloc : vp__alloc_current(), int, vp_source_file_range__impl(src, i, offset));
}

void vp_source_set_crc_check(vp_source *src, int on)
{
    if (src) src->no_crc = !on;
}

static int vp_source_check_data__impl(vp_source *src, size_t *checked)
{
    if (checked) *checked = 0;
    if (!src) return VP_ERR_ARG;
    if (members(src) <= 0) return VP_OK;   /* no checksums in this format */
    /* each member once, in archive order, whatever shares it */
    uint8_t *want = vp__calloc((size_t)members(src) + 1, 1);
    if (!want) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < src->nview; i++) {
        long s = src->view[i].storage;
        if (s >= 0 && src->storages[s].crc && src->storages[s].member >= 0 && src->storages[s].member < members(src))
            want[src->storages[s].member] = 1;
    }
    int rc = VP_OK;
    for (long e = 0; e < members(src) && rc == VP_OK; e++) {
        if (!want[e]) continue;
        rc = check_member(src, e, true);
        if (rc == VP_OK && checked) ++*checked;
    }
    vp__free(want);
    return rc;
}

int vp_source_check_data(vp_source *src, size_t *checked)
{
    VP__WITH_ALLOC(src ? &src->alloc : vp__alloc_current(), int, vp_source_check_data__impl(src, checked));
}

static void vp_source_release__impl(vp_source *src, size_t i)
{
    if (!src || i >= src->nview) return;
    const vp_tensor *t = &src->view[i];
    if (t->storage < 0) return;
    vp_storage *st = &src->storages[t->storage];
    if (st->kind == VP_STORE_FILE) vp__map_release(&src->map, st->offset, st->nbytes);
    else if (st->kind == VP_STORE_DEFLATE) { vp__free(st->owned); st->owned = NULL; }
}

void vp_source_release(vp_source *src, size_t i)
{
    VP__WITH_ALLOC_VOID(src ? &src->alloc : vp__alloc_current(), vp_source_release__impl(src, i));
}
