/*
 * The defaults of the sub-config classes in transformers 4.43 (what
 * CLIPTextConfig() etc. hold): transformers writes a nested config's field
 * only when it differs, and an absent field reads as its default.
 */
#include <stddef.h>

#include "hf/config.h"

#define NUM(k, v) { k, 0, v, NULL }
#define STR(k, v) { k, 1, 0, v }
const vp_hf_default vp_hf_clip_text_defaults[] = {
    NUM("vocab_size", 49408), NUM("hidden_size", 512), NUM("intermediate_size", 2048),
    NUM("projection_dim", 512), NUM("num_hidden_layers", 12), NUM("num_attention_heads", 8),
    NUM("max_position_embeddings", 77), NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"),
    NUM("initializer_range", 0.02), NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0),
    NUM("pad_token_id", 1), NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_clip_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("projection_dim", 512),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12), NUM("num_channels", 3),
    NUM("patch_size", 32), NUM("image_size", 224), NUM("initializer_range", 0.02),
    NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0), NUM("layer_norm_eps", 1e-5),
    STR("hidden_act", "quick_gelu"), { NULL, 0, 0, NULL }
};
/* CLIPSeg's sub-configs are CLIP's without projection_dim. */
const vp_hf_default vp_hf_clipseg_text_defaults[] = {
    NUM("vocab_size", 49408), NUM("hidden_size", 512), NUM("intermediate_size", 2048),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 8), NUM("max_position_embeddings", 77),
    NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"), NUM("initializer_range", 0.02),
    NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0), NUM("pad_token_id", 1),
    NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_clipseg_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("num_hidden_layers", 12),
    NUM("num_attention_heads", 12), NUM("num_channels", 3), NUM("patch_size", 32), NUM("image_size", 224),
    NUM("initializer_range", 0.02), NUM("initializer_factor", 1.0), NUM("attention_dropout", 0.0),
    NUM("layer_norm_eps", 1e-5), STR("hidden_act", "quick_gelu"), { NULL, 0, 0, NULL }
};
/* SiglipTextConfig() / SiglipVisionConfig() in transformers 4.43. */
const vp_hf_default vp_hf_siglip_text_defaults[] = {
    NUM("vocab_size", 32000), NUM("hidden_size", 768), NUM("intermediate_size", 3072),
    NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12), NUM("max_position_embeddings", 64),
    NUM("layer_norm_eps", 1e-6), STR("hidden_act", "gelu_pytorch_tanh"), NUM("attention_dropout", 0.0),
    NUM("pad_token_id", 1), NUM("bos_token_id", 49406), NUM("eos_token_id", 49407), { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_siglip_vision_defaults[] = {
    NUM("hidden_size", 768), NUM("intermediate_size", 3072), NUM("num_hidden_layers", 12),
    NUM("num_attention_heads", 12), NUM("num_channels", 3), NUM("patch_size", 16), NUM("image_size", 224),
    NUM("attention_dropout", 0.0), NUM("layer_norm_eps", 1e-6), STR("hidden_act", "gelu_pytorch_tanh"),
    { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_vit_defaults[] = {
    NUM("hidden_size", 768), NUM("num_hidden_layers", 12), NUM("num_attention_heads", 12),
    NUM("intermediate_size", 3072), STR("hidden_act", "gelu"), NUM("layer_norm_eps", 1e-12),
    NUM("image_size", 224), NUM("patch_size", 16), NUM("num_channels", 3), NUM("encoder_stride", 16),
    { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_clip_defaults[] = {
    NUM("projection_dim", 512), NUM("logit_scale_init_value", 2.6592), NUM("initializer_factor", 1.0),
    { NULL, 0, 0, NULL }
};
const vp_hf_default vp_hf_clipseg_defaults[] = {
    NUM("projection_dim", 512), NUM("logit_scale_init_value", 2.6592), NUM("reduce_dim", 64),
    NUM("decoder_attention_dropout", 0.0), STR("decoder_hidden_act", "quick_gelu"),
    NUM("decoder_num_attention_heads", 4), NUM("decoder_intermediate_size", 2048),
    NUM("conditional_layer", 0), NUM("initializer_factor", 1.0), { NULL, 0, 0, NULL }
};
#undef NUM
#undef STR
#undef NUM
#undef STR
