/*
 * SigLIP, as transformers' modeling_siglip.py:
 *   vision: patch_embedding (Conv2d, bias) + position_embedding (no CLS;
 *           bicubically resized when the grid differs), SiglipEncoder,
 *           post_layernorm -> last_hidden_state; with vision_use_head the
 *           attention-pooling head gives pooler_output:
 *             h = out_proj(MHA(probe, x, x))  (nn.MultiheadAttention, in_proj)
 *             pooled = (h + fc2(act(fc1(layernorm(h)))))[:, 0]
 *   text:   token_embedding + position_embedding, SiglipEncoder without a
 *           causal mask, final_layer_norm -> last_hidden_state;
 *           pooler_output = head(last_hidden_state[:, -1])
 *   SiglipModel: image_embeds / text_embeds = the pooled outputs L2-normalised,
 *           logits_per_text = text_embeds @ image_embeds^T * exp(logit_scale)
 *                             + logit_bias, logits_per_image its transpose.
 *   SiglipForImageClassification: classifier(mean over tokens of the vision
 *           last_hidden_state).
 * model_type "siglip" (SiglipModel, SiglipForImageClassification),
 * "siglip_vision_model" (SiglipVisionModel), "siglip_text_model"
 * (SiglipTextModel).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"

typedef struct sig_vision {
    int64_t D, patch, channels, image, grid, heads, mlp;
    const float *patch_w, *patch_b, *pos;   /* pos: [grid^2, D] */
    vp_encoder enc;
    vp_ln post_ln;
    int use_head;
    const float *probe;                     /* [D] */
    vp_linear in_q, in_kv;                  /* rows [0, D) and [D, 3D) of in_proj */
    vp_linear out_proj, fc1, fc2;
    vp_ln head_ln;
} sig_vision;

typedef struct sig_text {
    int64_t D, vocab, max_len, proj;
    const float *tok, *pos;                 /* [vocab, D], [max_len, D] */
    vp_encoder enc;
    vp_ln final_ln;
    vp_linear head;                         /* [proj, D] */
} sig_text;

typedef enum { SIG_MODEL, SIG_CLASSIFIER, SIG_VISION, SIG_TEXT } sig_kind;

typedef struct siglip {
    sig_kind kind;
    int has_vision, has_text;
    sig_vision v;
    sig_text t;
    float scale_exp, bias;                  /* exp(logit_scale), logit_bias */
    int64_t labels;
    vp_linear classifier;
} siglip;

enum {
    S_VX = VP_S_FAMILY, S_VLAST, S_PATCH, S_POS, S_POSTMP, S_HQ, S_HKV, S_HCTX, S_HN, S_HMLP, S_HATTN,
    S_TX, S_TLAST, S_POOL_V
};

static void siglip_free(void *p)
{
    siglip *s = p;
    vp__encoder_free(&s->v.enc);
    vp__encoder_free(&s->t.enc);
    vp__free(s);
}

static const char *arch0(const vp_model *m)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m->config, "architectures");
    const cJSON *s = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* ---- loading ------------------------------------------------------------- */
/* need_head 0: the pooling head is not run (SiglipForImageClassification
 * pools by the mean), so its weights are not fetched. */
