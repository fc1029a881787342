// SDPA as a oneDNN composition: matmul (output scale + binary-add mask post-op) -> softmax ->
// matmul. See attention/sdpa.hpp for the layouts and the masking semantics.
#include <cfloat>
#include <cstring>

#include "attention/sdpa.hpp"
#include "core/error.hpp"
#include "core/onednn.hpp"

namespace xmodal::attn {

using dnnl::memory;
using tag = memory::format_tag;

std::string impl_info_of(const dnnl::primitive& prim) {
  const char* s = nullptr;
  const_dnnl_primitive_desc_t pd = prim.get_primitive_desc();
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
  return s;
}

// key_of() plus the inner blocking of a blocked (prepared) layout.
static std::string md_key(const memory::desc& md) {
  std::string k = key_of(md);
  const auto& d = md.data;
  if (d.format_kind == dnnl_blocked && d.format_desc.blocking.inner_nblks > 0) {
    k += "b";
    for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
      k += std::to_string(d.format_desc.blocking.inner_idxs[i]) + ":" +
           std::to_string(d.format_desc.blocking.inner_blks[i]) + ",";
    k += "p";
    for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.padded_dims[i]) + ",";
  }
  return k;
}

// Bytes a memory::desc needs.
static size_t md_bytes(const memory::desc& md) { return md.get_size(); }

static void ensure_buffer(Tensor& buf, int64_t numel, DType dt) {
  if (!buf.raw() || buf.numel() < numel || buf.dtype() != dt) buf = Tensor::empty({numel}, dt);
}

static std::string fkey(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return std::to_string(u);
}

namespace {
enum class MaskKind { none, padding, full };

// The query view [B, Hkv, G*Lq, D]; no copy when q's strides allow it.
memory::desc q_view_md(const Tensor& q, int64_t Hkv, Tensor& holder) {
  const int64_t B = q.size(0), Hq = q.size(1), Lq = q.size(2), D = q.size(3), G = Hq / Hkv;
  const Shape& s = q.strides();
  memory::dims dims{B, Hkv, G * Lq, D};
  memory::data_type dt = dnnl_dtype(q.dtype());
  if (G == 1) return memory::desc(dims, dt, memory::dims{s[0], s[1], s[2], s[3]});
  if (Lq == 1) return memory::desc(dims, dt, memory::dims{s[0], G * s[1], s[1], s[3]});
  if (s[1] == Lq * s[2]) return memory::desc(dims, dt, memory::dims{s[0], G * s[1], s[2], s[3]});
  holder = q.contiguous();
  return memory::desc(dims, dt, tag::abcd);
}
}  // namespace

Tensor SdpaOneDNN::operator()(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p) {
  check_sdpa_shapes(q, k, v, p);
  Tensor out = Tensor::empty({q.size(0), q.size(1), q.size(2), v.size(3)});
  run(q, k, v, p, out);
  return out;
}

void SdpaOneDNN::run(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p, Tensor& out) {
  check_sdpa_shapes(q, k, v, p);
  const Shape& ks = k.strides();
  // K^T [B, Hkv, D, Lk] as a strided view of K.
  memory::desc kt_md({k.size(0), k.size(1), k.size(3), k.size(2)}, dnnl_dtype(k.dtype()),
                     memory::dims{ks[0], ks[1], ks[3], ks[2]});
  run_impl(q, kt_md, k.raw(), md_of(v), v.raw(), k.shape(), v.shape(), p, out);
}

