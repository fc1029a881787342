// oneDNN-backed ops. See core/ops.hpp for the contract and the oneDNN conventions.
#include "core/ops.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "core/error.hpp"
#include "core/onednn.hpp"

namespace xmodal::ops {

using dnnl::memory;
using mdt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

const char* act_name(Act a) {
  switch (a) {
    case Act::none: return "none";
    case Act::relu: return "relu";
    case Act::gelu_erf: return "gelu_erf";
    case Act::gelu_tanh: return "gelu_tanh";
    case Act::tanh: return "tanh";
    case Act::sigmoid: return "sigmoid";
  }
  return "?";
}

namespace {

dnnl::algorithm act_alg(Act a) {
  switch (a) {
    case Act::relu: return dnnl::algorithm::eltwise_relu;
    case Act::gelu_erf: return dnnl::algorithm::eltwise_gelu_erf;
    case Act::gelu_tanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Act::tanh: return dnnl::algorithm::eltwise_tanh;
    case Act::sigmoid: return dnnl::algorithm::eltwise_logistic;
    case Act::none: break;
  }
  throw InternalError(std::string("no oneDNN eltwise algorithm for activation ") + act_name(a));
}

// Post-ops: optional activation, then optional sum (y += result).
dnnl::primitive_attr make_attr(Act a, bool sum, float out_scale = 1.f) {
  dnnl::primitive_attr attr;
  dnnl::post_ops po;
  if (a != Act::none) po.append_eltwise(1.f, act_alg(a), 0.f, 0.f);
  if (sum) po.append_sum(1.f);
  attr.set_post_ops(po);
  if (out_scale != 1.f) attr.set_output_scales(0, {out_scale});
  return attr;
}

// A key that fully identifies a memory desc, including blocked (packed) layouts.
std::string md_key(const memory::desc& md) {
  const auto& d = md.data;
  std::string k = key_of(md);
  if (d.format_kind == dnnl_blocked) {
    const auto& b = d.format_desc.blocking;
    k += "b";
    for (int i = 0; i < b.inner_nblks; ++i) {
      k += std::to_string(b.inner_idxs[i]);
      k += ":";
      k += std::to_string(b.inner_blks[i]);
      k += ",";
    }
  }
  k += "o";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.padded_dims[i]) + ",";
  return k;
}

memory::desc query_md(const dnnl::primitive& p, dnnl_query_t what, int index = 0) {
  const dnnl_memory_desc_t* md = dnnl_primitive_desc_query_md(p.get_primitive_desc(), what, index);
  if (!md) throw InternalError("oneDNN: primitive has no memory desc for query " + std::to_string(static_cast<int>(what)));
  return memory::desc(*md);
}

std::string impl_str(const dnnl::primitive& p) {
  const char* s = nullptr;
  dnnl_primitive_desc_query(p.get_primitive_desc(), dnnl_query_impl_info_str, 0, &s);
  return s ? s : "?";
}

// Contiguous f32 version of t (a copy only when needed).
Tensor as_f32(const Tensor& t) {
  if (t.dtype() == DType::f32) return t.contiguous();
  if (t.dtype() == DType::bf16) return t.to(DType::f32);
  throw InternalError(std::string("expected an f32 or bf16 tensor, got ") + t.describe());
}

void check_f32(const Tensor& t, const char* what) {
  if (t.dtype() != DType::f32) throw InternalError(std::string(what) + ": expected f32, got " + t.describe());
}

dnnl::primitive get_reorder(const memory::desc& from, const memory::desc& to) {
  std::string key = "reorder|" + md_key(from) + "|" + md_key(to);
  return PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    return dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
  });
}

