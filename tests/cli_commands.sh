#!/usr/bin/env bash
# The model-facing commands (preprocess, tokenize, embed, classify, segment)
# on the tiny engine fixtures, with a preprocessor_config.json and a tiny
# CLIP BPE tokenizer made here (hand-written vocab whose ids fit the text
# towers; the token ids below are worked out by hand from its merges).
# Checked: exit codes, messages naming bad files, --strict, output shapes,
# the probability format, PNG sizes, and that a killed --images-from run
# resumes to the same output as an uninterrupted one. tests/py_commands.py
# checks the numbers against transformers.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}
IMG=$FIX/image/files
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_commands
has() { # file pattern description
    if grep -qE -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(head -c 300 "$1")"; fi
}
# embed's summary line: "in T s (...; decode A s, preprocess B s, forward C s, other D s; ...)":
# each phase >= 0 (other: >= -0.01, the rounding), and they add up to T
phases_ok() { # file description
    local l; l=$(grep -oE "in [0-9.]+ s \(.*decode [0-9.]+ s, preprocess [0-9.]+ s, forward [0-9.]+ s, other -?[0-9.]+ s; model load [0-9.]+ s" "$1")
    if [ -n "$l" ] && sed -E 's/in ([0-9.]+) s .*decode ([0-9.]+) s, preprocess ([0-9.]+) s, forward ([0-9.]+) s, other (-?[0-9.]+) s.*/\1 \2 \3 \4 \5/' <<<"$l" |
        awk '{d = $2 + $3 + $4 + $5 - $1; exit !($5 >= -0.01 && d < 0.03 && d > -0.03)}'; then ok
    else bad "$2: no consistent time breakdown in $(head -c 400 "$1")"; fi
}
# npy header shape, e.g. "(2, 3, 16, 16)"
npy_shape() { head -c 128 "$1" | tr -d '\0' | grep -o "'shape': ([0-9, ]*)" | sed "s/'shape': //"; }
# PNG width height colour-type from IHDR
png_dims() { # w h of a PNG (big-endian 32-bit at 16 and 20)
    local b; b=($(od -An -tu1 -j16 -N10 "$1")); echo "$(( (b[0]<<24)|(b[1]<<16)|(b[2]<<8)|b[3] )) $(( (b[4]<<24)|(b[5]<<16)|(b[6]<<8)|b[7] )) ${b[9]}"
}

mk_model() { # SRC DEST KIND SIZE [NV MAXLEN]
    local src=$1 dst=$2 kind=$3 size=$4 nv=${5:-} len=${6:-}
    mkdir -p "$dst" && cp "$src/config.json" "$src/model.safetensors" "$dst/" || return 1
    case $kind in
    CLIP) printf '{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": %s}, "crop_size": {"height": %s, "width": %s}}\n' "$size" "$size" "$size" ;;
    *) printf '{"image_processor_type": "%sImageProcessor", "size": {"height": %s, "width": %s}}\n' "$kind" "$size" "$size" ;;
    esac >"$dst/preprocessor_config.json"
    [ -n "$nv" ] || return 0
    local s=$((nv - 2)) e=$((nv - 1))
    cat >"$dst/vocab.json" <<JSON
{"a": 0, "c": 1, "d": 2, "g": 3, "l": 4, "o": 5, "s": 6, "t": 7, "a</w>": 8, "c</w>": 9, "d</w>": 10, "g</w>": 11,
 "l</w>": 12, "o</w>": 13, "s</w>": 14, "t</w>": 15, "ca": 16, "cat</w>": 17, "do": 18, "dog</w>": 19,
 "<|startoftext|>": $s, "<|endoftext|>": $e}
JSON
    printf '#version: 0.2\nc a\nca t</w>\nd o\ndo g</w>\n' >"$dst/merges.txt"
    printf '{"tokenizer_class": "CLIPTokenizer", "model_max_length": %s, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}\n' "$len" >"$dst/tokenizer_config.json"
}
E=$FIX/engine
mk_model "$E/clip_p8_h3" "$T/clip" CLIP 16 64 12
mk_model "$E/siglip_p8" "$T/siglip" Siglip 16
mk_model "$E/clipseg_plain" "$T/seg" ViT 32 40 8
mk_model "$E/vit_cls_odd" "$T/vit" ViT 16
CAT=$IMG/photo_chelsea.png DOG=$IMG/photo_coffee_q90.jpg TRUNC=$FIX/image/bad/truncated_jpeg.jpg

