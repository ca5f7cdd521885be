/* What the source evaluators share: the family table and recognition,
 * tensor access through vp_source (widened to f32, shapes checked), owned
 * buffers and outputs, and the two matrix-product layouts the sources use. */
#include <stdio.h>
#include <string.h>

#include "verify/ref.h"

const char *const vp_ref_families[] = {"timm", "dino", "clip", "siglip", "clipseg", NULL};


int vp__ref_fail(vp_ref *r, int code, const char *fmt, ...)
{
    if (r->err[0]) return code;          /* keep the first failure */
    va_list ap;
    va_start(ap, fmt);
    vp__verr(r->err, sizeof r->err, NULL, fmt, ap);
    va_end(ap);
    return code;
}

static long find_v(vp_ref *r, char *name, size_t len, const char *fmt, va_list ap)
{
    int n = snprintf(name, len, "%s", r->pre ? r->pre : "");
    if (n < 0 || (size_t)n >= len) return -1;
    vsnprintf(name + n, len - (size_t)n, fmt, ap);
    return vp_source_find(r->src, name);
}

const vp_tensor *vp__ref_info(vp_ref *r, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    long i = find_v(r, name, sizeof name, fmt, ap);
    va_end(ap);
    return i < 0 ? NULL : vp_source_tensor(r->src, (size_t)i);
}

static int own(vp_ref *r, float *p)
{
    if (r->nowned == r->capowned) {
        size_t cap = r->capowned ? r->capowned * 2 : 64;
        float **n = vp__realloc(r->owned, cap * sizeof *n);
        if (!n) return VP_ERR_NOMEM;
        r->owned = n;
        r->capowned = cap;
    }
    r->owned[r->nowned++] = p;
    return VP_OK;
}

