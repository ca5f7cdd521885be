/* Every reader against tests/fixtures/manifest.json: what torch, numpy and
 * safetensors report for each fixture (written by gen_fixtures.py with the
 * real tools). For every file: the format name, the tensor list in order,
 * dtype, shape, strides/offset/storage sharing (torch formats), the values
 * (sha256 of the native bytes, float64 sums), zero-copy pointers and file
 * ranges against the file's own bytes, the pickled object tree, safetensors
 * metadata, and narrowing by --key. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "vitport/vitport.h"

/* ---- sha256 (FIPS 180-4), test code only -------------------------------- */
typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; } sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *p)
{
    uint32_t w[64], s[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, c->h, sizeof s);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = s[7] + (ROR(s[4], 6) ^ ROR(s[4], 11) ^ ROR(s[4], 25)) + ((s[4] & s[5]) ^ (~s[4] & s[6])) + K256[i] + w[i];
        uint32_t t2 = (ROR(s[0], 2) ^ ROR(s[0], 13) ^ ROR(s[0], 22)) + ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof *s);
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) c->h[i] += s[i];
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    sha256_ctx c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}, 0, {0}, 0};
    const uint8_t *p = data;
    c.len = (uint64_t)n * 8;
    for (; n >= 64; n -= 64, p += 64) sha256_block(&c, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t tl = n + 9 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (uint8_t)(c.len >> (8 * i));
    for (size_t o = 0; o < tl; o += 64) sha256_block(&c, tail + o);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", c.h[i]);
}

/* ---- helpers -------------------------------------------------------------- */
/* An error message must be one non-empty line that starts with the path. */
static void check_message(const vp_source *src, const char *path)
{
    const char *m = vp_source_errmsg(src);
    CHECKF(m && *m && !strncmp(m, path, strlen(path)) && !strpbrk(m, "\r\n"),
           "message for %s: \"%s\"", path, m ? m : "(null)");
}

/* ---- one tensor ------------------------------------------------------------ */
typedef struct {
    const char *path;
    int expect_range;         /* the format keeps C-order bytes as they are in the file */
    const uint8_t *file;      /* the file's bytes, for data pointers and ranges */
    size_t file_len;
    long group_to_storage[4096];
} fixture_ctx;

static void check_values(vp_source *src, size_t i, const cJSON *want, fixture_ctx *fx)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const char *name = tu_jstr(want, "name");
    size_t nb = (size_t)t->nbytes;
    uint8_t *buf = malloc(nb ? nb : 1);
    double *f64 = malloc(t->numel ? t->numel * sizeof *f64 : 1);
    if (!buf || !f64) { free(buf); free(f64); CHECK(!"out of memory"); return; }

    int rc = vp_source_read(src, i, buf, nb);
    CHECKF(rc == VP_OK, "%s: read '%s': %s", fx->path, name, vp_source_errmsg(src));
    if (rc == VP_OK) {
        char hex[65];
        sha256_hex(buf, nb, hex);
        const char *want_sha = tu_jstr(want, "sha256");
        CHECKF(want_sha && !strcmp(hex, want_sha), "%s: '%s' sha256 %s, expected %s", fx->path, name, hex,
               want_sha ? want_sha : "?");

        /* zero-copy pointer and file range, when offered, hold the same bytes */
        const void *direct = vp_source_data(src, i);
        if (direct) CHECKF(!memcmp(direct, buf, nb), "%s: vp_source_data('%s') differs from vp_source_read", fx->path, name);
        uint64_t off;
        int have = vp_source_file_range(src, i, &off) == VP_OK;
        /* bytes stored uncompressed, in C order and little-endian, lie in the
         * file: the range must be offered (the writer's copy_file_range path) */
        if (fx->expect_range && t->numel && tu_c_contiguous(t))
            CHECKF(have, "%s: no file range for contiguous '%s'", fx->path, name);
        if (have)
            CHECKF(off <= fx->file_len && nb <= fx->file_len - off && !memcmp(fx->file + off, buf, nb),
                   "%s: file range of '%s' (offset %llu) does not hold its bytes", fx->path, name, (unsigned long long)off);

        /* a buffer one byte short is refused */
        if (nb) CHECK_EQ_INT(vp_source_read(src, i, buf, nb - 1), VP_ERR_ARG);
    }

    rc = vp_source_read_as(src, i, VP_F64, f64, t->numel * sizeof *f64);
    CHECKF(rc == VP_OK, "%s: read_as f64 '%s': %s", fx->path, name, vp_source_errmsg(src));
    if (rc == VP_OK) {
        long double sum = 0, sumsq = 0, sumabs = 0;
        int finite = 1;
        for (uint64_t k = 0; k < t->numel; k++) {
            long double v = f64[k];
            if (!isfinite(f64[k])) finite = 0;
            sum += v; sumsq += v * v; sumabs += fabsl(v);
        }
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(want, "sum");
        const cJSON *wq = cJSON_GetObjectItemCaseSensitive(want, "sumsq");
        if (cJSON_IsNull(ws)) {
            CHECKF(!finite, "%s: '%s' should hold a non-finite value", fx->path, name);
        } else {
            /* the manifest's sums are exactly rounded (math.fsum); ours add in
             * long double, so only rounding separates them */
            double tol = 1e-12 * (double)sumabs + 1e-300;
            CHECKF(finite && fabs((double)sum - ws->valuedouble) <= tol,
                   "%s: '%s' sum %.17g, expected %.17g", fx->path, name, (double)sum, ws->valuedouble);
            CHECKF(fabs((double)sumsq - wq->valuedouble) <= 1e-12 * (double)sumsq + 1e-300,
                   "%s: '%s' sum of squares %.17g, expected %.17g", fx->path, name, (double)sumsq, wq->valuedouble);
        }
    }
    free(buf);
    free(f64);
}

