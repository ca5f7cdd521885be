/*
 * CLIP, as transformers' modeling_clip.py:
 *   vision: [class_embedding, patch_embedding(pixels) (conv, no bias)]
 *           + position_embedding -> pre_layrnorm -> CLIPEncoderLayer x N
 *           (pre-norm) -> last_hidden_state; pooler_output =
 *           post_layernorm(last_hidden_state[:, 0])
 *   text:   token_embedding + position_embedding -> CLIPEncoderLayer x N
 *           (causal) -> final_layer_norm -> last_hidden_state; pooler_output
 *           = the row at the EOS token (see clip.h)
 *   CLIPModel: image_embeds = visual_projection(vision pooler),
 *           text_embeds = text_projection(text pooler), both divided by
 *           their L2 norm; logits_per_text = exp(logit_scale) text @ image^T,
 *           logits_per_image its transpose.
 *   CLIPVisionModel(WithProjection) / CLIPTextModel(WithProjection): one
 *           tower (with its projection, unnormalised).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/clip.h"

/* ---- the towers ------------------------------------------------------------ */
static int enc_sizes(vp_model *m, vp_encoder *e, const cJSON *cfg, const char *where, const vp_hf_default *defs,
                     int64_t *D, double *eps)
{
    int rc = vp__cfg_int(m, cfg, where, "hidden_size", defs, 1, 1 << 16, D);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "num_hidden_layers", defs, 0, 1024, &e->layers);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "num_attention_heads", defs, 1, 1 << 12, &e->heads);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "intermediate_size", defs, 1, 1 << 20, &e->mlp);
    if (!rc) rc = vp__cfg_float(m, cfg, where, "layer_norm_eps", defs, eps);
    if (!rc) rc = vp__cfg_act(m, cfg, where, "hidden_act", defs, &e->act);
    if (!rc && *D % e->heads)
        rc = vp__merr(m, VP_ERR_MISMATCH, "config.json: %s%shidden_size %lld is not a multiple of num_attention_heads %lld",
                      where ? where : "", where ? "." : "", (long long)*D, (long long)e->heads);
    e->width = *D;
    return rc;
}

int vp__clip_vision_load(vp_model *m, vp_clip_vision *v, const cJSON *cfg, const char *where,
                         const vp_hf_default *defs, const char *P)
{
    double eps;
    int rc = enc_sizes(m, &v->enc, cfg, where, defs, &v->D, &eps);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "patch_size", defs, 1, 1 << 12, &v->patch);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "image_size", defs, 1, 1 << 16, &v->image);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "num_channels", defs, 1, 64, &v->channels);
    if (rc) return rc;
    v->grid = v->image / v->patch;
    if (v->grid < 1)
        return vp__merr(m, VP_ERR_MISMATCH, "config.json: %s%simage_size %lld is smaller than patch_size %lld",
                        where ? where : "", where ? "." : "", (long long)v->image, (long long)v->patch);
    int64_t D = v->D;
    v->cls = vp__weight(m, 1, (int64_t[]){D}, "%sembeddings.class_embedding", P);
    v->patch_w = vp__weight(m, 4, (int64_t[]){D, v->channels, v->patch, v->patch}, "%sembeddings.patch_embedding.weight", P);
    v->pos = vp__weight(m, 2, (int64_t[]){1 + v->grid * v->grid, D}, "%sembeddings.position_embedding.weight", P);
    if (!v->cls || !v->patch_w || !v->pos) return VP_ERR_MISMATCH;
    rc = vp__load_ln(m, &v->pre, D, eps, "%spre_layrnorm", P);
    if (!rc) rc = vp__load_ln(m, &v->post, D, eps, "%spost_layernorm", P);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%sencoder.layers.", P);
    if (!rc) rc = vp__encoder_load(m, &v->enc, prefix, &vp_enc_names_clip, eps);
    return rc;
}

