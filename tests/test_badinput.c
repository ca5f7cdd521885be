/* Damaged and hostile input. For every fixture (all formats): truncations at
 * many points and byte changes in the headers must never crash (CI runs this
 * under ASan+UBSan), never allocate without bound, and every failure must be
 * a non-OK code with one non-empty line that starts with the file path; a
 * truncated file must fail. Then golden cases built here byte by byte, each
 * with a positive control built the same way so that a failure proves the
 * reader's check and not a broken builder: pickles that call os.system and
 * friends (refused), wrong magic, sizes far beyond the file, overlapping
 * safetensors offsets, deep nesting, memo tricks. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "test.h"
#include "test_bytes.h"
#include "test_util.h"
#include "util/value_walk.h"
#include "vitport/vitport.h"

/* Print at most this many failure lines per kind of check, count the rest. */
#define MAX_SHOWN 40
static int shown;

#define EXPECT(cond, ...) do { if (cond) t_pass++; else { t_fail++; if (shown++ < MAX_SHOWN) { \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } } while (0)

static char tmpdir[4096];

/* Central-directory entry i of a zip without comment: pointer to its header. */
static uint8_t *cd_entry(bytes *z, int want)
{
    uint8_t *eocd = z->p + z->n - 22;
    if (rd32(eocd) != 0x06054b50) return NULL;
    uint8_t *e = z->p + rd32(eocd + 16);
    for (int i = 0; i < want; i++) e += 46 + rd16(e + 28) + rd16(e + 30) + rd16(e + 32);
    return rd32(e) == 0x02014b50 ? e : NULL;
}

/* {"x": tensor of 4 floats (or `shape`)} */
static bytes pk_one_tensor(int64_t n_elems_claimed, int legacy)
{
    bytes b = {0};
    int64_t size[1] = {n_elems_claimed}, stride[1] = {1};
    put8(&b, 0x80); put8(&b, 2); put8(&b, '}');
    pk_str(&b, "x");
    pk_tensor(&b, "FloatStorage", "0", 4, 0, 1, size, stride, legacy);
    put8(&b, 's'); put8(&b, '.');
    return b;
}

static const float FOUR[4] = {1.5f, -2.0f, 0.25f, 8.0f};

/* A torch.save archive: stored members, data aligned to 64 bytes. */
static bytes torch_zip(const void *pkl, size_t pkl_len, const void *data, size_t data_len)
{
    zmember m[4] = {{"t/data.pkl", pkl, pkl_len, 0, true}, {"t/byteorder", "little", 6, 0, true},
                    {"t/data/0", data, data_len, 0, true}, {"t/version", "3\n", 2, 0, true}};
    return build_zip(m, 4, false, NULL);
}

/* The legacy layout: magic, protocol 1001, sys_info, the object pickle, the
 * storage key list, then each storage as int64 element count + raw bytes. */
static bytes torch_legacy(const void *pkl, size_t pkl_len, int nstorages, uint64_t numel_claimed)
{
    static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    bytes b = {0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, 0x8a); put8(&b, 10); put(&b, magic, 10); put8(&b, '.');
    put8(&b, 0x80); put8(&b, 2); put8(&b, 'M'); put16(&b, 1001); put8(&b, '.');
    put8(&b, 0x80); put8(&b, 2); put8(&b, '}'); put8(&b, '(');
    pk_str(&b, "protocol_version"); put8(&b, 'M'); put16(&b, 1001);
    pk_str(&b, "little_endian"); put8(&b, 0x88);
    pk_str(&b, "type_sizes"); put8(&b, '}'); put8(&b, '(');
    pk_str(&b, "short"); put8(&b, 'K'); put8(&b, 2); pk_str(&b, "int"); put8(&b, 'K'); put8(&b, 4);
    pk_str(&b, "long"); put8(&b, 'K'); put8(&b, 4);
    put8(&b, 'u'); put8(&b, 'u'); put8(&b, '.');
    put(&b, pkl, pkl_len);
    put8(&b, 0x80); put8(&b, 2); put8(&b, ']');
    if (nstorages) { put8(&b, '('); pk_str(&b, "0"); put8(&b, 'e'); }
    put8(&b, '.');
    if (nstorages) { put64(&b, numel_claimed); put(&b, FOUR, sizeof FOUR); }
    return b;
}

