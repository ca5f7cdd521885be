/*
 * CLIPSeg (CLIPDensePredT state dict, seed 004:
 * convert_clipseg_original_pytorch_to_hf.py) -> CLIPSegForImageSegmentation.
 *   clip_model.*        the CLIP towers, mapped as for CLIP (convert_clip.c) under "clip."
 *   model.*             an alias of clip_model.visual (same storages): dropped, as the seed does
 *   reduce.*            unused by the HF class: dropped by name (the seed leaves it "unexpected")
 *   film_mul, film_add  -> decoder.film_mul, decoder.film_add
 *   reduces.N           -> decoder.reduces.N
 *   trans_conv[.K]      -> decoder.transposed_convolution[.K]
 *   blocks.N            -> decoder.layers.N (nn.TransformerEncoderLayer): self_attn.in_proj split
 *                          by reduce_dim, linear1/2 -> mlp.fc1/2, norm1/2 -> layer_norm1/2
 * rd16 / rd64 / rd64-refined are told apart by the tensors (reduce_dim from
 * film_mul's rows; "refined" has the Conv-ReLU-ConvT-ReLU-ConvT stack).
 * The released rd64-uni.pth files hold only the decoder; the seed (and
 * this) needs a checkpoint that includes CLIP's weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_clip.h"

/* The original CLIPSeg normalises with ImageNet's statistics, not the 0.5
 * that a bare ViTImageProcessor (what the seed saves) would write. */
static const double imagenet_mean[3] = { 0.485, 0.456, 0.406 };
static const double imagenet_std[3] = { 0.229, 0.224, 0.225 };

typedef struct seg_dims {
    int64_t rd;                      /* reduce_dim */
    int64_t proj;                    /* film input: the CLIP projection size */
    int64_t depth;                   /* decoder blocks (= len(extract_layers)) */
    int64_t dec_mlp;                 /* decoder_intermediate_size */
    int refined;                     /* use_complex_transposed_convolution */
} seg_dims;

static int bad(vp_plan *p, const char *name, const vp_tensor *t, const char *want)
{
    if (!t) return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s is missing", name);
    return vp_plan_fail(p, VP_ERR_FORMAT, "tensor %s has shape %s, expected %s", name, vp_plan_shape_str(p, t), want);
}

static int read_decoder(vp_plan *p, const char *pre, const vp_clip_dims *cd, seg_dims *s)
{
    memset(s, 0, sizeof *s);
    const char *n = vp_plan_strf(p, "%sfilm_mul.weight", pre);
    const vp_tensor *t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[0] < 1) return bad(p, n, t, "[reduce_dim, projection]");
    s->rd = t->shape[0];
    s->proj = t->shape[1];
    s->depth = vp_clip_count_layers(p, pre, "blocks.%lld.self_attn.in_proj_weight");
    if (s->depth < 1) return vp_plan_fail(p, VP_ERR_FORMAT, "no decoder blocks (%sblocks.0.self_attn.in_proj_weight)", pre);
    n = vp_plan_strf(p, "%sblocks.0.linear1.weight", pre);
    t = vp_clip_get(p, NULL, n);
    if (!t || t->ndim != 2 || t->shape[1] != s->rd)
        return bad(p, n, t, vp_plan_strf(p, "[intermediate, %lld]", (long long)s->rd));
    s->dec_mlp = t->shape[0];
    s->refined = vp_plan_src(p, "%strans_conv.0.weight", pre) >= 0;
    if (s->refined) {
        /* Conv 3x3, then two transposed convolutions of kernel patch / 4. */
        int64_t k = cd->v_patch / 4;
        n = vp_plan_strf(p, "%strans_conv.2.weight", pre);
        t = vp_clip_get(p, NULL, n);
        if (!t || t->ndim != 4 || t->shape[0] != s->rd || t->shape[1] != s->rd / 2 || t->shape[2] != k)
            return bad(p, n, t, vp_plan_strf(p, "[%lld, %lld, %lld, %lld] (patch / 4 kernels)", (long long)s->rd,
                                             (long long)(s->rd / 2), (long long)k, (long long)k));
    }
    if (s->proj != cd->proj)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "film_mul takes %lld inputs but CLIP projects to %lld",
                            (long long)s->proj, (long long)cd->proj);
    return VP_OK;
}

