#!/usr/bin/env bash
# Benchmark: `vitport embed` over a directory of N JPEGs (decoding and preprocessing
# included) against the same pipeline in Python in the same run: Pillow's
# Image.open(f).convert("RGB"), the image processor transformers' AutoProcessor
# gives for the folder, CLIPModel / SiglipModel.get_image_features under
# torch.inference_mode() (PyTorch 2.13 CPU), L2-normalised, np.save; the same
# batch size and thread count. Reports images per second of both, the ratio, and
# each side's share of the time spent outside the forward pass (decode,
# preprocess, the rest), measured with a monotonic clock around the phases
# (vitport's from its own summary line); and the whole processes (start-up and
# model load included). The two embeddings are compared (max abs diff after
# L2-normalising, must be < 1e-4), so both sides did the same work.
#
# Prepared once and cached under BUILD_DIR/bench-embed/ (bench/peer_embed.py):
#   MODEL_NAME/  random weights (transformers' init, seed 0) saved with save_pretrained,
#                preprocessor_config.json as the Hub's checkpoints hold it, CLIP's
#                tokenizer from OpenAI's vocabulary (open_clip_torch's wheel)
#   images-N/    N JPEGs (quality 90) of varied sizes and aspect ratios cut from
#                scikit-image's photographs, and list.txt
# Usage: bench/bench_embed.sh [BUILD_DIR]   (default build-release, configured as
#        Release when missing; env: N=1000 BATCH=16 THREADS=2 REPS=1,
#        MODEL=clip-b32 | clip-b16 | siglip-b16, RESULTS=FILE)
# Each rep runs vitport, then Python, as fresh processes; each side's figures are
# from its rep with the shortest timed region. N=1000, REPS=1 takes about 3-4
# minutes on an idle 2-core machine (each rep adds about as much).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-release}"
PY="${VP_PYTHON:-$PWD/.venv/bin/python}"
N="${N:-1000}"; BATCH="${BATCH:-16}"; THREADS="${THREADS:-2}"; REPS="${REPS:-1}"; MODEL="${MODEL:-clip-b32}"
CACHE="$BUILD/bench-embed"; MDIR="$CACHE/$MODEL"; IDIR="$CACHE/images-$N"; W="$CACHE/run"
RESULTS="${RESULTS:-bench/out/RESULTS_embed_${MODEL}_n$N.txt}"
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TQDM_DISABLE=1
case "$MODEL" in clip-b32|clip-b16|siglip-b16) ;; *) echo "MODEL must be clip-b32, clip-b16 or siglip-b16" >&2; exit 2;; esac
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

# a release build of this tree
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVP_PYTHON="$PY" >/dev/null
fi
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt")
case "$btype" in Release|RelWithDebInfo) ;; *) echo "$BUILD is a '$btype' build; give a Release one" >&2; exit 1;; esac
cmake --build "$BUILD" --target vitport_cli -j2 >/dev/null
VP="$BUILD/vitport"

mkdir -p "$CACHE" "$W" "$(dirname "$RESULTS")"
if [ ! -f "$MDIR/preprocessor_config.json" ]; then
  echo "making $MDIR (random weights)"
  rm -rf "$MDIR.tmp"
  "$PY" bench/peer_embed.py make "$MODEL" "$MDIR.tmp" >/dev/null 2>"$W/make.err" || { cat "$W/make.err" >&2; exit 1; }
  rm -rf "$MDIR"; mv "$MDIR.tmp" "$MDIR"
fi
if [ ! -f "$IDIR/list.txt" ]; then
  echo "making $N JPEGs in $IDIR"
  rm -rf "$IDIR.tmp"
  "$PY" bench/peer_embed.py images "$N" "$IDIR.tmp" >/dev/null
  sed -i "s#$IDIR.tmp/#$IDIR/#" "$IDIR.tmp/list.txt"
  rm -rf "$IDIR"; mv "$IDIR.tmp" "$IDIR"
