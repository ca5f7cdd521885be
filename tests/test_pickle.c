/* The safe pickle reader, on hand-written pickles. Each pickle's expected
 * value is what CPython's pickle.loads gives for the same bytes (checked
 * when the test was written; the comments show it); the refusals are the
 * cases where pickle.loads would run code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/pickle.h"
#include "test.h"
#include "test_util.h"

/* ---- helpers -------------------------------------------------------------- */
static size_t unhex(const char *hex, uint8_t **out)
{
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *out = b;
    return n;
}

/* A persistent-id loader like the torch zip reader's, without a file:
 * ('storage', type, key, location, numel) -> a storage marker. */
static int test_persid(void *ud, vp_source *src, const vp_value *pid, vp_value **out)
{
    (void)ud;
    vp_dtype dt;
    if (vp_value_kind(pid) != VP_V_TUPLE || vp_value_len(pid) != 5 || !vp__value_is_str(vp_value_item(pid, 0), "storage") ||
        !vp__value_storage_type(vp_value_item(pid, 1), &dt))
        return vp__err(src, VP_ERR_FORMAT, "bad pid");
    *out = vp__value_new_storage(src, 0, dt, (uint64_t)vp_value_int(vp_value_item(pid, 4)), vp_value_str(vp_value_item(pid, 2)));
    return *out ? VP_OK : VP_ERR_NOMEM;
}

typedef struct run { vp_source *src; vp_value *v; int rc; size_t used; } run;

static run load_bytes(const uint8_t *b, size_t n, size_t arena_cap)
{
    run r;
    r.src = vp__pickle_scratch_source(arena_cap);
    r.v = NULL;
    r.used = 0;
    r.rc = vp__pickle_load(r.src, b, n, "test.pkl", test_persid, NULL, &r.v, &r.used);
    return r;
}

static run load_hex(const char *hex)
{
    uint8_t *b;
    size_t n = unhex(hex, &b);
    run r = load_bytes(b, n, 64u << 20);
    free(b);
    return r;
}

static void done(run *r) { vp_source_close(r->src); }

static const vp_value *get(const vp_value *d, const char *k) { return vp_value_get(d, k); }

/* ---- protocol 0 ---------------------------------------------------------------- */
static void test_protocol0(void)
{
    /* (lp0 I1 a I-5 a L123456789012345678901234567890L a F1.5 a S'ab\ncd\x41\101' p1 a
     * Vcaf\u00e9 \U0001f600 p2 a I01 a I00 a N a (dp3 S'k' p4 g1 s I7 L-3L s a (I1 I2 tp5 a .
     * = [1, -5, 123456789012345678901234567890, 1.5, 'ab\ncdAA', 'café 😀', True, False, None,
     *    {'k': 'ab\ncdAA', 7: -3}, (1, 2)] */
    static const char p0[] =
        "(lp0\nI1\naI-5\naL123456789012345678901234567890L\naF1.5\naS'ab\\ncd\\x41\\101'\np1\na"
        "Vcaf\\u00e9 \\U0001f600\np2\naI01\naI00\naNa(dp3\nS'k'\np4\ng1\nsI7\nL-3L\nsa(I1\nI2\ntp5\na.";
    run r = load_bytes((const uint8_t *)p0, sizeof p0 - 1, 1u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *l = r.v;
    CHECK_EQ_INT(vp_value_kind(l), VP_V_LIST);
    CHECK_EQ_INT(vp_value_len(l), 11);
    CHECK_EQ_INT(r.used, sizeof p0 - 1);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 0)), 1);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 1)), -5);
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 2)), VP_V_INT);
    CHECK_STR(vp_value_str(vp_value_item(l, 2)), "123456789012345678901234567890");
    CHECK(vp_value_float(vp_value_item(l, 3)) == 1.5);
    CHECK_STR(vp_value_str(vp_value_item(l, 4)), "ab\ncdAA");
    CHECK_STR(vp_value_str(vp_value_item(l, 5)), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 6)), VP_V_BOOL);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 6)), 1);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 7)), 0);
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 8)), VP_V_NONE);
    const vp_value *d = vp_value_item(l, 9);
    CHECK_EQ_INT(vp_value_kind(d), VP_V_DICT);
    CHECK_EQ_INT(vp_value_len(d), 2);
    CHECK(vp_value_item(l, 4) == get(d, "k"));   /* the memo shares the value */
    CHECK_EQ_INT(vp_value_int(vp_value_key(d, 1)), 7);
    CHECK_EQ_INT(vp_value_int(vp_value_item(d, 1)), -3);
    const vp_value *t = vp_value_item(l, 10);
    CHECK_EQ_INT(vp_value_kind(t), VP_V_TUPLE);
    CHECK_EQ_INT(vp_value_int(vp_value_item(t, 1)), 2);
    CHECK(vp_value_item(t, 2) == NULL);
    done(&r);
}

