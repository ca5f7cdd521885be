#!/usr/bin/env bash
# Benchmark: `vitport convert` of a 1.2 GB timm ViT-L/16 checkpoint (f32 out;
# with the CRC-32 check of every member, the default, and with --no-crc),
# against `cp` of the same file (the floor:
# the kernel's copy_file_range) and against the Python peer doing the seed's
# mapping with torch + safetensors (bench/peer_convert_vit.py). Reports best
# wall time of 3 runs, peak RSS (GNU time -v "Maximum resident set size", which
# counts touched pages of a mapped source), and ratios.
# Usage: bench/bench_convert.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh "$@"
cat "$CK" > /dev/null   # warm the page cache for every contender alike

run() { # key, label, command...: best of 3 wall seconds and the peak RSS of that run
  local key=$1 label=$2; shift 2
  local best=999999 bkb=0
  for _ in 1 2 3; do
    rm -rf "$OUT/conv" "$OUT/copy.pth"
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" >/dev/null 2>"$OUT/stderr.txt" || { cat "$OUT/stderr.txt"; exit 1; }
    read -r s kb < "$OUT/time.txt"
    if awk "BEGIN{exit !($s < $best)}"; then best=$s; bkb=$kb; fi
  done
  printf "%-40s %8.2f %12.1f\n" "$label" "$best" "$(awk "BEGIN{print $bkb/1024}")"
  eval "${key}_s=$best; ${key}_kb=$bkb"
}
printf "source: %s (%.2f GB)\n" "$CK" "$(awk "BEGIN{print $size/1e9}")"
printf "%-40s %8s %12s\n" "command" "wall s" "peak RSS MB"
run cp "cp" cp "$CK" "$OUT/copy.pth"
run vitport "vitport convert" "$BUILD/vitport" convert "$CK" "$OUT/conv" --quiet --force --model-name vit_large_patch16_224
run nocrc "vitport convert --no-crc" "$BUILD/vitport" convert "$CK" "$OUT/conv" --quiet --force --model-name vit_large_patch16_224 --no-crc
[ -n "${VP_BENCH_NO_PYTHON:-}" ] || run python "python (torch.load + safetensors)" "$PY" bench/peer_convert_vit.py "$CK" "$OUT/conv"
rm -rf "$OUT/conv" "$OUT/copy.pth"
printf "ratio vitport/cp: wall %.2fx (target <= 1.5x); peak RSS %.0f MB (target < 100 MB)\n" \
  "$(awk "BEGIN{print $vitport_s/($cp_s>0.01?$cp_s:0.01)}")" "$(awk "BEGIN{print $vitport_kb/1024}")"
printf "ratio vitport --no-crc/cp: wall %.2fx; the CRC-32 check costs %.2fx of --no-crc\n" \
  "$(awk "BEGIN{print $nocrc_s/($cp_s>0.01?$cp_s:0.01)}")" "$(awk "BEGIN{print $vitport_s/($nocrc_s>0.01?$nocrc_s:0.01)}")"
[ -n "${VP_BENCH_NO_PYTHON:-}" ] || printf "ratio python/vitport: wall %.1fx, peak RSS %.1fx\n" \
  "$(awk "BEGIN{print $python_s/($vitport_s>0.01?$vitport_s:0.01)}")" "$(awk "BEGIN{print $python_kb/$vitport_kb}")"
