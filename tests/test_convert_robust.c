/* vitport convert on hostile tensor tables (the regressions of
 * fuzz/fuzz_convert.c): each case is a small safetensors file built here
 * with vp_st_writer; the conversion must fail with a non-OK code and a
 * one-line message that names the problem, quickly, and leave nothing in
 * the output's parent directory. A valid model built by the same helpers
 * converts, so the failures come from the defect each case holds, not
 * from the builder. Run under -DVP_SANITIZE=ON as well: several cases were
 * integer overflows that only UBSan sees. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert/convert.h"
#include "test.h"
#include "test_util.h"

static char g_dir[64];       /* per-run temporary directory */
static char g_parent[128];   /* g_dir/out: the output's parent, empty after a failure */

/* ---- building a tensor table ------------------------------------------------- */
typedef struct ent {
    char name[160];
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
} ent;

typedef struct table { ent e[128]; int n; } table;

static ent *find(table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) return &t->e[i];
    return NULL;
}

/* Add or replace name: dtype and ndim sizes (int64 varargs). */
static void put(table *t, const char *name, vp_dtype dt, int ndim, ...)
{
    ent *e = find(t, name);
    if (!e) {
        if (t->n >= (int)(sizeof t->e / sizeof t->e[0])) { CHECKF(0, "table full at %s", name); return; }
        e = &t->e[t->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    e->dtype = dt;
    e->ndim = ndim;
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) e->shape[i] = va_arg(ap, int64_t);
    va_end(ap);
}

static void drop(table *t, const char *name)
{
    ent *e = find(t, name);
    if (!e) return;
    int i = (int)(e - t->e);
    memmove(e, e + 1, (size_t)(t->n - i - 1) * sizeof *e);
    t->n--;
}

#define I(x) ((int64_t)(x))

/* A timm ViT of width D (one block, MLP M, patch P on a 2x2 grid, K classes). */
static void vit(table *t, int64_t D, int64_t M, int64_t P, int64_t K)
{
    memset(t, 0, sizeof *t);
    put(t, "cls_token", VP_F32, 3, I(1), I(1), D);
    put(t, "pos_embed", VP_F32, 3, I(1), I(5), D);
    put(t, "patch_embed.proj.weight", VP_F32, 4, D, I(3), P, P);
    put(t, "patch_embed.proj.bias", VP_F32, 1, D);
    put(t, "blocks.0.norm1.weight", VP_F32, 1, D);
    put(t, "blocks.0.norm1.bias", VP_F32, 1, D);
    put(t, "blocks.0.attn.qkv.weight", VP_F32, 2, 3 * D, D);
    put(t, "blocks.0.attn.qkv.bias", VP_F32, 1, 3 * D);
    put(t, "blocks.0.attn.proj.weight", VP_F32, 2, D, D);
    put(t, "blocks.0.attn.proj.bias", VP_F32, 1, D);
    put(t, "blocks.0.norm2.weight", VP_F32, 1, D);
    put(t, "blocks.0.norm2.bias", VP_F32, 1, D);
    put(t, "blocks.0.mlp.fc1.weight", VP_F32, 2, M, D);
    put(t, "blocks.0.mlp.fc1.bias", VP_F32, 1, M);
    put(t, "blocks.0.mlp.fc2.weight", VP_F32, 2, D, M);
    put(t, "blocks.0.mlp.fc2.bias", VP_F32, 1, D);
    put(t, "norm.weight", VP_F32, 1, D);
    put(t, "norm.bias", VP_F32, 1, D);
    if (K) {
        put(t, "head.weight", VP_F32, 2, K, D);
        put(t, "head.bias", VP_F32, 1, K);
    }
}

/* The tensors an OpenAI CLIP's sizes are read from (towers of width W, no
 * blocks), under prefix pre: enough to reach the mapping, which the strict
 * check then fails. */
static void clip_sizes(table *t, int64_t W, const char *pre)
{
    static const struct { const char *name; int ndim; int64_t shape[4]; } S[] = {
        {"visual.conv1.weight", 4, {-1, 3, 4, 4}}, {"visual.class_embedding", 1, {-1}},
        {"visual.positional_embedding", 2, {5, -1}}, {"visual.transformer.resblocks.0.mlp.c_fc.weight", 2, {8, -1}},
        {"visual.proj", 2, {-1, 8}}, {"token_embedding.weight", 2, {10, -1}}, {"positional_embedding", 2, {4, -1}},
        {"transformer.resblocks.0.mlp.c_fc.weight", 2, {8, -1}}, {"text_projection", 2, {-1, 8}},
    };
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
        ent *e = &t->e[t->n++];
        snprintf(e->name, sizeof e->name, "%s%s", pre, S[i].name);
        e->dtype = VP_F32;
        e->ndim = S[i].ndim;
        for (int d = 0; d < S[i].ndim; d++) e->shape[d] = S[i].shape[d] < 0 ? W : S[i].shape[d];   /* -1: the width */
    }
}

