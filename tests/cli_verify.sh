#!/usr/bin/env bash
# vitport verify and the verification vitport convert runs by default, from
# the command line: exit codes (0 within tolerance, 1 a differing output or
# bad input, 2 usage), the help lists exactly the options the parser takes,
# --check-only writes nothing, --no-verify skips the check and says so, and a
# conversion whose model differs from its source (here: --set changes the
# activation or the LayerNorm eps, so the converted model computes something
# else) writes nothing and leaves an existing OUT_DIR untouched.
set -u
BIN=${VP_BIN:?VP_BIN not set}
FIX=${VP_FIXTURES:?VP_FIXTURES not set}/convert
CONF=${VP_CONFORMANCE:-}
PY=$(command -v python3 || true)
. "$(dirname "$0")/util/cli_lib.sh"
cli_begin cli_verify
no_leftovers() { # dir description
    if ls -A "$1" | grep -q 'vitport-'; then bad "$2: temporary directory left in $1"; else ok; fi
}
HEAD="--set num_attention_heads=2"
SRC="$FIX/vit_head.pth"

# ---- usage: 2 -------------------------------------------------------------
expect_rc 2 "verify without arguments" "$BIN" verify
expect_rc 2 "verify without --source" "$BIN" verify "$T/x"
expect_rc 2 "--expect without inputs" "$BIN" verify "$T/x" --expect "$T/e.npz"
expect_rc 2 "unknown option" "$BIN" verify "$T/x" --source "$SRC" --frobnicate
expect_rc 2 "bad --family" "$BIN" verify "$T/x" --source "$SRC" --family resnet
expect_rc 2 "bad --tolerance" "$BIN" verify "$T/x" --source "$SRC" --tolerance -1
expect_rc 2 "--check-only with OUT_DIR" "$BIN" convert "$SRC" "$T/o" --check-only $HEAD
expect_rc 2 "--check-only with --no-verify" "$BIN" convert "$SRC" --check-only --no-verify $HEAD
[ ! -e "$T/o" ] && ok || bad "a usage error created OUT_DIR"

# ---- the help tells the truth -----------------------------------------------
expect_rc 0 "verify --help" "$BIN" verify --help
help_opts=$(grep -o -- '--[a-z][a-z-]*' "$T/out" | sort -u | tr '\n' ' ')
want_opts="--expect --family --help --input-ids --json --key --pixel-values --quiet --source --threads --tolerance "
[ "$help_opts" = "$want_opts" ] && ok || bad "verify help lists [$help_opts], expected [$want_opts]"
grep -q "1e-4" "$T/out" && grep -q "1e-2" "$T/out" && grep -q "8e-2" "$T/out" && ok || bad "verify help states no tolerances"
expect_rc 0 "convert --help" "$BIN" convert --help
grep -q -- "--no-verify" "$T/out" && grep -q -- "--check-only" "$T/out" && grep -q "1e-4" "$T/out" && ok || bad "convert help lacks verification"
"$BIN" --help | grep -q "^  verify" && ok || bad "vitport --help lists no verify"

# ---- convert verifies by default; verify passes on it -------------------------
expect_rc 0 "convert (verified)" "$BIN" convert "$SRC" "$T/good" $HEAD
grep -q "wrote $T/good; verified ViTForImageClassification against the timm source evaluator: largest difference" "$T/err" \
    && ok || bad "convert summary line: $(tail -c 300 "$T/err")"
expect_rc 0 "verify" "$BIN" verify "$T/good" --source "$SRC"
grep -q "verified ViTForImageClassification" "$T/out" && grep -q "logits" "$T/out" && ok || bad "verify output: $(cat "$T/out")"
expect_rc 0 "verify --quiet" "$BIN" verify "$T/good" --source "$SRC" --quiet
[ ! -s "$T/out" ] && ok || bad "--quiet printed: $(cat "$T/out")"
expect_rc 0 "verify --json" "$BIN" verify "$T/good" --source "$SRC" --json
if [ -n "$PY" ]; then
    "$PY" - "$T/out" <<'PYEOF' && ok || bad "verify --json: $(head -c 300 "$T/out")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["passed"] is True and s["engine_missing"] is False and s["error"] is None, s
