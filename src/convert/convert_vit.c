/*
 * timm ViT and DeiT (seed 001, and transformers' DeiT script for distilled
 * models) -> ViTModel / ViTForImageClassification / DeiT*.
 *
 * Everything is read from the tensors (width from cls_token, depth from the
 * blocks, MLP width from fc1, patch size from the patch kernel — never from
 * the model name —, image size from the position-embedding count, classes
 * from the head); only the head count is a convention (64 per head, or the
 * size in --model-name, or --set num_attention_heads). The variants
 * transformers' ViT cannot represent are refused with the seed's reasons.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert/convert.h"

#define VIT_MAX_LAYERS 4096
#define VIT_MAX_CLASSES (1 << 18)        /* id2label entries (ImageNet-22k has 21843) */
#define LABELS_MAX_BYTES ((size_t)64 << 20)

typedef struct vit_dims {
    int64_t D, L, mlp, P, C, grid, npos, img, K, H;
    bool qkv_bias, distilled, head;  /* head: a classifier with K > 0 classes */
} vit_dims;

/* ---- name lookups -------------------------------------------------------- */
static long find_pre(const vp_table *tb, const char *pre, const char *name)
{
    char buf[VP_MAX_NAME + 1];
    if (snprintf(buf, sizeof buf, "%s%s", pre, name) >= (int)sizeof buf) return -1;
    return vp_table_find(tb, buf);
}

/* The same through the plan's sorted index (builders). */
static long pfind(vp_plan *p, const char *pre, const char *name) { return vp_plan_src(p, "%s%s", pre, name); }

/* First tensor whose name starts with pre+start, or NULL. */
static const char *first_with(const vp_table *tb, const char *pre, const char *start)
{
    size_t pl = strlen(pre), sl = strlen(start);
    for (size_t i = 0; i < tb->n; i++) {
        const char *nm = tb->t[i].name;
        if (!strncmp(nm, pre, pl) && !strncmp(nm + pl, start, sl)) return nm;
    }
    return NULL;
}

int vp_vit_detect_prefix(const vp_table *tb, const char *pre)
{
    bool blocks = find_pre(tb, pre, "blocks.0.norm1.weight") >= 0 || find_pre(tb, pre, "blocks.0.attn.qkv.weight") >= 0;
    if (!blocks) return 0;
    if (find_pre(tb, pre, "patch_embed.proj.weight") >= 0) {
        int s = 8;
        if (find_pre(tb, pre, "cls_token") >= 0) s++;
        if (find_pre(tb, pre, "pos_embed") >= 0) s++;
        return s;
    }
    /* a hybrid patch embedding still is a timm ViT (refused by build) */
    return first_with(tb, pre, "patch_embed.backbone.") ? 5 : 0;
}

/* ---- refusals ------------------------------------------------------------ */
static int refuse(vp_plan *p, bool dino, const char *found, const char *why)
{
    const char *who = p->opts && p->opts->model_name ? p->opts->model_name : dino ? "this DINO ViT" : "this timm ViT";
    return vp_plan_fail(p, VP_ERR_UNSUPPORTED, "%s is not supported in transformers because %s (found '%s')", who, why, found);
}

/* The seed's checks, in its order, then the other timm options ViT lacks. */
static int check_refusals(vp_plan *p, const char *pre, bool dino)
{
    static const struct { const char *start; const char *why; } R[] = {
        {"fc_norm.", "of the presence of fc_norm"},
        {"norm_pre.", "it's a CLIP style ViT with norm_pre layer"},
        {"attn_pool.", "it's a SigLIP style ViT with attn_pool"},
        {"blocks.0.ls1.", "it uses a layer scale in its blocks"},
        {"blocks.0.ls2.", "it uses a layer scale in its blocks"},
        {"patch_embed.backbone.", "it is a hybrid ResNet-ViT"},
        {"reg_token", "it uses register tokens (reg_token)"},
        {"blocks.0.attn.q_norm.", "it normalises queries and keys (qk_norm)"},
        {"blocks.0.attn.norm.", "it normalises inside its attention (scale_attn_norm)"},
        {"blocks.0.mlp.norm.", "it normalises inside its MLP (scale_mlp_norm)"},
        {"blocks.0.mlp.fc1_g.", "it uses a gated MLP (SwiGLU)"},
        {"blocks.0.mlp.w12.", "it uses a gated MLP (SwiGLU)"},
        {"patch_embed.norm.", "it normalises its patch embedding"},
        {"pre_logits.", "it has a pre-logits representation layer"},
        {"head.fc.", "its head is not a single linear layer"},
    };
    const vp_table *src = &p->table;
    /* fc_norm first, as the seed */
    const char *f = first_with(src, pre, R[0].start);
    if (f) return refuse(p, dino, f, R[0].why);
    /* global average pooling: no class token to pool from */
    if (pfind(p, pre, "cls_token") < 0) {
        const char *pw = first_with(src, pre, "patch_embed.");
        return refuse(p, dino, pw ? pw : "no cls_token", "of use of global average pooling (no class token)");
    }
    for (size_t i = 1; i < sizeof R / sizeof R[0]; i++)
        if ((f = first_with(src, pre, R[i].start))) return refuse(p, dino, f, R[i].why);
    return VP_OK;
}

