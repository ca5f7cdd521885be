/* The PyTorch readers (torch zip, TorchScript, legacy).
 *  - Every conformance case whose manifest "container" is a torch kind:
 *    format name, every tensor's name (in order), dtype, shape, storage
 *    record, offset and strides, and the float64 sum of its values, against
 *    what torch reported when the case was made (manifest.json).
 *  - Archives written here (tests/test_util.h's zip writer, hand-made
 *    pickles) for what real files rarely show: records shorter than their
 *    storage, views past a storage, big-endian archives, missing records,
 *    pickles that call os.system, self-containing and exponentially shared
 *    object trees, deflated storages, TorchScript with and without class
 *    code.
 *  - The legacy fixture cut at every byte, and with a storage size changed. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/internal.h"
#include "test.h"
#include "test_bytes.h"
#include "test_util.h"

static char tmpdir[256];

/* ---- conformance cases ---------------------------------------------------------------- */
static void check_case_tensor(vp_source *src, size_t i, const cJSON *want, const char *cs)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const char *name = tu_jstr(want, "name");
    CHECKF(t && name && !strcmp(t->name, name), "%s: tensor %zu is '%s', expected '%s'", cs, i, t ? t->name : "-", name ? name : "?");
    if (!t || !name || strcmp(t->name, name)) return;
    const char *dt = tu_jstr(want, "dtype");
    CHECKF(dt && !strcmp(vp_dtype_name(t->dtype), dt), "%s: '%s' dtype %s, expected %s", cs, name, vp_dtype_name(t->dtype), dt ? dt : "?");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(want, "shape");
    int nd = cJSON_GetArraySize(shape), same = t->ndim == nd;
    for (int d = 0; d < nd && same; d++) same = t->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
    CHECKF(same, "%s: '%s' shape differs", cs, name);

    const cJSON *st = cJSON_GetObjectItemCaseSensitive(want, "storage");
    if (cJSON_IsObject(st)) {
        const char *rec = tu_jstr(st, "record");
        const vp_storage *s = t->storage >= 0 ? &src->storages[t->storage] : NULL;
        CHECKF(s && rec && s->label && !strcmp(s->label, rec), "%s: '%s' views storage '%s', expected '%s'", cs, name,
               s && s->label ? s->label : "-", rec ? rec : "?");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(st, "offset");
        if (cJSON_IsNumber(off)) CHECK_EQ_INT(t->storage_offset, (int64_t)off->valuedouble);
        const cJSON *stride = cJSON_GetObjectItemCaseSensitive(st, "stride");
        if (cJSON_IsArray(stride)) {
            int ok = cJSON_GetArraySize(stride) == t->ndim;
            for (int d = 0; d < t->ndim && ok; d++) ok = t->strides[d] == (int64_t)cJSON_GetArrayItem(stride, d)->valuedouble;
            CHECKF(ok, "%s: '%s' strides differ", cs, name);
        }
    }
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(want, "sum");
    if (!cJSON_IsNumber(sum)) return;
    double *v = malloc(t->numel ? t->numel * sizeof *v : 1);
    int rc = vp_source_read_as(src, i, VP_F64, v, t->numel * sizeof *v);
    CHECKF(rc == VP_OK, "%s: read '%s': %s", cs, name, vp_source_errmsg(src));
    if (rc == VP_OK) {
        /* Neumaier summation: close to torch's float64 sum of the same values */
        double s = 0, comp = 0;
        for (uint64_t k = 0; k < t->numel; k++) {
            double x = v[k], u = s + x;
            comp += fabs(s) >= fabs(x) ? (s - u) + x : (x - u) + s;
            s = u;
        }
        s += comp;
        double want_sum = sum->valuedouble, tol = 1e-6 * fmax(1.0, fabs(want_sum));
        CHECKF(fabs(s - want_sum) <= tol, "%s: '%s' sum %.17g, expected %.17g", cs, name, s, want_sum);
    }
    free(v);
}

