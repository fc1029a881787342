// MultiHeadAttention against PyTorch (torch.nn.MultiheadAttention and q/k/v/o_proj GQA/MQA
// layers), both attention backends, KV-cached decoding == all-at-once, the cross-attention
// memory, impl_info (no ref kernels), and weight-shape errors.
#include <doctest/doctest.h>

#include <functional>
#include <random>

#include "attention/mha.hpp"
#include "core/error.hpp"
#include "core/safetensors.hpp"

using namespace xmodal;
using namespace xmodal::attn;

namespace {

struct Fixture {
  SafetensorsFile f;
  explicit Fixture(const char* name)
      : f(SafetensorsFile::open(std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/attention/" + name)) {}
  Tensor operator[](const std::string& n) const { return f.to_f32(n); }
  std::vector<int32_t> ints(const std::string& n) const {
    Tensor t = f.view(n);
    return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
  }
};

Tensor randn(const Shape& s, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

void check_no_ref(const std::vector<std::string>& impl) {
  REQUIRE(!impl.empty());
  for (const auto& s : impl) {
    INFO(s);
    CHECK(s.find("ref") == std::string::npos);
  }
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what, float tol = 1e-5f) {
  REQUIRE(got.shape() == want.shape());
  const float d = max_abs_diff(got, want);
  MESSAGE(what << ": max diff " << d);
  CHECK(d < tol);
}

MhaWeights gqa_weights(const Fixture& fx, const std::string& p) {
  MhaWeights w;
  w.q_w = fx[p + ".q_proj.weight"], w.q_b = fx[p + ".q_proj.bias"];
  w.k_w = fx[p + ".k_proj.weight"], w.k_b = fx[p + ".k_proj.bias"];
  w.v_w = fx[p + ".v_proj.weight"], w.v_b = fx[p + ".v_proj.bias"];
  w.o_w = fx[p + ".o_proj.weight"], w.o_b = fx[p + ".o_proj.bias"];
  return w;
}

// x [B, L, d] rows [from, to) -> contiguous [B, to - from, d]
Tensor rows(const Tensor& x, int64_t from, int64_t to) { return x.slice(1, from, to).contiguous(); }

// Writes y [B, T, d] into out rows [at, at + T)
void put_rows(Tensor& out, const Tensor& y, int64_t at) {
  for (int64_t b = 0; b < y.size(0); ++b)
    for (int64_t t = 0; t < y.size(1); ++t)
      for (int64_t c = 0; c < y.size(2); ++c)
        out.f32()[(b * out.size(1) + at + t) * out.size(2) + c] = y.f32()[(b * y.size(1) + t) * y.size(2) + c];
}

}  // namespace

TEST_CASE("mha: torch.nn.MultiheadAttention self-attention (fused in_proj, causal + padding)") {
  Fixture fx("mha.safetensors");
  MhaWeights w;
  w.qkv_w = fx["torch_self.in_proj_weight"], w.qkv_b = fx["torch_self.in_proj_bias"];
  w.o_w = fx["torch_self.out_proj.weight"], w.o_b = fx["torch_self.out_proj.bias"];
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4}, w);
  SdpaParams p;
  p.causal = true;
  p.kv_lens = fx.ints("torch_self.kv_lens");
  expect_close(mha.forward(fx["torch_self.x"], p), fx["torch_self.out"], "torch MHA self, oneDNN");
  check_no_ref(mha.impl_info());
  mha.set_backend(SdpaBackend::naive);
  expect_close(mha.forward(fx["torch_self.x"], p), fx["torch_self.out"], "torch MHA self, naive");
}

TEST_CASE("mha: torch.nn.MultiheadAttention cross-attention (kdim 24 != embed 32, padding)") {
  Fixture fx("mha.safetensors");
  const Tensor b = fx["torch_cross.in_proj_bias"];
  MhaWeights w;
  w.q_w = fx["torch_cross.q_proj_weight"], w.q_b = b.slice(0, 0, 32);
  w.k_w = fx["torch_cross.k_proj_weight"], w.k_b = b.slice(0, 32, 64);
  w.v_w = fx["torch_cross.v_proj_weight"], w.v_b = b.slice(0, 64, 96);
  w.o_w = fx["torch_cross.out_proj.weight"], w.o_b = fx["torch_cross.out_proj.bias"];
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .kv_dim = 24, .cross = true}, w);
  SdpaParams p;
  p.kv_lens = fx.ints("torch_cross.kv_lens");
  const Tensor x = fx["torch_cross.x"], mem = fx["torch_cross.mem"], want = fx["torch_cross.out"];
  expect_close(mha.forward(x, mem, p), want, "torch MHA cross, oneDNN");
  check_no_ref(mha.impl_info());
  CrossMemory cm = mha.project_memory(mem);
  expect_close(mha.forward(x, cm, p), want, "torch MHA cross, prepared memory");
  check_no_ref(mha.impl_info());
  mha.set_backend(SdpaBackend::naive);
  expect_close(mha.forward(x, mem, p), want, "torch MHA cross, naive");
}