static int vision_open(vp_model *m, sig_vision *v, const cJSON *c, const char *where, const char *P, int need_head)
{
    const vp_hf_default *d = vp_hf_siglip_vision_defaults;
    int64_t layers;
    double eps;
    int rc = vp__cfg_int(m, c, where, "hidden_size", d, 1, 1 << 16, &v->D);
    if (!rc) rc = vp__cfg_int(m, c, where, "num_hidden_layers", d, 0, 1024, &layers);
    if (!rc) rc = vp__cfg_int(m, c, where, "num_attention_heads", d, 1, 1 << 12, &v->heads);
    if (!rc) rc = vp__cfg_int(m, c, where, "intermediate_size", d, 1, 1 << 20, &v->mlp);
    if (!rc) rc = vp__cfg_int(m, c, where, "patch_size", d, 1, 1 << 12, &v->patch);
    if (!rc) rc = vp__cfg_int(m, c, where, "image_size", d, 1, 1 << 16, &v->image);
    if (!rc) rc = vp__cfg_int(m, c, where, "num_channels", d, 1, 64, &v->channels);
    if (!rc) rc = vp__cfg_float(m, c, where, "layer_norm_eps", d, &eps);
    if (!rc) rc = vp__cfg_act(m, c, where, "hidden_act", d, &v->enc.act);
    if (rc) return rc;
    if (vp_hf_read_bool(c, "vision_use_head", 1, &v->use_head))
        return vp__merr(m, VP_ERR_FORMAT, "config.json: %s%svision_use_head is not a boolean",
                        where ? where : "", where ? "." : "");
    v->grid = v->image / v->patch;
    if (v->grid <= 0)
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: %s%simage_size %lld is smaller than patch_size %lld",
                        where ? where : "", where ? "." : "", (long long)v->image, (long long)v->patch);
    if (v->D % v->heads)
        return vp__merr(m, VP_ERR_MISMATCH, "config.json: %s%shidden_size %lld is not a multiple of num_attention_heads %lld",
                        where ? where : "", where ? "." : "", (long long)v->D, (long long)v->heads);
    m->image_size = (int)v->image;

    int64_t D = v->D;
    v->patch_w = vp__weight(m, 4, (int64_t[]){D, v->channels, v->patch, v->patch}, "%sembeddings.patch_embedding.weight", P);
    v->patch_b = vp__weight(m, 1, (int64_t[]){D}, "%sembeddings.patch_embedding.bias", P);
    v->pos = vp__weight(m, 2, (int64_t[]){v->grid * v->grid, D}, "%sembeddings.position_embedding.weight", P);
    if (m->errmsg[0]) return VP_ERR_MISMATCH;

    v->enc.layers = layers; v->enc.width = D; v->enc.heads = v->heads; v->enc.mlp = v->mlp;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%sencoder.layers.", P);
    rc = vp__encoder_load(m, &v->enc, prefix, &vp_enc_names_clip, eps);
    if (!rc) rc = vp__load_ln(m, &v->post_ln, D, eps, "%spost_layernorm", P);
    if (!need_head) v->use_head = 0;
    if (rc || !v->use_head) return rc;

    v->probe = vp__weight(m, 3, (int64_t[]){1, 1, D}, "%shead.probe", P);
    const float *inw = vp__weight(m, 2, (int64_t[]){3 * D, D}, "%shead.attention.in_proj_weight", P);
    const float *inb = vp__weight(m, 1, (int64_t[]){3 * D}, "%shead.attention.in_proj_bias", P);
    if (!v->probe || !inw || !inb) return VP_ERR_MISMATCH;
    v->in_q = (vp_linear){ {VP_F32, inw, D, D, D}, inb };
    v->in_kv = (vp_linear){ {VP_F32, inw + D * D, 2 * D, D, D}, inb + D };
    rc = vp__load_linear(m, &v->out_proj, D, D, 1, "%shead.attention.out_proj", P);
    if (!rc) rc = vp__load_ln(m, &v->head_ln, D, eps, "%shead.layernorm", P);
    if (!rc) rc = vp__load_linear(m, &v->fc1, v->mlp, D, 1, "%shead.mlp.fc1", P);
    if (!rc) rc = vp__load_linear(m, &v->fc2, D, v->mlp, 1, "%shead.mlp.fc2", P);
    return rc;
}

