// Image header probing: the format, the stored size and sample layout, and the EXIF orientation,
// read from the first bytes of a file without decoding it. Used to refuse huge images before
// OpenCV allocates them (OpenCV 4.6 has no public header-only API) and to give clean errors for
// truncated files before libpng/libjpeg print their own warnings.
//
// Every parser here is bounds-checked: it never reads outside [data, data + size), whatever the
// bytes say. Nothing here throws; problems come back in ImageHeader::problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xmodal {

enum class ImageFormat : uint8_t {
  unknown, png, jpeg, bmp, gif, webp, tiff, pnm, pam, pfm, sun_raster, jpeg2000, openexr, radiance_hdr
};

// "png", "jpeg", ... ("unknown" for unknown).
const char* image_format_name(ImageFormat f);

struct ImageHeader {
  ImageFormat format = ImageFormat::unknown;
  // Stored size (before any EXIF orientation). 0 when this format's parser does not read it;
  // the caller then checks the size after decoding.
  int64_t width = 0, height = 0;
  int channels = 0;     // samples per pixel as stored (palette images: 1 index); 0 = unknown
  int bit_depth = 0;    // bits per sample as stored (palette: index bits); 0 = unknown
  std::string color;    // "gray", "gray+alpha", "RGB", "RGBA", "palette", "CMYK", "YCCK", ... or ""
  int exif_orientation = 0;  // EXIF tag 0x0112 (1..8) when present and valid, else 0
  bool animated = false;     // APNG / animated WebP (only the first frame is decoded, if at all)
  bool has_iccp = false;     // PNG with an iCCP chunk (stripped before decoding: see image.cpp)
  // Non-empty when the bytes are malformed: one line, e.g. "truncated PNG: the file ends inside
  // chunk IDAT (needs 4096 more bytes)". A caller must not decode such a file.
  std::string problem;
};

// Identifies the format by its signature and parses the header. For PNG it also walks every
// chunk (lengths, CRCs, IEND present); for JPEG it walks the markers up to the first scan and
// requires an end-of-image marker after it; for BMP, PNM and WebP it checks that the declared
// pixel data fits in the file.
ImageHeader probe_image_header(const uint8_t* data, size_t size);

// EXIF orientation (1..8) from a TIFF-structured block (what follows "Exif\0\0" in a JPEG APP1
// segment, a PNG eXIf chunk, a WebP EXIF chunk). Returns 0 when absent, invalid or out of range.
int exif_orientation_from_tiff_block(const uint8_t* data, size_t size);

// A copy of a (validated) PNG without its iCCP chunk, so that libpng does not print warnings
// about odd colour profiles (xmodal ignores colour profiles, as PIL's convert("RGB") does).
std::string png_without_iccp(const uint8_t* data, size_t size);

// CRC-32 (ISO-HDLC, as PNG uses).
uint32_t crc32_iso(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace xmodal
