/*
 * NumPy .npy and .npz readers.
 *
 * An .npy file is "\x93NUMPY", a version (1.0: u16 header length; 2.0 and
 * 3.0: u32; 3.0 allows utf-8), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a '\n', then the raw data. NumPy reads the header
 * with ast.literal_eval; we parse exactly the literal it writes, strictly,
 * and nothing else (no escapes, no expressions, no structured dtypes).
 *
 * An .npz is a zip of .npy members; member "X.npy" is tensor "X". Stored
 * members are read in place from the mapping; deflated members become
 * VP_STORE_DEFLATE storages that core/source.c inflates on demand.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format/zip.h"

/* What an npy header says, after checking. */
typedef struct npy_info {
    vp_dtype dtype;
    bool swap;                  /* data is in the other byte order */
    bool fortran;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    uint64_t data_start;        /* bytes of magic + version + length + header */
    uint64_t nbytes;            /* of the data */
} npy_info;

/* Whose header it is, for messages: NULL for an .npy file (its path is
 * prefixed anyway), "member 'x.npy'" in an npz. */
typedef struct npy_ctx {
    vp_source *src;
    const char *what;
} npy_ctx;

static int fail(const npy_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const npy_ctx *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->what) return vp__err(c->src, code, "%s", msg);
    return vp__err(c->src, code, "%s: %s", c->what, msg);
}

static bool host_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 0;
}

/* ---- preamble ------------------------------------------------------------ */

/* Needs at least 10 bytes (12 for version 2.0+). Sets data_start. */
static int npy_preamble(const npy_ctx *c, const uint8_t *p, uint64_t n, npy_info *info)
{
    if (n < 10) return fail(c, VP_ERR_FORMAT, "truncated npy preamble (%llu bytes)", (unsigned long long)n);
    if (memcmp(p, "\x93NUMPY", 6) != 0) return fail(c, VP_ERR_FORMAT, "not an npy array (bad magic)");
    unsigned major = p[6], minor = p[7];
    uint64_t hlen;
    if (major == 1 && minor == 0) {
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8;
        info->data_start = 10 + hlen;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (n < 12) return fail(c, VP_ERR_FORMAT, "truncated npy preamble (%llu bytes)", (unsigned long long)n);
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 | (uint64_t)p[11] << 24;
        info->data_start = 12 + hlen;
    } else {
        return fail(c, VP_ERR_UNSUPPORTED, "npy format version %u.%u (1.0, 2.0 and 3.0 are supported)", major, minor);
    }
    if (hlen > VP_NPY_MAX_HEADER)
        return fail(c, VP_ERR_LIMIT, "npy header of %llu bytes (at most %u)", (unsigned long long)hlen, VP_NPY_MAX_HEADER);
    return VP_OK;
}

/* ---- the header dict literal --------------------------------------------- */

typedef struct lex {
    const npy_ctx *c;
    const char *p, *end;
    bool py2_longs;             /* versions 1.0/2.0 may hold Python 2 "3L" */
    char descr[32];             /* read first, interpreted once the dict parses */
} lex;

static void skip_ws(lex *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

/* Consume character ch after optional spaces; false if something else is there. */
static bool accept(lex *l, char ch)
{
    skip_ws(l);
    if (l->p < l->end && *l->p == ch) { l->p++; return true; }
    return false;
}

static int expect(lex *l, char ch, const char *where)
{
    if (accept(l, ch)) return VP_OK;
    if (l->p >= l->end) return fail(l->c, VP_ERR_FORMAT, "npy header ends inside %s (expected '%c')", where, ch);
    return fail(l->c, VP_ERR_FORMAT, "npy header: expected '%c' in %s, found '%c'", ch, where, *l->p);
}

/* A quoted string without escapes; copied (NUL-terminated) into out. */
static int parse_string(lex *l, char *out, size_t outlen)
{
    skip_ws(l);
    if (l->p >= l->end) return fail(l->c, VP_ERR_FORMAT, "npy header ends where a string was expected");
    char q = *l->p;
    if (q != '\'' && q != '"') return fail(l->c, VP_ERR_FORMAT, "npy header: expected a quoted string, found '%c'", q);
    const char *s = ++l->p;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\') return fail(l->c, VP_ERR_UNSUPPORTED, "npy header: escape sequences in strings are not supported");
        if (*l->p == '\n') break;
        l->p++;
    }
    if (l->p >= l->end || *l->p != q) return fail(l->c, VP_ERR_FORMAT, "npy header: unterminated string");
    size_t n = (size_t)(l->p - s);
    l->p++;
    if (n >= outlen) return fail(l->c, VP_ERR_UNSUPPORTED, "npy header: string of %zu bytes where a dtype or key was expected", n);
    memcpy(out, s, n);
    out[n] = 0;
    return VP_OK;
}

