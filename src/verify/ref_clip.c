/*
 * OpenAI CLIP (ViT) from its state dict or TorchScript archive, as
 * clip/model.py runs it:
 *   visual: x = conv1(img) (no bias), flattened; x = cat(class_embedding, x)
 *           + positional_embedding; ln_pre; transformer; ln_post(x[:, 0]) @ proj
 *   text:   x = token_embedding[ids] + positional_embedding; transformer with
 *           the causal mask; ln_final; x[arange, argmax(ids)] @ text_projection
 *   ResidualAttentionBlock: x = x + out_proj(MHA(in_proj(ln_1(x))))  (in_proj
 *           one fused product, columns [q | k | v]); x = x + c_proj(QuickGELU(c_fc(ln_2(x))))
 *   CLIP.forward: features normalised; logits_per_image = exp(logit_scale) * img @ txt^T
 * LayerNorm eps 1e-5 (nn.LayerNorm's default; fp16 archives compute it in
 * f32, as does everything here). Heads: width / 64 as OpenAI builds them,
 * unless the caller says otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "verify/ref.h"

#define CLIP_EPS 1e-5f

int vp__ref_clip_sizes(vp_ref *r, const char *pre, vp_ref_clip *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->pre, sizeof c->pre, "%s%s", r->pre ? r->pre : "", pre);
    const char *save = r->pre;
    r->pre = c->pre;
    const vp_tensor *conv = vp__ref_info(r, "visual.conv1.weight"), *vpos = vp__ref_info(r, "visual.positional_embedding");
    const vp_tensor *proj = vp__ref_info(r, "visual.proj"), *tok = vp__ref_info(r, "token_embedding.weight");
    const vp_tensor *tpos = vp__ref_info(r, "positional_embedding"), *tproj = vp__ref_info(r, "text_projection");
    int ok = conv && conv->ndim == 4 && vpos && vpos->ndim == 2 && proj && proj->ndim == 2 &&
             tok && tok->ndim == 2 && tpos && tpos->ndim == 2 && tproj && tproj->ndim == 2;
    if (ok) {
        c->vwidth = conv->shape[0];
        c->channels = conv->shape[1];
        c->patch = conv->shape[2];
        c->grid = (int64_t)llround(sqrt((double)(vpos->shape[0] - 1)));
        c->embed = proj->shape[1];
        c->vlayers = vp__ref_count(r, "visual.transformer.resblocks.%lld.attn.in_proj_weight");
        c->vocab = tok->shape[0];
        c->twidth = tok->shape[1];
        c->ctx = tpos->shape[0];
        c->tlayers = vp__ref_count(r, "transformer.resblocks.%lld.attn.in_proj_weight");
        c->vheads = c->vwidth / 64 > 0 ? c->vwidth / 64 : 1;
        c->theads = c->twidth / 64 > 0 ? c->twidth / 64 : 1;
        ok = c->grid > 0 && c->grid * c->grid + 1 == vpos->shape[0] && tproj->shape[1] == c->embed;
    }
    r->pre = save;
    if (!ok)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: OpenAI CLIP tensors (%svisual.conv1.weight, visual.positional_embedding, "
                            "visual.proj, token_embedding.weight, positional_embedding, text_projection) are missing or "
                            "misshapen", c->pre);
    return VP_OK;
}

/* The residual attention blocks `prefix`N of one tower on x [B*L, W]. */
static int resblocks(vp_ref *r, const char *prefix, float *x, int64_t B, int64_t L, int64_t W, int64_t heads,
                     int64_t layers, int causal, const int64_t *extract, int nextract, float **acts)
{
    if (heads <= 0 || W % heads)
        return vp__ref_fail(r, VP_ERR_ARG, "width %lld is not a multiple of %lld heads", (long long)W, (long long)heads);
    int64_t rows = B * L, dh = W / heads;
    const vp_tensor *fc = vp__ref_info(r, "%s0.mlp.c_fc.weight", prefix);
    int64_t F = fc && fc->ndim == 2 ? fc->shape[0] : 4 * W;
    float *n = vp__ref_buf(r, rows * W), *qkv = vp__ref_buf(r, rows * 3 * W), *ctx = vp__ref_buf(r, rows * W);
    float *h = vp__ref_buf(r, rows * F), *att = vp__ref_buf(r, (int64_t)vp_nn_attention_scratch(1, L, L, heads));
    if (r->err[0]) return VP_ERR_NOMEM;
    for (int64_t i = 0; i < layers; i++) {
        size_t mark = vp__ref_mark(r);
        long long I = (long long)i;
        const float *g1 = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.ln_1.weight", prefix, I);
        const float *b1 = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.ln_1.bias", prefix, I);
        const float *wi = vp__ref_get(r, 2, (int64_t[]){3 * W, W}, "%s%lld.attn.in_proj_weight", prefix, I);
        const float *bi = vp__ref_get(r, 1, (int64_t[]){3 * W}, "%s%lld.attn.in_proj_bias", prefix, I);
        const float *wo = vp__ref_get(r, 2, (int64_t[]){W, W}, "%s%lld.attn.out_proj.weight", prefix, I);
        const float *bo = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.attn.out_proj.bias", prefix, I);
        const float *g2 = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.ln_2.weight", prefix, I);
        const float *b2 = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.ln_2.bias", prefix, I);
        const float *w1 = vp__ref_get(r, 2, (int64_t[]){F, W}, "%s%lld.mlp.c_fc.weight", prefix, I);
        const float *c1 = vp__ref_get(r, 1, (int64_t[]){F}, "%s%lld.mlp.c_fc.bias", prefix, I);
        const float *w2 = vp__ref_get(r, 2, (int64_t[]){W, F}, "%s%lld.mlp.c_proj.weight", prefix, I);
        const float *c2 = vp__ref_get(r, 1, (int64_t[]){W}, "%s%lld.mlp.c_proj.bias", prefix, I);
        if (r->err[0]) return VP_ERR_MISMATCH;
        vp_nn_layer_norm(n, x, rows, W, g1, b1, CLIP_EPS);
        vp__ref_linear(qkv, n, rows, wi, bi, 3 * W, W);
        for (int64_t b = 0; b < B; b++) {
            const float *q = qkv + b * L * 3 * W;
            vp_nn_attention(ctx + b * L * W, W, q, 3 * W, q + W, 3 * W, q + 2 * W, 3 * W, 1, L, L, heads, dh,
                            1.0f / sqrtf((float)dh), causal, att);
        }
        vp__ref_linear(n, ctx, rows, wo, bo, W, W);
        vp_nn_add(x, n, (size_t)(rows * W));
        vp_nn_layer_norm(n, x, rows, W, g2, b2, CLIP_EPS);
        vp__ref_linear(h, n, rows, w1, c1, F, W);
        vp_nn_act(h, (size_t)(rows * F), VP_ACT_QUICK_GELU);
        vp__ref_linear(n, h, rows, w2, c2, W, F);
        vp_nn_add(x, n, (size_t)(rows * W));
        for (int j = 0; acts && j < nextract; j++)
            if (extract[j] == i) memcpy(acts[j], x, (size_t)(rows * W) * sizeof *x);
        vp__ref_release(r, mark);
    }
    return VP_OK;
}