/* --model-name: clipseg-rd16 / clipseg-rd64 / clipseg-rd64-refined. */
static int check_model_name(vp_plan *p, const seg_dims *s)
{
    const char *name = p->opts ? p->opts->model_name : NULL;
    if (!name) return VP_OK;
    int64_t rd = strstr(name, "rd16") ? 16 : strstr(name, "rd64") ? 64 : 0;
    int refined = strstr(name, "refined") != NULL;
    if ((rd && rd != s->rd) || (rd && refined != s->refined))
        return vp_plan_fail(p, VP_ERR_MISMATCH, "--model-name %s, but the tensors are a reduce_dim %lld%s decoder",
                            name, (long long)s->rd, s->refined ? " refined" : "");
    return VP_OK;
}

static int fill_config(vp_plan *p, const vp_clip_dims *d, const seg_dims *s)
{
    cJSON *cfg = p->config ? p->config : cJSON_CreateObject();   /* the converter may have made it */
    p->config = cfg;
    if (!cfg) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    static const int64_t extract[3] = { 3, 6, 9 };   /* CLIPDensePredT's default */
    cJSON *ex = cJSON_CreateArray();
    for (int i = 0; ex && i < 3; i++) cJSON_AddItemToArray(ex, cJSON_CreateNumber((double)extract[i]));
    int rc = vp_json_set(cfg, "architectures",
                         cJSON_CreateStringArray((const char *const[]){ "CLIPSegForImageSegmentation" }, 1));
    rc |= vp_json_set_int(cfg, "conditional_layer", 0);
    rc |= vp_json_set_float(cfg, "decoder_attention_dropout", 0.0);
    rc |= vp_json_set_str(cfg, "decoder_hidden_act", "quick_gelu");
    rc |= vp_json_set_int(cfg, "decoder_intermediate_size", s->dec_mlp);
    rc |= vp_json_set_int(cfg, "decoder_num_attention_heads", 4);   /* CLIPDensePredT's n_heads */
    rc |= vp_json_set(cfg, "extract_layers", ex);
    rc |= vp_json_set_float(cfg, "initializer_factor", 1.0);
    rc |= vp_json_set_float(cfg, "logit_scale_init_value", 2.6592);
    rc |= vp_json_set_str(cfg, "model_type", "clipseg");
    rc |= vp_json_set_int(cfg, "projection_dim", d->proj);
    rc |= vp_json_set_int(cfg, "reduce_dim", s->rd);
    rc |= vp_json_set_str(cfg, "torch_dtype", "float32");
    rc |= vp_json_set_bool(cfg, "use_complex_transposed_convolution", s->refined);
    if (rc) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    return vp_clip_fill_subconfigs(p, cfg, d, "clipseg_text_model", "clipseg_vision_model", 0);
}

/* After overrides: extract_layers (one per decoder block, each an encoder
 * layer that exists), the decoder's head count and the fixed sizes. */
