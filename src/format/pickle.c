/*
 * The safe pickle reader (see pickle.h). Opcode semantics follow CPython's
 * pickle.py / pickletools; the allowlist follows torch.load(weights_only=True)
 * (torch/_weights_only_unpickler.py) with two deliberate differences:
 *  - a global outside the allowlist is not refused when it is named, only
 *    when it would have to be called; instantiating it (NEWOBJ) gives an
 *    inert record, so checkpoints holding e.g. an argparse.Namespace load;
 *  - nesting, stack, memo and container sizes are bounded (config.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format/pickle.h"

/* ---- the machine --------------------------------------------------------- */
typedef struct memo_slot { uint32_t key; uint32_t used; vp_value *v; } memo_slot;

typedef struct vm {
    vp_source *src;
    const char *label;
    const uint8_t *start, *p, *end;
    size_t op_off;                 /* offset of the current opcode */
    uint8_t op;
    vp_value **stack;
    size_t sp, stack_cap;
    size_t *marks;                 /* stack heights at each MARK */
    size_t nmarks, marks_cap;
    memo_slot *memo;               /* keys off the dense run (hash, load <= 1/2) */
    size_t memo_cap, nhash;        /* slots, keys in use */
    size_t memo_count;             /* distinct keys, as len(memo) */
    vp_value **dense;              /* memo keys 0 .. ndense-1, as MEMOIZE and PUT make them */
    size_t ndense, dense_cap;
    vp_persid_fn persid;
    void *ud;
    vp_value *none, *vtrue, *vfalse, *empty_tuple, *empty_str, *empty_bytes;
    vp_value **small_ints;         /* SMALL_INT_MIN .. SMALL_INT_MAX, made when first used */
    /* The memory bound (config.h): what the VM holds (its arena use since it
     * started, the stack, marks and memo) stays within budget. */
    size_t budget, arena0;
    bool over;                     /* an allocation was refused for the budget */
} vm;

/* A tuple of one or two items keeps them in its args and state fields. */
_Static_assert(offsetof(vp_value, state) == offsetof(vp_value, args) + sizeof(vp_value *),
               "vp_value.args and .state must be adjacent");

#define SMALL_INT_MIN (-16)
#define SMALL_INT_MAX 1023
#define SMALL_INT_COUNT ((size_t)(SMALL_INT_MAX - SMALL_INT_MIN + 1))

static const char *op_name(uint8_t op)
{
    switch (op) {
    case '(': return "MARK"; case '.': return "STOP"; case '0': return "POP"; case '1': return "POP_MARK";
    case '2': return "DUP"; case 'F': return "FLOAT"; case 'I': return "INT"; case 'J': return "BININT";
    case 'K': return "BININT1"; case 'L': return "LONG"; case 'M': return "BININT2"; case 'N': return "NONE";
    case 'P': return "PERSID"; case 'Q': return "BINPERSID"; case 'R': return "REDUCE"; case 'S': return "STRING";
    case 'T': return "BINSTRING"; case 'U': return "SHORT_BINSTRING"; case 'V': return "UNICODE";
    case 'X': return "BINUNICODE"; case 'a': return "APPEND"; case 'b': return "BUILD"; case 'c': return "GLOBAL";
    case 'd': return "DICT"; case '}': return "EMPTY_DICT"; case 'e': return "APPENDS"; case 'g': return "GET";
    case 'h': return "BINGET"; case 'i': return "INST"; case 'j': return "LONG_BINGET"; case 'l': return "LIST";
    case ']': return "EMPTY_LIST"; case 'o': return "OBJ"; case 'p': return "PUT"; case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT"; case 's': return "SETITEM"; case 't': return "TUPLE"; case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS"; case 'G': return "BINFLOAT"; case 0x80: return "PROTO"; case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4"; case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2"; case 0x87: return "TUPLE3"; case 0x88: return "NEWTRUE"; case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1"; case 0x8b: return "LONG4"; case 'B': return "BINBYTES"; case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8"; case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET"; case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL"; case 0x94: return "MEMOIZE"; case 0x95: return "FRAME"; case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    }
    return "unknown opcode";
}

/* Every failure names the pickle, the opcode and where it is. */
__attribute__((format(printf, 3, 4)))
static int fail(vm *m, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vp__err(m->src, code, "%s: %s (%s at byte %zu)", m->label, msg, op_name(m->op), m->op_off);
}

static size_t held(const vm *m)
{
    size_t a = m->src->arena.used - m->arena0;
    return a + (m->stack_cap + m->marks_cap + m->dense_cap) * sizeof(void *) + m->memo_cap * sizeof(memo_slot) +
           (m->small_ints ? SMALL_INT_COUNT * sizeof(vp_value *) : 0);
}

/* Whether n more bytes fit the budget; records a refusal. */
static bool fits(vm *m, size_t n)
{
    size_t h = held(m);
    if (h <= m->budget && n <= m->budget - h) return true;
    m->over = true;
    return false;
}

static int over_budget(vm *m)
{
    return fail(m, VP_ERR_LIMIT,
                "its values would take more than %zu bytes (VP_PICKLE_MEM_PER_BYTE = %u bytes per byte of its %zu, "
                "plus VP_PICKLE_MEM_FIXED)", m->budget, VP_PICKLE_MEM_PER_BYTE, (size_t)(m->end - m->start));
}

static int nomem(vm *m)
{
    if (m->over) return over_budget(m);
    return fail(m, VP_ERR_LIMIT, "pickle values exceed the memory limit of %zu bytes", m->src->arena.cap);
}

/* Arena memory for the VM, within the budget. */
static void *palloc(vm *m, size_t n)
{
    if (!fits(m, (n + 15) & ~(size_t)15)) return NULL;
    return vp__arena_alloc(&m->src->arena, n);
}

static char *pstrndup(vm *m, const char *s, size_t n)
{
    if (n == SIZE_MAX || !fits(m, (n + 16) & ~(size_t)15)) return NULL;
    return vp__arena_strndup(&m->src->arena, s, n);
}

/* ---- values ---------------------------------------------------------------- */
static vp_value *new_value(vm *m, vp_kind kind)
{
    vp_value *v = palloc(m, sizeof *v);
    if (v) v->kind = (uint8_t)kind;
    return v;
}

/* Ints are immutable: small ones are made once and shared (BININT1 is
 * two bytes; a 64-byte value each was the pickle's costliest opcode). */
static vp_value *new_int(vm *m, int64_t i)
{
    if (i >= SMALL_INT_MIN && i <= SMALL_INT_MAX) {
        if (!m->small_ints) {
            if (!fits(m, SMALL_INT_COUNT * sizeof *m->small_ints)) return NULL;
            m->small_ints = vp__calloc(SMALL_INT_COUNT, sizeof *m->small_ints);
            if (!m->small_ints) return NULL;
        }
        vp_value **slot = &m->small_ints[i - SMALL_INT_MIN];
        if (!*slot && (*slot = new_value(m, VP_V_INT))) (*slot)->u.i = i;
        return *slot;
    }
    vp_value *v = new_value(m, VP_V_INT);
    if (v) v->u.i = i;
    return v;
}

/* STR or BYTES holding a copy of s[0..n). */
static vp_value *new_text(vm *m, vp_kind kind, const void *s, size_t n)
{
    if (kind == VP_V_STR && n == 0 && m->empty_str) return m->empty_str;   /* immutable: shared */
    vp_value *v = new_value(m, kind);
    if (!v) return NULL;
    v->text = pstrndup(m, (const char *)s, n);
    if (!v->text) return NULL;
    v->len = n;
    return v;
}

static vp_value *new_other(vm *m, int sub, const char *text)
{
    vp_value *v = new_value(m, VP_V_OTHER);
    if (!v) return NULL;
    v->sub = (uint8_t)sub;
    v->text = pstrndup(m, text, strlen(text));
    return v->text ? v : NULL;
}

/* Raise c's depth to hold item; refuse nesting beyond the limit. */
static int note_depth(vm *m, vp_value *c, const vp_value *item)
{
    if (!item) return VP_OK;
    unsigned d = (unsigned)item->depth + 1;
    if (d > c->depth) {
        if (d > VP_PICKLE_MAX_DEPTH)
            return fail(m, VP_ERR_LIMIT, "containers nest deeper than %d levels (VP_PICKLE_MAX_DEPTH)", VP_PICKLE_MAX_DEPTH);
        c->depth = (uint16_t)d;
    }
    return VP_OK;
}

/* A tuple (or list/set) made of items[0..n). */
static int new_seq(vm *m, vp_kind kind, vp_value **items, size_t n, vp_value **out)
{
    if (n > VP_PICKLE_MAX_ITEMS)
        return fail(m, VP_ERR_LIMIT, "%zu items in one container (VP_PICKLE_MAX_ITEMS is %u)", n, VP_PICKLE_MAX_ITEMS);
    if (kind == VP_V_TUPLE && n == 0) { *out = m->empty_tuple; return VP_OK; }
    vp_value *v = new_value(m, kind);
    if (!v) return nomem(m);
    v->depth = 1;
    if (n) {
        /* a tuple of one or two keeps them in its args and state fields,
         * which tuples do not use (BUILD refuses a tuple) */
        if (kind == VP_V_TUPLE && n <= 2) v->items = &v->args;
        else v->items = palloc(m, n * sizeof *v->items);
        if (!v->items) return nomem(m);
        memcpy(v->items, items, n * sizeof *items);
        for (size_t i = 0; i < n; i++) {
            int rc = note_depth(m, v, items[i]);
            if (rc) return rc;
        }
    }
    v->len = v->cap = n;
    *out = v;
    return VP_OK;
}

