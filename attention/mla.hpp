// Multi-head latent attention (MLA, DeepSeek-V2 style) without the decoupled RoPE part: our
// models use learned absolute positions, so every query/key dimension is position-free and the
// whole K/V can live in the latent. (A decoupled RoPE key would add dr dims per token to the
// cache; not implemented.) No biases and no latent norm (DeepSeek's kv_a_layernorm), which
// keeps the absorption exact.
//
//   x [B, L, d]
//   q_h = x Wq_h^T                      [L, dqk]   Wq   = q_proj.weight     [H*dqk, d]
//   c   = x Wdkv^T                      [L, r]     Wdkv = kv_a_proj.weight  [r, d]    <- cached
//   k_h = c Wuk_h^T,  v_h = c Wuv_h^T   [L, dqk], [L, dv]
//                                                  kv_b_proj.weight [H*(dqk+dv), r]: per head h
//                                                  the rows [Wuk_h (dqk rows); Wuv_h (dv rows)]
//   o   = concat_h softmax(q_h k_h^T / sqrt(dqk) + mask) v_h,  out = o Wo^T
//                                                  Wo = o_proj.weight [d, H*dv]
//
// Absorbed inference (what forward() runs): q_h k_h^T = (x Wq_h^T Wuk_h) c^T, and
// softmax(.) v_h Wo_h^T = (softmax(.) c) (Wo_h Wuv_h)^T. So at construction
//   Wq_abs[h] = Wuk_h^T Wq_h   [r, d]   (stacked: [H*r, d])
//   Wo_abs[h] = Wo_h Wuv_h     [d, r]   (side by side: [d, H*r])
// are precomputed (in double), and attention becomes MQA over the latent: every head attends
// to the same K = V = c [B, 1, L, r] with scale 1/sqrt(dqk), through SdpaOneDNN. The cache holds
// only c: r floats per token, versus H*(dqk+dv) for the expanded K and V.
//
// forward_expanded() is the naive reference: it materialises K and V per head.
#pragma once
#include <vector>

#include "attention/mha.hpp"
#include "attention/sdpa.hpp"
#include "core/ops.hpp"

namespace xmodal::attn {

struct MlaConfig {
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t qk_head_dim = 0;  // dqk
  int64_t v_head_dim = 0;   // dv
  int64_t kv_rank = 0;      // r, the latent width
  float scale = 0.f;        // 0 = 1/sqrt(qk_head_dim)
};

struct MlaWeights {
  Tensor q_w;     // q_proj.weight    [H*dqk, d]
  Tensor kv_a_w;  // kv_a_proj.weight [r, d]
  Tensor kv_b_w;  // kv_b_proj.weight [H*(dqk+dv), r]
  Tensor o_w;     // o_proj.weight    [d, H*dv]
};

// The latent cache: c [B, capacity, r], appended one step (or chunk) at a time, no allocation.
class LatentCache {
 public:
  LatentCache() = default;
  LatentCache(int64_t batch, int64_t rank, int64_t capacity);
  void append(const Tensor& c_new);  // c_new [B, T, r] (any strides)
  Tensor latent() const;             // [B, 1, size, r] view: K and V of the absorbed attention
  int64_t size() const { return len_; }
  int64_t capacity() const { return c_.dim() == 3 ? c_.size(1) : 0; }
  int64_t floats_per_token() const { return c_.dim() == 3 ? c_.size(2) : 0; }  // r per batch item
  const Tensor& buffer() const { return c_; }
  void clear() { len_ = 0; }

 private:
  Tensor c_;
  int64_t len_ = 0;
};

class MultiHeadLatentAttention {
 public:
  MultiHeadLatentAttention() = default;
  // ModelError naming the weight and both shapes on a mismatch.
  MultiHeadLatentAttention(const MlaConfig& cfg, const MlaWeights& w);

  // Absorbed. x [B, L, d] -> [B, L, d]
  Tensor forward(const Tensor& x, const SdpaParams& mask = {}) const;
  // Absorbed, incremental: x [B, T, d] are the next T positions; their latents are appended to
  // cache and they attend to all of it. -> [B, T, d]
  Tensor forward(const Tensor& x, LatentCache& cache, const SdpaParams& mask = {}) const;
  LatentCache make_cache(int64_t batch, int64_t capacity) const;

  // Naive expanded reference (per-head K and V materialised, sdpa_naive). x [B,L,d] -> [B,L,d]
  Tensor forward_expanded(const Tensor& x, const SdpaParams& mask = {}) const;

  const MlaConfig& config() const { return c_; }
  std::vector<std::string> impl_info() const;

 private:
  // qa [B, H, Lq, r] view, latent [B, 1, Lk, r] -> [B, Lq, d]
  Tensor attend(const Tensor& qa, const Tensor& latent, const SdpaParams& mask) const;
  MlaConfig c_;
  ops::Linear q_abs_, kv_a_, o_abs_;  // absorbed path
  ops::Linear q_, kv_b_, o_;          // expanded reference
  mutable SdpaOneDNN sdpa_;
  mutable Tensor heads_out_;
};

}  // namespace xmodal::attn
