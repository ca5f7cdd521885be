#!/usr/bin/env bash
# Benchmark: the inference engine against PyTorch (torch 2.13 CPU, transformers'
# classes, torch.inference_mode()) on the same random weights of real size
# (bench/peer_engine.py make: save_pretrained into bench/out/engine/), same thread
# count, both warm, in the same run:
#   - ViT-B/16 224 (ViTModel), CLIP ViT-B/32 image and text towers (CLIPModel),
#     SigLIP base patch16 224 image tower (SiglipModel); batch 1 and 8;
#     images (texts) per second, the ratio vitport/PyTorch, and the share of the
#     sgemm peak (vitport's BLAS measured in this run at the model's own shapes,
#     time-weighted) that vitport's whole forward reaches;
#   - the whole process on ViT-B/16 batch 8: `vitport run` (load, read inputs,
#     forward, write outputs) against PyTorch's warm forward and against a
#     Python process doing import + load + forward + save.
# A model that `vitport` does not run yet is skipped with a line saying so; a tower
# that it only runs together with the other is timed as both towers.
# The machine may be shared: every figure is the best of ROUNDS rounds (each
# round: vitport then PyTorch, best of REPS after warm-up runs), and the ratios
# come from the same run.
# Usage: bench/bench_engine.sh [BUILD_DIR]   (env: THREADS=2 ROUNDS=3 REPS=3,
#        MODELS="vit-b16:image clip-b32:image clip-b32:text siglip-b16:image")
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
PY="${VP_PYTHON:-$PWD/.venv/bin/python}"
THREADS="${THREADS:-2}"; ROUNDS="${ROUNDS:-3}"; REPS="${REPS:-3}"
OUT=bench/out/engine
cmake --build "$BUILD" --target vp_bench_engine vitport_cli -j2 >/dev/null
BENCH="$BUILD/vp_bench_engine"
[ -f "$OUT/siglip-b16/config.json" ] || "$PY" bench/peer_engine.py make "$OUT" 2>&1 | grep -v "^\[transformers\]\|shards" || true
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error

fmin() { awk -v a="$1" -v b="$2" 'BEGIN{print (a < b ? a : b)}'; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }
now() { date +%s.%N; }

echo "threads $THREADS, best of $ROUNDS rounds x $REPS runs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-22s %5s %12s %12s %9s %10s %12s\n" "model" "batch" "vitport/s" "pytorch/s" "ratio" "sgemm GF/s" "share of peak"

