// Image decoding (OpenCV imgcodecs behind our own header checks), EXIF orientation, saving,
// center crop and CHW normalisation. The PIL-compatible resize is in image_resize.cpp.
#include "encoders/image.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/image_header.hpp"

namespace xmodal {

namespace {

std::string dims_str(int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

void check_pixel_limit(const std::string& name, int64_t w, int64_t h, int64_t max_pixels) {
  // w > max / h (integer division) is w * h > max without the overflow of w * h.
  if (h > 0 && w > max_pixels / h)
    throw InputError(name, "image is " + dims_str(w, h) + " = " + megapixels_str(double(w) * double(h)) +
                               " megapixels, over the limit of " + megapixels_str(double(max_pixels)) +
                               " (raise it with --max-pixels)");
}

// One sample of any OpenCV depth, as u8.
template <class T>
inline uint8_t to_u8(T v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return v;
  } else if constexpr (std::is_same_v<T, uint16_t>) {
    return static_cast<uint8_t>((uint32_t(v) + 128) / 257);  // round(v / 257), exact for 0..65535
  } else {
    double x = static_cast<double>(v);
    if (!(x > 0)) return 0;  // also NaN
    if (x >= 1) return 255;
    return static_cast<uint8_t>(x * 255.0 + 0.5);
  }
}

// m [H, W, C] (C = 1..4, OpenCV's B G R A order) -> Image [H, W, 3] RGB u8; alpha dropped.
template <class T, int C>
Image mat_to_rgb(const cv::Mat& m) {
  Image out(m.cols, m.rows);
  for (int y = 0; y < m.rows; ++y) {
    const T* src = m.ptr<T>(y);
    uint8_t* dst = out.at(0, y);
    for (int x = 0; x < m.cols; ++x, src += C, dst += 3) {
      if constexpr (C <= 2) {
        dst[0] = dst[1] = dst[2] = to_u8(src[0]);
      } else {
        dst[0] = to_u8(src[2]);
        dst[1] = to_u8(src[1]);
        dst[2] = to_u8(src[0]);
      }
    }
  }
  return out;
}

template <class T>
Image mat_to_rgb(const cv::Mat& m) {
  switch (m.channels()) {
    case 1: return mat_to_rgb<T, 1>(m);
    case 2: return mat_to_rgb<T, 2>(m);
    case 3: return mat_to_rgb<T, 3>(m);
    default: return mat_to_rgb<T, 4>(m);
  }
}

Image mat_to_rgb_any(const cv::Mat& m, const std::string& name) {
  if (m.channels() < 1 || m.channels() > 4)
    throw InputError(name, "decoded image has " + std::to_string(m.channels()) + " channels; expected 1 to 4");
  switch (m.depth()) {
    case CV_8U: return mat_to_rgb<uint8_t>(m);
    case CV_16U: return mat_to_rgb<uint16_t>(m);
    case CV_32F: return mat_to_rgb<float>(m);
    case CV_64F: return mat_to_rgb<double>(m);
    default:
      throw InputError(name, "decoded image has signed integer samples (OpenCV depth " + std::to_string(m.depth()) +
                                 "), which xmodal does not convert");
  }
}

int depth_bits(int cv_depth) {
  switch (cv_depth) {
    case CV_8U: case CV_8S: return 8;
    case CV_16U: case CV_16S: case CV_16F: return 16;
    case CV_32S: case CV_32F: return 32;
    default: return 64;
  }
}

std::string lower_ext(const std::string& path) {
  auto slash = path.find_last_of('/');
  auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot);
  for (char& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return e;
}

}  // namespace

std::string megapixels_str(double pixels) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", pixels / 1e6);
  return buf;
}