# ---- usage: 2, help: 0 ------------------------------------------------------
for c in preprocess tokenize embed classify segment; do
    expect_rc 2 "$c without arguments" "$BIN" $c
    expect_rc 2 "$c unknown option" "$BIN" $c "$T/clip" --frobnicate
    expect_rc 0 "$c --help" "$BIN" $c --help
    # every option the help names is one the parser takes (and vice versa, roughly)
    for o in $(grep -oE -- '--[a-z][a-z-]+' "$T/out" | sort -u); do
        [ "$o" = --help ] && continue
        "$BIN" $c "$T/clip" $o 2>"$T/e2" >/dev/null
        if grep -q "unknown option" "$T/e2"; then bad "$c --help names $o, which the parser refuses"; else ok; fi
    done
done
expect_rc 2 "embed --image with --text" "$BIN" embed "$T/clip" --image "$CAT" --text "a cat"
expect_rc 2 "embed bad --shard" "$BIN" embed "$T/clip" --images-from "$T/x" --out "$T/x.npy" --shard 2/2
expect_rc 2 "embed --shard without --images-from" "$BIN" embed "$T/clip" --image "$CAT" --shard 0/2
expect_rc 2 "embed --images-from without --out" "$BIN" embed "$T/clip" --images-from "$T/x"
expect_rc 2 "embed --batch 0" "$BIN" embed "$T/clip" --image "$CAT" --batch 0
expect_rc 2 "classify zero-shot without --labels" "$BIN" classify "$T/clip" --image "$CAT"
expect_rc 2 "preprocess without --out" "$BIN" preprocess "$T/clip" --image "$CAT"

# ---- preprocess / tokenize ---------------------------------------------------
expect_rc 0 "preprocess" "$BIN" preprocess "$T/clip" --image "$CAT" --image "$IMG/jpeg_2x3.jpg" --out "$T/pv.npy"
[ "$(npy_shape "$T/pv.npy")" = "(2, 3, 16, 16)" ] && ok || bad "preprocess shape $(npy_shape "$T/pv.npy")"
expect_rc 1 "preprocess a truncated image" "$BIN" preprocess "$T/clip" --image "$CAT" --image "$TRUNC" --out "$T/pv2.npy"
has "$T/err" "truncated_jpeg.jpg" "preprocess names the bad file"
[ ! -e "$T/pv2.npy" ] && ok || bad "preprocess wrote output despite a bad image"
expect_rc 0 "tokenize" "$BIN" tokenize "$T/clip" --text "a cat" --text "A  DOG" --text "dog cat cat cat cat cat cat cat cat cat cat cat"
# by hand: <|startoftext|>=62, a</w>=8, cat</w>=17 (c a -> ca, ca t</w> -> cat</w>), dog</w>=19, <|endoftext|>=63 pads
has "$T/out" "^62 8 17 63 63 63 63 63 63 63 63 63$" "tokenize 'a cat'"
has "$T/out" "^62 8 19 63 63 63 63 63 63 63 63 63$" "tokenize 'A  DOG' (lower case, spaces collapsed)"
has "$T/out" "^62 19 17 17 17 17 17 17 17 17 17 63$" "tokenize truncates to 12 keeping the end token"
has "$T/err" "text 2 has more tokens than fit in 12" "tokenize warns about truncation"
[ "$(grep -c truncated "$T/err")" = 1 ] && ok || bad "tokenize warned about untruncated texts"
expect_rc 0 "tokenize --out" "$BIN" tokenize "$T/clip" --text "a cat" --text "a dog" --out "$T/ids.npy"
[ "$(npy_shape "$T/ids.npy")" = "(2, 12)" ] && ok || bad "tokenize shape $(npy_shape "$T/ids.npy")"
head -c 64 "$T/ids.npy" | grep -q "'<i8'" && ok || bad "input_ids not int64"

