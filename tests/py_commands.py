#!/usr/bin/env python3
"""The model-facing commands against transformers (PIL backend processors,
the tokenizers, the PyTorch models) on the same files: `preprocess` and
`tokenize` must give the identical arrays, `embed` and `classify` the
embeddings / probabilities within 1e-4, `segment` the heat map within one
grey level of sigmoid(logits) resized bilinearly (torch's interpolate,
align_corners=False). Models: the CLIP, CLIPSeg and ViT engine fixtures with
a tiny hand-written CLIP BPE vocabulary, and a tiny SigLIP made here (its
text vocabulary must hold the 600 pieces of the SentencePiece fixture).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers as T
from PIL import Image
from vp_report import Report

BIN = os.path.abspath(os.environ["VP_BIN"])
FIX = os.environ.get("VP_FIXTURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
IMG = os.path.join(FIX, "image", "files")
TOL = 1e-4
report = Report("py_commands")


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode:
        print(p.stderr, file=sys.stderr)
    return p


def clip_tokenizer(d, nv, length):
    vocab = {t: i for i, t in enumerate(["a", "c", "d", "g", "l", "o", "s", "t"] +
                                        [c + "</w>" for c in "acdglost"] + ["ca", "cat</w>", "do", "dog</w>"])}
    vocab["<|startoftext|>"] = nv - 2
    vocab["<|endoftext|>"] = nv - 1
    json.dump(vocab, open(os.path.join(d, "vocab.json"), "w"))
    open(os.path.join(d, "merges.txt"), "w").write("#version: 0.2\nc a\nca t</w>\nd o\ndo g</w>\n")
    json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": length, "bos_token": "<|startoftext|>",
               "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
              open(os.path.join(d, "tokenizer_config.json"), "w"))


def preproc(d, kind, size):
    if kind == "CLIP":
        cfg = {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": size},
               "crop_size": {"height": size, "width": size}}
    else:
        cfg = {"image_processor_type": kind + "ImageProcessor", "size": {"height": size, "width": size}}
    json.dump(cfg, open(os.path.join(d, "preprocessor_config.json"), "w"))


def fixture(tmp, name, kind, size):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(FIX, "engine", name, f), d)
    preproc(d, kind, size)
    return d


def make_siglip(tmp):
    torch.manual_seed(0)
    common = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
    cfg = T.SiglipConfig(text_config=dict(vocab_size=600, max_position_embeddings=16, **common),
                         vision_config=dict(image_size=16, patch_size=8, **common))
    m = T.SiglipModel(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
        m.logit_scale.fill_(2.3)
        m.logit_bias.fill_(-1.0)
    d = os.path.join(tmp, "siglip")
    m.save_pretrained(d)
    shutil.copy(os.path.join(FIX, "text", "siglip_nobf", "spiece.model"), d)
    tc = json.load(open(os.path.join(FIX, "text", "siglip_nobf", "tokenizer_config.json")))
    tc["model_max_length"] = 16
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
    preproc(d, "Siglip", 16)
    return d


def load_images(files):
    return [Image.open(f) for f in files]


def check_preprocess(d, files, what):
    out = os.path.join(d, "pv.npy")
    p = run("preprocess", d, *sum((["--image", f] for f in files), []), "--out", out)
    ref = T.AutoImageProcessor.from_pretrained(d, backend="pil")(images=load_images(files), return_tensors="np")["pixel_values"]
    got = np.load(out) if not p.returncode else None
    report(got is not None and got.shape == ref.shape and np.array_equal(got, ref), f"{what}: preprocess",
           "" if got is None or got.shape != ref.shape else f"max diff {np.abs(got - ref).max()}")
    return ref


def check_tokenize(d, texts, what):
    out = os.path.join(d, "ids.npy")
    p = run("tokenize", d, *sum((["--text", t] for t in texts), []), "--out", out)
    ref = T.AutoTokenizer.from_pretrained(d)(texts, padding="max_length", truncation=True, return_tensors="np")["input_ids"]
    got = np.load(out) if not p.returncode else None
    report(got is not None and got.dtype == np.int64 and np.array_equal(got, ref), f"{what}: tokenize", f"{got} vs {ref}")
    return torch.from_numpy(ref.astype(np.int64))


def check_embed(d, args, ref, what):
    out = os.path.join(d, "emb.npy")
    p = run("embed", d, *args, "--out", out)
    got = np.load(out) if not p.returncode else None
    ok = got is not None and got.shape == ref.shape
    diff = float(np.abs(got - ref).max()) if ok else None
    print(f"{what}: embed max diff {diff}")
    report(ok and diff < TOL, f"{what}: embed", f"diff {diff}")


def check_zero_shot(d, files, labels, model, pix, sig, what):
    ids = torch.from_numpy(T.AutoTokenizer.from_pretrained(d)(labels, padding="max_length", truncation=True,
                                                             return_tensors="np")["input_ids"].astype(np.int64))
    with torch.no_grad():
        lpi = model(pixel_values=pix, input_ids=ids).logits_per_image
    probs = torch.sigmoid(lpi) if sig else lpi.softmax(dim=1)
    p = run("classify", d, *sum((["--image", f] for f in files), []), "--labels", ",".join(labels))
    lines = p.stdout.splitlines()
    want = [(f"{probs[i][j].item():.1%}", i, labels[j]) for i in range(len(files)) for j in range(len(labels))]
    got = [re.fullmatch(r"([0-9.]+%) that image (\d+) is '(.*)'", l) for l in lines]
    ok = len(got) == len(want) and all(g and abs(float(g[1][:-1]) - float(w[0][:-1])) <= 0.1 + 1e-9 and
                                       int(g[2]) == w[1] and g[3] == w[2] for g, w in zip(got, want))
    exact = sum(1 for g, w in zip(got, want) if g and g[1] == w[0])
    print(f"{what}: classify {exact}/{len(want)} lines identical to the Python format")
    report(ok and exact >= len(want) - 1, f"{what}: classify", f"{lines} vs {want}")


def main():
    tmp = tempfile.mkdtemp(prefix="vp_py_commands.")
    try:
        files = [os.path.join(IMG, f) for f in ("photo_chelsea.png", "photo_coffee_q90.jpg", "png_la.png",
                                                 "jpeg_odd_13x7.jpg", "png_palette.png" if os.path.exists(
                                                     os.path.join(IMG, "png_palette.png")) else "png_2x3.png")]
        texts = ["a cat", "A  DOG", "dog cat cat cat cat cat cat cat cat cat cat cat", "", "a glass"]
        texts_sig = ["a photo of 2 cats", "A Dog!", "", "x " * 40, "café"]

        # CLIP
        d = fixture(tmp, "clip_p8_h3", "CLIP", 16)
        clip_tokenizer(d, 64, 12)
        pix = torch.from_numpy(check_preprocess(d, files, "CLIP"))
        ids = check_tokenize(d, texts, "CLIP")
        # A processor saved by transformers 5 writes processor_config.json (the image
        # processor nested in it) and no preprocessor_config.json; from_pretrained
        # prefers it. Here it differs from the stale preprocessor_config.json left beside.
        d5 = os.path.join(tmp, "clip_saved_by_processor")
        shutil.copytree(d, d5)
        proc = T.AutoProcessor.from_pretrained(d)
        proc.image_processor.size = {"shortest_edge": 13}
        proc.image_processor.crop_size = {"height": 11, "width": 12}
        os.remove(os.path.join(d5, "preprocessor_config.json"))
        proc.save_pretrained(d5)
        report(os.path.exists(os.path.join(d5, "processor_config.json")) and
               not os.path.exists(os.path.join(d5, "preprocessor_config.json")),
               "CLIPProcessor.save_pretrained writes processor_config.json only", str(sorted(os.listdir(d5))))
        shutil.copy(os.path.join(d, "preprocessor_config.json"), d5)
        check_preprocess(d5, files, "CLIP (processor_config.json)")
        got5 = os.path.join(d5, "pv.npy")
        shape5 = np.load(got5).shape if os.path.exists(got5) else None
        report(shape5 is not None and shape5[-2:] == (11, 12), "vitport uses processor_config.json's image processor",
               str(shape5))
        m = T.CLIPModel.from_pretrained(d).eval()
        with torch.no_grad():
            o = m(pixel_values=pix, input_ids=ids)
        check_embed(d, sum((["--image", f] for f in files), []) + ["--batch", "2"], o.image_embeds.numpy(), "CLIP image")
        check_embed(d, sum((["--text", t] for t in texts), []), o.text_embeds.numpy(), "CLIP text")
        check_zero_shot(d, files[:2], ["a cat", "a dog", "a glass"], m, pix[:2], False, "CLIP")

        # SigLIP
        d = make_siglip(tmp)
        pix = torch.from_numpy(check_preprocess(d, files, "SigLIP"))
        ids = check_tokenize(d, texts_sig, "SigLIP")
        m = T.SiglipModel.from_pretrained(d).eval()
        with torch.no_grad():
            o = m(pixel_values=pix, input_ids=ids)
        check_embed(d, sum((["--image", f] for f in files), []), o.image_embeds.numpy(), "SigLIP image")
        check_embed(d, sum((["--text", t] for t in texts_sig), []), o.text_embeds.numpy(), "SigLIP text")
        check_zero_shot(d, files[:2], ["a photo of 2 cats", "a photo of 2 dogs"], m, pix[:2], True, "SigLIP")

        # ViT classifier: embed (CLS of last_hidden_state) and top-K
        d = fixture(tmp, "vit_cls_odd", "ViT", 16)
        files = [f for f in files if not f.endswith("_la.png")]   # ViTImageProcessor has no RGB conversion
        pix = torch.from_numpy(check_preprocess(d, files, "ViT"))
        m = T.ViTForImageClassification.from_pretrained(d).eval()
        with torch.no_grad():
            o = m(pixel_values=pix, output_hidden_states=True)
            last = m.vit.layernorm(o.hidden_states[-1])
        check_embed(d, sum((["--image", f] for f in files), []), last[:, 0].numpy(), "ViT")
        p = run("classify", d, "--image", files[0], "--top", "3")
        probs = o.logits[0].softmax(-1)
        top = torch.topk(probs, 3)
        want = [f"{100 * v.item():5.1f}%  {m.config.id2label[i.item()]} ({i.item()})" for v, i in zip(top.values, top.indices)]
        got = [l.strip() for l in p.stdout.splitlines()[1:]]
        report(got == [w.strip() for w in want], "ViT classify top-3", f"{got} vs {want}")

        # CLIPSeg: the heat maps
        d = fixture(tmp, "clipseg_plain", "ViT", 32)
        clip_tokenizer(d, 40, 8)
        prompts = ["a cat", "a glass"]
        img = Image.open(files[0])
        pix = torch.from_numpy(T.AutoImageProcessor.from_pretrained(d, backend="pil")(
            images=[img] * 2, return_tensors="np")["pixel_values"])
        ids = check_tokenize(d, prompts, "CLIPSeg")
        m = T.CLIPSegForImageSegmentation.from_pretrained(d).eval()
        with torch.no_grad():
            lg = m(pixel_values=pix, input_ids=ids).logits
        heat = torch.nn.functional.interpolate(torch.sigmoid(lg)[:, None], size=(img.height, img.width),
                                               mode="bilinear", align_corners=False)[:, 0]
        out = os.path.join(d, "mask.png")
        run("segment", d, "--image", files[0], "--prompt", prompts[0], "--prompt", prompts[1], "--out", out)
        for i in range(2):
            f = os.path.join(d, f"mask-{i}.png")
            got = np.asarray(Image.open(f)).astype(np.int32) if os.path.exists(f) else None
            want = np.rint(heat[i].numpy() * 255).astype(np.int32)
            ok = got is not None and got.shape == want.shape and np.abs(got - want).max() <= 1
            report(ok, f"CLIPSeg mask {i}", "" if got is None else f"shape {got.shape} vs {want.shape}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(report.finish())


if __name__ == "__main__":
    main()
