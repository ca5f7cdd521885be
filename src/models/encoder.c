/*
 * The pre-norm transformer encoder layer shared by ViT (ViTLayer), CLIP
 * (CLIPEncoderLayer), SigLIP (SiglipEncoderLayer) and CLIPSeg's towers:
 *   h = x + o(attention(q(ln1 x), k(ln1 x), v(ln1 x)))
 *   y = h + fc2(act(fc1(ln2 h)))
 * The attention scale is head_dim^-0.5 in every one of them.
 */
#include <math.h>

#include "models/model.h"

const vp_enc_names vp_enc_names_vit = {
    "layernorm_before", "layernorm_after",
    "attention.attention.query", "attention.attention.key", "attention.attention.value",
    "attention.output.dense", "intermediate.dense", "output.dense"
};

const vp_enc_names vp_enc_names_clip = {
    "layer_norm1", "layer_norm2",
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
    "mlp.fc1", "mlp.fc2"
};

int vp__encoder_load(vp_model *m, vp_encoder *e, const char *prefix, const vp_enc_names *nm, double eps)
{
    if (e->width % e->heads)
        return vp__merr(m, VP_ERR_MISMATCH, "hidden size %lld is not a multiple of num_attention_heads %lld",
                        (long long)e->width, (long long)e->heads);
    e->l = vp__calloc((size_t)e->layers ? (size_t)e->layers : 1, sizeof *e->l);
    if (!e->l) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    int64_t D = e->width, F = e->mlp;
    for (int64_t i = 0; i < e->layers; i++) {
        vp_enc_layer *L = &e->l[i];
        int rc = vp__load_ln(m, &L->ln1, D, eps, "%s%lld.%s", prefix, (long long)i, nm->ln1);
        if (!rc) rc = vp__load_ln(m, &L->ln2, D, eps, "%s%lld.%s", prefix, (long long)i, nm->ln2);
        if (!rc) rc = vp__load_linear(m, &L->q, D, D, 1, "%s%lld.%s", prefix, (long long)i, nm->q);
        if (!rc) rc = vp__load_linear(m, &L->k, D, D, 1, "%s%lld.%s", prefix, (long long)i, nm->k);
        if (!rc) rc = vp__load_linear(m, &L->v, D, D, 1, "%s%lld.%s", prefix, (long long)i, nm->v);
        if (!rc) rc = vp__load_linear(m, &L->o, D, D, 1, "%s%lld.%s", prefix, (long long)i, nm->o);
        if (!rc) rc = vp__load_linear(m, &L->fc1, F, D, 1, "%s%lld.%s", prefix, (long long)i, nm->fc1);
        if (!rc) rc = vp__load_linear(m, &L->fc2, D, F, 1, "%s%lld.%s", prefix, (long long)i, nm->fc2);
        if (rc) return rc;
    }
    return VP_OK;
}

void vp__encoder_free(vp_encoder *e)
{
    if (!e) return;
    vp__free(e->l);
    e->l = NULL;
}

int vp__encoder_reserve(vp_ctx *c, const vp_encoder *e, int64_t B, int64_t L)
{
    size_t rows = (size_t)(B * L), D = (size_t)e->width;
    if (!vp__scratch(c, VP_S_NORM, rows * D) || !vp__scratch(c, VP_S_Q, rows * D) ||
        !vp__scratch(c, VP_S_K, rows * D) || !vp__scratch(c, VP_S_V, rows * D) ||
        !vp__scratch(c, VP_S_CTX, rows * D) || !vp__scratch(c, VP_S_MLP, rows * (size_t)e->mlp) ||
        !vp__scratch(c, VP_S_ATTN, vp_nn_attention_scratch(B, L, L, e->heads)))
        return VP_ERR_NOMEM;
    return VP_OK;
}

void vp__encoder_layer(vp_ctx *c, const vp_encoder *e, int i, float *x, int64_t B, int64_t L, int causal)
{
    const vp_enc_layer *ly = &e->l[i];
    int64_t rows = B * L, D = e->width, F = e->mlp, H = e->heads, dh = D / H;
    float *n = c->slot[VP_S_NORM], *q = c->slot[VP_S_Q], *k = c->slot[VP_S_K], *v = c->slot[VP_S_V];
    float *ctx = c->slot[VP_S_CTX], *h = c->slot[VP_S_MLP];

    vp__ln(&ly->ln1, n, x, rows);
    vp__linear(&ly->q, q, D, n, D, rows);
    vp__linear(&ly->k, k, D, n, D, rows);
    vp__linear(&ly->v, v, D, n, D, rows);
    vp_nn_attention(ctx, D, q, D, k, D, v, D, B, L, L, H, dh, 1.0f / sqrtf((float)dh), causal, c->slot[VP_S_ATTN]);
    vp_nn_linear(x, D, ctx, D, rows, &ly->o.w, ly->o.b, 1);      /* x += o(ctx) */

    vp__ln(&ly->ln2, n, x, rows);
    vp_nn_linear(h, F, n, D, rows, &ly->fc1.w, NULL, 0);
    vp_nn_bias_act(h, F, rows, F, ly->fc1.b, e->act);            /* act(fc1(.)) in one pass */
    vp_nn_linear(x, D, h, F, rows, &ly->fc2.w, ly->fc2.b, 1);    /* x += fc2(act(fc1(.))) */
}

void vp__pos_interpolate(float *out, const float *pos, int64_t D, int64_t g, int64_t gh, int64_t gw, float *tmp)
{
    float *res = tmp + D * g * g;
    /* [g*g, D] -> [D, g, g], resize, -> [gh*gw, D] */
    for (int64_t p = 0; p < g * g; p++)
        for (int64_t d = 0; d < D; d++) tmp[d * g * g + p] = pos[p * D + d];
    vp_nn_resize_bicubic(res, tmp, D, g, g, gh, gw);
    for (int64_t p = 0; p < gh * gw; p++)
        for (int64_t d = 0; d < D; d++) out[p * D + d] = res[d * gh * gw + p];
}