void run_reorder(const dnnl::primitive& r, const memory& from, const memory& to) {
  r.execute(cpu_stream(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

// Raw byte buffer (64-byte aligned) large enough for md.
Tensor buffer_for(const memory::desc& md) {
  return Tensor::empty({static_cast<int64_t>(md.get_size())}, DType::u8);
}

int64_t rows_of(const Tensor& x, int64_t d) { return d == 0 ? 0 : x.numel() / d; }

}  // namespace

// ------------------------------------------------------------------------------------------
// Linear

struct Linear::Packed {
  memory::desc w_md;  // packed layout chosen by oneDNN for [K, N]
  Tensor w_buf;       // owns the packed bytes
  memory w_mem;
  Tensor bias;  // [1, N] f32
  memory b_mem;
  std::string key;  // cache-key prefix: K, N, dtypes, layout, bias, act
};

Linear::Linear(const Tensor& weight, const Tensor& bias, Act act, DType weight_dtype)
    : act_(act), wdt_(weight_dtype) {
  if (weight.dim() != 2) throw InternalError("Linear: weight must be [out, in], got " + weight.describe());
  if (weight_dtype != DType::f32 && weight_dtype != DType::bf16)
    throw InternalError(std::string("Linear: weight dtype must be f32 or bf16, got ") + dtype_name(weight_dtype));
  out_ = weight.size(0);
  in_ = weight.size(1);
  if (out_ <= 0 || in_ <= 0) throw InternalError("Linear: empty weight " + weight.describe());
  has_bias_ = bias.dim() > 0;  // an undefined Tensor() means no bias
  if (has_bias_ && (bias.dim() != 1 || bias.size(0) != out_))
    throw InternalError("Linear: bias " + bias.describe() + " does not match weight " + weight.describe());

  auto p = std::make_shared<Packed>();
  const mdt wt = dnnl_dtype(weight_dtype);
  const memory::dim K = in_, N = out_;
  memory::desc src({1, K}, wt, tag::ab), wany({K, N}, wt, tag::any), dst({1, N}, mdt::f32, tag::ab);
  memory::desc bmd({1, N}, mdt::f32, tag::ab);
  auto attr = make_attr(act, false);
  auto pd = has_bias_ ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wany, bmd, dst), attr, cpu_engine())
                      : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wany, dst), attr, cpu_engine());
  p->w_md = pd.weights_desc();
  p->w_buf = buffer_for(p->w_md);
  p->w_mem = memory(p->w_md, cpu_engine(), p->w_buf.raw());

  // The PyTorch weight [N, K] row-major is W^T [K, N] with strides {1, K}: one reorder packs
  // (and converts f32 <-> bf16) without an intermediate transpose.
  Tensor wsrc = weight.contiguous();
  if (wsrc.dtype() != DType::f32 && wsrc.dtype() != DType::bf16)
    throw InternalError("Linear: weight must be f32 or bf16, got " + weight.describe());
  memory::desc user_md({K, N}, dnnl_dtype(wsrc.dtype()), memory::dims{1, K});
  memory user_mem(user_md, cpu_engine(), const_cast<void*>(wsrc.raw()));
  run_reorder(get_reorder(user_md, p->w_md), user_mem, p->w_mem);
  cpu_stream().wait();

  if (has_bias_) {
    p->bias = as_f32(bias).reshape({1, N});
    if (p->bias.raw() == bias.raw()) p->bias = p->bias.clone();  // own it; callers may reuse theirs
    p->b_mem = memory(bmd, cpu_engine(), p->bias.raw());
  }
  p->key = "linear|K" + std::to_string(K) + "|N" + std::to_string(N) + "|" + md_key(p->w_md) + "|b" +
           std::to_string(has_bias_) + "|" + act_name(act) + "|M";
  p_ = std::move(p);
}

namespace {
dnnl::primitive linear_prim(const std::string& prefix, const memory::desc& w_md, mdt src_t, int64_t M, int64_t K,
                         int64_t N, bool bias, Act act, bool acc) {
  std::string key = prefix + std::to_string(M) + (acc ? "|sum" : "");
  return PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    memory::desc src({M, K}, src_t, tag::ab), dst({M, N}, mdt::f32, tag::ab), bmd({1, N}, mdt::f32, tag::ab);
    auto attr = make_attr(act, acc);
    auto pd = bias ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w_md, bmd, dst), attr, cpu_engine())
                   : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w_md, dst), attr, cpu_engine());
    return dnnl::matmul(pd);
  });
}
}  // namespace

