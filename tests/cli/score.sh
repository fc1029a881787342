#!/usr/bin/env bash
# xmodal score on the committed metric fixtures: the printed numbers are pycocoevalcap's and
# vqaEval.py's (tests/fixtures/metrics/*_expected.json, rounded for the table); --json carries
# the full values; bad inputs (malformed JSON, unknown ids, out-of-root image names, missing
# files) exit 3 with one stderr line naming the file; bad flags exit 2.
# Usage: bash tests/cli/score.sh /path/to/xmodal /repo/root
set -u
bin=$1
root=$2
fx=$root/tests/fixtures/metrics
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

run() {
  timeout 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# has LINE: stdout contains exactly this line.
has() { grep -qxF -- "$1" "$tmp/out" || fail "score $label: stdout lacks line '$1'; got:
$out"; }

# expect_bad CODE FILE FRAGMENT ARGS...: exit CODE, one stderr line naming FILE with FRAGMENT.
expect_bad() {
  local code=$1 file=$2 frag=$3
  shift 3
  run score "$@"
  [ "$rc" -eq "$code" ] || fail "score $*: exit $rc, want $code (stderr: $err)"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "score $*: want one stderr line, got:
$err"
  case "$err" in
    "xmodal: $file: "*) ;;
    *) fail "score $*: stderr does not start with 'xmodal: $file: ': $err" ;;
  esac
  grep -qF -- "$frag" "$tmp/err" || fail "score $*: stderr lacks '$frag': $err"
  [ -z "$out" ] || fail "score $*: unexpected stdout: $out"
}

# --- caption: table with pycocoevalcap's numbers (captions_expected.json) ---
label=caption
run score --task caption --annotations "$fx/captions_gt.json" --results "$fx/captions_results.json"
[ "$rc" -eq 0 ] || fail "caption: exit $rc ($err)"
has "BLEU-1     0.7563"
has "BLEU-2     0.6718"
has "BLEU-3     0.5690"
has "BLEU-4     0.4675"
has "ROUGE-L    0.6168"
has "CIDEr-D    2.2504"
has "N          7"
grep -qF "1 of 8 annotated images have no result" "$tmp/err" || fail "caption: no warning about the image without a result: $err"

label=caption-json
run score --task caption -a "$fx/captions_gt.json" -r "$fx/captions_results.json" --json -q
[ "$rc" -eq 0 ] || fail "caption --json: exit $rc ($err)"
grep -qF '"Bleu_4": 0.46748910829363577' "$tmp/out" || fail "caption --json: Bleu_4 not the full value: $out"
grep -qF '"CIDEr": 2.2503799817457595' "$tmp/out" || fail "caption --json: CIDEr not the full value: $out"
grep -qF '"n_images": 7' "$tmp/out" || fail "caption --json: n_images: $out"

label=caption-random
run score --task caption -a "$fx/captions_random_gt.json" -r "$fx/captions_random_results.json" -q
[ "$rc" -eq 0 ] || fail "caption random: exit $rc ($err)"
has "BLEU-4     0.1455"
has "CIDEr-D    0.7626"
has "N          178"

# --- vqa: the official accuracy table (vqa_expected.json) ---
label=vqa
run score --task vqa -a "$fx/vqa_annotations.json" --questions "$fx/vqa_questions.json" -r "$fx/vqa_results.json"
[ "$rc" -eq 0 ] || fail "vqa: exit $rc ($err)"
has "overall          71.05"
has "  yes/no         58.00"
has "  number         80.00"
has "  other          73.33"
has "  what color is  65.00"
has "  what is the    100.00"
has "N                19"
grep -qF "1 of 20 questions have no result" "$tmp/err" || fail "vqa: no warning about the unanswered question: $err"

