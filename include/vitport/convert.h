/*
 * vitport conversion: a checkpoint in its release format -> the Hugging Face
 * layout (config.json, model.safetensors or shards with an index,
 * preprocessor_config.json, tokenizer files), exactly as the Hugging Face
 * conversion scripts write it. Included by vitport/vitport.h.
 *
 * Conversion is one call without a handle: errors go to the caller's
 * buffer (one line), the result code is returned.
 */
#ifndef VITPORT_CONVERT_H
#define VITPORT_CONVERT_H

#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
#include <atomic>
typedef std::atomic_int vp_atomic_int;   /* the same object as C11's atomic_int */
#else
#include <stdatomic.h>
typedef atomic_int vp_atomic_int;
#endif

#include "vitport/vitport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options; zero-initialise, then set what is wanted (all zero/NULL = the
 * defaults: detect the family, float32 output, 5 GB shards). */
typedef struct vp_convert_opts {
    const char *family;              /* NULL or "auto" (detect), or a family name (vp_convert_family) */
    const char *model_name;          /* the original model's name: settles head counts, picks a family */
    const char *config_path;         /* a config.json to start from (its values override the inferred ones) */
    const char *dtype;               /* "keep", "f32", "f16", "bf16"; NULL = f32 */
    uint64_t max_shard_size;         /* bytes; 0 = default 5 GB */
    int force;                       /* replace an existing output directory (atomically) */
    int quiet;                       /* no messages or progress on stderr */
    const char *bpe_vocab;           /* CLIP's bpe_simple_vocab_16e6.txt(.gz) -> tokenizer files */
    const char *spm;                 /* SigLIP's SentencePiece model -> tokenizer files */
    const char *labels;              /* class names, one per line, or an id2label JSON object */
    const char **sets;               /* nsets "KEY=VALUE" config overrides (dotted keys reach nested configs) */
    int nsets;
    const char *data_dir;            /* bundled data (imagenet_synsets.txt); NULL = $VITPORT_DATADIR */
    int sync;                        /* fsync the model files before the rename */
    vp_atomic_int *cancel;              /* when non-NULL and set non-zero (e.g. from a signal handler),
                                        the conversion stops, removes its temporary directory and
                                        fails with "interrupted" */
    int no_crc;                      /* do not check zip members' CRC-32 (vp_source_set_crc_check) */
    /* Verification: when non-NULL, called with the complete temporary
     * output directory just before it would be published; non-zero fails
     * the conversion (nothing is written, out_dir is untouched, err says
     * why). `key` is the sub-dictionary converted (or NULL), `family` the
     * converter's family name. vp_verify_convert (vitport/verify.h, arg a
     * vp_verify_convert_state) is the check `vitport convert` runs. */
    int (*verify)(void *arg, const char *tmp_dir, const char *src_path, const char *key,
                  const char *family, char *err, size_t errlen);
    void *verify_arg;
    /* every allocation of the conversion (the sources, models and
     * verification it opens, the summary) goes through it; NULL: the
     * default (vitport.h, Allocators) */
    const vp_allocator *allocator;
} vp_convert_opts;

/** Convert src_path (its sub-dictionary key when not NULL; a nested
 *  checkpoint is searched otherwise) into out_dir, which must not exist
 *  unless opts->force. The output is written into a temporary directory
 *  beside out_dir and renamed into place only when complete; on failure
 *  nothing is left. Returns VP_OK or a VP_ERR_* code with a one-line
 *  message in err. opts may be NULL (the defaults). */
VP_API int vp_convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                      char *err, size_t errlen);
/** As vp_convert; when summary is not NULL it receives, on success, a JSON
 *  object as text (family, class, out_dir, config, key, tensors, bytes,
 *  shards, dtype, seconds, dropped [{rule, count}]) to free with
 *  vp_convert_free; NULL on failure. */
VP_API int vp_convert_ex(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                         char *err, size_t errlen, char **summary);
/** Frees a summary from vp_convert_ex. NULL is a no-op. */
VP_API void vp_convert_free(char *summary);

/** The i-th conversion family (0, 1, ...): its name ("vit", "clip", ...),
 *  and a one-line description in *summary when summary is not NULL; NULL
 *  past the last. */
VP_API const char *vp_convert_family(size_t i, const char **summary);

/** Parse a size like "5GB", "500MB", "2GiB", "123" (bytes) as transformers
 *  does (kB/MB/GB = powers of 1000, KiB/MiB/GiB = powers of 1024). */
VP_API int vp_parse_size(const char *s, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* VITPORT_CONVERT_H */
