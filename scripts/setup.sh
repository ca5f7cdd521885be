#!/usr/bin/env bash
# One command for a new user: install what vitport needs, build it, and run the
# main job on a bundled example: convert a DINO checkpoint to the Hugging Face
# layout in ./example-out (verified by running both models), then embed a
# photograph with the converted model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
./build/vitport inspect examples/dino_vits16_tiny.pth
echo
./build/vitport convert examples/dino_vits16_tiny.pth example-out --force --family dino --set num_attention_heads=2
echo
ls -l example-out
echo
./build/vitport embed example-out --image examples/coffee.jpg --out example-out/coffee-embedding.npy