static vp_value *new_container(vm *m, vp_kind kind)
{
    vp_value *v = new_value(m, kind);
    if (v) v->depth = 1;
    return v;
}

/* ---- hashing and equality (Python semantics for the hashable kinds) ------- */
static bool is_intlike(const vp_value *v)
{
    return (v->kind == VP_V_INT && v->sub != VP_SUB_BIGINT) || v->kind == VP_V_BOOL;
}

static uint64_t hash_bytes(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 0x100000001b3ull; }
    return h;
}

static uint64_t mix(uint64_t x)
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
        return mix((uint64_t)v->u.i);
    case VP_V_FLOAT:
        if (float_as_int(v->u.f, &i)) return mix((uint64_t)i);
        { uint64_t b; double f = v->u.f; memcpy(&b, &f, sizeof b); return mix(b ^ 0x5555); }
    case VP_V_STR: return hash_bytes(v->text, v->len, 0xcbf29ce484222325ull) ^ 1;
    case VP_V_BYTES: return hash_bytes(v->text, v->len, 0xcbf29ce484222325ull) ^ 2;
    case VP_V_TUPLE: {
        uint64_t h = 0x345678;
        for (size_t k = 0; k < v->len; k++) h = mix(h ^ vhash(v->items[k])) + k;
        return h;
    }
    case VP_V_OTHER:
        if (v->sub == VP_O_STORAGE) return mix((uint64_t)v->u.i ^ 0x77);
        return hash_bytes(v->text ? v->text : "", v->text ? strlen(v->text) : 0, (uint64_t)v->sub * 31 + 7);
    default: /* objects, tensors, frozensets: by identity */
        return mix((uint64_t)(uintptr_t)v);
    }
}

static bool veq(const vp_value *a, const vp_value *b)
{
    if (a == b) return true;
    int64_t i;
    if (is_intlike(a) && is_intlike(b)) return a->u.i == b->u.i;
    if (is_intlike(a) && b->kind == VP_V_FLOAT) return float_as_int(b->u.f, &i) && i == a->u.i;
    if (a->kind == VP_V_FLOAT && is_intlike(b)) return float_as_int(a->u.f, &i) && i == b->u.i;
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

static int reserve(vm *m, vp_value *c, size_t want)
{
    if (want <= c->cap) return VP_OK;
    if (want > VP_PICKLE_MAX_ITEMS)
        return fail(m, VP_ERR_LIMIT, "more than %u items in one container (VP_PICKLE_MAX_ITEMS)", VP_PICKLE_MAX_ITEMS);
    size_t cap = c->cap ? c->cap : 4;
    while (cap < want) cap *= 2;
    if (cap > VP_PICKLE_MAX_ITEMS) cap = VP_PICKLE_MAX_ITEMS;
    size_t st = stride_of(c);
    vp_value **items = palloc(m, cap * st * sizeof *items);
    if (!items) return nomem(m);
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
    uint32_t *idx = palloc(m, slots * sizeof *idx);
    if (!idx) return nomem(m);
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
static int map_put(vm *m, vp_value *c, vp_value *key, vp_value *val)
{
    if (!hashable(key)) return fail(m, VP_ERR_FORMAT, "unhashable %s used as a %s key", vp__value_kind_name(key),
                                    c->kind == VP_V_DICT ? "dict" : "set");
    int rc = note_depth(m, c, key);
    if (!rc) rc = note_depth(m, c, val);
    if (rc) return rc;
    size_t st = stride_of(c);
    long pos = find_key(c, key);
    if (pos >= 0) {
        if (val) c->items[(size_t)pos * st + 1] = val;
        return VP_OK;
    }
    if ((rc = reserve(m, c, c->len + 1))) return rc;
    c->items[c->len * st] = key;
    if (val) c->items[c->len * st + 1] = val;
    c->len++;
    if (c->len > INDEX_MIN_ITEMS) {
        if (!c->u.index || c->len * 2 > c->aux) return reindex(m, c);
        index_put(c, c->len - 1);
    }
    return VP_OK;
}

static int list_append(vm *m, vp_value *l, vp_value *item)
{
    int rc = note_depth(m, l, item);
    if (!rc) rc = reserve(m, l, l->len + 1);
    if (rc) return rc;
    l->items[l->len++] = item;
    return VP_OK;
}

/* Fill a dict from a list/tuple of (key, value) pairs, or a dict. */
static int dict_fill(vm *m, vp_value *d, const vp_value *from)
{
    int rc = VP_OK;
    if (from->kind == VP_V_DICT) {
        for (size_t k = 0; k < from->len && !rc; k++) rc = map_put(m, d, from->items[2 * k], from->items[2 * k + 1]);
        return rc;
    }
    if (from->kind != VP_V_LIST && from->kind != VP_V_TUPLE)
        return fail(m, VP_ERR_FORMAT, "dict built from a %s", vp__value_kind_name(from));
    for (size_t k = 0; k < from->len && !rc; k++) {
        const vp_value *pair = from->items[k];
        if ((pair->kind != VP_V_LIST && pair->kind != VP_V_TUPLE) || pair->len != 2)
            return fail(m, VP_ERR_FORMAT, "dict built from an item that is not a (key, value) pair");
        rc = map_put(m, d, pair->items[0], pair->items[1]);
    }
    return rc;
}

static int set_fill(vm *m, vp_value *s, const vp_value *from)
{
    if (from->kind != VP_V_LIST && from->kind != VP_V_TUPLE && from->kind != VP_V_SET)
        return fail(m, VP_ERR_FORMAT, "set built from a %s", vp__value_kind_name(from));
    int rc = VP_OK;
    for (size_t k = 0; k < from->len && !rc; k++) rc = map_put(m, s, from->items[k], NULL);
    return rc;
}

/* ---- text ------------------------------------------------------------------ */
/* UTF-8 as Python's "surrogatepass" accepts it: well-formed sequences up to
 * U+10FFFF, surrogate code points allowed. */
static bool utf8_ok(const uint8_t *s, size_t n) { return vp__utf8_check(s, n, true) == n; }

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

static int new_str_checked(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    if (!utf8_ok(s, n)) return fail(m, VP_ERR_FORMAT, "string is not valid UTF-8");
    *out = new_text(m, VP_V_STR, s, n);
    return *out ? VP_OK : nomem(m);
}

/* Protocol 0 UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; every other
 * byte is a Latin-1 character). */
static int raw_unicode_escape(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    uint8_t *d = vp__malloc(n * 2 + 1);
    if (!d) return fail(m, VP_ERR_NOMEM, "out of memory");
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
            if (n - i < digits) { vp__free(d); return fail(m, VP_ERR_FORMAT, "truncated \\u escape in UNICODE string"); }
            uint32_t cp = 0;
            for (size_t k = 0; k < digits; k++) {
                int h = hexval(s[i + k]);
                if (h < 0) { vp__free(d); return fail(m, VP_ERR_FORMAT, "bad \\u escape in UNICODE string"); }
                cp = cp * 16 + (uint32_t)h;
            }
            i += digits;
            if (cp > 0x10ffff) { vp__free(d); return fail(m, VP_ERR_FORMAT, "\\U escape beyond U+10FFFF"); }
            o += utf8_put(d + o, cp);
        } else {
            o += utf8_put(d + o, s[i++]);
        }
    }
    *out = new_text(m, VP_V_STR, d, o);
    vp__free(d);
    return *out ? VP_OK : nomem(m);
}

/* Protocol 0 STRING: a quoted Python 2 str literal with backslash escapes
 * (codecs.escape_decode), then decoded as UTF-8 as torch.load does. */
static int escaped_string(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
        return fail(m, VP_ERR_FORMAT, "STRING argument is not a quoted string");
    s++; n -= 2;
    uint8_t *d = vp__malloc(n + 1);
    if (!d) return fail(m, VP_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') { d[o++] = s[i++]; continue; }
        if (++i >= n) { vp__free(d); return fail(m, VP_ERR_FORMAT, "STRING ends with a backslash"); }
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
            if (h1 < 0 || h2 < 0) { vp__free(d); return fail(m, VP_ERR_FORMAT, "bad \\x escape in STRING"); }
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
    int rc = new_str_checked(m, d, o, out);
    vp__free(d);
    return rc;
}

/* Latin-1 bytes of a str (every character below U+0100), for
 * _codecs.encode(text, 'latin1') and bytearray(text, 'latin-1'). */
static int latin1_bytes(vm *m, const vp_value *s, vp_value **out)
{
    uint8_t *d = vp__malloc(s->len + 1);
    if (!d) return fail(m, VP_ERR_NOMEM, "out of memory");
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)s->text;
    for (size_t i = 0; i < s->len;) {
        uint8_t c = p[i];
        if (c < 0x80) { d[o++] = c; i++; }
        else if ((c & 0xe0) == 0xc0 && i + 1 < s->len && c <= 0xc3) { d[o++] = (uint8_t)(((c & 0x1f) << 6) | (p[i + 1] & 0x3f)); i += 2; }
        else { vp__free(d); return fail(m, VP_ERR_FORMAT, "latin-1 encoding of a character above U+00FF"); }
    }
    *out = new_text(m, VP_V_BYTES, d, o);
    vp__free(d);
    return *out ? VP_OK : nomem(m);
}

