/*
 * CLIPSeg's CLIPDensePredT from the original state dict (clipseg.py):
 *   clip_model.*: OpenAI CLIP (ref_clip.c). cond = clip_model.encode_text(ids)
 *     (conditional_embeddings); visual_q = visual_forward(img)[0]
 *     (pooled_output), with the residual stream after each layer of
 *     extract_layers kept.
 *   decoder, over the activations deepest first:
 *     a = reduces[i](act) (+ a); at i == cond_layer: a = film_mul(cond) * a + film_add(cond);
 *     a = blocks[i](a), an nn.TransformerEncoderLayer: post-norm, ReLU,
 *     x = norm1(x + self_attn(x)); x = norm2(x + linear2(relu(linear1(x)))), eps 1e-5
 *   a[1:] as a [reduce_dim, s, s] grid per image, then trans_conv:
 *     one ConvTranspose2d(reduce_dim, 1, k, stride k), or the refined
 *     Sequential (Conv2d 3x3 pad 1, ReLU, ConvTranspose2d, ReLU, ConvTranspose2d)
 *   logits: [B, H, W] (the channel squeezed, as transformers returns them).
 * The unused `reduce.*` and the `model.*` alias of clip_model.visual are not read.
 */
#include <math.h>
#include <string.h>

#include "verify/ref.h"

#define SEG_EPS 1e-5f

int vp__ref_clipseg_info(vp_ref *r, vp_ref_info *info)
{
    int rc = vp__ref_clip_info_at(r, "clip_model.", info);   /* the OpenAI CLIP inside */
    if (!rc) info->same_batch = 1;                         /* one prompt per image */
    return rc;
}

/* nn.TransformerEncoderLayer (post-norm, ReLU) on x [B*L, D] in place. */
static int decoder_block(vp_ref *r, int64_t i, float *x, int64_t B, int64_t L, int64_t D, int64_t heads)
{
    long long I = (long long)i;
    const vp_tensor *t = vp__ref_info(r, "blocks.%lld.linear1.weight", I);
    if (!t || t->ndim != 2) return vp__ref_fail(r, VP_ERR_FORMAT, "source tensor 'blocks.%lld.linear1.weight' is missing or not 2-D", I);
    if (heads <= 0 || D % heads)
        return vp__ref_fail(r, VP_ERR_ARG, "decoder width %lld is not a multiple of %lld heads", (long long)D, (long long)heads);
    int64_t F = t->shape[0], rows = B * L, dh = D / heads;
    const float *wi = vp__ref_get(r, 2, (int64_t[]){3 * D, D}, "blocks.%lld.self_attn.in_proj_weight", I);
    const float *bi = vp__ref_get(r, 1, (int64_t[]){3 * D}, "blocks.%lld.self_attn.in_proj_bias", I);
    const float *wo = vp__ref_get(r, 2, (int64_t[]){D, D}, "blocks.%lld.self_attn.out_proj.weight", I);
    const float *bo = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.self_attn.out_proj.bias", I);
    const float *w1 = vp__ref_get(r, 2, (int64_t[]){F, D}, "blocks.%lld.linear1.weight", I);
    const float *b1 = vp__ref_get(r, 1, (int64_t[]){F}, "blocks.%lld.linear1.bias", I);
    const float *w2 = vp__ref_get(r, 2, (int64_t[]){D, F}, "blocks.%lld.linear2.weight", I);
    const float *b2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.linear2.bias", I);
    const float *g1 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm1.weight", I);
    const float *n1 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm1.bias", I);
    const float *g2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm2.weight", I);
    const float *n2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm2.bias", I);
    float *qkv = vp__ref_buf(r, rows * 3 * D), *ctx = vp__ref_buf(r, rows * D), *y = vp__ref_buf(r, rows * D);
    float *h = vp__ref_buf(r, rows * F), *att = vp__ref_buf(r, (int64_t)vp_nn_attention_scratch(1, L, L, heads));
    if (r->err[0]) return VP_ERR_MISMATCH;
    vp__ref_linear(qkv, x, rows, wi, bi, 3 * D, D);
    for (int64_t b = 0; b < B; b++) {
        const float *q = qkv + b * L * 3 * D;
        vp_nn_attention(ctx + b * L * D, D, q, 3 * D, q + D, 3 * D, q + 2 * D, 3 * D, 1, L, L, heads, dh,
                        1.0f / sqrtf((float)dh), 0, att);
    }
    vp__ref_linear(y, ctx, rows, wo, bo, D, D);
    vp_nn_add(x, y, (size_t)(rows * D));
    vp_nn_layer_norm(x, x, rows, D, g1, n1, SEG_EPS);
    vp__ref_linear(h, x, rows, w1, b1, F, D);
    vp_nn_act(h, (size_t)(rows * F), VP_ACT_RELU);
    vp__ref_linear(y, h, rows, w2, b2, D, F);
    vp_nn_add(x, y, (size_t)(rows * D));
    vp_nn_layer_norm(x, x, rows, D, g2, n2, SEG_EPS);
    return VP_OK;
}

