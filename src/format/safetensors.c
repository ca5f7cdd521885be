/*
 * safetensors: a validating reader and a streaming writer.
 *
 * Layout: 8-byte little-endian header size N, N bytes of UTF-8 JSON (an
 * object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" string->string map), then the data buffer.
 *
 * The reader accepts what the reference implementation (the `safetensors`
 * crate) accepts and refuses the rest, with two deliberate differences that
 * make it stricter: duplicate tensor (or metadata) names are refused rather
 * than resolved "last one wins", and a name holding a NUL character
 * (\u0000) is refused because it cannot be kept in a C string.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "format/format.h"

/* JSON numbers arrive as doubles; every integer up to 2^53 is exact. */
#define ST_MAX_JSON_INT 9007199254740992.0

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF), as
 * Rust's str::from_utf8. Returns the offset of the first bad byte, or n. */
static size_t utf8_check(const uint8_t *s, size_t n) { return vp__utf8_check(s, n, false); }

/* Does a JSON string in the text hold the escape \u0000? cJSON would cut
 * the string there, silently changing the name. */
static bool json_has_nul_escape(const char *s, size_t n) { return vp__json_has_nul_escape(s, n); }

static bool json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A copy of a name fit for a one-line message: control bytes become '?',
 * long names are cut. */