static int readback(vp_plan *p, const vp_clip_dims *c, const seg_dims *s, int64_t *dec_heads)
{
    int rc = vp_plan_cfg_expect(p, NULL, "reduce_dim", NULL, s->rd);
    if (!rc) rc = vp_plan_cfg_expect(p, NULL, "decoder_intermediate_size", NULL, s->dec_mlp);
    if (!rc) rc = vp_plan_cfg_int(p, NULL, "decoder_num_attention_heads", NULL, dec_heads);
    if (rc) return rc;
    if (*dec_heads < 1 || s->rd % *dec_heads)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "decoder_num_attention_heads = %lld does not divide reduce_dim %lld",
                            (long long)*dec_heads, (long long)s->rd);
    const cJSON *refined = cJSON_GetObjectItemCaseSensitive(p->config, "use_complex_transposed_convolution");
    if (!cJSON_IsBool(refined) || cJSON_IsTrue(refined) != s->refined)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "use_complex_transposed_convolution must be %s: the checkpoint's "
                            "trans_conv is the %s one", s->refined ? "true" : "false",
                            s->refined ? "refined (Conv-ReLU-ConvT-ReLU-ConvT)" : "single ConvTranspose2d");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(p->config, "extract_layers");
    int n = cJSON_IsArray(ex) ? cJSON_GetArraySize(ex) : -1;
    if (n != s->depth)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "extract_layers has %d entries but the decoder has %lld blocks: "
                            "give them with --set extract_layers=[...]", n, (long long)s->depth);
    for (const cJSON *it = ex->child; it; it = it->next) {
        /* hidden_states[i + 1] must exist: 0 <= i < the vision layer count
         * (range first: casting 1e300 to an integer is undefined) */
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble < (double)c->v_layers) ||
            it->valuedouble != floor(it->valuedouble))
            return vp_plan_fail(p, VP_ERR_MISMATCH, "extract_layers entries must be vision layer indices 0..%lld",
                                (long long)(c->v_layers - 1));
    }
    if (c->v_patch % 4 && s->refined)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "the refined decoder needs a patch size divisible by 4, not %lld",
                            (long long)c->v_patch);
    return VP_OK;
}

static int rename1(vp_plan *p, const char *dst, const char *src, const char *rule)
{
    return vp_plan_copy(p, dst, vp_plan_req(p, "%s", src), rule);
}

static int rename_wb(vp_plan *p, const char *dst, const char *src, const char *rule)
{
    int rc = rename1(p, vp_plan_strf(p, "%s.weight", dst), vp_plan_strf(p, "%s.weight", src), rule);
    return rc ? rc : rename1(p, vp_plan_strf(p, "%s.bias", dst), vp_plan_strf(p, "%s.bias", src), rule);
}

static int map_decoder(vp_plan *p, const char *pre, const seg_dims *s)
{
    int rc = rename_wb(p, "decoder.film_mul", vp_plan_strf(p, "%sfilm_mul", pre), "FiLM rename");
    if (!rc) rc = rename_wb(p, "decoder.film_add", vp_plan_strf(p, "%sfilm_add", pre), "FiLM rename");
    if (s->refined) {
        static const int k[3] = { 0, 2, 4 };
        for (int i = 0; !rc && i < 3; i++)
            rc = rename_wb(p, vp_plan_strf(p, "decoder.transposed_convolution.%d", k[i]),
                           vp_plan_strf(p, "%strans_conv.%d", pre, k[i]), "trans_conv -> transposed_convolution");
    } else if (!rc) {
        rc = rename_wb(p, "decoder.transposed_convolution", vp_plan_strf(p, "%strans_conv", pre),
                       "trans_conv -> transposed_convolution");
    }
    for (int64_t i = 0; !rc && i < s->depth; i++)
        rc = rename_wb(p, vp_plan_strf(p, "decoder.reduces.%lld", (long long)i),
                       vp_plan_strf(p, "%sreduces.%lld", pre, (long long)i), "reduces.N -> decoder.reduces.N");
    for (int64_t i = 0; !rc && i < s->depth; i++) {
        const char *src = vp_plan_strf(p, "%sblocks.%lld.", pre, (long long)i);
        const char *dst = vp_plan_strf(p, "decoder.layers.%lld.", (long long)i);
        rc = vp_clip_split_qkv(p, vp_plan_req(p, "%sself_attn.in_proj_weight", src),
                               vp_plan_req(p, "%sself_attn.in_proj_bias", src), vp_plan_strf(p, "%sself_attn", dst),
                               s->rd, "decoder in_proj split by reduce_dim");
        static const char *const pairs[][2] = {
            { "self_attn.out_proj", "self_attn.out_proj" }, { "linear1", "mlp.fc1" }, { "linear2", "mlp.fc2" },
            { "norm1", "layer_norm1" }, { "norm2", "layer_norm2" },
        };
        for (size_t j = 0; !rc && j < sizeof pairs / sizeof *pairs; j++)
            rc = rename_wb(p, vp_plan_strf(p, "%s%s", dst, pairs[j][1]), vp_plan_strf(p, "%s%s", src, pairs[j][0]),
                           "decoder block rename (linear1/2, norm1/2)");
    }
    /* The unused first reduction (CLIPDensePredT.reduce) and the model.*
     * alias of clip_model.visual are what the seed drops or ignores. */
    if (!rc) {
        vp_plan_drop(p, vp_plan_src(p, "%sreduce.weight", pre), "reduce.* is unused by CLIPSegForImageSegmentation");
        vp_plan_drop(p, vp_plan_src(p, "%sreduce.bias", pre), "reduce.* is unused by CLIPSegForImageSegmentation");
        vp_plan_drop_prefix(p, vp_plan_strf(p, "%smodel.", pre), "model.* is an alias of clip_model.visual");
    }
    return rc;
}