int vp__ref_clip_visual(vp_ref *r, const vp_ref_clip *c, const vp_ref_inputs *in, float *pooled,
                        const int64_t *extract, int nextract, float **acts)
{
    const char *save = r->pre;
    r->pre = c->pre;
    int rc = VP_OK;
    int64_t B = in->batch, W = c->vwidth, p = c->patch, Hh = in->height, Ww = in->width, C = c->channels;
    int64_t gh = Hh / p, gw = Ww / p, L = 1 + gh * gw, rows = B * L;
    if (!in->pixel_values) { rc = vp__ref_fail(r, VP_ERR_ARG, "the CLIP image tower needs pixel_values"); goto out; }
    if ((in->channels > 0 ? in->channels : 3) != C) {
        rc = vp__ref_fail(r, VP_ERR_ARG, "source: visual.conv1 takes %lld channels, pixel_values has %lld", (long long)C,
                          (long long)(in->channels > 0 ? in->channels : 3));
        goto out;
    }
    if (gh != c->grid || gw != c->grid) {
        rc = vp__ref_fail(r, VP_ERR_ARG, "source: visual.positional_embedding is for a %lldx%lld grid, a %lldx%lld image gives %lldx%lld",
                          (long long)c->grid, (long long)c->grid, (long long)Hh, (long long)Ww, (long long)gh, (long long)gw);
        goto out;
    }
    const float *conv = vp__ref_get(r, 4, (int64_t[]){W, C, p, p}, "visual.conv1.weight");
    const float *cls = vp__ref_get(r, 1, (int64_t[]){W}, "visual.class_embedding");
    const float *pos = vp__ref_get(r, 2, (int64_t[]){L, W}, "visual.positional_embedding");
    const float *gp = vp__ref_get(r, 1, (int64_t[]){W}, "visual.ln_pre.weight");
    const float *bp = vp__ref_get(r, 1, (int64_t[]){W}, "visual.ln_pre.bias");
    const float *gq = vp__ref_get(r, 1, (int64_t[]){W}, "visual.ln_post.weight");
    const float *bq = vp__ref_get(r, 1, (int64_t[]){W}, "visual.ln_post.bias");
    const float *proj = vp__ref_get(r, 2, (int64_t[]){W, c->embed}, "visual.proj");
    float *x = vp__ref_buf(r, rows * W), *cols = vp__ref_buf(r, (int64_t)vp_nn_patch_embed_scratch(C, Hh, Ww, p));
    float *tok = vp__ref_buf(r, B * W);
    if (r->err[0]) { rc = VP_ERR_MISMATCH; goto out; }
    for (int64_t b = 0; b < B; b++) {
        float *xb = x + b * L * W;
        vp_nn_patch_embed(xb + W, W, in->pixel_values + b * C * Hh * Ww, 1, C, Hh, Ww, conv, NULL, p, W, cols);
        memcpy(xb, cls, (size_t)W * sizeof *xb);
        vp_nn_add(xb, pos, (size_t)(L * W));
    }
    vp_nn_layer_norm(x, x, rows, W, gp, bp, CLIP_EPS);
    rc = resblocks(r, "visual.transformer.resblocks.", x, B, L, W, c->vheads, c->vlayers, 0, extract, nextract, acts);
    if (rc) goto out;
    for (int64_t b = 0; b < B; b++) memcpy(tok + b * W, x + b * L * W, (size_t)W * sizeof *tok);
    vp_nn_layer_norm(tok, tok, B, W, gq, bq, CLIP_EPS);
    vp__ref_matmul(pooled, tok, B, proj, NULL, c->embed, W);
out:
    r->pre = save;
    return rc;
}

