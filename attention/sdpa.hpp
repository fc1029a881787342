// Scaled dot-product attention: out = softmax(Q K^T * scale + mask) V, per (batch, head).
//
// Layouts (row-major, f32 unless a path says otherwise):
//   q   [B, Hq,  Lq, D ]      k [B, Hkv, Lk, D]      v [B, Hkv, Lk, Dv]
//   out [B, Hq,  Lq, Dv]
// Hq % Hkv == 0: query head h reads kv head h / (Hq / Hkv). Hkv == Hq is MHA, 1 is MQA,
// anything between is GQA.
//
// Masking (all optional, combined):
//   causal:  query i may see key j iff j <= i + (Lk - Lq)   (queries are the last Lq positions,
//            which is what a KV-cached decode step needs)
//   window:  if > 0, additionally j > i + (Lk - Lq) - window   (sliding-window / local)
//   kv_lens: if non-empty, one length per batch item; keys j >= kv_lens[b] are padding
// A query row with no visible key produces zeros (never NaN).
//
// Three implementations with identical semantics:
//   sdpa_naive  - the reference: plain loops, double accumulation (attention/sdpa.cpp)
//   SdpaOneDNN  - oneDNN composition: matmul (scale post-op) -> softmax -> matmul,
//                 primitives cached per shape (attention/sdpa_onednn.cpp)
//   sdpa_fused  - tiled online-softmax kernel, AVX-512 with AVX2 and scalar fallbacks chosen
//                 at run time (attention/sdpa_fused.cpp)
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace xmodal::attn {

struct SdpaParams {
  float scale = 0.f;  // 0 means 1/sqrt(D)
  bool causal = false;
  int64_t window = 0;            // 0 = no sliding window
  std::vector<int32_t> kv_lens;  // empty = no padding mask; else size B
};

// Validates shapes/params and throws InternalError naming every shape on a mismatch.
void check_sdpa_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p);

Tensor sdpa_naive(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p = {});
Tensor sdpa_fused(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p = {});

}  // namespace xmodal::attn
