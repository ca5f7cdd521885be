/* The tokenizers against transformers' ids (tests/fixtures/text/expected.json,
 * written by tests/fixtures/gen_text.py from CLIPTokenizer and
 * SiglipTokenizer), and their refusals. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "test.h"
#include "test_util.h"
#include "vitport/vitport.h"

static char fixdir[4096];

static const char *fx(const char *rel)
{
    static char buf[4][8300];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/text/%s", fixdir, rel);
    return buf[k];
}

/* Every case of expected.json: ids, mask, truncation flags. */
static void test_expected(void)
{
    cJSON *j = tu_load_json(fx("expected.json"));
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *texts = cJSON_GetObjectItem(j, "texts");
    size_t n = (size_t)cJSON_GetArraySize(texts);
    const char **tx = calloc(n, sizeof *tx);
    size_t i = 0;
    for (const cJSON *t = texts->child; t; t = t->next) tx[i++] = t->valuestring;
    CHECK(n >= 200);
    const cJSON *cs;
    int ncases = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(j, "cases")) {
        const char *path = fx(tu_jstr(cs, "path"));
        vp_tokenizer *tok = NULL;
        int rc = vp_tokenizer_open(&tok, path);
        CHECKF(rc == VP_OK, "%s: %s", path, vp_tokenizer_errmsg(tok));
        if (rc) { vp_tokenizer_close(tok); continue; }
        ncases++;
        int64_t L = vp_tokenizer_length(tok);
        CHECK_EQ_INT(L, cJSON_GetObjectItem(cs, "length")->valueint);
        CHECK_EQ_INT(vp_tokenizer_pad_id(tok), cJSON_GetObjectItem(cs, "pad")->valueint);
        CHECK_EQ_INT(vp_tokenizer_type(tok), strncmp(tu_jstr(cs, "path"), "clip", 4) ? VP_TOKENIZER_SIGLIP_SPM
                                                                                     : VP_TOKENIZER_CLIP_BPE);
        int64_t *ids = calloc(n * (size_t)L, sizeof *ids), *mask = calloc(n * (size_t)L, sizeof *mask);
        int *tr = calloc(n, sizeof *tr);
        rc = vp_tokenizer_encode(tok, tx, NULL, n, ids, mask, tr);
        CHECKF(rc == VP_OK, "%s: %s", path, vp_tokenizer_errmsg(tok));
        int bad = 0, ntr = 0;
        const cJSON *exp = cJSON_GetObjectItem(cs, "ids");
        i = 0;
        for (const cJSON *row = exp->child; row && i < n; row = row->next, i++) {
            int64_t k = cJSON_GetArraySize(row), col = 0;
            int ok = k <= L;
            for (const cJSON *v = row->child; v && ok; v = v->next, col++)
                ok = ids[i * L + col] == (int64_t)v->valuedouble && mask[i * L + col] == 1;
            for (col = k; col < L && ok; col++)
                ok = ids[i * L + col] == vp_tokenizer_pad_id(tok) && mask[i * L + col] == 0;
            if (!ok && bad++ < 3) fprintf(stderr, "%s: text %zu (%.40s) differs\n", path, i, tx[i]);
            ntr += tr[i];
        }
        const cJSON *t;
        int want_tr = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(cs, "truncated")) {
            want_tr++;
            CHECKF(tr[t->valueint], "%s: text %d is truncated", path, t->valueint);
        }
        CHECKF(bad == 0, "%s: %d of %zu texts differ", path, bad, n);
        CHECK_EQ_INT(ntr, want_tr);
        CHECK(want_tr > 0);
        printf("%s: %zu texts, %d truncated, %d mismatches\n", tu_jstr(cs, "path"), n, ntr, bad);
        free(ids);
        free(mask);
        free(tr);
        vp_tokenizer_close(tok);
    }
    CHECK_EQ_INT(ncases, 6);
    free(tx);
    cJSON_Delete(j);
}

