/*
 * big_vision SigLIP (two towers) from its flat .npz parameter tree, as
 * big_vision's vit.py / two_towers.py run it (flax):
 *   img: x = conv(img, embedding/kernel [p, p, C, D] HWIO, stride p) + bias,
 *        flattened row-major over the grid; x = x + pos_embedding
 *        Transformer: encoderblock_i: y = LayerNorm_0(x); x = x + MHDPA(y, y);
 *                     y = LayerNorm_1(x); x = x + MlpBlock(y); encoder_norm
 *        MAPHead: probe [1, 1, D] attends over x (MHDPA(probe, x));
 *                 y = LayerNorm(h); h = h + MlpBlock(y); take h[:, 0]
 *   txt: x = Embed[ids] + pos_embedding; Encoder_0 (same blocks, no mask);
 *        encoder_norm; the last token; head (Dense)
 *   MHDPA kernels: query/key/value [D, heads, head_dim] (x @ K), biases
 *        [heads, head_dim]; out [heads, head_dim, D]; query scaled by
 *        head_dim^-0.5. MlpBlock: Dense_0, gelu (tanh approximation, flax's
 *        default), Dense_1; Dense kernels [in, out].
 *   logits_per_text = txt_n @ img_n^T * exp(t) + b; logits_per_image its transpose.
 * LayerNorm eps 1e-6 (flax's default). Head counts come from the kernels.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "verify/ref.h"

#define SIGLIP_EPS 1e-6f

typedef struct mhdpa { const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo; int64_t H, dh; } mhdpa;

static int load_mhdpa(vp_ref *r, mhdpa *a, int64_t D, const char *pre)
{
    const vp_tensor *t = vp__ref_info(r, "%s/MultiHeadDotProductAttention_0/query/kernel", pre);
    if (!t || t->ndim != 3 || t->shape[0] != D)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source tensor '%s/MultiHeadDotProductAttention_0/query/kernel' is missing "
                            "or not [%lld, heads, head_dim]", pre, (long long)D);
    a->H = t->shape[1];
    a->dh = t->shape[2];
    int64_t H = a->H, dh = a->dh;
    a->wq = vp__ref_get(r, 3, (int64_t[]){D, H, dh}, "%s/MultiHeadDotProductAttention_0/query/kernel", pre);
    a->bq = vp__ref_get(r, 2, (int64_t[]){H, dh}, "%s/MultiHeadDotProductAttention_0/query/bias", pre);
    a->wk = vp__ref_get(r, 3, (int64_t[]){D, H, dh}, "%s/MultiHeadDotProductAttention_0/key/kernel", pre);
    a->bk = vp__ref_get(r, 2, (int64_t[]){H, dh}, "%s/MultiHeadDotProductAttention_0/key/bias", pre);
    a->wv = vp__ref_get(r, 3, (int64_t[]){D, H, dh}, "%s/MultiHeadDotProductAttention_0/value/kernel", pre);
    a->bv = vp__ref_get(r, 2, (int64_t[]){H, dh}, "%s/MultiHeadDotProductAttention_0/value/bias", pre);
    a->wo = vp__ref_get(r, 3, (int64_t[]){H, dh, D}, "%s/MultiHeadDotProductAttention_0/out/kernel", pre);
    a->bo = vp__ref_get(r, 1, (int64_t[]){D}, "%s/MultiHeadDotProductAttention_0/out/bias", pre);
    return r->err[0] ? VP_ERR_MISMATCH : VP_OK;
}

/* out [B*Lq, D] = MHDPA(xq [B*Lq, D], xkv [B*Lkv, D]) (bq-broadcast queries
 * when Lq rows are shared: qshared = 1 uses xq's first Lq rows for every b). */
static int run_mhdpa(vp_ref *r, const mhdpa *a, float *out, const float *xq, int qshared, const float *xkv,
                     int64_t B, int64_t Lq, int64_t Lk, int64_t D)
{
    int64_t HD = a->H * a->dh;
    float *q = vp__ref_buf(r, B * Lq * HD), *k = vp__ref_buf(r, B * Lk * HD), *v = vp__ref_buf(r, B * Lk * HD);
    float *ctx = vp__ref_buf(r, B * Lq * HD), *att = vp__ref_buf(r, (int64_t)vp_nn_attention_scratch(1, Lq, Lk, a->H));
    if (r->err[0]) return VP_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++)
        vp__ref_matmul(q + b * Lq * HD, xq + (qshared ? 0 : b * Lq * D), Lq, a->wq, a->bq, HD, D);
    vp__ref_matmul(k, xkv, B * Lk, a->wk, a->bk, HD, D);
    vp__ref_matmul(v, xkv, B * Lk, a->wv, a->bv, HD, D);
    for (int64_t b = 0; b < B; b++)
        vp_nn_attention(ctx + b * Lq * HD, HD, q + b * Lq * HD, HD, k + b * Lk * HD, HD, v + b * Lk * HD, HD,
                        1, Lq, Lk, a->H, a->dh, 1.0f / sqrtf((float)a->dh), 0, att);
    vp__ref_matmul(out, ctx, B * Lq, a->wo, a->bo, D, HD);
    return VP_OK;
}

