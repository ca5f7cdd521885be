#!/usr/bin/env bash
# vitport convert from the command line: exit codes (usage 2, bad input 1),
# the help text lists exactly the options the parser accepts, an existing
# OUT_DIR is refused without --force and replaced with it, nothing is left
# behind after a failure or a signal, and --json prints a parseable summary.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
PY=$(command -v python3 || true)
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_convert
no_leftovers() { # dir description
    if ls -A "$1" | grep -q 'vitport-'; then bad "$2: temporary directory left in $1"; else ok; fi
}
HEAD="--set num_attention_heads=2"

# ---- usage errors: 2 ----------------------------------------------------
expect_rc 2 "no arguments" "$BIN" convert
expect_rc 2 "one argument" "$BIN" convert "$FIX/vit_head.pth"
expect_rc 2 "unknown option" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --frobnicate
expect_rc 2 "bad --dtype" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --dtype f8
expect_rc 2 "bad --max-shard-size" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --max-shard-size lots
expect_rc 2 "bad --family" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --family resnet
expect_rc 2 "--set without =" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --set num_attention_heads
expect_rc 2 "option without value" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --key
expect_rc 2 "three positionals" "$BIN" convert "$FIX/vit_head.pth" "$T/o" "$T/p"
[ ! -e "$T/o" ] && ok || bad "a usage error created OUT_DIR"

# ---- the help tells the truth ---------------------------------------------
expect_rc 0 "--help" "$BIN" convert --help
help_opts=$(grep -o -- '--[a-z][a-z-]*' "$T/out" | sort -u | tr '\n' ' ')
want_opts="--bpe-vocab --check-only --config --dtype --family --force --help --json --key --labels --max-shard-size --model-name --no-crc --no-verify --quiet --set --spm --sync "
[ "$help_opts" = "$want_opts" ] && ok || bad "help lists [$help_opts], expected [$want_opts]"
for o in $help_opts; do
    case $o in --help) continue ;; esac
    "$BIN" convert /nonexistent "$T/never" "$o" x >/dev/null 2>"$T/err"
    if grep -q "unknown option" "$T/err"; then bad "help lists $o but the parser rejects it"; else ok; fi
done
[ ! -e "$T/never" ] && ok || bad "option probing wrote output"

# ---- bad input: 1 -------------------------------------------------------
expect_rc 1 "missing source" "$BIN" convert "$T/nope.pth" "$T/o"
grep -q "nope.pth" "$T/err" && ok || bad "missing source: message does not name the file"
printf 'not a checkpoint at all' >"$T/junk.pth"
expect_rc 1 "junk source" "$BIN" convert "$T/junk.pth" "$T/o"
expect_rc 1 "parent directory missing" "$BIN" convert "$FIX/vit_head.pth" "$T/no/such/dir" $HEAD
expect_rc 1 "wrong family forced" "$BIN" convert "$FIX/vit_head.pth" "$T/o" --family siglip
[ ! -e "$T/o" ] && ok || bad "a failed conversion left OUT_DIR"
no_leftovers "$T" "failures"

# ---- refused model: 1, nothing written ----------------------------------
mkdir "$T/r"
expect_rc 1 "fc_norm refused" "$BIN" convert "$FIX/vit_refuse_fcnorm.pth" "$T/r/out" $HEAD
grep -q "fc_norm" "$T/err" && ok || bad "refusal message does not name fc_norm"
[ "$(ls -A "$T/r")" = "" ] && ok || bad "refused model left files: $(ls -A "$T/r")"

# ---- existing OUT_DIR -------------------------------------------------------
mkdir "$T/exists" && echo keep >"$T/exists/mine.txt"
expect_rc 1 "existing OUT_DIR" "$BIN" convert "$FIX/vit_head.pth" "$T/exists" $HEAD
grep -q -- "--force" "$T/err" && ok || bad "existing OUT_DIR: message does not mention --force"
[ -f "$T/exists/mine.txt" ] && ok || bad "existing OUT_DIR was touched"
expect_rc 0 "--force" "$BIN" convert "$FIX/vit_head.pth" "$T/exists" $HEAD --force --quiet
[ ! -e "$T/exists/mine.txt" ] && [ -f "$T/exists/model.safetensors" ] && ok || bad "--force did not replace OUT_DIR"
[ ! -s "$T/err" ] && ok || bad "--quiet still wrote: $(head -c 200 "$T/err")"
expect_rc 0 "--sync" "$BIN" convert "$FIX/vit_head.pth" "$T/synced" $HEAD --sync --quiet
cmp -s "$T/synced/model.safetensors" "$T/exists/model.safetensors" && ok || bad "--sync wrote a different model"
echo file >"$T/afile"
expect_rc 1 "existing file as OUT_DIR" "$BIN" convert "$FIX/vit_head.pth" "$T/afile" $HEAD
no_leftovers "$T" "--force"

# ---- --json ---------------------------------------------------------------
expect_rc 0 "--json" "$BIN" convert "$FIX/dino_train.pth" "$T/j" $HEAD --json
if [ -n "$PY" ]; then
    "$PY" - "$T/out" <<'EOF' && ok || bad "--json output: $(head -c 300 "$T/out")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["family"] == "dino" and s["class"] == "ViTModel" and s["key"] == "teacher", s
