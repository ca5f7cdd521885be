/*
 * The converter's stages, private to src/convert/ (families include only
 * convert.h). One file per concern, in the order a conversion runs them:
 *
 *   family.c   choose the family (and the sub-dictionary) for a source
 *   plan.c     the plan primitives families build with (declared in
 *              convert.h) and the plan's lifetime
 *   check.c    the strict check (load_state_dict(strict=True))
 *   layout.c   output dtypes, safetensors' tensor order, the shard split,
 *              model.safetensors.index.json
 *   writer.c   stream the pieces into the shard files, then the JSON and
 *              extra files beside them
 *   outdir.c   the output-folder transaction: temporary directory, publish
 *              (atomic rename / exchange), cleanup
 *   convert.c  the driver (vp_convert_ex): options, the stages above, the
 *              --json summary
 */
#ifndef VP_CONVERTER_H
#define VP_CONVERTER_H

#include <stdbool.h>

#include "convert/convert.h"

#define VP_CONV_LIST_MAX 20          /* names listed per kind in a strict-check or choice error */

/* ---- small helpers (plan.c) --------------------------------------------- */
/* Grow *arr (of *cap elements of elsize) to hold need; VP_OK or VP_ERR_NOMEM. */
int vp_conv_grow(void **arr, size_t *cap, size_t need, size_t elsize);
/* Elements of a shape; UINT64_MAX for a negative size or an overflow. */
uint64_t vp_conv_numel(int ndim, const int64_t *shape);
bool vp_conv_is_float(vp_dtype t);
double vp_conv_now(void);            /* monotonic seconds */
bool vp_conv_cancelled(const vp_convert_opts *o);
/* Set up p (opts and dtype already set) for src and family; VP_OK or
 * VP_ERR_NOMEM. vp_conv_plan_free frees what it holds (not src). */
int vp_conv_plan_init(vp_plan *p, vp_source *src, const vp_family *fam, const char *key);
void vp_conv_plan_free(vp_plan *p);

/* Names with an index, sorted by name (the strict check, the layout). */
typedef struct vp_conv_named { const char *name; size_t idx; } vp_conv_named;
int vp_conv_named_cmp(const void *a, const void *b);

/* ---- family.c ------------------------------------------------------------ */
/* Decide family and key (opts->family or detection); may replace *srcp by a
 * source narrowed to the chosen sub-dictionary (*keyp then receives its
 * vp__malloc'ed full key). Errors go to err (one line). */
int vp_conv_choose(vp_source **srcp, const char *path, const char *key, const vp_convert_opts *o,
                   const vp_family **famp, char **keyp, char *err, size_t errlen);

/* ---- check.c ------------------------------------------------------------- */
int vp_conv_strict_check(vp_plan *p, char *err, size_t errlen);

/* ---- layout.c ------------------------------------------------------------ */
typedef struct vp_wout {
    const vp_out *o;
    vp_dtype dtype;
    uint64_t nbytes;
    int shard;
} vp_wout;

/* What goes where: dtypes, HF's shard split (in expectation order), write order. */
typedef struct vp_layout {
    vp_wout *w;                      /* one per expected tensor, in expectation order */
    vp_wout **order;                 /* write order */
    size_t n;
    int nshards;
    uint64_t total;
} vp_layout;

/* VP_OK, VP_ERR_NOMEM, or VP_ERR_MISMATCH (an expectation without an output;
 * the strict check rules that out). */
int vp_conv_layout(vp_plan *p, uint64_t max_shard, vp_layout *L);
void vp_conv_layout_free(vp_layout *L);
void vp_conv_shard_name(char *buf, size_t len, int k, int nshards);
int vp_conv_write_index(const char *dir, const vp_layout *L, char *err, size_t errlen);

/* ---- writer.c ------------------------------------------------------------ */
/* Every shard, the index, config.json, preprocessor_config.json and the
 * extra files into dir. Progress on stderr unless quiet. */
int vp_conv_write(vp_plan *p, const vp_layout *L, const char *dir, char *err, size_t errlen);

/* ---- outdir.c ------------------------------------------------------------ */
int vp_conv_write_file(const char *dir, const char *name, const void *data, size_t len, char *err, size_t errlen);
int vp_conv_write_json_file(const char *dir, const char *name, const cJSON *j, char *err, size_t errlen);
void vp_conv_remove_tree(const char *path);
/* A new directory beside OUT_DIR (parent/.BASE.vitport-tmp-PID-START-XXXXXX,
 * START the process's start time): 0, or -1 with errno set. */
int vp_conv_make_temp_dir(char *buf, size_t len, const char *parent, const char *base);
/* Remove the temporary directories in parent that processes no longer
 * running left (killed conversions): only directories of the caller's user
 * named as vp_conv_make_temp_dir names them. Says so on stderr unless quiet;
 * returns how many were removed. */
int vp_conv_remove_stale(const char *parent, int quiet);
/* OUT_DIR split into parent and base name (trailing slashes dropped). */
int vp_conv_split_out(const char *out, char *parent, size_t plen, char *base, size_t blen);
/* Move the finished temporary directory to out. With force an existing out
 * is swapped out atomically (or renamed away first) and deleted. */
int vp_conv_publish(const char *tmp, const char *out, const char *parent, const char *base, int force,
                    char *err, size_t errlen);

#endif
