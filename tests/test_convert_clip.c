/*
 * The CLIP, SigLIP and CLIPSeg conversions on the fixtures that
 * tests/fixtures/convert/gen_clip.py builds in each original layout: every
 * converted tensor must be bit-identical to the seed mapping applied with
 * torch / numpy (NAME.expected.safetensors), config.json and
 * preprocessor_config.json byte-identical to what transformers 4.43 writes,
 * tokenizer files identical to what CLIPTokenizer / SiglipTokenizer save;
 * the refusals must refuse. With VP_PYTHON set, each converted folder is
 * also loaded by transformers (strict) through gen_clip.py check-hf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/convert.h"
#include "test.h"
#include "test_util.h"

static char fx[1024];    /* fixtures directory */
static char tmp[256];    /* scratch directory */

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = tu_slurp(a, &na), *y = tu_slurp(b, &nb);
    int ok = x && y && na == nb && !memcmp(x, y, na);
    if (!ok) fprintf(stderr, "  %s differs from %s\n", a, b);
    free(x);
    free(y);
    return ok;
}

/* Options for a case: its NAME.args lines (none for name ""). */
static void load_opts(tu_conv *cv, const char *name)
{
    tu_conv_init(cv);
    cv->o.family = "auto";
    cv->cwd = fx;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.args", fx, name);
    if (*name) tu_conv_args_file(cv, path);
}

/* Every tensor of out/model.safetensors equals the expected one, bit for bit, and the
 * names are the same set. */
static void check_tensors(const char *outdir, const char *name)
{
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/model.safetensors", outdir);
    snprintf(b, sizeof b, "%s/%s.expected.safetensors", fx, name);
    vp_source *got = NULL, *want = NULL;
    int rc1 = vp_source_open(&got, a, NULL), rc2 = vp_source_open(&want, b, NULL);
    CHECKF(rc1 == VP_OK && rc2 == VP_OK, "%s: open: %s / %s", name, vp_source_errmsg(got), vp_source_errmsg(want));
    if (rc1 || rc2) { vp_source_close(got); vp_source_close(want); return; }
    CHECKF(vp_source_count(got) == vp_source_count(want), "%s: %zu tensors, expected %zu", name,
           vp_source_count(got), vp_source_count(want));
    const char *fmt = vp_source_metadata(got, "format");
    CHECKF(fmt && !strcmp(fmt, "pt"), "%s: metadata format '%s'", name, fmt ? fmt : "(none)");
    size_t bad = 0;
    for (size_t i = 0; i < vp_source_count(want); i++) {
        const vp_tensor *w = vp_source_tensor(want, i);
        long j = vp_source_find(got, w->name);
        if (j < 0) { bad++; fprintf(stderr, "  %s: missing %s\n", name, w->name); continue; }
        const vp_tensor *g = vp_source_tensor(got, (size_t)j);
        int same = g->dtype == w->dtype && g->ndim == w->ndim && g->nbytes == w->nbytes;
        for (int k = 0; same && k < w->ndim; k++) same = g->shape[k] == w->shape[k];
        if (same && w->nbytes) {
            char *x = malloc(w->nbytes), *y = malloc(w->nbytes);
            same = x && y && !vp_source_read(got, (size_t)j, x, w->nbytes) && !vp_source_read(want, i, y, w->nbytes) &&
                   !memcmp(x, y, w->nbytes);
            free(x);
            free(y);
        }
        if (!same) { bad++; fprintf(stderr, "  %s: %s differs\n", name, w->name); }
    }
    CHECKF(bad == 0, "%s: %zu tensors differ", name, bad);
    vp_source_close(got);
    vp_source_close(want);
}

static void check_json(const char *outdir, const char *file, const char *expected)
{
    char a[1200];
    snprintf(a, sizeof a, "%s/%s", outdir, file);
    CHECKF(same_file(a, expected), "%s/%s", outdir, file);
}

/* Folders to load with transformers at the end, in one Python run. */
static char hf_args[16384];

static void hf_load(const char *outdir, const char *cls)
{
    size_t n = strlen(hf_args);
    snprintf(hf_args + n, sizeof hf_args - n, " '%s' '%s'", outdir, cls);
}

