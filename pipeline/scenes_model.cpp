#include "pipeline/scenes_model.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "core/limits.hpp"

namespace xmodal {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- config

ScenesConfig ScenesConfig::from(const Config& c) {
  ScenesConfig s;
  const std::string arch = c.get_string("architecture");
  if (arch != "xmodal-scenes")
    throw ModelError(c.file(), "architecture '" + arch + "' is not 'xmodal-scenes'");
  s.image_size = c.get_int("image_size", 8, 1024);
  s.conv_channels = c.get_ints("conv_channels");
  s.conv_strides = c.get_ints("conv_strides");
  if (s.conv_channels.empty() || s.conv_channels.size() != s.conv_strides.size())
    throw ModelError(c.file(), "conv_channels has " + std::to_string(s.conv_channels.size()) +
                                   " entries and conv_strides " + std::to_string(s.conv_strides.size()) +
                                   "; expected the same non-zero count");
  if (c.int_or("conv_kernel", 3) != 3 || c.int_or("conv_padding", 1) != 1)
    throw ModelError(c.file(), "only 3x3 convolutions with padding 1 are supported");
  if (!c.bool_or("coord_channels", true)) throw ModelError(c.file(), "coord_channels must be true");
  int64_t g = s.image_size;
  for (size_t i = 0; i < s.conv_strides.size(); ++i) {
    if (s.conv_strides[i] < 1 || s.conv_strides[i] > 4 || s.conv_channels[i] < 1)
      throw ModelError(c.file(), "conv layer " + std::to_string(i) + ": channels " +
                                     std::to_string(s.conv_channels[i]) + ", stride " +
                                     std::to_string(s.conv_strides[i]) + " out of range");
    g = (g + 2 - 3) / s.conv_strides[i] + 1;
  }
  s.grid = c.get_int("grid_size", 1, 1024);
  if (s.grid != g)
    throw ModelError(c.file(), "grid_size " + std::to_string(s.grid) + " does not match image_size " +
                                   std::to_string(s.image_size) + " and conv_strides (which give " +
                                   std::to_string(g) + ")");
  s.d_model = c.get_int("d_model", 1, 8192);
  s.n_heads = c.get_int("n_heads", 1, 256);
  if (s.d_model % s.n_heads != 0)
    throw ModelError(c.file(), "d_model " + std::to_string(s.d_model) + " is not a multiple of n_heads " +
                                   std::to_string(s.n_heads));
  s.d_ff = c.get_int("d_ff", 1, 65536);
  s.n_enc_layers = c.get_int("n_enc_layers", 0, 64);
  s.n_dec_layers = c.get_int("n_dec_layers", 1, 64);
  s.max_len = c.get_int("max_len", 8, 4096);
  s.vocab_size = c.get_int("vocab_size", 8, 1 << 20);
  s.ln_eps = static_cast<float>(c.get_float("layer_norm_eps"));
  s.grid_ln = c.bool_or("grid_layer_norm", false);
  if (c.string_or("ffn_activation", "gelu_erf") != "gelu_erf" || c.string_or("conv_activation", "relu") != "relu")
    throw ModelError(c.file(), "only ffn_activation 'gelu_erf' and conv_activation 'relu' are supported");
  if (!c.bool_or("tie_word_embeddings", true)) throw ModelError(c.file(), "tie_word_embeddings must be true");

  const Config p = c.sub("preprocessing");
  if (p.get_int("size") != s.image_size)
    throw ModelError(c.file(), "preprocessing.size " + std::to_string(p.get_int("size")) + " differs from image_size " +
                                   std::to_string(s.image_size));
  auto rs = resample_from_name(p.get_string("resample"));
  if (!rs) throw ModelError(c.file(), "preprocessing.resample '" + p.get_string("resample") + "' is not bilinear or bicubic");
  s.resample = *rs;
  s.rescale = static_cast<float>(p.float_or("rescale", 1.0 / 255.0));
  const auto mean = p.get_floats("mean"), stdv = p.get_floats("std");
  if (mean.size() != 3 || stdv.size() != 3)
    throw ModelError(c.file(), "preprocessing.mean and .std need 3 values, got " + std::to_string(mean.size()) + " and " +
                                   std::to_string(stdv.size()));
  for (int i = 0; i < 3; ++i) {
    s.mean[i] = static_cast<float>(mean[i]);
    s.std[i] = static_cast<float>(stdv[i]);
    if (!(s.std[i] > 0.f)) throw ModelError(c.file(), "preprocessing.std[" + std::to_string(i) + "] must be > 0");
  }
  const Config sp = c.sub("special_ids");
  auto id = [&](const char* k) { return static_cast<int>(sp.get_int(k, 0, s.vocab_size - 1)); };
  s.pad_id = id("pad");
  s.unk_id = id("unk");
  s.bos_id = id("bos");
  s.eos_id = id("eos");
  s.sep_id = id("sep");
  s.cap_id = id("cap");
  return s;
}

// ---------------------------------------------------------------- loading

namespace {

attn::MultiHeadAttention load_mha(const Weights& w, const ScenesConfig& c, bool cross) {
  attn::MhaConfig mc;
  mc.d_model = c.d_model;
  mc.n_heads = c.n_heads;
  mc.cross = cross;
  const int64_t d = c.d_model;
  attn::MhaWeights mw;
  mw.q_w = w.take("q_proj.weight", {d, d});  // <scope>.q_proj.weight [d, d]
  mw.q_b = w.take("q_proj.bias", {d});
  mw.k_w = w.take("k_proj.weight", {d, d});  // <scope>.k_proj.weight [d, d]
  mw.k_b = w.take("k_proj.bias", {d});
  mw.v_w = w.take("v_proj.weight", {d, d});  // <scope>.v_proj.weight [d, d]
  mw.v_b = w.take("v_proj.bias", {d});
  mw.o_w = w.take("o_proj.weight", {d, d});  // <scope>.o_proj.weight [d, d]
  mw.o_b = w.take("o_proj.bias", {d});
  return attn::MultiHeadAttention(mc, mw);
}

ops::Linear load_linear(const Weights& w, int64_t in, int64_t out, ops::Act act = ops::Act::none) {
  return ops::Linear(w.take("weight", {out, in}), w.take("bias", {out}), act);
}

// Several projections of one input as one Linear: scopes' weight [d, d] stacked row-wise ->
// [n*d, d], biases [n*d] (e.g. q/k/v -> one matmul per step).
ops::Linear load_stacked(const Weights& w, const std::vector<std::string>& scopes, int64_t d) {
  const int64_t n = static_cast<int64_t>(scopes.size());
  Tensor wt = Tensor::empty({n * d, d}), bt = Tensor::empty({n * d});
  for (int64_t i = 0; i < n; ++i) {
    const Weights s = w.scope(scopes[static_cast<size_t>(i)]);
    const Tensor wi = s.take("weight", {d, d}).contiguous(), bi = s.take("bias", {d}).contiguous();  // f32
    std::memcpy(wt.f32() + i * d * d, wi.f32(), sizeof(float) * static_cast<size_t>(d * d));
    std::memcpy(bt.f32() + i * d, bi.f32(), sizeof(float) * static_cast<size_t>(d));
  }
  return ops::Linear(wt, bt, ops::Act::none);
}

}  // namespace

ScenesModel ScenesModel::load(const std::string& dir) {
  ModelDir md = ModelDir::open(dir);
  ScenesModel m;
  m.dir_ = dir;
  m.cfg_ = ScenesConfig::from(md.config);
  const ScenesConfig& c = m.cfg_;
  if (md.tokenizer != TokenizerKind::sentencepiece)
    throw ModelError(dir, "no tokenizer.model (sentencepiece) in the model directory");
  m.tok_ = SpTokenizer::load(md.tokenizer_path);
  if (m.tok_.vocab_size() != c.vocab_size)
    throw ModelError(md.tokenizer_path, "has " + std::to_string(m.tok_.vocab_size()) + " pieces, config.json says vocab_size " +
                                            std::to_string(c.vocab_size));
  if (m.tok_.piece_to_id("<sep>") != c.sep_id || m.tok_.piece_to_id("<cap>") != c.cap_id ||
      m.tok_.eos_id() != c.eos_id || m.tok_.bos_id() != c.bos_id)
    throw ModelError(md.tokenizer_path, "special pieces <s> </s> <sep> <cap> have ids " + std::to_string(m.tok_.bos_id()) +
                                            " " + std::to_string(m.tok_.eos_id()) + " " +
                                            std::to_string(m.tok_.piece_to_id("<sep>")) + " " +
                                            std::to_string(m.tok_.piece_to_id("<cap>")) + ", config.json says " +
                                            std::to_string(c.bos_id) + " " + std::to_string(c.eos_id) + " " +
                                            std::to_string(c.sep_id) + " " + std::to_string(c.cap_id));

  const Weights w = md.weights();
  const int64_t d = c.d_model, N = c.grid * c.grid;
  int64_t cin = 5;
  for (size_t i = 0; i < c.conv_channels.size(); ++i) {
    const Weights s = w.scope("convs." + std::to_string(i));
    const int64_t co = c.conv_channels[i], st = c.conv_strides[i];
    m.convs_.emplace_back(s.take("weight", {co, cin, 3, 3}), s.take("bias", {co}), std::array<int64_t, 2>{st, st},
                          std::array<int64_t, 2>{1, 1}, 1, ops::Act::relu, c.image_size);
    cin = co;
  }
  m.img_proj_ = load_linear(w.scope("img_proj"), cin, d);
  m.img_pos_ = w.take("img_pos", {N, d});
  if (c.grid_ln) {
    m.img_ln_w_ = w.take("img_ln.weight", {d});
    m.img_ln_b_ = w.take("img_ln.bias", {d});
  }
  for (int64_t i = 0; i < c.n_enc_layers; ++i) {
    const Weights s = w.scope("enc_layers." + std::to_string(i));
    EncoderLayer L;
    L.ln1_w = s.take("ln1.weight", {d});
    L.ln1_b = s.take("ln1.bias", {d});
    L.attn = load_mha(s.scope("attn"), c, false);
    L.ln2_w = s.take("ln2.weight", {d});
    L.ln2_b = s.take("ln2.bias", {d});
    L.fc1 = load_linear(s.scope("ffn.fc1"), d, c.d_ff, ops::Act::gelu_erf);
    L.fc2 = load_linear(s.scope("ffn.fc2"), c.d_ff, d);
    m.enc_.push_back(std::move(L));
  }
  m.enc_ln_w_ = w.take("enc_ln.weight", {d});
  m.enc_ln_b_ = w.take("enc_ln.bias", {d});
  m.tok_emb_ = w.take("tok_emb.weight", {c.vocab_size, d});
  m.lm_head_ = ops::Linear(m.tok_emb_, Tensor(), ops::Act::none);
  m.pos_emb_ = w.take("pos_emb", {c.max_len, d});
  for (int64_t i = 0; i < c.n_dec_layers; ++i) {
    const Weights s = w.scope("dec_layers." + std::to_string(i));
    DecoderLayer L;
    L.ln1_w = s.take("ln1.weight", {d});
    L.ln1_b = s.take("ln1.bias", {d});
    L.self_qkv = load_stacked(s.scope("self_attn"), {"q_proj", "k_proj", "v_proj"}, d);
    L.self_o = load_linear(s.scope("self_attn.o_proj"), d, d);
    L.ln2_w = s.take("ln2.weight", {d});
    L.ln2_b = s.take("ln2.bias", {d});
    L.cross_q = load_linear(s.scope("cross_attn.q_proj"), d, d);
    L.cross_kv = load_stacked(s.scope("cross_attn"), {"k_proj", "v_proj"}, d);
    L.cross_o = load_linear(s.scope("cross_attn.o_proj"), d, d);
    L.ln3_w = s.take("ln3.weight", {d});
    L.ln3_b = s.take("ln3.bias", {d});
    L.fc1 = load_linear(s.scope("ffn.fc1"), d, c.d_ff, ops::Act::gelu_erf);
    L.fc2 = load_linear(s.scope("ffn.fc2"), c.d_ff, d);
    m.dec_.push_back(std::move(L));
  }
  m.dec_ln_w_ = w.take("dec_ln.weight", {d});
  m.dec_ln_b_ = w.take("dec_ln.bias", {d});
  w.check_all_used();
  return m;
}

// ---------------------------------------------------------------- image side

Image ScenesModel::resize(const Image& image) const {
  const int s = static_cast<int>(cfg_.image_size);
  if (image.width == s && image.height == s) return image;
  return xmodal::resize(image, s, s, cfg_.resample);
}

Tensor ScenesModel::to_input(const Image& resized) const {
  const int64_t S = cfg_.image_size;
  if (resized.width != S || resized.height != S)
    throw InternalError("scenes model: input image is " + std::to_string(resized.width) + "x" +
                        std::to_string(resized.height) + ", expected " + std::to_string(S) + "x" + std::to_string(S));
  Tensor x = Tensor::empty({1, 5, S, S});
  float* p = x.f32();
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t xx = 0; xx < S; ++xx)
        p[(c * S + y) * S + xx] = (resized.pixels[static_cast<size_t>((y * S + xx) * 3 + c)] * cfg_.rescale - cfg_.mean[c]) /
                                  cfg_.std[c];
  // Coordinate channels, as training/scenes_model.py coord_channels: -1 + i * (2 / (S - 1)).
  const float step = 2.0f / static_cast<float>(S - 1);
  for (int64_t y = 0; y < S; ++y)
    for (int64_t xx = 0; xx < S; ++xx) {
      p[(3 * S + y) * S + xx] = static_cast<float>(xx) * step - 1.0f;
      p[(4 * S + y) * S + xx] = static_cast<float>(y) * step - 1.0f;
    }
  return x;
}