int vp__clip_text_load(vp_model *m, vp_clip_text *t, const cJSON *cfg, const char *where,
                       const vp_hf_default *defs, const char *P)
{
    double eps;
    int rc = enc_sizes(m, &t->enc, cfg, where, defs, &t->D, &eps);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "vocab_size", defs, 1, INT32_MAX, &t->vocab);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "max_position_embeddings", defs, 1, 1 << 20, &t->max_pos);
    if (!rc) rc = vp__cfg_int(m, cfg, where, "eos_token_id", defs, INT64_MIN, INT64_MAX, &t->eos);
    if (rc) return rc;
    int64_t D = t->D;
    t->tok = vp__weight(m, 2, (int64_t[]){t->vocab, D}, "%sembeddings.token_embedding.weight", P);
    t->pos = vp__weight(m, 2, (int64_t[]){t->max_pos, D}, "%sembeddings.position_embedding.weight", P);
    if (!t->tok || !t->pos) return VP_ERR_MISMATCH;
    rc = vp__load_ln(m, &t->final, D, eps, "%sfinal_layer_norm", P);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%sencoder.layers.", P);
    if (!rc) rc = vp__encoder_load(m, &t->enc, prefix, &vp_enc_names_clip, eps);
    return rc;
}

void vp__clip_vision_free(vp_clip_vision *v) { if (v) vp__encoder_free(&v->enc); }
void vp__clip_text_free(vp_clip_text *t) { if (t) vp__encoder_free(&t->enc); }

static int resized(const vp_clip_vision *v, const vp_inputs *in)
{
    int64_t gh = in->height / v->patch, gw = in->width / v->patch;
    return !(gh * gw == v->grid * v->grid && in->height == in->width);
}

int vp__clip_vision_prepare(vp_ctx *c, const vp_clip_vision *v, const vp_inputs *in, int64_t *L)
{
    int64_t B = in->batch, H = in->height, W = in->width, D = v->D, g = v->grid;
    if (!in->pixel_values || B <= 0 || H <= 0 || W <= 0)
        return vp__cerr(c, VP_ERR_ARG, "%s needs pixel_values [batch, %lld, H, W]", c->m->cls, (long long)v->channels);
    int64_t gh = H / v->patch, gw = W / v->patch;
    if (gh <= 0 || gw <= 0)
        return vp__cerr(c, VP_ERR_ARG, "image %lldx%lld is smaller than one %lld-pixel patch",
                        (long long)H, (long long)W, (long long)v->patch);
    *L = 1 + gh * gw;
    if (!vp__scratch(c, VP_S_CLIP_PATCH, vp_nn_patch_embed_scratch(v->channels, H, W, v->patch)))
        return VP_ERR_NOMEM;
    if (resized(v, in) && (!vp__scratch(c, VP_S_CLIP_POS, (size_t)((1 + gh * gw) * D)) ||
                           !vp__scratch(c, VP_S_CLIP_POSTMP, (size_t)(D * (g * g + gh * gw)))))
        return VP_ERR_NOMEM;
    return vp__encoder_reserve(c, &v->enc, B, *L);
}

/* interpolate_pos_encoding: the CLS position as is, the patch positions
 * [g, g, D] resized bicubically to [gh, gw, D]. */
static const float *positions(vp_ctx *c, const vp_clip_vision *v, int64_t gh, int64_t gw)
{
    int64_t D = v->D, g = v->grid;
    float *out = c->slot[VP_S_CLIP_POS], *chw = c->slot[VP_S_CLIP_POSTMP], *res = chw + D * g * g;
    memcpy(out, v->pos, (size_t)D * sizeof *out);
    for (int64_t p = 0; p < g * g; p++)
        for (int64_t d = 0; d < D; d++) chw[d * g * g + p] = v->pos[(1 + p) * D + d];
    vp_nn_resize_bicubic(res, chw, D, g, g, gh, gw);
    for (int64_t p = 0; p < gh * gw; p++)
        for (int64_t d = 0; d < D; d++) out[(1 + p) * D + d] = res[d * gh * gw + p];
    return out;
}

void vp__clip_vision_forward(vp_ctx *c, const vp_clip_vision *v, const vp_inputs *in, float *x,
                             float *pooled, vp_clip_layer_fn fn, void *ud)
{
    int64_t B = in->batch, H = in->height, W = in->width, D = v->D, C = v->channels;
    int64_t gh = H / v->patch, gw = W / v->patch, L = 1 + gh * gw;
    const float *pos = resized(v, in) ? positions(c, v, gh, gw) : v->pos;
    for (int64_t b = 0; b < B; b++) {
        float *xb = x + b * L * D;
        vp_nn_patch_embed(xb + D, D, in->pixel_values + b * C * H * W, 1, C, H, W, v->patch_w, NULL,
                          v->patch, D, c->slot[VP_S_CLIP_PATCH]);
        memcpy(xb, v->cls, (size_t)D * sizeof *xb);
        vp_nn_add(xb, pos, (size_t)(L * D));
    }
    vp__ln(&v->pre, x, x, B * L);
    for (int i = 0; i < v->enc.layers; i++) {
        vp__encoder_layer(c, &v->enc, i, x, B, L, 0);
        if (fn) fn(ud, i, x);
    }
    for (int64_t b = 0; pooled && b < B; b++) vp__ln(&v->post, pooled + b * D, x + b * L * D, 1);
}