static void test_conformance(void)
{
    tu_cases cases;
    if (tu_cases_open(&cases)) { printf("note: no conformance directory (VP_CONFORMANCE): skipped\n"); return; }
    int torch_cases = 0;
    for (size_t c = 0; c < cases.n; c++) {
        const char *cname = cases.name[c];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/manifest.json", cases.root, cname);
        cJSON *man = tu_load_json(path);
        const char *container = tu_jstr(man, "container"), *file = tu_jstr(man, "file");
        if (!container || !file || !strcasestr(container, "torch")) { cJSON_Delete(man); continue; }
        torch_cases++;
        snprintf(path, sizeof path, "%s/%s/%s", cases.root, cname, file);
        vp_source *src = NULL;
        int rc = vp_source_open(&src, path, NULL);
        CHECKF(rc == VP_OK, "%s: %s", cname, vp_source_errmsg(src));
        if (rc == VP_OK) {
            CHECK_STR(vp_source_format(src), tu_container_format(container));
            const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(man, "tensors");
            size_t want_n = (size_t)cJSON_GetArraySize(tensors);
            CHECKF(vp_source_count(src) == want_n, "%s: %zu tensors, manifest has %zu", cname, vp_source_count(src), want_n);
            for (size_t i = 0; i < want_n && i < vp_source_count(src); i++)
                check_case_tensor(src, i, cJSON_GetArrayItem(tensors, (int)i), cname);
            /* the object tree is kept: a dict (state dict) or the TorchScript module */
            const vp_value *r = vp_source_root(src);
            CHECK(r != NULL);
            if (!strcmp(vp_source_format(src), "torchscript")) {
                CHECK_EQ_INT(vp_value_kind(r), VP_V_OBJECT);
                CHECK(vp_value_str(r) && !strncmp(vp_value_str(r), "__torch__.", 10));
            }
            printf("%s: %s, %zu tensors\n", cname, vp_source_format(src), vp_source_count(src));
        }
        vp_source_close(src);
        cJSON_Delete(man);
    }
    tu_cases_free(&cases);
    CHECK(torch_cases > 0);
}

static const int64_t S23[] = {2, 3}, C23[] = {3, 1}, S32[] = {3, 2}, T32[] = {1, 3}, S4[] = {4}, C1[] = {1},
                     S24[] = {2, 4}, C24[] = {4, 1};

/* {'w': [2,3] f32 on '0', 'wt': its transpose, 'h': [4] f16 on '1'} */
static void state_pickle(bytes *b, int w_shape_24)
{
    put8(b, 0x80); put8(b, 2); put8(b, '}'); put8(b, '(');
    pk_str(b, "w");
    pk_tensor(b, "FloatStorage", "0", 6, 0, 2, w_shape_24 ? S24 : S23, w_shape_24 ? C24 : C23, false);
    pk_str(b, "wt"); pk_tensor(b, "FloatStorage", "0", 6, 0, 2, S32, T32, false);
    pk_str(b, "h"); pk_tensor(b, "HalfStorage", "1", 4, 0, 1, S4, C1, false);
    put8(b, 'u'); put8(b, '.');
}

static int open_zip(const char *name, const zmember *m, int count, vp_source **src)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    bytes zip = build_zip(m, count, false, NULL);
    tu_write_file(path, zip.p, zip.n);
    free(zip.p);
    *src = NULL;
    return vp_source_open(src, path, NULL);
}

