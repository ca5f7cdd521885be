/*
 * The safe pickle reader (see pickle.h). Opcode semantics follow CPython's
 * pickle.py / pickletools; the allowlist follows torch.load(weights_only=True)
 * (torch/_weights_only_unpickler.py) with two deliberate differences:
 *  - a global outside the allowlist is not refused when it is named, only
 *    when it would have to be called; instantiating it (NEWOBJ) gives an
 *    inert record, so checkpoints holding e.g. an argparse.Namespace load;
 *  - nesting, stack, memo and container sizes are bounded (config.h).
 * This file is the machine (budget, stack, memo, operands, opcodes); the
 * values it builds are made in pickle_values.c, globals resolved and
 * "called" in pickle_globals.c (pickle_vm.h, the state they share).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format/pickle_vm.h"

/* ---- the machine --------------------------------------------------------- */
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
int vp__pk_fail(vm *m, int code, const char *fmt, ...)
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
bool vp__pk_fits(vm *m, size_t n)
{
    size_t h = held(m);
    if (h <= m->budget && n <= m->budget - h) return true;
    m->over = true;
    return false;
}

static int over_budget(vm *m)
{
    return vp__pk_fail(m, VP_ERR_LIMIT,
                       "its values would take more than %zu bytes (VP_PICKLE_MEM_PER_BYTE = %u bytes per byte of its %zu, "
                       "plus VP_PICKLE_MEM_FIXED)", m->budget, VP_PICKLE_MEM_PER_BYTE, (size_t)(m->end - m->start));
}

int vp__pk_nomem(vm *m)
{
    if (m->over) return over_budget(m);
    return vp__pk_fail(m, VP_ERR_LIMIT, "pickle values exceed the memory limit of %zu bytes", m->src->arena.cap);
}

/* Arena memory for the VM, within the budget. */
void *vp__pk_alloc(vm *m, size_t n)
{
    if (!vp__pk_fits(m, (n + 15) & ~(size_t)15)) return NULL;
    return vp__arena_alloc(&m->src->arena, n);
}

char *vp__pk_strndup(vm *m, const char *s, size_t n)
{
    if (n == SIZE_MAX || !vp__pk_fits(m, (n + 16) & ~(size_t)15)) return NULL;
    return vp__arena_strndup(&m->src->arena, s, n);
}

/* ---- stack and memo ------------------------------------------------------------ */
static size_t frame_base(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static int push(vm *m, vp_value *v)
{
    if (!v) return vp__pk_nomem(m);
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= VP_PICKLE_MAX_STACK)
            return vp__pk_fail(m, VP_ERR_LIMIT, "more than %u values on the stack (VP_PICKLE_MAX_STACK)", VP_PICKLE_MAX_STACK);
        size_t cap = m->stack_cap + m->stack_cap / 2;   /* 1.5x: at most 12 bytes per value */
        if (cap > VP_PICKLE_MAX_STACK) cap = VP_PICKLE_MAX_STACK;
        if (!vp__pk_fits(m, (cap - m->stack_cap) * sizeof *m->stack)) return over_budget(m);
        vp_value **s = vp__realloc(m->stack, cap * sizeof *s);
        if (!s) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return VP_OK;
}

/* Require n values above the last MARK. */
static int need(vm *m, size_t n)
{
    if (m->sp - frame_base(m) < n) return vp__pk_fail(m, VP_ERR_FORMAT, "stack underflow");
    return VP_OK;
}

static vp_value *pop(vm *m) { return m->stack[--m->sp]; }

/* Pop to the last MARK: items are stack[*base .. sp) until the next push. */
static int pop_mark(vm *m, size_t *base)
{
    *base = m->sp;
    if (!m->nmarks) return vp__pk_fail(m, VP_ERR_FORMAT, "no MARK on the stack");
    *base = m->marks[--m->nmarks];
    return VP_OK;
}

