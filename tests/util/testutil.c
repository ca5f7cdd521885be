/* The helpers declared in tests/test_util.h and tests/test_bytes.h. Test
 * code only: plain malloc, and an exit(2) where the test's own scaffolding
 * fails. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../test_bytes.h"
#include "../test_util.h"

static void oom(void)
{
    fputs("test helper: out of memory\n", stderr);
    exit(2);
}

/* ---- files and messages -------------------------------------------------- */
char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            cap = cap * 2 + 65536;
            char *grown = realloc(p, cap + 1);
            if (!grown) { free(p); fclose(f); return NULL; }
            p = grown;
        }
        got = fread(p + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int failed = ferror(f);
    fclose(f);
    if (failed) { free(p); return NULL; }
    p[n] = 0;
    if (len) *len = n;
    return p;
}

cJSON *tu_load_json(const char *path)
{
    char *text = tu_slurp(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) { perror(path); exit(2); }
}

bool tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

const char *tu_jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool tu_has(const char *msg, const char *part) { return msg && strstr(msg, part) != NULL; }

bool tu_one_line(const char *msg) { return msg && *msg && !strpbrk(msg, "\r\n"); }

bool tu_no_control(const char *msg)
{
    if (!msg || !*msg) return false;
    for (const char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return false;
    return true;
}

/* ---- environment and the shared folders ---------------------------------- */
const char *tu_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

const char *tu_fixtures_dir(void) { return tu_env("VP_FIXTURES", "tests/fixtures"); }

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tu_cases_open(tu_cases *c)
{
    memset(c, 0, sizeof *c);
    c->root = tu_env("VP_CONFORMANCE", NULL);
    DIR *d = c->root ? opendir(c->root) : NULL;
    if (!d) return -1;
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char p[4096];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        int len = snprintf(p, sizeof p, "%s/%s/case.json", c->root, e->d_name);
        if (len < 0 || (size_t)len >= sizeof p || stat(p, &st) != 0) continue;
        if (c->n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(c->name, cap * sizeof *grown);
            if (!grown) oom();
            c->name = grown;
        }
        if (!(c->name[c->n++] = strdup(e->d_name))) oom();
    }
    closedir(d);
    if (c->n) qsort(c->name, c->n, sizeof *c->name, by_name);
    return 0;
}

void tu_cases_free(tu_cases *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->name[i]);
    free(c->name);
    memset(c, 0, sizeof *c);
}

const char *tu_container_format(const char *container)
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

bool tu_c_contiguous(const vp_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

/* ---- scratch directories ------------------------------------------------- */
void tu_mkdtemp(char *buf, size_t size, const char *prefix)
{
    const char *base = tu_env("TMPDIR", "/tmp");
    int n = snprintf(buf, size, "%s/%s.XXXXXX", base, prefix);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "scratch directory name too long: %s/%s\n", base, prefix);
        exit(2);
    }
    if (!mkdtemp(buf)) { perror(buf); exit(2); }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path)
{
    /* depth first, and links removed rather than followed */
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
}

int tu_count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

/* ---- allocation failures ------------------------------------------------- */
void *tu_failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)osize;
    tu_failing *f = ud;
    if (nsize == 0) { free(ptr); return NULL; }
    if (f->left-- <= 0) return NULL;
    return realloc(ptr, nsize);
}

/* ---- bytes, little-endian ------------------------------------------------ */
void put(bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        uint8_t *grown = realloc(b->p, b->cap);
        if (!grown) oom();
        b->p = grown;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

void put8(bytes *b, unsigned v) { uint8_t c = (uint8_t)v; put(b, &c, 1); }
void put16(bytes *b, unsigned v) { uint8_t x[2]; wr16(x, v); put(b, x, 2); }
void put32(bytes *b, uint32_t v) { uint8_t x[4]; wr32(x, v); put(b, x, 4); }
void put64(bytes *b, uint64_t v) { uint8_t x[8]; wr64(x, v); put(b, x, 8); }
void put_str(bytes *b, const char *s) { put(b, s, strlen(s)); }

void wr16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff); wr16(p + 2, v >> 16); }
void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
unsigned rd16(const uint8_t *p) { return p[0] | (unsigned)p[1] << 8; }
uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

