#!/usr/bin/env bash
# xmodal sentiment end to end with the built-in model (assets/models/sentiment):
# - the committed demo clips (assets/samples/sentiment-*.wav, tests/fixtures/sentiment/samples.json)
#   get exactly their generated labels; the same words in a different voice get a different label
#   ("well, the show is over" cheerful / neutral / flat; "the concert was wonderful" happy / flat);
# - --json shape (label, probabilities summing to 1, tokens, source, ms), the plain output;
# - --attention-map writes a PNG;
# - bad audio (empty, truncated header, truncated data, not audio, missing, a directory) exits 3
#   with exactly one stderr line "xmodal: FILE: problem" and no stdout;
# - usage errors (no/empty/blank --text, no --audio, a non-.png map) exit 2.
# Usage: bash tests/cli/sentiment.sh /path/to/xmodal /repo/root
set -u
bin=$1
root=$2
smp=$root/assets/samples
fxa=$root/tests/fixtures/audio
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run ARGS...: sets rc, out, err (30 s limit: nothing here may hang)
run() {
  timeout 30 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# expect_label TEXT CLIP LABEL: the first stdout line is LABEL, exit 0.
expect_label() {
  local text=$1 clip=$2 want=$3
  run sentiment --text "$text" --audio "$smp/$clip"
  [ "$rc" -eq 0 ] || { fail "sentiment '$text' $clip: exit $rc (stderr: $err)"; return; }
  local got
  got=$(head -n 1 "$tmp/out")
  [ "$got" = "$want" ] || fail "sentiment '$text' $clip: label '$got', want '$want' (output: $out)"
  # label line + one line per class: "  <class> <p>"
  [ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "sentiment '$text' $clip: want 4 stdout lines, got: $out"
  [ -z "$err" ] || fail "sentiment '$text' $clip: unexpected stderr: $err"
}

# The demo: same words, different voice, different label.
expect_label "well, the show is over" sentiment-happy.wav positive
expect_label "well, the show is over" sentiment-neutral.wav neutral
expect_label "well, the show is over" sentiment-flat.wav negative
expect_label "the concert was wonderful" sentiment-praise.wav positive
expect_label "the concert was wonderful" sentiment-sarcastic.wav negative
expect_label "the meeting starts at nine" sentiment-fact.wav neutral

# samples.json is the source of truth for the labels above: check they agree.
n=$(grep -c '"label"' "$root/tests/fixtures/sentiment/samples.json")
[ "$n" -eq 6 ] || fail "samples.json: want 6 clips, found $n"

# --json shape
run sentiment --text "well, the show is over" --audio "$smp/sentiment-flat.wav" --json
[ "$rc" -eq 0 ] || fail "--json: exit $rc ($err)"
for key in '"label": "negative"' '"probabilities": {' '"negative": ' '"neutral": ' '"positive": ' \
           '"tokens": [' '"audio_seconds": ' '"source": {' '"format": "WAV"' '"sample_rate": 22050' \
           '"channels": 1' '"ms": {' '"text": "well, the show is over"'; do
  case "$out" in
    *"$key"*) ;;
    *) fail "--json: missing '$key' in: $out" ;;
  esac
done
# the three probabilities are numbers in [0, 1] that sum to 1 (+-1e-4)
probs=$(printf '%s\n' "$out" | sed -n '/"probabilities"/,/}/p' | grep -Eo '"(negative|neutral|positive)": [0-9.eE+-]+' |
        sed 's/.*: //')
[ "$(printf '%s\n' "$probs" | grep -c .)" -eq 3 ] || fail "--json: want 3 probabilities, got: $probs"
sum_ok=$(printf '%s\n' "$probs" | awk '{ if ($1 < 0 || $1 > 1) bad = 1; s += $1 } END { print (!bad && s > 0.9999 && s < 1.0001) ? "yes" : "no" }')
[ "$sum_ok" = yes ] || fail "--json: probabilities not in [0,1] summing to 1: $probs"
# the first line is "{", the last "}": one object
[ "$(printf '%s\n' "$out" | head -n 1)" = "{" ] && [ "$(printf '%s\n' "$out" | tail -n 1)" = "}" ] ||
  fail "--json: not one JSON object: $out"