int vp__clip_text_prepare(vp_ctx *c, const vp_clip_text *t, const vp_inputs *in)
{
    int64_t TB = in->text_batch, L = in->text_len;
    if (!in->input_ids || TB <= 0 || L <= 0)
        return vp__cerr(c, VP_ERR_ARG, "%s needs input_ids [batch, length]", c->m->cls);
    if (L > t->max_pos)
        return vp__cerr(c, VP_ERR_ARG, "input_ids has length %lld, more than max_position_embeddings %lld",
                        (long long)L, (long long)t->max_pos);
    for (int64_t i = 0; i < TB * L; i++)
        if (in->input_ids[i] < 0 || in->input_ids[i] >= t->vocab)
            return vp__cerr(c, VP_ERR_ARG, "input_ids[%lld][%lld] = %lld is outside the vocabulary [0, %lld)",
                            (long long)(i / L), (long long)(i % L), (long long)in->input_ids[i], (long long)t->vocab);
    return vp__encoder_reserve(c, &t->enc, TB, L);
}

static int64_t eos_position(const vp_clip_text *t, const int64_t *ids, int64_t L)
{
    int64_t at = 0;
    if (t->eos == 2) {                       /* argmax(input_ids), the first maximum */
        for (int64_t j = 1; j < L; j++) if (ids[j] > ids[at]) at = j;
        return at;
    }
    for (int64_t j = 0; j < L; j++) if (ids[j] == t->eos) return j;
    return 0;                                /* argmax of all zeros */
}

void vp__clip_text_forward(vp_ctx *c, const vp_clip_text *t, const vp_inputs *in, float *x, float *pooled)
{
    int64_t TB = in->text_batch, L = in->text_len, D = t->D;
    for (int64_t b = 0; b < TB; b++)
        for (int64_t j = 0; j < L; j++) {
            float *r = x + (b * L + j) * D;
            const float *te = t->tok + in->input_ids[b * L + j] * D, *pe = t->pos + j * D;
            for (int64_t d = 0; d < D; d++) r[d] = te[d] + pe[d];
        }
    for (int i = 0; i < t->enc.layers; i++) vp__encoder_layer(c, &t->enc, i, x, TB, L, 1);
    vp__ln(&t->final, x, x, TB * L);
    for (int64_t b = 0; pooled && b < TB; b++)
        memcpy(pooled + b * D, x + (b * L + eos_position(t, in->input_ids + b * L, L)) * D, (size_t)D * sizeof *pooled);
}

/* ---- the models -------------------------------------------------------------- */
typedef enum { CLIP_BOTH, CLIP_VISION, CLIP_TEXT } clip_kind;
enum { S_VPOOL = VP_S_CLIP_END, S_TPOOL };

typedef struct clip {
    clip_kind kind;
    int proj;                          /* with projection(s) */
    vp_clip_vision v;
    vp_clip_text t;
    int64_t P;                         /* projection_dim */
    vp_linear vproj, tproj;
    float scale;                       /* exp(logit_scale) */
} clip;

static void clip_free(void *p)
{
    clip *k = p;
    vp__clip_vision_free(&k->v);
    vp__clip_text_free(&k->t);
    vp__free(k);
}

static const char *arch0(const vp_model *m)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m->config, "architectures");
    const cJSON *s = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int clip_open(vp_model *m)
{
    clip *k = vp__calloc(1, sizeof *k);
    if (!k) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    m->impl = k;
    const char *arch = arch0(m);
    if (arch && strcmp(arch, "CLIPModel"))
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: architectures[0] \"%s\" is not a class vitport runs for clip (CLIPModel)", arch);
    m->cls = "CLIPModel";
    k->kind = CLIP_BOTH;
    k->proj = 1;
    const cJSON *vc, *tc;
    int rc = vp__cfg_sub(m, "vision_config", &vc);
    if (!rc) rc = vp__cfg_sub(m, "text_config", &tc);
    if (!rc) rc = vp__cfg_int(m, m->config, NULL, "projection_dim", vp_hf_clip_defaults, 1, 1 << 16, &k->P);
    if (!rc) rc = vp__clip_vision_load(m, &k->v, vc, "vision_config", vp_hf_clip_vision_defaults, "vision_model.");
    if (!rc) rc = vp__clip_text_load(m, &k->t, tc, "text_config", vp_hf_clip_text_defaults, "text_model.");
    if (!rc) rc = vp__load_linear(m, &k->vproj, k->P, k->v.D, 0, "visual_projection");
    if (!rc) rc = vp__load_linear(m, &k->tproj, k->P, k->t.D, 0, "text_projection");
    if (rc) return rc;
    const float *ls = vp__weight(m, 0, NULL, "logit_scale");
    if (!ls) return VP_ERR_MISMATCH;
    k->scale = expf(ls[0]);
    m->image_size = (int)k->v.image;
    m->max_text_len = (int)k->t.max_pos;
    m->inputs = VP_INPUT_PIXELS | VP_INPUT_IDS;
    return VP_OK;
}

