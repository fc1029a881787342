// The SDPA reference (plain loops, double accumulation) and the shared shape check.
#include "attention/sdpa.hpp"

#include <vector>

#include "core/error.hpp"

namespace xmodal::attn {

void check_sdpa_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p) {
  auto fail = [&](const std::string& why) {
    std::string msg = "sdpa: " + why + " (q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " +
                      shape_str(v.shape());
    if (!p.kv_lens.empty()) msg += ", kv_lens size " + std::to_string(p.kv_lens.size());
    throw InternalError(msg + ")");
  };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) fail("q, k and v must be 4-D [B, H, L, D]");
  if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
    fail(std::string("dtypes differ: q ") + dtype_name(q.dtype()) + ", k " + dtype_name(k.dtype()) + ", v " +
         dtype_name(v.dtype()));
  if (q.dtype() != DType::f32 && q.dtype() != DType::bf16)
    fail(std::string("dtype must be f32 or bf16, got ") + dtype_name(q.dtype()));
  const int64_t B = q.size(0), Hq = q.size(1), D = q.size(3);
  if (k.size(0) != B || v.size(0) != B)
    fail("batch sizes differ: " + std::to_string(B) + ", " + std::to_string(k.size(0)) + ", " + std::to_string(v.size(0)));
  if (k.size(1) != v.size(1))
    fail("k has " + std::to_string(k.size(1)) + " heads but v has " + std::to_string(v.size(1)));
  const int64_t Hkv = k.size(1);
  if (Hkv == 0 || Hq % Hkv != 0)
    fail("query heads " + std::to_string(Hq) + " not a multiple of kv heads " + std::to_string(Hkv));
  if (k.size(2) != v.size(2))
    fail("k length " + std::to_string(k.size(2)) + " differs from v length " + std::to_string(v.size(2)));
  if (k.size(3) != D) fail("q head dim " + std::to_string(D) + " differs from k head dim " + std::to_string(k.size(3)));
  if (D == 0 || v.size(3) == 0) fail("head dims must be > 0");
  if (!p.kv_lens.empty()) {
    if (static_cast<int64_t>(p.kv_lens.size()) != B)
      fail("kv_lens has " + std::to_string(p.kv_lens.size()) + " entries for batch " + std::to_string(B));
    for (size_t b = 0; b < p.kv_lens.size(); ++b)
      if (p.kv_lens[b] < 0 || p.kv_lens[b] > k.size(2))
        fail("kv_lens[" + std::to_string(b) + "] = " + std::to_string(p.kv_lens[b]) + " outside [0, " +
             std::to_string(k.size(2)) + "]");
  }
  if (p.window < 0) fail("window " + std::to_string(p.window) + " < 0");
  if (!std::isfinite(p.scale)) fail("scale is not finite");
}

// q [B,Hq,Lq,D], k [B,Hkv,Lk,D], v [B,Hkv,Lk,Dv] -> out [B,Hq,Lq,Dv]
Tensor sdpa_naive(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const SdpaParams& p) {
  check_sdpa_shapes(q_in, k_in, v_in, p);
  auto f32c = [](const Tensor& t) { return t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); };
  const Tensor q = f32c(q_in), k = f32c(k_in), v = f32c(v_in);
  const int64_t B = q.size(0), Hq = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Lk = k.size(2), Dv = v.size(3), G = Hq / Hkv;
  const double scale = sdpa_scale(p, D);
  Tensor out = Tensor::zeros({B, Hq, Lq, Dv});
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32();
  float* op = out.f32();
  std::vector<double> s(static_cast<size_t>(Lk)), acc(static_cast<size_t>(Dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const float* kh = kp + (b * Hkv + h / G) * Lk * D;
      const float* vh = vp + (b * Hkv + h / G) * Lk * Dv;
      for (int64_t i = 0; i < Lq; ++i) {
        const KeyRange r = visible_keys(p, b, i, Lq, Lk);
        if (r.empty()) continue;  // fully masked: zeros
        const float* qi = qp + ((b * Hq + h) * Lq + i) * D;
        double mx = -INFINITY;
        for (int64_t j = r.lo; j < r.hi; ++j) {
          double d = 0;
          for (int64_t c = 0; c < D; ++c) d += static_cast<double>(qi[c]) * kh[j * D + c];
          s[static_cast<size_t>(j)] = d * scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = r.lo; j < r.hi; ++j) {
          const double e = std::exp(s[static_cast<size_t>(j)] - mx);
          sum += e;
          for (int64_t c = 0; c < Dv; ++c) acc[static_cast<size_t>(c)] += e * vh[j * Dv + c];
        }
        float* oi = op + ((b * Hq + h) * Lq + i) * Dv;
        for (int64_t c = 0; c < Dv; ++c) oi[c] = static_cast<float>(acc[static_cast<size_t>(c)] / sum);
      }
    }
  return out;
}

}  // namespace xmodal::attn
