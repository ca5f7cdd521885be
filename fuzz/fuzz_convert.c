/* The conversion families and the converter (vp_convert_ex) on hostile tensor
 * tables. Two modes, chosen by the first byte:
 *
 *   'S' : a compact description turned into a safetensors file, so that the
 *         fuzzer controls names, dtypes and shapes directly:
 *           header   (options, fill byte, sizes; missing bytes read as 0)
 *           presets  (optionally a complete model of one family, built from
 *                     the sizes, so that mutations start from a valid table)
 *           sets     (--set KEY=VALUE from two tables)
 *           entries  (add / replace / delete one tensor: a name from the
 *                     dictionary of every family's real keys, layer 0..3,
 *                     a prefix and a mutation; dtype; symbolic or explicit
 *                     shape)
 *         Bytes: 'S'; family (bits 0-2 --family, 3-5 preset, 6 tie the text
 *         tower's sizes to the vision tower's, 7 preset variant); options
 *         (0-1 --dtype, 2-5 --model-name, 6-7 --key); misc (0-1 tokenizer
 *         file, 2-5 --labels file, 6 tokenizer on, 7 1000-byte shards); fill
 *         (used when bit 7 is set); 18 size indices (VAR_TABLE); set count
 *         (low 2 bits) and 2 bytes per set; then entries of 3 bytes
 *         (template, layer | prefix << 2 | mutation << 5, dtype | op << 4),
 *         an explicit shape adding ndim and one byte per dimension (< 0x80
 *         literal, else a symbolic size +1 / -1 / x2).
 *   else: the input is a whole checkpoint file of any format (seeded with the
 *         conformance and fixture sources); when the message asks for a head
 *         count (--set KEY=N) the run is repeated with KEY=1, so that the
 *         small fixtures reach the mapping and the writer.
 *
 * Invariants checked (abort = finding): a failure says why on one non-empty
 * line and leaves nothing in the output's parent directory; a success leaves
 * a readable model.safetensors (or an index) and config.json. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_memfd.h"

#include "convert/convert.h"

#define FZ_MAX_NUMEL ((uint64_t)1 << 18)     /* per tensor, so a run stays fast */
#define FZ_MAX_BYTES ((uint64_t)4 << 20)     /* per generated file */
#define FZ_MAX_ENTRIES 512
#define FZ_MAX_EDITS 256                     /* entries read from one input */

/* ---- per-process working directory (the harness's own state) ----------- */
static char g_base[256];        /* holds the generated input and the label files */
static char g_outp[300];        /* parent of the output directory: must stay empty */
static char g_root[512];        /* the source tree (data/, tests/fixtures/) */
static int g_verbose;           /* FZ_CONVERT_VERBOSE=1: print each result (to study a seed) */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void cleanup(void)
{
    if (g_base[0]) rm_tree(g_base);
}

static void write_text(const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_base, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len) fwrite(text, 1, len, f);
    fclose(f);
}

/* Label files --labels may name (contents by index). */
static const struct { const char *text; size_t len; } LABELS[] = {
    {"a\nb\nc\n", 6}, {"{\"0\":\"x\",\"1\":\"y\",\"2\":\"z\"}", 25}, {"", 0}, {"\xff\xfe\n", 3},
    {"{\"0\":1}", 7}, {"x\r\ny\r\nz", 8}, {"{}", 2}, {"a\0b\n", 4},
};
#define NLABELS (sizeof LABELS / sizeof LABELS[0])

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    struct stat st;
    const char *tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g_base, sizeof g_base, "%s/vp-fuzz-convert-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(g_base)) abort();
    g_verbose = getenv("FZ_CONVERT_VERBOSE") != NULL;
    atexit(cleanup);
    snprintf(g_outp, sizeof g_outp, "%s/out", g_base);
    if (mkdir(g_outp, 0755)) abort();
    for (size_t i = 0; i < NLABELS; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "labels%zu.txt", i);
        write_text(nm, LABELS[i].text, LABELS[i].len);
    }
    /* __FILE__ is this file's absolute path in a CMake build */
    snprintf(g_root, sizeof g_root, "%s", __FILE__);
    char *slash = strrchr(g_root, '/');
    if (slash) *slash = 0;
    slash = strrchr(g_root, '/');
    if (slash) *slash = 0;
    else snprintf(g_root, sizeof g_root, ".");
    return 0;
}

