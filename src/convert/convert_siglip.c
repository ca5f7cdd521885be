/*
 * big_vision SigLIP (.npz of the flattened parameter tree, stored or
 * compressed) -> SiglipModel, as seed 000 (convert_siglip_to_hf.py) maps it:
 *   params/img/embedding/kernel [p, p, C, D]   transpose (3, 2, 0, 1) -> patch_embedding.weight
 *   params/img/pos_embedding    [1, N, D]      reshape [N, D]          -> position_embedding.weight
 *   .../MultiHeadDotProductAttention_0/{query,key,value}/kernel [D, H, Dh]
 *                                              reshape [D, D], transpose -> self_attn.{q,k,v}_proj.weight
 *   .../out/kernel              [H, Dh, D]     reshape [D, D], transpose -> self_attn.out_proj.weight
 *   attention biases [H, Dh]                   reshape [D]
 *   every other Dense kernel    [in, out]      transpose               -> weight
 *   LayerNorm scale / bias                                             -> weight / bias
 *   MAPHead_0 query/key/value                  concatenated            -> head.attention.in_proj_{weight,bias}
 *   params/t, params/b                                                 -> logit_scale, logit_bias
 * Sizes come from the tensors, heads too (the attention kernels are
 * [D, heads, head_dim]), so base / large / so400m at every image size and
 * the i18n vocabulary convert without a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_clip.h"
#include "text/text.h"

static const double half3[3] = { 0.5, 0.5, 0.5 };

typedef struct tower {
    const char *src;                 /* "params/img/Transformer/" or "params/txt/Encoder_0/" */
    int64_t width, layers, mlp, heads;   /* heads 0 = not shown by the kernels */
} tower;

typedef struct siglip_dims {
    tower v, t;
    int64_t patch, channels, grid, image;
    int64_t vocab, ctx, proj;        /* proj: text head output */
    int has_head;                    /* the MAP head (vision_use_head) */
} siglip_dims;

static int bad_shape(vp_plan *p, const char *name, const vp_tensor *t, const char *want)
{
    if (!t) return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s is missing", name);
    return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has shape %s, expected %s", name, vp_plan_shape_str(p, t), want);
}

/* Layers, MLP width and heads of one encoder. */
static int read_tower(vp_plan *p, tower *tw)
{
    tw->layers = vp_clip_count_layers(p, tw->src, "encoderblock_%lld/LayerNorm_0/scale");
    const char *n = vp_plan_strf(p, "%sencoderblock_0/MlpBlock_0/Dense_0/kernel", tw->src);
    const vp_tensor *t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] != tw->width)
        return bad_shape(p, n, t, vp_plan_strf(p, "[%lld, mlp]", (long long)tw->width));
    tw->mlp = t->shape[1];
    n = vp_plan_strf(p, "%sencoderblock_0/MultiHeadDotProductAttention_0/query/kernel", tw->src);
    t = vp_clip_get(p, NULL, n);
    if (t && t->ndim == 3 && t->shape[0] == tw->width && t->shape[1] > 0 && t->shape[1] * t->shape[2] == tw->width)
        tw->heads = t->shape[1];
    else if (!t || t->ndim != 2 || t->shape[0] != tw->width || t->shape[1] != tw->width)
        return bad_shape(p, n, t, vp_plan_strf(p, "[%lld, heads, head_dim] with heads * head_dim = %lld",
                                               (long long)tw->width, (long long)tw->width));
    return VP_OK;
}