TEST_CASE("mha: GQA self-attention (Hq 4, Hkv 2): causal, sliding window, padding") {
  Fixture fx("mha.safetensors");
  const Tensor x = fx["gqa_self.x"];
  for (SdpaBackend be : {SdpaBackend::onednn, SdpaBackend::fused, SdpaBackend::naive}) {
    MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 2}, gqa_weights(fx, "gqa_self"));
    mha.set_backend(be);
    const char* bn = be == SdpaBackend::onednn ? "oneDNN" : be == SdpaBackend::fused ? "fused" : "naive";
    SdpaParams p;
    p.causal = true;
    expect_close(mha.forward(x, p), fx["gqa_self.out_causal"], std::string("GQA causal, ") + bn);
    p.window = 3;
    expect_close(mha.forward(x, p), fx["gqa_self.out_window"], std::string("GQA causal+window 3, ") + bn);
    p.window = 0;
    p.kv_lens = fx.ints("gqa_self.kv_lens");
    expect_close(mha.forward(x, p), fx["gqa_self.out_pad"], std::string("GQA causal+padding, ") + bn);
    if (be == SdpaBackend::onednn) check_no_ref(mha.impl_info());
  }
}

TEST_CASE("mha: MQA cross-attention (Hq 4, Hkv 1, memory width 24, padding)") {
  Fixture fx("mha.safetensors");
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 1, .kv_dim = 24, .cross = true},
                         gqa_weights(fx, "mqa_cross"));
  SdpaParams p;
  p.kv_lens = fx.ints("mqa_cross.kv_lens");
  expect_close(mha.forward(fx["mqa_cross.x"], fx["mqa_cross.mem"], p), fx["mqa_cross.out"], "MQA cross");
  expect_close(mha.forward(fx["mqa_cross.x"], mha.project_memory(fx["mqa_cross.mem"]), p), fx["mqa_cross.out"],
               "MQA cross, prepared memory");
  check_no_ref(mha.impl_info());
}

TEST_CASE("mha: KV-cached decoding step by step == all at once (GQA, window, padding)") {
  Fixture fx("mha.safetensors");
  const Tensor x = fx["gqa_self.x"];  // [2, 7, 32]
  const int64_t B = x.size(0), L = x.size(1);
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 2}, gqa_weights(fx, "gqa_self"));
  for (int64_t w : {0, 3, -1}) {  // -1: window 0 on the fused backend
    const bool fused = w < 0;
    const int64_t window = fused ? 0 : w;
    const std::string tag = ", window " + std::to_string(window) + (fused ? ", fused" : ", oneDNN");
    mha.set_backend(fused ? SdpaBackend::fused : SdpaBackend::onednn);
    SdpaParams p;
    p.causal = true;
    p.window = window;
    const Tensor full = mha.forward(x, p);
    // Prefill 3 positions at once, then one position per step.
    KVCache cache = mha.make_cache(B, 16);
    const void* kbuf = cache.keys().raw();
    Tensor steps = Tensor::zeros(full.shape());
    put_rows(steps, mha.forward(rows(x, 0, 3), cache, p), 0);
    for (int64_t t = 3; t < L; ++t) {
      put_rows(steps, mha.forward(rows(x, t, t + 1), cache, p), t);
      if (mha.impl_info().back() != "sdpa: fused") check_no_ref(mha.impl_info());
    }
    CHECK(cache.size() == L);
    CHECK(cache.keys().raw() == kbuf);  // appended in place, never reallocated
    expect_close(steps, full, "decode vs all-at-once" + tag);
    expect_close(steps, fx[window ? "gqa_self.out_window" : "gqa_self.out_causal"], "decode vs PyTorch" + tag);
  }
  KVCache small = mha.make_cache(B, 2);
  SdpaParams p;
  p.causal = true;
  CHECK_THROWS_AS(mha.forward(rows(x, 0, 3), small, p), InternalError);
}