int vp__ref_clip_text(vp_ref *r, const vp_ref_clip *c, const vp_ref_inputs *in, float *feat)
{
    const char *save = r->pre;
    r->pre = c->pre;
    int rc = VP_OK;
    int64_t B = in->text_batch, L = in->text_len, W = c->twidth, rows = B * L;
    if (!in->input_ids) { rc = vp__ref_fail(r, VP_ERR_ARG, "the CLIP text tower needs input_ids"); goto out; }
    if (L > c->ctx) {
        rc = vp__ref_fail(r, VP_ERR_ARG, "input_ids has %lld positions, the source's positional_embedding %lld",
                          (long long)L, (long long)c->ctx);
        goto out;
    }
    const float *emb = vp__ref_get(r, 2, (int64_t[]){c->vocab, W}, "token_embedding.weight");
    const float *pos = vp__ref_get(r, 2, (int64_t[]){c->ctx, W}, "positional_embedding");
    const float *gf = vp__ref_get(r, 1, (int64_t[]){W}, "ln_final.weight");
    const float *bf = vp__ref_get(r, 1, (int64_t[]){W}, "ln_final.bias");
    const float *proj = vp__ref_get(r, 2, (int64_t[]){W, c->embed}, "text_projection");
    float *x = vp__ref_buf(r, rows * W), *tok = vp__ref_buf(r, B * W);
    if (r->err[0]) { rc = VP_ERR_MISMATCH; goto out; }
    for (int64_t i = 0; i < rows; i++) {
        int64_t id = in->input_ids[i];
        if (id < 0 || id >= c->vocab) {
            rc = vp__ref_fail(r, VP_ERR_ARG, "input_ids holds %lld, outside the vocabulary of %lld", (long long)id, (long long)c->vocab);
            goto out;
        }
        memcpy(x + i * W, emb + id * W, (size_t)W * sizeof *x);
        vp_nn_add(x + i * W, pos + (i % L) * W, (size_t)W);
    }
    rc = resblocks(r, "transformer.resblocks.", x, B, L, W, c->theads, c->tlayers, 1, NULL, 0, NULL);
    if (rc) goto out;
    for (int64_t b = 0; b < B; b++) {
        int64_t best = 0;   /* argmax: the first largest id (the EOT token, highest in OpenAI's vocabulary) */
        for (int64_t j = 1; j < L; j++) if (in->input_ids[b * L + j] > in->input_ids[b * L + best]) best = j;
        memcpy(tok + b * W, x + (b * L + best) * W, (size_t)W * sizeof *tok);
    }
    vp_nn_layer_norm(tok, tok, B, W, gf, bf, CLIP_EPS);
    vp__ref_matmul(feat, tok, B, proj, NULL, c->embed, W);
out:
    r->pre = save;
    return rc;
}

