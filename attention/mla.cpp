// Multi-head latent attention; see attention/mla.hpp.
#include "attention/mla.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace xmodal::attn {

// ---------------------------------------------------------------------------------------------
// LatentCache

LatentCache::LatentCache(int64_t batch, int64_t rank, int64_t capacity) {
  if (batch <= 0 || rank <= 0 || capacity <= 0)
    throw InternalError("LatentCache: batch " + std::to_string(batch) + ", rank " + std::to_string(rank) +
                        ", capacity " + std::to_string(capacity) + " must all be > 0");
  c_ = Tensor::zeros({batch, capacity, rank});
}

void LatentCache::append(const Tensor& c_new) {
  if (c_.dim() != 3) throw InternalError("LatentCache: append to an unallocated cache");
  if (c_new.dim() != 3 || c_new.size(0) != c_.size(0) || c_new.size(2) != c_.size(2) || c_new.dtype() != DType::f32)
    throw InternalError("LatentCache: append " + c_new.describe() + " to a cache of " + c_.describe() +
                        " (expected [B, T, r] = [" + std::to_string(c_.size(0)) + ", T, " + std::to_string(c_.size(2)) + "])");
  const int64_t B = c_.size(0), T = c_new.size(1), r = c_.size(2), cap = c_.size(1);
  if (len_ + T > cap)
    throw InternalError("LatentCache: appending " + std::to_string(T) + " positions to " + std::to_string(len_) +
                        " exceeds the capacity " + std::to_string(cap));
  const Shape& s = c_new.strides();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* src = c_new.f32() + b * s[0] + t * s[1];
      float* dst = c_.f32() + (b * cap + len_ + t) * r;
      if (s[2] == 1)
        std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(r));
      else
        for (int64_t j = 0; j < r; ++j) dst[j] = src[j * s[2]];
    }
  len_ += T;
}

Tensor LatentCache::latent() const {
  const int64_t B = c_.size(0), cap = c_.size(1), r = c_.size(2);
  auto owner = std::make_shared<Tensor>(c_);
  return Tensor::view_of(const_cast<float*>(c_.f32()), {B, 1, len_, r}, DType::f32, std::shared_ptr<void>(owner),
                         {cap * r, cap * r, r, 1});
}

// ---------------------------------------------------------------------------------------------
// MultiHeadLatentAttention

namespace {
Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); }
void expect(const Tensor& t, const Shape& want, const char* name) {
  if (t.shape() != want) throw ModelError(name, "shape " + shape_str(t.shape()) + ", expected " + shape_str(want));
}
}  // namespace

MultiHeadLatentAttention::MultiHeadLatentAttention(const MlaConfig& cfg, const MlaWeights& w) : c_(cfg) {
  const int64_t d = c_.d_model, H = c_.n_heads, dqk = c_.qk_head_dim, dv = c_.v_head_dim, r = c_.kv_rank;
  if (d <= 0 || H <= 0 || dqk <= 0 || dv <= 0 || r <= 0)
    throw ModelError("mla config", "d_model " + std::to_string(d) + ", n_heads " + std::to_string(H) +
                                       ", qk_head_dim " + std::to_string(dqk) + ", v_head_dim " + std::to_string(dv) +
                                       ", kv_rank " + std::to_string(r) + " must all be > 0");
  expect(w.q_w, {H * dqk, d}, "q_proj.weight");
  expect(w.kv_a_w, {r, d}, "kv_a_proj.weight");
  expect(w.kv_b_w, {H * (dqk + dv), r}, "kv_b_proj.weight");
  expect(w.o_w, {d, H * dv}, "o_proj.weight");
  const Tensor wq = as_f32(w.q_w), wa = as_f32(w.kv_a_w), wb = as_f32(w.kv_b_w), wo = as_f32(w.o_w);
  q_ = ops::Linear(wq);
  kv_a_ = ops::Linear(wa);
  kv_b_ = ops::Linear(wb);
  o_ = ops::Linear(wo);
  // Absorb: Wq_abs[h] = Wuk_h^T Wq_h [r, d];  Wo_abs[h] = Wo_h Wuv_h [d, r]  (double sums).
  Tensor q_abs = Tensor::empty({H * r, d}), o_abs = Tensor::empty({d, H * r});
  const float *pq = wq.f32(), *pb = wb.f32(), *po = wo.f32();
  for (int64_t h = 0; h < H; ++h) {
    const float* uk = pb + h * (dqk + dv) * r;  // [dqk, r]
    const float* uv = uk + dqk * r;             // [dv, r]
    for (int64_t a = 0; a < r; ++a)
      for (int64_t c = 0; c < d; ++c) {
        double s = 0;
        for (int64_t e = 0; e < dqk; ++e) s += static_cast<double>(uk[e * r + a]) * pq[(h * dqk + e) * d + c];
        q_abs.f32()[(h * r + a) * d + c] = static_cast<float>(s);
      }
    for (int64_t c = 0; c < d; ++c)
      for (int64_t a = 0; a < r; ++a) {
        double s = 0;
        for (int64_t e = 0; e < dv; ++e) s += static_cast<double>(po[c * H * dv + h * dv + e]) * uv[e * r + a];
        o_abs.f32()[c * H * r + h * r + a] = static_cast<float>(s);
      }
  }
  q_abs_ = ops::Linear(q_abs);
  o_abs_ = ops::Linear(o_abs);
}