TEST_CASE("mha: cross-attention memory projected once, reused by every decode step") {
  Fixture fx("mha.safetensors");
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 1, .kv_dim = 24, .cross = true},
                         gqa_weights(fx, "mqa_cross"));
  const Tensor x = fx["mqa_cross.x"], mem = fx["mqa_cross.mem"];
  SdpaParams p;
  p.kv_lens = fx.ints("mqa_cross.kv_lens");
  const CrossMemory cm = mha.project_memory(mem);
  CHECK(cm.length() == 9);
  Tensor steps = Tensor::zeros({x.size(0), x.size(1), 32});
  for (int64_t t = 0; t < x.size(1); ++t) put_rows(steps, mha.forward(rows(x, t, t + 1), cm, p), t);
  expect_close(steps, fx["mqa_cross.out"], "cross decode steps vs PyTorch");
  mha.set_backend(SdpaBackend::fused);
  for (int64_t t = 0; t < x.size(1); ++t) put_rows(steps, mha.forward(rows(x, t, t + 1), cm, p), t);
  expect_close(steps, fx["mqa_cross.out"], "cross decode steps vs PyTorch, fused");
}

TEST_CASE("mha: KV cache beam reorder") {
  KVCache c(3, 1, 2, 4);
  Tensor k = Tensor::from({3, 1, 1, 2}, {0, 1, 10, 11, 20, 21});
  c.append(k, k);
  c.reorder({2, 2, 0});
  const Tensor keys = c.keys().contiguous();
  CHECK(keys.f32()[0] == 20);
  CHECK(keys.f32()[2] == 20);
  CHECK(keys.f32()[4] == 0);
  CHECK(keys.f32()[5] == 1);
  CHECK_THROWS_AS(c.reorder({0, 1}), InternalError);
}

TEST_CASE("mha: mis-shaped weights are ModelErrors naming the weight and both shapes") {
  MhaWeights w;
  w.q_w = randn({32, 32}, 1), w.k_w = randn({16, 32}, 2), w.v_w = randn({16, 24}, 3), w.o_w = randn({32, 32}, 4);
  try {
    MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 2}, w);
    FAIL("no error");
  } catch (const ModelError& e) {
    CHECK(e.subject() == "v_proj.weight");
    CHECK(std::string(e.what()).find("[16, 24]") != std::string::npos);
    CHECK(std::string(e.what()).find("[16, 32]") != std::string::npos);
  }
  CHECK_THROWS_AS(MultiHeadAttention({.d_model = 32, .n_heads = 4, .n_kv_heads = 3}, w), ModelError);
  w.v_w = randn({16, 32}, 3);
  MultiHeadAttention ok({.d_model = 32, .n_heads = 4, .n_kv_heads = 2}, w);
  CHECK_THROWS_AS(ok.forward(randn({2, 5, 31}, 5)), InternalError);
}

TEST_CASE("mha: bf16 projection weights stay close to PyTorch f32 (and run no ref kernel)") {
  Fixture fx("mha.safetensors");
  MultiHeadAttention mha({.d_model = 32, .n_heads = 4, .n_kv_heads = 2, .weight_dtype = DType::bf16},
                         gqa_weights(fx, "gqa_self"));
  SdpaParams p;
  p.causal = true;
  expect_close(mha.forward(fx["gqa_self.x"], p), fx["gqa_self.out_causal"], "GQA causal, bf16 weights", 2e-2f);
  // oneDNN 2.6 has bf16 matmul kernels only from AVX-512 up; older CPUs may run ref ones.
  if (__builtin_cpu_supports("avx512f")) check_no_ref(mha.impl_info());
}
