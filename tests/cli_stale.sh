#!/usr/bin/env bash
# A conversion killed with SIGKILL leaves its temporary folder beside OUT_DIR;
# the next conversion into that parent removes the folders of processes that
# no longer run (saying so), and nothing else: not a running process's folder,
# not one whose name merely resembles ours, not a file.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_stale
HEAD="--set num_attention_heads=2"
starttime() { awk '{ sub(/.*\) /, ""); print $20 }' /proc/$1/stat; }

# A pid that has certainly ended: a child that exited and was reaped.
sh -c 'exit 0' & dead=$!; wait $dead
kill -0 $dead 2>/dev/null && { echo "SKIP: pid $dead reused at once"; exit 0; }
me=$$
mystart=$(starttime $me)
[ -n "$mystart" ] || { bad "cannot read /proc/$me/stat"; exit 1; }

P=$T/p
mkdir -p "$P"
mkdir "$P/.old.vitport-tmp-$dead-12345-00ab12"            # dead owner: removed
echo x >"$P/.old.vitport-tmp-$dead-12345-00ab12/model.safetensors"
mkdir "$P/.reuse.vitport-tmp-$me-$((mystart + 7))-0000ff"  # live pid, other start time (reused pid): removed
mkdir "$P/.live.vitport-tmp-$me-$mystart-abcdef"           # a running conversion's: kept
mkdir "$P/.odd.vitport-tmp-$dead-12345-xyz"                # not our name: kept
mkdir "$P/.odd2.vitport-tmp-$dead-00ab12"                  # the old name without start time: kept
mkdir "$P/keep.vitport-tmp-$dead-12345-00ab12"             # not hidden: kept
mkdir "$P/.big.vitport-tmp-4294967295-1-00ab16"             # not a pid (would be -1 as pid_t): kept
echo x >"$P/.file.vitport-tmp-$dead-12345-00ab13"          # a file: kept
ln -s "$T/target" "$P/.link.vitport-tmp-$dead-12345-00ab14"   # a symlink: kept
mkdir "$T/target"

"$BIN" convert "$FIX/vit_head.pth" "$P/out" $HEAD --no-verify >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 0 ] && ok || bad "convert: exit $rc: $(tail -c 300 "$T/err")"
[ -f "$P/out/config.json" ] && ok || bad "convert: no output"
for gone in ".old.vitport-tmp-$dead-12345-00ab12" ".reuse.vitport-tmp-$me-$((mystart + 7))-0000ff"; do
    [ ! -e "$P/$gone" ] && ok || bad "stale $gone not removed"
    grep -q "removed $P/$gone, left by an interrupted conversion" "$T/err" && ok || bad "removal of $gone not reported: $(cat "$T/err")"
done
for kept in ".live.vitport-tmp-$me-$mystart-abcdef" ".odd.vitport-tmp-$dead-12345-xyz" ".odd2.vitport-tmp-$dead-00ab12" \
            "keep.vitport-tmp-$dead-12345-00ab12" ".big.vitport-tmp-4294967295-1-00ab16" ".file.vitport-tmp-$dead-12345-00ab13" ".link.vitport-tmp-$dead-12345-00ab14"; do
    [ -e "$P/$kept" ] && ok || bad "$kept was removed"
done
[ -d "$T/target" ] && ok || bad "the symlink's target was removed"
ls -A "$P" | grep -q "^\.out\.vitport-tmp-" && bad "the conversion left its own temporary folder" || ok

# --quiet removes silently.
mkdir "$P/.q.vitport-tmp-$dead-12345-00ab15"
"$BIN" convert "$FIX/vit_head.pth" "$P/out2" $HEAD --no-verify --quiet >"$T/out" 2>"$T/err"
[ ! -e "$P/.q.vitport-tmp-$dead-12345-00ab15" ] && ok || bad "--quiet: stale folder not removed"
[ ! -s "$T/err" ] && ok || bad "--quiet: stderr not empty: $(cat "$T/err")"

# A real SIGKILL: a conversion stopped while it waits on a FIFO (--config) has
# not made its folder yet, so kill one in the write phase instead: stop it
# (SIGSTOP) once its temporary folder appears, then SIGKILL it.
K=$T/k
mkdir -p "$K"
"$BIN" convert "$FIX/vit_head.pth" "$K/out" $HEAD --no-verify --quiet >/dev/null 2>&1 &
pid=$!
t0=$(date +%s%N)
while ! ls -A "$K" | grep -q "^\.out\.vitport-tmp-$pid-" && kill -0 $pid 2>/dev/null \
      && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000 ]; do :; done
kill -STOP $pid 2>/dev/null
if ls -A "$K" | grep -q "^\.out\.vitport-tmp-$pid-"; then
    kill -KILL $pid; wait $pid 2>/dev/null
    "$BIN" convert "$FIX/vit_head.pth" "$K/out2" $HEAD --no-verify >/dev/null 2>"$T/err"
    ls -A "$K" | grep -q "vitport-tmp" && bad "SIGKILLed conversion's folder not removed: $(ls -A "$K")" || ok
    grep -q "process $pid, no longer running" "$T/err" && ok || bad "SIGKILL case not reported: $(cat "$T/err")"
else
    kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
    echo "note: the conversion finished before its folder was seen; SIGKILL case not exercised"
fi

echo "cli_stale: $pass passed, $fail failed"
[ $fail = 0 ]
