/*
 * What the model files share: the loaded directory (config.json and the
 * weight files), typed config reads that name the field on failure,
 * weight lookup with shape checks, the per-thread context's scratch and
 * output buffers, and the pre-norm transformer encoder layer that ViT,
 * CLIP, SigLIP and CLIPSeg all use.
 *
 * A family (src/models/<family>.c) provides open/run/free and is listed in
 * model.c's table. Its open() reads the config and fetches every weight it
 * needs (so a missing tensor fails at open, never during a run); its run()
 * checks the inputs, takes scratch and output buffers from the ctx, and
 * computes.
 */
#ifndef VP_MODELS_MODEL_H
#define VP_MODELS_MODEL_H

#include <stdarg.h>
#include <cjson/cJSON.h>

#include "vitport/vitport.h"
#include "core/alloc.h"
#include "core/util.h"
#include "vitport/engine.h"
#include "hf/config.h"
#include "nn/nn.h"

#define VP_MAX_OUTPUTS 16
#define VP_CTX_SLOTS 32

typedef struct vp_model_family {
    const char *model_type;                  /* config.json model_type */
    int (*open)(vp_model *m);                /* config + weights -> m->impl, m->cls */
    void (*free)(void *impl);
    int (*run)(vp_ctx *c, const vp_inputs *in);
} vp_model_family;

typedef struct vp_wentry {
    const char *name;
    size_t src, idx;          /* which file, which tensor in it */
    const float *f32;         /* resolved data, NULL until asked for */
} vp_wentry;

struct vp_model {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    int errcode;              /* the code of the failure errmsg tells */
    char *dir;
    cJSON *config;
    const char *model_type;
    const char *cls;          /* class run (static string) */
    int inputs;               /* VP_INPUT_* */
    int image_size, max_text_len;
    const vp_model_family *family;
    void *impl;

    vp_source **src;          /* the weight files */
    size_t nsrc;
    vp_wentry *w;             /* every tensor, sorted by name */
    size_t nw;
    float **owned;            /* widened or realigned copies */
    size_t nowned, capowned;
};

struct vp_ctx {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    const vp_model *m;
    int threads;
    vp_output out[VP_MAX_OUTPUTS];
    size_t nout;
    float *outbuf[VP_MAX_OUTPUTS];
    size_t outcap[VP_MAX_OUTPUTS];
    float *slot[VP_CTX_SLOTS];
    size_t slotcap[VP_CTX_SLOTS];
};

/* Scratch slots: the encoder uses the first ones; families take theirs
 * from VP_S_FAMILY on. */
enum {
    VP_S_NORM = 0, VP_S_Q, VP_S_K, VP_S_V, VP_S_CTX, VP_S_MLP, VP_S_ATTN,
    VP_S_FAMILY
};