/* ---- running a file through the library ------------------------------------ */
static int message_ok(const vp_source *src, const char *path)
{
    const char *m = vp_source_errmsg(src);
    size_t pl = strlen(path);
    return m && strlen(m) > pl + 2 && !strncmp(m, path, pl) && !strpbrk(m, "\r\n");
}

typedef struct { int code; char msg[1024]; int at_open; } outcome;

/* Open `path` and read every tensor: the first failure's code and message.
 * Each failure must carry a proper message. */
static outcome run(const char *path, const char *key)
{
    outcome o = {VP_OK, "", 0};
    vp_source *src;
    int rc = vp_source_open(&src, path, key);
    if (rc != VP_OK) {
        EXPECT(message_ok(src, path), "%s: open failed (code %d) with a bad message: \"%s\"", path, rc, vp_source_errmsg(src));
        o.code = rc; o.at_open = 1;
        snprintf(o.msg, sizeof o.msg, "%s", vp_source_errmsg(src));
        vp_source_close(src);
        return o;
    }
    /* visit the pickled tree (bounded) so accessors see damaged trees too */
    tu_walk_values(vp_source_root(src), VP_PICKLE_MAX_DEPTH + 8, 100000);
    for (size_t i = 0; i < vp_source_count(src); i++) {
        const vp_tensor *t = vp_source_tensor(src, i);
        if (t->nbytes > (64u << 20)) continue;   /* e.g. a stride-0 view grown huge: valid, too big to read here */
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        float *f = malloc(t->numel ? (size_t)t->numel * sizeof *f : 1);
        rc = vp_source_read(src, i, buf, (size_t)t->nbytes);
        if (rc == VP_OK) rc = vp_source_read_as(src, i, VP_F32, f, (size_t)t->numel * sizeof *f);
        if (rc == VP_OK) (void)vp_source_data(src, i);
        free(buf);
        free(f);
        vp_source_release(src, i);
        if (rc != VP_OK) {
            EXPECT(message_ok(src, path), "%s: reading '%s' failed (code %d) with a bad message: \"%s\"", path,
                   t->name, rc, vp_source_errmsg(src));
            o.code = rc;
            snprintf(o.msg, sizeof o.msg, "%s", vp_source_errmsg(src));
            break;
        }
    }
    vp_source_close(src);
    return o;
}

static outcome run_bytes(const char *name, const void *d, size_t n, const char *key)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    tu_write_file(path, d, n);
    outcome o = run(path, key);
    if (!getenv("VP_BADINPUT_KEEP")) unlink(path);   /* keep to inspect with torch.load */
    return o;
}

/* ---- truncation and byte changes over every fixture ------------------------- */
/* How many leading bytes are the format's signature: any change there must
 * make the file unreadable. (Legacy torch: only the PROTO opcode byte; the
 * protocol number itself may legitimately differ.) */
static size_t signature_len(const char *fmt)
{
    if (!strcmp(fmt, "npy")) return 6;             /* \x93NUMPY */
    if (!strcmp(fmt, "safetensors")) return 8;     /* header length: a change shifts the data buffer */
    if (!strcmp(fmt, "torch-legacy")) return 1;
    return 4;                                      /* PK\3\4 */
}

/* Header ranges worth damaging, by format: [lo, hi) pairs, at most 3. */
static int header_ranges(const char *fmt, const uint8_t *d, size_t n, size_t r[3][2])
{
    size_t k = 0;
    if (!strcmp(fmt, "npy")) {
        size_t h = n >= 10 ? 10 + (size_t)rd16(d + 8) : n;
        r[k][0] = 0; r[k][1] = h < n ? h : n; k++;
    } else if (!strcmp(fmt, "safetensors")) {
        size_t h = n >= 8 ? 8 + (size_t)rd32(d) : n;
        r[k][0] = 0; r[k][1] = h < n ? h : n; k++;
    } else {
        /* zips: local header and the pickle or first member at the start, the
         * central directory and end records at the end; legacy: its pickles */
        r[k][0] = 0; r[k][1] = n < 1024 ? n : 1024; k++;
        if (n > 1024) { r[k][0] = n > 2048 ? n - 1024 : 1024; r[k][1] = n; k++; }
    }
    return (int)k;
}

