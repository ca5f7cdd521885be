#!/usr/bin/env bash
# Install the Debian packages vitport builds with (idempotent).
# With --dev also the test tools: clang (libFuzzer), and a Python venv
# (.venv) with the peers the tests cross-check against.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="cmake build-essential pkg-config zlib1g-dev libcjson-dev libopenblas-dev libopenblas-openmp-dev libjpeg62-turbo-dev libpng-dev libpcre2-dev libutf8proc-dev libsentencepiece-dev libdeflate-dev libyajl-dev"
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1
[ $DEV = 1 ] && PKGS="$PKGS clang libclang-rt-14-dev libomp-dev libopenblas-pthread-dev python3-venv time"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if [ $DEV = 1 ]; then
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import torch, numpy, safetensors, transformers, PIL, tokenizers, sentencepiece, google.protobuf, skimage, importlib.util as u; assert u.find_spec('open_clip')" 2>/dev/null; then
    echo "creating .venv (torch 2.13.0 CPU, numpy, safetensors, transformers, Pillow, tokenizers, sentencepiece, scikit-image, open_clip_torch)"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
    # Pinned: an unpinned torch pulls a CUDA build of several GB.
    .venv/bin/pip install -q torch==2.13.0 numpy safetensors transformers pillow==13.0.0 tokenizers sentencepiece protobuf scikit-image
    # Only for its data (OpenAI's BPE vocabulary): its dependencies would pull
    # a torchvision that does not import beside torch 2.13.
    .venv/bin/pip install -q --no-deps open_clip_torch
  fi
fi
