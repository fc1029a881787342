// sdpa_fused (every ISA this CPU has: avx512, avx2, scalar) against sdpa_naive (double
// accumulation) on many shapes: head-dim tails (D = 20, 72, 128, Dv != D), Lk = 1, 49, 577,
// query tiles that split (Lq = 33, 70), causal / window / kv_lens padding, GQA and MQA, strided
// inputs and bf16 inputs.
// Tolerance: |fused - naive| <= 1e-5 * (1 + |naive|) element-wise. The online softmax sums in f32
// in another order than the reference and uses a polynomial exp2 (rel. error ~1e-7), so bit
// equality is not expected; observed max errors are printed.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "attention/sdpa.hpp"
#include "attention/sdpa_fused.hpp"
#include "core/error.hpp"

using namespace xmodal;
using namespace xmodal::attn;

namespace {

Tensor randn(const Shape& s, uint32_t seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.f, scale);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(g);
  return t;
}

// max over elements of |a - b| / (1 + |b|)
double max_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]) / (1.0 + std::fabs(b.f32()[i]));
    if (!(d <= m)) m = d;  // NaN counts as a failure
  }
  return m;
}

std::vector<SdpaIsa> isas() {
  std::vector<SdpaIsa> r;
  for (SdpaIsa i : {SdpaIsa::avx512, SdpaIsa::avx2, SdpaIsa::scalar})
    if (sdpa_fused_isa_supported(i)) r.push_back(i);
  return r;
}

struct IsaGuard {
  ~IsaGuard() { sdpa_fused_set_isa(SdpaIsa::best); }
};

struct Case {
  int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
  bool causal = false;
  int64_t window = 0;
  bool pad = false;  // kv_lens: b-th item keeps Lk - 7*b keys (at least 0)
};

std::string describe(const Case& c) {
  return "B" + std::to_string(c.B) + " Hq" + std::to_string(c.Hq) + " Hkv" + std::to_string(c.Hkv) + " Lq" +
         std::to_string(c.Lq) + " Lk" + std::to_string(c.Lk) + " D" + std::to_string(c.D) + " Dv" +
         std::to_string(c.Dv) + (c.causal ? " causal" : "") + (c.window ? " window" + std::to_string(c.window) : "") +
         (c.pad ? " kv_lens" : "");
}

constexpr double kTol = 1e-5;

}  // namespace

