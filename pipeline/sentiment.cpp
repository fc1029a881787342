#include "pipeline/sentiment.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.hpp"
#include "encoders/audio.hpp"

namespace xmodal {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- config

SentimentConfig SentimentConfig::from(const Config& c) {
  SentimentConfig s;
  const std::string arch = c.get_string("architecture");
  if (arch != "xmodal-sentiment") throw ModelError(c.file(), "architecture '" + arch + "' is not 'xmodal-sentiment'");
  const auto labels = c.json().find("labels");
  if (labels == c.json().end() || !labels->is_array() || labels->size() < 2 || labels->size() > 64)
    throw ModelError(c.file(), "key 'labels' must be an array of 2 to 64 strings");
  for (const auto& l : *labels) {
    if (!l.is_string()) throw ModelError(c.file(), "key 'labels' holds a non-string");
    s.labels.push_back(l.get<std::string>());
  }
  // The audio front end is fixed in encoders/audio; the model must have been trained on it.
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  const Config fe = c.sub("audio_features");
  auto need = [&](const std::string& key, double want) {
    const double got = fe.get_float(key);
    if (std::fabs(got - want) > 1e-9 * std::max(1.0, std::fabs(want)))
      throw ModelError(c.file(), "audio_features." + key + " is " + num(got) + "; this build computes " + num(want));
  };
  need("sample_rate", audio::kSampleRate);
  need("n_fft", audio::kNfft);
  need("hop_length", audio::kHop);
  need("n_mels", audio::kMels);
  need("f_min", 0.0);
  need("f_max", audio::kSampleRate / 2.0);
  need("log_floor", 1e-10);
  if (fe.get_string("mel_scale") != "htk" || fe.get_string("window") != "hann_periodic")
    throw ModelError(c.file(), "audio_features: mel_scale must be 'htk' and window 'hann_periodic'");
  s.n_mels = audio::kMels;
  s.feature_mean = static_cast<float>(fe.get_float("feature_mean"));
  s.feature_std = static_cast<float>(fe.get_float("feature_std"));
  if (!(s.feature_std > 0.f)) throw ModelError(c.file(), "audio_features.feature_std must be > 0");

  const auto ch = c.get_ints("conv_channels");
  s.d_model = c.get_int("d_model", 1, 8192);
  if (ch.size() != 2 || ch[0] < 1 || ch[0] > 4096 || ch[1] != s.d_model)
    throw ModelError(c.file(), "conv_channels must be [C1, d_model] with 1 <= C1 <= 4096 and d_model " +
                                   std::to_string(s.d_model));
  s.conv1 = ch[0];
  if (c.string_or("conv_type", "conv1d") != "conv1d" || c.int_or("conv_kernel", 3) != 3 ||
      c.int_or("conv_stride", 2) != 2 || c.int_or("conv_padding", 1) != 1)
    throw ModelError(c.file(), "only 1-D convolutions with kernel 3, stride 2 and padding 1 are supported");
  s.n_heads = c.get_int("n_heads", 1, 256);
  if (s.d_model % s.n_heads != 0 || s.d_model % 2 != 0)
    throw ModelError(c.file(), "d_model " + std::to_string(s.d_model) + " must be even and a multiple of n_heads " +
                                   std::to_string(s.n_heads));
  s.d_ff = c.get_int("d_ff", 1, 65536);
  s.n_audio_layers = c.get_int("n_audio_layers", 0, 64);
  s.n_text_layers = c.get_int("n_text_layers", 0, 64);
  s.n_fusion_layers = c.get_int("n_fusion_layers", 1, 64);
  s.max_text_len = c.get_int("max_text_len", 1, 4096);
  s.vocab_size = c.get_int("vocab_size", 4, 1 << 20);
  s.ln_eps = static_cast<float>(c.get_float("layer_norm_eps"));
  if (c.string_or("ffn_activation", "gelu_erf") != "gelu_erf")
    throw ModelError(c.file(), "only ffn_activation 'gelu_erf' is supported");
  if (c.string_or("audio_positions", "sinusoidal") != "sinusoidal" || c.string_or("pooling", "mean_text") != "mean_text")
    throw ModelError(c.file(), "only audio_positions 'sinusoidal' and pooling 'mean_text' are supported");
  if (c.string_or("mode", "fused") != "fused")
    throw ModelError(c.file(), "mode '" + c.string_or("mode", "") + "' is a training baseline; only 'fused' models run here");
  return s;
}

// ---------------------------------------------------------------- loading

SentimentModel::Layer SentimentModel::load_layer(const Weights& w, const SentimentConfig& c, bool cross) {
  const int64_t d = c.d_model;
  Layer L;
  L.ln1_w = w.take("ln1.weight", {d});
  L.ln1_b = w.take("ln1.bias", {d});
  attn::MhaConfig mc;
  mc.d_model = d;
  mc.n_heads = c.n_heads;
  mc.cross = cross;
  attn::MhaWeights mw;
  const Weights a = w.scope("attn");
  mw.q_w = a.take("q_proj.weight", {d, d});  // <scope>.attn.q_proj.weight [d, d]
  mw.q_b = a.take("q_proj.bias", {d});
  mw.k_w = a.take("k_proj.weight", {d, d});  // <scope>.attn.k_proj.weight [d, d]
  mw.k_b = a.take("k_proj.bias", {d});
  mw.v_w = a.take("v_proj.weight", {d, d});  // <scope>.attn.v_proj.weight [d, d]
  mw.v_b = a.take("v_proj.bias", {d});
  mw.o_w = a.take("o_proj.weight", {d, d});  // <scope>.attn.o_proj.weight [d, d]
  mw.o_b = a.take("o_proj.bias", {d});
  L.attn = attn::MultiHeadAttention(mc, mw);
  // Short sequences (tens of tokens or frames): the fused online-softmax kernel needs no
  // per-shape oneDNN JIT, which a one-shot CLI run would pay for every new clip length
  // (a 40x40 batched oneDNN matmul with strided Q took 60 ms on its first run here).
  L.attn.set_backend(attn::SdpaBackend::fused);
  L.ln2_w = w.take("ln2.weight", {d});
  L.ln2_b = w.take("ln2.bias", {d});
  L.fc1 = ops::Linear(w.take("ffn.fc1.weight", {c.d_ff, d}), w.take("ffn.fc1.bias", {c.d_ff}), ops::Act::gelu_erf);
  L.fc2 = ops::Linear(w.take("ffn.fc2.weight", {d, c.d_ff}), w.take("ffn.fc2.bias", {d}));
  return L;
}

SentimentModel SentimentModel::load(const std::string& dir) {
  ModelDir md = ModelDir::open(dir);
  SentimentModel m;
  m.dir_ = dir;
  m.cfg_ = SentimentConfig::from(md.config);
  const SentimentConfig& c = m.cfg_;
  if (md.tokenizer != TokenizerKind::sentencepiece)
    throw ModelError(dir, "no tokenizer.model (sentencepiece) in the model directory");
  m.tok_ = SpTokenizer::load(md.tokenizer_path);
  if (m.tok_.vocab_size() != c.vocab_size)
    throw ModelError(md.tokenizer_path, "has " + std::to_string(m.tok_.vocab_size()) + " pieces, config.json says vocab_size " +
                                            std::to_string(c.vocab_size));

  const Weights w = md.weights();
  const int64_t d = c.d_model, nl = static_cast<int64_t>(c.labels.size());
  // Conv1d over time = Conv2d over [1, C, 1, T] with a 1 x 3 kernel, stride (1, 2), padding (0, 1).
  m.conv1_ = ops::Conv2d(w.take("conv1.weight", {c.conv1, c.n_mels, 3}).reshape({c.conv1, c.n_mels, 1, 3}),
                         w.take("conv1.bias", {c.conv1}), {1, 2}, {0, 1}, 1, ops::Act::relu, 1);
  m.conv2_ = ops::Conv2d(w.take("conv2.weight", {d, c.conv1, 3}).reshape({d, c.conv1, 1, 3}), w.take("conv2.bias", {d}),
                         {1, 2}, {0, 1}, 1, ops::Act::relu, 1);
  for (int64_t i = 0; i < c.n_audio_layers; ++i)
    m.audio_.push_back(load_layer(w.scope("audio_layers." + std::to_string(i)), c, false));
  m.audio_ln_w_ = w.take("audio_ln.weight", {d});
  m.audio_ln_b_ = w.take("audio_ln.bias", {d});
  m.tok_emb_ = w.take("tok_emb.weight", {c.vocab_size, d});
  m.pos_emb_ = w.take("pos_emb", {c.max_text_len, d});
  for (int64_t i = 0; i < c.n_text_layers; ++i)
    m.text_.push_back(load_layer(w.scope("text_layers." + std::to_string(i)), c, false));
  for (int64_t i = 0; i < c.n_fusion_layers; ++i)
    m.fusion_.push_back(load_layer(w.scope("fusion_layers." + std::to_string(i)), c, true));
  const Weights last = w.scope("fusion_layers." + std::to_string(c.n_fusion_layers - 1)).scope("attn");
  m.map_q_ = ops::Linear(last.take("q_proj.weight", {d, d}), last.take("q_proj.bias", {d}));
  m.final_ln_w_ = w.take("final_ln.weight", {d});
  m.final_ln_b_ = w.take("final_ln.bias", {d});
  m.classifier_ = ops::Linear(w.take("classifier.weight", {nl, d}), w.take("classifier.bias", {nl}));
  w.check_all_used();
  return m;
}

// ---------------------------------------------------------------- forward

void SentimentModel::ffn(const Layer& L, Tensor& x) const {
  Tensor f = L.fc1.forward(ops::layer_norm(x, L.ln2_w, L.ln2_b, cfg_.ln_eps));
  L.fc2.forward_into(f, x, /*accumulate=*/true);  // x += fc2(gelu(fc1(ln2(x))))
}

Tensor SentimentModel::encode_audio(const Tensor& logmel) const {
  const int64_t M = cfg_.n_mels, d = cfg_.d_model;
  if (logmel.dim() != 2 || logmel.size(1) != M || logmel.size(0) < 1)
    throw InternalError("sentiment: log-mel is " + logmel.describe() + ", expected [T, " + std::to_string(M) + "]");
  const int64_t T = logmel.size(0);
  // [T, M] -> normalised, mel bins as channels: [1, M, 1, T]
  Tensor x = Tensor::empty({1, M, 1, T});
  const Tensor lm = logmel.contiguous();
  const float inv = 1.f / cfg_.feature_std;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t m = 0; m < M; ++m) x.f32()[m * T + t] = (lm.f32()[t * M + m] - cfg_.feature_mean) * inv;
  x = conv2_.forward(conv1_.forward(x));  // [1, d, 1, T'] (ReLU fused)
  const int64_t T2 = x.size(3);
  if (x.size(1) != d || T2 != memory_length(T))
    throw InternalError("sentiment: conv output " + x.describe() + " for " + std::to_string(T) + " frames");
  Tensor h = x.reshape({d, T2}).transpose(0, 1).contiguous();  // [T', d]
  // + sinusoidal positions: pe[t, 2i] = sin(t w_i), pe[t, 2i+1] = cos(t w_i), w_i = 10000^(-2i/d)
  float* hp = h.f32();
  for (int64_t i = 0; i < d / 2; ++i) {
    const double w = std::exp(-std::log(10000.0) * static_cast<double>(2 * i) / static_cast<double>(d));
    for (int64_t t = 0; t < T2; ++t) {
      hp[t * d + 2 * i] += static_cast<float>(std::sin(static_cast<double>(t) * w));
      hp[t * d + 2 * i + 1] += static_cast<float>(std::cos(static_cast<double>(t) * w));
    }
  }
  h = h.reshape({1, T2, d});
  for (const Layer& L : audio_) {
    Tensor a = L.attn.forward(ops::layer_norm(h, L.ln1_w, L.ln1_b, cfg_.ln_eps));
    ops::add_inplace(h, a);
    ffn(L, h);
  }
  return ops::layer_norm(h, audio_ln_w_, audio_ln_b_, cfg_.ln_eps);  // [1, T', d]
}

