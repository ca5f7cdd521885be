"""Make the bundled example: a tiny DINO-layout ViT checkpoint (random weights).

Same parameter names and layout as DINO's hub checkpoints (dino_vits16): a plain
backbone state dict with cls_token, pos_embed, patch_embed, blocks.N and norm.
Width 64, 2 blocks, 2 heads, patch 16, 64 px images. Written with torch.save.
Usage: python examples/make_example.py  (writes examples/dino_vits16_tiny.pth)
"""
import os

import torch

g = torch.Generator().manual_seed(7)


def r(*s, scale=0.05):
    return (torch.randn(*s, generator=g) * scale).float()


dim, depth, mlp, patch, img = 64, 2, 256, 16, 64
n = (img // patch) ** 2 + 1
sd = {"cls_token": r(1, 1, dim), "pos_embed": r(1, n, dim),
      "patch_embed.proj.weight": r(dim, 3, patch, patch), "patch_embed.proj.bias": r(dim)}
for i in range(depth):
    p = f"blocks.{i}."
    sd.update({p + "norm1.weight": 1 + r(dim), p + "norm1.bias": r(dim),
               p + "attn.qkv.weight": r(3 * dim, dim), p + "attn.qkv.bias": r(3 * dim),
               p + "attn.proj.weight": r(dim, dim), p + "attn.proj.bias": r(dim),
               p + "norm2.weight": 1 + r(dim), p + "norm2.bias": r(dim),
               p + "mlp.fc1.weight": r(mlp, dim), p + "mlp.fc1.bias": r(mlp),
               p + "mlp.fc2.weight": r(dim, mlp), p + "mlp.fc2.bias": r(dim)})
sd.update({"norm.weight": 1 + r(dim), "norm.bias": r(dim)})
torch.save(sd, os.path.join(os.path.dirname(os.path.abspath(__file__)), "dino_vits16_tiny.pth"))
