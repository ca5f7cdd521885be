/* vitport convert: a checkpoint in its release format -> the Hugging Face
 * layout (config.json, model.safetensors, preprocessor and tokenizer files),
 * written atomically. The work is the converter's (src/convert/);
 * this file parses options, finds the bundled data, and turns SIGINT /
 * SIGTERM / SIGHUP into a cancellation the converter cleans up after. */
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vitport/vitport.h"
#include "cli.h"


static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport convert SRC OUT_DIR [options]\n"
            "       vitport convert SRC --check-only [options]\n"
            "\n"
            "Convert a checkpoint in its release format to the Hugging Face layout, as the\n"
            "seed conversion scripts do: config.json, model.safetensors (sharded with an\n"
            "index above --max-shard-size), preprocessor_config.json and, when given a\n"
            "vocabulary, tokenizer files. Sizes come from the tensors; every source tensor\n"
            "must be used or dropped by a named rule and every tensor of the target class\n"
            "produced with its shape, else nothing is written. The output is written to a\n"
            "temporary directory beside OUT_DIR and renamed into place when complete.\n"
            "\n"
            "Before the rename the converted model is verified, as the seed scripts check\n"
            "before they save (see vitport verify --help): the engine runs it and an evaluator\n"
            "of the source in its own layout runs SRC on the same seeded inputs; an output\n"
            "differing above tolerance (1e-4 for float32 weights; for f16 1e-2, for bf16\n"
            "8e-2, times max(1, the output's largest |value|)) fails the conversion, nothing\n"
            "written, OUT_DIR untouched. When the engine of this build cannot run the model\n"
            "(its model_type, or a config it cannot honour), the conversion is kept and the\n"
            "summary line says it was not verified and why.\n"
            "\n"
            "options:\n"
            "  --family F          auto (default: recognised from the tensor names) or one of:\n");
    const char *name, *summary;
    for (size_t i = 0; (name = vp_convert_family(i, &summary)); i++)
        fprintf(f, "                        %-8s %s\n", name, summary);
    fprintf(f,
            "  --model-name NAME   the original model's name (vit_base_patch16_224,\n"
            "                      deit_small_patch16_224, dino_vits8, ...): settles what no\n"
            "                      tensor shows (the head count) and picks among families\n"
            "  --key K             convert the sub-dictionary K of the checkpoint (teacher,\n"
            "                      state_dict, ...); without it a nested checkpoint is searched\n"
            "  --dtype D           keep, f32 (default), f16 or bf16 for float tensors; integer\n"
            "                      tensors keep their dtype\n"
            "  --config FILE       a config.json to start from (its values override the\n"
            "                      inferred ones; sizes are checked against the tensors)\n"
            "  --set KEY=VALUE     override one config field (repeatable); dotted keys reach\n"
            "                      nested configs (vision_config.num_attention_heads=2); VALUE\n"
            "                      is JSON when it parses as JSON, else a string\n"
            "  --labels FILE       class names for id2label: one per line, or a JSON object\n"
            "                      {\"0\": name, ...} (default: the WordNet ids of timm's\n"
            "                      ImageNet subset for 1000, 11221, 11821, 21841, 21842 or\n"
            "                      21843 classes, else LABEL_i)\n"
            "  --bpe-vocab FILE    CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt[.gz]) ->\n"
            "                      tokenizer files (CLIP, CLIPSeg)\n"
            "  --spm FILE          SigLIP's SentencePiece model -> tokenizer files (SigLIP)\n"
            "  --max-shard-size S  largest model file before sharding (default 5GB; kB/MB/GB\n"
            "                      are powers of 1000, KiB/MiB/GiB of 1024, plain = bytes)\n"
            "  --force             replace an existing OUT_DIR (atomically)\n"
            "  --sync              flush the model files to disk before renaming them into\n"
            "                      place, so a power loss cannot leave them empty (slower;\n"
            "                      without it a kill still leaves nothing partial)\n"
            "  --no-crc            do not check the CRC-32 of the zip members (torch .pth/.pt,\n"
            "                      .npz) whose bytes are converted; by default each is checked\n"
            "                      once as it is first read and a damaged member fails the\n"
            "                      conversion, naming it (inflating a deflated member whole\n"
            "                      still checks it)\n"
            "  --no-verify         skip the verification\n"
            "  --check-only        convert and verify in a temporary directory under $TMPDIR\n"
            "                      (default /tmp), keep nothing (no OUT_DIR is given)\n"
            "  --quiet             no messages or progress on stderr\n"
            "  --json              print a JSON summary on stdout (family, class, config,\n"
            "                      tensors, bytes, shards, seconds, dropped rules and counts,\n"
            "                      verify: the comparisons)\n"
            "  -h, --help          show this help\n"
            "\n"
            "exit status: 0 converted, 1 bad input, refused model or failed check,\n"
            "2 usage error; 128+N when stopped by signal N (nothing is left behind)\n");
}

