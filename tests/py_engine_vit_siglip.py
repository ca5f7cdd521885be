"""Cross-check `vitport run` against transformers on ViT / DeiT / SigLIP
models drawn afresh (sizes, heads, patch, activations, image sizes, batch
from a seeded RNG, unlike the committed fixtures), built and saved by
transformers with tests/fixtures/gen_engine_vit_siglip.py's helpers.

Environment: VP_BIN = the vitport program (set by CTest).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers as T

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fixtures"))
import gen_engine_vit_siglip as gen  # noqa: E402
from vp_report import Report  # noqa: E402

check = Report("py_engine_vit_siglip")


ACTS = ["gelu", "gelu_pytorch_tanh", "gelu_new", "quick_gelu", "relu"]


def draw(rng, i):
    """One random case: (name, class, config, inputs, interpolate)."""
    heads = int(rng.choice([1, 2, 3]))
    width = heads * int(rng.choice([2, 4]))
    patch = int(rng.choice([4, 7, 8]))
    grid = int(rng.choice([1, 2, 3]))
    image = patch * grid + int(rng.integers(0, patch))     # image sizes that are not multiples of the patch
    act = str(rng.choice(ACTS))
    layers = int(rng.integers(1, 3))
    b = int(rng.integers(1, 4))
    interp = bool(rng.integers(0, 2))
    h = image + (int(rng.integers(-1, patch + 2)) if interp else 0)
    w = image + (int(rng.integers(-1, patch + 2)) if interp else 0)
    h, w = max(h, patch), max(w, patch)
    kind = ["vit", "vit_cls", "deit_teacher", "siglip", "siglip_vision", "siglip_text"][i % 6]
    pix = gen.pixels(100 + i, b, h, w)
    if kind.startswith("vit") or kind.startswith("deit"):
        cfg = gen.vit_cfg(hidden_size=width, num_attention_heads=heads, patch_size=patch, image_size=image,
                          hidden_act=act, num_hidden_layers=layers, intermediate_size=width * 2, num_labels=3)
        cls = {"vit": T.ViTModel, "vit_cls": T.ViTForImageClassification,
               "deit_teacher": T.DeiTForImageClassificationWithTeacher}[kind]
        config = (T.DeiTConfig if kind.startswith("deit") else T.ViTConfig)(**cfg)
        return kind, cls, config, {"pixel_values": pix}, interp
    th = int(rng.choice([1, 2, 3]))
    while width % th:
        th = 1
    tl = int(rng.integers(2, 9))
    sc = gen.siglip_cfg(
        text={"hidden_size": width, "num_attention_heads": th, "hidden_act": act, "num_hidden_layers": layers,
              "intermediate_size": width + 2, "max_position_embeddings": 8},
        vision={"hidden_size": width, "num_attention_heads": heads, "hidden_act": act, "patch_size": patch,
                "image_size": image, "num_hidden_layers": layers, "intermediate_size": width * 3})
    ids = gen.ids(200 + i, int(rng.integers(1, 4)), tl, 40)
    if kind == "siglip":
        return kind, T.SiglipModel, sc, {"pixel_values": pix, "input_ids": ids}, True
    if kind == "siglip_vision":
        return kind, T.SiglipVisionModel, sc.vision_config, {"pixel_values": pix}, True
    return kind, T.SiglipTextModel, sc.text_config, {"input_ids": ids}, False


def main():
    vp = os.environ.get("VP_BIN")
    if not vp:
        print("VP_BIN unset", file=sys.stderr)
        return 1
    rng = np.random.default_rng(20261201)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        gen.OUT = tmp
        for i in range(12):
            kind, cls, config, inputs, interp = draw(rng, i)
            name = "%02d_%s" % (i, kind)
            path = gen.case(name, cls, config, 1000 + i, inputs, interp=interp)
            out = os.path.join(tmp, name + ".out.npz")
            cmd = [vp, "run", path, "--inputs", os.path.join(path, "inputs.npz"), "--out", out, "--quiet"]
            if interp:
                cmd.append("--interpolate-pos-encoding")
            r = subprocess.run(cmd, capture_output=True, text=True)
            check(r.returncode == 0, "%s: exit %d: %s" % (name, r.returncode, r.stderr.strip()))
            if r.returncode:
                continue
            got, exp = np.load(out), np.load(os.path.join(path, "expected.npz"))
            check(sorted(got.files) == sorted(exp.files), "%s: outputs %s, expected %s" % (name, got.files, exp.files))
            for k in exp.files:
                if k not in got.files:
                    continue
                ok = got[k].shape == exp[k].shape
                d = float(np.abs(got[k] - exp[k]).max()) if ok else float("inf")
                worst = max(worst, d)
                check(d <= 1e-4, "%s: %s differs by %g (shape %s vs %s)" % (name, k, d, got[k].shape, exp[k].shape))
    return check.finish("; largest difference %.3g" % worst)


if __name__ == "__main__":
    torch.manual_seed(0)
    sys.exit(main())
