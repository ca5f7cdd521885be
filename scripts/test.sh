#!/usr/bin/env bash
# Run every test: the suite (with the Python cross-checks against torch,
# safetensors and transformers), the suite again under ASan+UBSan, and each
# fuzz target for a bounded time. Usage: scripts/test.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-${VP_FUZZ_SECONDS:-30}}"
scripts/deps.sh --dev
PY="$PWD/.venv/bin/python"
JOBS="$(nproc)"

echo "== build and test (release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVP_PYTHON="$PY" >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== build and test (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVP_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ctest --test-dir build-asan --output-on-failure -j"$JOBS"

if [ "$FUZZ_SECONDS" != 0 ] && [ -x fuzz/run.sh ]; then
  echo "== fuzz (${FUZZ_SECONDS}s per target)"
  fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "all tests passed"