/* A CLIPSeg (CLIP of width W under clip_model., one decoder block of
 * reduce_dim 4) up to its config checks. */
static void clipseg_sizes(table *t, int64_t W)
{
    clip_sizes(t, W, "clip_model.");
    put(t, "film_mul.weight", VP_F32, 2, I(4), I(8));
    put(t, "blocks.0.self_attn.in_proj_weight", VP_F32, 2, I(12), I(4));
    put(t, "blocks.0.linear1.weight", VP_F32, 2, I(8), I(4));
}

/* The same for a big_vision SigLIP (towers of width W, no blocks). */
static void siglip_sizes(table *t, int64_t W)
{
    memset(t, 0, sizeof *t);
    put(t, "params/img/embedding/kernel", VP_F32, 4, I(4), I(4), I(3), W);
    put(t, "params/img/pos_embedding", VP_F32, 3, I(1), I(4), W);
    put(t, "params/img/Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel", VP_F32, 2, W, I(8));
    put(t, "params/img/Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel", VP_F32, 3, W, I(2), W / 2);
    put(t, "params/txt/Embed_0/embedding", VP_F32, 2, I(10), W);
    put(t, "params/txt/pos_embedding", VP_F32, 3, I(1), I(4), W);
    put(t, "params/txt/head/kernel", VP_F32, 2, W, W);
    put(t, "params/txt/Encoder_0/encoderblock_0/MlpBlock_0/Dense_0/kernel", VP_F32, 2, W, I(8));
    put(t, "params/txt/Encoder_0/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel", VP_F32, 3, W, I(2), W / 2);
}

static uint64_t nbytes(const ent *e)
{
    uint64_t n = vp_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
    return n;
}

/* Write t as a safetensors file at g_dir/name (zero data); the path. */
static const char *write_st(const char *name, const table *t)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    vp_st_writer *w = NULL;
    int rc = vp_st_writer_open(&w, path);
    for (int i = 0; rc == VP_OK && i < t->n; i++)
        rc = vp_st_writer_add(w, t->e[i].name, t->e[i].dtype, t->e[i].ndim, t->e[i].shape);
    static const uint8_t zero[65536];
    for (int i = 0; rc == VP_OK && i < t->n; i++)
        for (uint64_t left = nbytes(&t->e[i]); rc == VP_OK && left;) {
            size_t k = left < sizeof zero ? (size_t)left : sizeof zero;
            rc = vp_st_writer_write(w, zero, k);
            left -= k;
        }
    if (rc == VP_OK) rc = vp_st_writer_finish(w);
    CHECKF(rc == VP_OK, "writing %s: %s", path, vp_st_writer_errmsg(w));
    vp_st_writer_close(w);
    return path;
}

