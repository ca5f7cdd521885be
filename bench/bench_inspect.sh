#!/usr/bin/env bash
# Benchmark: `vitport inspect` on a >= 1 GiB torch checkpoint, against the peer
# a user would reach for: torch.load(mmap=True, weights_only=True) listing the
# same names, dtypes and shapes. Reports wall time and peak RSS (GNU time -v),
# best of 3, and the ratio peer/vitport. Usage: bench/bench_inspect.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh "$@"

measure() { # prints "seconds kb": best wall time of 5 runs (microsecond clock), peak RSS
  local best_s=999999 kb t0 t1 s
  for _ in 1 2 3 4 5; do
    t0=$EPOCHREALTIME; "$@" >/dev/null; t1=$EPOCHREALTIME
    s=$(awk "BEGIN{print $t1 - $t0}")
    if awk "BEGIN{exit !($s < $best_s)}"; then best_s=$s; fi
  done
  /usr/bin/time -f "%M" -o "$OUT/time.txt" "$@" >/dev/null
  read -r kb < "$OUT/time.txt"
  echo "$best_s $kb"
}

cat > "$OUT/peer_inspect.py" <<'PY'
import sys, torch
sd = torch.load(sys.argv[1], mmap=True, weights_only=True, map_location="cpu")
total = 0
for k, v in sd.items():
    print(k, str(v.dtype), list(v.shape), v.numel() * v.element_size())
    total += v.numel()
print(total)
PY
read -r vs vkb < <(measure "$BUILD/vitport" inspect "$CK")
read -r ps pkb < <(measure "$PY" "$OUT/peer_inspect.py" "$CK")
read -r is ikb < <(measure "$PY" -c "import torch")
printf "checkpoint: %s (%.2f GiB)\n" "$CK" "$(awk "BEGIN{print $size/1073741824}")"
printf "%-44s %9s %12s\n" "command" "wall s" "peak RSS MB"
printf "%-44s %9.4f %12.1f\n" "vitport inspect" "$vs" "$(awk "BEGIN{print $vkb/1024}")"
printf "%-44s %9.4f %12.1f\n" "torch.load(mmap=True, weights_only=True)" "$ps" "$(awk "BEGIN{print $pkb/1024}")"
printf "%-44s %9.4f %12.1f\n" "  (of which python + import torch alone)" "$is" "$(awk "BEGIN{print $ikb/1024}")"
printf "ratio (torch / vitport): wall %.1fx, peak RSS %.1fx\n" \
  "$(awk "BEGIN{print $ps/$vs}")" "$(awk "BEGIN{print $pkb/$vkb}")"
