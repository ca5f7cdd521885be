/*
 * SiglipTokenizer (transformers 5.x, models/siglip/tokenization_siglip.py;
 * the class AutoTokenizer picks for SigLIP) around the SentencePiece model,
 * which libsentencepiece runs (normalizer with its precompiled character
 * map, unigram segmentation, byte fallback, unknown pieces):
 *
 *  1. tokenize(): "▁" + text with every "▁" made a space;
 *  2. PreTrainedTokenizer.tokenize(): the added tokens (</s>, <unk>, the pad
 *     token, additional special tokens, tokenizer_config.json's
 *     added_tokens_decoder) cut out leftmost-longest (Trie.split), their
 *     lstrip / rstrip taking the whitespace beside them (str.rstrip /
 *     lstrip);
 *  3. every other piece through _tokenize(): canonicalize_text (lower case
 *     as str.lower, ASCII punctuation removed, whitespace runs to one space,
 *     stripped), then the model encodes "<unk>" + text and the pieces of
 *     "<unk>" are dropped;
 *  4. a leading "▁" piece before a special token is dropped; pieces become
 *     ids (added tokens first, then PieceToId).
 * tokenizer.c then truncates to L-1 and appends </s> unless the ids end
 * with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <stdarg.h>

#include "vitport/vitport.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "text/text.h"
#include "text/tokenize.h"

#define UNDERLINE "\xe2\x96\x81"     /* U+2581, SentencePiece's space */

struct vp_siglip {
    vp_spm *sp;
    int lower;
    vp_added *added;
    size_t nadded;
    char **special;                  /* all_special_tokens */
    size_t nspecial;
    char *unk;                       /* the unk token's text */
    long unk_pieces;                 /* len(sp.encode(unk)) */
    int64_t eos, pad, vocab_size;
    vp_cps a, b;
    vp_buf buf, text;
};

void vp__siglip_free(vp_siglip *s)
{
    if (!s) return;
    vp__spm_free(s->sp);
    for (size_t i = 0; i < s->nadded; i++) vp__free(s->added[i].content);
    vp__free(s->added);
    for (size_t i = 0; i < s->nspecial; i++) vp__free(s->special[i]);
    vp__free(s->special);
    vp__free(s->unk);
    vp__cps_free(&s->a);
    vp__cps_free(&s->b);
    vp__buf_free(&s->buf);
    vp__buf_free(&s->text);
    vp__free(s);
}

int64_t vp__siglip_eos(const vp_siglip *s) { return s->eos; }
int64_t vp__siglip_pad(const vp_siglip *s) { return s->pad; }
int64_t vp__siglip_vocab_size(const vp_siglip *s) { return s->vocab_size; }

static const vp_added *find_added(const vp_siglip *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->nadded; i++)
        if (s->added[i].len == n && !memcmp(s->added[i].content, p, n)) return &s->added[i];
    return NULL;
}

static int is_special(const vp_siglip *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->nspecial; i++)
        if (strlen(s->special[i]) == n && !memcmp(s->special[i], p, n)) return 1;
    return 0;
}

/* Add an added token (if its text is new): its id is given, or the piece's,
 * or the next free one. */
static int add_token(vp_siglip *s, const char *content, int64_t id, int lstrip, int rstrip, int special)
{
    size_t n = strlen(content);
    if (!n || find_added(s, content, n)) return 0;
    vp_added *a = vp__realloc(s->added, (s->nadded + 1) * sizeof *a);
    if (!a) return -1;
    s->added = a;
    vp_added *t = &a[s->nadded];
    memset(t, 0, sizeof *t);
    if (!(t->content = vp__strdup(content))) return -1;
    t->len = n;
    if (id < 0) id = vp__spm_exact_id(s->sp, content, n);
    if (id < 0) id = s->vocab_size;
    t->id = id;
    t->lstrip = lstrip;
    t->rstrip = rstrip;
    t->special = special;
    if (id >= s->vocab_size) s->vocab_size = id + 1;
    s->nadded++;
    return 0;
}

static int add_special(vp_siglip *s, const char *text)
{
    if (is_special(s, text, strlen(text))) return 0;
    char **sp = vp__realloc(s->special, (s->nspecial + 1) * sizeof *sp);
    if (!sp) return -1;
    s->special = sp;
    if (!(sp[s->nspecial] = vp__strdup(text))) return -1;
    s->nspecial++;
    return 0;
}

static int jbool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A special token of the config: a string (SiglipTokenizer makes it an
 * AddedToken with lstrip and rstrip) or an AddedToken object. */
static int config_token(vp_siglip *s, const cJSON *cfg, const cJSON *stmap, const char *key, const char *dflt,
                        const char **text)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) v = cJSON_GetObjectItemCaseSensitive(stmap, key);
    int strip = 1;
    *text = dflt;
    if (cJSON_IsString(v)) {
        *text = v->valuestring;
    } else if (cJSON_IsObject(v) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "content"))) {
        *text = cJSON_GetObjectItemCaseSensitive(v, "content")->valuestring;
        if (add_token(s, *text, -1, jbool(v, "lstrip", 0), jbool(v, "rstrip", 0), 1)) return -1;
    }
    if (add_token(s, *text, -1, strip, strip, 1) || add_special(s, *text)) return -1;
    return 0;
}