size_t deflate_raw(const void *in, size_t n, uint8_t **out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(2);
    size_t cap = deflateBound(&zs, (uLong)n) + 16;
    if (!(*out = malloc(cap))) oom();
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = *out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) exit(2);
    size_t got = zs.total_out;
    deflateEnd(&zs);
    return got;
}

/* ---- a zip writer -------------------------------------------------------- */
bytes build_zip(const zmember *m, int n, bool zip64, zlayout *L)
{
    bytes b = {0};
    uint8_t *comp[ZIP_MAX_MEMBERS];
    uint32_t crc[ZIP_MAX_MEMBERS];
    zlayout scratch;
    if (!L) L = &scratch;
    if (n > ZIP_MAX_MEMBERS) { fprintf(stderr, "build_zip: %d members, at most %d\n", n, ZIP_MAX_MEMBERS); exit(2); }
    memset(L, 0, sizeof *L);
    for (int i = 0; i < n; i++) {
        crc[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        if (m[i].method == 8) L->csize[i] = deflate_raw(m[i].data, m[i].len, &comp[i]);
        else {
            if (!(comp[i] = malloc(m[i].len + 1))) oom();
            if (m[i].len) memcpy(comp[i], m[i].data, m[i].len);
            L->csize[i] = m[i].len;
        }
        size_t nlen = strlen(m[i].name);
        L->lho[i] = b.n;
        size_t xlen = zip64 ? 20 : 0;
        if (m[i].align64) xlen = (64 - (b.n + 30 + nlen + 4) % 64) % 64 + 4;
        put32(&b, 0x04034b50); put16(&b, zip64 ? 45 : 20); put16(&b, 0); put16(&b, (unsigned)m[i].method);
        put16(&b, 0); put16(&b, 0x21); put32(&b, crc[i]);
        put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)L->csize[i]); put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)m[i].len);
        put16(&b, (unsigned)nlen); put16(&b, (unsigned)xlen);
        put(&b, m[i].name, nlen);
        if (m[i].align64) { put16(&b, 0x4246); put16(&b, (unsigned)xlen - 4); for (size_t k = 4; k < xlen; k++) put(&b, "Z", 1); }
        else if (zip64) { put16(&b, 1); put16(&b, 16); put64(&b, m[i].len); put64(&b, L->csize[i]); }
        L->data[i] = b.n;
        put(&b, comp[i], L->csize[i]);
    }
    L->cd = b.n;
    for (int i = 0; i < n; i++) {
        size_t nlen = strlen(m[i].name);
        L->cen[i] = b.n;
        put32(&b, 0x02014b50); put16(&b, 0x031e); put16(&b, zip64 ? 45 : 20); put16(&b, 0); put16(&b, (unsigned)m[i].method);
        put16(&b, 0); put16(&b, 0x21); put32(&b, crc[i]);
        put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)L->csize[i]); put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)m[i].len);
        put16(&b, (unsigned)nlen); put16(&b, zip64 ? 28 : 0); put16(&b, 0); put16(&b, 0); put16(&b, 0); put32(&b, 0);
        put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)L->lho[i]);
        put(&b, m[i].name, nlen);
        if (zip64) { put16(&b, 1); put16(&b, 24); put64(&b, m[i].len); put64(&b, L->csize[i]); put64(&b, L->lho[i]); }
        free(comp[i]);
    }
    L->cdsize = b.n - L->cd;
    if (zip64) {
        L->eocd64 = b.n;
        put32(&b, 0x06064b50); put64(&b, 44); put16(&b, 45); put16(&b, 45); put32(&b, 0); put32(&b, 0);
        put64(&b, (uint64_t)n); put64(&b, (uint64_t)n); put64(&b, L->cdsize); put64(&b, L->cd);
        L->loc64 = b.n;
        put32(&b, 0x07064b50); put32(&b, 0); put64(&b, L->eocd64); put32(&b, 1);
    }
    L->eocd = b.n;
    put32(&b, 0x06054b50); put16(&b, 0); put16(&b, 0);
    put16(&b, zip64 ? 0xFFFF : (unsigned)n); put16(&b, zip64 ? 0xFFFF : (unsigned)n);
    put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)L->cdsize); put32(&b, zip64 ? 0xFFFFFFFFu : (uint32_t)L->cd);
    put16(&b, 0);
    return b;
}

