/*
 * The conversion engine: plan helpers for the families, JSON written as
 * Python writes it, --config/--set, family choice, the strict check, and
 * the streaming, atomic writer of OUT_DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convert/convert.h"

/* ------------------------------------------------------------------------ */
/* The family table                                                          */
/* ------------------------------------------------------------------------ */
const vp_family *const vp_families[] = {
    &vp_family_vit, &vp_family_deit, &vp_family_dino,
    &vp_family_clip, &vp_family_siglip, &vp_family_clipseg,
    NULL
};

/* Every family name the command accepts, linked in or not (for messages). */
static const char *const KNOWN_FAMILIES[] = {"vit", "deit", "dino", "clip", "siglip", "clipseg", NULL};

#define PLAN_ARENA_CAP ((size_t)1 << 30)
#define MAX_CONFIG_FILE ((size_t)64 << 20)
#define LIST_MAX 20                  /* names listed per side in a strict-check error */
#define DEFAULT_SHARD ((uint64_t)5000000000ull)

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */
static int grow(void **arr, size_t *cap, size_t need, size_t elsize)
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

static bool is_float_dtype(vp_dtype t) { return t == VP_F64 || t == VP_F32 || t == VP_F16 || t == VP_BF16; }

static uint64_t shape_numel(int ndim, const int64_t *shape)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !vp__mul_u64(n, (uint64_t)shape[i], &n)) return UINT64_MAX;
    }
    return n;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool cancelled(const vp_convert_opts *o) { return o && o->cancel && atomic_load(o->cancel); }

/* ------------------------------------------------------------------------ */
/* Plan helpers for families                                                 */
/* ------------------------------------------------------------------------ */
int vp_plan_fail(vp_plan *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return code ? code : VP_ERR_MISMATCH;
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
    if (s && p->nrules < 4096 && grow((void **)&p->rules, &p->caprules, p->nrules + 1, sizeof *p->rules) == VP_OK)
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
    if (i < 0 && grow((void **)&p->absent, &p->capabsent, p->nabsent + 1, sizeof *p->absent) == VP_OK) {
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
    uint64_t n = shape_numel(pc->ndim, pc->shape);
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
    uint64_t want = shape_numel(o->ndim, o->shape), have = 0;
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
    if (grow((void **)&p->outs, &p->capouts, p->nouts + 1, sizeof *p->outs))
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
    if (shape_numel(nd, shp) != t->numel) {
        char a[128], b[128];
        shape_str(a, sizeof a, t->ndim, t->shape);
        shape_str(b, sizeof b, nd, shp);
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
        shape_str(a, sizeof a, t->ndim, t->shape);
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
    shape_str(a, sizeof a, t->ndim, t->shape);
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
    if (grow((void **)&p->expect, &p->capexpect, p->nexpect + 1, sizeof *p->expect))
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
    if (grow((void **)&p->extra, &cap, p->nextra + 1, sizeof *p->extra))
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

/* ------------------------------------------------------------------------ */
/* --config and --set                                                        */
/* ------------------------------------------------------------------------ */
static char *read_small_file(const char *path, size_t limit, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    vp_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.n + n > limit) {
            snprintf(err, errlen, "%s: larger than %zu bytes", path, limit);
            fclose(f);
            vp__buf_free(&b);
            return NULL;
        }
        vp__buf_add(&b, chunk, n);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad || b.oom) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "out of memory");
        vp__buf_free(&b);
        return NULL;
    }
    if (!b.p) { b.p = vp__malloc(1); if (b.p) b.p[0] = 0; }
    *len = b.n;
    return b.p;
}

/* Merge src's members into dst: nested *_config objects merge, the rest replace. */
static int merge_config(cJSON *dst, const cJSON *src)
{
    for (const cJSON *c = src->child; c; c = c->next) {
        if (!c->string) continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, c->string);
        size_t kl = strlen(c->string);
        if (d && cJSON_IsObject(d) && cJSON_IsObject(c) && kl >= 7 && !strcmp(c->string + kl - 7, "_config")) {
            int rc = merge_config(d, c);
            if (rc) return rc;
            continue;
        }
        int rc = vp_json_set(dst, c->string, cJSON_Duplicate(c, 1));
        if (rc) return rc;
    }
    return VP_OK;
}

static int apply_set(vp_plan *p, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return vp_plan_fail(p, VP_ERR_ARG, "--set needs KEY=VALUE, got '%s'", arg);
    size_t klen = (size_t)(eq - arg);
    if (klen > 1024) return vp_plan_fail(p, VP_ERR_ARG, "--set: key too long");
    char key[1025];
    memcpy(key, arg, klen);
    key[klen] = 0;
    cJSON *obj = p->config;
    char *part = key;
    for (;;) {
        char *dot = strchr(part, '.');
        if (dot) *dot = 0;
        if (!*part) return vp_plan_fail(p, VP_ERR_ARG, "--set: empty component in key '%.*s'", (int)klen, arg);
        if (!dot) break;
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!child) {
            child = cJSON_CreateObject();
            if (vp_json_set(obj, part, child)) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
        } else if (!cJSON_IsObject(child)) {
            return vp_plan_fail(p, VP_ERR_ARG, "--set %.*s: '%s' is not an object in the config", (int)klen, arg, part);
        }
        obj = child;
        part = dot + 1;
    }
    const char *val = eq + 1;
    cJSON *v = vp_json_parse(val, strlen(val));
    if (!v) v = cJSON_CreateString(val);
    if (vp_json_set(obj, part, v)) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    return VP_OK;
}

