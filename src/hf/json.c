/*
 * JSON as Python writes it: the reader and writer shared by the converter
 * (config.json, preprocessor_config.json, the shard index) and the engine
 * (reading config.json). cJSON underneath; this layer adds the int/float
 * distinction Python keeps and json.dumps(indent=2, sort_keys=True) output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "hf/json.h"

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */
cJSON *vp_json_float(double v)
{
    cJSON *n = cJSON_CreateNumber(v);
    if (n) n->type |= VP_JSON_FLOAT_FLAG;
    return n;
}

int vp_json_set(cJSON *obj, const char *key, cJSON *val)
{
    if (!val) return VP_ERR_NOMEM;
    if (!obj || !cJSON_IsObject(obj)) { cJSON_Delete(val); return VP_ERR_ARG; }
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val)) { cJSON_Delete(val); return VP_ERR_NOMEM; }
    } else if (!cJSON_AddItemToObject(obj, key, val)) {
        cJSON_Delete(val);
        return VP_ERR_NOMEM;
    }
    return VP_OK;
}

int vp_json_set_int(cJSON *obj, const char *key, int64_t v) { return vp_json_set(obj, key, cJSON_CreateNumber((double)v)); }
int vp_json_set_float(cJSON *obj, const char *key, double v) { return vp_json_set(obj, key, vp_json_float(v)); }
int vp_json_set_str(cJSON *obj, const char *key, const char *v) { return vp_json_set(obj, key, cJSON_CreateString(v)); }
int vp_json_set_bool(cJSON *obj, const char *key, int v) { return vp_json_set(obj, key, cJSON_CreateBool(v)); }

int vp_json_get_int(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v || !cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= -9.0e15 && d <= 9.0e15) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

/* Number literals of JSON text in document order: 1 = float, 0 = integer. */
static void scan_numbers(const char *s, size_t len, vp_buf *flags)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            char f = 0;
            for (; i < len && strchr("+-0123456789.eE", s[i]); i++)
                if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') f = 1;
            vp__buf_add(flags, &f, 1);
            i--;
        }
    }
}

static void mark_numbers(cJSON *item, const vp_buf *flags, size_t *k)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (*k < flags->n && flags->p[*k]) item->type |= VP_JSON_FLOAT_FLAG;
            (*k)++;
        }
        if (item->child) mark_numbers(item->child, flags, k);
    }
}

cJSON *vp_json_parse_ex(const char *text, size_t len, int *code)
{
    const char *end = NULL;
    size_t failures = vp__alloc_failures();
    int dummy;
    if (!code) code = &dummy;
    *code = VP_OK;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        /* cJSON says NULL for both; the allocator knows which it was */
        *code = vp__alloc_failures() != failures ? VP_ERR_NOMEM : VP_ERR_FORMAT;
        return NULL;
    }
    /* only whitespace may follow */
    for (const char *q = end; q && q < text + len; q++)
        if (!strchr(" \t\r\n", *q) && *q) { cJSON_Delete(root); *code = VP_ERR_FORMAT; return NULL; }
    vp_buf flags = {0};
    scan_numbers(text, len, &flags);
    size_t k = 0;
    if (flags.oom) { vp__buf_free(&flags); cJSON_Delete(root); *code = VP_ERR_NOMEM; return NULL; }
    mark_numbers(root, &flags, &k);
    vp__buf_free(&flags);
    return root;
}

cJSON *vp_json_parse(const char *text, size_t len) { return vp_json_parse_ex(text, len, NULL); }

/* Python's repr() of a float: the shortest digits that read back the same,
 * positional for 1e-4 <= |x| < 1e16, else d.ddde[+-]XX. */
