#!/usr/bin/env bash
# End-to-end: `xmodal caption` / `xmodal vqa` user features with the built-in scenes model:
# folders, globs (quoted, expanded by xmodal), --list, a bad image in a folder (reported, skipped,
# exit 3), --batch N equal to --batch 1, determinism, --jsonl, --coco-results, --stream,
# --beam 1 = greedy, beam search batch-independent, --min-len, --timings (text and --json), --quiet,
# attention maps (per word, contact sheet, layer/head selection; VQA's answer).
# Expected captions come from tests/fixtures/scenes_model/expected.tsv (PyTorch greedy decoding).
# usage: caption_inputs.sh /path/to/xmodal /repo/root
set -u
X=$1
ROOT=$2
EXP=$ROOT/tests/fixtures/scenes_model/expected.tsv
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
cap() { awk -F'\t' -v f="assets/samples/$1" '$1==f && $2=="caption" {print $4}' "$EXP"; }

mkdir -p "$tmp/imgs" "$tmp/space dir"
for i in 0 1 2 3; do cp "$ROOT/assets/samples/scene-$i.png" "$tmp/imgs/scene-$i.png"; done
cp "$ROOT/assets/samples/scene-2.png" "$tmp/space dir/scene-2.png"
echo "notes, not an image" >"$tmp/imgs/readme.txt"  # no image extension: ignored in a folder
want=""
for i in 0 1 2 3; do want+="$tmp/imgs/scene-$i.png"$'\t'"$(cap scene-$i.png)"$'\n'; done
want=${want%$'\n'}

# ---- a folder: its images, sorted; other files ignored ----
run "$X" caption --threads 1 "$tmp/imgs"
expect_rc 0 "caption FOLDER"
[ "$out" = "$want" ] || fail "caption FOLDER: got
$out
expected
$want"

# ---- --batch 4 (one encoder batch, one batched decode) equals --batch 1; runs are deterministic ----
run "$X" caption --threads 1 --batch 1 "$tmp/imgs"
[ "$out" = "$want" ] || fail "caption --batch 1 differs: $out"
run "$X" caption --threads 1 --batch 4 "$tmp/imgs"
first=$out
run "$X" caption --threads 1 --batch 4 "$tmp/imgs"
[ "$out" = "$first" ] && [ "$out" = "$want" ] || fail "caption --batch 4 twice: not identical / not the expected captions"
run "$X" caption --threads 2 --batch 3 "$tmp/imgs"
[ "$out" = "$want" ] || fail "caption --threads 2 --batch 3: $out"

# ---- a quoted glob is expanded by xmodal (sorted); a pattern matching nothing is an error ----
run "$X" caption --threads 1 "$tmp/imgs/scene-[13].png"
expect_rc 0 "caption GLOB"
[ "$out" = "$tmp/imgs/scene-1.png"$'\t'"$(cap scene-1.png)"$'\n'"$tmp/imgs/scene-3.png"$'\t'"$(cap scene-3.png)" ] ||
  fail "caption GLOB: $out"
run "$X" caption --threads 1 "$tmp/imgs/*.jpg"
expect_rc 3 "glob matching nothing"
echo "$err" | grep -q "matches no file" || fail "glob matching nothing: stderr '$err'"

# ---- --list FILE (comments, blank lines, a path with a space) and --list - (stdin) ----
printf '# my images\n%s\n\n%s\n' "$tmp/imgs/scene-3.png" "$tmp/space dir/scene-2.png" >"$tmp/list.txt"
run "$X" caption --threads 1 --list "$tmp/list.txt"
expect_rc 0 "caption --list"
[ "$out" = "$tmp/imgs/scene-3.png"$'\t'"$(cap scene-3.png)"$'\n'"$tmp/space dir/scene-2.png"$'\t'"$(cap scene-2.png)" ] ||
  fail "caption --list: $out"
OMP_WAIT_POLICY=PASSIVE "$X" caption --threads 1 --list - <"$tmp/list.txt" >"$tmp/out2" 2>&1
[ "$(cat "$tmp/out2")" = "$out" ] || fail "caption --list - (stdin): $(cat "$tmp/out2")"