/* ---- integers ---------------------------------------------------------------- */
static int new_bigint(vm *m, bool neg, const char *digits, size_t n, vp_value **out)
{
    while (n > 1 && *digits == '0') { digits++; n--; }
    vp_value *v = new_value(m, VP_V_INT);
    char *t = v ? palloc(m, n + 2) : NULL;
    if (!t) return nomem(m);
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
static int int_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    if (n > VP_PICKLE_MAX_LONG_BYTES)
        return fail(m, VP_ERR_LIMIT, "integer of %zu digits (VP_PICKLE_MAX_LONG_BYTES is %d)", n, VP_PICKLE_MAX_LONG_BYTES);
    bool neg = false;
    if (n && (*s == '-' || *s == '+')) { neg = *s == '-'; s++; n--; }
    if (!n) return fail(m, VP_ERR_FORMAT, "integer text without digits");
    uint64_t mag = 0;
    bool big = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return fail(m, VP_ERR_FORMAT, "bad character in integer text");
        if (!big && (mag > (UINT64_MAX - 9) / 10)) big = true;
        if (!big) mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    if (!big && (mag <= (uint64_t)INT64_MAX || (neg && mag == (uint64_t)INT64_MAX + 1))) {
        *out = new_int(m, neg ? (int64_t)(0 - mag) : (int64_t)mag);
        return *out ? VP_OK : nomem(m);
    }
    return new_bigint(m, neg, (const char *)s, n, out);
}

/* LONG1/LONG4: little-endian two's complement. */
static int int_from_bytes(vm *m, const uint8_t *b, size_t n, vp_value **out)
{
    if (n > VP_PICKLE_MAX_LONG_BYTES)
        return fail(m, VP_ERR_LIMIT, "integer of %zu bytes (VP_PICKLE_MAX_LONG_BYTES is %d)", n, VP_PICKLE_MAX_LONG_BYTES);
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
        *out = new_int(m, (int64_t)u);
        return *out ? VP_OK : nomem(m);
    }
    /* magnitude in 32-bit limbs, then repeated division by 10^9 */
    size_t nl = (n + 3) / 4;
    uint32_t *limb = vp__calloc(nl, sizeof *limb);
    char *dig = vp__malloc(n * 3 + 16);
    if (!limb || !dig) { vp__free(limb); vp__free(dig); return fail(m, VP_ERR_NOMEM, "out of memory"); }
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

