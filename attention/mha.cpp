// Multi-head attention layer, KV cache and cross-attention memory (see attention/mha.hpp).
#include "attention/mha.hpp"

#include <cstring>
#include <memory>

#include "core/error.hpp"

namespace xmodal::attn {

// x [B, L, W] -> view [B, H, L, hd]; head h = columns [col + h*head_stride, ... + hd)
Tensor split_heads(const Tensor& x, int64_t col, int64_t heads, int64_t head_dim, int64_t head_stride) {
  if (head_stride == 0) head_stride = head_dim;
  if (x.dim() != 3 || x.dtype() != DType::f32 || x.strides()[2] != 1 || col < 0 || heads <= 0 ||
      head_stride < head_dim || col + (heads - 1) * head_stride + head_dim > x.size(2))
    throw InternalError("split_heads: input " + x.describe() + " cannot give " + std::to_string(heads) + " heads of " +
                        std::to_string(head_dim) + " from column " + std::to_string(col));
  auto owner = std::make_shared<Tensor>(x);
  float* base = const_cast<float*>(x.f32()) + col;
  return Tensor::view_of(base, {x.size(0), heads, x.size(1), head_dim}, DType::f32, std::shared_ptr<void>(owner),
                         {x.strides()[0], head_stride, x.strides()[1], 1});
}

// x [B, H, L, hd] -> out [B, L, H*hd]
void merge_heads_into(const Tensor& x, Tensor& out) {
  const int64_t B = x.size(0), H = x.size(1), L = x.size(2), hd = x.size(3);
  if (x.dim() != 4 || out.shape() != Shape{B, L, H * hd} || !out.is_contiguous())
    throw InternalError("merge_heads: input " + x.describe() + ", output " + out.describe() + " (expected " +
                        shape_str({B, L, H * hd}) + " contiguous)");
  const float* xp = x.f32();
  float* op = out.f32();
  const Shape& s = x.strides();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const float* src = xp + b * s[0] + h * s[1] + l * s[2];
        float* dst = op + ((b * L + l) * H + h) * hd;
        if (s[3] == 1)
          std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(hd));
        else
          for (int64_t c = 0; c < hd; ++c) dst[c] = src[c * s[3]];
      }
}

Tensor merge_heads(const Tensor& x) {
  if (x.dim() != 4) throw InternalError("merge_heads: input " + x.describe() + " is not [B, H, L, hd]");
  Tensor out = Tensor::empty({x.size(0), x.size(2), x.size(1) * x.size(3)});
  merge_heads_into(x, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// KVCache

KVCache::KVCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t capacity) {
  if (batch <= 0 || kv_heads <= 0 || head_dim <= 0 || capacity <= 0)
    throw InternalError("KVCache: batch " + std::to_string(batch) + ", kv heads " + std::to_string(kv_heads) +
                        ", head dim " + std::to_string(head_dim) + ", capacity " + std::to_string(capacity) +
                        " must all be > 0");
  k_ = Tensor::zeros({batch, kv_heads, capacity, head_dim});
  v_ = Tensor::zeros({batch, kv_heads, capacity, head_dim});
}

// t [B, H, T, hd] (any strides) -> dst positions [at, at+T) of buf [B, H, cap, hd]
static void copy_into(const Tensor& t, Tensor& buf, int64_t at) {
  const int64_t B = t.size(0), H = t.size(1), T = t.size(2), hd = t.size(3), cap = buf.size(2);
  const float* sp = t.f32();
  float* dp = buf.f32();
  const Shape& s = t.strides();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const float* src = sp + b * s[0] + h * s[1] + i * s[2];
        float* dst = dp + ((b * H + h) * cap + at + i) * hd;
        if (s[3] == 1)
          std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(hd));
        else
          for (int64_t c = 0; c < hd; ++c) dst[c] = src[c * s[3]];
      }
}

