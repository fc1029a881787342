"""Writes tests/fixtures/image/: small images in many formats with the RGB pixels xmodal must
decode from them, and PIL's bicubic/bilinear resize outputs for the resize parity test.

Run from the repo root:  /usr/bin/python3 training/make_image_fixtures.py
(Debian python3-pil 9.4.0 and python3-numpy; deterministic: numpy default_rng(1234).)

Layout:
  cases.json   the manifest read by tests/test_image.cpp
  *.rgb        raw expected pixels, height*width*3 bytes, rows top to bottom, R G B
  other files  the encoded inputs

Expected pixels come from PIL (Image.convert("RGB") after ImageOps.exif_transpose), except:
  - 16-bit inputs: round(v / 257) from the stored 16-bit values (PIL itself keeps the high byte
    of 16-bit RGB and clips 16-bit gray at 255, which is not what xmodal does);
  - TIFF orientation: numpy's rotation of the stored pixels (Pillow 9.4 applies a TIFF's
    orientation while loading and then again in exif_transpose);
  - float PFM: clip(v, 0, 1) * 255 rounded.
"""
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "image")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(1234)
cases = {"decode": [], "resize": [], "errors": []}


def path(name):
    return os.path.join(OUT, name)


def write_rgb(name, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    assert a.ndim == 3 and a.shape[2] == 3
    with open(path(name), "wb") as f:
        f.write(a.tobytes())
    return name


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(name, a):
    """16-bit PNG (gray [H,W] or RGB [H,W,3]) written by hand: PIL cannot write 16-bit RGB."""
    a = np.asarray(a, dtype=">u2")
    h, w = a.shape[:2]
    ctype = 0 if a.ndim == 2 else 2
    rows = a.reshape(h, -1)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))
    with open(path(name), "wb") as f:
        f.write(data)


