#!/usr/bin/env python3
"""Cross-check of vitport's images against Pillow 13.0.0 and transformers' PIL-backend image
processors on a corpus larger than the committed fixtures: scikit-image's photographs at full size
as PNG and as JPEG (several qualities, subsamplings, progressive), 240 random sizes and aspect
ratios (1x1 to 900 px, up to 1:40) as PNG (RGB, RGBA, LA, L, 16-bit gray, palette with tRNS),
JPEG and raw arrays, and the real processor
configurations (224/256/352) of ViT, DeiT, CLIP, SigLIP and CLIPSeg plus the conformance cases'.

vitport is called through ctypes on the shared library ($VP_LIB). The reference class is the one
AutoImageProcessor.from_pretrained(dir, backend="pil") gives (ViTImageProcessorPil, ...): the
torchvision ("fast") backend is not installed here, and it is not what vitport reproduces.

Prints the max abs diff per decoder and per processor; fails if any decode or resize differs by a
single byte or any pixel_values by 1e-6 or more.
"""
import ctypes
import glob
import io
import json
import os
import sys
import tempfile

import numpy as np
import PIL
from PIL import Image

assert PIL.__version__ == "13.0.0", PIL.__version__
import transformers  # noqa: E402
from transformers import AutoImageProcessor  # noqa: E402

from vp_sanitizers import preload_sanitizers  # noqa: E402