/* ---- protocol 2: integers of every size, floats, memo ------------------------------ */
static void test_protocol2_ints(void)
{
    /* [1, 256, -1, 0, 2**64, -2**64, -2**63, 2**63, 32767, -1, 1.5, True, False, None, L, L]
     * where L is the list itself (BINGET 0, LONG_BINPUT 256, LONG_BINGET 256) */
    run r = load_hex("80025d7100284b014d00014affffffff8a008a090000000000000000018a090000000000000000ff8a08000000"
                     "00000000808b090000000000000000000080008a02ff7f8a01ff473ff800000000000088894e680072000100"
                     "006a00010000652e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *l = r.v;
    CHECK_EQ_INT(vp_value_len(l), 16);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 0)), 1);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 1)), 256);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 2)), -1);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 3)), 0);
    CHECK(vp_value_str(vp_value_item(l, 3)) == NULL);
    CHECK_STR(vp_value_str(vp_value_item(l, 4)), "18446744073709551616");
    CHECK_STR(vp_value_str(vp_value_item(l, 5)), "-18446744073709551616");
    CHECK(vp_value_int(vp_value_item(l, 6)) == INT64_MIN);
    CHECK(vp_value_str(vp_value_item(l, 6)) == NULL);
    CHECK_STR(vp_value_str(vp_value_item(l, 7)), "9223372036854775808");
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 8)), 32767);
    CHECK_EQ_INT(vp_value_int(vp_value_item(l, 9)), -1);
    CHECK(vp_value_float(vp_value_item(l, 10)) == 1.5);
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 11)), VP_V_BOOL);
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 13)), VP_V_NONE);
    CHECK(vp_value_item(l, 14) == l);   /* a list may hold itself, as in Python */
    CHECK(vp_value_item(l, 15) == l);
    done(&r);

    /* LONG1 of 40 bytes: -(2**319) + 1 -> its decimal digits */
    uint8_t b[64] = {0x80, 0x02, 0x8a, 40};
    b[4] = 1;
    for (int i = 5; i < 44; i++) b[i] = 0;
    b[43] = 0x80;            /* two's complement of -(2**319) is 0x80 00..00; +1 */
    b[44] = '.';
    r = load_bytes(b, 45, 1u << 20);
    CHECK_EQ_INT(r.rc, VP_OK);
    CHECK_STR(vp_value_str(r.v), "-1067993517960455041197510853084776057301352261178326384973520803911109862890320275011481043468287");
    done(&r);
}

