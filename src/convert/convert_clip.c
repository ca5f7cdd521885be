/*
 * OpenAI CLIP (seed 002: convert_clip_original_pytorch_to_hf.py) ->
 * CLIPModel, and the pieces CLIPSeg and SigLIP share with it (see
 * convert_clip.h).
 *
 * Sources: TorchScript archives as OpenAI released them (fp16 weights with
 * fp32 LayerNorms and embeddings, plus integer buffers input_resolution,
 * context_length, vocab_size), and plain state dicts such as fine-tuned
 * `epoch_N.pt` files ({'state_dict': ...} or {'model_state_dict': ...},
 * often with DataParallel's `module.` prefix) on which the seed fails.
 *
 * The mapping, as the seed's copy_* functions do it (with the known slip in
 * the seed copy fixed: ln_pre -> pre_layrnorm, ln_post -> post_layernorm):
 *   transformer.resblocks.N / visual.transformer.resblocks.N
 *       attn.in_proj_{weight,bias}  rows [0,W) [W,2W) [2W,3W) -> self_attn.{q,k,v}_proj
 *       attn.out_proj, ln_1, ln_2, mlp.c_fc, mlp.c_proj
 *                                   -> self_attn.out_proj, layer_norm1, layer_norm2, mlp.fc1, mlp.fc2
 *   token_embedding, positional_embedding, ln_final  -> text_model.embeddings.*, final_layer_norm
 *   visual.conv1, class_embedding, positional_embedding, ln_pre, ln_post
 *   visual.proj, text_projection  -> transposed into visual_projection / text_projection .weight
 *   logit_scale                    -> logit_scale
 * The seed builds only the default (ViT-B/32) config; sizes come from the
 * tensors here, so every released ViT size converts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_clip.h"
#include "text/text.h"


/* OpenAI's normalisation constants (clip/clip.py _transform). */
static const double openai_mean[3] = { 0.48145466, 0.4578275, 0.40821073 };
static const double openai_std[3] = { 0.26862954, 0.26130258, 0.27577711 };

/* ---- locating the model -------------------------------------------------- */

/* Is name[0..n) a checkpoint wrapper: containers ending in '/', then "module."s? */
static int wrapper_prefix(const char *name, size_t n)
{
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/') slash = name + i;
    size_t at = slash ? (size_t)(slash - name) + 1 : 0;
    while (at < n) {
        if (n - at < 7 || strncmp(name + at, "module.", 7)) return 0;
        at += 7;
    }
    return 1;
}

size_t vp_clip_count_suffix(const vp_table *tb, const char *suffix, size_t *prefix_len)
{
    size_t count = 0, sl = strlen(suffix), n = tb->n;
    for (size_t i = 0; i < n; i++) {
        const char *name = tb->t[i].name;
        size_t nl = strlen(name);
        if (nl < sl || strcmp(name + nl - sl, suffix) || !wrapper_prefix(name, nl - sl)) continue;
        if (!count && prefix_len) *prefix_len = nl - sl;
        count++;
    }
    return count;
}

const char *vp_clip_find_prefix(vp_plan *p, const char *suffix)
{
    size_t len = 0, n = vp_clip_count_suffix(&p->table, suffix, &len);
    if (n == 1) {
        for (size_t i = 0; i < vp_source_count(p->src); i++) {
            const char *name = vp_source_tensor(p->src, i)->name;
            size_t nl = strlen(name), sl = strlen(suffix);
            if (nl == len + sl && !strcmp(name + len, suffix)) return vp_plan_strf(p, "%.*s", (int)len, name);
        }
    }
    if (n == 0) vp_plan_fail(p, VP_ERR_FORMAT, "no tensor named ...%s: not this family's layout", suffix);
    else vp_plan_fail(p, VP_ERR_AMBIGUOUS, "%zu models in this checkpoint (%zu tensors end in %s): pick one with --key",
                      n, n, suffix);
    return NULL;
}