names = {o["name"] for o in s["outputs"]}
assert names == {"last_hidden_state", "logits"}, names
assert all(o["ok"] and o["max_abs"] <= o["tolerance"] == 1e-4 and o["against"] == "source" for o in s["outputs"]), s
PYEOF
fi
expect_rc 0 "convert --json" "$BIN" convert "$SRC" "$T/goodj" $HEAD --json
if [ -n "$PY" ]; then
    "$PY" - "$T/out" <<'PYEOF' && ok || bad "convert --json verify: $(head -c 300 "$T/out")"
import json, sys
s = json.load(open(sys.argv[1]))
v = s["verify"]
assert s["check_only"] is False and v["passed"] is True and len(v["outputs"]) == 2, s
PYEOF
fi
# a wrong source: the same architecture with other weights (a training
# checkpoint's EMA copy against the model converted from its state_dict) fails
expect_rc 0 "convert the state_dict" "$BIN" convert "$FIX/vit_train.pth" "$T/train" --key state_dict $HEAD --quiet
expect_rc 0 "verify with the right key" "$BIN" verify "$T/train" --source "$FIX/vit_train.pth" --key state_dict
expect_rc 1 "verify against the EMA weights" "$BIN" verify "$T/train" --source "$FIX/vit_train.pth" --key state_dict_ema
grep -q "vitport verify: $T/train: verification failed: .* differs from the source model by [0-9.e+-]* (tolerance 0.0001)" "$T/err" \
    && ok || bad "mismatch message: $(cat "$T/err")"
grep -q "FAILED" "$T/out" && ok || bad "the failing output is not marked: $(cat "$T/out")"
# a --tolerance above the difference passes
expect_rc 0 "verify --tolerance 1e9" "$BIN" verify "$T/train" --source "$FIX/vit_train.pth" --key state_dict_ema --tolerance 1e9

# a DINO training checkpoint: without --key, verify looks in 'teacher' (backbone.*)
expect_rc 0 "convert DINO teacher" "$BIN" convert "$FIX/dino_train.pth" "$T/dino" $HEAD --quiet
expect_rc 0 "verify DINO without --key" "$BIN" verify "$T/dino" --source "$FIX/dino_train.pth"
grep -q "against the dino source evaluator" "$T/out" && ok || bad "DINO verify: $(cat "$T/out")"
expect_rc 1 "verify DINO teacher against the student" "$BIN" verify "$T/dino" --source "$FIX/dino_train.pth" --key student

# ---- --no-verify -----------------------------------------------------------
expect_rc 0 "convert --no-verify" "$BIN" convert "$SRC" "$T/nov" $HEAD --no-verify
grep -q "not verified (--no-verify)" "$T/err" && ok || bad "--no-verify summary: $(tail -c 300 "$T/err")"
grep -q "verifying" "$T/err" && bad "--no-verify still verified" || ok

# ---- --check-only: converts and verifies, keeps nothing -----------------------
mkdir -p "$T/tmp" "$T/cwd"
(cd "$T/cwd" && TMPDIR="$T/tmp" "$BIN" convert "$SRC" --check-only $HEAD >"$T/out" 2>"$T/err")
rc=$?
[ $rc = 0 ] && ok || bad "--check-only: exit $rc: $(cat "$T/err")"
grep -q "checked $SRC; verified ViTForImageClassification" "$T/err" && ok || bad "--check-only summary: $(tail -c 300 "$T/err")"
[ -z "$(ls -A "$T/tmp")" ] && [ -z "$(ls -A "$T/cwd")" ] && ok || bad "--check-only left files: $(ls -A "$T/tmp" "$T/cwd")"
# a failing check in --check-only: exit 1, nothing left
(cd "$T/cwd" && TMPDIR="$T/tmp" "$BIN" convert "$SRC" --check-only $HEAD --set hidden_act=relu >"$T/out" 2>"$T/err")
[ $? = 1 ] && ok || bad "--check-only with a differing model did not fail"
[ -z "$(ls -A "$T/tmp")" ] && [ -z "$(ls -A "$T/cwd")" ] && ok || bad "failed --check-only left files"