# ---- embed ---------------------------------------------------------------------
expect_rc 0 "embed images" "$BIN" embed "$T/clip" --image "$CAT" --image "$DOG" --out "$T/e.npy" --threads 1
[ "$(npy_shape "$T/e.npy")" = "(2, 12)" ] && ok || bad "embed shape $(npy_shape "$T/e.npy")"
printf '%s\n%s\n' "$CAT" "$DOG" | cmp -s - "$T/e.txt" && ok || bad "embed names file"
has "$T/err" "image_embeds \(L2-normalised\)" "embed says which output"
has "$T/err" "images/s|/s, decoding" "embed reports throughput"
phases_ok "$T/err" "embed --image"
expect_rc 1 "embed with a bad image" "$BIN" embed "$T/clip" --image "$CAT" --image "$TRUNC" --image "$DOG" --out "$T/e2.npy"
has "$T/err" "truncated_jpeg.jpg: truncated" "embed names the bad file"
[ "$(npy_shape "$T/e2.npy")" = "(2, 12)" ] && ok || bad "embed went on without the bad image: $(npy_shape "$T/e2.npy")"
printf '%s\n%s\n' "$CAT" "$DOG" | cmp -s - "$T/e2.txt" && ok || bad "embed names the rows it wrote"
cmp -s <(tail -c 96 "$T/e.npy") <(tail -c 96 "$T/e2.npy") && ok || bad "rows differ with a bad image in the batch"
expect_rc 1 "embed --strict" "$BIN" embed "$T/clip" --strict --image "$CAT" --image "$TRUNC" --out "$T/e3.npy"
[ ! -e "$T/e3.npy" ] && ok || bad "--strict wrote output"
expect_rc 1 "embed a non-image" "$BIN" embed "$T/clip" --image "$FIX/image/bad/not_an_image.txt"
has "$T/err" "not_an_image.txt" "embed names the unsupported file"
expect_rc 0 "embed texts" "$BIN" embed "$T/clip" --text "a cat" --text "a dog" --out "$T/t.npy"
[ "$(npy_shape "$T/t.npy")" = "(2, 12)" ] && ok || bad "text embed shape"
has "$T/err" "text_embeds" "text embed output"
expect_rc 0 "embed printed" "$BIN" embed "$T/clip" --image "$CAT"
[ "$(awk '{print NF}' "$T/out")" = 13 ] && ok || bad "printed row: $(head -c 200 "$T/out")"
# unit length
awk '{s=0; for(i=2;i<=NF;i++) s+=$i*$i; if (s<0.9999||s>1.0001) exit 1}' "$T/out" && ok || bad "image_embeds not normalised"
expect_rc 0 "embed ViT classifier (CLS row)" "$BIN" embed "$T/vit" --image "$CAT"
has "$T/err" "CLS row of last_hidden_state" "ViT embed says CLS"
expect_rc 0 "embed SigLIP image" "$BIN" embed "$T/siglip" --image "$CAT"
expect_rc 1 "embed SigLIP text without a tokenizer" "$BIN" embed "$T/siglip" --text "a cat"
expect_rc 1 "embed with CLIPSeg" "$BIN" embed "$T/seg" --image "$CAT"