/* CLIPVisionModel(WithProjection) (model_type clip_vision_model) and
 * CLIPTextModel(WithProjection) (clip_text_model): the config is the
 * tower's own; the tower's weights sit under vision_model. / text_model.
 * (or at the top level, as transformers 5 names CLIPVisionModel's). */
static int tower_open(vp_model *m, clip_kind kind)
{
    clip *k = vp__calloc(1, sizeof *k);
    if (!k) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    m->impl = k;
    k->kind = kind;
    int vis = kind == CLIP_VISION;
    const char *base = vis ? "CLIPVisionModel" : "CLIPTextModel";
    const char *withp = vis ? "CLIPVisionModelWithProjection" : "CLIPTextModelWithProjection";
    const char *pname = vis ? "visual_projection" : "text_projection";
    const char *arch = arch0(m);
    if (!arch) arch = vp__winfo(m, "%s.weight", pname) ? withp : base;
    if (!strcmp(arch, base)) { k->proj = 0; m->cls = vis ? "CLIPVisionModel" : "CLIPTextModel"; }
    else if (!strcmp(arch, withp)) { k->proj = 1; m->cls = vis ? "CLIPVisionModelWithProjection" : "CLIPTextModelWithProjection"; }
    else return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: architectures[0] \"%s\" is not a class vitport runs for %s (%s, %s)",
                         arch, m->model_type, base, withp);
    const char *pre = vis ? (vp__winfo(m, "vision_model.embeddings.class_embedding") ? "vision_model." : "")
                          : (vp__winfo(m, "text_model.embeddings.token_embedding.weight") ? "text_model." : "");
    int rc = vis ? vp__clip_vision_load(m, &k->v, m->config, NULL, vp_hf_clip_vision_defaults, pre)
                 : vp__clip_text_load(m, &k->t, m->config, NULL, vp_hf_clip_text_defaults, pre);
    if (!rc && k->proj) {
        const vp_hf_default *defs = vis ? vp_hf_clip_vision_defaults : vp_hf_clip_text_defaults;
        rc = vp__cfg_int(m, m->config, NULL, "projection_dim", defs, 1, 1 << 16, &k->P);
        if (!rc) rc = vp__load_linear(m, vis ? &k->vproj : &k->tproj, k->P, vis ? k->v.D : k->t.D, 0, "%s", pname);
    }
    if (rc) return rc;
    if (vis) { m->image_size = (int)k->v.image; m->inputs = VP_INPUT_PIXELS; }
    else { m->max_text_len = (int)k->t.max_pos; m->inputs = VP_INPUT_IDS; }
    return VP_OK;
}

static int vision_open(vp_model *m) { return tower_open(m, CLIP_VISION); }
static int text_open(vp_model *m) { return tower_open(m, CLIP_TEXT); }

