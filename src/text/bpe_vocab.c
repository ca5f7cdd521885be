/*
 * CLIP's BPE merges file -> the tokenizer files transformers' CLIPTokenizer
 * saves (see text.h). The merges file has one header line, then one merge
 * per line ("t h", "th e</w>", ...); the vocabulary is not stored anywhere:
 * OpenAI's SimpleTokenizer derives it, and the ids must come out exactly as
 * the model's token embedding was trained with, so it is derived here the
 * same way and checked for consistency (every merge joins two tokens that
 * already exist, and makes a new one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/util.h"
#include "text/text.h"

#define BPE_SPECIALS 2               /* <|startoftext|>, <|endoftext|> */
#define BPE_BYTE_TOKENS 512          /* 256 symbols, and each with </w> */

/* ---- reading the file ---------------------------------------------------- */

char *vp_text_read(const char *path, size_t *len, int *code, char *err, size_t errlen)
{
    char *raw = NULL;
    size_t rawlen = 0;
    if ((*code = vp__read_file(path, VP_BPE_MAX_BYTES, &raw, &rawlen, err, errlen)) != VP_OK) return NULL;
    *code = VP_ERR_FORMAT;
    if (!(rawlen >= 2 && (uint8_t)raw[0] == 0x1f && (uint8_t)raw[1] == 0x8b)) {
        *len = rawlen;
        return raw;
    }
    char *out = NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        *code = VP_ERR_NOMEM;
        vp_text_fail(err, errlen, "%s: cannot start gzip inflation", path);
        vp__free(raw);
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    out = vp__malloc(cap + 1);
    if (!out) *code = VP_ERR_NOMEM;
    int rc = Z_OK;
    z.next_in = (Bytef *)raw;
    while (out && rc != Z_STREAM_END) {
        if (n == cap) {
            if (cap >= VP_BPE_MAX_BYTES) {
                *code = VP_ERR_LIMIT;
                vp_text_fail(err, errlen, "%s: inflates past %u MB, too large for a tokenizer file", path,
                             VP_BPE_MAX_BYTES >> 20);
                vp__free(out);
                out = NULL;
                break;
            }
            cap *= 2;
            char *grown = vp__realloc(out, cap + 1);
            if (!grown) { vp__free(out); out = NULL; *code = VP_ERR_NOMEM; break; }
            out = grown;
        }
        size_t left = rawlen - (size_t)((const char *)z.next_in - raw);
        z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
        z.next_out = (Bytef *)out + n;
        z.avail_out = (uInt)(cap - n);
        rc = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            vp_text_fail(err, errlen, "%s: corrupt gzip data (%s)", path, z.msg ? z.msg : "inflate failed");
            vp__free(out);
            out = NULL;
        } else if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            vp_text_fail(err, errlen, "%s: truncated gzip data", path);
            vp__free(out);
            out = NULL;
        }
    }
    inflateEnd(&z);
    vp__free(raw);
    if (out) { out[n] = 0; *len = n; *code = VP_OK; }
    else if (!err[0]) vp_text_fail(err, errlen, "%s: out of memory", path);
    return out;
}

/* ---- a set of token strings (open addressing) ---------------------------- */
typedef struct tokset { const char **tok; size_t *slot; size_t cap; } tokset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Returns 1 if added, 0 if already present. */
static int tokset_add(tokset *t, const char **toks, size_t id)
{
    size_t i = (size_t)hash_str(toks[id]) & (t->cap - 1);
    while (t->slot[i] != SIZE_MAX) {
        if (!strcmp(toks[t->slot[i]], toks[id])) return 0;
        i = (i + 1) & (t->cap - 1);
    }
    t->slot[i] = id;
    return 1;
}

static int tokset_has(const tokset *t, const char **toks, const char *s)
{
    size_t i = (size_t)hash_str(s) & (t->cap - 1);
    while (t->slot[i] != SIZE_MAX) {
        if (!strcmp(toks[t->slot[i]], s)) return 1;
        i = (i + 1) & (t->cap - 1);
    }
    return 0;
}

