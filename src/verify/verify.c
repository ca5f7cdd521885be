/*
 * vitport verification (include/vitport/verify.h): the converted
 * directory through the engine, the source through its own-layout
 * evaluator (ref_*.c), the same inputs, every output the source gives
 * compared by its largest absolute difference.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hf/json.h"
#include "models/model.h"
#include "verify/ref.h"

#define MAX_ITEMS 32

struct vp_verify {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[1024];
    char check[128];
    char cls[96];
    int engine_missing;
    vp_verify_item items[MAX_ITEMS];
    char names[MAX_ITEMS][48];
    size_t n;
};

static int vp_verify_new__impl(vp_verify **out)
{
    *out = vp__calloc(1, sizeof **out);
    if (*out) (*out)->alloc = vp__alloc_get();
    return *out ? VP_OK : VP_ERR_NOMEM;
}

int vp_verify_new_ex(vp_verify **out, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_verify_new__impl(out));
}

int vp_verify_new(vp_verify **out)
{
    return vp_verify_new_ex(out, vp__alloc_current());
}

static void vp_verify_free__impl(vp_verify *v) { vp__free(v); }

void vp_verify_free(vp_verify *v)
{
    VP__WITH_ALLOC_VOID(v ? &v->alloc : vp__alloc_current(), vp_verify_free__impl(v));
}
const char *vp_verify_errmsg(const vp_verify *v) { return v ? v->errmsg : "out of memory"; }
int vp_verify_engine_missing(const vp_verify *v) { return v && v->engine_missing; }
size_t vp_verify_count(const vp_verify *v) { return v ? v->n : 0; }
const vp_verify_item *vp_verify_item_at(const vp_verify *v, size_t i) { return v && i < v->n ? &v->items[i] : NULL; }
const char *vp_verify_check(const vp_verify *v) { return v ? v->check : ""; }
const char *vp_verify_class(const vp_verify *v) { return v ? v->cls : ""; }

const vp_verify_item *vp_verify_worst(const vp_verify *v)
{
    const vp_verify_item *w = NULL;
    double wr = -1;
    for (size_t i = 0; v && i < v->n; i++) {
        double r = v->items[i].max_abs / v->items[i].tolerance;
        if (isnan(r) || r > wr) { w = &v->items[i]; wr = isnan(r) ? INFINITY : r; }
    }
    return w;
}

static int fail(vp_verify *v, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(vp_verify *v, int code, const char *fmt, ...)
{
    if (v->errmsg[0]) return code;
    va_list ap;
    va_start(ap, fmt);
    vp__verr(v->errmsg, sizeof v->errmsg, NULL, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- deterministic inputs (splitmix64) ----------------------------------- */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unit(uint64_t *s) { return (double)(next(s) >> 11) / 9007199254740992.0; }

static int64_t cfg_text_int(const cJSON *cfg, const char *key, int64_t dflt)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
    int64_t v;
    if (cJSON_IsObject(t) && vp_json_get_int(t, key, &v)) return v;
    return dflt;
}

/* ids for a tower that pools at the EOS token: the original (OpenAI) pools
 * at argmax(ids), transformers at argmax when eos_token_id is 2 (the legacy
 * rule) and at the first eos_token_id otherwise; so the EOS token is the
 * largest id of its row and appears once, at a position that differs per row,
 * padded with 0 after it. */
static void eos_ids(int64_t *ids, int64_t B, int64_t L, int64_t vocab, const cJSON *cfg, uint64_t *s)
{
    int64_t eos = cfg_text_int(cfg, "eos_token_id", 49407), bos = cfg_text_int(cfg, "bos_token_id", 49406);
    if (eos == 2 || eos <= 1 || eos >= vocab) { eos = vocab - 1; bos = vocab - 2; }
    int have_bos = bos >= 1 && bos < eos;
    int64_t hi = have_bos ? bos : eos;            /* ordinary tokens in [1, hi) */
    if (hi < 2) hi = 2;
    for (int64_t b = 0; b < B; b++) {
        int64_t pos = L - 1 - (b * (L / 3 + 1)) % (L > 1 ? L - 1 : 1);
        if (pos < 1) pos = L > 1 ? 1 : 0;
        for (int64_t j = 0; j < L; j++) {
            int64_t id;
            if (j == pos) id = eos;
            else if (j > pos) id = 0;
            else if (j == 0 && have_bos) id = bos;
            else id = 1 + (int64_t)(next(s) % (uint64_t)(hi - 1));
            if (id >= eos && j != pos) id = eos - 1 > 0 ? eos - 1 : 0;
            ids[b * L + j] = id;
        }
    }
}