/* One ConvTranspose2d "NAME.weight" [Cin, Cout, k, k] (k == stride, read
 * from the weight) on in [Cin, s, s] -> out [Cout, s*k, s*k]. */
static int conv_t(vp_ref *r, const char *name, float *out, const float *in, int64_t Cin, int64_t s,
                  int64_t *Cout, int64_t *k)
{
    const vp_tensor *t = vp__ref_info(r, "%s.weight", name);
    if (!t || t->ndim != 4 || t->shape[0] != Cin || t->shape[2] != t->shape[3])
        return vp__ref_fail(r, VP_ERR_FORMAT, "source tensor '%s.weight' is missing or not [%lld, out, k, k]", name, (long long)Cin);
    *Cout = t->shape[1];
    *k = t->shape[2];
    const float *w = vp__ref_get(r, 4, (int64_t[]){Cin, *Cout, *k, *k}, "%s.weight", name);
    const float *b = vp__ref_get(r, 1, (int64_t[]){*Cout}, "%s.bias", name);
    float *scr = vp__ref_buf(r, (int64_t)vp_nn_conv_transpose2d_scratch(Cin, s, s, *Cout, *k, *k));
    if (r->err[0]) return VP_ERR_MISMATCH;
    if (out) vp_nn_conv_transpose2d(out, in, Cin, s, s, w, b, *Cout, *k, *k, *k, scr);
    return VP_OK;
}

