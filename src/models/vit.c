/*
 * ViT and DeiT, as transformers' modeling_vit.py / modeling_deit.py:
 *   embeddings = [CLS, (DIST,) patches] + position_embeddings
 *   encoder    = ViTLayer x N (pre-norm: layernorm_before, layernorm_after)
 *   last_hidden_state = layernorm(encoder output)
 *   ViTModel pooler: tanh(dense(h[:, 0]))
 *   ViTForImageClassification: classifier(h[:, 0])
 *   DeiTForImageClassificationWithTeacher: (cls_classifier(h[:, 0]) +
 *       distillation_classifier(h[:, 1])) / 2
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/model.h"

typedef enum { VIT_BASE, VIT_CLASSIFIER, DEIT_TEACHER } vit_head;

typedef struct vit {
    int deit;
    vit_head head;
    const char *pre;                  /* "", "vit." or "deit." */
    int64_t D, patch, channels, image, grid, tokens; /* tokens: 1 (CLS) or 2 (CLS + DIST) */
    int64_t labels;
    const float *cls, *dist, *pos;    /* pos: [1, tokens + grid^2, D] */
    const float *patch_w, *patch_b;
    vp_encoder enc;
    vp_ln final_ln;
    vp_linear pooler;                 /* pooler.dense when present */
    int has_pooler;
    vp_linear classifier, distill;    /* heads */
} vit;

enum { S_X = VP_S_FAMILY, S_PATCH, S_POS, S_POSTMP };

static void vit_free(void *p)
{
    vit *v = p;
    vp__encoder_free(&v->enc);
    vp__free(v);
}

