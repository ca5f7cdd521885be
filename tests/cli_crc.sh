#!/usr/bin/env bash
# A torch zip whose stored tensor member has one bit flipped (its CRC-32 no
# longer matches): `convert` fails naming the member and writes nothing;
# --no-crc converts it anyway; `inspect` (headers only) still shows it and
# `inspect --check-data` fails naming the member. The undamaged file passes
# all of them.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_crc
u16() { od -An -tu2 -j "$2" -N 2 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '; }
HEAD="--set num_attention_heads=2"

# Walk the central directory (the end record is the last 22 bytes: torch
# writes no comment) to the member ending in /data/0 (stored, as torch.save
# writes), then its local header to where its data starts.
src=$FIX/vit_head.pth
size=$(stat -c %s "$src")
n=$(u16 "$src" $((size - 22 + 10))) off=$(u32 "$src" $((size - 22 + 16))) data=
for _ in $(seq "$n"); do
    nlen=$(u16 "$src" $((off + 28))) xlen=$(u16 "$src" $((off + 30))) klen=$(u16 "$src" $((off + 32)))
    name=$(dd if="$src" bs=1 skip=$((off + 46)) count="$nlen" 2>/dev/null)
    case $name in */data/0)
        lho=$(u32 "$src" $((off + 42)))
        data=$((lho + 30 + $(u16 "$src" $((lho + 26))) + $(u16 "$src" $((lho + 28))))); member=$name; break ;;
    esac
    off=$((off + 46 + nlen + xlen + klen))
done
[ -n "$data" ] && ok || { bad "no */data/0 member found in $src"; echo "cli_crc.sh: $pass passed, $fail failed"; exit 1; }
cp "$src" "$T/bad.pth"
at=$((data + 5))
byte=$(od -An -tu1 -j $at -N 1 "$src" | tr -d ' ')
printf "\\$(printf %03o $((byte ^ 1)))" | dd of="$T/bad.pth" bs=1 seek=$at conv=notrunc 2>/dev/null
cmp -s "$src" "$T/bad.pth" && bad "the byte was not changed" || ok

# controls: the undamaged file
expect_rc 0 "convert (undamaged)" "$BIN" convert "$src" "$T/good" $HEAD --quiet
expect_rc 0 "inspect --check-data (undamaged)" "$BIN" inspect "$src" --check-data
grep -q "CRC-32 of [0-9]* zip members checked, all match" "$T/out" && ok || bad "inspect --check-data: $(tail -c 200 "$T/out")"

expect_rc 1 "convert (one bit flipped)" "$BIN" convert "$T/bad.pth" "$T/o" $HEAD --quiet
grep -q "member '$member' fails its CRC-32 check" "$T/err" && ok || bad "convert: message does not name the member: $(cat "$T/err")"
[ ! -e "$T/o" ] && ok || bad "a damaged source left OUT_DIR"
if ls -A "$T" | grep -q 'vitport-'; then bad "temporary directory left behind"; else ok; fi

expect_rc 0 "convert --no-crc (one bit flipped)" "$BIN" convert "$T/bad.pth" "$T/o" $HEAD --quiet --no-crc
cmp -s "$T/o/model.safetensors" "$T/good/model.safetensors" && bad "--no-crc output equals the undamaged one" || ok

expect_rc 0 "inspect (headers only)" "$BIN" inspect "$T/bad.pth"
expect_rc 1 "inspect --check-data (one bit flipped)" "$BIN" inspect "$T/bad.pth" --check-data
grep -q "member '$member' fails its CRC-32 check" "$T/err" && ok || bad "inspect --check-data: $(cat "$T/err")"

echo "cli_crc.sh: $pass passed, $fail failed"
[ $fail = 0 ]