static int read_dims(vp_plan *p, const char *pre, siglip_dims *d)
{
    memset(d, 0, sizeof *d);
    const char *n = vp_plan_strf(p, "%simg/embedding/kernel", pre);
    const vp_tensor *t = vp_clip_get(p, NULL, n);
    /* every size >= 1: an empty kernel would leave the patch size unbounded */
    if (!t || t->ndim != 4 || t->shape[0] != t->shape[1] || t->shape[0] < 1 || t->shape[2] < 1 || t->shape[3] < 1)
        return bad_shape(p, n, t, "[patch, patch, channels, width]");
    d->patch = t->shape[0];
    d->channels = t->shape[2];
    d->v.width = t->shape[3];
    n = vp_plan_strf(p, "%simg/pos_embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim < 2 || t->shape[t->ndim - 1] != d->v.width)
        return bad_shape(p, n, t, vp_plan_strf(p, "[1, grid*grid, %lld]", (long long)d->v.width));
    d->grid = vp__isqrt((int64_t)(t->numel / (uint64_t)d->v.width));
    if (d->grid < 1)
        return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has %llu positions: not a square patch grid", n,
                            (unsigned long long)(t->numel / (uint64_t)d->v.width));
    d->image = d->grid * d->patch;
    d->has_head = vp_plan_src(p, "%simg/MAPHead_0/probe", pre) >= 0;

    n = vp_plan_strf(p, "%stxt/Embed_0/embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) return bad_shape(p, n, t, "[vocab, width]");
    d->vocab = t->shape[0];
    d->t.width = t->shape[1];
    n = vp_plan_strf(p, "%stxt/pos_embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim < 2 || t->shape[t->ndim - 1] != d->t.width)
        return bad_shape(p, n, t, vp_plan_strf(p, "[1, context, %lld]", (long long)d->t.width));
    d->ctx = (int64_t)(t->numel / (uint64_t)d->t.width);
    n = vp_plan_strf(p, "%stxt/head/kernel", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] != d->t.width)
        return bad_shape(p, n, t, vp_plan_strf(p, "[%lld, projection]", (long long)d->t.width));
    d->proj = t->shape[1];

    d->v.src = vp_plan_strf(p, "%simg/Transformer/", pre);
    d->t.src = vp_plan_strf(p, "%stxt/Encoder_0/", pre);
    int rc = read_tower(p, &d->v);
    return rc ? rc : read_tower(p, &d->t);
}

/* The seeds' model names: siglip-{base,large,so400m}-patch{16,14}-{224,256,384,512}[-i18n]. */
static void parse_model_name(const char *name, int64_t *heads, int64_t *patch, int64_t *image)
{
    *heads = *patch = *image = 0;
    if (!name) return;
    if (strstr(name, "so400m") || strstr(name, "large")) *heads = 16;
    else if (strstr(name, "base")) *heads = 12;
    const char *s = strstr(name, "patch");
    if (s) {
        char *end;
        long long pv = strtoll(s + 5, &end, 10);
        if (end != s + 5 && pv > 0) *patch = pv;
        if (*end == '-') {
            char *e2;
            long long iv = strtoll(end + 1, &e2, 10);
            if (e2 != end + 1 && iv > 0) *image = iv;
        }
    }
}

/* Released image sizes: so400m at 384 has 27x27 patches of 14 (378 px), the
 * stride drops the border; prefer the released size that gives the grid. */
static int64_t guess_image(int64_t grid, int64_t patch)
{
    static const int64_t sizes[] = { 224, 256, 384, 512 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i] == grid * patch) return sizes[i];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i] / patch == grid) return sizes[i];
    return grid * patch;
}

