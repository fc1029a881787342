// DIN target-aware attention; see attention/din.hpp.
#include "attention/din.hpp"

#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace xmodal::attn {

namespace {

Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t.contiguous() : t.to(DType::f32); }

void check_layers(const std::vector<DinLayer>& layers, int64_t* item_dim) {
  if (layers.empty()) throw ModelError("mlp", "DIN needs at least the scoring layer");
  int64_t in = -1;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Tensor& w = layers[i].w;
    const std::string name = "mlp layer " + std::to_string(i);
    if (w.dim() != 2) throw ModelError(name, "weight shape " + shape_str(w.shape()) + ", expected [out, in]");
    if (i == 0) {
      if (w.size(1) % 4 != 0 || w.size(1) == 0)
        throw ModelError(name, "weight shape " + shape_str(w.shape()) + ": input width must be 4*D for [q, k, q-k, q*k]");
    } else if (w.size(1) != in) {
      throw ModelError(name, "weight shape " + shape_str(w.shape()) + ", expected [*, " + std::to_string(in) + "]");
    }
    if (layers[i].b.raw() && layers[i].b.shape() != Shape{w.size(0)})
      throw ModelError(name, "bias shape " + shape_str(layers[i].b.shape()) + ", expected [" + std::to_string(w.size(0)) + "]");
    in = w.size(0);
  }
  if (in != 1)
    throw ModelError("mlp layer " + std::to_string(layers.size() - 1),
                     "weight shape " + shape_str(layers.back().w.shape()) + ": the scoring layer must have 1 output");
  *item_dim = layers[0].w.size(1) / 4;
}

void check_inputs(const Tensor& q, const Tensor& keys, const Tensor& values, const std::vector<int32_t>& lens,
                  int64_t D) {
  auto fail = [&](const std::string& why) {
    throw InternalError("din attention: " + why + " (q " + shape_str(q.shape()) + ", keys " + shape_str(keys.shape()) +
                        ", values " + shape_str(values.shape()) + ", lens " + std::to_string(lens.size()) + ")");
  };
  if (q.dim() != 2 || keys.dim() != 3 || values.dim() != 3) fail("expected q [B, D], keys [B, T, D], values [B, T, Dv]");
  if (q.size(1) != D || keys.size(2) != D) fail("item width must be " + std::to_string(D));
  if (keys.size(0) != q.size(0) || values.size(0) != q.size(0) || values.size(1) != keys.size(1))
    fail("batch or history lengths differ");
  if (!lens.empty() && static_cast<int64_t>(lens.size()) != q.size(0)) fail("one length per batch item needed");
  for (int32_t l : lens)
    if (l < 0 || l > keys.size(1)) fail("length " + std::to_string(l) + " outside [0, " + std::to_string(keys.size(1)) + "]");
}

// The hidden activations in double, for the reference.
double act_double(ops::Act a, double x) {
  switch (a) {
    case ops::Act::none: return x;
    case ops::Act::relu: return x > 0 ? x : 0;
    case ops::Act::tanh: return std::tanh(x);
    case ops::Act::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case ops::Act::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ops::Act::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
  }
  return x;
}

}  // namespace

TargetAttention::TargetAttention(const std::vector<DinLayer>& layers, ops::Act hidden_act) {
  check_layers(layers, &D_);
  for (size_t i = 0; i < layers.size(); ++i) {
    const bool last = i + 1 == layers.size();
    mlp_.emplace_back(as_f32(layers[i].w), layers[i].b.raw() ? as_f32(layers[i].b) : Tensor(),
                      last ? ops::Act::none : hidden_act);
  }
}

