/*
 * timm's VisionTransformer (and DINO's, the same layout) from its state
 * dict, as timm's vision_transformer.py runs it:
 *   x = patch_embed.proj(img) (conv, kernel = stride = patch), flattened
 *   x = cat(cls_token, [dist_token], x) + pos_embed
 *   block: x = x + attn.proj(MHA(qkv(norm1(x))))   (qkv one fused product,
 *          columns [q | k | v], heads contiguous in each)
 *          x = x + mlp.fc2(gelu(mlp.fc1(norm2(x))))
 *   x = norm(x)                         -> last_hidden_state
 *   head(x[:, 0])                       -> logits
 *   DeiT distilled, eval: (head(x[:, 0]) + head_dist(x[:, 1])) / 2
 * LayerNorm eps 1e-6 (timm's and DINO's partial(nn.LayerNorm, eps=1e-6)),
 * exact (erf) GELU.
 */
#include <math.h>
#include <string.h>

#include "verify/ref.h"

#define TIMM_EPS 1e-6f

typedef struct timm_sizes { int64_t D, C, p, T, N, depth, mlp, classes; int dist, head; } timm_sizes;

static int sizes(vp_ref *r, timm_sizes *s)
{
    memset(s, 0, sizeof *s);
    const vp_tensor *cls = vp__ref_info(r, "cls_token"), *pw = vp__ref_info(r, "patch_embed.proj.weight");
    const vp_tensor *pos = vp__ref_info(r, "pos_embed");
    if (!cls || cls->ndim != 3 || !pw || pw->ndim != 4 || !pos || pos->ndim != 3)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: cls_token [1, 1, D], pos_embed [1, L, D] and patch_embed.proj.weight "
                            "[D, C, p, p] are missing or misshapen under '%s'", r->pre);
    s->D = cls->shape[2];
    s->C = pw->shape[1];
    s->p = pw->shape[2];
    s->dist = vp__ref_info(r, "dist_token") != NULL;
    s->T = 1 + s->dist;
    s->N = pos->shape[1] - s->T;
    s->depth = vp__ref_count(r, "blocks.%lld.attn.qkv.weight");
    const vp_tensor *fc1 = vp__ref_info(r, "blocks.0.mlp.fc1.weight");
    s->mlp = fc1 && fc1->ndim == 2 ? fc1->shape[0] : 4 * s->D;
    const vp_tensor *head = vp__ref_info(r, "head.weight");
    s->head = head && head->ndim == 2;
    s->classes = s->head ? head->shape[0] : 0;
    if (s->D <= 0 || s->p <= 0 || s->N <= 0 || pw->shape[0] != s->D || pw->shape[3] != s->p)
        return vp__ref_fail(r, VP_ERR_FORMAT, "source: inconsistent patch embedding / position embedding shapes");
    return VP_OK;
}

int vp__ref_timm_info(vp_ref *r, vp_ref_info *info)
{
    timm_sizes s;
    int rc = sizes(r, &s);
    if (rc) return rc;
    int64_t g = (int64_t)llround(sqrt((double)s.N));
    info->image_size = g * s.p;
    info->patch = s.p;
    info->channels = s.C;
    info->takes_pixels = 1;
    return VP_OK;
}

