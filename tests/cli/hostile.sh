#!/usr/bin/env bash
# Hostile strings and resource limits through the CLI (issue 9; complements bad_inputs.sh and
# bad_images.sh, which cover broken files, hostile paths for inspect and hostile vqa questions).
#   - results JSON (score): a 1 MB single-word caption (the PTB tokenizer used to be quadratic),
#     invalid UTF-8, a raw NUL byte, an escaped NUL, lone surrogates, RTL controls, format strings,
#     shell metacharacters, emoji; hostile results/annotation file names;
#   - the limit flags every subcommand has (--max-pixels, --max-audio-seconds,
#     --max-prompt-tokens, --max-new-tokens, --max-batch-mb): shown in --help with defaults,
#     bad values refused (exit 2), each limit refusing in one line that names the input and flag;
#   - questions (vqa) of 100k characters are refused by --max-prompt-tokens, not truncated;
#   - caption on valid but unusual images (1x1, 16-bit, gray, gray+alpha, RGBA, palette, CMYK,
#     very wide) and hostile image file names; sentiment on stereo / 48 kHz float / 6-channel /
#     8 kHz u8 audio (each part runs when its subcommand is registered).
# Every run has a 60 s timeout; a signal (exit >= 128) or a timeout (124) is a failure.
# Usage: bash tests/cli/hostile.sh /path/to/xmodal /repo/root
set -u
bin=$1
root=$2
fx=$root/tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fails=0
checks=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
py=/usr/bin/python3

# run ARGS...: sets rc, out, err
run() {
  timeout 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(tr -d '\0' <"$tmp/out")
  err=$(tr -d '\0' <"$tmp/err")
  checks=$((checks + 1))
}
what_of() { local w="xmodal ${*:1:5}"; echo "${w:0:160}"; }

# expect_err CODE NAME FRAGMENT ARGS...: exit CODE, exactly one stderr line "xmodal: ..." that
# contains NAME (the file or subject) and FRAGMENT; no signal, no timeout.
expect_err() {
  local code=$1 name=$2 frag=$3
  shift 3
  run "$@"
  local what
  what=$(what_of "$@")
  if [ "$rc" -ge 124 ]; then fail "$what: killed or timed out (exit $rc)"; return; fi
  [ "$rc" -eq "$code" ] || fail "$what: exit $rc, want $code (stderr: ${err:0:300})"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$what: want one stderr line, got: ${err:0:400}"
  case "$err" in "xmodal: "*) ;; *) fail "$what: stderr does not start with 'xmodal: ': ${err:0:300}" ;; esac
  local shown=${name//$'\n'/ }
  grep -qF -- "$shown" "$tmp/err" || fail "$what: stderr does not name '${shown:0:80}': ${err:0:300}"
  grep -qF -- "$frag" "$tmp/err" || fail "$what: stderr lacks '$frag': ${err:0:300}"
}
expect_ok() {
  run "$@"
  [ "$rc" -eq 0 ] || fail "$(what_of "$@"): exit $rc, want 0 (stderr: ${err:0:300})"
}
has_sub() { "$bin" --help 2>&1 | grep -q "^  $1 "; }

# ---------------------------------------------------------------- limit flags: help and values
for sub in info inspect score synth caption vqa eval sentiment; do
  has_sub "$sub" || continue
  run "$sub" --help
  [ "$rc" -eq 0 ] || fail "$sub --help: exit $rc"
  for flag in max-pixels max-audio-seconds max-prompt-tokens max-new-tokens max-batch-mb; do
    grep -q -- "--$flag" "$tmp/out" || fail "$sub --help does not list --$flag"
  done
  grep -q -- "--max-prompt-tokens arg (=128)" "$tmp/out" || fail "$sub --help: no default shown for --max-prompt-tokens"
done
good_gt=$fx/metrics/captions_gt.json
good_res=$fx/metrics/captions_results.json
for bad in "--max-pixels -1" "--max-pixels nan" "--max-audio-seconds 0" "--max-prompt-tokens 0" "--max-new-tokens abc" \
           "--max-batch-mb -5"; do
  # shellcheck disable=SC2086
  expect_err 2 "${bad%% *}" "" score --task caption --annotations "$good_gt" --results "$good_res" $bad