static bool accept_word(lex *l, const char *w)
{
    skip_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0) return false;
    const char *after = l->p + n;
    if (after < l->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') || (*after >= '0' && *after <= '9') || *after == '_'))
        return false;
    l->p = after;
    return true;
}

static int parse_bool(lex *l, bool *out)
{
    if (accept_word(l, "True")) { *out = true; return VP_OK; }
    if (accept_word(l, "False")) { *out = false; return VP_OK; }
    return fail(l->c, VP_ERR_FORMAT, "npy header: fortran_order must be True or False");
}

/* A non-negative decimal integer (Python 3 literal: no leading zeros). */
static int parse_dim(lex *l, int64_t *out)
{
    skip_ws(l);
    if (l->p < l->end && *l->p == '-') return fail(l->c, VP_ERR_FORMAT, "npy header: negative dimension in shape");
    if (l->p >= l->end || *l->p < '0' || *l->p > '9') return fail(l->c, VP_ERR_FORMAT, "npy header: shape must be a tuple of integers");
    if (*l->p == '0' && l->p + 1 < l->end && l->p[1] >= '0' && l->p[1] <= '9')
        return fail(l->c, VP_ERR_FORMAT, "npy header: dimension with a leading zero");
    uint64_t v = 0;
    while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
        if (v > ((uint64_t)INT64_MAX - 9) / 10) return fail(l->c, VP_ERR_FORMAT, "npy header: dimension too large");
        v = v * 10 + (uint64_t)(*l->p++ - '0');
    }
    if (l->py2_longs && l->p < l->end && *l->p == 'L') l->p++;
    *out = (int64_t)v;
    return VP_OK;
}

/* "()", "(3,)", "(3, 4)" and "(3, 4,)"; "(3)" is an int in Python, not a tuple. */
static int parse_shape(lex *l, npy_info *info)
{
    int rc;
    if (!accept(l, '(')) return fail(l->c, VP_ERR_FORMAT, "npy header: shape must be a tuple");
    info->ndim = 0;
    if (accept(l, ')')) return VP_OK;
    for (;;) {
        int64_t d = 0;
        if ((rc = parse_dim(l, &d))) return rc;
        if (info->ndim == VP_MAX_DIMS) return fail(l->c, VP_ERR_UNSUPPORTED, "npy header: more than %d dimensions", VP_MAX_DIMS);
        info->shape[info->ndim++] = d;
        bool comma = accept(l, ',');
        if (accept(l, ')')) {
            if (info->ndim == 1 && !comma) return fail(l->c, VP_ERR_FORMAT, "npy header: shape must be a tuple, e.g. (3,)");
            return VP_OK;
        }
        if (!comma) return expect(l, ',', "the shape");
    }
}

/* Map a descr such as "<f4" to a dtype and byte order. */
static int parse_descr(const npy_ctx *c, const char *d, npy_info *info)
{
    static const struct { const char *code; vp_dtype t; } K[] = {
        {"f8", VP_F64}, {"f4", VP_F32}, {"f2", VP_F16}, {"i8", VP_I64}, {"i4", VP_I32},
        {"i2", VP_I16}, {"i1", VP_I8}, {"u1", VP_U8}, {"b1", VP_BOOL},
    };
    char order = d[0];
    const char *code = d;
    if (order == '<' || order == '>' || order == '|' || order == '=') code++;
    else order = '=';
    if (!strcmp(code, "O") || !strcmp(code, "O8") || !strcmp(code, "O4"))
        return fail(c, VP_ERR_UNSUPPORTED, "npy dtype '%s' holds pickled Python objects, which are not supported", d);
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
        if (strcmp(code, K[i].code)) continue;
        info->dtype = K[i].t;
        /* '<' little, '>' big, '=' native, '|' not applicable (1-byte) or native. */
        bool big = order == '>' || ((order == '=' || order == '|') && host_big_endian());
        info->swap = vp_dtype_size(K[i].t) > 1 && big != host_big_endian();
        return VP_OK;
    }
    return fail(c, VP_ERR_UNSUPPORTED, "npy dtype '%s' is not supported (float64/32/16, int64/32/16/8, uint8, bool)", d);
}