/* Invalid UTF-8 is refused, naming the text and the byte; nothing written. */
static void test_bad_utf8(void)
{
    vp_tokenizer *tok = NULL;
    CHECK_EQ_INT(vp_tokenizer_open(&tok, fx("clip_tiny")), VP_OK);
    static const char *bad[] = { "\xff", "ab\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok\xf4\x90\x80\x80", "\xe2\x82" };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        const char *texts[2] = { "fine", bad[b] };
        int64_t ids[2 * 77];
        for (int k = 0; k < 2 * 77; k++) ids[k] = -7;
        int rc = vp_tokenizer_encode(tok, texts, NULL, 2, ids, NULL, NULL);
        CHECK_EQ_INT(rc, VP_ERR_ARG);
        const char *msg = vp_tokenizer_errmsg(tok);
        CHECKF(tu_has(msg, "text 1") && tu_has(msg, "UTF-8") && tu_one_line(msg), "%s", msg);
        CHECK(ids[0] == -7 && ids[77] == -7);
    }
    /* byte offsets: the character that breaks it */
    const char *t1[1] = { "ab\xc3(" };
    int64_t ids[77];
    CHECK_EQ_INT(vp_tokenizer_encode(tok, t1, NULL, 1, ids, NULL, NULL), VP_ERR_ARG);
    CHECKF(tu_has(vp_tokenizer_errmsg(tok), "byte 2"), "%s", vp_tokenizer_errmsg(tok));
    /* NUL bytes are text when lengths are given, as in a Python str */
    const char *t2[2] = { "a\0b", "ab" };
    size_t lens[2] = { 3, 2 };
    int64_t two[2 * 77];
    CHECK_EQ_INT(vp_tokenizer_encode(tok, t2, lens, 2, two, NULL, NULL), VP_OK);
    CHECK(memcmp(two, two + 77, 77 * sizeof *two) != 0);
    /* empty batch */
    CHECK_EQ_INT(vp_tokenizer_encode(tok, NULL, NULL, 0, NULL, NULL, NULL), VP_OK);
    vp_tokenizer_close(tok);
}

/* The length: set, bounds, and truncation to it. */
static void test_length(void)
{
    vp_tokenizer *tok = NULL;
    CHECK_EQ_INT(vp_tokenizer_open(&tok, fx("clip_tiny")), VP_OK);
    CHECK_EQ_INT(vp_tokenizer_set_length(tok, 1), VP_ERR_ARG);
    CHECK_EQ_INT(vp_tokenizer_set_length(tok, (int64_t)1 << 40), VP_ERR_ARG);
    CHECK_EQ_INT(vp_tokenizer_set_length(tok, 4), VP_OK);
    const char *t[2] = { "a photo of a cat", "" };
    int64_t ids[8], mask[8];
    int tr[2];
    CHECK_EQ_INT(vp_tokenizer_encode(tok, t, NULL, 2, ids, mask, tr), VP_OK);
    CHECK(tr[0] == 1 && tr[1] == 0);
    int64_t bos = ids[0], eos = ids[3];
    CHECK(ids[4] == bos && ids[5] == eos && mask[5] == 1 && mask[6] == 0 && ids[6] == vp_tokenizer_pad_id(tok));
    CHECK(vp_tokenizer_vocab_size(tok) == 1514);
    /* the longest text: one word of 1 MiB is tokenized (and truncated), a
     * byte more is refused */
    size_t big = (size_t)1 << 20;
    char *w = malloc(big + 2);
    memset(w, 'q', big + 1);
    w[big + 1] = 0;
    const char *tw[1] = { w };
    size_t lw = big;
    CHECK_EQ_INT(vp_tokenizer_encode(tok, tw, &lw, 1, ids, mask, tr), VP_OK);
    CHECK(tr[0] == 1 && mask[3] == 1);
    lw = big + 1;
    CHECK_EQ_INT(vp_tokenizer_encode(tok, tw, &lw, 1, ids, mask, tr), VP_ERR_LIMIT);
    CHECKF(tu_has(vp_tokenizer_errmsg(tok), "1 MiB"), "%s", vp_tokenizer_errmsg(tok));
    free(w);
    vp_tokenizer_close(tok);

    CHECK_EQ_INT(vp_tokenizer_open(&tok, fx("siglip_nobf")), VP_OK);
    CHECK_EQ_INT(vp_tokenizer_set_length(tok, 1), VP_OK);
    CHECK_EQ_INT(vp_tokenizer_encode(tok, t, NULL, 2, ids, mask, tr), VP_OK);
    CHECK(ids[0] == 1 && ids[1] == 1 && tr[0] == 1);   /* only </s> fits */
    vp_tokenizer_close(tok);
}