fi
LIST="$IDIR/list.txt"
cat "$MDIR"/* "$IDIR"/*.jpg >/dev/null   # warm page cache for both sides

calc() { awk "BEGIN{printf \"$1\", $2}"; }
now() { date +%s.%N; }
field() { awk -v k="$1" '$1 == k {print $2}' "$2"; }   # "key value" lines

load0=$(cut -d' ' -f1-3 /proc/loadavg); date0=$(date '+%F %H:%M')
best_vp=""; best_py=""
for ((r = 0; r < REPS; r++)); do
  # vitport: the whole process, wall and CPU; its phases from its summary line
  rm -f "$W/vp.npy" "$W/vp.txt" "$W/vp.npy.part" "$W/vp.txt.part" "$W/vp.npy.progress"
  t0=$(now)
  /usr/bin/time -f "cpu_s %U %S" -o "$W/vp.time" \
    "$VP" embed "$MDIR" --images-from "$LIST" --batch "$BATCH" --threads "$THREADS" --out "$W/vp.npy" 2>"$W/vp.err" ||
    { echo "vitport embed failed:" >&2; cat "$W/vp.err" >&2; exit 1; }
  t1=$(now)
  line=$(grep "this run in" "$W/vp.err") || { echo "no summary line from vitport embed:" >&2; cat "$W/vp.err" >&2; exit 1; }
  # "... N this run in S s (R images/s; decode A s, preprocess B s, forward C s, other D s; model load E s before); ..."
  sed -E 's/.* ([0-9]+) this run in ([0-9.]+) s .*decode ([0-9.]+) s, preprocess ([0-9.]+) s, forward ([0-9.]+) s, other (-?[0-9.]+) s; model load ([0-9.]+) s.*/images \1\nseconds \2\ndecode_s \3\npreprocess_s \4\nforward_s \5\nother_s \6\nload_s \7/' \
    <<<"$line" >"$W/vp.rec"
  [ "$(field images "$W/vp.rec")" = "$N" ] || { echo "vitport embedded $(field images "$W/vp.rec") of $N images:" >&2; cat "$W/vp.err" >&2; exit 1; }
  { echo "wall_s $(calc %.4f "$t1-$t0")"; awk '{printf "cpu_s %.2f\n", $2 + $3}' "$W/vp.time"; } >>"$W/vp.rec"

  # Python: a fresh interpreter, the same list, batch and threads
  t0=$(now)
  /usr/bin/time -f "cpu_s %U %S" -o "$W/py.time" \
    "$PY" bench/peer_embed.py run "$MDIR" "$LIST" "$BATCH" "$THREADS" "$W/py.npy" >"$W/py.rec" 2>"$W/py.err" ||
    { echo "the Python peer failed:" >&2; cat "$W/py.err" >&2; exit 1; }
  t1=$(now)
  [ "$(field images "$W/py.rec")" = "$N" ] || { echo "the Python peer embedded $(field images "$W/py.rec") of $N images" >&2; exit 1; }
  { echo "wall_s $(calc %.4f "$t1-$t0")"; awk '{printf "cpu_s %.2f\n", $2 + $3}' "$W/py.time"; } >>"$W/py.rec"

  for side in vp py; do
    best="best_$side"
    if [ -z "${!best}" ] || awk -v a="$(field seconds "$W/$side.rec")" -v b="$(field seconds "${!best}")" 'BEGIN{exit !(a < b)}'; then
      cp "$W/$side.rec" "$W/$side.best"; printf -v "$best" %s "$W/$side.best"
    fi
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

diff=$("$PY" bench/peer_embed.py compare "$W/vp.npy" "$W/py.npy" | awk '$1 == "max_abs_diff" {print $2}')
proc=$(field processor "$W/py.rec")

