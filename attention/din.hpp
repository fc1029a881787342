// Target-aware attention from DIN (Deep Interest Network, Zhou et al. 2018): a candidate item q
// weighs each history item k_j with an "activation unit" MLP over [q, k_j, q - k_j, q * k_j],
// and the history is summed with those weights. There is no softmax: the weights keep their
// magnitude (how strongly the history matches the candidate), as in the paper.
//
//   q [B, D]   keys [B, T, D]   values [B, T, Dv] (DIN uses values = keys)   lens [B]
//   score[b,j] = MLP([q_b, k_bj, q_b - k_bj, q_b * k_bj])   (0 for padding j >= lens[b])
//   out [B, Dv] = sum_j score[b,j] v_bj
//
// The MLP: hidden Linear layers each followed by `hidden_act`, then a final Linear to 1 output
// (no activation). The activation is chosen by the model; the fixtures use sigmoid (DIN's
// reference code uses PReLU/Dice; sigmoid needs no extra learned parameters and is fused as a
// oneDNN post-op). Weight names follow nn.Sequential: mlp.0.weight [H1, 4D], mlp.0.bias [H1],
// mlp.2.weight [H2, H1], ..., mlp.<last>.weight [1, H_last], mlp.<last>.bias [1].
#pragma once
#include <vector>

#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace xmodal::attn {

struct DinLayer {
  Tensor w;  // [out, in]
  Tensor b;  // [out] (optional)
};

class TargetAttention {
 public:
  TargetAttention() = default;
  // layers: hidden layers then the scoring layer (out = 1). ModelError naming "mlp layer i"
  // with both shapes when the widths do not chain.
  TargetAttention(const std::vector<DinLayer>& layers, ops::Act hidden_act = ops::Act::sigmoid);

  // q [B, D], keys [B, T, D], values [B, T, Dv], lens (empty = all T valid) -> [B, Dv];
  // scores (if given) <- [B, T]
  Tensor forward(const Tensor& q, const Tensor& keys, const Tensor& values, const std::vector<int32_t>& lens = {},
                 Tensor* scores = nullptr) const;

  int64_t item_dim() const { return D_; }

 private:
  std::vector<ops::Linear> mlp_;
  int64_t D_ = 0;
};

// The reference: plain loops in double with the same layers and activation.
Tensor din_attention_naive(const Tensor& q, const Tensor& keys, const Tensor& values, const std::vector<int32_t>& lens,
                           const std::vector<DinLayer>& layers, ops::Act hidden_act, Tensor* scores = nullptr);

}  // namespace xmodal::attn
