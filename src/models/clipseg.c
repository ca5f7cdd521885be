/*
 * CLIPSegForImageSegmentation, as transformers' modeling_clipseg.py:
 *   the CLIP towers under "clip." (clip.c's code);
 *   pooled_output = clip.visual_projection(vision pooler_output);
 *   conditional_embeddings = clip.text_projection(text pooler_output)
 *       (get_conditional_embeddings: one text per image);
 *   activations = vision hidden_states[i + 1] (the output of encoder layer
 *       i) for i in extract_layers, taken deepest first;
 *   decoder, for each activation j with decoder.layers[j], reduces[j]:
 *       out = reduces[j](activation) (+ out from the second on);
 *       at j == conditional_layer, FiLM: out = film_mul(cond) * out +
 *       film_add(cond) (per image, broadcast over tokens);
 *       out = CLIPSegDecoderLayer (POST-norm: x = ln1(x + attn(x));
 *       x = ln2(x + mlp(x)), ReLU MLP, decoder_num_attention_heads heads,
 *       the vision tower's layer_norm_eps);
 *   the patch tokens as an image [B, reduce_dim, s, s] (s = sqrt(tokens));
 *   logits = transposed_convolution(image).squeeze(1) [B, H', W']: a
 *       ConvTranspose2d(reduce_dim, 1, patch, stride patch), or with
 *       use_complex_transposed_convolution Conv2d(rd, rd, 3, pad 1), ReLU,
 *       ConvTranspose2d(rd, rd/2, patch/4, stride patch/4), ReLU,
 *       ConvTranspose2d(rd/2, 1, patch/4, stride patch/4).
 */
#include <math.h>
#include <string.h>

#include "models/clip.h"

#define MAX_EXTRACT 64

typedef struct clipseg {
    vp_clip_vision v;
    vp_clip_text t;
    int64_t P, rd, n, extract[MAX_EXTRACT], cond_layer;
    vp_linear vproj, tproj, film_mul, film_add;
    vp_linear reduces[MAX_EXTRACT];
    vp_encoder dec;                    /* the decoder layers (post-norm) */
    int complex;
    int64_t k4;                        /* patch / 4 (complex) */
    const float *tw, *tb;              /* plain: [rd, 1, p, p], [1] */
    const float *c0w, *c0b, *t1w, *t1b, *t2w, *t2b;
} clipseg;

enum { S_ACT = VP_S_CLIP_END, S_VX, S_TX, S_POOL, S_TPOOL, S_OUT, S_FILM, S_IMG, S_C1, S_C2, S_CONV };

static void clipseg_free(void *p)
{
    clipseg *k = p;
    vp__clip_vision_free(&k->v);
    vp__clip_text_free(&k->t);
    vp__encoder_free(&k->dec);
    vp__free(k);
}

static int read_extract(vp_model *m, clipseg *k)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(m->config, "extract_layers");
    if (!e || cJSON_IsNull(e)) {
        k->n = 3; k->extract[0] = 3; k->extract[1] = 6; k->extract[2] = 9;
    } else {
        if (!cJSON_IsArray(e)) return vp__merr(m, VP_ERR_FORMAT, "config.json: extract_layers is not a list");
        int n = cJSON_GetArraySize(e);
        if (n < 1 || n > MAX_EXTRACT)
            return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: extract_layers has %d entries (vitport runs 1 to %d)", n, MAX_EXTRACT);
        k->n = n;
        for (int i = 0; i < n; i++) {
            const cJSON *it = cJSON_GetArrayItem(e, i);
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
                return vp__merr(m, VP_ERR_FORMAT, "config.json: extract_layers[%d] is not an integer", i);
            k->extract[i] = (int64_t)it->valuedouble;
        }
    }
    for (int64_t i = 0; i < k->n; i++)
        if (k->extract[i] < 0 || k->extract[i] >= k->v.enc.layers)
            return vp__merr(m, VP_ERR_MISMATCH, "config.json: extract_layers[%lld] = %lld is not a layer of the %lld-layer vision tower",
                            (long long)i, (long long)k->extract[i], (long long)k->v.enc.layers);
    return VP_OK;
}

