#!/usr/bin/env bash
# xmodal info: a good tiny model dir (exact parameter count, grouping, --all, --json) and bad
# dirs (each exits 4 with exactly one stderr line naming the file and the problem).
# Usage: bash tests/cli/info.sh /path/to/xmodal /repo/root
set -u
bin=$1
root=$2
tiny=$root/tests/fixtures/models/tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run ARGS...: sets rc, out, err
run() {
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}
expect_out() {  # expect_out PATTERN (fixed string, on stdout)
  grep -qF -- "$1" "$tmp/out" || fail "stdout of '$last' lacks: $1"
}

# --- a good model ---------------------------------------------------------------------------
last="info --model tiny"
run info --model "$tiny"
[ "$rc" -eq 0 ] || fail "$last: exit $rc, stderr: $err"
expect_out "architecture:  xmodal-test"
expect_out "format:        xmodal 1"
# 40 + 16 + 4 + 16 + 4 + 4 + 4 floating-point elements; position_ids is an integer buffer.
expect_out "parameters:    88 (+ 6 elements in integer tensors)"
expect_out "8 tensors (BF16 1, F16 1, F32 5, I64 1)"
expect_out "tokenizer:     none"
grep -qE '^layers\.#\.fc\.weight +mixed +\[4, 4\] +2 +32$' "$tmp/out" || fail "$last: no grouped row for layers.#.fc.weight:
$out"
grep -qE '^embed\.weight +F32 +\[10, 4\] +1 +40$' "$tmp/out" || fail "$last: no row for embed.weight"
[ -z "$err" ] || fail "$last: unexpected stderr: $err"

last="info tiny --all (positional)"
run info "$tiny" --all
[ "$rc" -eq 0 ] || fail "$last: exit $rc"
grep -qE '^layers\.1\.fc\.weight +BF16 +\[4, 4\] +16$' "$tmp/out" || fail "$last: no row for layers.1.fc.weight:
$out"
grep -qE '^layers\.1\.fc\.bias +F16 +\[4\] +4$' "$tmp/out" || fail "$last: no row for layers.1.fc.bias"
[ "$(grep -cE '^(embed|layers|norm|position)' "$tmp/out")" -eq 8 ] || fail "$last: expected 8 tensor rows"

last="info --json"
run info --model "$tiny" --json
[ "$rc" -eq 0 ] || fail "$last: exit $rc"
expect_out '"parameters": 88,'
expect_out '"integer_elements": 6,'
expect_out '"architecture": "xmodal-test",'
expect_out '"name": "layers.1.fc.weight"'
[ "$(grep -c '"numel":' "$tmp/out")" -eq 8 ] || fail "$last: expected 8 tensors in the JSON"

# With a sentencepiece tokenizer the vocabulary size is reported (and the file validated).
mkdir -p "$tmp/withtok"
cp "$tiny/config.json" "$tiny/model.safetensors" "$tmp/withtok/"
cp "$root/tests/fixtures/tokenizer/tiny.model" "$tmp/withtok/tokenizer.model"
last="info withtok"
run info --model "$tmp/withtok"
[ "$rc" -eq 0 ] || fail "$last: exit $rc, stderr: $err"
expect_out "tokenizer:     sentencepiece, $tmp/withtok/tokenizer.model, 80 entries"

last="info --help"
run info --help
[ "$rc" -eq 0 ] || fail "$last: exit $rc"
expect_out "examples:"
expect_out "xmodal info --model"
last="info (no model)"
run info
[ "$rc" -eq 2 ] || fail "$last: exit $rc, want 2"

# --- bad models: exit 4, one line "xmodal: <file>: <problem>" -------------------------------
# bad NAME FILE_IN_MESSAGE PROBLEM: runs info on $tmp/NAME (or NAME if absolute)
bad() {
  local dir=$1 file=$2 problem=$3
  last="info $dir"
  run info --model "$dir"
  [ "$rc" -eq 4 ] || fail "$last: exit $rc, want 4 (stderr: $err)"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$last: stderr is not one line: $err"
  case "$err" in
    "xmodal: $file: "*"$problem"*) ;;
    *) fail "$last: stderr '$err' does not name '$file' with '$problem'" ;;
  esac
  [ -z "$out" ] || fail "$last: unexpected stdout: $out"
}
mkmodel() {  # mkmodel NAME: a copy of the tiny model
  mkdir -p "$tmp/$1"
  cp "$tiny/config.json" "$tiny/model.safetensors" "$tmp/$1/"
}

bad "$tmp/nope" "$tmp/nope" "No such file or directory"

mkdir -p "$tmp/noconfig"
cp "$tiny/model.safetensors" "$tmp/noconfig/"
bad "$tmp/noconfig" "$tmp/noconfig/config.json" "missing"

mkmodel badjson
printf '{"architecture": "xmodal-test", "format_version": 1,' >"$tmp/badjson/config.json"
bad "$tmp/badjson" "$tmp/badjson/config.json" "not valid JSON"

mkmodel noarch
printf '{"format_version": 1}' >"$tmp/noarch/config.json"
bad "$tmp/noarch" "$tmp/noarch/config.json" "missing key 'architecture'"

mkmodel noweights
rm "$tmp/noweights/model.safetensors"
bad "$tmp/noweights" "$tmp/noweights/model.safetensors" "missing"

mkmodel truncated
size=$(stat -c %s "$tiny/model.safetensors")
head -c $((size - 7)) "$tiny/model.safetensors" >"$tmp/truncated/model.safetensors"
bad "$tmp/truncated" "$tmp/truncated/model.safetensors" "outside the data section"

mkmodel cutheader
head -c 100 "$tiny/model.safetensors" >"$tmp/cutheader/model.safetensors"
bad "$tmp/cutheader" "$tmp/cutheader/model.safetensors" "is larger than the 92 bytes after it"

mkmodel wrongheader
{ printf 'PK\003\004garbage'; tail -c +9 "$tiny/model.safetensors"; } >"$tmp/wrongheader/model.safetensors"
bad "$tmp/wrongheader" "$tmp/wrongheader/model.safetensors" "header length"

mkmodel tiny4
printf '\004\000\000\000' >"$tmp/tiny4/model.safetensors"
bad "$tmp/tiny4" "$tmp/tiny4/model.safetensors" "4 bytes, too short"

mkmodel badtok
printf 'not a sentencepiece model' >"$tmp/badtok/tokenizer.model"
bad "$tmp/badtok" "$tmp/badtok/tokenizer.model" "not a valid sentencepiece model"

if [ "$fails" -ne 0 ]; then
  echo "info.sh: $fails check(s) failed"
  exit 1
fi
echo "info.sh: all checks passed"
