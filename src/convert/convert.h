/*
 * Conversion plans. A family (one file per source family: convert_vit.c,
 * convert_clip.c, ...) reads the source's tensor table, infers the config,
 * and builds a plan: each output tensor is the concatenation (flattened, in
 * order) of one or more *pieces*, and each piece is a strided view of one
 * source tensor's values in C order. That one mechanism covers every
 * transform the seeds use: rename (whole view), the qkv split (row slice),
 * transposes and permutes (permuted strides), reshapes (new shape over
 * contiguous values) and concatenation (several pieces).
 *
 * The engine (convert.c) then checks the plan strictly — every source
 * tensor used or dropped by a named rule, every tensor the target class
 * expects produced with the expected shape — and streams it to disk:
 * contiguous pieces with unchanged dtype go through copy_file_range, the
 * rest through a bounded buffer; output is written into a temporary
 * directory renamed into place only when complete.
 */
#ifndef VP_CONVERT_H
#define VP_CONVERT_H

#include <cjson/cJSON.h>

#include "core/internal.h"

#define VP_MAX_PIECES 8

typedef struct vp_piece {
    long src;                        /* source tensor index (narrowed view) */
    int64_t offset;                  /* element offset into the source's C-order values */
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    int64_t strides[VP_MAX_DIMS];    /* element strides over the source's C-order values */
} vp_piece;

typedef struct vp_out {
    const char *name;                /* HF state_dict name */
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    int npieces;
    vp_piece pieces[VP_MAX_PIECES];
    const char *rule;                /* which rule produced it (for --json / messages) */
} vp_out;

/* What the target class's state_dict() has: names and shapes, built from
 * the config independently of the source (as load_state_dict checks). */
typedef struct vp_expect {
    const char *name;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
} vp_expect;

enum { VP_SRC_UNUSED = 0, VP_SRC_USED = 1, VP_SRC_DROPPED = 2 };

typedef struct vp_convert_opts {
    const char *family;              /* "auto" or a family name */
    const char *model_name;          /* --model-name */
    const char *config_path;         /* --config: a config.json to start from */
    const char *dtype;               /* "keep", "f32", "f16", "bf16"; NULL = family default */
    uint64_t max_shard_size;         /* bytes; 0 = default 5 GB */
    int force;
    int quiet;
    int json;
    const char *bpe_vocab;           /* CLIP's bpe_simple_vocab_16e6.txt(.gz) */
    const char *spm;                 /* SigLIP's SentencePiece model */
    const char *labels;              /* file of class names, one per line */
    const char **sets;               /* --set KEY=VALUE, nsets of them */
    int nsets;
} vp_convert_opts;

typedef struct vp_plan {
    vp_source *src;
    const vp_convert_opts *opts;
    vp_arena arena;                  /* names and strings of the plan */
    vp_out *outs; size_t nouts, capouts;
    vp_expect *expect; size_t nexpect, capexpect;
    uint8_t *state;                  /* per source tensor: VP_SRC_* */
    const char **why;                /* per source tensor: the rule that used/dropped it */
    vp_dtype out_dtype_float;        /* what float tensors become (keep => -1 via keep flag) */
    int keep_dtype;
    cJSON *config;                   /* config.json (owned) */
    cJSON *preprocessor;             /* preprocessor_config.json or NULL (owned) */
    /* extra files to write beside the model: name -> contents */
    struct vp_extra_file { const char *name; char *data; size_t len; } *extra; size_t nextra;
    const char *family;              /* chosen family name */
    const char *hf_class;            /* architectures[0] */
    char err[1024];
} vp_plan;

typedef struct vp_family {
    const char *name;                /* "vit", "deit", "dino", "clip", "siglip", "clipseg" */
    const char *summary;             /* one line for --help */
    /* 0 = not this family; higher = more confident. */
    int (*detect)(const vp_source *src);
    /* Fill the plan (outs, expect, config, preprocessor, extras, state).
     * Return VP_OK or an error code with p->err set. */
    int (*build)(vp_plan *p);
} vp_family;

/* The families, NULL-terminated (convert.c). */
extern const vp_family *const vp_families[];

/* ---- helpers for families (convert.c) ---------------------------------- */
int vp_plan_fail(vp_plan *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Source tensor index by printf-formatted name, or -1. */
long vp_plan_src(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const vp_tensor *vp_plan_tensor(vp_plan *p, long src);
/* Mark a source tensor dropped by a named rule. */
void vp_plan_drop(vp_plan *p, long src, const char *rule);
/* Outputs. Each marks its source used; returns VP_OK or an error with p->err set. */
int vp_plan_copy(vp_plan *p, const char *out, long src, const char *rule);
/* Rows [row0, row0+nrows) along dimension 0 (the qkv split). */
int vp_plan_rows(vp_plan *p, const char *out, long src, int64_t row0, int64_t nrows, const char *rule);
/* Reshape (same element count, C order) then permute dimensions:
 * out[i...] = reshaped.permute(perm). new_ndim/new_shape NULL/0 = keep shape. */
int vp_plan_permute(vp_plan *p, const char *out, long src, int new_ndim, const int64_t *new_shape,
                    const int *perm, const char *rule);
/* 2-D transpose (a special case of permute). */
int vp_plan_transpose(vp_plan *p, const char *out, long src, const char *rule);
/* Reshape only. */
int vp_plan_reshape(vp_plan *p, const char *out, long src, int ndim, const int64_t *shape, const char *rule);
/* General: an output made of pieces, shape given. */
int vp_plan_add(vp_plan *p, const vp_out *o);
/* Expected target tensor. */
int vp_plan_expect(vp_plan *p, const char *name, int ndim, const int64_t *shape);
/* Extra file to write (copied). */
int vp_plan_extra(vp_plan *p, const char *name, const char *data, size_t len);
/* Apply --config and --set to p->config, checking them (convert.c). */
int vp_plan_apply_overrides(vp_plan *p);
/* Arena-formatted string owned by the plan. */
const char *vp_plan_strf(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the engine --------------------------------------------------------- */
/* Pick the family (opts->family or detection), build, check, write OUT_DIR
 * atomically. Errors go to err (one line). Progress to stderr unless quiet. */
int vp_convert(const char *src_path, const char *key, const char *out_dir,
               const vp_convert_opts *opts, char *err, size_t errlen);

#endif