Tensor Linear::forward(const Tensor& x) const {
  if (!p_) throw InternalError("Linear: forward on an empty (default-constructed) Linear");
  if (x.dim() < 1 || x.size(-1) != in_)
    throw InternalError("Linear: input " + x.describe() + " does not end in " + std::to_string(in_));
  Shape os = x.shape();
  os.back() = out_;
  Tensor y = Tensor::empty(os);
  forward_into(x, y, false);
  return y;
}

void Linear::forward_into(const Tensor& x_in, Tensor& y, bool accumulate) const {
  if (!p_) throw InternalError("Linear: forward on an empty (default-constructed) Linear");
  check_f32(x_in, "Linear input");
  check_f32(y, "Linear output");
  if (x_in.dim() < 1 || x_in.size(-1) != in_)
    throw InternalError("Linear: input " + x_in.describe() + " does not end in " + std::to_string(in_));
  const int64_t M = rows_of(x_in, in_);
  if (!y.is_contiguous() || y.dim() < 1 || y.size(-1) != out_ || y.numel() != M * out_)
    throw InternalError("Linear: output " + y.describe() + " must be contiguous [..., " + std::to_string(out_) +
                        "] for input " + x_in.describe());
  if (M == 0) return;
  Tensor x = x_in.contiguous();
  const mdt st = dnnl_dtype(wdt_);
  auto mm = linear_prim(p_->key, p_->w_md, st, M, in_, out_, has_bias_, act_, accumulate);
  memory::desc x32({M, in_}, mdt::f32, tag::ab);
  memory xm(x32, cpu_engine(), x.raw());
  Tensor xb;
  if (wdt_ == DType::bf16) {
    memory::desc x16({M, in_}, mdt::bf16, tag::ab);
    xb = Tensor::empty({M, in_}, DType::bf16);
    memory xbm(x16, cpu_engine(), xb.raw());
    run_reorder(get_reorder(x32, x16), xm, xbm);
    xm = xbm;
  }
  memory ym(memory::desc({M, out_}, mdt::f32, tag::ab), cpu_engine(), y.raw());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, p_->w_mem}, {DNNL_ARG_DST, ym}};
  if (has_bias_) args.emplace(DNNL_ARG_BIAS, p_->b_mem);
  mm.execute(cpu_stream(), args);
  cpu_stream().wait();
}

std::string Linear::impl_info(int64_t rows) const {
  if (!p_) return "empty";
  return impl_str(linear_prim(p_->key, p_->w_md, dnnl_dtype(wdt_), rows, in_, out_, has_bias_, act_, false));
}

// ------------------------------------------------------------------------------------------
// Conv2d

struct Conv2d::State {
  Tensor w_user;  // [O, I/g, kh, kw] contiguous, kept to pack for a new preferred layout
  memory::desc w_user_md;
  Tensor bias;  // [O] f32 (or undefined)
  memory b_mem;
  std::mutex mu;
  std::map<std::string, std::pair<Tensor, memory>> packed;  // md_key -> packed weights
  memory packed_for(const memory::desc& md) {
    std::lock_guard<std::mutex> lock(mu);
    std::string k = md_key(md);
    auto it = packed.find(k);
    if (it != packed.end()) return it->second.second;
    Tensor buf = buffer_for(md);
    memory m(md, cpu_engine(), buf.raw());
    memory um(w_user_md, cpu_engine(), w_user.raw());
    run_reorder(get_reorder(w_user_md, md), um, m);
    cpu_stream().wait();
    packed.emplace(k, std::make_pair(buf, m));
    return m;
  }
};

