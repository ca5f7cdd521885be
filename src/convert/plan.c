/*
 * The plan primitives families build with (declared in convert.h): source
 * lookups, outputs as strided pieces, drops by named rule, expectations,
 * extra files; and the plan's lifetime. See converter.h for the stages.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convert/converter.h"

#define PLAN_ARENA_CAP ((size_t)1 << 30)

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */
int vp_conv_grow(void **arr, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap) return VP_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elsize) return VP_ERR_NOMEM;
        nc *= 2;
    }
    void *np = vp__realloc(*arr, nc * elsize);
    if (!np) return VP_ERR_NOMEM;
    *arr = np;
    *cap = nc;
    return VP_OK;
}

static const char *arena_dup(vp_plan *p, const char *s)
{
    if (!s) return NULL;
    return vp__arena_strndup(&p->arena, s, strlen(s));
}

bool vp_conv_is_float(vp_dtype t) { return t == VP_F64 || t == VP_F32 || t == VP_F16 || t == VP_BF16; }

uint64_t vp_conv_numel(int ndim, const int64_t *shape)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !vp__mul_u64(n, (uint64_t)shape[i], &n)) return UINT64_MAX;
    }
    return n;
}

double vp_conv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool vp_conv_cancelled(const vp_convert_opts *o) { return o && o->cancel && atomic_load(o->cancel); }

long vp_table_find(const vp_table *tb, const char *name)
{
    for (size_t i = 0; tb && name && i < tb->n; i++)
        if (!strcmp(tb->t[i].name, name)) return (long)i;
    return -1;
}

int vp_conv_named_cmp(const void *a, const void *b)
{
    return strcmp(((const vp_conv_named *)a)->name, ((const vp_conv_named *)b)->name);
}

/* ------------------------------------------------------------------------ */
/* Plan helpers for families                                                 */
/* ------------------------------------------------------------------------ */
int vp_plan_fail(vp_plan *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(p->err, sizeof p->err, NULL, fmt, ap);
    va_end(ap);
    p->errcode = code ? code : VP_ERR_MISMATCH;
    return p->errcode;
}

static int ix_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vp_name_ix *)a)->name, ((const struct vp_name_ix *)b)->name);
}

/* Lookups by name go through a sorted index so that a plan over n tensors
 * costs O(n log n) however many names a family asks for. */
static long plan_find(vp_plan *p, const char *name)
{
    size_t n = vp_source_count(p->src);
    if (!p->index) {
        p->index = vp__malloc((n ? n : 1) * sizeof *p->index);
        if (!p->index) return vp_source_find(p->src, name);
        for (size_t i = 0; i < n; i++) { p->index[i].name = vp_source_tensor(p->src, i)->name; p->index[i].idx = (long)i; }
        qsort(p->index, n, sizeof *p->index, ix_cmp);
    }
    struct vp_name_ix key = {name, 0};
    const struct vp_name_ix *hit = bsearch(&key, p->index, n, sizeof *p->index, ix_cmp);
    if (!hit) return -1;
    /* a repeated name: the first in file order, as vp_source_find */
    while (hit > p->index && !strcmp(hit[-1].name, name)) hit--;
    long best = hit->idx;
    for (; hit < p->index + n && !strcmp(hit->name, name); hit++) if (hit->idx < best) best = hit->idx;
    return best;
}

static long find_v(vp_plan *p, const char *fmt, va_list ap, char *name, size_t len)
{
    int n = vsnprintf(name, len, fmt, ap);
    if (n < 0 || (size_t)n >= len) return -1;
    return plan_find(p, name);
}

/* Rules are interned: every tensor dropped or made by a rule points at one
 * copy of its name (the --json summary counts by pointer). */
static const char *intern_rule(vp_plan *p, const char *rule)
{
    for (size_t i = p->nrules; i-- > 0;)
        if (!strcmp(p->rules[i], rule)) return p->rules[i];
    const char *s = arena_dup(p, rule);
    if (s && p->nrules < 4096 && vp_conv_grow((void **)&p->rules, &p->caprules, p->nrules + 1, sizeof *p->rules) == VP_OK)
        p->rules[p->nrules++] = s;
    return s;
}