V="$W/vp.best"; P="$W/py.best"
g() { field "$1" "$2"; }
v() { calc %.2f "$(g "$1" "$2")"; }   # a figure as printed
share() { calc %.1f "100*($(g seconds "$1")-$(g forward_s "$1"))/$(g seconds "$1")"; }
pct() { calc %.1f "100*$(g "$1" "$2")/$(g seconds "$2")"; }
{
  echo "bench/bench_embed.sh: $MODEL, $N JPEGs ($(du -sh "$IDIR" | cut -f1)), batch $BATCH, $THREADS threads, best of $REPS; $date0"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average $load0 before, $load1 after"
  echo "vitport: $("$VP" --version 2>/dev/null | head -1 || echo "$VP") ($btype, $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo "python: torch $("$PY" -c 'import torch; print(torch.__version__)'), transformers $("$PY" -c 'import transformers; print(transformers.__version__)' 2>/dev/null), Pillow $("$PY" -c 'import PIL; print(PIL.__version__)'); processor: $proc (what AutoProcessor gives here$("$PY" -c 'import torchvision' 2>/dev/null && echo ', torchvision installed' || echo ': torchvision is not installed, so the PIL backend'))"
  echo
  printf "%-44s %12s %12s\n" "" "vitport" "python"
  printf "%-44s %12s %12s\n" "images/s (timed region: list, decode .. save)" "$(calc %.2f "$N/$(g seconds "$V")")" "$(calc %.2f "$N/$(g seconds "$P")")"
  printf "%-44s %12s %12s\n" "timed region, s" "$(v seconds "$V")" "$(v seconds "$P")"
  printf "%-44s %12s %12s\n" "  decode (read + decode the JPEGs), s" "$(v decode_s "$V")" "$(v decode_s "$P")"
  printf "%-44s %12s %12s\n" "  preprocess (resize, crop, normalize), s" "$(v preprocess_s "$V")" "$(v preprocess_s "$P")"
  printf "%-44s %12s %12s\n" "  forward (image tower + projection), s" "$(v forward_s "$V")" "$(v forward_s "$P")"
  printf "%-44s %12s %12s\n" "  other (copy, write rows), s" "$(v other_s "$V")" "$(v other_s "$P")"
  printf "%-44s %11s%% %11s%%\n" "share of the region outside the forward" "$(share "$V")" "$(share "$P")"
  printf "%-44s %11s%% %11s%%\n" "  of which decode" "$(pct decode_s "$V")" "$(pct decode_s "$P")"
  printf "%-44s %11s%% %11s%%\n" "  of which preprocess" "$(pct preprocess_s "$V")" "$(pct preprocess_s "$P")"
  printf "%-44s %12s %12s\n" "model load (+ imports for python), s" "$(v load_s "$V")" "$(calc %.2f "$(g load_s "$P")+$(g import_s "$P")")"
  printf "%-44s %12s %12s\n" "whole process, wall s" "$(v wall_s "$V")" "$(v wall_s "$P")"
  printf "%-44s %12s %12s\n" "whole process, CPU s (user + sys)" "$(v cpu_s "$V")" "$(v cpu_s "$P")"
  echo
  printf "ratio vitport / python images per second (timed regions):  %.2fx\n" "$(calc %.4f "$(g seconds "$P")/$(g seconds "$V")")"
  printf "ratio of the forward passes alone (python s / vitport s):   %.2fx\n" "$(calc %.4f "$(g forward_s "$P")/$(g forward_s "$V")")"
  printf "ratio of decode + preprocess (python s / vitport s):        %.2fx\n" \
    "$(calc %.4f "($(g decode_s "$P")+$(g preprocess_s "$P"))/($(g decode_s "$V")+$(g preprocess_s "$V"))")"
  printf "ratio of the whole processes (python wall / vitport wall):  %.2fx\n" "$(calc %.4f "$(g wall_s "$P")/$(g wall_s "$V")")"
  echo "embeddings: max abs diff $diff after L2-normalising (last rep's outputs; must be < 1e-4)"
} | tee "$RESULTS"
echo "(written to $RESULTS)"
awk -v d="$diff" 'BEGIN{exit !(d < 1e-4)}' || { echo "the embeddings differ: the two sides did not do the same work" >&2; exit 1; }
