/*
 * The safe pickle reader's values (see pickle_vm.h): what the opcodes make,
 * and Python's hashing and equality for dict and set keys (dicts keep
 * insertion order; equal keys as Python sees them, 1 == 1.0 == True, are
 * one key).
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "format/pickle_vm.h"

/* A tuple of one or two items keeps them in its args and state fields. */
_Static_assert(offsetof(vp_value, state) == offsetof(vp_value, args) + sizeof(vp_value *),
               "vp_value.args and .state must be adjacent");

/* ---- values ---------------------------------------------------------------- */
vp_value *vp__pk_new_value(vm *m, vp_kind kind)
{
    vp_value *v = vp__pk_alloc(m, sizeof *v);
    if (v) v->kind = (uint8_t)kind;
    return v;
}

/* Ints are immutable: small ones are made once and shared (BININT1 is
 * two bytes; a 64-byte value each was the pickle's costliest opcode). */
vp_value *vp__pk_new_int(vm *m, int64_t i)
{
    if (i >= SMALL_INT_MIN && i <= SMALL_INT_MAX) {
        if (!m->small_ints) {
            if (!vp__pk_fits(m, SMALL_INT_COUNT * sizeof *m->small_ints)) return NULL;
            m->small_ints = vp__calloc(SMALL_INT_COUNT, sizeof *m->small_ints);
            if (!m->small_ints) return NULL;
        }
        vp_value **slot = &m->small_ints[i - SMALL_INT_MIN];
        if (!*slot && (*slot = vp__pk_new_value(m, VP_V_INT))) (*slot)->u.i = i;
        return *slot;
    }
    vp_value *v = vp__pk_new_value(m, VP_V_INT);
    if (v) v->u.i = i;
    return v;
}

/* STR or BYTES holding a copy of s[0..n). */
vp_value *vp__pk_new_text(vm *m, vp_kind kind, const void *s, size_t n)
{
    if (kind == VP_V_STR && n == 0 && m->empty_str) return m->empty_str;   /* immutable: shared */
    vp_value *v = vp__pk_new_value(m, kind);
    if (!v) return NULL;
    v->text = vp__pk_strndup(m, (const char *)s, n);
    if (!v->text) return NULL;
    v->len = n;
    return v;
}

vp_value *vp__pk_new_other(vm *m, int sub, const char *text)
{
    vp_value *v = vp__pk_new_value(m, VP_V_OTHER);
    if (!v) return NULL;
    v->sub = (uint8_t)sub;
    v->text = vp__pk_strndup(m, text, strlen(text));
    return v->text ? v : NULL;
}

/* Raise c's depth to hold item; refuse nesting beyond the limit. */
int vp__pk_note_depth(vm *m, vp_value *c, const vp_value *item)
{
    if (!item) return VP_OK;
    unsigned d = (unsigned)item->depth + 1;
    if (d > c->depth) {
        if (d > VP_PICKLE_MAX_DEPTH)
            return vp__pk_fail(m, VP_ERR_LIMIT, "containers nest deeper than %d levels (VP_PICKLE_MAX_DEPTH)", VP_PICKLE_MAX_DEPTH);
        c->depth = (uint16_t)d;
    }
    return VP_OK;
}

/* A tuple (or list/set) made of items[0..n). */
int vp__pk_new_seq(vm *m, vp_kind kind, vp_value **items, size_t n, vp_value **out)
{
    if (n > VP_PICKLE_MAX_ITEMS)
        return vp__pk_fail(m, VP_ERR_LIMIT, "%zu items in one container (VP_PICKLE_MAX_ITEMS is %u)", n, VP_PICKLE_MAX_ITEMS);
    if (kind == VP_V_TUPLE && n == 0) { *out = m->empty_tuple; return VP_OK; }
    vp_value *v = vp__pk_new_value(m, kind);
    if (!v) return vp__pk_nomem(m);
    v->depth = 1;
    if (n) {
        /* a tuple of one or two keeps them in its args and state fields,
         * which tuples do not use (BUILD refuses a tuple) */
        if (kind == VP_V_TUPLE && n <= 2) v->items = &v->args;
        else v->items = vp__pk_alloc(m, n * sizeof *v->items);
        if (!v->items) return vp__pk_nomem(m);
        memcpy(v->items, items, n * sizeof *items);
        for (size_t i = 0; i < n; i++) {
            int rc = vp__pk_note_depth(m, v, items[i]);
            if (rc) return rc;
        }
    }
    v->len = v->cap = n;
    *out = v;
    return VP_OK;
}