long vp_plan_src(vp_plan *p, const char *fmt, ...)
{
    char name[VP_MAX_NAME + 1];
    va_list ap;
    va_start(ap, fmt);
    long i = find_v(p, fmt, ap, name, sizeof name);
    va_end(ap);
    return i;
}

long vp_plan_req(vp_plan *p, const char *fmt, ...)
{
    char name[VP_MAX_NAME + 1];
    va_list ap;
    va_start(ap, fmt);
    long i = find_v(p, fmt, ap, name, sizeof name);
    va_end(ap);
    if (i < 0 && vp_conv_grow((void **)&p->absent, &p->capabsent, p->nabsent + 1, sizeof *p->absent) == VP_OK) {
        const char *s = arena_dup(p, name);
        if (s) p->absent[p->nabsent++] = s;
    }
    return i;
}

const vp_tensor *vp_plan_tensor(vp_plan *p, long src)
{
    return src < 0 ? NULL : vp_source_tensor(p->src, (size_t)src);
}

static bool src_ok(vp_plan *p, long src) { return src >= 0 && (size_t)src < vp_source_count(p->src); }

void vp_plan_drop(vp_plan *p, long src, const char *rule)
{
    if (!src_ok(p, src)) return;
    if (p->state[src] == VP_SRC_USED) {
        if (!p->conflict) p->conflict = vp_source_tensor(p->src, (size_t)src)->name;
        return;
    }
    p->state[src] = VP_SRC_DROPPED;
    p->why[src] = intern_rule(p, rule ? rule : "dropped");
}

size_t vp_plan_drop_prefix(vp_plan *p, const char *prefix, const char *rule)
{
    size_t n = 0, plen = strlen(prefix), count = vp_source_count(p->src);
    for (size_t i = 0; i < count; i++) {
        if (p->state[i] != VP_SRC_UNUSED) continue;
        if (strncmp(vp_source_tensor(p->src, i)->name, prefix, plen)) continue;
        vp_plan_drop(p, (long)i, rule);
        n++;
    }
    return n;
}

void vp_plan_partial(vp_plan *p, long src, const char *rule)
{
    if (!src_ok(p, src)) return;
    p->partial[src] = 1;
    if (rule && !p->why[src]) p->why[src] = intern_rule(p, rule);
}

/* Check one piece against its source: every element it reads exists. */
static int check_piece(vp_plan *p, const char *out, int k, const vp_piece *pc, uint64_t *numel)
{
    if (!src_ok(p, pc->src)) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': piece %d names no source tensor", out, k);
    const vp_tensor *t = vp_source_tensor(p->src, (size_t)pc->src);
    if (pc->ndim < 0 || pc->ndim > VP_MAX_DIMS || pc->offset < 0)
        return vp_plan_fail(p, VP_ERR_ARG, "output '%s': piece %d over '%s' is malformed", out, k, t->name);
    uint64_t n = vp_conv_numel(pc->ndim, pc->shape);
    if (n == UINT64_MAX) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': piece %d has a bad shape", out, k);
    *numel = n;
    if (n == 0) return VP_OK;
    uint64_t last = (uint64_t)pc->offset, term;
    for (int d = 0; d < pc->ndim; d++) {
        if (pc->strides[d] < 0 || !vp__mul_u64((uint64_t)(pc->shape[d] - 1), (uint64_t)pc->strides[d], &term) ||
            !vp__add_u64(last, term, &last))
            return vp_plan_fail(p, VP_ERR_ARG, "output '%s': piece %d over '%s' has bad strides", out, k, t->name);
    }
    if (last >= t->numel)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "output '%s' would read element %llu of '%s', which has %llu",
                            out, (unsigned long long)last, t->name, (unsigned long long)t->numel);
    return VP_OK;
}