static int clipseg_open(vp_model *m)
{
    clipseg *k = vp__calloc(1, sizeof *k);
    if (!k) return vp__merr(m, VP_ERR_NOMEM, "out of memory");
    m->impl = k;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m->config, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (cJSON_IsString(a0) && strcmp(a0->valuestring, "CLIPSegForImageSegmentation"))
        return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: architectures[0] \"%s\" is not a class vitport runs for clipseg "
                        "(CLIPSegForImageSegmentation)", a0->valuestring);
    m->cls = "CLIPSegForImageSegmentation";
    const cJSON *c = m->config, *vc, *tc;
    int64_t heads, mlp;
    int rc = vp__cfg_sub(m, "vision_config", &vc);
    if (!rc) rc = vp__cfg_sub(m, "text_config", &tc);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "projection_dim", vp_hf_clipseg_defaults, 1, 1 << 16, &k->P);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "reduce_dim", vp_hf_clipseg_defaults, 1, 1 << 16, &k->rd);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "decoder_num_attention_heads", vp_hf_clipseg_defaults, 1, 1 << 12, &heads);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "decoder_intermediate_size", vp_hf_clipseg_defaults, 1, 1 << 20, &mlp);
    if (!rc && k->rd % heads)
        rc = vp__merr(m, VP_ERR_MISMATCH, "config.json: reduce_dim %lld is not a multiple of decoder_num_attention_heads %lld",
                      (long long)k->rd, (long long)heads);
    if (!rc) rc = vp__cfg_int(m, c, NULL, "conditional_layer", vp_hf_clipseg_defaults, 0, 1 << 20, &k->cond_layer);
    if (!rc && vp_hf_read_bool(c, "use_complex_transposed_convolution", 0, &k->complex))
        rc = vp__merr(m, VP_ERR_FORMAT, "config.json: use_complex_transposed_convolution is not true or false");
    if (!rc) rc = vp__clip_vision_load(m, &k->v, vc, "vision_config", vp_hf_clipseg_vision_defaults, "clip.vision_model.");
    if (!rc) rc = vp__clip_text_load(m, &k->t, tc, "text_config", vp_hf_clipseg_text_defaults, "clip.text_model.");
    if (!rc) rc = vp__load_linear(m, &k->vproj, k->P, k->v.D, 0, "clip.visual_projection");
    if (!rc) rc = vp__load_linear(m, &k->tproj, k->P, k->t.D, 0, "clip.text_projection");
    if (!rc) rc = read_extract(m, k);
    if (rc) return rc;

    int64_t rd = k->rd, p = k->v.patch;
    rc = vp__load_linear(m, &k->film_mul, rd, k->P, 1, "decoder.film_mul");
    if (!rc) rc = vp__load_linear(m, &k->film_add, rd, k->P, 1, "decoder.film_add");
    for (int64_t i = 0; !rc && i < k->n; i++)
        rc = vp__load_linear(m, &k->reduces[i], rd, k->v.D, 1, "decoder.reduces.%lld", (long long)i);
    if (rc) return rc;
    /* decoder_config = the vision config with these sizes and ReLU */
    double eps;
    rc = vp__cfg_float(m, vc, "vision_config", "layer_norm_eps", vp_hf_clipseg_vision_defaults, &eps);
    if (rc) return rc;
    k->dec = (vp_encoder){ .layers = k->n, .width = rd, .heads = heads, .mlp = mlp, .act = VP_ACT_RELU };
    rc = vp__encoder_load(m, &k->dec, "decoder.layers.", &vp_enc_names_clip, eps);
    if (rc) return rc;
    if (!k->complex) {
        k->tw = vp__weight(m, 4, (int64_t[]){rd, 1, p, p}, "decoder.transposed_convolution.weight");
        k->tb = vp__weight(m, 1, (int64_t[]){1}, "decoder.transposed_convolution.bias");
    } else {
        k->k4 = p / 4;
        if (k->k4 < 1 || rd / 2 < 1)
            return vp__merr(m, VP_ERR_UNSUPPORTED, "config.json: use_complex_transposed_convolution needs patch_size >= 4 "
                            "and reduce_dim >= 2 (patch_size %lld, reduce_dim %lld)", (long long)p, (long long)rd);
        int64_t h = rd / 2, q = k->k4;
        k->c0w = vp__weight(m, 4, (int64_t[]){rd, rd, 3, 3}, "decoder.transposed_convolution.0.weight");
        k->c0b = vp__weight(m, 1, (int64_t[]){rd}, "decoder.transposed_convolution.0.bias");
        k->t1w = vp__weight(m, 4, (int64_t[]){rd, h, q, q}, "decoder.transposed_convolution.2.weight");
        k->t1b = vp__weight(m, 1, (int64_t[]){h}, "decoder.transposed_convolution.2.bias");
        k->t2w = vp__weight(m, 4, (int64_t[]){h, 1, q, q}, "decoder.transposed_convolution.4.weight");
        k->t2b = vp__weight(m, 1, (int64_t[]){1}, "decoder.transposed_convolution.4.bias");
    }
    if (m->errmsg[0]) return VP_ERR_MISMATCH;
    m->image_size = (int)k->v.image;
    m->max_text_len = (int)k->t.max_pos;
    m->inputs = VP_INPUT_PIXELS | VP_INPUT_IDS;
    return VP_OK;
}