/* ---- protocol 4 and 5 ------------------------------------------------------------------- */
static void test_protocol4(void)
{
    /* FRAME; {'s': {1, 2}, 'fs': frozenset({3, 'a'}), 'u8': '☃', 'b8': b'\x00\xff', 'sb': b'abc',
     *  'ns': argparse.Namespace(lr=0.1, arch='vit_small') (NEWOBJ_EX + BUILD), 'm': 's' (memo)} */
    run r = load_hex("8004959e000000000000007d94288c0173948f94284b014b024b01908c02667394284b038c01619491948c02"
                     "7538948d0300000000000000e29883948c026238948e020000000000000000ff948c027362944303616263948c"
                     "026e73948c086172677061727365948c094e616d657370616365949394297d9492947d94288c026c7294473f"
                     "b999999999999a8c0461726368948c097669745f736d616c6c9475628c016d946801752e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *d = r.v;
    CHECK_EQ_INT(vp_value_len(d), 7);
    const vp_value *s = get(d, "s");
    CHECK_EQ_INT(vp_value_kind(s), VP_V_SET);
    CHECK_EQ_INT(vp_value_len(s), 2);    /* {1, 2}: the second 1 is the same element */
    const vp_value *fs = get(d, "fs");
    CHECK_EQ_INT(vp_value_kind(fs), VP_V_SET);
    CHECK_EQ_INT(vp_value_len(fs), 2);
    CHECK_STR(vp_value_str(get(d, "u8")), "\xe2\x98\x83");
    const vp_value *b8 = get(d, "b8");
    CHECK_EQ_INT(vp_value_kind(b8), VP_V_BYTES);
    CHECK(vp_value_len(b8) == 2 && !memcmp(vp_value_str(b8), "\x00\xff", 2));
    CHECK_STR(vp_value_str(get(d, "sb")), "abc");
    const vp_value *ns = get(d, "ns");
    CHECK_EQ_INT(vp_value_kind(ns), VP_V_OBJECT);
    CHECK_STR(vp_value_str(ns), "argparse.Namespace");
    CHECK_EQ_INT(vp_value_len(vp_value_args(ns)), 0);
    CHECK(vp_value_float(get(vp_value_state(ns), "lr")) == 0.1);
    CHECK_STR(vp_value_str(get(vp_value_state(ns), "arch")), "vit_small");
    CHECK(get(d, "m") == vp_value_key(d, 0));   /* MEMOIZE numbered it 1 */
    done(&r);

    /* protocol 5: BYTEARRAY8 b'xyz' + READONLY_BUFFER */
    r = load_hex("800596030000000000000078797a982e");
    CHECK_EQ_INT(r.rc, VP_OK);
    CHECK_EQ_INT(vp_value_kind(r.v), VP_V_BYTES);
    CHECK_STR(vp_value_str(r.v), "xyz");
    done(&r);
    /* NEXT_BUFFER: out-of-band data is not supported */
    r = load_hex("8005972e");
    CHECK_EQ_INT(r.rc, VP_ERR_UNSUPPORTED);
    done(&r);
}

/* ---- allowlisted globals ------------------------------------------------------------------ */
static void test_globals(void)
{
    /* OrderedDict() via REDUCE, then SETITEMS b=2, a=1, set=set([5,6,5]), enc=_codecs.encode('é\0\1', 'latin1'),
     * ba=bytearray('hi', 'latin-1'); then BUILD {'_metadata': {}} */
    run r = load_hex("800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858010000006271024b025801"
                     "0000006171034b0158030000007365747104635f5f6275696c74696e5f5f0a7365740a5d7105284b054b064b05"
                     "65855271065803000000656e637107635f636f646563730a656e636f64650a5804000000c3a9000158060000006c"
                     "6174696e31865258020000006261635f5f6275696c74696e5f5f0a6279746561727261790a5802000000686958"
                     "070000006c6174696e2d318652757d58090000005f6d657461646174617d73622e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *d = r.v;
    CHECK_EQ_INT(vp_value_kind(d), VP_V_DICT);
    CHECK_STR(vp_value_str(vp_value_key(d, 0)), "b");   /* insertion order kept */
    CHECK_STR(vp_value_str(vp_value_key(d, 1)), "a");
    CHECK_EQ_INT(vp_value_len(get(d, "set")), 2);
    const vp_value *enc = get(d, "enc");
    CHECK_EQ_INT(vp_value_kind(enc), VP_V_BYTES);
    CHECK(vp_value_len(enc) == 3 && !memcmp(vp_value_str(enc), "\xe9\x00\x01", 3));
    CHECK_STR(vp_value_str(get(d, "ba")), "hi");
    CHECK(vp_value_get(vp_value_state(d), "_metadata") != NULL);
    done(&r);

    /* copyreg._reconstructor(__main__.Foo, object, None) + BUILD {'x': 3}: an inert record */
    r = load_hex("63636f70795f7265670a5f7265636f6e7374727563746f720a28635f5f6d61696e5f5f0a466f6f0a635f5f6275"
                 "696c74696e5f5f0a6f626a6563740a4e74522864532778270a49330a73622e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    CHECK_EQ_INT(vp_value_kind(r.v), VP_V_OBJECT);
    CHECK_STR(vp_value_str(r.v), "__main__.Foo");
    CHECK_EQ_INT(vp_value_int(get(vp_value_state(r.v), "x")), 3);
    done(&r);

    /* _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 12), 2, (2, 3), (1, 2), True, OrderedDict()) */
    r = load_hex("800263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a2828580700000073746f72"
                 "61676563746f7263680a466c6f617453746f726167650a58010000003058030000006370754b0c74514b024b024b"
                 "03864b014b02868863636f6c6c656374696f6e730a4f726465726564446963740a295274522e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    CHECK_EQ_INT(vp_value_kind(r.v), VP_V_TENSOR);
    if (vp_value_kind(r.v) == VP_V_TENSOR) {
        const vp_tensor_rec *t = r.v->u.t;
        CHECK_EQ_INT(t->dtype, VP_F32);
        CHECK_EQ_INT(t->ndim, 2);
        CHECK(t->shape[0] == 2 && t->shape[1] == 3 && t->strides[0] == 1 && t->strides[1] == 2);
        CHECK_EQ_INT(t->offset, 2);
        CHECK(t->requires_grad);
        CHECK_STR(vp_value_str(t->storage), "0");
        CHECK_EQ_INT(vp_value_tensor(r.v), -1);   /* not named: no source table */
    }
    done(&r);

    /* torch.Size((2, 3)), torch.device('cuda', 1), torch.bfloat16, Parameter(tensor) via NEWOBJ */
    static const char p[] =
        "\x80\x02(ctorch\nSize\n(K\x02K\x03t\x85R"
        "ctorch\ndevice\nX\x04\x00\x00\x00" "cudaK\x01\x86R"
        "ctorch\nbfloat16\n"
        "ctorch.nn.parameter\nParameter\n"
        "ctorch._utils\n_rebuild_tensor\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00"
        "7X\x03\x00\x00\x00" "cpuK\x04tQK\x00K\x04\x85K\x01\x85tR\x89\x86\x81"
        "l.";
    r = load_bytes((const uint8_t *)p, sizeof p - 1, 1u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *l = r.v;
    CHECK_EQ_INT(vp_value_kind(vp_value_item(l, 0)), VP_V_TUPLE);
    CHECK_EQ_INT(vp_value_int(vp_value_item(vp_value_item(l, 0), 1)), 3);
    CHECK_STR(vp_value_str(vp_value_item(l, 1)), "cuda:1");
    CHECK_STR(vp_value_str(vp_value_item(l, 2)), "torch.bfloat16");
    const vp_value *pt = vp_value_item(l, 3);
    CHECK_EQ_INT(vp_value_kind(pt), VP_V_TENSOR);
    if (vp_value_kind(pt) == VP_V_TENSOR) {
        CHECK_EQ_INT(pt->u.t->dtype, VP_F16);
        CHECK(!pt->u.t->requires_grad);   /* Parameter(t, False) */
    }
    done(&r);
}

/* NumPy values in a checkpoint (pickle.dumps({'acc': np.float64(1.5), 'arr': np.arange(3, dtype=np.int32)},
 * protocol=2) with numpy 2): numpy._core.multiarray.scalar, numpy.dtype and _reconstruct are called
 * through REDUCE but only to instantiate, so they are kept as inert records with their arguments and state. */
static void test_numpy_inert(void)
{
    run r = load_hex("80027d71002858030000006163637101636e756d70792e5f636f72652e6d756c746961727261790a7363616c61720a"
                     "7102636e756d70790a64747970650a71035802000000663871048988877105527106284b0358010000003c71074e4e"
                     "4e4affffffff4affffffff4b0074710862635f636f646563730a656e636f64650a71095809000000000000000000c3"
                     "b83f710a58060000006c6174696e31710b86710c52710d86710e52710f58030000006172727110636e756d70792e5f"
                     "636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7111636e756d70790a6e6461727261790a71"
                     "124b0085711368095801000000627114680b867115527116877117527118284b014b03857119680358020000006934"
                     "711a898887711b52711c284b0368074e4e4e4affffffff4affffffff4b0074711d62896809580c0000000000000001"
                     "00000002000000711e680b86711f52712074712162752e");
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const vp_value *acc = get(r.v, "acc"), *arr = get(r.v, "arr");
    CHECK_EQ_INT(vp_value_kind(acc), VP_V_OBJECT);
    CHECK_STR(vp_value_str(acc), "numpy._core.multiarray.scalar");
    const vp_value *a = vp_value_args(acc);
    CHECK_EQ_INT(vp_value_len(a), 2);
    CHECK_STR(vp_value_str(vp_value_item(a, 0)), "numpy.dtype");    /* the dtype record */
    CHECK_EQ_INT(vp_value_len(vp_value_state(vp_value_item(a, 0))), 8); /* its BUILD state */
    const vp_value *raw = vp_value_item(a, 1);                       /* the float64's 8 bytes */
    CHECK(vp_value_kind(raw) == VP_V_BYTES && vp_value_len(raw) == 8 && !memcmp(vp_value_str(raw), "\0\0\0\0\0\0\xf8\x3f", 8));
    CHECK_STR(vp_value_str(arr), "numpy._core.multiarray._reconstruct");
    const vp_value *st = vp_value_state(arr);
    CHECK_EQ_INT(vp_value_len(st), 5);
    CHECK(vp_value_len(vp_value_item(st, 4)) == 12);                  /* 3 int32 values */
    done(&r);
}

/* ---- refusals ------------------------------------------------------------------------------ */
static void expect_refused(const char *hex, const char *global)
{
    run r = load_hex(hex);
    CHECKF(r.rc == VP_ERR_REFUSED, "%s: rc %d (%s)", global, r.rc, vp_source_errmsg(r.src));
    char want[128];
    snprintf(want, sizeof want, "'%s'", global);
    CHECKF(tu_has(vp_source_errmsg(r.src), want), "message '%s' names %s", vp_source_errmsg(r.src), want);
    CHECK(!strchr(vp_source_errmsg(r.src), '\n'));
    done(&r);
}

static void test_refusals(void)
{
    expect_refused("8002636f730a73797374656d0a5802000000696485522e", "os.system");                   /* os.system('id') */
    expect_refused("8002635f5f6275696c74696e5f5f0a6576616c0a5803000000312b3185522e", "builtins.eval"); /* eval('1+1') */
    expect_refused("80048c0a73756270726f636573738c05506f70656e938c026c738585522e", "subprocess.Popen");
    expect_refused("63706f7369780a73797374656d0a28532774727565270a74522e", "posix.system");          /* protocol 0 */
    expect_refused("28532774727565270a696f730a73797374656d0a2e", "os.system");                      /* INST */
    expect_refused("800128636f730a73797374656d0a5804000000747275656f2e", "os.system");              /* OBJ */
    run r = load_hex("800263746f7263682e5f7574696c730a5f72656275696c645f71746f6e736f720a292e");     /* unknown torch._utils name */
    CHECK_EQ_INT(r.rc, VP_OK);   /* naming a global is fine, only calling is checked */
    done(&r);

    /* INST of an unknown class with no arguments would still run code in Python 2: refused */
    static const char inst[] = "(imymodule\nMyClass\n.";
    r = load_bytes((const uint8_t *)inst, sizeof inst - 1, 1u << 20);
    CHECK_EQ_INT(r.rc, VP_ERR_REFUSED);
    CHECK(tu_has(vp_source_errmsg(r.src), "'mymodule.MyClass'"));
    done(&r);

    /* _rebuild_from_type_v2(_rebuild_tensor, torch.<cls>, (storage, 0, (), ()), {}): a 0-d tensor */
#define FROM_TYPE(cls) \
    "\x80\x02" "ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor\nctorch\n" cls "\n" \
    "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQK\x00)" \
    ")t}tR."
    /* a tensor subclass that is not allowlisted */
    static const char sub[] = FROM_TYPE("MyTensor");
    r = load_bytes((const uint8_t *)sub, sizeof sub - 1, 1u << 20);
    CHECK_EQ_INT(r.rc, VP_ERR_REFUSED);
    CHECK(tu_has(vp_source_errmsg(r.src), "torch.MyTensor"));
    done(&r);

    /* the same through torch.Tensor is accepted */
    static const char ok[] = FROM_TYPE("Tensor");
#undef FROM_TYPE
    r = load_bytes((const uint8_t *)ok, sizeof ok - 1, 1u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    CHECK_EQ_INT(vp_value_kind(r.v), VP_V_TENSOR);
    done(&r);

    /* quantized tensors are not supported (an allowlisted torch function vitport does not implement) */
    static const char q[] = "\x80\x02" "ctorch._utils\n_rebuild_qtensor\n)R.";
    r = load_bytes((const uint8_t *)q, sizeof q - 1, 1u << 20);
    CHECK_EQ_INT(r.rc, VP_ERR_UNSUPPORTED);
    done(&r);
}

/* ---- malformed input and limits ------------------------------------------------------------ */
static void expect_error(const char *what, const uint8_t *b, size_t n, int code, const char *part)
{
    run r = load_bytes(b, n, 4u << 20);
    CHECKF(r.rc == code, "%s: rc %d, expected %d (%s)", what, r.rc, code, vp_source_errmsg(r.src));
    if (part) CHECKF(tu_has(vp_source_errmsg(r.src), part), "%s: message '%s' lacks '%s'", what, vp_source_errmsg(r.src), part);
    CHECK(r.v == NULL);
    done(&r);
}

#define EXPECT(what, lit, code, part) expect_error(what, (const uint8_t *)(lit), sizeof(lit) - 1, code, part)

static void test_malformed(void)
{
    EXPECT("memo index", "\x80\x02h\x05.", VP_ERR_FORMAT, "memo index 5");
    EXPECT("long memo index", "\x80\x02K\x01q\x00j\x00\x00\x01\x00.", VP_ERR_FORMAT, "memo index 65536");
    EXPECT("no STOP", "\x80\x02K\x01", VP_ERR_FORMAT, "STOP");
    EXPECT("empty", "", VP_ERR_FORMAT, "STOP");
    EXPECT("underflow", "\x80\x02K\x01" "a.", VP_ERR_FORMAT, "underflow");
    EXPECT("STOP on empty stack", "\x80\x02.", VP_ERR_FORMAT, "underflow");
    EXPECT("no MARK", "\x80\x02K\x01t.", VP_ERR_FORMAT, "MARK");
    EXPECT("underflow across MARK", "\x80\x02]K\x01(a.", VP_ERR_FORMAT, "underflow");
    EXPECT("unhashable key", "\x80\x02}]K\x01s.", VP_ERR_FORMAT, "unhashable list");
    EXPECT("append to dict", "\x80\x02}K\x01" "a.", VP_ERR_FORMAT, "APPEND");
    EXPECT("setitem on list", "\x80\x02]K\x01K\x02s.", VP_ERR_FORMAT, "SETITEM");
    EXPECT("unknown opcode", "\x80\x02\xff.", VP_ERR_FORMAT, "0xff");
    EXPECT("protocol 6", "\x80\x06K\x01.", VP_ERR_UNSUPPORTED, "protocol 6");
    EXPECT("string past end", "\x80\x02X\xff\x00\x00\x00" "abc.", VP_ERR_FORMAT, "truncated");
    EXPECT("LONG4 past end", "\x80\x02\x8b\xff\xff\xff\x7f.", VP_ERR_FORMAT, "truncated");
    EXPECT("bad utf-8", "\x80\x02X\x02\x00\x00\x00\xc3\x28.", VP_ERR_FORMAT, "UTF-8");
    EXPECT("FRAME past end", "\x80\x04\x95\x00\x10\x00\x00\x00\x00\x00\x00K\x01.", VP_ERR_FORMAT, "frame");
    EXPECT("persid without loader", "\x80\x02K\x01Q.", VP_ERR_FORMAT, "bad pid");
    EXPECT("extension code", "\x80\x02\x82\x01.", VP_ERR_UNSUPPORTED, "extension");
    EXPECT("BUILD on dict", "\x80\x02}}b.", VP_ERR_FORMAT, "BUILD");
    EXPECT("bad INT text", "I12x\n.", VP_ERR_FORMAT, "integer");
    EXPECT("bad FLOAT text", "Fabc\n.", VP_ERR_FORMAT, "FLOAT");
    EXPECT("STRING unquoted", "Sabc\n.", VP_ERR_FORMAT, "quoted");
    EXPECT("tensor size not ints",
           "\x80\x02" "ctorch._utils\n_rebuild_tensor\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
           "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQK\x00X\x01\x00\x00\x00" "a\x85K\x01\x85tR.",
           VP_ERR_FORMAT, "size holds a str");
    EXPECT("rebuild from a non-storage", "\x80\x02" "ctorch._utils\n_rebuild_tensor\n(K\x01K\x00))tR.", VP_ERR_FORMAT, "not a storage");
    EXPECT("complex storage",
           "\x80\x02" "ctorch._utils\n_rebuild_tensor\n((X\x07\x00\x00\x00storagectorch\nComplexFloatStorage\n"
           "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQK\x00))tR.",
           VP_ERR_UNSUPPORTED, "element type");

    /* an integer longer than VP_PICKLE_MAX_LONG_BYTES */
    size_t n = VP_PICKLE_MAX_LONG_BYTES + 1;
    uint8_t *b = calloc(n + 16, 1);
    b[0] = 0x80; b[1] = 2; b[2] = 0x8b;
    b[3] = (uint8_t)n; b[4] = (uint8_t)(n >> 8); b[5] = 0; b[6] = 0;
    b[7 + n] = '.';
    expect_error("huge LONG4", b, n + 8, VP_ERR_LIMIT, "VP_PICKLE_MAX_LONG_BYTES");
    b[3] = (uint8_t)(n - 1); b[4] = (uint8_t)((n - 1) >> 8);   /* at the limit: accepted */
    b[7 + n - 2] = 0x01;   /* last byte of the integer: 2**32760, about 9863 digits */
    b[7 + n - 1] = '.';
    run r = load_bytes(b, n + 7, 4u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    const char *digits = vp_value_str(r.v);
    CHECK(digits && strlen(digits) == 9862);   /* str(2**32760) in Python */
    CHECK(digits && !strncmp(digits, "552914465251935464453731", 24));
    CHECK(digits && strlen(digits) == 9862 && !strcmp(digits + 9862 - 24, "740395010422283725438976"));
    done(&r);
    free(b);
}

/* Nesting beyond VP_PICKLE_MAX_DEPTH is refused, by each way of nesting;
 * at the limit it is accepted. No recursion in the reader, so no stack overflow. */
static void test_depth(void)
{
    for (int pass = 0; pass < 2; pass++) {
        int depth = VP_PICKLE_MAX_DEPTH + pass;   /* 200 ok, 201 refused */
        /* EMPTY_LIST x depth, then APPEND x (depth - 1): list in list ... */
        size_t n = (size_t)depth * 2 + 4;
        uint8_t *b = malloc(n);
        size_t o = 0;
        b[o++] = 0x80; b[o++] = 2;
        for (int i = 0; i < depth; i++) b[o++] = ']';
        for (int i = 1; i < depth; i++) b[o++] = 'a';
        b[o++] = '.';
        run r = load_bytes(b, o, 16u << 20);
        CHECKF(r.rc == (pass ? VP_ERR_LIMIT : VP_OK), "lists nested %d deep: rc %d (%s)", depth, r.rc, vp_source_errmsg(r.src));
        if (pass) CHECK(tu_has(vp_source_errmsg(r.src), "VP_PICKLE_MAX_DEPTH"));
        done(&r);
        free(b);
    }
    /* one million MARKs and TUPLEs: ((((...)))) refused, quickly */
    size_t n = 2000000 + 4;
    uint8_t *b = malloc(n);
    size_t o = 0;
    b[o++] = 0x80; b[o++] = 2;
    for (int i = 0; i < 1000000; i++) b[o++] = '(';
    for (int i = 0; i < 1000000; i++) b[o++] = 't';
    b[o++] = '.';
    run r = load_bytes(b, o, 256u << 20);
    CHECK_EQ_INT(r.rc, VP_ERR_LIMIT);
    done(&r);
    /* dicts nested through SETITEM: d0 1 d1 1 d2 ... then d998[1] = d999, d997[1] = d998, ... */
    o = 0;
    b[o++] = 0x80; b[o++] = 2; b[o++] = '}';
    for (int i = 0; i < 999; i++) { b[o++] = 'K'; b[o++] = 1; b[o++] = '}'; }
    for (int i = 0; i < 999; i++) b[o++] = 's';
    b[o++] = '.';
    r = load_bytes(b, o, 16u << 20);
    CHECK_EQ_INT(r.rc, VP_ERR_LIMIT);
    done(&r);
    free(b);
}

/* Cutting a valid pickle anywhere gives an error, never a crash or a value. */
static void test_truncation(void)
{
    const char *hexes[] = {
        "8004959e000000000000007d94288c0173948f94284b014b024b01908c02667394284b038c01619491948c027538948d0300000000000000"
        "e29883948c026238948e020000000000000000ff948c027362944303616263948c026e73948c086172677061727365948c094e616d6573706163"
        "65949394297d9492947d94288c026c7294473fb999999999999a8c0461726368948c097669745f736d616c6c9475628c016d946801752e",
        "80025d7100284b014d00014affffffff8a008a090000000000000000018a090000000000000000ff8a0800000000000000808b090000000000"
        "000000000080008a02ff7f8a01ff473ff800000000000088894e680072000100006a00010000652e",
    };
    for (size_t h = 0; h < sizeof hexes / sizeof *hexes; h++) {
        uint8_t *b;
        size_t n = unhex(hexes[h], &b);
        int errors = 0;
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);   /* exact size: ASan sees any overread */
            memcpy(copy, b, cut);
            run r = load_bytes(copy, cut, 4u << 20);
            if (r.rc != VP_OK && r.v == NULL && *vp_source_errmsg(r.src)) errors++;
            done(&r);
            free(copy);
        }
        CHECK_EQ_INT(errors, n);
        free(b);
    }
    /* the protocol 0 pickle too */
    static const char p0[] = "(lp0\nI1\naL123456789012345678901234567890L\naF1.5\naS'ab\\ncd'\np1\naVcaf\\u00e9\np2\na.";
    int errors = 0;
    for (size_t cut = 0; cut < sizeof p0 - 1; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, p0, cut);
        run r = load_bytes(copy, cut, 4u << 20);
        if (r.rc != VP_OK) errors++;
        done(&r);
        free(copy);
    }
    CHECK_EQ_INT(errors, sizeof p0 - 1);
}

/* Dict semantics: a repeated key keeps its first position and takes the
 * last value; 1, 1.0 and True are the same key. Big dicts use the index. */
static void test_dict_semantics(void)
{
    /* {'a': 1, 1: 'x', 'a': 2, True: 'y', 1.0: 'z'} -> {'a': 2, 1: 'z'} */
    static const char p[] = "\x80\x02}(X\x01\x00\x00\x00" "aK\x01K\x01X\x01\x00\x00\x00xX\x01\x00\x00\x00" "aK\x02\x88X\x01\x00\x00\x00y"
                            "G?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00zu.";
    run r = load_bytes((const uint8_t *)p, sizeof p - 1, 1u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    CHECK_EQ_INT(vp_value_len(r.v), 2);
    CHECK_EQ_INT(vp_value_int(get(r.v, "a")), 2);
    CHECK_STR(vp_value_str(vp_value_item(r.v, 1)), "z");
    CHECK_EQ_INT(vp_value_kind(vp_value_key(r.v, 1)), VP_V_INT);
    done(&r);

    /* 5000 distinct keys then the same 5000 again: 5000 entries, in order */
    size_t cap = 5000 * 2 * 12 + 64, o = 0;
    uint8_t *b = malloc(cap);
    b[o++] = 0x80; b[o++] = 2; b[o++] = '}';
    for (int pass = 0; pass < 2; pass++) {
        b[o++] = '(';
        for (int i = 0; i < 5000; i++) {
            b[o++] = 'J';
            uint32_t k = (uint32_t)i * 7919u;
            memcpy(b + o, &k, 4); o += 4;   /* little-endian host */
            b[o++] = 'J';
            uint32_t v = (uint32_t)(i + pass * 100000);
            memcpy(b + o, &v, 4); o += 4;
        }
        b[o++] = 'u';
    }
    b[o++] = '.';
    r = load_bytes(b, o, 64u << 20);
    CHECKF(r.rc == VP_OK, "%s", vp_source_errmsg(r.src));
    CHECK_EQ_INT(vp_value_len(r.v), 5000);
    CHECK_EQ_INT(vp_value_int(vp_value_key(r.v, 4999)), 4999 * 7919);
    CHECK_EQ_INT(vp_value_int(vp_value_item(r.v, 4999)), 4999 + 100000);
    done(&r);
    free(b);
}

/* The arena cap bounds memory: a pickle of nothing but EMPTY_LISTs stops with LIMIT. */
static void test_memory_bounds(void)
{
    size_t n = 100000;
    uint8_t *b = malloc(n + 3);
    b[0] = 0x80; b[1] = 2;
    memset(b + 2, ']', n);
    b[n + 2] = '.';
    run r = load_bytes(b, n + 3, 1u << 20);   /* 1 MiB arena, 100000 lists need more */
    CHECK_EQ_INT(r.rc, VP_ERR_LIMIT);
    CHECK(tu_has(vp_source_errmsg(r.src), "memory limit"));
    CHECK(r.src->arena.used <= r.src->arena.cap);
    done(&r);
    free(b);
}

/* Out of memory anywhere is an error, and nothing leaks (ASan checks). */
static void test_oom(void)
{
    uint8_t *b;
    size_t n = unhex("8004959e000000000000007d94288c0173948f94284b014b024b01908c02667394284b038c01619491948c027538948d03"
                     "00000000000000e29883948c026238948e020000000000000000ff948c027362944303616263948c026e73948c08617267"
                     "7061727365948c094e616d657370616365949394297d9492947d94288c026c7294473fb999999999999a8c046172636894"
                     "8c097669745f736d616c6c9475628c016d946801752e", &b);
    int ok_at = -1;
    for (long k = 0; k < 200 && ok_at < 0; k++) {
        vp_source *src = vp__pickle_scratch_source(1u << 20);
        if (!src) continue;
        tu_failing f = {k};
        vp__set_allocator(tu_failing_alloc, &f);
        vp_value *v = NULL;
        int rc = vp__pickle_load(src, b, n, "oom.pkl", NULL, NULL, &v, NULL);
        vp__set_allocator(NULL, NULL);
        if (rc == VP_OK) ok_at = (int)k;
        else CHECKF(*vp_source_errmsg(src) && v == NULL, "k=%ld", k);
        vp_source_close(src);
    }
    CHECK(ok_at > 0);
    free(b);
}

int main(void)
{
    test_protocol0();
    test_protocol2_ints();
    test_protocol4();
    test_globals();
    test_numpy_inert();
    test_refusals();
    test_malformed();
    test_depth();
    test_truncation();
    test_dict_semantics();
    test_memory_bounds();
    test_oom();
    TEST_MAIN_END();
}
