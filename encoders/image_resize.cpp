// PIL-compatible resize (Pillow's Image.resize on 8-bit RGB, BILINEAR and BICUBIC), written
// from the description of its algorithm:
//   - per axis, scale = in / out; when downscaling the filter is stretched by the scale
//     (support = filter support * max(scale, 1)), which antialiases;
//   - output pixel i is centred at (i + 0.5) * scale in input coordinates; it reads the input
//     pixels [trunc(center - support + 0.5), trunc(center + support + 0.5)) clipped to the image,
//     weighted by filter((j - center + 0.5) / max(scale, 1)), the weights normalised to sum 1;
//   - for 8-bit images the weights become 22-bit fixed-point integers (rounded away from zero),
//     each sum starts at 0.5 in that fixed point, and the result is shifted and clamped to 0..255;
//   - horizontal pass first (only over the rows the vertical pass reads), then vertical, with u8
//     rounding in between; an axis whose size does not change is not resampled at all.
#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "encoders/image.hpp"

namespace xmodal {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22: room for 8-bit values and sums of |weights| < 4

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {  // Keys cubic with a = -0.5
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// For each output index: the first input index, how many inputs, and their fixed-point weights
// (ksize slots per output, unused slots zero).
struct AxisWeights {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> w;  // [out, ksize]
};

// in_size -> out_size along one axis.
AxisWeights axis_weights(int in_size, int out_size, Resample resample) {
  double (*filter)(double) = resample == Resample::bicubic ? bicubic_filter : bilinear_filter;
  const double filter_support = resample == Resample::bicubic ? 2.0 : 1.0;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  AxisWeights a;
  a.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(out_size);
  a.count.resize(out_size);
  a.w.assign(static_cast<size_t>(out_size) * a.ksize, 0);
  std::vector<double> k(a.ksize);
  const double inv = 1.0 / filterscale;
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);  // truncation, as the reference does
    int hi = static_cast<int>(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double sum = 0.0;
    for (int j = 0; j < n; ++j) {
      k[j] = filter((j + lo - center + 0.5) * inv);
      sum += k[j];
    }
    int32_t* dst = &a.w[static_cast<size_t>(o) * a.ksize];
    for (int j = 0; j < n; ++j) {
      const double v = (sum != 0.0 ? k[j] / sum : k[j]) * (1 << kPrecisionBits);
      dst[j] = static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
    }
    a.first[o] = lo;
    a.count[o] = n;
  }
  return a;
}

// Threads only pay off for big resizes (a 640x480 -> 384x384 bicubic takes ~2 ms on one core,
// less than the cost of waking a busy OpenMP team on a shared 2-core machine).
inline bool worth_threads(int64_t pixel_taps) { return pixel_taps > (int64_t(1) << 24); }

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift (C++20)
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// src rows [row0, row0 + rows) of width W -> dst [rows, w, 3].
void horizontal_pass(const Image& src, int row0, int rows, const AxisWeights& a, Image& dst) {
  const int w = dst.width;
  const bool parallel = worth_threads(static_cast<int64_t>(rows) * w * a.ksize);
#pragma omp parallel for schedule(static) if (parallel)
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src.at(0, row0 + y);
    uint8_t* out = dst.at(0, y);
    for (int x = 0; x < w; ++x) {
      const int32_t* k = &a.w[static_cast<size_t>(x) * a.ksize];
      const uint8_t* p = in + static_cast<size_t>(a.first[x]) * 3;
      int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
      for (int j = 0, n = a.count[x]; j < n; ++j, p += 3) {
        r += p[0] * k[j];
        g += p[1] * k[j];
        b += p[2] * k[j];
      }
      out[x * 3 + 0] = clip8(r);
      out[x * 3 + 1] = clip8(g);
      out[x * 3 + 2] = clip8(b);
    }
  }
}

// src [H', W, 3] (row 0 of src is input row `row0`) -> dst [h, W, 3]. Whole rows are
// accumulated in int32 (exact, so the order of the sums does not matter) to read memory in order.
void vertical_pass(const Image& src, int row0, const AxisWeights& a, Image& dst) {
  const size_t row_bytes = static_cast<size_t>(src.width) * 3;
  const bool parallel = worth_threads(static_cast<int64_t>(dst.height) * dst.width * a.ksize);
#pragma omp parallel if (parallel)
  {
    std::vector<int32_t> acc(row_bytes);
#pragma omp for schedule(static)
    for (int y = 0; y < dst.height; ++y) {
      const int32_t* k = &a.w[static_cast<size_t>(y) * a.ksize];
      const uint8_t* base = src.at(0, a.first[y] - row0);
      std::fill(acc.begin(), acc.end(), int32_t(1) << (kPrecisionBits - 1));
      for (int j = 0, n = a.count[y]; j < n; ++j) {
        const uint8_t* row = base + static_cast<size_t>(j) * row_bytes;
        const int32_t kj = k[j];
        for (size_t i = 0; i < row_bytes; ++i) acc[i] += row[i] * kj;
      }
      uint8_t* out = dst.at(0, y);
      for (size_t i = 0; i < row_bytes; ++i) out[i] = clip8(acc[i]);
    }
  }
}

}  // namespace

Image resize(const Image& image, int w, int h, Resample resample) {
  check(w >= 1 && h >= 1, "resize: output size " + std::to_string(w) + "x" + std::to_string(h) + " must be at least 1x1");
  check(!image.empty(), "resize: empty input image");
  const bool need_h = w != image.width, need_v = h != image.height;
  if (!need_h && !need_v) return image;
  const AxisWeights vert = axis_weights(image.height, h, resample);
  // Input rows the vertical pass reads (all rows when there is no vertical pass).
  const int row0 = need_v ? vert.first[0] : 0;
  const int row1 = need_v ? vert.first[h - 1] + vert.count[h - 1] : image.height;
  Image tmp;
  const Image* cur = &image;
  int cur_row0 = 0;
  if (need_h) {
    const AxisWeights horiz = axis_weights(image.width, w, resample);
    tmp = Image(w, row1 - row0);
    horizontal_pass(image, row0, row1 - row0, horiz, tmp);
    cur = &tmp;
    cur_row0 = row0;
  }
  if (!need_v) return tmp;
  Image out(cur->width, h);
  vertical_pass(*cur, cur_row0, vert, out);
  return out;
}

}  // namespace xmodal