Tensor ScenesModel::encode(const Tensor& input) const {
  if (input.dim() != 4 || input.size(1) != 5)
    throw InternalError("scenes model: encoder input " + input.describe() + " is not [B, 5, S, S]");
  const int64_t B = input.size(0), d = cfg_.d_model;
  Tensor x = input;
  for (const auto& conv : convs_) x = conv.forward(x);  // [B, C, H', W'] (ReLU fused)
  const int64_t C = x.size(1), N = x.size(2) * x.size(3);
  if (N != cfg_.grid * cfg_.grid)
    throw InternalError("scenes model: conv output " + x.describe() + " is not the " + std::to_string(cfg_.grid) + "x" +
                        std::to_string(cfg_.grid) + " grid");
  // [B, C, N] -> [B, N, C] (row-major over y, x as torch's flatten(2).transpose(1, 2))
  Tensor grid = x.reshape({B, C, N}).transpose(1, 2).contiguous();
  Tensor h = img_proj_.forward(grid);  // [B, N, d]
  if (cfg_.grid_ln) h = ops::layer_norm(h, img_ln_w_, img_ln_b_, cfg_.ln_eps);
  for (int64_t b = 0; b < B; ++b) {  // + img_pos [N, d] for every image
    float* hp = h.f32() + b * N * d;
    const float* pp = img_pos_.f32();
    for (int64_t i = 0; i < N * d; ++i) hp[i] += pp[i];
  }
  for (const auto& L : enc_) {
    Tensor a = L.attn.forward(ops::layer_norm(h, L.ln1_w, L.ln1_b, cfg_.ln_eps));
    ops::add_inplace(h, a);
    Tensor f = L.fc1.forward(ops::layer_norm(h, L.ln2_w, L.ln2_b, cfg_.ln_eps));
    L.fc2.forward_into(f, h, /*accumulate=*/true);  // h += fc2(gelu(fc1(ln2(h))))
  }
  return ops::layer_norm(h, enc_ln_w_, enc_ln_b_, cfg_.ln_eps);
}

