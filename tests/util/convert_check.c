/* tests/convert_check.h: comparing a converted folder with expected tensors
 * and JSON, and the conformance cases' options. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../convert_check.h"

/* ---- tensors ------------------------------------------------------------ */
/* Every tensor of `want` (an open source) must be in one of the files
 * `have[]` with the same dtype, shape and bytes; no other tensor may be there.
 * Each file must carry {"format": "pt"}. Returns the number of problems. */
int cc_compare_tensors(const char *what, vp_source *want, const char *const *have, int nhave)
{
    int bad = 0;
    size_t seen = 0;
    for (int f = 0; f < nhave; f++) {
        vp_source *h = NULL;
        if (vp_source_open(&h, have[f], NULL)) {
            CHECKF(0, "%s: cannot read %s: %s", what, have[f], vp_source_errmsg(h));
            vp_source_close(h);
            bad++;
            continue;
        }
        const char *fmt = vp_source_metadata(h, "format");
        CHECKF(fmt && !strcmp(fmt, "pt"), "%s: %s lacks {\"format\": \"pt\"} metadata", what, have[f]);
        for (size_t i = 0; i < vp_source_count(h); i++) {
            const vp_tensor *t = vp_source_tensor(h, i);
            long j = vp_source_find(want, t->name);
            if (j < 0) { CHECKF(0, "%s: unexpected tensor %s", what, t->name); bad++; continue; }
            seen++;
            const vp_tensor *e = vp_source_tensor(want, (size_t)j);
            if (t->dtype != e->dtype || t->ndim != e->ndim || memcmp(t->shape, e->shape, sizeof t->shape[0] * (size_t)t->ndim)) {
                CHECKF(0, "%s: %s has dtype %s ndim %d, expected %s ndim %d (or another shape)", what, t->name,
                       vp_dtype_name(t->dtype), t->ndim, vp_dtype_name(e->dtype), e->ndim);
                bad++;
                continue;
            }
            size_t n = (size_t)t->nbytes;
            uint8_t *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
            int ra = vp_source_read(h, i, a, n), rb = vp_source_read(want, (size_t)j, b, n);
            if (ra || rb || memcmp(a, b, n)) { CHECKF(0, "%s: %s differs from the expected bytes", what, t->name); bad++; }
            free(a);
            free(b);
        }
        vp_source_close(h);
    }
    CHECKF(seen == vp_source_count(want), "%s: %zu of %zu expected tensors written", what, seen, vp_source_count(want));
    if (!bad) t_pass++;
    return bad + (seen != vp_source_count(want));
}

/* ---- JSON values ---------------------------------------------------------- */
/* Every key of `sub` is in `full` with an equal value. */
static bool json_covers(const cJSON *full, const cJSON *sub)
{
    for (const cJSON *c = sub->child; c; c = c->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(full, c->string);
        if (!o || !cc_json_equal(o, c)) return false;
    }
    return true;
}