static void check_x(const Tensor& x, int64_t d) {
  if (x.dim() != 3 || x.size(2) != d || x.dtype() != DType::f32)
    throw InternalError("mla: x is " + x.describe() + ", expected f32[B, L, " + std::to_string(d) + "]");
}

Tensor MultiHeadLatentAttention::attend(const Tensor& qa, const Tensor& latent, const SdpaParams& mask) const {
  SdpaParams p = mask;
  if (p.scale == 0.f) p.scale = c_.scale != 0.f ? c_.scale : 1.f / std::sqrt(static_cast<float>(c_.qk_head_dim));
  const Shape os{qa.size(0), qa.size(1), qa.size(2), c_.kv_rank};
  if (heads_out_.shape() != os || !heads_out_.raw()) heads_out_ = Tensor::empty(os);
  sdpa_.run(qa, latent, latent, p, heads_out_);  // MQA over the latent: K = V = c
  return o_abs_.forward(merge_heads(heads_out_));
}

Tensor MultiHeadLatentAttention::forward(const Tensor& x, const SdpaParams& mask) const {
  check_x(x, c_.d_model);
  const Tensor qa = q_abs_.forward(x);  // [B, L, H*r]
  const Tensor c = kv_a_.forward(x);    // [B, L, r]
  const Tensor latent = c.reshape({c.size(0), 1, c.size(1), c.size(2)});
  return attend(split_heads(qa, 0, c_.n_heads, c_.kv_rank), latent, mask);
}

LatentCache MultiHeadLatentAttention::make_cache(int64_t batch, int64_t capacity) const {
  return LatentCache(batch, c_.kv_rank, capacity);
}

Tensor MultiHeadLatentAttention::forward(const Tensor& x, LatentCache& cache, const SdpaParams& mask) const {
  check_x(x, c_.d_model);
  const Tensor qa = q_abs_.forward(x);
  cache.append(kv_a_.forward(x));
  return attend(split_heads(qa, 0, c_.n_heads, c_.kv_rank), cache.latent(), mask);
}

Tensor MultiHeadLatentAttention::forward_expanded(const Tensor& x, const SdpaParams& mask) const {
  check_x(x, c_.d_model);
  const int64_t H = c_.n_heads, dqk = c_.qk_head_dim, dv = c_.v_head_dim;
  SdpaParams p = mask;
  if (p.scale == 0.f) p.scale = c_.scale != 0.f ? c_.scale : 1.f / std::sqrt(static_cast<float>(dqk));
  const Tensor q = q_.forward(x);                    // [B, L, H*dqk]
  const Tensor kv = kv_b_.forward(kv_a_.forward(x));  // [B, L, H*(dqk+dv)], per head [k_h; v_h]
  const Tensor o = sdpa_naive(split_heads(q, 0, H, dqk), split_heads(kv, 0, H, dqk, dqk + dv),
                              split_heads(kv, dqk, H, dv, dqk + dv), p);  // [B, H, L, dv]
  return o_.forward(merge_heads(o));
}

std::vector<std::string> MultiHeadLatentAttention::impl_info() const {
  std::vector<std::string> r{"q_abs: " + q_abs_.impl_info(), "kv_a_proj: " + kv_a_.impl_info(),
                             "o_abs: " + o_abs_.impl_info()};
  for (const auto& s : sdpa_.impl_info()) r.push_back(s);
  return r;
}

}  // namespace xmodal::attn