static int clip_run(vp_ctx *c, const vp_inputs *in)
{
    const clip *k = c->m->impl;
    int vis = k->kind != CLIP_TEXT, txt = k->kind != CLIP_VISION;
    /* CLIPModel given one input runs that tower alone (get_image_features /
     * get_text_features) and hands out only its embeds. */
    if (k->kind == CLIP_BOTH && (!in->pixel_values) != (!in->input_ids)) {
        vis = in->pixel_values != NULL;
        txt = !vis;
    }
    int64_t B = in->batch, TB = in->text_batch, Lv = 0, Lt = in->text_len, P = k->P;
    int64_t Dv = k->v.D, Dt = k->t.D;
    int rc = vis ? vp__clip_vision_prepare(c, &k->v, in, &Lv) : VP_OK;
    if (!rc && txt) rc = vp__clip_text_prepare(c, &k->t, in);
    if (rc) return rc;

    if (k->kind == CLIP_BOTH && !(vis && txt)) {
        int64_t N = vis ? B : TB, L = vis ? Lv : Lt, D = vis ? Dv : Dt;
        float *e = vp__output(c, vis ? "image_embeds" : "text_embeds", 2, (int64_t[]){N, P});
        float *last = vp__output(c, vis ? "vision_model_last_hidden_state" : "text_model_last_hidden_state", 3,
                                 (int64_t[]){N, L, D});
        float *pool = vp__scratch(c, vis ? S_VPOOL : S_TPOOL, (size_t)(N * D));
        if (!e || !last || !pool) return VP_ERR_NOMEM;
        if (vis) vp__clip_vision_forward(c, &k->v, in, last, pool, NULL, NULL);
        else vp__clip_text_forward(c, &k->t, in, last, pool);
        vp__linear(vis ? &k->vproj : &k->tproj, e, P, pool, D, N);
        vp_nn_l2_normalize(e, N, P);
        return VP_OK;
    }
    if (k->kind == CLIP_BOTH) {
        float *lpi = vp__output(c, "logits_per_image", 2, (int64_t[]){B, TB});
        float *lpt = vp__output(c, "logits_per_text", 2, (int64_t[]){TB, B});
        float *te = vp__output(c, "text_embeds", 2, (int64_t[]){TB, P});
        float *ie = vp__output(c, "image_embeds", 2, (int64_t[]){B, P});
        float *tl = vp__output(c, "text_model_last_hidden_state", 3, (int64_t[]){TB, Lt, Dt});
        float *vl = vp__output(c, "vision_model_last_hidden_state", 3, (int64_t[]){B, Lv, Dv});
        /* The towers' pooled rows (transformers 5 hands out their
         * projections as the towers' pooler_output: not repeated here). */
        float *tp = vp__scratch(c, S_TPOOL, (size_t)(TB * Dt));
        float *vpo = vp__scratch(c, S_VPOOL, (size_t)(B * Dv));
        if (!lpi || !lpt || !te || !ie || !tl || !tp || !vl || !vpo) return VP_ERR_NOMEM;
        vp__clip_vision_forward(c, &k->v, in, vl, vpo, NULL, NULL);
        vp__clip_text_forward(c, &k->t, in, tl, tp);
        vp__linear(&k->vproj, ie, P, vpo, Dv, B);
        vp__linear(&k->tproj, te, P, tp, Dt, TB);
        vp_nn_l2_normalize(ie, B, P);
        vp_nn_l2_normalize(te, TB, P);
        /* (text @ image^T) * exp(logit_scale) */
        vp_nn_gemm(1, TB, B, P, 1.0f, te, P, ie, P, 0.0f, lpt, B);
        for (int64_t i = 0; i < TB * B; i++) lpt[i] *= k->scale;
        for (int64_t i = 0; i < TB; i++)
            for (int64_t j = 0; j < B; j++) lpi[j * TB + i] = lpt[i * B + j];
        return VP_OK;
    }
    /* CLIPVisionModel / CLIPTextModel: last_hidden_state, pooler_output;
     * ...WithProjection: image_embeds / text_embeds, last_hidden_state. */
    const char *emb = vis ? "image_embeds" : "text_embeds";
    int64_t N = vis ? B : TB, L = vis ? Lv : Lt, D = vis ? Dv : Dt;
    float *e = k->proj ? vp__output(c, emb, 2, (int64_t[]){N, P}) : NULL;
    float *last = vp__output(c, "last_hidden_state", 3, (int64_t[]){N, L, D});
    float *pool = k->proj ? vp__scratch(c, S_VPOOL, (size_t)(N * D))
                          : vp__output(c, "pooler_output", 2, (int64_t[]){N, D});
    if ((k->proj && !e) || !last || !pool) return VP_ERR_NOMEM;
    if (vis) vp__clip_vision_forward(c, &k->v, in, last, pool, NULL, NULL);
    else vp__clip_text_forward(c, &k->t, in, last, pool);
    if (k->proj) vp__linear(vis ? &k->vproj : &k->tproj, e, P, pool, D, N);
    return VP_OK;
}

const vp_model_family vp_model_clip = { "clip", clip_open, clip_free, clip_run };
const vp_model_family vp_model_clip_vision = { "clip_vision_model", vision_open, clip_free, clip_run };
const vp_model_family vp_model_clip_text = { "clip_text_model", text_open, clip_free, clip_run };