static int fill_config(vp_plan *p, const siglip_dims *d)
{
    cJSON *cfg = p->config ? p->config : cJSON_CreateObject();   /* the converter may have made it */
    p->config = cfg;
    if (!cfg) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    int64_t name_heads, name_patch, name_image;
    parse_model_name(p->opts ? p->opts->model_name : NULL, &name_heads, &name_patch, &name_image);
    if (name_patch && name_patch != d->patch)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "--model-name %s says patch %lld, but the patch kernel is %lldx%lld",
                            p->opts->model_name, (long long)name_patch, (long long)d->patch, (long long)d->patch);
    int64_t image = name_image ? name_image : guess_image(d->grid, d->patch);

    int rc = vp_json_set(cfg, "architectures", cJSON_CreateStringArray((const char *const[]){ "SiglipModel" }, 1));
    rc |= vp_json_set_float(cfg, "initializer_factor", 1.0);
    rc |= vp_json_set_str(cfg, "model_type", "siglip");
    rc |= vp_json_set_str(cfg, "torch_dtype", "float32");
    cJSON *t = vp_hf_child(cfg, "text_config"), *v = vp_hf_child(cfg, "vision_config");
    if (rc || !t || !v) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    const tower *tw[2] = { &d->t, &d->v };
    cJSON *o[2] = { t, v };
    for (int i = 0; i < 2; i++) {
        int64_t h = tw[i]->heads ? tw[i]->heads : name_heads ? name_heads : tw[i]->width % 64 ? 0 : tw[i]->width / 64;
        rc |= vp_json_set_int(o[i], "hidden_size", tw[i]->width);
        rc |= vp_json_set_int(o[i], "intermediate_size", tw[i]->mlp);
        if (h) rc |= vp_json_set_int(o[i], "num_attention_heads", h);
        rc |= vp_json_set_int(o[i], "num_hidden_layers", tw[i]->layers);
    }
    rc |= vp_json_set_int(t, "max_position_embeddings", d->ctx);
    rc |= vp_json_set_str(t, "model_type", "siglip_text_model");
    rc |= vp_json_set_int(t, "vocab_size", d->vocab);
    /* SiglipTextConfig's default bos/eos ids are CLIP's (49406/49407); the
     * seed leaves them, and with SigLIP's own vocabularies (32000 tokens) they
     * fall outside it, which transformers 5.x warns about on every load.
     * SigLIP pools the last token and never reads them, so write what its
     * SentencePiece vocabularies hold instead: no bos, eos "</s>" = id 1
     * (T5 layout: pad 0, eos 1, unk 2). --set can still override both. */
    if (d->vocab <= 49407) {
        rc |= vp_json_set(t, "bos_token_id", cJSON_CreateNull());
        if (d->vocab > 1) rc |= vp_json_set_int(t, "eos_token_id", 1);
        else rc |= vp_json_set(t, "eos_token_id", cJSON_CreateNull());
    }
    /* transformers 4.x's text head is square; 5.x reads projection_size. */
    if (d->proj != d->t.width) rc |= vp_json_set_int(t, "projection_size", d->proj);
    rc |= vp_json_set_int(v, "image_size", image);
    rc |= vp_json_set_str(v, "model_type", "siglip_vision_model");
    rc |= vp_json_set_int(v, "num_channels", d->channels);
    rc |= vp_json_set_int(v, "patch_size", d->patch);
    if (!d->has_head) rc |= vp_json_set_bool(v, "vision_use_head", 0);
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

static int readback_tower(vp_plan *p, const char *sub, const vp_hf_default *defs, const tower *tw, int64_t *heads)
{
    int rc = vp_plan_cfg_expect(p, sub, "hidden_size", defs, tw->width);
    if (!rc) rc = vp_plan_cfg_expect(p, sub, "intermediate_size", defs, tw->mlp);
    if (!rc) rc = vp_plan_cfg_expect(p, sub, "num_hidden_layers", defs, tw->layers);
    if (rc) return rc;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(p->config, sub);
    if (!cJSON_GetObjectItemCaseSensitive(o, "num_attention_heads"))
        return vp_plan_fail(p, VP_ERR_ARG, "%s width %lld: the head count is not known; give it with --model-name "
                            "or --set %s.num_attention_heads=N", sub, (long long)tw->width, sub);
    if (tw->heads) rc = vp_plan_cfg_expect(p, sub, "num_attention_heads", defs, tw->heads);
    if (!rc) rc = vp_plan_cfg_int(p, sub, "num_attention_heads", defs, heads);
    if (!rc && (*heads < 1 || tw->width % *heads))
        return vp_plan_fail(p, VP_ERR_MISMATCH, "%s.num_attention_heads = %lld does not divide the width %lld",
                            sub, (long long)*heads, (long long)tw->width);
    return rc;
}