SdpaOneDNN::Prepared SdpaOneDNN::prepare(const Tensor& k, const Tensor& v, int64_t q_heads, int64_t lq) {
  // Validate with a stand-in query of the promised shape.
  Tensor q_stub = Tensor::view_of(nullptr, {k.size(0), q_heads, lq, k.size(3)}, k.dtype());
  check_sdpa_shapes(q_stub, k, v, {});
  const int64_t B = k.size(0), Hkv = k.size(1), Lk = k.size(2), D = k.size(3), Dv = v.size(3);
  const int64_t M = (q_heads / Hkv) * lq;
  const memory::data_type dt = dnnl_dtype(k.dtype());
  const memory::data_type acc = memory::data_type::f32;
  Prepared pr;
  pr.k_shape = k.shape();
  pr.v_shape = v.shape();
  pr.dtype = k.dtype();
  pr.q_heads = q_heads;
  // Ask each matmul which weights layout it wants.
  memory::desc q_md({B, Hkv, M, D}, dt, tag::abcd);
  memory::desc s_md({B, Hkv, M, Lk}, acc, tag::abcd);
  memory::desc p_md({B, Hkv, M, Lk}, dt, tag::abcd);
  memory::desc o_md({B, Hkv, M, Dv}, acc, tag::abcd);
  memory::desc kt_any({B, Hkv, D, Lk}, dt, tag::any), v_any({B, Hkv, Lk, Dv}, dt, tag::any);
  auto& eng = cpu_engine();
  dnnl::matmul::primitive_desc pd1(dnnl::matmul::desc(q_md, kt_any, s_md), eng);
  dnnl::matmul::primitive_desc pd2(dnnl::matmul::desc(p_md, v_any, o_md), eng);
  pr.kt_md = pd1.weights_desc();
  pr.v_md = pd2.weights_desc();
  pr.kt_buf = Tensor::empty({static_cast<int64_t>(md_bytes(pr.kt_md))}, DType::u8);
  pr.v_buf = Tensor::empty({static_cast<int64_t>(md_bytes(pr.v_md))}, DType::u8);
  const Shape& ks = k.strides();
  memory::desc kt_src({B, Hkv, D, Lk}, dt, memory::dims{ks[0], ks[1], ks[3], ks[2]});
  auto reorder = [&](const memory::desc& src_md, const void* src, const memory::desc& dst_md, void* dst,
                     const char* what) {
    auto r = PrimitiveCache::instance().get<dnnl::primitive>(
        std::string("sdpa.reorder|") + md_key(src_md) + "|" + md_key(dst_md),
        [&] { return dnnl::reorder(dnnl::reorder::primitive_desc(eng, src_md, eng, dst_md)); });
    memory ms(src_md, eng, const_cast<void*>(src)), md(dst_md, eng, dst);
    r.execute(cpu_stream(), {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}});
    pr.impl.push_back(std::string("reorder ") + what + ": " + impl_info_of(r));
  };
  reorder(kt_src, k.raw(), pr.kt_md, pr.kt_buf.raw(), "k");
  reorder(md_of(v), v.raw(), pr.v_md, pr.v_buf.raw(), "v");
  cpu_stream().wait();
  return pr;
}

Tensor SdpaOneDNN::operator()(const Tensor& q, const Prepared& kv, const SdpaParams& p) {
  if (q.dim() != 4 || kv.v_shape.size() != 4)
    throw InternalError("sdpa: q " + q.describe() + " with prepared K/V " + shape_str(kv.k_shape) +
                        " (expected q [B, Hq, Lq, D] and a prepare()d K/V)");
  Tensor out = Tensor::empty({q.size(0), q.size(1), q.size(2), kv.v_shape[3]});
  run(q, kv, p, out);
  return out;
}

void SdpaOneDNN::run(const Tensor& q, const Prepared& kv, const SdpaParams& p, Tensor& out) {
  if (kv.k_shape.size() != 4) throw InternalError("sdpa: run with an empty Prepared K/V");
  Tensor k_stub = Tensor::view_of(nullptr, kv.k_shape, kv.dtype);
  Tensor v_stub = Tensor::view_of(nullptr, kv.v_shape, kv.dtype);
  check_sdpa_shapes(q, k_stub, v_stub, p);
  run_impl(q, kv.kt_md, kv.kt_buf.raw(), kv.v_md, kv.v_buf.raw(), kv.k_shape, kv.v_shape, p, out);
}

