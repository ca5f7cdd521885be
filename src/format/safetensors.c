/*
 * safetensors: a validating reader (the writer: safetensors_write.c).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "format/format.h"

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

static const char *cur_name(st_parse *p, char b[static VP_SHOWN_LEN]) { return vp__shown(b, p->cur.name); }

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
    if (end != buf + n || !(d >= 0 && d <= VP_ST_MAX_JSON_INT)) return false;
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
    char b[VP_SHOWN_LEN];
    if (p->ctx == C_TOP) {
        if (p->key_is_meta) {
            if (kind == 'z') return 1;   /* null: "no metadata", as the reference reads it */
            return pfail(p, VP_ERR_FORMAT, "__metadata__ is not an object of strings");
        }
        return pfail(p, VP_ERR_FORMAT, "tensor '%s': entry is not an object", vp__shown(b, p->key));
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
    if (p->ctx == C_META) return pfail(p, VP_ERR_FORMAT, "__metadata__ value of '%s' is not a string", vp__shown(b, p->key));
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
    char b[VP_SHOWN_LEN];
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
    char b[VP_SHOWN_LEN];
    if (p->ctx == C_ENTRY && p->field == F_DTYPE) {
        for (int t = 0; t < VP_DTYPE_COUNT; t++) {
            const char *nm = vp_dtype_st_name((vp_dtype)t);
            if (strlen(nm) == n && !memcmp(nm, s, n)) { p->cur.dtype = (uint8_t)t; return 1; }
        }
        char d[64];
        size_t k = n < sizeof d - 1 ? n : sizeof d - 1;
        memcpy(d, s, k);
        d[k] = 0;
        char b2[VP_SHOWN_LEN];
        return pfail(p, VP_ERR_UNSUPPORTED, "tensor '%s': %s dtype '%s'", cur_name(p, b),
                     st_known_dtype(d) ? "unsupported" : "unknown", vp__shown(b2, d));
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
    char b[VP_SHOWN_LEN];
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
    char b[VP_SHOWN_LEN];
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
    char b[VP_SHOWN_LEN];
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
    char b[VP_SHOWN_LEN];
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(p->pairs[2 * i], p->pairs[2 * i - 2]))
            return vp__err(src, VP_ERR_FORMAT, "duplicate __metadata__ key '%s'", vp__shown(b, p->pairs[2 * i]));
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
    char b1[VP_SHOWN_LEN], b2[VP_SHOWN_LEN];
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin > at) {
            if (i == 0)
                return vp__err(src, VP_ERR_FORMAT, "tensor '%s' begins at byte %llu of the data buffer, leaving a gap at its start",
                               vp__shown(b1, e[i].name), (unsigned long long)e[i].begin);
            return vp__err(src, VP_ERR_FORMAT, "gap in the data buffer: tensor '%s' ends at byte %llu but '%s' begins at %llu",
                           vp__shown(b1, e[i - 1].name), (unsigned long long)at, vp__shown(b2, e[i].name),
                           (unsigned long long)e[i].begin);
        }
        if (e[i].begin < at)
            return vp__err(src, VP_ERR_FORMAT, "tensor '%s' (bytes %llu-%llu) overlaps '%s' (which ends at byte %llu)",
                           vp__shown(b1, e[i].name), (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                           vp__shown(b2, e[i - 1].name), (unsigned long long)at);
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
        char b[VP_SHOWN_LEN];
        for (size_t i = 1; i < p.n && !rc; i++)
            if (!strcmp(p.e[i].name, p.e[i - 1].name))
                rc = vp__err(src, VP_ERR_FORMAT, "duplicate tensor name '%s'", vp__shown(b, p.e[i].name));
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