done
expect_ok score --task caption --annotations "$good_gt" --results "$good_res" --max-prompt-tokens 5 --max-batch-mb 1

# ---------------------------------------------------------------- hostile captions in results JSON (score)
# one results file per case: the first image gets the hostile caption, the others a plain one
# (one huge caption is the point; a copy per image would only multiply the time under ASan)
mk_res() {  # mk_res OUT PYTHON_EXPR_FOR_CAPTION
  $py - "$good_gt" "$2" >"$1" <<'PY'
import json, sys
gt = json.load(open(sys.argv[1]))
cap = eval(sys.argv[2])
ids = sorted({a["image_id"] for a in gt["annotations"]})
sys.stdout.write(json.dumps([{"image_id": i, "caption": cap if k == 0 else "a dog on a mat"} for k, i in enumerate(ids)]))
PY
}
mk_res word1m.json '"a" * (1 << 20)'
t0=$(date +%s)
expect_ok score --task caption --annotations "$good_gt" --results word1m.json
t1=$(date +%s)
[ $((t1 - t0)) -lt 30 ] || fail "score with 1 MB single-word captions took $((t1 - t0)) s (quadratic tokenizer?)"
mk_res mixed.json '"%s%n%x%p $(touch pwned) `id` ; | & > < \u202eevil\u202c \u200f 🐈‍⬛😀 " * 2000'
expect_ok score --task caption --annotations "$good_gt" --results mixed.json
[ ! -e pwned ] || fail "a caption was run by a shell"
mk_res esc_nul.json '"a dog\u0000 on a mat"'
expect_ok score --task caption --annotations "$good_gt" --results esc_nul.json
# raw bytes that are not JSON: invalid UTF-8, a raw NUL inside a string, a lone surrogate escape
printf '[{"image_id": 1, "caption": "a \xff\xfe dog"}]' >bad_utf8_res.json
expect_err 3 bad_utf8_res.json "" score --task caption --annotations "$good_gt" --results bad_utf8_res.json
printf '[{"image_id": 1, "caption": "a \x00 dog"}]' >raw_nul_res.json
expect_err 3 raw_nul_res.json "" score --task caption --annotations "$good_gt" --results raw_nul_res.json
printf '[{"image_id": 1, "caption": "a \\ud800 dog"}]' >surrogate_res.json
expect_err 3 surrogate_res.json "" score --task caption --annotations "$good_gt" --results surrogate_res.json
# hostile file names for dataset files: used as given, never through a shell, named in errors
for name in 'r$(touch pwned);|&`id`>x.json' '%s%n%x%p.json' $'rtl\u202enosj.json' 'emoji😀.json' $'new\nline.json' \
            $'bad\xff\xfeutf8.json' '-dash.json'; do
  cp "$good_res" "./$name"
  expect_ok score --task caption --annotations "$good_gt" --results "./$name"
  expect_err 3 "missing_$name" "" score --task caption --annotations "$good_gt" --results "./missing_$name"
done
[ ! -e pwned ] || fail "a file name was run by a shell"

