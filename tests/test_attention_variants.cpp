// Additive (Bahdanau), MLA (latent, absorbed vs expanded), linear attention (elu+1) and DIN
// target attention: each against its naive reference and PyTorch fixtures, plus shape errors.
#include <doctest/doctest.h>

#include <functional>
#include <random>

#include "attention/additive.hpp"
#include "attention/din.hpp"
#include "attention/linear_attention.hpp"
#include "attention/mla.hpp"
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

Tensor randn(const Shape& s, uint32_t seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(g);
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what, float tol = 1e-5f) {
  REQUIRE(got.shape() == want.shape());
  const float d = max_abs_diff(got, want);
  MESSAGE(what << ": max diff " << d);
  CHECK(d < tol);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor rows(const Tensor& x, int64_t from, int64_t to) { return x.slice(1, from, to).contiguous(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("sdpa fixtures: naive and oneDNN vs PyTorch softmax(QK^T*scale+mask)V") {
  Fixture fx("sdpa.safetensors");
  SdpaOneDNN sdpa;
  for (const char* c : {"mha", "gqa_causal", "mqa_pad", "gqa_window", "decode_pad"}) {
    const std::string n = c;
    SdpaParams p;
    const auto params = fx.ints(n + ".params");
    p.causal = params[0] != 0;
    p.window = params[1];
    if (fx.f.has(n + ".kv_lens")) p.kv_lens = fx.ints(n + ".kv_lens");
    const Tensor q = fx[n + ".q"], k = fx[n + ".k"], v = fx[n + ".v"], want = fx[n + ".out"];
    expect_close(sdpa_naive(q, k, v, p), want, n + " naive");
    expect_close(sdpa(q, k, v, p), want, n + " oneDNN");
    for (const auto& s : sdpa.impl_info()) CHECK(s.find("ref") == std::string::npos);
    expect_close(sdpa(q, sdpa.prepare(k, v, q.size(1), q.size(2)), p), want, n + " oneDNN prepared");
  }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("additive: oneDNN path and naive vs PyTorch (Dq 12 != Dk 20, padding)") {
  Fixture fx("additive.safetensors");
  const Tensor wq = fx["q_proj.weight"], bq = fx["q_proj.bias"], wk = fx["k_proj.weight"], bk = fx["k_proj.bias"],
               wv = fx["v.weight"];
  const Tensor q = fx["q"], k = fx["k"], v = fx["v"];
  SdpaParams m;
  m.kv_lens = fx.ints("kv_lens");
  AdditiveAttention att(wq, bq, wk, bk, wv);
  Tensor w1, w2;
  expect_close(att.forward(q, k, v, m, &w1), fx["out"], "additive out");
  expect_close(w1, fx["weights"], "additive weights");
  expect_close(additive_attention_naive(q, k, v, wq, bq, wk, bk, wv, m, &w2), fx["out"], "additive naive out");
  expect_close(w2, fx["weights"], "additive naive weights");
  // keys projected once, reused
  const Tensor kp = att.project_keys(k);
  expect_close(att.forward_projected(q, kp, v, m), fx["out"], "additive, projected keys");
  // padded keys get exactly zero weight; rows sum to 1
  for (int64_t i = 0; i < 3; ++i) {
    float sum = 0;
    for (int64_t j = 0; j < 6; ++j) sum += w1.f32()[(1 * 3 + i) * 6 + j];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(w1.f32()[(1 * 3 + i) * 6 + 4] == 0.f);
    CHECK(w1.f32()[(1 * 3 + i) * 6 + 5] == 0.f);
  }
}

TEST_CASE("additive: causal mask, empty rows, long keys (several tanh tiles), errors") {
  const int64_t B = 2, Lq = 5, Lk = 300, Dq = 7, Dk = 9, A = 40, Dv = 3;
  const Tensor wq = randn({A, Dq}, 1, 0.3f), wk = randn({A, Dk}, 2, 0.3f), wv = randn({1, A}, 3), bk = randn({A}, 4);
  const Tensor q = randn({B, Lq, Dq}, 5), k = randn({B, Lk, Dk}, 6), v = randn({B, Lk, Dv}, 7);
  AdditiveAttention att(wq, Tensor(), wk, bk, wv);
  SdpaParams m;
  m.causal = true;
  m.kv_lens = {300, 0};
  const Tensor got = att.forward(q, k, v, m), want = additive_attention_naive(q, k, v, wq, Tensor(), wk, bk, wv, m);
  expect_close(got, want, "additive causal, Lk 300");
  for (int64_t i = Lq * Dv; i < 2 * Lq * Dv; ++i) CHECK(got.f32()[i] == 0.f);  // batch 1: no keys
  std::string e = error_of([&] { att.forward(randn({B, Lq, Dq + 1}, 8), k, v); });
  CHECK(e.find("[2, 5, 8]") != std::string::npos);
  CHECK(e.find("[2, 300, 9]") != std::string::npos);
  e = error_of([&] { AdditiveAttention(wq, Tensor(), randn({A + 1, Dk}, 9), Tensor(), wv); });
  CHECK(e.find("[41, 9]") != std::string::npos);
  CHECK(e.find("[40, 9]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
MlaWeights mla_weights(const Fixture& fx) {
  return {fx["q_proj.weight"], fx["kv_a_proj.weight"], fx["kv_b_proj.weight"], fx["o_proj.weight"]};
}

TEST_CASE("mla: absorbed == expanded == PyTorch, causal and padding") {
  Fixture fx("mla.safetensors");
  const auto dims = fx.ints("dims");  // H, dqk, dv, r
  MultiHeadLatentAttention mla({.d_model = 32, .n_heads = dims[0], .qk_head_dim = dims[1], .v_head_dim = dims[2],
                                .kv_rank = dims[3]},
                               mla_weights(fx));
  const Tensor x = fx["x"];
  SdpaParams causal;
  causal.causal = true;
  SdpaParams pad;
  pad.kv_lens = fx.ints("kv_lens");
  const Tensor abs_c = mla.forward(x, causal), exp_c = mla.forward_expanded(x, causal);
  expect_close(abs_c, exp_c, "MLA absorbed vs expanded, causal");
  expect_close(abs_c, fx["out_causal"], "MLA absorbed vs PyTorch, causal");
  expect_close(exp_c, fx["out_causal"], "MLA expanded vs PyTorch, causal");
  expect_close(mla.forward(x, pad), fx["out_pad"], "MLA absorbed vs PyTorch, padding");
  expect_close(mla.forward_expanded(x, pad), fx["out_pad"], "MLA expanded vs PyTorch, padding");
  for (const auto& s : mla.impl_info()) {
    INFO(s);
    CHECK(s.find("ref") == std::string::npos);
  }
}

TEST_CASE("mla: latent cache holds r floats per token; decode step by step == all at once") {
  Fixture fx("mla.safetensors");
  const auto dims = fx.ints("dims");
  MultiHeadLatentAttention mla({.d_model = 32, .n_heads = dims[0], .qk_head_dim = dims[1], .v_head_dim = dims[2],
                                .kv_rank = dims[3]},
                               mla_weights(fx));
  const Tensor x = fx["x"];  // [2, 7, 32]
  SdpaParams p;
  p.causal = true;
  LatentCache cache = mla.make_cache(2, 10);
  CHECK(cache.floats_per_token() == dims[3]);
  CHECK(cache.buffer().numel() == 2 * 10 * dims[3]);  // B * capacity * r, nothing else is cached
  Tensor steps = Tensor::zeros({2, 7, 32});
  for (int64_t t = 0; t < 7; ++t) {
    const Tensor y = mla.forward(rows(x, t, t + 1), cache, p);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 32; ++c) steps.f32()[(b * 7 + t) * 32 + c] = y.f32()[b * 32 + c];
  }
  CHECK(cache.size() == 7);
  expect_close(steps, mla.forward(x, p), "MLA decode vs all at once");
  expect_close(steps, fx["out_causal"], "MLA decode vs PyTorch");
  std::string e = error_of([&] { MultiHeadLatentAttention({32, 4, 8, 6, 12}, {fx["q_proj.weight"], fx["kv_a_proj.weight"], fx["q_proj.weight"], fx["o_proj.weight"]}); });
  CHECK(e.find("[32, 32]") != std::string::npos);  // kv_b_proj given the q_proj weight
  CHECK(e.find("[56, 12]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("linear attention: fast paths == O(n^2) naive == PyTorch") {
  Fixture fx("linear.safetensors");
  const Tensor q = fx["q"], k = fx["k"], v = fx["v"];
  const auto lens = fx.ints("kv_lens");
  expect_close(linear_attention(q, k, v, false), fx["out_noncausal"], "linear non-causal");
  expect_close(linear_attention(q, k, v, true), fx["out_causal"], "linear causal (prefix sums)");
  expect_close(linear_attention(q, k, v, false, lens), fx["out_pad"], "linear non-causal, padding");
  expect_close(linear_attention_naive(q, k, v, false), fx["out_noncausal"], "linear naive non-causal");
  expect_close(linear_attention_naive(q, k, v, true), fx["out_causal"], "linear naive causal");
  expect_close(linear_attention_naive(q, k, v, false, lens), fx["out_pad"], "linear naive padding");
}

TEST_CASE("linear attention: recurrent state decode == causal; Lq < Lk; padding; errors") {
  const int64_t B = 2, H = 3, L = 40, D = 16, Dv = 8;
  const Tensor q = randn({B, H, L, D}, 1), k = randn({B, H, L, D}, 2), v = randn({B, H, L, Dv}, 3);
  const Tensor full = linear_attention(q, k, v, true);
  expect_close(full, linear_attention_naive(q, k, v, true), "causal L 40 vs naive");
  LinearAttentionState st(B, H, D, Dv);
  Tensor steps = Tensor::zeros({B, H, L, Dv});
  int64_t t = 0;
  for (int64_t chunk : {5, 1, 1, 10, 23}) {
    const Tensor y = st.step(q.slice(2, t, t + chunk), k.slice(2, t, t + chunk), v.slice(2, t, t + chunk));
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t i = 0; i < chunk; ++i)
        for (int64_t e = 0; e < Dv; ++e)
          steps.f32()[(bh * L + t + i) * Dv + e] = y.f32()[(bh * chunk + i) * Dv + e];
    t += chunk;
  }
  CHECK(st.size() == L);
  expect_close(steps, full, "recurrent state vs causal");
  // The last 6 queries against all keys (causal offset), and causal with padding.
  const Tensor qs = q.slice(2, L - 6, L);
  expect_close(linear_attention(qs, k, v, true, {40, 17}), linear_attention_naive(qs, k, v, true, {40, 17}),
               "causal Lq 6 < Lk 40, padding");
  std::string e = error_of([&] { linear_attention(q, randn({B, H, L, D + 1}, 4), v, false); });
  CHECK(e.find("[2, 3, 40, 17]") != std::string::npos);
  CHECK(e.find("[2, 3, 40, 16]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
std::vector<DinLayer> din_layers(const Fixture& fx) {
  return {{fx["mlp.0.weight"], fx["mlp.0.bias"]}, {fx["mlp.2.weight"], fx["mlp.2.bias"]},
          {fx["mlp.4.weight"], fx["mlp.4.bias"]}};
}

TEST_CASE("din: activation unit MLP vs PyTorch and the naive reference, padding") {
  Fixture fx("din.safetensors");
  TargetAttention din(din_layers(fx), ops::Act::sigmoid);
  const Tensor q = fx["q"], hist = fx["hist"];
  const auto lens = fx.ints("lens");
  Tensor s1, s2;
  expect_close(din.forward(q, hist, hist, lens, &s1), fx["out"], "DIN out");
  expect_close(s1, fx["scores"], "DIN scores");
  expect_close(din_attention_naive(q, hist, hist, lens, din_layers(fx), ops::Act::sigmoid, &s2), fx["out"],
               "DIN naive out");
  expect_close(s2, fx["scores"], "DIN naive scores");
  for (int64_t j = 0; j < 5; ++j) CHECK(s1.f32()[2 * 5 + j] == 0.f);  // lens 0: all padding
}

TEST_CASE("din: a hand-built unit weights the history item most like the candidate highest") {
  // D = 4 one-hot-ish items. One hidden unit reads only the q*k block (the dot product q.k) with
  // a sigmoid; the scoring layer passes it through. Scores are sigmoid(q.k): no softmax, so an
  // unrelated item keeps its own (smaller) weight instead of sharing a budget.
  const int64_t D = 4;
  Tensor w1 = Tensor::zeros({1, 4 * D});
  for (int64_t c = 0; c < D; ++c) w1.f32()[3 * D + c] = 4.f;
  const Tensor w2 = Tensor::from({1, 1}, {1.f});
  TargetAttention din({{w1, Tensor()}, {w2, Tensor()}}, ops::Act::sigmoid);
  const Tensor hist = Tensor::from({1, 3, D}, {1, 0, 0, 0,  /* shoes */
                                               0, 1, 0, 0,  /* books */
                                               0, 0, 1, 0 /* music */});
  const Tensor cand = Tensor::from({1, D}, {0.1f, 0.9f, 0.2f, 0});  // a book-like candidate
  Tensor s;
  const Tensor out = din.forward(cand, hist, hist, {}, &s);
  MESSAGE("scores " << s.f32()[0] << " " << s.f32()[1] << " " << s.f32()[2]);
  CHECK(s.f32()[1] > s.f32()[0]);
  CHECK(s.f32()[1] > s.f32()[2]);
  CHECK(s.f32()[1] == doctest::Approx(1.0 / (1.0 + std::exp(-3.6))).epsilon(1e-5));
  CHECK(s.f32()[0] + s.f32()[1] + s.f32()[2] > 1.5f);  // not normalised
  CHECK(out.f32()[1] == doctest::Approx(s.f32()[1]));   // out = sum_j s_j k_j
  std::string e = error_of([&] { TargetAttention({{w1, Tensor()}, {Tensor::zeros({2, 1}), Tensor()}}); });
  CHECK(e.find("[2, 1]") != std::string::npos);
  e = error_of([&] { din.forward(Tensor::zeros({2, D}), hist, hist); });
  CHECK(e.find("[2, 4]") != std::string::npos);
  CHECK(e.find("[1, 3, 4]") != std::string::npos);
}