int vp__siglip_open(vp_siglip **out, const char *model, const cJSON *cfg, const cJSON *stmap, char *err, size_t errlen)
{
    *out = NULL;
    size_t n;
    int code = VP_OK;
    char *data = vp_text_read(model, &n, &code, err, errlen);
    if (!data) return code;
    vp_siglip *s = vp__calloc(1, sizeof *s);
    if (!s) { vp__free(data); return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory"); }
    char why[512];
    int rc = 0;
    if (vp_spm_check((const uint8_t *)data, n, why, sizeof why) ||
        vp__spm_load(&s->sp, data, n, why, sizeof why))
        rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: not a SentencePiece model: %s", model, why);
    vp__free(data);
    if (rc) { vp__siglip_free(s); return rc; }
    s->vocab_size = vp__spm_size(s->sp);
    s->lower = jbool(cfg, "do_lower_case", 1);
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(cfg, "sp_model_kwargs");
    if (!jbool(cfg, "legacy", 1))
        rc = vp__errf(err, errlen, VP_ERR_UNSUPPORTED, "tokenizer_config.json: \"legacy\": false (the model without its "
                  "dummy prefix) is not supported");
    else if (kw && !(cJSON_IsObject(kw) && !kw->child))
        rc = vp__errf(err, errlen, VP_ERR_UNSUPPORTED, "tokenizer_config.json: sp_model_kwargs (sampling) are not "
                  "supported");
    /* added_tokens_decoder first: its ids and flags win */
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    for (const cJSON *a = cJSON_IsObject(dec) ? dec->child : NULL; a && !rc; a = a->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        char *end;
        long long id = strtoll(a->string, &end, 10);
        if (!cJSON_IsString(content) || *end || id < 0 || id > (1 << 30))
            rc = vp__errf(err, errlen, VP_ERR_FORMAT, "tokenizer_config.json: added token \"%.50s\" without content or id",
                      a->string);
        else if (add_token(s, content->valuestring, id, jbool(a, "lstrip", 0), jbool(a, "rstrip", 0),
                           jbool(a, "special", 1)))
            rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    }
    const char *eos = NULL, *unk = NULL, *pad = NULL;
    if (!rc && (config_token(s, cfg, stmap, "eos_token", "</s>", &eos) ||
                config_token(s, cfg, stmap, "unk_token", "<unk>", &unk) ||
                config_token(s, cfg, stmap, "pad_token", "</s>", &pad)))
        rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    /* transformers 4 saves additional_special_tokens, 5 extra_special_tokens */
    const cJSON *extra4 = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    const cJSON *extra5 = cJSON_GetObjectItemCaseSensitive(cfg, "extra_special_tokens");
    const cJSON *extra = cJSON_IsArray(extra4) && extra4->child ? extra4 : extra5;
    for (const cJSON *e = cJSON_IsArray(extra) ? extra->child : NULL; e && !rc; e = e->next) {
        const char *t = cJSON_IsString(e) ? e->valuestring : NULL;
        int strip = 0;
        if (!t && cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "content"))) {
            t = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
            strip = -1;
        }
        if (!t) continue;
        if (add_token(s, t, -1, strip < 0 ? jbool(e, "lstrip", 0) : 0, strip < 0 ? jbool(e, "rstrip", 0) : 0, 1) ||
            add_special(s, t))
            rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        s->eos = find_added(s, eos, strlen(eos))->id;
        s->pad = find_added(s, pad, strlen(pad))->id;
        if (!(s->unk = vp__strdup(unk))) rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        s->unk_pieces = vp__spm_encode(s->sp, s->unk, strlen(s->unk), why, sizeof why);
        if (s->unk_pieces < 0) rc = vp__errf(err, errlen, VP_ERR_FORMAT, "%s: %s", model, why);
    }
    if (rc) { vp__siglip_free(s); return rc; }
    *out = s;
    return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