/* The post-norm CLIPSegDecoderLayer on x [B*L, rd] in place. */
static void decoder_layer(vp_ctx *c, const vp_encoder *e, int i, float *x, int64_t B, int64_t L)
{
    const vp_enc_layer *ly = &e->l[i];
    int64_t rows = B * L, D = e->width, F = e->mlp, H = e->heads, dh = D / H;
    float *q = c->slot[VP_S_Q], *k = c->slot[VP_S_K], *v = c->slot[VP_S_V];
    float *ctx = c->slot[VP_S_CTX], *h = c->slot[VP_S_MLP];
    vp__linear(&ly->q, q, D, x, D, rows);
    vp__linear(&ly->k, k, D, x, D, rows);
    vp__linear(&ly->v, v, D, x, D, rows);
    vp_nn_attention(ctx, D, q, D, k, D, v, D, B, L, L, H, dh, 1.0f / sqrtf((float)dh), 0, c->slot[VP_S_ATTN]);
    vp_nn_linear(x, D, ctx, D, rows, &ly->o.w, ly->o.b, 1);
    vp__ln(&ly->ln1, x, x, rows);
    vp__linear(&ly->fc1, h, F, x, D, rows);
    vp_nn_act(h, (size_t)(rows * F), e->act);
    vp_nn_linear(x, D, h, F, rows, &ly->fc2.w, ly->fc2.b, 1);
    vp__ln(&ly->ln2, x, x, rows);
}

typedef struct keep_ud { const clipseg *k; float *act; size_t per; } keep_ud;