/* Heads must be positive integers dividing their width, wherever they sit. */
static int check_heads(vp_plan *p, const cJSON *o, const char *path)
{
    static const char *const pairs[][2] = {
        {"num_attention_heads", "hidden_size"},
        {"decoder_num_attention_heads", "reduce_dim"},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, pairs[k][0]);
        if (!h) continue;
        int64_t heads, width;
        if (!vp_json_get_int(o, pairs[k][0], &heads) || heads <= 0)
            return vp_plan_fail(p, VP_ERR_ARG, "%s%s must be a positive integer", path, pairs[k][0]);
        if (vp_json_get_int(o, pairs[k][1], &width) && width % heads)
            return vp_plan_fail(p, VP_ERR_ARG, "%s%s=%lld does not divide %s%s=%lld", path, pairs[k][0],
                                (long long)heads, path, pairs[k][1], (long long)width);
    }
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!cJSON_IsObject(c) || !c->string) continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s.", path, c->string);
        int rc = check_heads(p, c, sub);
        if (rc) return rc;
    }
    return VP_OK;
}

int vp_plan_apply_overrides(vp_plan *p)
{
    if (p->overrides_applied) return VP_OK;
    p->overrides_applied = 1;
    if (!p->config && !(p->config = cJSON_CreateObject())) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    const vp_convert_opts *o = p->opts;
    if (o && o->config_path) {
        size_t len;
        char msg[512];
        char *text = read_small_file(o->config_path, MAX_CONFIG_FILE, &len, msg, sizeof msg);
        if (!text) return vp_plan_fail(p, VP_ERR_IO, "--config %s", msg);
        cJSON *cfg = vp_json_parse(text, len);
        vp__free(text);
        if (!cfg || !cJSON_IsObject(cfg)) {
            cJSON_Delete(cfg);
            return vp_plan_fail(p, VP_ERR_FORMAT, "--config %s: not a JSON object", o->config_path);
        }
        int rc = merge_config(p->config, cfg);
        cJSON_Delete(cfg);
        if (rc) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; o && i < o->nsets; i++) {
        int rc = apply_set(p, o->sets[i]);
        if (rc) return rc;
    }
    return check_heads(p, p->config, "");
}

/* ------------------------------------------------------------------------ */
/* Sizes                                                                     */
/* ------------------------------------------------------------------------ */
int vp_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s) return VP_ERR_ARG;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0)) return VP_ERR_ARG;
    static const struct { const char *suffix; double mul; } U[] = {
        {"", 1}, {"b", 1}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
        {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
    };
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
        if (strcasecmp(end, U[i].suffix)) continue;
        double b = v * U[i].mul;
        if (b >= 1.8e19 || b < 1) return VP_ERR_ARG;
        *out = (uint64_t)b;
        return VP_OK;
    }
    return VP_ERR_ARG;
}

/* ------------------------------------------------------------------------ */
/* Choosing the family (and the sub-dictionary)                              */
/* ------------------------------------------------------------------------ */
static const vp_family *family_by_name(const char *name)
{
    for (const vp_family *const *f = vp_families; *f; f++)
        if (!strcmp((*f)->name, name)) return *f;
    return NULL;
}

static size_t name_prefix_match(const vp_family *f, const char *model_name)
{
    if (!model_name) return 0;
    size_t best = 0;
    if (f->name_prefixes) {
        for (const char *const *q = f->name_prefixes; *q; q++)
            if (!strncasecmp(model_name, *q, strlen(*q)) && strlen(*q) > best) best = strlen(*q);
    } else if (!strncasecmp(model_name, f->name, strlen(f->name))) {
        best = strlen(f->name);
    }
    return best;
}

/* The best family for src among `only` (or all): by --model-name prefix among
 * the families that recognise the tensors, else by score. */
static const vp_family *pick_family(const vp_source *src, const vp_family *only, const char *model_name, int *score_out)
{
    const vp_family *best = NULL, *named = NULL;
    int bs = 0, ns = 0;
    size_t nlen = 0;
    for (const vp_family *const *f = vp_families; *f; f++) {
        if (only && *f != only) continue;
        int s = (*f)->detect ? (*f)->detect(src) : 0;
        if (s <= 0) continue;
        if (s > bs) { bs = s; best = *f; }
        size_t m = name_prefix_match(*f, model_name);
        if (m > nlen) { nlen = m; named = *f; ns = s; }
    }
    if (named) { *score_out = ns; return named; }
    *score_out = bs;
    return best;
}