static const char *arch0(const vp_model *m)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m->config, "architectures");
    const cJSON *s = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int vit_open_common(vp_model *m, int deit)
{
    vit *v = vp__calloc(1, sizeof *v);
    if (!v) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    m->impl = v;
    v->deit = deit;
    const char *arch = arch0(m);
    const char *name = deit ? "deit" : "vit";
    const char *base = deit ? "DeiTModel" : "ViTModel";
    const char *cls1 = deit ? "DeiTForImageClassification" : "ViTForImageClassification";
    /* The weights tell whether the base model sits under "vit." / "deit." */
    char pre_cls[64];
    snprintf(pre_cls, sizeof pre_cls, "%s.embeddings.cls_token", name);
    v->pre = vp__winfo(m, "%s", pre_cls) ? (deit ? "deit." : "vit.") : "";
    if (!arch) arch = vp__winfo(m, "cls_classifier.weight") ? "DeiTForImageClassificationWithTeacher"
                    : vp__winfo(m, "classifier.weight") ? cls1 : base;
    if (!strcmp(arch, base)) { v->head = VIT_BASE; m->cls = deit ? "DeiTModel" : "ViTModel"; }
    else if (!strcmp(arch, cls1)) { v->head = VIT_CLASSIFIER; m->cls = deit ? "DeiTForImageClassification" : "ViTForImageClassification"; }
    else if (deit && !strcmp(arch, "DeiTForImageClassificationWithTeacher")) { v->head = DEIT_TEACHER; m->cls = "DeiTForImageClassificationWithTeacher"; }
    else return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: architectures[0] \"%s\" is not a class vitport runs for %s (%s, %s%s)",
                         arch, name, base, cls1, deit ? ", DeiTForImageClassificationWithTeacher" : "");

    const cJSON *c = m->config;
    int64_t layers, heads, mlp;
    double eps;
    int rc = vp__cfg_int(m, c, NULL, "hidden_size", vp_hf_vit_defaults, 1, 1 << 16, &v->D);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "num_hidden_layers", vp_hf_vit_defaults, 0, 1024, &layers);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "num_attention_heads", vp_hf_vit_defaults, 1, 1 << 12, &heads);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "intermediate_size", vp_hf_vit_defaults, 1, 1 << 20, &mlp);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "patch_size", vp_hf_vit_defaults, 1, 1 << 12, &v->patch);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "image_size", vp_hf_vit_defaults, 1, 1 << 16, &v->image);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "num_channels", vp_hf_vit_defaults, 1, 64, &v->channels);
    if (!rc) rc = vp__cfg_float(m, c, NULL, "layer_norm_eps", vp_hf_vit_defaults, &eps);
    if (!rc) rc = vp__cfg_act(m, c, NULL, "hidden_act", vp_hf_vit_defaults, &v->enc.act);
    if (rc) return rc;
    int qkv_bias = 1;
    if (vp_hf_read_bool(c, "qkv_bias", 1, &qkv_bias) || !qkv_bias)
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: qkv_bias must be true (vitport runs ViT with q/k/v biases)");
    v->grid = v->image / v->patch;
    v->tokens = deit ? 2 : 1;
    m->image_size = (int)v->image;
    m->inputs = VP_INPUT_PIXELS;

    int64_t D = v->D;
    const char *P = v->pre;
    v->cls = vp__weight(m, 3, (int64_t[]){1, 1, D}, "%sembeddings.cls_token", P);
    if (deit) v->dist = vp__weight(m, 3, (int64_t[]){1, 1, D}, "%sembeddings.distillation_token", P);
    v->pos = vp__weight(m, 3, (int64_t[]){1, v->tokens + v->grid * v->grid, D}, "%sembeddings.position_embeddings", P);
    v->patch_w = vp__weight(m, 4, (int64_t[]){D, v->channels, v->patch, v->patch}, "%sembeddings.patch_embeddings.projection.weight", P);
    v->patch_b = vp__weight(m, 1, (int64_t[]){D}, "%sembeddings.patch_embeddings.projection.bias", P);
    if (m->errmsg[0]) return VP_ERR_MISMATCH;

    v->enc.layers = layers; v->enc.width = D; v->enc.heads = heads; v->enc.mlp = mlp;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%sencoder.layer.", P);
    rc = vp__encoder_load(m, &v->enc, prefix, &vp_enc_names_vit, eps);
    if (!rc) rc = vp__load_ln(m, &v->final_ln, D, eps, "%slayernorm", P);
    if (rc) return rc;

    if (v->head == VIT_BASE && vp__winfo(m, "%spooler.dense.weight", P)) {
        const vp_tensor *t = vp__winfo(m, "%spooler.dense.weight", P);
        int64_t out = t->ndim == 2 ? t->shape[0] : D;
        const char *act = "tanh";
        if (vp_hf_read_str(c, "pooler_act", NULL, &act) == VP_ERR_FORMAT || strcmp(act, "tanh"))
            return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: pooler_act must be \"tanh\"");
        rc = vp__load_linear(m, &v->pooler, out, D, 1, "%spooler.dense", P);
        if (rc) return rc;
        v->has_pooler = 1;
    }
    if (v->head == VIT_CLASSIFIER || v->head == DEIT_TEACHER) {
        const char *hn = v->head == DEIT_TEACHER ? "cls_classifier" : "classifier";
        const vp_tensor *t = vp__winfo(m, "%s.weight", hn);
        if (!t || t->ndim != 2) return vp__merr(m, VP_ERR_NOTFOUND, "tensor '%s.weight' is missing or not 2-D", hn);
        v->labels = t->shape[0];
        rc = vp__load_linear(m, &v->classifier, v->labels, D, 1, "%s", hn);
        if (!rc && v->head == DEIT_TEACHER)
            rc = vp__load_linear(m, &v->distill, v->labels, D, 1, "distillation_classifier");
        if (rc) return rc;
        /* num_labels follows id2label in transformers' configs. */
        const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(c, "id2label");
        if (cJSON_IsObject(id2) && cJSON_GetArraySize(id2) != v->labels)
            return vp__merr(m, VP_ERR_MISMATCH, "config.json: id2label has %d labels, %s.weight has %lld rows",
                            cJSON_GetArraySize(id2), hn, (long long)v->labels);
    }
    return VP_OK;
}

static int vit_open(vp_model *m) { return vit_open_common(m, 0); }
static int deit_open(vp_model *m) { return vit_open_common(m, 1); }

/* Position embeddings for a gh x gw grid: the stored ones, or their patch
 * part resized bicubically (interpolate_pos_encoding). */
static const float *positions(vp_ctx *c, const vit *v, int64_t gh, int64_t gw)
{
    if (gh == v->grid && gw == v->grid) return v->pos;
    int64_t D = v->D, T = v->tokens, g = v->grid;
    float *out = vp__scratch(c, S_POS, (size_t)((T + gh * gw) * D));
    float *chw = vp__scratch(c, S_POSTMP, (size_t)(D * (g * g + gh * gw)));
    if (!out || !chw) return NULL;
    memcpy(out, v->pos, (size_t)(T * D) * sizeof *out);
    vp__pos_interpolate(out + T * D, v->pos + T * D, D, g, gh, gw, chw);
    return out;
}