static int text_open(vp_model *m, sig_text *t, const cJSON *c, const char *where, const char *P)
{
    const vp_hf_default *d = vp_hf_siglip_text_defaults;
    int64_t layers, heads, mlp;
    double eps;
    int rc = vp__cfg_int(m, c, where, "hidden_size", d, 1, 1 << 16, &t->D);
    if (!rc) rc = vp__cfg_int(m, c, where, "num_hidden_layers", d, 0, 1024, &layers);
    if (!rc) rc = vp__cfg_int(m, c, where, "num_attention_heads", d, 1, 1 << 12, &heads);
    if (!rc) rc = vp__cfg_int(m, c, where, "intermediate_size", d, 1, 1 << 20, &mlp);
    if (!rc) rc = vp__cfg_int(m, c, where, "vocab_size", d, 1, (int64_t)1 << 24, &t->vocab);
    if (!rc) rc = vp__cfg_int(m, c, where, "max_position_embeddings", d, 1, 1 << 20, &t->max_len);
    if (!rc) rc = vp__cfg_float(m, c, where, "layer_norm_eps", d, &eps);
    if (!rc) rc = vp__cfg_act(m, c, where, "hidden_act", d, &t->enc.act);
    if (rc) return rc;
    /* projection_size: absent or null means hidden_size (SiglipTextConfig.__post_init__). */
    const vp_hf_default proj_default[] = { { "projection_size", 0, (double)t->D, NULL }, { NULL, 0, 0, NULL } };
    rc = vp__cfg_int(m, c, where, "projection_size", proj_default, 1, 1 << 16, &t->proj);
    if (rc) return rc;
    m->max_text_len = (int)t->max_len;

    int64_t D = t->D;
    t->tok = vp__weight(m, 2, (int64_t[]){t->vocab, D}, "%sembeddings.token_embedding.weight", P);
    t->pos = vp__weight(m, 2, (int64_t[]){t->max_len, D}, "%sembeddings.position_embedding.weight", P);
    if (m->errmsg[0]) return VP_ERR_MISMATCH;
    t->enc.layers = layers; t->enc.width = D; t->enc.heads = heads; t->enc.mlp = mlp;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%sencoder.layers.", P);
    rc = vp__encoder_load(m, &t->enc, prefix, &vp_enc_names_clip, eps);
    if (!rc) rc = vp__load_ln(m, &t->final_ln, D, eps, "%sfinal_layer_norm", P);
    if (!rc) rc = vp__load_linear(m, &t->head, t->proj, D, 1, "%shead", P);
    return rc;
}

static int check_arch(vp_model *m, const char *arch, const char *const *allowed)
{
    char names[256] = "";
    for (int i = 0; allowed[i]; i++) {
        if (!strcmp(arch, allowed[i])) return VP_OK;
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, allowed[i], sizeof names - strlen(names) - 1);
    }
    return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: architectures[0] \"%s\" is not a class vitport runs for %s (%s)",
                    arch, m->model_type, names);
}

static siglip *new_impl(vp_model *m)
{
    siglip *s = vp__calloc(1, sizeof *s);
    if (!s) { vp__merr(m, VP_ERR_NOMEM, "out of memory"); return NULL; }
    m->impl = s;
    return s;
}

