/*
 * Choosing the family for a source: by --family, else by the families'
 * detect() scores (the --model-name prefix settling among the families that
 * recognise the tensors); in a nested checkpoint, among its sub-dictionaries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert/converter.h"

/* ------------------------------------------------------------------------ */
/* The family table (from VP_FAMILIES, convert.h)                            */
/* ------------------------------------------------------------------------ */
#define VP_FAMILY_PTR(name) &vp_family_##name,
const vp_family *const vp_families[] = { VP_FAMILIES(VP_FAMILY_PTR) NULL };
#undef VP_FAMILY_PTR

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
static const vp_family *pick_family(const vp_table *tb, const vp_family *only, const char *model_name, int *score_out)
{
    const vp_family *best = NULL, *named = NULL;
    int bs = 0, ns = 0;
    size_t nlen = 0;
    for (const vp_family *const *f = vp_families; *f; f++) {
        if (only && *f != only) continue;
        int s = (*f)->detect ? (*f)->detect(tb) : 0;
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
 * its last '/'), each scored by the families on that group's table, names
 * relative to it. Sorting makes it O(n log n). */
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
            vp_table group = {view, j - i};
            int score = 0;
            const vp_family *f = pick_family(&group, only, model_name, &score);
            if (f) {
                if (vp_conv_grow((void **)&c, &cap, nc + 1, sizeof *c)) { rc = VP_ERR_NOMEM; break; }
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
int vp_conv_choose(vp_source **srcp, const char *path, const char *key, const vp_convert_opts *o,
                   const vp_family **famp, char **keyp, char *err, size_t errlen)
{
    const vp_family *only = NULL;
    if (o->family && *o->family && strcmp(o->family, "auto")) {
        only = family_by_name(o->family);
        if (!only) {
            vp_buf names = {0};
            for (const vp_family *const *f = vp_families; *f; f++) vp__buf_printf(&names, "%s, ", (*f)->name);
            if (names.n >= 2) names.p[names.n - 2] = 0;
            snprintf(err, errlen, "unknown family '%s' (%s or auto)", o->family, names.p ? names.p : "");
            vp__buf_free(&names);
            return VP_ERR_ARG;
        }
    }
    int score = 0;
    vp_table all;
    all.t = vp_source_tensors(*srcp, &all.n);
    const vp_family *f = pick_family(&all, only, o->model_name, &score);
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
        for (size_t i = 0; i < nc && i < VP_CONV_LIST_MAX; i++)
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
    vp_table sub;
    sub.t = vp_source_tensors(narrowed, &sub.n);
    *famp = f = pick_family(&sub, only, o->model_name, &score);
    *keyp = full;
    if (!f) { snprintf(err, errlen, "sub-dictionary '%s' holds no model vitport recognises", full); return VP_ERR_UNSUPPORTED; }
    return VP_OK;
}
