/*
 * CLIP's byte-level BPE, as transformers' CLIPTokenizer builds it on the
 * `tokenizers` library (models/clip/tokenization_clip.py):
 *
 *  1. added tokens (<|startoftext|>, <|endoftext|>, ...) are cut out of the
 *     raw text first when they are not "normalized", then out of the
 *     normalized pieces when they are (AddedVocabulary::extract_and_normalize),
 *     leftmost-longest;
 *  2. normalizer: NFC, Replace(\s+ -> " "), Lowercase (per character, as
 *     Rust's char::to_lowercase);
 *  3. pre-tokenizer: Split(CLIP's pattern, Removed, invert) — the matches are
 *     the words, what lies between them (whitespace) is dropped — then
 *     ByteLevel, whose own GPT-2 split cuts a CLIP word further only when it
 *     is one of the pattern's literal <|startoftext|> / <|endoftext|> (a
 *     word is otherwise one letter run, one digit, one run of other
 *     characters or a contraction, which GPT-2's pattern keeps whole), so
 *     that cut and the byte-to-unicode mapping are done here;
 *  4. BPE with end_of_word_suffix "</w>" on the word's last byte, the
 *     merges applied lowest rank first, leftmost first among equal ranks
 *     (Word::merge_all), unknown symbols as the unk token (not fused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "text/text.h"
#include "text/tokenize.h"

#define EOW "</w>"

/* ---- string -> id ---------------------------------------------------------- */
typedef struct strmap {
    uint32_t *slot;                  /* entry index + 1, 0 = empty */
    size_t cap;
    struct { uint32_t off, len; int64_t id; } *e;
    size_t n, ecap;
    vp_buf text;                     /* the strings, back to back */
} strmap;

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static int64_t strmap_get(const strmap *m, const char *s, size_t n)
{
    if (!m->cap) return -1;
    size_t i = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->slot[i]) {
        size_t k = m->slot[i] - 1;
        if (m->e[k].len == n && !memcmp(m->text.p + m->e[k].off, s, n)) return m->e[k].id;
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

/* Set s -> id (a later duplicate replaces an earlier one, as a JSON object
 * read into a map does). 0, or -1 out of memory / too large. */
static int strmap_put(strmap *m, const char *s, size_t n, int64_t id)
{
    if (m->n + 1 > m->cap / 2) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uint32_t *slot = vp__calloc(cap, sizeof *slot);
        if (!slot) return -1;
        for (size_t k = 0; k < m->n; k++) {
            size_t i = (size_t)hash_bytes(m->text.p + m->e[k].off, m->e[k].len) & (cap - 1);
            while (slot[i]) i = (i + 1) & (cap - 1);
            slot[i] = (uint32_t)(k + 1);
        }
        vp__free(m->slot);
        m->slot = slot;
        m->cap = cap;
    }
    size_t i = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->slot[i]) {
        size_t k = m->slot[i] - 1;
        if (m->e[k].len == n && !memcmp(m->text.p + m->e[k].off, s, n)) { m->e[k].id = id; return 0; }
        i = (i + 1) & (m->cap - 1);
    }
    if (m->n == m->ecap) {
        size_t ecap = m->ecap ? m->ecap * 2 : 1024;
        void *e = vp__realloc(m->e, ecap * sizeof *m->e);
        if (!e) return -1;
        m->e = e;
        m->ecap = ecap;
    }
    if (m->text.n > UINT32_MAX - n || m->n >= UINT32_MAX - 1) return -1;
    size_t off = m->text.n;
    vp__buf_add(&m->text, n ? s : "", n);
    if (m->text.oom) return -1;
    m->e[m->n].off = (uint32_t)off;
    m->e[m->n].len = (uint32_t)n;
    m->e[m->n].id = id;
    m->slot[i] = (uint32_t)(++m->n);
    return 0;
}

static void strmap_free(strmap *m)
{
    vp__free(m->slot);
    vp__free(m->e);
    vp__buf_free(&m->text);
    memset(m, 0, sizeof *m);
}

/* ---- (id, id) -> (rank, new id) --------------------------------------------- */
typedef struct pairmap {
    struct pairent { uint64_t key; uint32_t rank; int64_t id; int used; } *e;
    size_t n, cap;
} pairmap;

