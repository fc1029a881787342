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
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <dnnl.hpp>

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

// The scale actually used: p.scale, or 1/sqrt(D) when p.scale == 0.
inline float sdpa_scale(const SdpaParams& p, int64_t d) {
  return p.scale != 0.f ? p.scale : 1.f / std::sqrt(static_cast<float>(d));
}

// Keys visible to query row i of batch item b: [lo, hi). Empty (lo >= hi) means the row is
// fully masked and its output is zeros. The single definition of the mask semantics above,
// shared by every implementation.
struct KeyRange {
  int64_t lo, hi;
  bool empty() const { return lo >= hi; }
};
inline KeyRange visible_keys(const SdpaParams& p, int64_t b, int64_t i, int64_t lq, int64_t lk) {
  const int64_t pos = i + (lk - lq);  // absolute position of query i among the keys
  int64_t lo = 0, hi = lk;
  if (p.causal) hi = std::min(hi, pos + 1);
  if (p.window > 0) lo = std::max<int64_t>(lo, pos - p.window + 1);
  if (!p.kv_lens.empty()) hi = std::min<int64_t>(hi, p.kv_lens[static_cast<size_t>(b)]);
  return {lo, hi};
}

Tensor sdpa_naive(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p = {});
Tensor sdpa_fused(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p = {});

// oneDNN composition. For each (b, kv head) the Hq/Hkv query heads that share the kv head are
// stacked, so Q is viewed as [B, Hkv, G*Lq, D] (G = Hq/Hkv) and one batched matmul serves MHA,
// GQA and MQA, with or without masks:
//   S = Q K^T            matmul, output scale = scale, binary-add post-op with the mask
//                        (shaped {B,1,G*Lq,Lk} for causal/window, {B,1,1,Lk} for padding only)
//   P = softmax(S)       softmax primitive over the last axis, in place
//   O = P V              matmul, written straight into out [B, Hq, Lq, Dv]
// then the output rows of fully masked queries are zeroed. Masked scores get -FLT_MAX (not
// -inf), so softmax never produces NaN.
//
// Primitives come from the process-wide PrimitiveCache, keyed by shapes, strides, mask kind and
// scale; the first call for a shape creates them, later calls only execute. An instance holds
// scratch buffers (scores, mask) that grow to the largest shape seen: use one instance per
// thread. Inputs may be f32 or bf16 (all three the same dtype; bf16 accumulates in f32, the
// scores and output are f32).
class SdpaOneDNN {
 public:
  // out [B, Hq, Lq, Dv] f32, allocated.
  Tensor operator()(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p = {});
  // out must be a contiguous f32 [B, Hq, Lq, Dv]; nothing is allocated once the scratch buffers
  // have grown to this shape.
  void run(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p, Tensor& out);

  // K/V reordered once into the layouts the matmuls prefer for queries of q_heads x lq rows
  // (the "prepared" path: cross-attention memory, or any K/V reused by many queries). Running
  // with a different Lq still works (the primitives are created for the prepared layout).
  struct Prepared {
    Shape k_shape, v_shape;  // the logical [B, Hkv, Lk, D] / [B, Hkv, Lk, Dv]
    DType dtype = DType::f32;
    int64_t q_heads = 0;
    dnnl::memory::desc kt_md, v_md;  // K^T [B, Hkv, D, Lk] and V in the chosen layouts
    Tensor kt_buf, v_buf;            // raw storage (u8) for those layouts
    std::vector<std::string> impl;   // the reorders used
  };
  Prepared prepare(const Tensor& k, const Tensor& v, int64_t q_heads, int64_t lq = 1);
  Tensor operator()(const Tensor& q, const Prepared& kv, const SdpaParams& p = {});
  void run(const Tensor& q, const Prepared& kv, const SdpaParams& p, Tensor& out);

  // impl_info_str() of the primitives executed by the last call: "matmul qk: brg:avx512_core",
  // "softmax: jit:avx512_common", "matmul pv: ...". Tests assert none of them is a ref kernel.
  const std::vector<std::string>& impl_info() const { return impl_; }

 private:
  void run_impl(const Tensor& q, const dnnl::memory::desc& kt_md, const void* kt, const dnnl::memory::desc& v_md,
                const void* vdata, const Shape& k_shape, const Shape& v_shape, const SdpaParams& p, Tensor& out);
  Tensor scores_, probs_, mask_;
  std::string mask_sig_;  // what mask_ currently holds
  std::vector<std::string> impl_;
};

// impl_info_str() of a created primitive, e.g. "brg:avx512_core".
std::string impl_info_of(const dnnl::primitive& prim);

}  // namespace xmodal::attn