void vp_clip_drop_outside(vp_plan *p, const char *prefix)
{
    const char *slash = strrchr(prefix, '/');
    if (!slash) return;
    size_t keep = (size_t)(slash - prefix) + 1;
    const char *rule = vp_plan_strf(p, "training state outside the model's '%.*s' (optimizer, scaler, ...)",
                                    (int)keep, prefix);
    for (size_t i = 0; i < vp_source_count(p->src); i++) {
        const char *name = vp_source_tensor(p->src, i)->name;
        if (strncmp(name, prefix, keep)) vp_plan_drop(p, (long)i, rule);
    }
}

const vp_tensor *vp_clip_get(vp_plan *p, long *idx, const char *name)
{
    long i = vp_plan_src(p, "%s", name);
    if (idx) *idx = i;
    return i < 0 ? NULL : vp_plan_tensor(p, i);
}

int64_t vp_clip_count_layers(vp_plan *p, const char *prefix, const char *fmt)
{
    int64_t n = 0;
    char name[VP_MAX_NAME + 64];
    for (;;) {
        int k = snprintf(name, sizeof name, "%s", prefix);
        if (k < 0 || (size_t)k >= sizeof name) return n;
        snprintf(name + k, sizeof name - (size_t)k, fmt, (long long)n);
        if (vp_plan_src(p, "%s", name) < 0) return n;
        n++;
    }
}

/* ---- reading the sizes --------------------------------------------------- */

static int shape_fail(vp_plan *p, const char *name, const vp_tensor *t, const char *want)
{
    if (!t) return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s is missing", name);
    return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has shape %s, expected %s", name, vp_plan_shape_str(p, t), want);
}

/* Read an integer scalar buffer (input_resolution, ...); 0 when absent. */
static int read_int_buffer(vp_plan *p, const char *name, int64_t *out)
{
    long i;
    const vp_tensor *t = vp_clip_get(p, &i, name);
    *out = 0;
    if (!t) return VP_OK;
    if (t->numel != 1 || (t->dtype != VP_I64 && t->dtype != VP_I32))
        return shape_fail(p, name, t, "an integer scalar");
    int64_t v = 0;
    if (vp_source_read_as(p->src, (size_t)i, VP_I64, &v, sizeof v) != VP_OK)
        return vp_plan_fail(p, VP_ERR_FORMAT, "%s", vp_source_errmsg(p->src));
    *out = v;
    return VP_OK;
}

static int read_vision_dims(vp_plan *p, const char *pre, vp_clip_dims *d)
{
    const char *n = vp_plan_strf(p, "%svisual.conv1.weight", pre);
    const vp_tensor *t = vp_clip_get(p, NULL, n);
    /* every size >= 1: an empty kernel would leave the patch size unbounded */
    if (!t || t->ndim != 4 || t->shape[2] != t->shape[3] || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1)
        return shape_fail(p, n, t, "[width, channels, patch, patch]");
    d->v_width = t->shape[0];
    d->v_channels = t->shape[1];
    d->v_patch = t->shape[2];
    n = vp_plan_strf(p, "%svisual.class_embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 1 || t->shape[0] != d->v_width)
        return shape_fail(p, n, t, vp_plan_strf(p, "[%lld]", (long long)d->v_width));
    n = vp_plan_strf(p, "%svisual.positional_embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[1] != d->v_width || t->shape[0] < 2)
        return shape_fail(p, n, t, vp_plan_strf(p, "[1 + grid*grid, %lld]", (long long)d->v_width));
    d->v_grid = vp__isqrt(t->shape[0] - 1);
    if (d->v_grid < 1)
        return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has %lld positions: not 1 + a square patch grid", n,
                            (long long)t->shape[0]);
    d->v_image = d->v_grid * d->v_patch;
    n = vp_plan_strf(p, "%svisual.transformer.resblocks.0.mlp.c_fc.weight", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[1] != d->v_width)
        return shape_fail(p, n, t, vp_plan_strf(p, "[mlp, %lld]", (long long)d->v_width));
    d->v_mlp = t->shape[0];
    d->v_layers = vp_clip_count_layers(p, pre, "visual.transformer.resblocks.%lld.attn.in_proj_weight");
    n = vp_plan_strf(p, "%svisual.proj", pre);
    t = vp_clip_get(p, NULL, n);
    /* projection >= 1: CLIPSeg's FiLM layers [reduce_dim, projection] bound reduce_dim by it */
    if (!t || t->ndim != 2 || t->shape[0] != d->v_width || t->shape[1] < 1)
        return shape_fail(p, n, t, vp_plan_strf(p, "[%lld, projection]", (long long)d->v_width));
    d->proj = t->shape[1];
    return VP_OK;
}

static int read_text_dims(vp_plan *p, const char *pre, vp_clip_dims *d)
{
    const char *n = vp_plan_strf(p, "%stoken_embedding.weight", pre);
    const vp_tensor *t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) return shape_fail(p, n, t, "[vocab, width]");
    d->t_vocab = t->shape[0];
    d->t_width = t->shape[1];
    n = vp_plan_strf(p, "%spositional_embedding", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[1] != d->t_width || t->shape[0] < 1)
        return shape_fail(p, n, t, vp_plan_strf(p, "[context, %lld]", (long long)d->t_width));
    d->t_ctx = t->shape[0];
    n = vp_plan_strf(p, "%stransformer.resblocks.0.mlp.c_fc.weight", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[1] != d->t_width)
        return shape_fail(p, n, t, vp_plan_strf(p, "[mlp, %lld]", (long long)d->t_width));
    d->t_mlp = t->shape[0];
    d->t_layers = vp_clip_count_layers(p, pre, "transformer.resblocks.%lld.attn.in_proj_weight");
    n = vp_plan_strf(p, "%stext_projection", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] != d->t_width || t->shape[1] != d->proj)
        return shape_fail(p, n, t, vp_plan_strf(p, "[%lld, %lld] (text width, the image projection's size)",
                                                (long long)d->t_width, (long long)d->proj));
    return VP_OK;
}

