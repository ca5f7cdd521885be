/*
 * SigLIP's SentencePiece model -> spiece.model and the configs
 * SiglipTokenizer saves (see text.h). The model is copied unchanged; it is
 * only walked as protobuf (ModelProto: 1 = repeated SentencePiece pieces,
 * 2 = trainer_spec, 3 = normalizer_spec, ...; SentencePiece: 1 = piece,
 * 2 = score, 3 = type) to refuse anything else early and to find the ids
 * of the "</s>" and "<unk>" pieces that tokenizer_config.json records.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/util.h"
#include "text/text.h"

typedef struct pb { const uint8_t *p, *end; } pb;

static int pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

/* One field: its number, wire type and, for length-delimited ones, the
 * bytes. Groups (wire types 3, 4) do not occur in these messages. */
static int pb_field(pb *r, uint32_t *field, int *wt, pb *body)
{
    uint64_t key, n;
    if (pb_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(r, &n);
    case 1: if (r->end - r->p < 8) return -1; r->p += 8; return 0;
    case 5: if (r->end - r->p < 4) return -1; r->p += 4; return 0;
    case 2:
        if (pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return -1;
        body->p = r->p;
        body->end = r->p + n;
        r->p += n;
        return 0;
    default: return -1;
    }
}

/* A SentencePiece message: its piece text (required, UTF-8). */
static int parse_piece(pb body, pb *text)
{
    int have = 0;
    while (body.p < body.end) {
        uint32_t f;
        int wt;
        pb sub = { 0 };
        if (pb_field(&body, &f, &wt, &sub)) return -1;
        if (f == 1) {
            if (wt != 2 || vp__utf8_check(sub.p, (size_t)(sub.end - sub.p), false) != (size_t)(sub.end - sub.p)) return -1;
            *text = sub;
            have = 1;
        } else if ((f == 2 && wt != 5) || (f == 3 && wt != 0)) {
            return -1;
        }
    }
    return have ? 0 : -1;
}

static int is_piece(pb t, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(t.end - t.p) == n && !memcmp(t.p, s, n);
}

typedef struct spm_info { int64_t npieces, eos_id, unk_id; int have_trainer, have_normalizer; } spm_info;

static int spm_scan(const uint8_t *data, size_t len, spm_info *info, char *why, size_t whylen)
{
    pb r = { data, data + len };
    memset(info, 0, sizeof *info);
    info->eos_id = info->unk_id = -1;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        pb body = { 0 };
        size_t at = (size_t)(r.p - data);
        if (pb_field(&r, &f, &wt, &body))
            return vp_text_fail(why, whylen, "malformed protobuf field at byte %zu", at);
        if (f >= 1 && f <= 5 && wt != 2)
            return vp_text_fail(why, whylen, "ModelProto field %u at byte %zu is not a message", f, at);
        if (f == 1) {
            pb text;
            if (parse_piece(body, &text))
                return vp_text_fail(why, whylen, "piece %lld (byte %zu) is not a valid SentencePiece entry",
                                    (long long)info->npieces, at);
            if (info->eos_id < 0 && is_piece(text, "</s>")) info->eos_id = info->npieces;
            if (info->unk_id < 0 && is_piece(text, "<unk>")) info->unk_id = info->npieces;
            info->npieces++;
        } else if (f == 2) {
            info->have_trainer = 1;
        } else if (f == 3) {
            info->have_normalizer = 1;
        }
    }
    if (!info->npieces) return vp_text_fail(why, whylen, "no pieces");
    if (!info->have_trainer) return vp_text_fail(why, whylen, "no trainer_spec");
    return 0;
}

int vp_spm_check(const uint8_t *data, size_t len, char *why, size_t whylen)
{
    spm_info info;
    return spm_scan(data, len, &info, why, whylen);
}

/* SiglipTokenizer's special tokens: AddedToken(lstrip=True, rstrip=True, normalized=False). */
static const vp_text_style siglip_style = { 1, 0 };

static void siglip_tokenizer_config(vp_buf *b, const spm_info *in, int64_t max_len, const char *processor_class)
{
    /* added_tokens_decoder is keyed by the int id; json.dumps(sort_keys=True)
     * sorts int keys numerically (9 before 10), then writes them as strings. */
    char eos[32], unk[32];
    snprintf(eos, sizeof eos, "%lld", (long long)in->eos_id);
    snprintf(unk, sizeof unk, "%lld", (long long)in->unk_id);
    const vp_text_token e = { eos, "</s>", 0 }, u = { unk, "<unk>", 0 };
    const int eos_first = in->eos_id < in->unk_id;
    const vp_text_token added[2] = { eos_first ? e : u, eos_first ? u : e };
    vp__buf_puts(b, "{\n");
    vp_text_added_tokens_decoder(b, added, 2, &siglip_style);
    vp__buf_puts(b, "  \"additional_special_tokens\": [],\n"
                    "  \"clean_up_tokenization_spaces\": true,\n"
                    "  \"do_lower_case\": true,\n"
                    "  \"eos_token\": \"</s>\",\n"
                    "  \"model_input_names\": [\n    \"input_ids\"\n  ],\n");
    vp_text_config_common(b, max_len, "</s>", processor_class);
    vp__buf_puts(b, "  \"sp_model_kwargs\": {},\n"
                    "  \"tokenizer_class\": \"SiglipTokenizer\",\n"
                    "  \"unk_token\": \"<unk>\"\n}\n");
}

static void siglip_special_tokens_map(vp_buf *b)
{
    static const vp_text_token tokens[3] = {
        { "eos_token", "</s>", 0 },
        { "pad_token", "</s>", 0 },
        { "unk_token", "<unk>", 0 },
    };
    vp_text_special_tokens_map(b, tokens, 3, &siglip_style);
}

int vp_spm_tokenizer_files(const char *path, int64_t model_max_length, const char *processor_class,
                           vp_text_file out[3], char *err, size_t errlen)
{
    memset(out, 0, 3 * sizeof *out);
    char *data = NULL;
    size_t size = 0;
    int rc = vp__read_file(path, VP_SPM_MAX_BYTES, &data, &size, err, errlen);
    if (rc) return rc;
    rc = VP_ERR_FORMAT;
    spm_info info;
    char why[160];
    if (spm_scan((const uint8_t *)data, size, &info, why, sizeof why)) {
        vp_text_fail(err, errlen, "%s: not a SentencePiece model: %s", path, why);
        goto done;
    }
    if (info.eos_id < 0 || info.unk_id < 0) {
        vp_text_fail(err, errlen, "%s: the SentencePiece model has no \"%s\" piece, which SiglipTokenizer uses",
                     path, info.eos_id < 0 ? "</s>" : "<unk>");
        goto done;
    }
    out[0].name = "spiece.model";
    out[0].data = data;              /* the model's bytes, as read */
    out[0].len = size;
    data = NULL;

    vp_buf b = { 0 };
    siglip_tokenizer_config(&b, &info, model_max_length, processor_class);
    if (vp_text_take(&out[1], "tokenizer_config.json", &b)) goto oom;

    siglip_special_tokens_map(&b);
    if (vp_text_take(&out[2], "special_tokens_map.json", &b)) goto oom;
    rc = VP_OK;
    goto done;
oom:
    rc = VP_ERR_NOMEM;
    vp_text_fail(err, errlen, "%s: out of memory", path);
    vp_text_files_free(out, 3);
done:
    vp__free(data);
    return rc;
}