/* ---- running a conversion ------------------------------------------------------ */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static vp_convert_opts opts(void)
{
    vp_convert_opts o;
    memset(&o, 0, sizeof o);
    o.family = "auto";
    o.quiet = 1;
    return o;
}

typedef struct result { int rc; char err[2048]; double secs; } result;

/* src into g_parent/model through the tests' runner (tests/util/convert_run.c). */
static result convert(const char *src, const vp_convert_opts *o)
{
    result r;
    char out[192];
    snprintf(out, sizeof out, "%s/model", g_parent);
    tu_conv cv;
    tu_conv_init(&cv);
    cv.o = *o;
    r.rc = tu_convert(&cv, src, out);
    snprintf(r.err, sizeof r.err, "%s", cv.err);
    r.secs = cv.secs;
    tu_conv_free(&cv);
    return r;
}

/* The conversion of t must fail: non-OK, one line naming `want`, within
 * `max_secs`, nothing left beside the output. */
static void expect_fail(const char *what, const table *t, const vp_convert_opts *o, const char *want, double max_secs)
{
    const char *src = write_st("in.safetensors", t);
    result r = convert(src, o);
    CHECKF(r.rc != VP_OK, "%s: converted", what);
    CHECKF(r.err[0] && !strchr(r.err, '\n'), "%s: message '%s' is not one line", what, r.err);
    CHECKF(strstr(r.err, want) != NULL, "%s: message '%s' does not say '%s'", what, r.err, want);
    CHECKF(r.secs < max_secs, "%s: took %.1f s (at most %.0f)", what, r.secs, max_secs);
    CHECKF(count_entries(g_parent) == 0, "%s: %d entries left in the output's parent", what, count_entries(g_parent));
    nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);   /* whatever a failed check left */
    mkdir(g_parent, 0755);
    unlink(src);
}

/* ---- the cases --------------------------------------------------------------------- */
/* The builders make models that convert: the failures below are their defects'. */
static void baseline(void)
{
    table t;
    vit(&t, 64, 32, 4, 3);
    const char *src = write_st("vit.safetensors", &t);
    vp_convert_opts o = opts();
    result r = convert(src, &o);
    CHECKF(r.rc == VP_OK, "a valid ViT: %s", r.err);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s/model/config.json", g_parent);
    CHECK(access(cfg, F_OK) == 0);
    nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(g_parent, 0755);
    unlink(src);
    /* the partial CLIP and SigLIP tables pass every size check, up to the mapping */
    clip_sizes(&t, 64, "");
    expect_fail("the CLIP sizes alone", &t, &o, "strict check failed", 20);
    siglip_sizes(&t, 64);
    expect_fail("the SigLIP sizes alone", &t, &o, "strict check failed", 20);
}

/* id2label / label2id for a classifier of 2^18 classes (a 256 KB int8 head):
 * every label was added through a lookup of all the previous ones, and
 * label2id looked each id up and recounted the object per entry — O(K^2),
 * minutes of CPU. Linear now. */
static void many_classes(void)
{
    const int64_t K = 1 << 18;
    table t;
    vit(&t, 1, 1, 1, 0);
    put(&t, "head.weight", VP_I8, 2, K, I(1));
    put(&t, "head.bias", VP_I8, 1, K);
    vp_convert_opts o = opts();
    /* width 1: no head count; the labels were made before that is found */
    expect_fail("2^18 classes, no head count", &t, &o, "attention heads", 20);
    /* with a head count: label2id too, then the strict check */
    const char *set = "num_attention_heads=1";
    o.sets = &set;
    o.nsets = 1;
    drop(&t, "norm.bias");
    expect_fail("2^18 classes, label2id", &t, &o, "norm.bias", 20);
}

/* A tensor with no elements may have any other sizes: [2^40, 0, 2^40]'s C
 * strides overflowed int64 when the table was read (src/core/source.c), and
 * again in the converter when such a tensor was copied (plan.c c_strides). */
