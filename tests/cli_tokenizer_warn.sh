#!/usr/bin/env bash
# A CLIP, CLIPSeg or SigLIP conversion without --bpe-vocab / --spm writes no
# tokenizer files: it says so on stderr (unless --quiet), naming the files and
# the option; with the vocabulary it writes them and does not warn.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_tokwarn
H2="--set vision_config.num_attention_heads=2 --set text_config.num_attention_heads=2"
H1="--set vision_config.num_attention_heads=1 --set text_config.num_attention_heads=1"
n=0
# case NAME SRC WANT_IN_MESSAGE FILE_IN_MESSAGE OPTION VOCAB_FILE HEADS
case_() {
    local name=$1 src=$2 proc=$3 file=$4 opt=$5 vocab=$6 heads=$7
    n=$((n + 1))
    "$BIN" convert "$src" "$T/o$n" $heads --no-verify >/dev/null 2>"$T/err"
    [ $? = 0 ] && ok || bad "$name: conversion failed: $(tail -c 300 "$T/err")"
    grep "warning: no tokenizer files written" "$T/err" | grep -F "$file" | grep -F "$proc.from_pretrained" | grep -q -- "$opt" \
        && ok || bad "$name: no warning naming $file, $proc and $opt: $(cat "$T/err")"
    [ ! -e "$T/o$n/$file" ] && ok || bad "$name: $file written without $opt"
    n=$((n + 1))
    "$BIN" convert "$src" "$T/o$n" $heads --no-verify --quiet >/dev/null 2>"$T/err"
    [ ! -s "$T/err" ] && ok || bad "$name --quiet: stderr not empty: $(cat "$T/err")"
    n=$((n + 1))
    "$BIN" convert "$src" "$T/o$n" $heads --no-verify "$opt" "$vocab" >/dev/null 2>"$T/err"
    [ $? = 0 ] && ok || bad "$name $opt: conversion failed: $(tail -c 300 "$T/err")"
    grep -q "no tokenizer files" "$T/err" && bad "$name $opt: warned although given the vocabulary" || ok
    [ -f "$T/o$n/$file" ] && ok || bad "$name $opt: $file not written"
}
case_ clip "$FIX/clip_jit_fp16.pt" CLIPProcessor vocab.json --bpe-vocab "$FIX/clip_bpe.txt.gz" "$H2"
case_ clipseg "$FIX/clipseg_rd16.pth" CLIPSegProcessor merges.txt --bpe-vocab "$FIX/clip_bpe.txt.gz" "$H1"
case_ siglip "$FIX/siglip_base.npz" SiglipProcessor spiece.model --spm "$FIX/siglip_tiny.model" ""

echo "cli_tokenizer_warn: $pass passed, $fail failed"
[ $fail = 0 ]