static void check_tensor(vp_source *src, size_t i, const cJSON *want, fixture_ctx *fx)
{
    const vp_tensor *t = vp_source_tensor(src, i);
    const char *name = tu_jstr(want, "name");
    CHECKF(t && name && t->name && !strcmp(t->name, name), "%s: tensor %zu is '%s', expected '%s'", fx->path, i,
           t && t->name ? t->name : "(null)", name ? name : "?");
    if (!t || !name) return;
    CHECKF(vp_source_find(src, name) == (long)i, "%s: vp_source_find('%s') = %ld, expected %zu", fx->path, name,
           vp_source_find(src, name), i);
    const char *dt = tu_jstr(want, "dtype");
    CHECKF(dt && !strcmp(vp_dtype_name(t->dtype), dt), "%s: '%s' dtype %s, expected %s", fx->path, name,
           vp_dtype_name(t->dtype), dt ? dt : "?");

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(want, "shape");
    int nd = cJSON_GetArraySize(shape);
    int same = t->ndim == nd;
    uint64_t numel = 1;
    for (int d = 0; d < nd && same; d++) {
        int64_t s = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        same = t->shape[d] == s;
        numel *= (uint64_t)s;
    }
    CHECKF(same, "%s: '%s' has a different shape (ndim %d, expected %d)", fx->path, name, t->ndim, nd);
    if (!same) return;
    CHECK_EQ_INT(t->numel, numel);
    CHECK_EQ_INT(t->nbytes, numel * vp_dtype_size(t->dtype));

    /* torch formats: strides, offset and storage sharing as torch.load reports */
    const cJSON *stride = cJSON_GetObjectItemCaseSensitive(want, "stride");
    if (stride) {
        int ok = cJSON_GetArraySize(stride) == nd;
        for (int d = 0; d < nd && ok; d++) ok = t->strides[d] == (int64_t)cJSON_GetArrayItem(stride, d)->valuedouble;
        CHECKF(ok, "%s: '%s' strides differ from torch's", fx->path, name);
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(want, "offset");
        CHECKF(t->storage_offset == (int64_t)off->valuedouble, "%s: '%s' storage offset %lld, expected %lld",
               fx->path, name, (long long)t->storage_offset, (long long)off->valuedouble);
        const cJSON *grp = cJSON_GetObjectItemCaseSensitive(want, "storage");
        int g = grp ? grp->valueint : -1;
        if (numel && g >= 0 && g < 4096) {
            /* same torch storage <=> same vitport storage */
            if (fx->group_to_storage[g] == -2) {
                int clash = -1;
                for (int k = 0; k < 4096 && clash < 0; k++)
                    if (fx->group_to_storage[k] == t->storage) clash = k;
                CHECKF(clash < 0, "%s: '%s' shares a storage torch keeps apart", fx->path, name);
                fx->group_to_storage[g] = t->storage;
            } else {
                CHECKF(fx->group_to_storage[g] == t->storage, "%s: '%s' should share storage %ld, has %lld",
                       fx->path, name, fx->group_to_storage[g], (long long)t->storage);
            }
        }
    }
    check_values(src, i, want, fx);
}

