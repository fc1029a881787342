// Linear attention; see attention/linear_attention.hpp.
#include "attention/linear_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention/sdpa.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"

namespace xmodal::attn {

namespace {

inline float phi(float x) { return x > 0.f ? x + 1.f : std::exp(x); }  // elu(x) + 1

void check_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int32_t>& kv_lens,
                  const char* who) {
  auto fail = [&](const std::string& why) {
    throw InternalError(std::string(who) + ": " + why + " (q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) +
                        ", v " + shape_str(v.shape()) + ")");
  };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) fail("q, k and v must be 4-D [B, H, L, D]");
  if (q.dtype() != DType::f32 || k.dtype() != DType::f32 || v.dtype() != DType::f32) fail("f32 only");
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0)) fail("batch sizes differ");
  if (k.size(1) != q.size(1) || v.size(1) != q.size(1)) fail("head counts differ");
  if (k.size(2) != v.size(2)) fail("k length " + std::to_string(k.size(2)) + " differs from v length " + std::to_string(v.size(2)));
  if (k.size(3) != q.size(3)) fail("q dim " + std::to_string(q.size(3)) + " differs from k dim " + std::to_string(k.size(3)));
  if (!kv_lens.empty() && static_cast<int64_t>(kv_lens.size()) != q.size(0))
    fail("kv_lens has " + std::to_string(kv_lens.size()) + " entries for batch " + std::to_string(q.size(0)));
  for (int32_t l : kv_lens)
    if (l < 0 || l > k.size(2)) fail("kv_lens entry " + std::to_string(l) + " outside [0, " + std::to_string(k.size(2)) + "]");
}

// Causal scan for one (batch, head): keys j in [0, Lk) are added to S [D, Dv] / z [D] in order
// (if j < kv_len); query i is answered right after key i + off was added (before any key when
// i + off < 0). q [Lq, D], k [Lk, D], v [Lk, Dv] (row strides given), out [Lq, Dv] contiguous.
void scan(const float* q, int64_t qs, const float* k, int64_t ks, const float* v, int64_t vs, int64_t Lq, int64_t Lk,
          int64_t D, int64_t Dv, int64_t off, int64_t kv_len, float eps, float* S, float* z, float* out,
          float* fq) {
  int64_t i = 0;
  auto answer = [&](int64_t upto) {  // all queries whose position is < upto
    for (; i < Lq && i + off < upto; ++i) {
      const float* qi = q + i * qs;
      float den = 0.f;
      for (int64_t c = 0; c < D; ++c) {
        fq[c] = phi(qi[c]);
        den += fq[c] * z[c];
      }
      float* oi = out + i * Dv;
      std::memset(oi, 0, sizeof(float) * static_cast<size_t>(Dv));
      for (int64_t c = 0; c < D; ++c) {
        const float f = fq[c];
        const float* Sc = S + c * Dv;
        for (int64_t e = 0; e < Dv; ++e) oi[e] += f * Sc[e];
      }
      const float inv = 1.f / (den + eps);
      for (int64_t e = 0; e < Dv; ++e) oi[e] *= inv;
    }
  };
  answer(0);
  for (int64_t j = 0; j < Lk; ++j) {
    if (j < kv_len) {
      const float* kj = k + j * ks;
      const float* vj = v + j * vs;
      for (int64_t c = 0; c < D; ++c) {
        const float f = phi(kj[c]);
        z[c] += f;
        float* Sc = S + c * Dv;
        for (int64_t e = 0; e < Dv; ++e) Sc[e] += f * vj[e];
      }
    }
    answer(j + 1);
  }
}

}  // namespace

Tensor linear_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                        const std::vector<int32_t>& kv_lens, float eps) {
  check_shapes(q_in, k_in, v_in, kv_lens, "linear_attention");
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Lk = k.size(2), Dv = v.size(3);
  Tensor out = Tensor::empty({B, H, Lq, Dv});
  if (out.numel() == 0) return out;
  if (causal) {
    Tensor S = Tensor::empty({B * H, D, Dv}), z = Tensor::empty({B * H, D}), fq = Tensor::empty({B * H, D});
#pragma omp parallel for
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H;
      float* Sb = S.f32() + bh * D * Dv;
      float* zb = z.f32() + bh * D;
      std::memset(Sb, 0, sizeof(float) * static_cast<size_t>(D * Dv));
      std::memset(zb, 0, sizeof(float) * static_cast<size_t>(D));
      scan(q.f32() + bh * Lq * D, D, k.f32() + bh * Lk * D, D, v.f32() + bh * Lk * Dv, Dv, Lq, Lk, D, Dv, Lk - Lq,
           kv_lens.empty() ? Lk : kv_lens[static_cast<size_t>(b)], eps, Sb, zb, out.f32() + bh * Lq * Dv,
           fq.f32() + bh * D);
    }
    return out;
  }
  // Non-causal: S = phi(K)^T V, z = sum_j phi(k_j), out = phi(Q) S / (phi(Q) z + eps).
  Tensor fk = Tensor::empty(k.shape()), fqt = Tensor::empty(q.shape());
  for (int64_t i = 0; i < q.numel(); ++i) fqt.f32()[i] = phi(q.f32()[i]);
  Tensor z = Tensor::zeros({B, H, D});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < Lk; ++j) {
        const int64_t base = ((b * H + h) * Lk + j) * D;
        const bool pad = !kv_lens.empty() && j >= kv_lens[static_cast<size_t>(b)];
        for (int64_t c = 0; c < D; ++c) {
          const float f = pad ? 0.f : phi(k.f32()[base + c]);
          fk.f32()[base + c] = f;
          z.f32()[(b * H + h) * D + c] += f;
        }
      }
  const Tensor S = ops::matmul(fk.transpose(2, 3), v);  // [B, H, D, Dv]
  Tensor num = ops::matmul(fqt, S);                      // [B, H, Lq, Dv]
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < Lq; ++i) {
      const float* fqi = fqt.f32() + (bh * Lq + i) * D;
      const float* zb = z.f32() + bh * D;
      float den = 0.f;
      for (int64_t c = 0; c < D; ++c) den += fqi[c] * zb[c];
      const float inv = 1.f / (den + eps);
      const float* ni = num.f32() + (bh * Lq + i) * Dv;
      float* oi = out.f32() + (bh * Lq + i) * Dv;
      for (int64_t e = 0; e < Dv; ++e) oi[e] = ni[e] * inv;
    }
  return out;
}

