#!/usr/bin/env bash
# Nothing vitport reads may hang it, and SIGINT/SIGTERM end a command within
# a second leaving nothing behind: SRC (and --config) as a FIFO with no
# writer, a directory or a device is refused or interrupted, never waited on.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_signals
no_leftovers() { # dir description
    if ls -A "$1" | grep -q 'vitport-'; then bad "$2: temporary directory left in $1"; else ok; fi
}
HEAD="--set num_attention_heads=2"
mkfifo "$T/fifo"

# run_limited SECONDS description command...: must end by itself within the
# limit (timeout's KILL otherwise), exit 1, and name the file on stderr.
refused() {
    local what=$1; shift
    timeout -s KILL 5 "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc = 137 ]; then bad "$what: hung (killed after 5 s)"; return; fi
    [ $rc = 1 ] && ok || bad "$what: exit $rc, expected 1: $(tail -c 300 "$T/err")"
    grep -q "not a regular file" "$T/err" && ok || bad "$what: message does not say why: $(tail -c 300 "$T/err")"
}
refused "inspect FIFO" "$BIN" inspect "$T/fifo"
grep -q "$T/fifo.*a FIFO" "$T/err" && ok || bad "inspect FIFO: message does not name the file and its kind"
refused "inspect directory" "$BIN" inspect "$T"
grep -q "a directory" "$T/err" && ok || bad "inspect directory: message does not say it is a directory"
refused "inspect /dev/null" "$BIN" inspect /dev/null
grep -q "a character device" "$T/err" && ok || bad "inspect /dev/null: message does not say it is a device"
refused "convert FIFO" "$BIN" convert "$T/fifo" "$T/o" $HEAD
[ ! -e "$T/o" ] && ok || bad "convert FIFO created OUT_DIR"

# A FIFO given where a side file is read (--config): whether the reader
# refuses it or the open blocks, SIGTERM and SIGINT end the command within a
# second with nothing left behind.
for sig in TERM INT; do
    mkdir -p "$T/w$sig"
    "$BIN" convert "$FIX/vit_head.pth" "$T/w$sig/o" $HEAD --config "$T/fifo" --quiet >/dev/null 2>"$T/err" &
    pid=$!
    sleep 0.3
    kill -$sig $pid 2>/dev/null
    t0=$(date +%s%N)
    while kill -0 $pid 2>/dev/null && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ]; do sleep 0.02; done
    if kill -0 $pid 2>/dev/null; then
        bad "--config FIFO: still running 1 s after SIG$sig"
        kill -KILL $pid; wait $pid 2>/dev/null
    else
        wait $pid
        rc=$?
        [ $rc != 0 ] && ok || bad "--config FIFO, SIG$sig: exit 0"
    fi
    [ ! -e "$T/w$sig/o" ] && ok || bad "--config FIFO, SIG$sig: OUT_DIR was written"
    no_leftovers "$T/w$sig" "--config FIFO, SIG$sig"
done

echo "cli_signals.sh: $pass passed, $fail failed"
[ $fail = 0 ]