/* ---- the pickled object tree --------------------------------------------- */
static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static void check_tree(vp_source *src, const vp_value *v, const cJSON *d, const char *where, const char *path)
{
    const char *kind = cJSON_GetArrayItem(d, 0)->valuestring;
    const cJSON *arg = cJSON_GetArrayItem(d, 1);
    vp_kind k = vp_value_kind(v);
    char sub[512];
#define TREE_CHECK(cond, ...) do { CHECKF(cond, __VA_ARGS__); if (!(cond)) return; } while (0)
    TREE_CHECK(v != NULL, "%s: root%s: missing (want %s)", path, where, kind);
    if (!strcmp(kind, "none")) {
        TREE_CHECK(k == VP_V_NONE, "%s: root%s: kind %d, want None", path, where, k);
    } else if (!strcmp(kind, "bool")) {
        TREE_CHECK(k == VP_V_BOOL && vp_value_int(v) == cJSON_IsTrue(arg), "%s: root%s: want bool %d", path, where, cJSON_IsTrue(arg));
    } else if (!strcmp(kind, "int")) {
        errno = 0;
        long long want = strtoll(arg->valuestring, NULL, 10);
        TREE_CHECK(k == VP_V_INT, "%s: root%s: kind %d, want int %s", path, where, k, arg->valuestring);
        if (errno == ERANGE) {
            const char *txt = vp_value_str(v);
            TREE_CHECK(txt && !strcmp(txt, arg->valuestring), "%s: root%s: big int text '%s', want %s", path, where,
                       txt ? txt : "(null)", arg->valuestring);
        } else {
            TREE_CHECK(vp_value_int(v) == want, "%s: root%s: int %lld, want %lld", path, where, (long long)vp_value_int(v), want);
        }
    } else if (!strcmp(kind, "float")) {
        TREE_CHECK(k == VP_V_FLOAT && vp_value_float(v) == arg->valuedouble, "%s: root%s: want float %.17g", path, where, arg->valuedouble);
    } else if (!strcmp(kind, "str")) {
        const char *s = vp_value_str(v);
        TREE_CHECK(k == VP_V_STR && s && !strcmp(s, arg->valuestring), "%s: root%s: str '%s', want '%s'", path, where,
                   s ? s : "(null)", arg->valuestring);
    } else if (!strcmp(kind, "bytes")) {
        size_t n = strlen(arg->valuestring) / 2;
        const char *s = vp_value_str(v);
        TREE_CHECK(k == VP_V_BYTES && vp_value_len(v) == n && s, "%s: root%s: want %zu bytes", path, where, n);
        for (size_t j = 0; j < n; j++)
            TREE_CHECK((uint8_t)s[j] == hexval(arg->valuestring[2 * j]) * 16 + hexval(arg->valuestring[2 * j + 1]),
                       "%s: root%s: byte %zu differs", path, where, j);
    } else if (!strcmp(kind, "tuple") || !strcmp(kind, "list")) {
        vp_kind want = kind[0] == 't' ? VP_V_TUPLE : VP_V_LIST;
        size_t n = (size_t)cJSON_GetArraySize(arg);
        TREE_CHECK(k == want && vp_value_len(v) == n, "%s: root%s: want %s of %zu (kind %d, len %zu)", path, where, kind, n, k, vp_value_len(v));
        for (size_t j = 0; j < n; j++) {
            snprintf(sub, sizeof sub, "%s[%zu]", where, j);
            check_tree(src, vp_value_item(v, j), cJSON_GetArrayItem(arg, (int)j), sub, path);
        }
    } else if (!strcmp(kind, "dict")) {
        size_t n = (size_t)cJSON_GetArraySize(arg);
        TREE_CHECK(k == VP_V_DICT && vp_value_len(v) == n, "%s: root%s: want dict of %zu (kind %d, len %zu)", path, where, n, k, vp_value_len(v));
        for (size_t j = 0; j < n; j++) {
            const cJSON *kv = cJSON_GetArrayItem(arg, (int)j);
            const cJSON *kd = cJSON_GetArrayItem(kv, 0);
            const char *ks = cJSON_GetArrayItem(kd, 1)->valuestring;
            snprintf(sub, sizeof sub, "%s{key %zu}", where, j);
            check_tree(src, vp_value_key(v, j), kd, sub, path);
            snprintf(sub, sizeof sub, "%s['%.200s']", where, ks ? ks : "?");
            check_tree(src, vp_value_item(v, j), cJSON_GetArrayItem(kv, 1), sub, path);
            if (!strcmp(cJSON_GetArrayItem(kd, 0)->valuestring, "str"))
                CHECKF(vp_value_get(v, ks) == vp_value_item(v, j), "%s: root%s: vp_value_get('%s') is not item %zu", path, where, ks, j);
        }
    } else if (!strcmp(kind, "set")) {
        TREE_CHECK(k == VP_V_SET && vp_value_len(v) == (size_t)arg->valueint, "%s: root%s: want set of %d", path, where, arg->valueint);
    } else if (!strcmp(kind, "tensor")) {
        long idx = vp_value_tensor(v);
        const vp_tensor *t = idx >= 0 ? vp_source_tensor(src, (size_t)idx) : NULL;
        TREE_CHECK(k == VP_V_TENSOR && t && !strcmp(t->name, arg->valuestring), "%s: root%s: want tensor '%s' (kind %d, index %ld)",
                   path, where, arg->valuestring, k, idx);
    } else if (!strcmp(kind, "object")) {
        const char *cls = vp_value_str(v);
        TREE_CHECK(k == VP_V_OBJECT && cls && !strcmp(cls, arg->valuestring), "%s: root%s: want object %s (kind %d, '%s')",
                   path, where, arg->valuestring, k, cls ? cls : "(null)");
        snprintf(sub, sizeof sub, "%s.__state__", where);
        check_tree(src, vp_value_state(v), cJSON_GetArrayItem(d, 2), sub, path);
    } else {
        CHECKF(0, "manifest: unknown tree kind '%s'", kind);
    }
#undef TREE_CHECK
}

