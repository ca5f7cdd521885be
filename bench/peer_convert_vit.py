"""The peer for bench_convert.sh: what the seed script does for a timm ViT
(rename, split qkv, save), with torch and safetensors, minus model building.

Usage: python bench/peer_convert_vit.py SRC.pth OUT_DIR
"""
import os
import sys

import torch
from safetensors.torch import save_file

src, out = sys.argv[1], sys.argv[2]
sd = torch.load(src, map_location="cpu", weights_only=True)
depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
dim = sd["cls_token"].shape[-1]
new = {}
names = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
         "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
for i in range(depth):
    for a, b in names.items():
        for s in ("weight", "bias"):
            new[f"vit.encoder.layer.{i}.{b}.{s}"] = sd.pop(f"blocks.{i}.{a}.{s}")
    w, bias = sd.pop(f"blocks.{i}.attn.qkv.weight"), sd.pop(f"blocks.{i}.attn.qkv.bias")
    for j, part in enumerate(("query", "key", "value")):
        new[f"vit.encoder.layer.{i}.attention.attention.{part}.weight"] = w[j * dim:(j + 1) * dim].clone()
        new[f"vit.encoder.layer.{i}.attention.attention.{part}.bias"] = bias[j * dim:(j + 1) * dim].clone()
new.update({"vit.embeddings.cls_token": sd.pop("cls_token"), "vit.embeddings.position_embeddings": sd.pop("pos_embed"),
            "vit.embeddings.patch_embeddings.projection.weight": sd.pop("patch_embed.proj.weight"),
            "vit.embeddings.patch_embeddings.projection.bias": sd.pop("patch_embed.proj.bias"),
            "vit.layernorm.weight": sd.pop("norm.weight"), "vit.layernorm.bias": sd.pop("norm.bias"),
            "classifier.weight": sd.pop("head.weight"), "classifier.bias": sd.pop("head.bias")})
assert not sd, sorted(sd)
os.makedirs(out, exist_ok=True)
save_file(new, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
