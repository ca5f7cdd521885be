/*
 * Source evaluators: the original models, run from the source checkpoint
 * in its own layout (timm's state dict, DINO's, OpenAI CLIP's, big_vision
 * SigLIP's parameter tree, CLIPSeg's original module names), written
 * against that layout and independent of the converter's key tables. They
 * read tensors through the public vp_source API (any float dtype widened
 * to f32, as the seeds' checks do with .float()) and compute in f32 with
 * the ops of src/nn/nn.h. Each produces its outputs under transformers'
 * field names, so they can be compared with the converted model's.
 */
#ifndef VP_VERIFY_REF_H
#define VP_VERIFY_REF_H

#include "core/alloc.h"
#include "core/util.h"
#include "nn/nn.h"

#define VP_REF_MAX_OUT 8
#define VP_REF_MAX_EXTRACT 32

typedef struct vp_ref_out {
    const char *name;          /* static: "last_hidden_state", "logits", ... */
    int ndim;
    int64_t shape[4];
    float *data;               /* vp__malloc'ed */
} vp_ref_out;

/* What no tensor shape shows (from the converted config.json or a case's
 * params); 0 = the original code's default (OpenAI CLIP: width / 64). */
typedef struct vp_ref_params {
    int64_t heads;             /* vision tower (timm / DINO: the only tower) */
    int64_t text_heads;
    int64_t decoder_heads;     /* CLIPSeg decoder (default 4) */
    int64_t extract[VP_REF_MAX_EXTRACT];  /* CLIPSeg extract_layers (default 3, 6, 9) */
    int nextract;
    int64_t cond_layer;        /* CLIPSeg conditional layer (default 0) */
} vp_ref_params;

typedef struct vp_ref_inputs {
    const float *pixel_values;  /* [B, 3, H, W] */
    int64_t batch, height, width;
    const int64_t *input_ids;   /* [TB, TL] */
    int64_t text_batch, text_len;
    int64_t channels;           /* of pixel_values (0: 3) */
} vp_ref_inputs;

/* What an evaluator learns about the source before running (sizes read
 * from the tensors), so the caller can make inputs that fit it. */
typedef struct vp_ref_info {
    int64_t image_size;        /* the size its position embeddings were trained at */
    int64_t patch;
    int64_t channels;          /* image channels the patch embedding takes */
    int64_t text_len;          /* text positions (0: no text tower) */
    int64_t vocab;
    int takes_pixels, takes_ids;
    int same_batch;            /* CLIPSeg: one text per image */
} vp_ref_info;

typedef struct vp_ref {
    vp_source *src;            /* borrowed */
    const char *family;        /* "timm", "dino", "clip", "siglip", "clipseg" */
    const char *pre;           /* name prefix inside the source ("", "module.", "backbone.", ...) */
    char prebuf[512];          /* (its storage) */
    int nested;                /* prefixes may cross sub-dictionaries ('/') */
    char err[768];
    vp_ref_out out[VP_REF_MAX_OUT];
    int nout;
    float **owned; size_t nowned, capowned;   /* tensors read (freed by vp_ref_free) */
} vp_ref;

/* The source families: "timm" (ViT / DeiT), "dino", "clip" (OpenAI),
 * "siglip" (big_vision), "clipseg" (original). NULL-terminated. */
extern const char *const vp_ref_families[];

/* Start an evaluator on an open source (names relative to its key).
 * family NULL: recognised from the tensor names. Finds the name prefix
 * before the layout's names ("", "module.", "backbone.", ...); with
 * `nested` also one through sub-dictionaries ("state_dict/module."). */
int vp_ref_init(vp_ref *r, vp_source *src, const char *family, int nested);
int vp_ref_info_get(vp_ref *r, vp_ref_info *info);
/* Run; outputs in r->out. Errors: r->err (one line, naming the tensor). */
int vp_ref_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in);
const vp_ref_out *vp_ref_output(const vp_ref *r, const char *name);
void vp_ref_free(vp_ref *r);

/* ---- shared by the evaluators (ref_common.c) ----------------------------- */
int vp__ref_fail(vp_ref *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The source tensor pre+name, or NULL. */
const vp_tensor *vp__ref_info(vp_ref *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Its values widened to f32, checked to have ndim dims of `shape` (a -1
 * entry accepts any size); NULL with r->err set (absent, misshapen, not
 * a float tensor). The memory lives until vp_ref_free. */
const float *vp__ref_get(vp_ref *r, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Count of i such that pre + printf(fmt, i) exists, from 0 up. */
int64_t vp__ref_count(vp_ref *r, const char *fmt);
/* Layer loops read one layer's weights at a time: everything read or
 * allocated after vp__ref_mark() is freed by vp__ref_release(mark). */
size_t vp__ref_mark(const vp_ref *r);
void vp__ref_release(vp_ref *r, size_t mark);
/* Zeroed scratch owned by the evaluator (NULL + err on OOM / overflow). */
float *vp__ref_buf(vp_ref *r, int64_t n);
/* A new output (buffer owned by r). */
float *vp__ref_add_out(vp_ref *r, const char *name, int ndim, const int64_t *shape);

/* y[m, n] = x[m, k] @ W^T + b, W in nn.Linear's [n, k] layout (b may be NULL). */
void vp__ref_linear(float *y, const float *x, int64_t m, const float *w, const float *b, int64_t n, int64_t k);
/* y[m, n] = x[m, k] @ W + b, W stored [k, n] (flax kernels, OpenAI's proj). */
void vp__ref_matmul(float *y, const float *x, int64_t m, const float *w, const float *b, int64_t n, int64_t k);

/* The families (ref_vit.c, ref_clip.c, ref_siglip.c, ref_clipseg.c). */
int vp__ref_timm_info(vp_ref *r, vp_ref_info *info);
int vp__ref_timm_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in);
int vp__ref_clip_info(vp_ref *r, vp_ref_info *info);
/* The same for an OpenAI CLIP whose names start with pre ("clip_model." in CLIPSeg). */
int vp__ref_clip_info_at(vp_ref *r, const char *pre, vp_ref_info *info);
int vp__ref_clip_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in);
int vp__ref_siglip_info(vp_ref *r, vp_ref_info *info);
int vp__ref_siglip_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in);
int vp__ref_clipseg_info(vp_ref *r, vp_ref_info *info);
int vp__ref_clipseg_run(vp_ref *r, const vp_ref_params *hp, const vp_ref_inputs *in);

/* OpenAI CLIP's towers under a prefix ("" or "clip_model.", after the
 * evaluator's own, e.g. "module."), shared with CLIPSeg (ref_clip.c). */
typedef struct vp_ref_clip {
    char pre[160];             /* the evaluator's prefix + "" or "clip_model." */
    int64_t vwidth, vlayers, patch, grid, vheads, embed, channels;
    int64_t twidth, tlayers, ctx, vocab, theads;
} vp_ref_clip;
int vp__ref_clip_sizes(vp_ref *r, const char *pre, vp_ref_clip *c);
/* Vision tower on pixels: pooled [B, embed] (ln_post(x[:, 0]) @ proj);
 * when `acts` is given, the residual stream after each layer i listed in
 * extract (each [B, L, width]) is copied to acts[j]. */
int vp__ref_clip_visual(vp_ref *r, const vp_ref_clip *c, const vp_ref_inputs *in, float *pooled,
                        const int64_t *extract, int nextract, float **acts);
/* Text tower: [TB, embed] (ln_final at argmax(ids)) @ text_projection. */
int vp__ref_clip_text(vp_ref *r, const vp_ref_clip *c, const vp_ref_inputs *in, float *feat);

#endif
