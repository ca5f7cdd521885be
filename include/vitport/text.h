/*
 * vitport tokenizers: the token ids transformers' tokenizers give, from the
 * files a model directory holds. Included by vitport/vitport.h.
 *
 *  - CLIP: byte-level BPE as transformers' CLIPTokenizer (the fast one, on
 *    the `tokenizers` library) builds it: NFC, whitespace runs to one
 *    space, lower case; CLIP's split pattern; bytes-to-unicode; merges with
 *    "</w>"; <|startoftext|> ... <|endoftext|>; added tokens matched in the
 *    text too. From vocab.json + merges.txt, tokenizer.json, or OpenAI's
 *    bpe_simple_vocab_16e6.txt(.gz).
 *  - SigLIP: SiglipTokenizer (SentencePiece, spiece.model): its text
 *    canonicalisation (lower case, ASCII punctuation removed, whitespace
 *    collapsed), the SentencePiece model through libsentencepiece, "</s>"
 *    appended.
 *
 * Every text is truncated and padded to the padding length L as
 * `tokenizer(texts, padding="max_length", truncation=True)` does.
 * A handle keeps scratch buffers: one thread at a time per handle.
 */
#ifndef VITPORT_TEXT_H
#define VITPORT_TEXT_H

#include "vitport/vitport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_tokenizer vp_tokenizer;

typedef enum vp_tokenizer_kind {
    VP_TOKENIZER_CLIP_BPE = 1,       /* CLIPTokenizer */
    VP_TOKENIZER_SIGLIP_SPM = 2      /* SiglipTokenizer */
} vp_tokenizer_kind;

/**
 * Constructor. `path` is a model directory or one file:
 *  - a directory with tokenizer.json, or vocab.json + merges.txt (CLIP), or
 *    spiece.model (SigLIP), and optionally tokenizer_config.json /
 *    special_tokens_map.json (model_max_length, pad, special tokens, SigLIP's
 *    do_lower_case);
 *  - a tokenizer.json, OpenAI's bpe_simple_vocab_16e6.txt or .txt.gz, or a
 *    SentencePiece .model file (then the defaults: CLIP 77, SigLIP 64).
 * *out always receives a handle unless memory runs out (then NULL), so that
 * vp_tokenizer_errmsg() tells why opening failed; close it in either case.
 */
VP_API int vp_tokenizer_open(vp_tokenizer **out, const char *path);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). SentencePiece's own (C++) allocations are its own. */
VP_API int vp_tokenizer_open_ex(vp_tokenizer **out, const char *path, const vp_allocator *allocator);

/** Destructor. NULL is a harmless no-op. */
VP_API void vp_tokenizer_close(vp_tokenizer *tok);

/** The message of the last failure ("" if none), one line. */
VP_API const char *vp_tokenizer_errmsg(const vp_tokenizer *tok);

VP_API vp_tokenizer_kind vp_tokenizer_type(const vp_tokenizer *tok);

/** The padding length L: model_max_length of tokenizer_config.json, else
 * 77 (CLIP) or 64 (SigLIP). */
VP_API int64_t vp_tokenizer_length(const vp_tokenizer *tok);

/** Method: set L (1 <= L <= 1<<20; CLIP needs 2 for its two special tokens). */
VP_API int vp_tokenizer_set_length(vp_tokenizer *tok, int64_t length);

/** The id padding uses (CLIP: <|endoftext|>, SigLIP: </s>, unless the files
 * name another pad token). */
VP_API int64_t vp_tokenizer_pad_id(const vp_tokenizer *tok);

/** Number of ids the model's embedding must have rows for (largest id + 1). */
VP_API int64_t vp_tokenizer_vocab_size(const vp_tokenizer *tok);

/**
 * Method: tokenize n UTF-8 texts. lens[i] is the byte length of texts[i]
 * (NUL bytes are then text, as in a Python str), or lens == NULL for
 * NUL-terminated texts. Writes ids[n * L] (int64, row i for text i, padded
 * with the pad id), mask[n * L] when not NULL (1 for real tokens, 0 for
 * padding: the attention_mask the processors return), and truncated[n]
 * when not NULL (1 where the text had more tokens than fit in L; the
 * callers warn). A text that is not valid UTF-8 (as Python's strict decode
 * requires) is refused with VP_ERR_ARG naming it and the byte offset, a
 * text over 1 MiB with VP_ERR_LIMIT; nothing is written in either case.
 */
VP_API int vp_tokenizer_encode(vp_tokenizer *tok, const char *const *texts, const size_t *lens, size_t n,
                               int64_t *ids, int64_t *mask, int *truncated);

#ifdef __cplusplus
}
#endif
#endif /* VITPORT_TEXT_H */