/* ---- narrowing by --key ---------------------------------------------------- */
static const cJSON *find_entry(const cJSON *tensors, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) if (!strcmp(tu_jstr(t, "name"), name)) return t;
    return NULL;
}

static void check_narrow(const cJSON *fxj, const char *path, fixture_ctx *fx)
{
    const cJSON *narrow = cJSON_GetObjectItemCaseSensitive(fxj, "narrow"), *n;
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(fxj, "tensors");
    cJSON_ArrayForEach(n, narrow) {
        const char *key = tu_jstr(n, "key");
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(n, "names");
        vp_source *src;
        int rc = vp_source_open(&src, path, key);
        CHECKF(rc == VP_OK, "%s --key %s: %s", path, key, vp_source_errmsg(src));
        if (rc == VP_OK) {
            CHECKF(vp_source_count(src) == (size_t)cJSON_GetArraySize(names), "%s --key %s: %zu tensors, expected %d", path,
                   key, vp_source_count(src), cJSON_GetArraySize(names));
            size_t i = 0;
            const cJSON *nm;
            cJSON_ArrayForEach(nm, names) {
                if (i >= vp_source_count(src)) break;
                /* the same tensor as in the full list, named relative to the key */
                char full[1024];
                snprintf(full, sizeof full, "%s/%s", key, nm->valuestring);
                const cJSON *want = find_entry(tensors, full);
                CHECKF(want != NULL, "manifest: no '%s'", full);
                if (want) {
                    cJSON *rel = cJSON_Duplicate(want, 1);
                    cJSON_ReplaceItemInObjectCaseSensitive(rel, "name", cJSON_CreateString(nm->valuestring));
                    cJSON_DeleteItemFromObjectCaseSensitive(rel, "storage");
                    check_tensor(src, i, rel, fx);
                    cJSON_Delete(rel);
                }
                i++;
            }
            CHECKF(vp_source_root(src) != NULL, "%s --key %s: the root is not narrowed away", path, key);
        }
        vp_source_close(src);
    }
    const cJSON *bad = cJSON_GetObjectItemCaseSensitive(fxj, "bad_keys"), *b;
    cJSON_ArrayForEach(b, bad) {
        vp_source *src;
        int rc = vp_source_open(&src, path, b->valuestring);
        CHECKF(rc == VP_ERR_NOTFOUND, "%s --key %s: code %d, expected VP_ERR_NOTFOUND", path, b->valuestring, rc);
        check_message(src, path);
        /* the message lists the sub-dictionaries that do hold tensors */
        const char *m = vp_source_errmsg(src);
        const cJSON *root = cJSON_GetObjectItemCaseSensitive(fxj, "root");
        const cJSON *kv;
        cJSON_ArrayForEach(kv, cJSON_GetArrayItem(root, 1)) {
            const cJSON *kd = cJSON_GetArrayItem(kv, 0), *vd = cJSON_GetArrayItem(kv, 1);
            const char *vk = cJSON_GetArrayItem(vd, 0)->valuestring;
            if (strcmp(vk, "dict")) continue;
            const char *ks = cJSON_GetArrayItem(kd, 1)->valuestring;
            CHECKF(m && strstr(m, ks), "%s --key %s: message does not list candidate '%s': %s", path, b->valuestring, ks, m);
        }
        vp_source_close(src);
    }
}

