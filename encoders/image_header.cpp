// Bounds-checked image header parsers. Every byte is read through Reader, which throws the
// private OutOfBytes when a read would leave the buffer; probe_image_header turns that into a
// "truncated ... header" problem. Formats are identified by signature, never by file name.
#include "encoders/image_header.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace xmodal {

namespace {

struct OutOfBytes {};

// Read-only view of the file bytes. Offsets are size_t; every accessor checks the range first.
struct Reader {
  const uint8_t* p;
  size_t n;
  bool has(size_t off, size_t len) const { return off <= n && len <= n - off; }
  void need(size_t off, size_t len) const {
    if (!has(off, len)) throw OutOfBytes{};
  }
  uint8_t u8(size_t off) const {
    need(off, 1);
    return p[off];
  }
  uint16_t be16(size_t off) const {
    need(off, 2);
    return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
  }
  uint16_t le16(size_t off) const {
    need(off, 2);
    return static_cast<uint16_t>(p[off] | p[off + 1] << 8);
  }
  uint32_t be32(size_t off) const {
    need(off, 4);
    return uint32_t(p[off]) << 24 | uint32_t(p[off + 1]) << 16 | uint32_t(p[off + 2]) << 8 | p[off + 3];
  }
  uint32_t le32(size_t off) const {
    need(off, 4);
    return uint32_t(p[off]) | uint32_t(p[off + 1]) << 8 | uint32_t(p[off + 2]) << 16 | uint32_t(p[off + 3]) << 24;
  }
  uint32_t le24(size_t off) const {
    need(off, 3);
    return uint32_t(p[off]) | uint32_t(p[off + 1]) << 8 | uint32_t(p[off + 2]) << 16;
  }
  uint64_t be64(size_t off) const { return uint64_t(be32(off)) << 32 | be32(off + 4); }
  bool match(size_t off, std::string_view s) const {
    return has(off, s.size()) && std::memcmp(p + off, s.data(), s.size()) == 0;
  }
  std::string text(size_t off, size_t len) const {
    need(off, len);
    return std::string(reinterpret_cast<const char*>(p + off), len);
  }
};

std::string num(uint64_t v) { return std::to_string(v); }

// Bytes the pixel data needs, saturating instead of overflowing (the caller compares with the
// file size, so a saturated value simply reads as "does not fit").
uint64_t sat_mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

// ---------------------------------------------------------------- TIFF structure (and EXIF)

// A TIFF-structured block (a TIFF file, or the EXIF block inside JPEG/PNG/WebP): byte order
// and typed reads.
struct Tiff {
  const Reader& r;
  bool le = true;
  uint16_t u16(size_t o) const { return le ? r.le16(o) : r.be16(o); }
  uint32_t u32(size_t o) const { return le ? r.le32(o) : r.be32(o); }
  // Element i of a SHORT (3) or LONG (4) tag whose 4-byte value field is at v: stored inline
  // when the whole array fits in 4 bytes, else at the offset held in the field.
  uint32_t element(uint16_t type, uint32_t count, size_t v, uint64_t i) const {
    if (type != 3 && type != 4) throw OutOfBytes{};
    const uint64_t size = type == 3 ? 2 : 4;
    const uint64_t base = uint64_t(count) * size <= 4 ? v : u32(v);
    const uint64_t at = base + i * size;  // i < 2^32, so no overflow
    if (at > r.n) throw OutOfBytes{};
    return type == 3 ? u16(static_cast<size_t>(at)) : u32(static_cast<size_t>(at));
  }
  uint32_t value(uint16_t type, size_t v) const { return element(type, 1, v, 0); }
};

// Reads IFD0. Calls on_tag(tiff, tag, type, count, value_offset) for each entry, where
// value_offset is the offset of the entry's 4-byte value field.
template <class F>
void walk_ifd0(const Reader& r, F&& on_tag) {
  Tiff t{r};
  if (r.match(0, "II")) t.le = true;
  else if (r.match(0, "MM")) t.le = false;
  else throw OutOfBytes{};
  if (t.u16(2) != 42) throw OutOfBytes{};
  uint32_t ifd = t.u32(4);
  uint16_t count = t.u16(ifd);
  r.need(size_t(ifd) + 2, size_t(count) * 12);
  for (uint16_t i = 0; i < count; ++i) {
    size_t e = size_t(ifd) + 2 + size_t(i) * 12;
    on_tag(t, t.u16(e), t.u16(e + 2), t.u32(e + 4), e + 8);
  }
}

int orientation_in(const Reader& r) {
  int orientation = 0;
  walk_ifd0(r, [&](const Tiff& t, uint16_t tag, uint16_t type, uint32_t count, size_t v) {
    if (tag == 0x0112 && count == 1) {
      uint32_t o = t.value(type, v);
      if (o >= 1 && o <= 8) orientation = static_cast<int>(o);
    }
  });
  return orientation;
}

int orientation_after_exif_prefix(const uint8_t* data, size_t size) {
  // WebP EXIF chunks and PNG eXIf chunks usually hold the bare TIFF block; some writers keep the
  // JPEG-style "Exif\0\0" prefix. Accept both.
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) return exif_orientation_from_tiff_block(data + 6, size - 6);
  return exif_orientation_from_tiff_block(data, size);
}