static const char *shown(char buf[static 160], const char *name)
{
    size_t i = 0;
    for (; name[i] && i < 150; i++) buf[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
    if (name[i]) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = 0;
    return buf;
}

/* ---- reader: the header, parsed straight into a table -------------------
 *
 * The JSON goes through yajl's event parser (no tree: a cJSON node per value
 * made a 58 MB header of 10^6 empty tensors cost 1.1 GB), each entry landing
 * in a 32-byte st_entry with its sizes in one shared pool, names and
 * metadata strings in the source's arena. What opening costs is bounded in
 * config.h (VP_ST_MEM_PER_HEADER_BYTE); tests/test_harden.c measures it. */
typedef struct st_entry {
    const char *name;        /* in the source's arena */
    uint64_t begin, end;
    uint32_t dims;           /* index of its first size in the shape pool */
    uint8_t dtype, ndim;
} st_entry;

typedef struct st_meta {
    size_t n;
    const char **keys, **vals;   /* sorted by key; strings live in the source's arena */
} st_meta;

void vp__safetensors_free(vp_source *src)
{
    st_meta *m = src->reader == &vp__format_safetensors ? src->state : NULL;
    src->state = NULL;
    if (!m) return;
    vp__free(m->keys);
    vp__free(m->vals);
    vp__free(m);
}

/* safetensors dtype names the reference knows but vitport does not handle. */
static bool st_known_dtype(const char *s)
{
    static const char *const other[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                        "F8_E4M3FNUZ", "F8_E5M2FNUZ", "U16", "U32", "U64", "C64"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        if (!strcmp(s, other[i])) return true;
    return false;
}

/* Where the parser is: what the enclosing container is. */
enum { C_NONE, C_TOP, C_ENTRY, C_META, C_SHAPE, C_OFFSETS };
/* Fields of an entry (bits in `have`). */
enum { F_DTYPE = 1, F_SHAPE = 2, F_OFFSETS = 4, F_OTHER = 8 };

typedef struct st_parse {
    vp_source *src;
    int rc;                  /* the first failure (message set) */
    int ctx;                 /* C_*: the container being read */
    bool top_done;           /* the root object has ended */
    yajl_handle h;
    size_t top_end;          /* bytes consumed when it ended */
    long skip;               /* > 0: inside a value of an unknown field, this deep */
    uint64_t datasize;
    /* the root's current key */
    const char *key;         /* arena copy (a tensor name), or NULL for __metadata__ */
    bool key_is_meta, seen_meta;
    /* the entry being read */
    st_entry cur;
    unsigned have, field;    /* fields seen; the one whose value comes next */
    int nofs;                /* data_offsets numbers seen */
    /* the table */
    st_entry *e; size_t n, cap;
    int64_t *pool; size_t npool, cappool;
    /* __metadata__ pairs (key, value), arena strings */
    const char **pairs; size_t npairs, cappairs;
} st_parse;

static int pfail(st_parse *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pfail(st_parse *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(p->src->errmsg, sizeof p->src->errmsg, p->src->path, fmt, ap);
    va_end(ap);
    p->rc = code;
    return 0;   /* stops yajl */
}

/* Grow *arr (of *cap elements of `size`) to hold one more than n. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 64;
    if (c > SIZE_MAX / size) return false;
    void *q = vp__realloc(*arr, c * size);
    if (!q) return false;
    *arr = q;
    *cap = c;
    return true;
}

static const char *cur_name(st_parse *p, char b[static 160]) { return shown(b, p->cur.name); }

/* A JSON number as a non-negative integer up to 2^53 (what the tree parser
 * took exactly from a double; 2.0 passes as 2, as it did). */
static bool number_uint(const char *s, size_t n, uint64_t *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || s[0] == '-') return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end = NULL;
    double d = strtod(buf, &end);
    if (end != buf + n || !(d >= 0 && d <= ST_MAX_JSON_INT)) return false;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return false;
    *out = u;
    return true;
}

/* The value of an entry field, or of a root key, is something other than
 * what it must be (kind: 'o' object, 'a' array, 's' string, 'n' number,
 * 'z' null, 'x' a boolean or nothing). Returns the yajl verdict. */
static int wrong_value(st_parse *p, char kind)
{
    char b[160];
    if (p->ctx == C_TOP) {
        if (p->key_is_meta) {
            if (kind == 'z') return 1;   /* null: "no metadata", as the reference reads it */
            return pfail(p, VP_ERR_FORMAT, "__metadata__ is not an object of strings");
        }
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': entry is not an object", shown(b, p->key));
    }
    if (p->ctx == C_ENTRY) {
        switch (p->field) {
        case F_DTYPE: return pfail(p, VP_ERR_FORMAT, "tensor '%s': \"dtype\" is missing or not a string", cur_name(p, b));
        case F_SHAPE: return pfail(p, VP_ERR_FORMAT, "tensor '%s': \"shape\" is missing or not a list", cur_name(p, b));
        case F_OFFSETS: return pfail(p, VP_ERR_FORMAT, "tensor '%s': \"data_offsets\" is not a pair of non-negative integers", cur_name(p, b));
        default: return 1;   /* an unknown field's scalar: ignored, as the reference does */
        }
    }
    if (p->ctx == C_SHAPE)
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': shape entry %d is not a non-negative integer", cur_name(p, b), p->cur.ndim);
    if (p->ctx == C_OFFSETS)
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': \"data_offsets\" is not a pair of non-negative integers", cur_name(p, b));
    if (p->ctx == C_META) return pfail(p, VP_ERR_FORMAT, "__metadata__ value of '%s' is not a string", shown(b, p->key));
    return pfail(p, VP_ERR_FORMAT, "JSON header is not an object");
}

static int on_null(void *ud)
{
    st_parse *p = ud;
    return p->skip ? 1 : wrong_value(p, 'z');
}

static int on_bool(void *ud, int v) { (void)v; st_parse *p = ud; return p->skip ? 1 : wrong_value(p, 'x'); }

static int on_number(void *ud, const char *s, size_t n)
{
    st_parse *p = ud;
    if (p->skip) return 1;
    uint64_t v;
    char b[160];
    if (p->ctx == C_SHAPE) {
        if (p->cur.ndim >= VP_MAX_DIMS)
            return pfail(p, VP_ERR_UNSUPPORTED, "tensor '%s': more than %d dimensions", cur_name(p, b), VP_MAX_DIMS);
        if (!number_uint(s, n, &v)) return wrong_value(p, 'n');
        if (!grow((void **)&p->pool, &p->cappool, p->npool, sizeof *p->pool)) return pfail(p, VP_ERR_NOMEM, "out of memory");
        p->pool[p->npool++] = (int64_t)v;
        p->cur.ndim++;
        return 1;
    }
    if (p->ctx == C_OFFSETS) {
        if (p->nofs >= 2 || !number_uint(s, n, &v)) return wrong_value(p, 'n');
        if (p->nofs++ == 0) p->cur.begin = v; else p->cur.end = v;
        return 1;
    }
    return wrong_value(p, 'n');
}

static int on_string(void *ud, const unsigned char *s, size_t n)
{
    st_parse *p = ud;
    if (p->skip) return 1;
    char b[160];
    if (p->ctx == C_ENTRY && p->field == F_DTYPE) {
        for (int t = 0; t < VP_DTYPE_COUNT; t++) {
            const char *nm = vp_dtype_st_name((vp_dtype)t);
            if (strlen(nm) == n && !memcmp(nm, s, n)) { p->cur.dtype = (uint8_t)t; return 1; }
        }
        char d[64];
        size_t k = n < sizeof d - 1 ? n : sizeof d - 1;
        memcpy(d, s, k);
        d[k] = 0;
        char b2[160];
        return pfail(p, VP_ERR_UNSUPPORTED, "tensor '%s': %s dtype '%s'", cur_name(p, b),
                     st_known_dtype(d) ? "unsupported" : "unknown", shown(b2, d));
    }
    if (p->ctx == C_META) {
        const char *v = vp__arena_strndup(&p->src->arena, (const char *)s, n);
        if (!v) return pfail(p, VP_ERR_LIMIT, "out of name memory");
        if (!grow((void **)&p->pairs, &p->cappairs, p->npairs + 1, sizeof *p->pairs)) return pfail(p, VP_ERR_NOMEM, "out of memory");
        p->pairs[p->npairs++] = p->key;
        p->pairs[p->npairs++] = v;
        return 1;
    }
    return wrong_value(p, 's');
}

static int on_key(void *ud, const unsigned char *s, size_t n)
{
    st_parse *p = ud;
    if (p->skip) return 1;
    char b[160];
    if (p->ctx == C_TOP) {
        p->key_is_meta = n == 12 && !memcmp(s, "__metadata__", 12);
        if (p->key_is_meta) {
            if (p->seen_meta) return pfail(p, VP_ERR_FORMAT, "duplicate __metadata__");
            p->seen_meta = true;
            p->key = "__metadata__";
            return 1;
        }
        if (n > VP_MAX_NAME) return pfail(p, VP_ERR_LIMIT, "tensor name longer than %d bytes", VP_MAX_NAME);
        p->key = vp__arena_strndup(&p->src->arena, (const char *)s, n);
        return p->key ? 1 : pfail(p, VP_ERR_LIMIT, "out of name memory");
    }
    if (p->ctx == C_ENTRY) {
        unsigned f = n == 5 && !memcmp(s, "dtype", 5) ? F_DTYPE : n == 5 && !memcmp(s, "shape", 5) ? F_SHAPE
                   : n == 12 && !memcmp(s, "data_offsets", 12) ? F_OFFSETS : F_OTHER;
        if (f != F_OTHER && (p->have & f))
            return pfail(p, VP_ERR_FORMAT, "tensor '%s': field \"%.*s\" given twice", cur_name(p, b), (int)n, (const char *)s);
        p->have |= f;
        p->field = f;
        return 1;
    }
    if (p->ctx == C_META) {
        p->key = vp__arena_strndup(&p->src->arena, (const char *)s, n);
        return p->key ? 1 : pfail(p, VP_ERR_LIMIT, "out of name memory");
    }
    return 1;
}

static int on_start_map(void *ud)
{
    st_parse *p = ud;
    if (p->skip) { p->skip++; return 1; }
    switch (p->ctx) {
    case C_NONE:
        if (p->top_done) return 1;   /* a second value: yajl refuses it as trailing */
        p->ctx = C_TOP;
        return 1;
    case C_TOP:
        if (p->key_is_meta) { p->ctx = C_META; return 1; }
        memset(&p->cur, 0, sizeof p->cur);
        p->cur.name = p->key;
        p->cur.dims = (uint32_t)p->npool;
        p->have = p->field = 0;
        p->nofs = 0;
        p->ctx = C_ENTRY;
        return 1;
    case C_ENTRY:
        if (p->field == F_OTHER) { p->skip = 1; return 1; }
        return wrong_value(p, 'o');
    default:
        return wrong_value(p, 'o');
    }
}

static int on_start_array(void *ud)
{
    st_parse *p = ud;
    if (p->skip) { p->skip++; return 1; }
    if (p->ctx == C_ENTRY && p->field == F_SHAPE) { p->ctx = C_SHAPE; return 1; }
    if (p->ctx == C_ENTRY && p->field == F_OFFSETS) { p->ctx = C_OFFSETS; return 1; }
    if (p->ctx == C_ENTRY && p->field == F_OTHER) { p->skip = 1; return 1; }
    if (p->ctx == C_NONE) return pfail(p, VP_ERR_FORMAT, "JSON header is not an object");
    return wrong_value(p, 'a');
}

/* An entry is complete: check it as a whole and add it to the table. */
static int end_entry(st_parse *p)
{
    char b[160];
    st_entry *e = &p->cur;
    if (!(p->have & F_DTYPE)) { p->field = F_DTYPE; return wrong_value(p, 'x'); }
    if (!(p->have & F_SHAPE)) { p->field = F_SHAPE; return wrong_value(p, 'x'); }
    if (!(p->have & F_OFFSETS)) { p->field = F_OFFSETS; return wrong_value(p, 'x'); }
    uint64_t numel = 1, need;
    for (int i = 0; i < e->ndim; i++)
        if (!vp__mul_u64(numel, (uint64_t)p->pool[e->dims + i], &numel))
            return pfail(p, VP_ERR_FORMAT, "tensor '%s': element count overflows", cur_name(p, b));
    if (!vp__mul_u64(numel, vp_dtype_size((vp_dtype)e->dtype), &need))
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': byte size overflows", cur_name(p, b));
    if (need != e->end - e->begin)
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': data_offsets span %llu bytes but %llu %s elements need %llu", cur_name(p, b),
                     (unsigned long long)(e->end - e->begin), (unsigned long long)numel,
                     vp_dtype_st_name((vp_dtype)e->dtype), (unsigned long long)need);
    if (p->n >= VP_MAX_TENSORS) return pfail(p, VP_ERR_LIMIT, "more than %u tensors", VP_MAX_TENSORS);
    if (!grow((void **)&p->e, &p->cap, p->n, sizeof *p->e)) return pfail(p, VP_ERR_NOMEM, "out of memory");
    p->e[p->n++] = *e;
    return 1;
}

static int on_end_map(void *ud)
{
    st_parse *p = ud;
    if (p->skip) { p->skip--; return 1; }
    switch (p->ctx) {
    case C_ENTRY: { int ok = end_entry(p); p->ctx = C_TOP; return ok; }
    case C_META: p->ctx = C_TOP; return 1;
    case C_TOP: p->ctx = C_NONE; p->top_done = true; p->top_end = yajl_get_bytes_consumed(p->h); return 1;
    default: return 1;
    }
}

static int on_end_array(void *ud)
{
    st_parse *p = ud;
    if (p->skip) { p->skip--; return 1; }
    char b[160];
    if (p->ctx == C_SHAPE) { p->ctx = C_ENTRY; return 1; }
    if (p->ctx == C_OFFSETS) {
        p->ctx = C_ENTRY;
        if (p->nofs != 2) return wrong_value(p, 'a');
        if (p->cur.end < p->cur.begin)
            return pfail(p, VP_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] end before they begin", cur_name(p, b),
                         (unsigned long long)p->cur.begin, (unsigned long long)p->cur.end);
        if (p->cur.end > p->datasize)
            return pfail(p, VP_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] lie past the end of the %llu-byte data buffer",
                         cur_name(p, b), (unsigned long long)p->cur.begin, (unsigned long long)p->cur.end,
                         (unsigned long long)p->datasize);
        return 1;
    }
    return 1;
}