static int mlp_block(vp_ref *r, float *out, const float *x, int64_t rows, int64_t D, const char *pre)
{
    const vp_tensor *t = vp__ref_info(r, "%s/MlpBlock_0/Dense_0/kernel", pre);
    if (!t || t->ndim != 2) return vp__ref_fail(r, VP_ERR_FORMAT, "source tensor '%s/MlpBlock_0/Dense_0/kernel' is missing or not 2-D", pre);
    int64_t F = t->shape[1];
    const float *w0 = vp__ref_get(r, 2, (int64_t[]){D, F}, "%s/MlpBlock_0/Dense_0/kernel", pre);
    const float *b0 = vp__ref_get(r, 1, (int64_t[]){F}, "%s/MlpBlock_0/Dense_0/bias", pre);
    const float *w1 = vp__ref_get(r, 2, (int64_t[]){F, D}, "%s/MlpBlock_0/Dense_1/kernel", pre);
    const float *b1 = vp__ref_get(r, 1, (int64_t[]){D}, "%s/MlpBlock_0/Dense_1/bias", pre);
    float *h = vp__ref_buf(r, rows * F);
    if (r->err[0]) return VP_ERR_MISMATCH;
    vp__ref_matmul(h, x, rows, w0, b0, F, D);
    vp_nn_act(h, (size_t)(rows * F), VP_ACT_GELU_TANH);
    vp__ref_matmul(out, h, rows, w1, b1, D, F);
    return VP_OK;
}

static int layer_norm(vp_ref *r, float *y, const float *x, int64_t rows, int64_t D, const char *pre)
{
    const float *g = vp__ref_get(r, 1, (int64_t[]){D}, "%s/scale", pre);
    const float *b = vp__ref_get(r, 1, (int64_t[]){D}, "%s/bias", pre);
    if (r->err[0]) return VP_ERR_MISMATCH;
    vp_nn_layer_norm(y, x, rows, D, g, b, SIGLIP_EPS);
    return VP_OK;
}

/* encoderblock_0.. then encoder_norm, on x [B*L, D] in place. */
static int encoder(vp_ref *r, const char *pre, float *x, int64_t B, int64_t L, int64_t D)
{
    int64_t rows = B * L;
    float *y = vp__ref_buf(r, rows * D), *t = vp__ref_buf(r, rows * D);
    if (r->err[0]) return VP_ERR_NOMEM;
    char fmt[128], blk[160];
    snprintf(fmt, sizeof fmt, "%s/encoderblock_%%lld/LayerNorm_0/scale", pre);
    int64_t depth = vp__ref_count(r, fmt);
    for (int64_t i = 0; i < depth; i++) {
        size_t mark = vp__ref_mark(r);
        snprintf(blk, sizeof blk, "%s/encoderblock_%lld", pre, (long long)i);
        char sub[200];
        mhdpa a;
        snprintf(sub, sizeof sub, "%s/LayerNorm_0", blk);
        int rc = layer_norm(r, y, x, rows, D, sub);
        if (!rc) rc = load_mhdpa(r, &a, D, blk);
        if (!rc) rc = run_mhdpa(r, &a, t, y, 0, y, B, L, L, D);
        if (rc) return rc;
        vp_nn_add(x, t, (size_t)(rows * D));
        snprintf(sub, sizeof sub, "%s/LayerNorm_1", blk);
        rc = layer_norm(r, y, x, rows, D, sub);
        if (!rc) rc = mlp_block(r, t, y, rows, D, blk);
        if (rc) return rc;
        vp_nn_add(x, t, (size_t)(rows * D));
        vp__ref_release(r, mark);
    }
    char norm[160];
    snprintf(norm, sizeof norm, "%s/encoder_norm", pre);
    return layer_norm(r, x, x, rows, D, norm);
}

typedef struct sig_sizes { int64_t D, p, C, N, grid, TD, vocab, TL, E; } sig_sizes;