# ---------------------------------------------------------------- images: caption (built-in scenes model)
scenes=$root/assets/models/scenes
if has_sub caption && [ -f "$scenes/config.json" ]; then
  for f in one_pixel.png rgb16.png gray16.png gray8.png gray.pgm gray_alpha.png rgba.png palette_trns.png cmyk.jpg \
           wide.png rgb.tif rgb_lossless.webp; do
    expect_ok caption --model "$scenes" "$fx/image/$f"
    [ -n "$out" ] || fail "caption $f: exit 0 but no caption"
  done
  for name in 'a$(touch pwned);|&`id`>x.png' $'rtl\u202egnp.png' 'emoji😀.png' $'bad\xff\xfeutf8.png'; do
    cp "$fx/image/one_pixel.png" "./$name"
    expect_ok caption --model "$scenes" "./$name"
  done
  [ ! -e pwned ] || fail "an image name was run by a shell"
  # --max-pixels: wide.png is checked from its header and refused in one line naming it
  expect_err 3 "$fx/image/wide.png" "(raise it with --max-pixels)" caption --model "$scenes" --max-pixels 0.0001 "$fx/image/wide.png"
  # --max-new-tokens below what a caption may need: refused before decoding
  expect_err 2 "--max-new-tokens" "over the limit of 2" caption --model "$scenes" --max-new-tokens 2 "$fx/image/rgb8.png"
  # --max-batch-mb: two images (~0.55 MiB each for this model) do not fit in 1 MiB as one batch;
  # the refusal names --batch and the largest batch that fits, and --batch 1 then works
  expect_err 2 "--batch" "use --batch 1 or less, or raise --max-batch-mb" \
    caption --model "$scenes" --max-batch-mb 1 "$fx/image/wide.png" "$fx/image/rgb8.png"
  expect_ok caption --model "$scenes" --max-batch-mb 1 --batch 1 "$fx/image/wide.png" "$fx/image/rgb8.png"
else
  echo "note: caption or the built-in model is not present; image/caption cases skipped"
fi

# ---------------------------------------------------------------- questions: vqa (built-in scenes model)
if has_sub vqa && [ -f "$scenes/config.json" ]; then
  img=$fx/image/rgb8.png
  q100k=$(printf 'what %.0s' $(seq 1 20000))  # 100k characters, 20k words
  expect_err 3 "question" "(raise it with --max-prompt-tokens)" vqa --model "$scenes" "$img" "$q100k"
  expect_err 3 "question" "over the limit of 3 (raise it with --max-prompt-tokens)" \
    vqa --model "$scenes" --max-prompt-tokens 3 "$img" "what color is the big circle?"
  for q in "what color is the circle? 🐈‍⬛😀" $'\u202ewhat\u202c color \u200f' '%s%n%x%p%s%s%s%s' \
           '$(touch pwned); `id` | & > < *' $'bad \xff\xfe utf8'; do
    run vqa --model "$scenes" "$img" "$q"
    if [ "$rc" -ge 124 ]; then fail "vqa '${q:0:40}': killed or timed out (exit $rc)"; continue; fi
    if [ "$rc" -ne 0 ]; then  # refusing (invalid UTF-8) is allowed, in one line
      [ "$rc" -eq 3 ] || fail "vqa '${q:0:40}': exit $rc, want 0 or 3: ${err:0:200}"
      [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "vqa '${q:0:40}': want one stderr line: ${err:0:300}"
    else
      [ -n "$out" ] || fail "vqa '${q:0:40}': exit 0 but no answer"
    fi
  done
  [ ! -e pwned ] || fail "a question was run by a shell"
else
  echo "note: vqa or the built-in model is not present; question cases skipped"
fi

# ---------------------------------------------------------------- audio: sentiment (built-in model)
if has_sub sentiment && [ -f "$root/assets/models/sentiment/config.json" ]; then
  for f in tones_44100_stereo.flac tones_48000_f32.wav tones_32000_6ch_s32.wav tones_8000_u8.wav speech_22050.ogg; do
    expect_ok sentiment --text "well, that happened 😀" --audio "$fx/audio/$f"
  done
  for t in $'\u202eevil\u202c' '%s%n%x%p' '$(touch pwned); `id`'; do
    run sentiment --text "$t" --audio "$fx/audio/tones_48000_f32.wav"
    [ "$rc" -lt 124 ] || fail "sentiment --text '${t:0:30}': killed or timed out (exit $rc)"
    [ "$rc" -eq 0 ] || [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "sentiment --text '${t:0:30}': exit $rc, not one line: ${err:0:300}"
  done
  [ ! -e pwned ] || fail "a text was run by a shell"
else
  echo "note: sentiment or its built-in model is not present; audio cases skipped"
fi

echo "hostile: $checks runs, $fails failures"
[ "$fails" -eq 0 ] || exit 1
exit 0
