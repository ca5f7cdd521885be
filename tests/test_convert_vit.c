/* vitport convert on the timm ViT / DeiT and DINO fixtures
 * (tests/fixtures/convert/vit_cases.json, made by gen_vit.py; each case
 * with the program's arguments, run in this process with the verification
 * the program does): the tensors must be bit-identical to the seed mapping
 * applied in torch, the config and preprocessor values as expected, the
 * refusals fail naming the reason and leave nothing behind. Also the
 * converter's JSON writer against Python's json.dumps / repr, and size
 * parsing. */
#include "convert/convert.h"
#include "convert_check.h"

static char tmpdir[64];

/* ---- the converter's JSON as Python writes it------------------------------ */
static void check_float(double v, const char *want)
{
    cJSON *n = vp_json_float(v);
    char *s = vp_json_dump(n, NULL);
    char exp[64];
    snprintf(exp, sizeof exp, "%s\n", want);
    CHECKF(s && !strcmp(s, exp), "repr(%.17g) = %s, expected %s", v, s ? s : "(null)", want);
    vp__free(s);
    cJSON_Delete(n);
}

static void json_unit(void)
{
    /* Python 3: repr() of these floats */
    check_float(1e-6, "1e-06");
    check_float(1e-12, "1e-12");
    check_float(0.02, "0.02");
    check_float(1.0 / 255.0, "0.00392156862745098");
    check_float(0.0001, "0.0001");
    check_float(1e-05, "1e-05");
    check_float(123.0, "123.0");
    check_float(1e16, "1e+16");
    check_float(1e15, "1000000000000000.0");
    check_float(-0.0, "-0.0");
    check_float(0.5, "0.5");
    check_float(2.6592, "2.6592");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(-1.5e-7, "-1.5e-07");
    check_float(12345678.9, "12345678.9");

    /* json.dumps({...}, indent=2, sort_keys=True) + "\n" */
    const char *in = "{\"b\": [1, 2.0, {}], \"a\": {\"z\": null, \"10\": true, \"9\": \"\\u00e9\\\"\\n\\u0001\"}, \"c\": [], "
                     "\"d\": 1e2, \"e\": -3}";
    const char *want = "{\n  \"a\": {\n    \"10\": true,\n    \"9\": \"\\u00e9\\\"\\n\\u0001\",\n    \"z\": null\n  },\n"
                       "  \"b\": [\n    1,\n    2.0,\n    {}\n  ],\n  \"c\": [],\n  \"d\": 100.0,\n  \"e\": -3\n}\n";
    cJSON *j = vp_json_parse(in, strlen(in));
    CHECK(j != NULL);
    char *s = j ? vp_json_dump(j, NULL) : NULL;
    CHECKF(s && !strcmp(s, want), "json dump:\n%s\nexpected:\n%s", s ? s : "(null)", want);
    vp__free(s);
    cJSON_Delete(j);
    /* astral plane characters as surrogate pairs, like ensure_ascii */
    cJSON *e = cJSON_CreateString("\xf0\x9f\x98\x80");
    s = vp_json_dump(e, NULL);
    CHECKF(s && !strcmp(s, "\"\\ud83d\\ude00\"\n"), "emoji: %s", s ? s : "(null)");
    vp__free(s);
    cJSON_Delete(e);
    CHECK(vp_json_parse("{\"a\": 1} x", 10) == NULL);

    uint64_t n = 0;
    CHECK(vp_parse_size("5GB", &n) == VP_OK && n == 5000000000ull);
    CHECK(vp_parse_size("20kB", &n) == VP_OK && n == 20000);
    CHECK(vp_parse_size("2GiB", &n) == VP_OK && n == 2147483648ull);
    CHECK(vp_parse_size("1000", &n) == VP_OK && n == 1000);
    CHECK(vp_parse_size("500mb", &n) == VP_OK && n == 500000000ull);
    CHECK(vp_parse_size("5 GB", &n) != VP_OK);
    CHECK(vp_parse_size("-1GB", &n) != VP_OK);
    CHECK(vp_parse_size("GB", &n) != VP_OK);
    CHECK(vp_parse_size("0", &n) != VP_OK);
}