label=vqa-legacy
run score --task vqa -a "$fx/vqa_annotations.json" -r "$fx/vqa_results.json" --vqa-eval legacy --json -q
[ "$rc" -eq 0 ] || fail "vqa legacy: exit $rc ($err)"
grep -qF '"overall": 86.32' "$tmp/out" || fail "vqa legacy --json: overall: $out"
grep -qF '"yes/no": 98.0' "$tmp/out" || fail "vqa legacy --json: yes/no: $out"

label=vqa-random
run score --task vqa -a "$fx/vqa_random_annotations.json" -r "$fx/vqa_random_results.json" -q
[ "$rc" -eq 0 ] || fail "vqa random: exit $rc ($err)"
has "overall          56.22"

# --- bad inputs: exit 3, one line naming the file ---
printf '{"images": [1, 2,, ]}' >"$tmp/bad.json"
expect_bad 3 "$tmp/bad.json" "invalid JSON at byte 18" --task caption -a "$tmp/bad.json" -r "$fx/captions_results.json"
printf '[{"question_id": 9000, "answer": "yes"' >"$tmp/trunc.json"
expect_bad 3 "$tmp/trunc.json" "invalid JSON" --task vqa -a "$fx/vqa_annotations.json" -r "$tmp/trunc.json"
printf '{"images": [{"id": 1, "file_name": "../../etc/passwd"}], "annotations": []}' >"$tmp/outside.json"
expect_bad 3 "$tmp/outside.json" "images[0]: file_name: '../../etc/passwd' contains '..'" \
  --task caption -a "$tmp/outside.json" -r "$fx/captions_results.json"
printf '{"images": [{"id": 1, "file_name": "/etc/passwd"}], "annotations": []}' >"$tmp/abs.json"
expect_bad 3 "$tmp/abs.json" "is an absolute path" --task caption -a "$tmp/abs.json" -r "$fx/captions_results.json"
printf '[{"image_id": 101, "caption": "a"}, {"image_id": 4242, "caption": "b"}]' >"$tmp/unknown.json"
expect_bad 3 "$tmp/unknown.json" "results[1]: image_id 4242 is not in the annotations" \
  --task caption -a "$fx/captions_gt.json" -r "$tmp/unknown.json"
printf '[{"question_id": 77, "answer": "b"}]' >"$tmp/unknown_q.json"
expect_bad 3 "$tmp/unknown_q.json" "results[0]: question_id 77 is not in the annotations" \
  --task vqa -a "$fx/vqa_annotations.json" -r "$tmp/unknown_q.json"
printf '[{"image_id": 101}]' >"$tmp/nocap.json"
expect_bad 3 "$tmp/nocap.json" "results[0]: missing 'caption'" --task caption -a "$fx/captions_gt.json" -r "$tmp/nocap.json"
printf '[]' >"$tmp/none.json"
expect_bad 3 "$tmp/none.json" "no results" --task caption -a "$fx/captions_gt.json" -r "$tmp/none.json"
expect_bad 3 "$tmp/missing.json" "No such file" --task vqa -a "$fx/vqa_annotations.json" -r "$tmp/missing.json"
expect_bad 3 "$tmp" "directory" --task vqa -a "$tmp" -r "$fx/vqa_results.json"
# a questions file that disagrees with the annotations
printf '{"questions": [{"question_id": 9000, "image_id": 100, "question": "?"}]}' >"$tmp/q.json"
expect_bad 3 "$fx/vqa_annotations.json" "question_id 9001 is not in the questions file" \
  --task vqa -a "$fx/vqa_annotations.json" --questions "$tmp/q.json" -r "$fx/vqa_results.json"

# --- --scenes: the caption checker's columns on a small `xmodal synth` set ---
label=scenes
run synth --preset shapes --images 4 --seed 0 --out "$tmp/syn" -q
[ "$rc" -eq 0 ] || fail "synth for the --scenes test: exit $rc ($err)"
# ref N IMAGE: the N-th reference caption of IMAGE (captions.json is written compactly by
# data::write_coco_captions, keys sorted: {"caption":...,"id":...,"image_id":...}).
ref() { grep -o "{\"caption\":\"[^\"]*\",\"id\":[0-9]*,\"image_id\":$2}" "$tmp/syn/captions.json" |
  sed -n "$1p" | sed 's/^{"caption":"\([^"]*\)".*/\1/'; }