// q [B,Hq,Lq,D], K^T [B,Hkv,D,Lk] (kt_md), V [B,Hkv,Lk,Dv] (v_md) -> out [B,Hq,Lq,Dv] f32
void SdpaOneDNN::run_impl(const Tensor& q, const memory::desc& kt_md, const void* kt, const memory::desc& v_md,
                          const void* vdata, const Shape& k_shape, const Shape& v_shape, const SdpaParams& p,
                          Tensor& out) {
  const int64_t B = q.size(0), Hq = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k_shape[1], Lk = k_shape[2], Dv = v_shape[3], G = Hq / Hkv, M = G * Lq;
  if (out.dtype() != DType::f32 || !out.is_contiguous() || out.shape() != Shape{B, Hq, Lq, Dv})
    throw InternalError("sdpa: out is " + out.describe() + (out.is_contiguous() ? "" : " (strided)") +
                        ", expected contiguous f32" + shape_str({B, Hq, Lq, Dv}));
  impl_.clear();
  if (out.numel() == 0) return;
  if (Lk == 0) {  // every row fully masked
    std::memset(out.raw(), 0, out.nbytes());
    return;
  }
  const bool bf16 = q.dtype() == DType::bf16;
  const memory::data_type dt = dnnl_dtype(q.dtype());
  const float scale = sdpa_scale(p, D);
  auto& eng = cpu_engine();
  auto& cache = PrimitiveCache::instance();

  Tensor q_holder;
  const memory::desc q_md = q_view_md(q, Hkv, q_holder);
  const void* qdata = q_holder.raw() ? q_holder.raw() : q.raw();

  // The mask, rebuilt only when its signature changes.
  const MaskKind mk = (p.causal || p.window > 0) ? MaskKind::full
                      : !p.kv_lens.empty()       ? MaskKind::padding
                                                 : MaskKind::none;
  memory::desc mask_md;
  if (mk != MaskKind::none) {
    const int64_t rows = mk == MaskKind::full ? M : 1;
    mask_md = memory::desc({B, 1, rows, Lk}, memory::data_type::f32, tag::abcd);
    std::string sig = std::to_string(static_cast<int>(mk)) + "," + std::to_string(B) + "," + std::to_string(rows) +
                      "," + std::to_string(Lq) + "," + std::to_string(Lk) + "," + std::to_string(p.causal) + "," +
                      std::to_string(p.window) + ":";
    for (int32_t l : p.kv_lens) sig += std::to_string(l) + ",";
    if (sig != mask_sig_) {
      ensure_buffer(mask_, B * rows * Lk, DType::f32);
      float* m = mask_.f32();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < rows; ++r) {
          // rows of the full mask are (g, i) pairs; the padding mask has one row for all i
          const KeyRange kr = mk == MaskKind::full ? visible_keys(p, b, r % Lq, Lq, Lk)
                                                   : KeyRange{0, p.kv_lens[static_cast<size_t>(b)]};
          float* row = m + (b * rows + r) * Lk;
          for (int64_t j = 0; j < Lk; ++j) row[j] = (j >= kr.lo && j < kr.hi) ? 0.f : -FLT_MAX;
        }
      mask_sig_ = std::move(sig);
    }
  }

  // 1. S = (Q K^T) * scale + mask
  const memory::desc s_md({B, Hkv, M, Lk}, memory::data_type::f32, tag::abcd);
  ensure_buffer(scores_, B * Hkv * M * Lk, DType::f32);
  std::string k1 = "sdpa.qk|" + md_key(q_md) + "|" + md_key(kt_md) + "|" + md_key(s_md) + "|" + fkey(scale);
  if (mk != MaskKind::none) k1 += "|m" + md_key(mask_md);
  auto mm1 = cache.get<dnnl::primitive>(k1, [&] {
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {scale});
    if (mk != MaskKind::none) {
      dnnl::post_ops po;
      po.append_binary(dnnl::algorithm::binary_add, mask_md);
      attr.set_post_ops(po);
    }
    return dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, s_md), attr, eng));
  });
  {
    memory mq(q_md, eng, const_cast<void*>(qdata)), mk_(kt_md, eng, const_cast<void*>(kt)),
        ms(s_md, eng, scores_.raw());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mq}, {DNNL_ARG_WEIGHTS, mk_}, {DNNL_ARG_DST, ms}};
    if (mk != MaskKind::none)
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, memory(mask_md, eng, mask_.raw()));
    mm1.execute(cpu_stream(), args);
  }
  impl_.push_back("matmul qk: " + impl_info_of(mm1));

  // 2. P = softmax(S) over keys: in place for f32; into a bf16 buffer for bf16 inputs.
  const memory::desc p_md({B, Hkv, M, Lk}, dt, tag::abcd);
  void* pdata = scores_.raw();
  if (bf16) {
    ensure_buffer(probs_, B * Hkv * M * Lk, DType::bf16);
    pdata = probs_.raw();
  }
  auto sm = cache.get<dnnl::primitive>("sdpa.softmax|" + md_key(s_md) + "|" + md_key(p_md), [&] {
    return dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate, s_md,
                                       p_md, 3),
        eng));
  });
  sm.execute(cpu_stream(), {{DNNL_ARG_SRC, memory(s_md, eng, scores_.raw())}, {DNNL_ARG_DST, memory(p_md, eng, pdata)}});
  impl_.push_back("softmax: " + impl_info_of(sm));

  // 3. O = P V, written into out viewed as [B, Hkv, M, Dv].
  const memory::desc o_md({B, Hkv, M, Dv}, memory::data_type::f32, tag::abcd);
  std::string k2 = "sdpa.pv|" + md_key(p_md) + "|" + md_key(v_md) + "|" + md_key(o_md);
  auto mm2 = cache.get<dnnl::primitive>(k2, [&] {
    return dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p_md, v_md, o_md), eng));
  });
  mm2.execute(cpu_stream(), {{DNNL_ARG_SRC, memory(p_md, eng, pdata)},
                             {DNNL_ARG_WEIGHTS, memory(v_md, eng, const_cast<void*>(vdata))},
                             {DNNL_ARG_DST, memory(o_md, eng, out.raw())}});
  impl_.push_back("matmul pv: " + impl_info_of(mm2));
  cpu_stream().wait();

  // 4. Fully masked query rows -> zeros (softmax gave them a uniform row over -FLT_MAX scores).
  if (mk != MaskKind::none) {
    float* o = out.f32();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Lq; ++i) {
        if (!visible_keys(p, b, i, Lq, Lk).empty()) continue;
        for (int64_t h = 0; h < Hq; ++h) std::memset(o + ((b * Hq + h) * Lq + i) * Dv, 0, sizeof(float) * Dv);
      }
  }
}

}  // namespace xmodal::attn
