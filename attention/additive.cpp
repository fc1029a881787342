// Additive (Bahdanau) attention; see attention/additive.hpp.
#include "attention/additive.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"

namespace xmodal::attn {

namespace {

Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); }

void expect(const Tensor& t, const Shape& want, const char* name) {
  if (t.shape() != want) throw ModelError(name, "shape " + shape_str(t.shape()) + ", expected " + shape_str(want));
}

// Validates q [B,Lq,Dq], keys [B,Lk,*], v [B,Lk,Dv] and the mask; throws with every shape.
void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, int64_t dq, int64_t dk, const SdpaParams& m,
                  const char* kname) {
  auto fail = [&](const std::string& why) {
    throw InternalError("additive attention: " + why + " (q " + shape_str(q.shape()) + ", " + kname + " " +
                        shape_str(k.shape()) + ", v " + shape_str(v.shape()) + ")");
  };
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3) fail("q, keys and v must be 3-D [B, L, D]");
  if (q.size(2) != dq) fail("query width " + std::to_string(q.size(2)) + ", expected " + std::to_string(dq));
  if (k.size(2) != dk) fail(std::string(kname) + " width " + std::to_string(k.size(2)) + ", expected " + std::to_string(dk));
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0)) fail("batch sizes differ");
  if (k.size(1) != v.size(1)) fail("key length " + std::to_string(k.size(1)) + " differs from value length " + std::to_string(v.size(1)));
  if (!m.kv_lens.empty() && static_cast<int64_t>(m.kv_lens.size()) != q.size(0))
    fail("kv_lens has " + std::to_string(m.kv_lens.size()) + " entries for batch " + std::to_string(q.size(0)));
  for (int32_t l : m.kv_lens)
    if (l < 0 || l > k.size(1)) fail("kv_lens entry " + std::to_string(l) + " outside [0, " + std::to_string(k.size(1)) + "]");
}

}  // namespace

AdditiveAttention::AdditiveAttention(const Tensor& w_q, const Tensor& b_q, const Tensor& w_k, const Tensor& b_k,
                                     const Tensor& w_v) {
  if (w_q.dim() != 2) throw ModelError("q_proj.weight", "shape " + shape_str(w_q.shape()) + ", expected [A, Dq]");
  A_ = w_q.size(0);
  Dq_ = w_q.size(1);
  if (w_k.dim() != 2) throw ModelError("k_proj.weight", "shape " + shape_str(w_k.shape()) + ", expected [A, Dk]");
  Dk_ = w_k.size(1);
  expect(w_k, {A_, Dk_}, "k_proj.weight");
  if (b_q.raw()) expect(b_q, {A_}, "q_proj.bias");
  if (b_k.raw()) expect(b_k, {A_}, "k_proj.bias");
  if (w_v.numel() != A_ || (w_v.dim() == 2 && w_v.size(0) != 1) || w_v.dim() > 2)
    throw ModelError("v.weight", "shape " + shape_str(w_v.shape()) + ", expected [1, " + std::to_string(A_) + "]");
  // Fold both biases into the query side: (W_q q + b_q) + (W_k k + b_k) = W_q q + (b_q + b_k) + W_k k.
  Tensor bias;
  if (b_q.raw() || b_k.raw()) {
    bias = Tensor::zeros({A_});
    for (const Tensor* b : {&b_q, &b_k})
      if (b->raw()) {
        Tensor f = as_f32(*b);
        for (int64_t a = 0; a < A_; ++a) bias.f32()[a] += f.f32()[a];
      }
  }
  q_ = ops::Linear(as_f32(w_q), bias);
  k_ = ops::Linear(as_f32(w_k));
  w_v_ = as_f32(w_v).reshape({A_});
}

Tensor AdditiveAttention::project_keys(const Tensor& k) const {
  if (k.dim() != 3 || k.size(2) != Dk_)
    throw InternalError("additive attention: keys " + k.describe() + ", expected [B, Lk, " + std::to_string(Dk_) + "]");
  return k_.forward(k);
}

Tensor AdditiveAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& mask,
                                  Tensor* weights) const {
  check_inputs(q, k, v, Dq_, Dk_, mask, "k");
  return forward_projected(q, project_keys(k), v, mask, weights);
}

