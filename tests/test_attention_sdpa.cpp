// SDPA: the oneDNN composition against the double-precision reference, masks, GQA/MQA, the
// prepared K/V path, shape errors, and impl_info (no ref kernels).
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "attention/sdpa.hpp"
#include "core/error.hpp"
#include "core/onednn.hpp"

using namespace xmodal;
using namespace xmodal::attn;

static Tensor randn(const Shape& s, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

static void check_no_ref(const std::vector<std::string>& impl) {
  REQUIRE(!impl.empty());
  for (const auto& s : impl) {
    INFO(s);
    CHECK(s.find("ref") == std::string::npos);
  }
}

struct Case {
  int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
  bool causal;
  int64_t window;
  std::vector<int32_t> lens;
};

TEST_CASE("sdpa: oneDNN composition == naive reference (MHA/GQA/MQA, masks)") {
  const Case cases[] = {
      {2, 4, 4, 5, 7, 16, 16, false, 0, {}},      // MHA, no mask
      {2, 4, 2, 5, 7, 16, 8, false, 0, {}},       // GQA, Dv != D
      {2, 4, 1, 6, 6, 8, 8, true, 0, {}},         // MQA, causal
      {2, 6, 2, 7, 7, 16, 16, true, 3, {}},       // GQA, causal + sliding window
      {3, 2, 2, 4, 9, 16, 16, false, 0, {9, 4, 0}},  // padding incl. an empty sequence
      {2, 4, 2, 3, 8, 8, 8, true, 0, {8, 5}},     // decode-like chunk: causal + padding
      {1, 4, 4, 1, 33, 32, 32, false, 0, {}},     // decode step, B = 1
      {1, 4, 2, 6, 6, 16, 16, true, 0, {}},       // causal, B = 1
      {2, 2, 2, 5, 3, 4, 4, true, 0, {}},         // Lq > Lk: first rows see nothing -> zeros
  };
  SdpaOneDNN sdpa;
  uint32_t seed = 1;
  for (const Case& c : cases) {
    Tensor q = randn({c.B, c.Hq, c.Lq, c.D}, seed++), k = randn({c.B, c.Hkv, c.Lk, c.D}, seed++),
           v = randn({c.B, c.Hkv, c.Lk, c.Dv}, seed++);
    SdpaParams p;
    p.causal = c.causal;
    p.window = c.window;
    p.kv_lens = c.lens;
    Tensor ref = sdpa_naive(q, k, v, p);
    Tensor got = sdpa(q, k, v, p);
    const float diff = max_abs_diff(ref, got);
    MESSAGE("B" << c.B << " Hq" << c.Hq << " Hkv" << c.Hkv << " Lq" << c.Lq << " Lk" << c.Lk << " causal" << c.causal
                << " win" << c.window << " lens" << c.lens.size() << ": max diff " << diff);
    for (const auto& s : sdpa.impl_info()) MESSAGE(s);
    CHECK(diff < 1e-5f);
    check_no_ref(sdpa.impl_info());
  }
}