static struct pairent *pair_find(const pairmap *m, uint64_t key)
{
    if (!m->cap) return NULL;
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (m->cap - 1);
    while (m->e[i].used) {
        if (m->e[i].key == key) return &m->e[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

static int pair_put(pairmap *m, uint64_t key, uint32_t rank, int64_t id)
{
    if (m->n + 1 > m->cap / 2) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        struct pairent *e = vp__calloc(cap, sizeof *e);
        if (!e) return -1;
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->e[k].used) continue;
            size_t i = (size_t)(m->e[k].key * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
            while (e[i].used) i = (i + 1) & (cap - 1);
            e[i] = m->e[k];
        }
        vp__free(m->e);
        m->e = e;
        m->cap = cap;
    }
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (m->cap - 1);
    while (m->e[i].used && m->e[i].key != key) i = (i + 1) & (m->cap - 1);
    if (!m->e[i].used) m->n++;
    /* a pair listed twice keeps its last rank, as the merges HashMap does */
    m->e[i].key = key;
    m->e[i].rank = rank;
    m->e[i].id = id;
    m->e[i].used = 1;
    return 0;
}

/* ---- the tokenizer ----------------------------------------------------------- */
struct vp_clip {
    strmap vocab;
    pairmap merges;
    int64_t byte_id[256], byte_eow_id[256];   /* the symbol of each byte, alone and word-final */
    int64_t unk, bos, eos, pad, vocab_size;
    vp_added *added;
    size_t nadded;
    uint8_t first_raw[256], first_norm[256];  /* first bytes of the added tokens of each kind */
    pcre2_code *re;
    pcre2_match_data *md;
    /* scratch */
    vp_cps cps, low;
    vp_buf norm;
    int64_t *sym;
    int32_t *prev, *next;
    size_t symcap;
    struct heapent { uint32_t rank; uint32_t pos; int64_t id; } *heap;
    size_t heapcap;
};

/* CLIP's pattern with Oniguruma's \s written out (PCRE2's \s also takes
 * U+180E): tab..CR, NEL and the Z categories. */
static const char clip_pattern[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "[^\\t\\n\\x0b\\f\\r\\x{85}\\p{Z}\\p{L}\\p{N}]+";

void vp__clip_free(vp_clip *c)
{
    if (!c) return;
    strmap_free(&c->vocab);
    vp__free(c->merges.e);
    for (size_t i = 0; i < c->nadded; i++) vp__free(c->added[i].content);
    vp__free(c->added);
    if (c->md) pcre2_match_data_free(c->md);
    if (c->re) pcre2_code_free(c->re);
    vp__cps_free(&c->cps);
    vp__cps_free(&c->low);
    vp__buf_free(&c->norm);
    vp__free(c->sym);
    vp__free(c->prev);
    vp__free(c->next);
    vp__free(c->heap);
    vp__free(c);
}

int64_t vp__clip_bos(const vp_clip *c) { return c->bos; }
int64_t vp__clip_eos(const vp_clip *c) { return c->eos; }
int64_t vp__clip_pad(const vp_clip *c) { return c->pad; }
int64_t vp__clip_vocab_size(const vp_clip *c) { return c->vocab_size; }

static int add_vocab(vp_clip *c, const char *s, size_t n, int64_t id)
{
    if (strmap_put(&c->vocab, s, n, id)) return -1;
    if (id >= c->vocab_size) c->vocab_size = id + 1;
    return 0;
}

/* Record merge number `rank` "a b"; the merged token must be in the
 * vocabulary, as tokenizers' BPE builder requires. */
static int add_merge(vp_clip *c, const char *a, size_t na, const char *b, size_t nb, size_t rank, const char *file,
                     char *err, size_t errlen)
{
    int64_t ia = strmap_get(&c->vocab, a, na), ib = strmap_get(&c->vocab, b, nb);
    char joined[1024];
    if (na + nb >= sizeof joined)
        return vp__errf(err, errlen, VP_ERR_LIMIT, "%s: merge %zu is longer than %zu bytes", file, rank + 1,
                    sizeof joined - 1);
    memcpy(joined, a, na);
    memcpy(joined + na, b, nb);
    int64_t ij = strmap_get(&c->vocab, joined, na + nb);
    if (ia < 0 || ib < 0 || ij < 0)
        return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: merge %zu (\"%.*s %.*s\") joins or makes a token that is not "
                    "in the vocabulary", file, rank + 1, (int)(na > 100 ? 100 : na), a, (int)(nb > 100 ? 100 : nb), b);
    if (ia > UINT32_MAX || ib > UINT32_MAX || rank >= UINT32_MAX)
        return vp__errf(err, errlen, VP_ERR_LIMIT, "%s: ids beyond 2^32", file);
    if (pair_put(&c->merges, (uint64_t)ia << 32 | (uint64_t)ib, (uint32_t)rank, ij))
        return vp__errf(err, errlen, VP_ERR_NOMEM, "%s: out of memory", file);
    return 0;
}

/* One "a b" line of merges.txt / tokenizer.json. */
static int merge_line(vp_clip *c, const char *s, size_t n, size_t rank, const char *file, char *err, size_t errlen)
{
    const char *sp = memchr(s, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1) || sp == s || sp + 1 == s + n)
        return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: merge %zu is not two tokens separated by one space", file,
                    rank + 1);
    return add_merge(c, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, rank, file, err, errlen);
}