vp_value *vp__pk_new_container(vm *m, vp_kind kind)
{
    vp_value *v = vp__pk_new_value(m, kind);
    if (v) v->depth = 1;
    return v;
}

/* ---- hashing and equality (Python semantics for the hashable kinds) ------- */
bool vp__pk_is_intlike(const vp_value *v)
{
    return (v->kind == VP_V_INT && v->sub != VP_SUB_BIGINT) || v->kind == VP_V_BOOL;
}

static uint64_t hash_bytes(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 0x100000001b3ull; }
    return h;
}

uint64_t vp__pk_mix(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33;
    return x;
}

/* Whether a float is an integer that int64 holds exactly. */
static bool float_as_int(double f, int64_t *i)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f)) return false;
    *i = (int64_t)f;
    return true;
}

/* aux flags of STR, BYTES, TUPLE and big INT values (which leave aux and u
 * unused): their hash is computed once and kept in u.i, so that a long key
 * set many times costs its length once, not every time. */
#define AUX_HASHED 1u
#define AUX_HASHABLE 2u

static bool hash_cached_kind(const vp_value *v)
{
    return v->kind == VP_V_STR || v->kind == VP_V_BYTES || v->kind == VP_V_TUPLE ||
           (v->kind == VP_V_INT && v->sub == VP_SUB_BIGINT);
}

static uint64_t vhash_compute(const vp_value *v);

static uint64_t vhash(const vp_value *cv)
{
    if (!hash_cached_kind(cv)) return vhash_compute(cv);
    vp_value *v = (vp_value *)cv;   /* the cache does not change the value */
    if (!(v->aux & AUX_HASHED)) {
        v->u.i = (int64_t)vhash_compute(v);
        v->aux |= AUX_HASHED;
    }
    return (uint64_t)v->u.i;
}

static uint64_t vhash_compute(const vp_value *v)
{
    int64_t i;
    switch (v->kind) {
    case VP_V_NONE: return 0x9e3779b97f4a7c15ull;
    case VP_V_BOOL: case VP_V_INT:
        if (v->sub == VP_SUB_BIGINT && v->kind == VP_V_INT) return hash_bytes(v->text, strlen(v->text), 0xcbf29ce484222325ull);
        return vp__pk_mix((uint64_t)v->u.i);
    case VP_V_FLOAT:
        if (float_as_int(v->u.f, &i)) return vp__pk_mix((uint64_t)i);
        { uint64_t b; double f = v->u.f; memcpy(&b, &f, sizeof b); return vp__pk_mix(b ^ 0x5555); }
    case VP_V_STR: return hash_bytes(v->text, v->len, 0xcbf29ce484222325ull) ^ 1;
    case VP_V_BYTES: return hash_bytes(v->text, v->len, 0xcbf29ce484222325ull) ^ 2;
    case VP_V_TUPLE: {
        uint64_t h = 0x345678;
        for (size_t k = 0; k < v->len; k++) h = vp__pk_mix(h ^ vhash(v->items[k])) + k;
        return h;
    }
    case VP_V_OTHER:
        if (v->sub == VP_O_STORAGE) return vp__pk_mix((uint64_t)v->u.i ^ 0x77);
        return hash_bytes(v->text ? v->text : "", v->text ? strlen(v->text) : 0, (uint64_t)v->sub * 31 + 7);
    default: /* objects, tensors, frozensets: by identity */
        return vp__pk_mix((uint64_t)(uintptr_t)v);
    }
}

