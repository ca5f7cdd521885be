#!/usr/bin/env bash
# Fuzz every fuzz/fuzz_*.c target for SECONDS each (default 60):
#   fuzz/run.sh [SECONDS]
# Builds with clang in build-fuzz, first replays each target's committed
# corpus (fuzz/corpus/TARGET: the minimised inputs of the longer campaigns,
# fuzz/campaign.sh) in full, then seeds each corpus from tests/fixtures, the
# conformance checkpoints (files under 2 MB, chosen by their magic bytes) and
# the committed corpus, runs the targets one after another and prints one line
# per target.
# Exits non-zero if any target found a crash, leak, timeout or sanitizer report
# (the input is kept in build-fuzz/artifacts/).
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
conf=${VP_CONFORMANCE:-$root/../shared/conformance}

targets=()
for f in "$root"/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done

mkdir -p "$build"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DVP_FUZZ=ON -DVP_BUILD_TESTS=OFF >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j2 --target "${targets[@]}" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log"; exit 1; }

# kind FILE: zip | npy | safetensors | pickle | other (from the first bytes)
kind() {
  local head
  head=$(head -c 9 "$1" | od -An -v -tx1 | tr -d ' \n')
  case $head in
    504b0304*|504b0506*) echo zip ;;
    934e554d5059*) echo npy ;;
    80*) echo pickle ;;
    ????????????????7b) echo safetensors ;;
    *) echo other ;;
  esac
}

wants() {   # wants TARGET KIND PATH: does this file seed this target?
  case $1 in
    fuzz_source) return 0 ;;
    fuzz_convert)   # checkpoint sources (not references or inputs), and its own structured seeds
      case $3 in
        */fixtures/convert/*.pth|*/fixtures/convert/*.pt|*/fixtures/convert/*.npz) return 0 ;;
        */model.pth|*/model.pt|*/model.npz|*/seed-hand/convert-*) return 0 ;;
        *) return 1 ;;
      esac ;;
    fuzz_tokenizer)   # the tokenizer fixtures (files, and expected.json's texts)
      case $3 in */fixtures/text/*|*/seed-hand/tok-*) return 0 ;; *) return 1 ;; esac ;;
    fuzz_image) case $3 in */fixtures/image/files/*|*/fixtures/image/bad/*) return 0 ;; *) return 1 ;; esac ;;
    fuzz_model) case $3 in */seed-hand/model-*) return 0 ;; *) return 1 ;; esac ;;
    fuzz_zip) [ "$2" = zip ] ;;
    fuzz_npy) [ "$2" = npy ] ;;
    fuzz_safetensors) [ "$2" = safetensors ] ;;
    fuzz_pickle) [ "$2" = pickle ] ;;
    *) return 1 ;;
  esac
}

seeds=()
for dir in "$root/tests/fixtures" "$conf"; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' f; do seeds+=("$f"); done < <(find "$dir" -type f -size -2M -print0)
done

# npz members and torch pickles inside small archives make good seeds too.
extract=$build/seed-extract
rm -rf "$extract"; mkdir -p "$extract"
if command -v python3 >/dev/null; then
  for f in "${seeds[@]}"; do
    [ "$(kind "$f")" = zip ] || continue
    python3 - "$f" "$extract" <<'PY' || true
import sys, zipfile, hashlib
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for i in z.infolist():
        if i.file_size < 2 << 20 and (i.filename.endswith(".npy") or i.filename.endswith(".pkl")):
            b = z.read(i)
            open("%s/%s" % (out, hashlib.sha1(b).hexdigest()[:16]), "wb").write(b)
PY
  done
  while IFS= read -r -d '' f; do seeds+=("$f"); done < <(find "$extract" -type f -print0)
fi

