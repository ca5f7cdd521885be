/*
 * Loading a Hugging Face model directory and the per-thread context:
 * config.json, the weight files (model.safetensors, a sharded
 * model.safetensors.index.json, or pytorch_model.bin), weight lookup with
 * shape checks, and the ctx's scratch and output buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf/json.h"
#include "models/model.h"

#define MAX_CONFIG_BYTES ((size_t)16 << 20)
#define MAX_SHARDS 4096

/* The families the engine runs, by config.json model_type. */
static const vp_model_family *const families[] = {
    &vp_model_vit, &vp_model_deit,
    &vp_model_siglip, &vp_model_siglip_vision, &vp_model_siglip_text,
    &vp_model_clip, &vp_model_clip_vision, &vp_model_clip_text, &vp_model_clipseg,
    NULL
};

/* ---- errors ------------------------------------------------------------- */
static int vset(char *dst, size_t len, const char *prefix, int code, const char *fmt, va_list ap)
{
    if (dst[0]) return code;                 /* keep the first failure */
    vp__verr(dst, len, prefix, fmt, ap);     /* one line: CR and LF from a file become spaces */
    return code;
}

int vp__merr(vp_model *m, int code, const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt);
    if (!m->errmsg[0]) m->errcode = code;
    vset(m->errmsg, sizeof m->errmsg, m->dir, code, fmt, ap);
    va_end(ap);
    return code;
}

int vp__cerr(vp_ctx *c, int code, const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt);
    c->errmsg[0] = 0;
    vset(c->errmsg, sizeof c->errmsg, c->m ? c->m->dir : NULL, code, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- config ------------------------------------------------------------- */
static const char *where_key(char *buf, size_t len, const char *where, const char *key)
{
    if (where) snprintf(buf, len, "%s.%s", where, key);
    else snprintf(buf, len, "%s", key);
    return buf;
}

int vp__cfg_sub(vp_model *m, const char *key, const cJSON **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(m->config, key);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) return VP_OK;
    if (!cJSON_IsObject(it)) return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is not an object", key);
    *out = it;
    return VP_OK;
}

int vp__cfg_int(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, int64_t lo, int64_t hi, int64_t *out)
{
    char wk[160];
    int rc = vp_hf_read_int(obj, key, defs, out);
    if (rc == VP_ERR_NOTFOUND)
        return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is missing", where_key(wk, sizeof wk, where, key));
    if (rc) return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is not an integer", where_key(wk, sizeof wk, where, key));
    if (*out < lo || *out > hi)
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: %s = %lld is outside [%lld, %lld]",
                        where_key(wk, sizeof wk, where, key), (long long)*out, (long long)lo, (long long)hi);
    return VP_OK;
}

int vp__cfg_float(vp_model *m, const cJSON *obj, const char *where, const char *key,
                  const vp_hf_default *defs, double *out)
{
    char wk[160];
    int rc = vp_hf_read_float(obj, key, defs, out);
    if (rc == VP_ERR_NOTFOUND)
        return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is missing", where_key(wk, sizeof wk, where, key));
    if (rc) return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is not a number", where_key(wk, sizeof wk, where, key));
    return VP_OK;
}

int vp__cfg_str(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, const char **out)
{
    char wk[160];
    int rc = vp_hf_read_str(obj, key, defs, out);
    if (rc == VP_ERR_NOTFOUND)
        return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is missing", where_key(wk, sizeof wk, where, key));
    if (rc) return vp__merr(m, VP_ERR_FORMAT, "config.json: %s is not a string", where_key(wk, sizeof wk, where, key));
    return VP_OK;
}

int vp__cfg_act(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, vp_act *out)
{
    const char *name;
    char wk[160];
    int rc = vp__cfg_str(m, obj, where, key, defs, &name);
    if (rc) return rc;
    if (vp_nn_act_parse(name, out))
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: %s = \"%s\" is not an activation vitport runs "
                        "(gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, relu)", where_key(wk, sizeof wk, where, key), name);
    return VP_OK;
}

/* ---- weights ------------------------------------------------------------ */
static int wentry_cmp(const void *a, const void *b)
{
    return strcmp(((const vp_wentry *)a)->name, ((const vp_wentry *)b)->name);
}

static vp_wentry *wfind(vp_model *m, const char *name)
{
    vp_wentry key = { .name = name };
    return bsearch(&key, m->w, m->nw, sizeof *m->w, wentry_cmp);
}