namespace {
struct ConvGeom {
  int64_t B, C, H, W, O, OH, OW, kh, kw, g;
  std::array<int64_t, 2> s, p;
};

memory::desc conv_w_md(const ConvGeom& c, mdt t, tag tg) {
  if (c.g == 1) return memory::desc({c.O, c.C, c.kh, c.kw}, t, tg == tag::any ? tag::any : tag::oihw);
  return memory::desc({c.g, c.O / c.g, c.C / c.g, c.kh, c.kw}, t, tg == tag::any ? tag::any : tag::goihw);
}

dnnl::primitive conv_prim(const ConvGeom& c, bool bias, Act act) {
  std::string key = "conv|" + std::to_string(c.B) + "," + std::to_string(c.C) + "," + std::to_string(c.H) + "," +
                    std::to_string(c.W) + "|O" + std::to_string(c.O) + "|k" + std::to_string(c.kh) + "x" +
                    std::to_string(c.kw) + "|s" + std::to_string(c.s[0]) + "," + std::to_string(c.s[1]) + "|p" +
                    std::to_string(c.p[0]) + "," + std::to_string(c.p[1]) + "|g" + std::to_string(c.g) + "|b" +
                    std::to_string(bias) + "|" + act_name(act);
  return PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    memory::desc src({c.B, c.C, c.H, c.W}, mdt::f32, tag::any);
    memory::desc dst({c.B, c.O, c.OH, c.OW}, mdt::f32, tag::any);
    memory::desc w = conv_w_md(c, mdt::f32, tag::any);
    memory::desc b({c.O}, mdt::f32, tag::a);
    memory::dims st{c.s[0], c.s[1]}, pd{c.p[0], c.p[1]};
    auto attr = make_attr(act, false);
    auto d = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, src, w, b, dst, st, pd, pd)
                  : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, src, w, dst, st, pd, pd);
    return dnnl::convolution_forward(dnnl::convolution_forward::primitive_desc(d, attr, cpu_engine()));
  });
}
}  // namespace

Conv2d::Conv2d(const Tensor& weight, const Tensor& bias, std::array<int64_t, 2> stride,
               std::array<int64_t, 2> padding, int64_t groups, Act act, int64_t hint_hw)
    : groups_(groups), stride_(stride), pad_(padding), act_(act) {
  if (weight.dim() != 4) throw InternalError("Conv2d: weight must be [O, I/groups, kh, kw], got " + weight.describe());
  if (groups < 1 || weight.size(0) % groups)
    throw InternalError("Conv2d: groups " + std::to_string(groups) + " does not divide " + weight.describe());
  if (stride[0] < 1 || stride[1] < 1 || padding[0] < 0 || padding[1] < 0)
    throw InternalError("Conv2d: bad stride/padding " + std::to_string(stride[0]) + "," + std::to_string(stride[1]) +
                        " / " + std::to_string(padding[0]) + "," + std::to_string(padding[1]));
  out_ = weight.size(0);
  in_ = weight.size(1) * groups;
  kh_ = weight.size(2);
  kw_ = weight.size(3);
  const bool has_bias = bias.dim() > 0;
  if (has_bias && (bias.dim() != 1 || bias.size(0) != out_))
    throw InternalError("Conv2d: bias " + bias.describe() + " does not match weight " + weight.describe());
  s_ = std::make_shared<State>();
  s_->w_user = as_f32(weight);
  if (s_->w_user.raw() == weight.raw()) s_->w_user = s_->w_user.clone();
  ConvGeom c{1, in_, std::max(hint_hw, kh_), std::max(hint_hw, kw_), out_, 0, 0, kh_, kw_, groups_, stride_, pad_};
  s_->w_user_md = conv_w_md(c, mdt::f32, tag::oihw);
  if (has_bias) {
    s_->bias = as_f32(bias);
    if (s_->bias.raw() == bias.raw()) s_->bias = s_->bias.clone();
    s_->b_mem = memory(memory::desc({out_}, mdt::f32, tag::a), cpu_engine(), s_->bias.raw());
  }
  auto o = output_hw(c.H, c.W);
  c.OH = o[0];
  c.OW = o[1];
  if (c.OH > 0 && c.OW > 0) s_->packed_for(query_md(conv_prim(c, has_bias, act_), dnnl_query_weights_md));
}

std::array<int64_t, 2> Conv2d::output_hw(int64_t h, int64_t w) const {
  return {(h + 2 * pad_[0] - kh_) / stride_[0] + 1, (w + 2 * pad_[1] - kw_) / stride_[1] + 1};
}