/* ---- sizes from the tensors --------------------------------------------- */
static int bad_shape(vp_plan *p, const vp_tensor *t, const char *want)
{
    return vp_plan_fail(p, VP_ERR_FORMAT, "'%s' has shape %s; %s", t->name, vp_plan_shape_str(p, t), want);
}

static int read_dims(vp_plan *p, const char *pre, vit_dims *d)
{
    memset(d, 0, sizeof *d);
    const vp_tensor *cls = vp_plan_tensor(p, pfind(p, pre, "cls_token"));
    if (cls->ndim != 3 || cls->shape[0] != 1 || cls->shape[1] != 1 || cls->shape[2] <= 0)
        return bad_shape(p, cls, "a class token [1, 1, width] was expected");
    d->D = cls->shape[2];
    const vp_tensor *dist = vp_plan_tensor(p, pfind(p, pre, "dist_token"));
    d->distilled = dist != NULL;

    const vp_tensor *pos = vp_plan_tensor(p, pfind(p, pre, "pos_embed"));
    if (!pos) return vp_plan_fail(p, VP_ERR_UNSUPPORTED, "no position embedding ('%spos_embed'): transformers' ViT needs one", pre);
    if (pos->ndim != 3 || pos->shape[0] != 1 || pos->shape[2] != d->D)
        return bad_shape(p, pos, vp_plan_strf(p, "[1, tokens, %lld] was expected", (long long)d->D));
    d->npos = pos->shape[1];
    int64_t prefix = d->distilled ? 2 : 1;
    d->grid = vp__isqrt(d->npos - prefix);
    if (d->grid <= 0)
        return vp_plan_fail(p, VP_ERR_UNSUPPORTED, "'%s' holds %lld positions, not %lld class token(s) plus a square grid "
                            "(position embeddings without the class token are not supported)",
                            pos->name, (long long)d->npos, (long long)prefix);

    const vp_tensor *pw = vp_plan_tensor(p, pfind(p, pre, "patch_embed.proj.weight"));
    if (!pw) return vp_plan_fail(p, VP_ERR_FORMAT, "no patch embedding ('%spatch_embed.proj.weight')", pre);
    if (pw->ndim != 4 || pw->shape[0] != d->D || pw->shape[1] <= 0 || pw->shape[2] <= 0)
        return bad_shape(p, pw, vp_plan_strf(p, "[%lld, channels, patch, patch] was expected", (long long)d->D));
    if (pw->shape[2] != pw->shape[3])
        return vp_plan_fail(p, VP_ERR_UNSUPPORTED, "'%s' has non-square patches %s", pw->name, vp_plan_shape_str(p, pw));
    d->C = pw->shape[1];
    d->P = pw->shape[2];
    d->img = d->grid * d->P;

    while (d->L < VIT_MAX_LAYERS) {
        char nm[64];
        snprintf(nm, sizeof nm, "blocks.%lld.norm1.weight", (long long)d->L);
        if (pfind(p, pre, nm) < 0) break;
        d->L++;
    }
    if (d->L == 0) return vp_plan_fail(p, VP_ERR_FORMAT, "no transformer blocks ('%sblocks.0.norm1.weight')", pre);
    const vp_tensor *fc1 = vp_plan_tensor(p, pfind(p, pre, "blocks.0.mlp.fc1.weight"));
    if (!fc1) return vp_plan_fail(p, VP_ERR_FORMAT, "no MLP in block 0 ('%sblocks.0.mlp.fc1.weight')", pre);
    if (fc1->ndim != 2 || fc1->shape[1] != d->D || fc1->shape[0] <= 0)
        return bad_shape(p, fc1, vp_plan_strf(p, "[mlp, %lld] was expected", (long long)d->D));
    d->mlp = fc1->shape[0];
    for (int64_t i = 0; i < d->L; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blocks.%lld.attn.qkv.weight", (long long)i);
        const vp_tensor *q = vp_plan_tensor(p, pfind(p, pre, nm));
        if (q && (q->ndim != 2 || q->shape[0] != 3 * d->D || q->shape[1] != d->D))
            return bad_shape(p, q, vp_plan_strf(p, "the fused query/key/value [%lld, %lld] was expected",
                                                (long long)(3 * d->D), (long long)d->D));
        snprintf(nm, sizeof nm, "blocks.%lld.attn.qkv.bias", (long long)i);
        const vp_tensor *b = vp_plan_tensor(p, pfind(p, pre, nm));
        if (i == 0) d->qkv_bias = b != NULL;
        if (b && (b->ndim != 1 || b->shape[0] != 3 * d->D))
            return bad_shape(p, b, vp_plan_strf(p, "[%lld] was expected", (long long)(3 * d->D)));
    }

    const vp_tensor *hw = vp_plan_tensor(p, pfind(p, pre, "head.weight"));
    if (hw) {
        if (hw->ndim != 2 || hw->shape[1] != d->D)
            return bad_shape(p, hw, vp_plan_strf(p, "a linear classifier [classes, %lld] was expected", (long long)d->D));
        d->K = hw->shape[0];
        d->head = d->K > 0;
        if (d->K > VIT_MAX_CLASSES)
            return vp_plan_fail(p, VP_ERR_LIMIT, "'%s' has %lld classes (at most %d)", hw->name, (long long)d->K, VIT_MAX_CLASSES);
    }
    const vp_tensor *hd = vp_plan_tensor(p, pfind(p, pre, "head_dist.weight"));
    if (hd && (hd->ndim != 2 || hd->shape[1] != d->D || hd->shape[0] != d->K))
        return bad_shape(p, hd, vp_plan_strf(p, "[%lld, %lld] like head.weight was expected", (long long)d->K, (long long)d->D));
    if (hd && !d->distilled) return vp_plan_fail(p, VP_ERR_FORMAT, "'%s' without a distillation token", hd->name);
    return VP_OK;
}

