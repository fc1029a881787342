// Multi-head attention with n_kv_heads (MHA, GQA and MQA on one code path), self- or
// cross-attention, a KV cache for incremental decoding, and a cross-attention memory whose K/V
// are projected (and reordered for oneDNN) once per input and reused at every step.
//
// Shapes: B batch, L/T sequence lengths, Hq query heads, Hkv kv heads, hd head dim.
//   x      [B, L, d_model]   queries (and, for self-attention, keys/values)
//   memory [B, Lm, kv_dim]   what cross-attention reads (image grid, audio frames, ...)
//   out    [B, L, d_model]
//
// Weight names (PyTorch layout [out, in]; the model code loads them by name and passes Tensors):
//   separate   q_proj.weight [Hq*hd, d_model]   q_proj.bias [Hq*hd]       (bias optional)
//              k_proj.weight [Hkv*hd, kv_dim]   k_proj.bias [Hkv*hd]
//              v_proj.weight [Hkv*hd, kv_dim]   v_proj.bias [Hkv*hd]
//   or fused   qkv_proj.weight [(Hq+2*Hkv)*hd, d_model], rows [Q; K; V], qkv_proj.bias
//              (= torch.nn.MultiheadAttention in_proj_weight / in_proj_bias, BLIP vision qkv.*)
//   output     o_proj.weight [d_model, Hq*hd]   o_proj.bias [d_model]
//              (= torch.nn.MultiheadAttention out_proj.weight / out_proj.bias)
// Query head h reads kv head h / (Hq/Hkv) (torch: repeat_interleave of the kv heads).
//
// Masks come as SdpaParams (attention/sdpa.hpp): causal, sliding window, per-sequence kv
// lengths (padding). A fully masked query row gives zeros.
//
// The projections are ops::Linear (oneDNN matmul, packed weights, bias post-op); self-attention
// uses one fused QKV projection (separate weights are concatenated at construction). The
// attention itself is SdpaOneDNN by default (or sdpa_fused / sdpa_naive, see SdpaBackend). A layer holds scratch buffers:
// do not call one layer instance from two threads at once.
#pragma once
#include <string>
#include <vector>

#include "attention/sdpa.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace xmodal::attn {

// x [B, L, W] (unit column stride) -> view [B, H, L, hd] (no copy) of head h = columns
// [col + h*head_stride, col + h*head_stride + hd); head_stride 0 means hd (heads side by side).
Tensor split_heads(const Tensor& x, int64_t col, int64_t heads, int64_t head_dim, int64_t head_stride = 0);
// x [B, H, L, hd] (any strides) -> [B, L, H*hd] contiguous
Tensor merge_heads(const Tensor& x);
// Writes x [B, H, L, hd] (any strides) into out [B, L, H*hd] (contiguous, preallocated).
void merge_heads_into(const Tensor& x, Tensor& out);

// Which SDPA runs inside the layer: the oneDNN composition (default; uses the prepared K/V of a
// CrossMemory), the fused online-softmax kernel (attention/sdpa_fused.cpp; fastest for decode,
// see FACTS.md), or the double-precision reference.
enum class SdpaBackend { onednn, fused, naive };

struct MhaConfig {
  int64_t d_model = 0;     // query width and output width
  int64_t n_heads = 0;     // Hq
  int64_t n_kv_heads = 0;  // Hkv; 0 = n_heads (MHA), 1 = MQA, between = GQA
  int64_t head_dim = 0;    // 0 = d_model / n_heads
  int64_t kv_dim = 0;      // cross-attention memory width; 0 = d_model
  bool cross = false;      // false: self-attention (fused QKV); true: cross (Q from x, K/V from memory)
  float scale = 0.f;       // 0 = 1/sqrt(head_dim)
  DType weight_dtype = DType::f32;  // bf16: bf16 projection weights (ops::Linear), f32 attention
};