# ---- a bad image in a folder: one line naming it, the others still captioned, exit 3 ----
cp -r "$tmp/imgs" "$tmp/mixed"
echo "this is not a PNG" >"$tmp/mixed/scene-15.png"
run "$X" caption --threads 1 -q "$tmp/mixed"
expect_rc 3 "folder with a bad image"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "bad image in folder: want one stderr line with -q, got '$err'"
echo "$err" | grep -q "scene-15.png" || fail "bad image in folder: stderr does not name it: '$err'"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 4 ] || fail "bad image in folder: want the 4 good captions, got '$out'"
printf '%s' "$out" | grep -q "scene-15" && fail "bad image in folder: it got a caption: '$out'"
run "$X" caption --threads 1 "$tmp/mixed"
echo "$err" | grep -q "1 of 5 inputs failed" || fail "bad image in folder: no summary without -q: '$err'"

# ---- --jsonl: one object per line, with the image id from the file name ----
run "$X" caption --threads 1 --jsonl "$tmp/imgs"
expect_rc 0 "caption --jsonl"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 4 ] || fail "--jsonl: want 4 lines, got '$out'"
line3=$(printf '%s\n' "$out" | sed -n 4p)
echo "$line3" | grep -qF "\"caption\":\"$(cap scene-3.png)\"" || fail "--jsonl line 4 lacks the caption: $line3"
echo "$line3" | grep -q '"image_id":3' || fail "--jsonl line 4 lacks image_id 3: $line3"

# ---- --coco-results FILE: [{image_id, caption}] written atomically, ids from the names ----
run "$X" caption --threads 1 -q --coco-results "$tmp/coco.json" "$tmp/imgs"
expect_rc 0 "caption --coco-results"
[ -s "$tmp/coco.json" ] || fail "--coco-results: no file"
/usr/bin/python3 - "$tmp/coco.json" "$(cap scene-2.png)" <<'EOF' || fail "--coco-results content"
import json, sys
r = json.load(open(sys.argv[1]))
assert [x["image_id"] for x in r] == [0, 1, 2, 3], r
assert r[2]["caption"] == sys.argv[2], r[2]
EOF
ls "$tmp" | grep -q "coco.json.tmp" && fail "--coco-results left a temporary file"
# ---- --stream: tokens as they come, same text ----
run "$X" caption --threads 1 --stream "$ROOT/assets/samples/scene-1.png"
expect_rc 0 "caption --stream"
[ "$out" = "$(cap scene-1.png)" ] || fail "--stream: got '$out', expected '$(cap scene-1.png)'"
run "$X" caption --threads 1 --stream "$tmp/imgs"
[ "$out" = "$want" ] || fail "--stream FOLDER: got '$out'"
run "$X" caption --stream --jsonl "$tmp/imgs"
expect_rc 2 "--stream with --jsonl"

# ---- --beam 1 is greedy; options the scenes model lacks are usage errors naming them ----
run "$X" caption --threads 1 --beam 1 --length-penalty 1.0 "$tmp/imgs"
[ "$out" = "$want" ] || fail "--beam 1: differs from greedy: $out"
run "$X" caption --threads 1 --beams 1 "$tmp/imgs"
[ "$out" = "$want" ] || fail "--beams 1 (alias): differs from greedy: $out"
run "$X" caption --prompt "a picture of" "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "scenes --prompt"
run "$X" caption --beam 0 "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "--beam 0"
echo "$err" | grep -q -- "--beam" || fail "--beam 0: message does not name the flag: $err"
run "$X" caption --max-len 600 "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "--max-len 600"
# --max-len N cuts the caption to N tokens.
run "$X" caption --threads 1 --max-len 2 --jsonl "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "--max-len 2"
n=$(printf '%s' "$out" | grep -o '"ids":\[[^]]*\]' | tr -cd ',' | wc -c)
[ "$n" -le 1 ] || fail "--max-len 2: more than 2 ids: $out"

# ---- --timings: per-stage lines on stderr; in --json with peak memory ----
run "$X" caption --threads 1 --timings "$tmp/imgs"
expect_rc 0 "--timings"
for s in "image decode" "preprocess+encode" "text decode" "tokens/s" "peak RSS"; do
  echo "$err" | grep -q "timings: .*$s" || fail "--timings lacks '$s': $err"
done
run "$X" caption --threads 1 --timings --json "$tmp/imgs"
/usr/bin/python3 - "$tmp/out" <<'EOF' || fail "--timings --json: $out"
import json, sys
j = json.load(open(sys.argv[1]))
t = j["timings"]
assert len(j["results"]) == 4
assert t["images"] == 4 and t["generated_tokens"] > 0 and t["tokens_per_s"] > 0, t
assert t["peak_rss_mb"] > 1 and t["text_decode_ms"] > 0 and t["preprocess_encode_ms"] > 0, t
EOF