static const char *tok_string(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static int json_bool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int add_added(vp_clip *c, const char *content, int64_t id, const cJSON *flags, int special)
{
    for (size_t i = 0; i < c->nadded; i++)
        if (!strcmp(c->added[i].content, content)) return 0;
    vp_added *a = vp__realloc(c->added, (c->nadded + 1) * sizeof *a);
    if (!a) return -1;
    c->added = a;
    vp_added *t = &a[c->nadded];
    memset(t, 0, sizeof *t);
    t->content = vp__strdup(content);
    if (!t->content) return -1;
    t->len = strlen(content);
    /* a token of the vocabulary keeps its id; a new one comes after it */
    int64_t known = strmap_get(&c->vocab, content, t->len);
    t->id = known >= 0 ? known : id >= 0 ? id : c->vocab_size;
    t->special = flags ? json_bool(flags, "special", special) : special;
    t->normalized = flags ? json_bool(flags, "normalized", !t->special) : !t->special;
    t->lstrip = flags ? json_bool(flags, "lstrip", 0) : 0;
    t->rstrip = flags ? json_bool(flags, "rstrip", 0) : 0;
    c->nadded++;
    if (known < 0 && add_vocab(c, content, t->len, t->id)) return -1;
    return 0;
}

/* The special tokens: tokenizer_config.json, then special_tokens_map.json,
 * then CLIPTokenizer's defaults. */
static const char *special(const cJSON *cfg, const cJSON *stmap, const char *key, const char *dflt)
{
    const char *s = tok_string(cJSON_GetObjectItemCaseSensitive(cfg, key));
    if (!s) s = tok_string(cJSON_GetObjectItemCaseSensitive(stmap, key));
    return s ? s : dflt;
}

static cJSON *parse_json_file(const char *path, char *err, size_t errlen)
{
    size_t n;
    int code = VP_OK;
    char *text = vp_text_read(path, &n, &code, err, errlen);
    if (!text) return NULL;
    if (strlen(text) != n) {
        vp__free(text);
        vp__errf(err, errlen, 0, "%s: a NUL byte in a JSON file", path);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    vp__free(text);
    if (!j) vp__errf(err, errlen, 0, "%s: not valid JSON", path);
    return j;
}

static int load_vocab_json(vp_clip *c, const char *path, const cJSON *vocab, char *err, size_t errlen)
{
    if (!cJSON_IsObject(vocab)) return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: the vocabulary is not a JSON object", path);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (d < 0 || d > (1 << 30) || d != (double)(int64_t)d)
            return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: the id of \"%.100s\" is not an integer in 0..2^30", path,
                        e->string);
        if (vp__utf8_check((const uint8_t *)e->string, strlen(e->string), false) != strlen(e->string))
            return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: a vocabulary entry is not valid UTF-8", path);
        if (add_vocab(c, e->string, strlen(e->string), (int64_t)d))
            return vp__errf(err, errlen, VP_ERR_NOMEM, "%s: out of memory", path);
    }
    return 0;
}

