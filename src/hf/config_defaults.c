/* transformers' config-class defaults and typed reads with them. */
#include <math.h>
#include <string.h>

#include "vitport/vitport.h"
#include "hf/config_defaults.h"

#define NUM(k, v) { k, 0, v, NULL }
#define STR(k, v) { k, 1, 0, v }
const vp_cfg_default vp_clip_text_defaults[] = {
    NUM("vocab_size", 49408), NUM("hidden_size", 512), NUM("intermediate_size", 2048),
    NUM("projection_dim", 512), NUM("num_hidden_layers", 12), NUM("num_attention_heads", 8),
    NUM("max_position_embeddings", 77), NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"),
    NUM("initializer_range", 0.02), NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0),
    NUM("pad_token_id", 1), NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_clip_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("projection_dim", 512),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12), NUM("num_channels", 3),
    NUM("patch_size", 32), NUM("image_size", 224), NUM("initializer_range", 0.02),
    NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0), NUM("layer_norm_eps", 1e-5),
    STR("hidden_act", "quick_gelu"), { NULL, 0, 0, NULL }
};
/* CLIPSeg's sub-configs are CLIP's without projection_dim. */
const vp_cfg_default vp_clipseg_text_defaults[] = {
    NUM("vocab_size", 49408), NUM("hidden_size", 512), NUM("intermediate_size", 2048),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 8), NUM("max_position_embeddings", 77),
    NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"), NUM("initializer_range", 0.02),
    NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0), NUM("pad_token_id", 1),
    NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_clipseg_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("num_hidden_layers", 12),
    NUM("num_attention_heads", 12), NUM("num_channels", 3), NUM("patch_size", 32), NUM("image_size", 224),
    NUM("initializer_range", 0.02), NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0),
    NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"), { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_siglip_text_defaults[] = {
    NUM("vocab_size", 32000), NUM("hidden_size", 768), NUM("intermediate_size", 3072),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12), NUM("max_position_embeddings", 64),
    NUM("layer_norm_eps", 1e-6), STR("hidden_act", "gelu_pytorch_tanh"), NUM("attention_dropout", 0.0),
    NUM("pad_token_id", 1), NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_siglip_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("num_hidden_layers", 12),
    NUM("num_attention_heads", 12), NUM("num_channels", 3), NUM("patch_size", 16), NUM("image_size", 224),
    NUM("attention_dropout", 0.0), NUM("layer_norm_eps", 1e-6), STR("hidden_act", "gelu_pytorch_tanh"),
    { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_vit_defaults[] = {
    NUM("hidden_size", 768), NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12),
    NUM("intermediate_size", 3072), STR("hidden_act", "gelu"), NUM("layer_norm_eps", 1e-12),
    NUM("image_size", 224), NUM("patch_size", 16), NUM("num_channels", 3), NUM("encoder_stride", 16),
    { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_clip_defaults[] = {
    NUM("projection_dim", 512), NUM("logit_scale_init_value", 2.6592), NUM("initializer_factor", 1.0),
    { NULL, 0, 0, NULL }
};
const vp_cfg_default vp_clipseg_defaults[] = {
    NUM("projection_dim", 512), NUM("logit_scale_init_value", 2.6592), NUM("reduce_dim", 64),
    NUM("decoder_attention_dropout", 0.0), STR("decoder_hidden_act", "quick_gelu"),
    NUM("decoder_num_attention_heads", 4), NUM("decoder_intermediate_size", 2048),
    NUM("conditional_layer", 0), NUM("initializer_factor", 1.0), { NULL, 0, 0, NULL }
};
#undef NUM
#undef STR

const vp_cfg_default *vp_cfg_find_default(const vp_cfg_default *defs, const char *key)
{
    for (; defs && defs->key; defs++)
        if (!strcmp(defs->key, key)) return defs;
    return NULL;
}

int vp_cfg_read_float(const cJSON *obj, const char *key, const vp_cfg_default *defs, double *out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsNumber(it)) return VP_ERR_FORMAT;
        *out = it->valuedouble;
        return VP_OK;
    }
    const vp_cfg_default *d = vp_cfg_find_default(defs, key);
    if (!d || d->is_str) return VP_ERR_NOTFOUND;
    *out = d->num;
    return VP_OK;
}

int vp_cfg_read_int(const cJSON *obj, const char *key, const vp_cfg_default *defs, int64_t *out)
{
    double v;
    int rc = vp_cfg_read_float(obj, key, defs, &v);
    if (rc) return rc;
    if (!(v == floor(v)) || fabs(v) > 9007199254740992.0) return VP_ERR_FORMAT;
    *out = (int64_t)v;
    return VP_OK;
}

int vp_cfg_read_str(const cJSON *obj, const char *key, const vp_cfg_default *defs, const char **out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it)) return VP_ERR_FORMAT;
        *out = it->valuestring;
        return VP_OK;
    }
    const vp_cfg_default *d = vp_cfg_find_default(defs, key);
    if (!d || !d->is_str) return VP_ERR_NOTFOUND;
    *out = d->str;
    return VP_OK;
}

int vp_cfg_read_bool(const cJSON *obj, const char *key, int dflt, int *out)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!it || cJSON_IsNull(it)) { *out = dflt; return VP_OK; }
    if (!cJSON_IsBool(it)) return VP_ERR_FORMAT;
    *out = cJSON_IsTrue(it);
    return VP_OK;
}