std::vector<ScenesModel::ImageMemory> ScenesModel::project_batch(const Tensor& memory) const {
  const int64_t N = cfg_.grid * cfg_.grid, d = cfg_.d_model, H = cfg_.n_heads, hd = d / H;
  if (memory.dim() != 3 || memory.size(1) != N || memory.size(2) != d)
    throw InternalError("scenes model: memory " + memory.describe() + " is not [B, " + std::to_string(N) + ", " +
                        std::to_string(d) + "]");
  const int64_t B = memory.size(0);
  std::vector<ImageMemory> out(static_cast<size_t>(B));
  for (auto& m : out) m.cross.resize(dec_.size());
  for (size_t i = 0; i < dec_.size(); ++i) {
    const Tensor kv = dec_[i].cross_kv.forward(memory);  // [B, N, 2d]: K | V
    const float* p = kv.f32();
    for (int64_t b = 0; b < B; ++b) {
      attn::CrossMemory& cm = out[static_cast<size_t>(b)].cross[i];
      cm.k = Tensor::empty({1, H, N, hd});  // [1, H, N, hd]
      cm.v = Tensor::empty({1, H, N, hd});
      for (int64_t h = 0; h < H; ++h)
        for (int64_t n = 0; n < N; ++n) {
          const float* row = p + (b * N + n) * 2 * d;
          std::memcpy(cm.k.f32() + (h * N + n) * hd, row + h * hd, sizeof(float) * static_cast<size_t>(hd));
          std::memcpy(cm.v.f32() + (h * N + n) * hd, row + d + h * hd, sizeof(float) * static_cast<size_t>(hd));
        }
    }
  }
  return out;
}

