// Image input: decode any format OpenCV 4.6 reads into RGB u8, with a pixel limit checked from
// the header before decoding, EXIF orientation applied, and PIL-compatible preprocessing
// (bicubic/bilinear resize, center crop, CHW normalisation).
//
// Conventions (chosen to match PIL, which the BLIP reference uses):
// - Alpha is dropped, not composited (PIL's convert("RGB") drops it).
// - 16-bit samples become 8-bit as round(v / 257). (PIL differs here: it keeps the high byte of
//   16-bit RGB and clips 16-bit gray at 255; xmodal does the arithmetically correct thing.)
// - Float samples (OpenEXR, Radiance HDR, PFM, float TIFF) are clamped to [0, 1] and scaled by
//   255: no tone mapping.
// - EXIF orientation (tag 0x0112) is applied for JPEG, PNG (eXIf) and WebP; OpenCV's TIFF
//   decoder applies a TIFF's orientation itself.
// - Colour profiles (ICC) and gamma chunks are ignored, as PIL's convert("RGB") ignores them.
//   A PNG's iCCP chunk is stripped before decoding so that libpng prints no profile warnings.
// - Truncated PNG, JPEG, WebP, BMP, PNM, TIFF and JPEG 2000 files are refused by our header
//   checks before OpenCV sees them (OpenCV would otherwise return a partly grey image or print
//   decoder messages). OpenCV's own logging is silenced on first use unless OPENCV_LOG_LEVEL is
//   set in the environment.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/limits.hpp"
#include "core/tensor.hpp"

namespace xmodal {

// std::allocator that leaves new elements uninitialised (value-initialisation of a 36 MB pixel
// buffer is a measurable share of decoding a 12-megapixel photo).
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U>
  NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using PixelBuffer = std::vector<uint8_t, NoInitAllocator<uint8_t>>;

// An RGB image, 8 bits per sample, rows top to bottom, pixels left to right, R G B interleaved:
// pixels[(y * width + x) * 3 + c]. A new Image(w, h) has unspecified pixel values.
struct Image {
  int width = 0, height = 0;
  PixelBuffer pixels;

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * static_cast<size_t>(h) * 3) {}
  uint8_t* at(int x, int y) { return pixels.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* at(int x, int y) const { return pixels.data() + (static_cast<size_t>(y) * width + x) * 3; }
  bool empty() const { return width == 0 || height == 0; }
};

constexpr int64_t kDefaultMaxPixels = Limits::kDefaultMaxPixels;  // 50 megapixels (core/limits.hpp)

struct ImageLoadOptions {
  // Largest width*height accepted, checked from the header before decoding (and again after).
  // Defaults to the process-wide limit (core/limits.hpp; the CLI's --max-pixels).
  int64_t max_pixels = limits().max_pixels;
  // Largest file read into memory.
  uint64_t max_file_bytes = 1ull << 30;
};

// What load_image found, for `xmodal inspect` and for logs.
struct ImageInfo {
  std::string format;            // "png", "jpeg", "webp", ... (image_format_name)
  int stored_width = 0, stored_height = 0;  // as stored in the file
  int width = 0, height = 0;     // of the returned image (after EXIF orientation)
  int channels = 0;              // samples per pixel as stored (palette: 1)
  int bit_depth = 0;             // bits per sample as stored
  std::string color;             // "gray", "gray+alpha", "RGB", "RGBA", "palette", "YCbCr", "CMYK", ...
  int exif_orientation = 1;      // 1..8 (1 = none or absent)
  bool alpha_dropped = false;    // the file had an alpha channel, which was discarded
  bool animated = false;         // only the first frame was decoded
};

// Reads and decodes an image file into RGB u8. Throws InputError(path, ...) for: a missing,
// unreadable or non-regular file (directories and FIFOs are refused, never opened for reading),
// an empty file, an unknown format ("not a recognised image format"), GIF (OpenCV 4.6 cannot
// decode it), a truncated or corrupt file, an image over options.max_pixels, or a decode failure.
Image load_image(const std::string& path, const ImageLoadOptions& options = {}, ImageInfo* info = nullptr);

// The same from bytes in memory; `name` is the file name used in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& options = {},
                   ImageInfo* info = nullptr);

// "7000x7500 = 52.5 megapixels" style number: a pixel count in megapixels, shortest form.
std::string megapixels_str(double pixels);

// Writes an image; the format follows the extension (.png, .jpg/.jpeg, .bmp, .ppm, .webp, .tif).
// Atomic (temporary file + rename). Throws InputError(path, ...) on an unknown extension or a
// failed write.
void save_image(const Image& image, const std::string& path);
// True when save_image knows the extension of path.
bool can_save_image(const std::string& path);

// ---------------------------------------------------------------- preprocessing

enum class Resample { bilinear, bicubic };
const char* resample_name(Resample r);
// "bilinear" / "bicubic" (case-insensitive); nullopt otherwise.
std::optional<Resample> resample_from_name(std::string_view name);
// PIL's numeric codes as stored in Hugging Face preprocessor configs: 2 bilinear, 3 bicubic.
std::optional<Resample> resample_from_pil_code(int code);

// Resizes exactly as PIL's Image.resize((w, h), resample) does on an RGB image: separable
// (horizontal pass, then vertical), a filter widened by the scale when downscaling
// (antialiasing), weights normalised per output pixel and applied in 22-bit fixed point, and
// rounding to u8 between the passes. A pass whose size does not change is skipped, as in PIL.
// image [H, W, 3] u8 -> [h, w, 3] u8. Throws InternalError when w or h < 1.
Image resize(const Image& image, int w, int h, Resample resample);

// Center crop to w x h, with the offset (W - w) / 2 rounded down (Hugging Face's convention);
// a crop larger than the image pads with black, the image centred at offset (w - W) / 2.
// image [H, W, 3] u8 -> [h, w, 3] u8.
Image center_crop(const Image& image, int w, int h);

// image [H, W, 3] u8 -> [3, H, W] f32 with out[c][y][x] = (v * rescale - mean[c]) / std[c].
Tensor to_chw_normalized(const Image& image, const std::array<float, 3>& mean, const std::array<float, 3>& std,
                         float rescale = 1.0f / 255.0f);

// EXIF orientation 1..8 applied to an image (2..8 move pixels; 5..8 swap width and height).
// image [H, W, 3] u8 -> [H, W, 3] or [W, H, 3] u8.
Image apply_exif_orientation(const Image& image, int orientation);

}  // namespace xmodal