static bool veq(const vp_value *a, const vp_value *b)
{
    if (a == b) return true;
    int64_t i;
    if (vp__pk_is_intlike(a) && vp__pk_is_intlike(b)) return a->u.i == b->u.i;
    if (vp__pk_is_intlike(a) && b->kind == VP_V_FLOAT) return float_as_int(b->u.f, &i) && i == a->u.i;
    if (a->kind == VP_V_FLOAT && vp__pk_is_intlike(b)) return float_as_int(a->u.f, &i) && i == b->u.i;
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case VP_V_NONE: return true;
    case VP_V_INT: return a->sub == b->sub && a->sub == VP_SUB_BIGINT && !strcmp(a->text, b->text);
    case VP_V_FLOAT: return a->u.f == b->u.f;
    case VP_V_STR: case VP_V_BYTES: return a->len == b->len && !memcmp(a->text, b->text, a->len);
    case VP_V_TUPLE:
        if (a->len != b->len) return false;
        for (size_t k = 0; k < a->len; k++) if (!veq(a->items[k], b->items[k])) return false;
        return true;
    case VP_V_OTHER:
        if (a->sub != b->sub) return false;
        if (a->sub == VP_O_STORAGE) return a->u.i == b->u.i;
        if (a->sub == VP_O_SLICE || a->sub == VP_O_COMPLEX) return false;
        return a->text && b->text && !strcmp(a->text, b->text);
    default: return false;
    }
}

/* Python's hashability for the kinds a pickle can build. Tuples are no
 * deeper than VP_PICKLE_MAX_DEPTH, which bounds the recursion. */
static bool hashable(const vp_value *v)
{
    switch (v->kind) {
    case VP_V_LIST: case VP_V_DICT: return false;
    case VP_V_SET: return v->sub == VP_SUB_FROZEN;
    case VP_V_BYTES: return v->sub != VP_SUB_BYTEARRAY;
    case VP_V_OTHER: return v->sub != VP_O_SLICE;
    case VP_V_TUPLE:
        if (v->aux & AUX_HASHABLE) return true;
        for (size_t k = 0; k < v->len; k++) if (!hashable(v->items[k])) return false;
        ((vp_value *)v)->aux |= AUX_HASHABLE;   /* a tuple of hashables never changes */
        return true;
    default: return true;
    }
}

/* ---- containers ------------------------------------------------------------ */
/* Dicts store key i at items[2i] and value i at items[2i+1] (stride 2);
 * sets and lists store item i at items[i] (stride 1). */
static size_t stride_of(const vp_value *c) { return c->kind == VP_V_DICT ? 2 : 1; }

int vp__pk_reserve(vm *m, vp_value *c, size_t want)
{
    if (want <= c->cap) return VP_OK;
    if (want > VP_PICKLE_MAX_ITEMS)
        return vp__pk_fail(m, VP_ERR_LIMIT, "more than %u items in one container (VP_PICKLE_MAX_ITEMS)", VP_PICKLE_MAX_ITEMS);
    size_t cap = c->cap ? c->cap : 4;
    while (cap < want) cap *= 2;
    if (cap > VP_PICKLE_MAX_ITEMS) cap = VP_PICKLE_MAX_ITEMS;
    size_t st = stride_of(c);
    vp_value **items = vp__pk_alloc(m, cap * st * sizeof *items);
    if (!items) return vp__pk_nomem(m);
    if (c->len) memcpy(items, c->items, c->len * st * sizeof *items);
    c->items = items;
    c->cap = cap;
    return VP_OK;
}

/* Hash index of a dict or set: slots hold position+1, 0 is empty. Small
 * containers go without one (linear search). */
#define INDEX_MIN_ITEMS 8

static void index_put(vp_value *c, size_t pos)
{
    uint32_t mask = c->aux - 1;
    uint64_t h = vhash(c->items[pos * stride_of(c)]);
    for (uint32_t s = (uint32_t)h & mask;; s = (s + 1) & mask)
        if (!c->u.index[s]) { c->u.index[s] = (uint32_t)pos + 1; return; }
}

static int reindex(vm *m, vp_value *c)
{
    size_t slots = 32;
    while (slots < c->len * 4) slots *= 2;
    uint32_t *idx = vp__pk_alloc(m, slots * sizeof *idx);
    if (!idx) return vp__pk_nomem(m);
    c->u.index = idx;
    c->aux = (uint32_t)slots;
    for (size_t k = 0; k < c->len; k++) index_put(c, k);
    return VP_OK;
}

