// Neural-network ops on f32 tensors, backed by oneDNN 2.6 (CPU engine, forward_inference).
//
// How oneDNN is used here (DESIGN.md "oneDNN usage", STYLE.md 11):
// - Layers with weights (Linear, Conv2d) reorder their weights ONCE, at construction, into the
//   layout the primitive prefers (format_tag::any). The packed layout of a matmul does not
//   depend on M (checked on brgemm f32 and bf16), so one packed copy serves every row count.
// - Primitives are created once per shape through PrimitiveCache (core/onednn.hpp); the row
//   count M of a Linear varies at run time and is part of the cache key.
// - Bias, activation and residual-add are post-ops (fused into the matmul/conv kernel).
// - impl_info() reports the oneDNN implementation ("brg:avx512_core", ...) so tests and benches
//   can assert that no hot primitive runs a "ref:" kernel.
//
// Every op has a naive reference in xmodal::ops::ref (core/ops_ref.cpp): plain loops with double
// accumulation, used by tests only.
//
// Inputs may be strided views; ops make them contiguous when needed (a copy only if they are
// not). Outputs are new contiguous f32 tensors unless the name says _inplace / _into.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace xmodal::ops {

enum class Act { none, relu, gelu_erf, gelu_tanh, tanh, sigmoid };
const char* act_name(Act a);  // "none", "relu", "gelu_erf", ...

// y = act(x W^T + b), PyTorch nn.Linear semantics.
class Linear {
 public:
  Linear() = default;
  // weight [out, in] (PyTorch layout, f32 or bf16), bias [out] or an undefined Tensor.
  // weight_dtype f32: f32 math. weight_dtype bf16: weights stored as bf16, x converted to bf16
  // on the fly, f32 accumulation and f32 output (faster on AVX512-BF16; ~3 significant digits).
  Linear(const Tensor& weight, const Tensor& bias = Tensor(), Act act = Act::none,
         DType weight_dtype = DType::f32);

  // x [..., in] -> [..., out]   (rows M = product of the leading dims, any M)
  Tensor forward(const Tensor& x) const;
  // x [..., in], y [..., out] preallocated contiguous f32 with the same leading dims.
  // accumulate=false: y = act(x W^T + b);  accumulate=true: y += act(x W^T + b) (a sum post-op,
  // e.g. a residual connection).
  void forward_into(const Tensor& x, Tensor& y, bool accumulate = false) const;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Act act() const { return act_; }
  DType weight_dtype() const { return wdt_; }
  bool has_bias() const { return has_bias_; }
  // oneDNN implementation chosen for M rows, e.g. "brg:avx512_core" (creates it if needed).
  std::string impl_info(int64_t rows = 1) const;

 private:
  struct Packed;  // packed weights + bias memory (shared by copies of this Linear)
  std::shared_ptr<const Packed> p_;
  int64_t in_ = 0, out_ = 0;
  Act act_ = Act::none;
  DType wdt_ = DType::f32;
  bool has_bias_ = false;
};

// 2-D convolution, PyTorch nn.Conv2d semantics (no dilation), optional fused activation.
class Conv2d {
 public:
  Conv2d() = default;
  // weight [O, I/groups, kh, kw] (f32 or bf16), bias [O] or undefined.
  // The weights are packed at construction for an input of hint_hw x hint_hw pixels; another
  // size that prefers a different packed layout gets its own packed copy, once.
  Conv2d(const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
         std::array<int64_t, 2> padding, int64_t groups = 1, Act act = Act::none,
         int64_t hint_hw = 224);

  // x [B, C, H, W] -> [B, O, H', W'],  H' = (H + 2 pad_h - kh) / stride_h + 1 (same for W)
  Tensor forward(const Tensor& x) const;

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  std::array<int64_t, 2> kernel() const { return {kh_, kw_}; }
  std::array<int64_t, 2> output_hw(int64_t h, int64_t w) const;
  // oneDNN implementation for an input [B, C, H, W].
  std::string impl_info(int64_t b, int64_t h, int64_t w) const;

 private:
  struct State;
  std::shared_ptr<State> s_;
  int64_t in_ = 0, out_ = 0, kh_ = 0, kw_ = 0, groups_ = 1;
  std::array<int64_t, 2> stride_{1, 1}, pad_{0, 0};
  Act act_ = Act::none;
};

// Folds an inference BatchNorm into the preceding conv/linear weights:
// weight [O, ...], bias [O] or undefined, gamma/beta/mean/var [O] -> (weight', bias' [O]).
std::pair<Tensor, Tensor> fold_batchnorm(const Tensor& weight, const Tensor& bias, const Tensor& gamma,
                                         const Tensor& beta, const Tensor& mean, const Tensor& var,
                                         float eps);

// x [..., D], gamma [D], beta [D] -> [..., D]  (PyTorch LayerNorm: biased variance, eps inside sqrt)
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);

// Element-wise activations (oneDNN eltwise): x [...] -> [...] same shape.
Tensor activation(const Tensor& x, Act a);
void activation_inplace(Tensor& x, Act a);  // x contiguous f32
inline Tensor gelu_erf(const Tensor& x) { return activation(x, Act::gelu_erf); }
inline Tensor gelu_tanh(const Tensor& x) { return activation(x, Act::gelu_tanh); }
inline Tensor relu(const Tensor& x) { return activation(x, Act::relu); }

// Softmax / log-softmax over the last dim: x [..., N] -> [..., N].
Tensor softmax_lastdim(const Tensor& x);
Tensor log_softmax_lastdim(const Tensor& x);

// a [..., D] + b, where b is [..., D] (same shape) or a row vector [D] broadcast over the rows.
Tensor add(const Tensor& a, const Tensor& b);
void add_inplace(Tensor& a, const Tensor& b);  // a contiguous f32

// table [V, D], ids N values in [0, V) -> [N, D]. An id out of range throws InternalError
// naming the id, its position and V.
Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids);

// Batched matmul: a [..., M, K], b [..., K, N] -> [..., M, N] * scale.
// a and b may be strided views (e.g. b = k.transpose(-1, -2)); b may also be 2-D [K, N]
// (shared by every batch). Batch dims must be equal or 1 (broadcast).
Tensor matmul(const Tensor& a, const Tensor& b, float scale = 1.f);

// x [B, C, H, W] -> [B, C, H', W'], PyTorch MaxPool2d (padding counts as -inf).
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});
// x [B, C, H, W] -> [B, C]  (mean over H and W)
Tensor global_avg_pool2d(const Tensor& x);

// Naive references (plain loops, double accumulation) for the tests.
namespace ref {
float act(Act a, float x);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Act a);  // [..., in] -> [..., out]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, int64_t groups, Act a);  // [B, C, H, W] -> [B, O, H', W']
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);  // [..., D]
Tensor softmax_lastdim(const Tensor& x, bool log = false);  // [..., N]
Tensor matmul(const Tensor& a, const Tensor& b, float scale = 1.f);  // [..., M, K] x [..., K, N]
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding);
}  // namespace ref

}  // namespace xmodal::ops
