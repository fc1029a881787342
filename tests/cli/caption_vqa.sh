#!/usr/bin/env bash
# End-to-end: `xmodal caption` and `xmodal vqa` with the shipped model on the committed sample
# scenes print exactly the expected text (tests/fixtures/scenes_model/expected.tsv, written by
# training/make_scenes_fixtures.py from PyTorch greedy decoding), and fail with the documented
# exit codes and one-line messages on bad input.
# usage: caption_vqa.sh /path/to/xmodal /repo/root
set -u
X=$1
ROOT=$2
EXP=$ROOT/tests/fixtures/scenes_model/expected.tsv
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run CMD... : sets out, err, rc
run() {
  OMP_WAIT_POLICY=PASSIVE "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

expect_rc() {  # expected_rc what
  [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1 (stderr: $err)"
}

# ---- exact outputs on the samples (default model location, no --model) ----
# One caption call for every sample (IMAGE<TAB>caption per line, in argument order) and one vqa
# call per sample with all its questions (one answer per line, in order).
[ -s "$EXP" ] || { echo "FAIL: missing $EXP"; exit 1; }
n=$(wc -l <"$EXP")
[ "$n" -ge 8 ] || fail "expected.tsv has only $n cases"
mapfile -t files < <(cut -f1 "$EXP" | uniq)
want=""
args=()
for f in "${files[@]}"; do
  c=$(awk -F'\t' -v f="$f" '$1==f && $2=="caption" {print $4}' "$EXP")
  want+="$ROOT/$f"$'\t'"$c"$'\n'
  args+=("$ROOT/$f")
done
run "$X" caption --threads 1 "${args[@]}"
expect_rc 0 "caption of ${#args[@]} images"
[ "$out" = "${want%$'\n'}" ] || fail "captions: got
$out
expected
${want%$'\n'}"
for f in "${files[@]}"; do
  mapfile -t qs < <(awk -F'\t' -v f="$f" '$1==f && $2=="vqa" {print $3}' "$EXP")
  mapfile -t as < <(awk -F'\t' -v f="$f" '$1==f && $2=="vqa" {print $4}' "$EXP")
  run "$X" vqa --threads 1 "$ROOT/$f" "${qs[@]}"
  expect_rc 0 "vqa $f"
  mapfile -t got <<<"$out"
  for i in "${!qs[@]}"; do
    [ "${got[$i]:-}" = "${as[$i]}" ] || fail "vqa $f '${qs[$i]}': got '${got[$i]:-}', expected '${as[$i]}'"
  done
  [ "${#got[@]}" -eq "${#qs[@]}" ] || fail "vqa $f: ${#got[@]} answer lines for ${#qs[@]} questions"
done

# A single image prints the caption alone.
cap0=$(awk -F'\t' '$1=="assets/samples/scene-0.png" && $2=="caption" {print $4}' "$EXP")
mapfile -t qs < <(awk -F'\t' '$1=="assets/samples/scene-0.png" && $2=="vqa" {print $3}' "$EXP")
mapfile -t as < <(awk -F'\t' '$1=="assets/samples/scene-0.png" && $2=="vqa" {print $4}' "$EXP")
run "$X" caption "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "caption of one image"
[ "$out" = "$cap0" ] || fail "single-image caption: got '$out', expected '$cap0'"

# Case and a missing '?' do not change the answer; an unknown word still gets a one-word answer.
q0=${qs[0]}
run "$X" vqa "$ROOT/assets/samples/scene-0.png" "$(echo "${q0%\?}" | tr a-z A-Z)"
expect_rc 0 "upper-case question without '?'"
[ "$out" = "${as[0]}" ] || fail "upper-case '$q0' without '?': got '$out', expected '${as[0]}'"
run "$X" vqa "$ROOT/assets/samples/scene-0.png" "is the zebra fuchsia?"
expect_rc 0 "out-of-vocabulary question"
[ -n "$out" ] || fail "out-of-vocabulary question: empty answer"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "out-of-vocabulary question: '$out' is not one line"

# --json output parses as the right shape (checked with grep; no jq needed).
run "$X" caption --json "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "caption --json"
echo "$out" | grep -qF "\"caption\": \"$cap0\"" || fail "caption --json lacks the caption: $out"

# The model directory can be given explicitly or through XMODAL_MODEL_DIR.
run "$X" caption --model "$ROOT/assets/models/scenes" "$ROOT/assets/samples/scene-0.png"
[ "$out" = "$cap0" ] || fail "--model: got '$out'"
run env XMODAL_MODEL_DIR="$ROOT/assets/models/scenes" "$X" caption "$ROOT/assets/samples/scene-0.png"
[ "$out" = "$cap0" ] || fail "XMODAL_MODEL_DIR: got '$out'"

# ---- errors: exit codes and one-line messages ----
run "$X" caption
expect_rc 2 "caption without images"
run "$X" vqa "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "vqa without a question"
run "$X" caption --bogus "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "unknown flag"
run "$X" caption "$tmp/missing.png"
expect_rc 3 "missing image"
echo "$err" | grep -q "missing.png" || fail "missing image message does not name the file: $err"
echo "not an image" >"$tmp/text.png"
run "$X" caption "$tmp/text.png"
expect_rc 3 "text file as image"
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "error message is not one line: $err"
run "$X" vqa "$ROOT/assets/samples/scene-0.png" "   "
expect_rc 3 "empty question"
run "$X" caption --model "$tmp" "$ROOT/assets/samples/scene-0.png"
expect_rc 4 "model dir without config.json"
run env XMODAL_MODEL_DIR="$tmp/nope" "$X" caption "$ROOT/assets/samples/scene-0.png"
expect_rc 4 "XMODAL_MODEL_DIR pointing nowhere"
mkdir -p "$tmp/m"
cp "$ROOT/assets/models/scenes/config.json" "$ROOT/assets/models/scenes/tokenizer.model" "$tmp/m/"
head -c 1000 "$ROOT/assets/models/scenes/model.safetensors" >"$tmp/m/model.safetensors"
run "$X" caption --model "$tmp/m" "$ROOT/assets/samples/scene-0.png"
expect_rc 4 "truncated weights"
echo "$err" | grep -q "model.safetensors" || fail "truncated weights message does not name the file: $err"

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "caption_vqa: all checks passed ($n exact cases)"
