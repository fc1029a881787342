#!/usr/bin/env bash
# xmodal inspect on bad inputs: each exits 3 with exactly one stderr line "xmodal: FILE: problem"
# (empty, truncated PNG, truncated JPEG header, text named .png, a PNG header declaring
# 100000x100000, a directory, a FIFO, a missing path, GIF). Also: several files (bad ones are
# reported, good ones still printed), the --max-pixels limit, --resize/--out, --json, usage errors.
# Usage: bash tests/cli/bad_images.sh /path/to/xmodal /repo/root
set -u
bin=$1
root=$2
fx=$root/tests/fixtures/image
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run ARGS...: sets rc, out, err (10 s limit: nothing here may hang, FIFOs included)
run() {
  timeout 10 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# expect_bad FILE FRAGMENT: inspect FILE exits 3, stderr is one line naming FILE and containing FRAGMENT.
expect_bad() {
  local file=$1 frag=$2
  run inspect "$file"
  [ "$rc" -eq 3 ] || fail "inspect $file: exit $rc, want 3 (stderr: $err)"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "inspect $file: want exactly one stderr line, got:
$err"
  case "$err" in
    "xmodal: $file: "*) ;;
    *) fail "inspect $file: stderr does not start with 'xmodal: $file: ': $err" ;;
  esac
  grep -qF -- "$frag" "$tmp/err" || fail "inspect $file: stderr lacks '$frag': $err"
  [ -z "$out" ] || fail "inspect $file: unexpected stdout: $out"
}

: >"$tmp/empty.png"
expect_bad "$tmp/empty.png" "file is empty"

head -c 200 "$fx/rgb8.png" >"$tmp/truncated.png"
expect_bad "$tmp/truncated.png" "truncated PNG"

head -c 30 "$fx/orient6.jpg" >"$tmp/truncated.jpg"  # cut inside the EXIF segment
expect_bad "$tmp/truncated.jpg" "truncated JPEG"

echo "this is not an image" >"$tmp/text.png"
expect_bad "$tmp/text.png" "not a recognised image format"

# PNG signature + IHDR (valid CRC) declaring 100000x100000 RGB, and nothing else.
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00\x27\x30\x9c\x9f' >"$tmp/huge.png"
expect_bad "$tmp/huge.png" "image is 100000x100000 = 10000 megapixels, over the limit of 50 (raise it with --max-pixels)"

mkdir "$tmp/adir.png"
expect_bad "$tmp/adir.png" "is a directory"

mkfifo "$tmp/fifo.png"
expect_bad "$tmp/fifo.png" "not a regular file"
[ "$rc" -ne 124 ] || fail "inspect on a FIFO hung (killed by timeout)"

expect_bad "$tmp/does-not-exist.jpg" "No such file or directory"

cp "$fx/rgb.gif" "$tmp/anim.gif"
expect_bad "$tmp/anim.gif" "GIF images are not supported"

# A lower limit refuses a real image; raising the limit lets the huge header through to the
# next check (it has no pixel data).
run inspect "$fx/rgb8.png" --max-pixels 0.0001
[ "$rc" -eq 3 ] || fail "--max-pixels 0.0001: exit $rc"
grep -qF "image is 13x9 = 0.000117 megapixels, over the limit of 0.0001" "$tmp/err" || fail "--max-pixels 0.0001: $err"
run inspect "$tmp/huge.png" --max-pixels 20000
[ "$rc" -eq 3 ] || fail "--max-pixels 20000 on huge.png: exit $rc"
grep -qF "truncated PNG" "$tmp/err" || fail "--max-pixels 20000 on huge.png: $err"

# Several files: each bad one reported, the good ones printed, exit 3 at the end.
run inspect "$fx/rgb8.png" "$tmp/empty.png" "$fx/orient6.jpg" "$tmp/text.png"
[ "$rc" -eq 3 ] || fail "mixed files: exit $rc, want 3"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "mixed files: want 2 stdout lines, got:
$out"
[ "$(wc -l <"$tmp/err")" -eq 2 ] || fail "mixed files: want 2 stderr lines, got:
$err"
grep -qF "$fx/orient6.jpg: jpeg, 13x9, 3 channels (YCbCr), 8-bit, EXIF orientation 6 applied -> 9x13" "$tmp/out" ||
  fail "mixed files: orient6.jpg line wrong: $out"

# All good: exit 0, nothing on stderr.
run inspect "$fx/rgb16.png" "$fx/rgba.png"
[ "$rc" -eq 0 ] || fail "good files: exit $rc ($err)"
[ -z "$err" ] || fail "good files: unexpected stderr: $err"
grep -qF "$fx/rgb16.png: png, 13x9, 3 channels (RGB), 16-bit" "$tmp/out" || fail "rgb16 line: $out"
grep -qF "alpha dropped" "$tmp/out" || fail "rgba line lacks 'alpha dropped': $out"

# A PNG with a junk ICC profile: libpng would warn "iCCP: too short"; xmodal strips the chunk.
run inspect "$fx/icc_junk.png"
[ "$rc" -eq 0 ] || fail "icc_junk.png: exit $rc"
[ -z "$err" ] || fail "icc_junk.png: unexpected stderr (libpng warning?): $err"

# --resize/--crop/--out write what the model sees; reading it back gives the new size.
run inspect "$fx/orient6.jpg" --resize 40x30 --resample bilinear --crop 20x24 --out "$tmp/seen.png"
[ "$rc" -eq 0 ] || fail "--resize --out: exit $rc ($err)"
grep -qF "resized to 40x30 bilinear; cropped to 20x24; wrote $tmp/seen.png" "$tmp/out" || fail "--resize --out line: $out"
run inspect "$tmp/seen.png"
grep -qF "$tmp/seen.png: png, 20x24, 3 channels (RGB), 8-bit" "$tmp/out" || fail "written image: $out"

# Several images into a directory.
mkdir "$tmp/outdir"
run inspect "$fx/rgb8.png" "$fx/gray8.png" --resize 8x8 --out "$tmp/outdir"
[ "$rc" -eq 0 ] || fail "--out DIR: exit $rc ($err)"
[ -f "$tmp/outdir/rgb8.png" ] && [ -f "$tmp/outdir/gray8.png" ] || fail "--out DIR: files missing: $(ls "$tmp/outdir")"

# --json: one object per image, errors included.
run inspect "$fx/orient6.png" "$tmp/empty.png" --json
[ "$rc" -eq 3 ] || fail "--json: exit $rc"
grep -qF '"exif_orientation": 6' "$tmp/out" || fail "--json lacks orientation: $out"
grep -qF '"oriented_width": 9' "$tmp/out" || fail "--json lacks oriented_width: $out"
grep -qF '"error": "file is empty (0 bytes)"' "$tmp/out" || fail "--json lacks the error entry: $out"

# Usage errors exit 2.
for bad in "--resize 384" "--resize 0x10" "--resample lanczos" "--max-pixels 0" "--out $tmp/x.gif"; do
  # shellcheck disable=SC2086
  run inspect "$fx/rgb8.png" $bad
  [ "$rc" -eq 2 ] || fail "inspect $bad: exit $rc, want 2 ($err)"
done
run inspect
[ "$rc" -eq 2 ] || fail "inspect with no image: exit $rc, want 2"
run inspect "$fx/rgb8.png" "$fx/gray8.png" --out "$tmp/one.png"
[ "$rc" -eq 2 ] || fail "two images, --out a file: exit $rc, want 2"

run inspect --help
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
grep -qF "(=50)" "$tmp/out" || fail "--help does not show the --max-pixels default: $out"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "bad_images: all checks passed"