static int load_merges_txt(vp_clip *c, const char *path, char *err, size_t errlen)
{
    size_t n;
    int code = VP_OK;
    char *text = vp_text_read(path, &n, &code, err, errlen);
    if (!text) return code;
    int rc = 0;
    if (vp__utf8_check((const uint8_t *)text, n, false) != n) {
        rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: not valid UTF-8", path);
        goto done;
    }
    /* tokenizers' BPE::read_file: lines ("\n" or "\r\n"), those starting
     * with "#version" skipped, every other one exactly two tokens. */
    size_t rank = 0, lineno = 0;
    for (char *q = text, *end = text + n; q < end && !rc; lineno++) {
        char *nl = memchr(q, '\n', (size_t)(end - q));
        char *le = nl ? nl : end;
        const char *a = q;
        q = nl ? nl + 1 : end;
        if (nl && le > a && le[-1] == '\r') le--;
        if ((size_t)(le - a) >= 8 && !strncmp(a, "#version", 8)) continue;
        rc = merge_line(c, a, (size_t)(le - a), rank++, path, err, errlen);
    }
done:
    vp__free(text);
    return rc;
}

/* tokenizer.json: CLIPTokenizer takes the vocabulary and the merges from
 * it and builds its own pipeline around them (TokenizersBackend.
 * convert_to_native_format); the added tokens are read as well. */