static void damage_fixture(const char *dir, const cJSON *fx)
{
    const char *file = cJSON_GetObjectItemCaseSensitive(fx, "file")->valuestring;
    const char *fmt = cJSON_GetObjectItemCaseSensitive(fx, "format")->valuestring;
    char src_path[4200], path[4200];
    snprintf(src_path, sizeof src_path, "%s/%s", dir, file);
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    size_t n;
    uint8_t *orig = (uint8_t *)tu_slurp(src_path, &n);
    EXPECT(orig != NULL, "cannot read %s", src_path);
    if (!orig) return;

    /* positive control: the untouched copy opens and reads */
    tu_write_file(path, orig, n);
    outcome o = run(path, NULL);
    EXPECT(o.code == VP_OK, "%s: the undamaged copy fails: %s", file, o.msg);

    /* truncations, longest first, by shrinking one file in place */
    uint8_t *cut = calloc(n + 1, 1);
    if (n < 4096) {
        for (size_t i = 0; i < n; i++) cut[i] = 1;
    } else {
        for (size_t i = 0; i < 300; i++) cut[(size_t)((double)i * (double)n / 300.0)] = 1;
        for (size_t i = 0; i < 1024; i++) cut[i] = cut[n - 1 - i] = 1;
    }
    int trunc_ok = 0, trunc_n = 0;
    for (size_t len = n; len-- > 0;) {
        if (!cut[len]) continue;
        if (truncate(path, (off_t)len)) { perror("truncate"); break; }
        o = run(path, NULL);
        trunc_n++;
        if (o.code == VP_OK) trunc_ok++;
        EXPECT(o.code != VP_OK, "%s truncated to %zu of %zu bytes: opened and read without error", file, len, n);
    }
    free(cut);

    /* byte changes in the headers: no crash, and proper messages on failure */
    tu_write_file(path, orig, n);
    int fd = open(path, O_WRONLY);
    size_t r[3][2];
    int nr = header_ranges(fmt, orig, n, r), flips = 0, accepted = 0;
    for (int k = 0; k < nr; k++) {
        for (size_t at = r[k][0]; at < r[k][1]; at++) {
            const uint8_t vals[3] = {(uint8_t)(orig[at] ^ 0xff), (uint8_t)(orig[at] ^ 0x01), 0};
            for (int v = 0; v < 3; v++) {
                if (vals[v] == orig[at]) continue;
                if (pwrite(fd, &vals[v], 1, (off_t)at) != 1) { perror("pwrite"); exit(2); }
                o = run(path, NULL);
                flips++;
                if (o.code == VP_OK) accepted++;
                if (at < signature_len(fmt))
                    EXPECT(o.code != VP_OK, "%s: byte %zu of its signature set to 0x%02x: still accepted", file, at, vals[v]);
            }
            if (pwrite(fd, &orig[at], 1, (off_t)at) != 1) { perror("pwrite"); exit(2); }
        }
    }
    close(fd);
    unlink(path);
    printf("%-24s %-12s %6zu bytes: %5d truncations (%d accepted), %5d byte changes (%d still valid)\n", file, fmt, n,
           trunc_n, trunc_ok, flips, accepted);
    free(orig);
}

/* ---- golden cases ------------------------------------------------------------ */
static void expect_code(const char *what, outcome o, int code, const char *needle)
{
    EXPECT(o.code == code, "%s: code %d, expected %d (%s)", what, o.code, code, o.msg);
    if (needle) EXPECT(tu_has(o.msg, needle), "%s: message lacks '%s': %s", what, needle, o.msg);
}

static void expect_fail(const char *what, outcome o, const char *needle)
{
    EXPECT(o.code != VP_OK, "%s: accepted", what);
    if (needle) EXPECT(tu_has(o.msg, needle), "%s: message lacks '%s': %s", what, needle, o.msg);
}

/* A pickle calling mod.name("echo pwned") through REDUCE; STACK_GLOBAL form for protocol 4. */
static bytes pk_evil(const char *mod, const char *name, int proto4)
{
    bytes b = {0};
    put8(&b, 0x80); put8(&b, proto4 ? 4 : 2);
    if (proto4) {
        put8(&b, 0x8c); put8(&b, (unsigned)strlen(mod)); put_str(&b, mod);
        put8(&b, 0x8c); put8(&b, (unsigned)strlen(name)); put_str(&b, name);
        put8(&b, 0x93);
    } else {
        pk_global(&b, mod, name);
    }
    pk_str(&b, "echo pwned"); put8(&b, 0x85); put8(&b, 'R'); put8(&b, '.');
    return b;
}