struct MhaWeights {
  Tensor q_w, q_b;      // q_proj.weight [Hq*hd, d_model], q_proj.bias [Hq*hd]
  Tensor k_w, k_b;      // k_proj.weight [Hkv*hd, kv_dim], k_proj.bias [Hkv*hd]
  Tensor v_w, v_b;      // v_proj.weight [Hkv*hd, kv_dim], v_proj.bias [Hkv*hd]
  Tensor qkv_w, qkv_b;  // qkv_proj.weight [(Hq+2Hkv)*hd, d_model] rows [Q; K; V], qkv_proj.bias
  Tensor o_w, o_b;      // o_proj.weight [d_model, Hq*hd], o_proj.bias [d_model]
};

// Self-attention K/V cache: preallocated [B, Hkv, capacity, hd] for K and for V, filled one
// step (or one chunk) at a time. Appending never allocates.
class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t capacity);
  // k_new, v_new [B, Hkv, T, hd] (any strides), written at positions [size, size + T).
  // InternalError if that would pass the capacity or the shapes differ.
  void append(const Tensor& k_new, const Tensor& v_new);
  Tensor keys() const;    // [B, Hkv, size, hd] view of the buffer (row stride capacity*hd)
  Tensor values() const;  // [B, Hkv, size, hd]
  int64_t size() const { return len_; }
  int64_t capacity() const { return k_.defined() && k_.dim() == 4 ? k_.size(2) : 0; }
  int64_t batch() const { return k_.dim() == 4 ? k_.size(0) : 0; }
  void clear() { len_ = 0; }  // keeps the memory
  // Beam search: batch entry b becomes old entry src[b] (src.size() == B).
  void reorder(const std::vector<int32_t>& src);

 private:
  Tensor k_, v_, scratch_;
  int64_t len_ = 0;
};

// Cross-attention memory: K/V of one input projected once, kept as [B, Hkv, Lm, hd], plus the
// copies reordered for the oneDNN matmuls (decode queries, Lq = 1).
struct CrossMemory {
  Tensor k, v;  // [B, Hkv, Lm, hd] contiguous
  SdpaOneDNN::Prepared prepared;
  int64_t batch() const { return k.dim() == 4 ? k.size(0) : 0; }
  int64_t length() const { return k.dim() == 4 ? k.size(2) : 0; }
};

class MultiHeadAttention {
 public:
  MultiHeadAttention() = default;
  // Checks every weight's shape (ModelError naming the weight, e.g. "k_proj.weight", with the
  // found and expected shapes).
  MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w);

  // Self-attention. x [B, L, d_model] -> [B, L, d_model]
  Tensor forward(const Tensor& x, const SdpaParams& mask = {}) const;
  // Incremental self-attention. x [B, T, d_model] are the next T positions: their K/V are
  // appended to cache, and they attend to the whole cache (mask.causal orders them among
  // themselves; kv_lens count cached positions). -> [B, T, d_model]
  Tensor forward(const Tensor& x, KVCache& cache, const SdpaParams& mask = {}) const;
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  // Cross-attention. x [B, Lq, d_model], memory [B, Lm, kv_dim] -> [B, Lq, d_model]
  Tensor forward(const Tensor& x, const Tensor& memory, const SdpaParams& mask = {}) const;
  // memory [B, Lm, kv_dim] -> K/V projected once, for every later step
  CrossMemory project_memory(const Tensor& memory) const;
  // x [B, Lq, d_model] -> [B, Lq, d_model]
  Tensor forward(const Tensor& x, const CrossMemory& mem, const SdpaParams& mask = {}) const;

  const MhaConfig& config() const { return c_; }
  void set_backend(SdpaBackend b) { backend_ = b; }
  // oneDNN implementations of the projections and of the last attention call.
  std::vector<std::string> impl_info() const;

 private:
  // q [B,Hq,Lq,hd], k/v [B,Hkv,Lk,hd] (views) -> out [B, Lq, d_model]
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& mask,
                const SdpaOneDNN::Prepared* prepared) const;
  MhaConfig c_;
  ops::Linear qkv_, q_, kv_, o_;
  SdpaBackend backend_ = SdpaBackend::onednn;
  mutable SdpaOneDNN sdpa_;
  mutable Tensor heads_out_;  // [B, Hq, Lq, hd] scratch
};

}  // namespace xmodal::attn