ScenesModel::ImageMemory ScenesModel::project(const Tensor& memory) const {
  if (memory.dim() != 3 || memory.size(0) != 1)
    throw InternalError("scenes model: project takes one image's memory [1, N, d], got " + memory.describe());
  return std::move(project_batch(memory)[0]);
}

std::vector<ScenesModel::ImageMemory> ScenesModel::prepare_images(const std::vector<Image>& images) const {
  if (images.empty()) return {};
  const int64_t S = cfg_.image_size, B = static_cast<int64_t>(images.size());
  Tensor x = Tensor::empty({B, 5, S, S});
  for (int64_t b = 0; b < B; ++b) {
    const Tensor one = to_input(resize(images[static_cast<size_t>(b)]));  // [1, 5, S, S]
    std::memcpy(x.f32() + b * 5 * S * S, one.f32(), one.nbytes());
  }
  return project_batch(encode(x));
}

// ---------------------------------------------------------------- text side

ScenesModel::Batch ScenesModel::start_batch(const std::vector<const ImageMemory*>& images) const {
  Batch b;
  for (const ImageMemory* m : images)
    if (!m || m->cross.size() != dec_.size()) throw InternalError("scenes model: batch row without image memory");
  b.images = images;
  b.len.assign(images.size(), 0);
  b.k.resize(dec_.size());
  b.v.resize(dec_.size());
  b.k2.resize(dec_.size());
  b.v2.resize(dec_.size());
  reserve_rows(b.k, b.v, b.rows());
  return b;
}