int vp_clip_read_dims(vp_plan *p, const char *pre, vp_clip_dims *d)
{
    memset(d, 0, sizeof *d);
    static const char *const resnet[] = { "visual.attnpool.c_proj.weight", "visual.layer1.0.conv1.weight",
                                          "visual.attnpool.positional_embedding" };
    for (size_t i = 0; i < sizeof resnet / sizeof *resnet; i++)
        if (vp_plan_src(p, "%s%s", pre, resnet[i]) >= 0)
            return vp_plan_fail(p, VP_ERR_UNSUPPORTED,
                                "this CLIP has a ResNet image tower (%s%s: RN50, RN101, RN50x4, ...): "
                                "transformers' CLIPModel is ViT-only, so it cannot be converted", pre, resnet[i]);
    int rc = read_vision_dims(p, pre, d);
    if (!rc) rc = read_text_dims(p, pre, d);
    if (!rc) rc = read_int_buffer(p, vp_plan_strf(p, "%sinput_resolution", pre), &d->input_resolution);
    if (rc) return rc;
    if (d->input_resolution > 0) {
        /* The archive records the trained resolution; the position count
         * only fixes it up to the patch size (image // patch == grid). */
        if (d->input_resolution / d->v_patch != d->v_grid)
            return vp_plan_fail(p, VP_ERR_MISMATCH, "%sinput_resolution = %lld does not fit the %lldx%lld grid of "
                                "%lld-pixel patches the position embedding has", pre,
                                (long long)d->input_resolution, (long long)d->v_grid, (long long)d->v_grid,
                                (long long)d->v_patch);
        d->v_image = d->input_resolution;
    }
    return VP_OK;
}

/* ---- config -------------------------------------------------------------- */