static void empty_tensor_huge_sizes(void)
{
    table t;
    vit(&t, 64, 32, 4, 3);
    put(&t, "extra", VP_F32, 3, I(1) << 40, I(0), I(1) << 40);
    vp_convert_opts o = opts();
    expect_fail("empty [2^40, 0, 2^40] beside a ViT", &t, &o, "extra", 20);
    /* copied by a rename: the converter's C strides of the copy overflowed too */
    vit(&t, 64, 32, 4, 3);
    put(&t, "norm.bias", VP_F32, 4, I(1) << 40, I(0), I(1) << 40, I(1) << 40);
    expect_fail("norm.bias [2^40, 0, 2^40, 2^40]", &t, &o,
                "layernorm.bias [1099511627776, 0, 1099511627776, 1099511627776] vs [64]", 20);
}

/* An empty patch kernel [W, 0, 2^40, 2^40]: the patch size then came from a
 * tensor without elements (unbounded: image size = grid * patch could
 * overflow), and the copy's C strides overflowed in the converter. Refused
 * like timm's ViT refuses it: every kernel size must be at least 1. */
static void empty_patch_kernel(void)
{
    table t;
    vp_convert_opts o = opts();
    clip_sizes(&t, 64, "");
    put(&t, "visual.conv1.weight", VP_F32, 4, I(64), I(0), I(1) << 40, I(1) << 40);
    expect_fail("CLIP conv1 [64, 0, 2^40, 2^40]", &t, &o, "visual.conv1.weight has shape [64, 0, ", 20);
    siglip_sizes(&t, 64);
    /* (2^29 squared: the reader refuses element counts above 2^60 before the 0) */
    put(&t, "params/img/embedding/kernel", VP_F32, 4, I(1) << 29, I(1) << 29, I(0), I(64));
    expect_fail("SigLIP kernel [2^29, 2^29, 0, 64]", &t, &o, "img/embedding/kernel has shape [536870912, 536870912, 0, 64]", 20);
}

/* --set extract_layers=[1e300]: the check cast the double to an integer
 * before comparing it with the layer count (undefined for 1e300). */
static void extract_layers_huge(void)
{
    table t;
    clipseg_sizes(&t, 64);
    vp_convert_opts o = opts();
    const char *sets[] = {"extract_layers=[1e300]"};
    o.sets = sets;
    o.nsets = 1;
    expect_fail("extract_layers=[1e300]", &t, &o, "extract_layers entries must be vision layer indices", 20);
}

/* --set text_config=[1]: a sub-config that is not an object read as all
 * defaults, and pruning it at the end looked its items' (absent) keys up:
 * a NULL strcmp on a model whose sizes are the defaults (ViT-B/32). Refused
 * where the sub-configs are read. */
static void subconfig_not_object(void)
{
    table t;
    vp_convert_opts o = opts();
    const char *sets[] = {"text_config=[1]"};
    o.sets = sets;
    o.nsets = 1;
    clip_sizes(&t, 64, "");
    expect_fail("CLIP text_config=[1]", &t, &o, "config field text_config must be an object", 20);
    const char *vsets[] = {"vision_config=[1]"};
    o.sets = vsets;
    siglip_sizes(&t, 64);
    expect_fail("SigLIP vision_config=[1]", &t, &o, "config field vision_config must be an object", 20);
}

/* Tensor names may hold any character ("a\nb" is a valid safetensors,
 * pickle or npz key; vp_st_writer refuses control characters, so the file
 * is written by hand): messages that quote names were several lines, and
 * passed a terminal escape (ESC [ 2 J clears the screen) or DEL through. The
 * conversion must fail with a message free of control characters that
 * names `shown`. */
