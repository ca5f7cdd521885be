"""Cross-check vitport's safetensors reader and writer against the reference
`safetensors` package, both directions, through ctypes on libvitport.so.

  vitport writes  -> safetensors.numpy / safetensors.torch / safe_open read
  safetensors writes (numpy and torch) -> vitport reads
  malformed files -> both refuse; odd but valid files -> both accept

Environment: VP_LIB = path to libvitport.so (set by CTest).
"""
import ctypes
import glob
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as np_save
from safetensors.torch import load_file as pt_load, save_file as pt_save
from vp_report import Report

check = Report("py_safetensors")


# ---- the C API ------------------------------------------------------------
MAX_DIMS = 8
DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"]  # vp_dtype order
TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
         "U8": torch.uint8, "BOOL": torch.bool}
NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
         "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS), ("strides", ctypes.c_int64 * MAX_DIMS),
                ("storage_offset", ctypes.c_int64), ("numel", ctypes.c_uint64),
                ("nbytes", ctypes.c_uint64), ("storage", ctypes.c_int64)]


from vp_sanitizers import preload_sanitizers  # noqa: E402

preload_sanitizers()
lib = ctypes.CDLL(os.environ["VP_LIB"])
P = ctypes.c_void_p
lib.vp_source_open.argtypes = [ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_char_p]
lib.vp_source_close.argtypes = [P]
lib.vp_source_errmsg.argtypes = [P]
lib.vp_source_errmsg.restype = ctypes.c_char_p
lib.vp_source_format.argtypes = [P]
lib.vp_source_format.restype = ctypes.c_char_p
lib.vp_source_count.argtypes = [P]
lib.vp_source_count.restype = ctypes.c_size_t
lib.vp_source_tensor.argtypes = [P, ctypes.c_size_t]
lib.vp_source_tensor.restype = ctypes.POINTER(Tensor)
lib.vp_source_read.argtypes = [P, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
lib.vp_source_metadata.argtypes = [P, ctypes.c_char_p]
lib.vp_source_metadata.restype = ctypes.c_char_p
lib.vp_st_writer_open.argtypes = [ctypes.POINTER(P), ctypes.c_char_p]
lib.vp_st_writer_meta.argtypes = [P, ctypes.c_char_p, ctypes.c_char_p]
lib.vp_st_writer_add.argtypes = [P, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)]
lib.vp_st_writer_write.argtypes = [P, ctypes.c_void_p, ctypes.c_size_t]
lib.vp_st_writer_copy.argtypes = [P, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64]
lib.vp_source_fd.argtypes = [P]
lib.vp_source_file_range.argtypes = [P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint64)]
lib.vp_st_writer_finish.argtypes = [P]
lib.vp_st_writer_close.argtypes = [P]
lib.vp_st_writer_errmsg.argtypes = [P]
lib.vp_st_writer_errmsg.restype = ctypes.c_char_p


def vp_write(path, tensors, metadata=None):
    """tensors: list of (name, st dtype, shape, raw bytes). Returns (rc, message)."""
    w = P()
    rc = lib.vp_st_writer_open(ctypes.byref(w), path.encode())
    for k, v in (metadata or {}).items():
        rc = rc or lib.vp_st_writer_meta(w, k.encode(), v.encode())
    for name, dt, shape, _ in tensors:
        arr = (ctypes.c_int64 * max(1, len(shape)))(*shape)
        rc = rc or lib.vp_st_writer_add(w, name.encode(), DTYPES.index(dt), len(shape), arr)
    for _, _, _, raw in tensors:
        rc = rc or lib.vp_st_writer_write(w, raw, len(raw))
    rc = rc or lib.vp_st_writer_finish(w)
    msg = lib.vp_st_writer_errmsg(w).decode()
    lib.vp_st_writer_close(w)
    return rc, msg


