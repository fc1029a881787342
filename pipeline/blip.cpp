// BLIP: configuration, loading by Hugging Face tensor names, preprocessing, the vision ViT, the
// text BERT with cross-attention, the LM head, and decoding (greedy, beam, VQA rank).
// See pipeline/blip.hpp for the graph and training/blip_reference.py for the reference.
#include "pipeline/blip.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>

#include <sys/mman.h>
#include <unistd.h>

#include "attention/mha.hpp"
#include "attention/sdpa.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/fs.hpp"
#include "core/ops.hpp"
#include "pipeline/weights.hpp"

namespace xmodal::blip {

namespace {

using attn::CrossMemory;
using attn::KVCache;
using attn::MhaConfig;
using attn::MhaWeights;
using attn::MultiHeadAttention;
using attn::SdpaParams;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Once a layer's weights are packed (or copied), their pages of the checkpoint mapping are dropped
// from this process (MADV_DONTNEED on a read-only private file mapping: the file is untouched, a
// later read would fault the page back in). Without this, peak memory is the whole mapped file
// plus the packed copies. Only pages entirely inside a tensor are released.
void release_prefix(const SafetensorsFile& f, const std::string& prefix) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (const StEntry& e : f.entries()) {
    if (e.name.compare(0, prefix.size(), prefix) != 0 || !st_tensor_dtype(e.dtype)) continue;
    const Tensor v = f.view(e.name);
    const uintptr_t b = reinterpret_cast<uintptr_t>(v.raw()), end = b + v.nbytes();
    const uintptr_t lo = (b + page - 1) & ~(page - 1), hi = end & ~(page - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
}

// Owned copy: nothing we keep may point into the checkpoint's mmap, so that the mapping (and the
// page cache it holds resident) goes away once loading is done.
Tensor own(const Tensor& t) { return t.clone(); }

struct LayerNorm {
  Tensor gamma, beta;  // <scope>.weight [D], <scope>.bias [D]
  float eps = 1e-5f;
  LayerNorm() = default;
  LayerNorm(const Weights& w, int64_t d, float e) : gamma(own(w.take("weight", {d}))), beta(own(w.take("bias", {d}))), eps(e) {}
  // x [..., D] -> [..., D]
  Tensor operator()(const Tensor& x) const { return ops::layer_norm(x, gamma, beta, eps); }
};

// <scope>.weight [out, in], <scope>.bias [out]
ops::Linear take_linear(const Weights& w, int64_t out, int64_t in, ops::Act act, DType wdt) {
  return ops::Linear(w.take("weight", {out, in}), w.take("bias", {out}), act, wdt);
}

// ------------------------------------------------------------------------------------ vision

struct VisionLayer {
  LayerNorm ln1;             // vision_model.encoder.layers.{i}.layer_norm1
  MultiHeadAttention attn;   // .self_attn.qkv [3D, D] rows [Q; K; V], .self_attn.projection [D, D]
  LayerNorm ln2;             // .layer_norm2
  ops::Linear fc1;           // .mlp.fc1 [I, D], GELU fused
  ops::Linear fc2;           // .mlp.fc2 [D, I], residual add fused
};

class Vision {
 public:
  Vision() = default;
  Vision(const Weights& w, const VisionConfig& c, DType wdt, attn::SdpaBackend be) : c_(c) {
    const int64_t D = c.hidden, P = c.patch_size, N = c.tokens();
    const Weights e = w.scope("embeddings");
    // vision_model.embeddings.patch_embedding.weight [D, 3, P, P], .bias [D]
    patch_ = ops::Conv2d(e.take("patch_embedding.weight", {D, 3, P, P}), own(e.take("patch_embedding.bias", {D})),
                         {P, P}, {0, 0}, 1, ops::Act::none, c.image_size);
    cls_ = own(e.take("class_embedding", {1, 1, D}));     // vision_model.embeddings.class_embedding
    pos_ = own(e.take("position_embedding", {1, N, D}));  // vision_model.embeddings.position_embedding
    release_prefix(w.file(), e.full_name(""));
    for (int64_t i = 0; i < c.layers; ++i) {
      const Weights l = w.scope("encoder.layers." + std::to_string(i));
      MhaConfig mc;
      mc.d_model = D;
      mc.n_heads = c.heads;
      mc.weight_dtype = wdt;
      MhaWeights mw;
      mw.qkv_w = l.take("self_attn.qkv.weight", {3 * D, D});
      mw.qkv_b = l.take("self_attn.qkv.bias", {3 * D});
      mw.o_w = l.take("self_attn.projection.weight", {D, D});
      mw.o_b = l.take("self_attn.projection.bias", {D});
      MultiHeadAttention mha(mc, mw);
      mha.set_backend(be);
      layers_.push_back({LayerNorm(l.scope("layer_norm1"), D, c.eps), std::move(mha),
                         LayerNorm(l.scope("layer_norm2"), D, c.eps),
                         take_linear(l.scope("mlp.fc1"), c.intermediate, D, ops::Act::gelu_erf, wdt),
                         take_linear(l.scope("mlp.fc2"), D, c.intermediate, ops::Act::none, wdt)});
      release_prefix(w.file(), l.full_name(""));
    }
    post_ = LayerNorm(w.scope("post_layernorm"), D, c.eps);  // vision_model.post_layernorm
  }

  // pixels [B, 3, S, S] -> [B, 1 + g*g, D]
  Tensor forward(const Tensor& pixels) const {
    const int64_t S = c_.image_size, D = c_.hidden, N = c_.tokens(), G = c_.grid();
    if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(2) != S || pixels.size(3) != S)
      throw InternalError("blip vision: pixels " + pixels.describe() + ", expected [B, 3, " + std::to_string(S) +
                          ", " + std::to_string(S) + "]");
    const int64_t B = pixels.size(0);
    Tensor pe = patch_.forward(pixels.contiguous());  // [B, D, G, G]
    Tensor x = Tensor::empty({B, N, D});
    const float* cls = cls_.f32();
    const float* pos = pos_.f32();
    for (int64_t b = 0; b < B; ++b) {
      float* xb = x.f32() + b * N * D;
      const float* pb = pe.f32() + b * D * G * G;
      for (int64_t d = 0; d < D; ++d) xb[d] = cls[d] + pos[d];
      for (int64_t n = 1; n < N; ++n)
        for (int64_t d = 0; d < D; ++d) xb[n * D + d] = pb[d * G * G + (n - 1)] + pos[n * D + d];
    }
    for (const VisionLayer& l : layers_) {
      Tensor a = l.attn.forward(l.ln1(x));
      ops::add_inplace(x, a);
      Tensor m = l.fc1.forward(l.ln2(x));
      l.fc2.forward_into(m, x, /*accumulate=*/true);
    }
    return post_(x);
  }

 private:
  VisionConfig c_;
  ops::Conv2d patch_;
  Tensor cls_, pos_;
  std::vector<VisionLayer> layers_;
  LayerNorm post_;
};

// -------------------------------------------------------------------------------------- text

struct TextLayer {
  MultiHeadAttention self_attn;   // <bert>.encoder.layer.{i}.attention.self.{query,key,value} [D, D],
                                  //   .attention.output.dense [D, D]
  LayerNorm self_ln;              // .attention.output.LayerNorm
  MultiHeadAttention cross_attn;  // .crossattention.self.query [D, D], .key/.value [D, Dm],
                                  //   .crossattention.output.dense [D, D]
  LayerNorm cross_ln;             // .crossattention.output.LayerNorm
  ops::Linear inter;              // .intermediate.dense [I, D], GELU fused
  ops::Linear out;                // .output.dense [D, I], residual add fused
  LayerNorm out_ln;               // .output.LayerNorm
  std::optional<ops::Linear> cross_q;  // the cross query again, for attention maps only
};

// Per-step attention-map accumulator: the last query row of each batch entry.
struct MapAccum {
  int64_t batch = 0, keys = 0;
  std::vector<float> sum;  // [batch, keys]
};

class Text {
 public:
  struct State {
    std::vector<KVCache> self;
    std::vector<CrossMemory> cross;
    int64_t batch = 0, pos = 0;
  };

