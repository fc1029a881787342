// Image input: decoding every fixture against PIL's pixels, the PIL resize parity, the header
// parsers on crafted and truncated bytes, the pixel limit, crop and CHW normalisation.
// Fixtures: tests/fixtures/image/, written by training/make_image_fixtures.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "encoders/image.hpp"
#include "encoders/image_header.hpp"

using namespace xmodal;
using json = nlohmann::json;

namespace {

const std::string kDir = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/image/";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open fixture " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const json& cases() {
  static const json j = json::parse(slurp(kDir + "cases.json"));
  return j;
}

Image raw_image(const std::string& file, int w, int h) {
  std::string bytes = slurp(kDir + file);
  REQUIRE(bytes.size() == static_cast<size_t>(w) * h * 3);
  Image im(w, h);
  std::memcpy(im.pixels.data(), bytes.data(), bytes.size());
  return im;
}

int max_diff(const Image& a, const Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

// The bytes in a heap block of exactly their size, so that a read past the end is a real
// out-of-bounds access (caught by AddressSanitizer builds: -DXMODAL_SANITIZE=address).
struct ExactBuffer {
  std::unique_ptr<uint8_t[]> p;
  size_t n;
  ExactBuffer(const std::string& s, size_t len) : p(new uint8_t[std::max<size_t>(len, 1)]), n(len) {
    std::memcpy(p.get(), s.data(), len);
  }
};

ImageHeader probe(const std::string& s) {
  ExactBuffer b(s, s.size());
  return probe_image_header(b.p.get(), b.n);
}

std::string decode_error(const std::string& bytes, const ImageLoadOptions& opt = {}) {
  try {
    decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x", opt);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_le16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xFF);
  s += static_cast<char>(v >> 8);
}
void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string c;
  put_be32(c, static_cast<uint32_t>(data.size()));
  std::string td = type + data;
  c += td;
  put_be32(c, crc32_iso(reinterpret_cast<const uint8_t*>(td.data()), td.size()));
  return c;
}

// A PNG that declares w x h RGB pixels: IHDR, a (too small) IDAT, IEND; all CRCs valid.
std::string crafted_png(uint32_t w, uint32_t h, bool complete = true) {
  std::string ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  std::string s = "\x89PNG\r\n\x1a\n" + png_chunk("IHDR", ihdr);
  if (complete) s += png_chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + png_chunk("IEND", "");
  return s;
}

}  // namespace

TEST_CASE("image: every decode fixture matches PIL's RGB pixels") {
  const json& list = cases()["decode"];
  REQUIRE(list.size() >= 25);
  for (const json& c : list) {
    const std::string file = c["file"];
    CAPTURE(file);
    ImageInfo info;
    Image got = load_image(kDir + file, {}, &info);
    Image want = raw_image(c["expected"], c["width"], c["height"]);
    const int diff = max_diff(got, want);
    MESSAGE(file << ": max |diff| = " << diff << " (tolerance " << c["tolerance"].get<int>() << ")");
    CHECK(diff <= c["tolerance"].get<int>());
    CHECK(info.format == c["format"].get<std::string>());
    CHECK(info.width == got.width);
    CHECK(info.height == got.height);
    CHECK(info.channels == c["channels"].get<int>());
    CHECK(info.bit_depth == c["bit_depth"].get<int>());
    CHECK(info.exif_orientation == c["orientation"].get<int>());
    if (c.contains("color") && !c["color"].get<std::string>().empty()) CHECK(info.color == c["color"].get<std::string>());
    const bool swapped = info.exif_orientation >= 5;
    CHECK(info.stored_width == (swapped ? got.height : got.width));
    CHECK(info.stored_height == (swapped ? got.width : got.height));
  }
}

TEST_CASE("image: alpha is dropped, not composited") {
  ImageInfo info;
  Image im = load_image(kDir + "rgba.png", {}, &info);
  CHECK(info.alpha_dropped);
  // The fixture's pixel (0, 0) is fully transparent; its colour must survive unchanged.
  Image want = raw_image("rgb8.png.rgb", 13, 9);
  CHECK(std::memcmp(im.at(0, 0), want.at(0, 0), 3) == 0);
  ImageInfo opaque;
  load_image(kDir + "rgb8.png", {}, &opaque);
  CHECK_FALSE(opaque.alpha_dropped);
}

TEST_CASE("image: refused formats say why") {
  for (const json& c : cases()["errors"]) {
    const std::string file = c["file"], expect = c["expect"];
    CAPTURE(file);
    std::string msg;
    try {
      load_image(kDir + file);
    } catch (const InputError& e) {
      msg = e.what();
      CHECK(e.subject() == kDir + file);
    }
    CHECK(msg.find(expect) != std::string::npos);
  }
  CHECK(decode_error("hello, this is text\n") == "not a recognised image format");
  CHECK(decode_error("") == "file is empty (0 bytes)");
}

TEST_CASE("image: resize matches PIL (bicubic and bilinear, down, up, one axis)") {
  const json& list = cases()["resize"];
  REQUIRE(list.size() >= 10);
  int worst = 0;
  for (const json& c : list) {
    Image src = raw_image(c["source"], c["source_width"], c["source_height"]);
    const int w = c["width"], h = c["height"];
    Resample r = *resample_from_name(c["resample"].get<std::string>());
    Image got = resize(src, w, h, r);
    Image want = raw_image(c["expected"], w, h);
    const int diff = max_diff(got, want);
    MESSAGE(c["source"].get<std::string>() << " -> " << w << "x" << h << " " << std::string(resample_name(r))
                                           << ": max |diff| = " << diff << " (u8 levels; limit 1)");
    CHECK(diff <= 1);
    worst = std::max(worst, diff);
  }
  MESSAGE("resize parity: worst max |diff| over all cases = " << worst);
}

TEST_CASE("image: resize to the same size is a copy; bad sizes throw") {
  Image src = raw_image("src_noise.rgb", 23, 17);
  CHECK(max_diff(resize(src, 23, 17, Resample::bicubic), src) == 0);
  CHECK_THROWS_AS(resize(src, 0, 5, Resample::bicubic), InternalError);
  // A constant image stays constant through both filters (weights are normalised).
  Image flat(10, 7);
  std::fill(flat.pixels.begin(), flat.pixels.end(), uint8_t(77));
  for (Resample r : {Resample::bicubic, Resample::bilinear})
    for (auto [w, h] : {std::pair{3, 2}, std::pair{25, 19}, std::pair{10, 1}}) {
      Image o = resize(flat, w, h, r);
      CHECK(std::all_of(o.pixels.begin(), o.pixels.end(), [](uint8_t v) { return v == 77; }));
    }
}

TEST_CASE("image: resample names and PIL codes") {
  CHECK(resample_from_name("BICUBIC") == Resample::bicubic);
  CHECK(resample_from_name("bilinear") == Resample::bilinear);
  CHECK_FALSE(resample_from_name("lanczos").has_value());
  CHECK(resample_from_pil_code(3) == Resample::bicubic);
  CHECK(resample_from_pil_code(2) == Resample::bilinear);
  CHECK_FALSE(resample_from_pil_code(1).has_value());
}

TEST_CASE("image: center crop (floor offset) and padding") {
  Image im(5, 4);
  std::fill(im.pixels.begin(), im.pixels.end(), uint8_t(0));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) im.at(x, y)[0] = static_cast<uint8_t>(10 * y + x);
  Image c = center_crop(im, 2, 3);  // left (5-2)/2 = 1, top (4-3)/2 = 0
  REQUIRE(c.width == 2);
  REQUIRE(c.height == 3);
  CHECK(c.at(0, 0)[0] == 1);
  CHECK(c.at(1, 2)[0] == 22);
  Image p = center_crop(im, 8, 4);  // pads: image at x offset (8-5)/2 = 1
  CHECK(p.at(0, 0)[0] == 0);
  CHECK(p.at(1, 0)[0] == 0);  // im(0,0) is 0 too; check a distinctive one
  CHECK(p.at(2, 1)[0] == 11);
  CHECK(p.at(6, 3)[0] == 0);
  CHECK(p.at(5, 3)[0] == 34);
  CHECK(p.at(7, 3)[0] == 0);
}