void KVCache::append(const Tensor& k_new, const Tensor& v_new) {
  if (k_.dim() != 4) throw InternalError("KVCache: append to an unallocated cache");
  const Shape want{k_.size(0), k_.size(1), k_new.dim() == 4 ? k_new.size(2) : -1, k_.size(3)};
  if (k_new.dim() != 4 || k_new.shape() != want || v_new.shape() != want || k_new.dtype() != DType::f32 ||
      v_new.dtype() != DType::f32)
    throw InternalError("KVCache: append k " + k_new.describe() + ", v " + v_new.describe() + " to a cache of " +
                        k_.describe() + " (expected [B, Hkv, T, hd] = " + shape_str(want) + ")");
  const int64_t T = k_new.size(2);
  if (len_ + T > capacity())
    throw InternalError("KVCache: appending " + std::to_string(T) + " positions to " + std::to_string(len_) +
                        " exceeds the capacity " + std::to_string(capacity()));
  copy_into(k_new, k_, len_);
  copy_into(v_new, v_, len_);
  len_ += T;
}

Tensor KVCache::keys() const { return k_.slice(2, 0, len_); }
Tensor KVCache::values() const { return v_.slice(2, 0, len_); }

void KVCache::reorder(const std::vector<int32_t>& src) {
  const int64_t B = batch();
  if (static_cast<int64_t>(src.size()) != B)
    throw InternalError("KVCache: reorder with " + std::to_string(src.size()) + " indices for batch " +
                        std::to_string(B));
  for (int32_t s : src)
    if (s < 0 || s >= B) throw InternalError("KVCache: reorder index " + std::to_string(s) + " outside [0, " + std::to_string(B) + ")");
  if (!scratch_.raw()) scratch_ = Tensor::empty(k_.shape());
  const size_t per_b = static_cast<size_t>(k_.numel() / B);
  for (Tensor* t : {&k_, &v_}) {
    std::memcpy(scratch_.raw(), t->raw(), t->nbytes());
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(t->f32() + static_cast<size_t>(b) * per_b, scratch_.f32() + static_cast<size_t>(src[static_cast<size_t>(b)]) * per_b,
                  per_b * sizeof(float));
  }
}

// ---------------------------------------------------------------------------------------------
// MultiHeadAttention