static int parse_value(lex *l, const char *key, npy_info *info)
{
    if (!strcmp(key, "descr")) {
        skip_ws(l);
        if (l->p < l->end && (*l->p == '[' || *l->p == '{'))
            return fail(l->c, VP_ERR_UNSUPPORTED, "npy header: structured dtypes are not supported");
        return parse_string(l, l->descr, sizeof l->descr);
    }
    if (!strcmp(key, "fortran_order")) return parse_bool(l, &info->fortran);
    return parse_shape(l, info);   /* parse_dict let only the three keys through */
}

/* The whole dict: exactly the three keys, each once, then only whitespace. */
static int parse_dict(lex *l, npy_info *info)
{
    int rc;
    unsigned seen = 0;
    if ((rc = expect(l, '{', "the header dict"))) return rc;
    while (!accept(l, '}')) {
        char key[32];
        if ((rc = parse_string(l, key, sizeof key))) return rc;
        unsigned bit = !strcmp(key, "descr") ? 1u : !strcmp(key, "fortran_order") ? 2u : !strcmp(key, "shape") ? 4u : 0u;
        if (!bit) return fail(l->c, VP_ERR_FORMAT, "npy header: unexpected key '%s'", key);
        if (seen & bit) return fail(l->c, VP_ERR_FORMAT, "npy header: key '%s' appears twice", key);
        seen |= bit;
        if ((rc = expect(l, ':', "the header dict"))) return rc;
        if ((rc = parse_value(l, key, info))) return rc;
        if (!accept(l, ',')) {
            if ((rc = expect(l, '}', "the header dict"))) return rc;
            break;
        }
    }
    skip_ws(l);
    if (l->p != l->end) return fail(l->c, VP_ERR_FORMAT, "npy header: unexpected text after the dict");
    if (seen != 7) return fail(l->c, VP_ERR_FORMAT, "npy header lacks '%s'", !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    return VP_OK;
}

/* Parse a complete header (p holds at least info->data_start bytes) and
 * compute the data size. */
static int npy_header(const npy_ctx *c, const uint8_t *p, npy_info *info)
{
    uint64_t hstart = p[6] == 1 ? 10 : 12;
    lex l = {c, (const char *)p + hstart, (const char *)p + info->data_start, p[6] <= 2, ""};
    int rc = parse_dict(&l, info);
    if (!rc) rc = parse_descr(c, l.descr, info);
    if (rc) return rc;
    /* As numpy: the non-zero sizes times the item size must fit in a signed
     * 64-bit count even when a zero size makes the array empty (strides are
     * computed from them). */
    uint64_t nbytes = vp_dtype_size(info->dtype);
    bool empty = false;
    for (int i = 0; i < info->ndim; i++) {
        if (info->shape[i] == 0) { empty = true; continue; }
        if (!vp__mul_u64(nbytes, (uint64_t)info->shape[i], &nbytes) || nbytes > (uint64_t)INT64_MAX)
            return fail(c, VP_ERR_FORMAT, "npy header: shape times item size overflows");
    }
    info->nbytes = empty ? 0 : nbytes;
    return VP_OK;
}

/* ---- tensors ---------------------------------------------------------------- */

static void byteswap(uint8_t *p, uint64_t n, size_t es)
{
    for (uint64_t i = 0; i + es <= n; i += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) { uint8_t t = p[i + a]; p[i + a] = p[i + b]; p[i + b] = t; }
}

/* Fortran order: the first index varies fastest. */
static void fortran_strides(const npy_info *info, int64_t *strides)
{
    int64_t s = 1;
    for (int i = 0; i < info->ndim; i++) { strides[i] = s; s *= info->shape[i] ? info->shape[i] : 1; }
}

static int add_npy_tensor(vp_source *src, const char *name, const npy_info *info, long st)
{
    int64_t strides[VP_MAX_DIMS];
    if (info->fortran) fortran_strides(info, strides);
    return vp__add_tensor(src, name, info->dtype, info->ndim, info->shape, info->fortran ? strides : NULL, 0, st);
}

/* Add storage s; VP_OK or the error code (message set). */
static int add_storage(vp_source *src, const vp_storage *s, long *idx)
{
    bool full = src->nstorages >= VP_MAX_TENSORS;   /* the only non-memory failure */
    *idx = vp__add_storage(src, s);
    return *idx >= 0 ? VP_OK : full ? VP_ERR_LIMIT : VP_ERR_NOMEM;
}

/* A storage holding `bytes` (info->nbytes long) byteswapped into memory. */
static int add_swapped(vp_source *src, const npy_info *info, const uint8_t *bytes, const char *label, long *idx)
{
    vp_storage st = {.kind = VP_STORE_MEMORY, .dtype = info->dtype, .nbytes = info->nbytes, .label = label};
    if (info->nbytes) {
        if (info->nbytes > SIZE_MAX) return vp__err(src, VP_ERR_LIMIT, "'%s': too large", label);
        st.owned = vp__malloc((size_t)info->nbytes);
        if (!st.owned) return vp__err(src, VP_ERR_NOMEM, "out of memory byte-swapping '%s'", label);
        memcpy(st.owned, bytes, (size_t)info->nbytes);
        byteswap(st.owned, info->nbytes, vp_dtype_size(info->dtype));
    }
    int rc = add_storage(src, &st, idx);
    if (rc) vp__free(st.owned);
    return rc;
}

/* The base name of the path without its last extension ("weights"). */
static const char *file_stem(vp_source *src)
{
    const char *base = strrchr(src->path, '/');
    base = base ? base + 1 : src->path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n == 0) { base = "array"; n = 5; }
    return vp__arena_strndup(&src->arena, base, n);
}