std::string Conv2d::impl_info(int64_t b, int64_t h, int64_t w) const {
  if (!s_) return "empty";
  auto o = output_hw(h, w);
  ConvGeom c{b, in_, h, w, out_, o[0], o[1], kh_, kw_, groups_, stride_, pad_};
  return impl_str(conv_prim(c, s_->bias.numel() > 0, act_));
}

Tensor Conv2d::forward(const Tensor& x_in) const {
  if (!s_) throw InternalError("Conv2d: forward on an empty (default-constructed) Conv2d");
  check_f32(x_in, "Conv2d input");
  if (x_in.dim() != 4 || x_in.size(1) != in_)
    throw InternalError("Conv2d: input " + x_in.describe() + " is not [B, " + std::to_string(in_) + ", H, W]");
  const int64_t B = x_in.size(0), H = x_in.size(2), W = x_in.size(3);
  if (H + 2 * pad_[0] < kh_ || W + 2 * pad_[1] < kw_)
    throw InternalError("Conv2d: input " + x_in.describe() + " is smaller than the kernel " + std::to_string(kh_) +
                        "x" + std::to_string(kw_));
  auto o = output_hw(H, W);
  Tensor y = Tensor::empty({B, out_, o[0], o[1]});
  if (B == 0) return y;
  Tensor x = x_in.contiguous();
  ConvGeom c{B, in_, H, W, out_, o[0], o[1], kh_, kw_, groups_, stride_, pad_};
  const bool has_bias = s_->bias.numel() > 0;
  auto conv = conv_prim(c, has_bias, act_);
  memory::desc src_md = query_md(conv, dnnl_query_src_md), dst_md = query_md(conv, dnnl_query_dst_md);
  memory wm = s_->packed_for(query_md(conv, dnnl_query_weights_md));
  memory::desc x_plain({B, in_, H, W}, mdt::f32, tag::nchw), y_plain({B, out_, o[0], o[1]}, mdt::f32, tag::nchw);
  memory xm(x_plain, cpu_engine(), x.raw()), ym(y_plain, cpu_engine(), y.raw());
  memory src = xm, dst = ym;
  Tensor xbuf, ybuf;
  if (src_md != x_plain) {
    xbuf = buffer_for(src_md);
    src = memory(src_md, cpu_engine(), xbuf.raw());
    run_reorder(get_reorder(x_plain, src_md), xm, src);
  }
  if (dst_md != y_plain) {
    ybuf = buffer_for(dst_md);
    dst = memory(dst_md, cpu_engine(), ybuf.raw());
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.emplace(DNNL_ARG_BIAS, s_->b_mem);
  conv.execute(cpu_stream(), args);
  if (dst_md != y_plain) run_reorder(get_reorder(dst_md, y_plain), dst, ym);
  cpu_stream().wait();
  return y;
}

std::pair<Tensor, Tensor> fold_batchnorm(const Tensor& weight, const Tensor& bias, const Tensor& gamma,
                                         const Tensor& beta, const Tensor& mean, const Tensor& var, float eps) {
  if (weight.dim() < 1) throw InternalError("fold_batchnorm: weight " + weight.describe());
  const int64_t O = weight.size(0);
  for (const Tensor* t : {&gamma, &beta, &mean, &var})
    if (t->dim() != 1 || t->size(0) != O)
      throw InternalError("fold_batchnorm: " + t->describe() + " does not match weight " + weight.describe());
  Tensor w = as_f32(weight).clone(), g = as_f32(gamma), be = as_f32(beta), mu = as_f32(mean), va = as_f32(var);
  Tensor b = Tensor::zeros({O});
  Tensor b0 = bias.numel() > 0 ? as_f32(bias) : Tensor();
  const int64_t per = O ? w.numel() / O : 0;
  for (int64_t o = 0; o < O; ++o) {
    const double s = g.f32()[o] / std::sqrt(static_cast<double>(va.f32()[o]) + eps);
    float* wr = w.f32() + o * per;
    for (int64_t i = 0; i < per; ++i) wr[i] = static_cast<float>(wr[i] * s);
    const double b_old = b0.numel() ? b0.f32()[o] : 0.0;
    b.f32()[o] = static_cast<float>((b_old - mu.f32()[o]) * s + be.f32()[o]);
  }
  return {w, b};
}

// ------------------------------------------------------------------------------------------
// Normalisation, activations, softmax, add

Tensor layer_norm(const Tensor& x_in, const Tensor& gamma, const Tensor& beta, float eps) {
  check_f32(x_in, "layer_norm input");
  if (x_in.dim() < 1) throw InternalError("layer_norm: scalar input");
  const int64_t D = x_in.size(-1);
  if (gamma.numel() != D || beta.numel() != D)
    throw InternalError("layer_norm: gamma " + gamma.describe() + " / beta " + beta.describe() + " do not match " +
                        x_in.describe());
  Tensor x = x_in.contiguous(), g = as_f32(gamma), b = as_f32(beta);
  Tensor y = Tensor::empty(x.shape());
  const int64_t M = rows_of(x, D);
  if (M == 0) return y;
  memory::desc md({M, D}, mdt::f32, tag::ab), smd({D}, mdt::f32, tag::a);
  std::string key = "layer_norm|" + std::to_string(M) + "," + std::to_string(D) + "|eps" + std::to_string(eps);
  auto ln = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    auto d = dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, md, eps,
                                                     dnnl::normalization_flags::use_scale |
                                                         dnnl::normalization_flags::use_shift);
    return dnnl::layer_normalization_forward(dnnl::layer_normalization_forward::primitive_desc(d, cpu_engine()));
  });
  memory xm(md, cpu_engine(), x.raw()), ym(md, cpu_engine(), y.raw());
  memory gm(smd, cpu_engine(), g.raw()), bm(smd, cpu_engine(), b.raw());
  ln.execute(cpu_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}, {DNNL_ARG_SCALE, gm}, {DNNL_ARG_SHIFT, bm}});
  cpu_stream().wait();
  return y;
}