# A few tiny hand-made inputs, so that no corpus starts empty.
hand=$build/seed-hand
rm -rf "$hand"; mkdir -p "$hand"
printf '\x38\0\0\0\0\0\0\0{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}\x20\x20\0\0\x80\x3f\0\0\0\x40' >"$hand/st"
printf '\x93NUMPY\x01\0\x76\0{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2,), }%*s\n\0\0\x80\x3f\0\0\0\x40' 60 '' >"$hand/npy"
printf '\x80\x02}q\0X\x01\0\0\0aq\x01K\x01s.' >"$hand/pickle"
# fuzz_convert's structured mode: 'S', family byte (variant<<7 | tie<<6 |
# preset<<3), three option bytes, then the sizes (first: the width index).
for s in vit:08:01 deit:10:01 dino:98:01 clip:60:01 clipbufs:e0:01 siglip:68:00 siglihead:e8:00 \
         clipseg:70:01 clipsegref:78:01; do
  IFS=: read -r n fam w <<<"$s"
  { printf "S\\x$fam\\0\\0\\0\\x$w"; head -c 18 /dev/zero; } >"$hand/convert-$n"
done
# fuzz_tokenizer's directory mode: vocab.json, merges.txt, tokenizer_config.json
printf 'DIR\n{"a":0,"b</w>":1,"ab</w>":2,"<|startoftext|>":3,"<|endoftext|>":4}\n----\n#version: 0.2\na b</w>\n----\n{"model_max_length":5}' >"$hand/tok-dir"
printf 'a photo of a cat\n<|endoftext|> </s>\nH\xc3\xa9llo \xe6\x97\xa5\n\xff' >"$hand/tok-texts"
# fuzz_model: engine fixture folders as CONFIG \0 WEIGHTS (and, for one,
# CONFIG \0 INDEX \0 WEIGHTS with every tensor mapped to the one shard).
for d in "$root"/tests/fixtures/engine/*/ "$root"/tests/fixtures/engine/errors/*/; do
  [ -f "$d/config.json" ] && [ -f "$d/model.safetensors" ] || continue
  { cat "$d/config.json"; printf '\0'; cat "$d/model.safetensors"; } >"$hand/model-$(basename "$d")"
done
if command -v python3 >/dev/null && [ -f "$root/tests/fixtures/engine/siglip_p8/model.safetensors" ]; then
  python3 - "$root/tests/fixtures/engine/siglip_p8" "$hand/model-index" <<'PY' || true
import json, struct, sys
d, out = sys.argv[1], sys.argv[2]
w = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", w[:8])[0]
keys = [k for k in json.loads(w[8:8 + n]) if k != "__metadata__"]
idx = json.dumps({"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in keys}})
open(out, "wb").write(open(d + "/config.json", "rb").read() + b"\0" + idx.encode() + b"\0" + w)
PY
fi
for f in "$hand"/*; do seeds+=("$f"); done

status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus" "$build/artifacts"
  n=0
  for f in "${seeds[@]}"; do
    if wants "$t" "$(kind "$f")" "$f"; then
      cp -f "$f" "$corpus/seed-$(sha1sum <"$f" | cut -c1-16)"; n=$((n + 1))
    fi
  done
  log=$build/$t.log
  keep=$root/fuzz/corpus/$t
  keepdirs=()
  [ -d "$keep" ] && keepdirs=("$keep")
  set +e
  rc=0 kept=0
  if [ -d "$keep" ]; then   # every committed input, once: a regression fails here
    kept=$(find "$keep" -type f | wc -l)
    "$build/fuzz/$t" -runs=0 -rss_limit_mb=2048 -timeout=30 -artifact_prefix="$build/artifacts/$t-" \
      "$keep" >"$build/$t.replay.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || cp "$build/$t.replay.log" "$log"
  fi
  if [ $rc -eq 0 ]; then
    "$build/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -timeout=30 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$corpus" "${keepdirs[@]}" >"$log" 2>&1
    rc=$?
  fi
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    echo "$t: ok, $kept committed inputs replayed, ${runs:-?} runs in ${secs}s, $n seeds, corpus $files files"
  else
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    why=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' "$log" || true)
    echo "$t: FAILED (exit $rc): ${why:-see $log}; input: ${art:-?}; log: $log"
    status=1
  fi
done
exit $status
