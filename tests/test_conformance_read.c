/* Every conformance case's source checkpoint against its manifest.json (what
 * torch/numpy report for the checkpoint the original project wrote): format,
 * tensor names in order, dtype, shape, the float64 sum of the values, and,
 * where the manifest gives a torch storage record, the storage offset, the
 * strides and which tensors share a storage. Cases are iterated, not named:
 * more may come. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "test.h"
#include "vitport/vitport.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) { cap = cap * 2 + 65536; p = realloc(p, cap + 1); if (!p) { fclose(f); return NULL; } }
        got = fread(p + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    p[n] = 0;
    return p;
}

static cJSON *load_json(const char *path)
{
    char *text = slurp(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The manifest's free-text container description -> vp_source_format's name. */
static const char *format_for(const char *container)
{
    if (!container) return NULL;
    if (strcasestr(container, "torchscript") || strcasestr(container, "jit")) return "torchscript";
    if (strcasestr(container, "legacy")) return "torch-legacy";
    if (strcasestr(container, "npz")) return "npz";
    if (strcasestr(container, "safetensors")) return "safetensors";
    if (strcasestr(container, "npy")) return "npy";
    if (strcasestr(container, "torch.save")) return "torch-zip";
    return NULL;
}

/* NumPy's dtype spellings ("<f4", "float32", "|b1") -> NumPy's name. */
static const char *dtype_name(const char *s)
{
    static const struct { const char *code, *name; } M[] = {
        {"f8", "float64"}, {"f4", "float32"}, {"f2", "float16"}, {"i8", "int64"}, {"i4", "int32"},
        {"i2", "int16"}, {"i1", "int8"}, {"u1", "uint8"}, {"b1", "bool"}, {"V2", "bfloat16"}};
    if (!s) return "?";
    const char *c = (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=') ? s + 1 : s;
    for (size_t i = 0; i < sizeof M / sizeof *M; i++)
        if (!strcmp(c, M[i].code)) return M[i].name;
    return s;
}

static int64_t jint(const cJSON *v) { return (int64_t)v->valuedouble; }

/* The manifest's zip.detail entry for a member, or NULL. */
static const cJSON *zip_member(const cJSON *man, const char *name)
{
    const cJSON *zip = cJSON_GetObjectItemCaseSensitive(man, "zip");
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(zip, "detail"), *m;
    cJSON_ArrayForEach(m, det) {
        const char *nm = jstr(m, "name");
        if (nm && name && !strcmp(nm, name)) return m;
    }
    return NULL;
}

/* The zip member's data offset for a storage record; -1 if unknown. */
static int64_t record_offset(const cJSON *man, const char *record)
{
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(zip_member(man, record), "data_offset");
    return cJSON_IsNumber(off) ? jint(off) : -1;
}

static int c_contiguous(const vp_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != s) return 0;
        s *= t->shape[d];
    }
    return 1;
}

/* Bytes stored uncompressed, little-endian and in C order lie in the file as
 * they are: vp_source_file_range must offer them (the copy_file_range path). */
static void check_range_offered(vp_source *src, size_t i, const cJSON *want, const cJSON *man, const char *cs)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(want, "storage");
    char member[4200];
    if (cJSON_IsObject(st)) snprintf(member, sizeof member, "%s", jstr(st, "record") ? jstr(st, "record") : "");
    else snprintf(member, sizeof member, "%s.npy", t->name);
    const char *method = jstr(zip_member(man, member), "method");
    const char *dt = jstr(want, "dtype");
    if (!method || strcmp(method, "stored") || !t->numel || !c_contiguous(t) || (dt && dt[0] == '>') ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, "fortran_order")))
        return;
    uint64_t at;
    CHECKF(vp_source_file_range(src, i, &at) == VP_OK, "%s: no file range for '%s' (stored member %s)", cs, t->name, member);
}