void activation_inplace(Tensor& x, Act a) {
  check_f32(x, "activation input");
  if (!x.is_contiguous()) throw InternalError("activation_inplace: input " + x.describe() + " is not contiguous");
  if (a == Act::none || x.numel() == 0) return;
  const int64_t n = x.numel();
  memory::desc md({n}, mdt::f32, tag::a);
  std::string key = std::string("eltwise|") + act_name(a) + "|" + std::to_string(n);
  auto e = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    auto d = dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, act_alg(a), md, 0.f, 0.f);
    return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, cpu_engine()));
  });
  memory m(md, cpu_engine(), x.raw());
  e.execute(cpu_stream(), {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  cpu_stream().wait();
}

Tensor activation(const Tensor& x, Act a) {
  check_f32(x, "activation input");
  Tensor y = x.clone();
  activation_inplace(y, a);
  return y;
}

static Tensor softmax_impl(const Tensor& x_in, bool log) {
  check_f32(x_in, "softmax input");
  if (x_in.dim() < 1) throw InternalError("softmax: scalar input");
  const int64_t N = x_in.size(-1);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape());
  const int64_t M = rows_of(x, N);
  if (M == 0) return y;
  memory::desc md({M, N}, mdt::f32, tag::ab);
  std::string key = std::string(log ? "logsoftmax|" : "softmax|") + std::to_string(M) + "," + std::to_string(N);
  dnnl::primitive p;
  if (log) {
    p = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
      auto d = dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1);
      return dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc(d, cpu_engine()));
    });
  } else {
    p = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
      auto d = dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1);
      return dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(d, cpu_engine()));
    });
  }
  memory xm(md, cpu_engine(), x.raw()), ym(md, cpu_engine(), y.raw());
  p.execute(cpu_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}});
  cpu_stream().wait();
  return y;
}

Tensor softmax_lastdim(const Tensor& x) { return softmax_impl(x, false); }
Tensor log_softmax_lastdim(const Tensor& x) { return softmax_impl(x, true); }

