#!/usr/bin/env bash
# Bad-input suite (issue 9 item 5) through the CLI: broken dataset, model, tokenizer and image
# files and hostile strings (invalid UTF-8, 100k characters, right-to-left controls, format
# strings, shell metacharacters, newlines) as paths and questions. Each bad case must exit with
# the documented code (2 usage, 3 bad input, 4 bad model), print exactly ONE stderr line that
# names the file, and never die from a signal or hang (10 s limit each). Valid but unusual
# inputs must work: 1x1, 16-bit, gray, gray+alpha, RGBA/palette, CMYK, very wide images;
# file names with metacharacters, RTL controls and emoji; emoji and hostile questions for vqa
# (when the vqa subcommand and its built-in model are present).
# Usage: bash tests/cli/bad_inputs.sh /path/to/xmodal /repo/root
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

# run ARGS...: sets rc, err (stderr) and out
run() {
  timeout 10 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(tr -d '\0' <"$tmp/out")
  err=$(tr -d '\0' <"$tmp/err")
  checks=$((checks + 1))
}

# expect_err CODE NAME ARGS...: exit CODE, one stderr line starting "xmodal: " that contains NAME
# (a file name; newlines in it are shown as spaces), no signal (rc > 128) and no timeout (124).
expect_err() {
  local code=$1 name=$2
  shift 2
  run "$@"
  local what="xmodal ${*:1:4}"
  what=${what:0:200}
  if [ "$rc" -ge 124 ]; then fail "$what: killed or timed out (exit $rc)"; return; fi
  [ "$rc" -eq "$code" ] || fail "$what: exit $rc, want $code (stderr: ${err:0:300})"
  local lines
  lines=$(wc -l <"$tmp/err")
  [ "$lines" -eq 1 ] || fail "$what: want one stderr line, got $lines: ${err:0:300}"
  case "$err" in "xmodal: "*) ;; *) fail "$what: stderr does not start with 'xmodal: ': ${err:0:300}" ;; esac
  local shown=${name//$'\n'/ }
  grep -qF -- "${shown:0:4000}" "$tmp/err" || fail "$what: stderr does not name '${shown:0:80}': ${err:0:300}"
}

# expect_ok ARGS...: exit 0, no signal.
expect_ok() {
  run "$@"
  [ "$rc" -eq 0 ] || fail "xmodal ${*:1:4}: exit $rc, want 0 (stderr: ${err:0:300})"
}

# ---------------------------------------------------------------- dataset files (score)
good_gt=$fx/metrics/captions_gt.json
good_res=$fx/metrics/captions_results.json
: >empty.json
printf '{"images": [' >truncated.json
printf '\x89PNG\r\n\x1a\n\x00\x00' >binary.json
printf '{"images":[{"id":1,"file_name":"a\xff.png"}],"annotations":[]}' >bad_utf8.json
/usr/bin/python3 -c "print('[' * 100000 + ']' * 100000)" >deep.json 2>/dev/null ||
  { printf '%*s' 100000 '' | tr ' ' '[' >deep.json; printf '%*s' 100000 '' | tr ' ' ']' >>deep.json; }
printf '{"images":"nope","annotations":[]}' >wrong_type.json
printf '{"images":[{"id":1e400,"file_name":"a.png"}],"annotations":[]}' >huge_number.json
printf '{"images":[{"id":1,"file_name":"../../etc/passwd"}],"annotations":[{"id":1,"image_id":1,"caption":"x"}]}' >escape.json
printf '{"images":[{"id":1,"file_name":"a.png"},{"id":1,"file_name":"b.png"}],"annotations":[]}' >dup_ids.json
mkdir adir.json
for f in empty.json truncated.json binary.json bad_utf8.json deep.json wrong_type.json huge_number.json escape.json \
         dup_ids.json adir.json missing.json; do
  expect_err 3 "$f" score --task caption --annotations "$f" --results "$good_res"
done
expect_err 3 deep.json score --task caption --annotations "$good_gt" --results deep.json
expect_err 3 bad_utf8.json score --task vqa --annotations bad_utf8.json --results "$fx/metrics/vqa_results.json"
# A 100k-character caption (words; see tests/fuzz/README.md for one 100k-letter word) and hostile text in a results file are data, not errors.
/usr/bin/python3 - "$good_gt" <<'PY' >long_res.json
import json, sys
gt = json.load(open(sys.argv[1]))
ids = sorted({a["image_id"] for a in gt["annotations"]})
hostile = ["a cat " * 20000, "%s%n%x %d $(rm -rf /) `id` ; | & > <", "\u202eevil\u202c \u200f", "🐈‍⬛ emoji 😀", "nul\u0000in"]
print(json.dumps([{"image_id": i, "caption": hostile[k % len(hostile)]} for k, i in enumerate(ids)]))
PY
expect_ok score --task caption --annotations "$good_gt" --results long_res.json
# usage errors: one line, exit 2
expect_err 2 "--task" score --task nope --annotations "$good_gt" --results "$good_res"

