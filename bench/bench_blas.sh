#!/usr/bin/env bash
# Benchmark: single-precision matrix products of Debian's BLAS builds at
# ViT-B/16's shapes (batch 8 and 1: M = 1576 / 197 rows; the attention's
# per-head products), C = A W^T as the engine calls them: OpenBLAS (pthreads
# and OpenMP builds), BLIS (OpenMP build) and oneDNN (dnnl_sgemm), whichever
# are installed (libopenblas-pthread-dev, libopenblas-openmp-dev,
# libblis-openmp-dev, libdnnl-dev). Each figure is the best of ROUNDS rounds of
# REPS runs, in GFLOP/s of wall time ("wall") and per CPU-second of the whole
# process ("cpu": with 1 thread, the kernel's speed without the time other
# processes took the core; with 2, also charged for spinning).
# Usage: bench/bench_blas.sh   (env: ROUNDS=3 REPS=5 THREADS_LIST="1 2")
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"; REPS="${REPS:-5}"; THREADS_LIST="${THREADS_LIST:-1 2}"
OUT=bench/out/blas; mkdir -p "$OUT"
A=/usr/lib/$(gcc -print-multiarch)
declare -a LIBS=()
build() { # name, extra gcc args...
  local name=$1; shift
  if gcc -O2 -fopenmp bench/blas_peers.c -o "$OUT/$name" "$@" 2>/dev/null; then LIBS+=("$name"); else echo "($name not installed)"; fi
}
[ -f "$A/openblas-pthread/libopenblas.so.0" ] && build openblas-pthread -I/usr/include/$(gcc -print-multiarch)/openblas-pthread "$A/openblas-pthread/libopenblas.so.0" -Wl,-rpath,"$A/openblas-pthread"
[ -f "$A/openblas-openmp/libopenblas.so.0" ] && build openblas-openmp -I/usr/include/$(gcc -print-multiarch)/openblas-openmp "$A/openblas-openmp/libopenblas.so.0" -Wl,-rpath,"$A/openblas-openmp"
[ -f "$A/blis-openmp/libblis.so.4" ] && build blis-openmp -I/usr/include/$(gcc -print-multiarch)/blis-openmp "$A/blis-openmp/libblis.so.4" -Wl,-rpath,"$A/blis-openmp"
[ -f /usr/include/dnnl.h ] && build onednn -DUSE_DNNL -ldnnl
SHAPES="1576 768 768  1576 3072 768  1576 768 3072  197 768 768  197 3072 768  197 768 3072  197 197 64  197 64 197"
echo "load $(cut -d' ' -f1-3 /proc/loadavg); best of $ROUNDS rounds x $REPS runs; GFLOP/s wall / cpu"
for t in $THREADS_LIST; do
  printf "\n%d thread(s)\n%-16s" "$t" "M N K"
  for l in "${LIBS[@]}"; do printf " %22s" "$l"; done; echo
  declare -A W=() C=()
  for ((r = 0; r < ROUNDS; r++)); do
    for l in "${LIBS[@]}"; do
      while read -r m n k _ g _ c; do
        key="$l $m $n $k"
        awk -v a="$g" -v b="${W[$key]:-0}" 'BEGIN{exit !(a > b)}' && W[$key]=$g
        awk -v a="$c" -v b="${C[$key]:-0}" 'BEGIN{exit !(a > b)}' && C[$key]=$c
      done < <(OPENBLAS_NUM_THREADS=$t BLIS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$OUT/$l" "$REPS" $SHAPES)
    done
  done
  set -- $SHAPES
  while [ $# -ge 3 ]; do
    printf "%-16s" "$1 $2 $3"
    for l in "${LIBS[@]}"; do printf " %10s / %9s" "${W[$l $1 $2 $3]}" "${C[$l $1 $2 $3]}"; done; echo
    shift 3
  done
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