static void odd_name(const char *json_name, const char *shown)
{
    char header[256], path[160];
    snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", json_name);
    snprintf(path, sizeof path, "%s/odd_name.safetensors", g_dir);
    static const uint8_t zero[4] = {0};
    tu_write_st(path, header, zero, sizeof zero);
    vp_convert_opts o = opts();
    result r = convert(path, &o);
    CHECKF(r.rc != VP_OK, "a tensor named \"%s\" converted", json_name);
    CHECKF(tu_no_control(r.err), "message '%s' holds a control character", r.err);
    CHECKF(tu_has(r.err, shown), "message '%s' does not name %s", r.err, shown);
    CHECK(count_entries(g_parent) == 0);
    unlink(path);
}

static void odd_names(void)
{
    odd_name("a\\nb", "'a b'");
    odd_name("a\\u001b[2Jb\\u007fc", "'a [2Jb c'");
}

/* Issue 9.5: --set num_labels=100000000 on a 5-class model wrote num_labels
 * beside a 5-entry id2label (transformers refuses to load that); checked
 * against the head now, from --set and from --config alike. */
static void num_labels_contradiction(void)
{
    table t;
    vit(&t, 64, 32, 4, 5);
    vp_convert_opts o = opts();
    const char *sets[] = {"num_labels=100000000"};
    o.sets = sets;
    o.nsets = 1;
    expect_fail("--set num_labels=100000000, 5 classes", &t, &o, "num_labels=100000000 contradicts id2label", 20);
    const char *neg[] = {"num_labels=-1"};
    o.sets = neg;
    expect_fail("--set num_labels=-1", &t, &o, "num_labels must be a non-negative integer", 20);
    char cfg[160];
    snprintf(cfg, sizeof cfg, "%s/labels7.json", g_dir);
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"num_labels\": 7}", f);
    fclose(f);
    o = opts();
    o.config_path = cfg;
    expect_fail("--config num_labels 7, 5 classes", &t, &o, "num_labels=7 contradicts id2label", 20);
    unlink(cfg);
    /* the head's own count is accepted */
    const char *same[] = {"num_labels=5"};
    o = opts();
    o.sets = same;
    o.nsets = 1;
    const char *src = write_st("vit5.safetensors", &t);
    result r = convert(src, &o);
    CHECKF(r.rc == VP_OK, "--set num_labels=5 on 5 classes: %s", r.err);
    nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(g_parent, 0755);
    unlink(src);
}

/* Issue 9.5: a --config key holding \u0000 became "a" (cJSON cuts the
 * string there); refused, and so is such a --set value. */
static void config_nul_key(void)
{
    table t;
    vit(&t, 64, 32, 4, 3);
    char cfg[160];
    snprintf(cfg, sizeof cfg, "%s/nul.json", g_dir);
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"a\\u0000b\": 1}", f);
    fclose(f);
    vp_convert_opts o = opts();
    o.config_path = cfg;
    expect_fail("--config {\"a\\u0000b\": 1}", &t, &o, "holds \\u0000", 20);
    unlink(cfg);
    o = opts();
    const char *sets[] = {"label=\"x\\u0000y\""};
    o.sets = sets;
    o.nsets = 1;
    expect_fail("--set label=\"x\\u0000y\"", &t, &o, "holds \\u0000", 20);
}

/* Issue 9.1: a FIFO given as --config, --labels, --bpe-vocab or --spm
 * blocked in open() until a writer came (forever; SIGTERM did not help).
 * Each is refused at once now. The conversion runs in a child so that the
 * old behaviour fails this test instead of hanging it. */
