/*
 * vitport verification: run a converted Hugging Face model directory with
 * the engine and the source checkpoint with an evaluator written against
 * the source's own layout (timm / DINO state dicts, OpenAI CLIP, big_vision
 * SigLIP .npz, original CLIPSeg), on the same inputs, and compare every
 * output the source gives by its largest absolute difference. Included by
 * vitport.h.
 *
 * Tolerance (unless the caller sets one): 1e-4 when the converted weights
 * are float32; when any is float16, 1e-2 x max(1, largest |value| of that
 * output in the source's result); bfloat16, 8e-2 x the same (the rounding
 * of the converted weights, not a mapping error, then dominates).
 */
#ifndef VITPORT_VERIFY_H
#define VITPORT_VERIFY_H

#include "vitport/vitport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_verify vp_verify;

typedef struct vp_verify_opts {
    const char *source;          /* the source checkpoint (NULL: compare with `expect` only) */
    const char *key;             /* its sub-dictionary (NULL: the whole file, else teacher,
                                    model, state_dict tried when the top level is no model) */
    const char *family;          /* the source's layout: vit, deit, timm, dino, clip, siglip,
                                    clipseg; NULL: recognised from its tensor names */
    /* Inputs; NULL: deterministic ones (seeded), image size from the
     * model's config, token ids within the vocabulary with the EOS token
     * placed where both the original and transformers pool it. */
    const float *pixel_values;   /* [batch, channels, height, width] */
    int64_t batch, height, width;
    int64_t channels;            /* 0: 3 */
    const int64_t *input_ids;    /* [text_batch, text_len] */
    int64_t text_batch, text_len;
    const char *expect;          /* .npz of reference outputs named as transformers names
                                    them (needs explicit inputs), or NULL */
    double tolerance;            /* > 0: use this instead of the dtype rule above */
    int threads;                 /* engine threads (0: all cores) */
    int no_crc;                  /* do not check the source's zip CRC-32s (convert --no-crc) */
} vp_verify_opts;

/** One compared output. */
typedef struct vp_verify_item {
    const char *name;            /* "logits", "last_hidden_state", ... */
    const char *against;         /* "source" or "expect" */
    uint64_t numel;
    double max_abs;              /* largest |engine - reference| (inf for NaN) */
    double tolerance;
    int ok;
} vp_verify_item;

/** Constructor. *out receives a handle unless memory runs out. */
VP_API int vp_verify_new(vp_verify **out);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). The models and sources vp_verify_run opens allocate through it too. */
VP_API int vp_verify_new_ex(vp_verify **out, const vp_allocator *allocator);
/** Destructor. NULL is a no-op. */
VP_API void vp_verify_free(vp_verify *v);
/** Message of the last failure ("" if none), one line: for a failed check
 * it names the output, the difference and the tolerance. */
VP_API const char *vp_verify_errmsg(const vp_verify *v);

/**
 * Method: verify `model_dir`. VP_OK when every output is within
 * tolerance; VP_ERR_MISMATCH when one is not (or the converted model lacks
 * an output the source gives); VP_ERR_UNSUPPORTED with
 * vp_verify_engine_missing() set when the engine cannot run the model
 * (nothing could be compared); other codes for unreadable input.
 */
VP_API int vp_verify_run(vp_verify *v, const char *model_dir, const vp_verify_opts *opts);
/** Whether the last run stopped because the engine cannot run the model:
 * vp_model_open found no family for its model_type, or refused a config
 * it cannot honour (VP_ERR_UNSUPPORTED); errmsg says which. */
VP_API int vp_verify_engine_missing(const vp_verify *v);
/** The comparisons of the last run, in the order made. */
VP_API size_t vp_verify_count(const vp_verify *v);
VP_API const vp_verify_item *vp_verify_item_at(const vp_verify *v, size_t i);
/** The item with the largest max_abs / tolerance ratio, or NULL. */
VP_API const vp_verify_item *vp_verify_worst(const vp_verify *v);
/** What ran: "timm source evaluator", "expected outputs", ... ("" before a run). */
VP_API const char *vp_verify_check(const vp_verify *v);
/** The class the engine ran ("" if none). */
VP_API const char *vp_verify_class(const vp_verify *v);

/** One line on the last run's worst comparison into buf: "largest difference
 * 9.5e-07 (last_hidden_state vs the source), tolerance 0.0001", or "no
 * outputs compared". */
VP_API void vp_verify_summary(const vp_verify *v, char *buf, size_t len);

/* ---- the check a conversion runs before it publishes ------------------- */
/** State of vp_verify_convert: set the inputs, zero the rest. */
typedef struct vp_verify_convert_state {
    const char *out_dir;         /* named in messages instead of the temporary directory (NULL: keep it) */
    int threads, no_crc;         /* as vp_verify_opts */
    /* what happened */
    int ran, rc;                 /* whether it ran, and vp_verify_run's result */
    int engine_missing;          /* the engine cannot run the model: the conversion stands, not verified */
    char summary[1536];          /* "verified CLASS against the CHECK: largest difference ..." or
                                    "not verified: WHY" ("" if it did not run) */
    char error[1024];            /* the run's failure (vp_verify_errmsg naming out_dir), "" if none */
    vp_verify *v;                /* the comparisons of the run (the caller frees it: vp_verify_free) */
} vp_verify_convert_state;

/**
 * A vp_convert_opts.verify callback (arg: a vp_verify_convert_state):
 * vp_verify_run on the converted temporary directory against the source,
 * as `vitport convert` does by default. VP_OK when every output agrees, and
 * also when the engine cannot run the model (engine_missing set, the summary
 * says why); otherwise vp_verify_run's code with "...; nothing written" in
 * err. Messages name out_dir instead of the temporary directory.
 */
VP_API int vp_verify_convert(void *arg, const char *tmp_dir, const char *src_path, const char *key,
                             const char *family, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VITPORT_VERIFY_H */