static const char *vname(char *buf, size_t len, const char *fmt, va_list ap)
{
    vsnprintf(buf, len, fmt, ap);
    return buf;
}

const vp_tensor *vp__winfo(vp_model *m, const char *fmt, ...)
{
    char name[512];
    va_list ap; va_start(ap, fmt);
    vname(name, sizeof name, fmt, ap);
    va_end(ap);
    vp_wentry *e = wfind(m, name);
    return e ? vp_source_tensor(m->src[e->src], e->idx) : NULL;
}

static void shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

static const float *resolve(vp_model *m, vp_wentry *e, const char *name, int ndim, const int64_t *shape)
{
    vp_source *src = m->src[e->src];
    const vp_tensor *t = vp_source_tensor(src, e->idx);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        shape_text(want, sizeof want, ndim, shape);
        shape_text(got, sizeof got, t->ndim, t->shape);
        vp__merr(m, VP_ERR_MISMATCH, "tensor '%s' has shape %s, the config needs %s", name, got, want);
        return NULL;
    }
    if (e->f32) return e->f32;
    if (t->dtype != VP_F32 && t->dtype != VP_F16 && t->dtype != VP_BF16 && t->dtype != VP_F64) {
        vp__merr(m, VP_ERR_UNSUPPORTED, "tensor '%s' is %s, not a floating-point type", name, vp_dtype_name(t->dtype));
        return NULL;
    }
    if (t->dtype == VP_F32) {
        const void *p = vp_source_data(src, e->idx);
        if (p && ((uintptr_t)p % sizeof(float)) == 0) return e->f32 = p;
    }
    /* Widen (or realign) once. */
    if (m->nowned == m->capowned) {
        size_t cap = m->capowned ? m->capowned * 2 : 64;
        float **o = vp__realloc(m->owned, cap * sizeof *o);
        if (!o) { vp__merr(m, VP_ERR_NOMEM, "out of memory"); return NULL; }
        m->owned = o; m->capowned = cap;
    }
    size_t bytes = (size_t)t->numel * sizeof(float);
    float *buf = vp__malloc(bytes ? bytes : 1);
    if (!buf) { vp__merr(m, VP_ERR_NOMEM, "out of memory widening '%s'", name); return NULL; }
    int rc = vp_source_read_as(src, e->idx, VP_F32, buf, bytes);
    if (rc) {
        vp__free(buf);
        vp__merr(m, rc, "%s", vp_source_errmsg(src));
        return NULL;
    }
    vp_source_release(src, e->idx);
    m->owned[m->nowned++] = buf;
    return e->f32 = buf;
}

static const float *weight_v(vp_model *m, int required, int ndim, const int64_t *shape, const char *fmt, va_list ap)
{
    char name[512];
    vname(name, sizeof name, fmt, ap);
    vp_wentry *e = wfind(m, name);
    if (!e) {
        if (required) vp__merr(m, VP_ERR_NOTFOUND, "tensor '%s' is missing", name);
        return NULL;
    }
    return resolve(m, e, name, ndim, shape);
}

const float *vp__weight(vp_model *m, int ndim, const int64_t *shape, const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt);
    const float *p = weight_v(m, 1, ndim, shape, fmt, ap);
    va_end(ap);
    return p;
}

const float *vp__weight_opt(vp_model *m, int ndim, const int64_t *shape, const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt);
    const float *p = weight_v(m, 0, ndim, shape, fmt, ap);
    va_end(ap);
    return p;
}

int vp__load_linear(vp_model *m, vp_linear *l, int64_t n, int64_t k, int bias, const char *fmt, ...)
{
    char pre[448];
    va_list ap; va_start(ap, fmt);
    vname(pre, sizeof pre, fmt, ap);
    va_end(ap);
    const float *w = vp__weight(m, 2, (int64_t[]){n, k}, "%s.weight", pre);
    const float *b = bias ? vp__weight(m, 1, (int64_t[]){n}, "%s.bias", pre) : NULL;
    if (!w || (bias && !b)) return m->errcode ? m->errcode : VP_ERR_MISMATCH;
    l->w = (vp_nn_w){VP_F32, w, n, k, k};
    l->b = b;
    return VP_OK;
}