preload_sanitizers()
lib = ctypes.CDLL(os.environ["VP_LIB"])
P = ctypes.c_void_p
lib.vp_image_load.argtypes = [ctypes.POINTER(P), ctypes.c_char_p]
lib.vp_image_load_memory.argtypes = [ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
lib.vp_image_from_rgb.argtypes = [ctypes.POINTER(P), ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
lib.vp_image_free.argtypes = [P]
lib.vp_image_errmsg.argtypes = [P]
lib.vp_image_errmsg.restype = ctypes.c_char_p
for f in ("vp_image_width", "vp_image_height"):
    getattr(lib, f).argtypes = [P]
lib.vp_image_pixels.argtypes = [P]
lib.vp_image_pixels.restype = ctypes.POINTER(ctypes.c_uint8)
lib.vp_image_resize.argtypes = [P, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
lib.vp_preproc_open.argtypes = [ctypes.POINTER(P), ctypes.c_char_p]
lib.vp_preproc_free.argtypes = [P]
lib.vp_preproc_errmsg.argtypes = [P]
lib.vp_preproc_errmsg.restype = ctypes.c_char_p
lib.vp_preproc_output_size.argtypes = [P, P, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
lib.vp_preproc_run.argtypes = [P, ctypes.POINTER(P), ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]

failures = []


def vp_load(data, name):
    h = P()
    rc = lib.vp_image_load_memory(ctypes.byref(h), data, len(data), name.encode())
    if rc:
        msg = lib.vp_image_errmsg(h).decode()
        lib.vp_image_free(h)
        raise RuntimeError(msg)
    return h


def vp_from_array(a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h = P()
    assert lib.vp_image_from_rgb(ctypes.byref(h), a.shape[1], a.shape[0], a.tobytes()) == 0
    return h


def vp_pixels(h):
    w, hh = lib.vp_image_width(h), lib.vp_image_height(h)
    return np.ctypeslib.as_array(lib.vp_image_pixels(h), shape=(hh, w, 3)).copy()


def vp_resize(h, w, hh, f):
    out = np.empty((hh, w, 3), np.uint8)
    assert lib.vp_image_resize(h, 0, w, hh, f, out.ctypes.data, out.nbytes) == 0
    return out


def vp_preprocess(pp, h):
    oh, ow = ctypes.c_int(), ctypes.c_int()
    assert lib.vp_preproc_output_size(pp, h, ctypes.byref(oh), ctypes.byref(ow)) == 0
    out = np.empty((1, 3, oh.value, ow.value), np.float32)
    arr = (P * 1)(h)
    rc = lib.vp_preproc_run(pp, arr, 1, out.ctypes.data, out.size)
    assert rc == 0, lib.vp_preproc_errmsg(pp)
    return out


def smooth(rng, h, w):
    base = rng.integers(0, 256, size=(max(2, h // 8 + 2), max(2, w // 8 + 2), 3)).astype(np.uint8)
    a = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC)).astype(np.int16)
    return np.clip(a + rng.integers(-10, 11, size=a.shape), 0, 255).astype(np.uint8)


def encode(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def corpus():
    """(name, decoder, bytes or None, PIL image opened from the bytes / array)"""
    import skimage
    rng = np.random.default_rng(8)
    ddir = os.path.join(os.path.dirname(skimage.__file__), "data")
    photos = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg", "motorcycle_left.png",
              "camera.png", "coins.png", "page.png", "color.png", "logo.png", "horse.png", "hubble_deep_field.jpg"]
    for p in photos:
        im = Image.open(os.path.join(ddir, p))
        im.load()
        stem = p.rsplit(".", 1)[0]
        with open(os.path.join(ddir, p), "rb") as f:
            raw = f.read()
        yield stem + "." + p.rsplit(".", 1)[1], "png" if p.endswith(".png") else "jpeg", raw
        if im.mode in ("RGBA", "LA", "P", "1", "I;16"):
            base = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        else:
            base = im
        for q, sub, prog in ((75, None, False), (95, 0, False), (90, 1, True)):
            kw = {"quality": q, "progressive": prog}
            if sub is not None:
                kw["subsampling"] = sub
            yield "%s_q%d_s%s%s.jpg" % (stem, q, sub, "_prog" if prog else ""), "jpeg", encode(base.convert("RGB") if base.mode == "RGBA" else base, "JPEG", **kw)
        yield stem + "_re.png", "png", encode(base, "PNG")
    for i in range(240):
        if i < 20:
            h, w = [int(x) for x in rng.integers(1, 5, 2)]
        else:
            long = int(rng.integers(8, 900))
            aspect = float(np.exp(rng.uniform(0, np.log(40))))
            short = max(1, int(round(long / aspect)))
            h, w = (long, short) if rng.random() < 0.5 else (short, long)
        a = smooth(rng, h, w)
        kind = i % 3
        if kind == 0:
            # PNG in a cycle of modes: RGB, RGBA, LA, L, 16-bit gray, palette with tRNS
            m = (i // 3) % 6
            if m == 0:
                im = Image.fromarray(a)
            elif m == 1:
                im = Image.fromarray(np.dstack([a, rng.integers(0, 256, (h, w, 1)).astype(np.uint8)]), "RGBA")
            elif m == 2:
                im = Image.fromarray(np.dstack([a[..., :1], a[..., 1:2]]), "LA")
            elif m == 3:
                im = Image.fromarray(a[..., 0])
            elif m == 4:
                im = Image.fromarray((a[..., 0].astype(np.uint16) * int(rng.integers(1, 258))))
            else:
                im = Image.fromarray(a).quantize(colors=int(rng.integers(2, 200)))
                im.info["transparency"] = bytes(rng.integers(0, 256, 16).astype(np.uint8))
            kw = {"transparency": im.info["transparency"]} if "transparency" in im.info else {}
            yield "rand%03d_%dx%d_%s.png" % (i, w, h, im.mode.replace(";", "")), "png", encode(im, "PNG", **kw)
        elif kind == 1:
            yield "rand%03d_%dx%d.jpg" % (i, w, h), "jpeg", encode(Image.fromarray(a), "JPEG", quality=int(rng.integers(60, 98)))
        else:
            yield "rand%03d_%dx%d.raw" % (i, w, h), "raw", a


PROCS = {
    "vit (google/vit-base-patch16-224)": {"image_processor_type": "ViTImageProcessor", "do_normalize": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": {"height": 224, "width": 224}},
    "deit (facebook/deit-base-distilled-patch16-224)": {"image_processor_type": "DeiTImageProcessor", "do_center_crop": True,
            "crop_size": {"height": 224, "width": 224}, "do_normalize": True, "do_resize": True,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": {"height": 256, "width": 256}},
    "clip (openai/clip-vit-base-patch32)": {"image_processor_type": "CLIPImageProcessor", "crop_size": {"height": 224, "width": 224},
            "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
            "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}},
    "siglip (google/siglip-base-patch16-224)": {"image_processor_type": "SiglipImageProcessor", "do_normalize": True, "do_rescale": True,
            "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
            "rescale_factor": 0.00392156862745098, "size": {"height": 224, "width": 224}},
    "clipseg (CIDAS/clipseg-rd64-refined)": {"image_processor_type": "ViTImageProcessor", "do_normalize": True, "do_rescale": True,
            "do_resize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 2,
            "rescale_factor": 0.00392156862745098, "size": {"height": 352, "width": 352}},
}


def main():
    tmp = tempfile.mkdtemp(prefix="vp_py_image.")
    dirs = {}
    for name, cfg in PROCS.items():
        d = os.path.join(tmp, name.split()[0])
        os.makedirs(d)
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(cfg, f)
        dirs[name] = d
    conf = os.environ.get("VP_CONFORMANCE", "")
    for cfgfile in sorted(glob.glob(os.path.join(conf, "*", "reference", "preprocessor_config.json"))):
        dirs["conformance " + cfgfile.split(os.sep)[-3]] = os.path.dirname(cfgfile)
    procs = {}
    for name, d in dirs.items():
        ref = AutoImageProcessor.from_pretrained(d, backend="pil")
        assert type(ref).__name__.endswith("Pil"), type(ref).__name__
        pp = P()
        assert lib.vp_preproc_open(ctypes.byref(pp), d.encode()) == 0, lib.vp_preproc_errmsg(pp)
        procs[name] = (ref, pp)

    dec = {}     # decoder -> [files, exact, max abs diff]
    pre = {n: [0, 0.0] for n in procs}
    rs = [0, 0]
    rng = np.random.default_rng(9)
    n_items = 0
    for name, decoder, data in corpus():
        n_items += 1
        if decoder == "raw":
            arr = data
            h = vp_from_array(arr)
            pil = arr
        else:
            pim = Image.open(io.BytesIO(data))
            want = np.asarray(pim.convert("RGB"))
            h = vp_load(data, name)
            got = vp_pixels(h)
            d = dec.setdefault(decoder, [0, 0, 0])
            d[0] += 1
            diff = int(np.abs(got.astype(int) - want.astype(int)).max()) if got.shape == want.shape else 255
            d[1] += diff == 0
            d[2] = max(d[2], diff)
            if diff:
                failures.append("%s: decode differs from Pillow by up to %d" % (name, diff))
            arr = want
            pil = Image.open(io.BytesIO(data))
        # resize: a random target and filter against PIL on the RGB array
        if rs[0] < 400:
            hh, ww = arr.shape[:2]
            tw, th = int(rng.integers(1, 2 * ww + 3)), int(rng.integers(1, 2 * hh + 3))
            f = int(rng.integers(0, 6))
            want_r = np.asarray(Image.fromarray(arr).resize((tw, th), resample=f, reducing_gap=None))
            hr = vp_from_array(arr)
            got_r = vp_resize(hr, tw, th, f)
            lib.vp_image_free(hr)
            rs[0] += 1
            if not np.array_equal(got_r, want_r):
                rs[1] += 1
                failures.append("%s: resize to %dx%d filter %d differs" % (name, tw, th, f))
        for pname, (ref, pp) in procs.items():
            src = pil
            if not isinstance(src, np.ndarray) and not ref.do_convert_rgb:
                src = src.convert("RGB")   # what users must do for those classes (see gen_images.py)
            # arrays are (H, W, 3): say so, as a 1x3 or 3x1 array is ambiguous to transformers
            kw = {"input_data_format": "channels_last"} if isinstance(src, np.ndarray) else {}
            want = ref(src, return_tensors="np", **kw)["pixel_values"]
            got = vp_preprocess(pp, h)
            if got.shape != want.shape:
                failures.append("%s / %s: shape %s, transformers %s" % (pname, name, got.shape, want.shape))
                continue
            diff = float(np.abs(got.astype(np.float64) - want).max())
            pre[pname][0] += 1
            pre[pname][1] = max(pre[pname][1], diff)
            if not diff < 1e-6:
                failures.append("%s / %s: max abs diff %g" % (pname, name, diff))
        lib.vp_image_free(h)

    print("Pillow %s, transformers %s; %d corpus items" % (PIL.__version__, transformers.__version__, n_items))
    for k, (n, ex, mx) in sorted(dec.items()):
        print("decode %-5s %4d files, %4d byte-exact to Pillow's convert('RGB'), max abs diff %d" % (k, n, ex, mx))
    print("resize      %4d random (size, filter) cases, %d differ from PIL Image.resize" % (rs[0], rs[1]))
    for k, (n, mx) in pre.items():
        print("preproc %-50s %4d images, max abs diff %g" % (k, n, mx))
    for _, pp in procs.values():
        lib.vp_preproc_free(pp)
    import shutil
    shutil.rmtree(tmp)
    for f in failures[:30]:
        print("FAIL", f)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