/* The memo: keys 0, 1, 2, ... (what MEMOIZE and the PUTs of pickle.py
 * write) go in a dense array, 8 bytes a key; any other key in a hash table
 * (LONG_BINPUT spends 5 bytes of input on one). */
static int memo_grow(vm *m)
{
    size_t cap = m->memo_cap ? m->memo_cap * 2 : 64;
    if (!vp__pk_fits(m, (cap - m->memo_cap) * sizeof *m->memo)) return over_budget(m);
    memo_slot *s = vp__calloc(cap, sizeof *s);
    if (!s) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->memo_cap; i++) {
        if (!m->memo[i].used) continue;
        size_t j = vp__pk_mix(m->memo[i].key) & (cap - 1);
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
    for (size_t j = vp__pk_mix(key) & (m->memo_cap - 1);; j = (j + 1) & (m->memo_cap - 1)) {
        if (!m->memo[j].used) return NULL;
        if (m->memo[j].key == key) return &m->memo[j];
    }
}

static int memo_put(vm *m, uint64_t key)
{
    int rc = need(m, 1);
    if (rc) return rc;
    if (key > UINT32_MAX) return vp__pk_fail(m, VP_ERR_LIMIT, "memo index %llu beyond 2^32", (unsigned long long)key);
    vp_value *v = m->stack[m->sp - 1];
    if (key < m->ndense) { m->dense[key] = v; return VP_OK; }
    memo_slot *s = memo_find(m, key);
    if (key == m->ndense) {   /* the next dense key: moves out of the hash if it was there */
        if (m->ndense == m->dense_cap) {
            size_t cap = m->dense_cap ? m->dense_cap + m->dense_cap / 2 : 64;
            if (!vp__pk_fits(m, (cap - m->dense_cap) * sizeof *m->dense)) return over_budget(m);
            vp_value **d = vp__realloc(m->dense, cap * sizeof *d);
            if (!d) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
            m->dense = d;
            m->dense_cap = cap;
        }
        if (!s && m->memo_count >= VP_PICKLE_MAX_MEMO)
            return vp__pk_fail(m, VP_ERR_LIMIT, "more than %u memo entries (VP_PICKLE_MAX_MEMO)", VP_PICKLE_MAX_MEMO);
        m->dense[m->ndense++] = v;
        if (s) s->v = NULL;            /* stale: the dense entry is looked at first */
        else m->memo_count++;
        return VP_OK;
    }
    if (s) { s->v = v; return VP_OK; }
    if (m->memo_count >= VP_PICKLE_MAX_MEMO)
        return vp__pk_fail(m, VP_ERR_LIMIT, "more than %u memo entries (VP_PICKLE_MAX_MEMO)", VP_PICKLE_MAX_MEMO);
    if ((m->nhash + 1) * 2 > m->memo_cap && (rc = memo_grow(m))) return rc;
    size_t j = vp__pk_mix(key) & (m->memo_cap - 1);
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
    if (!s) return vp__pk_fail(m, VP_ERR_FORMAT, "memo index %llu is not defined", (unsigned long long)key);
    return push(m, s->v);
}

/* ---- reading operands -------------------------------------------------------- */
static int take(vm *m, size_t n, const uint8_t **out)
{
    *out = m->p;
    if ((size_t)(m->end - m->p) < n)
        return vp__pk_fail(m, VP_ERR_FORMAT, "truncated: operand needs %zu bytes, %zu remain", n, (size_t)(m->end - m->p));
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
    if (!nl) return vp__pk_fail(m, VP_ERR_FORMAT, "truncated: line argument without a newline");
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
        return vp__pk_fail(m, VP_ERR_FORMAT,
                           "truncated: length %llu but %zu bytes remain", (unsigned long long)len, (size_t)(m->end - m->p));
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
    if (!n || n > 10) return vp__pk_fail(m, VP_ERR_FORMAT, "bad memo index text");
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return vp__pk_fail(m, VP_ERR_FORMAT, "bad memo index text");
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
        if (!(v = vp__pk_new_container(m, VP_V_SET))) return vp__pk_nomem(m);
        v->sub = VP_SUB_FROZEN;
        for (size_t i = base; i < m->sp && !rc; i++) rc = vp__pk_map_put(m, v, m->stack[i], NULL);
    } else {
        rc = vp__pk_new_seq(m, kind, m->stack + base, m->sp - base, &v);
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
    if ((m->sp - base) % 2) return vp__pk_fail(m, VP_ERR_FORMAT, "odd number of items for a dict");
    vp_value *d = vp__pk_new_container(m, VP_V_DICT);
    if (!d) return vp__pk_nomem(m);
    for (size_t i = base; i < m->sp && !rc; i += 2) rc = vp__pk_map_put(m, d, m->stack[i], m->stack[i + 1]);
    if (rc) return rc;
    m->sp = base;
    return push(m, d);
}

