/*
 * The defaults of transformers' config classes, in one place: the converter
 * leaves a nested config's field out when it equals the default (as
 * save_pretrained writes sub-configs), and the engine reads a missing field
 * as the default. Values are transformers 4.43's (unchanged in 5.x).
 */
#ifndef VP_HF_CONFIG_DEFAULTS_H
#define VP_HF_CONFIG_DEFAULTS_H

#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct vp_cfg_default {
    const char *key;
    int is_str;
    double num;
    const char *str;
} vp_cfg_default;

/* Each list ends with a NULL key. */
extern const vp_cfg_default vp_clip_text_defaults[];     /* CLIPTextConfig */
extern const vp_cfg_default vp_clip_vision_defaults[];   /* CLIPVisionConfig */
extern const vp_cfg_default vp_clipseg_text_defaults[];  /* CLIPSegTextConfig */
extern const vp_cfg_default vp_clipseg_vision_defaults[];/* CLIPSegVisionConfig */
extern const vp_cfg_default vp_siglip_text_defaults[];   /* SiglipTextConfig */
extern const vp_cfg_default vp_siglip_vision_defaults[]; /* SiglipVisionConfig */
extern const vp_cfg_default vp_vit_defaults[];           /* ViTConfig (DeiTConfig: same values) */
/* The top levels of the composite configs (the numeric fields only;
 * CLIPSegConfig's extract_layers default is (3, 6, 9)). */
extern const vp_cfg_default vp_clip_defaults[];          /* CLIPConfig */
extern const vp_cfg_default vp_clipseg_defaults[];       /* CLIPSegConfig */

/* The default for key in defs, or NULL. */
const vp_cfg_default *vp_cfg_find_default(const vp_cfg_default *defs, const char *key);

/*
 * Typed reads of obj[key] with the class default when absent (defs may be
 * NULL). VP_OK; VP_ERR_NOTFOUND when neither has it; VP_ERR_FORMAT when the
 * field has the wrong type (an integer field holding 2.5, a string field
 * holding a number). Booleans accept JSON true/false only.
 */
int vp_cfg_read_int(const cJSON *obj, const char *key, const vp_cfg_default *defs, int64_t *out);
int vp_cfg_read_float(const cJSON *obj, const char *key, const vp_cfg_default *defs, double *out);
int vp_cfg_read_str(const cJSON *obj, const char *key, const vp_cfg_default *defs, const char **out);
int vp_cfg_read_bool(const cJSON *obj, const char *key, int dflt, int *out);

#endif