static void add_impl(const Tensor& a, const Tensor& b_in, Tensor& out) {
  check_f32(a, "add lhs");
  check_f32(b_in, "add rhs");
  const int64_t D = a.dim() ? a.size(-1) : 1;
  const bool row = b_in.dim() == 1 && b_in.size(0) == D && a.dim() != 1;
  if (!row && b_in.shape() != a.shape())
    throw InternalError("add: " + b_in.describe() + " is neither the shape of " + a.describe() + " nor a row [" +
                        std::to_string(D) + "]");
  const int64_t M = rows_of(a, D);
  if (M == 0) return;
  Tensor b = b_in.contiguous();
  memory::desc md({M, D}, mdt::f32, tag::ab), bmd({row ? 1 : M, D}, mdt::f32, tag::ab);
  std::string key = "add|" + std::to_string(M) + "," + std::to_string(D) + (row ? "|row" : "|full");
  auto p = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    auto d = dnnl::binary::desc(dnnl::algorithm::binary_add, md, bmd, md);
    return dnnl::binary(dnnl::binary::primitive_desc(d, cpu_engine()));
  });
  memory am(md, cpu_engine(), const_cast<void*>(a.raw())), bm(bmd, cpu_engine(), b.raw()),
      om(md, cpu_engine(), out.raw());
  p.execute(cpu_stream(), {{DNNL_ARG_SRC_0, am}, {DNNL_ARG_SRC_1, bm}, {DNNL_ARG_DST, om}});
  cpu_stream().wait();
}

Tensor add(const Tensor& a_in, const Tensor& b) {
  Tensor a = a_in.contiguous();
  Tensor y = Tensor::empty(a.shape());
  add_impl(a, b, y);
  return y;
}

void add_inplace(Tensor& a, const Tensor& b) {
  if (!a.is_contiguous()) throw InternalError("add_inplace: " + a.describe() + " is not contiguous");
  add_impl(a, b, a);
}

Tensor embedding(const Tensor& table_in, const std::vector<int32_t>& ids) {
  if (table_in.dim() != 2) throw InternalError("embedding: table must be [V, D], got " + table_in.describe());
  Tensor table = as_f32(table_in);
  const int64_t V = table.size(0), D = table.size(1), N = static_cast<int64_t>(ids.size());
  Tensor y = Tensor::empty({N, D});
  for (int64_t i = 0; i < N; ++i) {
    const int64_t id = ids[static_cast<size_t>(i)];
    if (id < 0 || id >= V)
      throw InternalError("embedding: id " + std::to_string(id) + " at position " + std::to_string(i) +
                          " is outside the table of " + std::to_string(V) + " rows");
    std::memcpy(y.f32() + i * D, table.f32() + id * D, static_cast<size_t>(D) * sizeof(float));
  }
  return y;
}

// ------------------------------------------------------------------------------------------
// Generic batched matmul