static int siglip_open(vp_model *m)
{
    siglip *s = new_impl(m);
    if (!s) return VP_ERR_NOMEM;
    const char *arch = arch0(m);
    if (!arch) arch = vp__winfo(m, "classifier.weight") ? "SiglipForImageClassification" : "SiglipModel";
    int rc = check_arch(m, arch, (const char *const[]){ "SiglipModel", "SiglipForImageClassification", NULL });
    if (rc) return rc;
    s->kind = !strcmp(arch, "SiglipModel") ? SIG_MODEL : SIG_CLASSIFIER;
    m->cls = s->kind == SIG_MODEL ? "SiglipModel" : "SiglipForImageClassification";

    const cJSON *vc, *tc;
    rc = vp__cfg_sub(m, "vision_config", &vc);
    if (!rc) rc = vp__cfg_sub(m, "text_config", &tc);
    if (!rc) rc = vision_open(m, &s->v, vc, "vision_config", "vision_model.", s->kind == SIG_MODEL);
    if (rc) return rc;
    s->has_vision = 1;
    m->inputs = VP_INPUT_PIXELS;
    if (s->kind == SIG_CLASSIFIER) {
        const vp_tensor *t = vp__winfo(m, "classifier.weight");
        if (!t || t->ndim != 2) return vp__merr(m, VP_ERR_NOTFOUND, "tensor 'classifier.weight' is missing or not 2-D");
        s->labels = t->shape[0];
        rc = vp__load_linear(m, &s->classifier, s->labels, s->v.D, 1, "classifier");
        if (rc) return rc;
        const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(m->config, "id2label");
        if (cJSON_IsObject(id2) && cJSON_GetArraySize(id2) != s->labels)
            return vp__merr(m, VP_ERR_MISMATCH, "config.json: id2label has %d labels, classifier.weight has %lld rows",
                            cJSON_GetArraySize(id2), (long long)s->labels);
        return VP_OK;
    }
    if (!s->v.use_head)
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: vision_config.vision_use_head is false; "
                        "SiglipModel needs the vision head's pooler_output");
    rc = text_open(m, &s->t, tc, "text_config", "text_model.");
    if (rc) return rc;
    s->has_text = 1;
    m->inputs = VP_INPUT_PIXELS | VP_INPUT_IDS;
    if (s->t.proj != s->v.D)
        return vp__merr(m, VP_ERR_MISMATCH, "config.json: text_config.projection_size %lld differs from "
                        "vision_config.hidden_size %lld (SiglipModel compares the two embeddings)",
                        (long long)s->t.proj, (long long)s->v.D);
    const float *ls = vp__weight(m, 1, (int64_t[]){1}, "logit_scale");
    const float *lb = vp__weight(m, 1, (int64_t[]){1}, "logit_bias");
    if (!ls || !lb) return VP_ERR_MISMATCH;
    s->scale_exp = expf(ls[0]);
    s->bias = lb[0];
    return VP_OK;
}

static int siglip_vision_open(vp_model *m)
{
    siglip *s = new_impl(m);
    if (!s) return VP_ERR_NOMEM;
    const char *arch = arch0(m);
    int rc = arch ? check_arch(m, arch, (const char *const[]){ "SiglipVisionModel", NULL }) : VP_OK;
    if (rc) return rc;
    s->kind = SIG_VISION;
    m->cls = "SiglipVisionModel";
    /* transformers 5 saves the tower's weights without the "vision_model." prefix 4.x wrote. */
    const char *P = vp__winfo(m, "vision_model.embeddings.patch_embedding.weight") ? "vision_model." : "";
    rc = vision_open(m, &s->v, m->config, NULL, P, 1);
    if (rc) return rc;
    s->has_vision = 1;
    m->inputs = VP_INPUT_PIXELS;
    return VP_OK;
}

static int siglip_text_open(vp_model *m)
{
    siglip *s = new_impl(m);
    if (!s) return VP_ERR_NOMEM;
    const char *arch = arch0(m);
    int rc = arch ? check_arch(m, arch, (const char *const[]){ "SiglipTextModel", NULL }) : VP_OK;
    if (rc) return rc;
    s->kind = SIG_TEXT;
    m->cls = "SiglipTextModel";
    const char *P = vp__winfo(m, "text_model.embeddings.token_embedding.weight") ? "text_model." : "";
    rc = text_open(m, &s->t, m->config, NULL, P);
    if (rc) return rc;
    s->has_text = 1;
    m->inputs = VP_INPUT_IDS;
    return VP_OK;
}

/* ---- running --------------------------------------------------------------- */
static int vision_check(vp_ctx *c, const sig_vision *v, const vp_inputs *in, int64_t *L)
{
    if (!in->pixel_values || in->batch <= 0 || in->height <= 0 || in->width <= 0)
        return vp__cerr(c, VP_ERR_ARG, "%s needs pixel_values [batch, %lld, H, W]", c->m->cls, (long long)v->channels);
    int64_t gh = in->height / v->patch, gw = in->width / v->patch;
    if (gh <= 0 || gw <= 0)
        return vp__cerr(c, VP_ERR_ARG, "image %lldx%lld is smaller than one %lld-pixel patch",
                        (long long)in->height, (long long)in->width, (long long)v->patch);
    if (gh > 4096 || gw > 4096 || in->batch > ((int64_t)1 << 20))
        return vp__cerr(c, VP_ERR_LIMIT, "pixel_values [%lld, %lld, %lld, %lld] is larger than vitport runs",
                        (long long)in->batch, (long long)v->channels, (long long)in->height, (long long)in->width);
    *L = gh * gw;
    return VP_OK;
}