const float *vp__ref_get(vp_ref *r, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    long i = find_v(r, name, sizeof name, fmt, ap);
    va_end(ap);
    if (i < 0) { vp__ref_fail(r, VP_ERR_NOTFOUND, "source tensor '%s' is missing", name); return NULL; }
    const vp_tensor *t = vp_source_tensor(r->src, (size_t)i);
    if (t->dtype != VP_F32 && t->dtype != VP_F16 && t->dtype != VP_BF16 && t->dtype != VP_F64) {
        vp__ref_fail(r, VP_ERR_FORMAT, "source tensor '%s' is %s, not floating point", name, vp_dtype_name(t->dtype));
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = shape[d] < 0 || shape[d] == t->shape[d];
    if (!ok) {
        char want[160] = "", got[160] = "";
        for (int d = 0; d < ndim; d++) {
            size_t n = strlen(want);
            if (shape[d] < 0) snprintf(want + n, sizeof want - n, "%s*", d ? ", " : "");
            else snprintf(want + n, sizeof want - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
        }
        for (int d = 0; d < t->ndim; d++) {
            size_t n = strlen(got);
            snprintf(got + n, sizeof got - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        }
        vp__ref_fail(r, VP_ERR_MISMATCH, "source tensor '%s' has shape [%s], the model needs [%s]", name, got, want);
        return NULL;
    }
    uint64_t bytes;
    if (!vp__mul_u64(t->numel, sizeof(float), &bytes) || bytes > SIZE_MAX) {
        vp__ref_fail(r, VP_ERR_LIMIT, "source tensor '%s' is too large", name);
        return NULL;
    }
    float *p = vp__malloc(bytes ? (size_t)bytes : 1);
    if (!p || own(r, p)) {
        vp__free(p);
        vp__ref_fail(r, VP_ERR_NOMEM, "out of memory reading '%s'", name);
        return NULL;
    }
    int rc = vp_source_read_as(r->src, (size_t)i, VP_F32, p, (size_t)bytes);
    if (rc) { vp__ref_fail(r, rc, "%s", vp_source_errmsg(r->src)); return NULL; }
    return p;
}

int64_t vp__ref_count(vp_ref *r, const char *fmt)
{
    int64_t n = 0;
    char name[256];
    for (;;) {
        snprintf(name, sizeof name, fmt, (long long)n);
        if (!vp__ref_info(r, "%s", name)) return n;
        n++;
    }
}

size_t vp__ref_mark(const vp_ref *r) { return r->nowned; }

void vp__ref_release(vp_ref *r, size_t mark)
{
    while (r->nowned > mark) vp__free(r->owned[--r->nowned]);
}

float *vp__ref_buf(vp_ref *r, int64_t n)
{
    uint64_t bytes;
    if (n < 0 || !vp__mul_u64((uint64_t)n, sizeof(float), &bytes) || bytes > SIZE_MAX) {
        vp__ref_fail(r, VP_ERR_LIMIT, "working buffer of %lld floats is too large", (long long)n);
        return NULL;
    }
    float *p = vp__calloc(n ? (size_t)n : 1, sizeof(float));
    if (!p || own(r, p)) {
        vp__free(p);
        vp__ref_fail(r, VP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return p;
}

float *vp__ref_add_out(vp_ref *r, const char *name, int ndim, const int64_t *shape)
{
    if (r->nout >= VP_REF_MAX_OUT || ndim > 4) { vp__ref_fail(r, VP_ERR_LIMIT, "too many outputs"); return NULL; }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    float *p = vp__ref_buf(r, n);
    if (!p) return NULL;
    vp_ref_out *o = &r->out[r->nout++];
    o->name = name;
    o->ndim = ndim;
    memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
    o->data = p;
    return p;
}

void vp__ref_linear(float *y, const float *x, int64_t m, const float *w, const float *b, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) y[i * n + j] = b ? b[j] : 0.0f;
    vp_nn_gemm(1, m, n, k, 1.0f, x, k, w, k, 1.0f, y, n);
}

void vp__ref_matmul(float *y, const float *x, int64_t m, const float *w, const float *b, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) y[i * n + j] = b ? b[j] : 0.0f;
    vp_nn_gemm(0, m, n, k, 1.0f, x, k, w, n, 1.0f, y, n);
}

/* ---- recognition ------------------------------------------------------- */
/* The prefix before the first tensor name ending in `anchor` under which
 * `also` exists too (a wrapper's "module.", a DINO "backbone.", a nested
 * dictionary's "state_dict/"), into r->prebuf; 1 if found. */
static int find_prefix(vp_ref *r, const char *anchor, const char *also, const char *also2)
{
    size_t n = vp_source_count(r->src), al = strlen(anchor);
    for (size_t i = 0; i < n; i++) {
        const char *name = vp_source_tensor(r->src, i)->name;
        size_t l = strlen(name);
        if (l < al || strcmp(name + l - al, anchor) || l - al >= sizeof r->prebuf) continue;
        if (l > al && name[l - al - 1] != '.' && name[l - al - 1] != '/') continue;
        if (!r->nested && memchr(name, '/', l - al) && strncmp(anchor, "params/", 7)) continue;
        memcpy(r->prebuf, name, l - al);
        r->prebuf[l - al] = 0;
        r->pre = r->prebuf;
        if (vp__ref_info(r, "%s", also) && (!also2 || vp__ref_info(r, "%s", also2))) return 1;
    }
    r->pre = "";
    return 0;
}

static const char *detect(vp_ref *r, const char *want)
{
    int any = !want;
    if ((any || !strcmp(want, "timm") || !strcmp(want, "dino")) && find_prefix(r, "patch_embed.proj.weight", "cls_token", NULL))
        return want ? want : (r->pre[0] ? "dino" : "timm");
    if ((any || !strcmp(want, "clipseg")) && find_prefix(r, "clip_model.visual.conv1.weight", "film_mul.weight", NULL))
        return "clipseg";
    if ((any || !strcmp(want, "clip")) && find_prefix(r, "visual.conv1.weight", "token_embedding.weight", "visual.class_embedding"))
        return "clip";
    if ((any || !strcmp(want, "siglip")) && find_prefix(r, "params/img/embedding/kernel", "params/txt/Embed_0/embedding", NULL))
        return "siglip";
    return NULL;
}

int vp_ref_init(vp_ref *r, vp_source *src, const char *family, int nested)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->nested = nested;
    if (family) {
        const char *const *f = vp_ref_families;
        while (*f && strcmp(*f, family)) f++;
        if (!*f) return vp__ref_fail(r, VP_ERR_ARG, "no source evaluator for family '%s' (timm, dino, clip, siglip, clipseg)", family);
    }
    r->family = detect(r, family);
    if (!r->family) {
        if (family)
            return vp__ref_fail(r, VP_ERR_UNSUPPORTED, "the source's tensors are not a %s checkpoint in its original layout", family);
        return vp__ref_fail(r, VP_ERR_UNSUPPORTED, "the source's tensors are not one of the layouts vitport evaluates "
                            "(timm / DINO ViT, OpenAI CLIP, big_vision SigLIP, CLIPSeg)");
    }
    return VP_OK;
}

int vp_ref_info_get(vp_ref *r, vp_ref_info *info)
{
    memset(info, 0, sizeof *info);
    if (!r->family) return vp__ref_fail(r, VP_ERR_ARG, "evaluator not initialised");
    if (!strcmp(r->family, "timm") || !strcmp(r->family, "dino")) return vp__ref_timm_info(r, info);
    if (!strcmp(r->family, "clip")) return vp__ref_clip_info(r, info);
    if (!strcmp(r->family, "siglip")) return vp__ref_siglip_info(r, info);
    return vp__ref_clipseg_info(r, info);
}

int vp_ref_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in)
{
    for (int i = 0; i < r->nout; i++) r->out[i].data = NULL;   /* buffers stay owned */
    r->nout = 0;
    r->err[0] = 0;
    vp_ref_params dflt;
    memset(&dflt, 0, sizeof dflt);
    if (!hp) hp = &dflt;
    if (!r->family) return vp__ref_fail(r, VP_ERR_ARG, "evaluator not initialised");
    if (in->pixel_values && (in->batch <= 0 || in->height <= 0 || in->width <= 0))
        return vp__ref_fail(r, VP_ERR_ARG, "pixel_values has an empty dimension");
    if (in->input_ids && (in->text_batch <= 0 || in->text_len <= 0))
        return vp__ref_fail(r, VP_ERR_ARG, "input_ids has an empty dimension");
    if (!strcmp(r->family, "timm") || !strcmp(r->family, "dino")) return vp__ref_timm_run(r, hp, in);
    if (!strcmp(r->family, "clip")) return vp__ref_clip_run(r, hp, in);
    if (!strcmp(r->family, "siglip")) return vp__ref_siglip_run(r, hp, in);
    return vp__ref_clipseg_run(r, hp, in);
}

const vp_ref_out *vp_ref_output(const vp_ref *r, const char *name)
{
    for (int i = 0; i < r->nout; i++)
        if (!strcmp(r->out[i].name, name)) return &r->out[i];
    return NULL;
}

void vp_ref_free(vp_ref *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nowned; i++) vp__free(r->owned[i]);
    vp__free(r->owned);
    r->owned = NULL;
    r->nowned = r->capowned = 0;
    r->nout = 0;
}