/* ---- one fixture case ----------------------------------------------------- */
/* Converted with the case's arguments as `vitport convert` runs them
 * (verification included), in this process: tests/util/convert_run.c. */
static void run_case(const char *fixdir, const cJSON *c)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *source = cJSON_GetObjectItem(c, "source")->valuestring;
    const cJSON *args = cJSON_GetObjectItem(c, "args");
    char out[256];
    snprintf(out, sizeof out, "%s/%s", tmpdir, name);
    char *argv[64];
    int k = 0;
    for (const cJSON *a = args->child; a && k < 64; a = a->next) argv[k++] = a->valuestring;
    tu_conv cv;
    tu_conv_init(&cv);
    cv.o.quiet = 0;          /* the program's default: its notes are checked below */
    cv.log = true;
    cv.verify = true;
    cv.cwd = fixdir;
    tu_conv_args(&cv, argv, k);
    int rc = tu_convert(&cv, source, out);
    const cJSON *refuse = cJSON_GetObjectItem(c, "refuse");
    if (refuse) {
        CHECKF(rc != VP_OK, "%s: converted, expected a refusal", name);
        CHECKF(strstr(cv.err, refuse->valuestring) != NULL, "%s: message lacks \"%s\":\n%s", name, refuse->valuestring, cv.err);
        CHECKF(!tu_exists(out), "%s: refused but %s exists", name, out);
        CHECKF(tu_count_entries(tmpdir, ".vitport-") == 0, "%s: a temporary directory was left behind", name);
        tu_conv_free(&cv);
        return;
    }
    CHECKF(rc == VP_OK, "%s: %s\n%s", name, cv.err, cv.logged);
    const cJSON *want_err = cJSON_GetObjectItem(c, "stderr");
    if (want_err) CHECKF(strstr(cv.logged, want_err->valuestring) != NULL, "%s: stderr lacks \"%s\":\n%s", name, want_err->valuestring, cv.logged);
    tu_conv_free(&cv);
    if (rc) return;

    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixdir, cJSON_GetObjectItem(c, "expect")->valuestring);
    vp_source *want = NULL;
    if (vp_source_open(&want, path, NULL)) {
        CHECKF(0, "%s: %s", name, vp_source_errmsg(want));
        vp_source_close(want);
        return;
    }
    const cJSON *shards = cJSON_GetObjectItem(c, "shards");
    if (shards) {
        /* the index as huggingface_hub splits it, then every shard's tensors */
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
        cJSON *idx = tu_load_json(path);
        CHECKF(idx != NULL, "%s: no readable model.safetensors.index.json", name);
        CHECKF(!tu_exists(strcat(strcpy(path, out), "/model.safetensors")), "%s: sharded output also has model.safetensors", name);
        if (idx) {
            const cJSON *meta = cJSON_GetObjectItem(idx, "metadata");
            const cJSON *ts = meta ? cJSON_GetObjectItem(meta, "total_size") : NULL;
            CHECKF(ts && ts->valuedouble == cJSON_GetObjectItem(shards, "total_size")->valuedouble, "%s: total_size", name);
            CHECKF(cc_json_equal(cJSON_GetObjectItem(idx, "weight_map"), cJSON_GetObjectItem(shards, "weight_map")),
                   "%s: weight_map differs from huggingface_hub's split", name);
        }
        char files[64][512];
        const char *fp[64];
        int nf = 0;
        for (const cJSON *e = cJSON_GetObjectItem(shards, "weight_map")->child; e; e = e->next) {
            bool dup = false;
            for (int i = 0; i < nf; i++) dup |= !strcmp(strrchr(files[i], '/') + 1, e->valuestring);
            if (!dup && nf < 64) { snprintf(files[nf], sizeof files[nf], "%s/%s", out, e->valuestring); fp[nf] = files[nf]; nf++; }
        }
        CHECKF(nf > 1, "%s: expected several shards", name);
        cc_compare_tensors(name, want, fp, nf);
        cJSON_Delete(idx);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        const char *fp[1] = {path};
        cc_compare_tensors(name, want, fp, 1);
    }
    vp_source_close(want);

    snprintf(path, sizeof path, "%s/config.json", out);
    cJSON *cfg = tu_load_json(path);
    CHECKF(cfg != NULL, "%s: config.json unreadable", name);
    if (cfg) cc_json_check(name, cfg, cJSON_GetObjectItem(c, "config"), "config.", false, false);
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/preprocessor_config.json", out);
    cJSON *pp = tu_load_json(path);
    CHECKF(pp != NULL, "%s: preprocessor_config.json unreadable", name);
    if (pp) CHECKF(cc_json_equal(pp, cJSON_GetObjectItem(c, "preprocessor")), "%s: preprocessor_config.json differs", name);
    cJSON_Delete(pp);
    tu_rmtree(out);
}