int vp__ref_timm_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in)
{
    timm_sizes s;
    int rc = sizes(r, &s);
    if (rc) return rc;
    if (!in->pixel_values) return vp__ref_fail(r, VP_ERR_ARG, "the timm / DINO model needs pixel_values");
    int64_t B = in->batch, D = s.D, p = s.p, gh = in->height / p, gw = in->width / p;
    int64_t C = in->channels > 0 ? in->channels : 3;
    if (C != s.C)
        return vp__ref_fail(r, VP_ERR_ARG, "source: patch_embed.proj takes %lld channels, pixel_values has %lld",
                            (long long)s.C, (long long)C);
    if (gh * gw != s.N)
        return vp__ref_fail(r, VP_ERR_ARG, "source: pos_embed holds %lld patches, a %lldx%lld image gives %lld",
                            (long long)s.N, (long long)in->height, (long long)in->width, (long long)(gh * gw));
    int64_t H = hp->heads > 0 ? hp->heads : (D / 64 > 0 ? D / 64 : 1);
    if (D % H) return vp__ref_fail(r, VP_ERR_ARG, "width %lld is not a multiple of %lld heads", (long long)D, (long long)H);
    int64_t dh = D / H, L = s.T + s.N, rows = B * L, F = s.mlp;

    const float *cls = vp__ref_get(r, 3, (int64_t[]){1, 1, D}, "cls_token");
    const float *dist = s.dist ? vp__ref_get(r, 3, (int64_t[]){1, 1, D}, "dist_token") : NULL;
    const float *pos = vp__ref_get(r, 3, (int64_t[]){1, L, D}, "pos_embed");
    const float *pw = vp__ref_get(r, 4, (int64_t[]){D, C, p, p}, "patch_embed.proj.weight");
    const float *pb = vp__ref_get(r, 1, (int64_t[]){D}, "patch_embed.proj.bias");
    float *x = vp__ref_buf(r, rows * D), *n = vp__ref_buf(r, rows * D), *qkv = vp__ref_buf(r, rows * 3 * D);
    float *ctx = vp__ref_buf(r, rows * D), *h = vp__ref_buf(r, rows * F);
    float *cols = vp__ref_buf(r, (int64_t)vp_nn_patch_embed_scratch(C, in->height, in->width, p));
    float *att = vp__ref_buf(r, (int64_t)vp_nn_attention_scratch(1, L, L, H));
    if (r->err[0]) return VP_ERR_MISMATCH;

    for (int64_t b = 0; b < B; b++) {
        float *xb = x + b * L * D;
        vp_nn_patch_embed(xb + s.T * D, D, in->pixel_values + b * C * in->height * in->width, 1, C,
                          in->height, in->width, pw, pb, p, D, cols);
        memcpy(xb, cls, (size_t)D * sizeof *xb);
        if (dist) memcpy(xb + D, dist, (size_t)D * sizeof *xb);
        vp_nn_add(xb, pos, (size_t)(L * D));
    }
    for (int64_t i = 0; i < s.depth; i++) {
        size_t mark = vp__ref_mark(r);
        const float *g1 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm1.weight", (long long)i);
        const float *b1 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm1.bias", (long long)i);
        const float *wqkv = vp__ref_get(r, 2, (int64_t[]){3 * D, D}, "blocks.%lld.attn.qkv.weight", (long long)i);
        /* timm's qkv_bias=False leaves the bias out */
        const float *bqkv = vp__ref_info(r, "blocks.%lld.attn.qkv.bias", (long long)i)
                          ? vp__ref_get(r, 1, (int64_t[]){3 * D}, "blocks.%lld.attn.qkv.bias", (long long)i) : NULL;
        const float *wo = vp__ref_get(r, 2, (int64_t[]){D, D}, "blocks.%lld.attn.proj.weight", (long long)i);
        const float *bo = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.attn.proj.bias", (long long)i);
        const float *g2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm2.weight", (long long)i);
        const float *b2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.norm2.bias", (long long)i);
        const float *w1 = vp__ref_get(r, 2, (int64_t[]){F, D}, "blocks.%lld.mlp.fc1.weight", (long long)i);
        const float *c1 = vp__ref_get(r, 1, (int64_t[]){F}, "blocks.%lld.mlp.fc1.bias", (long long)i);
        const float *w2 = vp__ref_get(r, 2, (int64_t[]){D, F}, "blocks.%lld.mlp.fc2.weight", (long long)i);
        const float *c2 = vp__ref_get(r, 1, (int64_t[]){D}, "blocks.%lld.mlp.fc2.bias", (long long)i);
        if (r->err[0]) return VP_ERR_MISMATCH;
        vp_nn_layer_norm(n, x, rows, D, g1, b1, TIMM_EPS);
        vp__ref_linear(qkv, n, rows, wqkv, bqkv, 3 * D, D);
        for (int64_t b = 0; b < B; b++) {
            const float *q = qkv + b * L * 3 * D;
            vp_nn_attention(ctx + b * L * D, D, q, 3 * D, q + D, 3 * D, q + 2 * D, 3 * D, 1, L, L, H, dh,
                            1.0f / sqrtf((float)dh), 0, att);
        }
        vp__ref_linear(n, ctx, rows, wo, bo, D, D);
        vp_nn_add(x, n, (size_t)(rows * D));
        vp_nn_layer_norm(n, x, rows, D, g2, b2, TIMM_EPS);
        vp__ref_linear(h, n, rows, w1, c1, F, D);
        vp_nn_act(h, (size_t)(rows * F), VP_ACT_GELU);
        vp__ref_linear(n, h, rows, w2, c2, D, F);
        vp_nn_add(x, n, (size_t)(rows * D));
        vp__ref_release(r, mark);
    }
    const float *gn = vp__ref_get(r, 1, (int64_t[]){D}, "norm.weight");
    const float *bn = vp__ref_get(r, 1, (int64_t[]){D}, "norm.bias");
    float *last = vp__ref_add_out(r, "last_hidden_state", 3, (int64_t[]){B, L, D});
    if (r->err[0]) return VP_ERR_MISMATCH;
    vp_nn_layer_norm(last, x, rows, D, gn, bn, TIMM_EPS);

    if (s.head) {
        int64_t K = s.classes;
        const float *hw = vp__ref_get(r, 2, (int64_t[]){K, D}, "head.weight");
        const float *hb = vp__ref_get(r, 1, (int64_t[]){K}, "head.bias");
        float *tok = vp__ref_buf(r, B * D), *lg = vp__ref_add_out(r, "logits", 2, (int64_t[]){B, K});
        if (r->err[0]) return VP_ERR_MISMATCH;
        for (int64_t b = 0; b < B; b++) memcpy(tok + b * D, last + b * L * D, (size_t)D * sizeof *tok);
        if (!s.dist) { vp__ref_linear(lg, tok, B, hw, hb, K, D); return VP_OK; }
        const float *dw = vp__ref_get(r, 2, (int64_t[]){K, D}, "head_dist.weight");
        const float *db = vp__ref_get(r, 1, (int64_t[]){K}, "head_dist.bias");
        float *cl = vp__ref_add_out(r, "cls_logits", 2, (int64_t[]){B, K});
        float *dl = vp__ref_add_out(r, "distillation_logits", 2, (int64_t[]){B, K});
        if (r->err[0]) return VP_ERR_MISMATCH;
        vp__ref_linear(cl, tok, B, hw, hb, K, D);
        for (int64_t b = 0; b < B; b++) memcpy(tok + b * D, last + b * L * D + D, (size_t)D * sizeof *tok);
        vp__ref_linear(dl, tok, B, dw, db, K, D);
        for (int64_t i = 0; i < B * K; i++) lg[i] = (cl[i] + dl[i]) / 2.0f;
    }
    return VP_OK;
}