void ScenesModel::reserve_rows(std::vector<Tensor>& bufs_k, std::vector<Tensor>& bufs_v, int64_t rows) const {
  const int64_t H = cfg_.n_heads, hd = cfg_.d_model / H;
  rows = std::max<int64_t>(rows, 1);
  for (size_t i = 0; i < dec_.size(); ++i) {
    if (bufs_k[i].dim() == 4 && bufs_k[i].size(0) >= rows) continue;
    bufs_k[i] = Tensor::empty({rows, H, cfg_.max_len, hd});  // [rows_cap, H, max_len, hd]
    bufs_v[i] = Tensor::empty({rows, H, cfg_.max_len, hd});
  }
}

namespace {

// out[i] = softmax(s[i]) over n scores, in place
void softmax_inplace(float* s, int64_t n) {
  float mx = s[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, s[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    s[i] = std::exp(s[i] - mx);
    sum += s[i];
  }
  const float inv = 1.f / sum;
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

// One head of one query: q [hd], keys/values [n, hd] (row stride hd) -> out [hd]; probs [n]
// gets the attention weights.
void attend_one(const float* q, const float* keys, const float* values, int64_t n, int64_t hd, float scale,
                float* probs, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const float* k = keys + j * hd;
    float s = 0.f;
    for (int64_t c = 0; c < hd; ++c) s += q[c] * k[c];
    probs[j] = s * scale;
  }
  softmax_inplace(probs, n);
  for (int64_t c = 0; c < hd; ++c) out[c] = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    const float p = probs[j];
    const float* v = values + j * hd;
    for (int64_t c = 0; c < hd; ++c) out[c] += p * v[c];
  }
}

}  // namespace

