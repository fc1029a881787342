#!/usr/bin/env bash
# Trains the tiny sentencepiece fixture used by tests/test_sp_tokenizer.cpp and writes the
# reference ids that spm_encode (the library's own command-line tool) gives for a few strings.
#
# Run from anywhere:  bash training/make_tokenizer_fixture.sh
# Needs the Debian package `sentencepiece` (spm_train, spm_encode). Deterministic: one thread,
# fixed seed, no sentence sampling.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/tests/fixtures/tokenizer
spm_train --input="$out/corpus.txt" --model_prefix="$out/tiny" --vocab_size=80 --model_type=unigram \
  --character_coverage=1.0 --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --num_threads=1 --random_seed=1 \
  --input_sentence_size=0 --minloglevel=2 >/dev/null 2>&1
rm -f "$out/tiny.vocab"
# Reference ids: one "text<TAB>ids" line per string (strings must not contain tabs).
: >"$out/expected_ids.tsv"
while IFS= read -r s; do
  ids=$(printf '%s\n' "$s" | spm_encode --model="$out/tiny.model" --output_format=id)
  printf '%s\t%s\n' "$s" "$ids" >>"$out/expected_ids.tsv"
done <<'STRINGS'
there are two circles, one square and one triangle.
what color is the object closest to the green triangle?
is there a zebra in the kitchen?
Hello WORLD 42!
the red circle is left of the blue square.
STRINGS
echo "wrote $out/tiny.model and $out/expected_ids.tsv"