static int float_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out)
{
    char buf[128];
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r')) n--;
    if (n == 0 || n >= sizeof buf) return fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    memcpy(buf, s, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eEinfatyINFATY", buf[i])) return fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    char *e;
    double f = strtod(buf, &e);
    if (*e) return fail(m, VP_ERR_FORMAT, "bad FLOAT text");
    vp_value *v = new_value(m, VP_V_FLOAT);
    if (!v) return nomem(m);
    v->u.f = f;
    *out = v;
    return VP_OK;
}

/* ---- the allowlist ------------------------------------------------------------ */
enum gid {
    G_UNKNOWN = 0,
    G_REBUILD_TENSOR, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR_V3,
    G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE, G_REBUILD_FROM_TYPE_V2,
    G_TORCH_UNSUPPORTED,    /* torch rebuild functions for tensors vitport cannot hold */
    G_PARAMETER, G_TENSOR_TYPE, G_SIZE, G_DEVICE, G_GET_LAYOUT,
    G_ORDERED_DICT, G_SET, G_FROZENSET, G_BYTEARRAY, G_BYTES, G_SLICE, G_COMPLEX, G_CODECS_ENCODE,
    G_STORAGE_TYPE,         /* u.i holds the dtype */
    G_RECONSTRUCTOR,        /* copyreg._reconstructor: instantiates, kept inert */
    G_NEWOBJ_FN,            /* copyreg.__newobj__ / __newobj_ex__: likewise */
    G_INERT_CALL            /* numpy scalars, dtypes, arrays: kept inert */
};

static const struct { const char *name; int gid; } k_globals[] = {
    {"torch._utils._rebuild_tensor", G_REBUILD_TENSOR},
    {"torch._utils._rebuild_tensor_v2", G_REBUILD_TENSOR_V2},
    {"torch._utils._rebuild_tensor_v3", G_REBUILD_TENSOR_V3},
    {"torch._utils._rebuild_parameter", G_REBUILD_PARAMETER},
    {"torch._utils._rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE},
    {"torch._tensor._rebuild_from_type_v2", G_REBUILD_FROM_TYPE_V2},
    {"torch.nn.parameter.Parameter", G_PARAMETER},
    {"torch.nn.Parameter", G_PARAMETER},
    {"torch.Tensor", G_TENSOR_TYPE},
    {"torch._tensor.Tensor", G_TENSOR_TYPE},
    {"torch.Size", G_SIZE},
    {"torch.device", G_DEVICE},
    {"torch.serialization._get_layout", G_GET_LAYOUT},
    {"collections.OrderedDict", G_ORDERED_DICT},
    {"collections.Counter", G_ORDERED_DICT},
    {"builtins.set", G_SET},
    {"builtins.frozenset", G_FROZENSET},
    {"builtins.bytearray", G_BYTEARRAY},
    {"builtins.bytes", G_BYTES},
    {"builtins.slice", G_SLICE},
    {"builtins.complex", G_COMPLEX},
    {"_codecs.encode", G_CODECS_ENCODE},
    {"copyreg._reconstructor", G_RECONSTRUCTOR},
    {"copyreg.__newobj__", G_NEWOBJ_FN},
    {"copyreg.__newobj_ex__", G_NEWOBJ_FN},
    {"numpy.core.multiarray.scalar", G_INERT_CALL},
    {"numpy._core.multiarray.scalar", G_INERT_CALL},
    {"numpy.core.multiarray._reconstruct", G_INERT_CALL},
    {"numpy._core.multiarray._reconstruct", G_INERT_CALL},
    {"numpy.dtype", G_INERT_CALL},
};

static const struct { const char *name; vp_dtype dt; } k_storages[] = {
    {"FloatStorage", VP_F32}, {"HalfStorage", VP_F16}, {"BFloat16Storage", VP_BF16},
    {"DoubleStorage", VP_F64}, {"LongStorage", VP_I64}, {"IntStorage", VP_I32},
    {"ShortStorage", VP_I16}, {"CharStorage", VP_I8}, {"ByteStorage", VP_U8},
    {"BoolStorage", VP_BOOL}, {"UntypedStorage", VP_U8},
    /* known, but element types vitport does not hold */
    {"ComplexFloatStorage", VP_DTYPE_COUNT}, {"ComplexDoubleStorage", VP_DTYPE_COUNT},
    {"QInt8Storage", VP_DTYPE_COUNT}, {"QUInt8Storage", VP_DTYPE_COUNT}, {"QInt32Storage", VP_DTYPE_COUNT},
    {"QUInt4x2Storage", VP_DTYPE_COUNT}, {"QUInt2x4Storage", VP_DTYPE_COUNT},
};

static const struct { const char *name; vp_dtype dt; } k_dtypes[] = {
    {"float32", VP_F32}, {"float", VP_F32}, {"float64", VP_F64}, {"double", VP_F64},
    {"float16", VP_F16}, {"half", VP_F16}, {"bfloat16", VP_BF16},
    {"int64", VP_I64}, {"long", VP_I64}, {"int32", VP_I32}, {"int", VP_I32},
    {"int16", VP_I16}, {"short", VP_I16}, {"int8", VP_I8}, {"uint8", VP_U8}, {"bool", VP_BOOL},
    {"complex32", VP_DTYPE_COUNT}, {"chalf", VP_DTYPE_COUNT}, {"complex64", VP_DTYPE_COUNT},
    {"cfloat", VP_DTYPE_COUNT}, {"complex128", VP_DTYPE_COUNT}, {"cdouble", VP_DTYPE_COUNT},
    {"uint16", VP_DTYPE_COUNT}, {"uint32", VP_DTYPE_COUNT}, {"uint64", VP_DTYPE_COUNT},
    {"qint8", VP_DTYPE_COUNT}, {"quint8", VP_DTYPE_COUNT}, {"qint32", VP_DTYPE_COUNT},
    {"quint4x2", VP_DTYPE_COUNT}, {"quint2x4", VP_DTYPE_COUNT},
    {"float8_e4m3fn", VP_DTYPE_COUNT}, {"float8_e5m2", VP_DTYPE_COUNT},
    {"float8_e4m3fnuz", VP_DTYPE_COUNT}, {"float8_e5m2fnuz", VP_DTYPE_COUNT},
    {"float8_e8m0fnu", VP_DTYPE_COUNT}, {"float4_e2m1fn_x2", VP_DTYPE_COUNT},
    {"bits8", VP_DTYPE_COUNT}, {"bits16", VP_DTYPE_COUNT}, {"bits1x8", VP_DTYPE_COUNT},
    {"bits2x4", VP_DTYPE_COUNT}, {"bits4x2", VP_DTYPE_COUNT},
    /* quantization schemes: plain markers too */
    {"per_tensor_affine", VP_DTYPE_COUNT}, {"per_tensor_symmetric", VP_DTYPE_COUNT},
    {"per_channel_affine", VP_DTYPE_COUNT}, {"per_channel_symmetric", VP_DTYPE_COUNT},
    {"per_channel_affine_float_qparams", VP_DTYPE_COUNT},
};

/* The value a GLOBAL pushes: a dtype marker for torch.float32 and friends,
 * otherwise a global marker carrying its allowlist id (G_UNKNOWN if none). */
static int make_global(vm *m, const char *module, size_t mlen, const char *name, size_t nlen, vp_value **out)
{
    /* Python 2 module names, as pickle's fix_imports maps them */
    if (mlen == 11 && !memcmp(module, "__builtin__", 11)) { module = "builtins"; mlen = 8; }
    else if (mlen == 8 && !memcmp(module, "copy_reg", 8)) { module = "copyreg"; mlen = 7; }
    if (!mlen || !nlen) return fail(m, VP_ERR_FORMAT, "global with an empty module or name");
    if (mlen + nlen > 1024) return fail(m, VP_ERR_LIMIT, "global name longer than 1024 bytes");
    if (!utf8_ok((const uint8_t *)module, mlen) || !utf8_ok((const uint8_t *)name, nlen))
        return fail(m, VP_ERR_FORMAT, "global name is not valid UTF-8");
    char full[1100];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    for (size_t i = 0; full[i]; i++)
        if ((unsigned char)full[i] < 0x20) return fail(m, VP_ERR_FORMAT, "global name holds a control character");

    bool torch_mod = mlen == 5 && !memcmp(module, "torch", 5);
    if (torch_mod) {
        for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) {
            if (strlen(k_dtypes[i].name) == nlen && !memcmp(k_dtypes[i].name, name, nlen)) {
                vp_value *v = new_other(m, VP_O_DTYPE, full);
                if (!v) return nomem(m);
                v->aux = k_dtypes[i].dt;
                *out = v;
                return VP_OK;
            }
        }
    }
    vp_value *v = new_other(m, VP_O_GLOBAL, full);
    if (!v) return nomem(m);
    v->aux = G_UNKNOWN;
    for (size_t i = 0; i < sizeof k_globals / sizeof *k_globals; i++)
        if (!strcmp(k_globals[i].name, full)) { v->aux = (uint32_t)k_globals[i].gid; break; }
    /* Storage types: torch.XStorage, torch.cuda.XStorage (old CUDA
     * checkpoints; the bytes are the same), torch.storage.UntypedStorage. */
    if (v->aux == G_UNKNOWN && (torch_mod || !strcmp(module, "torch.cuda") || !strcmp(module, "torch.storage"))) {
        for (size_t i = 0; i < sizeof k_storages / sizeof *k_storages; i++) {
            if (!strcmp(k_storages[i].name, v->text + mlen + 1)) {
                v->aux = G_STORAGE_TYPE;
                v->u.i = k_storages[i].dt;
                break;
            }
        }
    }
    if (v->aux == G_UNKNOWN && !strncmp(full, "torch._utils._rebuild_", 22)) v->aux = G_TORCH_UNSUPPORTED;
    *out = v;
    return VP_OK;
}

static int gid_of(const vp_value *v)
{
    return v->kind == VP_V_OTHER && v->sub == VP_O_GLOBAL ? (int)v->aux : -1;
}

/* ---- calling allowlisted globals ------------------------------------------------ */
static bool as_int(const vp_value *v, int64_t *i)
{
    if (!is_intlike(v)) return false;
    *i = v->u.i;
    return true;
}

static bool truthy(const vp_value *v)
{
    switch (v->kind) {
    case VP_V_NONE: return false;
    case VP_V_BOOL: case VP_V_INT: return v->sub == VP_SUB_BIGINT || v->u.i != 0;
    case VP_V_FLOAT: return v->u.f != 0;
    case VP_V_STR: case VP_V_BYTES: case VP_V_TUPLE: case VP_V_LIST: case VP_V_DICT: case VP_V_SET: return v->len != 0;
    default: return true;
    }
}

static int int_tuple(vm *m, const vp_value *v, const char *what, int64_t *dst, int *ndim)
{
    if (v->kind != VP_V_TUPLE && v->kind != VP_V_LIST)
        return fail(m, VP_ERR_FORMAT, "tensor %s is a %s, not a tuple", what, vp__value_kind_name(v));
    if (v->len > VP_MAX_DIMS)
        return fail(m, VP_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", v->len, VP_MAX_DIMS);
    for (size_t i = 0; i < v->len; i++)
        if (!as_int(v->items[i], &dst[i])) return fail(m, VP_ERR_FORMAT, "tensor %s holds a %s", what, vp__value_kind_name(v->items[i]));
    *ndim = (int)v->len;
    return VP_OK;
}

static int new_tensor_value(vm *m, const vp_value *st, vp_dtype dt, int64_t off,
                            const vp_value *size, const vp_value *stride, vp_value **out)
{
    if (st->kind != VP_V_OTHER || st->sub != VP_O_STORAGE)
        return fail(m, VP_ERR_FORMAT, "tensor rebuilt from a %s, not a storage", vp__value_kind_name(st));
    vp_tensor_rec *t = palloc(m, sizeof *t);
    vp_value *v = t ? new_value(m, VP_V_TENSOR) : NULL;
    if (!v) return nomem(m);
    int nd2 = 0, rc;
    if ((rc = int_tuple(m, size, "size", t->shape, &t->ndim))) return rc;
    if ((rc = int_tuple(m, stride, "stride", t->strides, &nd2))) return rc;
    if (nd2 != t->ndim) return fail(m, VP_ERR_FORMAT, "tensor size has %d dimensions but stride %d", t->ndim, nd2);
    if ((unsigned)dt >= VP_DTYPE_COUNT) return fail(m, VP_ERR_UNSUPPORTED, "tensor of an element type vitport does not support (complex or quantized)");
    t->storage = (vp_value *)st;
    t->dtype = dt;
    t->offset = off;
    t->index = -1;
    v->u.t = t;
    v->depth = 1;
    *out = v;
    return VP_OK;
}

/* torch._utils._rebuild_tensor{,_v2,_v3} */
static int rebuild_tensor(vm *m, int gid, const vp_value *a, vp_value **out)
{
    size_t want = gid == G_REBUILD_TENSOR ? 4 : gid == G_REBUILD_TENSOR_V2 ? 6 : 7;
    if (a->len < want || a->len > want + 1)
        return fail(m, VP_ERR_FORMAT, "tensor rebuild with %zu arguments", a->len);
    int64_t off;
    if (!as_int(a->items[1], &off)) return fail(m, VP_ERR_FORMAT, "tensor storage offset is a %s", vp__value_kind_name(a->items[1]));
    const vp_value *st = a->items[0];
    vp_dtype dt = st->kind == VP_V_OTHER && st->sub == VP_O_STORAGE ? (vp_dtype)st->aux : VP_F32;
    if (gid == G_REBUILD_TENSOR_V3) {
        const vp_value *d = a->items[6];
        if (d->kind != VP_V_OTHER || d->sub != VP_O_DTYPE) return fail(m, VP_ERR_FORMAT, "tensor dtype is a %s", vp__value_kind_name(d));
        dt = (vp_dtype)d->aux;
    }
    int rc = new_tensor_value(m, st, dt, off, a->items[2], a->items[3], out);
    if (rc) return rc;
    if (gid != G_REBUILD_TENSOR) {
        (*out)->u.t->requires_grad = truthy(a->items[4]);
        /* metadata: the conj/neg bits, which only complex tensors use */
        const vp_value *md = a->len > want ? a->items[want] : NULL;
        if (md && md->kind == VP_V_DICT)
            for (size_t i = 0; i < md->len; i++)
                if (truthy(md->items[2 * i + 1])) return fail(m, VP_ERR_UNSUPPORTED, "tensor with the conj/neg bit set");
    }
    return VP_OK;
}

static int set_state(vm *m, vp_value *target, vp_value *state)
{
    int rc = note_depth(m, target, state);
    if (!rc) target->state = state;
    return rc;
}

/* torch.nn.Parameter(data, requires_grad) and _rebuild_parameter*: the
 * tensor itself (vitport does not tell parameters from tensors). */
static int parameter(vm *m, const vp_value *a, vp_value **out)
{
    if (a->len < 1 || a->items[0]->kind != VP_V_TENSOR)
        return fail(m, VP_ERR_FORMAT, "Parameter made from a %s, not a tensor", a->len ? vp__value_kind_name(a->items[0]) : "nothing");
    vp_value *t = a->items[0];
    t->u.t->requires_grad = a->len > 1 ? truthy(a->items[1]) : true;
    *out = t;
    return VP_OK;
}

static int bytes_from_args(vm *m, const vp_value *a, bool bytearray, vp_value **out)
{
    int rc = VP_OK;
    if (a->len == 0) {
        *out = new_text(m, VP_V_BYTES, "", 0);
        if (!*out) return nomem(m);
    } else if (a->len == 1 && a->items[0]->kind == VP_V_BYTES) {
        *out = new_text(m, VP_V_BYTES, a->items[0]->text, a->items[0]->len);
        if (!*out) return nomem(m);
    } else if (a->len == 2 && a->items[0]->kind == VP_V_STR && a->items[1]->kind == VP_V_STR) {
        const char *enc = a->items[1]->text;
        if (strcasecmp(enc, "latin1") && strcasecmp(enc, "latin-1") && strcasecmp(enc, "iso-8859-1"))
            return fail(m, VP_ERR_UNSUPPORTED, "bytes encoded as '%.40s' (only latin-1 is supported)", enc);
        rc = latin1_bytes(m, a->items[0], out);
    } else {
        return fail(m, VP_ERR_FORMAT, "%s made from unexpected arguments", bytearray ? "bytearray" : "bytes");
    }
    if (!rc && bytearray) (*out)->sub = VP_SUB_BYTEARRAY;
    return rc;
}

static int device(vm *m, const vp_value *a, vp_value **out)
{
    char buf[96];
    if (a->len < 1 || a->len > 2 || a->items[0]->kind != VP_V_STR || a->items[0]->len > 64)
        return fail(m, VP_ERR_FORMAT, "torch.device made from unexpected arguments");
    int64_t idx;
    if (a->len == 2 && a->items[1]->kind != VP_V_NONE) {
        if (!as_int(a->items[1], &idx)) return fail(m, VP_ERR_FORMAT, "torch.device index is not an integer");
        snprintf(buf, sizeof buf, "%s:%lld", a->items[0]->text, (long long)idx);
    } else {
        snprintf(buf, sizeof buf, "%s", a->items[0]->text);
    }
    *out = new_other(m, VP_O_DEVICE, buf);
    return *out ? VP_OK : nomem(m);
}

/* An inert record: class name, the arguments it was made with; BUILD adds state. */
static int inert(vm *m, const char *cls, vp_value *args, vp_value **out)
{
    vp_value *v = new_value(m, VP_V_OBJECT);
    if (!v) return nomem(m);
    v->text = cls;
    v->depth = 1;
    int rc = note_depth(m, v, args);
    if (rc) return rc;
    v->args = args;
    *out = v;
    return VP_OK;
}

static int tail_tuple(vm *m, const vp_value *a, size_t from, vp_value **out)
{
    return new_seq(m, VP_V_TUPLE, a->items + from, a->len - from, out);
}

static int call_global(vm *m, vp_value *fn, vp_value *args, vp_value **out);

/* torch._tensor._rebuild_from_type_v2(func, new_type, args, state) */
static int rebuild_from_type(vm *m, const vp_value *a, vp_value **out)
{
    if (a->len != 4) return fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 with %zu arguments", a->len);
    int t = gid_of(a->items[1]);
    if (t != G_TENSOR_TYPE && t != G_PARAMETER)
        return fail(m, VP_ERR_REFUSED, "refused tensor subclass '%s' (not on the allowlist)",
                    a->items[1]->text ? a->items[1]->text : vp__value_kind_name(a->items[1]));
    if (a->items[2]->kind != VP_V_TUPLE) return fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 arguments are not a tuple");
    int rc = call_global(m, a->items[0], a->items[2], out);
    if (rc) return rc;
    if ((*out)->kind != VP_V_TENSOR) return fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 did not rebuild a tensor");
    return truthy(a->items[3]) ? set_state(m, *out, a->items[3]) : VP_OK;
}

/* What REDUCE, INST and OBJ do: call fn(*args). Only allowlisted globals
 * are "called" (each by a small C function); instantiating helpers give
 * inert records; anything else is refused. */
static int call_global(vm *m, vp_value *fn, vp_value *args, vp_value **out)
{
    if (args->kind != VP_V_TUPLE) return fail(m, VP_ERR_FORMAT, "call arguments are a %s, not a tuple", vp__value_kind_name(args));
    int gid = gid_of(fn);
    if (gid < 0) return fail(m, VP_ERR_FORMAT, "call of a %s, which is not a global", vp__value_kind_name(fn));
    const vp_value *a0 = args->len ? args->items[0] : NULL;
    vp_value *v = NULL;
    int rc;
    switch (gid) {
    case G_REBUILD_TENSOR: case G_REBUILD_TENSOR_V2: case G_REBUILD_TENSOR_V3:
        return rebuild_tensor(m, gid, args, out);
    case G_REBUILD_PARAMETER:
        if (args->len != 3) return fail(m, VP_ERR_FORMAT, "_rebuild_parameter with %zu arguments", args->len);
        return parameter(m, args, out);
    case G_REBUILD_PARAMETER_STATE:
        if (args->len != 4) return fail(m, VP_ERR_FORMAT, "_rebuild_parameter_with_state with %zu arguments", args->len);
        if ((rc = parameter(m, args, out))) return rc;
        return truthy(args->items[3]) ? set_state(m, *out, args->items[3]) : VP_OK;
    case G_REBUILD_FROM_TYPE_V2:
        return rebuild_from_type(m, args, out);
    case G_PARAMETER:
        return parameter(m, args, out);
    case G_TORCH_UNSUPPORTED:
        return fail(m, VP_ERR_UNSUPPORTED, "'%s' rebuilds a kind of tensor vitport does not support (quantized, sparse, nested, meta or device)", fn->text);
    case G_SIZE:
        if (args->len != 1 || (a0->kind != VP_V_TUPLE && a0->kind != VP_V_LIST))
            return fail(m, VP_ERR_FORMAT, "torch.Size made from unexpected arguments");
        for (size_t i = 0; i < a0->len; i++)
            if (!is_intlike(a0->items[i])) return fail(m, VP_ERR_FORMAT, "torch.Size holds a %s", vp__value_kind_name(a0->items[i]));
        return new_seq(m, VP_V_TUPLE, a0->items, a0->len, out);
    case G_DEVICE:
        return device(m, args, out);
    case G_GET_LAYOUT:
        if (args->len != 1 || a0->kind != VP_V_STR || a0->len > 64) return fail(m, VP_ERR_FORMAT, "_get_layout made from unexpected arguments");
        *out = new_other(m, VP_O_LAYOUT, a0->text);
        return *out ? VP_OK : nomem(m);
    case G_ORDERED_DICT:
        if (!(v = new_container(m, VP_V_DICT))) return nomem(m);
        v->sub = VP_SUB_ORDERED;
        if (args->len > 1) return fail(m, VP_ERR_FORMAT, "OrderedDict made from %zu arguments", args->len);
        if (args->len == 1 && (rc = dict_fill(m, v, a0))) return rc;
        *out = v;
        return VP_OK;
    case G_SET: case G_FROZENSET:
        if (!(v = new_container(m, VP_V_SET))) return nomem(m);
        if (gid == G_FROZENSET) v->sub = VP_SUB_FROZEN;
        if (args->len > 1) return fail(m, VP_ERR_FORMAT, "set made from %zu arguments", args->len);
        if (args->len == 1 && (rc = set_fill(m, v, a0))) return rc;
        *out = v;
        return VP_OK;
    case G_BYTEARRAY: case G_BYTES:
        return bytes_from_args(m, args, gid == G_BYTEARRAY, out);
    case G_CODECS_ENCODE:
        if (args->len != 2 || a0->kind != VP_V_STR) return fail(m, VP_ERR_FORMAT, "_codecs.encode made from unexpected arguments");
        return bytes_from_args(m, args, false, out);
    case G_SLICE: case G_COMPLEX:
        if (args->len > (gid == G_SLICE ? 3u : 2u)) return fail(m, VP_ERR_FORMAT, "%s with %zu arguments", fn->text, args->len);
        if (!(v = new_other(m, gid == G_SLICE ? VP_O_SLICE : VP_O_COMPLEX, gid == G_SLICE ? "slice" : "complex"))) return nomem(m);
        if ((rc = note_depth(m, v, args))) return rc;
        v->args = args;
        *out = v;
        return VP_OK;
    case G_RECONSTRUCTOR:
        if (args->len != 3 || gid_of(a0) < 0) return fail(m, VP_ERR_FORMAT, "copyreg._reconstructor made from unexpected arguments");
        if ((rc = tail_tuple(m, args, 1, &v))) return rc;
        return inert(m, a0->text, v, out);
    case G_NEWOBJ_FN:
        if (args->len < 1 || gid_of(a0) < 0) return fail(m, VP_ERR_FORMAT, "%s made from unexpected arguments", fn->text);
        if ((rc = tail_tuple(m, args, 1, &v))) return rc;
        return inert(m, a0->text, v, out);
    case G_INERT_CALL:
        return inert(m, fn->text, args, out);
    case G_STORAGE_TYPE:
        return fail(m, VP_ERR_UNSUPPORTED, "storage '%s' built by a call (only persistent storages are supported)", fn->text);
    case G_TENSOR_TYPE:
        return fail(m, VP_ERR_UNSUPPORTED, "tensor built by calling '%s'", fn->text);
    default:
        return fail(m, VP_ERR_REFUSED, "refused to call global '%s' (not on the allowlist)", fn->text);
    }
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args) — no __init__ runs, so an
 * unknown class becomes an inert record rather than a refusal. */
static int new_object(vm *m, vp_value *cls, vp_value *args, vp_value **out)
{
    if (args->kind != VP_V_TUPLE) return fail(m, VP_ERR_FORMAT, "NEWOBJ arguments are a %s, not a tuple", vp__value_kind_name(args));
    int gid = gid_of(cls);
    if (gid < 0) return fail(m, VP_ERR_FORMAT, "NEWOBJ of a %s, which is not a class", vp__value_kind_name(cls));
    switch (gid) {
    case G_UNKNOWN: case G_INERT_CALL:
        return inert(m, cls->text, args, out);
    case G_PARAMETER: case G_SIZE: case G_DEVICE: case G_FROZENSET: case G_BYTES: case G_COMPLEX:
        return call_global(m, cls, args, out);   /* __new__ does the work for these */
    case G_ORDERED_DICT: case G_SET: case G_BYTEARRAY:
        return call_global(m, cls, m->empty_tuple, out);   /* __new__ gives an empty one */
    default:
        return fail(m, VP_ERR_FORMAT, "NEWOBJ of '%s', which is not a class vitport can instantiate", cls->text);
    }
}

static int build(vm *m, vp_value *inst, vp_value *state)
{
    switch (inst->kind) {
    case VP_V_OBJECT: case VP_V_TENSOR:
        return set_state(m, inst, state);
    case VP_V_DICT:
        if (inst->sub == VP_SUB_ORDERED) return set_state(m, inst, state);
        break;
    default:
        break;
    }
    return fail(m, VP_ERR_FORMAT, "BUILD on a %s", vp__value_kind_name(inst));
}

/* ---- stack and memo ------------------------------------------------------------ */
static size_t frame_base(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static int push(vm *m, vp_value *v)
{
    if (!v) return nomem(m);
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= VP_PICKLE_MAX_STACK)
            return fail(m, VP_ERR_LIMIT, "more than %u values on the stack (VP_PICKLE_MAX_STACK)", VP_PICKLE_MAX_STACK);
        size_t cap = m->stack_cap + m->stack_cap / 2;   /* 1.5x: at most 12 bytes per value */
        if (cap > VP_PICKLE_MAX_STACK) cap = VP_PICKLE_MAX_STACK;
        if (!fits(m, (cap - m->stack_cap) * sizeof *m->stack)) return over_budget(m);
        vp_value **s = vp__realloc(m->stack, cap * sizeof *s);
        if (!s) return fail(m, VP_ERR_NOMEM, "out of memory");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return VP_OK;
}

/* Require n values above the last MARK. */
static int need(vm *m, size_t n)
{
    if (m->sp - frame_base(m) < n) return fail(m, VP_ERR_FORMAT, "stack underflow");
    return VP_OK;
}

static vp_value *pop(vm *m) { return m->stack[--m->sp]; }

/* Pop to the last MARK: items are stack[*base .. sp) until the next push. */
static int pop_mark(vm *m, size_t *base)
{
    *base = m->sp;
    if (!m->nmarks) return fail(m, VP_ERR_FORMAT, "no MARK on the stack");
    *base = m->marks[--m->nmarks];
    return VP_OK;
}

/* The memo: keys 0, 1, 2, ... (what MEMOIZE and the PUTs of pickle.py
 * write) go in a dense array, 8 bytes a key; any other key in a hash table
 * (LONG_BINPUT spends 5 bytes of input on one). */
static int memo_grow(vm *m)
{
    size_t cap = m->memo_cap ? m->memo_cap * 2 : 64;
    if (!fits(m, (cap - m->memo_cap) * sizeof *m->memo)) return over_budget(m);
    memo_slot *s = vp__calloc(cap, sizeof *s);
    if (!s) return fail(m, VP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->memo_cap; i++) {
        if (!m->memo[i].used) continue;
        size_t j = mix(m->memo[i].key) & (cap - 1);
        while (s[j].used) j = (j + 1) & (cap - 1);
        s[j] = m->memo[i];
    }
    vp__free(m->memo);
    m->memo = s;
    m->memo_cap = cap;
    return VP_OK;
}

static memo_slot *memo_find(vm *m, uint64_t key)
{
    if (!m->memo_cap || key > UINT32_MAX) return NULL;
    for (size_t j = mix(key) & (m->memo_cap - 1);; j = (j + 1) & (m->memo_cap - 1)) {
        if (!m->memo[j].used) return NULL;
        if (m->memo[j].key == key) return &m->memo[j];
    }
}

static int memo_put(vm *m, uint64_t key)
{
    int rc = need(m, 1);
    if (rc) return rc;
    if (key > UINT32_MAX) return fail(m, VP_ERR_LIMIT, "memo index %llu beyond 2^32", (unsigned long long)key);
    vp_value *v = m->stack[m->sp - 1];
    if (key < m->ndense) { m->dense[key] = v; return VP_OK; }
    memo_slot *s = memo_find(m, key);
    if (key == m->ndense) {   /* the next dense key: moves out of the hash if it was there */
        if (m->ndense == m->dense_cap) {
            size_t cap = m->dense_cap ? m->dense_cap + m->dense_cap / 2 : 64;
            if (!fits(m, (cap - m->dense_cap) * sizeof *m->dense)) return over_budget(m);
            vp_value **d = vp__realloc(m->dense, cap * sizeof *d);
            if (!d) return fail(m, VP_ERR_NOMEM, "out of memory");
            m->dense = d;
            m->dense_cap = cap;
        }
        if (!s && m->memo_count >= VP_PICKLE_MAX_MEMO)
            return fail(m, VP_ERR_LIMIT, "more than %u memo entries (VP_PICKLE_MAX_MEMO)", VP_PICKLE_MAX_MEMO);
        m->dense[m->ndense++] = v;
        if (s) s->v = NULL;            /* stale: the dense entry is looked at first */
        else m->memo_count++;
        return VP_OK;
    }
    if (s) { s->v = v; return VP_OK; }
    if (m->memo_count >= VP_PICKLE_MAX_MEMO)
        return fail(m, VP_ERR_LIMIT, "more than %u memo entries (VP_PICKLE_MAX_MEMO)", VP_PICKLE_MAX_MEMO);
    if ((m->nhash + 1) * 2 > m->memo_cap && (rc = memo_grow(m))) return rc;
    size_t j = mix(key) & (m->memo_cap - 1);
    while (m->memo[j].used) j = (j + 1) & (m->memo_cap - 1);
    m->memo[j].used = 1;
    m->memo[j].key = (uint32_t)key;
    m->memo[j].v = v;
    m->nhash++;
    m->memo_count++;
    return VP_OK;
}

static int memo_get(vm *m, uint64_t key)
{
    if (key < m->ndense) return push(m, m->dense[key]);
    memo_slot *s = memo_find(m, key);
    if (!s) return fail(m, VP_ERR_FORMAT, "memo index %llu is not defined", (unsigned long long)key);
    return push(m, s->v);
}

/* ---- reading operands -------------------------------------------------------- */
static int take(vm *m, size_t n, const uint8_t **out)
{
    *out = m->p;
    if ((size_t)(m->end - m->p) < n)
        return fail(m, VP_ERR_FORMAT, "truncated: operand needs %zu bytes, %zu remain", n, (size_t)(m->end - m->p));
    *out = m->p;
    m->p += n;
    return VP_OK;
}

static int take_uint(vm *m, size_t n, uint64_t *v)
{
    const uint8_t *b;
    int rc = take(m, n, &b);
    if (rc) return rc;
    *v = 0;
    for (size_t i = n; i-- > 0;) *v = (*v << 8) | b[i];
    return VP_OK;
}

/* A newline-terminated argument (without the newline). */
static int take_line(vm *m, const uint8_t **s, size_t *n)
{
    *s = m->p;
    *n = 0;
    const uint8_t *nl = memchr(m->p, '\n', (size_t)(m->end - m->p));
    if (!nl) return fail(m, VP_ERR_FORMAT, "truncated: line argument without a newline");
    *s = m->p;
    *n = (size_t)(nl - m->p);
    m->p = nl + 1;
    return VP_OK;
}

/* A length-prefixed argument; the length is checked against what remains. */
static int take_counted(vm *m, size_t lenbytes, const uint8_t **s, size_t *n)
{
    *s = m->p;
    *n = 0;
    uint64_t len;
    int rc = take_uint(m, lenbytes, &len);
    if (rc) return rc;
    if (len > (uint64_t)(m->end - m->p))
        return fail(m, VP_ERR_FORMAT, "truncated: length %llu but %zu bytes remain", (unsigned long long)len, (size_t)(m->end - m->p));
    *s = m->p;
    *n = (size_t)len;
    m->p += len;
    return VP_OK;
}

static int line_uint(vm *m, uint64_t *v)
{
    const uint8_t *s;
    size_t n;
    int rc = take_line(m, &s, &n);
    if (rc) return rc;
    while (n && s[n - 1] == '\r') n--;
    if (!n || n > 10) return fail(m, VP_ERR_FORMAT, "bad memo index text");
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return fail(m, VP_ERR_FORMAT, "bad memo index text");
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    return VP_OK;
}

/* ---- opcodes ---------------------------------------------------------------- */
static int op_seq_from_mark(vm *m, vp_kind kind)
{
    size_t base;
    int rc = pop_mark(m, &base);
    vp_value *v;
    if (rc) return rc;
    if (kind == VP_V_SET) {      /* FROZENSET */
        if (!(v = new_container(m, VP_V_SET))) return nomem(m);
        v->sub = VP_SUB_FROZEN;
        for (size_t i = base; i < m->sp && !rc; i++) rc = map_put(m, v, m->stack[i], NULL);
    } else {
        rc = new_seq(m, kind, m->stack + base, m->sp - base, &v);
    }
    if (rc) return rc;
    m->sp = base;
    return push(m, v);
}

static int op_dict_from_mark(vm *m)
{
    size_t base;
    int rc = pop_mark(m, &base);
    if (rc) return rc;
    if ((m->sp - base) % 2) return fail(m, VP_ERR_FORMAT, "odd number of items for a dict");
    vp_value *d = new_container(m, VP_V_DICT);
    if (!d) return nomem(m);
    for (size_t i = base; i < m->sp && !rc; i += 2) rc = map_put(m, d, m->stack[i], m->stack[i + 1]);
    if (rc) return rc;
    m->sp = base;
    return push(m, d);
}

static int op_tuple_n(vm *m, size_t n)
{
    int rc = need(m, n);
    vp_value *t = NULL;
    if (!rc) rc = new_seq(m, VP_V_TUPLE, m->stack + m->sp - n, n, &t);
    if (rc) return rc;
    m->sp -= n;
    return push(m, t);
}

/* APPENDS / SETITEMS / ADDITEMS: pop the items above the topmost MARK into
 * [*base, *hi) of the stack (still readable there) and give the container
 * below the mark. */
static int pop_items(vm *m, size_t *base, size_t *hi, vp_value **container)
{
    int rc = pop_mark(m, base);
    if (rc) return rc;
    *hi = m->sp;
    m->sp = *base;
    if ((rc = need(m, 1))) return rc;
    *container = m->stack[*base - 1];
    return VP_OK;
}

static int op_appends(vm *m)
{
    size_t base, hi;
    vp_value *l;
    int rc = pop_items(m, &base, &hi, &l);
    if (rc) return rc;
    if (l->kind != VP_V_LIST) return fail(m, VP_ERR_FORMAT, "APPENDS to a %s, not a list", vp__value_kind_name(l));
    if ((rc = reserve(m, l, l->len + (hi - base)))) return rc;
    for (size_t i = base; i < hi && !rc; i++) rc = list_append(m, l, m->stack[i]);
    return rc;
}

static int op_setitems(vm *m)
{
    size_t base, hi;
    vp_value *d;
    int rc = pop_items(m, &base, &hi, &d);
    if (rc) return rc;
    if (d->kind != VP_V_DICT) return fail(m, VP_ERR_FORMAT, "SETITEMS on a %s, not a dict", vp__value_kind_name(d));
    if ((hi - base) % 2) return fail(m, VP_ERR_FORMAT, "odd number of items for SETITEMS");
    for (size_t i = base; i < hi && !rc; i += 2) rc = map_put(m, d, m->stack[i], m->stack[i + 1]);
    return rc;
}

static int op_additems(vm *m)
{
    size_t base, hi;
    vp_value *s;
    int rc = pop_items(m, &base, &hi, &s);
    if (rc) return rc;
    if (s->kind != VP_V_SET || s->sub == VP_SUB_FROZEN) return fail(m, VP_ERR_FORMAT, "ADDITEMS to a %s, not a set", vp__value_kind_name(s));
    for (size_t i = base; i < hi && !rc; i++) rc = map_put(m, s, m->stack[i], NULL);
    return rc;
}

static int op_global(vm *m)
{
    const uint8_t *mod, *name;
    size_t ml, nl;
    int rc = take_line(m, &mod, &ml);
    if (!rc) rc = take_line(m, &name, &nl);
    vp_value *g;
    if (!rc) rc = make_global(m, (const char *)mod, ml, (const char *)name, nl, &g);
    return rc ? rc : push(m, g);
}

static int op_stack_global(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *name = pop(m), *mod = pop(m);
    if (name->kind != VP_V_STR || mod->kind != VP_V_STR) return fail(m, VP_ERR_FORMAT, "STACK_GLOBAL operands are not strings");
    vp_value *g;
    if ((rc = make_global(m, mod->text, mod->len, name->text, name->len, &g))) return rc;
    return push(m, g);
}

static int op_reduce(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *args = pop(m), *fn = pop(m), *v;
    if ((rc = call_global(m, fn, args, &v))) return rc;
    return push(m, v);
}

static int op_newobj(vm *m, bool ex)
{
    int rc = need(m, ex ? 3 : 2);
    if (rc) return rc;
    vp_value *kwargs = ex ? pop(m) : NULL, *args = pop(m), *cls = pop(m), *v;
    if (kwargs && kwargs->kind != VP_V_DICT) return fail(m, VP_ERR_FORMAT, "NEWOBJ_EX keyword arguments are not a dict");
    if (kwargs && kwargs->len) {   /* keep them with the positional ones: (args, kwargs) */
        vp_value *pair[2] = {args, kwargs};
        if ((rc = new_seq(m, VP_V_TUPLE, pair, 2, &args))) return rc;
    }
    if ((rc = new_object(m, cls, args, &v))) return rc;
    return push(m, v);
}

/* INST module\nname\n with the arguments above the MARK; OBJ with the class
 * first above the MARK. Both call the class, so they go through the allowlist. */
static int op_inst(vm *m, bool obj)
{
    vp_value *cls = NULL, *args, *v;
    int rc = VP_OK;
    if (!obj) {
        const uint8_t *mod, *name;
        size_t ml, nl;
        if ((rc = take_line(m, &mod, &ml)) || (rc = take_line(m, &name, &nl))) return rc;
        if ((rc = make_global(m, (const char *)mod, ml, (const char *)name, nl, &cls))) return rc;
    }
    size_t base;
    if ((rc = pop_mark(m, &base))) return rc;
    if (obj) {
        if (m->sp == base) return fail(m, VP_ERR_FORMAT, "OBJ without a class");
        cls = m->stack[base];
        base++;
    }
    if ((rc = new_seq(m, VP_V_TUPLE, m->stack + base, m->sp - base, &args))) return rc;
    m->sp = base - (obj ? 1 : 0);
    if ((rc = call_global(m, cls, args, &v))) return rc;
    return push(m, v);
}

static int op_persid(vm *m, bool binary)
{
    vp_value *pid, *v;
    int rc;
    if (binary) {
        if ((rc = need(m, 1))) return rc;
        pid = pop(m);
    } else {
        const uint8_t *s;
        size_t n;
        if ((rc = take_line(m, &s, &n))) return rc;
        for (size_t i = 0; i < n; i++) if (s[i] >= 0x80) return fail(m, VP_ERR_FORMAT, "PERSID is not ASCII");
        if (!(pid = new_text(m, VP_V_STR, s, n))) return nomem(m);
    }
    if (!m->persid) return fail(m, VP_ERR_FORMAT, "persistent id where none is expected");
    if ((rc = m->persid(m->ud, m->src, pid, &v))) return rc;
    return push(m, v);
}

static int op_build(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *state = pop(m);
    return build(m, m->stack[m->sp - 1], state);
}

static int op_pop(vm *m)
{
    if (m->sp > frame_base(m)) { m->sp--; return VP_OK; }
    size_t base;
    return pop_mark(m, &base);   /* Python: POP on an empty frame drops the MARK */
}

static int op_mark(vm *m)
{
    if (m->nmarks == m->marks_cap) {
        if (m->marks_cap >= VP_PICKLE_MAX_STACK)
            return fail(m, VP_ERR_LIMIT, "more than %u MARKs (VP_PICKLE_MAX_STACK)", VP_PICKLE_MAX_STACK);
        size_t cap = m->marks_cap ? m->marks_cap + m->marks_cap / 2 : 64;
        if (cap > VP_PICKLE_MAX_STACK) cap = VP_PICKLE_MAX_STACK;
        if (!fits(m, (cap - m->marks_cap) * sizeof *m->marks)) return over_budget(m);
        size_t *p = vp__realloc(m->marks, cap * sizeof *p);
        if (!p) return fail(m, VP_ERR_NOMEM, "out of memory");
        m->marks = p;
        m->marks_cap = cap;
    }
    m->marks[m->nmarks++] = m->sp;
    return VP_OK;
}

/* Opcodes with a text or binary scalar argument. */
static int op_scalar(vm *m, uint8_t op)
{
    const uint8_t *s;
    size_t n;
    uint64_t u;
    vp_value *v = NULL;
    int rc = VP_OK;
    switch (op) {
    case 'I':
        if ((rc = take_line(m, &s, &n))) return rc;
        if (n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) return push(m, s[1] == '1' ? m->vtrue : m->vfalse);
        rc = int_from_text(m, s, n, &v);
        break;
    case 'L':
        if ((rc = take_line(m, &s, &n))) return rc;
        if (n && s[n - 1] == 'L') n--;
        rc = int_from_text(m, s, n, &v);
        break;
    case 'J':
        if ((rc = take_uint(m, 4, &u))) return rc;
        v = new_int(m, (int32_t)(uint32_t)u);
        break;
    case 'K': case 'M':
        if ((rc = take_uint(m, op == 'K' ? 1 : 2, &u))) return rc;
        v = new_int(m, (int64_t)u);
        break;
    case 0x8a: case 0x8b:
        if ((rc = take_counted(m, op == 0x8a ? 1 : 4, &s, &n))) return rc;
        rc = int_from_bytes(m, s, n, &v);
        break;
    case 'F':
        if ((rc = take_line(m, &s, &n))) return rc;
        rc = float_from_text(m, s, n, &v);
        break;
    case 'G': {
        const uint8_t *b;
        if ((rc = take(m, 8, &b))) return rc;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | b[i];   /* big-endian */
        if ((v = new_value(m, VP_V_FLOAT))) memcpy(&v->u.f, &bits, sizeof bits);
        break;
    }
    case 'S':
        if ((rc = take_line(m, &s, &n))) return rc;
        while (n && s[n - 1] == '\r') n--;
        rc = escaped_string(m, s, n, &v);
        break;
    case 'V':
        if ((rc = take_line(m, &s, &n))) return rc;
        rc = raw_unicode_escape(m, s, n, &v);
        break;
    case 'T': case 'U':   /* Python 2 str: decoded as UTF-8, as torch.load does */
        if ((rc = take_counted(m, op == 'T' ? 4 : 1, &s, &n))) return rc;
        rc = new_str_checked(m, s, n, &v);
        break;
    case 'X': case 0x8c: case 0x8d:
        if ((rc = take_counted(m, op == 'X' ? 4 : op == 0x8c ? 1 : 8, &s, &n))) return rc;
        rc = new_str_checked(m, s, n, &v);
        break;
    case 'B': case 'C': case 0x8e: case 0x96:
        if ((rc = take_counted(m, op == 'B' ? 4 : op == 'C' ? 1 : 8, &s, &n))) return rc;
        if (n == 0 && op != 0x96) v = m->empty_bytes;   /* immutable: shared (a bytearray is not) */
        else if ((v = new_text(m, VP_V_BYTES, s, n)) && op == 0x96) v->sub = VP_SUB_BYTEARRAY;
        break;
    }
    if (rc) return rc;
    return push(m, v);
}

static int step(vm *m, uint8_t op)
{
    uint64_t u;
    int rc;
    switch (op) {
    case 'I': case 'L': case 'J': case 'K': case 'M': case 0x8a: case 0x8b: case 'F': case 'G':
    case 'S': case 'V': case 'T': case 'U': case 'X': case 0x8c: case 0x8d:
    case 'B': case 'C': case 0x8e: case 0x96:
        return op_scalar(m, op);
    case 'N': return push(m, m->none);
    case 0x88: return push(m, m->vtrue);
    case 0x89: return push(m, m->vfalse);
    case ')': return push(m, m->empty_tuple);
    case ']': return push(m, new_container(m, VP_V_LIST));
    case '}': return push(m, new_container(m, VP_V_DICT));
    case 0x8f: return push(m, new_container(m, VP_V_SET));
    case '(': return op_mark(m);
    case 't': return op_seq_from_mark(m, VP_V_TUPLE);
    case 'l': return op_seq_from_mark(m, VP_V_LIST);
    case 0x91: return op_seq_from_mark(m, VP_V_SET);
    case 'd': return op_dict_from_mark(m);
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case 'a': {
        if ((rc = need(m, 2))) return rc;
        vp_value *item = pop(m), *l = m->stack[m->sp - 1];
        if (l->kind != VP_V_LIST) return fail(m, VP_ERR_FORMAT, "APPEND to a %s, not a list", vp__value_kind_name(l));
        return list_append(m, l, item);
    }
    case 'e': return op_appends(m);
    case 's': {
        if ((rc = need(m, 3))) return rc;
        vp_value *val = pop(m), *key = pop(m), *d = m->stack[m->sp - 1];
        if (d->kind != VP_V_DICT) return fail(m, VP_ERR_FORMAT, "SETITEM on a %s, not a dict", vp__value_kind_name(d));
        return map_put(m, d, key, val);
    }
    case 'u': return op_setitems(m);
    case 0x90: return op_additems(m);
    case '0': return op_pop(m);
    case '1': { size_t base; rc = pop_mark(m, &base); if (!rc) m->sp = base; return rc; }
    case '2':
        if ((rc = need(m, 1))) return rc;
        return push(m, m->stack[m->sp - 1]);
    case 'g': if ((rc = line_uint(m, &u))) return rc; return memo_get(m, u);
    case 'h': if ((rc = take_uint(m, 1, &u))) return rc; return memo_get(m, u);
    case 'j': if ((rc = take_uint(m, 4, &u))) return rc; return memo_get(m, u);
    case 'p': if ((rc = line_uint(m, &u))) return rc; return memo_put(m, u);
    case 'q': if ((rc = take_uint(m, 1, &u))) return rc; return memo_put(m, u);
    case 'r': if ((rc = take_uint(m, 4, &u))) return rc; return memo_put(m, u);
    case 0x94: return memo_put(m, m->memo_count);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m);
    case 0x81: return op_newobj(m, false);
    case 0x92: return op_newobj(m, true);
    case 'i': return op_inst(m, false);
    case 'o': return op_inst(m, true);
    case 'b': return op_build(m);
    case 'P': return op_persid(m, false);
    case 'Q': return op_persid(m, true);
    case 0x80: {
        if ((rc = take_uint(m, 1, &u))) return rc;
        if (u > 5) return fail(m, VP_ERR_UNSUPPORTED, "pickle protocol %llu (at most 5 is supported)", (unsigned long long)u);
        return VP_OK;
    }
    case 0x95:   /* FRAME: framing is only a hint for buffered readers */
        if ((rc = take_uint(m, 8, &u))) return rc;
        if (u > (uint64_t)(m->end - m->p)) return fail(m, VP_ERR_FORMAT, "truncated: frame of %llu bytes", (unsigned long long)u);
        return VP_OK;
    case 0x98:   /* READONLY_BUFFER: no-op on an in-band buffer */
        return need(m, 1);
    case 0x97:
        return fail(m, VP_ERR_UNSUPPORTED, "out-of-band buffers (NEXT_BUFFER) are not supported");
    case 0x82: case 0x83: case 0x84:
        return fail(m, VP_ERR_UNSUPPORTED, "copyreg extension codes are not supported");
    default:
        return fail(m, VP_ERR_FORMAT, "unknown opcode 0x%02x", op);
    }
}

static vp_value *singleton(vm *m, vp_kind kind, int64_t i)
{
    vp_value *v = new_value(m, kind);
    if (v) v->u.i = i;
    return v;
}

int vp__pickle_load(vp_source *src, const uint8_t *data, size_t n, const char *label,
                    vp_persid_fn persid, void *ud, vp_value **out, size_t *consumed)
{
    vm m;
    memset(&m, 0, sizeof m);
    m.src = src;
    m.label = label ? label : "pickle";
    m.start = m.p = data;
    m.end = data + n;
    m.persid = persid;
    m.ud = ud;
    *out = NULL;
    m.arena0 = src->arena.used;
    uint64_t budget;
    /* less what the count does not see: the arena's current block (64 KB,
     * partly used) and the allocator's own headers */
    if (vp__mul_u64(n, VP_PICKLE_MEM_PER_BYTE, &budget) && budget <= SIZE_MAX - VP_PICKLE_MEM_FIXED)
        m.budget = (size_t)budget + VP_PICKLE_MEM_FIXED - (128u << 10);
    else
        m.budget = SIZE_MAX;
    m.none = singleton(&m, VP_V_NONE, 0);
    m.vtrue = singleton(&m, VP_V_BOOL, 1);
    m.vfalse = singleton(&m, VP_V_BOOL, 0);
    m.empty_tuple = singleton(&m, VP_V_TUPLE, 0);
    m.empty_str = new_text(&m, VP_V_STR, "", 0);
    m.empty_bytes = new_text(&m, VP_V_BYTES, "", 0);
    if (!m.none || !m.vtrue || !m.vfalse || !m.empty_tuple || !m.empty_str || !m.empty_bytes) return nomem(&m);
    m.empty_tuple->depth = 1;
    /* the stack is never NULL, so that stack + base is always defined */
    m.stack_cap = 256;
    m.stack = vp__malloc(m.stack_cap * sizeof *m.stack);
    if (!m.stack) return fail(&m, VP_ERR_NOMEM, "out of memory");

    int rc = VP_OK;
    for (;;) {
        if (m.p >= m.end) {
            m.op_off = (size_t)(m.p - m.start);
            m.op = 0;
            rc = vp__err(src, VP_ERR_FORMAT, "%s: truncated: ends before STOP (%zu bytes)", m.label, n);
            break;
        }
        m.op_off = (size_t)(m.p - m.start);
        m.op = *m.p++;
        if (m.op == '.') {
            if ((rc = need(&m, 1))) break;
            *out = pop(&m);
            if (consumed) *consumed = (size_t)(m.p - m.start);
            break;
        }
        if ((rc = step(&m, m.op))) break;
        /* what the step allocated outside palloc (a persistent-id loader's
         * values) counts too */
        if (held(&m) > m.budget) { rc = over_budget(&m); break; }
    }
    vp__free(m.stack);
    vp__free(m.marks);
    vp__free(m.memo);
    vp__free(m.dense);
    vp__free(m.small_ints);
    return rc;
}

/* ---- helpers ---------------------------------------------------------------- */
vp_source *vp__pickle_scratch_source(size_t arena_cap)
{
    vp_source *src = vp__calloc(1, sizeof *src);
    if (!src) return NULL;
    src->map.fd = -1;
    vp__arena_init(&src->arena, arena_cap);
    return src;
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

bool vp__value_storage_type(const vp_value *v, vp_dtype *dt)
{
    if (!v || gid_of(v) != G_STORAGE_TYPE) return false;
    *dt = (vp_dtype)v->u.i;
    return true;
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
