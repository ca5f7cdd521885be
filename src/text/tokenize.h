/*
 * Internal parts of the tokenizers (include/vitport/text.h is the API).
 *
 * tokenizer.c: the handle, finding the files, tokenizer_config.json,
 *   truncation and padding.
 * clip_bpe.c: CLIP's byte-level BPE (transformers' CLIPTokenizer on the
 *   `tokenizers` library).
 * siglip.c: SiglipTokenizer's steps around the SentencePiece model.
 * spm_shim.cc: the only C++: libsentencepiece behind a C interface.
 * unicode.c: code point helpers (UTF-8, the whitespace sets, lower case as
 *   Rust and Python do it, NFC through utf8proc).
 */
#ifndef VP_TOKENIZE_H
#define VP_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "vitport/text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- growable arrays ------------------------------------------------------ */
typedef struct vp_ids { int64_t *v; size_t n, cap; int oom; } vp_ids;
void vp__ids_push(vp_ids *a, int64_t id);
void vp__ids_free(vp_ids *a);

typedef struct vp_cps { int32_t *v; size_t n, cap; int oom; } vp_cps;   /* code points */
void vp__cps_push(vp_cps *a, int32_t c);
void vp__cps_free(vp_cps *a);

/* ---- unicode.c ------------------------------------------------------------ */
/* Decode valid UTF-8 (checked by vp_text_utf8_ok) into code points, appended. */
void vp__utf8_to_cps(const uint8_t *s, size_t n, vp_cps *out);
/* Encode code points as UTF-8 into b (a vp_buf). */
struct vp_buf;
void vp__cps_to_utf8(const int32_t *c, size_t n, struct vp_buf *b);
/* Oniguruma's \s (what the `tokenizers` library's regexes match) =
 * Rust's char::is_whitespace: the White_Space property. */
int vp__is_space_onig(int32_t c);
/* Python's str.isspace() (re's \s, str.strip()): White_Space and U+001C..U+001F. */
int vp__is_space_py(int32_t c);
/* The byte length of the whitespace character (Python's set when python,
 * else Oniguruma's) that starts (back = 0) or ends (back = 1) valid UTF-8
 * s[0, n), or 0 when that character is not whitespace. */
size_t vp__space_at(const char *s, size_t n, int back, int python);
/* out = the NFC of valid UTF-8 s (utf8proc). 0, or -1 out of memory. */
int vp__nfc(const uint8_t *s, size_t n, vp_cps *out);
/* Lower case, in place into out (cleared first). rust: as Rust's
 * char::to_lowercase per character (the `tokenizers` Lowercase normalizer);
 * python: as Python's str.lower() (also the Final_Sigma rule). */
void vp__lower(const int32_t *c, size_t n, int python, vp_cps *out);

/* ---- the back ends -------------------------------------------------------- */
/* An added token (tokenizer_config.json's added_tokens_decoder, the special
 * tokens, tokenizer.json's added_tokens). */
typedef struct vp_added {
    char *content;                   /* UTF-8, vp__malloc'ed */
    size_t len;
    int64_t id;
    int lstrip, rstrip, normalized, special;
} vp_added;

/* The content ids of one text (no special tokens added), stopping once more
 * than `enough` ids are found where the back end can. 0, or a VP_ERR_* code
 * with err set. */
typedef struct vp_clip vp_clip;
typedef struct vp_siglip vp_siglip;

struct cJSON;
/* CLIP from vocab.json + merges.txt (paths), tokenizer.json (tokjson), or
 * OpenAI's merges file (bpe). cfg: tokenizer_config.json (may be NULL). */
int vp__clip_open(vp_clip **out, const char *vocab, const char *merges, const char *tokjson, const char *bpe,
                  const struct cJSON *cfg, const struct cJSON *stmap, char *err, size_t errlen);
void vp__clip_free(vp_clip *c);
int vp__clip_encode(vp_clip *c, const char *s, size_t n, size_t enough, vp_ids *out, char *err, size_t errlen);
int64_t vp__clip_bos(const vp_clip *c);
int64_t vp__clip_eos(const vp_clip *c);
int64_t vp__clip_pad(const vp_clip *c);
int64_t vp__clip_vocab_size(const vp_clip *c);

int vp__siglip_open(vp_siglip **out, const char *model, const struct cJSON *cfg, const struct cJSON *stmap,
                    char *err, size_t errlen);
void vp__siglip_free(vp_siglip *s);
int vp__siglip_encode(vp_siglip *s, const char *text, size_t n, vp_ids *out, char *err, size_t errlen);
int64_t vp__siglip_eos(const vp_siglip *s);
int64_t vp__siglip_pad(const vp_siglip *s);
int64_t vp__siglip_vocab_size(const vp_siglip *s);

/* ---- spm_shim.cc: libsentencepiece ---------------------------------------- */
typedef struct vp_spm vp_spm;
/* Load a serialized ModelProto. 0, or -1 with err set. */
int vp__spm_load(vp_spm **out, const void *data, size_t n, char *err, size_t errlen);
void vp__spm_free(vp_spm *m);
int vp__spm_size(const vp_spm *m);
/* PieceToId: the piece's id, or the unknown id. */
int vp__spm_piece_id(const vp_spm *m, const char *s, size_t n);
/* The id of the piece that is exactly s, or -1 (PieceToId + IdToPiece). */
int vp__spm_exact_id(const vp_spm *m, const char *s, size_t n);
/* Encode into pieces (kept in m until the next call); their number, or -1
 * with err set. */
long vp__spm_encode(vp_spm *m, const char *s, size_t n, char *err, size_t errlen);
const char *vp__spm_piece(const vp_spm *m, size_t i, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
