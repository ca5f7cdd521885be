/*
 * Streaming the plan into the shard files: contiguous pieces of an unchanged
 * dtype go through a kernel copy (vp_st_writer_copy), the rest through two
 * bounded buffers (gather, then convert the dtype). Source pages are released
 * once their last reader is written, so memory stays bounded.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/converter.h"

typedef struct writer {
    vp_plan *p;
    const vp_convert_opts *opts;
    uint8_t *sbuf, *dbuf;            /* VP_IO_CHUNK each */
    uint32_t *uses;                  /* remaining pieces per source tensor */
    uint64_t bytes_done, bytes_total;
    size_t tensors_done, tensors_total;
    bool progress;
    double last_print;
    char *err;
    size_t errlen;
} writer;

static void progress(writer *w, bool final)
{
    if (!w->progress) return;
    double t = vp_conv_now();
    if (!final && t - w->last_print < 0.2) return;
    w->last_print = t;
    fprintf(stderr, "\rvitport convert: %zu/%zu tensors, %.1f/%.1f MB%s", w->tensors_done, w->tensors_total,
            (double)w->bytes_done / 1e6, (double)w->bytes_total / 1e6, final ? "\n" : "");
    fflush(stderr);
}

static int werr(writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int werr(writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(w->err, w->errlen, NULL, fmt, ap);
    va_end(ap);
    return code;
}

/* Storage element offset of the C-order element L of a (non-contiguous) tensor. */
static int64_t logical_to_storage(const vp_tensor *t, uint64_t L)
{
    int64_t off = t->storage_offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        uint64_t sz = (uint64_t)t->shape[d];
        off += (int64_t)(L % sz) * t->strides[d];
        L /= sz;
    }
    return off;
}

static int flush_chunk(writer *w, vp_st_writer *sw, vp_dtype from, vp_dtype to, size_t n)
{
    const void *data = w->sbuf;
    if (from != to) {
        vp_dtype_convert(w->dbuf, to, w->sbuf, from, n);
        data = w->dbuf;
    }
    if (vp_st_writer_write(sw, data, n * vp_dtype_size(to)))
        return werr(w, VP_ERR_IO, "%s", vp_st_writer_errmsg(sw));
    w->bytes_done += n * vp_dtype_size(to);
    progress(w, false);
    if (vp_conv_cancelled(w->opts)) return werr(w, VP_ERR_IO, "interrupted");
    return VP_OK;
}

/* Elements per chunk so both the source and the converted copy fit. */
static size_t chunk_elems(vp_dtype a, vp_dtype b)
{
    size_t es = vp_dtype_size(a) > vp_dtype_size(b) ? vp_dtype_size(a) : vp_dtype_size(b);
    return VP_IO_CHUNK / es;
}

/* A contiguous run of a contiguous source in the file: kernel copy, or
 * pread + convert, never mapping the bytes. */
