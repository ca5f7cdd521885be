/*
 * The tokenizer handle (include/vitport/text.h): which files a model
 * directory holds, tokenizer_config.json's length, and what
 * `tokenizer(texts, padding="max_length", truncation=True)` does around the
 * back ends' ids (special tokens, truncation, padding, the mask).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/util.h"
#include "text/text.h"
#include "text/tokenize.h"

struct vp_tokenizer {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    vp_tokenizer_kind kind;
    int64_t length;
    vp_clip *clip;
    vp_siglip *siglip;
    vp_ids tmp;
};

static int set_err(vp_tokenizer *t, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_err(vp_tokenizer *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(t->errmsg, sizeof t->errmsg, NULL, fmt, ap);
    va_end(ap);
    return code;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = vp__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A JSON file of the directory, or NULL when absent; *rc set on failure. */
static cJSON *read_json(vp_tokenizer *t, const char *dir, const char *name, int *rc)
{
    char *path = join(dir, name);
    if (!path) { *rc = set_err(t, VP_ERR_NOMEM, "out of memory"); return NULL; }
    cJSON *j = NULL;
    if (is_file(path)) {
        size_t n;
        char err[512] = "";
        int code = VP_OK;
        char *text = vp_text_read(path, &n, &code, err, sizeof err);
        if (!text) *rc = set_err(t, code, "%s", err);
        else if (strlen(text) != n || !(j = cJSON_ParseWithLength(text, n)) || !cJSON_IsObject(j))
            *rc = set_err(t, VP_ERR_FORMAT, "%s: not a JSON object", path);
        vp__free(text);
        if (*rc) { cJSON_Delete(j); j = NULL; }
    }
    vp__free(path);
    return j;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* What a single file is, from its first bytes (and name). */
static int file_kind(const char *path, int *is_bpe, int *is_json)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char head[16] = { 0 };
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\t' || head[i] == '\r')) i++;
    *is_json = i < n && head[i] == '{';
    *is_bpe = (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) || (n >= 8 && !memcmp(head, "#version", 8)) ||
              ends_with(path, ".txt") || ends_with(path, ".txt.gz");
    return 0;
}