// q [B,Lq,Dq], kp [B,Lk,A], v [B,Lk,Dv] -> [B,Lq,Dv]
Tensor AdditiveAttention::forward_projected(const Tensor& q, const Tensor& kp_in, const Tensor& v_in,
                                            const SdpaParams& mask, Tensor* weights) const {
  check_inputs(q, kp_in, v_in, Dq_, A_, mask, "projected keys");
  const int64_t B = q.size(0), Lq = q.size(1), Lk = kp_in.size(1), A = A_;
  const Tensor qp = q_.forward(q);  // [B, Lq, A], biases included
  const Tensor kp = kp_in.contiguous();
  Tensor p = Tensor::zeros({B, Lq, Lk});
  // tanh(qp_i + kp_j) over tiles of query rows: [rows, Lk, A], then score = tile . w_v.
  const int64_t tile_rows = std::max<int64_t>(1, std::min<int64_t>(Lq, (1 << 20) / std::max<int64_t>(1, Lk * A)));
  Tensor tile = Tensor::empty({tile_rows, Lk, A});
  const float* wv = w_v_.f32();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i0 = 0; i0 < Lq; i0 += tile_rows) {
      const int64_t n = std::min(tile_rows, Lq - i0);
      Tensor t = n == tile_rows ? tile : tile.slice(0, 0, n);
      float* tp = t.f32();
      for (int64_t r = 0; r < n; ++r) {
        const float* qi = qp.f32() + (b * Lq + i0 + r) * A;
        for (int64_t j = 0; j < Lk; ++j) {
          const float* kj = kp.f32() + (b * Lk + j) * A;
          float* dst = tp + (r * Lk + j) * A;
          for (int64_t a = 0; a < A; ++a) dst[a] = qi[a] + kj[a];
        }
      }
      if (Lk * A > 0) ops::activation_inplace(t, ops::Act::tanh);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t i = i0 + r;
        const KeyRange kr = visible_keys(mask, b, i, Lq, Lk);
        if (kr.empty()) continue;  // zeros
        float* pi = p.f32() + (b * Lq + i) * Lk;
        float mx = -INFINITY;
        for (int64_t j = kr.lo; j < kr.hi; ++j) {
          const float* tj = tp + (r * Lk + j) * A;
          float s = 0.f;
          for (int64_t a = 0; a < A; ++a) s += wv[a] * tj[a];
          pi[j] = s;
          mx = std::max(mx, s);
        }
        float sum = 0.f;
        for (int64_t j = kr.lo; j < kr.hi; ++j) sum += (pi[j] = std::exp(pi[j] - mx));
        for (int64_t j = kr.lo; j < kr.hi; ++j) pi[j] /= sum;
      }
    }
  Tensor out = ops::matmul(p, v_in);  // [B, Lq, Lk] x [B, Lk, Dv]
  if (weights) *weights = p;
  return out;
}

Tensor additive_attention_naive(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& w_q,
                                const Tensor& b_q, const Tensor& w_k, const Tensor& b_k, const Tensor& w_v,
                                const SdpaParams& mask, Tensor* weights) {
  const int64_t A = w_q.size(0), Dq = w_q.size(1), Dk = w_k.size(1);
  check_inputs(q_in, k_in, v_in, Dq, Dk, mask, "k");
  const Tensor q = as_f32(q_in), k = as_f32(k_in), v = as_f32(v_in), wq = as_f32(w_q), wk = as_f32(w_k),
               wv = as_f32(w_v);
  const Tensor bq = b_q.raw() ? as_f32(b_q) : Tensor(), bk = b_k.raw() ? as_f32(b_k) : Tensor();
  const int64_t B = q.size(0), Lq = q.size(1), Lk = k.size(1), Dv = v.size(2);
  // projections in double
  std::vector<double> qp(static_cast<size_t>(B * Lq * A)), kp(static_cast<size_t>(B * Lk * A));
  auto project = [&](const Tensor& x, const Tensor& w, const Tensor& bias, int64_t rows, int64_t in,
                     std::vector<double>& dst) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t a = 0; a < A; ++a) {
        double s = bias.raw() ? bias.f32()[a] : 0.0;
        for (int64_t c = 0; c < in; ++c) s += static_cast<double>(w.f32()[a * in + c]) * x.f32()[r * in + c];
        dst[static_cast<size_t>(r * A + a)] = s;
      }
  };
  project(q, wq, bq, B * Lq, Dq, qp);
  project(k, wk, bk, B * Lk, Dk, kp);
  Tensor out = Tensor::zeros({B, Lq, Dv}), p = Tensor::zeros({B, Lq, Lk});
  std::vector<double> s(static_cast<size_t>(Lk)), acc(static_cast<size_t>(Dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i) {
      const KeyRange kr = visible_keys(mask, b, i, Lq, Lk);
      if (kr.empty()) continue;
      double mx = -INFINITY, sum = 0;
      for (int64_t j = kr.lo; j < kr.hi; ++j) {
        double e = 0;
        for (int64_t a = 0; a < A; ++a)
          e += wv.f32()[a] * std::tanh(qp[static_cast<size_t>((b * Lq + i) * A + a)] + kp[static_cast<size_t>((b * Lk + j) * A + a)]);
        s[static_cast<size_t>(j)] = e;
        mx = std::max(mx, e);
      }
      for (int64_t j = kr.lo; j < kr.hi; ++j) sum += (s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = kr.lo; j < kr.hi; ++j) {
        const double w = s[static_cast<size_t>(j)] / sum;
        p.f32()[(b * Lq + i) * Lk + j] = static_cast<float>(w);
        for (int64_t c = 0; c < Dv; ++c) acc[static_cast<size_t>(c)] += w * v.f32()[(b * Lk + j) * Dv + c];
      }
      for (int64_t c = 0; c < Dv; ++c) out.f32()[(b * Lq + i) * Dv + c] = static_cast<float>(acc[static_cast<size_t>(c)]);
    }
  if (weights) *weights = p;
  return out;
}

}  // namespace xmodal::attn
