"""Write a timm ViT-L/16-shaped checkpoint (about 1.2 GB, float32) for the benchmarks.

Usage: python bench/gen_big.py OUT.pth
Real names and shapes (timm vit_large_patch16_224 with a 1000-class head);
values are random. Written by torch.save, as timm users' checkpoints are.
"""
import sys

import torch


def vit_large_state_dict(depth=24, dim=1024, mlp=4096, patch=16, img=224, classes=1000):
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.empty(*shape).uniform_(-0.02, 0.02, generator=g)

    n = (img // patch) ** 2 + 1
    sd = {
        "cls_token": r(1, 1, dim),
        "pos_embed": r(1, n, dim),
        "patch_embed.proj.weight": r(dim, 3, patch, patch),
        "patch_embed.proj.bias": r(dim),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        sd.update({
            p + "norm1.weight": r(dim) + 1, p + "norm1.bias": r(dim),
            p + "attn.qkv.weight": r(3 * dim, dim), p + "attn.qkv.bias": r(3 * dim),
            p + "attn.proj.weight": r(dim, dim), p + "attn.proj.bias": r(dim),
            p + "norm2.weight": r(dim) + 1, p + "norm2.bias": r(dim),
            p + "mlp.fc1.weight": r(mlp, dim), p + "mlp.fc1.bias": r(mlp),
            p + "mlp.fc2.weight": r(dim, mlp), p + "mlp.fc2.bias": r(dim),
        })
    sd.update({"norm.weight": r(dim) + 1, "norm.bias": r(dim),
               "head.weight": r(classes, dim), "head.bias": r(classes)})
    return sd


if __name__ == "__main__":
    torch.save(vit_large_state_dict(), sys.argv[1])