int vp__ref_clip_info_at(vp_ref *r, const char *pre, vp_ref_info *info)
{
    vp_ref_clip c;
    int rc = vp__ref_clip_sizes(r, pre, &c);
    if (rc) return rc;
    info->image_size = c.grid * c.patch;
    info->patch = c.patch;
    info->channels = c.channels;
    info->text_len = c.ctx;
    info->vocab = c.vocab;
    info->takes_pixels = info->takes_ids = 1;
    return VP_OK;
}

int vp__ref_clip_info(vp_ref *r, vp_ref_info *info) { return vp__ref_clip_info_at(r, "", info); }

int vp__ref_clip_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in)
{
    vp_ref_clip c;
    int rc = vp__ref_clip_sizes(r, "", &c);
    if (rc) return rc;
    if (hp->heads > 0) c.vheads = hp->heads;
    if (hp->text_heads > 0) c.theads = hp->text_heads;
    if (!in->pixel_values || !in->input_ids) return vp__ref_fail(r, VP_ERR_ARG, "CLIP needs pixel_values and input_ids");
    int64_t B = in->batch, T = in->text_batch, E = c.embed;
    const float *ls = vp__ref_get(r, 0, NULL, "logit_scale");
    float *img = vp__ref_add_out(r, "image_embeds", 2, (int64_t[]){B, E});
    float *txt = vp__ref_add_out(r, "text_embeds", 2, (int64_t[]){T, E});
    float *lpi = vp__ref_add_out(r, "logits_per_image", 2, (int64_t[]){B, T});
    float *lpt = vp__ref_add_out(r, "logits_per_text", 2, (int64_t[]){T, B});
    if (r->err[0]) return VP_ERR_MISMATCH;
    rc = vp__ref_clip_visual(r, &c, in, img, NULL, 0, NULL);
    if (!rc) rc = vp__ref_clip_text(r, &c, in, txt);
    if (rc) return rc;
    vp_nn_l2_normalize(img, B, E);
    vp_nn_l2_normalize(txt, T, E);
    float scale = expf(ls[0]);
    vp_nn_gemm(1, B, T, E, scale, img, E, txt, E, 0.0f, lpi, T);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < T; j++) lpt[j * B + i] = lpi[i * T + j];
    return VP_OK;
}
