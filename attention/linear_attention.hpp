// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): the softmax kernel is
// replaced by phi(q) . phi(k) with phi(x) = elu(x) + 1 (> 0), so
//   out_i = phi(q_i)^T S / (phi(q_i)^T z + eps),   S = sum_j phi(k_j) v_j^T [D, Dv],  z = sum_j phi(k_j) [D]
// over the keys j that query i may see. eps = 1e-6 by default (as in the paper's code).
//
//   q [B, H, Lq, D]   k [B, H, Lk, D]   v [B, H, Lk, Dv]   ->   out [B, H, Lq, Dv]
//
// Non-causal: S and z are global sums (two oneDNN matmuls); kv_lens excludes padded keys.
// Causal: query i sees keys j <= i + (Lk - Lq) (the attention/sdpa.hpp rule) and kv_lens; S and
// z are running prefix sums, so memory is O(B H D Dv) whatever the length, and decoding one
// token costs O(D Dv) through LinearAttentionState. Sliding windows are not supported.
#pragma once
#include <vector>

#include "core/tensor.hpp"

namespace xmodal::attn {

// The fast path (see above). Throws InternalError carrying the shapes on a mismatch.
Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                        const std::vector<int32_t>& kv_lens = {}, float eps = 1e-6f);

// The reference: the O(Lq Lk) formulation with the full score matrix, double accumulation:
//   out_i = sum_j a_ij v_j / (sum_j a_ij + eps),  a_ij = phi(q_i) . phi(k_j) over visible j
Tensor linear_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                              const std::vector<int32_t>& kv_lens = {}, float eps = 1e-6f);

// Recurrent state for causal decoding: S [B, H, D, Dv] and z [B, H, D], updated in place.
class LinearAttentionState {
 public:
  LinearAttentionState() = default;
  LinearAttentionState(int64_t batch, int64_t heads, int64_t key_dim, int64_t value_dim, float eps = 1e-6f);
  // q, k [B, H, T, D], v [B, H, T, Dv]: the next T positions. Each query sees every earlier
  // position and the new ones up to itself. -> [B, H, T, Dv]
  Tensor step(const Tensor& q, const Tensor& k, const Tensor& v);
  int64_t size() const { return len_; }  // positions consumed
  void clear();

 private:
  Tensor S_, z_;
  float eps_ = 1e-6f;
  int64_t len_ = 0;
};

}  // namespace xmodal::attn