static void golden_refused(void)
{
    /* positive controls: the same containers with a harmless pickle */
    bytes p = pk_one_tensor(4, 0);
    bytes z = torch_zip(p.p, p.n, FOUR, sizeof FOUR);
    outcome o = run_bytes("good.pth", z.p, z.n, NULL);
    expect_code("hand-built torch zip", o, VP_OK, NULL);
    free(z.p); free(p.p);
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/good-values.pth", tmpdir);
        p = pk_one_tensor(4, 0);
        z = torch_zip(p.p, p.n, FOUR, sizeof FOUR);
        tu_write_file(path, z.p, z.n);
        vp_source *src;
        float got[4] = {0};
        int rc = vp_source_open(&src, path, NULL);
        EXPECT(rc == VP_OK && vp_source_count(src) == 1 && !strcmp(vp_source_tensor(src, 0)->name, "x") &&
               !strcmp(vp_source_format(src), "torch-zip") && vp_source_read(src, 0, got, sizeof got) == VP_OK &&
               !memcmp(got, FOUR, sizeof FOUR), "hand-built torch zip does not read back: %s", vp_source_errmsg(src));
        vp_source_close(src);
        unlink(path);
        free(z.p); free(p.p);
    }
    p = pk_one_tensor(4, 1);
    bytes l = torch_legacy(p.p, p.n, 1, 4);
    o = run_bytes("good-legacy.pth", l.p, l.n, NULL);
    expect_code("hand-built legacy file", o, VP_OK, NULL);
    free(l.p); free(p.p);

    static const struct { const char *mod, *name, *dotted; int proto4; } E[] = {
        {"os", "system", "os.system", 0}, {"posix", "system", "posix.system", 0}, {"nt", "system", "nt.system", 0},
        {"builtins", "eval", "builtins.eval", 0}, {"__builtin__", "exec", "exec", 0},
        {"subprocess", "check_output", "subprocess.check_output", 0}, {"os", "system", "os.system", 1}};
    for (size_t i = 0; i < sizeof E / sizeof *E; i++) {
        char what[256];
        bytes e = pk_evil(E[i].mod, E[i].name, E[i].proto4);
        z = torch_zip(e.p, e.n, FOUR, sizeof FOUR);
        snprintf(what, sizeof what, "torch zip calling %s (protocol %d)", E[i].dotted, E[i].proto4 ? 4 : 2);
        expect_code(what, run_bytes("evil.pth", z.p, z.n, NULL), VP_ERR_REFUSED, E[i].dotted);
        l = torch_legacy(e.p, e.n, 0, 0);
        snprintf(what, sizeof what, "legacy file calling %s (protocol %d)", E[i].dotted, E[i].proto4 ? 4 : 2);
        expect_code(what, run_bytes("evil-legacy.pth", l.p, l.n, NULL), VP_ERR_REFUSED, E[i].dotted);
        free(z.p); free(l.p); free(e.p);
    }

    /* os.system hidden below a legitimate-looking state dict entry */
    bytes b = {0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, '}'); pk_str(&b, "weight");
    pk_global(&b, "os", "system"); pk_str(&b, "id"); put8(&b, 0x85); put8(&b, 'R');
    put8(&b, 's'); put8(&b, '.');
    z = torch_zip(b.p, b.n, FOUR, sizeof FOUR);
    expect_code("os.system as a dict value", run_bytes("evil2.pth", z.p, z.n, NULL), VP_ERR_REFUSED, "os.system");
    free(z.p); free(b.p);
}

