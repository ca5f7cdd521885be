/*
 * CLIP's two towers (transformers' CLIPVisionModel / CLIPTextModel), shared
 * by CLIPModel (clip.c) and CLIPSegForImageSegmentation (clipseg.c), whose
 * CLIPSegVisionModel / CLIPSegTextModel compute the same thing.
 */
#ifndef VP_MODELS_CLIP_H
#define VP_MODELS_CLIP_H

#include "models/model.h"

/* Scratch slots the towers use; a family built on them takes its own from
 * VP_S_CLIP_END on. */
enum { VP_S_CLIP_PATCH = VP_S_FAMILY, VP_S_CLIP_POS, VP_S_CLIP_POSTMP, VP_S_CLIP_END };

typedef struct vp_clip_vision {
    int64_t D, patch, channels, image, grid;   /* grid = image / patch */
    const float *cls;        /* embeddings.class_embedding [D] */
    const float *pos;        /* embeddings.position_embedding.weight [1 + grid^2, D] */
    const float *patch_w;    /* embeddings.patch_embedding.weight [D, C, p, p] (no bias) */
    vp_ln pre, post;         /* pre_layrnorm (sic), post_layernorm */
    vp_encoder enc;
} vp_clip_vision;

typedef struct vp_clip_text {
    int64_t D, vocab, max_pos, eos;
    const float *tok;        /* embeddings.token_embedding.weight [vocab, D] */
    const float *pos;        /* embeddings.position_embedding.weight [max_pos, D] */
    vp_ln final;             /* final_layer_norm */
    vp_encoder enc;
} vp_clip_text;

/* Sizes from the sub-config cfg (NULL: every field its default; `where`
 * names it in messages, e.g. "vision_config", or NULL for the top level)
 * and every weight under prefix (e.g. "clip.vision_model."). */
int vp__clip_vision_load(vp_model *m, vp_clip_vision *v, const cJSON *cfg, const char *where,
                         const vp_hf_default *defs, const char *prefix);
int vp__clip_text_load(vp_model *m, vp_clip_text *t, const cJSON *cfg, const char *where,
                       const vp_hf_default *defs, const char *prefix);
void vp__clip_vision_free(vp_clip_vision *v);
void vp__clip_text_free(vp_clip_text *t);

/* Check the inputs the tower takes and reserve its scratch (call both
 * towers' prepare before either forward). Vision: *L receives the token
 * count 1 + (H/p)(W/p). */
int vp__clip_vision_prepare(vp_ctx *c, const vp_clip_vision *v, const vp_inputs *in, int64_t *L);
int vp__clip_text_prepare(vp_ctx *c, const vp_clip_text *t, const vp_inputs *in);

/* Called after encoder layer `layer` (0-based) with x [B*L, D]: the hidden
 * state transformers lists as hidden_states[layer + 1]. */
typedef void (*vp_clip_layer_fn)(void *ud, int layer, const float *x);

/* x [B*L, D] receives last_hidden_state (the encoder output; transformers
 * applies no norm to it); pooled [B, D] (may be NULL) post_layernorm of the
 * CLS row: pooler_output. The position embeddings are resized bicubically
 * when the grid differs from the config's or H != W, as transformers'
 * interpolate_pos_encoding=True does. */
void vp__clip_vision_forward(vp_ctx *c, const vp_clip_vision *v, const vp_inputs *in, float *x,
                             float *pooled, vp_clip_layer_fn fn, void *ud);
/* x [TB*L, D] receives last_hidden_state (after final_layer_norm); pooled
 * [TB, D] (may be NULL) the row at the EOS token: argmax(input_ids) when
 * eos_token_id == 2 (transformers' legacy rule), else the first position
 * holding eos_token_id (0 when none does). */
void vp__clip_text_forward(vp_ctx *c, const vp_clip_text *t, const vp_inputs *in, float *x, float *pooled);

#endif