/* ---- one fixture ----------------------------------------------------------- */
static void check_fixture(const cJSON *fxj)
{
    const char *file = tu_jstr(fxj, "file"), *fmt = tu_jstr(fxj, "format");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tu_fixtures_dir(), file);
    fixture_ctx *fx = calloc(1, sizeof *fx);
    fx->path = path;
    for (int g = 0; g < 4096; g++) fx->group_to_storage[g] = -2;
    fx->file = (const uint8_t *)tu_slurp(path, &fx->file_len);
    fx->expect_range = !strcmp(fmt, "torch-zip") || !strcmp(fmt, "torchscript") || !strcmp(fmt, "torch-legacy") ||
                       !strcmp(fmt, "safetensors") ||
                       (!strcmp(fmt, "npy") && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fxj, "fortran_order")) &&
                        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fxj, "big_endian")));
    CHECKF(fx->file != NULL, "cannot read %s", path);

    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s: open: %s", path, vp_source_errmsg(src));
    if (rc != VP_OK) { check_message(src, path); vp_source_close(src); free((void *)fx->file); free(fx); return; }
    CHECKF(!strcmp(vp_source_format(src), fmt), "%s: format '%s', expected '%s'", path, vp_source_format(src), fmt);
    CHECKF(!strcmp(vp_source_errmsg(src), ""), "%s: message after a good open: %s", path, vp_source_errmsg(src));

    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(fxj, "tensors"), *t;
    size_t want_n = (size_t)cJSON_GetArraySize(tensors);
    CHECKF(vp_source_count(src) == want_n, "%s: %zu tensors, expected %zu", path, vp_source_count(src), want_n);
    size_t i = 0;
    cJSON_ArrayForEach(t, tensors) {
        if (i >= vp_source_count(src)) break;
        check_tensor(src, i++, t, fx);
    }
    CHECK(vp_source_tensor(src, vp_source_count(src)) == NULL);
    CHECK(vp_source_find(src, "no such tensor") == -1);

    const cJSON *root = cJSON_GetObjectItemCaseSensitive(fxj, "root");
    const char *root_class = tu_jstr(fxj, "root_class");
    if (root) check_tree(src, vp_source_root(src), root, "", path);
    if (root_class) {
        const vp_value *r = vp_source_root(src);
        CHECKF(vp_value_kind(r) == VP_V_OBJECT && vp_value_str(r) && !strcmp(vp_value_str(r), root_class),
               "%s: root should be a %s object", path, root_class);
    }
    if (!strcmp(fmt, "npy") || !strcmp(fmt, "npz") || !strcmp(fmt, "safetensors"))
        CHECKF(vp_source_root(src) == NULL, "%s: a %s file has no pickled root", path, fmt);

    if (!strcmp(fmt, "safetensors")) {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(fxj, "metadata"), *kv;
        cJSON_ArrayForEach(kv, meta) {
            const char *got = vp_source_metadata(src, kv->string);
            CHECKF(got && !strcmp(got, kv->valuestring), "%s: metadata '%s' = '%s', expected '%s'", path, kv->string,
                   got ? got : "(null)", kv->valuestring);
        }
        if (!cJSON_IsObject(meta)) CHECK(vp_source_metadata(src, "format") == NULL);
        CHECK(vp_source_metadata(src, "no such key") == NULL);
    } else {
        CHECK(vp_source_metadata(src, "format") == NULL);
    }
    vp_source_close(src);
    check_narrow(fxj, path, fx);
    free((void *)fx->file);
    free(fx);
}

