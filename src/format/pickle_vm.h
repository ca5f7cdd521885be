/*
 * The pickle machine's state and what the parts of the safe pickle reader
 * share; internal to them (the rest of vitport uses pickle.h):
 *   pickle.c          the machine: its memory budget, stack, memo, operands
 *                     and opcodes, and vp__pickle_load;
 *   pickle_values.c   making values: ints, floats, text, containers, and
 *                     the Python hashing and equality that dicts and sets need;
 *   pickle_globals.c  the allowlist of globals and what "calling" one does.
 */
#ifndef VP_PICKLE_VM_H
#define VP_PICKLE_VM_H

#include "format/pickle.h"

/* ---- the machine's state ---------------------------------------------------- */
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

#define SMALL_INT_MIN (-16)
#define SMALL_INT_MAX 1023
/* Ints shared by every value that holds them (vp__pk_new_int). */
#define SMALL_INT_COUNT ((size_t)(SMALL_INT_MAX - SMALL_INT_MIN + 1))

/* ---- the machine (pickle.c) ---------------------------------------------- */
/* Every failure names the pickle, the opcode and where it is. */
__attribute__((format(printf, 3, 4)))
int vp__pk_fail(vm *m, int code, const char *fmt, ...);
/* Whether n more bytes fit the budget (config.h); records a refusal. */
bool vp__pk_fits(vm *m, size_t n);
/* The failure for an allocation refused (the budget, or the arena's cap). */
int vp__pk_nomem(vm *m);
/* Arena memory for the VM, within the budget. */
void *vp__pk_alloc(vm *m, size_t n);
char *vp__pk_strndup(vm *m, const char *s, size_t n);

/* ---- values (pickle_values.c) ------------------------------------------- */
vp_value *vp__pk_new_value(vm *m, vp_kind kind);
vp_value *vp__pk_new_int(vm *m, int64_t i);
/* STR or BYTES holding a copy of s[0..n). */
vp_value *vp__pk_new_text(vm *m, vp_kind kind, const void *s, size_t n);
/* A VP_V_OTHER marker of kind sub described by text. */
vp_value *vp__pk_new_other(vm *m, int sub, const char *text);
/* A tuple (or list/set) made of items[0..n). */
int vp__pk_new_seq(vm *m, vp_kind kind, vp_value **items, size_t n, vp_value **out);
/* An empty list, dict or set. */
vp_value *vp__pk_new_container(vm *m, vp_kind kind);
/* Raise c's depth to hold item; refuse nesting beyond the limit. */
int vp__pk_note_depth(vm *m, vp_value *c, const vp_value *item);
/* An int (not a big one) or a bool. */
bool vp__pk_is_intlike(const vp_value *v);
/* The 64-bit finaliser the hashes use (the memo's too). */
uint64_t vp__pk_mix(uint64_t x);
/* Room for want items in list/dict/set c. */
int vp__pk_reserve(vm *m, vp_value *c, size_t want);
/* dict[key] = val, or set.add(key) when val is NULL. */
int vp__pk_map_put(vm *m, vp_value *c, vp_value *key, vp_value *val);
int vp__pk_list_append(vm *m, vp_value *l, vp_value *item);
/* Fill a dict from (key, value) pairs or a dict; a set from a list, tuple or set. */
int vp__pk_dict_fill(vm *m, vp_value *d, const vp_value *from);
int vp__pk_set_fill(vm *m, vp_value *s, const vp_value *from);
/* UTF-8 as Python's "surrogatepass" takes it (surrogate code points allowed). */
bool vp__pk_utf8_ok(const uint8_t *s, size_t n);
/* The text opcodes' arguments: UTF-8 (checked), protocol 0 UNICODE and
 * STRING, and the Latin-1 bytes of a str. */
int vp__pk_new_str(vm *m, const uint8_t *s, size_t n, vp_value **out);
int vp__pk_raw_unicode_escape(vm *m, const uint8_t *s, size_t n, vp_value **out);
int vp__pk_escaped_string(vm *m, const uint8_t *s, size_t n, vp_value **out);
int vp__pk_latin1_bytes(vm *m, const vp_value *s, vp_value **out);
/* Numbers: INT/LONG text, LONG1/LONG4 bytes, FLOAT text. */
int vp__pk_int_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out);
int vp__pk_int_from_bytes(vm *m, const uint8_t *b, size_t n, vp_value **out);
int vp__pk_float_from_text(vm *m, const uint8_t *s, size_t n, vp_value **out);

/* ---- globals (pickle_globals.c) ------------------------------------------ */
/* The value GLOBAL / STACK_GLOBAL / INST push for module.name. */
int vp__pk_make_global(vm *m, const char *module, size_t mlen, const char *name, size_t nlen, vp_value **out);
/* REDUCE, INST and OBJ: fn(*args), for allowlisted globals only. */
int vp__pk_call_global(vm *m, vp_value *fn, vp_value *args, vp_value **out);
/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args). */
int vp__pk_new_object(vm *m, vp_value *cls, vp_value *args, vp_value **out);
/* BUILD: inst.__setstate__(state) for the kinds that take one. */
int vp__pk_build(vm *m, vp_value *inst, vp_value *state);

#endif