static int ex(vp_plan *p, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = { a, b, c, d };
    return vp_plan_expect(p, name, ndim, s);
}

static int expect_decoder(vp_plan *p, const vp_clip_dims *c, const seg_dims *s, int64_t proj)
{
    int rc = VP_OK;
    static const char *const film[2] = { "film_mul", "film_add" };
    for (int i = 0; !rc && i < 2; i++) {
        rc = ex(p, vp_plan_strf(p, "decoder.%s.weight", film[i]), 2, s->rd, proj, 0, 0);
        if (!rc) rc = ex(p, vp_plan_strf(p, "decoder.%s.bias", film[i]), 1, s->rd, 0, 0, 0);
    }
    int64_t ps = c->v_patch, k = ps / 4;
    if (s->refined) {
        if (!rc) rc = ex(p, "decoder.transposed_convolution.0.weight", 4, s->rd, s->rd, 3, 3);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.0.bias", 1, s->rd, 0, 0, 0);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.2.weight", 4, s->rd, s->rd / 2, k, k);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.2.bias", 1, s->rd / 2, 0, 0, 0);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.4.weight", 4, s->rd / 2, 1, k, k);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.4.bias", 1, 1, 0, 0, 0);
    } else {
        if (!rc) rc = ex(p, "decoder.transposed_convolution.weight", 4, s->rd, 1, ps, ps);
        if (!rc) rc = ex(p, "decoder.transposed_convolution.bias", 1, 1, 0, 0, 0);
    }
    for (int64_t i = 0; !rc && i < s->depth; i++) {
        rc = ex(p, vp_plan_strf(p, "decoder.reduces.%lld.weight", (long long)i), 2, s->rd, c->v_width, 0, 0);
        if (!rc) rc = ex(p, vp_plan_strf(p, "decoder.reduces.%lld.bias", (long long)i), 1, s->rd, 0, 0, 0);
    }
    for (int64_t i = 0; !rc && i < s->depth; i++)
        rc = vp_clip_expect_layer(p, vp_plan_strf(p, "decoder.layers.%lld.", (long long)i), s->rd, s->dec_mlp);
    return rc;
}

