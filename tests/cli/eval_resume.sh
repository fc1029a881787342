#!/usr/bin/env bash
# End-to-end: `xmodal eval` loses no work. On a small synth dataset with the built-in model:
#  - a run killed with kill -9 mid-way and restarted with --resume gives a results file
#    byte-identical to an uninterrupted run, and its journal holds every result exactly once;
#  - SIGINT stops cleanly (exit 130) keeping what was done; --resume finishes it, identical;
#  - --shard 0/2 and 1/2 merged with --merge equal the single run byte for byte, with the same
#    scores; an incomplete or missing shard is refused;
#  - xmodal caption stops on SIGINT after the current image, its --coco-results holding what it printed;
#  - a full disk (/dev/full as the journal) is exit 3 naming it, not silent truncation;
#  - the metrics table, --json, --timings.
# usage: eval_resume.sh /path/to/xmodal /repo/root
set -u
X=$1
fails=0
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_WAIT_POLICY=PASSIVE
run() {  # run CMD... : sets out, err, rc
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1 (stderr: $err)"; }
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
# A journal holds each id once: the record lines after the header, sorted, without repeats.
dupes() { tail -n +2 "$1" | grep -o '"\(image\|question\)_id":[0-9]*' | sort | uniq -d | wc -l | tr -d ' '; }

N=64
run "$X" synth --preset shapes --images $N --seed 11 --out "$tmp/ds" -q
expect_rc 0 "synth"
E=("$X" eval --threads 1 --dataset "$tmp/ds" --task caption)

# ---- the uninterrupted reference run ----
run "${E[@]}" -q --journal "$tmp/ref.jsonl" --results-out "$tmp/ref.json" --json --timings
expect_rc 0 "reference eval"
cp "$tmp/out" "$tmp/ref_summary.json"
[ "$(lines "$tmp/ref.jsonl")" -eq $((N + 1)) ] || fail "reference journal: $(lines "$tmp/ref.jsonl") lines, expected $((N + 1))"
/usr/bin/python3 - "$tmp/ref_summary.json" $N <<'EOF' || fail "reference --json summary: $out"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["images"] == int(sys.argv[2]), j["images"]
assert 0 <= j["cider_d"] and 0 < j["bleu_4"] <= 1 and "parse_rate" in j, j
assert j["timings"]["generated_tokens"] > 0 and j["timings"]["peak_rss_mb"] > 0, j["timings"]
EOF
run "${E[@]}"
expect_rc 0 "eval with a table"
echo "$out" | grep -q "CIDEr-D" && echo "$out" | grep -q "BLEU-4" || fail "metrics table: $out"
# stderr is not a terminal here: plain progress lines (no bar redraws), ending with the total.
echo "$err" | grep -q "^eval: $N/$N images 100%" || fail "progress: no final 'eval: $N/$N images 100%' line: $err"
printf '%s' "$err" | grep -q $'\r' && fail "progress: carriage returns when stderr is not a terminal"

# ---- kill -9 mid-run, then --resume ----
"${E[@]}" -q --journal "$tmp/k.jsonl" >/dev/null 2>"$tmp/kerr" &
pid=$!
for _ in $(seq 1 600); do  # up to 60 s for a third of the results to be on disk
  [ "$(lines "$tmp/k.jsonl")" -gt $((N / 3)) ] && break
  sleep 0.1
done
if kill -9 "$pid" 2>/dev/null; then
  wait "$pid" 2>/dev/null
  pid=""
  got=$(($(lines "$tmp/k.jsonl") - 1))
  [ "$got" -lt "$N" ] || fail "kill -9 came after the run finished ($got results); the test proves nothing"
  # A torn last line (killed inside write) is allowed; make one on purpose too.
  printf '{"image_id":' >>"$tmp/k.jsonl"
  run "${E[@]}" -q --journal "$tmp/k.jsonl" --resume --results-out "$tmp/k.json"
  expect_rc 0 "resume after kill -9"
  cmp -s "$tmp/k.json" "$tmp/ref.json" || fail "resumed results differ from the uninterrupted run"
  [ "$(lines "$tmp/k.jsonl")" -eq $((N + 1)) ] || fail "resumed journal: $(lines "$tmp/k.jsonl") lines, expected $((N + 1))"
  [ "$(dupes "$tmp/k.jsonl")" -eq 0 ] || fail "resumed journal has duplicate ids"
  echo "kill -9 after $got of $N results; resumed"
else
  pid=""
  fail "the eval finished before kill -9 could stop it"
fi
# Without --resume an existing journal is refused (no silent overwrite or double work).
run "${E[@]}" --journal "$tmp/k.jsonl"
expect_rc 2 "existing journal without --resume"
# A journal from other settings is refused.
run "${E[@]}" --journal "$tmp/k.jsonl" --resume --max-len 3
expect_rc 2 "--resume with other settings"
echo "$err" | grep -q "different decoding" || fail "--resume with other settings: '$err'"

# ---- SIGINT stops cleanly after the current batch ----
"${E[@]}" -q --journal "$tmp/i.jsonl" >/dev/null 2>"$tmp/ierr" &
pid=$!
for _ in $(seq 1 600); do
  [ "$(lines "$tmp/i.jsonl")" -gt 10 ] && break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
pid=""
if [ "$rc" -eq 130 ]; then
  grep -q "interrupted" "$tmp/ierr" || fail "SIGINT: no message: $(cat "$tmp/ierr")"
  [ "$(dupes "$tmp/i.jsonl")" -eq 0 ] || fail "SIGINT: duplicate ids"
  tail -c 1 "$tmp/i.jsonl" | od -An -c | grep -q '\\n' || fail "SIGINT: the journal ends in a torn line"
  run "${E[@]}" -q --journal "$tmp/i.jsonl" --resume --results-out "$tmp/i.json"
  expect_rc 0 "resume after SIGINT"
  cmp -s "$tmp/i.json" "$tmp/ref.json" || fail "results after SIGINT + resume differ from the uninterrupted run"
else
  fail "SIGINT: exit $rc, expected 130 ($(cat "$tmp/ierr"))"
fi

# ---- shards: 0/2 + 1/2, merged, equal the single run byte for byte ----
run "${E[@]}" -q --shard 0/2 --journal "$tmp/s0.jsonl" --batch 2
expect_rc 0 "shard 0/2"
run "${E[@]}" -q --shard 1/2 --journal "$tmp/s1.jsonl" --batch 3
expect_rc 0 "shard 1/2"
[ "$(lines "$tmp/s0.jsonl")" -eq $((N / 2 + 1)) ] || fail "shard 0/2 journal: $(lines "$tmp/s0.jsonl") lines"
run "$X" eval --merge "$tmp/s1.jsonl" "$tmp/s0.jsonl" --results-out "$tmp/merged.json" --json
expect_rc 0 "merge"
cmp -s "$tmp/merged.json" "$tmp/ref.json" || fail "merged shard results differ from the single run"
for k in bleu_4 rouge_l cider_d truthfulness; do
  a=$(grep -o "\"$k\": [0-9.e-]*" "$tmp/ref_summary.json")
  b=$(grep -o "\"$k\": [0-9.e-]*" "$tmp/out")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "merged $k '$b' differs from the single run's '$a'"
done
run "$X" eval --merge "$tmp/s0.jsonl"
expect_rc 2 "merge with a shard missing"
echo "$err" | grep -q "shard 1/2 is missing" || fail "merge with a shard missing: '$err'"
head -n 20 "$tmp/s1.jsonl" >"$tmp/s1short.jsonl"
run "$X" eval --merge "$tmp/s0.jsonl" "$tmp/s1short.jsonl"
expect_rc 3 "merge with an incomplete shard"
echo "$err" | grep -q "s1short.jsonl.*incomplete" || fail "merge with an incomplete shard: '$err'"
run "$X" eval --merge "$tmp/s0.jsonl" "$tmp/s0.jsonl"
expect_rc 3 "merge of one shard twice"
# A shard that saw the model under another path is merged with a warning; other decoding is refused.
sed '1s|"model":"[^"]*"|"model":"/elsewhere/scenes"|' "$tmp/s1.jsonl" >"$tmp/s1moved.jsonl"
run "$X" eval --merge "$tmp/s0.jsonl" "$tmp/s1moved.jsonl" --results-out "$tmp/merged2.json"
expect_rc 0 "merge with the model at another path"
echo "$err" | grep -q "warning: .*model /elsewhere/scenes differs" || fail "merge, model moved: no warning: '$err'"
cmp -s "$tmp/merged2.json" "$tmp/ref.json" || fail "merge, model moved: results differ"
sed '1s|"beam":1|"beam":2|' "$tmp/s1.jsonl" >"$tmp/s1beam.jsonl"
run "$X" eval --merge "$tmp/s0.jsonl" "$tmp/s1beam.jsonl"
expect_rc 3 "merge of shards with other decoding"
echo "$err" | grep -q "different decoding" || fail "merge, other decoding: '$err'"
run "${E[@]}" --shard 2/2 --journal "$tmp/bad.jsonl"
expect_rc 2 "--shard 2/2"

# ---- VQA: shards merged equal the single run ----
V=("$X" eval --threads 1 --dataset "$tmp/ds" --task vqa --limit 30 --batch 4 -q)
run "${V[@]}" --results-out "$tmp/vref.json" --json
expect_rc 0 "vqa eval"
echo "$out" | grep -q '"accuracy"' || fail "vqa eval: no accuracy: $out"
run "${V[@]}" --shard 0/3 --journal "$tmp/v0.jsonl"
run "${V[@]}" --shard 1/3 --journal "$tmp/v1.jsonl"
run "${V[@]}" --shard 2/3 --journal "$tmp/v2.jsonl"
run "$X" eval --merge "$tmp/v0.jsonl" "$tmp/v1.jsonl" "$tmp/v2.jsonl" --results-out "$tmp/vmerged.json"
expect_rc 0 "vqa merge"
cmp -s "$tmp/vmerged.json" "$tmp/vref.json" || fail "merged VQA shard results differ from the single run"
echo "$out" | grep -q "overall" || fail "vqa merge: no table: $out"

# ---- caption: SIGINT stops after the current batch; printed == written to --coco-results ----
"$X" caption --threads 1 --batch 1 -q --coco-results "$tmp/ci.json" "$tmp/ds/images" >"$tmp/ci.out" 2>"$tmp/ci.err" &
pid=$!
for _ in $(seq 1 600); do
  [ "$(lines "$tmp/ci.out")" -ge 5 ] && break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
pid=""
if [ "$rc" -eq 130 ]; then
  done_n=$(lines "$tmp/ci.out")
  [ "$done_n" -lt $N ] || fail "caption SIGINT: all $N images were done anyway"
  got=$(grep -o '"image_id"' "$tmp/ci.json" | wc -l | tr -d ' ')
  [ "$got" -eq "$done_n" ] || fail "caption SIGINT: $done_n captions printed, $got in --coco-results"
else
  fail "caption SIGINT: exit $rc, expected 130 ($(cat "$tmp/ci.err"))"
fi

# ---- a bad image in the dataset: one line naming it, the rest scored, exit 3 ----
cp -r "$tmp/ds" "$tmp/ds_bad"
echo "not a PNG" >"$tmp/ds_bad/images/000002.png"
run "$X" eval --threads 1 -q --dataset "$tmp/ds_bad" --task caption --limit 6 --json --results-out "$tmp/bad.json"
expect_rc 3 "eval with a bad image"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "000002.png" || fail "eval with a bad image: stderr '$err'"
echo "$out" | grep -q '"images": 5' || fail "eval with a bad image: want 5 images scored: $out"

# ---- a full disk is an error naming the file ----
if [ -w /dev/full ]; then
  run "${E[@]}" -q --journal /dev/full
  expect_rc 3 "journal on a full disk"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "/dev/full.*No space" ||
    fail "full disk: want one line naming /dev/full and ENOSPC: '$err'"
fi

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "eval_resume: all checks passed"