int vp__load_ln(vp_model *m, vp_ln *l, int64_t n, double eps, const char *fmt, ...)
{
    char pre[448];
    va_list ap; va_start(ap, fmt);
    vname(pre, sizeof pre, fmt, ap);
    va_end(ap);
    l->g = vp__weight(m, 1, (int64_t[]){n}, "%s.weight", pre);
    l->b = vp__weight(m, 1, (int64_t[]){n}, "%s.bias", pre);
    l->n = n;
    l->eps = (float)eps;
    return l->g && l->b ? VP_OK : m->errcode ? m->errcode : VP_ERR_MISMATCH;
}

void vp__linear(const vp_linear *l, float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows)
{
    vp_nn_linear(y, ldy, x, ldx, rows, &l->w, l->b, 0);
}

void vp__ln(const vp_ln *l, float *y, const float *x, int64_t rows)
{
    vp_nn_layer_norm(y, x, rows, l->n, l->g, l->b, l->eps);
}

/* ---- files ----------------------------------------------------------------- */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = vp__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A small regular file's bytes (NUL-terminated), at most limit bytes. */
static char *read_text(vp_model *m, const char *path, const char *shown, size_t limit, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { vp__merr(m, VP_ERR_IO, "%s: %s", shown, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        vp__merr(m, VP_ERR_IO, "%s: not a regular file", shown);
        return NULL;
    }
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        vp__merr(m, VP_ERR_LIMIT, "%s: %lld bytes, more than the %zu allowed", shown, (long long)st.st_size, limit);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = vp__malloc(n + 1);
    if (!buf) { close(fd); vp__merr(m, VP_ERR_NOMEM, "out of memory"); return NULL; }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) { vp__free(buf); vp__merr(m, VP_ERR_IO, "%s: short read", shown); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

static cJSON *read_json(vp_model *m, const char *name)
{
    char *path = join(m->dir, name);
    if (!path) { vp__merr(m, VP_ERR_NOMEM, "out of memory"); return NULL; }
    size_t len;
    char *text = read_text(m, path, name, MAX_CONFIG_BYTES, &len);
    vp__free(path);
    if (!text) return NULL;
    int jrc;
    cJSON *j = vp_json_parse_ex(text, len, &jrc);
    vp__free(text);
    if (!j) vp__merr(m, jrc, "%s: %s", name, jrc == VP_ERR_NOMEM ? "out of memory" : "not valid JSON");
    else if (!cJSON_IsObject(j)) { cJSON_Delete(j); j = NULL; vp__merr(m, VP_ERR_FORMAT, "%s: not a JSON object", name); }
    return j;
}

static int add_file(vp_model *m, const char *name)
{
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return vp__merr(m, VP_ERR_FORMAT, "weight file name '%s' is not a plain file name", name);
    if (m->nsrc >= MAX_SHARDS) return vp__merr(m, VP_ERR_LIMIT, "more than %d weight files", MAX_SHARDS);
    vp_source **s = vp__realloc(m->src, (m->nsrc + 1) * sizeof *s);
    if (!s) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    m->src = s;
    char *path = join(m->dir, name);
    if (!path) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    vp_source *src = NULL;
    int rc = vp_source_open(&src, path, NULL);
    vp__free(path);
    if (rc) {
        vp__merr(m, rc, "%s", src ? vp_source_errmsg(src) : "out of memory");
        vp_source_close(src);
        return rc;
    }
    m->src[m->nsrc++] = src;
    return VP_OK;
}

static int open_weights(vp_model *m)
{
    char *p = join(m->dir, "model.safetensors.index.json");
    if (!p) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    int sharded = is_regular(p);
    vp__free(p);
    if (sharded) {
        cJSON *idx = read_json(m, "model.safetensors.index.json");
        if (!idx) return m->errcode;
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
        int rc = VP_OK;
        if (!cJSON_IsObject(map)) rc = vp__merr(m, VP_ERR_FORMAT, "model.safetensors.index.json: no weight_map object");
        /* The distinct files, in first-mention order. */
        for (const cJSON *it = map ? map->child : NULL; !rc && it; it = it->next) {
            if (!cJSON_IsString(it)) { rc = vp__merr(m, VP_ERR_FORMAT, "model.safetensors.index.json: weight_map['%s'] is not a string", it->string); break; }
            int seen = 0;
            for (const cJSON *q = map->child; q != it && !seen; q = q->next) seen = !strcmp(q->valuestring, it->valuestring);
            if (!seen) rc = add_file(m, it->valuestring);
        }
        cJSON_Delete(idx);
        if (rc) return rc;
    } else {
        static const char *const singles[] = { "model.safetensors", "pytorch_model.bin", NULL };
        int found = 0;
        for (int i = 0; singles[i] && !found; i++) {
            char *path = join(m->dir, singles[i]);
            if (!path) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
            found = is_regular(path);
            vp__free(path);
            if (found) { int rc = add_file(m, singles[i]); if (rc) return rc; }
        }
        if (!found) return vp__merr(m, VP_ERR_NOTFOUND, "no model.safetensors, model.safetensors.index.json or pytorch_model.bin");
    }
    size_t total = 0;
    for (size_t s = 0; s < m->nsrc; s++) total += vp_source_count(m->src[s]);
    m->w = vp__calloc(total ? total : 1, sizeof *m->w);
    if (!m->w) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    for (size_t s = 0; s < m->nsrc; s++)
        for (size_t i = 0; i < vp_source_count(m->src[s]); i++)
            m->w[m->nw++] = (vp_wentry){ vp_source_tensor(m->src[s], i)->name, s, i, NULL };
    qsort(m->w, m->nw, sizeof *m->w, wentry_cmp);
    for (size_t i = 1; i < m->nw; i++)
        if (!strcmp(m->w[i - 1].name, m->w[i].name))
            return vp__merr(m, VP_ERR_FORMAT, "tensor '%s' appears in two weight files", m->w[i].name);
    return VP_OK;
}

/* ---- the model handle ---------------------------------------------------- */
static int vp_model_open__impl(vp_model **out, const char *dir)
{
    vp_model *m = vp__calloc(1, sizeof *m);
    *out = m;
    if (!m) return VP_ERR_NOMEM;
    m->alloc = vp__alloc_get();
    m->dir = vp__strdup(dir ? dir : "");
    if (!m->dir) return VP_ERR_NOMEM;
    if (!dir || !dir[0]) return vp__merr(m, VP_ERR_ARG, "no model directory given");
    struct stat st;
    if (stat(dir, &st)) return vp__merr(m, VP_ERR_IO, "%s", strerror(errno));
    if (!S_ISDIR(st.st_mode)) return vp__merr(m, VP_ERR_ARG, "not a directory (give the folder holding config.json)");
    m->config = read_json(m, "config.json");
    if (!m->config) return m->errcode;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
    if (!cJSON_IsString(mt)) return vp__merr(m, VP_ERR_FORMAT, "config.json: model_type is missing or not a string");
    m->model_type = mt->valuestring;
    for (int i = 0; families[i]; i++)
        if (!strcmp(families[i]->model_type, m->model_type)) m->family = families[i];
    if (!m->family) {
        char names[256] = "";
        for (int i = 0; families[i]; i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, families[i]->model_type, sizeof names - strlen(names) - 1);
        }
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: model_type \"%s\" is not one vitport runs (%s)", m->model_type, names);
    }
    int rc = open_weights(m);
    if (rc) return rc;
    rc = m->family->open(m);
    if (rc && !m->errmsg[0]) vp__merr(m, rc, "%s", vp_strerror(rc));
    if (rc) {
        /* The first failure's code; a half-built model is dropped so that
         * no ctx can run it. */
        rc = m->errcode;
        if (m->family->free && m->impl) m->family->free(m->impl);
        m->impl = NULL;
    }
    return rc;
}