# --attention-map writes a PNG (signature checked) and does not change the answer
run sentiment -t "the concert was wonderful" -a "$smp/sentiment-sarcastic.wav" --attention-map "$tmp/map.png"
[ "$rc" -eq 0 ] || fail "--attention-map: exit $rc ($err)"
[ "$(head -n 1 "$tmp/out")" = negative ] || fail "--attention-map: label changed: $out"
[ -s "$tmp/map.png" ] && [ "$(head -c 8 "$tmp/map.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "--attention-map: $tmp/map.png is not a PNG"

# expect_bad FILE FRAGMENT: exit 3, stderr is one line "xmodal: FILE: ..." containing FRAGMENT.
expect_bad() {
  local file=$1 frag=$2
  run sentiment --text "well, the show is over" --audio "$file"
  [ "$rc" -eq 3 ] || fail "sentiment --audio $file: exit $rc, want 3 (stderr: $err)"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "sentiment --audio $file: want exactly one stderr line, got:
$err"
  case "$err" in
    "xmodal: $file: "*) ;;
    *) fail "sentiment --audio $file: stderr does not start with 'xmodal: $file: ': $err" ;;
  esac
  grep -qF -- "$frag" "$tmp/err" || fail "sentiment --audio $file: stderr lacks '$frag': $err"
  [ -z "$out" ] || fail "sentiment --audio $file: unexpected stdout: $out"
}

: >"$tmp/empty.wav"
expect_bad "$tmp/empty.wav" "empty"
head -c 30 "$smp/sentiment-happy.wav" >"$tmp/truncated_header.wav"
expect_bad "$tmp/truncated_header.wav" "not a readable audio file"
head -c 20000 "$smp/sentiment-happy.wav" >"$tmp/truncated.wav"  # header says more data than there is
expect_bad "$tmp/truncated.wav" "truncated"
echo "this is not audio" >"$tmp/text.wav"
expect_bad "$tmp/text.wav" "not a readable audio file"
cp "$root/assets/samples/scene-0.png" "$tmp/image.wav"
expect_bad "$tmp/image.wav" "not a readable audio file"
expect_bad "$fxa/bad_truncated.flac" "truncated"
expect_bad "$fxa/bad_garbage.ogg" "not a readable audio file"
expect_bad "$tmp/missing.wav" ""
mkdir "$tmp/adir.wav"
expect_bad "$tmp/adir.wav" ""

# over --max-audio-seconds: exit 3 naming the file, with the numbers
run sentiment --text "well" --audio "$smp/sentiment-flat.wav" --max-audio-seconds 1
[ "$rc" -eq 3 ] || fail "--max-audio-seconds 1: exit $rc, want 3 ($err)"
case "$err" in
  "xmodal: $smp/sentiment-flat.wav: "*"over the limit of 1 s"*) ;;
  *) fail "--max-audio-seconds 1: unexpected stderr: $err" ;;
esac
# a text over the model's 32 tokens: exit 3 about --text
run sentiment --text "$(printf 'wonderful %.0s' $(seq 40))" --audio "$smp/sentiment-flat.wav"
[ "$rc" -eq 3 ] || fail "40-word text: exit $rc, want 3 ($err)"
case "$err" in
  "xmodal: --text: "*"at most 32"*) ;;
  *) fail "40-word text: unexpected stderr: $err" ;;
esac

# expect_usage ARGS...: exit 2, one stderr line, no stdout.
expect_usage() {
  run sentiment "$@"
  [ "$rc" -eq 2 ] || fail "sentiment $*: exit $rc, want 2 (stderr: $err)"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "sentiment $*: want one stderr line, got: $err"
  [ -z "$out" ] || fail "sentiment $*: unexpected stdout: $out"
}
expect_usage --audio "$smp/sentiment-happy.wav"
expect_usage --text "" --audio "$smp/sentiment-happy.wav"
expect_usage --text "   " --audio "$smp/sentiment-happy.wav"
expect_usage --text "well"
expect_usage --text "well" --audio "$smp/sentiment-happy.wav" --attention-map "$tmp/map.jpg"
expect_usage --text "well" --audio "$smp/sentiment-happy.wav" --no-such-flag

# --help: exit 0, shows examples and defaults
run sentiment --help
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
case "$out" in *"xmodal sentiment --text"*) ;; *) fail "--help: no example: $out" ;; esac
case "$out" in *"default"*) ;; *) fail "--help: no defaults shown: $out" ;; esac

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "sentiment CLI: all checks passed"