TEST_CASE("image: to_chw_normalized is (v/255 - mean)/std in CHW order") {
  Image im(2, 1);
  const uint8_t px[] = {0, 128, 255, 51, 102, 204};
  std::memcpy(im.pixels.data(), px, 6);
  const std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f}, sd{0.26862954f, 0.26130258f, 0.27577711f};
  Tensor t = to_chw_normalized(im, mean, sd);
  REQUIRE(t.shape() == Shape{3, 1, 2});
  float worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int x = 0; x < 2; ++x) {
      double want = (px[x * 3 + c] / 255.0 - mean[c]) / sd[c];
      worst = std::max(worst, static_cast<float>(std::fabs(t.f32()[c * 2 + x] - want)));
    }
  MESSAGE("to_chw_normalized max |diff| vs double = " << worst);
  CHECK(worst < 1e-6f);
}

TEST_CASE("image: EXIF orientation on a 3x2 image, by hand") {
  // a b c      orientation 6 (rotate 90 clockwise) -> d a      8 -> c f      3 -> f e d
  // d e f                                           e b           b e           c b a
  //                                                 f c           a d
  Image im(3, 2);
  std::fill(im.pixels.begin(), im.pixels.end(), uint8_t(0));
  for (int i = 0; i < 6; ++i) im.pixels[i * 3] = static_cast<uint8_t>('a' + i);
  auto str = [](const Image& o) {
    std::string s;
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x) s += static_cast<char>(o.at(x, y)[0]);
    return s;
  };
  CHECK(str(apply_exif_orientation(im, 1)) == "abcdef");
  CHECK(str(apply_exif_orientation(im, 2)) == "cbafed");
  CHECK(str(apply_exif_orientation(im, 3)) == "fedcba");
  CHECK(str(apply_exif_orientation(im, 4)) == "defabc");
  CHECK(str(apply_exif_orientation(im, 5)) == "adbecf");
  CHECK(str(apply_exif_orientation(im, 6)) == "daebfc");
  CHECK(str(apply_exif_orientation(im, 7)) == "fcebda");
  CHECK(str(apply_exif_orientation(im, 8)) == "cfbead");
  CHECK(apply_exif_orientation(im, 6).width == 2);
}

