/*
 * Output layout: the dtype of each output, huggingface_hub's shard split in
 * state_dict order, safetensors' order within a shard, and the shard index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/converter.h"

/* ------------------------------------------------------------------------ */
/* Output vp_layout: dtypes, order, shards                                      */
/* ------------------------------------------------------------------------ */
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
    const vp_wout *x = *(const vp_wout *const *)a, *y = *(const vp_wout *const *)b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    int rx = st_rank(x->dtype), ry = st_rank(y->dtype);
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->o->name, y->o->name);
}

static vp_dtype out_dtype(const vp_plan *p, const vp_out *o)
{
    vp_dtype sd = o->npieces ? vp_source_tensor(p->src, (size_t)o->pieces[0].src)->dtype : VP_F32;
    if (!vp_conv_is_float(sd)) return sd;
    return p->keep_dtype ? sd : p->out_dtype_float;
}

int vp_conv_layout(vp_plan *p, uint64_t max_shard, vp_layout *L)
{
    memset(L, 0, sizeof *L);
    size_t n = p->nexpect;
    vp_conv_named *on = vp__malloc((p->nouts ? p->nouts : 1) * sizeof *on);
    L->w = vp__calloc(n ? n : 1, sizeof *L->w);
    L->order = vp__calloc(n ? n : 1, sizeof *L->order);
    if (!on || !L->w || !L->order) { vp__free(on); return VP_ERR_NOMEM; }
    for (size_t i = 0; i < p->nouts; i++) { on[i].name = p->outs[i].name; on[i].idx = i; }
    qsort(on, p->nouts, sizeof *on, vp_conv_named_cmp);
    /* huggingface_hub's split, in state_dict order: a tensor above the limit
     * becomes a shard of its own at once; otherwise the current shard is
     * closed when the tensor would overflow it. Shards are numbered in the
     * order they are closed. */
    uint64_t cur = 0;
    int next = 0;
    size_t open_from = 0;            /* members of the open shard have shard == -1 */
    bool open_any = false;
    for (size_t i = 0; i < n; i++) {
        vp_conv_named key = {p->expect[i].name, 0};
        vp_conv_named *hit = bsearch(&key, on, p->nouts, sizeof *on, vp_conv_named_cmp);
        if (!hit) { vp__free(on); return VP_ERR_MISMATCH; }
        vp_wout *x = &L->w[i];
        x->o = &p->outs[hit->idx];
        x->dtype = out_dtype(p, x->o);
        x->nbytes = vp_conv_numel(x->o->ndim, x->o->shape) * vp_dtype_size(x->dtype);
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

void vp_conv_shard_name(char *buf, size_t len, int k, int nshards)
{
    if (nshards == 1) snprintf(buf, len, "model.safetensors");
    else snprintf(buf, len, "model-%05d-of-%05d.safetensors", k + 1, nshards);
}

int vp_conv_write_index(const char *dir, const vp_layout *L, char *err, size_t errlen)
{
    cJSON *idx = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *map = cJSON_CreateObject();
    int rc = (idx && meta && map) ? VP_OK : VP_ERR_NOMEM;
    if (rc == VP_OK) rc = vp_json_set_int(meta, "total_size", (int64_t)L->total);
    /* Appended without vp_json_set's lookup (n^2 over many tensors): the
     * strict check has made the names unique. */
    for (size_t i = 0; rc == VP_OK && i < L->n; i++) {
        char nm[64];
        vp_conv_shard_name(nm, sizeof nm, L->w[i].shard, L->nshards);
        cJSON *v = cJSON_CreateString(nm);
        if (!v || !cJSON_AddItemToObject(map, L->w[i].o->name, v)) { cJSON_Delete(v); rc = VP_ERR_NOMEM; }
    }
    if (rc == VP_OK) { rc = vp_json_set(idx, "metadata", meta); meta = NULL; }
    if (rc == VP_OK) { rc = vp_json_set(idx, "weight_map", map); map = NULL; }
    if (rc == VP_OK) rc = vp_conv_write_json_file(dir, "model.safetensors.index.json", idx, err, errlen);
    else snprintf(err, errlen, "out of memory");
    cJSON_Delete(idx);
    cJSON_Delete(meta);
    cJSON_Delete(map);
    return rc;
}

void vp_conv_layout_free(vp_layout *L)
{
    vp__free(L->w);
    vp__free(L->order);
    L->w = NULL;
    L->order = NULL;
}