  Text() = default;
  // w: the BERT scope ("text_decoder.bert" or "text_encoder"); memory_dim: what cross-attention
  // reads (vision hidden for the caption decoder and the question encoder, text hidden for the
  // answer decoder).
  Text(const Weights& w, const TextConfig& c, int64_t memory_dim, DType wdt, bool maps, attn::SdpaBackend be) : c_(c), backend_(be) {
    const int64_t D = c.hidden, V = c.vocab, Dm = memory_dim;
    const Weights e = w.scope("embeddings");
    // <bert>.embeddings.word_embeddings.weight [V, D]; kept in bf16 when the weights are bf16
    const Tensor word = e.take("word_embeddings.weight", {V, D});
    word_ = wdt == DType::bf16 ? word.to(DType::bf16) : own(word);
    pos_ = own(e.take("position_embeddings.weight", {c.max_positions, D}));  // .position_embeddings
    e.ignore("position_ids");  // a buffer (arange) in checkpoints saved by older transformers
    emb_ln_ = LayerNorm(e.scope("LayerNorm"), D, c.eps);
    release_prefix(w.file(), e.full_name(""));
    for (int64_t i = 0; i < c.layers; ++i) {
      const Weights l = w.scope("encoder.layer." + std::to_string(i));
      auto attention = [&](const std::string& name, int64_t kv_in, bool cross) {
        const Weights a = l.scope(name);
        MhaConfig mc;
        mc.d_model = D;
        mc.n_heads = c.heads;
        mc.kv_dim = kv_in;
        mc.cross = cross;
        mc.weight_dtype = wdt;
        MhaWeights mw;
        mw.q_w = a.take("self.query.weight", {D, D});
        mw.q_b = a.take("self.query.bias", {D});
        mw.k_w = a.take("self.key.weight", {D, kv_in});
        mw.k_b = a.take("self.key.bias", {D});
        mw.v_w = a.take("self.value.weight", {D, kv_in});
        mw.v_b = a.take("self.value.bias", {D});
        mw.o_w = a.take("output.dense.weight", {D, D});
        mw.o_b = a.take("output.dense.bias", {D});
        MultiHeadAttention mha(mc, mw);
        mha.set_backend(be);
        return mha;
      };
      TextLayer t{attention("attention", D, false),
                  LayerNorm(l.scope("attention.output.LayerNorm"), D, c.eps),
                  attention("crossattention", Dm, true),
                  LayerNorm(l.scope("crossattention.output.LayerNorm"), D, c.eps),
                  take_linear(l.scope("intermediate.dense"), c.intermediate, D, ops::Act::gelu_erf, wdt),
                  take_linear(l.scope("output.dense"), D, c.intermediate, ops::Act::none, wdt),
                  LayerNorm(l.scope("output.LayerNorm"), D, c.eps),
                  std::nullopt};
      if (maps) t.cross_q = take_linear(l.scope("crossattention.self.query"), D, D, ops::Act::none, DType::f32);
      layers_.push_back(std::move(t));
      release_prefix(w.file(), l.full_name(""));
    }
  }

  const Tensor& word_embeddings() const { return word_; }

  // memory [B, M, Dm]: projects every layer's cross K/V once; capacity = longest sequence.
  State start(const Tensor& memory, int64_t capacity) const {
    State s;
    s.batch = memory.size(0);
    for (const TextLayer& l : layers_) {
      s.self.push_back(l.self_attn.make_cache(s.batch, capacity));
      s.cross.push_back(l.cross_attn.project_memory(memory));
    }
    return s;
  }

  // The same cross K/V for n copies of a batch-1 state's input (beams, ranked answers).
  State start_replicated(const State& one, int64_t n, int64_t capacity) const {
    State s;
    s.batch = n;
    attn::SdpaOneDNN prep;
    for (size_t i = 0; i < layers_.size(); ++i) {
      s.self.push_back(layers_[i].self_attn.make_cache(n, capacity));
      const CrossMemory& m = one.cross[i];
      CrossMemory r;
      r.k = repeat_batch(m.k, n);
      r.v = repeat_batch(m.v, n);
      if (backend_ == attn::SdpaBackend::onednn) r.prepared = prep.prepare(r.k, r.v, c_.heads, 1);
      s.cross.push_back(std::move(r));
    }
    return s;
  }