Tensor ScenesModel::step_batch(Batch& batch, const std::vector<int>& parents, const std::vector<std::vector<int>>& ids,
                               bool all_positions, const MapSpec* spec, Tensor* maps) const {
  const int64_t d = cfg_.d_model, H = cfg_.n_heads, hd = d / H, cap = cfg_.max_len;
  const int64_t N = cfg_.grid * cfg_.grid, nl = static_cast<int64_t>(dec_.size());
  // 1. Rows: row r becomes old row parents[r] (only the used positions are copied).
  if (!parents.empty()) {
    const int64_t old_rows = batch.rows(), R = static_cast<int64_t>(parents.size());
    bool identity = R == old_rows;
    for (int64_t r = 0; r < R; ++r) {
      const int p = parents[static_cast<size_t>(r)];
      if (p < 0 || p >= old_rows)
        throw InternalError("scenes model: parent row " + std::to_string(p) + " outside [0, " + std::to_string(old_rows) + ")");
      identity = identity && p == r;
    }
    if (!identity) {
      reserve_rows(batch.k2, batch.v2, R);
      std::vector<const ImageMemory*> images(static_cast<size_t>(R));
      std::vector<int64_t> len(static_cast<size_t>(R));
      for (int64_t i = 0; i < nl; ++i)
        for (int64_t r = 0; r < R; ++r) {
          const int64_t p = parents[static_cast<size_t>(r)], used = batch.len[static_cast<size_t>(p)];
          for (int64_t h = 0; h < H; ++h) {
            const size_t n = sizeof(float) * static_cast<size_t>(used * hd);
            std::memcpy(batch.k2[static_cast<size_t>(i)].f32() + (r * H + h) * cap * hd,
                        batch.k[static_cast<size_t>(i)].f32() + (p * H + h) * cap * hd, n);
            std::memcpy(batch.v2[static_cast<size_t>(i)].f32() + (r * H + h) * cap * hd,
                        batch.v[static_cast<size_t>(i)].f32() + (p * H + h) * cap * hd, n);
          }
        }
      for (int64_t r = 0; r < R; ++r) {
        images[static_cast<size_t>(r)] = batch.images[static_cast<size_t>(parents[static_cast<size_t>(r)])];
        len[static_cast<size_t>(r)] = batch.len[static_cast<size_t>(parents[static_cast<size_t>(r)])];
      }
      std::swap(batch.k, batch.k2);
      std::swap(batch.v, batch.v2);
      batch.images = std::move(images);
      batch.len = std::move(len);
    }
  }
  const int64_t R = batch.rows();
  if (static_cast<int64_t>(ids.size()) != R)
    throw InternalError("scenes model: " + std::to_string(ids.size()) + " token lists for a batch of " + std::to_string(R) + " rows");
  // 2. Token layout: row r's T_r tokens at rows [off_r, off_r + T_r) of the [M, d] activations.
  std::vector<int64_t> off(static_cast<size_t>(R) + 1, 0);
  std::vector<int32_t> tokens;
  for (int64_t r = 0; r < R; ++r) {
    const auto& t = ids[static_cast<size_t>(r)];
    const int64_t T = static_cast<int64_t>(t.size()), at = batch.len[static_cast<size_t>(r)];
    if (T == 0) throw InternalError("scenes model: step with no tokens (row " + std::to_string(r) + ")");
    if (at + T > cap)
      throw InternalError("scenes model: sequence of " + std::to_string(at + T) + " tokens exceeds max_len " + std::to_string(cap));
    off[static_cast<size_t>(r) + 1] = off[static_cast<size_t>(r)] + T;
    tokens.insert(tokens.end(), t.begin(), t.end());
  }
  const int64_t M = off.back();
  Tensor h = ops::embedding(tok_emb_, tokens);  // [M, d]
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = off[static_cast<size_t>(r)]; m < off[static_cast<size_t>(r) + 1]; ++m) {
      const float* pe = pos_emb_.f32() + (batch.len[static_cast<size_t>(r)] + m - off[static_cast<size_t>(r)]) * d;
      float* hp = h.f32() + m * d;
      for (int64_t c = 0; c < d; ++c) hp[c] += pe[c];
    }
  // Map selection.
  int map_layer = -1, map_head = -1;
  if (maps) {
    map_layer = spec && spec->layer >= 0 ? spec->layer : static_cast<int>(nl - 1);
    map_head = spec ? spec->head : -1;
    if (map_layer >= nl || map_head >= H || map_head < -1)
      throw InternalError("scenes model: attention map layer " + std::to_string(map_layer) + ", head " +
                          std::to_string(map_head) + " outside " + std::to_string(nl) + " layers, " + std::to_string(H) + " heads");
    *maps = Tensor::zeros({R, N});
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  Tensor att = Tensor::empty({M, d});
  std::vector<float> probs(static_cast<size_t>(std::max(N, cap)));
  // 3. Layers.
  for (int64_t i = 0; i < nl; ++i) {
    const DecoderLayer& L = dec_[static_cast<size_t>(i)];
    float* kc = batch.k[static_cast<size_t>(i)].f32();
    float* vc = batch.v[static_cast<size_t>(i)].f32();
    // Causal self-attention over each row's cache.
    const Tensor qkv = L.self_qkv.forward(ops::layer_norm(h, L.ln1_w, L.ln1_b, cfg_.ln_eps));  // [M, 3d]: Q | K | V
    for (int64_t r = 0; r < R; ++r) {
      const int64_t at = batch.len[static_cast<size_t>(r)], o = off[static_cast<size_t>(r)];
      for (int64_t m = o; m < off[static_cast<size_t>(r) + 1]; ++m)
        for (int64_t hh = 0; hh < H; ++hh) {
          const float* src = qkv.f32() + m * 3 * d;
          const int64_t dst = ((r * H + hh) * cap + at + (m - o)) * hd;
          std::memcpy(kc + dst, src + d + hh * hd, sizeof(float) * static_cast<size_t>(hd));
          std::memcpy(vc + dst, src + 2 * d + hh * hd, sizeof(float) * static_cast<size_t>(hd));
        }
      for (int64_t m = o; m < off[static_cast<size_t>(r) + 1]; ++m) {
        const int64_t visible = at + (m - o) + 1;
        for (int64_t hh = 0; hh < H; ++hh)
          attend_one(qkv.f32() + m * 3 * d + hh * hd, kc + (r * H + hh) * cap * hd, vc + (r * H + hh) * cap * hd, visible, hd,
                     scale, probs.data(), att.f32() + m * d + hh * hd);
      }
    }
    L.self_o.forward_into(att, h, /*accumulate=*/true);
    // Cross-attention to each row's image.
    const Tensor q = L.cross_q.forward(ops::layer_norm(h, L.ln2_w, L.ln2_b, cfg_.ln_eps));  // [M, d]
    for (int64_t r = 0; r < R; ++r) {
      const attn::CrossMemory& cm = batch.images[static_cast<size_t>(r)]->cross[static_cast<size_t>(i)];
      const int64_t last = off[static_cast<size_t>(r) + 1] - 1;
      for (int64_t m = off[static_cast<size_t>(r)]; m <= last; ++m)
        for (int64_t hh = 0; hh < H; ++hh) {
          attend_one(q.f32() + m * d + hh * hd, cm.k.f32() + hh * N * hd, cm.v.f32() + hh * N * hd, N, hd, scale, probs.data(),
                     att.f32() + m * d + hh * hd);
          if (maps && i == map_layer && m == last && (map_head < 0 || map_head == hh)) {
            float* mp = maps->f32() + r * N;
            const float w = map_head < 0 ? 1.f / static_cast<float>(H) : 1.f;
            for (int64_t n = 0; n < N; ++n) mp[n] += w * probs[static_cast<size_t>(n)];
          }
        }
    }
    L.cross_o.forward_into(att, h, /*accumulate=*/true);
    Tensor f = L.fc1.forward(ops::layer_norm(h, L.ln3_w, L.ln3_b, cfg_.ln_eps));
    L.fc2.forward_into(f, h, /*accumulate=*/true);
  }
  for (int64_t r = 0; r < R; ++r) batch.len[static_cast<size_t>(r)] += off[static_cast<size_t>(r) + 1] - off[static_cast<size_t>(r)];
  // 4. Logits of the wanted positions.
  Tensor sel = h;
  if (!all_positions && M != R) {
    sel = Tensor::empty({R, d});
    for (int64_t r = 0; r < R; ++r)
      std::memcpy(sel.f32() + r * d, h.f32() + (off[static_cast<size_t>(r) + 1] - 1) * d, sizeof(float) * static_cast<size_t>(d));
  }
  return lm_head_.forward(ops::layer_norm(sel, dec_ln_w_, dec_ln_b_, cfg_.ln_eps));  // [R or M, V]
}