// ---------------------------------------------------------------- PNG

void probe_png(const Reader& r, ImageHeader& h) {
  size_t pos = 8;
  bool first = true, seen_idat = false;
  for (;;) {
    if (!r.has(pos, 12)) {
      h.problem = "truncated PNG: the file ends after " + num(r.n) + " bytes, before the IEND chunk";
      return;
    }
    uint32_t len = r.be32(pos);
    std::string type = r.text(pos + 4, 4);
    for (char c : type)
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
        h.problem = "corrupt PNG: invalid chunk type at byte " + num(pos + 4);
        return;
      }
    if (len > 0x7fffffffu) {
      h.problem = "corrupt PNG: chunk " + type + " at byte " + num(pos) + " declares " + num(len) + " bytes";
      return;
    }
    if (!r.has(pos + 8, size_t(len) + 4)) {
      h.problem = "truncated PNG: the file ends inside chunk " + type + " at byte " + num(pos) + " (it needs " +
                  num(pos + 12 + len - r.n) + " more bytes)";
      return;
    }
    const uint8_t* body = r.p + pos + 8;
    if (crc32_iso(r.p + pos + 4, size_t(len) + 4) != r.be32(pos + 8 + len)) {
      h.problem = "corrupt PNG: CRC mismatch in chunk " + type + " at byte " + num(pos);
      return;
    }
    if (first) {
      if (type != "IHDR" || len != 13) {
        h.problem = "corrupt PNG: the first chunk is " + type + ", not a 13-byte IHDR";
        return;
      }
      h.width = r.be32(pos + 8);
      h.height = r.be32(pos + 12);
      h.bit_depth = body[8];
      int ctype = body[9];
      static const char* names[] = {"gray", "", "RGB", "palette", "gray+alpha", "", "RGBA"};
      static const int chans[] = {1, 0, 3, 1, 2, 0, 4};
      if (ctype > 6 || chans[ctype] == 0) {
        h.problem = "corrupt PNG: unknown colour type " + num(ctype);
        return;
      }
      h.color = names[ctype];
      h.channels = chans[ctype];
      if (h.width == 0 || h.height == 0) {
        h.problem = "corrupt PNG: IHDR declares a " + num(h.width) + "x" + num(h.height) + " image";
        return;
      }
      first = false;
    } else if (type == "IDAT") {
      seen_idat = true;
    } else if (type == "iCCP") {
      h.has_iccp = true;
    } else if (type == "eXIf") {
      h.exif_orientation = orientation_after_exif_prefix(body, len);
    } else if (type == "acTL") {
      h.animated = true;
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + size_t(len);
  }
  if (!seen_idat) h.problem = "corrupt PNG: no IDAT (pixel data) chunk";
}

// ---------------------------------------------------------------- JPEG