  // ids: T new ids per batch entry, row-major [B, T]. -> hidden [B, T, D]. causal: the decoder
  // (queries see the cache and the earlier new ids); otherwise bidirectional (the encoder).
  Tensor step(State& s, const std::vector<int32_t>& ids, int64_t T, bool causal, MapAccum* maps = nullptr) const {
    const int64_t B = s.batch, D = c_.hidden;
    if (static_cast<int64_t>(ids.size()) != B * T)
      throw InternalError("blip text: " + std::to_string(ids.size()) + " ids for batch " + std::to_string(B) +
                          " x " + std::to_string(T));
    if (s.pos + T > c_.max_positions)
      throw InputError("text", "sequence of " + std::to_string(s.pos + T) + " tokens is longer than the model's " +
                                   std::to_string(c_.max_positions) + " positions");
    // word (f32 or bf16 table) + position embeddings
    Tensor x = Tensor::empty({B, T, D});
    float* xp = x.f32();
    const float* pp = pos_.f32();
    const int64_t V = word_.size(0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t id = ids[static_cast<size_t>(b * T + t)];
        if (id < 0 || id >= V)
          throw InternalError("blip text: id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(V));
        float* row = xp + (b * T + t) * D;
        const float* prow = pp + (s.pos + t) * D;
        if (word_.dtype() == DType::bf16) {
          const uint16_t* w = word_.data<uint16_t>() + id * D;
          for (int64_t d = 0; d < D; ++d) row[d] = bf16_to_f32(w[d]) + prow[d];
        } else {
          const float* w = word_.f32() + id * D;
          for (int64_t d = 0; d < D; ++d) row[d] = w[d] + prow[d];
        }
      }
    x = emb_ln_(x);
    SdpaParams self_mask;
    self_mask.causal = causal;
    if (maps) {
      maps->batch = B;
      maps->keys = s.cross.empty() ? 0 : s.cross[0].length();
      maps->sum.assign(static_cast<size_t>(B * maps->keys), 0.f);
    }
    for (size_t i = 0; i < layers_.size(); ++i) {
      const TextLayer& l = layers_[i];
      Tensor a = l.self_attn.forward(x, s.self[i], self_mask);
      ops::add_inplace(a, x);
      x = l.self_ln(a);
      if (maps && l.cross_q) accumulate_map(*l.cross_q, x, s.cross[i], *maps);
      Tensor c = l.cross_attn.forward(x, s.cross[i]);
      ops::add_inplace(c, x);
      x = l.cross_ln(c);
      Tensor m = l.inter.forward(x);
      l.out.forward_into(m, x, /*accumulate=*/true);
      x = l.out_ln(x);
    }
    if (maps) {
      const float inv = 1.f / static_cast<float>(layers_.size() * static_cast<size_t>(c_.heads));
      for (float& v : maps->sum) v *= inv;
    }
    s.pos += T;
    return x;
  }

  static void reorder(State& s, const std::vector<int32_t>& src) {
    for (KVCache& k : s.self) k.reorder(src);
  }

 private:
  // x [B, M, hd...] -> n copies of batch entry 0: [n, ...]
  static Tensor repeat_batch(const Tensor& t, int64_t n) {
    Shape sh = t.shape();
    sh[0] = n;
    Tensor out = Tensor::empty(sh);
    Tensor one = t.slice(0, 0, 1).contiguous();
    for (int64_t i = 0; i < n; ++i) std::memcpy(out.f32() + i * one.numel(), one.f32(), one.nbytes());
    return out;
  }

  // Adds the softmax(q k^T / sqrt(hd)) rows of every head for the last query row of each batch
  // entry. x [B, T, D], mem.k [B, H, M, hd].
  void accumulate_map(const ops::Linear& q_lin, const Tensor& x, const CrossMemory& mem, MapAccum& acc) const {
    const int64_t B = x.size(0), T = x.size(1), D = c_.hidden, H = c_.heads, hd = D / H, M = mem.length();
    Tensor last = x.slice(1, T - 1, T).contiguous();  // [B, 1, D]
    Tensor q = q_lin.forward(last);                    // [B, 1, D]
    const float scale = 1.f / std::sqrt(static_cast<float>(hd));
    std::vector<float> s(static_cast<size_t>(M));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const float* qh = q.f32() + b * D + h * hd;
        const float* k = mem.k.f32() + ((b * H + h) * M) * hd;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < M; ++j) {
          float dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += qh[d] * k[j * hd + d];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < M; ++j) sum += (s[j] = std::exp(s[j] - mx));
        float* out = acc.sum.data() + b * M;
        for (int64_t j = 0; j < M; ++j) out[j] += static_cast<float>(s[j] / sum);
      }
  }

  TextConfig c_;
  attn::SdpaBackend backend_ = attn::SdpaBackend::fused;
  Tensor word_, pos_;
  LayerNorm emb_ln_;
  std::vector<TextLayer> layers_;
};

struct LmHead {
  ops::Linear dense;    // text_decoder.cls.predictions.transform.dense [D, D], GELU fused
  LayerNorm ln;         // text_decoder.cls.predictions.transform.LayerNorm
  ops::Linear decoder;  // text_decoder.cls.predictions.decoder.weight [V, D] (absent: the word
                        // embeddings), text_decoder.cls.predictions.bias [V]
  // h [N, D] -> logits [N, V]
  Tensor operator()(const Tensor& h) const { return decoder.forward(ln(dense.forward(h))); }
};

// ------------------------------------------------------------------------------- config

Resample resample_of(int64_t code, const std::string& file) {
  auto r = resample_from_pil_code(static_cast<int>(code));
  if (!r)
    throw ModelError(file, "key 'resample' is " + std::to_string(code) +
                               "; supported: 2 (bilinear) and 3 (bicubic, what BLIP uses)");
  return *r;
}

void check_act(const xmodal::Config& c, const std::string& key) {
  const std::string act = c.string_or("hidden_act", "gelu");
  if (act != "gelu")
    throw ModelError(c.file(), "key '" + c.where(key) + "' is '" + act + "'; BLIP uses 'gelu' (exact erf GELU)");
}

// Log-softmax of one row (double accumulation).
void log_softmax_row(const float* x, int64_t n, std::vector<float>& out) {
  out.resize(static_cast<size_t>(n));
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  const float lse = mx + static_cast<float>(std::log(sum));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = x[i] - lse;
}

}  // namespace