/* Position of key in dict/set c, or -1. */
static long find_key(const vp_value *c, const vp_value *key)
{
    size_t st = stride_of(c);
    uint64_t h = vhash(key);   /* compared first: cheap, as hashes are cached */
    if (!c->u.index) {
        for (size_t k = 0; k < c->len; k++) {
            const vp_value *other = c->items[k * st];
            if (vhash(other) == h && veq(other, key)) return (long)k;
        }
        return -1;
    }
    uint32_t mask = c->aux - 1;
    for (uint32_t s = (uint32_t)h & mask;; s = (s + 1) & mask) {
        uint32_t e = c->u.index[s];
        if (!e) return -1;
        const vp_value *other = c->items[(size_t)(e - 1) * st];
        if (vhash(other) == h && veq(other, key)) return (long)(e - 1);
    }
}

/* dict[key] = val (first insertion fixes the position, as Python's dict),
 * or set.add(key) when val is NULL. */
int vp__pk_map_put(vm *m, vp_value *c, vp_value *key, vp_value *val)
{
    if (!hashable(key)) return vp__pk_fail(m, VP_ERR_FORMAT, "unhashable %s used as a %s key", vp__value_kind_name(key),
                                           c->kind == VP_V_DICT ? "dict" : "set");
    int rc = vp__pk_note_depth(m, c, key);
    if (!rc) rc = vp__pk_note_depth(m, c, val);
    if (rc) return rc;
    size_t st = stride_of(c);
    long pos = find_key(c, key);
    if (pos >= 0) {
        if (val) c->items[(size_t)pos * st + 1] = val;
        return VP_OK;
    }
    if ((rc = vp__pk_reserve(m, c, c->len + 1))) return rc;
    c->items[c->len * st] = key;
    if (val) c->items[c->len * st + 1] = val;
    c->len++;
    if (c->len > INDEX_MIN_ITEMS) {
        if (!c->u.index || c->len * 2 > c->aux) return reindex(m, c);
        index_put(c, c->len - 1);
    }
    return VP_OK;
}

int vp__pk_list_append(vm *m, vp_value *l, vp_value *item)
{
    int rc = vp__pk_note_depth(m, l, item);
    if (!rc) rc = vp__pk_reserve(m, l, l->len + 1);
    if (rc) return rc;
    l->items[l->len++] = item;
    return VP_OK;
}

/* Fill a dict from a list/tuple of (key, value) pairs, or a dict. */
int vp__pk_dict_fill(vm *m, vp_value *d, const vp_value *from)
{
    int rc = VP_OK;
    if (from->kind == VP_V_DICT) {
        for (size_t k = 0; k < from->len && !rc; k++) rc = vp__pk_map_put(m, d, from->items[2 * k], from->items[2 * k + 1]);
        return rc;
    }
    if (from->kind != VP_V_LIST && from->kind != VP_V_TUPLE)
        return vp__pk_fail(m, VP_ERR_FORMAT, "dict built from a %s", vp__value_kind_name(from));
    for (size_t k = 0; k < from->len && !rc; k++) {
        const vp_value *pair = from->items[k];
        if ((pair->kind != VP_V_LIST && pair->kind != VP_V_TUPLE) || pair->len != 2)
            return vp__pk_fail(m, VP_ERR_FORMAT, "dict built from an item that is not a (key, value) pair");
        rc = vp__pk_map_put(m, d, pair->items[0], pair->items[1]);
    }
    return rc;
}

int vp__pk_set_fill(vm *m, vp_value *s, const vp_value *from)
{
    if (from->kind != VP_V_LIST && from->kind != VP_V_TUPLE && from->kind != VP_V_SET)
        return vp__pk_fail(m, VP_ERR_FORMAT, "set built from a %s", vp__value_kind_name(from));
    int rc = VP_OK;
    for (size_t k = 0; k < from->len && !rc; k++) rc = vp__pk_map_put(m, s, from->items[k], NULL);
    return rc;
}