static void keep_layer(void *ud, int layer, const float *x)
{
    keep_ud *u = ud;
    for (int64_t j = 0; j < u->k->n; j++)
        if (u->k->extract[j] == layer) memcpy(u->act + (size_t)j * u->per, x, u->per * sizeof *x);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static int clipseg_run(vp_ctx *c, const vp_inputs *in)
{
    const clipseg *k = c->m->impl;
    int64_t B = in->batch, L = 0, Dv = k->v.D, Dt = k->t.D, P = k->P, rd = k->rd;
    int rc = vp__clip_vision_prepare(c, &k->v, in, &L);
    if (!rc) rc = vp__clip_text_prepare(c, &k->t, in);
    if (rc) return rc;
    if (in->text_batch != B)
        return vp__cerr(c, VP_ERR_ARG, "%lld texts for %lld images: give one prompt text per query image",
                        (long long)in->text_batch, (long long)B);
    int64_t s = (int64_t)sqrt((double)(L - 1));
    while (s * s > L - 1) s--;
    while ((s + 1) * (s + 1) <= L - 1) s++;
    if (s * s != L - 1)
        return vp__cerr(c, VP_ERR_ARG, "image %lldx%lld gives %lld patches, not a square grid (the decoder needs one)",
                        (long long)in->height, (long long)in->width, (long long)(L - 1));
    int64_t p = k->v.patch, q = k->k4, h = rd / 2;
    int64_t oh = k->complex ? s * q * q : s * p;
    size_t per = (size_t)(B * L * Dv), conv;
    if (k->complex)
        conv = max_sz(vp_nn_conv2d_scratch(rd, s, s, 3, 3, 1, 1),
                      max_sz(vp_nn_conv_transpose2d_scratch(rd, s, s, h, q, q),
                             vp_nn_conv_transpose2d_scratch(h, s * q, s * q, 1, q, q)));
    else
        conv = vp_nn_conv_transpose2d_scratch(rd, s, s, 1, p, p);
    float *act = vp__scratch(c, S_ACT, per * (size_t)k->n);
    float *vx = vp__scratch(c, S_VX, per);
    float *tx = vp__scratch(c, S_TX, (size_t)(B * in->text_len * Dt));
    float *vpool = vp__scratch(c, S_POOL, (size_t)(B * Dv));
    float *tpool = vp__scratch(c, S_TPOOL, (size_t)(B * Dt));
    float *out = vp__scratch(c, S_OUT, (size_t)(B * L * rd));
    float *film = vp__scratch(c, S_FILM, (size_t)(2 * B * rd));
    float *img = vp__scratch(c, S_IMG, (size_t)(rd * s * s));
    float *c1 = k->complex ? vp__scratch(c, S_C1, (size_t)(rd * s * s)) : img;
    float *c2 = k->complex ? vp__scratch(c, S_C2, (size_t)(h * s * q * s * q)) : img;
    float *cs = vp__scratch(c, S_CONV, conv);
    if (!act || !vx || !tx || !vpool || !tpool || !out || !film || !img || !c1 || !c2 || !cs ||
        vp__encoder_reserve(c, &k->dec, B, L))
        return VP_ERR_NOMEM;
    float *logits = vp__output(c, "logits", 3, (int64_t[]){B, oh, oh});
    float *cond = vp__output(c, "conditional_embeddings", 2, (int64_t[]){B, P});
    float *pooled = vp__output(c, "pooled_output", 2, (int64_t[]){B, P});
    if (!logits || !cond || !pooled) return VP_ERR_NOMEM;

    /* step 1: the vision tower, keeping the extracted layers */
    keep_ud ud = { k, act, per };
    vp__clip_vision_forward(c, &k->v, in, vx, vpool, keep_layer, &ud);
    vp__linear(&k->vproj, pooled, P, vpool, Dv, B);
    /* step 2: conditional embeddings from the texts */
    vp__clip_text_forward(c, &k->t, in, tx, tpool);
    vp__linear(&k->tproj, cond, P, tpool, Dt, B);
    /* step 3: the decoder */
    float *fm = film, *fa = film + B * rd;
    vp__linear(&k->film_mul, fm, rd, cond, P, B);
    vp__linear(&k->film_add, fa, rd, cond, P, B);
    for (int64_t j = 0; j < k->n; j++) {
        const float *a = act + (size_t)(k->n - 1 - j) * per;   /* deepest first */
        vp_nn_linear(out, rd, a, Dv, B * L, &k->reduces[j].w, k->reduces[j].b, j > 0);
        if (j == k->cond_layer)
            for (int64_t b = 0; b < B; b++)
                for (int64_t t = 0; t < L; t++) {
                    float *r = out + (b * L + t) * rd;
                    for (int64_t d = 0; d < rd; d++) r[d] = fm[b * rd + d] * r[d] + fa[b * rd + d];
                }
        decoder_layer(c, &k->dec, (int)j, out, B, L);
    }
    for (int64_t b = 0; b < B; b++) {
        /* drop CLS, tokens -> [rd, s, s] */
        for (int64_t t = 0; t < s * s; t++)
            for (int64_t d = 0; d < rd; d++) img[d * s * s + t] = out[(b * L + 1 + t) * rd + d];
        float *lg = logits + b * oh * oh;
        if (!k->complex) {
            vp_nn_conv_transpose2d(lg, img, rd, s, s, k->tw, k->tb, 1, p, p, p, cs);
        } else {
            vp_nn_conv2d(c1, img, rd, s, s, k->c0w, k->c0b, rd, 3, 3, 1, 1, cs);
            vp_nn_act(c1, (size_t)(rd * s * s), VP_ACT_RELU);
            vp_nn_conv_transpose2d(c2, c1, rd, s, s, k->t1w, k->t1b, h, q, q, q, cs);
            vp_nn_act(c2, (size_t)(h * s * q * s * q), VP_ACT_RELU);
            vp_nn_conv_transpose2d(lg, c2, h, s * q, s * q, k->t2w, k->t2b, 1, q, q, q, cs);
        }
    }
    return VP_OK;
}

const vp_model_family vp_model_clipseg = { "clipseg", clipseg_open, clipseg_free, clipseg_run };
