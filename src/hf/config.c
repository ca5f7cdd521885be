/*
 * config.json fields with their class defaults, --config merging, --set,
 * and the head-count check (see config.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/util.h"
#include "hf/config.h"
#include "hf/json.h"

#define MAX_CONFIG_FILE ((size_t)64 << 20)

/* ---- fields and defaults ------------------------------------------------- */
cJSON *vp_hf_child(cJSON *parent, const char *key)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (c) return cJSON_IsObject(c) ? c : NULL;
    c = cJSON_CreateObject();
    if (!c || vp_json_set(parent, key, c) != VP_OK) return NULL;
    return c;
}

static const vp_hf_default *find_default(const vp_hf_default *defs, const char *key)
{
    for (; key && defs && defs->key; defs++)
        if (!strcmp(defs->key, key)) return defs;
    return NULL;
}

int vp_hf_get_int(const cJSON *cfg, const char *sub, const char *key, const vp_hf_default *defs, int64_t *out,
                  char *err, size_t errlen)
{
    const cJSON *o = sub ? cJSON_GetObjectItemCaseSensitive(cfg, sub) : cfg;
    /* a sub-config given as something else (--set text_config=[1]) would
     * otherwise read as all defaults, and be written as it is */
    if (o && !cJSON_IsObject(o)) return vp__errf(err, errlen, VP_ERR_ARG, "config field %s must be an object", sub);
    if (o && cJSON_GetObjectItemCaseSensitive(o, key)) {
        if (!vp_json_get_int(o, key, out))
            return vp__errf(err, errlen, VP_ERR_ARG, "config field %s%s%s is not an integer", sub ? sub : "", sub ? "." : "", key);
        return VP_OK;
    }
    const vp_hf_default *d = find_default(defs, key);
    if (d && !d->is_str) { *out = (int64_t)d->num; return VP_OK; }
    return vp__errf(err, errlen, VP_ERR_NOTFOUND, "config field %s%s%s is missing", sub ? sub : "", sub ? "." : "", key);
}

void vp_hf_prune(cJSON *o, const vp_hf_default *defs)
{
    cJSON *it = cJSON_IsObject(o) ? o->child : NULL;   /* an array's items have no key */
    while (it) {
        cJSON *next = it->next;
        const vp_hf_default *d = find_default(defs, it->string);
        int same = d && (d->is_str ? cJSON_IsString(it) && !strcmp(it->valuestring, d->str)
                                   : cJSON_IsNumber(it) && it->valuedouble == d->num);
        if (same) cJSON_Delete(cJSON_DetachItemViaPointer(o, it));
        it = next;
    }
}

cJSON *vp_hf_floats(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *f = vp_json_float(v[i]);
        if (!f || !cJSON_AddItemToArray(a, f)) { cJSON_Delete(f); cJSON_Delete(a); return NULL; }
    }
    return a;
}

cJSON *vp_hf_hw(int64_t h, int64_t w)
{
    cJSON *o = cJSON_CreateObject();
    if (o && (vp_json_set_int(o, "height", h) || vp_json_set_int(o, "width", w))) { cJSON_Delete(o); o = NULL; }
    return o;
}

/* ---- --config and --set --------------------------------------------------- */
int vp_hf_load(const char *path, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t len;
    char *text = NULL;
    int rc = vp__read_file(path, MAX_CONFIG_FILE, &text, &len, err, errlen);
    if (rc) return rc;
    /* cJSON would cut a key or a string at \u0000 ({"a\u0000b": 1} would
     * set "a"): refuse it rather than write something else */
    if (vp__json_has_nul_escape(text, len)) {
        vp__free(text);
        return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: a key or string holds \\u0000 (a NUL character)", path);
    }
    cJSON *cfg = vp_json_parse(text, len);
    vp__free(text);
    if (!cfg || !cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = cfg;
    return VP_OK;
}

/* Merge src's members into dst: nested *_config objects merge, the rest replace. */
int vp_hf_merge(cJSON *dst, const cJSON *src)
{
    for (const cJSON *c = src->child; c; c = c->next) {
        if (!c->string) continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, c->string);
        size_t kl = strlen(c->string);
        if (d && cJSON_IsObject(d) && cJSON_IsObject(c) && kl >= 7 && !strcmp(c->string + kl - 7, "_config")) {
            int rc = vp_hf_merge(d, c);
            if (rc) return rc;
            continue;
        }
        int rc = vp_json_set(dst, c->string, cJSON_Duplicate(c, 1));
        if (rc) return rc;
    }
    return VP_OK;
}