static void test_crafted_zip(void)
{
    float w[6] = {0, 1, 2, 3, 4, 5};
    uint16_t h[4] = {0x3c00, 0x4000, 0xc000, 0x3800};   /* 1, 2, -2, 0.5 in float16 */
    bytes pk = {0};
    state_pickle(&pk, 0);
    zmember m[] = {
        {"mymodel/data.pkl", pk.p, pk.n, 0, false},
        {"mymodel/byteorder", "little", 6, 0, false},
        {"mymodel/data/0", w, sizeof w, 0, false},
        {"mymodel/data/1", h, sizeof h, 8, false},   /* deflated: read through inflate */
        {"mymodel/version", "3\n", 2, 0, false},
    };
    vp_source *src;
    int rc = open_zip("ok.pth", m, 5, &src);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
    if (rc == VP_OK) {
        CHECK_STR(vp_source_format(src), "torch-zip");
        CHECK_EQ_INT(vp_source_count(src), 3);
        CHECK_EQ_INT(src->nstorages, 2);   /* 'w' and 'wt' share storage '0' */
        CHECK(vp_source_tensor(src, 0)->storage == vp_source_tensor(src, 1)->storage);
        float got[6];
        CHECK_EQ_INT(vp_source_read(src, 1, got, sizeof got), VP_OK);   /* the transpose, in C order */
        const float want_t[6] = {0, 3, 1, 4, 2, 5};
        CHECK(!memcmp(got, want_t, sizeof got));
        CHECK(vp_source_data(src, 0) != NULL);
        CHECK(vp_source_data(src, 1) == NULL);   /* not contiguous */
        uint64_t off;
        CHECK_EQ_INT(vp_source_file_range(src, 0, &off), VP_OK);
        CHECK(vp_source_data(src, 0) && !memcmp(src->map.base + off, w, sizeof w));
        double hv[4];
        CHECK_EQ_INT(vp_source_read_as(src, 2, VP_F64, hv, sizeof hv), VP_OK);
        CHECK(hv[0] == 1 && hv[1] == 2 && hv[2] == -2 && hv[3] == 0.5);
        CHECK_EQ_INT(vp_source_file_range(src, 2, &off), VP_ERR_UNSUPPORTED);   /* deflated */
        const vp_value *r = vp_source_root(src);
        CHECK_EQ_INT(vp_value_tensor(vp_value_get(r, "wt")), 1);
        CHECK_STR(vp_source_tensor(src, 2)->name, "h");
    }
    vp_source_close(src);

    /* a record shorter than its storage claims */
    zmember shortrec[] = {{"mymodel/data.pkl", pk.p, pk.n, 0, false}, {"mymodel/data/0", w, 20, 0, false},
                          {"mymodel/data/1", h, sizeof h, 0, false}};
    rc = open_zip("short.pth", shortrec, 3, &src);
    CHECK_EQ_INT(rc, VP_ERR_FORMAT);
    CHECKF(tu_has(vp_source_errmsg(src), "'mymodel/data/0'") && tu_has(vp_source_errmsg(src), "holds 20 bytes"), "%s", vp_source_errmsg(src));
    vp_source_close(src);

    /* a view past the end of its storage: w as [2, 4] over 6 floats */
    bytes pk2 = {0};
    state_pickle(&pk2, 1);
    zmember past[] = {{"mymodel/data.pkl", pk2.p, pk2.n, 0, false}, {"mymodel/data/0", w, sizeof w, 0, false},
                      {"mymodel/data/1", h, sizeof h, 0, false}};
    rc = open_zip("past.pth", past, 3, &src);
    CHECK_EQ_INT(rc, VP_ERR_FORMAT);
    CHECKF(tu_has(vp_source_errmsg(src), "tensor 'w'"), "%s", vp_source_errmsg(src));
    vp_source_close(src);

    /* big-endian archives are refused */
    zmember big[] = {{"mymodel/data.pkl", pk.p, pk.n, 0, false}, {"mymodel/byteorder", "big", 3, 0, false},
                    {"mymodel/data/0", w, sizeof w, 0, false}, {"mymodel/data/1", h, sizeof h, 0, false}};
    rc = open_zip("big.pth", big, 4, &src);
    CHECK_EQ_INT(rc, VP_ERR_UNSUPPORTED);
    CHECK(tu_has(vp_source_errmsg(src), "big-endian"));
    vp_source_close(src);

    /* a missing record */
    zmember missing[] = {{"mymodel/data.pkl", pk.p, pk.n, 0, false}, {"mymodel/data/0", w, sizeof w, 0, false}};
    rc = open_zip("missing.pth", missing, 2, &src);
    CHECK_EQ_INT(rc, VP_ERR_FORMAT);
    CHECK(tu_has(vp_source_errmsg(src), "'mymodel/data/1' is missing"));
    vp_source_close(src);

    /* data.pkl that would call os.system: refused, naming it */
    static const char evil[] = "\x80\x02" "cos\nsystem\nX\x05\x00\x00\x00touch\x85R.";
    zmember ev[] = {{"x/data.pkl", evil, sizeof evil - 1, 0, false}};
    rc = open_zip("evil.pth", ev, 1, &src);
    CHECK_EQ_INT(rc, VP_ERR_REFUSED);
    CHECKF(tu_has(vp_source_errmsg(src), "'os.system'") && tu_has(vp_source_errmsg(src), "x/data.pkl"), "%s", vp_source_errmsg(src));
    CHECK_EQ_INT(vp_source_count(src), 0);
    vp_source_close(src);

    /* a list holding itself: loads in the VM, refused by the walk */
    static const char self[] = "\x80\x02]q\x00h\x00" "a.";
    zmember sf[] = {{"x/data.pkl", self, sizeof self - 1, 0, false}};
    rc = open_zip("self.pth", sf, 1, &src);
    CHECK_EQ_INT(rc, VP_ERR_LIMIT);
    CHECK(tu_has(vp_source_errmsg(src), "contain themselves"));
    vp_source_close(src);

    /* L0 = []; Lk = [Lk-1, Lk-1]: 2**40 paths in 200 bytes, refused by the visit bound */
    bytes dag = {0};
    put8(&dag, 0x80); put8(&dag, 2); put8(&dag, ']'); put8(&dag, 'q'); put8(&dag, 0);
    for (int k = 1; k <= 40; k++) {
        put8(&dag, '('); put8(&dag, 'h'); put8(&dag, (uint8_t)(k - 1)); put8(&dag, 'h'); put8(&dag, (uint8_t)(k - 1));
        put8(&dag, 'l'); put8(&dag, 'q'); put8(&dag, (uint8_t)k);
    }
    put8(&dag, '.');
    zmember dg[] = {{"x/data.pkl", dag.p, dag.n, 0, false}};
    rc = open_zip("dag.pth", dg, 1, &src);
    CHECK_EQ_INT(rc, VP_ERR_LIMIT);
    CHECK(tu_has(vp_source_errmsg(src), "nodes"));
    vp_source_close(src);
    free(dag.p);

    free(pk.p);
    free(pk2.p);
}