# ---------------------------------------------------------------- model and tokenizer files (info)
tiny=$fx/models/tiny
mk_model() {  # mk_model DIR: a copy of the good tiny model dir
  rm -rf "$1"
  cp -r "$tiny" "$1"
}
mk_model m_cfg_deep && cp deep.json m_cfg_deep/config.json
mk_model m_cfg_utf8 && printf '{"architecture":"\xff\xfe","format_version":1}' >m_cfg_utf8/config.json
mk_model m_cfg_nul && printf '{"architecture":"a\\u0000b","format_version":1}' >m_cfg_nul/config.json
mk_model m_cfg_fmt && printf '{"architecture":"%%s%%n%%x$(id)","format_version":1}' >m_cfg_fmt/config.json
mk_model m_st_hdr && printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >m_st_hdr/model.safetensors
mk_model m_st_trunc && head -c 100 "$tiny/model.safetensors" >m_st_trunc/model.safetensors
mk_model m_st_empty && : >m_st_empty/model.safetensors
for d in m_cfg_deep m_cfg_utf8; do
  expect_err 4 "$d/config.json" info --model "$d"
done
# NUL and format strings inside JSON strings are data: info either describes the model or
# refuses it in one line naming config.json; never a crash.
for d in m_cfg_nul m_cfg_fmt; do
  run info --model "$d"
  if [ "$rc" -ge 124 ]; then fail "info $d: killed or timed out (exit $rc)"; fi
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 4 ] || fail "info $d: exit $rc, want 0 or 4: $err"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "info $d: want one stderr line: $err"
    grep -qF "$d/config.json" "$tmp/err" || fail "info $d: stderr does not name config.json: $err"
  fi
done
for d in m_st_hdr m_st_trunc m_st_empty; do
  expect_err 4 "$d/model.safetensors" info --model "$d"
done
# broken tokenizers next to a good model
mk_model m_tok_sp && head -c 300 /dev/urandom >m_tok_sp/tokenizer.model 2>/dev/null
mk_model m_tok_wp && printf 'only\nwords\n' >m_tok_wp/vocab.txt
mk_model m_tok_dir && mkdir m_tok_dir/tokenizer.model
for d in m_tok_sp m_tok_wp m_tok_dir; do
  run info --model "$d"
  if [ "$rc" -ge 124 ]; then fail "info $d: killed or timed out (exit $rc)"; fi
  # info may ignore a tokenizer its architecture does not use; if it reads it, it must refuse it cleanly
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 4 ] || fail "info $d: exit $rc, want 0 or 4: $err"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "info $d: want one stderr line: $err"
    grep -qF "$d/" "$tmp/err" || fail "info $d: stderr does not name the file: $err"
  fi
done
long=$(printf '%*s' 100000 '' | tr ' ' 'x')
expect_err 4 "xxxxxxxx" info --model "$long"

# ---------------------------------------------------------------- images and hostile paths (inspect)
for f in one_pixel.png gray16.png gray8.png gray.pgm gray_alpha.png palette_trns.png cmyk.jpg wide.png; do
  expect_ok inspect "$fx/image/$f"
done
expect_err 3 animated.webp inspect "$fx/image/animated.webp"  # documented refusal
head -c 60 "$fx/image/cmyk.jpg" >cmyk_trunc.jpg
expect_err 3 cmyk_trunc.jpg inspect cmyk_trunc.jpg
for name in 'a$(touch pwned);|&`id`>x.png' '%s%n%x%p.png' $'rtl\u202egnp.png' 'emoji😀.png' $'new\nline.png' $'bad\xff\xfeutf8.png' '-dash.png'; do
  cp "$fx/image/one_pixel.png" "./$name"
  expect_ok inspect "./$name"
  expect_err 3 "missing_$name" inspect "./missing_$name"
done
[ ! -e pwned ] || fail "a file name was run by a shell"
expect_err 3 "$long" inspect "$long"
expect_err 3 "xmodal_no_such" inspect "/nonexistent/xmodal_no_such.png"

# ---------------------------------------------------------------- questions (vqa, when present)
if "$bin" --help 2>&1 | grep -q '^  vqa ' && [ -f "$root/assets/models/scenes/config.json" ]; then
  img=$fx/image/one_pixel.png
  for q in "what color is the circle? 🐈‍⬛😀" $'\u202ewhat\u202c color' '%s%n%x%p' '$(touch pwned); `id` | & > <' \
           $'bad \xff\xfe utf8' "$long"; do
    run vqa --model "$root/assets/models/scenes" "$img" "$q"
    if [ "$rc" -ge 124 ]; then fail "vqa '${q:0:40}': killed or timed out (exit $rc)"; continue; fi
    if [ "$rc" -ne 0 ]; then
      [ "$rc" -eq 3 ] || fail "vqa '${q:0:40}': exit $rc, want 0 or 3: ${err:0:200}"
      [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "vqa '${q:0:40}': want one stderr line: ${err:0:300}"
    else
      [ -n "$out" ] || fail "vqa '${q:0:40}': exit 0 but no answer"
    fi
  done
  [ ! -e pwned ] || fail "a question was run by a shell"
  expect_err 3 "" vqa --model "$root/assets/models/scenes" "$img" ""
else
  echo "note: vqa or its built-in model is not present; question cases skipped"
fi

echo "bad_inputs: $checks runs, $fails failures"
[ "$fails" -eq 0 ] || exit 1
exit 0