int vp_model_open_ex(vp_model **out, const char *dir, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_model_open__impl(out, dir));
}

int vp_model_open(vp_model **out, const char *dir)
{
    return vp_model_open_ex(out, dir, vp__alloc_current());
}

static void vp_model_close__impl(vp_model *m)
{
    if (!m) return;
    if (m->family && m->family->free && m->impl) m->family->free(m->impl);
    for (size_t i = 0; i < m->nowned; i++) vp__free(m->owned[i]);
    vp__free(m->owned);
    vp__free(m->w);
    for (size_t s = 0; s < m->nsrc; s++) vp_source_close(m->src[s]);
    vp__free(m->src);
    cJSON_Delete(m->config);
    vp__free(m->dir);
    vp__free(m);
}

void vp_model_close(vp_model *m)
{
    VP__WITH_ALLOC_VOID(m ? &m->alloc : vp__alloc_current(), vp_model_close__impl(m));
}

const char *vp_model_errmsg(const vp_model *m) { return m ? m->errmsg : "out of memory"; }
const char *vp_model_type(const vp_model *m) { return m && m->model_type ? m->model_type : ""; }
const char *vp_model_class(const vp_model *m) { return m && m->cls ? m->cls : ""; }
int vp_model_inputs(const vp_model *m) { return m ? m->inputs : 0; }
int vp_model_image_size(const vp_model *m) { return m ? m->image_size : 0; }
int vp_model_max_text_len(const vp_model *m) { return m ? m->max_text_len : 0; }