xmodal::blip::Config read_config(const ModelDir& m) {
  xmodal::blip::Config out;
  out.architecture = m.architecture;
  if (out.architecture != "blip-caption" && out.architecture != "blip-vqa")
    throw ModelError(m.config_path, "architecture '" + out.architecture + "' is not BLIP (blip-caption, blip-vqa)");
  const xmodal::Config vc = m.config.has("vision_config") ? m.config.sub("vision_config")
                                                          : xmodal::Config(nlohmann::json::object(), m.config_path, "vision_config");
  const xmodal::Config tc = m.config.has("text_config") ? m.config.sub("text_config")
                                                        : xmodal::Config(nlohmann::json::object(), m.config_path, "text_config");
  VisionConfig& v = out.vision;  // defaults: Hugging Face BlipVisionConfig
  v.hidden = vc.int_or("hidden_size", 768);
  v.intermediate = vc.int_or("intermediate_size", 3072);
  v.layers = vc.int_or("num_hidden_layers", 12);
  v.heads = vc.int_or("num_attention_heads", 12);
  v.image_size = vc.int_or("image_size", 384);
  v.patch_size = vc.int_or("patch_size", 16);
  v.eps = static_cast<float>(vc.float_or("layer_norm_eps", 1e-5));
  if (vc.int_or("num_channels", 3) != 3) throw ModelError(m.config_path, "key 'vision_config.num_channels' must be 3");
  check_act(vc, "hidden_act");
  TextConfig& t = out.text;  // defaults: Hugging Face BlipTextConfig
  t.vocab = tc.int_or("vocab_size", 30524);
  t.hidden = tc.int_or("hidden_size", 768);
  t.intermediate = tc.int_or("intermediate_size", 3072);
  t.layers = tc.int_or("num_hidden_layers", 12);
  t.heads = tc.int_or("num_attention_heads", 8);
  t.max_positions = tc.int_or("max_position_embeddings", 512);
  t.eps = static_cast<float>(tc.float_or("layer_norm_eps", 1e-12));
  t.bos = static_cast<int32_t>(tc.int_or("bos_token_id", 30522));
  t.sep = static_cast<int32_t>(tc.int_or("sep_token_id", 102));
  t.pad = static_cast<int32_t>(tc.int_or("pad_token_id", 0));
  check_act(tc, "hidden_act");
  auto positive = [&](int64_t val, const std::string& key) {
    if (val <= 0 || val > (int64_t(1) << 24))
      throw ModelError(m.config_path, "key '" + key + "' is " + std::to_string(val) + ", expected 1 .. 16777216");
  };
  for (auto [val, key] : {std::pair{v.hidden, "vision_config.hidden_size"}, {v.intermediate, "vision_config.intermediate_size"},
                          {v.layers, "vision_config.num_hidden_layers"}, {v.heads, "vision_config.num_attention_heads"},
                          {v.image_size, "vision_config.image_size"}, {v.patch_size, "vision_config.patch_size"},
                          {t.vocab, "text_config.vocab_size"}, {t.hidden, "text_config.hidden_size"},
                          {t.intermediate, "text_config.intermediate_size"}, {t.layers, "text_config.num_hidden_layers"},
                          {t.heads, "text_config.num_attention_heads"}, {t.max_positions, "text_config.max_position_embeddings"}})
    positive(val, key);
  if (v.hidden % v.heads)
    throw ModelError(m.config_path, "vision_config.hidden_size " + std::to_string(v.hidden) +
                                        " is not divisible by num_attention_heads " + std::to_string(v.heads));
  if (t.hidden % t.heads)
    throw ModelError(m.config_path, "text_config.hidden_size " + std::to_string(t.hidden) +
                                        " is not divisible by num_attention_heads " + std::to_string(t.heads));
  if (v.image_size % v.patch_size)
    throw ModelError(m.config_path, "vision_config.image_size " + std::to_string(v.image_size) +
                                        " is not a multiple of patch_size " + std::to_string(v.patch_size));
  for (auto [id, key] : {std::pair{t.bos, "bos_token_id"}, {t.sep, "sep_token_id"}, {t.pad, "pad_token_id"}})
    if (id < 0 || id >= t.vocab)
      throw ModelError(m.config_path, std::string("key 'text_config.") + key + "' is " + std::to_string(id) +
                                          ", outside the vocabulary of " + std::to_string(t.vocab));

  // Preprocessing: preprocessor_config.json when present, else the image size from config.json
  // and BLIP's defaults (bicubic, 1/255, CLIP mean/std).
  Preprocessing& p = out.pre;
  p.height = p.width = v.image_size;
  out.source = "config.json";
  const std::string pp = (std::filesystem::path(m.dir) / "preprocessor_config.json").string();
  if (std::filesystem::exists(pp)) {
    out.source = "preprocessor_config.json";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(pp, 1 << 20));
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(pp, std::string("not valid JSON: ") + e.what());
    } catch (const InputError& e) {
      throw ModelError(pp, e.what());
    }
    if (!j.is_object()) throw ModelError(pp, "expected a JSON object");
    const xmodal::Config c(j, pp);
    if (c.has("size")) {
      const auto& s = j.at("size");
      if (s.is_number_integer()) {
        p.height = p.width = s.get<int64_t>();
      } else if (s.is_object() && s.contains("height") && s.contains("width")) {
        const xmodal::Config sc = c.sub("size");
        p.height = sc.get_int("height", 1, 1 << 16);
        p.width = sc.get_int("width", 1, 1 << 16);
      } else {
        throw ModelError(pp, "key 'size' is " + s.dump() + "; expected an integer or {\"height\", \"width\"}");
      }
    }
    p.do_resize = c.bool_or("do_resize", true);
    p.do_rescale = c.bool_or("do_rescale", true);
    p.do_normalize = c.bool_or("do_normalize", true);
    p.rescale = static_cast<float>(c.float_or("rescale_factor", 1.0 / 255.0));
    p.resample = resample_of(c.int_or("resample", 3), pp);
    for (auto [key, dst] : {std::pair{"image_mean", &p.mean}, {"image_std", &p.std}}) {
      if (!c.has(key)) continue;
      auto vals = c.get_floats(key);
      if (vals.size() != 3) throw ModelError(pp, std::string("key '") + key + "' has " + std::to_string(vals.size()) + " values, expected 3");
      for (int i = 0; i < 3; ++i) (*dst)[i] = static_cast<float>(vals[i]);
    }
    for (float s : p.std)
      if (!(s > 0)) throw ModelError(pp, "key 'image_std' has a value <= 0");
  }
  if (p.height != v.image_size || p.width != v.image_size)
    throw ModelError(out.source == "config.json" ? m.config_path : pp,
                     "preprocessing size " + std::to_string(p.height) + "x" + std::to_string(p.width) +
                         " differs from vision_config.image_size " + std::to_string(v.image_size) +
                         " (the position embeddings fix the size)");
  return out;
}