static void golden_magic(void)
{
#define LIT(name, s) {name, s, sizeof s - 1}
    static const struct { const char *name; const char *data; size_t n; } M[] = {
        LIT("gif.pth", "GIF89a\x01\x00\x01\x00\x00\x00\x00\x00"),
        LIT("text.pth", "this is not a checkpoint\n"),
        LIT("zipsig.pth", "PK\x03\x04garbage without a central directory"),
        LIT("zipeocd.pth", "PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
        LIT("npymagic.npy", "\x93NUMPY\x09\x00\x10\x00{'descr': '<f4'}"),
        LIT("npytext.npy", "\x93NUMPY\x01\x00\x08\x00garbage!"),
        LIT("pickle.pth", "\x80\x02}q\x00."),
        LIT("pickle-cut.pth", "\x80\x02}(X\x05\x00\x00"),
        LIT("st.safetensors", "\x05\x00\x00\x00\x00\x00\x00\x00{\"a\":"),
        LIT("one.bin", "\x80"),
    };
#undef LIT
    for (size_t i = 0; i < sizeof M / sizeof *M; i++) {
        outcome o = run_bytes(M[i].name, M[i].data, M[i].n, NULL);
        EXPECT(o.code == VP_ERR_FORMAT || o.code == VP_ERR_UNSUPPORTED, "%s: code %d, expected a format error (%s)",
               M[i].name, o.code, o.msg);
    }
    expect_code("empty file", run_bytes("empty.pth", "", 0, NULL), VP_ERR_FORMAT, NULL);

    char path[4200];
    snprintf(path, sizeof path, "%s/no such file.pth", tmpdir);
    outcome o = run(path, NULL);
    expect_code("missing file", o, VP_ERR_IO, NULL);
    o = run(tmpdir, NULL);
    EXPECT(o.code == VP_ERR_IO || o.code == VP_ERR_FORMAT, "a directory: code %d (%s)", o.code, o.msg);
}

static void golden_sizes(const char *fixdir)
{
    /* npy: positive control, then shapes far beyond the file */
    bytes b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", FOUR, sizeof FOUR);
    expect_code("hand-built npy", run_bytes("ok.npy", b.p, b.n, NULL), VP_OK, NULL);
    free(b.p);
    static const char *shapes[] = {"(1099511627776,)", "(1099511627776, 1099511627776)", "(4611686018427387904, 8)",
                                   "(5,)", "(2, 3)"};
    for (size_t i = 0; i < 5; i++) {
        char dict[256], what[300];
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shapes[i]);
        b = make_npy(1, dict, FOUR, sizeof FOUR);
        snprintf(what, sizeof what, "npy of shape %s with 16 data bytes", shapes[i]);
        expect_fail(what, run_bytes("huge.npy", b.p, b.n, NULL), "huge");   /* names the tensor (file stem) */
        free(b.p);
    }

    /* safetensors: positive control, header length and offsets beyond the file */
    b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", NULL, 16);
    expect_code("hand-built safetensors", run_bytes("ok.safetensors", b.p, b.n, NULL), VP_OK, NULL);
    b.p[0] = 0; b.p[7] = 0x10;  /* header length 2^60 + ... */
    outcome o = run_bytes("hdr.safetensors", b.p, b.n, NULL);
    EXPECT(o.code == VP_ERR_FORMAT || o.code == VP_ERR_LIMIT, "safetensors header length 2^60: code %d (%s)", o.code, o.msg);
    free(b.p);
    b = st_build("{\"big\":{\"dtype\":\"F32\",\"shape\":[281474976710656],\"data_offsets\":[0,1125899906842624]}}", NULL, 16);
    expect_code("safetensors tensor of 2^50 bytes in a 16-byte buffer", run_bytes("big.safetensors", b.p, b.n, NULL),
                VP_ERR_FORMAT, "'big'");
    free(b.p);
    b = st_build("{\"sh\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,16]}}", NULL, 16);
    expect_code("safetensors shape needing more than its offsets", run_bytes("sh.safetensors", b.p, b.n, NULL),
                VP_ERR_FORMAT, "'sh'");
    free(b.p);

    /* overlapping offsets; the control is the same pair laid end to end */
    b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", NULL, 32);
    expect_code("safetensors laid end to end", run_bytes("ok2.safetensors", b.p, b.n, NULL), VP_OK, NULL);
    free(b.p);
    b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", NULL, 24);
    expect_code("overlapping safetensors offsets", run_bytes("overlap.safetensors", b.p, b.n, NULL), VP_ERR_FORMAT, "overlap");
    free(b.p);
    b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", NULL, 16);
    expect_code("two safetensors tensors on the same bytes", run_bytes("same.safetensors", b.p, b.n, NULL), VP_ERR_FORMAT, NULL);
    free(b.p);

    /* torch zip: a tensor that needs more of its storage than the record holds */
    bytes p = pk_one_tensor(100, 0);
    bytes z = torch_zip(p.p, p.n, FOUR, sizeof FOUR);
    expect_code("torch tensor of 100 floats on a 16-byte record", run_bytes("short.pth", z.p, z.n, NULL), VP_ERR_FORMAT, "'x'");
    free(z.p); free(p.p);
    /* legacy: the storage claims 2^40 elements */
    p = pk_one_tensor(4, 1);
    bytes l = torch_legacy(p.p, p.n, 1, (uint64_t)1 << 40);
    expect_fail("legacy storage claiming 2^40 elements", run_bytes("legacy-big.pth", l.p, l.n, NULL), NULL);
    free(l.p); free(p.p);
    /* a truncated pickle (no STOP) inside an intact zip */
    p = pk_one_tensor(4, 0);
    z = torch_zip(p.p, p.n - 1, FOUR, sizeof FOUR);
    expect_code("data.pkl without STOP", run_bytes("nostop.pth", z.p, z.n, NULL), VP_ERR_FORMAT, NULL);
    free(z.p); free(p.p);

    /* zip: central-directory sizes and offsets far beyond the file, on a real
     * np.savez_compressed archive (member 0 is params/img/embedding/kernel) */
    char path[4200];
    snprintf(path, sizeof path, "%s/npz_compressed.npz", fixdir);
    size_t n;
    uint8_t *orig = (uint8_t *)tu_slurp(path, &n);
    EXPECT(orig != NULL, "cannot read %s", path);
    if (!orig) return;
    static const struct { int field; uint32_t value; const char *what; } Z[] = {
        {20, 0x7ffffff0u, "compressed size 2 GiB"},
        {24, 0xfffffff0u, "uncompressed size 4 GiB (ratio beyond deflate's 1032:1)"},
        {42, 0x7ffffff0u, "local header offset 2 GiB"},
        {20, 0u, "compressed size 0"},
    };
    for (size_t i = 0; i < sizeof Z / sizeof *Z; i++) {
        bytes c = {0};
        put(&c, orig, n);
        uint8_t *e = cd_entry(&c, 0);
        EXPECT(e != NULL, "npz_compressed.npz: no central directory entry 0");
        if (e) {
            wr32(e + Z[i].field, Z[i].value);
            char what[200];
            snprintf(what, sizeof what, "npz member 0 with %s", Z[i].what);
            expect_fail(what, run_bytes("npz_sizes.npz", c.p, c.n, NULL), "params/img/embedding/kernel");
        }
        free(c.p);
    }
    /* the end record claims more entries than the directory holds */
    bytes c = {0};
    put(&c, orig, n);
    c.p[c.n - 22 + 8] = 0xff; c.p[c.n - 22 + 9] = 0xff; c.p[c.n - 22 + 10] = 0xff; c.p[c.n - 22 + 11] = 0xff;
    expect_fail("npz end record claiming 65535 entries", run_bytes("npz_count.npz", c.p, c.n, NULL), NULL);
    free(c.p);
    free(orig);
}