int vp_clip_fill_subconfigs(vp_plan *p, cJSON *cfg, const vp_clip_dims *d, const char *text_type,
                            const char *vision_type, int with_proj)
{
    cJSON *t = vp_hf_child(cfg, "text_config"), *v = vp_hf_child(cfg, "vision_config");
    if (!t || !v) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    int rc = 0;
    /* OpenAI's vocabulary ends with <|startoftext|>, <|endoftext|>. */
    rc |= vp_json_set_int(t, "bos_token_id", d->t_vocab - 2);
    rc |= vp_json_set_int(t, "eos_token_id", d->t_vocab - 1);
    rc |= vp_json_set_int(t, "hidden_size", d->t_width);
    rc |= vp_json_set_int(t, "intermediate_size", d->t_mlp);
    rc |= vp_json_set_int(t, "max_position_embeddings", d->t_ctx);
    rc |= vp_json_set_str(t, "model_type", text_type);
    /* Head counts are invisible in the weights: OpenAI's models use 64-wide heads. */
    if (d->t_width % 64 == 0) rc |= vp_json_set_int(t, "num_attention_heads", d->t_width / 64);
    rc |= vp_json_set_int(t, "num_hidden_layers", d->t_layers);
    if (with_proj) rc |= vp_json_set_int(t, "projection_dim", d->proj);
    rc |= vp_json_set_int(t, "vocab_size", d->t_vocab);

    rc |= vp_json_set_int(v, "hidden_size", d->v_width);
    rc |= vp_json_set_int(v, "image_size", d->v_image);
    rc |= vp_json_set_int(v, "intermediate_size", d->v_mlp);
    rc |= vp_json_set_str(v, "model_type", vision_type);
    if (d->v_width % 64 == 0) rc |= vp_json_set_int(v, "num_attention_heads", d->v_width / 64);
    rc |= vp_json_set_int(v, "num_channels", d->v_channels);
    rc |= vp_json_set_int(v, "num_hidden_layers", d->v_layers);
    rc |= vp_json_set_int(v, "patch_size", d->v_patch);
    if (with_proj) rc |= vp_json_set_int(v, "projection_dim", d->proj);
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

static int check_heads(vp_plan *p, const char *sub, const vp_hf_default *defs, int64_t width, int64_t *heads)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(p->config, sub);
    if (!cJSON_GetObjectItemCaseSensitive(o, "num_attention_heads") && width % 64)
        return vp_plan_fail(p, VP_ERR_ARG, "%s width %lld is not a multiple of 64, so the head count cannot be "
                            "assumed: give it with --set %s.num_attention_heads=N", sub, (long long)width, sub);
    int rc = vp_plan_cfg_int(p, sub, "num_attention_heads", defs, heads);
    if (rc) return rc;
    if (*heads < 1 || width % *heads)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "%s.num_attention_heads = %lld does not divide the width %lld",
                            sub, (long long)*heads, (long long)width);
    return VP_OK;
}

int vp_clip_readback(vp_plan *p, const vp_clip_dims *d, int with_proj, vp_clip_dims *c)
{
    const vp_hf_default *td = with_proj ? vp_hf_clip_text_defaults : vp_hf_clipseg_text_defaults;
    const vp_hf_default *vd = with_proj ? vp_hf_clip_vision_defaults : vp_hf_clipseg_vision_defaults;
    *c = *d;
    int rc = 0;
    static const char *T = "text_config", *V = "vision_config";
    if (!rc) rc = vp_plan_cfg_expect(p, T, "vocab_size", td, d->t_vocab);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "hidden_size", td, d->t_width);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "intermediate_size", td, d->t_mlp);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "max_position_embeddings", td, d->t_ctx);
    if (!rc) rc = vp_plan_cfg_expect(p, T, "num_hidden_layers", td, d->t_layers);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "hidden_size", vd, d->v_width);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "intermediate_size", vd, d->v_mlp);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "num_hidden_layers", vd, d->v_layers);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "patch_size", vd, d->v_patch);
    if (!rc) rc = vp_plan_cfg_expect(p, V, "num_channels", vd, d->v_channels);
    if (!rc) rc = vp_plan_cfg_expect(p, NULL, "projection_dim", NULL, d->proj);
    if (!rc && with_proj) rc = vp_plan_cfg_expect(p, T, "projection_dim", td, d->proj);
    if (!rc && with_proj) rc = vp_plan_cfg_expect(p, V, "projection_dim", vd, d->proj);
    if (!rc) rc = check_heads(p, T, td, d->t_width, &c->t_heads);
    if (!rc) rc = check_heads(p, V, vd, d->v_width, &c->v_heads);
    if (!rc) rc = vp_plan_cfg_int(p, V, "image_size", vd, &c->v_image);
    if (rc) return rc;
    /* transformers sizes the position table as (image_size // patch_size)^2 + 1. */
    if (c->v_image < 1 || c->v_image / d->v_patch != d->v_grid)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "vision_config.image_size = %lld gives a %lldx%lld patch grid, but "
                            "the position embedding has %lldx%lld", (long long)c->v_image,
                            (long long)(c->v_image / d->v_patch), (long long)(c->v_image / d->v_patch),
                            (long long)d->v_grid, (long long)d->v_grid);
    return VP_OK;
}