/* vit_head.pth converted (and verified, as the program does) with argv into out. */
static int convert_vit_head(tu_conv *cv, const char *fixdir, char **argv, int argc, const char *out)
{
    tu_conv_init(cv);
    cv->verify = true;
    cv->cwd = fixdir;
    tu_conv_args(cv, argv, argc);
    return tu_convert(cv, "vit_head.pth", out);
}

/* --force replaces a folder atomically; without it an existing one stays. */
static void force_case(const char *fixdir)
{
    char out[256], marker[300];
    snprintf(out, sizeof out, "%s/existing", tmpdir);
    snprintf(marker, sizeof marker, "%s/marker", out);
    mkdir(out, 0755);
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
    char *argv[] = {"--set", "num_attention_heads=2", "--quiet", "--force"};
    tu_conv cv;
    int rc = convert_vit_head(&cv, fixdir, argv, 3, out);
    CHECKF(rc != VP_OK, "existing OUT_DIR without --force: converted");
    CHECK(tu_exists(marker));
    tu_conv_args(&cv, argv + 3, 1);
    rc = tu_convert(&cv, "vit_head.pth", out);
    CHECKF(rc == VP_OK, "--force: %s", cv.err);
    CHECK(!tu_exists(marker));
    snprintf(marker, sizeof marker, "%s/model.safetensors", out);
    CHECK(tu_exists(marker));
    CHECKF(tu_count_entries(tmpdir, ".vitport-") == 0, "--force left a temporary or old directory behind");
    tu_conv_free(&cv);
    tu_rmtree(out);
}

/* The runner's verification refuses a model that computes something else
 * (--set hidden_act=relu), as the program's does: nothing written. */
static void verify_refuses(const char *fixdir)
{
    char out[256];
    snprintf(out, sizeof out, "%s/differs", tmpdir);
    char *argv[] = {"--set", "num_attention_heads=2", "--set", "hidden_act=relu"};
    tu_conv cv;
    int rc = convert_vit_head(&cv, fixdir, argv, 4, out);
    CHECKF(rc == VP_ERR_MISMATCH, "hidden_act=relu: rc %d (%s)", rc, cv.err);
    CHECKF(tu_has(cv.err, "verification failed") && tu_has(cv.err, out) && tu_one_line(cv.err), "hidden_act=relu: %s", cv.err);
    CHECKF(!tu_exists(out) && tu_count_entries(tmpdir, ".vitport-") == 0, "hidden_act=relu: files left");
    tu_conv_free(&cv);
}

int main(void)
{
    json_unit();
    char fixdir[512], path[600];
    snprintf(fixdir, sizeof fixdir, "%s/convert", tu_fixtures_dir());
    snprintf(path, sizeof path, "%s/vit_cases.json", fixdir);
    cJSON *cases = tu_load_json(path);
    CHECKF(cases && cJSON_GetArraySize(cases) >= 20, "%s: cannot read the cases", path);
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_convert_vit");
    int n = 0;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, n++) run_case(fixdir, c);
    force_case(fixdir);
    verify_refuses(fixdir);
    cJSON_Delete(cases);
    tu_rmtree(tmpdir);
    fprintf(stderr, "test_convert_vit: %d fixture cases\n", n);
    TEST_MAIN_END();
}