/* Everything the vision tower needs for B images of L patches, taken
 * before the layer loop. */
static int vision_reserve(vp_ctx *c, const sig_vision *v, const vp_inputs *in, int64_t L)
{
    int64_t B = in->batch, D = v->D, g = v->grid, gh = in->height / v->patch, gw = in->width / v->patch;
    size_t rows = (size_t)(B * L);
    if (!vp__scratch(c, S_VX, rows * (size_t)D) || !vp__scratch(c, S_VLAST, rows * (size_t)D) ||
        !vp__scratch(c, S_PATCH, vp_nn_patch_embed_scratch(v->channels, in->height, in->width, v->patch)))
        return VP_ERR_NOMEM;
    if ((gh != g || gw != g) &&
        (!vp__scratch(c, S_POS, (size_t)(L * D)) || !vp__scratch(c, S_POSTMP, (size_t)(D * (g * g + L)))))
        return VP_ERR_NOMEM;
    if (v->use_head &&
        (!vp__scratch(c, S_HQ, (size_t)(B * D)) || !vp__scratch(c, S_HKV, rows * (size_t)(2 * D)) ||
         !vp__scratch(c, S_HCTX, (size_t)(B * D)) ||
         !vp__scratch(c, S_HN, (size_t)(B * D)) || !vp__scratch(c, S_HMLP, (size_t)(B * v->mlp)) ||
         !vp__scratch(c, S_HATTN, vp_nn_attention_scratch(B, 1, L, v->heads))))
        return VP_ERR_NOMEM;
    return vp__encoder_reserve(c, &v->enc, B, L);
}

/* last [B*L, D] = post_layernorm(encoder(embeddings)); pooled [B, D] (the
 * head's output) when asked for and the tower has a head. */
static void vision_forward(vp_ctx *c, const sig_vision *v, const vp_inputs *in, int64_t L, float *last, float *pooled)
{
    int64_t B = in->batch, H = in->height, W = in->width, D = v->D, g = v->grid;
    int64_t gh = H / v->patch, gw = W / v->patch;
    float *x = c->slot[S_VX];
    const float *pos = v->pos;
    if (gh != g || gw != g) {
        vp__pos_interpolate(c->slot[S_POS], v->pos, D, g, gh, gw, c->slot[S_POSTMP]);
        pos = c->slot[S_POS];
    }
    for (int64_t b = 0; b < B; b++) {
        float *xb = x + b * L * D;
        vp_nn_patch_embed(xb, D, in->pixel_values + b * v->channels * H * W, 1, v->channels, H, W,
                          v->patch_w, v->patch_b, v->patch, D, c->slot[S_PATCH]);
        vp_nn_add(xb, pos, (size_t)(L * D));
    }
    for (int i = 0; i < v->enc.layers; i++) vp__encoder_layer(c, &v->enc, i, x, B, L, 0);
    vp__ln(&v->post_ln, last, x, B * L);
    if (!pooled || !v->use_head) return;

    /* SiglipMultiheadAttentionPoolingHead: one query (the probe) per image. */
    float *q = c->slot[S_HQ], *kv = c->slot[S_HKV], *ctx = c->slot[S_HCTX];
    float *n = c->slot[S_HN], *f = c->slot[S_HMLP];
    int64_t dh = D / v->heads;
    vp__linear(&v->in_q, q, D, v->probe, D, 1);
    for (int64_t b = 1; b < B; b++) memcpy(q + b * D, q, (size_t)D * sizeof *q);
    vp__linear(&v->in_kv, kv, 2 * D, last, D, B * L);
    vp_nn_attention(ctx, D, q, D, kv, 2 * D, kv + D, 2 * D, B, 1, L, v->heads, dh,
                    1.0f / sqrtf((float)dh), 0, c->slot[S_HATTN]);
    vp__linear(&v->out_proj, pooled, D, ctx, D, B);               /* residual = attention output */
    vp__ln(&v->head_ln, n, pooled, B);
    vp__linear(&v->fc1, f, v->mlp, n, D, B);
    vp_nn_act(f, (size_t)(B * v->mlp), v->enc.act);
    vp_nn_linear(pooled, D, f, v->mlp, B, &v->fc2.w, v->fc2.b, 1); /* pooled += mlp(...) */
}