/* ---- reading the input -------------------------------------------------- */
typedef struct rd { const uint8_t *p; size_t n, at; } rd;
static uint8_t get(rd *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static bool more(const rd *r) { return r->at < r->n; }

/* ---- sizes ----------------------------------------------------------------- */
enum { V_W, V_M, V_P, V_G, V_C, V_K, V_TW, V_TM, V_V, V_T, V_J, V_R, V_DM, V_H, V_TH, V_L, V_TL, V_DL, NVARS };
static const int64_t VAR_TABLE[NVARS][8] = {
    [V_W] = {8, 64, 16, 4, 12, 32, 1, 128},   [V_M] = {16, 32, 8, 4, 64, 1, 0, 24},
    [V_P] = {4, 2, 8, 1, 16, 3, 4, 12},        [V_G] = {2, 1, 3, 4, 2, 5, 1, 7},
    [V_C] = {3, 1, 4, 3, 2, 3, 0, 3},          [V_K] = {3, 0, 5, 1000, 10, 1, 2, 3},
    [V_TW] = {8, 64, 16, 4, 12, 32, 1, 128},  [V_TM] = {16, 32, 8, 4, 64, 1, 0, 24},
    [V_V] = {10, 5, 2, 1, 64, 3, 49408, 100}, [V_T] = {4, 1, 8, 3, 16, 0, 77, 2},
    [V_J] = {8, 4, 16, 1, 64, 0, 3, 8},        [V_R] = {4, 8, 16, 2, 12, 64, 1, 4},
    [V_DM] = {8, 16, 4, 1, 32, 0, 2, 8},       [V_H] = {2, 1, 4, 8, 2, 3, 16, 1},
    [V_TH] = {2, 1, 4, 8, 2, 3, 16, 1},        [V_L] = {1, 2, 3, 1, 4, 0, 2, 1},
    [V_TL] = {1, 2, 3, 1, 4, 0, 2, 1},         [V_DL] = {1, 2, 3, 1, 1, 0, 2, 1},
};

/* Symbolic dimensions: what a well-formed table would hold, from the sizes. */
enum {
    S_1, S_W, S_3W, S_M, S_P, S_C, S_G2, S_G2_1, S_G2_2, S_K, S_TW, S_3TW, S_TM, S_V, S_T, S_J,
    S_R, S_3R, S_R2, S_DM, S_P4, S_H, S_WH, S_TH, S_TWH, S_3, S_0, S_2P31, S_2P32_1, S_2P53, S_W2, S_L,
    NSYM
};

static int64_t sym(int s, const int64_t *v)
{
    int64_t h = v[V_H] ? v[V_H] : 1, th = v[V_TH] ? v[V_TH] : 1;
    switch (s) {
    case S_1: return 1;
    case S_W: return v[V_W];
    case S_3W: return 3 * v[V_W];
    case S_M: return v[V_M];
    case S_P: return v[V_P];
    case S_C: return v[V_C];
    case S_G2: return v[V_G] * v[V_G];
    case S_G2_1: return v[V_G] * v[V_G] + 1;
    case S_G2_2: return v[V_G] * v[V_G] + 2;
    case S_K: return v[V_K];
    case S_TW: return v[V_TW];
    case S_3TW: return 3 * v[V_TW];
    case S_TM: return v[V_TM];
    case S_V: return v[V_V];
    case S_T: return v[V_T];
    case S_J: return v[V_J];
    case S_R: return v[V_R];
    case S_3R: return 3 * v[V_R];
    case S_R2: return v[V_R] / 2;
    case S_DM: return v[V_DM];
    case S_P4: return v[V_P] / 4;
    case S_H: return v[V_H];
    case S_WH: return v[V_W] / h;
    case S_TH: return v[V_TH];
    case S_TWH: return v[V_TW] / th;
    case S_3: return 3;
    case S_0: return 0;
    case S_2P31: return (int64_t)1 << 31;
    case S_2P32_1: return ((int64_t)1 << 32) + 1;
    case S_2P53: return (int64_t)1 << 53;
    case S_W2: return v[V_W] / 2;
    case S_L: return v[V_L];
    default: return 1;
    }
}

/* ---- the dictionary: every family's real keys ------------------------------ */
/* Groups decide the prefix a preset puts in front of a template. */
enum { G_VIT, G_DEIT, G_DINOHEAD, G_CLIP, G_CLIPBUF, G_SEG, G_SEGSIMPLE, G_SEGREF, G_SIGIMG, G_SIGHEAD, G_SIGTXT,
       G_SIGTOP, G_EXTRA };

typedef struct tmpl {
    int group;
    const char *name;                /* may hold one %d: the layer */
    int ndim;
    uint8_t dims[4];                 /* S_* */
    int dtype;                       /* VP_F32 unless an integer buffer */
} tmpl;

#define T1(g, n, a) {g, n, 1, {a}, VP_F32}
#define T2(g, n, a, b) {g, n, 2, {a, b}, VP_F32}
#define T3(g, n, a, b, c) {g, n, 3, {a, b, c}, VP_F32}
#define T4(g, n, a, b, c, d) {g, n, 4, {a, b, c, d}, VP_F32}
#define TS(g, n, dt) {g, n, 0, {0}, dt}

/* A transformer block of width W (sx) and MLP M in OpenAI CLIP's layout. */
#define CLIP_BLOCK(g, pre, W, W3, M)                                                                     \
    T2(g, pre "%d.attn.in_proj_weight", W3, W), T1(g, pre "%d.attn.in_proj_bias", W3),                 \
    T2(g, pre "%d.attn.out_proj.weight", W, W), T1(g, pre "%d.attn.out_proj.bias", W),                 \
    T1(g, pre "%d.ln_1.weight", W), T1(g, pre "%d.ln_1.bias", W), T1(g, pre "%d.ln_2.weight", W),      \
    T1(g, pre "%d.ln_2.bias", W), T2(g, pre "%d.mlp.c_fc.weight", M, W), T1(g, pre "%d.mlp.c_fc.bias", M), \
    T2(g, pre "%d.mlp.c_proj.weight", W, M), T1(g, pre "%d.mlp.c_proj.bias", W)

/* A big_vision encoder block: width W, MLP M, heads H of size WH. */
#define SIG_BLOCK(g, pre, W, M, H, WH)                                                                   \
    T1(g, pre "encoderblock_%d/LayerNorm_0/scale", W), T1(g, pre "encoderblock_%d/LayerNorm_0/bias", W), \
    T1(g, pre "encoderblock_%d/LayerNorm_1/scale", W), T1(g, pre "encoderblock_%d/LayerNorm_1/bias", W), \
    T2(g, pre "encoderblock_%d/MlpBlock_0/Dense_0/kernel", W, M),                                        \
    T1(g, pre "encoderblock_%d/MlpBlock_0/Dense_0/bias", M),                                             \
    T2(g, pre "encoderblock_%d/MlpBlock_0/Dense_1/kernel", M, W),                                        \
    T1(g, pre "encoderblock_%d/MlpBlock_0/Dense_1/bias", W),                                             \
    T3(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/query/kernel", W, H, WH),                  \
    T2(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/query/bias", H, WH),                       \
    T3(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/key/kernel", W, H, WH),                    \
    T2(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/key/bias", H, WH),                         \
    T3(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/value/kernel", W, H, WH),                  \
    T2(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/value/bias", H, WH),                       \
    T3(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/out/kernel", H, WH, W),                    \
    T1(g, pre "encoderblock_%d/MultiHeadDotProductAttention_0/out/bias", W),                             \
    T1(g, pre "encoder_norm/scale", W), T1(g, pre "encoder_norm/bias", W)

static const tmpl DICT[] = {
    /* timm ViT (DINO's backbone too) */
    T3(G_VIT, "cls_token", S_1, S_1, S_W), T3(G_VIT, "pos_embed", S_1, S_G2_1, S_W),
    T4(G_VIT, "patch_embed.proj.weight", S_W, S_C, S_P, S_P), T1(G_VIT, "patch_embed.proj.bias", S_W),
    T1(G_VIT, "blocks.%d.norm1.weight", S_W), T1(G_VIT, "blocks.%d.norm1.bias", S_W),
    T2(G_VIT, "blocks.%d.attn.qkv.weight", S_3W, S_W), T1(G_VIT, "blocks.%d.attn.qkv.bias", S_3W),
    T2(G_VIT, "blocks.%d.attn.proj.weight", S_W, S_W), T1(G_VIT, "blocks.%d.attn.proj.bias", S_W),
    T1(G_VIT, "blocks.%d.norm2.weight", S_W), T1(G_VIT, "blocks.%d.norm2.bias", S_W),
    T2(G_VIT, "blocks.%d.mlp.fc1.weight", S_M, S_W), T1(G_VIT, "blocks.%d.mlp.fc1.bias", S_M),
    T2(G_VIT, "blocks.%d.mlp.fc2.weight", S_W, S_M), T1(G_VIT, "blocks.%d.mlp.fc2.bias", S_W),
    T1(G_VIT, "norm.weight", S_W), T1(G_VIT, "norm.bias", S_W),
    T2(G_VIT, "head.weight", S_K, S_W), T1(G_VIT, "head.bias", S_K),
    /* DeiT distilled */
    T3(G_DEIT, "dist_token", S_1, S_1, S_W), T3(G_DEIT, "pos_embed", S_1, S_G2_2, S_W),   /* replaces ViT's */ T2(G_DEIT, "head_dist.weight", S_K, S_W), T1(G_DEIT, "head_dist.bias", S_K),
    /* DINO's projection head (training checkpoints) */
    T2(G_DINOHEAD, "head.mlp.0.weight", S_M, S_W), T1(G_DINOHEAD, "head.mlp.0.bias", S_M),
    T2(G_DINOHEAD, "head.mlp.2.weight", S_J, S_M), T1(G_DINOHEAD, "head.mlp.2.bias", S_J),
    T2(G_DINOHEAD, "head.last_layer.weight_v", S_K, S_J), T2(G_DINOHEAD, "head.last_layer.weight_g", S_K, S_1),
    /* OpenAI CLIP */
    T2(G_CLIP, "token_embedding.weight", S_V, S_TW), T2(G_CLIP, "positional_embedding", S_T, S_TW),
    CLIP_BLOCK(G_CLIP, "transformer.resblocks.", S_TW, S_3TW, S_TM),
    T1(G_CLIP, "ln_final.weight", S_TW), T1(G_CLIP, "ln_final.bias", S_TW),
    T2(G_CLIP, "text_projection", S_TW, S_J), TS(G_CLIP, "logit_scale", VP_F32),
    T1(G_CLIP, "visual.class_embedding", S_W), T2(G_CLIP, "visual.positional_embedding", S_G2_1, S_W),
    T4(G_CLIP, "visual.conv1.weight", S_W, S_C, S_P, S_P),
    T1(G_CLIP, "visual.ln_pre.weight", S_W), T1(G_CLIP, "visual.ln_pre.bias", S_W),
    CLIP_BLOCK(G_CLIP, "visual.transformer.resblocks.", S_W, S_3W, S_M),
    T1(G_CLIP, "visual.ln_post.weight", S_W), T1(G_CLIP, "visual.ln_post.bias", S_W),
    T2(G_CLIP, "visual.proj", S_W, S_J),
    TS(G_CLIPBUF, "input_resolution", VP_I64), TS(G_CLIPBUF, "context_length", VP_I64),
    TS(G_CLIPBUF, "vocab_size", VP_I64),
    /* CLIPSeg's decoder */
    T2(G_SEG, "film_mul.weight", S_R, S_J), T1(G_SEG, "film_mul.bias", S_R),
    T2(G_SEG, "film_add.weight", S_R, S_J), T1(G_SEG, "film_add.bias", S_R),
    T2(G_SEG, "reduces.%d.weight", S_R, S_W), T1(G_SEG, "reduces.%d.bias", S_R),
    T2(G_SEG, "blocks.%d.self_attn.in_proj_weight", S_3R, S_R), T1(G_SEG, "blocks.%d.self_attn.in_proj_bias", S_3R),
    T2(G_SEG, "blocks.%d.self_attn.out_proj.weight", S_R, S_R), T1(G_SEG, "blocks.%d.self_attn.out_proj.bias", S_R),
    T2(G_SEG, "blocks.%d.linear1.weight", S_DM, S_R), T1(G_SEG, "blocks.%d.linear1.bias", S_DM),
    T2(G_SEG, "blocks.%d.linear2.weight", S_R, S_DM), T1(G_SEG, "blocks.%d.linear2.bias", S_R),
    T1(G_SEG, "blocks.%d.norm1.weight", S_R), T1(G_SEG, "blocks.%d.norm1.bias", S_R),
    T1(G_SEG, "blocks.%d.norm2.weight", S_R), T1(G_SEG, "blocks.%d.norm2.bias", S_R),
    T2(G_SEG, "reduce.weight", S_R, S_W), T1(G_SEG, "reduce.bias", S_R),
    T4(G_SEG, "model.conv1.weight", S_W, S_C, S_P, S_P),
    T4(G_SEGSIMPLE, "trans_conv.weight", S_R, S_1, S_P, S_P), T1(G_SEGSIMPLE, "trans_conv.bias", S_1),
    T4(G_SEGREF, "trans_conv.0.weight", S_R, S_R, S_3, S_3), T1(G_SEGREF, "trans_conv.0.bias", S_R),
    T4(G_SEGREF, "trans_conv.2.weight", S_R, S_R2, S_P4, S_P4), T1(G_SEGREF, "trans_conv.2.bias", S_R2),
    T4(G_SEGREF, "trans_conv.4.weight", S_R2, S_1, S_P4, S_P4), T1(G_SEGREF, "trans_conv.4.bias", S_1),
    /* big_vision SigLIP */
    T4(G_SIGIMG, "img/embedding/kernel", S_P, S_P, S_C, S_W), T1(G_SIGIMG, "img/embedding/bias", S_W),
    T3(G_SIGIMG, "img/pos_embedding", S_1, S_G2, S_W),
    SIG_BLOCK(G_SIGIMG, "img/Transformer/", S_W, S_M, S_H, S_WH),
    T3(G_SIGHEAD, "img/MAPHead_0/probe", S_1, S_1, S_W),
    T3(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/query/kernel", S_W, S_H, S_WH),
    T2(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/query/bias", S_H, S_WH),
    T3(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/key/kernel", S_W, S_H, S_WH),
    T2(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/key/bias", S_H, S_WH),
    T3(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/value/kernel", S_W, S_H, S_WH),
    T2(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/value/bias", S_H, S_WH),
    T3(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/out/kernel", S_H, S_WH, S_W),
    T1(G_SIGHEAD, "img/MAPHead_0/MultiHeadDotProductAttention_0/out/bias", S_W),
    T1(G_SIGHEAD, "img/MAPHead_0/LayerNorm_0/scale", S_W), T1(G_SIGHEAD, "img/MAPHead_0/LayerNorm_0/bias", S_W),
    T2(G_SIGHEAD, "img/MAPHead_0/MlpBlock_0/Dense_0/kernel", S_W, S_M),
    T1(G_SIGHEAD, "img/MAPHead_0/MlpBlock_0/Dense_0/bias", S_M),
    T2(G_SIGHEAD, "img/MAPHead_0/MlpBlock_0/Dense_1/kernel", S_M, S_W),
    T1(G_SIGHEAD, "img/MAPHead_0/MlpBlock_0/Dense_1/bias", S_W),
    T2(G_SIGTXT, "txt/Embed_0/embedding", S_V, S_TW), T3(G_SIGTXT, "txt/pos_embedding", S_1, S_T, S_TW),
    SIG_BLOCK(G_SIGTXT, "txt/Encoder_0/", S_TW, S_TM, S_TH, S_TWH),
    T2(G_SIGTXT, "txt/head/kernel", S_TW, S_J), T1(G_SIGTXT, "txt/head/bias", S_J),
    T1(G_SIGTOP, "t", S_1), T1(G_SIGTOP, "b", S_1),
    /* names that make the families refuse or branch */
    T1(G_EXTRA, "fc_norm.weight", S_W), T1(G_EXTRA, "norm_pre.weight", S_W), T1(G_EXTRA, "attn_pool.latent", S_W),
    T1(G_EXTRA, "blocks.%d.ls1.gamma", S_W), T3(G_EXTRA, "reg_token", S_1, S_1, S_W),
    T1(G_EXTRA, "blocks.%d.attn.q_norm.weight", S_WH), T1(G_EXTRA, "patch_embed.norm.weight", S_W),
    T2(G_EXTRA, "pre_logits.fc.weight", S_W, S_W), T2(G_EXTRA, "head.fc.weight", S_K, S_W),
    T4(G_EXTRA, "patch_embed.backbone.stem.conv.weight", S_W, S_C, S_3, S_3),
    T2(G_EXTRA, "visual.attnpool.c_proj.weight", S_J, S_W), T4(G_EXTRA, "visual.layer1.0.conv1.weight", S_W, S_C, S_1, S_1),
    T2(G_EXTRA, "visual.attnpool.positional_embedding", S_G2_1, S_W),
    T1(G_EXTRA, "optimizer/state/0/exp_avg", S_W), TS(G_EXTRA, "epoch", VP_I64),
};
#define NDICT (sizeof DICT / sizeof DICT[0])

/* ---- presets: which groups a complete model has, and their prefixes ---- */
enum { P_NONE, P_VIT, P_DEIT, P_DINO, P_CLIP, P_SIGLIP, P_SEG, P_SEGREF };

/* The prefix of group g under preset pr and variant var (NULL = not in it). */
static const char *native_prefix(int pr, int var, int g)
{
    switch (pr) {
    case P_VIT:
        return g == G_VIT ? (var ? "module." : "") : NULL;
    case P_DEIT:
        return g == G_VIT || g == G_DEIT ? (var ? "module." : "") : NULL;
    case P_DINO:   /* a training checkpoint (teacher and student) or a hub backbone */
        if (!var) return g == G_VIT ? "" : NULL;
        return g == G_VIT ? "teacher/backbone." : g == G_DINOHEAD ? "teacher/" : NULL;
    case P_CLIP:
        return g == G_CLIP || (var && g == G_CLIPBUF) ? (var ? "" : "state_dict/module.") : NULL;
    case P_SIGLIP:
        return g == G_SIGIMG || g == G_SIGTXT || g == G_SIGTOP || (var && g == G_SIGHEAD) ? "params/" : NULL;
    case P_SEG:
    case P_SEGREF:
        if (g == G_CLIP) return "clip_model.";
        if (g == G_SEG) return "";
        if (g == G_SEGSIMPLE) return pr == P_SEG ? "" : NULL;
        if (g == G_SEGREF) return pr == P_SEGREF ? "" : NULL;
        return NULL;
    default:
        return NULL;
    }
}

static const char *const PREFIXES[8] = {
    NULL /* native */, "", "module.", "teacher/backbone.", "student/module.backbone.", "state_dict/module.", "params/",
    "clip_model.",
};

/* ---- the tensor table being built ------------------------------------------ */
/* Entries stay in insertion order (the file's order); a deleted one is only
 * marked, and a name hash finds entries without scanning the table (a
 * preset's few hundred names made the scan with the fuzzer's strcmp hooks
 * a tenth of each run). */
#define FZ_CAP_ENTRIES (FZ_MAX_ENTRIES + FZ_MAX_EDITS)
#define FZ_HASH 2048                 /* > 2 x FZ_CAP_ENTRIES, a power of two */
typedef struct ent {
    char name[200];
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    uint32_t hash;
    bool dead;
} ent;

typedef struct table {
    ent *e;
    size_t n, live;                  /* entries used (dead included), live ones */
    uint16_t slot[FZ_HASH];          /* entry index + 1; 0 = empty */
} table;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The live entry called name, or NULL; *free_slot receives the empty slot
 * where it would go. */
static ent *find_ent(table *t, const char *name, size_t *free_slot)
{
    uint32_t h = name_hash(name);
    for (size_t i = h & (FZ_HASH - 1);; i = (i + 1) & (FZ_HASH - 1)) {
        if (!t->slot[i]) {
            if (free_slot) *free_slot = i;
            return NULL;
        }
        ent *e = &t->e[t->slot[i] - 1];
        if (!e->dead && e->hash == h && !strcmp(e->name, name)) return e;
    }
}

static bool small_enough(int ndim, const int64_t *shape)
{
    uint64_t n = 1;
    bool zero = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > ((int64_t)1 << 53)) return false;
        if (shape[i] == 0) zero = true;
    }
    if (zero) return true;   /* no data, any other size */
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > FZ_MAX_NUMEL) return false;
        n *= (uint64_t)shape[i];
        if (n > FZ_MAX_NUMEL) return false;
    }
    return true;
}

/* Add or replace. */
static void put(table *t, const char *name, vp_dtype dt, int ndim, const int64_t *shape)
{
    if (!*name || !small_enough(ndim, shape)) return;
    size_t slot = 0;
    ent *e = find_ent(t, name, &slot);
    if (!e) {
        if (t->live >= FZ_MAX_ENTRIES || t->n >= FZ_CAP_ENTRIES) return;
        e = &t->e[t->n++];
        t->live++;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->hash = name_hash(name);
        e->dead = false;
        t->slot[slot] = (uint16_t)t->n;
    }
    e->dtype = dt;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
}

static void del(table *t, const char *name)
{
    ent *e = find_ent(t, name, NULL);
    if (!e) return;
    e->dead = true;                  /* its slot stays, so later probes go past it */
    t->live--;
}

static void tmpl_name(char *buf, size_t len, const char *pre, const tmpl *tp, int layer)
{
    char body[160];
    if (strstr(tp->name, "%d")) snprintf(body, sizeof body, tp->name, layer);
    else snprintf(body, sizeof body, "%s", tp->name);
    snprintf(buf, len, "%s%s", pre, body);
}

static void tmpl_shape(const tmpl *tp, const int64_t *v, int64_t *shape)
{
    for (int i = 0; i < tp->ndim; i++) shape[i] = sym(tp->dims[i], v);
}

/* Layers of template tp's tower in a preset. */
static int64_t tower_layers(const tmpl *tp, const int64_t *v)
{
    if (!strstr(tp->name, "%d")) return 1;
    if (tp->group == G_SEG) return v[V_DL];
    if (tp->group == G_SIGTXT || !strncmp(tp->name, "transformer.", 12)) return v[V_TL];
    return v[V_L];
}

static void add_preset(table *t, int pr, int var, const int64_t *v)
{
    for (size_t i = 0; i < NDICT; i++) {
        const tmpl *tp = &DICT[i];
        const char *pre = native_prefix(pr, var, tp->group);
        if (!pre) continue;
        int64_t shape[4];
        tmpl_shape(tp, v, shape);
        for (int64_t l = 0; l < tower_layers(tp, v); l++) {
            char nm[200];
            tmpl_name(nm, sizeof nm, pre, tp, (int)l);
            put(t, nm, tp->dtype, tp->ndim, shape);
            /* DINO training checkpoints hold the student too */
            if (pr == P_DINO && var) {
                char st[200];
                tmpl_name(st, sizeof st, tp->group == G_VIT ? "student/module.backbone." : "student/module.", tp, (int)l);
                put(t, st, tp->dtype, tp->ndim, shape);
            }
        }
    }
}

/* ---- options ------------------------------------------------------------------ */
static const char *const FAMILIES[8] = {"auto", "vit", "deit", "dino", "clip", "siglip", "clipseg", "resnet"};
static const char *const DTYPES[4] = {NULL, "keep", "f16", "bf16"};
static const char *const MODEL_NAMES[16] = {
    NULL, "vit_base_patch16_224", "dino_vits8", "dino_vitb16", "deit_tiny_patch16_224", "clipseg-rd64-refined",
    "clipseg-rd16", "siglip-base-patch16-224", "siglip-so400m-patch14-384", "ViT-B/32", "vit_tiny_patch4",
    "siglip-large-patch99999999999999999999-99999999999999999999", "siglip-patch-", "DINO-VITS", "vit_gigantic", "clip",
};
static const char *const KEYS[4] = {NULL, "teacher", "params", "state_dict"};
static const char *const SET_KEYS[32] = {
    "num_attention_heads", "hidden_size", "image_size", "patch_size", "num_hidden_layers", "qkv_bias", "id2label",
    "text_config.num_attention_heads", "vision_config.num_attention_heads", "vision_config.image_size",
    "vision_config.patch_size", "text_config.projection_size", "extract_layers", "decoder_num_attention_heads",
    "reduce_dim", "use_complex_transposed_convolution", "projection_dim", "text_config.vocab_size", "architectures",
    "text_config", "vision_config.hidden_size", "a.b.c", "", ".x", "num_channels", "intermediate_size", "label2id",
    "transformers_version", "torch_dtype", "text_config.max_position_embeddings", "id2label.0", "vision_config",
};
static const char *const SET_VALUES[32] = {
    "0", "1", "-1", "2", "3", "4", "8", "16", "64", "224", "1e300", "[1e300]", "null", "true", "false", "[]", "[0]",
    "[0,1]", "[0,1,2]", "{}", "\"x\"", "1.5", "9007199254740993", "{\"0\":\"a\"}", "{\"0\":\"a\",\"1\":\"b\"}",
    "[\"ViTModel\"]", "[\"X\"]", "nan", "[1]", "[3,6,9]", "{\"0\":1}", "9e15",
};

typedef struct run_opts {
    vp_convert_opts o;
    const char *key;
    const char *sets[8];
    char setbuf[8][128];
    char labels[512], data_dir[600], bpe[600], spm[600];
} run_opts;

/* ---- checking one conversion ---------------------------------------------- */
static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    return empty;
}

static int convert_and_check(const char *src_path, const run_opts *ro, char *err, size_t errlen)
{
    char out[400];
    snprintf(out, sizeof out, "%s/model", g_outp);
    char *summary = NULL;
    int rc = vp_convert_ex(src_path, ro->key, out, &ro->o, err, errlen, &summary);
    if (g_verbose) fprintf(stderr, "fuzz_convert: rc %d: %s\n", rc, rc ? err : "converted");
    if (rc != VP_OK) {
        /* a failure says why on one line, and writes nothing */
        if (!err[0] || strchr(err, '\n')) {
            fprintf(stderr, "fuzz_convert: bad message for rc %d: '%s'\n", rc, err);
            abort();
        }
        if (summary) abort();
        if (!dir_empty(g_outp)) {
            fprintf(stderr, "fuzz_convert: failure (%s) left files in the output's parent\n", err);
            abort();
        }
        return rc;
    }
    /* a success leaves a readable model */
    char path[500];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", out);
    if (stat(path, &st)) { fprintf(stderr, "fuzz_convert: success without config.json\n"); abort(); }
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    if (stat(path, &st) == 0) {
        vp_source *s = NULL;
        if (vp_source_open(&s, path, NULL) != VP_OK) {
            fprintf(stderr, "fuzz_convert: unreadable output: %s\n", vp_source_errmsg(s));
            abort();
        }
        vp_source_close(s);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
        if (stat(path, &st)) { fprintf(stderr, "fuzz_convert: success without model files\n"); abort(); }
    }
    vp_convert_free(summary);
    rm_tree(out);
    if (!dir_empty(g_outp)) abort();
    return VP_OK;
}

static void base_opts(run_opts *ro)
{
    memset(ro, 0, sizeof *ro);
    ro->o.family = "auto";
    ro->o.quiet = 1;
    snprintf(ro->data_dir, sizeof ro->data_dir, "%s/data", g_root);
    ro->o.data_dir = ro->data_dir;
}

/* ---- the structured mode ---------------------------------------------------- */
/* Names may hold any character: names carry FZ_NL where a newline goes,
 * written as JSON's "\n" in the header (the converter and the writer must
 * cope with names vp_st_writer itself would refuse to write). */
#define FZ_NL "~NL~"

static uint64_t ent_bytes(const ent *e)
{
    uint64_t n = vp_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
    return n;
}

static void put_json_name(vp_buf *b, const char *s)
{
    vp__buf_add(b, "\"", 1);
    for (const char *q = s; *q;) {
        size_t k = strcspn(q, "~\"\\");          /* a run that needs no escape */
        vp__buf_add(b, q, k);
        q += k;
        if (!*q) break;
        if (!strncmp(q, FZ_NL, 4)) { vp__buf_add(b, "\\n", 2); q += 4; continue; }
        if (*q != '~') vp__buf_add(b, "\\", 1);
        vp__buf_add(b, q++, 1);
    }
    vp__buf_add(b, "\"", 1);
}

static int write_all_at(int fd, const void *p, size_t n, uint64_t off)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = pwrite(fd, (const uint8_t *)p + done, n - done, (off_t)(off + done));
        if (k <= 0) return -1;
        done += (size_t)k;
    }
    return 0;
}

/* The table as a safetensors file, as safetensors' writer lays it out (a
 * JSON header padded with spaces to 8 bytes, then the data in header
 * order). The data is a hole (zeros) but for the first FZ_FILL_BYTES of
 * each tensor, which hold the fill byte when it is non-zero: the values
 * only matter to the few scalars and buffers the converter reads and to
 * the dtype conversion, which treats every element alike, and writing
 * megabytes of fill per run was a third of its time. */
#define FZ_FILL_BYTES 4096
static int write_table(const char *path, const table *t, uint8_t fill)
{
    uint64_t total = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].dead) continue;
        total += ent_bytes(&t->e[i]);
        if (total > FZ_MAX_BYTES) return -1;
    }
    vp_buf b = {0};
    vp__buf_add(&b, "{", 1);
    uint64_t off = 0;
    bool first = true;
    for (size_t i = 0; i < t->n; i++) {
        const ent *e = &t->e[i];
        if (e->dead) continue;
        if (!first) vp__buf_add(&b, ",", 1);
        first = false;
        put_json_name(&b, e->name);
        vp__buf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", vp_dtype_st_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) vp__buf_printf(&b, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        uint64_t n = ent_bytes(e);
        vp__buf_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + n));
        off += n;
    }
    vp__buf_add(&b, "}", 1);
    while (!b.oom && b.n % 8) vp__buf_add(&b, " ", 1);
    if (b.oom) { vp__buf_free(&b); return -1; }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) abort();
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
    int rc = write_all_at(fd, le, 8, 0) || write_all_at(fd, b.p, b.n, 8) ? -1 : 0;
    uint64_t data = 8 + (uint64_t)b.n;
    vp__buf_free(&b);
    if (!rc && fill) {
        static uint8_t buf[FZ_FILL_BYTES];
        memset(buf, fill, sizeof buf);
        off = 0;
        for (size_t i = 0; !rc && i < t->n; i++) {
            if (t->e[i].dead) continue;
            uint64_t n = ent_bytes(&t->e[i]);
            rc = write_all_at(fd, buf, n < sizeof buf ? (size_t)n : sizeof buf, data + off);
            off += n;
        }
    }
    if (!rc && ftruncate(fd, (off_t)(data + total))) rc = -1;
    close(fd);
    return rc;
}