static const yajl_callbacks st_callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end_map, on_start_array, on_end_array,
};

/* yajl 2.1 does not check its own allocations (yajl_alloc writes through
 * the pointer malloc gave it), so it must never see a failing allocator: its
 * few blocks (the handle, the lexer, the current token's buffer, bounded by
 * the header's size) come from the C allocator, and a failure there stops
 * the process cleanly rather than through a NULL write. The tensor table it
 * fills is allocated through the library's allocator as everything else. */
static void *y_checked(void *p)
{
    if (!p) { fputs("vitport: out of memory in the JSON parser\n", stderr); abort(); }
    return p;
}
static void *y_malloc(void *ud, size_t n) { (void)ud; return y_checked(malloc(n ? n : 1)); }
static void *y_realloc(void *ud, void *ptr, size_t n) { (void)ud; return y_checked(realloc(ptr, n ? n : 1)); }
static void y_free(void *ud, void *ptr) { (void)ud; free(ptr); }

static int parse_header(st_parse *p, const char *json, size_t n)
{
    vp_source *src = p->src;
    size_t bad = utf8_check((const uint8_t *)json, n);
    if (bad != n) return vp__err(src, VP_ERR_FORMAT, "JSON header is not valid UTF-8 (at byte %zu)", bad);
    if (json_has_nul_escape(json, n))
        return vp__err(src, VP_ERR_UNSUPPORTED, "JSON header holds a NUL character (\\u0000) in a string");
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, NULL};
    yajl_handle h = yajl_alloc(&st_callbacks, &af, p);
    if (!h) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    p->h = h;
    yajl_config(h, yajl_dont_validate_strings, 1);   /* utf8_check did, more strictly */
    yajl_status s = yajl_parse(h, (const unsigned char *)json, n);
    if (s == yajl_status_ok) s = yajl_complete_parse(h);
    int rc = VP_OK;
    if (p->rc) rc = p->rc;   /* a callback's verdict (message set) */
    else if (s != yajl_status_ok) {
        size_t at = yajl_get_bytes_consumed(h);
        if (p->top_done) {
            for (at = p->top_end; at < n && json_ws(json[at]);) at++;
            rc = vp__err(src, VP_ERR_FORMAT, "JSON header has trailing characters at byte %zu", at);
        } else {
            rc = vp__err(src, VP_ERR_FORMAT, "JSON header is not valid JSON (near byte %zu of %zu)", at, n);
        }
    } else if (!p->top_done) {
        rc = vp__err(src, VP_ERR_FORMAT, "JSON header is not an object");
    }
    yajl_free(h);
    return rc;
}