/* ---- heads from --model-name --------------------------------------------- */
static const struct { const char *size; int64_t width, heads; } SIZES[] = {
    {"tiny", 192, 3}, {"small", 384, 6}, {"medium", 512, 8}, {"base", 768, 12},
    {"large", 1024, 16}, {"huge", 1280, 16}, {"giant", 1408, 16}, {"gigantic", 1664, 16},
};

/* The size word of a timm name ("vit_base_patch16_224.augreg_in21k",
 * "deit_small_patch16_224") or a DINO hub name ("dino_vits8", "dino_vitb16"). */
static int name_size(const char *name)
{
    char low[256];
    size_t n = 0;
    for (; name[n] && n < sizeof low - 1; n++) low[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    low[n] = 0;
    const char *v = strstr(low, "dino_vit");
    if (!v) v = strstr(low, "dino-vit");
    if (v && (v[8] == 's' || v[8] == 'b') && v[9] >= '0' && v[9] <= '9') return v[8] == 's' ? 1 : 3;
    /* split on _ - . and look for a size word; "gigantic" before "giant" */
    char *save = NULL;
    for (char *tok = strtok_r(low, "_-.", &save); tok; tok = strtok_r(NULL, "_-.", &save))
        for (int i = (int)(sizeof SIZES / sizeof SIZES[0]) - 1; i >= 0; i--)
            if (!strcmp(tok, SIZES[i].size)) return i;
    return -1;
}

/* ---- labels -------------------------------------------------------------- */
/* id2label[id] = name, appended: the ids are new by construction, and
 * vp_json_set's lookup of each key would make K classes cost K^2. */
static int add_label(cJSON *o, int64_t id, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    cJSON *v = cJSON_CreateString(name);
    if (!v || !cJSON_AddItemToObject(o, key, v)) { cJSON_Delete(v); return VP_ERR_NOMEM; }
    return VP_OK;
}

/* A canonical decimal id ("0", "17"; not "01", "+1", " 1") below n, or -1. */
static int64_t parse_id(const char *s, int64_t n)
{
    if (!s || !*s || (s[0] == '0' && s[1])) return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v >= n) return -1;
        v = v * 10 + (*s - '0');
    }
    return v < n ? v : -1;
}

/* The names of an {id: name} object with exactly the ids 0..n-1, in one
 * pass over it (a lookup per id would cost n^2): *names gets a vp__malloc'ed
 * array by id. VP_OK, VP_ERR_MISMATCH (not such a mapping) or VP_ERR_NOMEM. */
static int names_by_id(const cJSON *obj, int64_t n, const char ***names)
{
    *names = NULL;
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof **names) return VP_ERR_MISMATCH;
    const char **by = vp__calloc(n ? (size_t)n : 1, sizeof *by);
    if (!by) return VP_ERR_NOMEM;
    int64_t count = 0;
    for (const cJSON *c = obj->child; c; c = c->next, count++) {
        int64_t id = parse_id(c->string, n);
        if (count >= n || id < 0 || by[id] || !cJSON_IsString(c) || !c->valuestring) { vp__free(by); return VP_ERR_MISMATCH; }
        by[id] = c->valuestring;
    }
    if (count != n) { vp__free(by); return VP_ERR_MISMATCH; }
    *names = by;
    return VP_OK;
}