assert s["tensors"] == 38 and s["bytes"] > 0 and s["shards"] == 1 and s["seconds"] >= 0, s
assert s["config"].endswith("/config.json") and s["dtype"] == "float32", s
assert [d["count"] for d in s["dropped"]] == [18] and "DINO" in s["dropped"][0]["rule"], s
EOF
fi
grep -q "converting 'teacher'" "$T/err" && ok || bad "DINO teacher choice not announced"

# ---- option values reach the conversion --------------------------------------
# (the C tests run conversions in this process, tests/util/convert_run.c:
# this is the program's own wiring of each option to the converter)
expect_rc 0 "--config --set --max-shard-size --dtype" "$BIN" convert "$FIX/vit_head.pth" "$T/opts" \
    --config "$FIX/vit_head_config.json" --set hidden_act=quick_gelu --max-shard-size 3kB --dtype f16 --no-verify --quiet
grep -q '"initializer_range": 0.01' "$T/opts/config.json" && grep -q '"hidden_act": "quick_gelu"' "$T/opts/config.json" \
    && ok || bad "--config / --set not in config.json: $(head -c 300 "$T/opts/config.json" 2>/dev/null)"
[ -f "$T/opts/model.safetensors.index.json" ] && [ ! -e "$T/opts/model.safetensors" ] && ok || bad "--max-shard-size 3kB: not sharded"
grep -aq '"F16"' "$T"/opts/model-00001-of-*.safetensors && ! grep -aq '"F32"' "$T"/opts/model-00001-of-*.safetensors \
    && ok || bad "--dtype f16: the first shard is not float16"
expect_rc 0 "--labels" "$BIN" convert "$FIX/deit_distilled.pth" "$T/lab" $HEAD --labels "$FIX/deit_distilled_labels.txt" --quiet
grep -q '"tench"' "$T/lab/config.json" && ok || bad "--labels: no label in config.json"
expect_rc 0 "--model-name" "$BIN" convert "$FIX/deit_tiny_named.pth" "$T/named" --model-name deit_tiny_patch16_224
grep -q "3 attention heads" "$T/err" && ok || bad "--model-name: heads not taken from the name: $(tail -c 300 "$T/err")"
expect_rc 0 "--family --key" "$BIN" convert "$FIX/dino_train.pth" "$T/fam" --family dino --key student $HEAD
grep -q "family 'dino'" "$T/err" && grep -q "DINO projection head" "$T/err" && ok || bad "--family / --key: $(tail -c 300 "$T/err")"
no_leftovers "$T" "option values"

# ---- signals: nothing partial left behind -----------------------------------
# A ~120 MB timm-layout safetensors source, sparse (zeros), converted to bf16
# so it goes through the bounded buffer; SIGTERM/SIGINT at various moments
# must leave either no OUT_DIR or a complete one, and never a temporary.
if [ -n "$PY" ]; then
    "$PY" - "$T/big.safetensors" <<'EOF'
import json, struct, sys
D, L, MLP, P, G = 768, 6, 3072, 16, 14
shapes = {"cls_token": [1, 1, D], "pos_embed": [1, G * G + 1, D], "patch_embed.proj.weight": [D, 3, P, P],
          "patch_embed.proj.bias": [D], "norm.weight": [D], "norm.bias": [D]}
for i in range(L):
    b = f"blocks.{i}."
    shapes.update({b + "norm1.weight": [D], b + "norm1.bias": [D], b + "attn.qkv.weight": [3 * D, D],
                   b + "attn.qkv.bias": [3 * D], b + "attn.proj.weight": [D, D], b + "attn.proj.bias": [D],
                   b + "norm2.weight": [D], b + "norm2.bias": [D], b + "mlp.fc1.weight": [MLP, D],
                   b + "mlp.fc1.bias": [MLP], b + "mlp.fc2.weight": [D, MLP], b + "mlp.fc2.bias": [D]})
hdr, off = {}, 0
for k, s in shapes.items():
    n = 4
    for x in s: n *= x
    hdr[k] = {"dtype": "F32", "shape": s, "data_offsets": [off, off + n]}
    off += n
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    f.truncate(8 + len(h) + off)
EOF
    for sig in TERM INT TERM INT; do
        for delay in 0.05 0.2; do
            rm -rf "$T/sig"
            "$BIN" convert "$T/big.safetensors" "$T/sig" --dtype bf16 --quiet >/dev/null 2>"$T/err" &
            pid=$!
            sleep $delay
            kill -$sig $pid 2>/dev/null
            wait $pid
            rc=$?
            if [ $rc = 0 ]; then
                [ -f "$T/sig/config.json" ] && [ -f "$T/sig/model.safetensors" ] && ok || bad "finished run is incomplete"
            elif [ $rc -gt 128 ]; then
                [ ! -e "$T/sig" ] && ok || bad "SIG$sig after ${delay}s left OUT_DIR"
            else
                bad "SIG$sig after ${delay}s: exit $rc: $(tail -c 200 "$T/err")"
            fi
            no_leftovers "$T" "SIG$sig after ${delay}s"
        done
    done
fi

echo "cli_convert.sh: $pass passed, $fail failed"
[ $fail = 0 ]