/* ---- the mapping --------------------------------------------------------- */

int vp_clip_split_qkv(vp_plan *p, long w, long b, const char *dst_attn, int64_t dim, const char *rule)
{
    static const char *const qkv[3] = { "q_proj", "k_proj", "v_proj" };
    const vp_tensor *tw = w >= 0 ? vp_plan_tensor(p, w) : NULL, *tb = b >= 0 ? vp_plan_tensor(p, b) : NULL;
    if (tw && (tw->ndim != 2 || tw->shape[0] != 3 * dim || tw->shape[1] != dim))
        return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has shape %s, expected [%lld, %lld] (q, k, v stacked)",
                            tw->name, vp_plan_shape_str(p, tw), (long long)(3 * dim), (long long)dim);
    if (tb && (tb->ndim != 1 || tb->shape[0] != 3 * dim))
        return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has shape %s, expected [%lld]", tb->name,
                            vp_plan_shape_str(p, tb), (long long)(3 * dim));
    for (int i = 0; i < 3; i++) {
        int rc = vp_plan_rows(p, vp_plan_strf(p, "%s.%s.weight", dst_attn, qkv[i]), w, i * dim, dim, rule);
        if (!rc) rc = vp_plan_rows(p, vp_plan_strf(p, "%s.%s.bias", dst_attn, qkv[i]), b, i * dim, dim, rule);
        if (rc) return rc;
    }
    return VP_OK;
}

/* dst <- src, both formatted beforehand; an absent source is left to the strict check. */
static int rename1(vp_plan *p, const char *dst, const char *src, const char *rule)
{
    return vp_plan_copy(p, dst, vp_plan_req(p, "%s", src), rule);
}

static int map_norm(vp_plan *p, const char *dst, const char *src, const char *rule)
{
    int rc = rename1(p, vp_plan_strf(p, "%s.weight", dst), vp_plan_strf(p, "%s.weight", src), rule);
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%s.bias", dst), vp_plan_strf(p, "%s.bias", src), rule);
    return rc;
}

/* One OpenAI ResidualAttentionBlock -> CLIPEncoderLayer. */
static int map_block(vp_plan *p, const char *src, const char *dst, int64_t width)
{
    int rc = vp_clip_split_qkv(p, vp_plan_req(p, "%sattn.in_proj_weight", src),
                               vp_plan_req(p, "%sattn.in_proj_bias", src), vp_plan_strf(p, "%sself_attn", dst),
                               width, "in_proj split into q/k/v rows");
    static const char *const pairs[][2] = {
        { "attn.out_proj", "self_attn.out_proj" }, { "ln_1", "layer_norm1" }, { "ln_2", "layer_norm2" },
        { "mlp.c_fc", "mlp.fc1" }, { "mlp.c_proj", "mlp.fc2" },
    };
    for (size_t i = 0; !rc && i < sizeof pairs / sizeof *pairs; i++)
        rc = map_norm(p, vp_plan_strf(p, "%s%s", dst, pairs[i][1]), vp_plan_strf(p, "%s%s", src, pairs[i][0]),
                      "block rename (ln_N, mlp.c_fc/c_proj, attn.out_proj)");
    return rc;
}

