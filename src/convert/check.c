/*
 * The strict check, as load_state_dict(strict=True) makes it: every source
 * tensor used (whole, unless a rule says in part) or dropped by a named
 * rule, every tensor the target class expects produced once with its shape.
 * Nothing is written when it fails; the message lists each kind of problem.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/converter.h"

/* ------------------------------------------------------------------------ */
/* The strict check                                                          */
/* ------------------------------------------------------------------------ */
static void list_add(vp_buf *b, size_t *count, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void list_add(vp_buf *b, size_t *count, const char *fmt, ...)
{
    if (*count < VP_CONV_LIST_MAX) {
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
                   count > VP_CONV_LIST_MAX ? ", ..." : "");
    vp__buf_free(items);
}

int vp_conv_strict_check(vp_plan *p, char *err, size_t errlen)
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
    vp_conv_named *on = vp__malloc((p->nouts ? p->nouts : 1) * sizeof *on);
    vp_conv_named *en = vp__malloc((p->nexpect ? p->nexpect : 1) * sizeof *en);
    if (!covered || !on || !en) {
        vp__free(covered); vp__free(on); vp__free(en);
        snprintf(err, errlen, "out of memory");
        return VP_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->nouts; i++)
        for (int k = 0; k < p->outs[i].npieces; k++) {
            const vp_piece *pc = &p->outs[i].pieces[k];
            covered[pc->src] += vp_conv_numel(pc->ndim, pc->shape);
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
    qsort(on, p->nouts, sizeof *on, vp_conv_named_cmp);
    qsort(en, p->nexpect, sizeof *en, vp_conv_named_cmp);
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
            vp__shape_str(s1, sizeof s1, o->ndim, o->shape);
            vp__shape_str(s2, sizeof s2, x->ndim, x->shape);
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
    list_flush(&msg, "vp_conv_named twice", &dup, ndup);
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
