/*
 * config.json as the Hugging Face layout has it, shared by the converter
 * (which writes it) and the forward pass (which reads it back):
 *
 *  - the defaults of the sub-config classes (CLIPTextConfig() etc. in
 *    transformers 4.43), which decide what a nested config writes (only the
 *    fields that differ) and what an absent field means when read;
 *  - reading integer fields with those defaults;
 *  - --config merging and --set KEY=VALUE, and the head-count check.
 *
 * Errors go to err (one line); the functions return VP_OK or a VP_ERR_* code.
 */
#ifndef VP_HF_CONFIG_H
#define VP_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* One field of a sub-config class's defaults; a table ends with a NULL key. */
typedef struct vp_hf_default {
    const char *key;
    int is_str;
    double num;
    const char *str;
} vp_hf_default;

/* The sub-config classes' defaults (src/hf/defaults.c). */
extern const vp_hf_default vp_hf_clip_text_defaults[];      /* CLIPTextConfig() */
extern const vp_hf_default vp_hf_clip_vision_defaults[];    /* CLIPVisionConfig() */
extern const vp_hf_default vp_hf_clipseg_text_defaults[];   /* CLIPSegTextConfig() */
extern const vp_hf_default vp_hf_clipseg_vision_defaults[]; /* CLIPSegVisionConfig() */
extern const vp_hf_default vp_hf_siglip_text_defaults[];    /* SiglipTextConfig() */
extern const vp_hf_default vp_hf_siglip_vision_defaults[];  /* SiglipVisionConfig() */
extern const vp_hf_default vp_hf_vit_defaults[];           /* ViTConfig() (DeiTConfig(): same values) */
extern const vp_hf_default vp_hf_clip_defaults[];          /* CLIPConfig()'s top-level fields */
extern const vp_hf_default vp_hf_clipseg_defaults[];       /* CLIPSegConfig()'s top-level fields */

/* obj[key] as an object, created when absent (NULL on OOM or a non-object). */
cJSON *vp_hf_child(cJSON *parent, const char *key);
/* Integer cfg[sub][key] (sub NULL: the top level), falling back to the
 * default in defs (may be NULL) when the field is absent. VP_OK;
 * VP_ERR_ARG when the sub-config is not an object or the field is not an
 * integer; VP_ERR_NOTFOUND when neither gives a value. */
int vp_hf_get_int(const cJSON *cfg, const char *sub, const char *key, const vp_hf_default *defs, int64_t *out,
                  char *err, size_t errlen);
/* Remove o's fields equal to their defaults (model_type is kept). */
void vp_hf_prune(cJSON *o, const vp_hf_default *defs);
/* A JSON array of floats / a {"height", "width"} object; NULL on OOM. */
cJSON *vp_hf_floats(const double *v, int n);
cJSON *vp_hf_hw(int64_t h, int64_t w);

/* The default for key in defs, or NULL. */
const vp_hf_default *vp_hf_find_default(const vp_hf_default *defs, const char *key);

/*
 * Typed reads of obj[key] with the class default when absent (defs may be
 * NULL). VP_OK; VP_ERR_NOTFOUND when neither has it; VP_ERR_FORMAT when the
 * field has the wrong type (an integer field holding 2.5, a string field
 * holding a number). Booleans accept JSON true/false only.
 */
int vp_hf_read_int(const cJSON *obj, const char *key, const vp_hf_default *defs, int64_t *out);
int vp_hf_read_float(const cJSON *obj, const char *key, const vp_hf_default *defs, double *out);
int vp_hf_read_str(const cJSON *obj, const char *key, const vp_hf_default *defs, const char **out);
int vp_hf_read_bool(const cJSON *obj, const char *key, int dflt, int *out);

/* ---- overrides (--config FILE, --set KEY=VALUE) ------------------------- */
/* Read the JSON object in path into *out (caller deletes it). */
int vp_hf_load(const char *path, cJSON **out, char *err, size_t errlen);
/* Merge src's members into dst: nested *_config objects merge, the rest replace. */
int vp_hf_merge(cJSON *dst, const cJSON *src);
/* Apply one "KEY=VALUE" (dotted keys reach nested objects, created when
 * absent; VALUE is JSON when it parses as JSON, else a string). */
int vp_hf_set(cJSON *cfg, const char *arg, char *err, size_t errlen);
/* Head counts must be positive integers dividing their width, wherever they sit. */
int vp_hf_check_heads(const cJSON *cfg, char *err, size_t errlen);
/* num_labels, when present, must be a non-negative integer equal to the
 * size of id2label (as PretrainedConfig requires when loading). */
int vp_hf_check_labels(const cJSON *cfg, char *err, size_t errlen);

#endif