TEST_CASE("sdpa_fused matches sdpa_naive on every ISA, shape and mask") {
  IsaGuard guard;
  const std::vector<Case> cases = {
      // decode, cross-attention to image grids
      {1, 8, 8, 1, 49, 64, 64}, {2, 8, 8, 1, 577, 64, 64}, {3, 4, 4, 1, 196, 64, 64},
      // prefill / question encoders
      {1, 8, 8, 20, 49, 64, 64}, {2, 8, 8, 20, 577, 64, 64}, {1, 2, 2, 70, 33, 64, 64},
      // head-dim tails, Dv != D, large D
      {2, 3, 3, 1, 49, 20, 20}, {1, 3, 3, 20, 49, 20, 36}, {1, 2, 2, 33, 50, 72, 72}, {1, 2, 2, 9, 40, 128, 128},
      {1, 1, 1, 5, 17, 1, 3}, {1, 2, 2, 17, 130, 130, 7},
      // Lk = 1 and tiny shapes
      {1, 2, 2, 1, 1, 64, 64}, {2, 2, 2, 20, 1, 20, 20}, {1, 1, 1, 1, 2, 16, 16},
      // causal self-attention (Lq = Lk) and a cached decode step (Lq < Lk)
      {1, 8, 8, 32, 32, 64, 64, true}, {2, 4, 4, 33, 33, 20, 20, true}, {1, 2, 2, 4, 40, 64, 64, true},
      {1, 4, 4, 1, 77, 64, 64, true},
      // sliding window, with and without causal
      {1, 2, 2, 40, 40, 32, 32, true, 5}, {1, 2, 2, 12, 30, 32, 32, false, 7}, {1, 2, 2, 1, 60, 64, 64, true, 16},
      // padding (kv_lens), including a batch item with no keys at all
      {3, 4, 4, 1, 49, 64, 64, false, 0, true}, {3, 2, 2, 20, 20, 64, 64, false, 0, true},
      {4, 2, 2, 9, 21, 20, 20, true, 0, true},
      // GQA and MQA, decode and prefill
      {2, 8, 2, 1, 49, 64, 64}, {1, 8, 2, 20, 100, 64, 64}, {1, 6, 1, 1, 577, 64, 64}, {2, 12, 3, 3, 50, 20, 20, true},
      {1, 32, 4, 1, 64, 64, 64}, {1, 8, 1, 5, 64, 64, 64, false, 0, true},
      // stacked rows that fill tiles partly: 28 = 16 + 12 lanes, 25, 23 = 16 + 7 (row engine)
      {1, 4, 1, 7, 50, 64, 64}, {1, 2, 2, 25, 30, 24, 24, true}, {2, 1, 1, 23, 61, 40, 40, false, 0, true},
  };
  for (SdpaIsa isa : isas()) {
    sdpa_fused_set_isa(isa);
    const std::string isa_name = sdpa_fused_isa();
    double worst = 0;
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Case& c = cases[ci];
      const std::string what = isa_name + " " + describe(c);
      CAPTURE(what);
      const uint32_t seed = static_cast<uint32_t>(ci * 3 + 1);
      Tensor q = randn({c.B, c.Hq, c.Lq, c.D}, seed), k = randn({c.B, c.Hkv, c.Lk, c.D}, seed + 1),
             v = randn({c.B, c.Hkv, c.Lk, c.Dv}, seed + 2);
      SdpaParams p;
      p.causal = c.causal;
      p.window = c.window;
      if (c.pad)
        for (int64_t b = 0; b < c.B; ++b) p.kv_lens.push_back(static_cast<int32_t>(std::max<int64_t>(0, c.Lk - 7 * b * (c.Lk > 30 ? 3 : 1))));
      if (c.pad && c.B >= 3) p.kv_lens[static_cast<size_t>(c.B - 1)] = 0;
      const Tensor want = sdpa_naive(q, k, v, p);
      const Tensor got = sdpa_fused(q, k, v, p);
      REQUIRE(got.shape() == want.shape());
      const double e = max_err(got, want);
      worst = std::max(worst, e);
      CHECK(e <= kTol);
    }
    MESSAGE(isa_name << ": " << cases.size() << " shapes, max error " << worst << " (tol " << kTol << ")");
  }
}

TEST_CASE("sdpa_fused: fully masked rows are zeros, and padded keys are never read") {
  IsaGuard guard;
  for (SdpaIsa isa : isas()) {
    sdpa_fused_set_isa(isa);
    CAPTURE(sdpa_fused_isa());
    const int64_t B = 2, H = 2, Lq = 20, Lk = 40, D = 24;
    Tensor q = randn({B, H, Lq, D}, 5), k = randn({B, H, Lk, D}, 6), v = randn({B, H, Lk, D}, 7);
    SdpaParams p;
    p.kv_lens = {13, 0};
    // Garbage (NaN) where the keys are padding: the kernel must not touch it.
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 13; j < Lk; ++j)
        for (int64_t d = 0; d < D; ++d) {
          k.f32()[((0 * H + h) * Lk + j) * D + d] = std::numeric_limits<float>::quiet_NaN();
          v.f32()[((0 * H + h) * Lk + j) * D + d] = std::numeric_limits<float>::quiet_NaN();
        }
    Tensor got = sdpa_fused(q, k, v, p), want = sdpa_naive(q, k, v, p);
    CHECK(max_err(got, want) <= kTol);
    for (int64_t i = 0; i < H * Lq * D; ++i) REQUIRE(got.f32()[B * H * Lq * D / 2 + i] == 0.f);  // batch item 1
    // window 1 + causal with more queries than keys: early queries see nothing -> zeros
    SdpaParams p2;
    p2.causal = true;
    Tensor q2 = randn({1, 1, 6, 8}, 8), k2 = randn({1, 1, 3, 8}, 9), v2 = randn({1, 1, 3, 8}, 10);
    Tensor g2 = sdpa_fused(q2, k2, v2, p2);
    for (int64_t i = 0; i < 3 * 8; ++i) REQUIRE(g2.f32()[i] == 0.f);  // queries 0..2 see no key
    CHECK(max_err(g2, sdpa_naive(q2, k2, v2, p2)) <= kTol);
    // no keys at all
    Tensor e = sdpa_fused(q2, Tensor::zeros({1, 1, 0, 8}), Tensor::zeros({1, 1, 0, 8}), {});
    CHECK(e.shape() == Shape{1, 1, 6, 8});
    for (int64_t i = 0; i < e.numel(); ++i) REQUIRE(e.f32()[i] == 0.f);
  }
}