static int write_file_run(writer *w, vp_st_writer *sw, const vp_tensor *t, uint64_t file_off, uint64_t n, vp_dtype to)
{
    vp_source *src = w->p->src;
    size_t es = vp_dtype_size(t->dtype);
    if (t->dtype == to) {
        uint64_t left = n * es, off = file_off;
        while (left) {
            uint64_t step = left < (64u << 20) ? left : (64u << 20);
            if (vp_st_writer_copy(sw, vp_source_fd(src), off, step))
                return werr(w, VP_ERR_IO, "%s", vp_st_writer_errmsg(sw));
            off += step;
            left -= step;
            w->bytes_done += step;
            progress(w, false);
            if (vp_conv_cancelled(w->opts)) return werr(w, VP_ERR_IO, "interrupted");
        }
        return VP_OK;
    }
    size_t ce = chunk_elems(t->dtype, to);
    while (n) {
        size_t k = n < ce ? (size_t)n : ce, want = k * es, got = 0;
        while (got < want) {
            ssize_t r = pread(vp_source_fd(src), w->sbuf + got, want - got, (off_t)(file_off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return werr(w, VP_ERR_IO, "reading '%s': %s", t->name, r < 0 ? strerror(errno) : "file truncated");
            got += (size_t)r;
        }
        int rc = flush_chunk(w, sw, t->dtype, to, k);
        if (rc) return rc;
        file_off += want;
        n -= k;
    }
    return VP_OK;
}

/* Any piece, through the mapping / inflated storage, one bounded chunk at a time. */
static int write_gather(writer *w, vp_st_writer *sw, const vp_tensor *t, long si, const vp_piece *pc, vp_dtype to)
{
    vp_source *src = w->p->src;
    const uint8_t *base = vp__source_storage_bytes(src, (size_t)si);
    if (!base) return werr(w, vp__source_errcode(src) ? vp__source_errcode(src) : VP_ERR_FORMAT, "%s", vp_source_errmsg(src));
    size_t es = vp_dtype_size(t->dtype), ce = chunk_elems(t->dtype, to), fill = 0;
    bool contig = vp__c_contiguous(t->ndim, t->shape, t->strides);
    /* Huge mapped sources read out of order: drop their pages after each
     * chunk (they come back from the page cache) so RSS stays bounded. */
    bool release_each = vp__source_in_file(src, (size_t)si) && t->nbytes > 8ull * VP_IO_CHUNK;
    const uint8_t *data = base + (size_t)t->storage_offset * es;
    int nd = pc->ndim;
    int64_t idx[VP_MAX_DIMS] = {0};
    int64_t inner = nd ? pc->shape[nd - 1] : 1, istride = nd ? pc->strides[nd - 1] : 1;
    uint64_t rows = vp_conv_numel(nd, pc->shape) / (uint64_t)(inner ? inner : 1);
    for (uint64_t r = 0; r < rows; r++) {
        int64_t L0 = pc->offset;
        for (int d = 0; d < nd - 1; d++) L0 += idx[d] * pc->strides[d];
        int64_t k = 0;
        while (k < inner) {
            size_t room = ce - fill;
            int64_t take = inner - k < (int64_t)room ? inner - k : (int64_t)room;
            uint8_t *dst = w->sbuf + fill * es;
            if (contig && istride == 1) {
                memcpy(dst, data + (size_t)(L0 + k) * es, (size_t)take * es);
            } else if (contig) {
                for (int64_t q = 0; q < take; q++)
                    memcpy(dst + (size_t)q * es, data + (size_t)(L0 + (k + q) * istride) * es, es);
            } else {
                for (int64_t q = 0; q < take; q++)
                    memcpy(dst + (size_t)q * es, base + (size_t)logical_to_storage(t, (uint64_t)(L0 + (k + q) * istride)) * es, es);
            }
            fill += (size_t)take;
            k += take;
            if (fill == ce) {
                int rc = flush_chunk(w, sw, t->dtype, to, fill);
                if (rc) return rc;
                fill = 0;
                if (release_each) vp_source_release(src, (size_t)si);
            }
        }
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < pc->shape[d]) break;
            idx[d] = 0;
        }
    }
    if (fill) return flush_chunk(w, sw, t->dtype, to, fill);
    return VP_OK;
}

static int write_piece(writer *w, vp_st_writer *sw, const vp_piece *pc, vp_dtype to)
{
    vp_source *src = w->p->src;
    const vp_tensor *t = vp_source_tensor(src, (size_t)pc->src);
    uint64_t n = vp_conv_numel(pc->ndim, pc->shape), off;
    if (n == 0) return VP_OK;
    if (vp__c_contiguous(pc->ndim, pc->shape, pc->strides) && vp_source_file_range(src, (size_t)pc->src, &off) == VP_OK)
        return write_file_run(w, sw, t, off + (uint64_t)pc->offset * vp_dtype_size(t->dtype), n, to);
    return write_gather(w, sw, t, pc->src, pc, to);
}