/* ---- text ------------------------------------------------------------------ */
/* UTF-8 as Python's "surrogatepass" accepts it: well-formed sequences up to
 * U+10FFFF, surrogate code points allowed. */
bool vp__pk_utf8_ok(const uint8_t *s, size_t n) { return vp__utf8_check(s, n, true) == n; }

static size_t utf8_put(uint8_t *d, uint32_t cp)
{
    if (cp < 0x80) { d[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { d[0] = (uint8_t)(0xc0 | (cp >> 6)); d[1] = (uint8_t)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xe0 | (cp >> 12)); d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (uint8_t)(0x80 | (cp & 0x3f)); return 3;
    }
    d[0] = (uint8_t)(0xf0 | (cp >> 18)); d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); d[3] = (uint8_t)(0x80 | (cp & 0x3f)); return 4;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int vp__pk_new_str(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    if (!vp__pk_utf8_ok(s, n)) return vp__pk_fail(m, VP_ERR_FORMAT, "string is not valid UTF-8");
    *out = vp__pk_new_text(m, VP_V_STR, s, n);
    return *out ? VP_OK : vp__pk_nomem(m);
}

/* Protocol 0 UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; every other
 * byte is a Latin-1 character). */
int vp__pk_raw_unicode_escape(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    uint8_t *d = vp__malloc(n * 2 + 1);
    if (!d) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] == '\\') {
            size_t run = 0;
            while (i + run < n && s[i + run] == '\\') run++;
            /* an escape only after an odd run of backslashes */
            bool esc = (run & 1) && i + run < n && (s[i + run] == 'u' || s[i + run] == 'U');
            size_t copy = esc ? run - 1 : run;
            memset(d + o, '\\', copy);
            o += copy;
            i += run;
            if (!esc) continue;
            size_t digits = s[i] == 'u' ? 4 : 8;
            i++;
            if (n - i < digits) { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "truncated \\u escape in UNICODE string"); }
            uint32_t cp = 0;
            for (size_t k = 0; k < digits; k++) {
                int h = hexval(s[i + k]);
                if (h < 0) { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "bad \\u escape in UNICODE string"); }
                cp = cp * 16 + (uint32_t)h;
            }
            i += digits;
            if (cp > 0x10ffff) { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "\\U escape beyond U+10FFFF"); }
            o += utf8_put(d + o, cp);
        } else {
            o += utf8_put(d + o, s[i++]);
        }
    }
    *out = vp__pk_new_text(m, VP_V_STR, d, o);
    vp__free(d);
    return *out ? VP_OK : vp__pk_nomem(m);
}

/* Protocol 0 STRING: a quoted Python 2 str literal with backslash escapes
 * (codecs.escape_decode), then decoded as UTF-8 as torch.load does. */
int vp__pk_escaped_string(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
        return vp__pk_fail(m, VP_ERR_FORMAT, "STRING argument is not a quoted string");
    s++; n -= 2;
    uint8_t *d = vp__malloc(n + 1);
    if (!d) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') { d[o++] = s[i++]; continue; }
        if (++i >= n) { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "STRING ends with a backslash"); }
        uint8_t c = s[i++];
        switch (c) {
        case '\n': break;
        case '\\': case '\'': case '"': d[o++] = c; break;
        case 'a': d[o++] = 7; break;
        case 'b': d[o++] = 8; break;
        case 'f': d[o++] = 12; break;
        case 'n': d[o++] = 10; break;
        case 'r': d[o++] = 13; break;
        case 't': d[o++] = 9; break;
        case 'v': d[o++] = 11; break;
        case 'x': {
            int h1 = i < n ? hexval(s[i]) : -1, h2 = i + 1 < n ? hexval(s[i + 1]) : -1;
            if (h1 < 0 || h2 < 0) { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "bad \\x escape in STRING"); }
            d[o++] = (uint8_t)(h1 * 16 + h2);
            i += 2;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                unsigned v = c - '0';
                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (unsigned)(s[i++] - '0');
                d[o++] = (uint8_t)v;
            } else {   /* unknown escapes stay as they are */
                d[o++] = '\\';
                d[o++] = c;
            }
        }
    }
    int rc = vp__pk_new_str(m, d, o, out);
    vp__free(d);
    return rc;
}