/* ---- TorchScript: module objects, state_dict() names ----------------------------------------- */
/* __torch__.M(training=False, plain=tensor, b=tensor, sub=__torch__.S(training=True, w=tensor), a=tensor, n=5) */
static void module_pickle(bytes *b)
{
    put8(b, 0x80); put8(b, 2);
    pk_global(b, "__torch__", "M"); put8(b, ')'); put8(b, 0x81);
    put8(b, '}'); put8(b, '(');
    pk_str(b, "training"); put8(b, 0x89);
    pk_str(b, "plain"); pk_tensor(b, "FloatStorage", "0", 6, 0, 2, S23, C23, false);
    pk_str(b, "b"); pk_tensor(b, "FloatStorage", "0", 6, 0, 1, S4, C1, false);
    pk_str(b, "sub");
    pk_global(b, "__torch__", "S"); put8(b, ')'); put8(b, 0x81);
    put8(b, '}'); put8(b, '('); pk_str(b, "training"); put8(b, 0x88);
    pk_str(b, "w"); pk_tensor(b, "HalfStorage", "1", 4, 0, 1, S4, C1, false); put8(b, 'u');
    put8(b, 'b');
    pk_str(b, "a"); pk_tensor(b, "FloatStorage", "0", 6, 2, 1, S4, C1, false);
    pk_str(b, "n"); pk_int(b, 5);
    put8(b, 'u'); put8(b, 'b'); put8(b, '.');
}

static void check_names(vp_source *src, const char *const *names, size_t n, const char *what)
{
    CHECKF(vp_source_count(src) == n, "%s: %zu tensors, expected %zu", what, vp_source_count(src), n);
    for (size_t i = 0; i < n && i < vp_source_count(src); i++)
        CHECKF(!strcmp(vp_source_tensor(src, i)->name, names[i]), "%s: tensor %zu is '%s', expected '%s'", what, i,
               vp_source_tensor(src, i)->name, names[i]);
}