int vp_clip_map(vp_plan *p, const char *pre, const char *dst, const vp_clip_dims *d)
{
    int rc = VP_OK;
    const char *emb = "embedding rename";
    /* text tower */
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%stext_model.embeddings.token_embedding.weight", dst),
                          vp_plan_strf(p, "%stoken_embedding.weight", pre), emb);
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%stext_model.embeddings.position_embedding.weight", dst),
                          vp_plan_strf(p, "%spositional_embedding", pre), emb);
    for (int64_t i = 0; !rc && i < d->t_layers; i++)
        rc = map_block(p, vp_plan_strf(p, "%stransformer.resblocks.%lld.", pre, (long long)i),
                       vp_plan_strf(p, "%stext_model.encoder.layers.%lld.", dst, (long long)i), d->t_width);
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%stext_model.final_layer_norm", dst),
                           vp_plan_strf(p, "%sln_final", pre), "ln_final -> final_layer_norm");
    /* vision tower */
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%svision_model.embeddings.class_embedding", dst),
                          vp_plan_strf(p, "%svisual.class_embedding", pre), emb);
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%svision_model.embeddings.patch_embedding.weight", dst),
                          vp_plan_strf(p, "%svisual.conv1.weight", pre), "visual.conv1 -> patch_embedding");
    if (!rc) rc = rename1(p, vp_plan_strf(p, "%svision_model.embeddings.position_embedding.weight", dst),
                          vp_plan_strf(p, "%svisual.positional_embedding", pre), emb);
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%svision_model.pre_layrnorm", dst),
                           vp_plan_strf(p, "%svisual.ln_pre", pre), "visual.ln_pre -> pre_layrnorm");
    for (int64_t i = 0; !rc && i < d->v_layers; i++)
        rc = map_block(p, vp_plan_strf(p, "%svisual.transformer.resblocks.%lld.", pre, (long long)i),
                       vp_plan_strf(p, "%svision_model.encoder.layers.%lld.", dst, (long long)i), d->v_width);
    if (!rc) rc = map_norm(p, vp_plan_strf(p, "%svision_model.post_layernorm", dst),
                           vp_plan_strf(p, "%svisual.ln_post", pre), "visual.ln_post -> post_layernorm");
    /* projections: x @ proj in OpenAI's code, Linear (x @ W.T) in transformers */
    if (!rc) rc = vp_plan_transpose(p, vp_plan_strf(p, "%svisual_projection.weight", dst),
                                    vp_plan_req(p, "%svisual.proj", pre), "projection transposed");
    if (!rc) rc = vp_plan_transpose(p, vp_plan_strf(p, "%stext_projection.weight", dst),
                                    vp_plan_req(p, "%stext_projection", pre), "projection transposed");
    if (!rc) {
        long ls = vp_plan_req(p, "%slogit_scale", pre);
        const vp_tensor *t = ls >= 0 ? vp_plan_tensor(p, ls) : NULL;
        const char *out = vp_plan_strf(p, "%slogit_scale", dst);
        if (t && t->ndim != 0 && t->numel == 1) rc = vp_plan_reshape(p, out, ls, 0, NULL, "logit_scale as a scalar");
        else rc = vp_plan_copy(p, out, ls, "logit_scale");
    }
    /* TorchScript archives carry the sizes as integer buffers; the config records them. */
    static const char *const buffers[] = { "input_resolution", "context_length", "vocab_size" };
    for (size_t i = 0; !rc && i < sizeof buffers / sizeof *buffers; i++)
        vp_plan_drop(p, vp_plan_src(p, "%s%s", pre, buffers[i]),
                     "OpenAI's integer buffers (input_resolution, context_length, vocab_size): in config.json");
    return rc;
}

static int expect1(vp_plan *p, const char *name, int ndim, int64_t a, int64_t b)
{
    int64_t shape[2] = { a, b };
    return vp_plan_expect(p, name, ndim, shape);
}

static int expect_norm(vp_plan *p, const char *prefix, int64_t w)
{
    int rc = expect1(p, vp_plan_strf(p, "%s.weight", prefix), 1, w, 0);
    return rc ? rc : expect1(p, vp_plan_strf(p, "%s.bias", prefix), 1, w, 0);
}

int vp_clip_expect_layer(vp_plan *p, const char *dst, int64_t w, int64_t m)
{
    static const char *const proj[4] = { "k_proj", "v_proj", "q_proj", "out_proj" };
    int rc = VP_OK;
    for (int j = 0; !rc && j < 4; j++) {
        rc = expect1(p, vp_plan_strf(p, "%sself_attn.%s.weight", dst, proj[j]), 2, w, w);
        if (!rc) rc = expect1(p, vp_plan_strf(p, "%sself_attn.%s.bias", dst, proj[j]), 1, w, 0);
    }
    if (!rc) rc = expect_norm(p, vp_plan_strf(p, "%slayer_norm1", dst), w);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%smlp.fc1.weight", dst), 2, m, w);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%smlp.fc1.bias", dst), 1, m, 0);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%smlp.fc2.weight", dst), 2, w, m);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%smlp.fc2.bias", dst), 1, w, 0);
    if (!rc) rc = expect_norm(p, vp_plan_strf(p, "%slayer_norm2", dst), w);
    return rc;
}