static int open_files(vp_tokenizer *t, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return set_err(t, VP_ERR_IO, "%s: no such file or directory", path);
    int rc = 0;
    int64_t length = 0;
    char err[512] = "";
    if (!S_ISDIR(st.st_mode)) {
        int bpe = 0, json = 0;
        if (file_kind(path, &bpe, &json)) return set_err(t, VP_ERR_IO, "%s: cannot open", path);
        if (bpe || json) {
            t->kind = VP_TOKENIZER_CLIP_BPE;
            rc = vp__clip_open(&t->clip, NULL, NULL, json ? path : NULL, bpe ? path : NULL, NULL, NULL, err, sizeof err);
        } else {
            t->kind = VP_TOKENIZER_SIGLIP_SPM;
            rc = vp__siglip_open(&t->siglip, path, NULL, NULL, err, sizeof err);
        }
        if (rc) return set_err(t, rc, "%s", err);
        t->length = t->kind == VP_TOKENIZER_CLIP_BPE ? 77 : 64;
        return 0;
    }
    cJSON *cfg = read_json(t, path, "tokenizer_config.json", &rc);
    cJSON *stmap = rc ? NULL : read_json(t, path, "special_tokens_map.json", &rc);
    char *spiece = join(path, "spiece.model"), *tokjson = join(path, "tokenizer.json");
    char *vocab = join(path, "vocab.json"), *merges = join(path, "merges.txt");
    if (!rc && (!spiece || !tokjson || !vocab || !merges)) rc = set_err(t, VP_ERR_NOMEM, "out of memory");
    if (rc) goto done;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class");
    const char *klass = cJSON_IsString(cls) ? cls->valuestring : NULL;
    int want_siglip = klass ? !strncmp(klass, "Siglip", 6) : is_file(spiece);
    int want_clip = klass ? !strncmp(klass, "CLIP", 4) : !want_siglip;
    if (klass && !want_siglip && !want_clip) {
        rc = set_err(t, VP_ERR_UNSUPPORTED, "%s/tokenizer_config.json: tokenizer_class %s: vitport has CLIP's and "
                     "SigLIP's tokenizers", path, klass);
    } else if (want_siglip) {
        t->kind = VP_TOKENIZER_SIGLIP_SPM;
        if (!is_file(spiece))
            rc = set_err(t, VP_ERR_NOTFOUND, "%s: no spiece.model (SigLIP's SentencePiece model)", path);
        else if ((rc = vp__siglip_open(&t->siglip, spiece, cfg, stmap, err, sizeof err)))
            set_err(t, rc, "%s", err);
    } else {
        t->kind = VP_TOKENIZER_CLIP_BPE;
        int have_json = is_file(tokjson), have_pair = is_file(vocab) && is_file(merges);
        if (!have_json && !have_pair)
            rc = set_err(t, VP_ERR_NOTFOUND, "%s: no tokenizer files (tokenizer.json, vocab.json + merges.txt, or "
                         "spiece.model)", path);
        else if ((rc = vp__clip_open(&t->clip, vocab, merges, have_json ? tokjson : NULL, NULL, cfg, stmap, err,
                                     sizeof err)))
            set_err(t, rc, "%s", err);
    }
    if (rc) goto done;
    /* model_max_length; transformers' "no limit" (1e30) and absurd values
     * fall back to the model's context length */
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(cfg, "model_max_length");
    if (cJSON_IsNumber(ml) && ml->valuedouble >= 1 && ml->valuedouble <= VP_TEXT_MAX_LENGTH)
        length = (int64_t)ml->valuedouble;
    t->length = length ? length : t->kind == VP_TOKENIZER_CLIP_BPE ? 77 : 64;
    if (t->kind == VP_TOKENIZER_CLIP_BPE && t->length < 2)
        rc = set_err(t, VP_ERR_FORMAT, "%s/tokenizer_config.json: model_max_length %lld leaves no room for CLIP's "
                     "two special tokens", path, (long long)t->length);
done:
    cJSON_Delete(cfg);
    cJSON_Delete(stmap);
    vp__free(spiece);
    vp__free(tokjson);
    vp__free(vocab);
    vp__free(merges);
    return rc;
}

static int vp_tokenizer_open__impl(vp_tokenizer **out, const char *path)
{
    *out = vp__calloc(1, sizeof **out);
    if (!*out) return VP_ERR_NOMEM;
    (*out)->alloc = vp__alloc_get();
    if (!path) return set_err(*out, VP_ERR_ARG, "no tokenizer path given");
    return open_files(*out, path);
}

int vp_tokenizer_open_ex(vp_tokenizer **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_tokenizer_open__impl(out, path));
}

int vp_tokenizer_open(vp_tokenizer **out, const char *path)
{
    return vp_tokenizer_open_ex(out, path, vp__alloc_current());
}

static void vp_tokenizer_close__impl(vp_tokenizer *t)
{
    if (!t) return;
    vp__clip_free(t->clip);
    vp__siglip_free(t->siglip);
    vp__ids_free(&t->tmp);
    vp__free(t);
}

void vp_tokenizer_close(vp_tokenizer *t)
{
    VP__WITH_ALLOC_VOID(t ? &t->alloc : vp__alloc_current(), vp_tokenizer_close__impl(t));
}

const char *vp_tokenizer_errmsg(const vp_tokenizer *t) { return t ? t->errmsg : "no tokenizer"; }
vp_tokenizer_kind vp_tokenizer_type(const vp_tokenizer *t) { return t->kind; }
int64_t vp_tokenizer_length(const vp_tokenizer *t) { return t->length; }

static int vp_tokenizer_set_length__impl(vp_tokenizer *t, int64_t length)
{
    int64_t min = t->kind == VP_TOKENIZER_CLIP_BPE ? 2 : 1;
    if (length < min || length > VP_TEXT_MAX_LENGTH)
        return set_err(t, VP_ERR_ARG, "padding length %lld is outside %lld..%d", (long long)length, (long long)min,
                       VP_TEXT_MAX_LENGTH);
    t->length = length;
    return VP_OK;
}