static void test_torchscript(void)
{
    float w[6] = {0, 1, 2, 3, 4, 5};
    uint16_t h[4] = {0x3c00, 0x4000, 0xc000, 0x3800};
    static const char consts[] = "\x80\x02)."; /* constants.pkl: an empty tuple */
    bytes pk = {0};
    module_pickle(&pk);

    /* without code/: every tensor attribute counts, in attribute order, then submodules */
    zmember m[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/constants.pkl", consts, sizeof consts - 1, 0, false},
                  {"arch/data/0", w, sizeof w, 0, false}, {"arch/data/1", h, sizeof h, 0, false}};
    vp_source *src;
    int rc = open_zip("ts_nocode.pt", m, 4, &src);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
    if (rc == VP_OK) {
        CHECK_STR(vp_source_format(src), "torchscript");
        static const char *const names[] = {"plain", "b", "a", "sub.w"};
        check_names(src, names, 4, "TorchScript without code");
        CHECK_EQ_INT(vp_source_tensor(src, 2)->storage_offset, 2);
        CHECK_STR(vp_value_str(vp_source_root(src)), "__torch__.M");
    }
    vp_source_close(src);

    /* with code/__torch__.py: parameters, then buffers, as listed; 'plain' is neither */
    static const char code[] =
        "class M(Module):\n"
        "  __parameters__ = [\"a\", ]\n"
        "  __buffers__ = [\"b\", ]\n"
        "  a : Tensor\n  b : Tensor\n  training : bool\n  plain : Tensor\n"
        "  sub : __torch__.S\n"
        "  def forward(self: __torch__.M) -> None:\n    return None\n"
        "class S(Module):\n"
        "  __parameters__ = [\"w\", ]\n"
        "  __buffers__ = []\n"
        "  w : Tensor\n";
    zmember mc[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/code/__torch__.py", code, sizeof code - 1, 8, false},
                   {"arch/data/0", w, sizeof w, 0, false}, {"arch/data/1", h, sizeof h, 0, false}};
    rc = open_zip("ts_code.pt", mc, 4, &src);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
    if (rc == VP_OK) {
        CHECK_STR(vp_source_format(src), "torchscript");
        static const char *const names[] = {"a", "b", "sub.w"};
        check_names(src, names, 3, "TorchScript with code");
    }
    vp_source_close(src);
    free(pk.p);
}

/* ---- legacy ----------------------------------------------------------------------------------- */
static void test_legacy(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/legacy_state.pth", tu_fixtures_dir());
    size_t n;
    char *data = tu_slurp(path, &n);
    CHECKF(data != NULL, "cannot read %s", path);
    if (!data) return;

    vp_source *src = NULL;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s", vp_source_errmsg(src));
    uint64_t numel_at = 0;
    if (rc == VP_OK) {
        CHECK_STR(vp_source_format(src), "torch-legacy");
        CHECK(vp_source_count(src) > 0);
        /* every storage lies in the file, after its 8-byte element count */
        for (size_t i = 0; i < src->nstorages; i++) {
            const vp_storage *st = &src->storages[i];
            CHECK(st->kind == VP_STORE_FILE && st->offset >= 8 && st->offset + st->nbytes <= n);
        }
        numel_at = src->storages[0].offset - 8;
    }
    vp_source_close(src);

    /* every cut of the file is an error */
    char cut_path[512];
    snprintf(cut_path, sizeof cut_path, "%s/cut.pth", tmpdir);
    int errors = 0, oneline = 0;
    for (size_t cut = 0; cut < n; cut++) {
        tu_write_file(cut_path, data, cut);
        rc = vp_source_open(&src, cut_path, NULL);
        if (rc != VP_OK) errors++;
        if (src && *vp_source_errmsg(src) && !strchr(vp_source_errmsg(src), '\n')) oneline++;
        vp_source_close(src);
    }
    CHECK_EQ_INT(errors, n);
    CHECK_EQ_INT(oneline, n);

    /* a storage whose element count disagrees with the pickle */
    if (numel_at) {
        data[numel_at] ^= 1;
        tu_write_file(cut_path, data, n);
        rc = vp_source_open(&src, cut_path, NULL);
        CHECK_EQ_INT(rc, VP_ERR_FORMAT);
        CHECKF(tu_has(vp_source_errmsg(src), "elements in the file"), "%s", vp_source_errmsg(src));
        vp_source_close(src);
        data[numel_at] ^= 1;
    }
    /* a plain pickle that is not a torch file */
    static const char plain[] = "\x80\x02K\x05.";
    tu_write_file(cut_path, plain, sizeof plain - 1);
    rc = vp_source_open(&src, cut_path, NULL);
    CHECK_EQ_INT(rc, VP_ERR_FORMAT);
    CHECK(tu_has(vp_source_errmsg(src), "magic number"));
    vp_source_close(src);
    unlink(cut_path);
    free(data);
}

int main(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_test_torch");
    test_conformance();
    test_crafted_zip();
    test_torchscript();
    test_legacy();
    tu_rmtree(tmpdir);
    TEST_MAIN_END();
}
