/*
 * The converter's driver: vp_convert_ex runs the stages (converter.h) in
 * order: choose the family, build the plan, --config/--set, the strict
 * check, the layout, write into a temporary directory, publish.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/converter.h"

#define DEFAULT_SHARD ((uint64_t)5000000000ull)

/* ------------------------------------------------------------------------ */
/* Sizes                                                                     */
/* ------------------------------------------------------------------------ */
int vp_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s) return VP_ERR_ARG;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0)) return VP_ERR_ARG;
    static const struct { const char *suffix; double mul; } U[] = {
        {"", 1}, {"b", 1}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
        {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
    };
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
        if (strcasecmp(end, U[i].suffix)) continue;
        double b = v * U[i].mul;
        if (b >= 1.8e19 || b < 1) return VP_ERR_ARG;
        *out = (uint64_t)b;
        return VP_OK;
    }
    return VP_ERR_ARG;
}

static int parse_dtype_opt(const char *s, vp_dtype *out, int *keep)
{
    *keep = 0;
    if (!s || !strcmp(s, "f32") || !strcmp(s, "float32")) { *out = VP_F32; return VP_OK; }
    if (!strcmp(s, "f16") || !strcmp(s, "float16")) { *out = VP_F16; return VP_OK; }
    if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) { *out = VP_BF16; return VP_OK; }
    if (!strcmp(s, "keep")) { *keep = 1; *out = VP_F32; return VP_OK; }
    return VP_ERR_ARG;
}

/* Converter-owned config fields: torch_dtype follows the written dtype. */
static int finish_config(vp_plan *p, const vp_layout *L, char *err, size_t errlen)
{
    vp_dtype fd = p->keep_dtype ? VP_F32 : p->out_dtype_float;
    if (p->keep_dtype)
        for (size_t i = 0; i < L->n; i++)
            if (vp_conv_is_float(L->w[i].dtype)) { fd = L->w[i].dtype; break; }
    int rc = vp_json_set_str(p->config, "torch_dtype", vp_dtype_name(fd));
    if (!rc && !cJSON_GetObjectItemCaseSensitive(p->config, "transformers_version"))
        rc = vp_json_set_str(p->config, "transformers_version", VP_HF_LAYOUT_VERSION);
    if (rc) { snprintf(err, errlen, "out of memory"); return rc; }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(p->config, "architectures");
    if (p->hf_class && arch) {
        const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
        if (!a0 || !cJSON_IsString(a0) || strcmp(a0->valuestring, p->hf_class)) {
            snprintf(err, errlen, "config architectures says %s but this checkpoint converts to %s",
                     a0 && cJSON_IsString(a0) ? a0->valuestring : "something else", p->hf_class);
            return VP_ERR_ARG;
        }
    }
    return VP_OK;
}

/* What vp_convert_ex's summary text follows: the allocator it came from. */
typedef union summary_head { vp_allocator a; max_align_t align; } summary_head;

static cJSON *make_summary(const vp_plan *p, const vp_layout *L, const char *out_dir, double secs)
{
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/config.json", out_dir);
    vp_json_set_str(s, "family", p->family ? p->family : "");
    vp_json_set_str(s, "class", p->hf_class ? p->hf_class : "");
    vp_json_set_str(s, "out_dir", out_dir);
    vp_json_set_str(s, "config", cfg);
    vp_json_set(s, "key", p->key ? cJSON_CreateString(p->key) : cJSON_CreateNull());
    vp_json_set_int(s, "tensors", (int64_t)L->n);
    vp_json_set_int(s, "bytes", (int64_t)L->total);
    vp_json_set_int(s, "shards", L->nshards);
    vp_json_set_str(s, "dtype", p->keep_dtype ? "keep" : vp_dtype_name(p->out_dtype_float));
    vp_json_set_float(s, "seconds", round(secs * 1000) / 1000);
    cJSON *drops = cJSON_CreateArray();
    size_t ns = vp_source_count(p->src);
    /* count per (interned) rule, in the order rules were first named */
    int64_t *count = vp__calloc(p->nrules ? p->nrules : 1, sizeof *count);
    for (size_t i = 0; count && i < ns; i++) {
        if (p->state[i] != VP_SRC_DROPPED) continue;
        for (size_t r = 0; r < p->nrules; r++)
            if (p->why[i] == p->rules[r]) { count[r]++; break; }
    }
    for (size_t r = 0; drops && count && r < p->nrules; r++) {
        if (!count[r]) continue;
        cJSON *d = cJSON_CreateObject();
        vp_json_set_str(d, "rule", p->rules[r]);
        vp_json_set_int(d, "count", count[r]);
        cJSON_AddItemToArray(drops, d);
    }
    vp__free(count);
    vp_json_set(s, "dropped", drops);
    return s;
}