static void hf_load_all(void)
{
    const char *py = getenv("VP_PYTHON");
    if (!py || !*py || !hf_args[0]) return;
    size_t len = strlen(py) + strlen(fx) + strlen(hf_args) + 64;
    char *cmd = malloc(len);
    if (!cmd) return;
    snprintf(cmd, len, "'%s' '%s/gen_clip.py' check-hf%s", py, fx, hf_args);
    CHECKF(system(cmd) == 0, "transformers does not load every converted folder (%s)", cmd);
    free(cmd);
}

/* One fixture: convert with its options, compare tensors, config and preprocessor. */
static void check_case(const char *name, const char *src, const char *cls)
{
    tu_conv ob;
    load_opts(&ob, name);
    char out[600], exp[1200];
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    int rc = tu_convert(&ob, src, out);
    CHECKF(rc == VP_OK, "%s: %s", name, ob.err);
    if (rc == VP_OK) {
        check_tensors(out, name);
        snprintf(exp, sizeof exp, "%s/%s.config.json", fx, name);
        check_json(out, "config.json", exp);
        snprintf(exp, sizeof exp, "%s/%s.preprocessor_config.json", fx, name);
        check_json(out, "preprocessor_config.json", exp);
        hf_load(out, cls);
    }
    tu_conv_free(&ob);
}

/* The same fixture with a tokenizer: its files as NAME.tok/ has them. */
static void check_tokenizer(const char *name, const char *src, const char *bpe, const char *spm_file,
                            const char *const *files, const char *cls)
{
    tu_conv ob;
    load_opts(&ob, name);
    char out[600], vocab[1200], exp[1200];
    snprintf(out, sizeof out, "%s/%s.tok-%s", tmp, name, bpe ? bpe : "spm");
    if (bpe) { snprintf(vocab, sizeof vocab, "%s/%s", fx, bpe); ob.o.bpe_vocab = vocab; }
    if (spm_file) { snprintf(vocab, sizeof vocab, "%s/%s", fx, spm_file); ob.o.spm = vocab; }
    int rc = tu_convert(&ob, src, out);
    CHECKF(rc == VP_OK, "%s with a tokenizer: %s", name, ob.err);
    if (rc == VP_OK) {
        for (const char *const *f = files; *f; f++) {
            snprintf(exp, sizeof exp, "%s/%s.tok/%s", fx, name, *f);
            check_json(out, *f, exp);
        }
        if (spm_file) check_json(out, "spiece.model", vocab);
        check_tensors(out, name);
        hf_load(out, cls);
    }
    tu_conv_free(&ob);
}

/* A conversion that must fail with code `code` and a message containing `needle`. */
static void check_refusal(const char *what, const char *name, const char *src, const char *const *extra_sets,
                          const char *model_name, const char *bpe, const char *spm_file, int code, const char *needle)
{
    tu_conv ob;
    load_opts(&ob, name ? name : "");
    for (const char *const *s = extra_sets; s && *s; s++) tu_conv_set(&ob, *s);
    if (model_name) ob.o.model_name = model_name;
    ob.o.bpe_vocab = bpe;
    ob.o.spm = spm_file;
    char out[600];
    snprintf(out, sizeof out, "%s/refused", tmp);
    int rc = tu_convert(&ob, src, out);
    CHECKF(rc == code, "%s: code %d (%s), expected %d", what, rc, ob.err, code);
    CHECKF(strstr(ob.err, needle) != NULL, "%s: message '%s' lacks '%s'", what, ob.err, needle);
    struct stat st;
    CHECKF(stat(out, &st) != 0, "%s: a refused conversion left %s", what, out);
    tu_conv_free(&ob);
}

static void write_text(const char *path, const char *text) { tu_write_file(path, text, strlen(text)); }