c0=$(ref 2 0)  # an inventory caption: names objects, all true
c1=$(ref 3 1)  # a relation caption, true
[ -n "$c0" ] && [ -n "$c1" ] || fail "scenes: could not read reference captions from $tmp/syn/captions.json"
printf '[{"image_id": 0, "caption": "%s"}, {"image_id": 1, "caption": "%s"}, ' "$c0" "$c1" >"$tmp/syn_res.json"
printf '{"image_id": 2, "caption": "there are twelve circles."}, {"image_id": 3, "caption": "hello world"}]' >>"$tmp/syn_res.json"
run score --task caption -a "$tmp/syn/captions.json" -r "$tmp/syn_res.json" --scenes "$tmp/syn/scenes.json"
[ "$rc" -eq 0 ] || fail "scenes: exit $rc ($err)"
has "parse      0.7500   (3 of 4 captions follow the template grammar)"
# Every statement of the two reference captions is true; "twelve circles" is false.
truth=$(grep '^truth ' "$tmp/out")
t=$(echo "$truth" | sed -n 's/.*(\([0-9]*\) of \([0-9]*\) statements.*/\1 \2/p')
set -- $t
{ [ "$#" -eq 2 ] && [ "$1" -ge 2 ] && [ "$1" -eq $(($2 - 1)) ]; } || fail "scenes: want one false statement: '$truth'"
cov=$(grep '^coverage ' "$tmp/out")
case "$cov" in
  "coverage   0.0000"*|"") fail "scenes: coverage should be > 0 (an inventory caption names objects): '$cov'" ;;
esac
run score --task caption -a "$tmp/syn/captions.json" -r "$tmp/syn_res.json" --scenes "$tmp/syn/scenes.json" --json -q
grep -qF '"parse_rate": 0.75' "$tmp/out" || fail "scenes --json: parse_rate: $out"
# A result for an image that the scenes file does not have: exit 3 naming the scenes file.
run synth --preset shapes --images 2 --seed 0 --out "$tmp/syn2" -q
expect_bad 3 "$tmp/syn2/scenes.json" "image_id 2" \
  --task caption -a "$tmp/syn/captions.json" -r "$tmp/syn_res.json" --scenes "$tmp/syn2/scenes.json"

# --- usage errors: exit 2 ---
run score --task vqa -a "$fx/vqa_annotations.json" -r "$fx/vqa_results.json" --scenes "$tmp/syn/scenes.json"
[ "$rc" -eq 2 ] || fail "--scenes with vqa: exit $rc, want 2"
run score --task caption -r "$fx/captions_results.json"
[ "$rc" -eq 2 ] || fail "missing --annotations: exit $rc, want 2"
run score --task tts -a "$fx/captions_gt.json" -r "$fx/captions_results.json"
[ "$rc" -eq 2 ] || fail "bad --task: exit $rc, want 2"
run score --task vqa -a "$fx/vqa_annotations.json" -r "$fx/vqa_results.json" --vqa-eval 2017
[ "$rc" -eq 2 ] || fail "bad --vqa-eval: exit $rc, want 2"
run score --task caption -a "$fx/captions_gt.json" -r "$fx/captions_results.json" --questions "$fx/vqa_questions.json"
[ "$rc" -eq 2 ] || fail "--questions with caption: exit $rc, want 2"

# --- help: examples and defaults ---
run score --help
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
grep -qF "examples:" "$tmp/out" || fail "--help has no examples"
grep -qF "(=current)" "$tmp/out" || fail "--help does not show the --vqa-eval default"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "score: all checks passed"