static void py_float(vp_buf *b, double x)
{
    if (isnan(x)) { vp__buf_puts(b, "NaN"); return; }
    if (isinf(x)) { vp__buf_puts(b, x < 0 ? "-Infinity" : "Infinity"); return; }
    if (x == 0) { vp__buf_puts(b, signbit(x) ? "-0.0" : "0.0"); return; }
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp = [-]d.ddde[+-]XX: collect digits and the decimal exponent */
    char digits[32];
    int nd = 0, neg = tmp[0] == '-';
    const char *q = tmp + neg;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < 31) digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int e10 = atoi(q + 1);
    int decpt = e10 + 1;    /* digits d1 d2 ... = 0.d1d2... * 10^decpt */
    if (neg) vp__buf_puts(b, "-");
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            vp__buf_puts(b, "0.");
            for (int i = 0; i < -decpt; i++) vp__buf_puts(b, "0");
            vp__buf_puts(b, digits);
        } else if (decpt >= nd) {
            vp__buf_puts(b, digits);
            for (int i = nd; i < decpt; i++) vp__buf_puts(b, "0");
            vp__buf_puts(b, ".0");
        } else {
            vp__buf_add(b, digits, (size_t)decpt);
            vp__buf_puts(b, ".");
            vp__buf_puts(b, digits + decpt);
        }
    } else {
        vp__buf_add(b, digits, 1);
        if (nd > 1) { vp__buf_puts(b, "."); vp__buf_puts(b, digits + 1); }
        vp__buf_printf(b, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
    }
}

typedef struct { const cJSON *item; size_t pos; } keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->item->string ? x->item->string : "", y->item->string ? y->item->string : "");
    if (c) return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void indent(vp_buf *b, int level)
{
    vp__buf_puts(b, "\n");
    for (int i = 0; i < level; i++) vp__buf_puts(b, "  ");
}

static void dump(vp_buf *b, const cJSON *it, int level)
{
    if (level > 200) { vp__buf_puts(b, "null"); return; }
    if (cJSON_IsNull(it)) vp__buf_puts(b, "null");
    else if (cJSON_IsTrue(it)) vp__buf_puts(b, "true");
    else if (cJSON_IsFalse(it)) vp__buf_puts(b, "false");
    else if (cJSON_IsString(it)) vp__buf_json_str(b, it->valuestring ? it->valuestring : "", true);
    else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (!(it->type & VP_JSON_FLOAT_FLAG) && d == floor(d) && fabs(d) < 9.2e18) vp__buf_printf(b, "%lld", (long long)d);
        else py_float(b, d);
    } else if (cJSON_IsArray(it)) {
        if (!it->child) { vp__buf_puts(b, "[]"); return; }
        vp__buf_puts(b, "[");
        for (const cJSON *c = it->child; c; c = c->next) {
            indent(b, level + 1);
            dump(b, c, level + 1);
            if (c->next) vp__buf_puts(b, ",");
        }
        indent(b, level);
        vp__buf_puts(b, "]");
    } else if (cJSON_IsObject(it)) {
        size_t n = 0;
        for (const cJSON *c = it->child; c; c = c->next) n++;
        if (!n) { vp__buf_puts(b, "{}"); return; }
        keyed *ks = vp__malloc(n * sizeof *ks);
        if (!ks) { b->oom = true; return; }
        n = 0;
        for (const cJSON *c = it->child; c; c = c->next, n++) { ks[n].item = c; ks[n].pos = n; }
        qsort(ks, n, sizeof *ks, keyed_cmp);
        vp__buf_puts(b, "{");
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            /* a repeated key keeps its last value, as json.loads does */
            if (i + 1 < n && !strcmp(ks[i].item->string ? ks[i].item->string : "", ks[i + 1].item->string ? ks[i + 1].item->string : ""))
                continue;
            if (!first) vp__buf_puts(b, ",");
            first = false;
            indent(b, level + 1);
            vp__buf_json_str(b, ks[i].item->string ? ks[i].item->string : "", true);
            vp__buf_puts(b, ": ");
            dump(b, ks[i].item, level + 1);
        }
        vp__free(ks);
        indent(b, level);
        vp__buf_puts(b, "}");
    } else {
        vp__buf_puts(b, "null");
    }
}

char *vp_json_dump(const cJSON *item, size_t *len)
{
    vp_buf b = {0};
    dump(&b, item, 0);
    vp__buf_puts(&b, "\n");
    if (b.oom) { vp__buf_free(&b); return NULL; }
    if (len) *len = b.n;
    return b.p;
}