static void test_bpe_refusals(void)
{
    /* merges files: the header line, `first`, then `repeat` 30 times */
    static const struct { const char *file, *first, *repeat, *what, *needle; } C[] = {
        /* too few merges for the model's 538 tokens */
        {"short.txt", "t h\nth e</w>\n", "", "bpe too short", "merge lines"},
        /* a merge that joins a token not made yet */
        {"badmerge.txt", "th e</w>\n", "a b\n", "bpe merge of unknown token", "not a token made so far"},
        /* the same merge twice */
        {"dupmerge.txt", "", "a b\n", "bpe duplicate merge", "second time"},
        /* three tokens on a line */
        {"three.txt", "a b c\n", "t h\n", "bpe line of three", "expected two"},
        /* a merge that is not UTF-8 (an encoded surrogate, then a lone continuation byte) */
        {"surrogate.txt", "t \xed\xa0\x80\n", "t h\n", "bpe surrogate", "not valid UTF-8"},
        {"badutf8.txt", "t \x80\n", "t h\n", "bpe bad UTF-8", "not valid UTF-8"},
    };
    char path[600], text[4096];
    for (size_t k = 0; k < sizeof C / sizeof *C; k++) {
        snprintf(path, sizeof path, "%s/%s", tmp, C[k].file);
        size_t n = (size_t)snprintf(text, sizeof text, "#version: 0.2\n%s", C[k].first);
        for (int i = 0; i < 30; i++) n += (size_t)snprintf(text + n, sizeof text - n, "%s", C[k].repeat);
        write_text(path, text);
        check_refusal(C[k].what, "clip_jit_fp16", "clip_jit_fp16.pt", NULL, NULL, path, NULL, VP_ERR_FORMAT,
                      C[k].needle);
    }
    /* a file that cannot be read is an I/O error, not a malformed vocabulary */
    snprintf(path, sizeof path, "%s/absent.txt", tmp);
    check_refusal("bpe file absent", "clip_jit_fp16", "clip_jit_fp16.pt", NULL, NULL, path, NULL, VP_ERR_IO,
                  "No such file");
    check_refusal("bpe file a directory", "clip_jit_fp16", "clip_jit_fp16.pt", NULL, NULL, tmp, NULL, VP_ERR_IO,
                  "not a regular file");
    /* a corrupt gzip stream */
    snprintf(path, sizeof path, "%s/corrupt.gz", tmp);
    write_text(path, "\x1f\x8b\x08\x00garbage that is not deflate data at all");
    check_refusal("bpe corrupt gzip", "clip_jit_fp16", "clip_jit_fp16.pt", NULL, NULL, path, NULL, VP_ERR_FORMAT,
                  "gzip");
}

static void test_spm_refusals(void)
{
    char path[600], good[1200];
    snprintf(path, sizeof path, "%s/absent.model", tmp);
    check_refusal("spm file absent", "siglip_base", "siglip_base.npz", NULL, NULL, NULL, path, VP_ERR_IO,
                  "No such file");
    snprintf(path, sizeof path, "%s/junk.model", tmp);
    write_text(path, "this is not a protobuf at all, just text\n");
    check_refusal("spm junk", "siglip_base", "siglip_base.npz", NULL, NULL, NULL, path, VP_ERR_FORMAT,
                  "not a SentencePiece model");
    /* a truncated copy of the good model */
    snprintf(good, sizeof good, "%s/siglip_tiny.model", fx);
    size_t len = 0;
    char *data = tu_slurp(good, &len);
    if (data && len > 40) {
        snprintf(path, sizeof path, "%s/cut.model", tmp);
        tu_write_file(path, data, len - 7);
        check_refusal("spm truncated", "siglip_base", "siglip_base.npz", NULL, NULL, NULL, path, VP_ERR_FORMAT,
                      "not a SentencePiece model");
        /* pieces only (no trainer_spec): the first piece message */
        tu_write_file(path, data, 2 + (size_t)(unsigned char)data[1]);
        check_refusal("spm without trainer_spec", "siglip_base", "siglip_base.npz", NULL, NULL, NULL, path,
                      VP_ERR_FORMAT, "trainer_spec");
    }
    free(data);
}