static void expect_open_fails(const char *path, int code, const char *part)
{
    vp_tokenizer *tok = NULL;
    int rc = vp_tokenizer_open(&tok, path);
    CHECKF(rc == code, "%s: %d, expected %d (%s)", path, rc, code, vp_tokenizer_errmsg(tok));
    const char *msg = vp_tokenizer_errmsg(tok);
    CHECKF(tu_has(msg, part) && tu_one_line(msg), "%s: \"%s\" lacks \"%s\"", path, msg, part);
    vp_tokenizer_close(tok);
}

static void put(const char *dir, const char *name, const char *text)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    tu_write_file(p, text, strlen(text));
}

/* Files that are not tokenizers, or broken ones. */
static void test_refusals(void)
{
    char dir[4096];
    tu_mkdtemp(dir, sizeof dir, "vp-tok");
    expect_open_fails("/nonexistent/tokenizer", VP_ERR_IO, "/nonexistent/tokenizer");
    expect_open_fails(dir, VP_ERR_NOTFOUND, "no tokenizer files");
    put(dir, "vocab.json", "{\"a\": 0, \"b\": 1");
    put(dir, "merges.txt", "#version: 0.2\na b\n");
    expect_open_fails(dir, VP_ERR_FORMAT, "vocab.json");
    put(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}");
    put(dir, "merges.txt", "#version: 0.2\na b c\n");
    expect_open_fails(dir, VP_ERR_FORMAT, "merge 1");
    put(dir, "merges.txt", "#version: 0.2\na x\n");
    expect_open_fails(dir, VP_ERR_FORMAT, "not in the vocabulary");
    put(dir, "merges.txt", "#version: 0.2\na b\n");
    put(dir, "vocab.json", "{\"a\": 0, \"b\": -1}");
    expect_open_fails(dir, VP_ERR_FORMAT, "id of \"b\"");
    /* special tokens missing from the vocabulary are added after it, as
     * transformers adds them */
    put(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    vp_tokenizer *tok = NULL;
    CHECKF(vp_tokenizer_open(&tok, dir) == VP_OK, "%s", vp_tokenizer_errmsg(tok));
    CHECK(tok && vp_tokenizer_vocab_size(tok) == 5);
    vp_tokenizer_close(tok);
    put(dir, "vocab.json", "{\"a\": 0, \"b</w>\": 1, \"ab</w>\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}");
    put(dir, "merges.txt", "#version: 0.2\na b</w>\n");
    put(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"BertTokenizer\"}");
    expect_open_fails(dir, VP_ERR_UNSUPPORTED, "BertTokenizer");
    put(dir, "tokenizer_config.json", "[1]");
    expect_open_fails(dir, VP_ERR_FORMAT, "tokenizer_config.json");
    put(dir, "tokenizer_config.json", "{\"model_max_length\": 1}");
    expect_open_fails(dir, VP_ERR_FORMAT, "two special tokens");
    put(dir, "tokenizer_config.json", "{\"model_max_length\": 5}");
    tok = NULL;
    CHECKF(vp_tokenizer_open(&tok, dir) == VP_OK, "%s", vp_tokenizer_errmsg(tok));
    if (tok) {
        /* a hand-made vocabulary: "AB" is lowered and merged into
         * "ab</w>", "c</w>" is unknown (the unk token <|endoftext|>) */
        const char *t[1] = { "AB c" };
        int64_t ids[5], mask[5];
        CHECK_EQ_INT(vp_tokenizer_encode(tok, t, NULL, 1, ids, mask, NULL), VP_OK);
        CHECK(ids[0] == 3 && ids[1] == 2 && ids[2] == 4 && ids[3] == 4 && ids[4] == 4);
        CHECK(mask[3] == 1 && mask[4] == 0);
    }
    vp_tokenizer_close(tok);
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/spiece.model", dir);
    put(dir, "spiece.model", "\x0a\x05\x0a\x03<s>garbage");
    put(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"SiglipTokenizer\"}");
    expect_open_fails(dir, VP_ERR_FORMAT, "spiece.model");
    expect_open_fails(sp, VP_ERR_FORMAT, "SentencePiece");
    /* a piece that starts with a NUL byte (fuzz_tokenizer found it): libsentencepiece
     * throws from darts_clone ("zero-length key") inside the load; refused, and the
     * half-built model is freed (the ASan build's leak check failed before) */
    static const unsigned char nul_piece[] = { 0x0a, 0x0e, 0x0a, 0x05, '<', 'p', 'a', 'd', '>', 0x15, 0, 0, 0, 0,
                                               0x18, 0x02, 0x0a, 0x0a, 0x0a, 0x03, 0x00, 0x1b, 0x02, 0x15, 0xe7,
                                               0x69, 0x74, 0x79, 0x12, 0x00 };
    tu_write_file(sp, nul_piece, sizeof nul_piece);
    expect_open_fails(sp, VP_ERR_FORMAT, "not a SentencePiece model");
    put(dir, "tokenizer.json", "{\"model\": {\"type\": \"Unigram\"}}");
    snprintf(sp, sizeof sp, "%s/tokenizer.json", dir);
    expect_open_fails(sp, VP_ERR_UNSUPPORTED, "not a BPE tokenizer");
    tu_rmtree(dir);
    vp_tokenizer_close(NULL);
}

/* Out of memory at every allocation of opening and encoding: an error, no
 * crash, no leak (the sanitizer build checks the last). */
static void test_oom(void)
{
    const char *paths[2] = { fx("clip_tiny"), fx("siglip_nobf") };
    for (int p = 0; p < 2; p++) {
        int ok_at = -1;
        for (long left = 0; left < 100000 && ok_at < 0; left += left < 200 ? 1 : 97) {
            tu_failing f = { left };
            vp__set_allocator(tu_failing_alloc, &f);
            vp_tokenizer *tok = NULL;
            int rc = vp_tokenizer_open(&tok, paths[p]);
            if (rc == VP_OK) {
                const char *t[2] = { "Hello, wörld! 日本語 <|endoftext|> </s>", "it's" };
                int64_t ids[2 * 77];
                rc = vp_tokenizer_encode(tok, t, NULL, 2, ids, NULL, NULL);
                if (rc == VP_OK) ok_at = (int)left;
            }
            if (rc != VP_OK && tok) CHECK(tu_one_line(vp_tokenizer_errmsg(tok)));
            vp_tokenizer_close(tok);
            vp__set_allocator(NULL, NULL);
        }
        CHECKF(ok_at > 0, "%s never succeeded", paths[p]);
        printf("out of memory: %s fails cleanly up to allocation %d\n", paths[p], ok_at);
    }
}

int main(void)
{
    snprintf(fixdir, sizeof fixdir, "%s", tu_fixtures_dir());
    test_expected();
    test_bad_utf8();
    test_length();
    test_refusals();
    test_oom();
    TEST_MAIN_END();
}