ScenesModel::Sequence ScenesModel::start(const ImageMemory& image) const {
  Sequence s;
  s.image = &image;
  s.batch = start_batch({&image});
  return s;
}

Tensor ScenesModel::step(Sequence& seq, const std::vector<int>& ids) const {
  if (ids.empty()) throw InternalError("scenes model: step with no tokens");
  Tensor l = step_batch(seq.batch, {}, {ids}, /*all_positions=*/true);  // [T, V]
  seq.pos = seq.batch.len[0];
  return l;
}

std::vector<int> ScenesModel::vqa_prompt(const std::string& question) const {
  std::vector<int> q = tok_.encode(question);
  check_prompt_tokens(static_cast<int64_t>(q.size()), "question");  // --max-prompt-tokens (core/limits.hpp)
  const int64_t room = max_question_tokens();
  if (static_cast<int64_t>(q.size()) > room)
    throw InputError("question", "is " + std::to_string(q.size()) + " tokens long; the scenes model takes at most " +
                                     std::to_string(room));
  std::vector<int> p;
  p.reserve(q.size() + 2);
  p.push_back(cfg_.bos_id);
  p.insert(p.end(), q.begin(), q.end());
  p.push_back(cfg_.sep_id);
  return p;
}

std::vector<int> ScenesModel::caption_prompt() const { return {cfg_.bos_id, cfg_.cap_id, cfg_.sep_id}; }

