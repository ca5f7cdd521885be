/*
 * Tokenizer files for converted models.
 *
 * bpe_vocab.c: OpenAI CLIP's BPE merges file (bpe_simple_vocab_16e6.txt,
 * gzipped or plain) -> the four files transformers' CLIPTokenizer (4.x)
 * saves: vocab.json, merges.txt, tokenizer_config.json,
 * special_tokens_map.json.
 *
 * spm.c: SigLIP's SentencePiece model -> spiece.model (a copy, after a
 * structural check of the protobuf) and the tokenizer_config.json /
 * special_tokens_map.json that SiglipTokenizer (4.x) saves.
 *
 * text_common.c: what both share (JSON strings, AddedToken entries, error
 * text). UTF-8 is checked with vp__utf8_check (src/core).
 */
#ifndef VP_TEXT_H
#define VP_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct vp_text_file {
    const char *name;                /* file name in the output folder (static) */
    char *data;                      /* vp__malloc'ed contents */
    size_t len;
} vp_text_file;

void vp_text_files_free(vp_text_file *files, int n);

/* Limits: the real merges file is 1.4 MB gzipped, 3.5 MB plain; the
 * multilingual SentencePiece model is about 4.7 MB. */
#define VP_BPE_MAX_BYTES (64u << 20)
#define VP_SPM_MAX_BYTES (64u << 20)

/*
 * Build CLIP's tokenizer files. The vocabulary is built as OpenAI's
 * SimpleTokenizer builds its encoder: the 256 byte-to-unicode symbols, the
 * same with "</w>", one token per merge (the first vocab_size - 514 merge
 * lines after the header line), then <|startoftext|> and <|endoftext|>, so
 * that vocab_size (the model's token-embedding rows) is reproduced exactly.
 * model_max_length is the text context length; processor_class (may be
 * NULL) is recorded as a processor's save_pretrained records it.
 * out[0..3] receive the files. Returns VP_OK, or a VP_ERR_* code with err
 * set (one line): the file reader's code when it cannot be read
 * (VP_ERR_IO, VP_ERR_LIMIT), VP_ERR_NOMEM, else VP_ERR_FORMAT.
 */
int vp_bpe_tokenizer_files(const char *path, int64_t vocab_size, int64_t model_max_length,
                           const char *processor_class, vp_text_file out[4], char *err, size_t errlen);

/*
 * SigLIP's tokenizer files: out[0] spiece.model (the model's bytes),
 * out[1] tokenizer_config.json, out[2] special_tokens_map.json. The model
 * must parse as a SentencePiece ModelProto with its pieces, and hold the
 * "</s>" and "<unk>" pieces SiglipTokenizer uses (their ids are recorded).
 * Returns as vp_bpe_tokenizer_files.
 */
int vp_spm_tokenizer_files(const char *path, int64_t model_max_length, const char *processor_class,
                           vp_text_file out[3], char *err, size_t errlen);

/* OpenAI's vocabulary from its merges file, as SimpleTokenizer builds it
 * (read by vp_bpe_tokenizer_files and the CLIP tokenizer). */
#define VP_BPE_OPENAI_MERGES 48894   /* SimpleTokenizer: merges[1:49152-256-2+1] */
typedef struct vp_bpe_vocab {
    char *text;                      /* the file, its merge lines cut into tokens in place */
    const char **tok;                /* vocabulary, in id order */
    char *joined;                    /* storage of merged tokens and byte symbols */
    const char **left, **right;      /* merges */
    size_t ntok, nmerges;
    int as_openai;                   /* fewer merge lines than 48894: take them all */
} vp_bpe_vocab;

/* The vocabulary SimpleTokenizer builds: the first 48894 merges (all of them
 * when the file has fewer), 512 byte tokens, 2 special tokens. 0, or -1
 * with err set; free with vp_bpe_vocab_free either way. */
int vp_bpe_vocab_read(vp_bpe_vocab *v, const char *path, char *err, size_t errlen);
void vp_bpe_vocab_free(vp_bpe_vocab *v);

/* OpenAI's bytes_to_unicode(): the printable Latin-1 bytes stand for
 * themselves, the other bytes map to U+0100.. in byte order. sym[i] is the
 * i-th symbol in the table's order (printable ones first), UTF-8, and
 * byte_of[i] (may be NULL) the byte it stands for. */
void vp_text_byte_symbols(char sym[256][3], uint8_t byte_of[256]);

/* The whole file, inflated when gzipped; NUL-terminated, vp__malloc'ed
 * (at most VP_BPE_MAX_BYTES). NULL with *code (the reader's VP_ERR_*) and
 * err set. */
char *vp_text_read(const char *path, size_t *len, int *code, char *err, size_t errlen);

/* The structural check of a SentencePiece model that vp_spm_tokenizer_files
 * makes (a ModelProto with pieces and a trainer_spec): 0, or -1 with why
 * set. The tokenizer runs it before handing the bytes to libsentencepiece. */
int vp_spm_check(const uint8_t *data, size_t len, char *why, size_t whylen);

/* ---- shared by both builders (text_common.c) ------------------------------ */
struct vp_buf;

/* Format into err (one line) and return -1. */
int vp_text_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Hand b's contents to f as the file `name` and clear b; 0, or -1 (b freed)
 * when b ran out of memory. */
int vp_text_take(vp_text_file *f, const char *name, struct vp_buf *b);

/* A special token: in special_tokens_map.json `key` is its field
 * ("eos_token"), in added_tokens_decoder its id ("49407"). */
typedef struct vp_text_token {
    const char *key, *content;
    int as_string;                   /* special_tokens_map.json: a plain string, not an AddedToken */
} vp_text_token;

/* How one tokenizer saves its special tokens (AddedToken's fields). */
typedef struct vp_text_style {
    int strip;                       /* lstrip and rstrip */
    int normalized;
} vp_text_style;

/* tokenizer_config.json's "added_tokens_decoder" member (with its trailing
 * comma), the tokens in the order given: the caller sorts them as
 * json.dumps(sort_keys=True) would. */
void vp_text_added_tokens_decoder(struct vp_buf *b, const vp_text_token *t, int n, const vp_text_style *st);

/* tokenizer_config.json's members from "model_max_length" to
 * "processor_class" (written only when not NULL), which sort alike in both
 * tokenizers' configs. */
void vp_text_config_common(struct vp_buf *b, int64_t model_max_length, const char *pad_token,
                           const char *processor_class);

/* The whole special_tokens_map.json; t sorted by key. */
void vp_text_special_tokens_map(struct vp_buf *b, const vp_text_token *t, int n, const vp_text_style *st);

#endif
