/*
 * The safe pickle reader's globals (see pickle_vm.h): the allowlist, which
 * follows torch.load(weights_only=True), and a small C function for each
 * allowlisted global a pickle may "call". Nothing is imported or run.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "format/pickle_vm.h"

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
int vp__pk_make_global(vm *m, const char *module, size_t mlen, const char *name, size_t nlen, vp_value **out)
{
    /* Python 2 module names, as pickle's fix_imports maps them */
    if (mlen == 11 && !memcmp(module, "__builtin__", 11)) { module = "builtins"; mlen = 8; }
    else if (mlen == 8 && !memcmp(module, "copy_reg", 8)) { module = "copyreg"; mlen = 7; }
    if (!mlen || !nlen) return vp__pk_fail(m, VP_ERR_FORMAT, "global with an empty module or name");
    if (mlen + nlen > 1024) return vp__pk_fail(m, VP_ERR_LIMIT, "global name longer than 1024 bytes");
    if (!vp__pk_utf8_ok((const uint8_t *)module, mlen) || !vp__pk_utf8_ok((const uint8_t *)name, nlen))
        return vp__pk_fail(m, VP_ERR_FORMAT, "global name is not valid UTF-8");
    char full[1100];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    for (size_t i = 0; full[i]; i++)
        if ((unsigned char)full[i] < 0x20) return vp__pk_fail(m, VP_ERR_FORMAT, "global name holds a control character");

    bool torch_mod = mlen == 5 && !memcmp(module, "torch", 5);
    if (torch_mod) {
        for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) {
            if (strlen(k_dtypes[i].name) == nlen && !memcmp(k_dtypes[i].name, name, nlen)) {
                vp_value *v = vp__pk_new_other(m, VP_O_DTYPE, full);
                if (!v) return vp__pk_nomem(m);
                v->aux = k_dtypes[i].dt;
                *out = v;
                return VP_OK;
            }
        }
    }
    vp_value *v = vp__pk_new_other(m, VP_O_GLOBAL, full);
    if (!v) return vp__pk_nomem(m);
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
    if (!vp__pk_is_intlike(v)) return false;
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
        return vp__pk_fail(m, VP_ERR_FORMAT, "tensor %s is a %s, not a tuple", what, vp__value_kind_name(v));
    if (v->len > VP_MAX_DIMS)
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "tensor with %zu dimensions (at most %d)", v->len, VP_MAX_DIMS);
    for (size_t i = 0; i < v->len; i++)
        if (!as_int(v->items[i], &dst[i]))
            return vp__pk_fail(m, VP_ERR_FORMAT, "tensor %s holds a %s", what, vp__value_kind_name(v->items[i]));
    *ndim = (int)v->len;
    return VP_OK;
}

static int new_tensor_value(vm *m, const vp_value *st, vp_dtype dt, int64_t off,
                            const vp_value *size, const vp_value *stride, vp_value **out)
{
    if (st->kind != VP_V_OTHER || st->sub != VP_O_STORAGE)
        return vp__pk_fail(m, VP_ERR_FORMAT, "tensor rebuilt from a %s, not a storage", vp__value_kind_name(st));
    vp_tensor_rec *t = vp__pk_alloc(m, sizeof *t);
    vp_value *v = t ? vp__pk_new_value(m, VP_V_TENSOR) : NULL;
    if (!v) return vp__pk_nomem(m);
    int nd2 = 0, rc;
    if ((rc = int_tuple(m, size, "size", t->shape, &t->ndim))) return rc;
    if ((rc = int_tuple(m, stride, "stride", t->strides, &nd2))) return rc;
    if (nd2 != t->ndim) return vp__pk_fail(m, VP_ERR_FORMAT, "tensor size has %d dimensions but stride %d", t->ndim, nd2);
    if ((unsigned)dt >= VP_DTYPE_COUNT)
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "tensor of an element type vitport does not support (complex or quantized)");
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
        return vp__pk_fail(m, VP_ERR_FORMAT, "tensor rebuild with %zu arguments", a->len);
    int64_t off;
    if (!as_int(a->items[1], &off)) return vp__pk_fail(m, VP_ERR_FORMAT, "tensor storage offset is a %s", vp__value_kind_name(a->items[1]));
    const vp_value *st = a->items[0];
    vp_dtype dt = st->kind == VP_V_OTHER && st->sub == VP_O_STORAGE ? (vp_dtype)st->aux : VP_F32;
    if (gid == G_REBUILD_TENSOR_V3) {
        const vp_value *d = a->items[6];
        if (d->kind != VP_V_OTHER || d->sub != VP_O_DTYPE)
            return vp__pk_fail(m, VP_ERR_FORMAT, "tensor dtype is a %s", vp__value_kind_name(d));
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
                if (truthy(md->items[2 * i + 1])) return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "tensor with the conj/neg bit set");
    }
    return VP_OK;
}