bool is_sof(uint8_t m) {
  return (m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

void probe_jpeg(const Reader& r, ImageHeader& h) {
  size_t pos = 2;
  int adobe_transform = -1;
  bool have_sof = false;
  for (;;) {
    if (!r.has(pos, 2)) {
      h.problem = "truncated JPEG: the file ends in its headers, after " + num(r.n) + " bytes";
      return;
    }
    if (r.u8(pos) != 0xFF) {
      h.problem = "corrupt JPEG: expected a marker at byte " + num(pos);
      return;
    }
    while (r.has(pos, 1) && r.u8(pos) == 0xFF) ++pos;  // fill bytes
    if (!r.has(pos, 1)) continue;                        // reported as truncated above
    uint8_t m = r.u8(pos++);
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // standalone markers
    if (m == 0xD9) {
      h.problem = "corrupt JPEG: end-of-image marker before any image data";
      return;
    }
    if (!r.has(pos, 2)) continue;
    size_t len = r.be16(pos);
    if (len < 2) {
      h.problem = "corrupt JPEG: marker segment at byte " + num(pos) + " has length " + num(len);
      return;
    }
    if (!r.has(pos, len)) {
      h.problem = "truncated JPEG: the file ends inside a marker segment at byte " + num(pos);
      return;
    }
    size_t seg = pos + 2, seglen = len - 2;
    if (is_sof(m) && !have_sof) {
      if (seglen < 6) {
        h.problem = "corrupt JPEG: frame header is " + num(seglen) + " bytes";
        return;
      }
      h.bit_depth = r.u8(seg);
      h.height = r.be16(seg + 1);
      h.width = r.be16(seg + 3);
      h.channels = r.u8(seg + 5);
      have_sof = true;
    } else if (m == 0xE1 && seglen >= 6 && r.match(seg, std::string_view("Exif\0\0", 6))) {
      h.exif_orientation = exif_orientation_from_tiff_block(r.p + seg + 6, seglen - 6);
    } else if (m == 0xEE && seglen >= 12 && r.match(seg, "Adobe")) {
      adobe_transform = r.u8(seg + 11);
    } else if (m == 0xDA) {  // start of scan: the headers are over
      if (!have_sof) {
        h.problem = "corrupt JPEG: image data before any frame header";
        return;
      }
      // In entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an FF D9
      // after the first scan is the end-of-image marker. Without it the file was cut short
      // (libjpeg would fill the rest with grey and print a warning).
      const uint8_t* s = r.p + pos + len;
      const uint8_t* end = r.p + r.n;
      bool eoi = false;
      while (s + 1 < end) {
        s = static_cast<const uint8_t*>(std::memchr(s, 0xFF, static_cast<size_t>(end - s - 1)));
        if (!s) break;
        if (s[1] == 0xD9) {
          eoi = true;
          break;
        }
        ++s;
      }
      if (!eoi) {
        h.problem = "truncated JPEG: no end-of-image marker after the image data (the file is " + num(r.n) + " bytes)";
        return;
      }
      break;
    }
    pos += len;
  }
  switch (h.channels) {
    case 1: h.color = "gray"; break;
    case 3: h.color = adobe_transform == 0 ? "RGB" : "YCbCr"; break;
    case 4: h.color = adobe_transform == 2 ? "YCCK" : "CMYK"; break;
    default: h.color = num(h.channels) + " components"; break;
  }
  if (h.width == 0 || h.height == 0)
    h.problem = "unsupported JPEG: the frame header declares a " + num(h.width) + "x" + num(h.height) + " image";
}

// ---------------------------------------------------------------- BMP

void probe_bmp(const Reader& r, ImageHeader& h) {
  uint32_t data_off = r.le32(10);
  uint32_t dib = r.le32(14);
  int64_t w, hh;
  uint32_t bpp, compression = 0;
  if (dib == 12) {  // OS/2 BITMAPCOREHEADER
    w = r.le16(18);
    hh = r.le16(20);
    bpp = r.le16(24);
  } else if (dib >= 16) {
    w = static_cast<int32_t>(r.le32(18));
    hh = static_cast<int32_t>(r.le32(22));
    bpp = r.le16(28);
    if (dib >= 20) compression = r.le32(30);
  } else {
    h.problem = "corrupt BMP: header size " + num(dib);
    return;
  }
  if (hh < 0) hh = -hh;  // top-down rows
  h.width = w;
  h.height = hh;
  if (w <= 0 || hh == 0) {
    h.problem = "corrupt BMP: declares a " + std::to_string(w) + "x" + std::to_string(hh) + " image";
    return;
  }
  h.bit_depth = bpp <= 8 ? static_cast<int>(bpp) : 8;
  h.channels = bpp <= 8 ? 1 : bpp == 32 ? 4 : 3;
  h.color = bpp <= 8 ? "palette" : bpp == 32 ? "RGBA" : "RGB";
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
    h.problem = "corrupt BMP: " + num(bpp) + " bits per pixel";
    return;
  }
  if (compression > 3) {  // OpenCV 4.6 reads BI_RGB, BI_RLE8, BI_RLE4 and BI_BITFIELDS
    h.problem = "unsupported BMP: compression type " + num(compression) + " (OpenCV 4.6 reads types 0 to 3)";
    return;
  }
  if (compression == 0 || compression == 3) {  // uncompressed rows
    uint64_t stride = (sat_mul(uint64_t(w), bpp) + 31) / 32 * 4;
    uint64_t need = sat_mul(stride, uint64_t(hh));
    if (need > UINT64_MAX - data_off || data_off + need > r.n)
      h.problem = "truncated BMP: " + std::to_string(w) + "x" + std::to_string(hh) + " pixels need " +
                  num(need) + " bytes after byte " + num(data_off) + ", the file has " + num(r.n);
  }
}

// ---------------------------------------------------------------- GIF (size only; not decoded)

void probe_gif(const Reader& r, ImageHeader& h) {
  h.width = r.le16(6);
  h.height = r.le16(8);
  h.channels = 1;
  h.bit_depth = 8;
  h.color = "palette";
}

// ---------------------------------------------------------------- WebP

void probe_webp(const Reader& r, ImageHeader& h) {
  uint64_t riff = r.le32(4);
  if (riff + 8 > r.n) {
    h.problem = "truncated WebP: the header says " + num(riff + 8) + " bytes, the file has " + num(r.n);
    return;
  }
  size_t end = static_cast<size_t>(riff + 8), pos = 12;
  bool alpha = false, have_image = false;
  while (pos + 8 <= end) {
    std::string type = r.text(pos, 4);
    uint64_t len = r.le32(pos + 4);
    size_t body = pos + 8;
    if (len > end - body) {
      h.problem = "truncated WebP: chunk " + type + " at byte " + num(pos) + " runs past the end of the file";
      return;
    }
    if (type == "VP8X" && len >= 10) {
      uint8_t flags = r.u8(body);
      alpha = flags & 0x10;
      h.animated = flags & 0x02;
      h.width = int64_t(r.le24(body + 4)) + 1;
      h.height = int64_t(r.le24(body + 7)) + 1;
    } else if (type == "VP8 " && len >= 10 && !have_image) {
      if (r.u8(body + 3) != 0x9D || r.u8(body + 4) != 0x01 || r.u8(body + 5) != 0x2A) {
        h.problem = "corrupt WebP: bad VP8 start code";
        return;
      }
      if (h.width == 0) {
        h.width = r.le16(body + 6) & 0x3FFF;
        h.height = r.le16(body + 8) & 0x3FFF;
      }
      have_image = true;
    } else if (type == "VP8L" && len >= 5 && !have_image) {
      if (r.u8(body) != 0x2F) {
        h.problem = "corrupt WebP: bad VP8L signature";
        return;
      }
      uint32_t bits = r.le32(body + 1);
      if (h.width == 0) {
        h.width = int64_t(bits & 0x3FFF) + 1;
        h.height = int64_t((bits >> 14) & 0x3FFF) + 1;
      }
      alpha = alpha || ((bits >> 28) & 1);
      have_image = true;
    } else if (type == "ALPH") {
      alpha = true;
    } else if (type == "ANIM" || type == "ANMF") {
      h.animated = true;
      have_image = true;
    } else if (type == "EXIF") {
      h.exif_orientation = orientation_after_exif_prefix(r.p + body, static_cast<size_t>(len));
    }
    pos = body + static_cast<size_t>(len) + (len & 1);
  }
  h.channels = alpha ? 4 : 3;
  h.bit_depth = 8;
  h.color = alpha ? "RGBA" : "RGB";
  if (!have_image) h.problem = "corrupt WebP: no image data chunk";
  else if (h.width == 0 || h.height == 0) h.problem = "corrupt WebP: declares a " + num(h.width) + "x" + num(h.height) + " image";
}

// ---------------------------------------------------------------- TIFF

void probe_tiff(const Reader& r, ImageHeader& h) {
  int photometric = -1;
  uint32_t spp = 1, bps = 0;
  struct Array {
    uint16_t type = 0;
    uint32_t count = 0;
    size_t v = 0;
  } offsets, counts;
  bool le = true;
  walk_ifd0(r, [&](const Tiff& t, uint16_t tag, uint16_t type, uint32_t count, size_t v) {
    le = t.le;
    switch (tag) {
      case 256: h.width = t.value(type, v); break;
      case 257: h.height = t.value(type, v); break;
      case 258: bps = t.element(type, count, v, 0); break;  // BitsPerSample, one per sample
      case 262: photometric = static_cast<int>(t.value(type, v)); break;
      case 274: {
        uint32_t o = t.value(type, v);
        if (count == 1 && o >= 1 && o <= 8) h.exif_orientation = static_cast<int>(o);
        break;
      }
      case 277: spp = t.value(type, v); break;
      case 273: case 324: offsets = {type, count, v}; break;  // StripOffsets / TileOffsets
      case 279: case 325: counts = {type, count, v}; break;   // StripByteCounts / TileByteCounts
      default: break;
    }
  });
  h.channels = static_cast<int>(spp);
  h.bit_depth = static_cast<int>(bps == 0 ? 1 : bps);
  switch (photometric) {
    case 0: case 1: h.color = spp >= 2 ? "gray+alpha" : "gray"; break;
    case 2: h.color = spp >= 4 ? "RGBA" : "RGB"; break;
    case 3: h.color = "palette"; break;
    case 5: h.color = "CMYK"; break;
    case 6: h.color = "YCbCr"; break;
    case 8: h.color = "CIELab"; break;
    default: h.color = ""; break;
  }
  if (h.width == 0 || h.height == 0) {
    h.problem = "corrupt TIFF: the first directory declares a " + num(h.width) + "x" + num(h.height) + " image";
    return;
  }
  // Every strip (or tile) must lie inside the file; otherwise libtiff fails half-way through.
  if (offsets.count == 0 || offsets.count != counts.count) {
    h.problem = "corrupt TIFF: " + num(offsets.count) + " strip offsets and " + num(counts.count) + " strip sizes";
    return;
  }
  Tiff t{r, le};
  for (uint64_t i = 0; i < offsets.count; ++i) {
    uint64_t off = t.element(offsets.type, offsets.count, offsets.v, i);
    uint64_t len = t.element(counts.type, counts.count, counts.v, i);
    if (off + len > r.n) {
      h.problem = "truncated TIFF: strip " + num(i) + " needs bytes " + num(off) + " to " + num(off + len) +
                  ", the file has " + num(r.n);
      return;
    }
  }
}

// ---------------------------------------------------------------- PNM / PAM / PFM (text headers)

struct TextHeader {
  const Reader& r;
  size_t pos;
  void skip_space_and_comments() {
    for (;;) {
      uint8_t c = r.u8(pos);
      if (c == '#') {
        while (r.u8(pos) != '\n' && r.u8(pos) != '\r') ++pos;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
        ++pos;
      } else {
        return;
      }
    }
  }
  // A decimal number of at most 10 digits; returns -1 when the token is not a number.
  int64_t number() {
    skip_space_and_comments();
    int64_t v = 0;
    int digits = 0;
    while (r.has(pos, 1) && r.p[pos] >= '0' && r.p[pos] <= '9') {
      if (++digits > 10) return -1;
      v = v * 10 + (r.p[pos++] - '0');
    }
    return digits ? v : -1;
  }
  std::string token() {
    skip_space_and_comments();
    std::string t;
    while (r.has(pos, 1) && r.p[pos] > ' ' && t.size() < 64) t += static_cast<char>(r.p[pos++]);
    return t;
  }
};

void check_raster_fits(const Reader& r, ImageHeader& h, size_t data_off, uint64_t need, const char* fmt) {
  if (data_off > r.n || need > r.n - data_off)
    h.problem = std::string("truncated ") + fmt + ": " + num(h.width) + "x" + num(h.height) + " pixels need " +
                num(need) + " bytes of data, the file has " + num(r.n - std::min(data_off, r.n));
}

void probe_pnm(const Reader& r, ImageHeader& h) {
  char kind = static_cast<char>(r.u8(1));
  TextHeader t{r, 2};
  int64_t w = t.number(), hh = t.number();
  int64_t maxval = (kind == '1' || kind == '4') ? 1 : t.number();
  if (w <= 0 || hh <= 0 || maxval <= 0 || maxval > 65535) {
    h.problem = "corrupt PNM: bad header (width " + std::to_string(w) + ", height " + std::to_string(hh) +
                ", maxval " + std::to_string(maxval) + ")";
    return;
  }
  h.width = w;
  h.height = hh;
  bool color = kind == '3' || kind == '6';
  h.channels = color ? 3 : 1;
  h.bit_depth = maxval == 1 && (kind == '1' || kind == '4') ? 1 : maxval > 255 ? 16 : 8;
  h.color = color ? "RGB" : "gray";
  if (kind >= '4') {  // binary raster after exactly one whitespace byte
    size_t data = t.pos + 1;
    uint64_t need = kind == '4' ? sat_mul((uint64_t(w) + 7) / 8, uint64_t(hh))
                                : sat_mul(sat_mul(uint64_t(w), uint64_t(hh)), uint64_t(h.channels) * (maxval > 255 ? 2 : 1));
    check_raster_fits(r, h, data, need, "PNM");
  }
}

void probe_pam(const Reader& r, ImageHeader& h) {
  TextHeader t{r, 2};
  int64_t w = -1, hh = -1, depth = -1, maxval = -1;
  std::string tupl;
  for (int guard = 0; guard < 64; ++guard) {
    std::string key = t.token();
    if (key == "ENDHDR") break;
    if (key == "WIDTH") w = t.number();
    else if (key == "HEIGHT") hh = t.number();
    else if (key == "DEPTH") depth = t.number();
    else if (key == "MAXVAL") maxval = t.number();
    else if (key == "TUPLTYPE") tupl = t.token();
    else {
      h.problem = "corrupt PAM: unexpected header field '" + key + "'";
      return;
    }
  }
  while (r.u8(t.pos) != '\n') ++t.pos;  // ENDHDR's line end
  if (w <= 0 || hh <= 0 || depth <= 0 || depth > 4 || maxval <= 0 || maxval > 65535) {
    h.problem = "corrupt PAM: bad header (width " + std::to_string(w) + ", height " + std::to_string(hh) +
                ", depth " + std::to_string(depth) + ", maxval " + std::to_string(maxval) + ")";
    return;
  }
  h.width = w;
  h.height = hh;
  h.channels = static_cast<int>(depth);
  h.bit_depth = maxval > 255 ? 16 : 8;
  static const char* names[] = {"", "gray", "gray+alpha", "RGB", "RGBA"};
  h.color = names[depth];
  uint64_t need = sat_mul(sat_mul(uint64_t(w), uint64_t(hh)), uint64_t(depth) * (maxval > 255 ? 2 : 1));
  check_raster_fits(r, h, t.pos + 1, need, "PAM");
}

void probe_pfm(const Reader& r, ImageHeader& h) {
  bool color = r.u8(1) == 'F';
  TextHeader t{r, 2};
  int64_t w = t.number(), hh = t.number();
  std::string scale = t.token();
  char* end = nullptr;
  const double sc = scale.empty() ? 0.0 : std::strtod(scale.c_str(), &end);
  if (w <= 0 || hh <= 0 || scale.empty() || *end != '\0' || !std::isfinite(sc) || sc == 0.0) {
    h.problem = "corrupt PFM: bad header";
    return;
  }
  h.width = w;
  h.height = hh;
  h.channels = color ? 3 : 1;
  h.bit_depth = 32;
  h.color = color ? "RGB" : "gray";
  check_raster_fits(r, h, t.pos + 1, sat_mul(sat_mul(uint64_t(w), uint64_t(hh)), uint64_t(h.channels) * 4), "PFM");
}

// ---------------------------------------------------------------- Sun raster

void probe_sun(const Reader& r, ImageHeader& h) {
  h.width = r.be32(4);
  h.height = r.be32(8);
  uint32_t depth = r.be32(12);
  h.channels = depth == 24 ? 3 : depth == 32 ? 4 : 1;
  h.bit_depth = depth <= 8 ? static_cast<int>(depth) : 8;
  h.color = depth <= 8 ? "palette" : "RGB";
  if (h.width == 0 || h.height == 0) h.problem = "corrupt Sun raster: declares a " + num(h.width) + "x" + num(h.height) + " image";
}

// ---------------------------------------------------------------- JPEG 2000

void j2k_siz(const Reader& r, size_t at, ImageHeader& h) {
  // at: offset of the FF4F (SOC) marker; SIZ follows: FF51 Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz ...
  if (r.be16(at + 2) != 0xFF51) throw OutOfBytes{};
  int64_t x = r.be32(at + 8), y = r.be32(at + 12), xo = r.be32(at + 16), yo = r.be32(at + 20);
  h.width = x - xo;
  h.height = y - yo;
  h.channels = r.be16(at + 40);
  h.bit_depth = (r.u8(at + 42) & 0x7F) + 1;
}

// A JPEG 2000 codestream ends with the EOC marker FF D9; without it the file was cut short.
void check_j2k_end(const Reader& r, size_t end, ImageHeader& h) {
  if (end < 2 || r.be16(end - 2) != 0xFFD9)
    h.problem = "truncated JPEG 2000: the codestream has no end marker (the file is " + num(r.n) + " bytes)";
}

void probe_jp2(const Reader& r, ImageHeader& h) {
  // Boxes: LBox (u32), TBox; LBox 1 = a 64-bit length follows; 0 = to the end of the file.
  auto box_end = [&](size_t pos, size_t limit, size_t& body) {
    uint64_t len = r.be32(pos);
    body = pos + 8;
    if (len == 1) {
      len = r.be64(pos + 8);
      body = pos + 16;
    } else if (len == 0) {
      return limit;
    }
    if (len < body - pos) throw OutOfBytes{};
    if (len > limit - pos) {
      h.problem = "truncated JPEG 2000: box " + r.text(pos + 4, 4) + " at byte " + num(pos) + " needs " + num(len) +
                  " bytes, the file has " + num(limit - pos) + " from there";
      return size_t(0);
    }
    return pos + static_cast<size_t>(len);
  };
  bool have_ihdr = false, have_codestream = false;
  size_t pos = 0;
  for (int guard = 0; guard < 4096 && pos + 8 <= r.n; ++guard) {
    size_t body, end = box_end(pos, r.n, body);
    if (!h.problem.empty()) return;
    if (r.match(pos + 4, "jp2h")) {
      for (size_t q = body; q + 8 <= end;) {
        size_t qb, qe = box_end(q, end, qb);
        if (!h.problem.empty()) return;
        if (r.match(q + 4, "ihdr")) {
          h.height = r.be32(qb);
          h.width = r.be32(qb + 4);
          h.channels = r.be16(qb + 8);
          uint8_t bpc = r.u8(qb + 10);
          h.bit_depth = bpc == 255 ? 0 : (bpc & 0x7F) + 1;
          have_ihdr = true;
        }
        q = qe;
      }
    } else if (r.match(pos + 4, "jp2c")) {
      check_j2k_end(r, end, h);
      have_codestream = true;
    }
    pos = end;
  }
  if (h.problem.empty() && (!have_ihdr || !have_codestream))
    h.problem = have_ihdr ? "truncated JPEG 2000: no codestream box" : "corrupt JPEG 2000: no image header box";
}

// ---------------------------------------------------------------- OpenEXR

void probe_exr(const Reader& r, ImageHeader& h) {
  size_t pos = 8;
  auto cstring = [&](size_t& p) {
    std::string s;
    while (r.u8(p) != 0) {
      if (s.size() > 255) throw OutOfBytes{};
      s += static_cast<char>(r.p[p++]);
    }
    ++p;
    return s;
  };
  for (int guard = 0; guard < 1024; ++guard) {
    std::string name = cstring(pos);
    if (name.empty()) break;
    std::string type = cstring(pos);
    uint32_t size = r.le32(pos);
    pos += 4;
    r.need(pos, size);
    if (name == "dataWindow" && type == "box2i" && size == 16) {
      int64_t x0 = static_cast<int32_t>(r.le32(pos)), y0 = static_cast<int32_t>(r.le32(pos + 4));
      int64_t x1 = static_cast<int32_t>(r.le32(pos + 8)), y1 = static_cast<int32_t>(r.le32(pos + 12));
      h.width = x1 - x0 + 1;
      h.height = y1 - y0 + 1;
      h.color = "float";
      if (h.width <= 0 || h.height <= 0) h.problem = "corrupt OpenEXR: empty data window";
      return;
    }
    pos += size;
  }
  h.problem = "corrupt OpenEXR: no dataWindow attribute";
}

// ---------------------------------------------------------------- Radiance HDR

void probe_hdr(const Reader& r, ImageHeader& h) {
  // Header lines up to an empty line, then "-Y <h> +X <w>" (or another axis order).
  size_t pos = 0;
  const size_t limit = std::min<size_t>(r.n, 1 << 16);
  for (;;) {
    size_t eol = pos;
    while (eol < limit && r.p[eol] != '\n') ++eol;
    if (eol >= limit) {
      h.problem = "corrupt Radiance HDR: no resolution line in the first " + num(limit) + " bytes";
      return;
    }
    bool empty = eol == pos;
    pos = eol + 1;
    if (empty) break;
  }
  TextHeader t{r, pos};
  std::string a1 = t.token();
  int64_t n1 = t.number();
  std::string a2 = t.token();
  int64_t n2 = t.number();
  if (a1.size() != 2 || a2.size() != 2 || n1 <= 0 || n2 <= 0) {
    h.problem = "corrupt Radiance HDR: bad resolution line";
    return;
  }
  bool y_first = a1[1] == 'Y';
  h.height = y_first ? n1 : n2;
  h.width = y_first ? n2 : n1;
  h.channels = 3;
  h.bit_depth = 32;
  h.color = "RGB";
}

}  // namespace

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::png: return "png";
    case ImageFormat::jpeg: return "jpeg";
    case ImageFormat::bmp: return "bmp";
    case ImageFormat::gif: return "gif";
    case ImageFormat::webp: return "webp";
    case ImageFormat::tiff: return "tiff";
    case ImageFormat::pnm: return "pnm";
    case ImageFormat::pam: return "pam";
    case ImageFormat::pfm: return "pfm";
    case ImageFormat::sun_raster: return "sun-raster";
    case ImageFormat::jpeg2000: return "jpeg2000";
    case ImageFormat::openexr: return "openexr";
    case ImageFormat::radiance_hdr: return "radiance-hdr";
    case ImageFormat::unknown: break;
  }
  return "unknown";
}