/* ---- reader: metadata --------------------------------------------------- */
static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int finish_metadata(vp_source *src, st_parse *p)
{
    if (!p->npairs) return VP_OK;
    size_t n = p->npairs / 2;
    st_meta *m = vp__calloc(1, sizeof *m);
    if (!m) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    src->state = m;   /* freed by vp__safetensors_free */
    m->keys = vp__calloc(n, sizeof *m->keys);
    m->vals = vp__calloc(n, sizeof *m->vals);
    if (!m->keys || !m->vals) return vp__err(src, VP_ERR_NOMEM, "out of memory");
    /* Keep key and value together while sorting: sort pairs of pointers. */
    qsort(p->pairs, n, 2 * sizeof *p->pairs, cmp_str_ptr);
    char b[160];
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(p->pairs[2 * i], p->pairs[2 * i - 2]))
            return vp__err(src, VP_ERR_FORMAT, "duplicate __metadata__ key '%s'", shown(b, p->pairs[2 * i]));
        m->keys[i] = p->pairs[2 * i];
        m->vals[i] = p->pairs[2 * i + 1];
        m->n = i + 1;
    }
    return VP_OK;
}

const char *vp_source_metadata(const vp_source *src, const char *key)
{
    if (!src || !key || src->reader != &vp__format_safetensors || !src->state) return NULL;
    const st_meta *m = src->state;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, m->keys[mid]);
        if (!c) return m->vals[mid];
        if (c < 0) hi = mid; else lo = mid + 1;
    }
    return NULL;
}

/* ---- reader: the whole header ------------------------------------------ */
static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

/* Data-offset order; empty tensors sharing an offset are ordered by name. */
static int cmp_entry_offsets(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The entries, sorted by offset, must tile [0, datasize) exactly. */
static int check_tiling(vp_source *src, const st_entry *e, size_t n, uint64_t datasize)
{
    char b1[160], b2[160];
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin > at) {
            if (i == 0)
                return vp__err(src, VP_ERR_FORMAT, "tensor '%s' begins at byte %llu of the data buffer, leaving a gap at its start",
                               shown(b1, e[i].name), (unsigned long long)e[i].begin);
            return vp__err(src, VP_ERR_FORMAT, "gap in the data buffer: tensor '%s' ends at byte %llu but '%s' begins at %llu",
                           shown(b1, e[i - 1].name), (unsigned long long)at, shown(b2, e[i].name),
                           (unsigned long long)e[i].begin);
        }
        if (e[i].begin < at)
            return vp__err(src, VP_ERR_FORMAT, "tensor '%s' (bytes %llu-%llu) overlaps '%s' (which ends at byte %llu)",
                           shown(b1, e[i].name), (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                           shown(b2, e[i - 1].name), (unsigned long long)at);
        at = e[i].end;
    }
    if (at != datasize)
        return vp__err(src, VP_ERR_FORMAT, "the tensors cover %llu bytes but the data buffer holds %llu (trailing bytes)",
                       (unsigned long long)at, (unsigned long long)datasize);
    return VP_OK;
}