TEST_CASE("image: pixel limit from the header, before decoding") {
  // 100000 x 100000 PNG with valid chunks: refused from IHDR (OpenCV would throw or allocate).
  std::string msg = decode_error(crafted_png(100000, 100000));
  CHECK(msg == "image is 100000x100000 = 10000 megapixels, over the limit of 50 (raise it with --max-pixels)");
  // Only the header present: still reported as too big (the size comes first).
  CHECK(decode_error(crafted_png(100000, 100000, false)).find("10000 megapixels") != std::string::npos);
  // JPEG SOF0 declaring 65535 x 65535.
  std::string jpg("\xFF\xD8\xFF\xC0\x00\x11\x08\xFF\xFF\xFF\xFF\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 21);
  CHECK(decode_error(jpg).find("65535x65535 = 4294.84 megapixels") != std::string::npos);
  // WebP VP8X canvas 16384 x 16384.
  std::string webp = "RIFF";
  put_le32(webp, 4 + 18);
  webp += "WEBPVP8X";
  put_le32(webp, 10);
  webp += std::string("\x00\x00\x00\x00\xFF\x3F\x00\xFF\x3F\x00", 10);
  CHECK(decode_error(webp).find("16384x16384 = 268.435 megapixels") != std::string::npos);
  // A real file over a lowered limit, and under a raised one.
  ImageLoadOptions tight;
  tight.max_pixels = 100;  // rgb8.png is 13 x 9 = 117 pixels
  try {
    load_image(kDir + "rgb8.png", tight);
    FAIL("expected the pixel limit");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == "image is 13x9 = 0.000117 megapixels, over the limit of 0.0001 (raise it with --max-pixels)");
  }
  tight.max_pixels = 117;
  CHECK(load_image(kDir + "rgb8.png", tight).width == 13);
}