/* Containers nested `depth` deep: kind 'l' lists, 't' tuples, 'd' dicts. */
static bytes pk_nested(char kind, int depth)
{
    bytes b = {0};
    put8(&b, 0x80); put8(&b, 2);
    for (int i = 0; i < depth; i++) {
        if (kind == 'l') put8(&b, ']');
        else if (kind == 't') put8(&b, '(');
        else { put8(&b, '}'); pk_str(&b, "k"); }
    }
    put8(&b, 'N');
    for (int i = 0; i < depth; i++) {
        if (kind == 'l') put8(&b, 'a');
        else if (kind == 't') put8(&b, 't');
        else put8(&b, 's');
    }
    put8(&b, '.');
    return b;
}

static void golden_nesting(void)
{
    static const char kinds[] = {'l', 't', 'd'};
    const int depths[] = {VP_PICKLE_MAX_DEPTH - 20, VP_PICKLE_MAX_DEPTH + 20, 100000};
    for (int k = 0; k < 3; k++) {
        for (int d = 0; d < 3; d++) {
            char what[200];
            bytes p = pk_nested(kinds[k], depths[d]);
            bytes z = torch_zip(p.p, p.n, FOUR, sizeof FOUR);
            snprintf(what, sizeof what, "%s nested %d deep", kinds[k] == 'l' ? "lists" : kinds[k] == 't' ? "tuples" : "dicts",
                     depths[d]);
            outcome o = run_bytes("deep.pth", z.p, z.n, NULL);
            if (d == 0) expect_code(what, o, VP_OK, NULL);
            else expect_code(what, o, VP_ERR_LIMIT, "nest");
            bytes l = torch_legacy(p.p, p.n, 0, 0);
            o = run_bytes("deep-legacy.pth", l.p, l.n, NULL);
            if (d == 0) expect_code(what, o, VP_OK, NULL);
            else expect_code(what, o, VP_ERR_LIMIT, "nest");
            free(z.p); free(l.p); free(p.p);
        }
    }
}