static int text_check(vp_ctx *c, const sig_text *t, const vp_inputs *in)
{
    int64_t B = in->text_batch, L = in->text_len;
    if (!in->input_ids || B <= 0 || L <= 0)
        return vp__cerr(c, VP_ERR_ARG, "%s needs input_ids [batch, length]", c->m->cls);
    if (L > t->max_len)
        return vp__cerr(c, VP_ERR_ARG, "input_ids has %lld tokens, more than max_position_embeddings %lld",
                        (long long)L, (long long)t->max_len);
    if (B > ((int64_t)1 << 20)) return vp__cerr(c, VP_ERR_LIMIT, "input_ids has %lld rows", (long long)B);
    for (int64_t i = 0; i < B * L; i++)
        if (in->input_ids[i] < 0 || in->input_ids[i] >= t->vocab)
            return vp__cerr(c, VP_ERR_ARG, "input_ids[%lld][%lld] = %lld is outside the vocabulary [0, %lld)",
                            (long long)(i / L), (long long)(i % L), (long long)in->input_ids[i], (long long)t->vocab);
    return VP_OK;
}

static int text_reserve(vp_ctx *c, const sig_text *t, const vp_inputs *in)
{
    size_t rows = (size_t)(in->text_batch * in->text_len);
    if (!vp__scratch(c, S_TX, rows * (size_t)t->D) || !vp__scratch(c, S_TLAST, rows * (size_t)t->D)) return VP_ERR_NOMEM;
    return vp__encoder_reserve(c, &t->enc, in->text_batch, in->text_len);
}

/* last [B*L, D] = final_layer_norm(encoder(embeddings)); pooled [B, proj] =
 * head(last[:, -1]). */
static void text_forward(vp_ctx *c, const sig_text *t, const vp_inputs *in, float *last, float *pooled)
{
    int64_t B = in->text_batch, L = in->text_len, D = t->D;
    float *x = c->slot[S_TX];
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++) {
            float *r = x + (b * L + l) * D;
            memcpy(r, t->tok + in->input_ids[b * L + l] * D, (size_t)D * sizeof *r);
            vp_nn_add(r, t->pos + l * D, (size_t)D);
        }
    for (int i = 0; i < t->enc.layers; i++) vp__encoder_layer(c, &t->enc, i, x, B, L, 0);
    vp__ln(&t->final_ln, last, x, B * L);
    vp__linear(&t->head, pooled, t->proj, last + (L - 1) * D, L * D, B);
}