int vp_plan_add(vp_plan *p, const vp_out *o)
{
    if (!o->name || !*o->name) return vp_plan_fail(p, VP_ERR_ARG, "output without a name");
    if (o->ndim < 0 || o->ndim > VP_MAX_DIMS || o->npieces < 0 || o->npieces > VP_MAX_PIECES)
        return vp_plan_fail(p, VP_ERR_ARG, "output '%s' is malformed", o->name);
    uint64_t want = vp_conv_numel(o->ndim, o->shape), have = 0;
    if (want == UINT64_MAX) return vp_plan_fail(p, VP_ERR_ARG, "output '%s' has a bad shape", o->name);
    for (int k = 0; k < o->npieces; k++) {
        uint64_t n = 0;
        int rc = check_piece(p, o->name, k, &o->pieces[k], &n);
        if (rc) return rc;
        if (!vp__add_u64(have, n, &have)) return vp_plan_fail(p, VP_ERR_ARG, "output '%s' is too large", o->name);
    }
    if (have != want)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "output '%s': its pieces hold %llu elements, its shape %llu",
                            o->name, (unsigned long long)have, (unsigned long long)want);
    if (want && o->npieces == 0) return vp_plan_fail(p, VP_ERR_ARG, "output '%s' has no pieces", o->name);
    if (vp_conv_grow((void **)&p->outs, &p->capouts, p->nouts + 1, sizeof *p->outs))
        return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    vp_out *d = &p->outs[p->nouts];
    *d = *o;
    d->name = arena_dup(p, o->name);
    d->rule = intern_rule(p, o->rule ? o->rule : "");
    if (!d->name || !d->rule) return vp_plan_fail(p, VP_ERR_NOMEM, "out of plan memory");
    p->nouts++;
    for (int k = 0; k < o->npieces; k++) {
        long s = o->pieces[k].src;
        if (p->state[s] == VP_SRC_DROPPED && !p->conflict) p->conflict = vp_source_tensor(p->src, (size_t)s)->name;
        p->state[s] = VP_SRC_USED;
        if (!p->why[s]) p->why[s] = d->rule;
    }
    return VP_OK;
}

/* C-order strides, a size 0 counting as 1. For a shape with no elements the
 * other sizes may be anything and their product overflow: saturate (the
 * strides of an empty piece are never used). */
static void c_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    uint64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = (int64_t)s;
        if (shape[i] < 0 || !vp__mul_u64(s, shape[i] ? (uint64_t)shape[i] : 1, &s) || s > INT64_MAX) s = INT64_MAX;
    }
}

int vp_plan_permute(vp_plan *p, const char *out, long src, int new_ndim, const int64_t *new_shape,
                    const int *perm, const char *rule)
{
    if (src < 0) return VP_OK;
    const vp_tensor *t = vp_plan_tensor(p, src);
    if (!t) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': no source tensor %ld", out, src);
    int nd = new_shape ? new_ndim : t->ndim;
    const int64_t *shp = new_shape ? new_shape : t->shape;
    if (nd < 0 || nd > VP_MAX_DIMS) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': %d dimensions", out, nd);
    if (vp_conv_numel(nd, shp) != t->numel) {
        char a[128], b[128];
        vp__shape_str(a, sizeof a, t->ndim, t->shape);
        vp__shape_str(b, sizeof b, nd, shp);
        return vp_plan_fail(p, VP_ERR_MISMATCH, "'%s' has shape %s, which cannot be reshaped to %s for '%s'",
                            t->name, a, b, out);
    }
    int64_t rs[VP_MAX_DIMS];
    c_strides(nd, shp, rs);
    vp_out o;
    memset(&o, 0, sizeof o);
    o.name = out;
    o.rule = rule;
    o.ndim = nd;
    o.npieces = 1;
    o.pieces[0].src = src;
    o.pieces[0].ndim = nd;
    bool seen[VP_MAX_DIMS] = {false};
    for (int d = 0; d < nd; d++) {
        int s = perm ? perm[d] : d;
        if (s < 0 || s >= nd || seen[s]) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': bad permutation", out);
        seen[s] = true;
        o.shape[d] = o.pieces[0].shape[d] = shp[s];
        o.pieces[0].strides[d] = rs[s];
    }
    return vp_plan_add(p, &o);
}

