#!/usr/bin/env bash
# `cmake --install` puts the library, header, pkg-config file and program in
# place, and a C program builds against them with pkg-config alone.
set -u
if [ "${VP_SANITIZE:-0}" = 1 ]; then
  # A sanitizer-built library needs the sanitizer runtime in every program
  # linked against it; the release build runs this test.
  echo "cli_install: 0 passed, 0 failed, 1 skipped"; exit 0
fi
BUILD=$(dirname "$VP_BIN")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null 2>"$T/err" && ok || bad "cmake --install: $(cat "$T/err")"
for f in include/vitport/vitport.h include/vitport/convert.h bin/vitport lib/pkgconfig/vitport.pc; do
  [ -e "$T/prefix/$f" ] && ok || bad "not installed: $f"
done
ls "$T/prefix"/lib*/libvitport.so* >/dev/null 2>&1 && ok || bad "libvitport.so not installed"
cat >"$T/use.c" <<'C'
#include <stdio.h>
#include <vitport/vitport.h>
int main(int argc, char **argv)
{
    vp_source *s = NULL;
    if (argc < 2 || vp_source_open(&s, argv[1], NULL) != VP_OK) { vp_source_close(s); return 1; }
    /* the conversion API comes with vitport.h */
    printf("%s %s %zu %s\n", vp_version(), vp_source_format(s), vp_source_count(s), vp_convert_family(0, NULL));
    vp_source_close(s);
    return 0;
}
C
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
if cc -std=c11 -Wall -Werror "$T/use.c" $(pkg-config --cflags --libs vitport) -o "$T/use" 2>"$T/err"; then
  ok
  out=$(LD_LIBRARY_PATH="$T/prefix/lib" "$T/use" "$VP_SRC/examples/dino_vits16_tiny.pth")
  [ "$out" = "$(pkg-config --modversion vitport) torch-zip 30 vit" ] && ok || bad "program built against the install printed '$out'"
else
  bad "cannot build against the installed library: $(head -c 400 "$T/err")"
fi
"$T/prefix/bin/vitport" --version | grep -q "^vitport " && ok || bad "installed vitport --version"
# the installed program finds the installed library by itself (RPATH $ORIGIN/../lib)
env -u LD_LIBRARY_PATH "$T/prefix/bin/vitport" convert --help | grep -q "clipseg" && ok || bad "installed vitport convert --help"
echo "cli_install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