static int siglip_run(vp_ctx *c, const vp_inputs *in)
{
    const siglip *s = c->m->impl;
    int64_t LV = 0, B = in->batch, T = in->text_batch;
    int vis = s->has_vision, txt = s->has_text;
    /* SiglipModel given one input runs that tower alone (get_image_features /
     * get_text_features) and hands out only its embeds, normalised. */
    int one = s->kind == SIG_MODEL && (!in->pixel_values) != (!in->input_ids);
    if (one) { vis = in->pixel_values != NULL; txt = !vis; }
    int rc = vis ? vision_check(c, &s->v, in, &LV) : VP_OK;
    if (!rc && txt) rc = text_check(c, &s->t, in);
    if (rc) return rc;
    if (one && vis) {
        float *ie = vp__output(c, "image_embeds", 2, (int64_t[]){B, s->v.D});
        if (!ie || vision_reserve(c, &s->v, in, LV)) return VP_ERR_NOMEM;
        vision_forward(c, &s->v, in, LV, c->slot[S_VLAST], ie);
        vp_nn_l2_normalize(ie, B, s->v.D);
        return VP_OK;
    }
    if (one) {
        float *te = vp__output(c, "text_embeds", 2, (int64_t[]){T, s->t.proj});
        if (!te || text_reserve(c, &s->t, in)) return VP_ERR_NOMEM;
        text_forward(c, &s->t, in, c->slot[S_TLAST], te);
        vp_nn_l2_normalize(te, T, s->t.proj);
        return VP_OK;
    }
    if (s->kind == SIG_TEXT) {
        int64_t L = in->text_len, D = s->t.D;
        float *last = vp__output(c, "last_hidden_state", 3, (int64_t[]){T, L, D});
        float *po = last ? vp__output(c, "pooler_output", 2, (int64_t[]){T, s->t.proj}) : NULL;
        if (!po || text_reserve(c, &s->t, in)) return VP_ERR_NOMEM;
        text_forward(c, &s->t, in, last, po);
        return VP_OK;
    }
    int64_t D = s->v.D;
    if (s->kind == SIG_VISION) {
        float *last = vp__output(c, "last_hidden_state", 3, (int64_t[]){B, LV, D});
        float *po = last && s->v.use_head ? vp__output(c, "pooler_output", 2, (int64_t[]){B, D}) : NULL;
        if (!last || (s->v.use_head && !po) || vision_reserve(c, &s->v, in, LV)) return VP_ERR_NOMEM;
        vision_forward(c, &s->v, in, LV, last, po);
        return VP_OK;
    }
    if (s->kind == SIG_CLASSIFIER) {
        /* The logits, then the base model's last_hidden_state. */
        float *lg = vp__output(c, "logits", 2, (int64_t[]){B, s->labels});
        float *last = lg ? vp__output(c, "last_hidden_state", 3, (int64_t[]){B, LV, D}) : NULL;
        float *mean = last ? vp__scratch(c, S_POOL_V, (size_t)(B * D)) : NULL;
        if (!mean || vision_reserve(c, &s->v, in, LV)) return VP_ERR_NOMEM;
        vision_forward(c, &s->v, in, LV, last, NULL);
        for (int64_t b = 0; b < B; b++) {
            float *mb = mean + b * D;
            for (int64_t d = 0; d < D; d++) {
                double acc = 0;
                for (int64_t l = 0; l < LV; l++) acc += last[(b * LV + l) * D + d];
                mb[d] = (float)(acc / (double)LV);
            }
        }
        vp__linear(&s->classifier, lg, s->labels, mean, D, B);
        return VP_OK;
    }
    /* SiglipModel */
    float *lpi = vp__output(c, "logits_per_image", 2, (int64_t[]){B, T});
    float *lpt = lpi ? vp__output(c, "logits_per_text", 2, (int64_t[]){T, B}) : NULL;
    float *te = lpt ? vp__output(c, "text_embeds", 2, (int64_t[]){T, D}) : NULL;
    float *ie = te ? vp__output(c, "image_embeds", 2, (int64_t[]){B, D}) : NULL;
    if (!ie || vision_reserve(c, &s->v, in, LV)) return VP_ERR_NOMEM;
    vision_forward(c, &s->v, in, LV, c->slot[S_VLAST], ie);
    if (text_reserve(c, &s->t, in)) return VP_ERR_NOMEM;
    text_forward(c, &s->t, in, c->slot[S_TLAST], te);
    vp_nn_l2_normalize(ie, B, D);
    vp_nn_l2_normalize(te, T, D);
    vp_nn_gemm(1, T, B, D, 1.0f, te, D, ie, D, 0.0f, lpt, B);
    for (int64_t i = 0; i < T * B; i++) lpt[i] = lpt[i] * s->scale_exp + s->bias;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < B; j++) lpi[j * T + i] = lpt[i * B + j];
    return VP_OK;
}

const vp_model_family vp_model_siglip = { "siglip", siglip_open, siglip_free, siglip_run };
const vp_model_family vp_model_siglip_vision = { "siglip_vision_model", siglip_vision_open, siglip_free, siglip_run };
const vp_model_family vp_model_siglip_text = { "siglip_text_model", siglip_text_open, siglip_free, siglip_run };