class Source:
    def __init__(self, path):
        self.h = P()
        self.rc = lib.vp_source_open(ctypes.byref(self.h), path.encode(), None)
        self.msg = lib.vp_source_errmsg(self.h).decode("utf-8", "replace")

    def close(self):
        lib.vp_source_close(self.h)

    def tensors(self):
        """[(name, st dtype, shape, raw bytes)] in vitport's order."""
        out = []
        for i in range(lib.vp_source_count(self.h)):
            t = lib.vp_source_tensor(self.h, i).contents
            buf = ctypes.create_string_buffer(max(1, t.nbytes))
            rc = lib.vp_source_read(self.h, i, buf, max(1, t.nbytes))
            check(rc == 0, "vp_source_read %s" % t.name)
            out.append((t.name.decode(), DTYPES[t.dtype], tuple(t.shape[:t.ndim]), buf.raw[:t.nbytes]))
        return out

    def metadata(self, key):
        v = lib.vp_source_metadata(self.h, key.encode())
        return None if v is None else v.decode()


def torch_bytes(t):
    t = t.contiguous().reshape(-1)   # a 0-d tensor cannot be viewed as bytes
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def random_raw(rng, dt, shape):
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if dt == "BOOL":
        return rng.integers(0, 2, n, dtype=np.uint8).tobytes()
    return rng.integers(0, 256, n * SIZE[dt], dtype=np.uint8).tobytes()   # every bit pattern, NaNs included