/* The values expectations are built from, read back after overrides. */
typedef struct siglip_cfg { int64_t v_heads, t_heads, image, proj; } siglip_cfg;

static int readback(vp_plan *p, const siglip_dims *d, siglip_cfg *c)
{
    static const char *T = "text_config", *V = "vision_config";
    int rc = readback_tower(p, T, vp_hf_siglip_text_defaults, &d->t, &c->t_heads);
    if (!rc) rc = readback_tower(p, V, vp_hf_siglip_vision_defaults, &d->v, &c->v_heads);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "vocab_size", vp_hf_siglip_text_defaults, d->vocab);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "max_position_embeddings", vp_hf_siglip_text_defaults, d->ctx);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "patch_size", vp_hf_siglip_vision_defaults, d->patch);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "num_channels", vp_hf_siglip_vision_defaults, d->channels);
    if (!rc) rc = vp_plan_cfg_int(p, V, "image_size", vp_hf_siglip_vision_defaults, &c->image);
    if (rc) return rc;
    if (c->image < 1 || c->image / d->patch != d->grid)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "vision_config.image_size = %lld gives a %lldx%lld patch grid, but "
                            "the position embedding has %lldx%lld", (long long)c->image,
                            (long long)(c->image / d->patch), (long long)(c->image / d->patch), (long long)d->grid,
                            (long long)d->grid);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p->config, T);
    c->proj = d->t.width;
    if (cJSON_GetObjectItemCaseSensitive(t, "projection_size")) {
        rc = vp_plan_cfg_expect(p, T, "projection_size", NULL, d->proj);
        c->proj = d->proj;
    } else if (d->proj != d->t.width) {
        rc = vp_plan_fail(p, VP_ERR_MISMATCH, "txt/head/kernel projects to %lld, not the text width %lld",
                          (long long)d->proj, (long long)d->t.width);
    }
    if (!rc && d->has_head && c->proj != d->v.width)
        rc = vp_plan_fail(p, VP_ERR_MISMATCH, "the text embedding (%lld) and the image embedding (%lld) differ in size: "
                          "SiglipModel compares them directly", (long long)c->proj, (long long)d->v.width);
    return rc;
}

/* ---- the mapping --------------------------------------------------------- */

/* Dense kernel [in, out] -> Linear weight [out, in]; bias as is. */
static int map_dense(vp_plan *p, const char *src, const char *dst)
{
    int rc = vp_plan_transpose(p, vp_plan_strf(p, "%s.weight", dst), vp_plan_req(p, "%s/kernel", src),
                               "Dense kernel transposed");
    if (!rc) rc = vp_plan_copy(p, vp_plan_strf(p, "%s.bias", dst), vp_plan_req(p, "%s/bias", src), "Dense bias");
    return rc;
}

static int map_norm(vp_plan *p, const char *src, const char *dst)
{
    int rc = vp_plan_copy(p, vp_plan_strf(p, "%s.weight", dst), vp_plan_req(p, "%s/scale", src),
                          "LayerNorm scale -> weight");
    if (!rc) rc = vp_plan_copy(p, vp_plan_strf(p, "%s.bias", dst), vp_plan_req(p, "%s/bias", src), "LayerNorm bias");
    return rc;
}

/* A tensor viewed as [numel / width, width] (the seed's reshape(-1, width)). */
static int rows_of(vp_plan *p, long src, int64_t width, int64_t shape[2])
{
    const vp_tensor *t = vp_plan_tensor(p, src);
    if (!t || width < 1 || t->numel % (uint64_t)width)
        return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s (%s) cannot be viewed as rows of %lld",
                            t ? t->name : "?", t ? vp_plan_shape_str(p, t) : "?", (long long)width);
    shape[0] = (int64_t)(t->numel / (uint64_t)width);
    shape[1] = width;
    return VP_OK;
}