static void check_tensor(vp_source *src, size_t i, const cJSON *want, const cJSON *man, const char *cs)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const char *name = jstr(want, "name");
    CHECKF(name && !strcmp(t->name, name), "%s: tensor %zu is '%s', expected '%s'", cs, i, t->name, name ? name : "?");
    if (!name || strcmp(t->name, name)) return;
    const char *dt = dtype_name(jstr(want, "dtype"));
    CHECKF(!strcmp(vp_dtype_name(t->dtype), dt), "%s: '%s' dtype %s, expected %s", cs, name, vp_dtype_name(t->dtype), dt);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(want, "shape");
    int nd = cJSON_GetArraySize(shape), same = t->ndim == nd;
    for (int d = 0; d < nd && same; d++) same = t->shape[d] == jint(cJSON_GetArrayItem(shape, d));
    CHECKF(same, "%s: '%s' shape differs (ndim %d, expected %d)", cs, name, t->ndim, nd);
    if (!same) return;

    const cJSON *st = cJSON_GetObjectItemCaseSensitive(want, "storage");
    if (cJSON_IsObject(st)) {
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(st, "offset");
        const cJSON *stride = cJSON_GetObjectItemCaseSensitive(st, "stride");
        if (off) CHECKF(t->storage_offset == jint(off), "%s: '%s' storage offset %lld, expected %lld", cs, name,
                        (long long)t->storage_offset, (long long)jint(off));
        if (stride) {
            int ok = cJSON_GetArraySize(stride) == nd;
            for (int d = 0; d < nd && ok; d++) ok = t->strides[d] == jint(cJSON_GetArrayItem(stride, d));
            CHECKF(ok, "%s: '%s' strides differ from torch's", cs, name);
        }
        /* a zero-copy file range, when offered, points into the tensor's own record */
        int64_t rec = record_offset(man, jstr(st, "record"));
        uint64_t at;
        if (rec >= 0 && off && vp_source_file_range(src, i, &at) == VP_OK)
            CHECKF(at == (uint64_t)(rec + jint(off) * (int64_t)vp_dtype_size(t->dtype)),
                   "%s: '%s' file range at %llu, its record's data starts at %lld", cs, name,
                   (unsigned long long)at, (long long)rec);
    }

    check_range_offered(src, i, want, man, cs);

    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(want, "sum");
    if (!cJSON_IsNumber(sum)) return;
    double *v = malloc(t->numel ? t->numel * sizeof *v : 1);
    if (!v) { CHECK(!"out of memory"); return; }
    int rc = vp_source_read_as(src, i, VP_F64, v, t->numel * sizeof *v);
    CHECKF(rc == VP_OK, "%s: read '%s': %s", cs, name, vp_source_errmsg(src));
    if (rc == VP_OK) {
        long double s = 0, sabs = 0;
        for (uint64_t k = 0; k < t->numel; k++) { s += v[k]; sabs += fabsl((long double)v[k]); }
        /* torch/numpy add in their own order: allow rounding, nothing more */
        CHECKF(fabs((double)s - sum->valuedouble) <= 1e-9 * (double)sabs + 1e-300,
               "%s: '%s' sum %.17g, expected %.17g", cs, name, (double)s, sum->valuedouble);
    }
    vp_source_release(src, i);
    free(v);
}

/* shared_storages: {record: [names...]} -> those tensors view one storage. */
static void check_shared(vp_source *src, const cJSON *man, const char *cs)
{
    const cJSON *shared = cJSON_GetObjectItemCaseSensitive(man, "shared_storages"), *rec;
    cJSON_ArrayForEach(rec, shared) {
        long first = -1;
        const cJSON *n;
        cJSON_ArrayForEach(n, rec) {
            long i = vp_source_find(src, n->valuestring);
            CHECKF(i >= 0, "%s: no tensor '%s'", cs, n->valuestring);
            if (i < 0) continue;
            long s = (long)vp_source_tensor(src, (size_t)i)->storage;
            if (first < 0) first = s;
            else CHECKF(s == first, "%s: '%s' should share storage record %s", cs, n->valuestring, rec->string);
        }
    }
}

static void check_case(const char *dir, const char *cname)
{
    char path[4096], cs[512];
    snprintf(cs, sizeof cs, "%s", cname);
    snprintf(path, sizeof path, "%s/%s/case.json", dir, cname);
    cJSON *cj = load_json(path);
    snprintf(path, sizeof path, "%s/%s/manifest.json", dir, cname);
    cJSON *man = load_json(path);
    CHECKF(cj && man, "%s: case.json or manifest.json missing or unparsable", cs);
    const char *file = cj ? jstr(cj, "source_file") : NULL;
    CHECKF(file != NULL, "%s: case.json has no source_file", cs);
    if (!cj || !man || !file) { cJSON_Delete(cj); cJSON_Delete(man); return; }

    snprintf(path, sizeof path, "%s/%s/%s", dir, cname, file);
    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s: open: %s", cs, vp_source_errmsg(src));
    if (rc == VP_OK) {
        const char *want_fmt = format_for(jstr(man, "container"));
        CHECKF(want_fmt && !strcmp(vp_source_format(src), want_fmt), "%s: format '%s' for container '%s'", cs,
               vp_source_format(src), jstr(man, "container") ? jstr(man, "container") : "?");
        const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(man, "tensors"), *t;
        size_t n = (size_t)cJSON_GetArraySize(tensors), i = 0;
        CHECKF(vp_source_count(src) == n, "%s: %zu tensors, expected %zu", cs, vp_source_count(src), n);
        cJSON_ArrayForEach(t, tensors) {
            if (i >= vp_source_count(src)) break;
            check_tensor(src, i++, t, man, cs);
        }
        check_shared(src, man, cs);
        printf("%s: %s, %zu tensors\n", cs, vp_source_format(src), vp_source_count(src));
    }
    vp_source_close(src);
    cJSON_Delete(cj);
    cJSON_Delete(man);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    const char *dir = getenv("VP_CONFORMANCE");
    struct stat sb;
    DIR *d = dir && *dir ? opendir(dir) : NULL;
    if (!d) {
        printf("note: no conformance directory (VP_CONFORMANCE=%s): skipped\n", dir ? dir : "");
        TEST_MAIN_END();
    }
    char *names[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        char p[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s/case.json", dir, e->d_name);
        if (stat(p, &sb) == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    CHECKF(n > 0, "%s holds no case (no */case.json)", dir);
    for (size_t i = 0; i < n; i++) {
        check_case(dir, names[i]);
        free(names[i]);
    }
    TEST_MAIN_END();
}