def offsets_order(path):
    """Tensor names sorted by data offsets (ties by name), read from the header directly."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return [k for k, _ in sorted(h.items(), key=lambda kv: (tuple(kv[1]["data_offsets"]), kv[0]))]


# ---- vitport writes, the reference reads ----------------------------------------
def test_vitport_writes(d):
    rng = np.random.default_rng(1)
    tensors = []
    for dt in DTYPES:
        for shape in [(3, 5), (), (0, 4), (2, 1, 3)]:
            name = "%s.%s" % (dt.lower(), "x".join(map(str, shape)) or "scalar")
            tensors.append((name, dt, shape, random_raw(rng, dt, shape)))
    tensors.append(("uni \u00e9\u4e2d \"q\" \\ /", "F32", (2,), random_raw(rng, "F32", (2,))))
    for i in range(300):
        shape = tuple(int(x) for x in rng.integers(1, 5, int(rng.integers(1, 4))))
        tensors.append(("many.%d.weight" % i, DTYPES[i % len(DTYPES)], shape, random_raw(rng, DTYPES[i % len(DTYPES)], shape)))
    meta = {"format": "pt", "note": "line1\nline2 \"q\" \\ \t \u00e9", "empty": ""}
    path = os.path.join(d, "vp.safetensors")
    rc, msg = vp_write(path, tensors, meta)
    check(rc == 0, "vitport writer: " + msg)
    if rc:
        return

    got = pt_load(path)
    check(set(got) == {t[0] for t in tensors}, "torch load_file: same names")
    for name, dt, shape, raw in tensors:
        t = got.get(name)
        ok = t is not None and t.dtype == TORCH[dt] and tuple(t.shape) == shape and torch_bytes(t) == raw
        check(ok, "torch reads %s %s %s bit-exact" % (name, dt, shape))

    with safe_open(path, framework="np") as f:
        for name, dt, shape, raw in tensors:
            if dt == "BF16":
                continue   # numpy has no bfloat16
            a = f.get_tensor(name)
            ok = a.dtype == NUMPY[dt] and a.shape == shape and a.tobytes() == raw
            check(ok, "numpy reads %s bit-exact" % name)

        check(f.metadata() == meta, "safe_open metadata %r" % (f.metadata(),))
        check(sorted(f.keys()) == sorted(t[0] for t in tensors), "safe_open keys")
        t = f.get_slice("f32.3x5")
        check(t.get_shape() == [3, 5] and t.get_dtype() == "F32", "safe_open slice info")

    # The same file, byte for byte, as the reference writes (one tensor, one
    # metadata key: no ordering choice left to either writer).
    a = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    ref, mine = os.path.join(d, "ref1.safetensors"), os.path.join(d, "vp1.safetensors")
    np_save({"attn.0": a}, ref, metadata={"framework": "pt"})
    rc, msg = vp_write(mine, [("attn.0", "F32", (1, 2, 3), a.tobytes())], {"framework": "pt"})
    check(rc == 0 and open(ref, "rb").read() == open(mine, "rb").read(), "byte-identical to the reference writer")
    # every control character in a metadata value, as serde_json escapes them
    # (\b, \f and the other short forms; \u00XX for the rest; DEL as it is)
    ctl = "".join(map(chr, range(1, 32))) + "\x7f\"\\ \u00e9\u4e2d"
    np_save({"attn.0": a}, ref, metadata={"note": ctl})
    rc, msg = vp_write(mine, [("attn.0", "F32", (1, 2, 3), a.tobytes())], {"note": ctl})
    check(rc == 0 and open(ref, "rb").read() == open(mine, "rb").read(),
          "control characters escaped as the reference writer does: %r" % open(mine, "rb").read()[8:160])
    np_save({}, ref)
    rc, msg = vp_write(mine, [])
    check(rc == 0 and open(ref, "rb").read() == open(mine, "rb").read(), "empty file byte-identical")


# ---- the reference writes, vitport reads ---------------------------------------
def compare_read(path, expect, meta, what):
    """expect: name -> (st dtype, shape, raw bytes)."""
    s = Source(path)
    check(s.rc == 0, "%s: vitport opens: %s" % (what, s.msg))
    if s.rc:
        s.close()
        return
    check(lib.vp_source_format(s.h) == b"safetensors", what + ": format")
    got = s.tensors()
    check([g[0] for g in got] == offsets_order(path), what + ": tensors in data-offset order")
    check({g[0] for g in got} == set(expect), what + ": same names")
    for name, dt, shape, raw in got:
        e = expect.get(name)
        check(e is not None and (dt, shape, raw) == e, "%s: %s %s %s bit-exact" % (what, name, dt, shape))
    for k, v in (meta or {}).items():
        check(s.metadata(k) == v, "%s: metadata %s" % (what, k))
    check(s.metadata("no such key") is None, what + ": absent metadata key")
    s.close()


def test_reference_writes(d):
    rng = np.random.default_rng(2)
    arrays = {}
    for dt, npt in NUMPY.items():
        for shape in [(4, 3), (), (0,), (2, 0, 5), (7,)]:
            raw = random_raw(rng, dt, shape)
            arrays["%s.%s" % (dt, shape)] = np.frombuffer(raw, dtype=npt).reshape(shape).copy()
    meta = {"source": "numpy", "unicode": "\u00e9\u4e2d", "quote": "a\"b\\c\n"}
    path = os.path.join(d, "np.safetensors")
    np_save(arrays, path, metadata=meta)
    expect = {k: (next(s for s, t in NUMPY.items() if t == a.dtype.type), a.shape, a.tobytes()) for k, a in arrays.items()}
    compare_read(path, expect, meta, "numpy save_file")

    tensors = {
        "fp16": torch.randn(8, 16).half(),
        "bf16": torch.randn(3, 7, 5).bfloat16(),
        "bf16.special": torch.tensor([float("nan"), float("inf"), -0.0, 1e-40, -3.5], dtype=torch.bfloat16),
        "f32": torch.randn(33),
        "f64": torch.randn(2, 2, dtype=torch.float64),
        "i64": torch.randint(-2**62, 2**62, (5,)),
        "i32": torch.randint(-2**31, 2**31 - 1, (4, 4), dtype=torch.int32),
        "i16": torch.randint(-2**15, 2**15 - 1, (9,), dtype=torch.int16),
        "i8": torch.randint(-128, 127, (3,), dtype=torch.int8),
        "u8": torch.randint(0, 255, (6,), dtype=torch.uint8),
        "mask": torch.rand(4, 5) > 0.5,
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3, dtype=torch.bfloat16),
        "view": torch.arange(20.0).reshape(4, 5)[:, 1:3].contiguous(),
    }
    for i in range(400):
        tensors["blocks.%d.attn.qkv.weight" % i] = torch.randn(int(rng.integers(1, 6)), 3).to(
            [torch.float16, torch.bfloat16, torch.float32][i % 3])
    meta = {"format": "pt"}
    path = os.path.join(d, "pt.safetensors")
    pt_save(tensors, path, metadata=meta)
    st = {v: k for k, v in TORCH.items()}
    expect = {k: (st[t.dtype], tuple(t.shape), torch_bytes(t)) for k, t in tensors.items()}
    compare_read(path, expect, meta, "torch save_file")


# ---- malformed and odd files: same verdict as the reference ---------------------
def entry(dt, shape, b, e):
    return {"dtype": dt, "shape": shape, "data_offsets": [b, e]}


def raw_file(header, data=b""):
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + data


def reference_accepts(path):
    try:
        pt_load(path)
        return True
    except Exception:
        return False


def test_verdicts(d):
    bad = {
        "overlap": raw_file({"a": entry("U8", [4], 0, 4), "b": entry("U8", [2], 2, 4)}, b"\0" * 4),
        "gap": raw_file({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 3, 5)}, b"\0" * 5),
        "gap at start": raw_file({"a": entry("U8", [2], 1, 3)}, b"\0" * 3),
        "beyond the file": raw_file({"a": entry("U8", [4], 0, 4)}, b"\0" * 2),
        "byte count": raw_file({"w": entry("F32", [2, 3], 0, 20)}, b"\0" * 20),
        "trailing data": raw_file({"a": entry("U8", [2], 0, 2)}, b"\0" * 3),
        "invalid JSON": raw_file(b'{"a":{"dtype":'),
        "trailing characters": raw_file(b"{}x"),
        "NUL padding": raw_file(b"{}\0\0\0\0\0\0"),
        "unknown dtype": raw_file({"a": entry("Q8", [2], 0, 2)}, b"\0" * 2),
        "negative shape": raw_file({"a": entry("U8", [-2], 0, 2)}, b"\0" * 2),
        "fractional shape": raw_file({"a": entry("U8", [2.5], 0, 2)}, b"\0" * 2),
        "three offsets": raw_file(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2,2]}}', b"\0" * 2),
        "end before begin": raw_file({"a": entry("U8", [0], 2, 0)}, b"\0" * 2),
        "shape overflow": raw_file({"a": entry("F64", [2**32, 2**32], 0, 0)}),
        "missing shape": raw_file(b'{"a":{"dtype":"U8","data_offsets":[0,2]}}', b"\0" * 2),
        "entry not an object": raw_file(b'{"a":3}'),
        "metadata not strings": raw_file({"__metadata__": {"k": 1}}),
        "metadata a list": raw_file({"__metadata__": []}),
        "invalid UTF-8": raw_file(b'{"a\xff":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', b"\0" * 2),
        "header beyond the file": struct.pack("<Q", 1000) + b"{}      ",
        "header too large": struct.pack("<Q", 100_000_001) + b"{}      ",
    }
    for what, blob in bad.items():
        path = os.path.join(d, "bad.safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        check(not reference_accepts(path), "reference refuses: " + what)
        s = Source(path)
        check(s.rc != 0 and s.msg and "\n" not in s.msg, "vitport refuses with one line: %s (%d %s)" % (what, s.rc, s.msg))
        s.close()

    good = {
        "trailing whitespace": raw_file(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}} \n\t\r', b"ab"),
        "null metadata": raw_file({"__metadata__": None, "a": entry("U8", [2], 0, 2)}, b"ab"),
        "extra field": raw_file(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":[1]}}', b"ab"),
        "empty tensors at one offset": raw_file({"b": entry("U8", [0], 0, 0), "a": entry("U8", [0], 0, 0),
                                                 "c": entry("I16", [1], 0, 2)}, b"ab"),
        "no tensors": raw_file({}),
        "only metadata": raw_file({"__metadata__": {"a": "b"}}),
        "unsorted header": raw_file({"z": entry("U8", [1], 1, 2), "y": entry("U8", [1], 0, 1)}, b"ab"),
        "unpadded header": raw_file(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"a"),
    }
    for what, blob in good.items():
        path = os.path.join(d, "good.safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        ok = reference_accepts(path)
        check(ok, "reference accepts: " + what)
        s = Source(path)
        check(s.rc == 0, "vitport accepts: %s (%s)" % (what, s.msg))
        if s.rc == 0 and ok:
            got = s.tensors()
            ref = pt_load(path)
            check([g[0] for g in got] == offsets_order(path), what + ": data-offset order")
            check(all(torch_bytes(ref[n]) == raw and tuple(ref[n].shape) == sh for n, _, sh, raw in got),
                  what + ": same tensors")
        s.close()

    # Deliberately stricter than the reference, which lets the last duplicate win.
    path = os.path.join(d, "dup.safetensors")
    with open(path, "wb") as f:
        f.write(raw_file(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                         b'"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', b"ab"))
    s = Source(path)
    check(s.rc != 0 and "duplicate tensor name 'a'" in s.msg, "vitport refuses duplicate names: " + s.msg)
    s.close()


# ---- real files: the conformance references, read and copied through ---------
def copy_through(path, out):
    """Re-write path with vitport, copying every tensor with copy_file_range."""
    s = Source(path)
    if s.rc:
        return s.rc, s.msg
    w = P()
    rc = lib.vp_st_writer_open(ctypes.byref(w), out.encode())
    for k in ["format"]:
        v = s.metadata(k)
        if v is not None:
            rc = rc or lib.vp_st_writer_meta(w, k.encode(), v.encode())
    n = lib.vp_source_count(s.h)
    for i in range(n):
        t = lib.vp_source_tensor(s.h, i).contents
        rc = rc or lib.vp_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape)
    for i in range(n):
        t = lib.vp_source_tensor(s.h, i).contents
        off = ctypes.c_uint64()
        rc = rc or lib.vp_source_file_range(s.h, i, ctypes.byref(off))
        rc = rc or lib.vp_st_writer_copy(w, lib.vp_source_fd(s.h), off.value, t.nbytes)
    rc = rc or lib.vp_st_writer_finish(w)
    msg = lib.vp_st_writer_errmsg(w).decode()
    lib.vp_st_writer_close(w)
    s.close()
    return rc, msg


def test_conformance(d):
    conf = os.environ.get("VP_CONFORMANCE", "")
    files = sorted(glob.glob(os.path.join(conf, "*", "reference", "model.safetensors"))) if conf else []
    if not files:
        print("py_safetensors: no conformance references found; skipped that part")
    for path in files:
        case = path.split(os.sep)[-3]
        ref = pt_load(path)
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        st = {v: k for k, v in TORCH.items()}
        expect = {k: (st[t.dtype], tuple(t.shape), torch_bytes(t)) for k, t in ref.items()}
        compare_read(path, expect, meta, case)
        out = os.path.join(d, case + ".safetensors")
        rc, msg = copy_through(path, out)
        check(rc == 0, "%s: copy through vitport: %s" % (case, msg))
        if rc == 0:
            again = pt_load(out)
            check(set(again) == set(ref) and all(torch_bytes(again[k]) == torch_bytes(ref[k]) and
                                                 again[k].dtype == ref[k].dtype and again[k].shape == ref[k].shape
                                                 for k in ref), case + ": the copy reads the same in torch")


def main():
    with tempfile.TemporaryDirectory(prefix="vp-pyst-") as d:
        test_vitport_writes(d)
        test_reference_writes(d)
        test_verdicts(d)
        test_conformance(d)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