/* Attention kernel -> reshape(-1, width).T; bias -> reshape(-1). */
static int map_attn_proj(vp_plan *p, const char *src, const char *dst, int64_t width)
{
    long k = vp_plan_req(p, "%s/kernel", src), b = vp_plan_req(p, "%s/bias", src);
    int rc = VP_OK;
    if (k >= 0) {
        int64_t shape[2] = { 0, 0 };
        static const int perm[2] = { 1, 0 };
        rc = rows_of(p, k, width, shape);
        if (!rc) rc = vp_plan_permute(p, vp_plan_strf(p, "%s.weight", dst), k, 2, shape, perm,
                                      "attention kernel reshaped [D, D] and transposed");
    }
    if (!rc && b >= 0) {
        int64_t n = (int64_t)vp_plan_tensor(p, b)->numel;
        rc = vp_plan_reshape(p, vp_plan_strf(p, "%s.bias", dst), b, 1, &n, "attention bias flattened");
    }
    return rc;
}

static int map_layer(vp_plan *p, const char *src, const char *dst, int64_t width)
{
    static const char *const proj[4][2] = {
        { "query", "q_proj" }, { "key", "k_proj" }, { "value", "v_proj" }, { "out", "out_proj" },
    };
    int rc = map_norm(p, vp_plan_strf(p, "%s/LayerNorm_0", src), vp_plan_strf(p, "%s.layer_norm1", dst));
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%s/LayerNorm_1", src), vp_plan_strf(p, "%s.layer_norm2", dst));
    if (!rc) rc = map_dense(p, vp_plan_strf(p, "%s/MlpBlock_0/Dense_0", src), vp_plan_strf(p, "%s.mlp.fc1", dst));
    if (!rc) rc = map_dense(p, vp_plan_strf(p, "%s/MlpBlock_0/Dense_1", src), vp_plan_strf(p, "%s.mlp.fc2", dst));
    for (int i = 0; !rc && i < 4; i++)
        rc = map_attn_proj(p, vp_plan_strf(p, "%s/MultiHeadDotProductAttention_0/%s", src, proj[i][0]),
                           vp_plan_strf(p, "%s.self_attn.%s", dst, proj[i][1]), width);
    return rc;
}

/* The MAP head's query/key/value, each reshaped and transposed as above,
 * stacked into nn.MultiheadAttention's in_proj (read_in_q_k_v_head). */
static int map_head_qkv(vp_plan *p, const char *src, const char *dst, int64_t width)
{
    static const char *const qkv[3] = { "query", "key", "value" };
    vp_out w = { 0 }, b = { 0 };
    w.name = vp_plan_strf(p, "%s.in_proj_weight", dst);
    b.name = vp_plan_strf(p, "%s.in_proj_bias", dst);
    w.rule = b.rule = "MAP head query/key/value concatenated into in_proj";
    int64_t in_rows = -1;
    for (int i = 0; i < 3; i++) {
        long k = vp_plan_req(p, "%s/%s/kernel", src, qkv[i]), bb = vp_plan_req(p, "%s/%s/bias", src, qkv[i]);
        if (k < 0 || bb < 0) return VP_OK;   /* reported by the strict check */
        int64_t shape[2] = { 0, 0 };
        int rc = rows_of(p, k, width, shape);
        if (rc) return rc;
        if (in_rows >= 0 && shape[0] != in_rows)
            return vp_plan_fail(p, VP_ERR_FORMAT, "MAP head %s kernel has %lld input rows, query has %lld", qkv[i],
                                (long long)shape[0], (long long)in_rows);
        in_rows = shape[0];
        /* out[o][i] = kernel[i][o] over the [in, width] view */
        w.pieces[i] = (vp_piece){ .src = k, .offset = 0, .ndim = 2, .shape = { width, shape[0] },
                                  .strides = { 1, width } };
        const vp_tensor *tb = vp_plan_tensor(p, bb);
        b.pieces[i] = (vp_piece){ .src = bb, .offset = 0, .ndim = 1, .shape = { (int64_t)tb->numel },
                                  .strides = { 1 } };
        b.shape[0] += (int64_t)tb->numel;
    }
    w.npieces = b.npieces = 3;
    w.ndim = 2;
    w.shape[0] = 3 * width;
    w.shape[1] = in_rows;
    b.ndim = 1;
    int rc = vp_plan_add(p, &w);
    return rc ? rc : vp_plan_add(p, &b);
}