/* ---- tolerance -------------------------------------------------------------- */
/* 0 = f32, 1 = some f16, 2 = some bf16 among the model's float weights. */
static int narrowest(const vp_model *m)
{
    int worst = 0;
    for (size_t f = 0; f < m->nsrc; f++)
        for (size_t i = 0; i < vp_source_count(m->src[f]); i++) {
            vp_dtype d = vp_source_tensor(m->src[f], i)->dtype;
            if (d == VP_BF16) worst = 2;
            else if (d == VP_F16 && worst < 1) worst = 1;
        }
    return worst;
}

static double tolerance_for(int narrow, double user, const float *ref, uint64_t n)
{
    if (user > 0) return user;
    if (!narrow) return 1e-4;
    double mx = 1;
    for (uint64_t i = 0; ref && i < n; i++) if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    return (narrow == 1 ? 1e-2 : 8e-2) * mx;
}

static double max_abs(const float *a, const float *b, uint64_t n)
{
    double mx = 0;
    for (uint64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= mx)) mx = isnan(d) ? INFINITY : d;
    }
    return mx;
}

static uint64_t numel(int ndim, const int64_t *shape)
{
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (uint64_t)shape[d];
    return n;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < ndim && k < len; d++) k += (size_t)snprintf(buf + k, len - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
}

/* Record one comparison; VP_ERR_MISMATCH (message set) when it fails. */
static int compare(vp_verify *v, const char *dir, const char *name, const char *against, const vp_output *got,
                   const float *ref, int rndim, const int64_t *rshape, int narrow, double user_tol)
{
    uint64_t n = numel(rndim, rshape);
    if (numel(got->ndim, got->shape) != n) {
        char a[96], b[96];
        shape_str(a, sizeof a, got->ndim, got->shape);
        shape_str(b, sizeof b, rndim, rshape);
        return fail(v, VP_ERR_MISMATCH, "%s: verification failed: %s is [%s] in the converted model, [%s] in the %s",
                    dir, name, a, b, !strcmp(against, "source") ? "source" : "expected outputs");
    }
    if (v->n < MAX_ITEMS) {
        vp_verify_item *it = &v->items[v->n];
        snprintf(v->names[v->n], sizeof v->names[v->n], "%s", name);
        it->name = v->names[v->n];
        it->against = against;
        it->numel = n;
        it->max_abs = max_abs(got->data, ref, n);
        it->tolerance = tolerance_for(narrow, user_tol, ref, n);
        it->ok = it->max_abs <= it->tolerance;
        v->n++;
        if (!it->ok)
            return fail(v, VP_ERR_MISMATCH, "%s: verification failed: %s differs from the %s by %.3g (tolerance %.3g)",
                        dir, name, !strcmp(against, "source") ? "source model" : "expected outputs", it->max_abs, it->tolerance);
    }
    return VP_OK;
}

/* Open the source and start its evaluator; without a key, try the usual
 * sub-dictionaries when the top level is no model. */
static int open_source(vp_verify *v, const vp_verify_opts *o, const char *family, vp_source **src, vp_ref *r)
{
    static const char *const KEYS[] = {"teacher", "model", "state_dict", "module", NULL};
    int rc = vp_source_open(src, o->source, o->key);
    if (rc) return fail(v, rc, "%s", *src ? vp_source_errmsg(*src) : "out of memory");
    if (o->no_crc) vp_source_set_crc_check(*src, 0);
    rc = vp_ref_init(r, *src, family, 0);
    for (const char *const *k = KEYS; rc && !o->key && *k; k++) {
        vp_source *s2 = NULL;
        if (vp_source_open(&s2, o->source, *k) == VP_OK) {
            vp_ref r2;
            if (o->no_crc) vp_source_set_crc_check(s2, 0);
            if (vp_ref_init(&r2, s2, family, 0) == VP_OK) {
                vp_source_close(*src);
                *src = s2;
                *r = r2;
                if (r2.pre == r2.prebuf) r->pre = r->prebuf;   /* it pointed into r2 */
                return VP_OK;
            }
        }
        vp_source_close(s2);
    }
    if (rc) rc = vp_ref_init(r, *src, family, 1);   /* a model deeper in the file */
    if (rc) return fail(v, rc, "%s: %s", o->source, r->err);
    return VP_OK;
}

static const char *ref_family(const char *f)
{
    if (!f) return NULL;
    if (!strcmp(f, "vit") || !strcmp(f, "deit")) return "timm";
    return f;
}

