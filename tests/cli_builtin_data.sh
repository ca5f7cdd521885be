#!/usr/bin/env bash
# The ImageNet-1k class ids are built into the library: a 1000-class timm
# conversion works from a program copied away from the source and build
# trees, with VITPORT_DATADIR unset; VITPORT_DATADIR, when set, is read instead.
set -u
BIN=${VP_BIN:?VP_BIN not set}
LIB=${VP_LIB:?VP_LIB not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
SRC=${VP_SRC:?VP_SRC not set}
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_data
HEAD="--set num_attention_heads=2"

# The program and its library alone, in a folder with no data/ beside it.
mkdir -p "$T/bin" "$T/lib" "$T/run"
cp "$BIN" "$T/bin/vitport"
for f in "$(dirname "$LIB")"/libvitport.so*; do cp -P "$f" "$T/lib/"; done
run() { (cd "$T/run" && env -u VITPORT_DATADIR LD_LIBRARY_PATH="$T/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$T/bin/vitport" "$@"); }
# id2label's names in class order, one a line (config.json sorts its keys as strings)
ids_of() { grep -o '"[0-9]*": *"n[0-9]*"' "$1" | sed 's/"\([0-9]*\)": *"\(n[0-9]*\)"/\1 \2/' | sort -n | cut -d' ' -f2; }

run convert "$FIX/vit_in1k_legacy.pth" "$T/out" $HEAD --no-verify >"$T/log" 2>&1
rc=$?
[ $rc = 0 ] && ok || bad "1000-class conversion without a data folder: exit $rc: $(tail -c 300 "$T/log")"
if [ -f "$T/out/config.json" ]; then
    ids_of "$T/out/config.json" >"$T/ids"
    cmp -s "$T/ids" "$SRC/data/imagenet_synsets.txt" && ok \
        || bad "id2label differs from data/imagenet_synsets.txt ($(wc -l <"$T/ids") ids)"
    grep -q '"label2id": {' "$T/out/config.json" && ok || bad "no label2id"
else
    bad "no config.json"
fi

# VITPORT_DATADIR is read when set: a folder whose list is not ImageNet's.
mkdir -p "$T/data"
for i in $(seq 0 999); do echo "n9$(printf %08d $i)"; done >"$T/data/imagenet_synsets.txt"
(cd "$T/run" && VITPORT_DATADIR="$T/data" LD_LIBRARY_PATH="$T/lib" "$T/bin/vitport" convert "$FIX/vit_in1k_legacy.pth" "$T/out2" \
    $HEAD --no-verify --quiet) >"$T/log" 2>&1 && ok || bad "VITPORT_DATADIR conversion failed: $(tail -c 300 "$T/log")"
ids_of "$T/out2/config.json" 2>/dev/null | cmp -s - "$T/data/imagenet_synsets.txt" && ok || bad "VITPORT_DATADIR not used"
# and a VITPORT_DATADIR without the file is an error naming it, not a silent fallback
(cd "$T/run" && VITPORT_DATADIR="$T/nowhere" LD_LIBRARY_PATH="$T/lib" "$T/bin/vitport" convert "$FIX/vit_in1k_legacy.pth" "$T/out3" \
    $HEAD --no-verify --quiet) >"$T/log" 2>&1
rc=$?
[ $rc = 1 ] && ok || bad "missing VITPORT_DATADIR file: exit $rc"
grep -q "$T/nowhere/imagenet_synsets.txt" "$T/log" && ok || bad "missing file not named: $(cat "$T/log")"

echo "cli_builtin_data: $pass passed, $fail failed"
[ $fail = 0 ]