static int add_entries(vp_source *src, const st_entry *e, size_t n, const int64_t *pool, uint64_t data_start)
{
    int rc = vp__reserve_tables(src, n, n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        vp_storage st;
        memset(&st, 0, sizeof st);
        st.kind = VP_STORE_FILE;
        st.dtype = (vp_dtype)e[i].dtype;
        st.nbytes = e[i].end - e[i].begin;
        st.offset = data_start + e[i].begin;
        st.label = e[i].name;   /* arena, kept until vp_source_close */
        long idx = vp__add_storage(src, &st);
        if (idx < 0) return VP_ERR_LIMIT;
        /* no pool when every tensor is 0-d (NULL + 0 is undefined) */
        rc = vp__add_tensor(src, e[i].name, (vp_dtype)e[i].dtype, e[i].ndim, pool ? pool + e[i].dims : NULL, NULL, 0, idx);
        if (rc) return rc;
    }
    return VP_OK;
}

int vp__open_safetensors(vp_source *src)
{
    src->format = "safetensors";
    uint64_t size = src->map.size;
    if (size < 8) return vp__err(src, VP_ERR_FORMAT, "file of %llu bytes is too short for a safetensors header", (unsigned long long)size);
    uint64_t hn = load_le64(src->map.base);
    if (hn > VP_ST_MAX_HEADER)
        return vp__err(src, VP_ERR_LIMIT, "JSON header of %llu bytes exceeds the limit of %u", (unsigned long long)hn, VP_ST_MAX_HEADER);
    if (hn > size - 8)
        return vp__err(src, VP_ERR_FORMAT, "JSON header of %llu bytes runs past the end of the file (%llu bytes)",
                       (unsigned long long)hn, (unsigned long long)size);
    st_parse p;
    memset(&p, 0, sizeof p);
    p.src = src;
    p.datasize = size - 8 - hn;
    int rc = parse_header(&p, (const char *)src->map.base + 8, (size_t)hn);
    if (!rc) rc = finish_metadata(src, &p);
    if (!rc) {
        if (p.n) qsort(p.e, p.n, sizeof *p.e, cmp_entry_name);
        char b[160];
        for (size_t i = 1; i < p.n && !rc; i++)
            if (!strcmp(p.e[i].name, p.e[i - 1].name))
                rc = vp__err(src, VP_ERR_FORMAT, "duplicate tensor name '%s'", shown(b, p.e[i].name));
    }
    if (!rc) {
        if (p.n) qsort(p.e, p.n, sizeof *p.e, cmp_entry_offsets);
        rc = check_tiling(src, p.e, p.n, p.datasize);
    }
    if (!rc) rc = add_entries(src, p.e, p.n, p.pool, 8 + hn);
    vp__free(p.e);
    vp__free(p.pool);
    vp__free(p.pairs);
    return rc;
}

/* ---- writer ------------------------------------------------------------- */
typedef struct st_decl {
    char *name;
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    uint64_t begin, end;   /* in the data buffer */
} st_decl;

struct vp_st_writer {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[768];
    int rc;                  /* sticky: the first failure */
    char *path, *tmppath;
    int fd;
    st_decl *t;
    size_t nt, capt;
    size_t *hash;            /* open addressing over t (index + 1; 0 = empty) */
    size_t caphash;
    char **mkeys, **mvals;
    size_t nm, capm;
    bool started, finished;
    uint64_t total;          /* declared data bytes */
    uint64_t written;        /* data bytes written so far */
    uint8_t *chunk;          /* pread fallback buffer, allocated on first need */
    uint64_t data_start;     /* file offset of the first data byte (8 + header) */
    bool durable;            /* fsync before the rename */
};

static int werr(vp_st_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int werr(vp_st_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(w->errmsg, sizeof w->errmsg, w->path, fmt, ap);
    va_end(ap);
    if (code != VP_ERR_ARG && !w->rc) w->rc = code;   /* misuse leaves the file usable */
    return code;
}

const char *vp_st_writer_errmsg(const vp_st_writer *w) { return w ? w->errmsg : "out of memory"; }

static int vp_st_writer_open__impl(vp_st_writer **out, const char *path)
{
    vp_st_writer *w = vp__calloc(1, sizeof *w);
    *out = w;
    if (!w) return VP_ERR_NOMEM;
    w->alloc = vp__alloc_get();
    w->fd = -1;
    if (!path || !*path) { w->rc = VP_ERR_ARG; snprintf(w->errmsg, sizeof w->errmsg, "no output path"); return VP_ERR_ARG; }
    w->path = vp__strdup(path);
    if (!w->path) return werr(w, VP_ERR_NOMEM, "out of memory");
    /* The temporary lives beside the target so that rename() is atomic. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    vp_buf b = {0};
    vp__buf_add(&b, path, dirlen);
    vp__buf_printf(&b, ".%s.tmp-XXXXXX", path + dirlen);
    if (b.oom) { vp__buf_free(&b); return werr(w, VP_ERR_NOMEM, "out of memory"); }
    w->tmppath = b.p;
    w->fd = mkostemp(w->tmppath, O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        vp__free(w->tmppath);
        w->tmppath = NULL;
        return werr(w, VP_ERR_IO, "cannot create a temporary file beside it: %s", strerror(e));
    }
    /* mkstemp makes the file private (0600); the result is an ordinary data file. */
    if (fchmod(w->fd, 0644) != 0) return werr(w, VP_ERR_IO, "cannot set the file mode: %s", strerror(errno));
    return VP_OK;
}

int vp_st_writer_open_ex(vp_st_writer **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_st_writer_open__impl(out, path));
}