int vp__open_npy(vp_source *src)
{
    npy_ctx c = {src, NULL};
    const uint8_t *p = src->map.base;
    uint64_t n = src->map.size;
    npy_info info;
    memset(&info, 0, sizeof info);
    int rc = npy_preamble(&c, p, n, &info);
    if (rc) return rc;
    if (info.data_start > n)
        return fail(&c, VP_ERR_FORMAT, "npy header of %llu bytes runs past the end of the file (%llu bytes)",
                    (unsigned long long)info.data_start, (unsigned long long)n);
    if ((rc = npy_header(&c, p, &info))) return rc;
    if (info.nbytes > n - info.data_start)
        return fail(&c, VP_ERR_FORMAT, "npy data needs %llu bytes but the file holds %llu after the header",
                    (unsigned long long)info.nbytes, (unsigned long long)(n - info.data_start));
    src->format = "npy";
    const char *name = file_stem(src);
    if (!name) return vp__err(src, VP_ERR_LIMIT, "out of name memory");
    long st;
    if (info.swap) {
        rc = add_swapped(src, &info, p + info.data_start, name, &st);
    } else {
        vp_storage s = {.kind = VP_STORE_FILE, .dtype = info.dtype, .nbytes = info.nbytes, .offset = info.data_start, .label = name};
        rc = add_storage(src, &s, &st);
    }
    return rc ? rc : add_npy_tensor(src, name, &info, st);
}

/* ---- npz ---------------------------------------------------------------------- */

/* The npy header of a deflated member: inflate the preamble, then just the
 * header (re-inflating from the start: headers are small). `buf` receives a
 * vp__malloc copy of the header bytes. */
static int deflated_header(const npy_ctx *c, long i, const vp_zip_entry *e, npy_info *info, uint8_t **buf)
{
    uint8_t pre[12];
    uint64_t want = e->usize < sizeof pre ? e->usize : sizeof pre;
    int rc = vp__zip_inflate(c->src, i, pre, want);
    if (rc) return rc;
    if ((rc = npy_preamble(c, pre, want, info))) return rc;
    if (info->data_start > e->usize)
        return fail(c, VP_ERR_FORMAT, "npy header of %llu bytes runs past the member's %llu bytes",
                    (unsigned long long)info->data_start, (unsigned long long)e->usize);
    *buf = vp__malloc((size_t)info->data_start);
    if (!*buf) return vp__err(c->src, VP_ERR_NOMEM, "out of memory");
    return vp__zip_inflate(c->src, i, *buf, info->data_start);
}

