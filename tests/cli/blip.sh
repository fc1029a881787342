#!/usr/bin/env bash
# End-to-end: `xmodal caption|vqa|eval --model DIR` with the tiny random BLIP checkpoints in
# tests/fixtures/blip (real Hugging Face names and config layout) print exactly what the PyTorch
# reference generated (tests/fixtures/blip/*_dump.json, training/make_blip_fixtures.py), --json
# carries the ids, and bad input fails with the documented exit code and one stderr line.
# usage: blip.sh /path/to/xmodal /repo/root
set -u
X=$1
ROOT=$2
F=$ROOT/tests/fixtures/blip
PY=/usr/bin/python3
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() {  # run CMD... : sets out, err, rc
  OMP_WAIT_POLICY=PASSIVE "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1 (stderr: $err)"; }
# Expected values, written by training/make_blip_fixtures.py from the PyTorch reference.
EXP=$F/cli_expected.tsv
[ -s "$EXP" ] || { echo "FAIL: missing $EXP"; exit 1; }
get() { awk -F'\t' -v k="$1" '$1==k {print $2}' "$EXP"; }
CAP_TEXT=$(get caption_text)
CAP_IDS=$(get caption_ids)
BEAM_IDS=$(get beam3_ids)
PROMPT=$(get prompt)
PROMPT_TEXT=$(get prompt_text)
Q=$(get question)
ANS=$(get answer)
ANS_ENC=$(get answer_enc)
RANK=$(get rank_k5_answer)
[ -n "$CAP_TEXT" ] && [ -n "$CAP_IDS" ] && [ -n "$ANS" ] && [ -n "$RANK" ] || { echo "FAIL: incomplete $EXP"; exit 1; }

# ---- captions ----
run "$X" caption --threads 1 --model "$F/caption" "$F/image.png"
expect_rc 0 "caption"
[ "$out" = "$CAP_TEXT" ] || fail "caption: got '$out', expected '$CAP_TEXT'"

run "$X" caption --threads 1 --model "$F/caption" --prompt "$PROMPT" "$F/image.png"
expect_rc 0 "caption --prompt"
[ "$out" = "$PROMPT_TEXT" ] || fail "caption --prompt: got '$out', expected '$PROMPT_TEXT'"

run "$X" caption --threads 1 -m "$F/caption" --json --beams 3 --batch 2 "$F/image.png" "$F/image.png" "$F/image.png"
expect_rc 0 "caption --json --beams 3"
ids=$(printf '%s' "$out" | tr -d ' \n' | grep -o '"ids":\[[^]]*\]' | sed 's/"ids":\[//; s/\]$//' | sort -u)
[ "$ids" = "$BEAM_IDS" ] || fail "caption --json --beams 3: ids $ids, expected $BEAM_IDS (all three images)"
n=$(printf '%s' "$out" | grep -c '"caption"')
[ "$n" -eq 3 ] || fail "caption --json: $n results for 3 images"

run "$X" caption --threads 1 --model="$F/caption" --json --attention-maps "$tmp/maps" "$F/image.png"
expect_rc 0 "caption --attention-maps"
nmaps=$(ls "$tmp/maps" 2>/dev/null | grep -c '^image\.[0-9][0-9]\..*\.png$')
ngen=$(( $(echo "$CAP_IDS" | tr ',' '\n' | wc -l) - 1 ))  # all but [DEC]
[ "$nmaps" -eq "$ngen" ] || fail "attention maps: $nmaps files for $ngen generated ids"
printf '%s' "$out" | grep -q '"attention_grid": 4' || fail "attention maps: no attention_grid 4 in --json"

[ -s "$tmp/maps/image.sheet.png" ] || fail "attention maps: no contact sheet image.sheet.png"
# The shared spellings (--beam, --max-len) equal the BLIP ones (--beams, --max-length); a folder
# of three copies batched by 2 gives the single-image caption three times.
run "$X" caption --threads 1 -m "$F/caption" --jsonl --beam 3 --max-len 20 "$F/image.png"
expect_rc 0 "caption --beam 3 --jsonl"
ids=$(printf '%s' "$out" | grep -o '"ids":\[[^]]*\]' | sed 's/"ids":\[//; s/\]$//')
[ "$ids" = "$BEAM_IDS" ] || fail "caption --beam 3: ids $ids, expected $BEAM_IDS"
mkdir -p "$tmp/three"
for i in 1 2 3; do cp "$F/image.png" "$tmp/three/im$i.png"; done
run "$X" caption --threads 1 -m "$F/caption" --batch 2 "$tmp/three"
expect_rc 0 "caption FOLDER --batch 2"
[ "$(printf '%s\n' "$out" | cut -f2 | sort -u)" = "$CAP_TEXT" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 3 ] ||
  fail "caption FOLDER --batch 2: '$out'"

run "$X" caption --threads 1 --model "$F/caption" --bf16 --timings "$F/image.png"
expect_rc 0 "caption --bf16"
echo "$err" | grep -q "decode" || fail "--timings printed no decode time: $err"

# ---- vqa ----
run "$X" vqa --threads 1 --model "$F/vqa" "$F/image.png" "$Q" "$Q"
expect_rc 0 "vqa"
[ "$out" = "$ANS"$'\n'"$ANS" ] || fail "vqa: got '$out', expected '$ANS' twice"

run "$X" vqa --threads 1 --model "$F/vqa" --first-token enc "$F/image.png" "$Q"
expect_rc 0 "vqa --first-token enc"
[ "$out" = "$ANS_ENC" ] || fail "vqa --first-token enc: got '$out', expected '$ANS_ENC'"

