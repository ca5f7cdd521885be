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
 * The seeds: the Hugging Face Transformers conversion scripts whose output a
 * family reproduces (convert_vit_timm_to_pytorch.py, convert_dino_to_pytorch.py,
 * convert_clip_original_pytorch_to_hf.py, convert_siglip_to_hf.py,
 * convert_clipseg_original_pytorch_to_hf.py). "As the seed does" means: the
 * same key mapping, tensor transforms, config.json and checks before saving
 * as that script, without Python.
 *
 * The converter (src/convert/: converter.h lists its stages) then checks the
 * plan strictly — every source tensor used or dropped by a named rule, every
 * tensor the target class expects produced with the expected shape — and
 * streams it to disk: contiguous pieces with unchanged dtype go through
 * copy_file_range, the rest through a bounded buffer; output is written into
 * a temporary directory renamed into place only when complete.
 *
 * How a family's build() goes:
 *   1. read sizes from the tensors, fill p->config (and p->preprocessor);
 *   2. call vp_plan_apply_overrides(p) once (--config, then --set), then read
 *      back from p->config every value it builds expectations from, checking
 *      the ones the tensors fix (a --set that contradicts a tensor is an
 *      error naming both);
 *   3. add outputs (vp_plan_copy, vp_plan_rows, ...), drop what the seed
 *      drops (vp_plan_drop with a rule name), and list what the target class
 *      expects (vp_plan_expect), in the class's state_dict() order (that
 *      order decides which shard a tensor lands in, as save_pretrained does).
 * Missing source tensors need no special code: look them up with
 * vp_plan_req() and pass the -1 on; the output is simply not produced and
 * the strict check reports it together with everything else.
 */
#ifndef VP_CONVERT_H
#define VP_CONVERT_H

#include <cjson/cJSON.h>
#include "hf/config.h"
#include "hf/json.h"
#include <stdatomic.h>

/* core's narrow headers only: the source's fields and the format hooks
 * (core/internal.h) are not the converter's business */
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/fileio.h"
#include "core/source_io.h"
#include "core/util.h"

#define VP_MAX_PIECES 8

/* The transformers release whose save_pretrained layout the written files
 * follow (the conformance references were made with it); written as
 * config.json's transformers_version when the family sets none. */
#define VP_HF_LAYOUT_VERSION "4.43.4"

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

/* The tensor table a family's detect() scores: names, dtypes and shapes of
 * a source (or of one sub-dictionary), no data. */
typedef struct vp_table { const vp_tensor *t; size_t n; } vp_table;
/* Index of name in the table (the first in table order), or -1. */
long vp_table_find(const vp_table *tb, const char *name);

enum { VP_SRC_UNUSED = 0, VP_SRC_USED = 1, VP_SRC_DROPPED = 2 };

/* vp_convert_opts: include/vitport/convert.h */

typedef struct vp_plan {
    vp_source *src;
    vp_table table;                  /* src's tensor table */
    const vp_convert_opts *opts;
    vp_arena arena;                  /* names and strings of the plan */
    vp_out *outs; size_t nouts, capouts;
    vp_expect *expect; size_t nexpect, capexpect;
    uint8_t *state;                  /* per source tensor: VP_SRC_* */
    const char **why;                /* per source tensor: the rule that used/dropped it */
    vp_dtype out_dtype_float;        /* what float tensors become (unless keep_dtype) */
    int keep_dtype;
    cJSON *config;                   /* config.json (owned) */
    cJSON *preprocessor;             /* preprocessor_config.json or NULL (owned) */
    /* extra files to write beside the model: name -> contents */
    struct vp_extra_file { const char *name; char *data; size_t len; } *extra; size_t nextra;
    const char *family;              /* chosen family name */
    const char *hf_class;            /* architectures[0] */
    char err[1024];                  /* the message of the last vp_plan_fail ... */
    int errcode;                     /* ... and its code */
    /* --- added later --- */
    const char *key;                 /* the sub-dictionary converted (--key or chosen), or NULL */
    int overrides_applied;           /* set by vp_plan_apply_overrides */
    uint8_t *partial;                /* per source tensor: 1 = deliberately used in part */
    const char **absent; size_t nabsent, capabsent;  /* names vp_plan_req looked for in vain */
    const char *conflict;            /* first tensor both used and dropped (a family bug) */
    struct vp_name_ix { const char *name; long idx; } *index;  /* sorted source names (lookups) */
    const char **rules; size_t nrules, caprules;                /* distinct rule names (interned) */
} vp_plan;