static int convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                   char *err, size_t errlen, char **summary)
{
    double t0 = vp_conv_now();
    vp_convert_opts defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!opts) opts = &defaults;
    if (summary) *summary = NULL;
    err[0] = 0;
    if (!src_path || !out_dir) { snprintf(err, errlen, "no source or output directory"); return VP_ERR_ARG; }

    vp_plan p;
    memset(&p, 0, sizeof p);
    p.opts = opts;
    if (parse_dtype_opt(opts->dtype, &p.out_dtype_float, &p.keep_dtype)) {
        snprintf(err, errlen, "--dtype must be keep, f32, f16 or bf16 (got '%s')", opts->dtype);
        return VP_ERR_ARG;
    }
    uint64_t max_shard = opts->max_shard_size ? opts->max_shard_size : DEFAULT_SHARD;
    char parent[PATH_MAX], base[NAME_MAX + 1];
    if (vp_conv_split_out(out_dir, parent, sizeof parent, base, sizeof base)) {
        snprintf(err, errlen, "bad output directory '%s'", out_dir);
        return VP_ERR_ARG;
    }
    struct stat st;
    if (lstat(out_dir, &st) == 0 && !opts->force) {
        snprintf(err, errlen, "%s exists (use --force to replace it)", out_dir);
        return VP_ERR_ARG;
    }
    if (stat(parent, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: the parent directory does not exist", out_dir);
        return VP_ERR_IO;
    }

    vp_source *src = NULL;
    int rc = vp_source_open(&src, src_path, key);
    if (rc) {
        snprintf(err, errlen, "%s", vp_source_errmsg(src));
        vp_source_close(src);
        return rc;
    }
    const vp_family *fam = NULL;
    char *chosen_key = NULL;
    rc = vp_conv_choose(&src, src_path, key, opts, &fam, &chosen_key, err, errlen);
    if (rc) { vp_source_close(src); vp__free(chosen_key); return rc; }
    vp_source_set_crc_check(src, !opts->no_crc);   /* the reader checks CRC-32s as bytes are first read */
    vp__source_set_cancel(src, opts->cancel);      /* and stops long reads (CRC, inflate) when cancelled */

    vp_layout L;
    memset(&L, 0, sizeof L);
    char tmp[PATH_MAX] = "";
    rc = vp_conv_plan_init(&p, src, fam, chosen_key ? chosen_key : key);
    if (rc) { snprintf(err, errlen, "out of memory"); goto done; }

    if (!opts->quiet)
        fprintf(stderr, "vitport convert: found %s (family '%s')\n", fam->summary ? fam->summary : fam->name, fam->name);
    rc = fam->build(&p);
    if (rc == VP_OK && !p.overrides_applied) rc = vp_plan_apply_overrides(&p);
    if (rc) { snprintf(err, errlen, "%s", p.err[0] ? p.err : vp_strerror(rc)); goto done; }
    rc = vp_conv_strict_check(&p, err, errlen);
    if (rc) goto done;
    rc = vp_conv_layout(&p, max_shard, &L);
    if (rc) { snprintf(err, errlen, "out of memory"); goto done; }
    rc = finish_config(&p, &L, err, errlen);
    if (rc) goto done;
    if (!opts->quiet)
        fprintf(stderr, "vitport convert: writing %s: %zu tensors, %.1f MB, %s\n", p.hf_class ? p.hf_class : "?", L.n,
                (double)L.total / 1e6, p.keep_dtype ? "dtypes kept" : vp_dtype_name(p.out_dtype_float));
    if (vp_conv_cancelled(opts)) { rc = VP_ERR_IO; snprintf(err, errlen, "interrupted"); goto done; }

    vp_conv_remove_stale(parent, opts->quiet);
    if (vp_conv_make_temp_dir(tmp, sizeof tmp, parent, base)) {
        snprintf(err, errlen, "cannot create a temporary directory beside %s: %s", out_dir, strerror(errno));
        tmp[0] = 0;
        rc = VP_ERR_IO;
        goto done;
    }
    rc = vp_conv_write(&p, &L, tmp, err, errlen);
    if (rc) goto done;
    /* verification (src/verify): a failed check publishes nothing */
    if (opts->verify && (rc = opts->verify(opts->verify_arg, tmp, src_path, p.key, p.family, err, errlen))) goto done;
    if (vp_conv_cancelled(opts)) { rc = VP_ERR_IO; snprintf(err, errlen, "interrupted"); goto done; }
    rc = vp_conv_publish(tmp, out_dir, parent, base, opts->force, err, errlen);
    if (rc) goto done;
    tmp[0] = 0;
    if (summary) {
        cJSON *s = make_summary(&p, &L, out_dir, vp_conv_now() - t0);
        size_t len = 0;
        char *text = s ? vp_json_dump(s, &len) : NULL;
        cJSON_Delete(s);
        /* behind a header that keeps the allocator, for vp_convert_free */
        summary_head *h = text ? vp__malloc(sizeof *h + len + 1) : NULL;
        if (h) {
            h->a = vp__alloc_get();
            memcpy(h + 1, text, len + 1);
            *summary = (char *)(h + 1);
        }
        vp__free(text);
    }

done:
    if (tmp[0]) vp_conv_remove_tree(tmp);
    vp_conv_layout_free(&L);
    vp_conv_plan_free(&p);
    vp_source_close(src);
    vp__free(chosen_key);
    return rc;
}

int vp_convert_ex(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
                  char *err, size_t errlen, char **summary)
{
    vp__alloc_scope sc;
    vp__alloc_enter(&sc, opts && opts->allocator ? opts->allocator : vp__alloc_current());
    int rc = convert(src_path, key, out_dir, opts, err, errlen, summary);
    vp__alloc_leave(&sc);
    /* One line, whatever the tensor names quoted in it hold ("a\nb" is a
     * valid key in every format). */
    if (rc && err) vp__oneline(err);
    return rc;
}

int vp_convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts,
               char *err, size_t errlen)
{
    return vp_convert_ex(src_path, key, out_dir, opts, err, errlen, NULL);
}

void vp_convert_free(char *summary)
{
    if (!summary) return;
    summary_head *h = (summary_head *)summary - 1;
    VP__WITH_ALLOC_VOID(&h->a, vp__free(h));
}

const char *vp_convert_family(size_t i, const char **summary)
{
    size_t n = 0;
    while (vp_families[n]) n++;
    if (i >= n) return NULL;
    if (summary) *summary = vp_families[i]->summary ? vp_families[i]->summary : "";
    return vp_families[i]->name;
}