# ---- a conversion whose model differs from the source writes nothing ------------
expect_rc 1 "convert, model differs (hidden_act)" "$BIN" convert "$SRC" "$T/diff" $HEAD --set hidden_act=relu
grep -q "vitport convert: $T/diff: verification failed: last_hidden_state differs from the source model by [0-9.e+-]* (tolerance 0.0001); nothing written" "$T/err" \
    && ok || bad "failure message: $(cat "$T/err")"
[ ! -e "$T/diff" ] && ok || bad "failed verification created OUT_DIR"
no_leftovers "$T" "failed verification"
# --force over an existing OUT_DIR: untouched when the check fails
mkdir "$T/keep" && echo precious >"$T/keep/file"
expect_rc 1 "convert --force, model differs (eps)" "$BIN" convert "$SRC" "$T/keep" $HEAD --set layer_norm_eps=0.5 --force
[ "$(cat "$T/keep/file" 2>/dev/null)" = precious ] && [ "$(ls -A "$T/keep")" = file ] && ok || bad "OUT_DIR changed by a failed conversion"
no_leftovers "$T" "failed verification with --force"
grep -q "differs from the source model" "$T/err" && ok || bad "eps failure message: $(cat "$T/err")"

# ---- --pixel-values / --input-ids / --expect with a conformance case ------------
if [ -n "$CONF" ] && [ -d "$CONF/timm-vit-head" ]; then
    C="$CONF/timm-vit-head"
    expect_rc 0 "convert conformance timm" "$BIN" convert "$C/model.pth" "$T/ct" --model-name vit_base_patch16_224 $HEAD --quiet
    expect_rc 0 "verify --expect" "$BIN" verify "$T/ct" --source "$C/model.pth" --pixel-values "$C/inputs.npz" --expect "$C/expected.npz"
    grep -q "logits *vs expect" "$T/out" && grep -q "last_hidden_state *vs source" "$T/out" && ok || bad "--expect output: $(cat "$T/out")"
    expect_rc 0 "verify --expect alone" "$BIN" verify "$T/ct" --pixel-values "$C/inputs.npz" --expect "$C/expected.npz"
    grep -q "against the expected outputs" "$T/out" && ok || bad "--expect alone: $(cat "$T/out")"
    # the expected outputs of another case do not fit
    expect_rc 1 "verify --expect (wrong outputs)" "$BIN" verify "$T/ct" --pixel-values "$C/inputs.npz" --expect "$CONF/dino-p16/expected.npz"
    grep -q "last_hidden_state" "$T/err" && ok || bad "wrong --expect message: $(cat "$T/err")"
    # the reference conversion (ViTConfig's eps 1e-12, not timm's 1e-6) still verifies at 1e-4
    expect_rc 0 "verify the reference folder" "$BIN" verify "$C/reference" --source "$C/model.pth"
fi
# a family the engine of this build may not run: convert keeps the model and
# says whether it verified (decided by `vitport run` on the result)
expect_rc 0 "convert CLIP" "$BIN" convert "$FIX/clip_jit_fp16.pt" "$T/clip" \
    --set vision_config.num_attention_heads=2 --set text_config.num_attention_heads=2
if "$BIN" run "$T/clip" --pixel-values /dev/null --out "$T/x.npz" 2>&1 | grep -q "is not one vitport runs"; then
    grep -q "not verified: $T/clip: this build's engine does not run model_type \"clip\"" "$T/err" && ok || bad "CLIP note: $(tail -c 300 "$T/err")"
    expect_rc 1 "verify CLIP without the engine" "$BIN" verify "$T/clip" --source "$FIX/clip_jit_fp16.pt"
else
    grep -q "; verified CLIPModel" "$T/err" && ok || bad "CLIP not verified: $(tail -c 300 "$T/err")"
fi

echo "cli_verify.sh: $pass passed, $fail failed"
[ $fail = 0 ]