int vp__ref_clipseg_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in)
{
    vp_ref_clip c;
    int rc = vp__ref_clip_sizes(r, "clip_model.", &c);
    if (rc) return rc;
    if (hp->heads > 0) c.vheads = hp->heads;
    if (hp->text_heads > 0) c.theads = hp->text_heads;
    if (!in->pixel_values || !in->input_ids) return vp__ref_fail(r, VP_ERR_ARG, "CLIPSeg needs pixel_values and input_ids");
    if (in->text_batch != in->batch)
        return vp__ref_fail(r, VP_ERR_ARG, "CLIPSeg takes one text per image (%lld images, %lld texts)",
                            (long long)in->batch, (long long)in->text_batch);
    int64_t dflt[3] = {3, 6, 9};
    const int64_t *ex = hp->nextract ? hp->extract : dflt;
    int nex = hp->nextract ? hp->nextract : 3;
    int64_t cond_layer = hp->cond_layer, dheads = hp->decoder_heads > 0 ? hp->decoder_heads : 4;
    for (int j = 0; j < nex; j++)
        if (ex[j] < 0 || ex[j] >= c.vlayers)
            return vp__ref_fail(r, VP_ERR_ARG, "extract layer %lld is outside the %lld vision layers", (long long)ex[j], (long long)c.vlayers);
    const vp_tensor *fm = vp__ref_info(r, "film_mul.weight");
    if (!fm || fm->ndim != 2 || fm->shape[1] != c.embed)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source tensor 'film_mul.weight' is missing or not [reduce_dim, %lld]", (long long)c.embed);
    int64_t B = in->batch, E = c.embed, W = c.vwidth, rd = fm->shape[0], s = c.grid, L = 1 + s * s;
    if (vp__ref_count(r, "blocks.%lld.linear1.weight") < nex || vp__ref_count(r, "reduces.%lld.weight") < nex)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: %d extract layers need as many blocks.N and reduces.N", nex);

    float *cond = vp__ref_add_out(r, "conditional_embeddings", 2, (int64_t[]){B, E});
    float *pooled = vp__ref_add_out(r, "pooled_output", 2, (int64_t[]){B, E});
    float *acts[VP_REF_MAX_EXTRACT];
    for (int j = 0; j < nex; j++) acts[j] = vp__ref_buf(r, B * L * W);
    float *a = vp__ref_buf(r, B * L * rd), *t = vp__ref_buf(r, B * L * rd);
    float *fmul = vp__ref_buf(r, B * rd), *fadd = vp__ref_buf(r, B * rd);
    const float *fmw = vp__ref_get(r, 2, (int64_t[]){rd, E}, "film_mul.weight");
    const float *fmb = vp__ref_get(r, 1, (int64_t[]){rd}, "film_mul.bias");
    const float *faw = vp__ref_get(r, 2, (int64_t[]){rd, E}, "film_add.weight");
    const float *fab = vp__ref_get(r, 1, (int64_t[]){rd}, "film_add.bias");
    if (r->err[0]) return VP_ERR_MISMATCH;
    rc = vp__ref_clip_text(r, &c, in, cond);
    if (!rc) rc = vp__ref_clip_visual(r, &c, in, pooled, ex, nex, acts);
    if (rc) return rc;
    vp__ref_linear(fmul, cond, B, fmw, fmb, rd, E);
    vp__ref_linear(fadd, cond, B, faw, fab, rd, E);

    for (int i = 0; i < nex; i++) {
        const float *act = acts[nex - 1 - i];   /* deepest first */
        const float *rw = vp__ref_get(r, 2, (int64_t[]){rd, W}, "reduces.%d.weight", i);
        const float *rb = vp__ref_get(r, 1, (int64_t[]){rd}, "reduces.%d.bias", i);
        if (r->err[0]) return VP_ERR_MISMATCH;
        vp__ref_linear(t, act, B * L, rw, rb, rd, W);
        if (i) vp_nn_add(a, t, (size_t)(B * L * rd));
        else memcpy(a, t, (size_t)(B * L * rd) * sizeof *a);
        if (i == cond_layer)
            for (int64_t b = 0; b < B; b++)
                for (int64_t l = 0; l < L; l++) {
                    float *row = a + (b * L + l) * rd;
                    for (int64_t d = 0; d < rd; d++) row[d] = fmul[b * rd + d] * row[d] + fadd[b * rd + d];
                }
        size_t mark = vp__ref_mark(r);
        rc = decoder_block(r, i, a, B, L, rd, dheads);
        if (rc) return rc;
        vp__ref_release(r, mark);
    }

    /* the grid per image: [rd, s, s] from tokens 1.. */
    float *grid = vp__ref_buf(r, rd * s * s);
    int refined = vp__ref_info(r, "trans_conv.0.weight") != NULL;
    int64_t k0 = 0, k1 = 0, c1 = 0, c2 = 0, kk = 0, co = 0;
    float *g1 = NULL, *g2 = NULL, *cols = NULL;
    const float *w0 = NULL, *b0 = NULL;
    if (r->err[0]) return VP_ERR_NOMEM;
    if (refined) {
        w0 = vp__ref_get(r, 4, (int64_t[]){rd, rd, 3, 3}, "trans_conv.0.weight");
        b0 = vp__ref_get(r, 1, (int64_t[]){rd}, "trans_conv.0.bias");
        g1 = vp__ref_buf(r, rd * s * s);
        cols = vp__ref_buf(r, (int64_t)vp_nn_conv2d_scratch(rd, s, s, 3, 3, 1, 1));
        if (!r->err[0]) rc = conv_t(r, "trans_conv.2", NULL, NULL, rd, s, &c1, &k0);
        if (!rc && !r->err[0]) {
            g2 = vp__ref_buf(r, c1 * s * k0 * s * k0);
            rc = conv_t(r, "trans_conv.4", NULL, NULL, c1, s * k0, &c2, &k1);
        }
        kk = k0 * k1;
        co = c2;
    } else {
        rc = conv_t(r, "trans_conv", NULL, NULL, rd, s, &co, &kk);
    }
    if (rc || r->err[0]) return rc ? rc : VP_ERR_MISMATCH;
    if (co != 1) return vp__ref_fail(r, VP_ERR_FORMAT, "source: trans_conv gives %lld channels, not 1", (long long)co);
    int64_t OH = s * kk;
    float *logits = vp__ref_add_out(r, "logits", 3, (int64_t[]){B, OH, OH});
    if (!logits) return VP_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t tkn = 0; tkn < s * s; tkn++)
            for (int64_t d = 0; d < rd; d++) grid[d * s * s + tkn] = a[(b * L + 1 + tkn) * rd + d];
        float *out = logits + b * OH * OH;
        if (!refined) {
            rc = conv_t(r, "trans_conv", out, grid, rd, s, &co, &kk);
        } else {
            vp_nn_conv2d(g1, grid, rd, s, s, w0, b0, rd, 3, 3, 1, 1, cols);
            vp_nn_act(g1, (size_t)(rd * s * s), VP_ACT_RELU);
            rc = conv_t(r, "trans_conv.2", g2, g1, rd, s, &c1, &k0);
            if (!rc) vp_nn_act(g2, (size_t)(c1 * s * k0 * s * k0), VP_ACT_RELU);
            if (!rc) rc = conv_t(r, "trans_conv.4", out, g2, c1, s * k0, &c2, &k1);
        }
        if (rc) return rc;
    }
    return VP_OK;
}