def smooth_image(h, w, seed_shift=0.0):
    """Gradients, a disc, stripes and mild noise: compresses well and has edges for the filters."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin((x + 2 * y) / 3.0 + seed_shift)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(h, w) * 0.3) ** 2
    r = np.where(disc, 250, r)
    g = np.where(disc, 20, g)
    stripes = (x.astype(int) // 2) % 2 == 0
    b = np.where(stripes & (y > h * 0.7), 5, b)
    a = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def add_decode(file, expected, fmt, tolerance=0, channels=3, bit_depth=8, orientation=1, color=None, note=""):
    e = np.asarray(expected)
    case = {"file": file, "expected": write_rgb(os.path.splitext(file)[0] + "." + fmt + ".rgb", e),
            "width": int(e.shape[1]), "height": int(e.shape[0]), "format": fmt, "tolerance": tolerance,
            "channels": channels, "bit_depth": bit_depth, "orientation": orientation}
    if color:
        case["color"] = color
    if note:
        case["note"] = note
    cases["decode"].append(case)


def pil_rgb(file):
    return np.asarray(ImageOps.exif_transpose(Image.open(path(file))).convert("RGB"))


# ---------------------------------------------------------------- decoding

A = smooth_image(9, 13)  # non-square, odd sizes: orientation mistakes change the shape
Image.fromarray(A).save(path("rgb8.png"))
add_decode("rgb8.png", A, "png", color="RGB")
Image.fromarray(A).save(path("icc_junk.png"), icc_profile=b"\0" * 200)
add_decode("icc_junk.png", A, "png", color="RGB",
           note="a junk ICC profile: xmodal strips iCCP so libpng prints no warning")

v16 = rng.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
v16[0, :4] = [[0, 128, 129], [384, 385, 65535], [65407, 65408, 1], [32767, 32768, 65534]]
write_png16("rgb16.png", v16)
add_decode("rgb16.png", (v16.astype(np.uint32) + 128) // 257, "png", bit_depth=16, color="RGB",
           note="round(v/257) from the 16-bit samples")
g16 = v16[:, :, 1]
write_png16("gray16.png", g16)
add_decode("gray16.png", np.repeat(((g16.astype(np.uint32) + 128) // 257)[:, :, None], 3, 2), "png",
           channels=1, bit_depth=16, color="gray")

Image.fromarray(A[:, :, 0]).save(path("gray8.png"))
add_decode("gray8.png", pil_rgb("gray8.png"), "png", channels=1, color="gray")
Image.fromarray(np.dstack([A[:, :, 1], A[:, :, 2]]), "LA").save(path("gray_alpha.png"))
add_decode("gray_alpha.png", pil_rgb("gray_alpha.png"), "png", channels=2, color="gray+alpha")
alpha = rng.integers(0, 256, (9, 13), dtype=np.uint8)
alpha[0, 0] = 0  # a fully transparent pixel keeps its colour: alpha is dropped, not composited
Image.fromarray(np.dstack([A, alpha]), "RGBA").save(path("rgba.png"))
add_decode("rgba.png", pil_rgb("rgba.png"), "png", channels=4, color="RGBA")
Image.fromarray(A).quantize(16).save(path("palette.png"))
add_decode("palette.png", pil_rgb("palette.png"), "png", channels=1, bit_depth=4, color="palette")
pt = Image.fromarray(A).quantize(16)
pt.info["transparency"] = 3
pt.save(path("palette_trns.png"), transparency=3)
add_decode("palette_trns.png", pil_rgb("palette_trns.png"), "png", channels=1, bit_depth=4, color="palette")

# EXIF orientation: all eight in PNG eXIf chunks (lossless, so exact), two in JPEG, one in WebP.
for o in range(1, 9):
    im = Image.fromarray(A)
    exif = im.getexif()
    exif[0x0112] = o
    im.save(path(f"orient{o}.png"), exif=exif)
    add_decode(f"orient{o}.png", pil_rgb(f"orient{o}.png"), "png", orientation=o, color="RGB")
for o in (3, 6):
    im = Image.fromarray(A)
    exif = im.getexif()
    exif[0x0112] = o
    im.save(path(f"orient{o}.jpg"), exif=exif, quality=92)
    add_decode(f"orient{o}.jpg", pil_rgb(f"orient{o}.jpg"), "jpeg", tolerance=2, orientation=o, color="YCbCr",
               note="same libjpeg-turbo in PIL and OpenCV here; 2 levels allowed for other IDCTs")
im = Image.fromarray(A)
exif = im.getexif()
exif[0x0112] = 6
im.save(path("orient6.webp"), exif=exif, lossless=True)
add_decode("orient6.webp", pil_rgb("orient6.webp"), "webp", orientation=6, color="RGB")
im.save(path("orient6.tif"), tiffinfo={0x0112: 6})
add_decode("orient6.tif", np.rot90(A, -1), "tiff", orientation=6, color="RGB",
           note="expected = numpy rotation; OpenCV applies the TIFF tag itself")

Image.fromarray(A).convert("CMYK").save(path("cmyk.jpg"), quality=95)
cmyk_ref = pil_rgb("cmyk.jpg")
add_decode("cmyk.jpg", cmyk_ref, "jpeg", tolerance=4, channels=4, color="CMYK",
           note="PIL and OpenCV convert CMYK to RGB with different rounding")

one = np.array([[[200, 100, 50]]], dtype=np.uint8)
Image.fromarray(one).save(path("one_pixel.png"))
add_decode("one_pixel.png", one, "png", color="RGB")
wide = np.zeros((2, 3000, 3), dtype=np.uint8)
wide[:, :, 0] = np.arange(3000) % 256
wide[:, :, 1] = (np.arange(3000) // 256) * 20
wide[1, :, 2] = 255
Image.fromarray(wide).save(path("wide.png"))
add_decode("wide.png", wide, "png", color="RGB")

# Other formats, all lossless: the expected pixels are A itself.
Image.fromarray(A).save(path("rgb.bmp"))
add_decode("rgb.bmp", A, "bmp", color="RGB")
Image.fromarray(A).save(path("rgb.ppm"))
add_decode("rgb.ppm", A, "pnm", color="RGB")
Image.fromarray(A[:, :, 2]).save(path("gray.pgm"))
add_decode("gray.pgm", np.repeat(A[:, :, 2:3], 3, 2), "pnm", channels=1, color="gray")
with open(path("rgb16.ppm"), "wb") as f:
    f.write(b"P6\n# 16-bit\n13 9\n65535\n" + v16.astype(">u2").tobytes())
add_decode("rgb16.ppm", (v16.astype(np.uint32) + 128) // 257, "pnm", bit_depth=16, color="RGB")
Image.fromarray(A).save(path("rgb.tif"), compression="tiff_lzw")
add_decode("rgb.tif", A, "tiff", color="RGB")
Image.fromarray(A).save(path("rgb_lossless.webp"), lossless=True)
add_decode("rgb_lossless.webp", A, "webp", color="RGB")
Image.fromarray(A).save(path("rgb.jp2"))  # Pillow's default is the reversible (lossless) 5/3 wavelet
add_decode("rgb.jp2", A, "jpeg2000", color="")
pf = rng.uniform(-0.2, 1.2, (9, 13, 3)).astype(np.float32)
with open(path("rgb.pfm"), "wb") as f:  # rows bottom to top; negative scale = little-endian
    f.write(b"PF\n13 9\n-1.0\n" + pf[::-1].astype("<f4").tobytes())
add_decode("rgb.pfm", np.rint(np.clip(pf.astype(np.float64), 0, 1) * 255), "pfm", bit_depth=32, color="RGB",
           note="float samples: clip to [0,1], times 255, rounded")

# Files that must be refused (the message must contain `expect`).
Image.fromarray(A).save(path("rgb.gif"))
cases["errors"].append({"file": "rgb.gif", "expect": "GIF"})
frames = [Image.fromarray(A), Image.fromarray(255 - A)]
frames[0].save(path("animated.webp"), save_all=True, append_images=frames[1:], lossless=True)
cases["errors"].append({"file": "animated.webp", "expect": "animated WebP"})

# ---------------------------------------------------------------- resize parity with PIL

src_photo = smooth_image(61, 97, 1.0)
src_noise = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)  # extremes: exercises clipping
src_big = smooth_image(120, 160, 2.0)
sources = {"src_photo.rgb": src_photo, "src_noise.rgb": src_noise, "src_big.rgb": src_big}
for name, a in sources.items():
    write_rgb(name, a)
resize_cases = [
    ("src_photo.rgb", 40, 25, "bicubic"),   # downscale by 2.425 x 2.44
    ("src_photo.rgb", 40, 25, "bilinear"),
    ("src_noise.rgb", 61, 45, "bicubic"),   # upscale by 2.65 x 2.65 (non-integer)
    ("src_noise.rgb", 61, 45, "bilinear"),
    ("src_photo.rgb", 128, 96, "bicubic"),  # upscale, different factors per axis
    ("src_photo.rgb", 97, 30, "bicubic"),   # vertical pass only
    ("src_photo.rgb", 50, 61, "bilinear"),  # horizontal pass only
    ("src_photo.rgb", 31, 80, "bicubic"),   # down in x, up in y
    ("src_noise.rgb", 1, 1, "bicubic"),     # everything into one pixel
    ("src_big.rgb", 64, 64, "bicubic"),     # BLIP-style: non-square to square, 2.5 x 1.875
    ("src_big.rgb", 64, 64, "bilinear"),
]
codes = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
for src, w, h, method in resize_cases:
    out = np.asarray(Image.fromarray(sources[src]).resize((w, h), codes[method]))
    name = f"resize_{os.path.splitext(src)[0]}_{w}x{h}_{method}.rgb"
    write_rgb(name, out)
    s = sources[src]
    cases["resize"].append({"source": src, "source_width": int(s.shape[1]), "source_height": int(s.shape[0]),
                            "width": w, "height": h, "resample": method, "expected": name})

with open(path("cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")