Tensor matmul(const Tensor& a, const Tensor& b, float scale) {
  check_f32(a, "matmul lhs");
  check_f32(b, "matmul rhs");
  if (a.dim() < 2 || b.dim() < 2 || (b.dim() != 2 && b.dim() != a.dim()))
    throw InternalError("matmul: ranks of " + a.describe() + " and " + b.describe() + " do not fit [..., M, K] x [..., K, N]");
  const int64_t nd = a.dim();
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (b.size(-2) != K) throw InternalError("matmul: inner dims differ: " + a.describe() + " x " + b.describe());
  memory::dims ad(a.shape().begin(), a.shape().end()), as(a.strides().begin(), a.strides().end());
  memory::dims bd(static_cast<size_t>(nd), 1), bs(static_cast<size_t>(nd), 0);
  const int64_t off = nd - b.dim();
  for (int64_t i = 0; i < b.dim(); ++i) {
    bd[static_cast<size_t>(i + off)] = b.shape()[static_cast<size_t>(i)];
    bs[static_cast<size_t>(i + off)] = b.strides()[static_cast<size_t>(i)];
  }
  for (int64_t i = 0; i < off; ++i) bs[static_cast<size_t>(i)] = K * N;  // broadcast dims of size 1
  Shape ys(static_cast<size_t>(nd));
  for (int64_t i = 0; i < nd - 2; ++i) {
    const int64_t x = ad[static_cast<size_t>(i)], y = bd[static_cast<size_t>(i)];
    if (x != y && x != 1 && y != 1)
      throw InternalError("matmul: batch dims of " + a.describe() + " and " + b.describe() + " do not broadcast");
    ys[static_cast<size_t>(i)] = std::max(x, y);
  }
  ys[static_cast<size_t>(nd - 2)] = M;
  ys[static_cast<size_t>(nd - 1)] = N;
  Tensor y = Tensor::empty(ys);
  if (y.numel() == 0) return y;
  if (K == 0) {
    std::memset(y.raw(), 0, y.nbytes());
    return y;
  }
  // Zero-sized strides confuse oneDNN; a size-1 dim may carry any stride, so normalise them.
  for (size_t i = 0; i < ad.size(); ++i)
    if (ad[i] == 1) as[i] = 1;
  for (size_t i = 0; i < bd.size(); ++i)
    if (bd[i] == 1) bs[i] = 1;
  memory::desc amd(ad, mdt::f32, as), bmd(bd, mdt::f32, bs), ymd = md_of(y);
  std::string key = "matmul|" + md_key(amd) + "|" + md_key(bmd) + "|" + md_key(ymd) + "|s" + std::to_string(scale);
  auto p = PrimitiveCache::instance().get<dnnl::primitive>(key, [&] {
    return dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(amd, bmd, ymd), make_attr(Act::none, false, scale),
                                                     cpu_engine()));
  });
  memory am(amd, cpu_engine(), const_cast<void*>(a.raw())), bm(bmd, cpu_engine(), const_cast<void*>(b.raw())),
      ym(ymd, cpu_engine(), y.raw());
  p.execute(cpu_stream(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, ym}});
  cpu_stream().wait();
  return y;
}

// ------------------------------------------------------------------------------------------
// Pooling (plain loops: memory-bound and small next to the convolutions around them)

Tensor max_pool2d(const Tensor& x_in, std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> p) {
  check_f32(x_in, "max_pool2d input");
  if (x_in.dim() != 4) throw InternalError("max_pool2d: input must be [B, C, H, W], got " + x_in.describe());
  if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0 || 2 * p[0] > k[0] || 2 * p[1] > k[1])
    throw InternalError("max_pool2d: bad kernel/stride/padding for " + x_in.describe());
  Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * p[0] - k[0]) / s[0] + 1, OW = (W + 2 * p[1] - k[1]) / s[1] + 1;
  if (OH < 1 || OW < 1) throw InternalError("max_pool2d: input " + x.describe() + " is smaller than the kernel");
  Tensor y = Tensor::empty({B, C, OH, OW});
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const float* src = xp + bc * H * W;
    float* dst = yp + bc * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < k[0]; ++i) {
          const int64_t h = oh * s[0] - p[0] + i;
          if (h < 0 || h >= H) continue;
          for (int64_t j = 0; j < k[1]; ++j) {
            const int64_t w = ow * s[1] - p[1] + j;
            if (w >= 0 && w < W) m = std::max(m, src[h * W + w]);
          }
        }
        dst[oh * OW + ow] = m;
      }
  }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x_in) {
  check_f32(x_in, "global_avg_pool2d input");
  if (x_in.dim() != 4) throw InternalError("global_avg_pool2d: input must be [B, C, H, W], got " + x_in.describe());
  Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = Tensor::empty({B, C});
  for (int64_t bc = 0; bc < B * C; ++bc) {
    double s = 0;
    const float* src = x.f32() + bc * HW;
    for (int64_t i = 0; i < HW; ++i) s += src[i];
    y.f32()[bc] = HW ? static_cast<float>(s / static_cast<double>(HW)) : 0.f;
  }
  return y;
}

}  // namespace xmodal::ops