std::vector<int> SentimentModel::tokenize(const std::string& text) const {
  std::vector<int> ids = tok_.encode(text);
  if (ids.empty()) throw InputError("--text", "is empty (after the tokenizer's normalisation)");
  if (static_cast<int64_t>(ids.size()) > cfg_.max_text_len)
    throw InputError("--text", "is " + std::to_string(ids.size()) + " tokens long; the sentiment model reads at most " +
                                   std::to_string(cfg_.max_text_len));
  return ids;
}

Tensor SentimentModel::encode_text(const std::vector<int>& ids) const {
  const int64_t L = static_cast<int64_t>(ids.size()), d = cfg_.d_model;
  if (L < 1 || L > cfg_.max_text_len)
    throw InternalError("sentiment: " + std::to_string(L) + " tokens, expected 1.." + std::to_string(cfg_.max_text_len));
  Tensor h = ops::embedding(tok_emb_, std::vector<int32_t>(ids.begin(), ids.end()));  // [L, d]
  ops::add_inplace(h, pos_emb_.slice(0, 0, L).contiguous());
  h = h.reshape({1, L, d});
  for (const Layer& Ly : text_) {
    Tensor a = Ly.attn.forward(ops::layer_norm(h, Ly.ln1_w, Ly.ln1_b, cfg_.ln_eps));
    ops::add_inplace(h, a);
    ffn(Ly, h);
  }
  return h;
}