/* The whole member, inflated, for the rare big-endian deflated array (the
 * bytes must be swapped, so they cannot stay a lazy deflate storage). */
static int deflated_swapped(vp_source *src, long i, const npy_info *info, const char *label, long *idx)
{
    uint64_t total = info->data_start + info->nbytes;
    if (total > SIZE_MAX) return vp__err(src, VP_ERR_LIMIT, "'%s': too large", label);
    uint8_t *all = vp__malloc((size_t)total);
    if (!all) return vp__err(src, VP_ERR_NOMEM, "out of memory inflating '%s'", label);
    int rc = vp__zip_inflate(src, i, all, total);
    if (!rc) rc = add_swapped(src, info, all + info->data_start, label, idx);
    vp__free(all);
    return rc;
}

static int open_member(vp_source *src, long i)
{
    const vp_zip_entry *e = vp__zip_entry(src, i);
    char what[600];
    snprintf(what, sizeof what, "member '%.500s'", e->name);
    npy_ctx c = {src, what};
    if (e->name_len < 4 || memcmp(e->name + e->name_len - 4, ".npy", 4) != 0)
        return vp__err(src, VP_ERR_UNSUPPORTED, "member '%s' is not an .npy array (an npz holds only .npy members)", e->name);
    if (e->name_len == 4) return vp__err(src, VP_ERR_FORMAT, "member '.npy' gives an empty tensor name");
    const char *label = vp__arena_strndup(&src->arena, e->name, e->name_len);
    char *name = vp__arena_strndup(&src->arena, e->name, e->name_len - 4);
    if (!label || !name) return vp__err(src, VP_ERR_LIMIT, "out of name memory");

    npy_info info;
    memset(&info, 0, sizeof info);
    uint8_t *hdr = NULL;
    const uint8_t *p = src->map.base + e->data_offset;
    int rc;
    if (e->method == VP_ZIP_STORED) {
        rc = npy_preamble(&c, p, e->usize, &info);
        if (!rc && info.data_start > e->usize)
            rc = fail(&c, VP_ERR_FORMAT, "npy header of %llu bytes runs past the member's %llu bytes",
                      (unsigned long long)info.data_start, (unsigned long long)e->usize);
    } else {
        rc = deflated_header(&c, i, e, &info, &hdr);
        p = hdr;
    }
    if (!rc) rc = npy_header(&c, p, &info);
    vp__free(hdr);
    if (rc) return rc;
    if (info.nbytes > e->usize - info.data_start)
        return fail(&c, VP_ERR_FORMAT, "data needs %llu bytes but the member holds %llu after the header",
                    (unsigned long long)info.nbytes, (unsigned long long)(e->usize - info.data_start));

    long st;
    if (info.swap && e->method == VP_ZIP_STORED) {
        rc = add_swapped(src, &info, src->map.base + e->data_offset + info.data_start, label, &st);
    } else if (info.swap) {
        rc = deflated_swapped(src, i, &info, label, &st);
    } else {
        vp_storage s = {.dtype = info.dtype, .nbytes = info.nbytes, .label = label};
        if (e->method == VP_ZIP_STORED) { s.kind = VP_STORE_FILE; s.offset = e->data_offset + info.data_start; }
        else { s.kind = VP_STORE_DEFLATE; s.skip = info.data_start; }
        rc = add_storage(src, &s, &st);
    }
    if (!rc) {   /* the member's CRC-32 is checked before its bytes are used (swapped ones too) */
        src->storages[st].member = i;
        src->storages[st].crc = true;
    }
    return rc ? rc : add_npy_tensor(src, name, &info, st);
}

int vp__open_npz(vp_source *src)
{
    src->format = "npz";
    for (long i = 0; i < vp__zip_count(src); i++) {
        const vp_zip_entry *e = vp__zip_entry(src, i);
        /* Directory entries (Python's zipfile writes them for folders) hold nothing. */
        if (e->name[e->name_len - 1] == '/' && e->usize == 0) continue;
        int rc = open_member(src, i);
        if (rc) return rc;
    }
    return VP_OK;
}