int vp_plan_copy(vp_plan *p, const char *out, long src, const char *rule)
{
    return vp_plan_permute(p, out, src, 0, NULL, NULL, rule);
}

int vp_plan_reshape(vp_plan *p, const char *out, long src, int ndim, const int64_t *shape, const char *rule)
{
    return vp_plan_permute(p, out, src, ndim, shape, NULL, rule);
}

int vp_plan_transpose(vp_plan *p, const char *out, long src, const char *rule)
{
    if (src < 0) return VP_OK;
    const vp_tensor *t = vp_plan_tensor(p, src);
    if (t && t->ndim != 2) {
        char a[128];
        vp__shape_str(a, sizeof a, t->ndim, t->shape);
        return vp_plan_fail(p, VP_ERR_MISMATCH, "'%s' has shape %s; a 2-D matrix was expected for '%s'", t->name, a, out);
    }
    static const int perm[2] = {1, 0};
    return vp_plan_permute(p, out, src, 0, NULL, perm, rule);
}

int vp_plan_rows(vp_plan *p, const char *out, long src, int64_t row0, int64_t nrows, const char *rule)
{
    if (src < 0) return VP_OK;
    const vp_tensor *t = vp_plan_tensor(p, src);
    if (!t) return vp_plan_fail(p, VP_ERR_ARG, "output '%s': no source tensor %ld", out, src);
    char a[128];
    vp__shape_str(a, sizeof a, t->ndim, t->shape);
    if (t->ndim < 1 || row0 < 0 || nrows < 0 || row0 > t->shape[0] || nrows > t->shape[0] - row0)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "'%s' has shape %s: no rows [%lld, %lld) for '%s'", t->name, a,
                            (long long)row0, (long long)(row0 + nrows), out);
    vp_out o;
    memset(&o, 0, sizeof o);
    o.name = out;
    o.rule = rule;
    o.ndim = t->ndim;
    o.npieces = 1;
    vp_piece *pc = &o.pieces[0];
    pc->src = src;
    pc->ndim = t->ndim;
    memcpy(o.shape, t->shape, sizeof o.shape);
    o.shape[0] = nrows;
    memcpy(pc->shape, o.shape, sizeof pc->shape);
    c_strides(t->ndim, t->shape, pc->strides);
    uint64_t off;
    if (!vp__mul_u64((uint64_t)row0, (uint64_t)pc->strides[0], &off) || off > INT64_MAX)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "'%s' has shape %s: rows [%lld, %lld) are out of reach for '%s'", t->name, a,
                            (long long)row0, (long long)(row0 + nrows), out);
    pc->offset = (int64_t)off;
    return vp_plan_add(p, &o);
}

int vp_plan_expect(vp_plan *p, const char *name, int ndim, const int64_t *shape)
{
    if (!name || ndim < 0 || ndim > VP_MAX_DIMS) return vp_plan_fail(p, VP_ERR_ARG, "bad expectation");
    if (vp_conv_grow((void **)&p->expect, &p->capexpect, p->nexpect + 1, sizeof *p->expect))
        return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    vp_expect *e = &p->expect[p->nexpect];
    memset(e, 0, sizeof *e);
    e->name = arena_dup(p, name);
    if (!e->name) return vp_plan_fail(p, VP_ERR_NOMEM, "out of plan memory");
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    p->nexpect++;
    return VP_OK;
}