typedef struct { const char *name; size_t len; size_t idx; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool same_prefix(const span *x, const span *y) { return x->len == y->len && !memcmp(x->name, y->name, x->len); }

typedef struct candidate { char *key; size_t ntensors; const vp_family *fam; int score; } candidate;

/* Sub-dictionaries that hold tensors directly (the part of a name before
 * its last '/'), each scored by the families on a view narrowed to it: a
 * shallow copy of the source whose table is that group (detect() only
 * reads the tensor table). Sorting makes it O(n log n). */
static int find_candidates(vp_source *src, const vp_family *only, const char *model_name,
                           candidate **out, size_t *nout, size_t *nall_out)
{
    size_t n = vp_source_count(src), m = 0;
    span *sp = vp__malloc((n ? n : 1) * sizeof *sp);
    vp_tensor *view = vp__malloc((n ? n : 1) * sizeof *view);
    if (!sp || !view) { vp__free(sp); vp__free(view); return VP_ERR_NOMEM; }
    for (size_t i = 0; i < n; i++) {
        const char *nm = vp_source_tensor(src, i)->name, *slash = strrchr(nm, '/');
        if (slash) { sp[m].name = nm; sp[m].len = (size_t)(slash - nm); sp[m].idx = i; m++; }
    }
    qsort(sp, m, sizeof *sp, span_cmp);   /* by prefix, then file order */
    candidate *c = NULL;
    size_t nc = 0, cap = 0, groups = 0;
    int rc = VP_OK;
    for (size_t i = 0; i < m && rc == VP_OK;) {
        size_t j = i;
        while (j < m && same_prefix(&sp[i], &sp[j])) j++;
        groups++;
        if (j - i >= 2) {
            for (size_t k = i; k < j; k++) {
                view[k - i] = *vp_source_tensor(src, sp[k].idx);
                view[k - i].name += sp[k].len + 1;
            }
            vp_source shallow = *src;
            shallow.view = view;
            shallow.nview = j - i;
            shallow.view_index = NULL;
            int score = 0;
            const vp_family *f = pick_family(&shallow, only, model_name, &score);
            if (f) {
                if (grow((void **)&c, &cap, nc + 1, sizeof *c)) { rc = VP_ERR_NOMEM; break; }
                c[nc].key = vp__strndup(sp[i].name, sp[i].len);
                if (!c[nc].key) { rc = VP_ERR_NOMEM; break; }
                c[nc].ntensors = j - i;
                c[nc].fam = f;
                c[nc].score = score;
                nc++;
            }
        }
        i = j;
    }
    vp__free(view);
    vp__free(sp);
    *out = c;
    *nout = nc;
    *nall_out = groups;
    return rc;
}

static void free_candidates(candidate *c, size_t n)
{
    for (size_t i = 0; i < n; i++) vp__free(c[i].key);
    vp__free(c);
}

static bool nested(const vp_source *src)
{
    for (size_t i = 0; i < vp_source_count(src); i++)
        if (strchr(vp_source_tensor(src, i)->name, '/')) return true;
    return false;
}

static void some_names(const vp_source *src, char *buf, size_t len)
{
    size_t n = 0, cnt = vp_source_count(src);
    buf[0] = 0;
    for (size_t i = 0; i < cnt && i < 5 && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s'%s'", i ? ", " : "", vp_source_tensor(src, i)->name);
    if (cnt > 5 && n < len) snprintf(buf + n, len - n, ", ...");
}

/* Decide family and key; may replace *srcp by a source narrowed to the
 * chosen sub-dictionary. */
static int choose(vp_source **srcp, const char *path, const char *key, const vp_convert_opts *o,
                  const vp_family **famp, char **keyp, char *err, size_t errlen)
{
    const vp_family *only = NULL;
    if (o->family && *o->family && strcmp(o->family, "auto")) {
        only = family_by_name(o->family);
        if (!only) {
            bool known = false;
            for (const char *const *k = KNOWN_FAMILIES; *k; k++) known |= !strcmp(*k, o->family);
            snprintf(err, errlen, known ? "family '%s' is not available in this build"
                                        : "unknown family '%s' (vit, deit, dino, clip, siglip, clipseg or auto)", o->family);
            return VP_ERR_ARG;
        }
    }
    int score = 0;
    const vp_family *f = pick_family(*srcp, only, o->model_name, &score);
    if (f) { *famp = f; return VP_OK; }
    if (!nested(*srcp)) {
        char names[512];
        some_names(*srcp, names, sizeof names);
        if (only) snprintf(err, errlen, "the tensors are not a %s checkpoint (%zu tensors: %s)", only->name, vp_source_count(*srcp), names);
        else snprintf(err, errlen, "no family recognises the tensors (%zu tensors: %s); pass --family", vp_source_count(*srcp), names);
        return VP_ERR_UNSUPPORTED;
    }
    candidate *c = NULL;
    size_t nc = 0, groups = 0;
    int rc = find_candidates(*srcp, only, o->model_name, &c, &nc, &groups);
    if (rc) { free_candidates(c, nc); snprintf(err, errlen, "out of memory"); return rc; }
    size_t pick = SIZE_MAX;
    if (nc == 1) pick = 0;
    else if (nc > 1) {
        bool same = true;
        for (size_t i = 1; i < nc; i++) same &= c[i].fam == c[0].fam;
        if (same && c[0].fam->prefer_keys)
            for (const char *const *pk = c[0].fam->prefer_keys; *pk && pick == SIZE_MAX; pk++)
                for (size_t i = 0; i < nc; i++)
                    if (!strcmp(c[i].key, *pk)) { pick = i; break; }
    }
    if (pick == SIZE_MAX) {
        vp_buf b = {0};
        for (size_t i = 0; i < nc && i < LIST_MAX; i++)
            vp__buf_printf(&b, "%s'%s' (%s, %zu tensors)", i ? ", " : "", c[i].key, c[i].fam->name, c[i].ntensors);
        if (nc)
            snprintf(err, errlen, "several sub-dictionaries hold a model: %s; choose one with --key", b.p ? b.p : "");
        else
            snprintf(err, errlen, "no family recognises the tensors in any of the %zu sub-dictionaries; pass --key (see vitport inspect)", groups);
        vp__buf_free(&b);
        free_candidates(c, nc);
        return nc ? VP_ERR_AMBIGUOUS : VP_ERR_UNSUPPORTED;
    }
    if (!o->quiet) {
        if (nc > 1) {
            vp_buf b = {0};
            for (size_t i = 0; i < nc; i++) vp__buf_printf(&b, "%s'%s'", i ? ", " : "", c[i].key);
            fprintf(stderr, "vitport convert: the checkpoint holds %zu %s networks (%s); converting '%s' "
                            "(the %s family's choice; pick another with --key)\n",
                    nc, c[pick].fam->name, b.p ? b.p : "", c[pick].key, c[pick].fam->name);
            vp__buf_free(&b);
        } else {
            fprintf(stderr, "vitport convert: using sub-dictionary '%s' of the checkpoint\n", c[pick].key);
        }
    }
    /* candidates are relative to --key when one was given */
    char *full = key ? vp__malloc(strlen(key) + strlen(c[pick].key) + 2) : c[pick].key;
    if (!full) { free_candidates(c, nc); snprintf(err, errlen, "out of memory"); return VP_ERR_NOMEM; }
    if (key) sprintf(full, "%s/%s", key, c[pick].key);
    else c[pick].key = NULL;
    free_candidates(c, nc);
    vp_source *narrowed = NULL;
    rc = vp_source_open(&narrowed, path, full);
    if (rc) {
        snprintf(err, errlen, "%s", vp_source_errmsg(narrowed));
        vp_source_close(narrowed);
        vp__free(full);
        return rc;
    }
    vp_source_close(*srcp);
    *srcp = narrowed;
    *famp = f = pick_family(narrowed, only, o->model_name, &score);
    *keyp = full;
    if (!f) { snprintf(err, errlen, "sub-dictionary '%s' holds no model vitport recognises", full); return VP_ERR_UNSUPPORTED; }
    return VP_OK;
}

/* ------------------------------------------------------------------------ */
/* The strict check                                                          */
/* ------------------------------------------------------------------------ */
typedef struct { const char *name; size_t idx; } named;

static int named_cmp(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

static void list_add(vp_buf *b, size_t *count, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void list_add(vp_buf *b, size_t *count, const char *fmt, ...)
{
    if (*count < LIST_MAX) {
        char tmp[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        vp__buf_printf(b, "%s%s", *count ? ", " : "", tmp);
    }
    (*count)++;
}

static void list_flush(vp_buf *msg, const char *title, vp_buf *items, size_t count)
{
    if (!count) return;
    vp__buf_printf(msg, "%s%s (%zu): %s%s", msg->n ? "; " : "", title, count, items->p ? items->p : "",
                   count > LIST_MAX ? ", ..." : "");
    vp__buf_free(items);
}

static int strict_check(vp_plan *p, char *err, size_t errlen)
{
    size_t ns = vp_source_count(p->src);
    vp_buf msg = {0}, items = {0};
    size_t cnt = 0;
    if (p->conflict) {
        snprintf(err, errlen, "internal error: tensor '%s' is both used and dropped", p->conflict);
        return VP_ERR_MISMATCH;
    }
    /* 1. source side: unused tensors, and tensors used only in part */
    uint64_t *covered = vp__calloc(ns ? ns : 1, sizeof *covered);
    named *on = vp__malloc((p->nouts ? p->nouts : 1) * sizeof *on);
    named *en = vp__malloc((p->nexpect ? p->nexpect : 1) * sizeof *en);
    if (!covered || !on || !en) {
        vp__free(covered); vp__free(on); vp__free(en);
        snprintf(err, errlen, "out of memory");
        return VP_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->nouts; i++)
        for (int k = 0; k < p->outs[i].npieces; k++) {
            const vp_piece *pc = &p->outs[i].pieces[k];
            covered[pc->src] += shape_numel(pc->ndim, pc->shape);
        }
    for (size_t i = 0; i < ns; i++)
        if (p->state[i] == VP_SRC_UNUSED) list_add(&items, &cnt, "%s", vp_source_tensor(p->src, i)->name);
    list_flush(&msg, "checkpoint tensors not used", &items, cnt);
    cnt = 0;
    for (size_t i = 0; i < ns; i++) {
        const vp_tensor *t = vp_source_tensor(p->src, i);
        if (p->state[i] == VP_SRC_USED && !p->partial[i] && covered[i] < t->numel)
            list_add(&items, &cnt, "%s (%llu of %llu elements)", t->name, (unsigned long long)covered[i],
                     (unsigned long long)t->numel);
    }
    list_flush(&msg, "checkpoint tensors used only in part", &items, cnt);
    cnt = 0;
    for (size_t i = 0; i < p->nabsent; i++) list_add(&items, &cnt, "%s", p->absent[i]);
    list_flush(&msg, "absent from the checkpoint", &items, cnt);

    /* 2. target side: by name, sorted */
    for (size_t i = 0; i < p->nouts; i++) { on[i].name = p->outs[i].name; on[i].idx = i; }
    for (size_t i = 0; i < p->nexpect; i++) { en[i].name = p->expect[i].name; en[i].idx = i; }
    qsort(on, p->nouts, sizeof *on, named_cmp);
    qsort(en, p->nexpect, sizeof *en, named_cmp);
    const char *cls = p->hf_class ? p->hf_class : "the target class";
    vp_buf miss = {0}, extra = {0}, shape = {0}, dup = {0};
    size_t nmiss = 0, nextra = 0, nshape = 0, ndup = 0;
    for (size_t i = 1; i < p->nouts; i++)
        if (!strcmp(on[i].name, on[i - 1].name)) list_add(&dup, &ndup, "%s", on[i].name);
    for (size_t i = 1; i < p->nexpect; i++)
        if (!strcmp(en[i].name, en[i - 1].name)) list_add(&dup, &ndup, "%s", en[i].name);
    size_t a = 0, e = 0;
    while (a < p->nouts || e < p->nexpect) {
        int c = a >= p->nouts ? 1 : e >= p->nexpect ? -1 : strcmp(on[a].name, en[e].name);
        if (c < 0) { list_add(&extra, &nextra, "%s", on[a].name); a++; continue; }
        if (c > 0) { list_add(&miss, &nmiss, "%s", en[e].name); e++; continue; }
        const vp_out *o = &p->outs[on[a].idx];
        const vp_expect *x = &p->expect[en[e].idx];
        if (o->ndim != x->ndim || memcmp(o->shape, x->shape, (size_t)o->ndim * sizeof o->shape[0])) {
            char s1[128], s2[128];
            shape_str(s1, sizeof s1, o->ndim, o->shape);
            shape_str(s2, sizeof s2, x->ndim, x->shape);
            list_add(&shape, &nshape, "%s %s vs %s", o->name, s1, s2);
        }
        a++;
        e++;
    }
    char title[256];
    snprintf(title, sizeof title, "missing for %s", cls);
    list_flush(&msg, title, &miss, nmiss);
    snprintf(title, sizeof title, "not in %s", cls);
    list_flush(&msg, title, &extra, nextra);
    list_flush(&msg, "wrong shape (converted vs expected)", &shape, nshape);
    list_flush(&msg, "named twice", &dup, ndup);
    vp__free(covered);
    vp__free(on);
    vp__free(en);
    if (msg.n) {
        snprintf(err, errlen, "strict check failed, nothing written: %s", msg.p);
        vp__buf_free(&msg);
        return VP_ERR_MISMATCH;
    }
    vp__buf_free(&msg);
    return VP_OK;
}

/* ------------------------------------------------------------------------ */
/* Output layout: dtypes, order, shards                                      */
/* ------------------------------------------------------------------------ */
typedef struct wout {
    const vp_out *o;
    vp_dtype dtype;
    uint64_t nbytes;
    int shard;
} wout;

/* safetensors' serialisation order: dtype (by its enum, descending), then name. */
static int st_rank(vp_dtype t)
{
    switch (t) {
    case VP_BOOL: return 0;
    case VP_U8: return 1;
    case VP_I8: return 2;
    case VP_I16: return 5;
    case VP_F16: return 7;
    case VP_BF16: return 8;
    case VP_I32: return 9;
    case VP_F32: return 11;
    case VP_F64: return 12;
    case VP_I64: return 13;
    default: return 0;
    }
}

static int wout_cmp(const void *a, const void *b)
{
    const wout *x = *(const wout *const *)a, *y = *(const wout *const *)b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    int rx = st_rank(x->dtype), ry = st_rank(y->dtype);
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->o->name, y->o->name);
}

/* ------------------------------------------------------------------------ */
/* Streaming the pieces                                                      */
/* ------------------------------------------------------------------------ */
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
    double t = now_seconds();
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
    vsnprintf(w->err, w->errlen, fmt, ap);
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
    if (cancelled(w->opts)) return werr(w, VP_ERR_IO, "interrupted");
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
            if (cancelled(w->opts)) return werr(w, VP_ERR_IO, "interrupted");
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
    const uint8_t *base = vp__storage_bytes(src, (long)t->storage);
    if (!base) return werr(w, VP_ERR_FORMAT, "%s", vp_source_errmsg(src));
    size_t es = vp_dtype_size(t->dtype), ce = chunk_elems(t->dtype, to), fill = 0;
    bool contig = vp__c_contiguous(t->ndim, t->shape, t->strides);
    /* Huge mapped sources read out of order: drop their pages after each
     * chunk (they come back from the page cache) so RSS stays bounded. */
    bool release_each = src->storages[t->storage].kind == VP_STORE_FILE && t->nbytes > 8ull * VP_IO_CHUNK;
    const uint8_t *data = base + (size_t)t->storage_offset * es;
    int nd = pc->ndim;
    int64_t idx[VP_MAX_DIMS] = {0};
    int64_t inner = nd ? pc->shape[nd - 1] : 1, istride = nd ? pc->strides[nd - 1] : 1;
    uint64_t rows = shape_numel(nd, pc->shape) / (uint64_t)(inner ? inner : 1);
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
    uint64_t n = shape_numel(pc->ndim, pc->shape), off;
    if (n == 0) return VP_OK;
    if (vp__c_contiguous(pc->ndim, pc->shape, pc->strides) && vp_source_file_range(src, (size_t)pc->src, &off) == VP_OK)
        return write_file_run(w, sw, t, off + (uint64_t)pc->offset * vp_dtype_size(t->dtype), n, to);
    return write_gather(w, sw, t, pc->src, pc, to);
}

static int write_shard(writer *w, const char *path, wout **list, size_t n)
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

/* ------------------------------------------------------------------------ */
/* Files and directories                                                     */
/* ------------------------------------------------------------------------ */
static int write_file(const char *dir, const char *name, const void *data, size_t len, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "path too long");
        return VP_ERR_ARG;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t r = write(fd, p, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); close(fd); return VP_ERR_IO; }
        p += r;
        left -= (size_t)r;
    }
    if (fsync(fd) || close(fd)) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    return VP_OK;
}

