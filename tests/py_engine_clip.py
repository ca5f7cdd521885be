#!/usr/bin/env python3
"""`vitport run` against transformers (the venv's 5.x) on CLIP and CLIPSeg
models made here, at sizes the committed fixtures leave out because they
would be too big to commit: real image sizes (224 px at patch 32, CLIPSeg's
352 px on a 224 px config: a 22x22 grid interpolated from 14x14), real text
lengths (77), batch 4, 4 heads of 16, several layers. Random trained-scale
weights from fixed seeds; float32; every output within 1e-4 (the largest
difference per output is printed).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers as T
from vp_report import Report

BIN = os.path.abspath(os.environ["VP_BIN"])
TOL = 1e-4
report = Report("py_engine_clip")


def scramble(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(2.7)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim >= 2:
                fan = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan ** 0.5)
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))


def token_rows(n, length, vocab, eos, seed):
    g = np.random.default_rng(seed)
    ids = np.zeros((n, length), dtype=np.int64)
    for r in range(n):
        k = int(g.integers(1, length - 1))
        ids[r, 0] = vocab - 2
        ids[r, 1:k] = g.integers(3, vocab - 2, size=k - 1)
        ids[r, k] = eos
    return ids


def check(name, model, inputs, expected):
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        np.savez(os.path.join(d, "inputs.npz"), **inputs)
        out = os.path.join(d, "out.npz")
        r = subprocess.run([BIN, "run", d, "--inputs", os.path.join(d, "inputs.npz"), "--out", out,
                            "--threads", "2", "--quiet"], capture_output=True, text=True)
        report(r.returncode == 0, f"{name}: vitport run", r.stderr.strip())
        if r.returncode:
            return
        got = np.load(out)
        for k, v in expected.items():
            v = v.detach().numpy()
            if k not in got:
                report(False, name, f"no output {k}")
                continue
            same = got[k].shape == v.shape
            report(same, name, f"{k} shape {got[k].shape} != {v.shape}")
            if same:
                diff = float(np.abs(got[k] - v).max())
                print(f"{name} {k} {list(v.shape)}: max abs {diff:.3g}")
                report(diff <= TOL, name, f"{k} differs by {diff:.3g} > {TOL}")


def main():
    torch.manual_seed(0)
    # CLIP ViT-B/32-like geometry at small width: 224 px, patch 32, 77 tokens.
    cfg = T.CLIPConfig(
        text_config=dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=77, eos_token_id=999, bos_token_id=998),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                           image_size=224, patch_size=32),
        projection_dim=48)
    m = T.CLIPModel(cfg).eval()
    scramble(m, 1)
    pix = torch.randn(4, 3, 224, 224)
    ids = torch.from_numpy(token_rows(3, 77, 1000, 999, 2))
    with torch.inference_mode():
        o = m(input_ids=ids, pixel_values=pix)
    check("clip_b32_like", m, {"pixel_values": pix.numpy(), "input_ids": ids.numpy()},
          {"logits_per_image": o.logits_per_image, "logits_per_text": o.logits_per_text,
           "image_embeds": o.image_embeds, "text_embeds": o.text_embeds,
           "vision_model_last_hidden_state": o.vision_model_output.last_hidden_state,
           "text_model_last_hidden_state": o.text_model_output.last_hidden_state})

    # CLIPSeg rd64-refined-like: patch 16, config 224, run at 352 (as CIDAS'
    # processor sizes images), extract_layers (3, 6, 9) of 10 layers.
    cfg = T.CLIPSegConfig(
        text_config=dict(vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=20, eos_token_id=499, bos_token_id=498),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=10, num_attention_heads=4,
                           image_size=224, patch_size=16),
        projection_dim=64, reduce_dim=16, decoder_num_attention_heads=4, decoder_intermediate_size=32,
        extract_layers=[3, 6, 9], use_complex_transposed_convolution=True)
    m = T.CLIPSegForImageSegmentation(cfg).eval()
    scramble(m, 3)
    pix = torch.randn(2, 3, 352, 352)
    ids = torch.from_numpy(token_rows(2, 20, 500, 499, 4))
    with torch.inference_mode():
        o = m(input_ids=ids, pixel_values=pix)
    check("clipseg_refined_352", m, {"pixel_values": pix.numpy(), "input_ids": ids.numpy()},
          {"logits": o.logits, "conditional_embeddings": o.conditional_embeddings,
           "pooled_output": o.pooled_output})

    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