// q [B,D], keys [B,T,D], values [B,T,Dv] -> [B,Dv]
Tensor TargetAttention::forward(const Tensor& q_in, const Tensor& keys_in, const Tensor& values_in,
                                const std::vector<int32_t>& lens, Tensor* scores) const {
  check_inputs(q_in, keys_in, values_in, lens, D_);
  const Tensor q = q_in.contiguous(), k = keys_in.contiguous(), v = values_in.contiguous();
  const int64_t B = q.size(0), T = k.size(1), D = D_, Dv = v.size(2);
  // The activation unit's input [q, k, q - k, q * k] for every (b, j): [B*T, 4D].
  Tensor feat = Tensor::empty({B * T, 4 * D});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < T; ++j) {
      const float* qb = q.f32() + b * D;
      const float* kj = k.f32() + (b * T + j) * D;
      float* f = feat.f32() + (b * T + j) * 4 * D;
      for (int64_t c = 0; c < D; ++c) {
        f[c] = qb[c];
        f[D + c] = kj[c];
        f[2 * D + c] = qb[c] - kj[c];
        f[3 * D + c] = qb[c] * kj[c];
      }
    }
  Tensor h = feat;
  for (const ops::Linear& l : mlp_) h = l.forward(h);  // -> [B*T, 1]
  Tensor s = Tensor::empty({B, T}), out = Tensor::zeros({B, Dv});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lens.empty() ? T : lens[static_cast<size_t>(b)];
    for (int64_t j = 0; j < T; ++j) {
      const float w = j < n ? h.f32()[b * T + j] : 0.f;
      s.f32()[b * T + j] = w;
      const float* vj = v.f32() + (b * T + j) * Dv;
      float* ob = out.f32() + b * Dv;
      if (w != 0.f)
        for (int64_t c = 0; c < Dv; ++c) ob[c] += w * vj[c];
    }
  }
  if (scores) *scores = s;
  return out;
}

Tensor din_attention_naive(const Tensor& q_in, const Tensor& keys_in, const Tensor& values_in,
                           const std::vector<int32_t>& lens, const std::vector<DinLayer>& layers, ops::Act hidden_act,
                           Tensor* scores) {
  int64_t D = 0;
  check_layers(layers, &D);
  check_inputs(q_in, keys_in, values_in, lens, D);
  const Tensor q = as_f32(q_in), k = as_f32(keys_in), v = as_f32(values_in);
  const int64_t B = q.size(0), T = k.size(1), Dv = v.size(2);
  std::vector<Tensor> W, Bs;
  for (const DinLayer& l : layers) {
    W.push_back(as_f32(l.w));
    Bs.push_back(l.b.raw() ? as_f32(l.b) : Tensor());
  }
  Tensor s = Tensor::zeros({B, T}), out = Tensor::zeros({B, Dv});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> acc(static_cast<size_t>(Dv), 0.0);
    const int64_t n = lens.empty() ? T : lens[static_cast<size_t>(b)];
    for (int64_t j = 0; j < n; ++j) {
      std::vector<double> x(static_cast<size_t>(4 * D));
      for (int64_t c = 0; c < D; ++c) {
        const double qc = q.f32()[b * D + c], kc = k.f32()[(b * T + j) * D + c];
        x[static_cast<size_t>(c)] = qc;
        x[static_cast<size_t>(D + c)] = kc;
        x[static_cast<size_t>(2 * D + c)] = qc - kc;
        x[static_cast<size_t>(3 * D + c)] = qc * kc;
      }
      for (size_t li = 0; li < W.size(); ++li) {
        const int64_t out_n = W[li].size(0), in_n = W[li].size(1);
        std::vector<double> y(static_cast<size_t>(out_n));
        for (int64_t o = 0; o < out_n; ++o) {
          double a = Bs[li].raw() ? Bs[li].f32()[o] : 0.0;
          for (int64_t c = 0; c < in_n; ++c) a += W[li].f32()[o * in_n + c] * x[static_cast<size_t>(c)];
          if (li + 1 < W.size()) a = act_double(hidden_act, a);
          y[static_cast<size_t>(o)] = a;
        }
        x = std::move(y);
      }
      s.f32()[b * T + j] = static_cast<float>(x[0]);
      for (int64_t c = 0; c < Dv; ++c) acc[static_cast<size_t>(c)] += x[0] * v.f32()[(b * T + j) * Dv + c];
    }
    for (int64_t c = 0; c < Dv; ++c) out.f32()[b * Dv + c] = static_cast<float>(acc[static_cast<size_t>(c)]);
  }
  if (scores) *scores = s;
  return out;
}

}  // namespace xmodal::attn