static int sizes(vp_ref *r, sig_sizes *s)
{
    memset(s, 0, sizeof *s);
    const vp_tensor *k = vp__ref_info(r, "params/img/embedding/kernel"), *pos = vp__ref_info(r, "params/img/pos_embedding");
    const vp_tensor *emb = vp__ref_info(r, "params/txt/Embed_0/embedding"), *tpos = vp__ref_info(r, "params/txt/pos_embedding");
    const vp_tensor *head = vp__ref_info(r, "params/txt/head/kernel");
    if (!k || k->ndim != 4 || !pos || pos->ndim != 3 || !emb || emb->ndim != 2 || !tpos || tpos->ndim != 3 ||
        !head || head->ndim != 2)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: big_vision SigLIP parameters (params/img/embedding/kernel [p, p, C, D], "
                            "params/img/pos_embedding, params/txt/Embed_0/embedding, params/txt/pos_embedding, "
                            "params/txt/head/kernel) are missing or misshapen");
    s->p = k->shape[0];
    s->C = k->shape[2];
    s->D = k->shape[3];
    s->N = pos->shape[1];
    s->grid = (int64_t)llround(sqrt((double)s->N));
    s->vocab = emb->shape[0];
    s->TD = emb->shape[1];
    s->TL = tpos->shape[1];
    s->E = head->shape[1];
    if (s->p <= 0 || k->shape[1] != s->p || s->grid * s->grid != s->N || pos->shape[2] != s->D || tpos->shape[2] != s->TD ||
        head->shape[0] != s->TD)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: inconsistent SigLIP embedding shapes");
    return VP_OK;
}

int vp__ref_siglip_info(vp_ref *r, vp_ref_info *info)
{
    sig_sizes s;
    int rc = sizes(r, &s);
    if (rc) return rc;
    info->image_size = s.grid * s.p;
    info->patch = s.p;
    info->channels = s.C;
    info->text_len = s.TL;
    info->vocab = s.vocab;
    info->takes_pixels = info->takes_ids = 1;
    return VP_OK;
}

static int image_tower(vp_ref *r, const sig_sizes *s, const vp_ref_inputs *in, float *pooled)
{
    int64_t B = in->batch, D = s->D, p = s->p, C = s->C, Hh = in->height, Ww = in->width;
    int64_t gh = Hh / p, gw = Ww / p, N = gh * gw, kk = p * p * C;
    if ((in->channels > 0 ? in->channels : 3) != C)
        return vp__ref_fail(r, VP_ERR_ARG, "source: params/img/embedding takes %lld channels, pixel_values has %lld",
                            (long long)C, (long long)(in->channels > 0 ? in->channels : 3));
    if (N != s->N)
        return vp__ref_fail(r, VP_ERR_ARG, "source: params/img/pos_embedding holds %lld patches, a %lldx%lld image gives %lld",
                            (long long)s->N, (long long)Hh, (long long)Ww, (long long)N);
    const float *kern = vp__ref_get(r, 4, (int64_t[]){p, p, C, D}, "params/img/embedding/kernel");
    const float *kb = vp__ref_get(r, 1, (int64_t[]){D}, "params/img/embedding/bias");
    const float *pos = vp__ref_get(r, 3, (int64_t[]){1, N, D}, "params/img/pos_embedding");
    const float *probe = vp__ref_get(r, 3, (int64_t[]){1, 1, D}, "params/img/MAPHead_0/probe");
    float *x = vp__ref_buf(r, B * N * D), *cols = vp__ref_buf(r, N * kk);
    float *h = vp__ref_buf(r, B * D), *y = vp__ref_buf(r, B * D), *t = vp__ref_buf(r, B * D);
    if (r->err[0]) return VP_ERR_MISMATCH;
    for (int64_t b = 0; b < B; b++) {
        const float *img = in->pixel_values + b * C * Hh * Ww;
        /* patch (gy, gx) as a row in the kernel's (y, x, c) order: NHWC */
        for (int64_t gy = 0; gy < gh; gy++)
            for (int64_t gx = 0; gx < gw; gx++) {
                float *col = cols + (gy * gw + gx) * kk;
                for (int64_t yy = 0; yy < p; yy++)
                    for (int64_t xx = 0; xx < p; xx++)
                        for (int64_t c = 0; c < C; c++)
                            col[(yy * p + xx) * C + c] = img[(c * Hh + gy * p + yy) * Ww + gx * p + xx];
            }
        vp__ref_matmul(x + b * N * D, cols, N, kern, kb, D, kk);
        vp_nn_add(x + b * N * D, pos, (size_t)(N * D));
    }
    int rc = encoder(r, "params/img/Transformer", x, B, N, D);
    mhdpa a;
    if (!rc) rc = load_mhdpa(r, &a, D, "params/img/MAPHead_0");
    if (!rc) rc = run_mhdpa(r, &a, h, probe, 1, x, B, 1, N, D);
    if (!rc) rc = layer_norm(r, y, h, B, D, "params/img/MAPHead_0/LayerNorm_0");
    if (!rc) rc = mlp_block(r, t, y, B, D, "params/img/MAPHead_0");
    if (rc) return rc;
    vp_nn_add(h, t, (size_t)(B * D));
    memcpy(pooled, h, (size_t)(B * D) * sizeof *h);
    return VP_OK;
}

