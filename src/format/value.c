/* The public, read-only view of the pickled object tree (vitport.h, "The
 * pickled object tree"). Values live in the source's arena (pickle_values.c makes
 * them), so there is nothing to free one by one. */
#include <string.h>

#include "format/pickle.h"

void vp__value_free_all(vp_source *src)
{
    /* the arena owns every value; vp_source_close frees it */
    if (src) src->root = NULL;
}

vp_kind vp_value_kind(const vp_value *v) { return v ? (vp_kind)v->kind : VP_V_NONE; }

static bool is_seq(const vp_value *v)
{
    return v->kind == VP_V_TUPLE || v->kind == VP_V_LIST || v->kind == VP_V_SET;
}

size_t vp_value_len(const vp_value *v)
{
    if (!v) return 0;
    switch (v->kind) {
    case VP_V_STR: case VP_V_BYTES: case VP_V_TUPLE: case VP_V_LIST: case VP_V_SET: case VP_V_DICT:
        return v->len;
    default:
        return 0;
    }
}

const vp_value *vp_value_item(const vp_value *v, size_t i)
{
    if (!v || i >= v->len) return NULL;
    if (is_seq(v)) return v->items[i];
    if (v->kind == VP_V_DICT) return v->items[2 * i + 1];
    return NULL;
}

const vp_value *vp_value_key(const vp_value *v, size_t i)
{
    if (!v || v->kind != VP_V_DICT || i >= v->len) return NULL;
    return v->items[2 * i];
}

const vp_value *vp_value_get(const vp_value *v, const char *key)
{
    if (!v || !key || v->kind != VP_V_DICT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->len; i++) {
        const vp_value *k = v->items[2 * i];
        if (k->kind == VP_V_STR && k->len == n && !memcmp(k->text, key, n)) return v->items[2 * i + 1];
    }
    return NULL;
}

const char *vp_value_str(const vp_value *v)
{
    if (!v) return NULL;
    switch (v->kind) {
    case VP_V_STR: case VP_V_BYTES: case VP_V_OBJECT: case VP_V_OTHER:
        return v->text;
    case VP_V_INT:
        return v->sub == VP_SUB_BIGINT ? v->text : NULL;
    default:
        return NULL;
    }
}

int64_t vp_value_int(const vp_value *v)
{
    if (!v) return 0;
    if (v->kind == VP_V_BOOL || (v->kind == VP_V_INT && v->sub != VP_SUB_BIGINT)) return v->u.i;
    return 0;
}

double vp_value_float(const vp_value *v)
{
    if (!v) return 0;
    if (v->kind == VP_V_FLOAT) return v->u.f;
    if (v->kind == VP_V_BOOL || (v->kind == VP_V_INT && v->sub != VP_SUB_BIGINT)) return (double)v->u.i;
    return 0;
}

/* Only the kinds BUILD gives a state: a tuple of one or two items keeps its
 * items in the state field (pickle_values.c). */
const vp_value *vp_value_state(const vp_value *v)
{
    return v && (v->kind == VP_V_OBJECT || v->kind == VP_V_TENSOR || v->kind == VP_V_DICT) ? v->state : NULL;
}

const vp_value *vp_value_args(const vp_value *v)
{
    return v && (v->kind == VP_V_OBJECT || v->kind == VP_V_OTHER) ? v->args : NULL;
}

long vp_value_tensor(const vp_value *v)
{
    return v && v->kind == VP_V_TENSOR && v->u.t ? v->u.t->index : -1;
}