void vp_text_byte_symbols(char sym[256][3], uint8_t byte_of[256])
{
    int order[256], n = 0, is_print[256] = { 0 };
    for (int b = '!'; b <= '~'; b++) is_print[b] = 1;
    for (int b = 0xa1; b <= 0xac; b++) is_print[b] = 1;
    for (int b = 0xae; b <= 0xff; b++) is_print[b] = 1;
    int cp[256], extra = 0;
    for (int b = 0; b < 256; b++)
        if (is_print[b]) { order[n++] = b; cp[b] = b; }
    for (int b = 0; b < 256; b++)
        if (!is_print[b]) { order[n++] = b; cp[b] = 256 + extra++; }
    for (int i = 0; i < 256; i++) {
        int c = cp[order[i]];
        if (byte_of) byte_of[i] = (uint8_t)order[i];
        if (c < 0x80) { sym[i][0] = (char)c; sym[i][1] = 0; }
        else { sym[i][0] = (char)(0xc0 | (c >> 6)); sym[i][1] = (char)(0x80 | (c & 0x3f)); sym[i][2] = 0; }
    }
}

static int cmp_tok(const void *a, const void *b, void *ctx)
{
    const char **toks = ctx;
    return strcmp(toks[*(const size_t *)a], toks[*(const size_t *)b]);
}

/* ---- the output files ---------------------------------------------------- */

/* CLIPTokenizer's special tokens: AddedToken(lstrip=False, rstrip=False, normalized=True). */
static const vp_text_style clip_style = { 0, 1 };

static void tokenizer_config(vp_buf *b, int64_t vocab, int64_t max_len, const char *processor_class)
{
    char sot[24], eot[24];
    snprintf(sot, sizeof sot, "%lld", (long long)(vocab - 2));
    snprintf(eot, sizeof eot, "%lld", (long long)(vocab - 1));
    const vp_text_token added[2] = { { sot, "<|startoftext|>", 0 }, { eot, "<|endoftext|>", 0 } };
    vp__buf_puts(b, "{\n");
    vp_text_added_tokens_decoder(b, added, 2, &clip_style);
    vp__buf_puts(b, "  \"bos_token\": \"<|startoftext|>\",\n"
                    "  \"clean_up_tokenization_spaces\": true,\n"
                    "  \"eos_token\": \"<|endoftext|>\",\n"
                    "  \"errors\": \"replace\",\n");
    vp_text_config_common(b, max_len, "<|endoftext|>", processor_class);
    vp__buf_puts(b, "  \"tokenizer_class\": \"CLIPTokenizer\",\n  \"unk_token\": \"<|endoftext|>\"\n}\n");
}

static void special_tokens_map(vp_buf *b)
{
    /* CLIPTokenizer passes pad_token as a plain string, so it is saved as one. */
    static const vp_text_token tokens[4] = {
        { "bos_token", "<|startoftext|>", 0 },
        { "eos_token", "<|endoftext|>", 0 },
        { "pad_token", "<|endoftext|>", 1 },
        { "unk_token", "<|endoftext|>", 0 },
    };
    vp_text_special_tokens_map(b, tokens, 4, &clip_style);
}