std::string strip_prompt(const std::string& text, const std::string& prompt_text) {
  if (prompt_text.empty() || text.compare(0, prompt_text.size(), prompt_text) != 0) return text;
  std::string rest = text.substr(prompt_text.size());
  if (!rest.empty() && rest[0] != ' ' && std::isalnum(static_cast<unsigned char>(prompt_text.back())) &&
      std::isalnum(static_cast<unsigned char>(rest[0])))
    return text;  // "a picture offer": not a word boundary
  const size_t a = rest.find_first_not_of(' ');
  return a == std::string::npos ? std::string() : rest.substr(a);
}

// ----------------------------------------------------------------------------------- model

struct Model::Impl {
  xmodal::blip::Config cfg;
  WordPiece tok;
  Vision vision;
  std::optional<Text> question_encoder;  // blip-vqa: text_encoder
  Text decoder;                          // text_decoder.bert
  LmHead head;
  bool maps = false;
  mutable Timings timings;

  // Greedy or beam search from `start` over `memory` [1, M, Dm].
  Generation generate(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                      bool maps_wanted) const;
  Generation greedy(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                    bool maps_wanted) const;
  Generation beam(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                  bool maps_wanted) const;
  // One map (grid^2 floats) from an accumulated row over 1 + grid^2 keys: CLS dropped, renormalised.
  std::vector<float> grid_map(const float* row, int64_t keys) const;
  Tensor last_logits(const Tensor& h) const;  // h [B, T, D] -> logits of the last row [B, V]
};

Model::Model() = default;
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::load(const std::string& dir, const LoadOptions& opt) {
  if (opt.weight_dtype != DType::f32 && opt.weight_dtype != DType::bf16)
    throw UsageError(std::string("BLIP weights can be f32 or bf16, not ") + dtype_name(opt.weight_dtype));
  Model model;
  model.p_ = std::make_unique<Impl>();
  Impl& p = *model.p_;
  {
    ModelDir m = ModelDir::open(dir);
    p.cfg = read_config(m);
    const VisionConfig& vc = p.cfg.vision;
    const TextConfig& tc = p.cfg.text;
    if (m.tokenizer != TokenizerKind::wordpiece)
      throw ModelError(dir, "no vocab.txt (BLIP's WordPiece vocabulary) in the model directory");
    p.tok = WordPiece::from_file(m.tokenizer_path);
    if (p.tok.vocab_size() > tc.vocab)
      throw ModelError(m.tokenizer_path, "vocab.txt has " + std::to_string(p.tok.vocab_size()) +
                                             " tokens, more than text_config.vocab_size " + std::to_string(tc.vocab));
    p.tok.add_special("[DEC]", tc.bos);  // BLIP's added tokens: [DEC] = bos, then [ENC]
    if (tc.bos + 1 < tc.vocab) p.tok.add_special("[ENC]", tc.bos + 1);
    if (p.tok.sep_id() != tc.sep)
      throw ModelError(m.tokenizer_path, "[SEP] is id " + std::to_string(p.tok.sep_id()) + " in vocab.txt but " +
                                             std::to_string(tc.sep) + " in config.json (text_config.sep_token_id)");

    Weights w = m.weights();
    const DType wdt = opt.weight_dtype;
    p.maps = opt.attention_maps;
    const attn::SdpaBackend be = opt.attention == Attention::fused ? attn::SdpaBackend::fused : attn::SdpaBackend::onednn;
    p.vision = Vision(w.scope("vision_model"), vc, wdt, be);
    const bool vqa = p.cfg.architecture == "blip-vqa";
    if (vqa) {
      p.question_encoder.emplace(w.scope("text_encoder"), tc, vc.hidden, wdt, false, be);
      w.ignore_prefix("text_encoder.pooler.");
    }
    p.decoder = Text(w.scope("text_decoder.bert"), tc, vqa ? tc.hidden : vc.hidden, wdt, p.maps && !vqa, be);
    const Weights h = w.scope("text_decoder.cls.predictions");
    const int64_t D = tc.hidden, V = tc.vocab;
    std::optional<Tensor> dec_w = h.take_optional("decoder.weight", {V, D});
    h.take_optional("decoder.bias", {V});  // tied to cls.predictions.bias, which is used
    p.head = LmHead{take_linear(h.scope("transform.dense"), D, D, ops::Act::gelu_erf, wdt),
                    LayerNorm(h.scope("transform.LayerNorm"), D, tc.eps),
                    ops::Linear(dec_w ? *dec_w : p.decoder.word_embeddings(), h.take("bias", {V}), ops::Act::none, wdt)};
    release_prefix(w.file(), "");
    w.check_all_used();
  }  // the checkpoint mapping is released here: everything kept is an owned copy
  return model;
}