static int vp_verify_run__impl(vp_verify *v, const char *dir, const vp_verify_opts *o)
{
    vp_verify_opts dflt;
    memset(&dflt, 0, sizeof dflt);
    if (!o) o = &dflt;
    v->errmsg[0] = v->check[0] = v->cls[0] = 0;
    v->engine_missing = 0;
    v->n = 0;
    if (!dir) return fail(v, VP_ERR_ARG, "no model directory");
    if (!o->source && !o->expect) return fail(v, VP_ERR_ARG, "nothing to compare with: give a source checkpoint or expected outputs");
    if (o->expect && (!o->pixel_values && !o->input_ids))
        return fail(v, VP_ERR_ARG, "expected outputs need the inputs they were computed from (pixel_values / input_ids)");
    if ((o->pixel_values && (o->batch <= 0 || o->height <= 0 || o->width <= 0)) ||
        (o->input_ids && (o->text_batch <= 0 || o->text_len <= 0)))
        return fail(v, VP_ERR_ARG, "an input has an empty dimension");

    int rc;
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    vp_source *src = NULL, *exp = NULL;
    vp_ref r;
    memset(&r, 0, sizeof r);
    float *pix = NULL, *ebuf = NULL;
    int64_t *ids = NULL;

    rc = vp_model_open(&m, dir);
    if (rc) {
        if (m && m->model_type && !m->family) {
            v->engine_missing = 1;
            snprintf(v->check, sizeof v->check, "none");
            rc = fail(v, VP_ERR_UNSUPPORTED, "%s: this build's engine does not run model_type \"%s\" (nothing to compare)",
                      dir, m->model_type);
        } else if (m && rc == VP_ERR_UNSUPPORTED) {
            v->engine_missing = 1;
            snprintf(v->check, sizeof v->check, "none");
            rc = fail(v, VP_ERR_UNSUPPORTED, "the engine cannot run this model (nothing to compare): %s", vp_model_errmsg(m));
        } else {
            rc = fail(v, rc, "%s", m ? vp_model_errmsg(m) : "out of memory");
        }
        goto done;
    }
    snprintf(v->cls, sizeof v->cls, "%s", vp_model_class(m));
    int narrow = narrowest(m);

    vp_ref_info info;
    memset(&info, 0, sizeof info);
    vp_ref_params hp;
    memset(&hp, 0, sizeof hp);
    const cJSON *cfg = m->config;
    if (o->source) {
        rc = open_source(v, o, ref_family(o->family), &src, &r);
        if (rc) goto done;
        if ((rc = vp_ref_info_get(&r, &info))) { rc = fail(v, rc, "%s: %s", o->source, r.err); goto done; }
        /* What no tensor shows, from the converted config (the values the
         * conversion was told): head counts, CLIPSeg's decoder settings. */
        const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
        const char *mt = m->model_type;
        int clipseg = !strcmp(mt, "clipseg");
        int64_t x;
        if (!strcmp(mt, "vit") || !strcmp(mt, "deit")) {
            if (vp_hf_read_int(cfg, "num_attention_heads", vp_hf_vit_defaults, &x) == VP_OK) hp.heads = x;
        } else if (!strcmp(mt, "clip") || clipseg) {
            if (vp_hf_read_int(cJSON_IsObject(vc) ? vc : NULL, "num_attention_heads",
                                clipseg ? vp_hf_clipseg_vision_defaults : vp_hf_clip_vision_defaults, &x) == VP_OK) hp.heads = x;
            if (vp_hf_read_int(cJSON_IsObject(tc) ? tc : NULL, "num_attention_heads",
                                clipseg ? vp_hf_clipseg_text_defaults : vp_hf_clip_text_defaults, &x) == VP_OK) hp.text_heads = x;
        }
        if (clipseg) {
            if (vp_json_get_int(cfg, "decoder_num_attention_heads", &x)) hp.decoder_heads = x;
            if (vp_json_get_int(cfg, "conditional_layer", &x)) hp.cond_layer = x;
            const cJSON *ex = cJSON_GetObjectItemCaseSensitive(cfg, "extract_layers");
            for (int i = 0; cJSON_IsArray(ex) && i < cJSON_GetArraySize(ex) && i < VP_REF_MAX_EXTRACT; i++) {
                const cJSON *e = cJSON_GetArrayItem(ex, i);
                if (!cJSON_IsNumber(e)) { rc = fail(v, VP_ERR_FORMAT, "%s: config.json: extract_layers holds a non-number", dir); goto done; }
                hp.extract[hp.nextract++] = (int64_t)e->valuedouble;
            }
        }
        snprintf(v->check, sizeof v->check, "%s source evaluator", r.family);
    } else {
        snprintf(v->check, sizeof v->check, "expected outputs");
    }

    /* inputs */
    int want = vp_model_inputs(m);
    vp_inputs in;
    memset(&in, 0, sizeof in);
    uint64_t seed = 0x76697470u;   /* "vitp" */
    int64_t in_channels = 3;
    if (want & VP_INPUT_PIXELS) {
        if (o->pixel_values) {
            in.pixel_values = o->pixel_values; in.batch = o->batch; in.height = o->height; in.width = o->width;
            in_channels = o->channels > 0 ? o->channels : 3;
        } else {
            int64_t S = vp_model_image_size(m) > 0 ? vp_model_image_size(m) : info.image_size;
            if (S <= 0 || S > 4096) { rc = fail(v, VP_ERR_ARG, "%s: no usable image size in the config", dir); goto done; }
            int64_t C = info.channels > 0 ? info.channels : 3;
            int64_t B = 2, n = B * C * S * S;
            if (C > 64) { rc = fail(v, VP_ERR_ARG, "%s: %lld image channels", o->source, (long long)C); goto done; }
            in_channels = C;
            pix = vp__malloc((size_t)n * sizeof *pix);
            if (!pix) { rc = fail(v, VP_ERR_NOMEM, "out of memory"); goto done; }
            for (int64_t i = 0; i < n; i++) pix[i] = (float)(unit(&seed) * 4.0 - 2.0);
            in.pixel_values = pix; in.batch = B; in.height = S; in.width = S;
        }
    }
    if (want & VP_INPUT_IDS) {
        if (o->input_ids) {
            in.input_ids = o->input_ids; in.text_batch = o->text_batch; in.text_len = o->text_len;
        } else {
            int64_t L = vp_model_max_text_len(m) > 0 ? vp_model_max_text_len(m) : info.text_len;
            int64_t vocab = info.vocab > 0 ? info.vocab : cfg_text_int(cfg, "vocab_size", 0);
            int64_t B = (info.same_batch || !strcmp(m->model_type, "clipseg")) ? in.batch : 3;
            if (L <= 0 || L > 1 << 16 || vocab <= 2 || B <= 0) {
                rc = fail(v, VP_ERR_ARG, "%s: no usable text length / vocabulary size for the inputs", dir);
                goto done;
            }
            ids = vp__malloc((size_t)(B * L) * sizeof *ids);
            if (!ids) { rc = fail(v, VP_ERR_NOMEM, "out of memory"); goto done; }
            if (!strcmp(m->model_type, "siglip"))      /* pools the last token: any ids */
                for (int64_t i = 0; i < B * L; i++) ids[i] = (int64_t)(next(&seed) % (uint64_t)vocab);
            else
                eos_ids(ids, B, L, vocab, cfg, &seed);
            in.input_ids = ids; in.text_batch = B; in.text_len = L;
        }
    }

    /* the engine */
    if ((rc = vp_ctx_new(&c, m, o->threads))) { rc = fail(v, rc, "%s", c ? vp_ctx_errmsg(c) : "out of memory"); goto done; }
    if ((rc = vp_ctx_run(c, &in))) { rc = fail(v, rc, "%s", vp_ctx_errmsg(c)); goto done; }

    /* the source */
    if (o->source) {
        vp_ref_inputs ri = {in.pixel_values, in.batch, in.height, in.width, in.input_ids, in.text_batch, in.text_len,
                            in_channels};
        if ((rc = vp_ref_run(&r, &hp, &ri))) { rc = fail(v, rc, "%s: %s", o->source, r.err); goto done; }
        for (int i = 0; i < r.nout && !rc; i++) {
            const vp_ref_out *ro = &r.out[i];
            const vp_output *got = vp_ctx_output_named(c, ro->name);
            if (!got) { rc = fail(v, VP_ERR_MISMATCH, "%s: verification failed: the converted model gives no %s", dir, ro->name); break; }
            rc = compare(v, dir, ro->name, "source", got, ro->data, ro->ndim, ro->shape, narrow, o->tolerance);
        }
        if (rc) goto done;
    }
    if (o->expect) {
        rc = vp_source_open(&exp, o->expect, NULL);
        if (rc) { rc = fail(v, rc, "%s", exp ? vp_source_errmsg(exp) : "out of memory"); goto done; }
        for (size_t i = 0; i < vp_source_count(exp) && !rc; i++) {
            const vp_tensor *t = vp_source_tensor(exp, i);
            const vp_output *got = vp_ctx_output_named(c, t->name);
            if (!got) { rc = fail(v, VP_ERR_MISMATCH, "%s: verification failed: the converted model gives no %s (in %s)", dir, t->name, o->expect); break; }
            if (t->dtype != VP_F32 && t->dtype != VP_F64 && t->dtype != VP_F16 && t->dtype != VP_BF16) continue;
            vp__free(ebuf);
            ebuf = t->numel < SIZE_MAX / sizeof(float) ? vp__malloc((size_t)t->numel * sizeof *ebuf + 1) : NULL;
            if (!ebuf) { rc = fail(v, VP_ERR_NOMEM, "out of memory"); break; }
            if ((rc = vp_source_read_as(exp, i, VP_F32, ebuf, (size_t)t->numel * sizeof *ebuf))) { rc = fail(v, rc, "%s", vp_source_errmsg(exp)); break; }
            rc = compare(v, dir, t->name, "expect", got, ebuf, t->ndim, t->shape, narrow, o->tolerance);
        }
        if (o->source) {
            size_t k = strlen(v->check);
            snprintf(v->check + k, sizeof v->check - k, " and expected outputs");
        }
    }

done:
    vp__free(ebuf);
    vp__free(pix);
    vp__free(ids);
    vp_ref_free(&r);
    vp_source_close(src);
    vp_source_close(exp);
    vp_ctx_free(c);
    vp_model_close(m);
    return rc;
}