static int set_state(vm *m, vp_value *target, vp_value *state)
{
    int rc = vp__pk_note_depth(m, target, state);
    if (!rc) target->state = state;
    return rc;
}

/* torch.nn.Parameter(data, requires_grad) and _rebuild_parameter*: the
 * tensor itself (vitport does not tell parameters from tensors). */
static int parameter(vm *m, const vp_value *a, vp_value **out)
{
    if (a->len < 1 || a->items[0]->kind != VP_V_TENSOR)
        return vp__pk_fail(m, VP_ERR_FORMAT,
                           "Parameter made from a %s, not a tensor", a->len ? vp__value_kind_name(a->items[0]) : "nothing");
    vp_value *t = a->items[0];
    t->u.t->requires_grad = a->len > 1 ? truthy(a->items[1]) : true;
    *out = t;
    return VP_OK;
}

static int bytes_from_args(vm *m, const vp_value *a, bool bytearray, vp_value **out)
{
    int rc = VP_OK;
    if (a->len == 0) {
        *out = vp__pk_new_text(m, VP_V_BYTES, "", 0);
        if (!*out) return vp__pk_nomem(m);
    } else if (a->len == 1 && a->items[0]->kind == VP_V_BYTES) {
        *out = vp__pk_new_text(m, VP_V_BYTES, a->items[0]->text, a->items[0]->len);
        if (!*out) return vp__pk_nomem(m);
    } else if (a->len == 2 && a->items[0]->kind == VP_V_STR && a->items[1]->kind == VP_V_STR) {
        const char *enc = a->items[1]->text;
        if (strcasecmp(enc, "latin1") && strcasecmp(enc, "latin-1") && strcasecmp(enc, "iso-8859-1"))
            return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "bytes encoded as '%.40s' (only latin-1 is supported)", enc);
        rc = vp__pk_latin1_bytes(m, a->items[0], out);
    } else {
        return vp__pk_fail(m, VP_ERR_FORMAT, "%s made from unexpected arguments", bytearray ? "bytearray" : "bytes");
    }
    if (!rc && bytearray) (*out)->sub = VP_SUB_BYTEARRAY;
    return rc;
}

static int device(vm *m, const vp_value *a, vp_value **out)
{
    char buf[96];
    if (a->len < 1 || a->len > 2 || a->items[0]->kind != VP_V_STR || a->items[0]->len > 64)
        return vp__pk_fail(m, VP_ERR_FORMAT, "torch.device made from unexpected arguments");
    int64_t idx;
    if (a->len == 2 && a->items[1]->kind != VP_V_NONE) {
        if (!as_int(a->items[1], &idx)) return vp__pk_fail(m, VP_ERR_FORMAT, "torch.device index is not an integer");
        snprintf(buf, sizeof buf, "%s:%lld", a->items[0]->text, (long long)idx);
    } else {
        snprintf(buf, sizeof buf, "%s", a->items[0]->text);
    }
    *out = vp__pk_new_other(m, VP_O_DEVICE, buf);
    return *out ? VP_OK : vp__pk_nomem(m);
}

/* An inert record: class name, the arguments it was made with; BUILD adds state. */
static int inert(vm *m, const char *cls, vp_value *args, vp_value **out)
{
    vp_value *v = vp__pk_new_value(m, VP_V_OBJECT);
    if (!v) return vp__pk_nomem(m);
    v->text = cls;
    v->depth = 1;
    int rc = vp__pk_note_depth(m, v, args);
    if (rc) return rc;
    v->args = args;
    *out = v;
    return VP_OK;
}

static int tail_tuple(vm *m, const vp_value *a, size_t from, vp_value **out)
{
    return vp__pk_new_seq(m, VP_V_TUPLE, a->items + from, a->len - from, out);
}