static int map_all(vp_plan *p, const char *pre, const siglip_dims *d)
{
    static const int patch_perm[4] = { 3, 2, 0, 1 };
    int rc = vp_plan_permute(p, "vision_model.embeddings.patch_embedding.weight",
                             vp_plan_req(p, "%simg/embedding/kernel", pre), 0, NULL, patch_perm,
                             "patch kernel transposed (3, 2, 0, 1)");
    if (!rc) rc = vp_plan_copy(p, "vision_model.embeddings.patch_embedding.bias",
                               vp_plan_req(p, "%simg/embedding/bias", pre), "patch bias");
    int64_t pos[2] = { d->grid * d->grid, d->v.width };
    if (!rc) rc = vp_plan_reshape(p, "vision_model.embeddings.position_embedding.weight",
                                  vp_plan_req(p, "%simg/pos_embedding", pre), 2, pos, "position embedding reshaped");
    for (int64_t i = 0; !rc && i < d->v.layers; i++)
        rc = map_layer(p, vp_plan_strf(p, "%sencoderblock_%lld", d->v.src, (long long)i),
                       vp_plan_strf(p, "vision_model.encoder.layers.%lld", (long long)i), d->v.width);
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%sencoder_norm", d->v.src), "vision_model.post_layernorm");
    if (!rc && d->has_head) {
        const char *h = vp_plan_strf(p, "%simg/MAPHead_0", pre);
        rc = vp_plan_copy(p, "vision_model.head.probe", vp_plan_req(p, "%s/probe", h), "MAP head probe");
        if (!rc) rc = map_head_qkv(p, vp_plan_strf(p, "%s/MultiHeadDotProductAttention_0", h),
                                   "vision_model.head.attention", d->v.width);
        if (!rc) rc = map_attn_proj(p, vp_plan_strf(p, "%s/MultiHeadDotProductAttention_0/out", h),
                                    "vision_model.head.attention.out_proj", d->v.width);
        if (!rc) rc = map_norm(p, vp_plan_strf(p, "%s/LayerNorm_0", h), "vision_model.head.layernorm");
        if (!rc) rc = map_dense(p, vp_plan_strf(p, "%s/MlpBlock_0/Dense_0", h), "vision_model.head.mlp.fc1");
        if (!rc) rc = map_dense(p, vp_plan_strf(p, "%s/MlpBlock_0/Dense_1", h), "vision_model.head.mlp.fc2");
    }
    if (!rc) rc = vp_plan_copy(p, "text_model.embeddings.token_embedding.weight",
                               vp_plan_req(p, "%stxt/Embed_0/embedding", pre), "token embedding");
    int64_t tpos[2] = { d->ctx, d->t.width };
    if (!rc) rc = vp_plan_reshape(p, "text_model.embeddings.position_embedding.weight",
                                  vp_plan_req(p, "%stxt/pos_embedding", pre), 2, tpos, "position embedding reshaped");
    for (int64_t i = 0; !rc && i < d->t.layers; i++)
        rc = map_layer(p, vp_plan_strf(p, "%sencoderblock_%lld", d->t.src, (long long)i),
                       vp_plan_strf(p, "text_model.encoder.layers.%lld", (long long)i), d->t.width);
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%sencoder_norm", d->t.src), "text_model.final_layer_norm");
    if (!rc) rc = map_dense(p, vp_plan_strf(p, "%stxt/head", pre), "text_model.head");
    int64_t one = 1;
    if (!rc) rc = vp_plan_reshape(p, "logit_scale", vp_plan_req(p, "%st", pre), 1, &one, "params/t -> logit_scale");
    if (!rc) rc = vp_plan_reshape(p, "logit_bias", vp_plan_req(p, "%sb", pre), 1, &one, "params/b -> logit_bias");
    return rc;
}