void vp_bpe_vocab_free(vp_bpe_vocab *v)
{
    vp__free(v->text);
    vp__free(v->tok);
    vp__free(v->joined);
    vp__free(v->left);
    vp__free(v->right);
    memset(v, 0, sizeof *v);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* 0, -1 when the file is malformed, or VP_ERR_NOMEM; err says why. */
static int build_vocab(vp_bpe_vocab *v, const char *path, size_t textlen, int64_t vocab_size, char *err, size_t errlen)
{
    if (vocab_size <= 0) vocab_size = BPE_BYTE_TOKENS + BPE_SPECIALS + VP_BPE_OPENAI_MERGES;   /* at most */
    else if (vocab_size < BPE_BYTE_TOKENS + BPE_SPECIALS)
        return vp_text_fail(err, errlen, "%s: the model's vocabulary has %lld tokens, fewer than the %d a "
                            "byte-level BPE vocabulary starts with", path, (long long)vocab_size,
                            BPE_BYTE_TOKENS + BPE_SPECIALS);
    size_t nm = (size_t)(vocab_size - BPE_BYTE_TOKENS - BPE_SPECIALS);
    /* Lines: the first is a header ("#version: 0.2"), merges follow. */
    char *line = memchr(v->text, '\n', textlen);
    if (!line) return vp_text_fail(err, errlen, "%s: no merge lines after the header line", path);
    line++;
    char *end = v->text + textlen;
    size_t avail = 0;
    for (char *q = line; q < end && avail < nm; avail++) {
        char *nl = memchr(q, '\n', (size_t)(end - q));
        q = nl ? nl + 1 : end;
    }
    if (avail < nm && v->as_openai) {
        nm = avail;                  /* SimpleTokenizer takes what there is */
        vocab_size = BPE_BYTE_TOKENS + BPE_SPECIALS + (int64_t)nm;
    }
    if (avail < nm)
        return vp_text_fail(err, errlen, "%s: %zu merge lines, but the model's vocabulary of %lld tokens needs %zu "
                            "(vocabulary = 512 byte tokens + merges + 2 special tokens)", path, avail,
                            (long long)vocab_size, nm);
    v->nmerges = nm;
    v->ntok = (size_t)vocab_size;
    v->left = vp__calloc(nm ? nm : 1, sizeof *v->left);
    v->right = vp__calloc(nm ? nm : 1, sizeof *v->right);
    v->tok = vp__calloc(v->ntok, sizeof *v->tok);
    /* byte symbols (<= 2 bytes) and with </w>: 8 bytes each; merged tokens. */
    size_t joined_cap = 512 * 8 + (size_t)(end - line) + nm + 64;
    v->joined = vp__malloc(joined_cap);
    if (!v->left || !v->right || !v->tok || !v->joined) {
        vp_text_fail(err, errlen, "%s: out of memory", path);
        return VP_ERR_NOMEM;
    }

    char *q = line;
    for (size_t i = 0; i < nm; i++) {
        char *nl = memchr(q, '\n', (size_t)(end - q));
        char *le = nl ? nl : end;
        /* tokens are cut out as C strings: a NUL would end one early */
        if (vp__utf8_check((const uint8_t *)q, (size_t)(le - q), false) != (size_t)(le - q) || memchr(q, 0, (size_t)(le - q)))
            return vp_text_fail(err, errlen, "%s: merge line %zu is not valid UTF-8", path, i + 2);
        char *parts[3] = { 0 };
        int np = 0;
        char *c = q;
        while (c < le) {
            while (c < le && is_space(*c)) *c++ = 0;
            if (c >= le) break;
            if (np == 3) break;
            parts[np++] = c;
            while (c < le && !is_space(*c)) c++;
        }
        *le = 0;
        if (np != 2)
            return vp_text_fail(err, errlen, "%s: merge line %zu has %d token%s, expected two", path, i + 2, np,
                                np == 1 ? "" : "s");
        v->left[i] = parts[0];
        v->right[i] = parts[1];
        q = nl ? nl + 1 : end;
    }

    char sym[256][3];
    vp_text_byte_symbols(sym, NULL);
    char *w = v->joined;
    size_t id = 0;
    for (int i = 0; i < 256; i++) { v->tok[id++] = w; w += sprintf(w, "%s", sym[i]) + 1; }
    for (int i = 0; i < 256; i++) { v->tok[id++] = w; w += sprintf(w, "%s</w>", sym[i]) + 1; }
    for (size_t i = 0; i < nm; i++) {
        size_t a = strlen(v->left[i]), b = strlen(v->right[i]);
        v->tok[id++] = w;
        memcpy(w, v->left[i], a);
        memcpy(w + a, v->right[i], b);
        w[a + b] = 0;
        w += a + b + 1;
    }
    v->tok[id++] = "<|startoftext|>";
    v->tok[id++] = "<|endoftext|>";

    /* Each merge joins two existing tokens into a new one: otherwise the ids
     * would not be the ones the model was trained with. */
    tokset set = { v->tok, NULL, 1 };
    while (set.cap < 2 * v->ntok) set.cap <<= 1;
    set.slot = vp__malloc(set.cap * sizeof *set.slot);
    if (!set.slot) {
        vp_text_fail(err, errlen, "%s: out of memory", path);
        return VP_ERR_NOMEM;
    }
    memset(set.slot, 0xff, set.cap * sizeof *set.slot);
    int rc = 0;
    for (size_t i = 0; i < BPE_BYTE_TOKENS && !rc; i++) tokset_add(&set, v->tok, i);
    for (size_t i = 0; i < nm && !rc; i++) {
        const char *bad = !tokset_has(&set, v->tok, v->left[i]) ? v->left[i]
                        : !tokset_has(&set, v->tok, v->right[i]) ? v->right[i] : NULL;
        if (bad) rc = vp_text_fail(err, errlen, "%s: merge line %zu joins \"%s\", which is not a token made so far",
                                   path, i + 2, bad);
        else if (!tokset_add(&set, v->tok, BPE_BYTE_TOKENS + i))
            rc = vp_text_fail(err, errlen, "%s: merge line %zu makes \"%s\" a second time", path, i + 2,
                              v->tok[BPE_BYTE_TOKENS + i]);
    }
    for (size_t i = v->ntok - BPE_SPECIALS; i < v->ntok && !rc; i++)
        if (!tokset_add(&set, v->tok, i))
            rc = vp_text_fail(err, errlen, "%s: a merge makes the special token %s", path, v->tok[i]);
    vp__free(set.slot);
    return rc;
}

int vp_bpe_vocab_read(vp_bpe_vocab *v, const char *path, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (errlen) err[0] = 0;
    size_t textlen = 0;
    int code = VP_OK;
    v->text = vp_text_read(path, &textlen, &code, err, errlen);
    if (!v->text) return code;
    v->as_openai = 1;
    int brc = build_vocab(v, path, textlen, 0, err, errlen);   /* -1: malformed */
    if (brc) { vp_bpe_vocab_free(v); return brc > 0 ? brc : VP_ERR_FORMAT; }
    return 0;
}

int vp_bpe_tokenizer_files(const char *path, int64_t vocab_size, int64_t model_max_length,
                           const char *processor_class, vp_text_file out[4], char *err, size_t errlen)
{
    memset(out, 0, 4 * sizeof *out);
    if (errlen) err[0] = 0;
    vp_bpe_vocab v;
    memset(&v, 0, sizeof v);
    size_t textlen = 0;
    int code = VP_OK;
    v.text = vp_text_read(path, &textlen, &code, err, errlen);
    if (!v.text) return code;
    int brc = build_vocab(&v, path, textlen, vocab_size, err, errlen);   /* -1: malformed */
    if (brc) {
        vp_bpe_vocab_free(&v);
        return brc > 0 ? brc : VP_ERR_FORMAT;
    }

    /* vocab.json: json.dumps(encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n".
     * Python sorts by code point, which is the byte order of UTF-8. */
    size_t *order = vp__malloc(v.ntok * sizeof *order);
    vp_buf b = { 0 };
    int rc = VP_ERR_NOMEM;
    if (!order) { vp_text_fail(err, errlen, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < v.ntok; i++) order[i] = i;
    qsort_r(order, v.ntok, sizeof *order, cmp_tok, (void *)v.tok);
    vp__buf_puts(&b, "{\n");
    for (size_t i = 0; i < v.ntok; i++) {
        vp__buf_puts(&b, "  ");
        vp__buf_json_str(&b, v.tok[order[i]], false);
        vp__buf_printf(&b, ": %zu%s\n", order[i], i + 1 < v.ntok ? "," : "");
    }
    vp__buf_puts(&b, "}\n");
    if (vp_text_take(&out[0], "vocab.json", &b)) goto oom;

    vp__buf_puts(&b, "#version: 0.2\n");
    for (size_t i = 0; i < v.nmerges; i++) vp__buf_printf(&b, "%s %s\n", v.left[i], v.right[i]);
    if (vp_text_take(&out[1], "merges.txt", &b)) goto oom;

    tokenizer_config(&b, vocab_size, model_max_length, processor_class);
    if (vp_text_take(&out[2], "tokenizer_config.json", &b)) goto oom;

    special_tokens_map(&b);
    if (vp_text_take(&out[3], "special_tokens_map.json", &b)) goto oom;
    rc = VP_OK;
    goto done;
oom:
    vp_text_fail(err, errlen, "%s: out of memory", path);
    vp_text_files_free(out, 4);
done:
    vp__free(order);
    vp_bpe_vocab_free(&v);
    return rc;
}