bool cc_json_equal(const cJSON *a, const cJSON *b)
{
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return a->valuedouble == b->valuedouble;
    if (cJSON_IsBool(a) || cJSON_IsBool(b)) return cJSON_IsBool(a) && cJSON_IsBool(b) && cJSON_IsTrue(a) == cJSON_IsTrue(b);
    if ((a->type & 0xff) != (b->type & 0xff)) return false;
    if (cJSON_IsString(a)) return !strcmp(a->valuestring, b->valuestring);
    if (cJSON_IsArray(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
        for (const cJSON *x = a->child, *y = b->child; x; x = x->next, y = y->next)
            if (!cc_json_equal(x, y)) return false;
        return true;
    }
    if (cJSON_IsObject(a))
        return cJSON_GetArraySize(a) == cJSON_GetArraySize(b) && json_covers(a, b) && json_covers(b, a);
    return true;
}

/* Keys of ref (recursively into objects) must be in ours with equal values,
 * except `skip`; eps_ok accepts layer_norm_eps 1e-6 where ref has 1e-12.
 * extra_ok: keys only in ours are fine. Returns the number of differences. */
int cc_json_check(const char *what, const cJSON *ours, const cJSON *ref, const char *path, bool eps_ok, bool extra_ok)
{
    int bad = 0;
    for (const cJSON *r = ref->child; r; r = r->next) {
        if (!strcmp(r->string, "transformers_version")) continue;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ours, r->string);
        if (!o) { CHECKF(0, "%s: %s%s missing", what, path, r->string); bad++; continue; }
        if (cJSON_IsObject(r) && cJSON_IsObject(o) && strcmp(r->string, "id2label") && strcmp(r->string, "label2id")) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s.", path, r->string);
            bad += cc_json_check(what, o, r, sub, eps_ok, extra_ok);
            continue;
        }
        if (eps_ok && !strcmp(r->string, "layer_norm_eps") && cJSON_IsNumber(r) && r->valuedouble == 1e-12 &&
            cJSON_IsNumber(o) && o->valuedouble == 1e-6)
            continue;
        if (!cc_json_equal(o, r)) {
            char *a = cJSON_PrintUnformatted(o), *b = cJSON_PrintUnformatted(r);
            CHECKF(0, "%s: %s%s = %.200s, expected %.200s", what, path, r->string, a ? a : "?", b ? b : "?");
            free(a);
            free(b);
            bad++;
        }
    }
    if (!extra_ok)
        for (const cJSON *o = ours->child; o; o = o->next)
            if (strcmp(o->string, "transformers_version") && !cJSON_GetObjectItemCaseSensitive(ref, o->string)) {
                CHECKF(0, "%s: %s%s not expected", what, path, o->string);
                bad++;
            }
    if (!bad) t_pass++;
    return bad;
}

/* ---- conformance cases ---------------------------------------------------- */
/* case.json params -> --set: the sizes no tensor shows, per family. */
int cc_params_to_sets(const cJSON *c, char sets[][128], int max)
{
    const char *family = cJSON_GetObjectItem(c, "family") ? cJSON_GetObjectItem(c, "family")->valuestring : "";
    const cJSON *params = cJSON_GetObjectItem(c, "params");
    int n = 0;
    if (!params) return 0;
    static const struct { const char *path[2]; const char *key; } MAP[] = {
        {{"heads", NULL}, "num_attention_heads"},                          /* timm, dino */
        {{"vision", "heads"}, "vision_config.num_attention_heads"},        /* siglip */
        {{"text", "heads"}, "text_config.num_attention_heads"},
        {{"vheads", NULL}, "vision_config.num_attention_heads"},           /* clip, clipseg if given */
        {{"theads", NULL}, "text_config.num_attention_heads"},
        {{"decoder_heads", NULL}, "decoder_num_attention_heads"},          /* clipseg if given */
    };
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0] && n < max; i++) {
        const cJSON *v = cJSON_GetObjectItem(params, MAP[i].path[0]);
        if (v && MAP[i].path[1]) v = cJSON_IsObject(v) ? cJSON_GetObjectItem(v, MAP[i].path[1]) : NULL;
        if (!v || !cJSON_IsNumber(v)) continue;
        /* the top-level key only means the model's own heads for single-tower families */
        if (!strcmp(MAP[i].key, "num_attention_heads") && strcmp(family, "timm") && strcmp(family, "dino")) continue;
        snprintf(sets[n++], 128, "%s=%d", MAP[i].key, v->valueint);
    }
    return n;
}

/* converter_hints: key -> --key, timm_name -> --model-name, config fields -> --set. */
int cc_hints_to_opts(const cJSON *c, vp_convert_opts *o, const char **key, char sets[][128], int n, int max)
{
    const cJSON *h = cJSON_GetObjectItem(c, "converter_hints");
    for (const cJSON *e = h ? h->child : NULL; e && n < max; e = e->next) {
        if (!strcmp(e->string, "key") && cJSON_IsString(e)) *key = e->valuestring;
        else if (!strcmp(e->string, "timm_name") && cJSON_IsString(e)) o->model_name = e->valuestring;
        else if (!strcmp(e->string, "base_model")) continue;   /* the tensors tell */
        else {
            char *v = cJSON_PrintUnformatted(e);
            snprintf(sets[n++], 128, "%s=%s", e->string, v ? v : "null");
            free(v);
        }
    }
    return n;
}