int vp_clip_expect(vp_plan *p, const char *dst, const vp_clip_dims *c)
{
    int rc = vp_plan_expect(p, vp_plan_strf(p, "%slogit_scale", dst), 0, NULL);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%stext_model.embeddings.token_embedding.weight", dst), 2, c->t_vocab,
                          c->t_width);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%stext_model.embeddings.position_embedding.weight", dst), 2, c->t_ctx,
                          c->t_width);
    for (int64_t i = 0; !rc && i < c->t_layers; i++)
        rc = vp_clip_expect_layer(p, vp_plan_strf(p, "%stext_model.encoder.layers.%lld.", dst, (long long)i),
                                  c->t_width, c->t_mlp);
    if (!rc) rc = expect_norm(p, vp_plan_strf(p, "%stext_model.final_layer_norm", dst), c->t_width);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%svision_model.embeddings.class_embedding", dst), 1, c->v_width, 0);
    if (!rc) {
        int64_t shape[4] = { c->v_width, c->v_channels, c->v_patch, c->v_patch };
        rc = vp_plan_expect(p, vp_plan_strf(p, "%svision_model.embeddings.patch_embedding.weight", dst), 4, shape);
    }
    int64_t grid = c->v_image / c->v_patch;
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%svision_model.embeddings.position_embedding.weight", dst), 2,
                          grid * grid + 1, c->v_width);
    if (!rc) rc = expect_norm(p, vp_plan_strf(p, "%svision_model.pre_layrnorm", dst), c->v_width);
    for (int64_t i = 0; !rc && i < c->v_layers; i++)
        rc = vp_clip_expect_layer(p, vp_plan_strf(p, "%svision_model.encoder.layers.%lld.", dst, (long long)i),
                                  c->v_width, c->v_mlp);
    if (!rc) rc = expect_norm(p, vp_plan_strf(p, "%svision_model.post_layernorm", dst), c->v_width);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%svisual_projection.weight", dst), 2, c->proj, c->v_width);
    if (!rc) rc = expect1(p, vp_plan_strf(p, "%stext_projection.weight", dst), 2, c->proj, c->t_width);
    return rc;
}

int vp_clip_add_bpe(vp_plan *p, int64_t vocab, int64_t ctx, const char *processor_class)
{
    if (!p->opts || !p->opts->bpe_vocab) {
        /* the seeds always save a tokenizer; without one the processor cannot load */
        vp_plan_note(p, "warning: no tokenizer files written (vocab.json, merges.txt, tokenizer_config.json, "
                        "special_tokens_map.json), so %s.from_pretrained(OUT_DIR) will fail: pass --bpe-vocab "
                        "bpe_simple_vocab_16e6.txt.gz (OpenAI's CLIP vocabulary; the open_clip_torch wheel ships it "
                        "as open_clip/bpe_simple_vocab_16e6.txt.gz)", processor_class);
        return VP_OK;
    }
    vp_text_file files[4];
    char err[512];
    int trc = vp_bpe_tokenizer_files(p->opts->bpe_vocab, vocab, ctx, processor_class, files, err, sizeof err);
    if (trc) return vp_plan_fail(p, trc, "--bpe-vocab %s", err);
    int rc = VP_OK;
    for (int i = 0; !rc && i < 4; i++) rc = vp_plan_extra(p, files[i].name, files[i].data, files[i].len);
    vp_text_files_free(files, 4);
    return rc;
}

/* ---- the CLIP family ----------------------------------------------------- */

static int clip_detect(const vp_table *tb)
{
    size_t n = vp_clip_count_suffix(tb, "visual.conv1.weight", NULL);
    if (!n) n = vp_clip_count_suffix(tb, "visual.attnpool.c_proj.weight", NULL);   /* ResNet: refused in build */
    if (!n || !vp_clip_count_suffix(tb, "token_embedding.weight", NULL)) return 0;
    return 60;
}