TEST_CASE("image: header parsers on crafted headers") {
  ImageHeader h = probe(crafted_png(640, 480));
  CHECK(h.format == ImageFormat::png);
  CHECK(h.width == 640);
  CHECK(h.height == 480);
  CHECK(h.channels == 3);
  CHECK(h.problem.empty());

  // A bad CRC is caught before libpng sees it.
  std::string bad = crafted_png(4, 4);
  bad[29] ^= 0x01;  // inside IHDR's CRC
  CHECK(probe(bad).problem.find("CRC mismatch in chunk IHDR") != std::string::npos);
  // A PNG whose chunk length points past the end.
  std::string longchunk = crafted_png(4, 4, false);
  std::string idat;
  put_be32(idat, 0x00100000);
  longchunk += idat + "IDAT" + std::string(10, '\0');
  CHECK(probe(longchunk).problem.find("truncated PNG: the file ends inside chunk IDAT") != std::string::npos);
  // A chunk length over 2^31.
  std::string huge_len = crafted_png(4, 4, false);
  put_be32(huge_len, 0xFFFFFFF0u);
  huge_len += std::string("IDAT\0\0\0\0", 8);
  CHECK(probe(huge_len).problem.find("declares 4294967280 bytes") != std::string::npos);

  // GIF: size read, decoding refused.
  h = probe(std::string("GIF89a\x20\x03\x58\x02", 10));
  CHECK(h.format == ImageFormat::gif);
  CHECK(h.width == 800);
  CHECK(h.height == 600);
  CHECK(decode_error(std::string("GIF89a\x20\x03\x58\x02", 10)).find("GIF images are not supported") == 0);

  // BMP: negative height (top-down) and a size check on the pixel data.
  std::string bmp = "BM";
  put_le32(bmp, 0);
  put_le32(bmp, 0);
  put_le32(bmp, 54);
  put_le32(bmp, 40);
  put_le32(bmp, 3);
  put_le32(bmp, static_cast<uint32_t>(-2));
  put_le16(bmp, 1);
  put_le16(bmp, 24);
  put_le32(bmp, 0);
  bmp.resize(54, '\0');
  h = probe(bmp);
  CHECK(h.width == 3);
  CHECK(h.height == 2);
  CHECK(h.problem.find("truncated BMP") == 0);
  bmp.resize(54 + 2 * 12, '\0');  // rows padded to 4 bytes: 3*3 -> 12
  CHECK(probe(bmp).problem.empty());

  // PNM with comments; an absurd size and a too-long number.
  h = probe("P6\n# comment\n 4 3\n255\n" + std::string(36, 'x'));
  CHECK(h.format == ImageFormat::pnm);
  CHECK(h.width == 4);
  CHECK(h.height == 3);
  CHECK(h.problem.empty());
  CHECK(probe("P6\n4 3\n255\n" + std::string(35, 'x')).problem.find("truncated PNM") == 0);
  CHECK_FALSE(probe("P5\n99999999999 3\n255\n").problem.empty());
  CHECK(probe("P5 100000 100000 255\n").problem.find("truncated PNM") == 0);
  CHECK(decode_error("P5 100000 100000 255\n").find("10000 megapixels") != std::string::npos);

  // TIFF IFD that claims more entries than the file holds.
  std::string tif("II*\x00\x08\x00\x00\x00\xFF\x00", 10);
  CHECK(probe(tif).problem.find("truncated or corrupt tiff header") == 0);

  // JPEG: no frame header before the scan; a segment length below 2.
  CHECK(probe(std::string("\xFF\xD8\xFF\xDA\x00\x02\xFF\xD9", 8)).problem.find("before any frame header") != std::string::npos);
  CHECK(probe(std::string("\xFF\xD8\xFF\xE0\x00\x01", 6)).problem.find("has length 1") != std::string::npos);
}

