// Naive references for core/ops: plain loops with double accumulation. Slow on purpose; the
// tests compare the oneDNN paths against these and against PyTorch dumps.
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/ops.hpp"

namespace xmodal::ops::ref {

namespace {
Tensor f32c(const Tensor& t) { return t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); }
}  // namespace

float act(Act a, float xf) {
  const double x = xf;
  switch (a) {
    case Act::none: return xf;
    case Act::relu: return xf > 0.f ? xf : 0.f;
    case Act::gelu_erf: return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
    case Act::gelu_tanh: {
      const double c = std::sqrt(2.0 / M_PI);
      return static_cast<float>(0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x))));
    }
    case Act::tanh: return static_cast<float>(std::tanh(x));
    case Act::sigmoid: return static_cast<float>(1.0 / (1.0 + std::exp(-x)));
  }
  return xf;
}

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out]
Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, Act a) {
  Tensor x = f32c(x_in), w = f32c(w_in);
  const int64_t K = w.size(1), N = w.size(0);
  check(x.size(-1) == K, "ref::linear: " + x.describe() + " vs weight " + w.describe());
  Tensor b = b_in.dim() > 0 ? f32c(b_in) : Tensor();
  Shape os = x.shape();
  os.back() = N;
  Tensor y = Tensor::empty(os);
  const int64_t M = x.numel() / K;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b.dim() > 0 ? b.f32()[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(x.f32()[m * K + k]) * w.f32()[n * K + k];
      y.f32()[m * N + n] = act(a, static_cast<float>(s));
    }
  return y;
}

// x [B, C, H, W], weight [O, C/g, kh, kw] -> [B, O, H', W']
Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, std::array<int64_t, 2> s,
              std::array<int64_t, 2> p, int64_t g, Act a) {
  Tensor x = f32c(x_in), w = f32c(w_in);
  Tensor b = b_in.dim() > 0 ? f32c(b_in) : Tensor();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3);
  check(Cg * g == C && O % g == 0, "ref::conv2d: " + x.describe() + " vs weight " + w.describe());
  const int64_t OH = (H + 2 * p[0] - kh) / s[0] + 1, OW = (W + 2 * p[1] - kw) / s[1] + 1;
  Tensor y = Tensor::empty({B, O, OH, OW});
  const int64_t Og = O / g;
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t gi = o / Og;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b.dim() > 0 ? b.f32()[o] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < kh; ++i) {
              const int64_t h = oh * s[0] - p[0] + i;
              if (h < 0 || h >= H) continue;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ww = ow * s[1] - p[1] + j;
                if (ww < 0 || ww >= W) continue;
                acc += static_cast<double>(x.f32()[((bi * C + gi * Cg + c) * H + h) * W + ww]) *
                       w.f32()[((o * Cg + c) * kh + i) * kw + j];
              }
            }
          y.f32()[((bi * O + o) * OH + oh) * OW + ow] = act(a, static_cast<float>(acc));
        }
    }
  return y;
}

// x [..., D] -> [..., D]
Tensor layer_norm(const Tensor& x_in, const Tensor& gamma, const Tensor& beta, float eps) {
  Tensor x = f32c(x_in), g = f32c(gamma), be = f32c(beta);
  const int64_t D = x.size(-1), M = x.numel() / D;
  Tensor y = Tensor::empty(x.shape());
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x.f32() + m * D;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i) mean += r[i];
    mean /= static_cast<double>(D);
    for (int64_t i = 0; i < D; ++i) var += (r[i] - mean) * (r[i] - mean);
    var /= static_cast<double>(D);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < D; ++i) y.f32()[m * D + i] = static_cast<float>((r[i] - mean) * inv * g.f32()[i] + be.f32()[i]);
  }
  return y;
}

// x [..., N] -> [..., N]
Tensor softmax_lastdim(const Tensor& x_in, bool log) {
  Tensor x = f32c(x_in);
  const int64_t N = x.size(-1), M = N ? x.numel() / N : 0;
  Tensor y = Tensor::empty(x.shape());
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x.f32() + m * N;
    double mx = -std::numeric_limits<double>::infinity(), sum = 0;
    for (int64_t i = 0; i < N; ++i) mx = std::max(mx, static_cast<double>(r[i]));
    for (int64_t i = 0; i < N; ++i) sum += std::exp(r[i] - mx);
    for (int64_t i = 0; i < N; ++i)
      y.f32()[m * N + i] = static_cast<float>(log ? (r[i] - mx) - std::log(sum) : std::exp(r[i] - mx) / sum);
  }
  return y;
}

// a [..., M, K] x b [..., K, N] (b may be 2-D; batch dims equal or 1) -> [..., M, N]
Tensor matmul(const Tensor& a_in, const Tensor& b_in, float scale) {
  Tensor a = f32c(a_in), b = f32c(b_in);
  const int64_t nd = a.dim(), M = a.size(-2), K = a.size(-1), N = b.size(-1);
  check(b.size(-2) == K, "ref::matmul: " + a.describe() + " x " + b.describe());
  Shape bshape(static_cast<size_t>(nd), 1);
  for (int64_t i = 0; i < b.dim(); ++i) bshape[static_cast<size_t>(nd - b.dim() + i)] = b.shape()[static_cast<size_t>(i)];
  Shape ys(static_cast<size_t>(nd));
  for (int64_t i = 0; i < nd - 2; ++i) ys[static_cast<size_t>(i)] = std::max(a.shape()[static_cast<size_t>(i)], bshape[static_cast<size_t>(i)]);
  ys[static_cast<size_t>(nd - 2)] = M;
  ys[static_cast<size_t>(nd - 1)] = N;
  Tensor y = Tensor::empty(ys);
  const int64_t batches = y.numel() / std::max<int64_t>(1, M * N);
  for (int64_t bi = 0; bi < batches; ++bi) {
    // decompose bi into batch indices, map to a and b offsets with broadcasting
    int64_t rem = bi, aoff = 0, boff = 0, astride = M * K, bstride = K * N;
    for (int64_t d = nd - 3; d >= 0; --d) {
      const int64_t n = ys[static_cast<size_t>(d)], idx = rem % n;
      rem /= n;
      const int64_t ad = a.shape()[static_cast<size_t>(d)], bd = bshape[static_cast<size_t>(d)];
      aoff += (ad == 1 ? 0 : idx) * astride;
      boff += (bd == 1 ? 0 : idx) * bstride;
      astride *= ad;
      bstride *= bd;
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += static_cast<double>(a.f32()[aoff + m * K + k]) * b.f32()[boff + k * N + n];
        y.f32()[bi * M * N + m * N + n] = static_cast<float>(s * scale);
      }
  }
  return y;
}

// x [B, C, H, W] -> [B, C, H', W']
Tensor max_pool2d(const Tensor& x_in, std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> p) {
  Tensor x = f32c(x_in);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * p[0] - k[0]) / s[0] + 1, OW = (W + 2 * p[1] - k[1]) / s[1] + 1;
  Tensor y = Tensor::empty({B, C, OH, OW});
  for (int64_t bc = 0; bc < B * C; ++bc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < k[0]; ++i)
          for (int64_t j = 0; j < k[1]; ++j) {
            const int64_t h = oh * s[0] - p[0] + i, w = ow * s[1] - p[1] + j;
            if (h >= 0 && h < H && w >= 0 && w < W) m = std::max(m, x.f32()[(bc * H + h) * W + w]);
          }
        y.f32()[(bc * OH + oh) * OW + ow] = m;
      }
  return y;
}

}  // namespace xmodal::ops::ref