static int write_json_file(const char *dir, const char *name, const cJSON *j, char *err, size_t errlen)
{
    size_t len;
    char *text = vp_json_dump(j, &len);
    if (!text) { snprintf(err, errlen, "out of memory"); return VP_ERR_NOMEM; }
    int rc = write_file(dir, name, text, len, err, errlen);
    vp__free(text);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    if (path && *path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new directory beside OUT_DIR, created with mkdir so the umask applies
 * (mkdtemp would make it 0700). */
static int make_temp_dir(char *buf, size_t len, const char *parent, const char *base)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned seed = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16);
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 1103515245u + 12345u;
        if (snprintf(buf, len, "%s/.%s.vitport-tmp-%d-%06x", parent, base, (int)getpid(), seed & 0xffffff) >= (int)len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir(buf, 0777) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* OUT_DIR split into parent and base name (trailing slashes dropped). */
static int split_out(const char *out, char *parent, size_t plen, char *base, size_t blen)
{
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--;
    if (n == 0 || n >= plen || n >= blen) return VP_ERR_ARG;
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++) if (out[i] == '/') slash = out + i;
    if (!slash) { snprintf(parent, plen, "."); snprintf(base, blen, "%.*s", (int)n, out); }
    else {
        size_t pl = (size_t)(slash - out);
        snprintf(parent, plen, "%.*s", (int)(pl ? pl : 1), out);
        snprintf(base, blen, "%.*s", (int)(n - pl - 1), slash + 1);
    }
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) return VP_ERR_ARG;
    return VP_OK;
}