/* ---- expectations: SiglipModel's state_dict (transformers 4.43 order) ----- */
static int ex(vp_plan *p, const char *name, int ndim, int64_t a, int64_t b)
{
    int64_t s[2] = { a, b };
    return vp_plan_expect(p, name, ndim, s);
}

static int ex_norm(vp_plan *p, const char *prefix, int64_t w)
{
    int rc = ex(p, vp_plan_strf(p, "%s.weight", prefix), 1, w, 0);
    return rc ? rc : ex(p, vp_plan_strf(p, "%s.bias", prefix), 1, w, 0);
}

static int expect_all(vp_plan *p, const siglip_dims *d, const siglip_cfg *c)
{
    int rc = ex(p, "logit_scale", 1, 1, 0);
    if (!rc) rc = ex(p, "logit_bias", 1, 1, 0);
    if (!rc) rc = ex(p, "text_model.embeddings.token_embedding.weight", 2, d->vocab, d->t.width);
    if (!rc) rc = ex(p, "text_model.embeddings.position_embedding.weight", 2, d->ctx, d->t.width);
    for (int64_t i = 0; !rc && i < d->t.layers; i++)
        rc = vp_clip_expect_layer(p, vp_plan_strf(p, "text_model.encoder.layers.%lld.", (long long)i), d->t.width,
                                  d->t.mlp);
    if (!rc) rc = ex_norm(p, "text_model.final_layer_norm", d->t.width);
    if (!rc) rc = ex(p, "text_model.head.weight", 2, c->proj, d->t.width);
    if (!rc) rc = ex(p, "text_model.head.bias", 1, c->proj, 0);
    if (!rc) {
        int64_t s[4] = { d->v.width, d->channels, d->patch, d->patch };
        rc = vp_plan_expect(p, "vision_model.embeddings.patch_embedding.weight", 4, s);
    }
    if (!rc) rc = ex(p, "vision_model.embeddings.patch_embedding.bias", 1, d->v.width, 0);
    int64_t g = c->image / d->patch;
    if (!rc) rc = ex(p, "vision_model.embeddings.position_embedding.weight", 2, g * g, d->v.width);
    for (int64_t i = 0; !rc && i < d->v.layers; i++)
        rc = vp_clip_expect_layer(p, vp_plan_strf(p, "vision_model.encoder.layers.%lld.", (long long)i), d->v.width,
                                  d->v.mlp);
    if (!rc) rc = ex_norm(p, "vision_model.post_layernorm", d->v.width);
    if (!rc && d->has_head) {
        int64_t s[3] = { 1, 1, d->v.width };
        rc = vp_plan_expect(p, "vision_model.head.probe", 3, s);
        if (!rc) rc = ex(p, "vision_model.head.attention.in_proj_weight", 2, 3 * d->v.width, d->v.width);
        if (!rc) rc = ex(p, "vision_model.head.attention.in_proj_bias", 1, 3 * d->v.width, 0);
        if (!rc) rc = ex(p, "vision_model.head.attention.out_proj.weight", 2, d->v.width, d->v.width);
        if (!rc) rc = ex(p, "vision_model.head.attention.out_proj.bias", 1, d->v.width, 0);
        if (!rc) rc = ex_norm(p, "vision_model.head.layernorm", d->v.width);
        if (!rc) rc = ex(p, "vision_model.head.mlp.fc1.weight", 2, d->v.mlp, d->v.width);
        if (!rc) rc = ex(p, "vision_model.head.mlp.fc1.bias", 1, d->v.mlp, 0);
        if (!rc) rc = ex(p, "vision_model.head.mlp.fc2.weight", 2, d->v.width, d->v.mlp);
        if (!rc) rc = ex(p, "vision_model.head.mlp.fc2.bias", 1, d->v.width, 0);
    }
    return rc;
}

