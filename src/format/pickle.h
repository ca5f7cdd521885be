/*
 * The safe pickle reader: a value builder for pickle protocols 0-5 that
 * executes nothing. Globals are looked up in a fixed allowlist (tensor
 * rebuild functions, storage types, a few containers); a global that is
 * only instantiated (NEWOBJ, copyreg._reconstructor, numpy scalars) is kept
 * as an inert record, and one that would have to be called to build a
 * value (REDUCE/INST/OBJ of os.system, builtins.eval, ...) is refused with
 * VP_ERR_REFUSED. Every value lives in src->arena, whose cap bounds memory.
 */
#ifndef VP_PICKLE_H
#define VP_PICKLE_H

#include "core/internal.h"

/* What a VP_V_OTHER value marks (vp_value.sub). */
enum vp_other_kind {
    VP_O_GLOBAL = 1,  /* a global name: text "module.name", aux its allowlist id */
    VP_O_STORAGE,     /* a torch storage: u.i index in src->storages, aux dtype, len numel */
    VP_O_DTYPE,       /* torch.float32 etc: text "torch.float32", aux vp_dtype or VP_DTYPE_COUNT */
    VP_O_DEVICE,      /* torch.device: text "cpu", "cuda:0" */
    VP_O_SLICE,       /* builtins.slice: args (start, stop, step) */
    VP_O_LAYOUT,      /* torch.strided etc (from torch.serialization._get_layout) */
    VP_O_COMPLEX      /* builtins.complex: args (real, imag) */
};

/* Flags in vp_value.sub for the other kinds. */
enum {
    VP_SUB_BIGINT = 1,    /* VP_V_INT beyond int64: text holds the decimal digits */
    VP_SUB_BYTEARRAY = 1, /* VP_V_BYTES built as a bytearray */
    VP_SUB_FROZEN = 1,    /* VP_V_SET that is a frozenset */
    VP_SUB_ORDERED = 1    /* VP_V_DICT that is a collections.OrderedDict / Counter */
};

/* A rebuilt tensor: a view of one storage. */
typedef struct vp_tensor_rec {
    vp_value *storage;           /* VP_O_STORAGE marker */
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
    int64_t strides[VP_MAX_DIMS];
    int64_t offset;              /* storage offset, in elements */
    bool requires_grad;
    long index;                  /* first entry in src->all naming it, -1 until named */
} vp_tensor_rec;

/* 64 bytes: a one-byte opcode may allocate one, and the arena allows 64
 * bytes per input byte. */
struct vp_value {
    uint8_t kind;      /* vp_kind */
    uint8_t sub;       /* VP_SUB_* flag, or vp_other_kind for VP_V_OTHER */
    uint16_t depth;    /* nesting depth (1 + deepest item) as built */
    uint32_t aux;      /* DICT/SET: hash index slots; OTHER: global id / dtype */
    const char *text;  /* STR/BYTES bytes (NUL-terminated), big INT digits,
                          OBJECT class name, OTHER description */
    size_t len;        /* STR/BYTES bytes; TUPLE/LIST/SET items; DICT pairs;
                          storage numel */
    size_t cap;        /* allocated items (DICT: pairs) */
    vp_value **items;  /* TUPLE/LIST/SET items; DICT key i at [2i], value at [2i+1] */
    vp_value *args;    /* OBJECT/OTHER: the arguments it was made with (a tuple) */
    vp_value *state;   /* OBJECT/TENSOR/ordered DICT: what BUILD gave it */
    union {
        int64_t i;         /* BOOL, INT, storage index */
        double f;          /* FLOAT */
        vp_tensor_rec *t;  /* TENSOR */
        uint32_t *index;   /* DICT/SET hash index (NULL while small) */
    } u;
};

/*
 * Persistent-id loader: given the pid value (for torch, a tuple
 * ('storage', storage_type, key, location, numel[, view_metadata])), set
 * *out to the value it stands for. Return VP_OK or an error (message set
 * with vp__err on the source).
 */
typedef int (*vp_persid_fn)(void *ud, vp_source *src, const vp_value *pid, vp_value **out);

/*
 * Run the pickle VM over data[0..n). `label` names the pickle in messages
 * ("archive/data.pkl"). On success *out is the value STOP returned and
 * *consumed (if not NULL) the bytes up to and including STOP, so that
 * concatenated pickles (the legacy torch format) can be read one after
 * another. persid may be NULL: a persistent id is then an error.
 */
int vp__pickle_load(vp_source *src, const uint8_t *data, size_t n, const char *label,
                    vp_persid_fn persid, void *ud, vp_value **out, size_t *consumed);

/* A source with only an arena and no file, for running the VM on bytes
 * (tests, fuzzing). Close with vp_source_close. NULL when out of memory. */
vp_source *vp__pickle_scratch_source(size_t arena_cap);

/* ---- helpers for the torch readers ------------------------------------ */
/* A new storage marker (arena). NULL when the arena is full. */
vp_value *vp__value_new_storage(vp_source *src, long index, vp_dtype dtype, uint64_t numel, const char *key);
/* True when v is the global of a storage type (torch.FloatStorage, ...);
 * *dt is its element type, or VP_DTYPE_COUNT for one vitport cannot hold
 * (complex, quantized). */
bool vp__value_storage_type(const vp_value *v, vp_dtype *dt);
/* True when v is a str equal to s (also a bytes value, as Python 2 pickles give). */
bool vp__value_is_str(const vp_value *v, const char *s);
/* "str", "dict", "tensor", "object argparse.Namespace"-style short name. */
const char *vp__value_kind_name(const vp_value *v);

#endif