#ifndef RENAME_NOREPLACE
#  define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#  define RENAME_EXCHANGE (1 << 1)
#endif
#include <sys/syscall.h>

static int rename2(const char *from, const char *to, unsigned flags)
{
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
#else
    (void)from; (void)to; (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

/* Move the finished temporary directory to out. With force an existing out
 * is swapped out atomically (or renamed away first) and deleted. */
static int publish(const char *tmp, const char *out, const char *parent, const char *base, int force, char *err, size_t errlen)
{
    struct stat st;
    bool exists = lstat(out, &st) == 0;
    if (exists && !force) {
        snprintf(err, errlen, "%s exists (use --force to replace it)", out);
        return VP_ERR_ARG;
    }
    if (!exists) {
        if (rename2(tmp, out, RENAME_NOREPLACE) == 0) { vp__fsync_dir(parent); return VP_OK; }
        if (errno == EEXIST) { snprintf(err, errlen, "%s appeared while converting; not replaced", out); return VP_ERR_IO; }
        if (errno != ENOSYS && errno != EINVAL) { snprintf(err, errlen, "rename to %s: %s", out, strerror(errno)); return VP_ERR_IO; }
        if (rename(tmp, out)) { snprintf(err, errlen, "rename to %s: %s", out, strerror(errno)); return VP_ERR_IO; }
        vp__fsync_dir(parent);
        return VP_OK;
    }
    if (rename2(tmp, out, RENAME_EXCHANGE) == 0) {
        vp__fsync_dir(parent);
        remove_tree(tmp);            /* now holds the old contents */
        return VP_OK;
    }
    char old[PATH_MAX];
    if (snprintf(old, sizeof old, "%s/.%s.vitport-old-XXXXXX", parent, base) >= (int)sizeof old || !mkdtemp(old)) {
        snprintf(err, errlen, "cannot make a name to move %s away: %s", out, strerror(errno));
        return VP_ERR_IO;
    }
    rmdir(old);
    if (rename(out, old)) { snprintf(err, errlen, "rename %s away: %s", out, strerror(errno)); return VP_ERR_IO; }
    if (rename(tmp, out)) {
        snprintf(err, errlen, "rename to %s: %s", out, strerror(errno));
        rename(old, out);            /* put the old one back */
        return VP_ERR_IO;
    }
    vp__fsync_dir(parent);
    remove_tree(old);
    return VP_OK;
}

/* ------------------------------------------------------------------------ */
/* The engine                                                                */
/* ------------------------------------------------------------------------ */
static void plan_free(vp_plan *p)
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

static int parse_dtype_opt(const char *s, vp_dtype *out, int *keep)
{
    *keep = 0;
    if (!s || !strcmp(s, "f32") || !strcmp(s, "float32")) { *out = VP_F32; return VP_OK; }
    if (!strcmp(s, "f16") || !strcmp(s, "float16")) { *out = VP_F16; return VP_OK; }
    if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) { *out = VP_BF16; return VP_OK; }
    if (!strcmp(s, "keep")) { *keep = 1; *out = VP_F32; return VP_OK; }
    return VP_ERR_ARG;
}

static vp_dtype out_dtype(const vp_plan *p, const vp_out *o)
{
    vp_dtype sd = o->npieces ? vp_source_tensor(p->src, (size_t)o->pieces[0].src)->dtype : VP_F32;
    if (!is_float_dtype(sd)) return sd;
    return p->keep_dtype ? sd : p->out_dtype_float;
}

/* What goes where: dtypes, HF's shard split (in expectation order), write order. */
typedef struct layout {
    wout *w;                         /* one per expected tensor, in expectation order */
    wout **order;                    /* write order */
    size_t n;
    int nshards;
    uint64_t total;
} layout;

static int make_layout(vp_plan *p, uint64_t max_shard, layout *L)
{
    memset(L, 0, sizeof *L);
    size_t n = p->nexpect;
    named *on = vp__malloc((p->nouts ? p->nouts : 1) * sizeof *on);
    L->w = vp__calloc(n ? n : 1, sizeof *L->w);
    L->order = vp__calloc(n ? n : 1, sizeof *L->order);
    if (!on || !L->w || !L->order) { vp__free(on); return VP_ERR_NOMEM; }
    for (size_t i = 0; i < p->nouts; i++) { on[i].name = p->outs[i].name; on[i].idx = i; }
    qsort(on, p->nouts, sizeof *on, named_cmp);
    /* huggingface_hub's split, in state_dict order: a tensor above the limit
     * becomes a shard of its own at once; otherwise the current shard is
     * closed when the tensor would overflow it. Shards are numbered in the
     * order they are closed. */
    uint64_t cur = 0;
    int next = 0;
    size_t open_from = 0;            /* members of the open shard have shard == -1 */
    bool open_any = false;
    for (size_t i = 0; i < n; i++) {
        named key = {p->expect[i].name, 0};
        named *hit = bsearch(&key, on, p->nouts, sizeof *on, named_cmp);
        if (!hit) { vp__free(on); return VP_ERR_MISMATCH; }
        wout *x = &L->w[i];
        x->o = &p->outs[hit->idx];
        x->dtype = out_dtype(p, x->o);
        x->nbytes = shape_numel(x->o->ndim, x->o->shape) * vp_dtype_size(x->dtype);
        L->total += x->nbytes;
        if (x->nbytes > max_shard) { x->shard = next++; continue; }
        if (open_any && cur + x->nbytes > max_shard) {
            for (size_t j = open_from; j < i; j++) if (L->w[j].shard < 0) L->w[j].shard = next;
            next++;
            cur = 0;
            open_any = false;
        }
        if (!open_any) open_from = i;
        x->shard = -1;
        cur += x->nbytes;
        open_any = true;
    }
    if (open_any) {
        for (size_t j = open_from; j < n; j++) if (L->w[j].shard < 0) L->w[j].shard = next;
        next++;
    }
    L->nshards = next ? next : 1;
    L->n = n;
    for (size_t i = 0; i < n; i++) L->order[i] = &L->w[i];
    qsort(L->order, n, sizeof *L->order, wout_cmp);
    vp__free(on);
    return VP_OK;
}

static void shard_name(char *buf, size_t len, int k, int nshards)
{
    if (nshards == 1) snprintf(buf, len, "model.safetensors");
    else snprintf(buf, len, "model-%05d-of-%05d.safetensors", k + 1, nshards);
}

static int write_index(const char *dir, const layout *L, char *err, size_t errlen)
{
    cJSON *idx = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *map = cJSON_CreateObject();
    int rc = (idx && meta && map) ? VP_OK : VP_ERR_NOMEM;
    if (rc == VP_OK) rc = vp_json_set_int(meta, "total_size", (int64_t)L->total);
    /* Appended without vp_json_set's lookup (n^2 over many tensors): the
     * strict check has made the names unique. */
    for (size_t i = 0; rc == VP_OK && i < L->n; i++) {
        char nm[64];
        shard_name(nm, sizeof nm, L->w[i].shard, L->nshards);
        cJSON *v = cJSON_CreateString(nm);
        if (!v || !cJSON_AddItemToObject(map, L->w[i].o->name, v)) { cJSON_Delete(v); rc = VP_ERR_NOMEM; }
    }
    if (rc == VP_OK) { rc = vp_json_set(idx, "metadata", meta); meta = NULL; }
    if (rc == VP_OK) { rc = vp_json_set(idx, "weight_map", map); map = NULL; }
    if (rc == VP_OK) rc = write_json_file(dir, "model.safetensors.index.json", idx, err, errlen);
    else snprintf(err, errlen, "out of memory");
    cJSON_Delete(idx);
    cJSON_Delete(meta);
    cJSON_Delete(map);
    return rc;
}

static int write_all(vp_plan *p, const layout *L, const char *dir, writer *w)
{
    size_t i = 0;
    for (int s = 0; s < L->nshards; s++) {
        size_t j = i;
        while (j < L->n && L->order[j]->shard == s) j++;
        char nm[64], path[PATH_MAX];
        shard_name(nm, sizeof nm, s, L->nshards);
        if (snprintf(path, sizeof path, "%s/%s", dir, nm) >= (int)sizeof path) return werr(w, VP_ERR_ARG, "path too long");
        int rc = write_shard(w, path, L->order + i, j - i);
        if (rc) return rc;
        i = j;
    }
    int rc = VP_OK;
    if (L->nshards > 1) rc = write_index(dir, L, w->err, w->errlen);
    if (!rc) rc = write_json_file(dir, "config.json", p->config, w->err, w->errlen);
    if (!rc && p->preprocessor) rc = write_json_file(dir, "preprocessor_config.json", p->preprocessor, w->err, w->errlen);
    for (size_t k = 0; !rc && k < p->nextra; k++)
        rc = write_file(dir, p->extra[k].name, p->extra[k].data, p->extra[k].len, w->err, w->errlen);
    if (!rc) vp__fsync_dir(dir);
    return rc;
}

/* Engine-owned config fields: torch_dtype follows the written dtype. */
static int finish_config(vp_plan *p, const layout *L, char *err, size_t errlen)
{
    vp_dtype fd = p->keep_dtype ? VP_F32 : p->out_dtype_float;
    if (p->keep_dtype)
        for (size_t i = 0; i < L->n; i++)
            if (is_float_dtype(L->w[i].dtype)) { fd = L->w[i].dtype; break; }
    int rc = vp_json_set_str(p->config, "torch_dtype", vp_dtype_name(fd));
    if (!rc && !cJSON_GetObjectItemCaseSensitive(p->config, "transformers_version"))
        rc = vp_json_set_str(p->config, "transformers_version", VP_HF_LAYOUT_VERSION);
    if (rc) { snprintf(err, errlen, "out of memory"); return rc; }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(p->config, "architectures");
    if (p->hf_class && arch) {
        const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
        if (!a0 || !cJSON_IsString(a0) || strcmp(a0->valuestring, p->hf_class)) {
            snprintf(err, errlen, "config architectures says %s but this checkpoint converts to %s",
                     a0 && cJSON_IsString(a0) ? a0->valuestring : "something else", p->hf_class);
            return VP_ERR_ARG;
        }
    }
    return VP_OK;
}

static cJSON *make_summary(const vp_plan *p, const layout *L, const char *out_dir, double secs)
{
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/config.json", out_dir);
    vp_json_set_str(s, "family", p->family ? p->family : "");
    vp_json_set_str(s, "class", p->hf_class ? p->hf_class : "");
    vp_json_set_str(s, "out_dir", out_dir);
    vp_json_set_str(s, "config", cfg);
    vp_json_set(s, "key", p->key ? cJSON_CreateString(p->key) : cJSON_CreateNull());
    vp_json_set_int(s, "tensors", (int64_t)L->n);
    vp_json_set_int(s, "bytes", (int64_t)L->total);
    vp_json_set_int(s, "shards", L->nshards);
    vp_json_set_str(s, "dtype", p->keep_dtype ? "keep" : vp_dtype_name(p->out_dtype_float));
    vp_json_set_float(s, "seconds", round(secs * 1000) / 1000);
    cJSON *drops = cJSON_CreateArray();
    size_t ns = vp_source_count(p->src);
    /* count per (interned) rule, in the order rules were first named */
    int64_t *count = vp__calloc(p->nrules ? p->nrules : 1, sizeof *count);
    for (size_t i = 0; count && i < ns; i++) {
        if (p->state[i] != VP_SRC_DROPPED) continue;
        for (size_t r = 0; r < p->nrules; r++)
            if (p->why[i] == p->rules[r]) { count[r]++; break; }
    }
    for (size_t r = 0; drops && count && r < p->nrules; r++) {
        if (!count[r]) continue;
        cJSON *d = cJSON_CreateObject();
        vp_json_set_str(d, "rule", p->rules[r]);
        vp_json_set_int(d, "count", count[r]);
        cJSON_AddItemToArray(drops, d);
    }
    vp__free(count);
    vp_json_set(s, "dropped", drops);
    return s;
}

static int convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                   char *err, size_t errlen, cJSON **summary)
{
    double t0 = now_seconds();
    vp_convert_opts defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!opts) opts = &defaults;
    if (summary) *summary = NULL;
    err[0] = 0;
    if (!src_path || !out_dir) { snprintf(err, errlen, "no source or output directory"); return VP_ERR_ARG; }

    vp_plan p;
    memset(&p, 0, sizeof p);
    p.opts = opts;
    if (parse_dtype_opt(opts->dtype, &p.out_dtype_float, &p.keep_dtype)) {
        snprintf(err, errlen, "--dtype must be keep, f32, f16 or bf16 (got '%s')", opts->dtype);
        return VP_ERR_ARG;
    }
    uint64_t max_shard = opts->max_shard_size ? opts->max_shard_size : DEFAULT_SHARD;
    char parent[PATH_MAX], base[NAME_MAX + 1];
    if (split_out(out_dir, parent, sizeof parent, base, sizeof base)) {
        snprintf(err, errlen, "bad output directory '%s'", out_dir);
        return VP_ERR_ARG;
    }
    struct stat st;
    if (lstat(out_dir, &st) == 0 && !opts->force) {
        snprintf(err, errlen, "%s exists (use --force to replace it)", out_dir);
        return VP_ERR_ARG;
    }
    if (stat(parent, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: the parent directory does not exist", out_dir);
        return VP_ERR_IO;
    }

    vp_source *src = NULL;
    int rc = vp_source_open(&src, src_path, key);
    if (rc) {
        snprintf(err, errlen, "%s", vp_source_errmsg(src));
        vp_source_close(src);
        return rc;
    }
    const vp_family *fam = NULL;
    char *chosen_key = NULL;
    rc = choose(&src, src_path, key, opts, &fam, &chosen_key, err, errlen);
    if (rc) { vp_source_close(src); vp__free(chosen_key); return rc; }
    vp_source_set_crc_check(src, !opts->no_crc);   /* the reader checks CRC-32s as bytes are first read */
    src->cancel = opts->cancel;                    /* and stops long reads (CRC, inflate) when cancelled */

    size_t ns = vp_source_count(src);
    p.src = src;
    p.family = fam->name;
    p.key = chosen_key ? chosen_key : key;
    vp__arena_init(&p.arena, PLAN_ARENA_CAP);
    p.state = vp__calloc(ns ? ns : 1, 1);
    p.partial = vp__calloc(ns ? ns : 1, 1);
    p.why = vp__calloc(ns ? ns : 1, sizeof *p.why);
    p.config = cJSON_CreateObject();
    layout L;
    memset(&L, 0, sizeof L);
    writer w;
    memset(&w, 0, sizeof w);
    char tmp[PATH_MAX] = "";
    if (!p.state || !p.partial || !p.why || !p.config) { rc = VP_ERR_NOMEM; snprintf(err, errlen, "out of memory"); goto done; }

    if (!opts->quiet)
        fprintf(stderr, "vitport convert: found %s (family '%s')\n", fam->summary ? fam->summary : fam->name, fam->name);
    rc = fam->build(&p);
    if (rc == VP_OK && !p.overrides_applied) rc = vp_plan_apply_overrides(&p);
    if (rc) { snprintf(err, errlen, "%s", p.err[0] ? p.err : vp_strerror(rc)); goto done; }
    rc = strict_check(&p, err, errlen);
    if (rc) goto done;
    rc = make_layout(&p, max_shard, &L);
    if (rc) { snprintf(err, errlen, "out of memory"); goto done; }
    rc = finish_config(&p, &L, err, errlen);
    if (rc) goto done;
    if (!opts->quiet)
        fprintf(stderr, "vitport convert: writing %s: %zu tensors, %.1f MB, %s\n", p.hf_class ? p.hf_class : "?", L.n,
                (double)L.total / 1e6, p.keep_dtype ? "dtypes kept" : vp_dtype_name(p.out_dtype_float));
    if (cancelled(opts)) { rc = VP_ERR_IO; snprintf(err, errlen, "interrupted"); goto done; }

    if (make_temp_dir(tmp, sizeof tmp, parent, base)) {
        snprintf(err, errlen, "cannot create a temporary directory beside %s: %s", out_dir, strerror(errno));
        tmp[0] = 0;
        rc = VP_ERR_IO;
        goto done;
    }
    w.p = &p;
    w.opts = opts;
    w.err = err;
    w.errlen = errlen;
    w.sbuf = vp__malloc(VP_IO_CHUNK);
    w.dbuf = vp__malloc(VP_IO_CHUNK);
    w.uses = vp__calloc(ns ? ns : 1, sizeof *w.uses);
    w.bytes_total = L.total;
    w.tensors_total = L.n;
    w.progress = !opts->quiet && isatty(STDERR_FILENO);
    if (!w.sbuf || !w.dbuf || !w.uses) { rc = VP_ERR_NOMEM; snprintf(err, errlen, "out of memory"); goto done; }
    for (size_t i = 0; i < p.nouts; i++)
        for (int k = 0; k < p.outs[i].npieces; k++) w.uses[p.outs[i].pieces[k].src]++;
    rc = write_all(&p, &L, tmp, &w);
    progress(&w, true);
    if (rc) goto done;
    /* verification (src/verify): a failed check publishes nothing */
    if (opts->verify && (rc = opts->verify(opts->verify_arg, tmp, src_path, p.key, p.family, err, errlen))) goto done;
    if (cancelled(opts)) { rc = VP_ERR_IO; snprintf(err, errlen, "interrupted"); goto done; }
    rc = publish(tmp, out_dir, parent, base, opts->force, err, errlen);
    if (rc) goto done;
    tmp[0] = 0;
    if (summary) *summary = make_summary(&p, &L, out_dir, now_seconds() - t0);

done:
    if (tmp[0]) remove_tree(tmp);
    vp__free(w.sbuf);
    vp__free(w.dbuf);
    vp__free(w.uses);
    vp__free(L.w);
    vp__free(L.order);
    plan_free(&p);
    vp_source_close(src);
    vp__free(chosen_key);
    return rc;
}

int vp_convert_ex(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                  char *err, size_t errlen, cJSON **summary)
{
    int rc = convert(src_path, key, out_dir, opts, err, errlen, summary);
    /* One line, whatever the tensor names quoted in it hold ("a\nb" is a
     * valid key in every format). */
    for (char *c = err; rc && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    return rc;
}

int vp_convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
               char *err, size_t errlen)
{
    return vp_convert_ex(src_path, key, out_dir, opts, err, errlen, NULL);
}