static int vit_run(vp_ctx *c, const vp_inputs *in)
{
    const vit *v = c->m->impl;
    int64_t B = in->batch, H = in->height, W = in->width, D = v->D, T = v->tokens;
    if (!in->pixel_values || B <= 0 || H <= 0 || W <= 0)
        return vp__cerr(c, VP_ERR_ARG, "%s needs pixel_values [batch, %lld, H, W]", c->m->cls, (long long)v->channels);
    if (!in->interpolate_pos_encoding && (H != v->image || W != v->image))
        return vp__cerr(c, VP_ERR_ARG, "input image size (%lld*%lld) doesn't match model (%lld*%lld); "
                        "ask for interpolate_pos_encoding to run other sizes",
                        (long long)H, (long long)W, (long long)v->image, (long long)v->image);
    int64_t gh = H / v->patch, gw = W / v->patch;
    if (gh <= 0 || gw <= 0)
        return vp__cerr(c, VP_ERR_ARG, "image %lldx%lld is smaller than one %lld-pixel patch",
                        (long long)H, (long long)W, (long long)v->patch);
    int64_t L = T + gh * gw;
    float *x = vp__scratch(c, S_X, (size_t)(B * L * D));
    float *cols = vp__scratch(c, S_PATCH, vp_nn_patch_embed_scratch(v->channels, H, W, v->patch));
    const float *pos = x && cols ? positions(c, v, gh, gw) : NULL;
    if (!pos || vp__encoder_reserve(c, &v->enc, B, L)) return VP_ERR_NOMEM;

    /* embeddings */
    for (int64_t b = 0; b < B; b++) {
        float *xb = x + b * L * D;
        vp_nn_patch_embed(xb + T * D, D, in->pixel_values + b * v->channels * H * W, 1, v->channels, H, W,
                          v->patch_w, v->patch_b, v->patch, D, cols);
        memcpy(xb, v->cls, (size_t)D * sizeof *xb);
        if (v->dist) memcpy(xb + D, v->dist, (size_t)D * sizeof *xb);
        vp_nn_add(xb, pos, (size_t)(L * D));
    }
    for (int i = 0; i < v->enc.layers; i++) vp__encoder_layer(c, &v->enc, i, x, B, L, 0);

    float *last = vp__output(c, "last_hidden_state", 3, (int64_t[]){B, L, D});
    if (!last) return VP_ERR_NOMEM;
    vp__ln(&v->final_ln, last, x, B * L);

    if (v->has_pooler) {
        float *po = vp__output(c, "pooler_output", 2, (int64_t[]){B, v->pooler.w.n});
        if (!po) return VP_ERR_NOMEM;
        vp__linear(&v->pooler, po, v->pooler.w.n, last, L * D, B);
        for (int64_t i = 0; i < B * v->pooler.w.n; i++) po[i] = tanhf(po[i]);
    }
    if (v->head == VIT_CLASSIFIER) {
        float *lg = vp__output(c, "logits", 2, (int64_t[]){B, v->labels});
        if (!lg) return VP_ERR_NOMEM;
        vp__linear(&v->classifier, lg, v->labels, last, L * D, B);
    } else if (v->head == DEIT_TEACHER) {
        int64_t N = v->labels;
        float *lg = vp__output(c, "logits", 2, (int64_t[]){B, N});
        float *cl = vp__output(c, "cls_logits", 2, (int64_t[]){B, N});
        float *dl = vp__output(c, "distillation_logits", 2, (int64_t[]){B, N});
        if (!lg || !cl || !dl) return VP_ERR_NOMEM;
        vp__linear(&v->classifier, cl, N, last, L * D, B);
        vp__linear(&v->distill, dl, N, last + D, L * D, B);
        for (int64_t i = 0; i < B * N; i++) lg[i] = (cl[i] + dl[i]) / 2.0f;
    }
    return VP_OK;
}

const vp_model_family vp_model_vit = { "vit", vit_open, vit_free, vit_run };
const vp_model_family vp_model_deit = { "deit", deit_open, vit_free, vit_run };