declare -A VP_S PT_S
for entry in ${MODELS:-vit-b16:image clip-b32:image clip-b32:text siglip-b16:image}; do
  name=${entry%%:*}; dir="$OUT/$name"
  for batch in 1 8; do
    tower=${entry##*:}; label="$name $tower"
    in="$dir/inputs_b$batch.npz"
    vp=999999; pt=999999; skip=""
    sh=$("$PY" bench/peer_engine.py shapes "$dir" "$tower" "$batch" 2>/dev/null)
    declare -A GF=()
    for ((r = 0; r < ROUNDS; r++)); do
      set +e
      o=$("$BENCH" forward "$dir" "$in" "$tower" "$THREADS" "$REPS" 2>&1); rc=$?
      set -e
      if [ $rc = 4 ] && [ "$tower" = image ] && [ "$name" = clip-b32 ]; then
        # this build runs CLIP's towers only together: time both (the text
        # entry then says so)
        tower=both; label="$name image+text"
        o=$("$BENCH" forward "$dir" "$in" both "$THREADS" "$REPS" 2>&1) || { skip="$o"; break; }
      elif [ $rc = 4 ] && [ "$tower" = text ] && [ "$name" = clip-b32 ]; then
        skip="vitport runs CLIP's towers only together (image+text above): $o"; break
      elif [ $rc != 0 ]; then
        skip="$o"; break
      fi
      vp=$(fmin "$vp" "$(awk '/^seconds/{print $2}' <<<"$o")")
      blas=$(awk '/^blas/{sub(/^blas /, ""); print}' <<<"$o")
      p=$("$PY" bench/peer_engine.py warm "$dir" "$tower" "$batch" "$THREADS" "$REPS" 2>/dev/null | awk '/^seconds/{print $2}')
      pt=$(fmin "$pt" "$p")
      # the sgemm peak at this forward's shapes, in the same round (best per shape)
      [ "$tower" = both ] && sh=$("$PY" bench/peer_engine.py shapes "$dir" both "$batch" 2>/dev/null)
      args=$(awk '/^gemm/{printf "%s %s %s ", $2, $3, $4}' <<<"$sh")
      while read -r _ m n k _ _ _ g _; do
        awk -v a="$g" -v b="${GF[$m $n $k]:-0}" 'BEGIN{exit !(a > b)}' && GF[$m $n $k]=$g
      done < <("$BENCH" sgemm "$THREADS" "$REPS" $args)
    done
    if [ -n "$skip" ]; then
      printf "%-22s %5s  skipped: %s\n" "$label" "$batch" "$(head -1 <<<"$skip")"
      continue
    fi
    # the sgemm peak at this forward's shapes, time-weighted over its products
    flops=$(awk '/^flops/{print $2}' <<<"$sh")
    peak=$(while read -r _ m n k c; do echo "$((2 * m * n * k)) $c ${GF[$m $n $k]}"; done < <(grep '^gemm' <<<"$sh") |
           awk '{f += $1 * $2; t += $1 * $2 / ($3 * 1e9)} END{print f / t / 1e9}')
    VP_S["$name-$tower-$batch"]=$vp; PT_S["$name-$tower-$batch"]=$pt
    printf "%-22s %5s %12s %12s %8.2fx %10.1f %11.0f%%\n" "$label" "$batch" \
      "$(calc %.2f "$batch/$vp")" "$(calc %.2f "$batch/$pt")" "$(calc %.4f "$pt/$vp")" "$peak" \
      "$(calc %.4f "100*$flops/$vp/1e9/$peak")"
  done
done
echo "(images, texts or image+text pairs per second; ratio = PyTorch's forward time / vitport's, > 1 means vitport is faster; BLAS: ${blas:-?})"
echo "(share of peak: the forward's encoder FLOPs / vitport's forward time, over the sgemm GFLOP/s its BLAS reaches at those shapes in this run)"

# the whole process, ViT-B/16 batch 8
dir="$OUT/vit-b16"; in="$dir/inputs_b8.npz"
proc() { # best wall seconds of ROUNDS runs of the command
  local best=999999 t0 t1
  for ((r = 0; r < ROUNDS; r++)); do
    t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(now)
    best=$(fmin "$best" "$(calc %.4f "$t1-$t0")")
  done
  echo "$best"
}
vrun=999999; prun=999999
for ((q = 0; q < ROUNDS; q++)); do   # alternating, so both see the same conditions
  vrun=$(fmin "$vrun" "$(ROUNDS=1 proc "$BUILD/vitport" run "$dir" --inputs "$in" --out "$OUT/run.npz" --threads "$THREADS" --quiet)")
  prun=$(fmin "$prun" "$(ROUNDS=1 proc "$PY" bench/peer_engine.py once "$dir" image "$in" "$OUT/run_py.npz" "$THREADS")")
done
warm8=${PT_S[vit-b16-image-8]:-}
rm -f "$OUT/run.npz" "$OUT/run_py.npz"
echo
echo "whole process, ViT-B/16 batch 8, $THREADS threads (best of $ROUNDS):"
printf "  vitport run (load + read inputs + forward + write outputs)   %8.3f s\n" "$vrun"
printf "  python (import torch/transformers + load + forward + save)  %8.3f s\n" "$prun"
[ -n "$warm8" ] && printf "  PyTorch warm forward alone (from the table above)           %8.3f s\n" "$warm8"
[ -n "$warm8" ] && printf "ratio PyTorch warm forward / vitport run process: %.2fx (target >= 1)\n" "$(calc %.4f "$warm8/$vrun")"
printf "ratio python process / vitport run process: %.2fx (target >= 2)\n" "$(calc %.4f "$prun/$vrun")"
b1v=${VP_S[vit-b16-image-1]:-}; b1p=${PT_S[vit-b16-image-1]:-}
[ -n "$b1v" ] && printf "ratio ViT-B/16 batch 1, vitport warm forward vs PyTorch warm forward: %.2fx (target >= 0.9)\n" "$(calc %.4f "$b1p/$b1v")"
echo "load now: $(cut -d' ' -f1-3 /proc/loadavg)"
