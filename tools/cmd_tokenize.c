/* vitport tokenize: the input_ids a model directory's tokenizer files
 * make of texts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport tokenize MODEL_DIR --text TEXT [--text TEXT ...] [--out INPUT_IDS.npy]\n"
            "\n"
            "Tokenize texts with MODEL_DIR's tokenizer files (CLIP: tokenizer.json or\n"
            "vocab.json + merges.txt; SigLIP: spiece.model; with tokenizer_config.json) into\n"
            "the input_ids (int64, [N, L]) transformers' tokenizer gives with\n"
            "padding=\"max_length\", truncation=True (L: model_max_length, else 77 for CLIP,\n"
            "64 for SigLIP). A text with more tokens than fit is truncated, with a warning\n"
            "on stderr. Without --out the ids are printed, one text per line.\n"
            "\n"
            "options:\n"
            "  --text TEXT    a text (repeatable; the rows follow their order)\n"
            "  --out FILE     the .npy to write (temporary name, renamed when complete)\n"
            "  -h, --help     show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input, 2 usage error\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    const char **texts = calloc((size_t)argc, sizeof *texts);
    size_t n = 0;
    int status = VP_EXIT_USAGE;
    if (!texts) return VP_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); status = VP_EXIT_OK; goto done; }
        else if (!strcmp(a, "--text") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport tokenize: %s needs a value\n", a); goto done; }
            if (a[2] == 't') texts[n++] = argv[++i];
            else out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vitport tokenize: unknown option '%s' (see vitport tokenize --help)\n", a);
            goto done;
        } else if (!dir) dir = a;
        else { fprintf(stderr, "vitport tokenize: unexpected argument '%s'\n", a); goto done; }
    }
    if (!dir) { help(stderr); goto done; }
    if (!n) { fprintf(stderr, "vitport tokenize: give at least one --text\n"); goto done; }
    int64_t *ids = NULL, L = 0;
    status = vp_cli_tokenize(dir, texts, n, "tokenize", &ids, &L);
    if (status) goto done;
    if (out) {
        char err[1024];
        int64_t shape[2] = {(int64_t)n, L};
        if (vp_npy_save(out, VP_I64, 2, shape, ids, err, sizeof err)) {
            fprintf(stderr, "vitport tokenize: %s\n", err);
            status = VP_EXIT_FAIL;
        } else printf("%s: input_ids [%zu, %lld] -> %s\n", dir, n, (long long)L, out);
    } else {
        for (size_t i = 0; i < n; i++)
            for (int64_t j = 0; j < L; j++) printf("%lld%c", (long long)ids[i * L + j], j + 1 < L ? ' ' : '\n');
    }
    free(ids);
done:
    free(texts);
    return status;
}