/* torch._tensor._rebuild_from_type_v2(func, new_type, args, state) */
static int rebuild_from_type(vm *m, const vp_value *a, vp_value **out)
{
    if (a->len != 4) return vp__pk_fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 with %zu arguments", a->len);
    int t = gid_of(a->items[1]);
    if (t != G_TENSOR_TYPE && t != G_PARAMETER)
        return vp__pk_fail(m, VP_ERR_REFUSED, "refused tensor subclass '%s' (not on the allowlist)",
                           a->items[1]->text ? a->items[1]->text : vp__value_kind_name(a->items[1]));
    if (a->items[2]->kind != VP_V_TUPLE) return vp__pk_fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 arguments are not a tuple");
    int rc = vp__pk_call_global(m, a->items[0], a->items[2], out);
    if (rc) return rc;
    if ((*out)->kind != VP_V_TENSOR) return vp__pk_fail(m, VP_ERR_FORMAT, "_rebuild_from_type_v2 did not rebuild a tensor");
    return truthy(a->items[3]) ? set_state(m, *out, a->items[3]) : VP_OK;
}

/* What REDUCE, INST and OBJ do: call fn(*args). Only allowlisted globals
 * are "called" (each by a small C function); instantiating helpers give
 * inert records; anything else is refused. */
int vp__pk_call_global(vm *m, vp_value *fn, vp_value *args, vp_value **out)
{
    if (args->kind != VP_V_TUPLE) return vp__pk_fail(m, VP_ERR_FORMAT, "call arguments are a %s, not a tuple", vp__value_kind_name(args));
    int gid = gid_of(fn);
    if (gid < 0) return vp__pk_fail(m, VP_ERR_FORMAT, "call of a %s, which is not a global", vp__value_kind_name(fn));
    const vp_value *a0 = args->len ? args->items[0] : NULL;
    vp_value *v = NULL;
    int rc;
    switch (gid) {
    case G_REBUILD_TENSOR: case G_REBUILD_TENSOR_V2: case G_REBUILD_TENSOR_V3:
        return rebuild_tensor(m, gid, args, out);
    case G_REBUILD_PARAMETER:
        if (args->len != 3) return vp__pk_fail(m, VP_ERR_FORMAT, "_rebuild_parameter with %zu arguments", args->len);
        return parameter(m, args, out);
    case G_REBUILD_PARAMETER_STATE:
        if (args->len != 4) return vp__pk_fail(m, VP_ERR_FORMAT, "_rebuild_parameter_with_state with %zu arguments", args->len);
        if ((rc = parameter(m, args, out))) return rc;
        return truthy(args->items[3]) ? set_state(m, *out, args->items[3]) : VP_OK;
    case G_REBUILD_FROM_TYPE_V2:
        return rebuild_from_type(m, args, out);
    case G_PARAMETER:
        return parameter(m, args, out);
    case G_TORCH_UNSUPPORTED:
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED,
                           "'%s' rebuilds a kind of tensor vitport does not support (quantized, sparse, nested, meta or device)", fn->text);
    case G_SIZE:
        if (args->len != 1 || (a0->kind != VP_V_TUPLE && a0->kind != VP_V_LIST))
            return vp__pk_fail(m, VP_ERR_FORMAT, "torch.Size made from unexpected arguments");
        for (size_t i = 0; i < a0->len; i++)
            if (!vp__pk_is_intlike(a0->items[i]))
                return vp__pk_fail(m, VP_ERR_FORMAT, "torch.Size holds a %s", vp__value_kind_name(a0->items[i]));
        return vp__pk_new_seq(m, VP_V_TUPLE, a0->items, a0->len, out);
    case G_DEVICE:
        return device(m, args, out);
    case G_GET_LAYOUT:
        if (args->len != 1 || a0->kind != VP_V_STR || a0->len > 64)
            return vp__pk_fail(m, VP_ERR_FORMAT, "_get_layout made from unexpected arguments");
        *out = vp__pk_new_other(m, VP_O_LAYOUT, a0->text);
        return *out ? VP_OK : vp__pk_nomem(m);
    case G_ORDERED_DICT:
        if (!(v = vp__pk_new_container(m, VP_V_DICT))) return vp__pk_nomem(m);
        v->sub = VP_SUB_ORDERED;
        if (args->len > 1) return vp__pk_fail(m, VP_ERR_FORMAT, "OrderedDict made from %zu arguments", args->len);
        if (args->len == 1 && (rc = vp__pk_dict_fill(m, v, a0))) return rc;
        *out = v;
        return VP_OK;
    case G_SET: case G_FROZENSET:
        if (!(v = vp__pk_new_container(m, VP_V_SET))) return vp__pk_nomem(m);
        if (gid == G_FROZENSET) v->sub = VP_SUB_FROZEN;
        if (args->len > 1) return vp__pk_fail(m, VP_ERR_FORMAT, "set made from %zu arguments", args->len);
        if (args->len == 1 && (rc = vp__pk_set_fill(m, v, a0))) return rc;
        *out = v;
        return VP_OK;
    case G_BYTEARRAY: case G_BYTES:
        return bytes_from_args(m, args, gid == G_BYTEARRAY, out);
    case G_CODECS_ENCODE:
        if (args->len != 2 || a0->kind != VP_V_STR) return vp__pk_fail(m, VP_ERR_FORMAT, "_codecs.encode made from unexpected arguments");
        return bytes_from_args(m, args, false, out);
    case G_SLICE: case G_COMPLEX:
        if (args->len > (gid == G_SLICE ? 3u : 2u)) return vp__pk_fail(m, VP_ERR_FORMAT, "%s with %zu arguments", fn->text, args->len);
        if (!(v = vp__pk_new_other(m, gid == G_SLICE ? VP_O_SLICE : VP_O_COMPLEX, gid == G_SLICE ? "slice" : "complex")))
            return vp__pk_nomem(m);
        if ((rc = vp__pk_note_depth(m, v, args))) return rc;
        v->args = args;
        *out = v;
        return VP_OK;
    case G_RECONSTRUCTOR:
        if (args->len != 3 || gid_of(a0) < 0) return vp__pk_fail(m, VP_ERR_FORMAT, "copyreg._reconstructor made from unexpected arguments");
        if ((rc = tail_tuple(m, args, 1, &v))) return rc;
        return inert(m, a0->text, v, out);
    case G_NEWOBJ_FN:
        if (args->len < 1 || gid_of(a0) < 0) return vp__pk_fail(m, VP_ERR_FORMAT, "%s made from unexpected arguments", fn->text);
        if ((rc = tail_tuple(m, args, 1, &v))) return rc;
        return inert(m, a0->text, v, out);
    case G_INERT_CALL:
        return inert(m, fn->text, args, out);
    case G_STORAGE_TYPE:
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "storage '%s' built by a call (only persistent storages are supported)", fn->text);
    case G_TENSOR_TYPE:
        return vp__pk_fail(m, VP_ERR_UNSUPPORTED, "tensor built by calling '%s'", fn->text);
    default:
        return vp__pk_fail(m, VP_ERR_REFUSED, "refused to call global '%s' (not on the allowlist)", fn->text);
    }
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args) — no __init__ runs, so an
 * unknown class becomes an inert record rather than a refusal. */