static int op_tuple_n(vm *m, size_t n)
{
    int rc = need(m, n);
    vp_value *t = NULL;
    if (!rc) rc = vp__pk_new_seq(m, VP_V_TUPLE, m->stack + m->sp - n, n, &t);
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
    if (l->kind != VP_V_LIST) return vp__pk_fail(m, VP_ERR_FORMAT, "APPENDS to a %s, not a list", vp__value_kind_name(l));
    if ((rc = vp__pk_reserve(m, l, l->len + (hi - base)))) return rc;
    for (size_t i = base; i < hi && !rc; i++) rc = vp__pk_list_append(m, l, m->stack[i]);
    return rc;
}

static int op_setitems(vm *m)
{
    size_t base, hi;
    vp_value *d;
    int rc = pop_items(m, &base, &hi, &d);
    if (rc) return rc;
    if (d->kind != VP_V_DICT) return vp__pk_fail(m, VP_ERR_FORMAT, "SETITEMS on a %s, not a dict", vp__value_kind_name(d));
    if ((hi - base) % 2) return vp__pk_fail(m, VP_ERR_FORMAT, "odd number of items for SETITEMS");
    for (size_t i = base; i < hi && !rc; i += 2) rc = vp__pk_map_put(m, d, m->stack[i], m->stack[i + 1]);
    return rc;
}

static int op_additems(vm *m)
{
    size_t base, hi;
    vp_value *s;
    int rc = pop_items(m, &base, &hi, &s);
    if (rc) return rc;
    if (s->kind != VP_V_SET || s->sub == VP_SUB_FROZEN)
        return vp__pk_fail(m, VP_ERR_FORMAT, "ADDITEMS to a %s, not a set", vp__value_kind_name(s));
    for (size_t i = base; i < hi && !rc; i++) rc = vp__pk_map_put(m, s, m->stack[i], NULL);
    return rc;
}

static int op_global(vm *m)
{
    const uint8_t *mod, *name;
    size_t ml, nl;
    int rc = take_line(m, &mod, &ml);
    if (!rc) rc = take_line(m, &name, &nl);
    vp_value *g;
    if (!rc) rc = vp__pk_make_global(m, (const char *)mod, ml, (const char *)name, nl, &g);
    return rc ? rc : push(m, g);
}

static int op_stack_global(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *name = pop(m), *mod = pop(m);
    if (name->kind != VP_V_STR || mod->kind != VP_V_STR) return vp__pk_fail(m, VP_ERR_FORMAT, "STACK_GLOBAL operands are not strings");
    vp_value *g;
    if ((rc = vp__pk_make_global(m, mod->text, mod->len, name->text, name->len, &g))) return rc;
    return push(m, g);
}

static int op_reduce(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *args = pop(m), *fn = pop(m), *v;
    if ((rc = vp__pk_call_global(m, fn, args, &v))) return rc;
    return push(m, v);
}

