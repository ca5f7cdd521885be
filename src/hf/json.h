/* JSON as Python writes it (src/hf/json.c). */
#ifndef VP_HF_JSON_H
#define VP_HF_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* cJSON keeps no int/float distinction; numbers made with vp_json_float (or
 * parsed from text with a '.' or exponent) carry this flag in ->type and are
 * written as Python floats (1.0, 1e-06); other whole numbers as integers. */
#define VP_JSON_FLOAT_FLAG (1 << 12)
cJSON *vp_json_float(double v);
/* Set (replacing) obj[key]; these return VP_OK or VP_ERR_NOMEM. */
int vp_json_set(cJSON *obj, const char *key, cJSON *val);   /* takes val (deleted on failure) */
int vp_json_set_int(cJSON *obj, const char *key, int64_t v);
int vp_json_set_float(cJSON *obj, const char *key, double v);
int vp_json_set_str(cJSON *obj, const char *key, const char *v);
int vp_json_set_bool(cJSON *obj, const char *key, int v);
/* Integer value of obj[key] when it is an integral number in range: 1, else 0. */
int vp_json_get_int(const cJSON *obj, const char *key, int64_t *out);
/* Parse JSON text marking float literals (VP_JSON_FLOAT_FLAG). NULL if not JSON. */
cJSON *vp_json_parse(const char *text, size_t len);
/* As vp_json_parse; on NULL *code says why: VP_ERR_NOMEM (an allocation
 * failed) or VP_ERR_FORMAT (not JSON). */
cJSON *vp_json_parse_ex(const char *text, size_t len, int *code);
/* json.dumps(item, indent=2, sort_keys=True) + "\n", as transformers'
 * save_pretrained writes config.json and preprocessor_config.json:
 * ASCII-escaped strings, floats in Python's repr. vp__malloc'ed; NULL on OOM. */
char *vp_json_dump(const cJSON *item, size_t *len);

#endif
