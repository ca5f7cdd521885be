# Shared by the tests/cli_*.sh scripts (sourced): a scratch folder $T removed
# on exit, the pass/fail counters and the checks they all use.
# Usage: . "$(dirname "$0")/util/cli_lib.sh"; cli_begin NAME
cli_begin() {   # NAME: the scratch folder's prefix
    T=$(mktemp -d "/tmp/vp_$1.XXXXXX")
    trap 'rm -rf "$T"' EXIT
}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect_rc() { # want_rc description command...
    local want=$1 what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, expected $want: $(tail -c 300 "$T/err")"; fi
}