SentimentResult SentimentModel::classify(const std::vector<int>& ids, const Tensor& memory, bool want_attention,
                                         Tensor* fused) const {
  const int64_t d = cfg_.d_model, H = cfg_.n_heads, hd = d / H;
  if (memory.dim() != 3 || memory.size(0) != 1 || memory.size(2) != d)
    throw InternalError("sentiment: memory is " + memory.describe() + ", expected [1, T', " + std::to_string(d) + "]");
  SentimentResult r;
  for (int id : ids) r.pieces.push_back(tok_.id_to_piece(id));
  Tensor h = encode_text(ids);  // [1, L, d]
  const int64_t L = h.size(1);
  for (size_t i = 0; i < fusion_.size(); ++i) {
    const Layer& Ly = fusion_[i];
    const attn::CrossMemory mem = Ly.attn.project_memory(memory);  // K/V of this clip, once
    Tensor n = ops::layer_norm(h, Ly.ln1_w, Ly.ln1_b, cfg_.ln_eps);
    if (want_attention && i + 1 == fusion_.size()) {
      // softmax(q k^T / sqrt(hd)) per head, averaged: [L, T'] (plain loops: tiny)
      const Tensor q = map_q_.forward(n);  // [1, L, d], head h = columns [h*hd, (h+1)*hd)
      const Tensor k = mem.k.contiguous();  // [1, H, T', hd]
      const int64_t Tm = mem.length();
      const float scale = 1.f / std::sqrt(static_cast<float>(hd));
      r.attention = Tensor::zeros({L, Tm});
      std::vector<double> s(static_cast<size_t>(Tm));
      for (int64_t hh = 0; hh < H; ++hh)
        for (int64_t i = 0; i < L; ++i) {
          const float* qi = q.f32() + i * d + hh * hd;
          double mx = -1e300, sum = 0.0;
          for (int64_t t = 0; t < Tm; ++t) {
            const float* kt = k.f32() + (hh * Tm + t) * hd;
            double dot = 0.0;
            for (int64_t j = 0; j < hd; ++j) dot += static_cast<double>(qi[j]) * kt[j];
            s[static_cast<size_t>(t)] = dot * scale;
            mx = std::max(mx, s[static_cast<size_t>(t)]);
          }
          for (int64_t t = 0; t < Tm; ++t) sum += (s[static_cast<size_t>(t)] = std::exp(s[static_cast<size_t>(t)] - mx));
          for (int64_t t = 0; t < Tm; ++t)
            r.attention.f32()[i * Tm + t] += static_cast<float>(s[static_cast<size_t>(t)] / sum / static_cast<double>(H));
        }
    }
    Tensor a = Ly.attn.forward(n, mem);
    ops::add_inplace(h, a);
    ffn(Ly, h);
  }
  if (fused) *fused = h.clone();
  Tensor f = ops::layer_norm(h.reshape({L, d}), final_ln_w_, final_ln_b_, cfg_.ln_eps);  // [L, d]
  Tensor pooled = Tensor::zeros({1, d});
  for (int64_t t = 0; t < L; ++t)
    for (int64_t j = 0; j < d; ++j) pooled.f32()[j] += f.f32()[t * d + j];
  for (int64_t j = 0; j < d; ++j) pooled.f32()[j] /= static_cast<float>(L);
  r.logits = classifier_.forward(pooled).reshape({static_cast<int64_t>(cfg_.labels.size())});
  const Tensor p = ops::softmax_lastdim(r.logits);
  r.probs.assign(p.f32(), p.f32() + p.numel());
  r.label = static_cast<int>(std::max_element(r.probs.begin(), r.probs.end()) - r.probs.begin());
  return r;
}

SentimentResult SentimentModel::predict(const std::string& text, const Tensor& logmel, bool want_attention) const {
  const std::vector<int> ids = tokenize(text);
  return classify(ids, encode_audio(logmel), want_attention);
}

// ---------------------------------------------------------------- model location

namespace {
bool is_model_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "config.json", ec) && fs::is_regular_file(p / "model.safetensors", ec);
}
}  // namespace

std::string default_sentiment_model_dir() {
  if (const char* env = std::getenv("XMODAL_SENTIMENT_MODEL_DIR"); env && *env) return env;
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  p = p.parent_path();
  for (int up = 0; up < 5 && !p.empty(); ++up) {
    for (const auto& rel : {fs::path("assets/models/sentiment"), fs::path("share/xmodal/assets/models/sentiment")})
      if (is_model_dir(p / rel)) return (p / rel).string();
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return "";
}

std::string resolve_sentiment_model_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::string d = default_sentiment_model_dir();
  if (d.empty())
    throw ModelError("assets/models/sentiment",
                     "the built-in sentiment model was not found next to the executable; pass --model DIR or set "
                     "XMODAL_SENTIMENT_MODEL_DIR");
  return d;
}

}  // namespace xmodal