Image apply_exif_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;
  Image out(swap ? H : W, swap ? W : H);
  for (int oy = 0; oy < out.height; ++oy) {
    for (int ox = 0; ox < out.width; ++ox) {
      int sx = ox, sy = oy;
      switch (orientation) {
        case 2: sx = W - 1 - ox; sy = oy; break;           // mirror left-right
        case 3: sx = W - 1 - ox; sy = H - 1 - oy; break;   // rotate 180
        case 4: sx = ox; sy = H - 1 - oy; break;           // mirror top-bottom
        case 5: sx = oy; sy = ox; break;                   // transpose
        case 6: sx = oy; sy = H - 1 - ox; break;           // rotate 90 clockwise
        case 7: sx = W - 1 - oy; sy = H - 1 - ox; break;   // transverse
        case 8: sx = W - 1 - oy; sy = ox; break;           // rotate 90 counter-clockwise
      }
      std::memcpy(out.at(ox, oy), in.at(sx, sy), 3);
    }
  }
  return out;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& options,
                   ImageInfo* info) {
  if (size == 0) throw InputError(name, "file is empty (0 bytes)");
  const ImageHeader h = probe_image_header(data, size);
  const std::string fmt = image_format_name(h.format);
  if (h.format == ImageFormat::gif)
    throw InputError(name, "GIF images are not supported (OpenCV 4.6 cannot decode GIF); convert it to PNG first");
  // The size first: a header that declares a huge image is reported as such even when the rest
  // of the file is missing.
  if (h.width > 0 && h.height > 0) check_pixel_limit(name, h.width, h.height, options.max_pixels);
  if (!h.problem.empty()) throw InputError(name, h.problem);
  if (h.format == ImageFormat::webp && h.animated)
    throw InputError(name, "animated WebP is not supported (OpenCV 4.6 cannot decode it); extract a frame first");
  if (size > static_cast<size_t>(INT_MAX))
    throw InputError(name, "file is " + std::to_string(size) + " bytes; OpenCV cannot decode more than 2 GiB");

  // libpng prints a warning for some (harmless) colour profiles; we ignore profiles anyway.
  std::string stripped;
  const uint8_t* bytes = data;
  size_t nbytes = size;
  if (h.format == ImageFormat::png && h.has_iccp) {
    stripped = png_without_iccp(data, size);
    bytes = reinterpret_cast<const uint8_t*>(stripped.data());
    nbytes = stripped.size();
  }

  // OpenCV logs decoder failures (OpenJPEG, libtiff) on stderr; we report our own one-line
  // error instead. OPENCV_LOG_LEVEL in the environment still wins, for debugging.
  static const bool quiet_opencv = [] {
    if (!std::getenv("OPENCV_LOG_LEVEL")) cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    return true;
  }();
  (void)quiet_opencv;

  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(nbytes), CV_8UC1, const_cast<uint8_t*>(bytes));
    // IMREAD_UNCHANGED: native depth and channels, and no EXIF rotation (we apply it ourselves,
    // for WebP too, which OpenCV does not handle).
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw InputError(name, "cannot decode the " + fmt + " data (OpenCV: " + e.err + ")");
  }
  if (m.empty()) {
    if (h.format == ImageFormat::unknown) throw InputError(name, "not a recognised image format");
    throw InputError(name, "cannot decode this " + fmt + " file (corrupt, or a variant OpenCV 4.6 does not support)");
  }
  check_pixel_limit(name, m.cols, m.rows, options.max_pixels);

  Image img = mat_to_rgb_any(m, name);
  // OpenCV's TIFF decoder already applies the TIFF orientation tag.
  const bool orient_here = h.format == ImageFormat::jpeg || h.format == ImageFormat::png || h.format == ImageFormat::webp;
  if (orient_here && h.exif_orientation >= 2) img = apply_exif_orientation(img, h.exif_orientation);

  if (info) {
    ImageInfo& in = *info;
    in = ImageInfo{};
    in.format = fmt;
    const bool header_dims = h.width > 0 && h.height > 0;
    in.stored_width = header_dims ? static_cast<int>(h.width) : m.cols;
    in.stored_height = header_dims ? static_cast<int>(h.height) : m.rows;
    in.width = img.width;
    in.height = img.height;
    in.channels = h.channels > 0 ? h.channels : m.channels();
    in.bit_depth = h.bit_depth > 0 ? h.bit_depth : depth_bits(m.depth());
    static const char* by_channels[] = {"", "gray", "gray+alpha", "RGB", "RGBA"};
    in.color = !h.color.empty() ? h.color : by_channels[m.channels()];
    in.exif_orientation = h.exif_orientation >= 1 ? h.exif_orientation : 1;
    in.alpha_dropped = (m.channels() == 2 || m.channels() == 4) && h.color != "CMYK" && h.color != "YCCK";
    in.animated = h.animated;
  }
  return img;
}