int vp_verify_run(vp_verify *v, const char *dir, const vp_verify_opts *o)
{
    VP__WITH_ALLOC(v ? &v->alloc : vp__alloc_current(), int, vp_verify_run__impl(v, dir, o));
}

void vp_verify_summary(const vp_verify *v, char *buf, size_t len)
{
    const vp_verify_item *w = v ? vp_verify_worst(v) : NULL;
    if (!w) { snprintf(buf, len, "no outputs compared"); return; }
    snprintf(buf, len, "largest difference %.2g (%s vs the %s), tolerance %.2g", w->max_abs, w->name,
             !strcmp(w->against, "source") ? "source" : "expected outputs", w->tolerance);
}

/* Every occurrence of `from` in s (a buffer of len bytes) replaced by `to`,
 * truncated to fit: the engine's messages name the temporary directory it
 * opened, the user knows OUT_DIR. */
static void replace_all(char *s, size_t len, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    if (!fl || !len) return;
    char out[4096];
    size_t cap = len < sizeof out ? len : sizeof out, k = 0;
    for (const char *p = s; *p && k + 1 < cap;) {
        if (!strncmp(p, from, fl)) {
            size_t n = tl < cap - 1 - k ? tl : cap - 1 - k;
            memcpy(out + k, to, n);
            k += n;
            p += fl;
        } else out[k++] = *p++;
    }
    out[k] = 0;
    memcpy(s, out, k + 1);
}

