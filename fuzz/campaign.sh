#!/usr/bin/env bash
# A longer fuzzing campaign for one target, then a minimised corpus for CI:
#   fuzz/campaign.sh TARGET SECONDS [MAX_SEED_BYTES]     (SECONDS 0: only merge)
# FUZZ_MAX_LEN sets libFuzzer's -max_len (default 1048576; longer corpus
# inputs are truncated to it, and small targets run faster with less).
# Needs the build and seed corpus that fuzz/run.sh makes (run `fuzz/run.sh 1`
# first). Runs TARGET at the lowest priority (nice 19) for SECONDS on
# build-fuzz/corpus/TARGET plus fuzz/corpus/TARGET, prints libFuzzer's final
# stats (executions, coverage), then merges (-merge=1) every input of at most
# MAX_SEED_BYTES (default 4096) into fuzz/corpus/TARGET, which fuzz/run.sh
# replays in full. Large inputs stay out of the repository: run.sh seeds the
# targets with the fixtures and conformance checkpoints anyway.
set -euo pipefail
t=$1 secs=$2 maxb=${3:-4096} maxlen=${FUZZ_MAX_LEN:-1048576}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
bin=$build/fuzz/$t
[ -x "$bin" ] || { echo "no $bin: run fuzz/run.sh 1 first" >&2; exit 1; }
work=$build/corpus/$t keep=$root/fuzz/corpus/$t
mkdir -p "$work" "$keep" "$build/artifacts"
log=$build/campaign-$t.log
set +e
rc=0
if [ "$secs" != 0 ]; then
  nice -n 19 "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$maxlen" -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$work" "$keep" >"$log" 2>&1
  rc=$?
fi
set -e
grep -a -E "^#[0-9]+[[:space:]]+(INITED|DONE)" "$log" | tail -2 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
grep -E 'ERROR: |runtime error|Test unit written' "$log" || true
# Merge: only inputs small enough to commit.
small=$build/campaign-small-$t
rm -rf "$small"; mkdir -p "$small"
find "$work" "$keep" -type f -size -$((maxb + 1))c -exec cp -f {} "$small/" \;
fresh=$build/campaign-merged-$t
rm -rf "$fresh"; mkdir -p "$fresh"
nice -n 19 "$bin" -merge=1 -rss_limit_mb=2048 -timeout=30 "$fresh" "$small" >"$build/campaign-merge-$t.log" 2>&1
grep -E 'MERGE-OUTER: [0-9]+ new files' "$build/campaign-merge-$t.log" | tail -1 || true
rm -rf "$keep"; mkdir -p "$keep"
for f in "$fresh"/*; do [ -e "$f" ] && cp "$f" "$keep/"; done
echo "$t: campaign exit $rc; corpus $(find "$keep" -type f | wc -l) files, $(du -sk "$keep" | cut -f1) KiB"
exit $rc