/* Signals become a cancellation the converter polls, so it can remove its
 * temporary directory before the process ends. A handler may only touch
 * lock-free atomics, hence these two statics (the program's, not the
 * library's: the library takes the flag through vp_convert_opts.cancel). */
static atomic_int g_cancel;
static atomic_int g_signo;

static void on_signal(int sig)
{
    atomic_store(&g_signo, sig);
    atomic_store(&g_cancel, 1);
}

static int usage_err(const char *fmt, const char *arg)
{
    fputs("vitport convert: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see vitport convert --help)\n", stderr);
    return VP_EXIT_USAGE;
}

/* --opt VALUE or --opt=VALUE; returns the value or NULL (usage error printed). */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, int *bad)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n)) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n]) return NULL;
    if (*i + 1 >= argc) { usage_err("%s needs a value", opt); *bad = 1; return NULL; }
    return argv[++*i];
}

/* --check-only: a private directory to convert into, removed afterwards. */
#include <ftw.h>
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int cmd_convert(int argc, char **argv)
{
    int no_verify = 0, check_only = 0;
    char check_dir[PATH_MAX] = "", check_out[PATH_MAX + 16];
    vp_convert_opts o;
    memset(&o, 0, sizeof o);
    const char *pos[2] = {NULL, NULL}, *key = NULL, *shard = NULL;
    int npos = 0, bad = 0, rc, json = 0;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) { fprintf(stderr, "vitport convert: out of memory\n"); return VP_EXIT_FAIL; }
    o.sets = sets;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); free(sets); return VP_EXIT_OK; }
        else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--sync")) o.sync = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-crc")) o.no_crc = 1;
        else if (!strcmp(a, "--no-verify")) no_verify = 1;
        else if (!strcmp(a, "--check-only")) check_only = 1;
        else if ((v = opt_value(argc, argv, &i, "--family", &bad))) o.family = v;
        else if ((v = opt_value(argc, argv, &i, "--model-name", &bad))) o.model_name = v;
        else if ((v = opt_value(argc, argv, &i, "--key", &bad))) key = v;
        else if ((v = opt_value(argc, argv, &i, "--dtype", &bad))) o.dtype = v;
        else if ((v = opt_value(argc, argv, &i, "--config", &bad))) o.config_path = v;
        else if ((v = opt_value(argc, argv, &i, "--max-shard-size", &bad))) shard = v;
        else if ((v = opt_value(argc, argv, &i, "--bpe-vocab", &bad))) o.bpe_vocab = v;
        else if ((v = opt_value(argc, argv, &i, "--spm", &bad))) o.spm = v;
        else if ((v = opt_value(argc, argv, &i, "--labels", &bad))) o.labels = v;
        else if ((v = opt_value(argc, argv, &i, "--set", &bad))) {
            if (!strchr(v, '=') || v[0] == '=') { rc = usage_err("--set needs KEY=VALUE, got '%s'", v); free(sets); return rc; }
            sets[o.nsets++] = v;
        } else if (bad) break;
        else if (a[0] == '-' && a[1]) { rc = usage_err("unknown option '%s'", a); free(sets); return rc; }
        else if (npos < 2) pos[npos++] = a;
        else { rc = usage_err("unexpected argument '%s'", a); free(sets); return rc; }
    }
    if (bad) { free(sets); return VP_EXIT_USAGE; }
    if (check_only && (npos != 1 || no_verify)) {
        rc = usage_err("%s", npos != 1 ? "--check-only takes SRC and no OUT_DIR (it keeps nothing)"
                                       : "--check-only and --no-verify exclude each other");
        free(sets);
        return rc;
    }
    if (check_only) {
        const char *td = getenv("TMPDIR");
        snprintf(check_dir, sizeof check_dir, "%s/vitport-check.XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(check_dir)) {
            fprintf(stderr, "vitport convert: cannot create a temporary directory in %s\n", td && *td ? td : "/tmp");
            free(sets);
            return VP_EXIT_FAIL;
        }
        snprintf(check_out, sizeof check_out, "%s/model", check_dir);
        pos[npos++] = check_out;
    }
    if (npos < 2) {
        help(stderr);
        free(sets);
        return VP_EXIT_USAGE;
    }
    if (o.dtype && strcmp(o.dtype, "keep") && strcmp(o.dtype, "f32") && strcmp(o.dtype, "f16") && strcmp(o.dtype, "bf16")) {
        rc = usage_err("--dtype must be keep, f32, f16 or bf16, not '%s'", o.dtype);
        free(sets);
        return rc;
    }
    if (shard && vp_parse_size(shard, &o.max_shard_size)) {
        rc = usage_err("--max-shard-size: '%s' is not a size like 5GB, 500MB or 1000000", shard);
        free(sets);
        return rc;
    }
    if (o.family && strcmp(o.family, "auto")) {
        bool known = false;
        const char *name;
        for (size_t i = 0; (name = vp_convert_family(i, NULL)); i++) known |= !strcmp(name, o.family);
        if (!known) {
            rc = usage_err("unknown or unavailable family '%s'", o.family);
            free(sets);
            return rc;
        }
    }
    o.data_dir = NULL;    /* $VITPORT_DATADIR, else the data built into the library */

    static const int SIGS[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa, old[3];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking call (an open of a FIFO, a read) must fail
     * with EINTR so the engine sees the flag, instead of waiting forever. */
    sa.sa_flags = 0;
    for (int i = 0; i < 3; i++) sigaction(SIGS[i], &sa, &old[i]);
    o.cancel = &g_cancel;

    vp_cli_convert_check ck;
    memset(&ck, 0, sizeof ck);
    ck.st.out_dir = check_only ? "the converted model" : pos[1];
    ck.quiet = o.quiet;
    ck.st.no_crc = o.no_crc;
    if (!no_verify) { o.verify = vp_cli_convert_verify; o.verify_arg = &ck; }

    char err[2048];
    char *summary = NULL;
    rc = vp_convert_ex(pos[0], key, pos[1], &o, err, sizeof err, json ? &summary : NULL);
    if (check_only) nftw(check_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cJSON *sj = summary ? cJSON_Parse(summary) : NULL;
    vp_convert_free(summary);
    if (sj) {
        vp_cli_json_set(sj, "verify", ck.json ? ck.json : cJSON_CreateNull());
        ck.json = NULL;
        vp_cli_json_set(sj, "check_only", cJSON_CreateBool(check_only));
        if (check_only) vp_cli_json_set(sj, "out_dir", cJSON_CreateNull());
        if (check_only) vp_cli_json_set(sj, "config", cJSON_CreateNull());
    }
    cJSON_Delete(ck.json);
    vp_verify_free(ck.st.v);
    for (int i = 0; i < 3; i++) sigaction(SIGS[i], &old[i], NULL);
    free(sets);
    int signo = atomic_load(&g_signo);
    if (signo && rc) {
        if (!o.quiet) fprintf(stderr, "vitport convert: interrupted by signal %d; nothing written\n", signo);
        cJSON_Delete(sj);
        return 128 + signo;
    }
    if (rc) {
        fprintf(stderr, "vitport convert: %s\n", err);
        cJSON_Delete(sj);
        return VP_EXIT_FAIL;
    }
    if (!o.quiet)
        fprintf(stderr, "vitport convert: %s %s; %s\n", check_only ? "checked" : "wrote", check_only ? pos[0] : pos[1],
                no_verify ? "not verified (--no-verify)" : ck.st.summary[0] ? ck.st.summary : "not verified");
    vp_cli_json_print(sj);
    cJSON_Delete(sj);
    return VP_EXIT_OK;
}