GreedyResult ScenesModel::generate(const ImageMemory& image, const std::vector<int>& prompt, int max_new_tokens) const {
  Sequence seq = start(image);
  GreedyOptions opt;
  opt.eos_id = cfg_.eos_id;
  opt.max_new_tokens = static_cast<int>(std::min<int64_t>(max_new_tokens, cfg_.max_len - static_cast<int64_t>(prompt.size())));
  opt.banned = banned_ids();
  if (opt.max_new_tokens < 1) throw InternalError("scenes model: prompt of " + std::to_string(prompt.size()) + " tokens leaves no room");
  return greedy_decode(
      [&](const std::vector<int>& ids) {
        Tensor l = step(seq, ids);  // [T, V]
        return l.select(0, l.size(0) - 1).contiguous();
      },
      prompt, opt);
}

std::string ScenesModel::caption(const ImageMemory& image) const {
  const auto p = caption_prompt();
  return tok_.decode(generate(image, p, static_cast<int>(cfg_.max_len - 3)).ids);
}

std::string ScenesModel::answer(const ImageMemory& image, const std::string& question) const {
  return tok_.decode(generate(image, vqa_prompt(question), kMaxAnswerTokens).ids);
}

// ---------------------------------------------------------------- model location

namespace {
bool is_model_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "config.json", ec) && fs::is_regular_file(p / "model.safetensors", ec);
}
}  // namespace

std::string default_scenes_model_dir(const std::string& argv0_hint) {
  if (const char* env = std::getenv("XMODAL_MODEL_DIR"); env && *env) return env;
  std::vector<fs::path> starts;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  if (!argv0_hint.empty()) starts.push_back(fs::absolute(argv0_hint, ec).parent_path());
  for (const auto& s : starts) {
    fs::path p = s;
    for (int up = 0; up < 5 && !p.empty(); ++up) {
      for (const fs::path& rel : {fs::path("assets/models/scenes"), fs::path("share/xmodal/assets/models/scenes")})
        if (is_model_dir(p / rel)) return (p / rel).string();
      if (p == p.parent_path()) break;
      p = p.parent_path();
    }
  }
  // Last resort: the source tree this file was compiled from (a build directory elsewhere).
  const fs::path src = fs::path(__FILE__).parent_path().parent_path() / "assets/models/scenes";
  if (src.is_absolute() && is_model_dir(src)) return src.string();
  return "";
}

std::string resolve_scenes_model_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::string d = default_scenes_model_dir();
  if (d.empty())
    throw ModelError("assets/models/scenes",
                     "the built-in model was not found next to the executable; pass --model DIR or set XMODAL_MODEL_DIR");
  return d;
}

}  // namespace xmodal