int vp_verify_convert(void *arg, const char *tmp_dir, const char *src_path, const char *key, const char *family,
                      char *err, size_t errlen)
{
    vp_verify_convert_state *st = arg;
    vp_verify_opts o;
    memset(&o, 0, sizeof o);
    o.source = src_path;
    o.key = key;
    o.family = family;
    o.threads = st->threads;
    o.no_crc = st->no_crc;
    vp_verify_free(st->v);
    st->v = NULL;
    st->summary[0] = 0;
    if (vp_verify_new(&st->v)) { snprintf(err, errlen, "out of memory"); return VP_ERR_NOMEM; }
    vp_verify *v = st->v;
    int rc = vp_verify_run(v, tmp_dir, &o);
    const char *out = st->out_dir ? st->out_dir : tmp_dir;
    st->ran = 1;
    st->rc = rc;
    st->engine_missing = vp_verify_engine_missing(v);
    st->error[0] = 0;
    if (rc != VP_OK) {
        snprintf(st->error, sizeof st->error, "%s", vp_verify_errmsg(v));
        replace_all(st->error, sizeof st->error, tmp_dir, out);
    }
    if (rc == VP_OK) {
        char line[256];
        vp_verify_summary(v, line, sizeof line);
        snprintf(st->summary, sizeof st->summary, "verified %s against the %s: %s", vp_verify_class(v),
                 vp_verify_check(v), line);
    } else if (st->engine_missing) {
        snprintf(st->summary, sizeof st->summary, "not verified: %s", st->error);
        rc = VP_OK;   /* the conversion itself stands; the summary says what is missing */
    } else {
        snprintf(err, errlen, "%s; nothing written", st->error);
    }
    return rc;
}