int vp_st_writer_open(vp_st_writer **out, const char *path)
{
    return vp_st_writer_open_ex(out, path, vp__alloc_current());
}

/* Names become JSON keys and appear in messages: valid UTF-8, no control
 * characters, not the reserved key. */
static int check_name(vp_st_writer *w, const char *what, const char *s, bool allow_ctl)
{
    size_t n = strlen(s);
    if (n > VP_MAX_NAME) return werr(w, VP_ERR_ARG, "%s longer than %d bytes", what, VP_MAX_NAME);
    if (utf8_check((const uint8_t *)s, n) != n) return werr(w, VP_ERR_ARG, "%s is not valid UTF-8", what);
    if (!allow_ctl)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                char b[160];
                return werr(w, VP_ERR_ARG, "%s '%s' holds a control character", what, shown(b, s));
            }
    return VP_OK;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Find name in the hash set; returns the slot (empty or holding it). */
static size_t hash_slot(const vp_st_writer *w, const char *name)
{
    size_t mask = w->caphash - 1, i = (size_t)hash_name(name) & mask;
    while (w->hash[i] && strcmp(w->t[w->hash[i] - 1].name, name)) i = (i + 1) & mask;
    return i;
}

static bool hash_grow(vp_st_writer *w)
{
    size_t cap = w->caphash ? w->caphash * 2 : 64;
    size_t *h = vp__calloc(cap, sizeof *h);
    if (!h) return false;
    vp__free(w->hash);
    w->hash = h;
    w->caphash = cap;
    for (size_t k = 0; k < w->nt; k++) w->hash[hash_slot(w, w->t[k].name)] = k + 1;
    return true;
}

static int check_declaring(vp_st_writer *w)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->started || w->finished) return werr(w, VP_ERR_ARG, "tensors and metadata must be declared before the first write");
    return VP_OK;
}

static int vp_st_writer_meta__impl(vp_st_writer *w, const char *key, const char *value)
{
    int rc = check_declaring(w);
    if (rc) return rc;
    if (!key || !value) return werr(w, VP_ERR_ARG, "metadata key or value is NULL");
    if ((rc = check_name(w, "metadata key", key, false)) || (rc = check_name(w, "metadata value", value, true))) return rc;
    char b[160];
    for (size_t i = 0; i < w->nm; i++)
        if (!strcmp(w->mkeys[i], key)) return werr(w, VP_ERR_ARG, "duplicate metadata key '%s'", shown(b, key));
    if (w->nm == w->capm) {
        size_t cap = w->capm ? w->capm * 2 : 16;
        char **k = vp__realloc(w->mkeys, cap * sizeof *k);
        if (!k) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->mkeys = k;
        char **v = vp__realloc(w->mvals, cap * sizeof *v);
        if (!v) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->mvals = v;
        w->capm = cap;
    }
    char *k = vp__strdup(key), *v = vp__strdup(value);
    if (!k || !v) { vp__free(k); vp__free(v); return werr(w, VP_ERR_NOMEM, "out of memory"); }
    w->mkeys[w->nm] = k;
    w->mvals[w->nm++] = v;
    return VP_OK;
}

int vp_st_writer_meta(vp_st_writer *w, const char *key, const char *value)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_meta__impl(w, key, value));
}