/* One name per line (a final newline optional, \r\n accepted). */
static cJSON *labels_from_lines(vp_plan *p, const char *path, char *text, size_t len, int64_t K)
{
    if (vp__utf8_check((const uint8_t *)text, len, false) != len || memchr(text, 0, len)) {
        vp_plan_fail(p, VP_ERR_FORMAT, "%s: not UTF-8 text", path);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    int64_t i = 0;
    char *line = text, *end = text + len;
    while (o && line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        if (stop > line && stop[-1] == '\r') stop--;
        if (i >= K) { i++; break; }
        *stop = 0;
        if (add_label(o, i++, line)) { cJSON_Delete(o); o = NULL; break; }
        line = nl ? nl + 1 : end;
    }
    if (!o) { vp_plan_fail(p, VP_ERR_NOMEM, "out of memory"); return NULL; }
    if (i != K) {
        /* count all lines for the message */
        int64_t lines = 0;
        for (size_t k = 0; k < len; k++) lines += text[k] == '\n' || text[k] == 0;
        if (len && text[len - 1] != '\n') lines++;
        vp_plan_fail(p, VP_ERR_MISMATCH, "%s has %lld names but the classifier has %lld classes", path,
                     (long long)(i > K ? lines : i), (long long)K);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* An id2label JSON object ({"0": "tench", ...}) with exactly ids 0..K-1. */
static cJSON *labels_from_json(vp_plan *p, const char *path, const char *text, size_t len, int64_t K)
{
    cJSON *j = vp_json_parse(text, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        vp_plan_fail(p, VP_ERR_FORMAT, "%s: not a JSON object of id -> name", path);
        return NULL;
    }
    const char **names = NULL;
    int rc = names_by_id(j, K, &names);
    cJSON *o = rc ? NULL : cJSON_CreateObject();
    for (int64_t i = 0; o && i < K; i++)
        if (add_label(o, i, names[i])) { cJSON_Delete(o); o = NULL; }
    vp__free(names);
    cJSON_Delete(j);
    if (rc == VP_ERR_MISMATCH) {
        vp_plan_fail(p, VP_ERR_MISMATCH, "%s must map the ids 0..%lld to names (the classifier has %lld classes)", path,
                     (long long)(K - 1), (long long)K);
        return NULL;
    }
    if (!o) vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    return o;
}

static const char *data_dir(vp_plan *p)
{
    if (p->opts && p->opts->data_dir) return p->opts->data_dir;
    const char *env = getenv("VITPORT_DATADIR");
    return env && *env ? env : NULL;
}

/* timm's ImageNet class-id lists (timm/data/_info/, timm 1.0.31), built
 * into the library from data/ (cmake/embed_data.cmake) */
#define VP_DATA(id) extern const unsigned char vp__data_##id[]; extern const size_t vp__data_##id##_len;
VP_DATA(imagenet_synsets)
VP_DATA(imagenet21k_miil_synsets)
VP_DATA(imagenet12k_synsets)
VP_DATA(imagenet22k_synsets)
VP_DATA(imagenet22k_ms_synsets)
VP_DATA(imagenet21k_goog_synsets)
#undef VP_DATA

/* timm's infer_imagenet_subset: the subset a head's class count names */
static const struct imagenet_subset {
    int64_t classes;
    const char *subset, *file;
    const unsigned char *data;
    const size_t *len;
} IMAGENET_SUBSETS[] = {
    { 1000, "imagenet-1k", "imagenet_synsets.txt", vp__data_imagenet_synsets, &vp__data_imagenet_synsets_len },
    { 11221, "imagenet-21k-miil", "imagenet21k_miil_synsets.txt", vp__data_imagenet21k_miil_synsets,
      &vp__data_imagenet21k_miil_synsets_len },
    { 11821, "imagenet-12k", "imagenet12k_synsets.txt", vp__data_imagenet12k_synsets, &vp__data_imagenet12k_synsets_len },
    { 21841, "imagenet-22k", "imagenet22k_synsets.txt", vp__data_imagenet22k_synsets, &vp__data_imagenet22k_synsets_len },
    { 21842, "imagenet-22k-ms", "imagenet22k_ms_synsets.txt", vp__data_imagenet22k_ms_synsets,
      &vp__data_imagenet22k_ms_synsets_len },
    { 21843, "imagenet-21k-goog", "imagenet21k_goog_synsets.txt", vp__data_imagenet21k_goog_synsets,
      &vp__data_imagenet21k_goog_synsets_len },
};

/* id2label: --labels; for a class count timm maps to an ImageNet subset
 * (1000, 11221, 11821, 21841, 21842, 21843) that subset's WordNet ids, what
 * the seed writes through timm's ImageNetInfo (from the data directory when
 * one is given, else the copy built into the library); else LABEL_i
 * (ViTConfig's default). VP_OK with *out set, or the failure's code with
 * p->err set. */
static int make_id2label(vp_plan *p, int64_t K, cJSON **out)
{
    *out = NULL;
    const char *path = p->opts ? p->opts->labels : NULL;
    char synsets[4096];
    size_t len = 0;
    char *text = NULL;
    const struct imagenet_subset *sub = NULL;
    for (size_t i = 0; !path && i < sizeof IMAGENET_SUBSETS / sizeof *IMAGENET_SUBSETS; i++)
        if (IMAGENET_SUBSETS[i].classes == K) sub = &IMAGENET_SUBSETS[i];
    if (sub) {
        const char *dir = data_dir(p);
        if (dir) {
            snprintf(synsets, sizeof synsets, "%s/%s", dir, sub->file);
            path = synsets;
        } else {
            len = *sub->len;
            text = vp__malloc(len + 1);
            if (!text) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
            memcpy(text, sub->data, len + 1);
            path = vp_plan_strf(p, "the built-in %s", sub->file);
        }
        vp_plan_note(p, "id2label: %lld classes, timm's ImageNet subset %s (%s)", (long long)K, sub->subset, path);
    }
    cJSON *o = NULL;
    if (path) {
        char msg[768];
        if (!text) {
            int rc = vp__read_file(path, LABELS_MAX_BYTES, &text, &len, msg, sizeof msg);
            if (rc) return vp_plan_fail(p, rc, "cannot read labels: %s", msg);
        }
        size_t k = 0;
        while (k < len && strchr(" \t\r\n", text[k])) k++;
        o = k < len && text[k] == '{' ? labels_from_json(p, path, text, len, K)
                                      : labels_from_lines(p, path, text, len, K);
        vp__free(text);
        if (!o) return p->errcode;
        *out = o;
        return VP_OK;
    }
    o = cJSON_CreateObject();
    for (int64_t i = 0; o && i < K; i++) {
        char val[48];
        snprintf(val, sizeof val, "LABEL_%lld", (long long)i);
        if (add_label(o, i, val)) { cJSON_Delete(o); o = NULL; }
    }
    if (!o) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    *out = o;
    return VP_OK;
}

typedef struct named_id { const char *name; int64_t id; } named_id;

static int named_id_cmp(const void *a, const void *b)
{
    const named_id *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* label2id = {name: id} from id2label (a repeated name keeps the last id, as
 * the seed's dict comprehension). Sorted by name, so that any number of
 * classes costs n log n. */
static int set_label2id(vp_plan *p, int64_t K)
{
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(p->config, "id2label");
    if (!id2) return VP_OK;
    if (!cJSON_IsObject(id2)) return vp_plan_fail(p, VP_ERR_ARG, "id2label must be an object");
    int64_t n = cJSON_GetArraySize(id2);
    if (K > 0 && n != K)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "id2label has %lld entries but the classifier has %lld classes",
                            (long long)n, (long long)K);
    const char **names = NULL;
    int rc = names_by_id(id2, n, &names);
    if (rc == VP_ERR_MISMATCH)
        return vp_plan_fail(p, VP_ERR_ARG, "id2label must map the ids 0..%lld to names", (long long)(n - 1));
    named_id *ord = rc ? NULL : vp__malloc((n ? (size_t)n : 1) * sizeof *ord);
    cJSON *l2i = ord ? cJSON_CreateObject() : NULL;
    if (l2i) {
        for (int64_t i = 0; i < n; i++) ord[i] = (named_id){names[i], i};
        qsort(ord, (size_t)n, sizeof *ord, named_id_cmp);
        for (int64_t i = 0; l2i && i < n; i++) {
            if (i + 1 < n && !strcmp(ord[i].name, ord[i + 1].name)) continue;   /* a later id follows */
            cJSON *v = cJSON_CreateNumber((double)ord[i].id);
            if (!v || !cJSON_AddItemToObject(l2i, ord[i].name, v)) { cJSON_Delete(v); cJSON_Delete(l2i); l2i = NULL; }
        }
    }
    vp__free(names);
    vp__free(ord);
    if (!l2i || vp_json_set(p->config, "label2id", l2i)) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    return VP_OK;
}

/* ---- config -------------------------------------------------------------- */
static int make_config(vp_plan *p, const vit_dims *d)
{
    cJSON *c = p->config;
    int rc = 0;
    cJSON *arch = cJSON_CreateArray(), *cls = cJSON_CreateString(p->hf_class);
    if (!arch || !cls || !cJSON_AddItemToArray(arch, cls)) {
        cJSON_Delete(arch);
        cJSON_Delete(cls);
        return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    }
    rc |= vp_json_set(c, "architectures", arch);
    rc |= vp_json_set_float(c, "attention_probs_dropout_prob", 0.0);
    rc |= vp_json_set_int(c, "encoder_stride", 16);
    rc |= vp_json_set_str(c, "hidden_act", "gelu");
    rc |= vp_json_set_float(c, "hidden_dropout_prob", 0.0);
    rc |= vp_json_set_int(c, "hidden_size", d->D);
    rc |= vp_json_set_int(c, "image_size", d->img);
    rc |= vp_json_set_float(c, "initializer_range", 0.02);
    rc |= vp_json_set_int(c, "intermediate_size", d->mlp);
    /* timm's and DINO's LayerNorm eps; the seed leaves ViTConfig's 1e-12 */
    rc |= vp_json_set_float(c, "layer_norm_eps", 1e-6);
    rc |= vp_json_set_str(c, "model_type", d->distilled ? "deit" : "vit");
    rc |= vp_json_set_int(c, "num_channels", d->C);
    rc |= vp_json_set_int(c, "num_hidden_layers", d->L);
    rc |= vp_json_set_int(c, "patch_size", d->P);
    rc |= vp_json_set_bool(c, "qkv_bias", d->qkv_bias);
    if (rc) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");

    /* heads: --model-name's size when its width matches, else 64 per head */
    const char *mn = p->opts ? p->opts->model_name : NULL;
    int si = mn ? name_size(mn) : -1;
    int64_t heads = 0;
    if (si >= 0 && SIZES[si].width == d->D) {
        heads = SIZES[si].heads;
        vp_plan_note(p, "%lld attention heads (the %s size in --model-name %s)", (long long)heads, SIZES[si].size, mn);
    } else {
        if (si >= 0)
            vp_plan_note(p, "--model-name %s says %s (width %lld) but the tensors have width %lld: its head count is not used",
                         mn, SIZES[si].size, (long long)SIZES[si].width, (long long)d->D);
        if (d->D % 64 == 0) heads = d->D / 64;
    }
    if (heads && vp_json_set_int(c, "num_attention_heads", heads)) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");

    if (d->head) {
        cJSON *id2 = NULL;
        int lrc = make_id2label(p, d->K, &id2);
        if (lrc) return lrc;
        if (vp_json_set(c, "id2label", id2)) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    }
    return VP_OK;
}

/* After --config/--set: what the tensors fix must still hold. */
static int check_config(vp_plan *p, vit_dims *d)
{
    static const struct { const char *key; size_t off; } F[] = {
        {"hidden_size", offsetof(vit_dims, D)}, {"num_hidden_layers", offsetof(vit_dims, L)},
        {"intermediate_size", offsetof(vit_dims, mlp)}, {"patch_size", offsetof(vit_dims, P)},
        {"image_size", offsetof(vit_dims, img)}, {"num_channels", offsetof(vit_dims, C)},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        int64_t want = *(const int64_t *)((const char *)d + F[i].off), got = 0;
        if (!vp_json_get_int(p->config, F[i].key, &got))
            return vp_plan_fail(p, VP_ERR_MISMATCH, "config %s must be the integer %lld, as the tensors say", F[i].key,
                                (long long)want);
        if (got != want)
            return vp_plan_fail(p, VP_ERR_MISMATCH, "config %s=%lld (from --config/--set) contradicts the tensors, which say %lld",
                                F[i].key, (long long)got, (long long)want);
    }
    const cJSON *qb = cJSON_GetObjectItemCaseSensitive(p->config, "qkv_bias");
    if (!cJSON_IsBool(qb) || (bool)cJSON_IsTrue(qb) != d->qkv_bias)
        return vp_plan_fail(p, VP_ERR_MISMATCH, "config qkv_bias must be %s, as the tensors say", d->qkv_bias ? "true" : "false");
    if (!vp_json_get_int(p->config, "num_attention_heads", &d->H))
        return vp_plan_fail(p, VP_ERR_ARG,
                            "cannot tell the number of attention heads: the width %lld is not a multiple of 64 and no "
                            "--model-name size fits it; pass --set num_attention_heads=N", (long long)d->D);
    return set_label2id(p, d->head ? d->K : 0);
}

/* ---- preprocessor -------------------------------------------------------- */
static cJSON *float_triple(double v)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < 3; i++) cJSON_AddItemToArray(a, vp_json_float(v));
    return a;
}

static cJSON *hw(int64_t v)
{
    cJSON *o = cJSON_CreateObject();
    if (o) { vp_json_set_int(o, "height", v); vp_json_set_int(o, "width", v); }
    return o;
}

/* ViTImageProcessor(size=image_size) as the seeds save it; DeiT's processor
 * for DeiT (bicubic, centre crop). The seed's DeiTImageProcessor(size=S)
 * keeps the default 224 crop; the crop here is the model's image size
 * (equal for the released 224 models, and right for the others). For the
 * distilled models transformers' DeiT script resizes to 256/224 of it. */
static int make_preprocessor(vp_plan *p, const vit_dims *d, bool deit)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return vp_plan_fail(p, VP_ERR_NOMEM, "out of memory");
    p->preprocessor = o;
    int rc = 0;
    rc |= vp_json_set_bool(o, "do_normalize", 1);
    rc |= vp_json_set_bool(o, "do_rescale", 1);
    rc |= vp_json_set_bool(o, "do_resize", 1);
    rc |= vp_json_set(o, "image_mean", float_triple(0.5));
    rc |= vp_json_set(o, "image_std", float_triple(0.5));
    rc |= vp_json_set_float(o, "rescale_factor", 1.0 / 255.0);
    if (deit) {
        int64_t size = d->distilled ? (int64_t)(256.0 / 224.0 * (double)d->img) : d->img;
        rc |= vp_json_set_str(o, "image_processor_type", "DeiTImageProcessor");
        rc |= vp_json_set_int(o, "resample", 3);
        rc |= vp_json_set_bool(o, "do_center_crop", 1);
        rc |= vp_json_set(o, "crop_size", hw(d->img));
        rc |= vp_json_set(o, "size", hw(size));
    } else {
        rc |= vp_json_set_str(o, "image_processor_type", "ViTImageProcessor");
        rc |= vp_json_set_int(o, "resample", 2);
        rc |= vp_json_set(o, "size", hw(d->img));
    }
    return rc ? vp_plan_fail(p, VP_ERR_NOMEM, "out of memory") : VP_OK;
}

/* ---- the mapping --------------------------------------------------------- */
static int map_and_expect(vp_plan *p, const char *pre, const vit_dims *d)
{
    /* HF prefixes: "vit." / "deit." under a head, none for the base model */
    const char *hp = d->head ? (d->distilled ? "deit." : "vit.") : "";
    int64_t D = d->D;
    char out[256], src[256];
    int rc = 0;
#define SRC(...) (snprintf(src, sizeof src, __VA_ARGS__), vp_plan_req(p, "%s%s", pre, src))
#define OUT(...) (snprintf(out, sizeof out, __VA_ARGS__), out)
#define EXPECT(nd, ...) do { int64_t s_[] = {__VA_ARGS__}; if (!rc) rc = vp_plan_expect(p, out, nd, s_); } while (0)

    if (!rc) rc = vp_plan_copy(p, OUT("%sembeddings.cls_token", hp), SRC("cls_token"), "rename");
    EXPECT(3, 1, 1, D);
    if (d->distilled) {
        if (!rc) rc = vp_plan_copy(p, OUT("%sembeddings.distillation_token", hp), SRC("dist_token"), "rename");
        EXPECT(3, 1, 1, D);
    }
    if (!rc) rc = vp_plan_copy(p, OUT("%sembeddings.position_embeddings", hp), SRC("pos_embed"), "rename");
    EXPECT(3, 1, d->grid * d->grid + (d->distilled ? 2 : 1), D);
    if (!rc) rc = vp_plan_copy(p, OUT("%sembeddings.patch_embeddings.projection.weight", hp), SRC("patch_embed.proj.weight"), "rename");
    EXPECT(4, D, d->C, d->P, d->P);
    if (!rc) rc = vp_plan_copy(p, OUT("%sembeddings.patch_embeddings.projection.bias", hp), SRC("patch_embed.proj.bias"), "rename");
    EXPECT(1, D);

    static const char *const QKV[3] = {"query", "key", "value"};
    for (int64_t i = 0; i < d->L && !rc; i++) {
        const char *L = vp_plan_strf(p, "%sencoder.layer.%lld.", hp, (long long)i);
        if (!L) return vp_plan_fail(p, VP_ERR_NOMEM, "out of plan memory");
        long qw = SRC("blocks.%lld.attn.qkv.weight", (long long)i);
        long qb = d->qkv_bias ? SRC("blocks.%lld.attn.qkv.bias", (long long)i) : -1;
        for (int k = 0; k < 3 && !rc; k++) {
            rc = vp_plan_rows(p, OUT("%sattention.attention.%s.weight", L, QKV[k]), qw, k * D, D, "qkv split");
            EXPECT(2, D, D);
            if (d->qkv_bias) {
                if (!rc) rc = vp_plan_rows(p, OUT("%sattention.attention.%s.bias", L, QKV[k]), qb, k * D, D, "qkv split");
                EXPECT(1, D);
            }
        }
        static const struct { const char *hf, *timm; int kind; } M[] = {
            {"attention.output.dense", "attn.proj", 0}, {"intermediate.dense", "mlp.fc1", 1},
            {"output.dense", "mlp.fc2", 2}, {"layernorm_before", "norm1", 3}, {"layernorm_after", "norm2", 3},
        };
        for (size_t m = 0; m < sizeof M / sizeof M[0] && !rc; m++) {
            rc = vp_plan_copy(p, OUT("%s%s.weight", L, M[m].hf), SRC("blocks.%lld.%s.weight", (long long)i, M[m].timm), "rename");
            switch (M[m].kind) {
            case 0: EXPECT(2, D, D); break;
            case 1: EXPECT(2, d->mlp, D); break;
            case 2: EXPECT(2, D, d->mlp); break;
            default: EXPECT(1, D); break;
            }
            if (!rc) rc = vp_plan_copy(p, OUT("%s%s.bias", L, M[m].hf), SRC("blocks.%lld.%s.bias", (long long)i, M[m].timm), "rename");
            if (M[m].kind == 1) EXPECT(1, d->mlp); else EXPECT(1, D);
        }
    }
    if (!rc) rc = vp_plan_copy(p, OUT("%slayernorm.weight", hp), SRC("norm.weight"), "rename");
    EXPECT(1, D);
    if (!rc) rc = vp_plan_copy(p, OUT("%slayernorm.bias", hp), SRC("norm.bias"), "rename");
    EXPECT(1, D);

    if (d->head) {
        const char *cls = d->distilled ? "cls_classifier" : "classifier";
        if (!rc) rc = vp_plan_copy(p, OUT("%s.weight", cls), SRC("head.weight"), "rename");
        EXPECT(2, d->K, D);
        if (!rc) rc = vp_plan_copy(p, OUT("%s.bias", cls), SRC("head.bias"), "rename");
        EXPECT(1, d->K);
        if (d->distilled) {
            if (!rc) rc = vp_plan_copy(p, OUT("distillation_classifier.weight"), SRC("head_dist.weight"), "rename");
            EXPECT(2, d->K, D);
            if (!rc) rc = vp_plan_copy(p, OUT("distillation_classifier.bias"), SRC("head_dist.bias"), "rename");
            EXPECT(1, d->K);
        }
    } else {
        /* a head with 0 classes is timm's "no head" */
        const char *rule = "empty classification head (0 classes)";
        vp_plan_drop(p, vp_plan_src(p, "%shead.weight", pre), rule);
        vp_plan_drop(p, vp_plan_src(p, "%shead.bias", pre), rule);
        vp_plan_drop(p, vp_plan_src(p, "%shead_dist.weight", pre), rule);
        vp_plan_drop(p, vp_plan_src(p, "%shead_dist.bias", pre), rule);
    }
#undef SRC
#undef OUT
#undef EXPECT
    return rc;
}

int vp_vit_build(vp_plan *p, const char *pre, int dino)
{
    if (p->opts && (p->opts->bpe_vocab || p->opts->spm))
        return vp_plan_fail(p, VP_ERR_ARG, "--bpe-vocab and --spm are for CLIP, SigLIP and CLIPSeg, not for %s", p->family);
    int rc = check_refusals(p, pre, dino);
    if (rc) return rc;
    vit_dims d;
    rc = read_dims(p, pre, &d);
    if (rc) return rc;
    bool deit = d.distilled || !strcmp(p->family, "deit");
    if (d.distilled) p->hf_class = d.head ? "DeiTForImageClassificationWithTeacher" : "DeiTModel";
    else p->hf_class = d.head ? "ViTForImageClassification" : "ViTModel";
    if (!d.head && d.K == 0 && vp_plan_src(p, "%shead.weight", pre) < 0)
        vp_plan_note(p, "no classification head: converting the backbone as %s (no pooler)", p->hf_class);
    rc = make_config(p, &d);
    if (!rc) rc = vp_plan_apply_overrides(p);
    if (!rc) rc = check_config(p, &d);
    if (!rc) rc = make_preprocessor(p, &d, deit);
    if (!rc) rc = map_and_expect(p, pre, &d);
    return rc;
}

/* ---- the families -------------------------------------------------------- */
/* "" or, for a model trained under DistributedDataParallel, "module.". */
static const char *timm_prefix(const vp_table *tb, int *score)
{
    if ((*score = vp_vit_detect_prefix(tb, ""))) return "";
    if ((*score = vp_vit_detect_prefix(tb, "module."))) { (*score)--; return "module."; }
    return NULL;
}

static bool has_pre(const vp_table *tb, const char *pre, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s%s", pre, name);
    return vp_table_find(tb, buf) >= 0;
}

static int detect_vit(const vp_table *tb)
{
    int s;
    const char *pre = timm_prefix(tb, &s);
    if (pre && has_pre(tb, pre, "dist_token")) return 3;   /* DeiT's */
    return s;
}

static int detect_deit(const vp_table *tb)
{
    int s;
    const char *pre = timm_prefix(tb, &s);
    if (!pre) return 0;
    return has_pre(tb, pre, "dist_token") ? 20 : 2;      /* plain ones by --model-name deit_* */
}

static int build_vit(vp_plan *p)
{
    int s;
    const char *pre = timm_prefix(&p->table, &s);
    if (!pre) return vp_plan_fail(p, VP_ERR_FORMAT, "no timm ViT (blocks.N with a patch embedding) found");
    if (*pre) vp_plan_note(p, "weights under '%s' (DistributedDataParallel)", pre);
    return vp_vit_build(p, pre, 0);
}

static const char *const VIT_NAMES[] = {"vit", NULL};
static const char *const DEIT_NAMES[] = {"deit", "vit_deit", NULL};

const vp_family vp_family_vit = {
    .name = "vit",
    .summary = "timm ViT (blocks.N, fused qkv) -> ViT[ForImageClassification]",
    .detect = detect_vit,
    .build = build_vit,
    .name_prefixes = VIT_NAMES,
};

const vp_family vp_family_deit = {
    .name = "deit",
    .summary = "timm DeiT; distilled -> DeiTForImageClassificationWithTeacher",
    .detect = detect_deit,
    .build = build_vit,
    .name_prefixes = DEIT_NAMES,
};