const xmodal::blip::Config& Model::config() const { return p_->cfg; }
bool Model::is_vqa() const { return p_->question_encoder.has_value(); }
const WordPiece& Model::tokenizer() const { return p_->tok; }
const Timings& Model::timings() const { return p_->timings; }

Tensor Model::preprocess(const Image& image) const {
  const auto t0 = Clock::now();
  const Preprocessing& pp = p_->cfg.pre;
  if (image.empty()) throw InternalError("blip preprocess: empty image");
  const bool same = image.width == pp.width && image.height == pp.height;
  if (!pp.do_resize && !same)
    throw InputError("image", "is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                                  " but the model takes " + std::to_string(pp.width) + "x" + std::to_string(pp.height) +
                                  " and its preprocessor config has do_resize false");
  std::array<float, 3> mean{0, 0, 0}, sd{1, 1, 1};
  if (pp.do_normalize) {
    mean = pp.mean;
    sd = pp.std;
  }
  const float rescale = pp.do_rescale ? pp.rescale : 1.0f;
  Tensor out = same ? to_chw_normalized(image, mean, sd, rescale)
                    : to_chw_normalized(resize(image, static_cast<int>(pp.width), static_cast<int>(pp.height), pp.resample),
                                        mean, sd, rescale);
  p_->timings.preprocess = ms_since(t0);
  return out;
}

Tensor Model::encode_image(const Tensor& pixels) const {
  const auto t0 = Clock::now();
  Tensor x = pixels.dim() == 3 ? pixels.contiguous().reshape({1, pixels.size(0), pixels.size(1), pixels.size(2)}) : pixels;
  Tensor out = p_->vision.forward(x);
  p_->timings.vision = ms_since(t0);
  return out;
}

Tensor Model::Impl::last_logits(const Tensor& h) const {
  const int64_t B = h.size(0), T = h.size(1), D = h.size(2);
  Tensor last = T == 1 ? h.reshape({B, D}) : h.slice(1, T - 1, T).contiguous().reshape({B, D});
  return head(last);
}

std::vector<float> Model::Impl::grid_map(const float* row, int64_t keys) const {
  std::vector<float> g(row + 1, row + keys);  // drop CLS
  double s = 0;
  for (float v : g) s += v;
  if (s > 0)
    for (float& v : g) v = static_cast<float>(v / s);
  return g;
}

Generation Model::Impl::generate(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                                 bool maps_wanted) const {
  if (opt.max_length < 1 || opt.max_length > cfg.text.max_positions)
    throw UsageError("max length " + std::to_string(opt.max_length) + " is outside 1 .. " +
                     std::to_string(cfg.text.max_positions) + " (the model's positions)");
  if (opt.num_beams < 1 || opt.num_beams > 64) throw UsageError("beams must be 1 .. 64, got " + std::to_string(opt.num_beams));
  if (opt.min_length < 0) throw UsageError("min length must be >= 0, got " + std::to_string(opt.min_length));
  if (maps_wanted && !maps) throw InternalError("blip: attention maps were not enabled when the model was loaded");
  if (static_cast<int64_t>(start.size()) >= cfg.text.max_positions)
    throw InputError("prompt", std::to_string(start.size()) + " tokens leave no room in the model's " +
                                   std::to_string(cfg.text.max_positions) + " positions");
  check_new_tokens(opt.max_length - static_cast<int64_t>(start.size()));  // --max-new-tokens (core/limits.hpp)
  const auto t0 = Clock::now();
  Generation g = opt.num_beams > 1 ? beam(memory, start, opt, maps_wanted) : greedy(memory, start, opt, maps_wanted);
  g.prompt_length = static_cast<int>(start.size());
  timings.decode = ms_since(t0);
  timings.generated = static_cast<int>(g.ids.size() - start.size());
  return g;
}

Generation Model::Impl::greedy(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                               bool maps_wanted) const {
  const int64_t cap = std::max<int64_t>(opt.max_length, static_cast<int64_t>(start.size()));
  Text::State s = decoder.start(memory, cap);
  MapAccum acc;
  MapAccum* accp = maps_wanted ? &acc : nullptr;
  Generation g;
  g.ids = start;
  Tensor h = decoder.step(s, start, static_cast<int64_t>(start.size()), true, accp);
  const int64_t V = cfg.text.vocab;
  std::vector<float> lp;
  while (static_cast<int>(g.ids.size()) < opt.max_length) {
    Tensor logits = last_logits(h);
    float* l = logits.f32();
    if (static_cast<int>(g.ids.size()) < opt.min_length) l[cfg.text.sep] = -std::numeric_limits<float>::infinity();
    const int32_t next = static_cast<int32_t>(std::max_element(l, l + V) - l);
    log_softmax_row(l, V, lp);
    g.score += lp[static_cast<size_t>(next)];
    g.ids.push_back(next);
    if (maps_wanted) g.attention.push_back(grid_map(acc.sum.data(), acc.keys));
    if (next == cfg.text.sep || static_cast<int>(g.ids.size()) >= opt.max_length) break;
    h = decoder.step(s, {next}, 1, true, accp);
  }
  return g;
}