static int op_newobj(vm *m, bool ex)
{
    int rc = need(m, ex ? 3 : 2);
    if (rc) return rc;
    vp_value *kwargs = ex ? pop(m) : NULL, *args = pop(m), *cls = pop(m), *v;
    if (kwargs && kwargs->kind != VP_V_DICT) return vp__pk_fail(m, VP_ERR_FORMAT, "NEWOBJ_EX keyword arguments are not a dict");
    if (kwargs && kwargs->len) {   /* keep them with the positional ones: (args, kwargs) */
        vp_value *pair[2] = {args, kwargs};
        if ((rc = vp__pk_new_seq(m, VP_V_TUPLE, pair, 2, &args))) return rc;
    }
    if ((rc = vp__pk_new_object(m, cls, args, &v))) return rc;
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
        if ((rc = vp__pk_make_global(m, (const char *)mod, ml, (const char *)name, nl, &cls))) return rc;
    }
    size_t base;
    if ((rc = pop_mark(m, &base))) return rc;
    if (obj) {
        if (m->sp == base) return vp__pk_fail(m, VP_ERR_FORMAT, "OBJ without a class");
        cls = m->stack[base];
        base++;
    }
    if ((rc = vp__pk_new_seq(m, VP_V_TUPLE, m->stack + base, m->sp - base, &args))) return rc;
    m->sp = base - (obj ? 1 : 0);
    if ((rc = vp__pk_call_global(m, cls, args, &v))) return rc;
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
        for (size_t i = 0; i < n; i++) if (s[i] >= 0x80) return vp__pk_fail(m, VP_ERR_FORMAT, "PERSID is not ASCII");
        if (!(pid = vp__pk_new_text(m, VP_V_STR, s, n))) return vp__pk_nomem(m);
    }
    if (!m->persid) return vp__pk_fail(m, VP_ERR_FORMAT, "persistent id where none is expected");
    if ((rc = m->persid(m->ud, m->src, pid, &v))) return rc;
    return push(m, v);
}