Image load_image(const std::string& path, const ImageLoadOptions& options, ImageInfo* info) {
  const std::string bytes = read_file(path, options.max_file_bytes);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, options, info);
}

bool can_save_image(const std::string& path) {
  static const char* known[] = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff"};
  const std::string e = lower_ext(path);
  return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return e == k; });
}

void save_image(const Image& image, const std::string& path) {
  if (!can_save_image(path))
    throw InputError(path, "cannot write this file type (use .png, .jpg, .bmp, .ppm, .webp or .tif)");
  if (image.empty()) throw InputError(path, "cannot write an empty image");
  cv::Mat bgr(image.height, image.width, CV_8UC3);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* s = image.at(0, y);
    uint8_t* d = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < image.width; ++x, s += 3, d += 3) {
      d[0] = s[2];
      d[1] = s[1];
      d[2] = s[0];
    }
  }
  std::vector<uint8_t> out;
  bool ok = false;
  try {
    ok = cv::imencode(lower_ext(path), bgr, out);
  } catch (const cv::Exception& e) {
    throw InputError(path, "cannot encode the image (OpenCV: " + e.err + ")");
  }
  if (!ok) throw InputError(path, "cannot encode the image");
  write_file_atomic(path, std::string(out.begin(), out.end()));
}

// ---------------------------------------------------------------- preprocessing helpers

const char* resample_name(Resample r) { return r == Resample::bicubic ? "bicubic" : "bilinear"; }

std::optional<Resample> resample_from_name(std::string_view name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "bicubic") return Resample::bicubic;
  if (s == "bilinear") return Resample::bilinear;
  return std::nullopt;
}

std::optional<Resample> resample_from_pil_code(int code) {
  if (code == 2) return Resample::bilinear;
  if (code == 3) return Resample::bicubic;
  return std::nullopt;
}

Image center_crop(const Image& in, int w, int h) {
  check(w >= 1 && h >= 1, "center_crop: size " + dims_str(w, h) + " must be at least 1x1");
  // Source offset of output pixel (0, 0); negative when padding.
  const int left = in.width >= w ? (in.width - w) / 2 : -((w - in.width) / 2);
  const int top = in.height >= h ? (in.height - h) / 2 : -((h - in.height) / 2);
  Image out(w, h);
  if (left < 0 || top < 0) std::fill(out.pixels.begin(), out.pixels.end(), uint8_t(0));  // black padding
  for (int y = 0; y < h; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= in.height) continue;
    const int x0 = std::max(0, -left), x1 = std::min(w, in.width - left);
    if (x1 > x0) std::memcpy(out.at(x0, y), in.at(x0 + left, sy), static_cast<size_t>(x1 - x0) * 3);
  }
  return out;
}

Tensor to_chw_normalized(const Image& image, const std::array<float, 3>& mean, const std::array<float, 3>& std,
                         float rescale) {
  const int64_t H = image.height, W = image.width;
  Tensor t = Tensor::empty({3, H, W});
  float* out = t.f32();
  for (int c = 0; c < 3; ++c) {
    check(std[c] != 0.0f, "to_chw_normalized: std[" + std::to_string(c) + "] is 0");
    // (v * rescale - mean) / std for the 256 possible values, then one lookup per sample.
    float lut[256];
    for (int v = 0; v < 256; ++v) lut[v] = (static_cast<float>(v) * rescale - mean[c]) / std[c];
    float* plane = out + c * H * W;
    const uint8_t* src = image.pixels.data() + c;
    for (int64_t i = 0; i < H * W; ++i) plane[i] = lut[src[i * 3]];
  }
  return t;
}

}  // namespace xmodal