get answers_json >"$tmp/answers.json"
run "$X" vqa --threads 1 --model "$F/vqa" --answer-list "$tmp/answers.json" --rank-k 5 --json "$F/image.png" "$Q"
expect_rc 0 "vqa --answer-list"
printf '%s' "$out" | grep -q "\"answer\": \"$RANK\"" || fail "vqa --answer-list: expected answer '$RANK' in $out"

# ---- eval on a two-image dataset ----
mkdir -p "$tmp/ds/images"
cp "$F/image.png" "$tmp/ds/images/a.png"
cp "$F/image.png" "$tmp/ds/images/b.png"
cat >"$tmp/ds/captions.json" <<EOF
{"images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 41}, {"id": 2, "file_name": "b.png", "width": 50, "height": 41}],
 "annotations": [{"id": 1, "image_id": 1, "caption": "$CAP_TEXT"}, {"id": 2, "image_id": 2, "caption": "a dog on the grass"}]}
EOF
cat >"$tmp/ds/questions.json" <<EOF
{"questions": [{"question_id": 10, "image_id": 1, "question": "$Q"}, {"question_id": 11, "image_id": 2, "question": "$Q"}]}
EOF
cat >"$tmp/ds/annotations.json" <<EOF
{"annotations": [
 {"question_id": 10, "image_id": 1, "question_type": "what color", "answer_type": "other", "multiple_choice_answer": "$ANS",
  "answers": [$(for i in 1 2 3 4 5 6 7 8 9 10; do printf '{"answer": "%s", "answer_id": %d}%s' "$ANS" $i "$([ $i -lt 10 ] && echo ,)"; done)]},
 {"question_id": 11, "image_id": 2, "question_type": "what color", "answer_type": "other", "multiple_choice_answer": "red",
  "answers": [$(for i in 1 2 3 4 5 6 7 8 9 10; do printf '{"answer": "red", "answer_id": %d}%s' $i "$([ $i -lt 10 ] && echo ,)"; done)]}]}
EOF
run "$X" eval --threads 1 -q --json --model "$F/vqa" --dataset "$tmp/ds" --task vqa --batch 2 --results-out "$tmp/vqa_results.json"
expect_rc 0 "eval vqa"
printf '%s' "$out" | grep -q '"accuracy": 50' || fail "eval vqa: expected accuracy 50 (one right, one wrong): $out"
[ -s "$tmp/vqa_results.json" ] || fail "eval vqa: no results file"
run "$X" eval --threads 1 -q --json --model "$F/caption" --dataset "$tmp/ds" --task caption
expect_rc 0 "eval caption"
printf '%s' "$out" | grep -q '"cider_d"' || fail "eval caption: no cider_d in $out"
printf '%s' "$out" | grep -q '"images": 2' || fail "eval caption: expected 2 images in $out"

# Shards of a BLIP eval, merged, equal the single run.
run "$X" eval --threads 1 -q --model "$F/vqa" --dataset "$tmp/ds" --task vqa --shard 0/2 --journal "$tmp/b0.jsonl"
expect_rc 0 "eval vqa --shard 0/2"
run "$X" eval --threads 1 -q --model "$F/vqa" --dataset "$tmp/ds" --task vqa --shard 1/2 --journal "$tmp/b1.jsonl"
run "$X" eval --merge "$tmp/b0.jsonl" "$tmp/b1.jsonl" --results-out "$tmp/vqa_merged.json" --json
expect_rc 0 "eval --merge (BLIP)"
cmp -s "$tmp/vqa_merged.json" "$tmp/vqa_results.json" || fail "BLIP eval: merged shards differ from the single run"

# ---- errors: exit code and one line naming the problem ----
run "$X" caption --model "$F/caption" "$tmp/missing.png"
expect_rc 3 "missing image"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "missing.png" || fail "missing image: stderr '$err'"
run "$X" caption --model "$F/vqa" "$F/image.png"
expect_rc 2 "caption with a VQA model"
echo "$err" | grep -q "blip-vqa" || fail "caption with a VQA model: stderr '$err'"
run "$X" vqa --model "$F/caption" "$F/image.png" "what?"
expect_rc 2 "vqa with a caption model"
run "$X" caption --model "$F/caption" --beams 0 "$F/image.png"
expect_rc 2 "--beams 0"
run "$X" vqa --model "$F/vqa" --first-token sep "$F/image.png" "what?"
expect_rc 2 "--first-token sep"
run "$X" vqa --model "$F/vqa" "$F/image.png" "   "
expect_rc 3 "empty question"
printf '\xff\xfe bad' >"$tmp/q"
run "$X" vqa --model "$F/vqa" "$F/image.png" "$(cat "$tmp/q")"
expect_rc 3 "invalid UTF-8 question"
echo "$err" | grep -q "UTF-8" || fail "invalid UTF-8 question: stderr '$err'"
mkdir -p "$tmp/broken"
cp "$F/caption/config.json" "$F/caption/vocab.txt" "$tmp/broken/"
head -c 1000 "$F/caption/model.safetensors" >"$tmp/broken/model.safetensors"
run "$X" caption --model "$tmp/broken" "$F/image.png"
expect_rc 4 "truncated checkpoint"
echo "$err" | grep -q "model.safetensors" || fail "truncated checkpoint: stderr '$err'"
run "$X" caption --model "$F/caption" --help
expect_rc 0 "--help"
echo "$out" | grep -q -- "--beam " || fail "--help shows no --beam"
echo "$out" | grep -q "(=1)" || fail "--help shows no defaults"

if [ "$fails" -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "blip CLI: all checks passed"