static int is_ascii_punct(int32_t c)
{
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/* What tokenize() must know of the first two tokens: is the first "▁",
 * is the second a special token's text. */
typedef struct head { int underline0, special1; } head;

static void push_token(const vp_siglip *s, vp_ids *out, int64_t id, const char *p, size_t n, head *h)
{
    if (out->n == 0) h->underline0 = n == 3 && !memcmp(p, UNDERLINE, 3);
    if (out->n == 1) h->special1 = is_special(s, p, n);
    vp__ids_push(out, id);
}

/* _tokenize(): canonicalize_text, then the model on "<unk>" + text. */
static int tokenize_piece(vp_siglip *s, const char *p, size_t n, vp_ids *out, head *h, char *err, size_t errlen)
{
    s->a.n = 0;
    vp__utf8_to_cps((const uint8_t *)p, n, &s->a);
    const vp_cps *src = &s->a;
    if (s->lower) {
        vp__lower(s->a.v, s->a.n, 1, &s->b);
        src = &s->b;
    }
    s->buf.n = 0;
    vp__buf_puts(&s->buf, s->unk);
    size_t start = s->buf.n;
    int pending_space = 0;
    vp_buf *b = &s->buf;
    for (size_t i = 0; i < src->n; i++) {
        int32_t c = src->v[i];
        if (is_ascii_punct(c)) continue;
        if (vp__is_space_py(c)) { pending_space = 1; continue; }
        if (pending_space && b->n > start) vp__buf_add(b, " ", 1);
        pending_space = 0;
        vp__cps_to_utf8(&c, 1, b);
    }
    if (s->a.oom || s->b.oom || b->oom) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    char why[512];
    long np = vp__spm_encode(s->sp, b->p, b->n, why, sizeof why);
    if (np < 0) return vp__errf(err, errlen, VP_ERR_FORMAT, "%s", why);
    for (long i = np >= s->unk_pieces ? s->unk_pieces : 0; i < np; i++) {
        size_t len;
        const char *piece = vp__spm_piece(s->sp, (size_t)i, &len);
        const vp_added *a = find_added(s, piece, len);
        push_token(s, out, a ? a->id : vp__spm_piece_id(s->sp, piece, len), piece, len, h);
    }
    return 0;
}

typedef struct seg { size_t b, e; } seg;

int vp__siglip_encode(vp_siglip *s, const char *text, size_t n, vp_ids *out, char *err, size_t errlen)
{
    /* "▁" + text.replace("▁", " ") */
    vp_buf *t = &s->text;
    t->n = 0;
    vp__buf_puts(t, UNDERLINE);
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && !memcmp(text + i, UNDERLINE, 3)) { vp__buf_add(t, " ", 1); i += 3; continue; }
        size_t j = i + 1;
        while (j < n && ((uint8_t)text[j] & 0xc0) == 0x80) j++;
        vp__buf_add(t, text + i, j - i);
        i = j;
    }
    if (t->oom) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    const char *T = t->p;
    size_t N = t->n;

    /* Trie.split: leftmost, longest */
    seg *segs = NULL;
    size_t nseg = 0, cap = 0, at = 0;
    int rc = 0;
    for (size_t i = 0; i <= N && !rc;) {
        const vp_added *best = NULL;
        if (i < N)
            for (size_t k = 0; k < s->nadded; k++) {
                const vp_added *a = &s->added[k];
                if (a->len <= N - i && !memcmp(T + i, a->content, a->len) && (!best || a->len > best->len)) best = a;
            }
        if (!best && i < N) { i++; continue; }
        for (int part = 0; part < 2; part++) {
            size_t b = part ? i : at, e = part ? (best ? i + best->len : i) : i;
            if (e == b) continue;
            if (nseg == cap) {
                cap = cap ? cap * 2 : 16;
                seg *g = vp__realloc(segs, cap * sizeof *g);
                if (!g) { rc = vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory"); break; }
                segs = g;
            }
            segs[nseg++] = (seg){ b, e };
        }
        if (!best) break;
        i += best->len;
        at = i;
    }
    /* lstrip / rstrip, on the pieces as they stand at each step */
    for (size_t i = 0; i < nseg && !rc; i++) {
        const vp_added *a = find_added(s, T + segs[i].b, segs[i].e - segs[i].b);
        if (!a) continue;
        if (a->rstrip && i + 1 < nseg) {
            seg *r = &segs[i + 1];
            size_t k;
            while (r->e > r->b && (k = vp__space_at(T + r->b, r->e - r->b, 0, 1))) r->b += k;
        }
        if (a->lstrip && i > 0) {
            seg *l = &segs[i - 1];
            size_t k;
            while (l->e > l->b && (k = vp__space_at(T + l->b, l->e - l->b, 1, 1))) l->e -= k;
        }
    }
    /* the pieces to ids; a first "▁" before a special token goes */
    head h = { 0, 0 };
    for (size_t i = 0; i < nseg && !rc; i++) {
        size_t b = segs[i].b, len = segs[i].e - b;
        if (!len) continue;
        const vp_added *a = find_added(s, T + b, len);
        if (a || is_special(s, T + b, len))
            push_token(s, out, a ? a->id : vp__spm_piece_id(s->sp, T + b, len), T + b, len, &h);
        else
            rc = tokenize_piece(s, T + b, len, out, &h, err, errlen);
    }
    vp__free(segs);
    if (rc) return rc;
    if (out->oom) return vp__errf(err, errlen, VP_ERR_NOMEM, "out of memory");
    if (out->n > 1 && h.underline0 && h.special1) {
        memmove(out->v, out->v + 1, (out->n - 1) * sizeof *out->v);
        out->n--;
    }
    return 0;
}
