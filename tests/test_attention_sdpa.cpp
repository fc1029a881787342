// SDPA: the oneDNN composition against the double-precision reference, masks, GQA/MQA, the
// prepared K/V path, shape errors, and impl_info (no ref kernels).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
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

TEST_CASE("sdpa: prepared K/V path == naive, for the prepared Lq and another Lq") {
  const int64_t B = 2, Hq = 8, Hkv = 2, Lk = 37, D = 32;
  Tensor k = randn({B, Hkv, Lk, D}, 11), v = randn({B, Hkv, Lk, D}, 12);
  SdpaOneDNN sdpa;
  SdpaOneDNN::Prepared kv = sdpa.prepare(k, v, Hq, 1);
  for (const auto& s : kv.impl) MESSAGE(s);
  for (int64_t lq : {1, 4}) {
    Tensor q = randn({B, Hq, lq, D}, 13 + static_cast<uint32_t>(lq));
    SdpaParams p;
    p.kv_lens = {37, 20};
    Tensor ref = sdpa_naive(q, k, v, p);
    Tensor got = sdpa(q, kv, p);
    const float diff = max_abs_diff(ref, got);
    MESSAGE("prepared, Lq " << lq << ": max diff " << diff);
    for (const auto& s : sdpa.impl_info()) MESSAGE(s);
    CHECK(diff < 1e-5f);
    check_no_ref(sdpa.impl_info());
  }
}

TEST_CASE("sdpa: strided query view (a [B, L, H, D] projection transposed) and no re-creation") {
  const int64_t B = 2, L = 6, Hq = 4, Hkv = 2, D = 8;
  Tensor qbl = randn({B, L, Hq, D}, 21);
  Tensor q = qbl.transpose(1, 2);  // [B, Hq, L, D], strided
  Tensor k = randn({B, Hkv, L, D}, 22), v = randn({B, Hkv, L, D}, 23);
  SdpaParams p;
  p.causal = true;
  SdpaOneDNN sdpa;
  Tensor ref = sdpa_naive(q, k, v, p);
  Tensor out = Tensor::empty({B, Hq, L, D});
  sdpa.run(q, k, v, p, out);
  CHECK(max_abs_diff(ref, out) < 1e-5f);
  const int64_t created = PrimitiveCache::instance().created();
  for (int r = 0; r < 3; ++r) sdpa.run(q, k, v, p, out);
  CHECK(PrimitiveCache::instance().created() == created);
  CHECK(max_abs_diff(ref, out) < 1e-5f);
}

TEST_CASE("sdpa: bf16 inputs stay close to the f32 reference") {
  const int64_t B = 2, Hq = 4, Hkv = 2, Lq = 5, Lk = 16, D = 32;
  Tensor q = randn({B, Hq, Lq, D}, 31), k = randn({B, Hkv, Lk, D}, 32), v = randn({B, Hkv, Lk, D}, 33);
  SdpaParams p;
  p.causal = true;
  Tensor ref = sdpa_naive(q, k, v, p);
  SdpaOneDNN sdpa;
  Tensor got = sdpa(q.to(DType::bf16), k.to(DType::bf16), v.to(DType::bf16), p);
  const float diff = max_abs_diff(ref, got);
  MESSAGE("bf16 vs f32 reference: max diff " << diff);
  CHECK(diff < 5e-2f);
  // oneDNN 2.6 has bf16 matmul kernels only from AVX-512 up; older CPUs may run ref ones.
  if (__builtin_cpu_supports("avx512f")) check_no_ref(sdpa.impl_info());
}

TEST_CASE("sdpa: fully masked rows are zeros, not NaN") {
  Tensor q = randn({1, 2, 3, 4}, 41), k = randn({1, 2, 5, 4}, 42), v = randn({1, 2, 5, 4}, 43);
  SdpaParams p;
  p.kv_lens = {0};
  SdpaOneDNN sdpa;
  Tensor got = sdpa(q, k, v, p);
  for (int64_t i = 0; i < got.numel(); ++i) CHECK(got.f32()[i] == 0.f);
  Tensor ref = sdpa_naive(q, k, v, p);
  for (int64_t i = 0; i < ref.numel(); ++i) CHECK(ref.f32()[i] == 0.f);
}

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InternalError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("sdpa: bad shapes throw InternalError naming every shape") {
  SdpaOneDNN sdpa;
  auto q = randn({2, 3, 4, 8}, 1), k = randn({2, 2, 5, 8}, 2), v = randn({2, 2, 5, 8}, 3);
  std::string m = error_of([&] { sdpa(q, k, v); });  // 3 heads over 2 kv heads
  CHECK(m.find("[2, 3, 4, 8]") != std::string::npos);
  CHECK(m.find("[2, 2, 5, 8]") != std::string::npos);
  CHECK(m.find("not a multiple") != std::string::npos);
  auto q4 = randn({2, 4, 4, 8}, 1);
  m = error_of([&] { sdpa_naive(q4, k, randn({2, 2, 6, 8}, 4)); });  // K/V length mismatch
  CHECK(m.find("[2, 2, 6, 8]") != std::string::npos);
  CHECK(m.find("length 5") != std::string::npos);
  m = error_of([&] { sdpa_naive(randn({2, 4, 4, 7}, 1), k, v); });  // D mismatch
  CHECK(m.find("[2, 4, 4, 7]") != std::string::npos);
  SdpaParams p;
  p.kv_lens = {5};
  m = error_of([&] { sdpa(q4, k, v, p); });  // kv_lens size
  CHECK(m.find("kv_lens has 1 entries for batch 2") != std::string::npos);
  p.kv_lens = {5, 6};
  m = error_of([&] { sdpa(q4, k, v, p); });  // kv_lens value
  CHECK(m.find("kv_lens[1] = 6") != std::string::npos);
}

TEST_CASE("sdpa: the no-ref check can fail: a {1,1,Lq,Lk} mask post-op on a batched matmul is ref") {
  // FACTS.md: this mask shape silently falls back to ref:any; SdpaOneDNN never builds it. The
  // impl string of such a primitive must contain "ref", or the checks above would prove nothing.
  using dnnl::memory;
  const memory::dim B = 2, H = 4, Lq = 8, Lk = 8, D = 16;
  auto f32 = memory::data_type::f32;
  memory::desc q({B, H, Lq, D}, f32, memory::format_tag::abcd), kt({B, H, D, Lk}, f32, memory::format_tag::abdc),
      s({B, H, Lq, Lk}, f32, memory::format_tag::abcd);
  auto make = [&](const memory::dims& mask_dims) {
    dnnl::post_ops po;
    po.append_binary(dnnl::algorithm::binary_add, memory::desc(mask_dims, f32, memory::format_tag::abcd));
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    return impl_info_of(dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q, kt, s), attr, cpu_engine())));
  };
  const std::string bad = make({1, 1, Lq, Lk}), good = make({B, 1, Lq, Lk});
  MESSAGE("mask {1,1,Lq,Lk}: " << bad << "; mask {B,1,Lq,Lk}: " << good);
  CHECK(bad.find("ref") != std::string::npos);
  CHECK(good.find("ref") == std::string::npos);
}