static int write_shard(writer *w, const char *path, vp_wout **list, size_t n)
{
    vp_st_writer *sw = NULL;
    int rc = vp_st_writer_open(&sw, path);
    if (rc == VP_OK) vp_st_writer_durable(sw, w->opts && w->opts->sync);
    if (rc == VP_OK) rc = vp_st_writer_meta(sw, "format", "pt");
    for (size_t i = 0; rc == VP_OK && i < n; i++)
        rc = vp_st_writer_add(sw, list[i]->o->name, list[i]->dtype, list[i]->o->ndim, list[i]->o->shape);
    if (rc) {
        werr(w, rc, "%s", sw ? vp_st_writer_errmsg(sw) : "out of memory");
        vp_st_writer_close(sw);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const vp_out *o = list[i]->o;
        for (int k = 0; k < o->npieces; k++) {
            rc = write_piece(w, sw, &o->pieces[k], list[i]->dtype);
            if (rc) { vp_st_writer_close(sw); return rc; }
        }
        /* release each source once its last reader is written */
        for (int k = 0; k < o->npieces; k++) {
            long s = o->pieces[k].src;
            if (w->uses[s] && --w->uses[s] == 0) vp_source_release(w->p->src, (size_t)s);
        }
        w->tensors_done++;
        progress(w, false);
    }
    if (vp_st_writer_finish(sw)) {
        rc = werr(w, VP_ERR_IO, "%s", vp_st_writer_errmsg(sw));
        vp_st_writer_close(sw);
        return rc;
    }
    vp_st_writer_close(sw);
    return VP_OK;
}

static int write_all(vp_plan *p, const vp_layout *L, const char *dir, writer *w)
{
    size_t i = 0;
    for (int s = 0; s < L->nshards; s++) {
        size_t j = i;
        while (j < L->n && L->order[j]->shard == s) j++;
        char nm[64], path[PATH_MAX];
        vp_conv_shard_name(nm, sizeof nm, s, L->nshards);
        if (snprintf(path, sizeof path, "%s/%s", dir, nm) >= (int)sizeof path) return werr(w, VP_ERR_ARG, "path too long");
        int rc = write_shard(w, path, L->order + i, j - i);
        if (rc) return rc;
        i = j;
    }
    int rc = VP_OK;
    if (L->nshards > 1) rc = vp_conv_write_index(dir, L, w->err, w->errlen);
    if (!rc) rc = vp_conv_write_json_file(dir, "config.json", p->config, w->err, w->errlen);
    if (!rc && p->preprocessor) rc = vp_conv_write_json_file(dir, "preprocessor_config.json", p->preprocessor, w->err, w->errlen);
    for (size_t k = 0; !rc && k < p->nextra; k++)
        rc = vp_conv_write_file(dir, p->extra[k].name, p->extra[k].data, p->extra[k].len, w->err, w->errlen);
    if (!rc) vp__fsync_dir(dir);
    return rc;
}

int vp_conv_write(vp_plan *p, const vp_layout *L, const char *dir, char *err, size_t errlen)
{
    const vp_convert_opts *opts = p->opts;
    size_t ns = vp_source_count(p->src);
    writer w;
    memset(&w, 0, sizeof w);
    w.p = p;
    w.opts = opts;
    w.err = err;
    w.errlen = errlen;
    w.sbuf = vp__malloc(VP_IO_CHUNK);
    w.dbuf = vp__malloc(VP_IO_CHUNK);
    w.uses = vp__calloc(ns ? ns : 1, sizeof *w.uses);
    w.bytes_total = L->total;
    w.tensors_total = L->n;
    w.progress = !(opts && opts->quiet) && isatty(STDERR_FILENO);
    int rc;
    if (!w.sbuf || !w.dbuf || !w.uses) {
        rc = VP_ERR_NOMEM;
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t i = 0; i < p->nouts; i++)
            for (int k = 0; k < p->outs[i].npieces; k++) w.uses[p->outs[i].pieces[k].src]++;
        rc = write_all(p, L, dir, &w);
        progress(&w, true);
    }
    vp__free(w.sbuf);
    vp__free(w.dbuf);
    vp__free(w.uses);
    return rc;
}