namespace {

void expect_shape(const Tensor& t, const Shape& want, const std::string& name) {
  if (t.shape() != want) throw ModelError(name, "shape " + shape_str(t.shape()) + ", expected " + shape_str(want));
  if (t.dtype() != DType::f32 && t.dtype() != DType::bf16)
    throw ModelError(name, std::string("dtype ") + dtype_name(t.dtype()) + ", expected f32 or bf16");
}

// Row-concatenation of 2-D (weights) or 1-D (biases) tensors, as f32. Undefined parts of a bias
// list become zeros of `rows[i]` entries; all undefined -> undefined.
Tensor concat_rows(const std::vector<Tensor>& parts, const std::vector<int64_t>& rows, int64_t cols) {
  bool any = false;
  for (const Tensor& t : parts) any = any || t.raw() != nullptr;
  if (!any) return Tensor();
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  Tensor out = cols > 0 ? Tensor::zeros({total, cols}) : Tensor::zeros({total});
  const int64_t w = cols > 0 ? cols : 1;
  int64_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].raw()) {
      Tensor f = parts[i].dtype() == DType::f32 ? parts[i].contiguous() : parts[i].to(DType::f32);
      std::memcpy(out.f32() + at * w, f.f32(), f.nbytes());
    }
    at += rows[i];
  }
  return out;
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w) : c_(cfg) {
  if (c_.n_kv_heads == 0) c_.n_kv_heads = c_.n_heads;
  if (c_.kv_dim == 0) c_.kv_dim = c_.d_model;
  if (c_.d_model <= 0 || c_.n_heads <= 0 || c_.n_kv_heads <= 0 || c_.n_heads % c_.n_kv_heads != 0 ||
      (c_.head_dim == 0 && c_.d_model % c_.n_heads != 0) || c_.head_dim < 0)
    throw ModelError("attention config", "d_model " + std::to_string(c_.d_model) + ", n_heads " +
                                             std::to_string(c_.n_heads) + ", n_kv_heads " +
                                             std::to_string(c_.n_kv_heads) + ", head_dim " +
                                             std::to_string(c_.head_dim) +
                                             ": heads must divide (n_heads % n_kv_heads == 0, d_model % n_heads == 0 "
                                             "unless head_dim is given)");
  if (c_.head_dim == 0) c_.head_dim = c_.d_model / c_.n_heads;
  const int64_t d = c_.d_model, hd = c_.head_dim, nq = c_.n_heads * hd, nkv = c_.n_kv_heads * hd;
  const DType wdt = c_.weight_dtype;
  const bool fused = w.qkv_w.raw() != nullptr;
  if (fused) {
    expect_shape(w.qkv_w, {nq + 2 * nkv, d}, "qkv_proj.weight");
    if (w.qkv_b.raw()) expect_shape(w.qkv_b, {nq + 2 * nkv}, "qkv_proj.bias");
    if (c_.cross && c_.kv_dim != d)
      throw ModelError("qkv_proj.weight", "a fused QKV weight needs kv_dim == d_model, got kv_dim " +
                                              std::to_string(c_.kv_dim) + ", d_model " + std::to_string(d));
  } else {
    const int64_t kvin = c_.cross ? c_.kv_dim : d;
    expect_shape(w.q_w, {nq, d}, "q_proj.weight");
    expect_shape(w.k_w, {nkv, kvin}, "k_proj.weight");
    expect_shape(w.v_w, {nkv, kvin}, "v_proj.weight");
    if (w.q_b.raw()) expect_shape(w.q_b, {nq}, "q_proj.bias");
    if (w.k_b.raw()) expect_shape(w.k_b, {nkv}, "k_proj.bias");
    if (w.v_b.raw()) expect_shape(w.v_b, {nkv}, "v_proj.bias");
  }
  expect_shape(w.o_w, {d, nq}, "o_proj.weight");
  if (w.o_b.raw()) expect_shape(w.o_b, {d}, "o_proj.bias");

  auto f32 = [](const Tensor& t) { return !t.raw() ? t : t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); };
  if (!c_.cross) {
    Tensor wq = fused ? f32(w.qkv_w) : concat_rows({w.q_w, w.k_w, w.v_w}, {nq, nkv, nkv}, d);
    Tensor bq = fused ? f32(w.qkv_b) : concat_rows({w.q_b, w.k_b, w.v_b}, {nq, nkv, nkv}, 0);
    qkv_ = ops::Linear(wq, bq, ops::Act::none, wdt);
  } else if (fused) {
    q_ = ops::Linear(f32(w.qkv_w.slice(0, 0, nq)), w.qkv_b.raw() ? f32(w.qkv_b.slice(0, 0, nq)) : Tensor(),
                     ops::Act::none, wdt);
    kv_ = ops::Linear(f32(w.qkv_w.slice(0, nq, nq + 2 * nkv)),
                      w.qkv_b.raw() ? f32(w.qkv_b.slice(0, nq, nq + 2 * nkv)) : Tensor(), ops::Act::none, wdt);
  } else {
    q_ = ops::Linear(f32(w.q_w), f32(w.q_b), ops::Act::none, wdt);
    kv_ = ops::Linear(concat_rows({w.k_w, w.v_w}, {nkv, nkv}, c_.kv_dim), concat_rows({w.k_b, w.v_b}, {nkv, nkv}, 0),
                      ops::Act::none, wdt);
  }
  o_ = ops::Linear(f32(w.o_w), f32(w.o_b), ops::Act::none, wdt);
}

static void check_input(const Tensor& x, int64_t width, const char* what) {
  if (x.dim() != 3 || x.size(2) != width || x.dtype() != DType::f32)
    throw InternalError(std::string("attention: ") + what + " is " + x.describe() + ", expected f32[B, L, " +
                        std::to_string(width) + "]");
}

Tensor MultiHeadAttention::forward(const Tensor& x, const SdpaParams& mask) const {
  if (c_.cross) throw InternalError("attention: self-attention call on a cross-attention layer");
  check_input(x, c_.d_model, "x");
  const int64_t hd = c_.head_dim, Hq = c_.n_heads, Hkv = c_.n_kv_heads;
  Tensor qkv = qkv_.forward(x);  // [B, L, (Hq + 2 Hkv) hd]
  return attend(split_heads(qkv, 0, Hq, hd), split_heads(qkv, Hq * hd, Hkv, hd),
                split_heads(qkv, (Hq + Hkv) * hd, Hkv, hd), mask, nullptr);
}

KVCache MultiHeadAttention::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache(batch, c_.n_kv_heads, c_.head_dim, capacity);
}