typedef struct vp_family {
    const char *name;                /* as listed in VP_FAMILIES */
    const char *summary;             /* one line for --help */
    /* 0 = not this family; higher = more confident. The scale, shared by
     * every family: 1-10 a generic timm ViT layout (vit 3-10, deit 2, dino 2),
     * 20-30 a layout that names its variant (deit 20 with dist_token, dino 25
     * under backbone., 30 with its projection head), 60-90 a layout only
     * one family has (clip 60, siglip 80, clipseg 90: CLIPSeg holds a CLIP).
     * --model-name's prefix settles among the families scoring > 0. */
    int (*detect)(const vp_table *tb);
    /* Fill the plan (outs, expect, config, preprocessor, extras, state).
     * Return VP_OK or an error code with p->err set. */
    int (*build)(vp_plan *p);
    /* --- optional (zero = none) --- */
    /* When no --key is given and the model sits in sub-dictionaries of which
     * several look like this family (DINO: 'student' and 'teacher'), the
     * first of these present is converted (and the converter says so);
     * otherwise the converter fails listing the candidates. NULL-terminated. */
    const char *const *prefer_keys;
    /* --model-name prefixes that select this family among those that
     * recognise the tensors (default: the family name). NULL-terminated. */
    const char *const *name_prefixes;
} vp_family;

/* The families, listed once, in the order detection tries them: each name
 * N is a `const vp_family vp_family_N` defined in a convert_*.c (vit and
 * deit in convert_vit.c, the others in convert_N.c) with .name = "N". */
#define VP_FAMILIES(X) X(vit) X(deit) X(dino) X(clip) X(siglip) X(clipseg)

#define VP_FAMILY_DECLARE(name) extern const vp_family vp_family_##name;
VP_FAMILIES(VP_FAMILY_DECLARE)
#undef VP_FAMILY_DECLARE

/* The families, NULL-terminated (family.c). */
extern const vp_family *const vp_families[];

/* ---- helpers for families (plan.c) -------------------------------------- */
int vp_plan_fail(vp_plan *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Source tensor index by printf-formatted name, or -1. */
long vp_plan_src(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As vp_plan_src, for a tensor the mapping needs: when absent, the name is
 * remembered and listed by the strict check ("absent from the checkpoint"). */
long vp_plan_req(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const vp_tensor *vp_plan_tensor(vp_plan *p, long src);
/* Mark a source tensor dropped by a named rule (src -1 is ignored). */
void vp_plan_drop(vp_plan *p, long src, const char *rule);
/* Drop every not-yet-used source tensor whose name starts with prefix;
 * returns how many. */
size_t vp_plan_drop_prefix(vp_plan *p, const char *prefix, const char *rule);
/* Outputs. Each marks its source used; returns VP_OK or an error with p->err
 * set. A src of -1 (tensor absent) adds nothing and returns VP_OK: the
 * strict check then reports the expected tensor as missing.
 * Every used source tensor must be covered whole by the pieces that read it,
 * unless vp_plan_partial() says otherwise. */
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
/* General: an output made of pieces, shape given. Names and rules are copied. */
int vp_plan_add(vp_plan *p, const vp_out *o);
/* A source tensor is used only in part on purpose (e.g. a slice); rule says why. */
void vp_plan_partial(vp_plan *p, long src, const char *rule);
/* Expected target tensor. */
int vp_plan_expect(vp_plan *p, const char *name, int ndim, const int64_t *shape);
/* Extra file to write (copied). */
int vp_plan_extra(vp_plan *p, const char *name, const char *data, size_t len);
/* Apply --config and --set to p->config, checking them (plan.c). Call it
 * once, after the inferred config is complete and before reading back the
 * values expectations are built from. If a family does not call it, the
 * converter does after build() (then it cannot change the expectations). */
int vp_plan_apply_overrides(vp_plan *p);
/* Integer config field p->config[sub][key] (sub NULL: top level), the
 * default in defs when absent (src/hf/config.h); fails (p->err) when
 * neither gives an integer. */
int vp_plan_cfg_int(vp_plan *p, const char *sub, const char *key, const vp_hf_default *defs, int64_t *out);
/* As vp_plan_cfg_int, and the value must equal what the tensors say. */
int vp_plan_cfg_expect(vp_plan *p, const char *sub, const char *key, const vp_hf_default *defs, int64_t want);
/* Arena-formatted string owned by the plan. */
const char *vp_plan_strf(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "[3, 4]": t's shape (plan-owned). */
const char *vp_plan_shape_str(vp_plan *p, const vp_tensor *t);
/* An informational line for the user ("using 6 heads from --model-name");
 * printed on stderr unless --quiet. */
void vp_plan_note(vp_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- shared by the timm ViT / DeiT and DINO families (convert_vit.c) ---- */
/* Build a ViT / DeiT plan from a timm-layout state dict whose names start
 * with `pre` ("" or "module." for timm; "backbone." / "module.backbone." in
 * DINO training checkpoints). `dino` only changes how messages name it. */
int vp_vit_build(vp_plan *p, const char *pre, int dino);
/* Score for a timm-layout ViT under prefix pre (0 = not one). */
int vp_vit_detect_prefix(const vp_table *tb, const char *pre);

/* The converter itself (vp_convert, vp_convert_ex, vp_parse_size) is public:
 * include/vitport/convert.h. */

#endif