static int load_tokenizer_json(vp_clip *c, const char *path, char *err, size_t errlen)
{
    cJSON *j = parse_json_file(path, err, errlen);
    if (!j) return VP_ERR_FORMAT;
    int rc = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE")) {
        rc = vp__errf(err, errlen, VP_ERR_UNSUPPORTED, "%s: not a BPE tokenizer, as CLIP's is", path);
        goto done;
    }
    if ((rc = load_vocab_json(c, path, cJSON_GetObjectItemCaseSensitive(model, "vocab"), err, errlen))) goto done;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) {
        rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: model.merges is not a list", path);
        goto done;
    }
    size_t rank = 0;
    for (const cJSON *m = merges->child; m && !rc; m = m->next, rank++) {
        if (cJSON_IsString(m)) {
            rc = merge_line(c, m->valuestring, strlen(m->valuestring), rank, path, err, errlen);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            rc = add_merge(c, a, strlen(a), b, strlen(b), rank, path, err, errlen);
        } else {
            rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", path, rank + 1);
        }
    }
    if (rc) goto done;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) c->unk = strmap_get(&c->vocab, unk->valuestring, strlen(unk->valuestring));
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    for (const cJSON *a = cJSON_IsArray(added) ? added->child : NULL; a && !rc; a = a->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(content) || !content->valuestring[0] || !cJSON_IsNumber(id) || id->valuedouble < 0 ||
            id->valuedouble > (1 << 30)) {
            rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: an added token without content or id", path);
        } else if (add_added(c, content->valuestring, (int64_t)id->valuedouble, a, 0)) {
            rc = vp__errf(err, errlen, VP_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(j, "post_processor");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(post, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(post, "sep");
    if (!rc && cJSON_IsArray(cls) && cJSON_IsArray(sep) && cJSON_IsString(cls->child) && cJSON_IsString(sep->child)) {
        c->bos = strmap_get(&c->vocab, cls->child->valuestring, strlen(cls->child->valuestring));
        c->eos = strmap_get(&c->vocab, sep->child->valuestring, strlen(sep->child->valuestring));
    }
done:
    cJSON_Delete(j);
    return rc;
}

static int load_openai(vp_clip *c, const char *path, char *err, size_t errlen)
{
    vp_bpe_vocab v;
    if (vp_bpe_vocab_read(&v, path, err, errlen)) { vp_bpe_vocab_free(&v); return VP_ERR_FORMAT; }
    int rc = 0;
    for (size_t i = 0; i < v.ntok && !rc; i++)
        if (add_vocab(c, v.tok[i], strlen(v.tok[i]), (int64_t)i)) rc = vp__errf(err, errlen, VP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < v.nmerges && !rc; i++)
        rc = add_merge(c, v.left[i], strlen(v.left[i]), v.right[i], strlen(v.right[i]), i, path, err, errlen);
    vp_bpe_vocab_free(&v);
    return rc;
}

int vp__clip_open(vp_clip **out, const char *vocab, const char *merges, const char *tokjson, const char *bpe,
                  const cJSON *cfg, const cJSON *stmap, char *err, size_t errlen)
{
    *out = NULL;
    vp_clip *c = vp__calloc(1, sizeof *c);
    if (!c) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    c->unk = c->bos = c->eos = c->pad = -1;
    int rc = 0;
    if (tokjson) {
        rc = load_tokenizer_json(c, tokjson, err, errlen);
    } else if (bpe) {
        rc = load_openai(c, bpe, err, errlen);
    } else {
        cJSON *v = parse_json_file(vocab, err, errlen);
        rc = v ? load_vocab_json(c, vocab, v, err, errlen) : VP_ERR_FORMAT;
        cJSON_Delete(v);
        if (!rc) rc = load_merges_txt(c, merges, err, errlen);
    }
    const char *file = tokjson ? tokjson : bpe ? bpe : vocab;
    /* tokenizer_config.json's added tokens, then the special tokens */
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    for (const cJSON *a = cJSON_IsObject(dec) ? dec->child : NULL; a && !rc; a = a->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        char *end;
        long long id = strtoll(a->string, &end, 10);
        if (!cJSON_IsString(content) || !content->valuestring[0] || *end || id < 0 || id > (1 << 30))
            rc = vp__errf(err, errlen, VP_ERR_FORMAT, "tokenizer_config.json: added token \"%.50s\" without content or id",
                      a->string);
        else if (add_added(c, content->valuestring, id, a, 1))
            rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    }
    const char *bos = special(cfg, stmap, "bos_token", "<|startoftext|>");
    const char *eos = special(cfg, stmap, "eos_token", "<|endoftext|>");
    const char *unk = special(cfg, stmap, "unk_token", "<|endoftext|>");
    const char *pad = special(cfg, stmap, "pad_token", "<|endoftext|>");
    const char *sp[4] = { unk, bos, eos, pad };
    for (int i = 0; i < 4 && !rc; i++)
        if (add_added(c, sp[i], -1, NULL, 1)) rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    if (rc) { vp__clip_free(c); return rc; }
    if (c->unk < 0 || !tokjson) c->unk = strmap_get(&c->vocab, unk, strlen(unk));
    if (c->bos < 0) c->bos = strmap_get(&c->vocab, bos, strlen(bos));
    if (c->eos < 0) c->eos = strmap_get(&c->vocab, eos, strlen(eos));
    c->pad = strmap_get(&c->vocab, pad, strlen(pad));
    for (size_t i = 0; i < c->nadded; i++) {
        (c->added[i].normalized ? c->first_norm : c->first_raw)[(uint8_t)c->added[i].content[0]] = 1;
    }

    char sym[256][3];
    uint8_t byte_of[256];
    vp_text_byte_symbols(sym, byte_of);
    for (int i = 0; i < 256; i++) {
        char s[8];
        size_t k = strlen(sym[i]);
        memcpy(s, sym[i], k);
        memcpy(s + k, EOW, 4);
        c->byte_id[byte_of[i]] = strmap_get(&c->vocab, s, k);
        c->byte_eow_id[byte_of[i]] = strmap_get(&c->vocab, s, k + 4);
    }

    int ecode;
    PCRE2_SIZE eoff;
    c->re = pcre2_compile((PCRE2_SPTR)clip_pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &ecode,
                          &eoff, NULL);
    if (c->re) {
        (void)pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE);   /* interpreted when JIT is unavailable */
        c->md = pcre2_match_data_create_from_pattern(c->re, NULL);
    }
    if (!c->re || !c->md) {
        vp__clip_free(c);
        return vp__errf(err, errlen, VP_ERR_NOMEM, "cannot compile CLIP's split pattern with PCRE2");
    }
    if (c->bos < 0 || c->eos < 0 || c->pad < 0) {
        vp__clip_free(c);
        return vp__errf(err, errlen, VP_ERR_FORMAT, "%s: the special tokens (bos, eos, pad) are not in the vocabulary", file);
    }
    *out = c;
    return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

static int grow_scratch(vp_clip *c, size_t n)
{
    if (n <= c->symcap) return 0;
    size_t cap = c->symcap ? c->symcap : 64;
    while (cap < n) cap *= 2;
    int64_t *sym = vp__realloc(c->sym, cap * sizeof *sym);
    if (sym) c->sym = sym;
    int32_t *prev = vp__realloc(c->prev, cap * sizeof *prev);
    if (prev) c->prev = prev;
    int32_t *next = vp__realloc(c->next, cap * sizeof *next);
    if (next) c->next = next;
    struct heapent *heap = vp__realloc(c->heap, 2 * cap * sizeof *heap);
    if (heap) c->heap = heap;
    if (!sym || !prev || !next || !heap) return -1;
    c->symcap = cap;
    c->heapcap = 2 * cap;
    return 0;
}

static int heap_less(const struct heapent *a, const struct heapent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct heapent *h, size_t *n, struct heapent e)
{
    size_t i = (*n)++;
    while (i > 0 && heap_less(&e, &h[(i - 1) / 2])) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = e;
}

static struct heapent heap_pop(struct heapent *h, size_t *n)
{
    struct heapent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < *n && heap_less(&h[l], &last)) m = l;
        if (l + 1 < *n && heap_less(&h[l + 1], m == i ? &last : &h[l])) m = l + 1;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void push_pair(vp_clip *c, size_t *nh, int32_t pos)
{
    int32_t nx = c->next[pos];
    if (nx < 0) return;
    const struct pairent *p = pair_find(&c->merges, (uint64_t)c->sym[pos] << 32 | (uint64_t)c->sym[nx]);
    if (p) heap_push(c->heap, nh, (struct heapent){ p->rank, (uint32_t)pos, p->id });
}

/* BPE on one word (its bytes). */
static int bpe_word(vp_clip *c, const uint8_t *w, size_t n, vp_ids *out)
{
    if (n > INT32_MAX / 2 || grow_scratch(c, n)) return VP_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t id = i + 1 == n ? c->byte_eow_id[w[i]] : c->byte_id[w[i]];
        if (id < 0) id = c->unk;
        if (id < 0) continue;        /* no unk token: the symbol is dropped */
        c->sym[m] = id;
        c->prev[m] = (int32_t)m - 1;
        c->next[m] = (int32_t)m + 1;
        m++;
    }
    if (!m) return 0;
    c->next[m - 1] = -1;
    size_t nh = 0;
    for (size_t i = 0; i + 1 < m; i++) push_pair(c, &nh, (int32_t)i);
    /* sym[] of a symbol merged into its left neighbour is set to -1 */
    while (nh) {
        struct heapent top = heap_pop(c->heap, &nh);
        int32_t pos = (int32_t)top.pos, nx;
        if (c->sym[pos] < 0 || (nx = c->next[pos]) < 0) continue;
        const struct pairent *p = pair_find(&c->merges, (uint64_t)c->sym[pos] << 32 | (uint64_t)c->sym[nx]);
        if (!p || p->id != top.id) continue;          /* an expired entry */
        c->sym[pos] = top.id;
        c->sym[nx] = -1;
        c->next[pos] = c->next[nx];
        if (c->next[nx] >= 0) c->prev[c->next[nx]] = pos;
        if (c->prev[pos] >= 0) push_pair(c, &nh, c->prev[pos]);
        push_pair(c, &nh, pos);
    }
    for (int32_t i = 0; i >= 0; i = c->next[i]) vp__ids_push(out, c->sym[i]);
    return out->oom ? VP_ERR_NOMEM : 0;
}

/* The words of normalized text s (PCRE2 finds them; the rest is dropped). */
static int pretokenize(vp_clip *c, const char *s, size_t n, size_t enough, vp_ids *out)
{
    PCRE2_SIZE at = 0;
    while (at < n && out->n <= enough) {
        int r = pcre2_match(c->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) return VP_ERR_LIMIT;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        if (ov[1] <= ov[0]) return VP_ERR_FORMAT;    /* no alternative matches empty */
        const uint8_t *w = (const uint8_t *)s + ov[0];
        size_t wn = ov[1] - ov[0];
        int rc;
        if ((wn == 15 && !memcmp(w, "<|startoftext|>", 15)) || (wn == 13 && !memcmp(w, "<|endoftext|>", 13))) {
            /* the pattern's first two alternatives: ByteLevel's GPT-2 split
             * does cut these, into "<|", the letters, "|>" */
            if (!(rc = bpe_word(c, w, 2, out)) && !(rc = bpe_word(c, w + 2, wn - 4, out)))
                rc = bpe_word(c, w + wn - 2, 2, out);
        } else {
            rc = bpe_word(c, w, wn, out);
        }
        if (rc) return rc;
        at = ov[1];
    }
    return 0;
}

/* Leftmost-longest added token of one kind in s[from, n): its index, and
 * [*b, *e) with lstrip / rstrip whitespace taken in; -1 if none. */
static long find_added(const vp_clip *c, int normalized, const char *s, size_t from, size_t n, size_t *b, size_t *e)
{
    const uint8_t *first = normalized ? c->first_norm : c->first_raw;
    for (size_t i = from; i < n; i++) {
        if (!first[(uint8_t)s[i]]) continue;
        long best = -1;
        for (size_t k = 0; k < c->nadded; k++) {
            const vp_added *a = &c->added[k];
            if (a->normalized != normalized || a->len > n - i || memcmp(s + i, a->content, a->len)) continue;
            if (best < 0 || a->len > c->added[best].len) best = (long)k;
        }
        if (best < 0) continue;
        size_t lo = i, hi = i + c->added[best].len;
        size_t k;
        if (c->added[best].lstrip)
            while (lo > from && (k = vp__space_at(s + from, lo - from, 1, 0))) lo -= k;
        if (c->added[best].rstrip)
            while (hi < n && (k = vp__space_at(s + hi, n - hi, 0, 0))) hi += k;
        *b = lo;
        *e = hi;
        return best;
    }
    return -1;
}

/* NFC, whitespace runs to one space, lower case: into c->norm. */
static int normalize(vp_clip *c, const char *s, size_t n)
{
    if (vp__nfc((const uint8_t *)s, n, &c->cps)) return VP_ERR_NOMEM;
    size_t k = 0;
    int in_space = 0;
    for (size_t i = 0; i < c->cps.n; i++) {
        int ws = vp__is_space_onig(c->cps.v[i]);
        if (!ws || !in_space) c->cps.v[k++] = ws ? 0x20 : c->cps.v[i];
        in_space = ws;
    }
    c->cps.n = k;
    vp__lower(c->cps.v, c->cps.n, 0, &c->low);
    c->norm.n = 0;
    vp__cps_to_utf8(c->low.v, c->low.n, &c->norm);
    return c->cps.oom || c->low.oom || c->norm.oom ? VP_ERR_NOMEM : 0;
}

int vp__clip_encode(vp_clip *c, const char *s, size_t n, size_t enough, vp_ids *out, char *err, size_t errlen)
{
    int rc = 0;
    size_t at = 0;
    while (at <= n && out->n <= enough && !rc) {
        size_t b = n, e = n;
        long k = find_added(c, 0, s, at, n, &b, &e);
        if (b > at || k < 0) {
            /* the text before the token (or to the end): normalized, then the
             * normalized added tokens cut out of it */
            if ((rc = normalize(c, s + at, (k < 0 ? n : b) - at))) break;
            const char *t = c->norm.p ? c->norm.p : "";
            size_t tn = c->norm.n, tat = 0;
            /* c->norm is reused by nothing below: pretokenize reads it only */
            while (tat < tn && out->n <= enough && !rc) {
                size_t tb = tn, te = tn;
                long tk = find_added(c, 1, t, tat, tn, &tb, &te);
                if (tb > tat) rc = pretokenize(c, t + tat, (tk < 0 ? tn : tb) - tat, enough, out);
                if (tk >= 0) vp__ids_push(out, c->added[tk].id);
                tat = tk < 0 ? tn : te;
            }
        }
        if (k >= 0) vp__ids_push(out, c->added[k].id);
        if (k < 0) break;
        at = e;
        if (at == n) break;
    }
    if (!rc && out->oom) rc = VP_ERR_NOMEM;
    if (rc == VP_ERR_NOMEM) vp__errf(err, errlen, rc, "out of memory");
    else if (rc) vp__errf(err, errlen, rc, "PCRE2 could not match CLIP's split pattern");
    return rc;
}