int vp_tokenizer_set_length(vp_tokenizer *t, int64_t length)
{
    VP__WITH_ALLOC(t ? &t->alloc : vp__alloc_current(), int, vp_tokenizer_set_length__impl(t, length));
}

int64_t vp_tokenizer_pad_id(const vp_tokenizer *t)
{
    if (t->clip) return vp__clip_pad(t->clip);
    if (t->siglip) return vp__siglip_pad(t->siglip);
    return -1;
}

int64_t vp_tokenizer_vocab_size(const vp_tokenizer *t)
{
    if (t->clip) return vp__clip_vocab_size(t->clip);
    if (t->siglip) return vp__siglip_vocab_size(t->siglip);
    return 0;
}

static int vp_tokenizer_encode__impl(vp_tokenizer *t, const char *const *texts, const size_t *lens, size_t n, int64_t *ids,
                        int64_t *mask, int *truncated)
{
    if (!t || (!t->clip && !t->siglip)) return t ? set_err(t, VP_ERR_ARG, "the tokenizer did not open") : VP_ERR_ARG;
    if (n && (!texts || !ids)) return set_err(t, VP_ERR_ARG, "no texts or no output given");
    t->errmsg[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) return set_err(t, VP_ERR_ARG, "text %zu is NULL", i);
        size_t len = lens ? lens[i] : strlen(texts[i]);
        if (len > VP_TEXT_MAX_BYTES)
            return set_err(t, VP_ERR_LIMIT, "text %zu: %zu bytes, more than the %u MiB limit", i, len,
                           VP_TEXT_MAX_BYTES >> 20);
        size_t bad = vp__utf8_check((const uint8_t *)texts[i], len, false);
        if (bad < len)
            return set_err(t, VP_ERR_ARG, "text %zu: not valid UTF-8 (byte %zu); texts must be UTF-8 as a Python "
                           "str would be", i, bad);
    }
    const size_t L = (size_t)t->length;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(texts[i]);
        int64_t *row = ids + i * L;
        char err[512] = "";
        int rc;
        size_t k = 0, content;
        t->tmp.n = 0;
        if (t->clip) {
            /* <|startoftext|> text[:L-2] <|endoftext|> (RobertaProcessing) */
            rc = vp__clip_encode(t->clip, texts[i], len, L - 2, &t->tmp, err, sizeof err);
            if (rc) return set_err(t, rc, "text %zu: %s", i, err);
            content = t->tmp.n > L - 2 ? L - 2 : t->tmp.n;
            if (truncated) truncated[i] = t->tmp.n > L - 2;
            row[k++] = vp__clip_bos(t->clip);
            if (content) memcpy(row + k, t->tmp.v, content * sizeof *row);
            k += content;
            row[k++] = vp__clip_eos(t->clip);
        } else {
            /* text[:L-1], then </s> unless the text ends with it
             * (build_inputs_with_special_tokens / _add_eos_if_not_present) */
            rc = vp__siglip_encode(t->siglip, texts[i], len, &t->tmp, err, sizeof err);
            if (rc) return set_err(t, rc, "text %zu: %s", i, err);
            content = t->tmp.n > L - 1 ? L - 1 : t->tmp.n;
            if (truncated) truncated[i] = t->tmp.n > L - 1;
            if (content) memcpy(row, t->tmp.v, content * sizeof *row);
            k = content;
            int64_t eos = vp__siglip_eos(t->siglip);
            if (!k || row[k - 1] != eos) row[k++] = eos;
        }
        int64_t pad = vp_tokenizer_pad_id(t);
        for (size_t j = 0; j < L; j++) {
            if (j >= k) row[j] = pad;
            if (mask) mask[i * L + j] = j < k;
        }
    }
    return VP_OK;
}

int vp_tokenizer_encode(vp_tokenizer *t, const char *const *texts, const size_t *lens, size_t n, int64_t *ids,
                        int64_t *mask, int *truncated)
{
    VP__WITH_ALLOC(t ? &t->alloc : vp__alloc_current(), int, vp_tokenizer_encode__impl(t, texts, lens, n, ids, mask, truncated));
}
