#!/usr/bin/env python3
"""The Python side of bench/bench_embed.sh: a model folder, a directory of JPEGs,
and the peer pipeline (Pillow + transformers' processor + PyTorch CPU forward).

  peer_embed.py make NAME OUT_DIR
      random weights (torch.manual_seed(0), transformers' own init) of NAME:
        clip-b32    CLIPModel, ViT-B/32 image tower at 224 px (CLIPConfig's defaults)
        clip-b16    CLIPModel with patch 16 (ViT-B/16 image tower, 224 px)
        siglip-b16  SiglipModel (SiglipConfig's defaults: base, patch 16, 224 px)
      saved with save_pretrained into OUT_DIR with the processor files
      transformers saves: CLIPProcessor (CLIPImageProcessor's defaults, as
      OpenAI's checkpoints use them, and a CLIPTokenizer built from OpenAI's
      bpe_simple_vocab_16e6.txt.gz in the open_clip_torch wheel) or, for
      SigLIP, SiglipImageProcessor's defaults (no tokenizer: only images
      are embedded and there is no SentencePiece model of the real vocabulary;
      `run` then takes AutoImageProcessor, the processor AutoProcessor holds).
  peer_embed.py images N OUT_DIR
      N JPEGs (quality 90, Pillow's defaults otherwise: 4:2:0) of varied sizes and
      aspect ratios, random crops and resizes of scikit-image's photographs
      (a few in grey), and OUT_DIR/list.txt naming them; deterministic.
  peer_embed.py run MODEL_DIR LIST BATCH THREADS OUT.npy
      what `vitport embed MODEL_DIR --images-from LIST --batch BATCH --out OUT.npy`
      does, as a user would write it: Image.open(path).convert("RGB"), the
      image processor AutoProcessor gives for MODEL_DIR, get_image_features under
      torch.inference_mode(), L2-normalised (as vitport's image_embeds), rows saved
      with np.save. Prints the start-up (imports) and model-load seconds, then the
      timed region (the list read, the loop, the save) split by phase (seconds
      of a monotonic clock around each phase; "other" is the rest of the region).
  peer_embed.py compare A.npy B.npy
      the largest absolute difference of the two arrays' rows after
      L2-normalising each (prints "max_abs_diff D" and the shapes).
"""
import os
import sys
import time

T_START = time.perf_counter()

PHOTOS = ["astronaut", "chelsea", "coffee", "motorcycle_left", "motorcycle_right", "ihc", "rocket.jpg",
          "retina.jpg", "hubble_deep_field.jpg", "camera", "moon", "coins"]


def image_processor_file(ip, out, type_name, processor_class):
    """preprocessor_config.json as the checkpoints on the Hub hold it (and as
    vitport's converter writes it): the class named without a backend, so that
    AutoProcessor / AutoImageProcessor pick the backend a user's installation
    gives (transformers 5 would write processor_config.json for a whole
    processor, which vitport does not read)."""
    import json
    ip.save_pretrained(out)
    path = os.path.join(out, "preprocessor_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["image_processor_type"] = type_name
    if processor_class:
        cfg["processor_class"] = processor_class
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def make(name, out):
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer,
                              SiglipConfig, SiglipImageProcessorPil, SiglipModel)
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    if name.startswith("clip-"):
        cfg = CLIPConfig()
        if name == "clip-b16":
            cfg.vision_config.patch_size = 16
        elif name != "clip-b32":
            sys.exit(f"unknown model {name}")
        CLIPModel(cfg).eval().save_pretrained(out)
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
        import gen_text  # OpenAI's vocabulary as SimpleTokenizer and vitport's converter build it
        vocab, merges = gen_text.clip_vocab(gen_text.openai_bpe_path())
        assert len(vocab) == cfg.text_config.vocab_size, len(vocab)
        gen_text.write_clip_dir(out, vocab, merges)
        CLIPTokenizer.from_pretrained(out).save_pretrained(out)
        # the image processor's defaults are OpenAI CLIP's (224, bicubic, crop, OpenAI mean/std)
        image_processor_file(CLIPImageProcessorPil(), out, "CLIPImageProcessor", "CLIPProcessor")
    elif name == "siglip-b16":
        SiglipModel(SiglipConfig()).eval().save_pretrained(out)
        image_processor_file(SiglipImageProcessorPil(), out, "SiglipImageProcessor", None)
    else:
        sys.exit(f"unknown model {name}")
    print(f"wrote {out}")