static int vp_st_writer_add__impl(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape)
{
    int rc = check_declaring(w);
    if (rc) return rc;
    if (!name) return werr(w, VP_ERR_ARG, "tensor name is NULL");
    if ((rc = check_name(w, "tensor name", name, false))) return rc;
    char b[160];
    const char *nm = shown(b, name);
    if (!strcmp(name, "__metadata__")) return werr(w, VP_ERR_ARG, "'__metadata__' is reserved, not a tensor name");
    if ((unsigned)dtype >= VP_DTYPE_COUNT) return werr(w, VP_ERR_ARG, "tensor '%s': bad dtype %d", nm, (int)dtype);
    if (ndim < 0 || ndim > VP_MAX_DIMS || (ndim && !shape))
        return werr(w, VP_ERR_ARG, "tensor '%s': %d dimensions (0 to %d, with a shape)", nm, ndim, VP_MAX_DIMS);
    uint64_t bytes = vp_dtype_size(dtype), end;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return werr(w, VP_ERR_ARG, "tensor '%s': negative size in dimension %d", nm, i);
        if ((double)shape[i] > ST_MAX_JSON_INT || !vp__mul_u64(bytes, (uint64_t)shape[i], &bytes))
            return werr(w, VP_ERR_ARG, "tensor '%s': size overflows", nm);
    }
    if (!vp__add_u64(w->total, bytes, &end) || (double)end > ST_MAX_JSON_INT)
        return werr(w, VP_ERR_ARG, "tensor '%s': total size overflows", nm);
    if (w->nt * 2 >= w->caphash && !hash_grow(w)) return werr(w, VP_ERR_NOMEM, "out of memory");
    size_t slot = hash_slot(w, name);
    if (w->hash[slot]) return werr(w, VP_ERR_ARG, "duplicate tensor name '%s'", nm);
    if (w->nt >= VP_MAX_TENSORS) return werr(w, VP_ERR_LIMIT, "more than %u tensors", VP_MAX_TENSORS);
    if (w->nt == w->capt) {
        size_t cap = w->capt ? w->capt * 2 : 64;
        st_decl *p = vp__realloc(w->t, cap * sizeof *p);
        if (!p) return werr(w, VP_ERR_NOMEM, "out of memory");
        w->t = p;
        w->capt = cap;
    }
    st_decl *d = &w->t[w->nt];
    memset(d, 0, sizeof *d);
    if (!(d->name = vp__strdup(name))) return werr(w, VP_ERR_NOMEM, "out of memory");
    d->dtype = dtype;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->begin = w->total;
    d->end = end;
    w->total = end;
    w->hash[slot] = ++w->nt;
    return VP_OK;
}

int vp_st_writer_add(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_add__impl(w, name, dtype, ndim, shape));
}

/* JSON string: quote, backslash and control characters escaped; other
 * UTF-8 passes through as the reference writer does. */
static void json_str(vp_buf *b, const char *s)
{
    vp__buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; vp__buf_add(b, e, 2); }
        else if (c == '\n') vp__buf_puts(b, "\\n");
        else if (c == '\t') vp__buf_puts(b, "\\t");
        else if (c == '\r') vp__buf_puts(b, "\\r");
        else if (c < 0x20) vp__buf_printf(b, "\\u%04x", c);
        else vp__buf_add(b, s, 1);
    }
    vp__buf_add(b, "\"", 1);
}

static void build_header(const vp_st_writer *w, vp_buf *b)
{
    vp__buf_puts(b, "{");
    if (w->nm) {
        vp__buf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nm; i++) {
            if (i) vp__buf_puts(b, ",");
            json_str(b, w->mkeys[i]);
            vp__buf_puts(b, ":");
            json_str(b, w->mvals[i]);
        }
        vp__buf_puts(b, w->nt ? "}," : "}");
    }
    for (size_t i = 0; i < w->nt; i++) {
        const st_decl *d = &w->t[i];
        if (i) vp__buf_puts(b, ",");
        json_str(b, d->name);
        vp__buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", vp_dtype_st_name(d->dtype));
        for (int k = 0; k < d->ndim; k++) vp__buf_printf(b, k ? ",%lld" : "%lld", (long long)d->shape[k]);
        vp__buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)d->begin, (unsigned long long)d->end);
    }
    vp__buf_puts(b, "}");
    while (!b->oom && b->n % 8) vp__buf_add(b, " ", 1);   /* data starts 8-aligned, as the reference pads */
}

static int write_all(vp_st_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return werr(w, VP_ERR_IO, "write failed: %s", k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return VP_OK;
}

/* Write the header: on the first data write, or at finish. */
static int start(vp_st_writer *w)
{
    if (w->started) return VP_OK;
    w->started = true;
    vp_buf b = {0};
    build_header(w, &b);
    if (b.oom) { vp__buf_free(&b); return werr(w, VP_ERR_NOMEM, "out of memory building the header"); }
    if (b.n > VP_ST_MAX_HEADER) {
        vp__buf_free(&b);
        return werr(w, VP_ERR_LIMIT, "JSON header of %zu bytes exceeds the limit of %u", b.n, VP_ST_MAX_HEADER);
    }
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
    int rc = write_all(w, le, 8);
    if (!rc) rc = write_all(w, b.p, b.n);
    w->data_start = 8 + (uint64_t)b.n;
    vp__buf_free(&b);
    return rc;
}

/* The tensor that data byte `at` belongs to (for messages). */
static const char *tensor_at(const vp_st_writer *w, uint64_t at, char buf[static 160])
{
    size_t lo = 0, hi = w->nt;
    while (lo < hi) {   /* first tensor whose end > at */
        size_t mid = lo + (hi - lo) / 2;
        if (w->t[mid].end > at) hi = mid; else lo = mid + 1;
    }
    return lo < w->nt ? shown(buf, w->t[lo].name) : "?";
}

static int check_writing(vp_st_writer *w, uint64_t n)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->finished) return werr(w, VP_ERR_ARG, "write after finish");
    if (n > w->total - w->written) {
        char b[160];
        if (w->written == w->total)
            return werr(w, VP_ERR_ARG, "%llu bytes written past the %llu declared", (unsigned long long)n, (unsigned long long)w->total);
        return werr(w, VP_ERR_ARG, "%llu bytes at data byte %llu (tensor '%s') run past the %llu declared",
                    (unsigned long long)n, (unsigned long long)w->written, tensor_at(w, w->written, b),
                    (unsigned long long)w->total);
    }
    return start(w);
}