uint32_t crc32_iso(const uint8_t* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

int exif_orientation_from_tiff_block(const uint8_t* data, size_t size) {
  try {
    return orientation_in(Reader{data, size});
  } catch (const OutOfBytes&) {
    return 0;
  }
}

ImageHeader probe_image_header(const uint8_t* data, size_t size) {
  Reader r{data, size};
  ImageHeader h;
  auto fmt = [&](ImageFormat f) { h.format = f; };
  if (r.match(0, "\x89PNG\r\n\x1a\n")) fmt(ImageFormat::png);
  else if (r.match(0, "\xFF\xD8\xFF")) fmt(ImageFormat::jpeg);
  else if (r.match(0, "BM")) fmt(ImageFormat::bmp);
  else if (r.match(0, "GIF87a") || r.match(0, "GIF89a")) fmt(ImageFormat::gif);
  else if (r.match(0, "RIFF") && r.match(8, "WEBP")) fmt(ImageFormat::webp);
  else if (r.match(0, std::string_view("II*\0", 4)) || r.match(0, std::string_view("MM\0*", 4))) fmt(ImageFormat::tiff);
  else if (r.match(0, std::string_view("II+\0", 4)) || r.match(0, std::string_view("MM\0+", 4))) fmt(ImageFormat::tiff);
  else if (r.has(0, 3) && data[0] == 'P' && data[1] >= '1' && data[1] <= '6' && data[2] <= ' ') fmt(ImageFormat::pnm);
  else if (r.match(0, "P7") && r.has(2, 1) && data[2] <= ' ') fmt(ImageFormat::pam);
  else if ((r.match(0, "PF") || r.match(0, "Pf")) && r.has(2, 1) && data[2] <= ' ') fmt(ImageFormat::pfm);
  else if (r.match(0, "\x59\xA6\x6A\x95")) fmt(ImageFormat::sun_raster);
  else if (r.match(0, std::string_view("\0\0\0\x0CjP  \r\n\x87\n", 12)) || r.match(0, "\xFF\x4F\xFF\x51")) fmt(ImageFormat::jpeg2000);
  else if (r.match(0, "\x76\x2F\x31\x01")) fmt(ImageFormat::openexr);
  else if (r.match(0, "#?RADIANCE") || r.match(0, "#?RGBE")) fmt(ImageFormat::radiance_hdr);
  else return h;

  try {
    switch (h.format) {
      case ImageFormat::png: probe_png(r, h); break;
      case ImageFormat::jpeg: probe_jpeg(r, h); break;
      case ImageFormat::bmp: probe_bmp(r, h); break;
      case ImageFormat::gif: probe_gif(r, h); break;
      case ImageFormat::webp: probe_webp(r, h); break;
      case ImageFormat::tiff:
        if (r.u8(2) == '+' || r.u8(3) == '+') break;  // BigTIFF: size checked after decoding
        probe_tiff(r, h);
        break;
      case ImageFormat::pnm: probe_pnm(r, h); break;
      case ImageFormat::pam: probe_pam(r, h); break;
      case ImageFormat::pfm: probe_pfm(r, h); break;
      case ImageFormat::sun_raster: probe_sun(r, h); break;
      case ImageFormat::jpeg2000:
        if (data[0] == 0xFF) {
          j2k_siz(r, 0, h);
          check_j2k_end(r, size, h);
        } else {
          probe_jp2(r, h);
        }
        break;
      case ImageFormat::openexr: probe_exr(r, h); break;
      case ImageFormat::radiance_hdr: probe_hdr(r, h); break;
      case ImageFormat::unknown: break;
    }
  } catch (const OutOfBytes&) {
    h.problem = std::string("truncated or corrupt ") + image_format_name(h.format) + " header (the file is " +
                num(size) + " bytes)";
  }
  return h;
}

std::string png_without_iccp(const uint8_t* data, size_t size) {
  std::string out(reinterpret_cast<const char*>(data), std::min<size_t>(size, 8));
  Reader r{data, size};
  size_t pos = 8;
  while (r.has(pos, 12)) {
    size_t len = r.be32(pos);
    if (!r.has(pos + 8, len + 4)) break;
    if (!r.match(pos + 4, "iCCP")) out.append(reinterpret_cast<const char*>(data + pos), 12 + len);
    pos += 12 + len;
  }
  return out;
}

}  // namespace xmodal
