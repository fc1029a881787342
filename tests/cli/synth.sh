#!/usr/bin/env bash
# xmodal synth end to end: files, counts, sizes, determinism, --split, --force, errors.
# Run by ctest as: bash tests/cli/synth.sh /path/to/xmodal /repo/root
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
count() { grep -o "$1" "$2" | wc -l | tr -d ' '; }
# PNG width/height from the IHDR chunk (bytes 16..23, big-endian).
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3*256+$4 "x" $7*256+$8}'; }

# --- shapes: 4 images ---------------------------------------------------------------------
"$bin" synth --preset shapes --images 4 --seed 3 --out "$tmp/shapes" -q 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "synth shapes exited $rc: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "--quiet still wrote to stderr: $(cat "$tmp/err")"
for f in scenes.json captions.json questions.json annotations.json images/000000.png images/000003.png; do
  [ -f "$tmp/shapes/$f" ] || fail "shapes: missing $f"
done
n=$(ls "$tmp/shapes/images" | wc -l | tr -d ' ')
[ "$n" = 4 ] || fail "shapes: $n images, expected 4"
[ "$(png_size "$tmp/shapes/images/000002.png")" = 128x128 ] || fail "shapes: image size $(png_size "$tmp/shapes/images/000002.png"), expected 128x128"
[ "$(count '"caption":' "$tmp/shapes/captions.json")" = 20 ] || fail "shapes: expected 20 captions (5 per image)"
[ "$(count '"question":' "$tmp/shapes/questions.json")" = 40 ] || fail "shapes: expected 40 questions (10 per image)"
[ "$(count '"answer":' "$tmp/shapes/annotations.json")" = 400 ] || fail "shapes: expected 10 answers per question"
grep -q '"question_id":3009' "$tmp/shapes/questions.json" || fail "shapes: question id 3009 (image 3, k 9) missing"
grep -q '"preset":"shapes"' "$tmp/shapes/scenes.json" || fail "shapes: scenes.json lacks the preset"
grep -q '"generator_version":1' "$tmp/shapes/scenes.json" || fail "shapes: scenes.json lacks the generator version"
grep -q '"question_type":"compare"' "$tmp/shapes/annotations.json" || fail "shapes: no compare family"

# --- sort-of-clevr: 3 images, with the progress line on a non-terminal ----------------------
"$bin" synth --preset sort-of-clevr --images 3 --seed 5 --out "$tmp/soc" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "synth sort-of-clevr exited $rc: $(cat "$tmp/err")"
grep -q "synth: 3/3 images" "$tmp/err" || fail "no final progress line on stderr: $(cat "$tmp/err")"
[ "$(png_size "$tmp/soc/images/000000.png")" = 75x75 ] || fail "sort-of-clevr: image size, expected 75x75"
[ "$(count '"caption":' "$tmp/soc/captions.json")" = 15 ] || fail "sort-of-clevr: expected 15 captions"
[ "$(count '"question":' "$tmp/soc/questions.json")" = 60 ] || fail "sort-of-clevr: expected 60 questions (20 per image)"
[ "$(count '"question_type":"B' "$tmp/soc/annotations.json")" = 30 ] || fail "sort-of-clevr: expected 30 relational questions"
[ "$(count '"color":' "$tmp/soc/scenes.json")" = 18 ] || fail "sort-of-clevr: expected 6 objects per scene"

# --- determinism: same seed -> identical bytes; another seed -> different ----------------------
"$bin" synth --preset shapes --images 4 --seed 3 --out "$tmp/shapes2" -q --threads 1 || fail "rerun failed"
for f in scenes.json captions.json questions.json annotations.json images/000000.png images/000003.png; do
  cmp -s "$tmp/shapes/$f" "$tmp/shapes2/$f" || fail "same seed, different $f"
done
"$bin" synth --preset shapes --images 4 --seed 4 --out "$tmp/shapes3" -q || fail "seed 4 failed"
cmp -s "$tmp/shapes/scenes.json" "$tmp/shapes3/scenes.json" && fail "seeds 3 and 4 gave the same scenes"

# --- --split test is --images 200 --seed 2 (checked on the first images via --images) -------
"$bin" synth --preset sort-of-clevr --split test --images 2 --out "$tmp/split" -q || fail "--split failed"
"$bin" synth --preset sort-of-clevr --images 2 --seed 2 --out "$tmp/seed2" -q || fail "--seed 2 failed"
cmp -s "$tmp/split/scenes.json" "$tmp/seed2/scenes.json" || fail "--split test differs from --seed 2"

# --- refuse a non-empty --out without --force; --force replaces synth's own files -------------
"$bin" synth --images 2 --out "$tmp/shapes" -q 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] || fail "non-empty --out: exit $rc, expected 2"
grep -q "not empty" "$tmp/err" || fail "non-empty --out: message was: $(cat "$tmp/err")"
touch "$tmp/shapes/keep.txt"
"$bin" synth --images 2 --seed 3 --out "$tmp/shapes" --force -q || fail "--force failed"
[ "$(ls "$tmp/shapes/images" | wc -l | tr -d ' ')" = 2 ] || fail "--force left stale images"
[ -f "$tmp/shapes/keep.txt" ] || fail "--force removed a file synth does not own"

# --- usage errors and help --------------------------------------------------------------------
"$bin" synth --preset clevr --out "$tmp/x" -q 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "bad --preset: exit $rc, expected 2"
grep -q "unknown --preset 'clevr'" "$tmp/err" || fail "bad --preset message: $(cat "$tmp/err")"
"$bin" synth --images 0 --out "$tmp/x" -q 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "--images 0: exit $rc, expected 2"
"$bin" synth -q 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "no --out: exit $rc, expected 2"
"$bin" synth --split valid --out "$tmp/x" -q 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "bad --split: exit $rc, expected 2"
"$bin" synth --help >"$tmp/help"; rc=$?
[ $rc -eq 0 ] || fail "--help exit $rc"
grep -q "examples:" "$tmp/help" || fail "--help has no examples"
grep -q "(=shapes)" "$tmp/help" || fail "--help does not show the --preset default"

# --- contact sheet ----------------------------------------------------------------------------
"$bin" synth --contact-sheet "$tmp/sheet.png" --sheet-images 2 -q || fail "--contact-sheet failed"
[ "$(head -c 4 "$tmp/sheet.png" | tail -c 3)" = PNG ] || fail "contact sheet is not a PNG"

if [ $failures -gt 0 ]; then
  echo "synth.sh: $failures check(s) failed"
  exit 1
fi
echo "synth.sh: all checks passed"