# ---- vqa: --jsonl, --questions FILE, --batch equal to one at a time, --quiet is quiet ----
mapfile -t qs < <(awk -F'\t' '$1=="assets/samples/scene-1.png" && $2=="vqa" {print $3}' "$EXP")
mapfile -t as < <(awk -F'\t' '$1=="assets/samples/scene-1.png" && $2=="vqa" {print $4}' "$EXP")
printf '%s\n' "${qs[@]}" >"$tmp/questions.txt"
run "$X" vqa --threads 1 -q --batch 3 --questions "$tmp/questions.txt" "$ROOT/assets/samples/scene-1.png"
expect_rc 0 "vqa --questions --batch 3"
[ "$out" = "$(printf '%s\n' "${as[@]}")" ] || fail "vqa --batch 3: got '$out', expected '${as[*]}'"
[ -z "$err" ] || fail "vqa -q wrote to stderr: $err"
run "$X" vqa --threads 1 --jsonl "$ROOT/assets/samples/scene-1.png" "${qs[0]}"
echo "$out" | grep -qF "\"answer\":\"${as[0]}\"" || fail "vqa --jsonl: $out"
run "$X" vqa --threads 1 --stream "$ROOT/assets/samples/scene-1.png" "${qs[0]}" "${qs[1]}"
[ "$out" = "${as[0]}"$'\n'"${as[1]}" ] || fail "vqa --stream: '$out'"

# ---- attention maps: per word PNGs and a contact sheet; layer/head selection ----
run "$X" caption --threads 1 --attention-map "$tmp/maps" "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "caption --attention-map"
nw=$(cap scene-0.png | wc -w)
np=$(ls "$tmp/maps" | grep -c '^scene-0\.[0-9][0-9]\..*\.png$')
[ "$np" -ge "$nw" ] || fail "attention maps: $np word PNGs for $nw words"
[ -s "$tmp/maps/scene-0.sheet.png" ] || fail "attention maps: no contact sheet"
[ -s "$tmp/maps/scene-0.01.$(cap scene-0.png | awk '{print $2}').png" ] || fail "attention maps: no PNG named after word 2: $(ls "$tmp/maps")"
run "$X" caption --threads 1 --attention-map "$tmp/maps_h0" --map-head 0 --map-layer 0 "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "--map-head 0 --map-layer 0"
cmp -s "$tmp/maps/scene-0.01.$(cap scene-0.png | awk '{print $2}').png" "$tmp/maps_h0/scene-0.01.$(cap scene-0.png | awk '{print $2}').png" &&
  fail "--map-head 0 --map-layer 0 gave the same picture as the default (mean over heads, last layer)"
run "$X" caption --attention-map "$tmp/maps_bad" --map-head 99 "$ROOT/assets/samples/scene-0.png"
expect_rc 2 "--map-head 99"
run "$X" vqa --threads 1 --attention-map "$tmp/vmaps" "$ROOT/assets/samples/scene-1.png" "${qs[0]}"
expect_rc 0 "vqa --attention-map"
[ -s "$tmp/vmaps/scene-1.q1.sheet.png" ] || fail "vqa attention maps: no sheet: $(ls "$tmp/vmaps")"
[ -s "$tmp/vmaps/scene-1.q1.00.${as[0]}.png" ] || fail "vqa attention maps: no map of the answer '${as[0]}': $(ls "$tmp/vmaps")"

# ---- beam search: deterministic, the same in a batch as alone; --min-len lengthens ----
run "$X" caption --threads 1 --beam 3 --batch 1 "$tmp/imgs"
expect_rc 0 "--beam 3"
b1=$out
run "$X" caption --threads 1 --beam 3 --batch 4 "$tmp/imgs"
[ "$out" = "$b1" ] || fail "--beam 3: --batch 4 differs from --batch 1: '$out' vs '$b1'"
run "$X" caption --threads 1 --min-len 14 --jsonl "$ROOT/assets/samples/scene-0.png"
expect_rc 0 "--min-len 14"
n=$(printf '%s' "$out" | grep -o '"ids":\[[^]]*\]' | tr -cd ',' | wc -c)
[ "$n" -ge 13 ] || fail "--min-len 14: only $((n + 1)) ids: $out"

# ---- help: examples and defaults ----
for sub in caption vqa eval; do
  run "$X" $sub --help
  expect_rc 0 "$sub --help"
  echo "$out" | grep -q "^examples:" || fail "$sub --help has no examples"
  echo "$out" | grep -q -- "--batch arg (=8)" || fail "$sub --help does not show --batch's default"
done

if [ "$fails" -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "caption_inputs: all checks passed"