/* The DINO checkpoint, spelled out as the brief asks: its top-level dict,
 * args as an inert argparse.Namespace, and --key teacher. */
static void check_dino(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt_dino.pth", tu_fixtures_dir());
    vp_source *src;
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(rc == VP_OK, "%s: %s", path, vp_source_errmsg(src));
    if (rc == VP_OK) {
        const vp_value *root = vp_source_root(src);
        static const char *keys[] = {"teacher", "student", "optimizer", "epoch", "args"};
        CHECK(vp_value_kind(root) == VP_V_DICT && vp_value_len(root) == 5);
        for (size_t k = 0; k < 5; k++) {
            const vp_value *key = vp_value_key(root, k);
            CHECKF(vp_value_kind(key) == VP_V_STR && vp_value_str(key) && !strcmp(vp_value_str(key), keys[k]),
                   "key %zu should be '%s'", k, keys[k]);
        }
        CHECK_EQ_INT(vp_value_int(vp_value_get(root, "epoch")), 3);
        const vp_value *args = vp_value_get(root, "args");
        CHECK(vp_value_kind(args) == VP_V_OBJECT);
        CHECK_STR(vp_value_str(args), "argparse.Namespace");
        const vp_value *st = vp_value_state(args);
        CHECK_STR(vp_value_str(vp_value_get(st, "arch")), "vit_small");
        CHECK_EQ_INT(vp_value_int(vp_value_get(st, "patch_size")), 16);
        CHECK(vp_source_find(src, "teacher/backbone.cls_token") == 0);
        CHECK(vp_source_find(src, "optimizer/state/0/exp_avg") >= 0);
    }
    vp_source_close(src);

    rc = vp_source_open(&src, path, "teacher");
    CHECKF(rc == VP_OK, "%s --key teacher: %s", path, vp_source_errmsg(src));
    if (rc == VP_OK) {
        CHECK_STR(vp_source_tensor(src, 0)->name, "backbone.cls_token");
        CHECK(vp_source_find(src, "teacher/backbone.cls_token") == -1);
        for (size_t i = 0; i < vp_source_count(src); i++)
            CHECKF(!strncmp(vp_source_tensor(src, i)->name, "backbone.", 9) || !strncmp(vp_source_tensor(src, i)->name, "head.", 5),
                   "--key teacher gave '%s'", vp_source_tensor(src, i)->name);
    }
    vp_source_close(src);

    /* a trailing slash names the same sub-dictionary */
    rc = vp_source_open(&src, path, "student/");
    CHECKF(rc == VP_OK, "%s --key student/: %s", path, vp_source_errmsg(src));
    if (rc == VP_OK) CHECK_STR(vp_source_tensor(src, 0)->name, "module.backbone.cls_token");
    vp_source_close(src);

    rc = vp_source_open(&src, path, "nope");
    CHECK_EQ_INT(rc, VP_ERR_NOTFOUND);
    const char *m = vp_source_errmsg(src);
    CHECKF(strstr(m, "'teacher'") && strstr(m, "'student'") && strstr(m, "nope"), "bad key message: %s", m);
    vp_source_close(src);
}

int main(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", tu_fixtures_dir());
    char *text = tu_slurp(path, NULL);
    CHECKF(text != NULL, "cannot read %s", path);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    CHECKF(doc != NULL, "cannot parse %s", path);
    const cJSON *fixtures = cJSON_GetObjectItemCaseSensitive(doc, "fixtures"), *f;
    CHECK(cJSON_GetArraySize(fixtures) >= 30);
    cJSON_ArrayForEach(f, fixtures) check_fixture(f);
    check_dino();

    /* the sha256 itself, on FIPS 180-4's examples */
    char hex[65];
    sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    cJSON_Delete(doc);
    free(text);
    TEST_MAIN_END();
}