static void golden_memo(void)
{
    /* BINGET of a memo slot never set */
    bytes b = {0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, 'h'); put8(&b, 7); put8(&b, '.');
    bytes z = torch_zip(b.p, b.n, FOUR, sizeof FOUR);
    expect_code("BINGET of an unset memo slot", run_bytes("memo.pth", z.p, z.n, NULL), VP_ERR_FORMAT, NULL);
    free(z.p); free(b.p);

    /* LONG_BINPUT at index 2^32-1: valid for Python, must not allocate 2^32 slots */
    b = (bytes){0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, '}'); put8(&b, 'r'); put32(&b, 0xffffffffu); put8(&b, '.');
    z = torch_zip(b.p, b.n, FOUR, sizeof FOUR);
    outcome o = run_bytes("memo-far.pth", z.p, z.n, NULL);
    EXPECT(o.code == VP_OK || o.code == VP_ERR_LIMIT, "LONG_BINPUT 2^32-1: code %d (%s)", o.code, o.msg);
    free(z.p); free(b.p);

    /* a list that contains itself: the naming walk must terminate */
    b = (bytes){0};
    put8(&b, 0x80); put8(&b, 2); put8(&b, ']'); put8(&b, 'q'); put8(&b, 0); put8(&b, 'h'); put8(&b, 0); put8(&b, 'a');
    put8(&b, '.');
    z = torch_zip(b.p, b.n, FOUR, sizeof FOUR);
    o = run_bytes("cycle.pth", z.p, z.n, NULL);
    EXPECT(o.code == VP_OK || o.code == VP_ERR_LIMIT, "self-containing list: code %d (%s)", o.code, o.msg);
    free(z.p); free(b.p);

    /* "billion laughs": 40 levels of lists holding 10 references to the level
     * below, a tensor at the bottom: 10^40 names if walked naively */
    b = (bytes){0};
    int64_t size[1] = {4}, stride[1] = {1};
    put8(&b, 0x80); put8(&b, 2);
    pk_tensor(&b, "FloatStorage", "0", 4, 0, 1, size, stride, 0);
    put8(&b, 'q'); put8(&b, 0);
    for (int lvl = 1; lvl <= 40; lvl++) {
        put8(&b, ']'); put8(&b, '(');
        for (int j = 0; j < 10; j++) { put8(&b, 'h'); put8(&b, (unsigned)(lvl - 1)); }
        put8(&b, 'e'); put8(&b, 'q'); put8(&b, (unsigned)lvl);
    }
    put8(&b, '.');
    z = torch_zip(b.p, b.n, FOUR, sizeof FOUR);
    expect_code("10^40 tensor references", run_bytes("laughs.pth", z.p, z.n, NULL), VP_ERR_LIMIT, NULL);
    free(z.p); free(b.p);
}

int main(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "vp_badinput");

    const char *dir = tu_fixtures_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *doc = tu_load_json(path);
    EXPECT(doc != NULL, "cannot read or parse %s", path);
    const cJSON *fx;
    const char *only = getenv("VP_BADINPUT_ONLY");   /* one fixture, when debugging */
    cJSON_ArrayForEach(fx, cJSON_GetObjectItemCaseSensitive(doc, "fixtures")) {
        const char *file = cJSON_GetObjectItemCaseSensitive(fx, "file")->valuestring;
        if (!only || !strcmp(only, file)) damage_fixture(dir, fx);
    }
    golden_refused();
    golden_magic();
    golden_sizes(dir);
    golden_nesting();
    golden_memo();

    cJSON_Delete(doc);
    if (!getenv("VP_BADINPUT_KEEP")) rmdir(tmpdir);
    if (shown > MAX_SHOWN) fprintf(stderr, "... %d more failures not shown\n", shown - MAX_SHOWN);
    TEST_MAIN_END();
}