# ---- --images-from: shards and resume ------------------------------------------
ls "$IMG"/*.png "$IMG"/*.jpg | head -20 >"$T/list"
cp "$TRUNC" "$T/late.jpg"
sed -i "13s|.*|$T/late.jpg|" "$T/list"       # a bad file in the 4th batch of shard 0
expect_rc 0 "shard 1/2" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 1/2 --out "$T/s1.npy" --batch 3 --threads 1
[ "$(npy_shape "$T/s1.npy")" = "(10, 12)" ] && ok || bad "shard 1/2 rows $(npy_shape "$T/s1.npy")"
phases_ok "$T/err" "embed --images-from"
awk 'NR % 2 == 0' "$T/list" | cmp -s - "$T/s1.txt" && ok || bad "shard 1/2 takes every 2nd path from the 2nd"
expect_rc 0 "finished shard is not redone" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 1/2 --out "$T/s1.npy"
has "$T/err" "done" "finished shard says so"
# "killed": --strict stops at the bad file after three batches were recorded
expect_rc 1 "shard 0/2 stops (strict)" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 0/2 --out "$T/s0.npy" --batch 3 --strict --threads 1
[ -e "$T/s0.npy.progress" ] && [ ! -e "$T/s0.npy" ] && ok || bad "interrupted shard left no progress record"
printf 'junk from a killed write' >>"$T/s0.npy.part"
cp "$IMG/png_2x3.png" "$T/late.jpg"             # the file is fixed; run again
expect_rc 0 "shard 0/2 resumes" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 0/2 --out "$T/s0.npy" --batch 3 --threads 1
has "$T/err" "resuming shard 0/2 at path 6 of 10" "resume starts after the recorded batches"
[ ! -e "$T/s0.npy.progress" ] && [ ! -e "$T/s0.npy.part" ] && ok || bad "resume left its working files"
awk 'NR % 2 == 1' "$T/list" | cmp -s - "$T/s0.txt" && ok || bad "resumed names"
expect_rc 0 "shard 0/2 uninterrupted" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 0/2 --out "$T/r0.npy" --batch 3 --threads 1
cmp -s "$T/s0.npy" "$T/r0.npy" && ok || bad "resumed shard differs from an uninterrupted one"
printf 'vitport-embed-progress 1 next 0 rows 0 failed 0 names_bytes 0 dim 12 shard 0/2 total 10\n' >"$T/w.npy.progress"
expect_rc 1 "a record for another split refused" "$BIN" embed "$T/clip" --images-from "$T/list" --shard 1/3 --out "$T/w.npy"
has "$T/err" "remove it to start over" "mismatched record message"

# ---- classify --------------------------------------------------------------------
expect_rc 0 "classify CLIP" "$BIN" classify "$T/clip" --image "$CAT" --image "$DOG" --labels "a cat,a dog"
[ "$(grep -cE "^[0-9]+\.[0-9]% that image [01] is 'a (cat|dog)'$" "$T/out")" = 4 ] && ok || bad "classify format: $(cat "$T/out")"
awk '/image 0/ {s += $1} END {exit !(s > 99.85 && s < 100.15)}' "$T/out" && ok || bad "CLIP probabilities do not sum to 100%"
expect_rc 2 "classify ViT with --labels" "$BIN" classify "$T/vit" --image "$CAT" --labels "a,b"
expect_rc 0 "classify ViT" "$BIN" classify "$T/vit" --image "$CAT" --top 3
[ "$(grep -cE '^ +[0-9.]+%  LABEL_[0-4] \([0-4]\)$' "$T/out")" = 3 ] && ok || bad "classify top-3: $(cat "$T/out")"
expect_rc 1 "classify a truncated image" "$BIN" classify "$T/vit" --image "$TRUNC"
has "$T/err" "truncated_jpeg.jpg" "classify names the bad file"
# labels from a config.json and tensor names from a file reach the terminal:
# their control characters (here ESC [ 2 J, which clears the screen) come out as \xNN
ctl() { if LC_ALL=C grep -q '[[:cntrl:]]' "$1"; then bad "$2: a control character in $(head -c 300 "$1" | od -c | head -5)"; else ok; fi; }
mkdir -p "$T/vit_esc" && cp "$T/vit/"* "$T/vit_esc/" && sed -i 's/"LABEL_/"L\\u001b[2J_/' "$T/vit_esc/config.json"
expect_rc 0 "classify, labels holding ESC" "$BIN" classify "$T/vit_esc" --image "$CAT" --top 5
ctl "$T/out" "classify's labels"
has "$T/out" 'L\\x1b\[2J_[0-4] \([0-4]\)$' "classify shows ESC as \\x1b"
h='{"a\u001b[2Jb\u007fc":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
{ printf "\\x$(printf %02x ${#h})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$h"; printf '\0\0\0\0'; } >"$T/esc.safetensors"
expect_rc 0 "inspect, a tensor name holding ESC and DEL" "$BIN" inspect "$T/esc.safetensors"
ctl "$T/out" "inspect's tensor names"
has "$T/out" '^a\\x1b\[2Jb\\x7fc +float32' "inspect shows ESC and DEL as \\xNN"

# ---- segment ---------------------------------------------------------------------
expect_rc 0 "segment two prompts" "$BIN" segment "$T/seg" --image "$CAT" --prompt "a cat" --prompt "a glass" --out "$T/m.png"
[ "$(png_dims "$T/m-0.png")" = "101 77 0" ] && [ "$(png_dims "$T/m-1.png")" = "101 77 0" ] && ok || bad "masks: $(png_dims "$T/m-0.png")"
cmp -s "$T/m-0.png" "$T/m-1.png" && bad "two prompts gave the same mask" || ok
expect_rc 0 "segment --overlay" "$BIN" segment "$T/seg" --image "$CAT" --prompt "a cat" --overlay --out "$T/o.png"
[ "$(png_dims "$T/o.png")" = "101 77 2" ] && ok || bad "overlay: $(png_dims "$T/o.png")"
expect_rc 1 "segment a truncated image" "$BIN" segment "$T/seg" --image "$TRUNC" --prompt "a cat" --out "$T/b.png"
has "$T/err" "truncated_jpeg.jpg" "segment names the bad file"
expect_rc 1 "segment with CLIP" "$BIN" segment "$T/clip" --image "$CAT" --prompt "a cat" --out "$T/b.png"
ls "$T" | grep -q '\.tmp$' && bad "temporary files left" || ok

echo "cli_commands: $pass passed, $fail failed"
[ "$fail" = 0 ]
