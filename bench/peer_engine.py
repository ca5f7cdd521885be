#!/usr/bin/env python3
"""The PyTorch peer of bench/bench_engine.sh (transformers' classes, torch CPU).

  peer_engine.py make OUT_DIR
      random weights of real size (torch.manual_seed(0), transformers' own
      init) for ViT-B/16 224 (ViTModel), CLIP ViT-B/32 (CLIPModel) and SigLIP
      base patch16 224 (SiglipModel), each saved with save_pretrained into
      OUT_DIR/<name>/, and inputs OUT_DIR/<name>/inputs_b<B>.npz for B = 1, 8
      (pixel_values and, for the text towers, input_ids).
  peer_engine.py warm MODEL_DIR TOWER BATCH THREADS REPS
      warm forward (3 untimed runs, then best of REPS) of TOWER (image,
      text, or both: the vision then the text model) under torch.inference_mode() with THREADS threads; prints
      "seconds <best>" (wall) and "cpu_seconds <least>" (process CPU time).
  peer_engine.py shapes MODEL_DIR TOWER BATCH
      the forward's matrix-product shapes and FLOPs (see shapes()).
  peer_engine.py once MODEL_DIR TOWER INPUTS.npz OUT.npz THREADS
      what one vitport run does, as a Python process: import, load, one
      forward, save the outputs (time it from outside).
"""
import sys


def tower_fn(model, tower):
    """The forward of one tower as transformers runs it."""
    import torch
    name = type(model).__name__
    if name == "ViTModel":
        return lambda a: model(pixel_values=a)
    if tower == "image":
        return lambda a: model.vision_model(pixel_values=a)
    if tower == "text":
        return lambda a: model.text_model(input_ids=a)
    return lambda a: (model.vision_model(pixel_values=a[0]), model.text_model(input_ids=a[1]))


def load(model_dir):
    import transformers
    import json
    import os
    with open(os.path.join(model_dir, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    return getattr(transformers, arch).from_pretrained(model_dir).eval()


def make(out):
    import os
    import numpy as np
    import torch
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel, ViTConfig, ViTModel
    torch.manual_seed(0)
    models = {
        "vit-b16": (ViTModel(ViTConfig()), 224, None),
        "clip-b32": (CLIPModel(CLIPConfig()), 224, (49408, 77)),
        "siglip-b16": (SiglipModel(SiglipConfig()), 224, (32000, 64)),
    }
    rng = np.random.default_rng(0)
    for name, (model, size, text) in models.items():
        d = os.path.join(out, name)
        model.eval().save_pretrained(d)
        for b in (1, 8):
            arrays = {"pixel_values": rng.standard_normal((b, 3, size, size), dtype=np.float32)}
            if text:
                vocab, length = text
                ids = rng.integers(1, vocab - 2, (b, length), dtype=np.int64)
                ids[:, -1] = vocab - 1        # an EOS at the end of every row
                arrays["input_ids"] = ids
            np.savez(os.path.join(d, f"inputs_b{b}.npz"), **arrays)
        print(f"wrote {d}")


def inputs(path, tower):
    import numpy as np
    import torch
    z = np.load(path)
    if tower == "both":
        return torch.from_numpy(z["pixel_values"]), torch.from_numpy(z["input_ids"])
    return torch.from_numpy(z["pixel_values" if tower == "image" else "input_ids"])


def shapes(model_dir, tower, batch):
    """The encoder's matrix products as "gemm M N K COUNT" lines (the patch
    embedding's too) and "flops F": their FLOPs plus attention's two
    products per head, for one forward of `batch` inputs. Pooling heads and
    projections (a few rows each) are left out."""
    import json
    import os
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    towers = ["image", "text"] if tower == "both" else [tower]
    total = 0
    for t in towers:
        c = cfg if cfg.get("model_type") == "vit" else cfg[("vision" if t == "image" else "text") + "_config"]
        D, F, N = c.get("hidden_size", 768), c.get("intermediate_size", 3072), c.get("num_hidden_layers", 12)
        if t == "image":
            p, size = c.get("patch_size", 16), c.get("image_size", 224)
            L = (size // p) ** 2 + (0 if cfg.get("model_type") == "siglip" else 1)
            M = batch * (size // p) ** 2
            print(f"gemm {M} {D} {3 * p * p} 1")
            total += 2 * M * D * 3 * p * p
        else:
            import numpy as np
            L = np.load(os.path.join(model_dir, f"inputs_b{batch}.npz"))["input_ids"].shape[1]
        M = batch * L
        for n, k, cnt in ((D, D, 4 * N), (F, D, N), (D, F, N)):
            print(f"gemm {M} {n} {k} {cnt}")
            total += 2 * M * n * k * cnt
        total += N * batch * 2 * (2 * L * L * D)
    print(f"flops {total}")


def warm(model_dir, tower, batch, threads, reps):
    import time
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    model = load(model_dir)
    a = inputs(f"{model_dir}/inputs_b{batch}.npz", tower)
    f = tower_fn(model, tower)
    best = best_cpu = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            f(a)
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            f(a)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
    print(f"seconds {best:.6f}")
    print(f"cpu_seconds {best_cpu:.6f}")


def once(model_dir, tower, inp, out, threads):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    model = load(model_dir)
    with torch.inference_mode():
        o = tower_fn(model, tower)(inputs(inp, tower))
    o = o if isinstance(o, tuple) else (o,)
    np.savez(out, **{f"last_hidden_state_{i}": r.last_hidden_state.numpy() for i, r in enumerate(o)})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0])
    elif cmd == "warm":
        warm(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "shapes":
        shapes(args[0], args[1], int(args[2]))
    elif cmd == "once":
        once(args[0], args[1], args[2], args[3], int(args[4]))
    else:
        sys.exit(__doc__)