TEST_CASE("image: EXIF blocks, valid and hostile") {
  // Little-endian: II 2A00 08000000, one entry: 1201 0300 01000000 0600 0000.
  std::string le("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00", 22);
  CHECK(exif_orientation_from_tiff_block(reinterpret_cast<const uint8_t*>(le.data()), le.size()) == 6);
  std::string be("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x03\x00\x00", 22);
  CHECK(exif_orientation_from_tiff_block(reinterpret_cast<const uint8_t*>(be.data()), be.size()) == 3);
  std::string nine = le;
  nine[18] = 9;  // out of range
  CHECK(exif_orientation_from_tiff_block(reinterpret_cast<const uint8_t*>(nine.data()), nine.size()) == 0);
  std::string far = le;
  far[4] = '\xF0';  // IFD offset past the end
  CHECK(exif_orientation_from_tiff_block(reinterpret_cast<const uint8_t*>(far.data()), far.size()) == 0);
  for (size_t n = 0; n < le.size(); ++n) {  // every truncation: 0, never a read past n
    ExactBuffer b(le, n);
    CHECK(exif_orientation_from_tiff_block(b.p.get(), b.n) == 0);
  }
}

TEST_CASE("image: every truncation of every fixture is refused or decodes, never crashes") {
  // PNG, JPEG, WebP, BMP and PNM truncations must be refused with InputError (their parsers
  // check chunk lists, the end-of-image marker or the raster size). Other formats may decode a
  // partial image or fail, but only with InputError.
  int refused = 0, decoded = 0, files = 0;
  for (const json& c : cases()["decode"]) {
    const std::string file = c["file"], fmt = c["format"];
    const std::string bytes = slurp(kDir + file);
    const bool strict = fmt != "pfm";  // PFM: the raster check covers it, but keep one non-strict path
    ++files;
    // Every length for small files, a sample of lengths for the large ones.
    const size_t step = bytes.size() > 2000 ? bytes.size() / 500 : 1;
    for (size_t n = 0; n < bytes.size(); n += step) {
      ExactBuffer b(bytes, n);
      ImageHeader h = probe_image_header(b.p.get(), b.n);
      (void)h;
      try {
        Image im = decode_image(b.p.get(), b.n, file);
        ++decoded;
        if (strict) FAIL_CHECK(file << " cut to " << n << " of " << bytes.size() << " bytes decoded without error");
      } catch (const InputError&) {
        ++refused;
      }
    }
  }
  MESSAGE(files << " files: " << refused << " truncations refused, " << decoded << " decoded (non-strict formats)");
}

TEST_CASE("image: random corruption of headers throws InputError or decodes, never crashes") {
  std::mt19937 rng(7);
  int runs = 0;
  for (const json& c : cases()["decode"]) {
    const std::string file = c["file"];
    const std::string bytes = slurp(kDir + file);
    for (int i = 0; i < 60; ++i) {
      std::string m = bytes;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        size_t at = rng() % std::min<size_t>(m.size(), 96);  // headers live near the start
        m[at] = static_cast<char>(rng() & 0xFF);
      }
      ExactBuffer b(m, m.size());
      try {
        decode_image(b.p.get(), b.n, file);
      } catch (const InputError&) {
      }
      ++runs;
    }
  }
  MESSAGE(runs << " corrupted files handled");
  CHECK(runs > 1000);
}

TEST_CASE("image: save_image round trip and refusals") {
  Image src = raw_image("src_noise.rgb", 23, 17);
  const std::string out = "test_image_roundtrip_" + std::to_string(::getpid()) + ".png";  // in the build dir
  save_image(src, out);
  Image back = load_image(out);
  std::remove(out.c_str());
  CHECK(max_diff(back, src) == 0);
  CHECK_FALSE(can_save_image("x.gif"));
  CHECK(can_save_image("dir.v2/X.JPG"));
  CHECK_THROWS_AS(save_image(src, "out.gif"), InputError);
}

TEST_CASE("image: megapixels_str") {
  CHECK(megapixels_str(1e10) == "10000");
  CHECK(megapixels_str(52.5e6) == "52.5");
  CHECK(megapixels_str(50e6) == "50");
}