// Hugging Face BeamSearchScorer semantics (early_stopping=False, one returned sequence):
// each step takes the top 2*beams of (beam score + log p) over all beams and tokens; a [SEP] among
// the first `beams` of them closes a hypothesis (scored sum_logprobs / len ** length_penalty,
// len = its length without [SEP]); the others continue. Done when `beams` hypotheses exist and
// none of the running beams can beat the worst. At max_length the running beams become hypotheses.
Generation Model::Impl::beam(const Tensor& memory, const std::vector<int32_t>& start, const GenerateOptions& opt,
                             bool maps_wanted) const {
  const int64_t nb = opt.num_beams, V = cfg.text.vocab;
  const int64_t cap = std::max<int64_t>(opt.max_length, static_cast<int64_t>(start.size()));
  Text::State one = decoder.start(memory, 1);
  Text::State s = decoder.start_replicated(one, nb, cap);
  MapAccum acc;
  MapAccum* accp = maps_wanted ? &acc : nullptr;

  struct Hyp {
    double score;
    std::vector<int32_t> ids;
    std::vector<std::vector<float>> maps;
  };
  std::vector<Hyp> hyps;
  double worst = 1e9;
  auto add_hyp = [&](double sum_logprobs, const std::vector<int32_t>& ids, const std::vector<std::vector<float>>& m) {
    const double sc = sum_logprobs / std::pow(static_cast<double>(ids.size()), opt.length_penalty);
    if (static_cast<int64_t>(hyps.size()) < nb || sc > worst) {
      hyps.push_back({sc, ids, m});
      if (static_cast<int64_t>(hyps.size()) > nb) {
        std::sort(hyps.begin(), hyps.end(), [](const Hyp& a, const Hyp& b) { return a.score < b.score; });
        hyps.erase(hyps.begin());
        worst = hyps.front().score;
      } else {
        worst = std::min(sc, worst);
      }
    }
  };

  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(nb), start);
  std::vector<std::vector<std::vector<float>>> seq_maps(static_cast<size_t>(nb));
  std::vector<double> scores(static_cast<size_t>(nb), -1e9);
  scores[0] = 0;
  std::vector<int32_t> in;
  for (int64_t b = 0; b < nb; ++b) in.insert(in.end(), start.begin(), start.end());
  Tensor h = decoder.step(s, in, static_cast<int64_t>(start.size()), true, accp);
  bool done = false;
  std::vector<float> lp;
  std::vector<std::pair<double, int64_t>> cand;  // (score, beam * V + token)
  while (true) {
    const int cur_len = static_cast<int>(seqs[0].size());
    Tensor logits = last_logits(h);  // [nb, V]
    cand.clear();
    for (int64_t b = 0; b < nb; ++b) {
      log_softmax_row(logits.f32() + b * V, V, lp);
      if (cur_len < opt.min_length) lp[static_cast<size_t>(cfg.text.sep)] = -std::numeric_limits<float>::infinity();
      // only the best 2*nb tokens of each beam can make the overall top 2*nb
      std::vector<int32_t> idx(static_cast<size_t>(V));
      std::iota(idx.begin(), idx.end(), 0);
      const int64_t keep = std::min<int64_t>(2 * nb, V);
      std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                        [&](int32_t a, int32_t c) { return lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(c)] || (lp[static_cast<size_t>(a)] == lp[static_cast<size_t>(c)] && a < c); });
      for (int64_t i = 0; i < keep; ++i)
        cand.push_back({scores[static_cast<size_t>(b)] + lp[static_cast<size_t>(idx[static_cast<size_t>(i)])], b * V + idx[static_cast<size_t>(i)]});
    }
    const int64_t top = std::min<int64_t>(2 * nb, static_cast<int64_t>(cand.size()));
    std::partial_sort(cand.begin(), cand.begin() + top, cand.end(), [](const auto& a, const auto& c) {
      return a.first > c.first || (a.first == c.first && a.second < c.second);
    });
    std::vector<int32_t> next_b, next_t;
    std::vector<double> next_s;
    for (int64_t r = 0; r < top; ++r) {
      const int64_t b = cand[static_cast<size_t>(r)].second / V;
      const int32_t t = static_cast<int32_t>(cand[static_cast<size_t>(r)].second % V);
      if (t == cfg.text.sep) {
        if (r >= nb) continue;
        auto m = seq_maps[static_cast<size_t>(b)];
        if (maps_wanted) m.push_back(grid_map(acc.sum.data() + b * acc.keys, acc.keys));
        add_hyp(cand[static_cast<size_t>(r)].first, seqs[static_cast<size_t>(b)], m);
      } else {
        next_b.push_back(static_cast<int32_t>(b));
        next_t.push_back(t);
        next_s.push_back(cand[static_cast<size_t>(r)].first);
      }
      if (static_cast<int64_t>(next_b.size()) == nb) break;
    }
    if (static_cast<int64_t>(hyps.size()) >= nb)
      done = done || worst >= cand[0].first / std::pow(static_cast<double>(cur_len), opt.length_penalty);
    if (static_cast<int64_t>(next_b.size()) < nb)
      throw InternalError("blip beam search: fewer than " + std::to_string(nb) + " continuations");
    std::vector<std::vector<int32_t>> new_seqs;
    std::vector<std::vector<std::vector<float>>> new_maps;
    for (int64_t i = 0; i < nb; ++i) {
      new_seqs.push_back(seqs[static_cast<size_t>(next_b[static_cast<size_t>(i)])]);
      new_seqs.back().push_back(next_t[static_cast<size_t>(i)]);
      if (maps_wanted) {
        new_maps.push_back(seq_maps[static_cast<size_t>(next_b[static_cast<size_t>(i)])]);
        new_maps.back().push_back(grid_map(acc.sum.data() + next_b[static_cast<size_t>(i)] * acc.keys, acc.keys));
      } else {
        new_maps.emplace_back();
      }
    }
    seqs = std::move(new_seqs);
    seq_maps = std::move(new_maps);
    scores = next_s;
    Text::reorder(s, next_b);
    if (done || static_cast<int>(seqs[0].size()) >= opt.max_length) break;
    h = decoder.step(s, next_t, 1, true, accp);
  }
  if (!done)
    for (int64_t b = 0; b < nb; ++b) add_hyp(scores[static_cast<size_t>(b)], seqs[static_cast<size_t>(b)], seq_maps[static_cast<size_t>(b)]);
  const Hyp& best = *std::max_element(hyps.begin(), hyps.end(), [](const Hyp& a, const Hyp& b) { return a.score < b.score; });
  Generation g;
  g.ids = best.ids;
  g.score = best.score;
  g.attention = best.maps;
  if (static_cast<int>(g.ids.size()) < opt.max_length) g.ids.push_back(cfg.text.sep);
  return g;
}