/* ---- an npy writer ------------------------------------------------------ */
bytes make_npy(int major, const char *dict, const void *data, size_t len)
{
    bytes b = {0};
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    put(&b, "\x93NUMPY", 6);
    uint8_t ver[2] = {(uint8_t)major, 0};
    put(&b, ver, 2);
    if (major == 1) put16(&b, (unsigned)hlen); else put32(&b, (uint32_t)hlen);
    put(&b, dict, dl);
    for (size_t i = dl; i + 1 < hlen; i++) put(&b, " ", 1);
    put(&b, "\n", 1);
    put(&b, data, len);
    return b;
}

/* ---- a safetensors writer ----------------------------------------------- */
bytes st_build(const char *header, const void *data, size_t n)
{
    bytes b = {0};
    put64(&b, strlen(header));
    put_str(&b, header);
    if (data) put(&b, data, n);
    else for (size_t i = 0; i < n; i++) put8(&b, (uint8_t)i);
    return b;
}

void tu_write_st(const char *path, const char *header, const void *data, size_t n)
{
    bytes b = st_build(header, data, n);
    tu_write_file(path, b.p, b.n);
    free(b.p);
}

/* ---- pickle opcodes ------------------------------------------------------ */
void pk_str(bytes *b, const char *s) { put8(b, 'X'); put32(b, (uint32_t)strlen(s)); put_str(b, s); }
void pk_int(bytes *b, int32_t v) { put8(b, 'J'); put32(b, (uint32_t)v); }

void pk_global(bytes *b, const char *mod, const char *name)
{
    put8(b, 'c'); put_str(b, mod); put8(b, '\n'); put_str(b, name); put8(b, '\n');
}

void pk_tensor(bytes *b, const char *stype, const char *key, int64_t numel, int64_t offset, int nd,
               const int64_t *size, const int64_t *stride, bool legacy)
{
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '('); pk_str(b, "storage"); pk_global(b, "torch", stype); pk_str(b, key); pk_str(b, "cpu");
    pk_int(b, (int32_t)numel);
    if (legacy) put8(b, 'N');
    put8(b, 't'); put8(b, 'Q');
    pk_int(b, (int32_t)offset);
    put8(b, '('); for (int d = 0; d < nd; d++) pk_int(b, (int32_t)size[d]); put8(b, 't');
    put8(b, '('); for (int d = 0; d < nd; d++) pk_int(b, (int32_t)stride[d]); put8(b, 't');
    put8(b, 0x89);
    pk_global(b, "collections", "OrderedDict"); put8(b, ')'); put8(b, 'R');
    put8(b, 't'); put8(b, 'R');
}

/* ---- running the program ------------------------------------------------- */
int tu_run(char *const argv[], const char *cwd, const char *errpath)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (cwd && chdir(cwd)) _exit(127);
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 2); close(fd); }
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) { dup2(nul, 1); close(nul); }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

void *tu_counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)osize;
    tu_counting *c = ud;
    size_t *h = ptr ? (size_t *)ptr - 2 : NULL;
    if (h) c->live -= h[0];
    if (nsize == 0) { free(h); return NULL; }
    size_t *q = realloc(h, nsize + 2 * sizeof *q);
    if (!q) { if (h) c->live += h[0]; return NULL; }
    q[0] = nsize;
    c->live += nsize;
    if (c->live > c->peak) c->peak = c->live;
    return q + 2;
}