int vp__pk_new_object(vm *m, vp_value *cls, vp_value *args, vp_value **out)
{
    if (args->kind != VP_V_TUPLE) return vp__pk_fail(m, VP_ERR_FORMAT, "NEWOBJ arguments are a %s, not a tuple", vp__value_kind_name(args));
    int gid = gid_of(cls);
    if (gid < 0) return vp__pk_fail(m, VP_ERR_FORMAT, "NEWOBJ of a %s, which is not a class", vp__value_kind_name(cls));
    switch (gid) {
    case G_UNKNOWN: case G_INERT_CALL:
        return inert(m, cls->text, args, out);
    case G_PARAMETER: case G_SIZE: case G_DEVICE: case G_FROZENSET: case G_BYTES: case G_COMPLEX:
        return vp__pk_call_global(m, cls, args, out);   /* __new__ does the work for these */
    case G_ORDERED_DICT: case G_SET: case G_BYTEARRAY:
        return vp__pk_call_global(m, cls, m->empty_tuple, out);   /* __new__ gives an empty one */
    default:
        return vp__pk_fail(m, VP_ERR_FORMAT, "NEWOBJ of '%s', which is not a class vitport can instantiate", cls->text);
    }
}

int vp__pk_build(vm *m, vp_value *inst, vp_value *state)
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
    return vp__pk_fail(m, VP_ERR_FORMAT, "BUILD on a %s", vp__value_kind_name(inst));
}

bool vp__value_storage_type(const vp_value *v, vp_dtype *dt)
{
    if (!v || gid_of(v) != G_STORAGE_TYPE) return false;
    *dt = (vp_dtype)v->u.i;
    return true;
}
