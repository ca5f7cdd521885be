/*
 * Shared by the CLIP-like families (convert_clip.c, convert_clipseg.c,
 * convert_siglip.c): locating a model inside a training checkpoint, the
 * OpenAI CLIP tower mapping. The config.json helpers they use (sub-config
 * defaults, pruning, fields read with defaults) are in src/hf/config.h:
 * transformers 4.x's save_pretrained writes every top-level field of a
 * composite config, and in text_config / vision_config only model_type and
 * the fields that differ from the sub-config class's defaults.
 */
#ifndef VP_CONVERT_CLIP_H
#define VP_CONVERT_CLIP_H

#include "convert/convert.h"

/* ---- locating the model in a checkpoint --------------------------------- */
/* Tensors named PREFIX + suffix where PREFIX is a checkpoint wrapper: any
 * container keys ("state_dict/", "model_state_dict/": ending in '/')
 * followed by any number of "module." (DataParallel). Returns how many
 * match; *prefix_len receives the first one's prefix length. */
size_t vp_clip_count_suffix(const vp_table *tb, const char *suffix, size_t *prefix_len);
/* The prefix of the one such tensor (plan-owned string), or NULL when none
 * or several match (p->err set to say which). */
const char *vp_clip_find_prefix(vp_plan *p, const char *suffix);
/* When prefix holds a container ("state_dict/"), drop every tensor outside
 * it (optimizer moments, scaler, ...) by a named rule. */
void vp_clip_drop_outside(vp_plan *p, const char *prefix);

/* Tensor `name` (already formatted), or NULL; *idx receives its index or -1. */
const vp_tensor *vp_clip_get(vp_plan *p, long *idx, const char *name);
/* Consecutive blocks: the count of i = 0, 1, ... for which
 * prefix + printf(fmt, i) exists. */
int64_t vp_clip_count_layers(vp_plan *p, const char *prefix, const char *fmt);

/* ---- the OpenAI CLIP towers --------------------------------------------- */
typedef struct vp_clip_dims {
    /* vision */
    int64_t v_width, v_layers, v_mlp, v_patch, v_channels, v_grid, v_image, v_heads;
    /* text */
    int64_t t_width, t_layers, t_mlp, t_ctx, t_vocab, t_heads;
    int64_t proj;                    /* projection dim (visual.proj / text_projection columns) */
    int64_t input_resolution;        /* the TorchScript archives' buffer, 0 if absent */
} vp_clip_dims;

/* Every size from the tensors of an OpenAI CLIP state dict whose names
 * start with `pre` ("" or "clip_model."); heads stay 0. Refuses a ResNet
 * image tower. */
int vp_clip_read_dims(vp_plan *p, const char *pre, vp_clip_dims *d);
/* Fill cfg's text_config / vision_config (and "projection_dim" inside them
 * when with_proj) from d, including default head counts (width / 64). */
int vp_clip_fill_subconfigs(vp_plan *p, cJSON *cfg, const vp_clip_dims *d, const char *text_type,
                            const char *vision_type, int with_proj);
/* After overrides: read the towers' values back from the config (missing
 * nested fields mean the class default), check those the tensors fix, and
 * return them in *out (image size and heads included). */
int vp_clip_readback(vp_plan *p, const vp_clip_dims *d, int with_proj, vp_clip_dims *out);
/* Outputs for both towers, projections and logit_scale, names pre -> dst
 * ("" or "clip."): the in_proj split into q/k/v, transposed projections;
 * drops the archives' integer buffers by a named rule. */
int vp_clip_map(vp_plan *p, const char *pre, const char *dst, const vp_clip_dims *d);
/* CLIPModel's state_dict names and shapes under dst, in its order. */
int vp_clip_expect(vp_plan *p, const char *dst, const vp_clip_dims *c);
/* q/k/v row split of a fused in_proj (weight and bias) into
 * dst_attn.{q,k,v}_proj.{weight,bias}. */
int vp_clip_split_qkv(vp_plan *p, long w, long b, const char *dst_attn, int64_t dim, const char *rule);
/* Expectations for one pre-norm encoder layer of width w and MLP m, in
 * CLIP's module order (self_attn, layer_norm1, mlp, layer_norm2). */
int vp_clip_expect_layer(vp_plan *p, const char *dst_layer, int64_t w, int64_t m);

/* The tokenizer files from opts->bpe_vocab, when given. */
int vp_clip_add_bpe(vp_plan *p, int64_t vocab, int64_t ctx, const char *processor_class);

#endif
