/* Tokenizer files and texts:
 *  - the input as one tokenizer file (tokenizer.json, OpenAI's merges file,
 *    a SentencePiece model: told apart by its bytes), opened and used;
 *  - "DIR\n" + vocab.json + "\n----\n" + merges.txt + "\n----\n" +
 *    tokenizer_config.json, as a model directory;
 *  - the input's lines as texts for the fixtures' CLIP and SigLIP tokenizers
 *    (tests/fixtures/text), where invalid UTF-8 must be refused.
 * Invariants: failures say why on one line; ids lie in the vocabulary; the
 * mask is ones then zeros; CLIP rows start with <|startoftext|>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "fuzz_memfd.h"
#include "text/text.h"

#define FZ_MAX_TEXT 2048   /* bytes of the input encoded as texts: past 77 tokens more text only costs time */
#define FZ_MAX_TEXTS 16

static void check_msg(const vp_tokenizer *t)
{
    const char *m = vp_tokenizer_errmsg(t);
    if (!*m || strchr(m, '\n')) abort();
}

static void run(vp_tokenizer *t, const char *const *texts, const size_t *lens, size_t n, int utf8_ok)
{
    int64_t L = vp_tokenizer_length(t), V = vp_tokenizer_vocab_size(t);
    if (L < 1 || L > 4096) (void)vp_tokenizer_set_length(t, 77);
    L = vp_tokenizer_length(t);
    int64_t *ids = malloc(sizeof *ids * (size_t)L * (n ? n : 1)), *mask = malloc(sizeof *mask * (size_t)L * (n ? n : 1));
    int *tr = malloc(sizeof *tr * (n ? n : 1));
    if (!ids || !mask || !tr) abort();
    int rc = vp_tokenizer_encode(t, texts, lens, n, ids, mask, tr);
    if (rc != VP_OK) {
        check_msg(t);
        if (utf8_ok && rc == VP_ERR_ARG) abort();   /* valid text refused */
    } else {
        if (!utf8_ok) abort();                      /* invalid UTF-8 accepted */
        for (size_t i = 0; i < n; i++) {
            int64_t *row = ids + i * (size_t)L, *m = mask + i * (size_t)L;
            int seen_zero = 0;
            for (int64_t j = 0; j < L; j++) {
                if (row[j] < 0 || row[j] >= V) abort();
                if (m[j] != 0 && m[j] != 1) abort();
                if (m[j] == 0) seen_zero = 1;
                else if (seen_zero) abort();
            }
            if (m[0] != 1) abort();
        }
    }
    free(ids);
    free(mask);
    free(tr);
}

static const char *const fixed[4] = { "a photo of a cat", "", "<|endoftext|> </s> <unk>", "Héllo wörld 日本 👍🏽" };

static void open_and_use(const char *path, const uint8_t *data, size_t size)
{
    vp_tokenizer *t = NULL;
    int rc = vp_tokenizer_open(&t, path);
    if (!t) return;
    if (rc != VP_OK) {
        check_msg(t);
    } else {
        run(t, fixed, NULL, 4, 1);
        if (size <= 4096) {
            const char *s = (const char *)data;
            run(t, &s, &size, 1, vp__utf8_check(data, size, false) == size);
        }
    }
    vp_tokenizer_close(t);
}

static vp_tokenizer *fixture(const char *name)
{
    char path[4096];
    const char *dir = getenv("VP_FIXTURES");
    snprintf(path, sizeof path, "%s/text/%s", dir ? dir : VP_SOURCE_DIR "/tests/fixtures", name);
    vp_tokenizer *t = NULL;
    if (vp_tokenizer_open(&t, path) != VP_OK) {
        fprintf(stderr, "fuzz_tokenizer: cannot open %s: %s\n", path, vp_tokenizer_errmsg(t));
        abort();
    }
    return t;
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!p) { unlink(path); return; }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
    static const char sep[] = "\n----\n";
    for (; p && end - p >= 6; p++)
        if (!memcmp(p, sep, 6)) return p;
    return NULL;
}

static char dir[64];
static vp_tokenizer *clip, *siglip;

static void cleanup(void)
{
    write_file(dir, "vocab.json", NULL, 0);
    write_file(dir, "merges.txt", NULL, 0);
    write_file(dir, "tokenizer_config.json", NULL, 0);
    rmdir(dir);
    vp_tokenizer_close(clip);
    vp_tokenizer_close(siglip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!clip) {
        clip = fixture("clip_tiny");
        siglip = fixture("siglip_bf");
        struct stat st;   /* a memory file system if there is one: three files are rewritten per input */
        const char *tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/vp-fuzz-tok.XXXXXX", tmp);
        if (!mkdtemp(dir)) abort();
        atexit(cleanup);
    }

    if (size >= 4 && !memcmp(data, "DIR\n", 4)) {
        const uint8_t *end = data + size, *a = data + 4, *b = find_sep(a, end);
        const uint8_t *c = b ? find_sep(b + 6, end) : NULL;
        write_file(dir, "vocab.json", a, (size_t)((b ? b : end) - a));
        write_file(dir, "merges.txt", b ? b + 6 : (const uint8_t *)"", b ? (size_t)((c ? c : end) - (b + 6)) : 0);
        write_file(dir, "tokenizer_config.json", c ? c + 6 : NULL, c ? (size_t)(end - (c + 6)) : 0);
        open_and_use(dir, data, size);
    } else {
        char path[64];
        int fd = fz_memfd(data, size, "vp-fuzz-tok", path, sizeof path);
        open_and_use(path, data, size);
        close(fd);
    }

    /* the input's lines as texts */
    const char *texts[FZ_MAX_TEXTS];
    size_t lens[FZ_MAX_TEXTS], n = 0, at = 0, lim = size < FZ_MAX_TEXT ? size : FZ_MAX_TEXT;
    int ok = 1;
    while (n < FZ_MAX_TEXTS && at <= lim) {
        const uint8_t *nl = memchr(data + at, '\n', lim - at);
        size_t e = nl ? (size_t)(nl - data) : lim;
        texts[n] = (const char *)data + at;
        lens[n] = e - at;
        ok &= vp__utf8_check(data + at, e - at, false) == e - at;
        n++;
        at = e + 1;
        if (!nl) break;
    }
    run(clip, texts, lens, n, ok);
    run(siglip, texts, lens, n, ok);
    return 0;
}