Generation Model::caption(const Tensor& image_states, const std::string& prompt, const GenerateOptions& opt) const {
  if (is_vqa()) throw UsageError("this is a blip-vqa model; captioning needs a blip-caption model");
  std::vector<int32_t> start{p_->cfg.text.bos};
  std::string prompt_text;
  if (!prompt.empty()) {
    std::vector<int32_t> ids = p_->tok.encode(prompt, true, "prompt");
    check_prompt_tokens(static_cast<int64_t>(ids.size()) - 2, "prompt", "prompt");  // [CLS] .. [SEP] not counted
    start.insert(start.end(), ids.begin() + 1, ids.end() - 1);  // [CLS] p [SEP] -> [DEC] p
    prompt_text = p_->tok.decode(ids);
  }
  Generation g = p_->generate(image_states, start, opt, opt.attention_maps);
  g.text = strip_prompt(p_->tok.decode(g.ids), prompt_text);
  return g;
}

std::vector<int32_t> Model::question_ids(const std::string& question, bool enc_first, const std::string& source) const {
  std::vector<int32_t> ids = p_->tok.encode(question, true, source);
  check_prompt_tokens(static_cast<int64_t>(ids.size()) - 2, source);  // --max-prompt-tokens; [CLS] .. [SEP] not counted
  if (enc_first) {
    const int32_t enc = p_->tok.id("[ENC]");
    if (enc < 0) throw ModelError("config.json", "the vocabulary has no room for [ENC] (bos_token_id + 1)");
    ids[0] = enc;
  }
  if (static_cast<int64_t>(ids.size()) > p_->cfg.text.max_positions)
    throw InputError(source, "has " + std::to_string(ids.size()) + " tokens, more than the model's " +
                                 std::to_string(p_->cfg.text.max_positions) + " positions");
  return ids;
}

Tensor Model::encode_question(const std::vector<int32_t>& ids, const Tensor& image_states) const {
  if (!is_vqa()) throw UsageError("this is a blip-caption model; questions need a blip-vqa model");
  const auto t0 = Clock::now();
  Text::State s = p_->question_encoder->start(image_states, static_cast<int64_t>(ids.size()));
  Tensor out = p_->question_encoder->step(s, ids, static_cast<int64_t>(ids.size()), /*causal=*/false);
  p_->timings.text = ms_since(t0);
  return out;
}

Generation Model::answer(const Tensor& question_states, const GenerateOptions& opt) const {
  if (!is_vqa()) throw UsageError("this is a blip-caption model; questions need a blip-vqa model");
  GenerateOptions o = opt;
  o.attention_maps = false;  // the answer decoder attends to the question, not the image
  Generation g = p_->generate(question_states, {p_->cfg.text.bos}, o, false);
  g.text = p_->tok.decode(g.ids);
  return g;
}

std::vector<int32_t> Model::answer_ids(const std::string& answer) const {
  std::vector<int32_t> ids = p_->tok.encode(answer, true, "answer '" + answer + "'");
  ids[0] = p_->cfg.text.bos;
  return ids;
}

RankResult Model::rank(const Tensor& question_states, const std::vector<std::vector<int32_t>>& answers, int k) const {
  if (!is_vqa()) throw UsageError("this is a blip-caption model; questions need a blip-vqa model");
  if (answers.empty()) throw UsageError("the answer list is empty");
  if (k < 1) throw UsageError("rank k must be >= 1, got " + std::to_string(k));
  const auto t0 = Clock::now();
  const Impl& p = *p_;
  const int64_t V = p.cfg.text.vocab;
  int64_t L = 0;
  for (const auto& a : answers) {
    if (a.size() < 2) throw InternalError("blip rank: an answer needs [DEC] and at least one more id");
    L = std::max<int64_t>(L, static_cast<int64_t>(a.size()));
  }
  if (L > p.cfg.text.max_positions) throw InputError("answer list", "an answer is longer than the model's positions");
  // First-token probabilities after [DEC].
  Text::State one = p.decoder.start(question_states, L);
  Tensor h = p.decoder.step(one, {p.cfg.text.bos}, 1, true);
  Tensor logits = p.last_logits(h);
  std::vector<float> lp;
  log_softmax_row(logits.f32(), V, lp);
  std::vector<int> order(answers.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), answers.size());
  auto first = [&](int i) { return lp[static_cast<size_t>(answers[static_cast<size_t>(i)][1])]; };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kk), order.end(),
                    [&](int a, int b) { return first(a) > first(b) || (first(a) == first(b) && a < b); });
  order.resize(kk);
  // Full log-likelihoods of the k candidates, as one padded batch (padding is at the end, and the
  // causal mask keeps it out of every real position).
  const int64_t n = static_cast<int64_t>(kk);
  Text::State s = p.decoder.start_replicated(one, n, L);
  std::vector<int32_t> ids(static_cast<size_t>(n * L), p.cfg.text.pad);
  for (int64_t i = 0; i < n; ++i) {
    const auto& a = answers[static_cast<size_t>(order[static_cast<size_t>(i)])];
    std::copy(a.begin(), a.end(), ids.begin() + i * L);
  }
  Tensor hs = p.decoder.step(s, ids, L, true);  // [n, L, D]
  Tensor all = p.head(hs.reshape({n * L, hs.size(2)}));  // [n*L, V]
  RankResult r;
  r.candidates = order;
  double best = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const auto& a = answers[static_cast<size_t>(order[static_cast<size_t>(i)])];
    double ll = 0;
    for (size_t t = 1; t < a.size(); ++t) {
      log_softmax_row(all.f32() + (i * L + static_cast<int64_t>(t) - 1) * V, V, lp);
      ll += lp[static_cast<size_t>(a[t])];
    }
    r.logliks.push_back(ll);
    if (ll > best) {
      best = ll;
      r.best = order[static_cast<size_t>(i)];
    }
  }
  p.timings.decode = ms_since(t0);
  p.timings.generated = 0;
  return r;
}

Tensor Model::decoder_logits(const std::vector<int32_t>& ids, const Tensor& memory) const {
  const int64_t L = static_cast<int64_t>(ids.size());
  Text::State s = p_->decoder.start(memory, L);
  Tensor h = p_->decoder.step(s, ids, L, true);
  return p_->head(h.reshape({L, h.size(2)}));
}

}  // namespace xmodal::blip