static void structured(const uint8_t *data, size_t size)
{
    rd r = {data, size, 1};
    uint8_t fam = get(&r), opt = get(&r), misc = get(&r), fill = get(&r);
    int64_t v[NVARS];
    for (int i = 0; i < NVARS; i++) v[i] = VAR_TABLE[i][get(&r) & 7];
    if (fam & 0x40) {   /* tie the text tower (and projection) to the vision tower */
        v[V_TW] = v[V_W];
        v[V_TM] = v[V_M];
        v[V_TH] = v[V_H];
        v[V_J] = v[V_W];
        v[V_TL] = v[V_L];
    }
    run_opts ro;
    base_opts(&ro);
    ro.o.family = FAMILIES[fam & 7];
    ro.o.dtype = DTYPES[opt & 3];
    ro.o.model_name = MODEL_NAMES[(opt >> 2) & 15];
    ro.key = KEYS[(opt >> 6) & 3];
    if (misc & 0x80) ro.o.max_shard_size = 1000;   /* several shards and an index */
    int li = (misc >> 2) & 15;
    if (li && (size_t)li <= NLABELS) {
        snprintf(ro.labels, sizeof ro.labels, "%s/labels%d.txt", g_base, li - 1);
        ro.o.labels = ro.labels;
    }
    switch ((misc >> 6) & 1 ? (misc & 3) : 0) {
    case 1: snprintf(ro.bpe, sizeof ro.bpe, "%s/tests/fixtures/convert/clip_bpe.txt.gz", g_root); ro.o.bpe_vocab = ro.bpe; break;
    case 2: snprintf(ro.bpe, sizeof ro.bpe, "%s/tests/fixtures/convert/clip_bpe_plain.txt", g_root); ro.o.bpe_vocab = ro.bpe; break;
    case 3: snprintf(ro.spm, sizeof ro.spm, "%s/tests/fixtures/siglip_tiny.model", g_root); ro.o.spm = ro.spm; break;
    default: break;
    }
    if (!(fill & 0x80)) fill = 0;    /* mostly zeros: integer buffers then read as absent */

    static table t;
    memset(&t, 0, sizeof t);
    static ent entries[FZ_CAP_ENTRIES];
    t.e = entries;
    int pr = (fam >> 3) & 7, var = fam >> 7;
    add_preset(&t, pr, var, v);
    /* CLIPSeg's default extract_layers [3, 6, 9] needs 10 vision layers:
     * give the presets one that fits their depth */
    int nsets = 0;
    if ((pr == P_SEG || pr == P_SEGREF) && v[V_DL] > 0 && v[V_DL] <= 3) {
        snprintf(ro.setbuf[nsets], sizeof ro.setbuf[0], "extract_layers=%s",
                 v[V_DL] == 1 ? "[0]" : v[V_DL] == 2 ? "[0,0]" : "[0,0,0]");
        ro.sets[nsets] = ro.setbuf[nsets];
        nsets++;
    }
    int extra = get(&r) & 3;
    for (int i = 0; i < extra; i++, nsets++) {
        uint8_t k = get(&r), val = get(&r);
        snprintf(ro.setbuf[nsets], sizeof ro.setbuf[0], "%s=%s", SET_KEYS[k & 31], SET_VALUES[val & 31]);
        ro.sets[nsets] = ro.setbuf[nsets];
    }
    ro.o.sets = ro.sets;
    ro.o.nsets = nsets;

    /* entries: add, replace or delete */
    for (int edits = 0; more(&r) && edits < FZ_MAX_EDITS; edits++) {
        uint8_t ti = get(&r), b1 = get(&r), b2 = get(&r);
        const tmpl *tp = &DICT[ti % NDICT];
        const char *pre = PREFIXES[(b1 >> 2) & 7];
        if (!pre) pre = native_prefix(pr, var, tp->group);
        if (!pre) pre = "";
        char nm[200];
        tmpl_name(nm, sizeof nm, pre, tp, b1 & 3);
        size_t nl = strlen(nm);
        switch (b1 >> 5) {
        case 4: if (nl + 2 < sizeof nm) memcpy(nm + nl, ".x", 3); break;
        case 5: if (nl) nm[nl - 1] = 0; break;
        case 6: { char *dot = strchr(nm, '.'); if (dot) *dot = '/'; } break;
        case 7: { char tmp[200]; snprintf(tmp, sizeof tmp, "module.%s", nm); memcpy(nm, tmp, sizeof nm); } break;
        case 3: { char tmp[200]; snprintf(tmp, sizeof tmp, "%.*s" FZ_NL "%s", (int)(nl / 2), nm, nm + nl / 2); memcpy(nm, tmp, sizeof nm); } break;
        default: break;
        }
        int dtv = b2 & 15;
        vp_dtype dt = dtv < VP_DTYPE_COUNT ? (vp_dtype)dtv : (vp_dtype)tp->dtype;
        int op = (b2 >> 4) & 3;
        int64_t shape[VP_MAX_DIMS];
        if (op == 2) { del(&t, nm); continue; }
        if (op == 0) { tmpl_shape(tp, v, shape); put(&t, nm, dt, tp->ndim, shape); continue; }
        int nd = get(&r) % (VP_MAX_DIMS + 1);
        for (int d = 0; d < nd; d++) {
            uint8_t b = get(&r);
            if (b < 0x80) { shape[d] = b; continue; }
            int64_t x = sym((b & 31) % NSYM, v);
            switch ((b >> 5) & 3) {
            case 1: x += 1; break;
            case 2: x -= 1; break;
            case 3: x *= 2; break;
            default: break;
            }
            shape[d] = x;
        }
        put(&t, nm, dt, nd, shape);
    }

    char path[400];
    snprintf(path, sizeof path, "%s/in.safetensors", g_base);
    char err[1024];
    if (write_table(path, &t, fill) == VP_OK) convert_and_check(path, &ro, err, sizeof err);
    else if (g_verbose) fprintf(stderr, "fuzz_convert: the table (%zu tensors) was not written\n", t.live);
    unlink(path);
}

/* ---- the whole-file mode ----------------------------------------------------- */
static void whole_file(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfd(data, size, "vp-fuzz-convert", path, sizeof path);
    run_opts ro;
    base_opts(&ro);
    /* a little variety that does not disturb the file's own bytes */
    ro.o.dtype = DTYPES[size % 3];
    /* The small fixtures' widths are not multiples of 64: when the message
     * asks for a head count ("--set KEY=N"), give KEY=1 and go again, so
     * that runs reach the mapping and the writer. */
    char err[1024];
    for (int i = 0; i < 4; i++) {
        if (convert_and_check(path, &ro, err, sizeof err) == VP_OK) break;
        const char *s = strstr(err, "--set ");
        const char *eq = s ? strstr(s, "=N") : NULL;
        if (!eq || eq - s - 6 >= 100 || ro.o.nsets >= 8) break;
        snprintf(ro.setbuf[ro.o.nsets], sizeof ro.setbuf[0], "%.*s=1", (int)(eq - s - 6), s + 6);
        ro.sets[ro.o.nsets] = ro.setbuf[ro.o.nsets];
        ro.o.nsets++;
        ro.o.sets = ro.sets;
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] == 'S') structured(data, size);
    else whole_file(data, size);
    return 0;
}