static void fifo_option(const char *what, const table *t, int which)
{
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", g_dir);
    unlink(fifo);
    if (mkfifo(fifo, 0600)) { CHECKF(0, "%s: mkfifo: %s", what, strerror(errno)); return; }
    const char *src = write_st("fifo.safetensors", t);
    vp_convert_opts o = opts();
    if (which == 0) o.config_path = fifo;
    else if (which == 1) o.labels = fifo;
    else if (which == 2) o.bpe_vocab = fifo;
    else o.spm = fifo;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        result r = convert(src, &o);
        _exit(r.rc == VP_OK ? 0 : strstr(r.err, "not a regular file") ? 3 : 1);
    }
    int st = 0, done = 0;
    for (int i = 0; i < 200 && !done; i++) {   /* 10 s */
        if (waitpid(pid, &st, WNOHANG) == pid) done = 1;
        else { struct timespec ts = {0, 50000000}; nanosleep(&ts, NULL); }
    }
    if (!done) { kill(pid, SIGKILL); waitpid(pid, &st, 0); }
    CHECKF(done, "%s: still blocked after 10 s", what);
    CHECKF(done && WIFEXITED(st) && WEXITSTATUS(st) == 3, "%s: not refused as 'not a regular file' (status %d)", what, st);
    nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(g_parent, 0755);
    unlink(src);
    unlink(fifo);
}

static void fifo_options(void)
{
    table t;
    vit(&t, 64, 32, 4, 3);
    fifo_option("--config FIFO", &t, 0);
    fifo_option("--labels FIFO", &t, 1);
    clip_sizes(&t, 64, "");
    fifo_option("--bpe-vocab FIFO", &t, 2);
    siglip_sizes(&t, 64);
    fifo_option("--spm FIFO", &t, 3);
}

/* Out of memory at every step of a conversion (the allocator fails from its
 * k-th call on, for k spread over every allocation a small conversion
 * makes, cJSON's included through cJSON_InitHooks): a clean failure with a
 * one-line message and nothing left behind, never a crash (ASan/UBSan) or a
 * leak (LeakSanitizer at exit). */
static void out_of_memory(void)
{
    /* cJSON allocates through the library's allocator */
    tu_failing none = {0};
    vp__set_allocator(tu_failing_alloc, &none);
    cJSON *j = cJSON_CreateObject();
    vp__set_allocator(NULL, NULL);
    CHECKF(j == NULL, "cJSON_CreateObject succeeded under an allocator that fails every call");
    cJSON_Delete(j);
    table t;
    vit(&t, 64, 32, 4, 3);
    const char *src = write_st("oom.safetensors", &t);
    vp_convert_opts o = opts();
    tu_failing count = {1L << 40};
    vp__set_allocator(tu_failing_alloc, &count);
    result r = convert(src, &o);
    vp__set_allocator(NULL, NULL);
    long total = (1L << 40) - count.left;
    CHECKF(r.rc == VP_OK && total > 100, "counting run: %s (%ld allocations)", r.err, total);
    nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(g_parent, 0755);
    long step = total / 300 + 1, failed = 0, runs = 0, bad = 0;
    for (long k = 0; k < total; k += step, runs++) {
        tu_failing f = {k};
        vp__set_allocator(tu_failing_alloc, &f);
        r = convert(src, &o);
        vp__set_allocator(NULL, NULL);
        if (r.rc != VP_OK) {
            failed++;
            if (!r.err[0] || strchr(r.err, '\n')) { bad++; CHECKF(0, "allocation %ld fails: message '%s'", k, r.err); }
            if (count_entries(g_parent) != 0) { bad++; CHECKF(0, "allocation %ld fails (%s): files left", k, r.err); }
        }
        nftw(g_parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        mkdir(g_parent, 0755);
    }
    CHECKF(failed > runs / 2, "only %ld of %ld runs with a failing allocator failed", failed, runs);
    CHECKF(bad == 0, "%ld bad failures", bad);
    unlink(src);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/vp_test_robust_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    snprintf(g_parent, sizeof g_parent, "%s/out", g_dir);
    mkdir(g_parent, 0755);

    baseline();
    many_classes();
    empty_tensor_huge_sizes();
    empty_patch_kernel();
    extract_layers_huge();
    subconfig_not_object();
    odd_names();
    num_labels_contradiction();
    config_nul_key();
    fifo_options();
    out_of_memory();

    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