/* --dtype keep: OpenAI's fp16 tensors stay fp16, LayerNorms and embeddings f32, same values. */
static void test_keep_dtype(void)
{
    tu_conv ob;
    load_opts(&ob, "clip_jit_fp16");
    ob.o.dtype = "keep";
    char out[600], path[1200];
    snprintf(out, sizeof out, "%s/keep", tmp);
    int rc = tu_convert(&ob, "clip_jit_fp16.pt", out);
    CHECKF(rc == VP_OK, "--dtype keep: %s", ob.err);
    tu_conv_free(&ob);
    if (rc) return;
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    char exp[1200];
    snprintf(exp, sizeof exp, "%s/clip_jit_fp16.expected.safetensors", fx);
    vp_source *got = NULL, *want = NULL;
    if (vp_source_open(&got, path, NULL) || vp_source_open(&want, exp, NULL)) {
        CHECKF(0, "open: %s", vp_source_errmsg(got));
    } else {
        static const struct { const char *name; vp_dtype dt; } cases[] = {
            { "vision_model.encoder.layers.0.self_attn.q_proj.weight", VP_F16 },
            { "vision_model.embeddings.patch_embedding.weight", VP_F16 },
            { "visual_projection.weight", VP_F16 },
            { "vision_model.pre_layrnorm.weight", VP_F32 },
            { "text_model.embeddings.token_embedding.weight", VP_F32 },
            { "logit_scale", VP_F32 },
        };
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            long i = vp_source_find(got, cases[k].name), j = vp_source_find(want, cases[k].name);
            CHECKF(i >= 0 && j >= 0, "--dtype keep: %s missing", cases[k].name);
            if (i < 0 || j < 0) continue;
            const vp_tensor *t = vp_source_tensor(got, (size_t)i);
            CHECKF(t->dtype == cases[k].dt, "--dtype keep: %s is %s", cases[k].name, vp_dtype_name(t->dtype));
            size_t n = (size_t)t->numel * 4;
            float *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
            CHECKF(x && y && !vp_source_read_as(got, (size_t)i, VP_F32, x, n) &&
                   !vp_source_read(want, (size_t)j, y, n) && !memcmp(x, y, n),
                   "--dtype keep: %s values differ", cases[k].name);
            free(x);
            free(y);
        }
    }
    vp_source_close(got);
    vp_source_close(want);
}

/* --config instead of --set: a config.json giving the head counts (as a hub config would). */
static void test_config_file(void)
{
    char cfg[600], out[600], exp[1200];
    snprintf(cfg, sizeof cfg, "%s/heads.json", tmp);
    write_text(cfg, "{\"text_config\": {\"num_attention_heads\": 4}, \"vision_config\": {\"num_attention_heads\": 2}}");
    tu_conv ob;
    load_opts(&ob, "");
    ob.o.config_path = cfg;
    snprintf(out, sizeof out, "%s/clip_ft_b16.config-file", tmp);
    int rc = tu_convert(&ob, "clip_ft_b16.pt", out);
    CHECKF(rc == VP_OK, "--config: %s", ob.err);
    if (rc == VP_OK) {
        check_tensors(out, "clip_ft_b16");
        snprintf(exp, sizeof exp, "%s/clip_ft_b16.config.json", fx);
        check_json(out, "config.json", exp);
    }
    tu_conv_free(&ob);
}