static int preprocessor(vp_plan *p, int with_tokenizer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_Delete(p->preprocessor);
    p->preprocessor = o;
    if (!o) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    int rc = vp_json_set_bool(o, "do_normalize", 1);
    rc |= vp_json_set_bool(o, "do_rescale", 1);
    rc |= vp_json_set_bool(o, "do_resize", 1);
    rc |= vp_json_set(o, "image_mean", vp_hf_floats(imagenet_mean, 3));
    rc |= vp_json_set_str(o, "image_processor_type", "ViTImageProcessor");
    rc |= vp_json_set(o, "image_std", vp_hf_floats(imagenet_std, 3));
    if (with_tokenizer) rc |= vp_json_set_str(o, "processor_class", "CLIPSegProcessor");
    rc |= vp_json_set_int(o, "resample", 2);
    rc |= vp_json_set_float(o, "rescale_factor", 1.0 / 255.0);
    rc |= vp_json_set(o, "size", vp_hf_hw(352, 352));   /* the seed's ViTImageProcessor(size=352) */
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

static int clipseg_detect(const vp_table *tb)
{
    size_t len = 0;
    if (!vp_clip_count_suffix(tb, "film_mul.weight", &len)) return 0;
    /* With or without CLIP's weights: build() says what is missing. */
    return 90;
}

static int clipseg_build(vp_plan *p)
{
    const char *pre = vp_clip_find_prefix(p, "film_mul.weight");
    if (!pre) return vp_clip_count_suffix(&p->table, "film_mul.weight", NULL) > 1 ? VP_ERR_AMBIGUOUS : VP_ERR_FORMAT;
    const char *clip = vp_plan_strf(p, "%sclip_model.", pre);
    if (vp_plan_src(p, "%svisual.class_embedding", clip) < 0 && vp_plan_src(p, "%svisual.attnpool.c_proj.weight", clip) < 0)
        return vp_plan_fail(p, VP_ERR_UNSUPPORTED, "this CLIPSeg checkpoint holds only the decoder (no %svisual.*: the "
                            "released rd64-uni.pth files leave CLIP out); the conversion needs a checkpoint that "
                            "includes CLIP's weights, as the seed does", clip);
    vp_clip_dims d, c;
    seg_dims s;
    int64_t dec_heads = 0;
    int rc = vp_clip_read_dims(p, clip, &d);
    if (!rc) rc = read_decoder(p, pre, &d, &s);
    if (!rc) rc = check_model_name(p, &s);
    if (!rc) rc = fill_config(p, &d, &s);
    if (!rc) rc = vp_plan_apply_overrides(p);
    if (!rc) rc = vp_clip_readback(p, &d, 0, &c);
    if (!rc) rc = readback(p, &c, &s, &dec_heads);
    if (rc) return rc;
    p->hf_class = "CLIPSegForImageSegmentation";
    vp_plan_note(p, "CLIPSeg decoder: reduce_dim %lld%s, %lld blocks", (long long)s.rd, s.refined ? ", refined" : "",
                 (long long)s.depth);
    vp_clip_drop_outside(p, pre);
    rc = vp_clip_map(p, clip, "clip.", &d);
    if (!rc) rc = map_decoder(p, pre, &s);
    if (!rc) rc = vp_clip_expect(p, "clip.", &c);
    if (!rc) rc = expect_decoder(p, &c, &s, c.proj);
    if (!rc) rc = preprocessor(p, p->opts && p->opts->bpe_vocab);
    if (!rc) rc = vp_clip_add_bpe(p, d.t_vocab, d.t_ctx, "CLIPSegProcessor");
    if (rc) return rc;
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(p->config, "text_config"), vp_hf_clipseg_text_defaults);
    vp_hf_prune(cJSON_GetObjectItemCaseSensitive(p->config, "vision_config"), vp_hf_clipseg_vision_defaults);
    return VP_OK;
}

static const char *const clipseg_names[] = { "clipseg", "CIDAS/clipseg", NULL };

const vp_family vp_family_clipseg = {
    .name = "clipseg",
    .summary = "CLIPSeg (CLIPDensePredT with CLIP's weights) -> CLIPSegForImageSegmentation",
    .detect = clipseg_detect,
    .build = clipseg_build,
    .name_prefixes = clipseg_names,
};
