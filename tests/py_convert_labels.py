#!/usr/bin/env python3
"""timm heads of every ImageNet label set timm knows get the id2label the
seed writes through timm's ImageNetInfo(infer_imagenet_subset(model)): the
class count picks the subset (1000, 11221, 11821, 21841, 21842, 21843), and
the ids are timm's lists (timm 1.0.31's timm/data/_info/*_synsets.txt, kept
in data/), built into the library. Checked on tiny-width torch checkpoints
made here with those head sizes, converted with VITPORT_DATADIR unset; a
count outside the table gets LABEL_i; the subset used is named on stderr."""
import json
import os
import subprocess
import sys
import tempfile

import torch
from vp_report import Report

BIN = os.path.abspath(os.environ["VP_BIN"])
FIX = os.environ["VP_FIXTURES"]
SRC = os.environ["VP_SRC"]
SUBSETS = {1000: ("imagenet-1k", "imagenet_synsets.txt"),
           11221: ("imagenet-21k-miil", "imagenet21k_miil_synsets.txt"),
           11821: ("imagenet-12k", "imagenet12k_synsets.txt"),
           21841: ("imagenet-22k", "imagenet22k_synsets.txt"),
           21842: ("imagenet-22k-ms", "imagenet22k_ms_synsets.txt"),
           21843: ("imagenet-21k-goog", "imagenet21k_goog_synsets.txt")}
report = Report("py_convert_labels")


base = torch.load(os.path.join(FIX, "convert", "vit_head.pth"), weights_only=True)
D = base["head.weight"].shape[1]
env = dict(os.environ)
env.pop("VITPORT_DATADIR", None)
with tempfile.TemporaryDirectory() as tmp:
    for K in list(SUBSETS) + [21844]:
        sd = dict(base)
        g = torch.Generator().manual_seed(K)
        sd["head.weight"] = torch.randn(K, D, generator=g) * 0.02
        sd["head.bias"] = torch.zeros(K)
        src = os.path.join(tmp, f"vit_{K}.pth")
        torch.save(sd, src)
        out = os.path.join(tmp, f"out_{K}")
        r = subprocess.run([BIN, "convert", src, out, "--set", "num_attention_heads=2", "--no-verify"],
                           capture_output=True, text=True, env=env, cwd=tmp)
        report(r.returncode == 0, f"{K} classes: exit {r.returncode}: {r.stderr[-300:]}")
        if r.returncode:
            continue
        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        names = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
        report(len(names) == K, f"{K} classes: id2label has {len(names)}")
        if K in SUBSETS:
            subset, fname = SUBSETS[K]
            with open(os.path.join(SRC, "data", fname)) as f:
                want = f.read().splitlines()
            report(names == want, f"{K} classes: id2label is not {fname}")
            report(cfg["label2id"] == {v: i for i, v in enumerate(want)}, f"{K} classes: label2id")
            report(f"ImageNet subset {subset}" in r.stderr, f"{K} classes: subset not named: {r.stderr}")
            os.remove(os.path.join(out, "model.safetensors"))
        else:
            report(names == [f"LABEL_{i}" for i in range(K)], f"{K} classes: not LABEL_i")
            report("ImageNet subset" not in r.stderr, f"{K} classes: a subset named: {r.stderr}")
        os.remove(src)

sys.exit(report.finish())