static int clip_preprocessor(vp_plan *p, int64_t image, int with_tokenizer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_Delete(p->preprocessor);
    p->preprocessor = o;
    if (!o) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    int rc = vp_json_set(o, "crop_size", vp_hf_hw(image, image));
    rc |= vp_json_set_bool(o, "do_center_crop", 1);
    rc |= vp_json_set_bool(o, "do_convert_rgb", 1);
    rc |= vp_json_set_bool(o, "do_normalize", 1);
    rc |= vp_json_set_bool(o, "do_rescale", 1);
    rc |= vp_json_set_bool(o, "do_resize", 1);
    rc |= vp_json_set(o, "image_mean", vp_hf_floats(openai_mean, 3));
    rc |= vp_json_set_str(o, "image_processor_type", "CLIPImageProcessor");
    rc |= vp_json_set(o, "image_std", vp_hf_floats(openai_std, 3));
    if (with_tokenizer) rc |= vp_json_set_str(o, "processor_class", "CLIPProcessor");
    rc |= vp_json_set_int(o, "resample", 3);   /* PIL bicubic, as OpenAI's transform */
    rc |= vp_json_set_float(o, "rescale_factor", 1.0 / 255.0);
    cJSON *size = cJSON_CreateObject();
    if (!size || vp_json_set_int(size, "shortest_edge", image)) { cJSON_Delete(size); rc = 1; }
    else rc |= vp_json_set(o, "size", size);
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

static int clip_build(vp_plan *p)
{
    /* A ResNet tower has no class embedding: locate it by its pooling head
     * so that read_dims refuses it by name rather than "not found". */
    const char *anchor = vp_clip_count_suffix(&p->table, "visual.class_embedding", NULL) ? "visual.class_embedding"
                                                                                      : "visual.attnpool.c_proj.weight";
    const char *pre = vp_clip_find_prefix(p, anchor);
    if (!pre) return vp_clip_count_suffix(&p->table, anchor, NULL) > 1 ? VP_ERR_AMBIGUOUS : VP_ERR_FORMAT;
    vp_clip_dims d, c;
    int rc = vp_clip_read_dims(p, pre, &d);
    if (rc) return rc;
    if (*pre) vp_plan_note(p, "model found under '%s'", pre);

    p->hf_class = "CLIPModel";
    cJSON *cfg = p->config ? p->config : cJSON_CreateObject();   /* the converter may have made it */
    p->config = cfg;
    cJSON *arch = cJSON_CreateStringArray((const char *const[]){ "CLIPModel" }, 1);
    if (!cfg || vp_json_set(cfg, "architectures", arch) || vp_json_set_float(cfg, "initializer_factor", 1.0) ||
        vp_json_set_float(cfg, "logit_scale_init_value", 2.6592) || vp_json_set_str(cfg, "model_type", "clip") ||
        vp_json_set_int(cfg, "projection_dim", d.proj) || vp_json_set_str(cfg, "torch_dtype", "float32"))
        return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    rc = vp_clip_fill_subconfigs(p, cfg, &d, "clip_text_model", "clip_vision_model", 1);
    if (!rc) rc = vp_plan_apply_overrides(p);
    if (!rc) rc = vp_clip_readback(p, &d, 1, &c);
    if (rc) return rc;

    vp_clip_drop_outside(p, pre);
    rc = vp_clip_map(p, pre, "", &d);
    if (!rc) rc = vp_clip_expect(p, "", &c);
    if (!rc) rc = clip_preprocessor(p, c.v_image, p->opts && p->opts->bpe_vocab);
    if (!rc) rc = vp_clip_add_bpe(p, d.t_vocab, d.t_ctx, "CLIPProcessor");
    if (rc) return rc;
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(cfg, "text_config"), vp_hf_clip_text_defaults);
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(cfg, "vision_config"), vp_hf_clip_vision_defaults);
    return VP_OK;
}

static const char *const clip_names[] = { "clip", "ViT-", "openai/clip", NULL };

const vp_family vp_family_clip = {
    .name = "clip",
    .summary = "OpenAI CLIP ViT (TorchScript .pt or state dict) -> CLIPModel",
    .detect = clip_detect,
    .build = clip_build,
    .name_prefixes = clip_names,
};
