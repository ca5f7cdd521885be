/* Every conformance case's source checkpoint against its manifest.json (what
 * torch/numpy report for the checkpoint the original project wrote): format,
 * tensor names in order, dtype, shape, the float64 sum of the values, and,
 * where the manifest gives a torch storage record, the storage offset, the
 * strides and which tensors share a storage. Cases are iterated, not named:
 * more may come. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "vitport/vitport.h"

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
        const char *nm = tu_jstr(m, "name");
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

/* Bytes stored uncompressed, little-endian and in C order lie in the file as
 * they are: vp_source_file_range must offer them (the copy_file_range path). */
static void check_range_offered(vp_source *src, size_t i, const cJSON *want, const cJSON *man, const char *cs)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(want, "storage");
    char member[4200];
    if (cJSON_IsObject(st)) snprintf(member, sizeof member, "%s", tu_jstr(st, "record") ? tu_jstr(st, "record") : "");
    else snprintf(member, sizeof member, "%s.npy", t->name);
    const char *method = tu_jstr(zip_member(man, member), "method");
    const char *dt = tu_jstr(want, "dtype");
    if (!method || strcmp(method, "stored") || !t->numel || !tu_c_contiguous(t) || (dt && dt[0] == '>') ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, "fortran_order")))
        return;
    uint64_t at;
    CHECKF(vp_source_file_range(src, i, &at) == VP_OK, "%s: no file range for '%s' (stored member %s)", cs, t->name, member);
}

static void check_tensor(vp_source *src, size_t i, const cJSON *want, const cJSON *man, const char *cs)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const char *name = tu_jstr(want, "name");
    CHECKF(name && !strcmp(t->name, name), "%s: tensor %zu is '%s', expected '%s'", cs, i, t->name, name ? name : "?");
    if (!name || strcmp(t->name, name)) return;
    const char *dt = dtype_name(tu_jstr(want, "dtype"));
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
        int64_t rec = record_offset(man, tu_jstr(st, "record"));
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
    cJSON *cj = tu_load_json(path);
    snprintf(path, sizeof path, "%s/%s/manifest.json", dir, cname);
    cJSON *man = tu_load_json(path);
    CHECKF(cj && man, "%s: case.json or manifest.json missing or unparsable", cs);
    const char *file = cj ? tu_jstr(cj, "source_file") : NULL;
    CHECKF(file != NULL, "%s: case.json has no source_file", cs);
    if (!cj || !man || !file) { cJSON_Delete(cj); cJSON_Delete(man); return; }

    snprintf(path, sizeof path, "%s/%s/%s", dir, cname, file);
    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s: open: %s", cs, vp_source_errmsg(src));
    if (rc == VP_OK) {
        const char *want_fmt = tu_container_format(tu_jstr(man, "container"));
        CHECKF(want_fmt && !strcmp(vp_source_format(src), want_fmt), "%s: format '%s' for container '%s'", cs,
               vp_source_format(src), tu_jstr(man, "container") ? tu_jstr(man, "container") : "?");
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

int main(void)
{
    tu_cases cases;
    if (tu_cases_open(&cases)) {
        printf("note: no conformance directory (VP_CONFORMANCE=%s): skipped\n", tu_env("VP_CONFORMANCE", ""));
        TEST_MAIN_END();
    }
    CHECKF(cases.n > 0, "%s holds no case (no */case.json)", cases.root);
    for (size_t i = 0; i < cases.n; i++) check_case(cases.root, cases.name[i]);
    tu_cases_free(&cases);
    TEST_MAIN_END();
}