static int vp_st_writer_write__impl(vp_st_writer *w, const void *data, size_t n)
{
    int rc = check_writing(w, n);
    if (rc) return rc;
    if (n && !data) return werr(w, VP_ERR_ARG, "NULL data");
    if ((rc = write_all(w, data, n))) return rc;
    w->written += n;
    return VP_OK;
}

int vp_st_writer_write(vp_st_writer *w, const void *data, size_t n)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_write__impl(w, data, n));
}

/* pread+write, for when the kernel cannot copy between these files. */
static int copy_by_reading(vp_st_writer *w, int fd, uint64_t off, uint64_t n)
{
    if (!w->chunk && !(w->chunk = vp__malloc(VP_COPY_CHUNK))) return werr(w, VP_ERR_NOMEM, "out of memory");
    while (n) {
        size_t want = n < VP_COPY_CHUNK ? (size_t)n : VP_COPY_CHUNK;
        ssize_t k = pread(fd, w->chunk, want, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return werr(w, VP_ERR_IO, "cannot read the source at byte %llu: %s", (unsigned long long)off, strerror(errno));
        if (k == 0) return werr(w, VP_ERR_IO, "the source ends before byte %llu", (unsigned long long)off);
        int rc = write_all(w, w->chunk, (size_t)k);
        if (rc) return rc;
        off += (uint64_t)k;
        n -= (uint64_t)k;
        w->written += (uint64_t)k;
    }
    return VP_OK;
}

static int vp_st_writer_copy__impl(vp_st_writer *w, int fd, uint64_t offset, uint64_t n)
{
    int rc = check_writing(w, n);
    if (rc) return rc;
    if (offset > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - offset)
        return werr(w, VP_ERR_ARG, "source range overflows");
    /* The kernel's copy (splice through the page cache) is fastest when
     * source and destination share their offset within a page; otherwise
     * it shifts every page and measures slower than a read and a write
     * through a small buffer that stays in cache (bench/bench_convert.sh). */
    if (((offset ^ (w->data_start + w->written)) & 4095u) != 0) return copy_by_reading(w, fd, offset, n);
    loff_t in = (loff_t)offset;
    while (n) {
        size_t want = n < (1u << 30) ? (size_t)n : (1u << 30);
        ssize_t k = copy_file_range(fd, &in, w->fd, NULL, want, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
            return copy_by_reading(w, fd, (uint64_t)in, n);
        if (k < 0) return werr(w, VP_ERR_IO, "copy_file_range failed: %s", strerror(errno));
        if (k == 0) return werr(w, VP_ERR_IO, "the source ends before byte %llu", (unsigned long long)in);
        n -= (uint64_t)k;
        w->written += (uint64_t)k;
    }
    return VP_OK;
}

int vp_st_writer_copy(vp_st_writer *w, int fd, uint64_t offset, uint64_t n)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_copy__impl(w, fd, offset, n));
}

/* Make the rename itself durable; a failure here loses nothing written. */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? vp__strndup(path, slash == path ? 1 : (size_t)(slash - path)) : vp__strdup(".");
    if (dir) vp__fsync_dir(dir);
    vp__free(dir);
}

void vp_st_writer_durable(vp_st_writer *w, int on)
{
    if (w) w->durable = on != 0;
}

static int vp_st_writer_finish__impl(vp_st_writer *w)
{
    if (!w) return VP_ERR_ARG;
    if (w->rc) return w->rc;
    if (w->finished) return werr(w, VP_ERR_ARG, "already finished");
    int rc = start(w);
    if (rc) return rc;
    if (w->written != w->total) {
        char b[160];
        return werr(w, VP_ERR_ARG, "only %llu of %llu data bytes were written (tensor '%s' is incomplete)",
                    (unsigned long long)w->written, (unsigned long long)w->total, tensor_at(w, w->written, b));
    }
    if (w->durable && fsync(w->fd) != 0) return werr(w, VP_ERR_IO, "fsync failed: %s", strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) return werr(w, VP_ERR_IO, "close failed: %s", strerror(errno));
    if (rename(w->tmppath, w->path) != 0) return werr(w, VP_ERR_IO, "cannot rename the temporary into place: %s", strerror(errno));
    w->finished = true;
    if (w->durable) sync_parent(w->path);
    return VP_OK;
}

int vp_st_writer_finish(vp_st_writer *w)
{
    VP__WITH_ALLOC(w ? &w->alloc : vp__alloc_current(), int, vp_st_writer_finish__impl(w));
}

static void vp_st_writer_close__impl(vp_st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (!w->finished && w->tmppath) unlink(w->tmppath);
    for (size_t i = 0; i < w->nt; i++) vp__free(w->t[i].name);
    for (size_t i = 0; i < w->nm; i++) { vp__free(w->mkeys[i]); vp__free(w->mvals[i]); }
    vp__free(w->t);
    vp__free(w->hash);
    vp__free(w->mkeys);
    vp__free(w->mvals);
    vp__free(w->chunk);
    vp__free(w->tmppath);
    vp__free(w->path);
    vp__free(w);
}

void vp_st_writer_close(vp_st_writer *w)
{
    VP__WITH_ALLOC_VOID(w ? &w->alloc : vp__alloc_current(), vp_st_writer_close__impl(w));
}
