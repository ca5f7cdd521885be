# Sourced by the bench_*.sh scripts (from the repository root): the build to
# measure, the Python with the peers, and the shared 1.2 GB timm ViT-L
# checkpoint, generated once into bench/out/.
BUILD="${1:-build}"
PY="${VP_PYTHON:-$PWD/.venv/bin/python}"
OUT=bench/out; mkdir -p "$OUT"
CK="$OUT/vit_large_patch16_224.pth"
[ -f "$CK" ] || { echo "generating $CK"; "$PY" bench/gen_big.py "$CK"; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
size=$(stat -c %s "$CK")