def images(n, out):
    import numpy as np
    import skimage
    from PIL import Image
    rng = np.random.default_rng(20261201)
    data = os.path.join(os.path.dirname(skimage.__file__), "data")
    srcs = [Image.open(os.path.join(data, p if "." in p else p + ".png")) for p in PHOTOS]
    srcs = [s.convert("L") if s.mode in ("L", "I;16", "I") else s.convert("RGB") for s in srcs]
    os.makedirs(out, exist_ok=True)
    names = []
    for i in range(n):
        src = srcs[i % len(srcs)]
        W, H = src.size
        # a crop of 30-100% of each side, then a resize to a longest side of 96..900 px
        # with the crop's aspect ratio stretched by up to 1.6x either way (ratios to about 1:4)
        cw = int(W * rng.uniform(0.3, 1.0))
        ch = int(H * rng.uniform(0.3, 1.0))
        x, y = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
        im = src.crop((x, y, x + cw, y + ch))
        aspect = cw / ch * float(np.exp(rng.uniform(np.log(1 / 1.6), np.log(1.6))))
        side = int(rng.integers(96, 901))
        w, h = (side, max(1, round(side / aspect))) if aspect >= 1 else (max(1, round(side * aspect)), side)
        im = im.resize((w, h), Image.Resampling.BICUBIC)
        path = os.path.join(out, f"img{i:05d}.jpg")
        im.save(path, quality=90)
        names.append(path)
    with open(os.path.join(out, "list.txt"), "w") as f:
        f.write("".join(p + "\n" for p in names))
    print(f"wrote {n} JPEGs and list.txt into {out}")


def run(model_dir, lst, batch, threads, out):
    t0 = time.perf_counter()
    import numpy as np
    import torch
    import transformers
    from PIL import Image
    t_import = time.perf_counter() - t0 + (t0 - T_START)   # the interpreter's own start-up is measured outside
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    tok_files = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer_config.json")
    if any(os.path.exists(os.path.join(model_dir, f)) for f in tok_files):
        proc = transformers.AutoProcessor.from_pretrained(model_dir)
    else:  # no tokenizer (the SigLIP folder): AutoProcessor would fail; its image processor is this one
        proc = transformers.AutoImageProcessor.from_pretrained(model_dir)
    ip = getattr(proc, "image_processor", proc)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    t_load = time.perf_counter() - t0

    now = time.perf_counter
    t_region = now()
    with open(lst) as f:
        paths = [p.rstrip("\r\n") for p in f if p.strip()]
    dec = pre = fwd = 0.0
    rows = []
    with torch.inference_mode():
        for s in range(0, len(paths), batch):
            t = now()
            ims = [Image.open(p).convert("RGB") for p in paths[s:s + batch]]
            t1 = now()
            pix = ip(images=ims, return_tensors="pt")["pixel_values"]
            t2 = now()
            o = model.get_image_features(pixel_values=pix)
            e = o if isinstance(o, torch.Tensor) else o.pooler_output
            e = torch.nn.functional.normalize(e, dim=-1)
            t3 = now()
            rows.append(e.numpy())
            dec += t1 - t
            pre += t2 - t1
            fwd += t3 - t2
    emb = np.concatenate(rows)
    np.save(out, emb)
    with open(os.path.splitext(out)[0] + ".txt", "w") as f:
        f.write("".join(p + "\n" for p in paths))
    region = now() - t_region
    print(f"processor {type(ip).__name__}")
    print(f"images {emb.shape[0]}")
    print(f"import_s {t_import:.4f}")
    print(f"load_s {t_load:.4f}")
    print(f"seconds {region:.4f}")
    print(f"decode_s {dec:.4f}")
    print(f"preprocess_s {pre:.4f}")
    print(f"forward_s {fwd:.4f}")
    print(f"other_s {region - dec - pre - fwd:.4f}")


def compare(a, b):
    import numpy as np
    x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
    print(f"shapes {x.shape} {y.shape}")
    if x.shape != y.shape:
        print("max_abs_diff inf")
        return
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    print(f"max_abs_diff {np.abs(x - y).max():.3g}")


if __name__ == "__main__":
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "make" and len(args) == 2:
        make(args[0], args[1])
    elif cmd == "images" and len(args) == 2:
        images(int(args[0]), args[1])
    elif cmd == "run" and len(args) == 5:
        run(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif cmd == "compare" and len(args) == 2:
        compare(args[0], args[1])
    else:
        sys.exit(__doc__)