TEST_CASE("sdpa_fused: strided (transposed) and bf16 inputs, explicit scale") {
  IsaGuard guard;
  for (SdpaIsa isa : isas()) {
    sdpa_fused_set_isa(isa);
    CAPTURE(sdpa_fused_isa());
    // Projections come out as [B, L, H, D]; attention reads them as [B, H, L, D] views.
    Tensor q = randn({2, 20, 4, 32}, 11).transpose(1, 2), k = randn({2, 49, 4, 32}, 12).transpose(1, 2),
           v = randn({2, 49, 4, 32}, 13).transpose(1, 2);
    CHECK_FALSE(q.is_contiguous());
    SdpaParams p;
    p.scale = 0.3f;
    CHECK(max_err(sdpa_fused(q, k, v, p), sdpa_naive(q, k, v, p)) <= kTol);
    // A view whose head dim is strided is copied, not misread.
    Tensor qd = randn({2, 4, 32, 20}, 14).transpose(2, 3);
    CHECK(max_err(sdpa_fused(qd, k, v, p), sdpa_naive(qd, k, v, p)) <= kTol);
    // bf16 inputs: the same values as f32 give the same result.
    Tensor qb = q.contiguous().to(DType::bf16), kb = k.contiguous().to(DType::bf16), vb = v.contiguous().to(DType::bf16);
    CHECK(max_err(sdpa_fused(qb, kb, vb, p), sdpa_naive(qb, kb, vb, p)) <= kTol);
  }
}

TEST_CASE("sdpa_fused: large logits stay finite (online softmax rescaling)") {
  IsaGuard guard;
  for (SdpaIsa isa : isas()) {
    sdpa_fused_set_isa(isa);
    CAPTURE(sdpa_fused_isa());
    // Scores up to ~±400: a softmax without max subtraction would overflow, and the running
    // max changes from block to block.
    Tensor q = randn({1, 2, 20, 64}, 21, 3.f), k = randn({1, 2, 300, 64}, 22, 3.f), v = randn({1, 2, 300, 64}, 23);
    for (int64_t j = 0; j < 300; ++j) k.f32()[j * 64] *= 1.f + static_cast<float>(j) / 50.f;
    SdpaParams p;
    p.causal = true;
    Tensor got = sdpa_fused(q, k, v, p), want = sdpa_naive(q, k, v, p);
    const double e = max_err(got, want);
    MESSAGE("large-logit max error " << e);
    CHECK(e <= kTol);
  }
}

TEST_CASE("sdpa_fused: shape errors are reported, forcing an unsupported ISA throws") {
  Tensor q = randn({1, 3, 2, 8}, 1), k = randn({1, 2, 4, 8}, 2), v = randn({1, 2, 4, 8}, 3);
  CHECK_THROWS_AS(sdpa_fused(q, k, v), InternalError);  // 3 % 2 != 0
  if (!sdpa_fused_isa_supported(SdpaIsa::avx512)) CHECK_THROWS_AS(sdpa_fused_set_isa(SdpaIsa::avx512), InternalError);
  sdpa_fused_set_isa(SdpaIsa::scalar);
  CHECK(sdpa_fused_isa() == "scalar");
  sdpa_fused_set_isa(SdpaIsa::best);
  CHECK(sdpa_fused_isa() != "");
}