Tensor linear_attention_naive(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                              const std::vector<int32_t>& kv_lens, float eps) {
  check_shapes(q_in, k_in, v_in, kv_lens, "linear_attention_naive");
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Lk = k.size(2), Dv = v.size(3);
  Tensor out = Tensor::zeros({B, H, Lq, Dv});
  SdpaParams p;
  p.causal = causal;
  p.kv_lens = kv_lens;
  std::vector<double> acc(static_cast<size_t>(Dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const KeyRange r = visible_keys(p, b, i, Lq, Lk);
        const float* qi = q.f32() + ((b * H + h) * Lq + i) * D;
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = r.lo; j < r.hi; ++j) {
          const float* kj = k.f32() + ((b * H + h) * Lk + j) * D;
          double a = 0;
          for (int64_t c = 0; c < D; ++c) {
            const double fq = qi[c] > 0 ? qi[c] + 1.0 : std::exp(static_cast<double>(qi[c]));
            const double fk = kj[c] > 0 ? kj[c] + 1.0 : std::exp(static_cast<double>(kj[c]));
            a += fq * fk;
          }
          sum += a;
          const float* vj = v.f32() + ((b * H + h) * Lk + j) * Dv;
          for (int64_t e = 0; e < Dv; ++e) acc[static_cast<size_t>(e)] += a * vj[e];
        }
        float* oi = out.f32() + ((b * H + h) * Lq + i) * Dv;
        for (int64_t e = 0; e < Dv; ++e) oi[e] = static_cast<float>(acc[static_cast<size_t>(e)] / (sum + eps));
      }
  return out;
}

LinearAttentionState::LinearAttentionState(int64_t batch, int64_t heads, int64_t key_dim, int64_t value_dim,
                                           float eps)
    : eps_(eps) {
  if (batch <= 0 || heads <= 0 || key_dim <= 0 || value_dim <= 0)
    throw InternalError("LinearAttentionState: batch " + std::to_string(batch) + ", heads " + std::to_string(heads) +
                        ", dims " + std::to_string(key_dim) + "/" + std::to_string(value_dim) + " must all be > 0");
  S_ = Tensor::zeros({batch, heads, key_dim, value_dim});
  z_ = Tensor::zeros({batch, heads, key_dim});
}

void LinearAttentionState::clear() {
  std::memset(S_.raw(), 0, S_.nbytes());
  std::memset(z_.raw(), 0, z_.nbytes());
  len_ = 0;
}

Tensor LinearAttentionState::step(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  check_shapes(q_in, k_in, v_in, {}, "LinearAttentionState::step");
  const int64_t B = S_.size(0), H = S_.size(1), D = S_.size(2), Dv = S_.size(3);
  if (q_in.size(0) != B || q_in.size(1) != H || q_in.size(3) != D || v_in.size(3) != Dv || q_in.size(2) != k_in.size(2))
    throw InternalError("LinearAttentionState::step: q " + q_in.describe() + ", k " + k_in.describe() + ", v " +
                        v_in.describe() + " for a state of [B, H, D, Dv] = " + shape_str(S_.shape()) +
                        " (q and k need the same length)");
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t T = q.size(2);
  Tensor out = Tensor::empty({B, H, T, Dv}), fq = Tensor::empty({B * H, D});
#pragma omp parallel for
  for (int64_t bh = 0; bh < B * H; ++bh)
    scan(q.f32() + bh * T * D, D, k.f32() + bh * T * D, D, v.f32() + bh * T * Dv, Dv, T, T, D, Dv, 0, T, eps_,
         S_.f32() + bh * D * Dv, z_.f32() + bh * D, out.f32() + bh * T * Dv, fq.f32() + bh * D);
  len_ += T;
  return out;
}

}  // namespace xmodal::attn