/* Latin-1 bytes of a str (every character below U+0100), for
 * _codecs.encode(text, 'latin1') and bytearray(text, 'latin-1'). */
int vp__pk_latin1_bytes(vm *m, const vp_value *s, vp_value **out)
{
    uint8_t *d = vp__malloc(s->len + 1);
    if (!d) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)s->text;
    for (size_t i = 0; i < s->len;) {
        uint8_t c = p[i];
        if (c < 0x80) { d[o++] = c; i++; }
        else if ((c & 0xe0) == 0xc0 && i + 1 < s->len && c <= 0xc3) { d[o++] = (uint8_t)(((c & 0x1f) << 6) | (p[i + 1] & 0x3f)); i += 2; }
        else { vp__free(d); return vp__pk_fail(m, VP_ERR_FORMAT, "latin-1 encoding of a character above U+00FF"); }
    }
    *out = vp__pk_new_text(m, VP_V_BYTES, d, o);
    vp__free(d);
    return *out ? VP_OK : vp__pk_nomem(m);
}

/* ---- integers ---------------------------------------------------------------- */
static int new_bigint(vm *m, bool neg, const char *digits, size_t n, vp_value **out)
{
    while (n > 1 && *digits == '0') { digits++; n--; }
    vp_value *v = vp__pk_new_value(m, VP_V_INT);
    char *t = v ? vp__pk_alloc(m, n + 2) : NULL;
    if (!t) return vp__pk_nomem(m);
    size_t o = 0;
    if (neg) t[o++] = '-';
    memcpy(t + o, digits, n);
    v->text = t;
    v->sub = VP_SUB_BIGINT;
    *out = v;
    return VP_OK;
}

/* Decimal text of a protocol 0 INT/LONG: optional sign and digits, with
 * whitespace around as int() allows. Beyond int64 the digits are kept. */
int vp__pk_int_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    if (n > VP_PICKLE_MAX_LONG_BYTES)
        return vp__pk_fail(m, VP_ERR_LIMIT, "integer of %zu digits (VP_PICKLE_MAX_LONG_BYTES is %d)", n, VP_PICKLE_MAX_LONG_BYTES);
    bool neg = false;
    if (n && (*s == '-' || *s == '+')) { neg = *s == '-'; s++; n--; }
    if (!n) return vp__pk_fail(m, VP_ERR_FORMAT, "integer text without digits");
    uint64_t mag = 0;
    bool big = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return vp__pk_fail(m, VP_ERR_FORMAT, "bad character in integer text");
        if (!big && (mag > (UINT64_MAX - 9) / 10)) big = true;
        if (!big) mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    if (!big && (mag <= (uint64_t)INT64_MAX || (neg && mag == (uint64_t)INT64_MAX + 1))) {
        *out = vp__pk_new_int(m, neg ? (int64_t)(0 - mag) : (int64_t)mag);
        return *out ? VP_OK : vp__pk_nomem(m);
    }
    return new_bigint(m, neg, (const char *)s, n, out);
}