Tensor MultiHeadAttention::forward(const Tensor& x, KVCache& cache, const SdpaParams& mask) const {
  if (c_.cross) throw InternalError("attention: KV-cached self-attention call on a cross-attention layer");
  check_input(x, c_.d_model, "x");
  const int64_t hd = c_.head_dim, Hq = c_.n_heads, Hkv = c_.n_kv_heads;
  Tensor qkv = qkv_.forward(x);
  cache.append(split_heads(qkv, Hq * hd, Hkv, hd), split_heads(qkv, (Hq + Hkv) * hd, Hkv, hd));
  return attend(split_heads(qkv, 0, Hq, hd), cache.keys(), cache.values(), mask, nullptr);
}

Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& memory, const SdpaParams& mask) const {
  if (!c_.cross) throw InternalError("attention: cross-attention call on a self-attention layer");
  check_input(x, c_.d_model, "x");
  check_input(memory, c_.kv_dim, "memory");
  const int64_t hd = c_.head_dim, Hq = c_.n_heads, Hkv = c_.n_kv_heads;
  Tensor q = q_.forward(x), kv = kv_.forward(memory);
  return attend(split_heads(q, 0, Hq, hd), split_heads(kv, 0, Hkv, hd), split_heads(kv, Hkv * hd, Hkv, hd), mask,
                nullptr);
}

CrossMemory MultiHeadAttention::project_memory(const Tensor& memory) const {
  if (!c_.cross) throw InternalError("attention: project_memory on a self-attention layer");
  check_input(memory, c_.kv_dim, "memory");
  const int64_t hd = c_.head_dim, Hkv = c_.n_kv_heads;
  Tensor kv = kv_.forward(memory);
  CrossMemory m;
  m.k = split_heads(kv, 0, Hkv, hd).contiguous();
  m.v = split_heads(kv, Hkv * hd, Hkv, hd).contiguous();
  if (memory.size(1) > 0) m.prepared = sdpa_.prepare(m.k, m.v, c_.n_heads, 1);
  return m;
}

Tensor MultiHeadAttention::forward(const Tensor& x, const CrossMemory& mem, const SdpaParams& mask) const {
  if (!c_.cross) throw InternalError("attention: cross-attention call on a self-attention layer");
  check_input(x, c_.d_model, "x");
  if (mem.k.dim() != 4 || mem.batch() != x.size(0))
    throw InternalError("attention: cross memory " + mem.k.describe() + " for queries " + x.describe());
  Tensor q = q_.forward(x);
  return attend(split_heads(q, 0, c_.n_heads, c_.head_dim), mem.k, mem.v, mask,
                mem.prepared.k_shape.empty() ? nullptr : &mem.prepared);
}

Tensor MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& mask,
                                  const SdpaOneDNN::Prepared* prepared) const {
  const SdpaParams* p = &mask;
  SdpaParams scaled;
  if (mask.scale == 0.f && c_.scale != 0.f) {
    scaled = mask;
    scaled.scale = c_.scale;
    p = &scaled;
  }
  const Shape out_shape{q.size(0), q.size(1), q.size(2), c_.head_dim};
  if (backend_ == SdpaBackend::naive) {
    heads_out_ = sdpa_naive(q, k, v, *p);
  } else if (backend_ == SdpaBackend::fused) {
    heads_out_ = sdpa_fused(q, k, v, *p);
  } else {
    if (heads_out_.shape() != out_shape || !heads_out_.raw()) heads_out_ = Tensor::empty(out_shape);
    if (prepared)
      sdpa_.run(q, *prepared, *p, heads_out_);
    else
      sdpa_.run(q, k, v, *p, heads_out_);
  }
  return o_.forward(merge_heads(heads_out_));
}

std::vector<std::string> MultiHeadAttention::impl_info() const {
  std::vector<std::string> r;
  if (!c_.cross) {
    r.push_back("qkv_proj: " + qkv_.impl_info());
  } else {
    r.push_back("q_proj: " + q_.impl_info());
    r.push_back("kv_proj: " + kv_.impl_info());
  }
  r.push_back("o_proj: " + o_.impl_info());
  if (backend_ == SdpaBackend::onednn)
    for (const auto& s : sdpa_.impl_info()) r.push_back(s);
  else
    r.push_back(backend_ == SdpaBackend::fused ? "sdpa: fused" : "sdpa: naive reference");
  return r;
}

}  // namespace xmodal::attn