int vp_hf_set(cJSON *cfg, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return vp__errf(err, errlen, VP_ERR_ARG, "--set needs KEY=VALUE, got '%s'", arg);
    size_t klen = (size_t)(eq - arg);
    if (klen > 1024) return vp__errf(err, errlen, VP_ERR_ARG, "--set: key too long");
    char key[1025];
    memcpy(key, arg, klen);
    key[klen] = 0;
    cJSON *obj = cfg;
    char *part = key;
    for (;;) {
        char *dot = strchr(part, '.');
        if (dot) *dot = 0;
        if (!*part) return vp__errf(err, errlen, VP_ERR_ARG, "--set: empty component in key '%.*s'", (int)klen, arg);
        if (!dot) break;
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!child) {
            child = cJSON_CreateObject();
            if (vp_json_set(obj, part, child)) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
        } else if (!cJSON_IsObject(child)) {
            return vp__errf(err, errlen, VP_ERR_ARG, "--set %.*s: '%s' is not an object in the config", (int)klen, arg, part);
        }
        obj = child;
        part = dot + 1;
    }
    const char *val = eq + 1;
    if (vp__json_has_nul_escape(val, strlen(val)))
        return vp__errf(err, errlen, VP_ERR_ARG, "--set %.*s: the value holds \\u0000 (a NUL character)", (int)klen, arg);
    cJSON *v = vp_json_parse(val, strlen(val));
    if (!v) v = cJSON_CreateString(val);
    if (vp_json_set(obj, part, v)) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    return VP_OK;
}

/* Heads must be positive integers dividing their width, wherever they sit. */
static int check_heads(const cJSON *o, const char *path, char *err, size_t errlen)
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
            return vp__errf(err, errlen, VP_ERR_ARG, "%s%s must be a positive integer", path, pairs[k][0]);
        if (vp_json_get_int(o, pairs[k][1], &width) && width % heads)
            return vp__errf(err, errlen, VP_ERR_ARG, "%s%s=%lld does not divide %s%s=%lld", path, pairs[k][0],
                                (long long)heads, path, pairs[k][1], (long long)width);
    }
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!cJSON_IsObject(c) || !c->string) continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s.", path, c->string);
        int rc = check_heads(c, sub, err, errlen);
        if (rc) return rc;
    }
    return VP_OK;
}

int vp_hf_check_heads(const cJSON *cfg, char *err, size_t errlen)
{
    return check_heads(cfg, "", err, errlen);
}

int vp_hf_check_labels(const cJSON *cfg, char *err, size_t errlen)
{
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "num_labels")) return VP_OK;
    int64_t n;
    if (!vp_json_get_int(cfg, "num_labels", &n) || n < 0)
        return vp__errf(err, errlen, VP_ERR_ARG, "num_labels must be a non-negative integer");
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(cfg, "id2label");
    if (cJSON_IsObject(id2) && cJSON_GetArraySize(id2) != n)
        return vp__errf(err, errlen, VP_ERR_MISMATCH, "num_labels=%lld contradicts id2label, which has %d entries (the classifier's classes)",
                    (long long)n, cJSON_GetArraySize(id2));
    return VP_OK;
}

/* ---- typed reads with the class defaults (the engine's config reading) -- */
const vp_hf_default *vp_hf_find_default(const vp_hf_default *defs, const char *key)
{
    for (; defs && defs->key; defs++)
        if (!strcmp(defs->key, key)) return defs;
    return NULL;
}

int vp_hf_read_float(const cJSON *obj, const char *key, const vp_hf_default *defs, double *out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsNumber(it)) return VP_ERR_FORMAT;
        *out = it->valuedouble;
        return VP_OK;
    }
    const vp_hf_default *d = vp_hf_find_default(defs, key);
    if (!d || d->is_str) return VP_ERR_NOTFOUND;
    *out = d->num;
    return VP_OK;
}

int vp_hf_read_int(const cJSON *obj, const char *key, const vp_hf_default *defs, int64_t *out)
{
    double v;
    int rc = vp_hf_read_float(obj, key, defs, &v);
    if (rc) return rc;
    if (!(v == floor(v)) || fabs(v) > 9007199254740992.0) return VP_ERR_FORMAT;
    *out = (int64_t)v;
    return VP_OK;
}

int vp_hf_read_str(const cJSON *obj, const char *key, const vp_hf_default *defs, const char **out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it)) return VP_ERR_FORMAT;
        *out = it->valuestring;
        return VP_OK;
    }
    const vp_hf_default *d = vp_hf_find_default(defs, key);
    if (!d || !d->is_str) return VP_ERR_NOTFOUND;
    *out = d->str;
    return VP_OK;
}

int vp_hf_read_bool(const cJSON *obj, const char *key, int dflt, int *out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!it || cJSON_IsNull(it)) { *out = dflt; return VP_OK; }
    if (!cJSON_IsBool(it)) return VP_ERR_FORMAT;
    *out = cJSON_IsTrue(it);
    return VP_OK;
}