/* ---- the context ----------------------------------------------------------- */
static int vp_ctx_new__impl(vp_ctx **out, const vp_model *m, int threads)
{
    vp_ctx *c = vp__calloc(1, sizeof *c);   /* with the model's allocator (vp_ctx_new runs in its scope) */
    *out = c;
    if (!c) return VP_ERR_NOMEM;
    c->alloc = vp__alloc_get();
    c->m = m;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    c->threads = threads;
    if (!m || !m->impl) return vp__cerr(c, VP_ERR_ARG, "the model did not open");
    return VP_OK;
}

int vp_ctx_new(vp_ctx **out, const vp_model *m, int threads)
{
    VP__WITH_ALLOC(m ? &m->alloc : vp__alloc_current(), int, vp_ctx_new__impl(out, m, threads));
}

static void vp_ctx_free__impl(vp_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < VP_MAX_OUTPUTS; i++) vp__free(c->outbuf[i]);
    for (int i = 0; i < VP_CTX_SLOTS; i++) vp__free(c->slot[i]);
    vp__free(c);
}

void vp_ctx_free(vp_ctx *c)
{
    VP__WITH_ALLOC_VOID(c ? &c->alloc : vp__alloc_current(), vp_ctx_free__impl(c));
}

const char *vp_ctx_errmsg(const vp_ctx *c) { return c ? c->errmsg : "out of memory"; }

static int vp_ctx_run__impl(vp_ctx *c, const vp_inputs *in)
{
    if (!c || !in) return VP_ERR_ARG;
    c->errmsg[0] = 0;
    c->nout = 0;
    if (!c->m || !c->m->impl) return vp__cerr(c, VP_ERR_ARG, "the model did not open");
    vp_nn_set_threads(c->threads);
    int rc = c->m->family->run(c, in);
    if (rc) c->nout = 0;
    return rc;
}

int vp_ctx_run(vp_ctx *c, const vp_inputs *in)
{
    VP__WITH_ALLOC(c ? &c->alloc : vp__alloc_current(), int, vp_ctx_run__impl(c, in));
}

size_t vp_ctx_output_count(const vp_ctx *c) { return c ? c->nout : 0; }
const vp_output *vp_ctx_output(const vp_ctx *c, size_t i) { return c && i < c->nout ? &c->out[i] : NULL; }
const vp_output *vp_ctx_output_named(const vp_ctx *c, const char *name)
{
    for (size_t i = 0; c && i < c->nout; i++)
        if (!strcmp(c->out[i].name, name)) return &c->out[i];
    return NULL;
}

float *vp__scratch(vp_ctx *c, int slot, size_t n)
{
    if (slot < 0 || slot >= VP_CTX_SLOTS) { vp__cerr(c, VP_ERR_ARG, "scratch slot %d out of range", slot); return NULL; }
    if (n > c->slotcap[slot]) {
        vp__free(c->slot[slot]);
        c->slot[slot] = vp__malloc(n * sizeof(float));
        c->slotcap[slot] = c->slot[slot] ? n : 0;
        if (!c->slot[slot]) { vp__cerr(c, VP_ERR_NOMEM, "out of memory (%zu floats of scratch)", n); return NULL; }
    }
    return c->slot[slot];
}

float *vp__output(vp_ctx *c, const char *name, int ndim, const int64_t *shape)
{
    if (c->nout >= VP_MAX_OUTPUTS) { vp__cerr(c, VP_ERR_LIMIT, "too many outputs"); return NULL; }
    size_t k = c->nout, n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (n > c->outcap[k]) {
        vp__free(c->outbuf[k]);
        c->outbuf[k] = vp__malloc((n ? n : 1) * sizeof(float));
        c->outcap[k] = c->outbuf[k] ? n : 0;
        if (!c->outbuf[k]) { vp__cerr(c, VP_ERR_NOMEM, "out of memory for output %s", name); return NULL; }
    }
    vp_output *o = &c->out[k];
    o->name = name;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
    o->data = c->outbuf[k];
    c->nout++;
    return c->outbuf[k];
}