static int text_tower(vp_ref *r, const sig_sizes *s, const vp_ref_inputs *in, float *feat)
{
    int64_t B = in->text_batch, L = in->text_len, D = s->TD;
    if (L > s->TL)
        return vp__ref_fail(r, VP_ERR_ARG, "input_ids has %lld positions, params/txt/pos_embedding %lld", (long long)L, (long long)s->TL);
    const float *emb = vp__ref_get(r, 2, (int64_t[]){s->vocab, D}, "params/txt/Embed_0/embedding");
    const float *pos = vp__ref_get(r, 3, (int64_t[]){1, s->TL, D}, "params/txt/pos_embedding");
    const float *hk = vp__ref_get(r, 2, (int64_t[]){D, s->E}, "params/txt/head/kernel");
    const float *hb = vp__ref_get(r, 1, (int64_t[]){s->E}, "params/txt/head/bias");
    float *x = vp__ref_buf(r, B * L * D), *last = vp__ref_buf(r, B * D);
    if (r->err[0]) return VP_ERR_MISMATCH;
    for (int64_t i = 0; i < B * L; i++) {
        int64_t id = in->input_ids[i];
        if (id < 0 || id >= s->vocab)
            return vp__ref_fail(r, VP_ERR_ARG, "input_ids holds %lld, outside the vocabulary of %lld", (long long)id, (long long)s->vocab);
        memcpy(x + i * D, emb + id * D, (size_t)D * sizeof *x);
        vp_nn_add(x + i * D, pos + (i % L) * D, (size_t)D);
    }
    int rc = encoder(r, "params/txt/Encoder_0", x, B, L, D);
    if (rc) return rc;
    for (int64_t b = 0; b < B; b++) memcpy(last + b * D, x + (b * L + L - 1) * D, (size_t)D * sizeof *x);
    vp__ref_matmul(feat, last, B, hk, hb, s->E, D);
    return VP_OK;
}

int vp__ref_siglip_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in)
{
    (void)hp;   /* heads come from the kernels' shapes */
    sig_sizes s;
    int rc = sizes(r, &s);
    if (rc) return rc;
    if (!in->pixel_values || !in->input_ids) return vp__ref_fail(r, VP_ERR_ARG, "SigLIP needs pixel_values and input_ids");
    if (s.E != s.D)
        return vp__ref_fail(r, VP_ERR_UNSUPPORTED, "source: text head gives %lld features, the image tower %lld", (long long)s.E, (long long)s.D);
    int64_t B = in->batch, T = in->text_batch, E = s.E;
    const float *t = vp__ref_get(r, 1, (int64_t[]){1}, "params/t");
    const float *bias = vp__ref_get(r, 1, (int64_t[]){1}, "params/b");
    float *img = vp__ref_add_out(r, "image_embeds", 2, (int64_t[]){B, E});
    float *txt = vp__ref_add_out(r, "text_embeds", 2, (int64_t[]){T, E});
    float *lpi = vp__ref_add_out(r, "logits_per_image", 2, (int64_t[]){B, T});
    float *lpt = vp__ref_add_out(r, "logits_per_text", 2, (int64_t[]){T, B});
    if (r->err[0]) return VP_ERR_MISMATCH;
    rc = image_tower(r, &s, in, img);
    if (!rc) rc = text_tower(r, &s, in, txt);
    if (rc) return rc;
    vp_nn_l2_normalize(img, B, E);
    vp_nn_l2_normalize(txt, T, E);
    float scale = expf(t[0]);
    for (int64_t j = 0; j < T; j++)
        for (int64_t i = 0; i < B; i++) lpt[j * B + i] = bias[0];
    vp_nn_gemm(1, T, B, E, scale, txt, E, img, E, 1.0f, lpt, B);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < T; j++) lpi[i * T + j] = lpt[j * B + i];
    return VP_OK;
}