/* LONG1/LONG4: little-endian two's complement. */
int vp__pk_int_from_bytes(vm *m, const uint8_t *b, size_t n, vp_value **out)
{
    if (n > VP_PICKLE_MAX_LONG_BYTES)
        return vp__pk_fail(m, VP_ERR_LIMIT, "integer of %zu bytes (VP_PICKLE_MAX_LONG_BYTES is %d)", n, VP_PICKLE_MAX_LONG_BYTES);
    bool neg = n && (b[n - 1] & 0x80);
    bool fits = true;
    for (size_t i = 8; i < n && fits; i++) if (b[i] != (neg ? 0xff : 0)) fits = false;
    if (n > 8 && fits && !!(b[7] & 0x80) != neg) fits = false;
    if (fits) {
        uint64_t u = neg ? UINT64_MAX : 0;
        for (size_t i = 0; i < n && i < 8; i++) {
            u &= ~((uint64_t)0xff << (8 * i));
            u |= (uint64_t)b[i] << (8 * i);
        }
        *out = vp__pk_new_int(m, (int64_t)u);
        return *out ? VP_OK : vp__pk_nomem(m);
    }
    /* magnitude in 32-bit limbs, then repeated division by 10^9 */
    size_t nl = (n + 3) / 4;
    uint32_t *limb = vp__calloc(nl, sizeof *limb);
    char *dig = vp__malloc(n * 3 + 16);
    if (!limb || !dig) { vp__free(limb); vp__free(dig); return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < n; i++) limb[i / 4] |= (uint32_t)(neg ? (uint8_t)~b[i] : b[i]) << (8 * (i % 4));
    if (neg) {   /* two's complement: invert (done above) and add one */
        for (size_t i = 0; i < nl; i++) if (++limb[i]) break;
    }
    size_t nd = 0, top = nl;
    while (top && !limb[top - 1]) top--;
    while (top) {
        uint64_t rem = 0;
        for (size_t i = top; i-- > 0;) {
            uint64_t cur = (rem << 32) | limb[i];
            limb[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        for (int k = 0; k < 9; k++) { dig[nd++] = (char)('0' + rem % 10); rem /= 10; }
        while (top && !limb[top - 1]) top--;
    }
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    for (size_t i = 0; i < nd / 2; i++) { char t = dig[i]; dig[i] = dig[nd - 1 - i]; dig[nd - 1 - i] = t; }
    int rc = new_bigint(m, neg, dig, nd, out);
    vp__free(limb);
    vp__free(dig);
    return rc;
}

int vp__pk_float_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    char buf[128];
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
    if (n == 0 || n >= sizeof buf) return vp__pk_fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    memcpy(buf, s, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eEinfatyINFATY", buf[i])) return vp__pk_fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    char *e;
    double f = strtod(buf, &e);
    if (*e) return vp__pk_fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    vp_value *v = vp__pk_new_value(m, VP_V_FLOAT);
    if (!v) return vp__pk_nomem(m);
    v->u.f = f;
    *out = v;
    return VP_OK;
}

vp_value *vp__value_new_storage(vp_source *src, long index, vp_dtype dtype, uint64_t numel, const char *key)
{
    vp_value *v = vp__arena_alloc(&src->arena, sizeof *v);
    if (!v) return NULL;
    v->kind = VP_V_OTHER;
    v->sub = VP_O_STORAGE;
    v->aux = dtype;
    v->u.i = index;
    v->len = (size_t)numel;
    v->text = vp__arena_strndup(&src->arena, key, strlen(key));
    return v->text ? v : NULL;
}

bool vp__value_is_str(const vp_value *v, const char *s)
{
    return v && (v->kind == VP_V_STR || v->kind == VP_V_BYTES) && v->len == strlen(s) && !memcmp(v->text, s, v->len);
}

const char *vp__value_kind_name(const vp_value *v)
{
    if (!v) return "nothing";
    switch (v->kind) {
    case VP_V_NONE: return "None";
    case VP_V_BOOL: return "bool";
    case VP_V_INT: return "int";
    case VP_V_FLOAT: return "float";
    case VP_V_STR: return "str";
    case VP_V_BYTES: return v->sub == VP_SUB_BYTEARRAY ? "bytearray" : "bytes";
    case VP_V_TUPLE: return "tuple";
    case VP_V_LIST: return "list";
    case VP_V_DICT: return "dict";
    case VP_V_SET: return v->sub == VP_SUB_FROZEN ? "frozenset" : "set";
    case VP_V_TENSOR: return "tensor";
    case VP_V_OBJECT: return "object";
    case VP_V_OTHER:
        switch (v->sub) {
        case VP_O_GLOBAL: return "global";
        case VP_O_STORAGE: return "storage";
        case VP_O_DTYPE: return "dtype";
        case VP_O_DEVICE: return "device";
        case VP_O_SLICE: return "slice";
        case VP_O_LAYOUT: return "layout";
        case VP_O_COMPLEX: return "complex";
        }
        return "marker";
    }
    return "value";
}
