#!/usr/bin/env bash
# Library use: `cmake --install` of the build tree into a temporary prefix gives headers, static
# libraries and a package config with which examples/ (find_package(xmodal), xmodal::pipeline)
# configures, builds and captions assets/samples/scene-0.png exactly as the CLI does. The
# installed CLI finds its installed built-in model.
# usage: install.sh /path/to/xmodal /repo/root   (the build tree is the binary's folder)
set -u
X=$1
ROOT=$2
BUILD=$(dirname "$X")
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_WAIT_POLICY=PASSIVE
want=$(awk -F'\t' '$1=="assets/samples/scene-0.png" && $2=="caption" {print $4}' "$ROOT/tests/fixtures/scenes_model/expected.tsv")
[ -n "$want" ] || { echo "FAIL: no expected caption"; exit 1; }

cmake --install "$BUILD" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }
for f in include/xmodal/pipeline/vlm.hpp include/xmodal/core/tensor.hpp lib/libxmodal_pipeline.a lib/libxmodal_core.a \
         lib/cmake/xmodal/xmodalConfig.cmake lib/cmake/xmodal/xmodalTargets.cmake bin/xmodal \
         share/xmodal/assets/models/scenes/model.safetensors; do
  [ -e "$tmp/prefix/$f" ] || fail "not installed: $f"
done

# A sanitizer build's static libraries need the same -fsanitize flags in the program that links them.
san=$(sed -n 's/^XMODAL_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
flags=()
[ -n "$san" ] && flags=(-DCMAKE_CXX_FLAGS="-fsanitize=$san -fno-omit-frame-pointer" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$san")
cmake -S "$ROOT/examples" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" >"$tmp/cfg.log" 2>&1 ||
  { cat "$tmp/cfg.log"; echo "FAIL: configuring examples/ against the installed package"; exit 1; }
cmake --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log"; echo "FAIL: building examples/"; exit 1; }
out=$("$tmp/build/caption" "$tmp/prefix/share/xmodal/assets/models/scenes" "$ROOT/assets/samples/scene-0.png" 2>&1)
[ "$out" = "$want" ] || fail "examples/caption: got '$out', expected '$want'"
"$tmp/build/caption" "$tmp/prefix/share/xmodal/assets/models/scenes" "$tmp/missing.png" >/dev/null 2>"$tmp/err"
[ $? -eq 3 ] && grep -q "missing.png" "$tmp/err" || fail "examples/caption on a missing file: $(cat "$tmp/err")"
# The installed CLI finds the installed model (XMODAL_MODEL_DIR unset).
out=$(env -u XMODAL_MODEL_DIR "$tmp/prefix/bin/xmodal" caption --threads 1 "$ROOT/assets/samples/scene-0.png" 2>&1)
[ "$out" = "$want" ] || fail "installed xmodal caption: got '$out'"

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "install: all checks passed"