int vp_plan_extra(vp_plan *p, const char *name, const char *data, size_t len)
{
    if (!name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return vp_plan_fail(p, VP_ERR_ARG, "bad extra file name");
    size_t cap = p->nextra;
    if (vp_conv_grow((void **)&p->extra, &cap, p->nextra + 1, sizeof *p->extra))
        return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    char *copy = vp__malloc(len ? len : 1);
    const char *nm = arena_dup(p, name);
    if (!copy || !nm) { vp__free(copy); return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory"); }
    if (len) memcpy(copy, data, len);
    p->extra[p->nextra].name = nm;
    p->extra[p->nextra].data = copy;
    p->extra[p->nextra].len = len;
    p->nextra++;
    return VP_OK;
}

const char *vp_plan_strf(vp_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = vp__arena_alloc(&p->arena, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *vp_plan_shape_str(vp_plan *p, const vp_tensor *t)
{
    char buf[VP_SHAPE_STR_LEN];
    return vp_plan_strf(p, "%s", vp__shape_str(buf, sizeof buf, t->ndim, t->shape));
}

void vp_plan_note(vp_plan *p, const char *fmt, ...)
{
    if (p->opts && p->opts->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("vitport convert: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --config, then --set, then the head counts and num_labels. */
int vp_plan_apply_overrides(vp_plan *p)
{
    if (p->overrides_applied) return VP_OK;
    p->overrides_applied = 1;
    if (!p->config && !(p->config = cJSON_CreateObject())) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    const vp_convert_opts *o = p->opts;
    if (o && o->config_path) {
        char msg[768];
        cJSON *cfg = NULL;
        int rc = vp_hf_load(o->config_path, &cfg, msg, sizeof msg);
        if (rc) return vp_plan_fail(p, rc, "--config %s", msg);
        rc = vp_hf_merge(p->config, cfg);
        cJSON_Delete(cfg);
        if (rc) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; o && i < o->nsets; i++) {
        int rc = vp_hf_set(p->config, o->sets[i], p->err, sizeof p->err);
        if (rc) return rc;
    }
    int rc = vp_hf_check_heads(p->config, p->err, sizeof p->err);
    if (!rc) rc = vp_hf_check_labels(p->config, p->err, sizeof p->err);
    return rc;
}

int vp_plan_cfg_int(vp_plan *p, const char *sub, const char *key, const vp_hf_default *defs, int64_t *out)
{
    int rc = vp_hf_get_int(p->config, sub, key, defs, out, p->err, sizeof p->err);
    if (rc == VP_ERR_NOTFOUND) {
        const char *path = sub ? vp_plan_strf(p, "%s.%s", sub, key) : key;
        return vp_plan_fail(p, VP_ERR_ARG, "config field %s is missing: give it with --set %s=N", path, path);
    }
    return rc;
}

int vp_plan_cfg_expect(vp_plan *p, const char *sub, const char *key, const vp_hf_default *defs, int64_t want)
{
    int64_t v;
    int rc = vp_plan_cfg_int(p, sub, key, defs, &v);
    if (rc) return rc;
    if (v != want)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "config field %s%s%s = %lld, but the tensors give %lld",
                            sub ? sub : "", sub ? "." : "", key, (long long)v, (long long)want);
    return VP_OK;
}

void vp_conv_plan_free(vp_plan *p)
{
    for (size_t i = 0; i < p->nextra; i++) vp__free(p->extra[i].data);
    vp__free(p->extra);
    vp__free(p->outs);
    vp__free(p->expect);
    vp__free(p->state);
    vp__free(p->why);
    vp__free(p->partial);
    vp__free(p->absent);
    vp__free(p->index);
    vp__free(p->rules);
    cJSON_Delete(p->config);
    cJSON_Delete(p->preprocessor);
    vp__arena_free(&p->arena);
}

int vp_conv_plan_init(vp_plan *p, vp_source *src, const vp_family *fam, const char *key)
{
    size_t ns = vp_source_count(src);
    p->src = src;
    p->table.t = vp_source_tensors(src, &p->table.n);
    p->family = fam->name;
    p->key = key;
    vp__arena_init(&p->arena, PLAN_ARENA_CAP);
    p->state = vp__calloc(ns ? ns : 1, 1);
    p->partial = vp__calloc(ns ? ns : 1, 1);
    p->why = vp__calloc(ns ? ns : 1, sizeof *p->why);
    p->config = cJSON_CreateObject();
    return p->state && p->partial && p->why && p->config ? VP_OK : VP_ERR_NOMEM;
}
