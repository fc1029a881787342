// Additive (Bahdanau) attention: the query and key widths may differ.
//
//   q [B, Lq, Dq]   k [B, Lk, Dk]   v [B, Lk, Dv]
//   score[b,i,j] = w_v . tanh(W_q q_i + b_q + W_k k_j + b_k)          (A = attention width)
//   p[b,i,:]     = softmax over the visible keys j (masks as in attention/sdpa.hpp: causal,
//                  window, kv_lens; SdpaParams::scale is not used); a fully masked row is zeros
//   out [B, Lq, Dv] = sum_j p_ij v_j,   weights [B, Lq, Lk] = p (optional)
//
// Weights (PyTorch layout, the names a model stores them under):
//   q_proj.weight [A, Dq]   q_proj.bias [A] (optional)
//   k_proj.weight [A, Dk]   k_proj.bias [A] (optional)
//   v.weight      [1, A] or [A]   (the scoring vector w_v; a bias on it would cancel in softmax)
// The two biases are folded into the query projection (b_q + b_k). Projections are ops::Linear
// (oneDNN); tanh runs as a oneDNN eltwise over [rows, Lk, A] tiles; P V is a oneDNN matmul.
// Cost is O(B Lq Lk A) tanh evaluations: this scorer suits short memories.
#pragma once
#include "attention/sdpa.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace xmodal::attn {

class AdditiveAttention {
 public:
  AdditiveAttention() = default;
  // Shapes are checked: ModelError naming the weight ("k_proj.weight", ...) and both shapes.
  AdditiveAttention(const Tensor& w_q, const Tensor& b_q, const Tensor& w_k, const Tensor& b_k, const Tensor& w_v);

  // k [B, Lk, Dk] -> [B, Lk, A]: the projected keys, computed once per memory and reused.
  Tensor project_keys(const Tensor& k) const;
  // q [B, Lq, Dq], k [B, Lk, Dk], v [B, Lk, Dv] -> [B, Lq, Dv]; weights (if given) <- [B, Lq, Lk]
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& mask = {},
                 Tensor* weights = nullptr) const;
  // Same, with keys already projected: kp [B, Lk, A].
  Tensor forward_projected(const Tensor& q, const Tensor& kp, const Tensor& v, const SdpaParams& mask = {},
                           Tensor* weights = nullptr) const;

  int64_t attn_dim() const { return A_; }
  int64_t query_dim() const { return Dq_; }
  int64_t key_dim() const { return Dk_; }

 private:
  ops::Linear q_, k_;
  Tensor w_v_;  // [A]
  int64_t A_ = 0, Dq_ = 0, Dk_ = 0;
};

// The reference: plain loops, double accumulation, same semantics and weights (biases optional,
// pass undefined Tensors). q [B,Lq,Dq], k [B,Lk,Dk], v [B,Lk,Dv] -> [B,Lq,Dv]
Tensor additive_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w_q,
                                const Tensor& b_q, const Tensor& w_k, const Tensor& b_k, const Tensor& w_v,
                                const SdpaParams& mask = {}, Tensor* weights = nullptr);

}  // namespace xmodal::attn