/* ---- errors ------------------------------------------------------------- */
/* "DIR: message" into m->errmsg (the first failure is kept); returns code. */
int vp__merr(vp_model *m, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vp__cerr(vp_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- config ------------------------------------------------------------- */
/* The sub-object `key` of the config (e.g. "vision_config"); an absent one
 * reads as all defaults (NULL returned, no error); a non-object fails. */
int vp__cfg_sub(vp_model *m, const char *key, const cJSON **out);
/* Typed reads naming "config.json: <where>.<key>" on failure; `where` is
 * the sub-config's name or NULL for the top level. Integers must lie in
 * [lo, hi]. */
int vp__cfg_int(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, int64_t lo, int64_t hi, int64_t *out);
int vp__cfg_float(vp_model *m, const cJSON *obj, const char *where, const char *key,
                  const vp_hf_default *defs, double *out);
int vp__cfg_str(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, const char **out);
int vp__cfg_act(vp_model *m, const cJSON *obj, const char *where, const char *key,
                const vp_hf_default *defs, vp_act *out);

/* ---- weights ------------------------------------------------------------ */
/* The tensor named by fmt, or NULL (no error). */
const vp_tensor *vp__winfo(vp_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Its float32 data, checked to have exactly `shape` (ndim dims); NULL and
 * an error naming the tensor when absent or misshapen. */
const float *vp__weight(vp_model *m, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* As vp__weight, but an absent tensor gives NULL without an error. */
const float *vp__weight_opt(vp_model *m, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef struct vp_linear { vp_nn_w w; const float *b; } vp_linear;
typedef struct vp_ln { const float *g, *b; int64_t n; float eps; } vp_ln;
/* PREFIX.weight [n, k] and (when bias) PREFIX.bias [n]. */
int vp__load_linear(vp_model *m, vp_linear *l, int64_t n, int64_t k, int bias, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* PREFIX.weight [n] and PREFIX.bias [n]. */
int vp__load_ln(vp_model *m, vp_ln *l, int64_t n, double eps, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* y[rows, n] = x[rows, k] W^T + b */
void vp__linear(const vp_linear *l, float *y, int64_t ldy, const float *x, int64_t ldx, int64_t rows);
void vp__ln(const vp_ln *l, float *y, const float *x, int64_t rows);

/* ---- context buffers ------------------------------------------------------ */
/* Scratch slot of at least n floats (grown, kept across runs); NULL and an
 * error on OOM. */
float *vp__scratch(vp_ctx *c, int slot, size_t n);
/* Register output `name` with the shape given, return its buffer. */
float *vp__output(vp_ctx *c, const char *name, int ndim, const int64_t *shape);

/* ---- the pre-norm encoder layer -------------------------------------------- */
typedef struct vp_enc_layer {
    vp_ln ln1, ln2;                 /* before attention, before the MLP */
    vp_linear q, k, v, o, fc1, fc2;
} vp_enc_layer;

typedef struct vp_encoder {
    int64_t layers, width, heads, mlp;
    vp_act act;
    vp_enc_layer *l;                /* layers entries (owned by the family) */
} vp_encoder;

/* Names of one layer's modules under a prefix, for vp__encoder_load. */
typedef struct vp_enc_names {
    const char *ln1, *ln2, *q, *k, *v, *o, *fc1, *fc2;
} vp_enc_names;
extern const vp_enc_names vp_enc_names_vit;   /* layernorm_before, attention.attention.query, ... */
extern const vp_enc_names vp_enc_names_clip;  /* layer_norm1, self_attn.q_proj, ... (CLIP, SigLIP, CLIPSeg) */

/* Allocate e->l and fetch every layer's weights: layer i's modules are
 * PREFIX<i>.<name>, e.g. prefix "vit.encoder.layer." */
int vp__encoder_load(vp_model *m, vp_encoder *e, const char *prefix, const vp_enc_names *nm, double eps);
void vp__encoder_free(vp_encoder *e);
/* Scratch every layer needs for B sequences of L tokens; call once before
 * the layer loop (so the loop allocates nothing). */
int vp__encoder_reserve(vp_ctx *c, const vp_encoder *e, int64_t B, int64_t L);
/* x [B*L, width] in place: x += attn(ln1(x)); x += mlp(ln2(x)). */
void vp__encoder_layer(vp_ctx *c, const vp_encoder *e, int i, float *x, int64_t B, int64_t L, int causal);

/* Patch position embeddings [g*g, D] resized to a gh x gw grid [gh*gw, D]
 * (transformers' interpolate_pos_encoding: bicubic, align_corners=False).
 * tmp: D * (g*g + gh*gw) floats. */
void vp__pos_interpolate(float *out, const float *pos, int64_t D, int64_t g, int64_t gh, int64_t gw, float *tmp);

/* ---- families ----------------------------------------------------------- */
extern const vp_model_family vp_model_vit;
extern const vp_model_family vp_model_deit;
extern const vp_model_family vp_model_siglip, vp_model_siglip_vision, vp_model_siglip_text;
extern const vp_model_family vp_model_clip;          /* clip.c */
extern const vp_model_family vp_model_clip_vision;
extern const vp_model_family vp_model_clip_text;
extern const vp_model_family vp_model_clipseg;       /* clipseg.c */

#endif