int main(void)
{
    snprintf(fx, sizeof fx, "%s/convert", tu_fixtures_dir());
    tu_mkdtemp(tmp, sizeof tmp, "vp_test_clip");

    /* CLIP: a TorchScript fp16 archive, a fine-tuned {'state_dict': module.*} checkpoint with an
     * optimizer, an fp16 {'model_state_dict'} one */
    check_case("clip_jit_fp16", "clip_jit_fp16.pt", "CLIPModel");
    check_case("clip_ft_b16", "clip_ft_b16.pt", "CLIPModel");
    check_case("clip_msd_half", "clip_msd_half.pt", "CLIPModel");
    /* SigLIP: stored and compressed npz, two widths; the second's image size from --model-name */
    check_case("siglip_base", "siglip_base.npz", "SiglipModel");
    check_case("siglip_so_compressed", "siglip_so_compressed.npz", "SiglipModel");
    /* CLIPSeg rd16 (default extract_layers), rd64, rd16 with the refined decoder */
    check_case("clipseg_rd16", "clipseg_rd16.pth", "CLIPSegForImageSegmentation");
    check_case("clipseg_rd64", "clipseg_rd64.pth", "CLIPSegForImageSegmentation");
    check_case("clipseg_rd16_refined", "clipseg_rd16_refined.pth", "CLIPSegForImageSegmentation");

    /* tokenizers */
    static const char *const clip_files[] = { "vocab.json", "merges.txt", "tokenizer_config.json",
                                              "special_tokens_map.json", "preprocessor_config.json", NULL };
    static const char *const spm_files[] = { "tokenizer_config.json", "special_tokens_map.json",
                                             "preprocessor_config.json", NULL };
    check_tokenizer("clip_jit_fp16", "clip_jit_fp16.pt", "clip_bpe.txt.gz", NULL, clip_files, "CLIPModel");
    check_tokenizer("clip_jit_fp16", "clip_jit_fp16.pt", "clip_bpe_plain.txt", NULL, clip_files, "CLIPModel");
    check_tokenizer("clipseg_rd16", "clipseg_rd16.pth", "clip_bpe.txt.gz", NULL, clip_files,
                    "CLIPSegForImageSegmentation");
    check_tokenizer("siglip_base", "siglip_base.npz", NULL, "siglip_tiny.model", spm_files, "SiglipModel");

    /* refusals */
    check_refusal("ResNet tower", NULL, "clip_rn50.pt", NULL, NULL, NULL, NULL, VP_ERR_UNSUPPORTED, "ResNet");
    check_refusal("CLIPSeg decoder only", NULL, "clipseg_decoder_only.pth", NULL, NULL, NULL, NULL,
                  VP_ERR_UNSUPPORTED, "only the decoder");
    check_refusal("CLIP widths 8 and 16 without heads", "", "clip_ft_b16.pt", NULL, NULL, NULL, NULL, VP_ERR_ARG,
                  "is not a multiple of 64");
    static const char *const wrong_heads[] = { "vision_config.num_attention_heads=4", NULL };
    check_refusal("SigLIP heads against the kernels", "siglip_base", "siglip_base.npz", wrong_heads, NULL, NULL, NULL,
                  VP_ERR_MISMATCH, "num_attention_heads");
    static const char *const wrong_image[] = { "vision_config.image_size=64", NULL };
    check_refusal("CLIP image size against the positions", "clip_jit_fp16", "clip_jit_fp16.pt", wrong_image, NULL,
                  NULL, NULL, VP_ERR_MISMATCH, "image_size");
    static const char *const wrong_width[] = { "text_config.hidden_size=32", NULL };
    check_refusal("CLIP width against the tensors", "clip_jit_fp16", "clip_jit_fp16.pt", wrong_width, NULL, NULL,
                  NULL, VP_ERR_MISMATCH, "text_config.hidden_size");
    check_refusal("CLIPSeg model name against the decoder", "clipseg_rd64", "clipseg_rd64.pth", NULL, "clipseg-rd16",
                  NULL, NULL, VP_ERR_MISMATCH, "reduce_dim 64");
    static const char *const short_extract[] = { "extract_layers=[3,6]", NULL };
    check_refusal("CLIPSeg extract_layers count", "clipseg_rd16", "clipseg_rd16.pth", short_extract, NULL, NULL, NULL,
                  VP_ERR_MISMATCH, "extract_layers");
    static const char *const far_extract[] = { "extract_layers=[3,6,10]", NULL };
    check_refusal("CLIPSeg extract_layers range", "clipseg_rd16", "clipseg_rd16.pth", far_extract, NULL, NULL, NULL,
                  VP_ERR_MISMATCH, "extract_layers");
    static const char *const refined_flag[] = { "use_complex_transposed_convolution=true", NULL };
    check_refusal("CLIPSeg refined flag against the tensors", "clipseg_rd16", "clipseg_rd16.pth", refined_flag, NULL,
                  NULL, NULL, VP_ERR_MISMATCH, "use_complex_transposed_convolution");
    check_refusal("SigLIP patch in the model name", "siglip_base", "siglip_base.npz", NULL, "siglip-base-patch16-224",
                  NULL, NULL, VP_ERR_MISMATCH, "patch");
    test_bpe_refusals();
    test_spm_refusals();
    test_keep_dtype();
    test_config_file();
    hf_load_all();

    tu_rmtree(tmp);
    TEST_MAIN_END();
}