static int op_build(vm *m)
{
    int rc = need(m, 2);
    if (rc) return rc;
    vp_value *state = pop(m);
    return vp__pk_build(m, m->stack[m->sp - 1], state);
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
            return vp__pk_fail(m, VP_ERR_LIMIT, "more than %u MARKs (VP_PICKLE_MAX_STACK)", VP_PICKLE_MAX_STACK);
        size_t cap = m->marks_cap ? m->marks_cap + m->marks_cap / 2 : 64;
        if (cap > VP_PICKLE_MAX_STACK) cap = VP_PICKLE_MAX_STACK;
        if (!vp__pk_fits(m, (cap - m->marks_cap) * sizeof *m->marks)) return over_budget(m);
        size_t *p = vp__realloc(m->marks, cap * sizeof *p);
        if (!p) return vp__pk_fail(m, VP_ERR_NOMEM, "out of memory");
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
        rc = vp__pk_int_from_text(m, s, n, &v);
        break;
    case 'L':
        if ((rc = take_line(m, &s, &n))) return rc;
        if (n && s[n - 1] == 'L') n--;
        rc = vp__pk_int_from_text(m, s, n, &v);
        break;
    case 'J':
        if ((rc = take_uint(m, 4, &u))) return rc;
        v = vp__pk_new_int(m, (int32_t)(uint32_t)u);
        break;
    case 'K': case 'M':
        if ((rc = take_uint(m, op == 'K' ? 1 : 2, &u))) return rc;
        v = vp__pk_new_int(m, (int64_t)u);
        break;
    case 0x8a: case 0x8b:
        if ((rc = take_counted(m, op == 0x8a ? 1 : 4, &s, &n))) return rc;
        rc = vp__pk_int_from_bytes(m, s, n, &v);
        break;
    case 'F':
        if ((rc = take_line(m, &s, &n))) return rc;
        rc = vp__pk_float_from_text(m, s, n, &v);
        break;
    case 'G': {
        const uint8_t *b;
        if ((rc = take(m, 8, &b))) return rc;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | b[i];   /* big-endian */
        if ((v = vp__pk_new_value(m, VP_V_FLOAT))) memcpy(&v->u.f, &bits, sizeof bits);
        break;
    }
    case 'S':
        if ((rc = take_line(m, &s, &n))) return rc;
        while (n && s[n - 1] == '\r') n--;
        rc = vp__pk_escaped_string(m, s, n, &v);
        break;
    case 'V':
        if ((rc = take_line(m, &s, &n))) return rc;
        rc = vp__pk_raw_unicode_escape(m, s, n, &v);
        break;
    case 'T': case 'U':   /* Python 2 str: decoded as UTF-8, as torch.load does */
        if ((rc = take_counted(m, op == 'T' ? 4 : 1, &s, &n))) return rc;
        rc = vp__pk_new_str(m, s, n, &v);
        break;
    case 'X': case 0x8c: case 0x8d:
        if ((rc = take_counted(m, op == 'X' ? 4 : op == 0x8c ? 1 : 8, &s, &n))) return rc;
        rc = vp__pk_new_str(m, s, n, &v);
        break;
    case 'B': case 'C': case 0x8e: case 0x96:
        if ((rc = take_counted(m, op == 'B' ? 4 : op == 'C' ? 1 : 8, &s, &n))) return rc;
        if (n == 0 && op != 0x96) v = m->empty_bytes;   /* immutable: shared (a bytearray is not) */
        else if ((v = vp__pk_new_text(m, VP_V_BYTES, s, n)) && op == 0x96) v->sub = VP_SUB_BYTEARRAY;
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
    case ']': return push(m, vp__pk_new_container(m, VP_V_LIST));
    case '}': return push(m, vp__pk_new_container(m, VP_V_DICT));
    case 0x8f: return push(m, vp__pk_new_container(m, VP_V_SET));
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
        if (l->kind != VP_V_LIST) return vp__pk_fail(m, VP_ERR_FORMAT, "APPEND to a %s, not a list", vp__value_kind_name(l));
        return vp__pk_list_append(m, l, item);
    }
    case 'e': return op_appends(m);
    case 's': {
        if ((rc = need(m, 3))) return rc;
        vp_value *val = pop(m), *key = pop(m), *d = m->stack[m->sp - 1];
        if (d->kind != VP_V_DICT) return vp__pk_fail(m, VP_ERR_FORMAT, "SETITEM on a %s, not a dict", vp__value_kind_name(d));
        return vp__pk_map_put(m, d, key, val);
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
        if (u > 5) return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "pickle protocol %llu (at most 5 is supported)", (unsigned long long)u);
        return VP_OK;
    }
    case 0x95:   /* FRAME: framing is only a hint for buffered readers */
        if ((rc = take_uint(m, 8, &u))) return rc;
        if (u > (uint64_t)(m->end - m->p)) return vp__pk_fail(m, VP_ERR_FORMAT, "truncated: frame of %llu bytes", (unsigned long long)u);
        return VP_OK;
    case 0x98:   /* READONLY_BUFFER: no-op on an in-band buffer */
        return need(m, 1);
    case 0x97:
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "out-of-band buffers (NEXT_BUFFER) are not supported");
    case 0x82: case 0x83: case 0x84:
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "copyreg extension codes are not supported");
    default:
        return vp__pk_fail(m, VP_ERR_FORMAT, "unknown opcode 0x%02x", op);
    }
}

static vp_value *singleton(vm *m, vp_kind kind, int64_t i)
{
    vp_value *v = vp__pk_new_value(m, kind);
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
    m.empty_str = vp__pk_new_text(&m, VP_V_STR, "", 0);
    m.empty_bytes = vp__pk_new_text(&m, VP_V_BYTES, "", 0);
    if (!m.none || !m.vtrue || !m.vfalse || !m.empty_tuple || !m.empty_str || !m.empty_bytes) return vp__pk_nomem(&m);
    m.empty_tuple->depth = 1;
    /* the stack is never NULL, so that stack + base is always defined */
    m.stack_cap = 256;
    m.stack = vp__malloc(m.stack_cap * sizeof *m.stack);
    if (!m.stack) return vp__pk_fail(&m, VP_ERR_NOMEM, "out of memory");

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