static int preprocessor(vp_plan *p, int64_t image, int with_tokenizer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_Delete(p->preprocessor);
    p->preprocessor = o;
    if (!o) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    int rc = vp_json_set(o, "do_convert_rgb", cJSON_CreateNull());
    rc |= vp_json_set_bool(o, "do_normalize", 1);
    rc |= vp_json_set_bool(o, "do_rescale", 1);
    rc |= vp_json_set_bool(o, "do_resize", 1);
    rc |= vp_json_set(o, "image_mean", vp_hf_floats(half3, 3));
    rc |= vp_json_set_str(o, "image_processor_type", "SiglipImageProcessor");
    rc |= vp_json_set(o, "image_std", vp_hf_floats(half3, 3));
    if (with_tokenizer) rc |= vp_json_set_str(o, "processor_class", "SiglipProcessor");
    rc |= vp_json_set_int(o, "resample", 3);
    rc |= vp_json_set_float(o, "rescale_factor", 1.0 / 255.0);
    rc |= vp_json_set(o, "size", vp_hf_hw(image, image));
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

static int add_spm(vp_plan *p, int64_t ctx)
{
    vp_text_file files[3];
    char err[512];
    int trc = vp_spm_tokenizer_files(p->opts->spm, ctx, "SiglipProcessor", files, err, sizeof err);
    if (trc) return vp_plan_fail(p, trc, "--spm %s", err);
    int rc = VP_OK;
    for (int i = 0; !rc && i < 3; i++) rc = vp_plan_extra(p, files[i].name, files[i].data, files[i].len);
    vp_text_files_free(files, 3);
    return rc;
}

static int siglip_detect(const vp_table *tb)
{
    if (!vp_clip_count_suffix(tb, "img/embedding/kernel", NULL)) return 0;
    return vp_clip_count_suffix(tb, "txt/Embed_0/embedding", NULL) ? 80 : 0;
}

static int siglip_build(vp_plan *p)
{
    const char *pre = vp_clip_find_prefix(p, "img/embedding/kernel");
    if (!pre) return vp_clip_count_suffix(&p->table, "img/embedding/kernel", NULL) > 1 ? VP_ERR_AMBIGUOUS : VP_ERR_FORMAT;
    siglip_dims d;
    siglip_cfg c;
    int rc = read_dims(p, pre, &d);
    if (!rc) rc = fill_config(p, &d);
    if (!rc) rc = vp_plan_apply_overrides(p);
    if (!rc) rc = readback(p, &d, &c);
    if (rc) return rc;
    p->hf_class = "SiglipModel";
    if (d.v.heads && d.t.heads)
        vp_plan_note(p, "heads from the attention kernels: vision %lld, text %lld", (long long)d.v.heads,
                     (long long)d.t.heads);
    vp_clip_drop_outside(p, pre);
    rc = map_all(p, pre, &d);
    if (!rc) rc = expect_all(p, &d, &c);
    int tok = p->opts && p->opts->spm;
    if (!rc) rc = preprocessor(p, c.image, tok);
    if (!rc && tok) rc = add_spm(p, d.ctx);
    if (!rc && !tok)    /* the seed always saves a tokenizer; without one the processor cannot load */
        vp_plan_note(p, "warning: no tokenizer files written (spiece.model, tokenizer_config.json, "
                        "special_tokens_map.json), so SiglipProcessor.from_pretrained(OUT_DIR) will fail: pass "
                        "--spm FILE, the SentencePiece model the checkpoint was trained with (big_vision's "
                        "sentencepiece.model of %lld pieces)", (long long)d.vocab);
    if (rc) return rc;
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(p->config, "text_config"), vp_hf_siglip_text_defaults);
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(p->config, "vision_config"), vp_hf_siglip_vision_defaults);
    return VP_OK;
}

static const char *const siglip_names[] = { "siglip", "google/siglip", NULL };

const vp_family vp_family_siglip = {
    .name = "siglip",
    .summary = "big_vision SigLIP (.npz) -> SiglipModel",
    .detect = siglip_detect,
    .build = siglip_build,
    .name_prefixes = siglip_names,
};
