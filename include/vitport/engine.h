/*
 * vitport engine: run Hugging Face ViT / DeiT / CLIP / SigLIP / CLIPSeg
 * model directories natively. Included by vitport.h.
 *
 * A vp_model is a loaded model directory (config.json + model.safetensors
 * or a sharded index). It is read-only once opened and may be shared by
 * several threads. A vp_ctx is the per-thread working state of one model:
 * scratch buffers and the outputs of the last run. One ctx per thread,
 * reused across runs (after zstd's contexts).
 *
 * Inputs are caller-owned arrays; outputs are owned by the ctx and valid
 * until the next vp_ctx_run or vp_ctx_free.
 */
#ifndef VITPORT_ENGINE_H
#define VITPORT_ENGINE_H

#include "vitport/vitport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_model vp_model;
typedef struct vp_ctx vp_ctx;

/**
 * Constructor. Loads `dir` (config.json, then model.safetensors or
 * model.safetensors.index.json). f32 weights are used in place from the
 * file mapping; f16 / bf16 weights are widened to f32 once here.
 * Missing or misshapen tensors, unknown model_type / architectures and
 * configs the engine cannot honour fail with a message naming the field
 * or tensor. *out always receives a handle unless memory runs out (then
 * NULL), so that vp_model_errmsg() can tell why; close it in either case.
 */
VP_API int vp_model_open(vp_model **out, const char *dir);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). A vp_ctx of the model allocates through it too. */
VP_API int vp_model_open_ex(vp_model **out, const char *dir, const vp_allocator *allocator);
/** Destructor. NULL is a no-op. */
VP_API void vp_model_close(vp_model *m);
/** Message of the last failure ("" if none). */
VP_API const char *vp_model_errmsg(const vp_model *m);
/** config.json's model_type: "vit", "deit", "clip", "siglip",
 * "siglip_vision_model", "siglip_text_model", "clipseg". */
VP_API const char *vp_model_type(const vp_model *m);
/** The class run: "ViTModel", "ViTForImageClassification",
 * "DeiTForImageClassificationWithTeacher", "CLIPModel", "SiglipModel",
 * "SiglipVisionModel", "SiglipTextModel", "SiglipForImageClassification",
 * "CLIPSegForImageSegmentation", ... */
VP_API const char *vp_model_class(const vp_model *m);
/** Which inputs the model takes: bit 0 pixel_values, bit 1 input_ids. */
#define VP_INPUT_PIXELS 1
#define VP_INPUT_IDS    2
VP_API int vp_model_inputs(const vp_model *m);
/** The vision tower's configured image size (0 if none). */
VP_API int vp_model_image_size(const vp_model *m);
/** The text tower's max_position_embeddings (0 if none). */
VP_API int vp_model_max_text_len(const vp_model *m);

/** Inputs of one run. Unused fields are zero / NULL. */
typedef struct vp_inputs {
    const float *pixel_values;   /* [batch, 3, height, width], C order */
    int64_t batch, height, width;
    const int64_t *input_ids;    /* [text_batch, text_len], C order */
    int64_t text_batch, text_len;
    /* ViT / DeiT: accept image sizes other than the config's by
     * interpolating the position embeddings (bicubic, as transformers'
     * interpolate_pos_encoding=True). CLIP / SigLIP / CLIPSeg always
     * interpolate when the size differs, as their transformers classes
     * do with the flag set. */
    int interpolate_pos_encoding;
} vp_inputs;

/** One output array (float32, C order), named as transformers names it. */
typedef struct vp_output {
    const char *name;            /* "last_hidden_state", "logits", ... */
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    const float *data;
} vp_output;

/** Constructor: a context for running m with `threads` threads (0: all
 * cores). *out always receives a handle unless memory runs out. */
VP_API int vp_ctx_new(vp_ctx **out, const vp_model *m, int threads);
/** Destructor. NULL is a no-op. */
VP_API void vp_ctx_free(vp_ctx *c);
VP_API const char *vp_ctx_errmsg(const vp_ctx *c);
/** Method: run the forward pass. Shapes are checked against the model. */
VP_API int vp_ctx_run(vp_ctx *c, const vp_inputs *in);
/** Method: the outputs of the last successful run. */
VP_API size_t vp_ctx_output_count(const vp_ctx *c);
VP_API const vp_output *vp_ctx_output(const vp_ctx *c, size_t i);
/** The output named `name`, or NULL. */
VP_API const vp_output *vp_ctx_output_named(const vp_ctx *c, const char *name);

/* ------------------------------------------------------------------ */
/* .npy / .npz writing (for outputs and arrays the tools hand out)    */
/* ------------------------------------------------------------------ */
typedef struct vp_npz_writer vp_npz_writer;
/** Constructor: an .npz archive (stored members) written under a temporary
 * name and renamed into place by vp_npz_writer_finish. */
VP_API int vp_npz_writer_open(vp_npz_writer **out, const char *path);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_npz_writer_open_ex(vp_npz_writer **out, const char *path, const vp_allocator *allocator);
/** Method: add array `name` (stored as name.npy) from contiguous C-order data. */
VP_API int vp_npz_writer_add(vp_npz_writer *w, const char *name, vp_dtype dtype,
                             int ndim, const int64_t *shape, const void *data);
VP_API int vp_npz_writer_finish(vp_npz_writer *w);
/** Destructor: removes the temporary file if not finished. NULL is a no-op. */
VP_API void vp_npz_writer_close(vp_npz_writer *w);
VP_API const char *vp_npz_writer_errmsg(const vp_npz_writer *w);
/** Write one .npy file (temp name + rename). Message into err on failure. */
VP_API int vp_npy_save(const char *path, vp_dtype dtype, int ndim, const int64_t *shape,
                       const void *data, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VITPORT_ENGINE_H */
