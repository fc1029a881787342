#include "pipeline/scenes_model.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"

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
    L.self_attn = load_mha(s.scope("self_attn"), c, false);
    L.ln2_w = s.take("ln2.weight", {d});
    L.ln2_b = s.take("ln2.bias", {d});
    L.cross_attn = load_mha(s.scope("cross_attn"), c, true);
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
  Tensor x = input;
  for (const auto& conv : convs_) x = conv.forward(x);  // [1, C, H', W'] (ReLU fused)
  const int64_t C = x.size(1), N = x.size(2) * x.size(3);
  if (N != cfg_.grid * cfg_.grid)
    throw InternalError("scenes model: conv output " + x.describe() + " is not the " + std::to_string(cfg_.grid) + "x" +
                        std::to_string(cfg_.grid) + " grid");
  // [1, C, N] -> [N, C] (row-major over y, x as torch's flatten(2).transpose(1, 2))
  Tensor grid = x.reshape({C, N}).transpose(0, 1).contiguous();
  Tensor h = img_proj_.forward(grid);  // [N, d]
  if (cfg_.grid_ln) h = ops::layer_norm(h, img_ln_w_, img_ln_b_, cfg_.ln_eps);
  ops::add_inplace(h, img_pos_);
  h = h.reshape({1, N, cfg_.d_model});
  for (const auto& L : enc_) {
    Tensor a = L.attn.forward(ops::layer_norm(h, L.ln1_w, L.ln1_b, cfg_.ln_eps));
    ops::add_inplace(h, a);
    Tensor f = L.fc1.forward(ops::layer_norm(h, L.ln2_w, L.ln2_b, cfg_.ln_eps));
    L.fc2.forward_into(f, h, /*accumulate=*/true);  // h += fc2(gelu(fc1(ln2(h))))
  }
  return ops::layer_norm(h, enc_ln_w_, enc_ln_b_, cfg_.ln_eps);
}

ScenesModel::ImageMemory ScenesModel::project(const Tensor& memory) const {
  ImageMemory m;
  m.cross.reserve(dec_.size());
  for (const auto& L : dec_) m.cross.push_back(L.cross_attn.project_memory(memory));
  return m;
}

// ---------------------------------------------------------------- text side

ScenesModel::Sequence ScenesModel::start(const ImageMemory& image) const {
  Sequence s;
  s.image = &image;
  for (const auto& L : dec_) s.caches.push_back(L.self_attn.make_cache(1, cfg_.max_len));
  return s;
}

Tensor ScenesModel::step(Sequence& seq, const std::vector<int>& ids) const {
  const int64_t T = static_cast<int64_t>(ids.size()), d = cfg_.d_model;
  if (T == 0) throw InternalError("scenes model: step with no tokens");
  if (seq.pos + T > cfg_.max_len)
    throw InternalError("scenes model: sequence of " + std::to_string(seq.pos + T) + " tokens exceeds max_len " +
                        std::to_string(cfg_.max_len));
  if (!seq.image || seq.image->cross.size() != dec_.size()) throw InternalError("scenes model: step without image memory");
  std::vector<int32_t> ids32(ids.begin(), ids.end());
  Tensor h = ops::embedding(tok_emb_, ids32);  // [T, d]
  ops::add_inplace(h, pos_emb_.slice(0, seq.pos, seq.pos + T).contiguous());
  h = h.reshape({1, T, d});
  attn::SdpaParams causal;
  causal.causal = true;
  for (size_t i = 0; i < dec_.size(); ++i) {
    const DecoderLayer& L = dec_[i];
    Tensor a = L.self_attn.forward(ops::layer_norm(h, L.ln1_w, L.ln1_b, cfg_.ln_eps), seq.caches[i], causal);
    ops::add_inplace(h, a);
    Tensor x = L.cross_attn.forward(ops::layer_norm(h, L.ln2_w, L.ln2_b, cfg_.ln_eps), seq.image->cross[i]);
    ops::add_inplace(h, x);
    Tensor f = L.fc1.forward(ops::layer_norm(h, L.ln3_w, L.ln3_b, cfg_.ln_eps));
    L.fc2.forward_into(f, h, /*accumulate=*/true);
  }
  seq.pos += T;
  Tensor n = ops::layer_norm(h.reshape({T, d}), dec_ln_w_, dec_ln_b_, cfg_.ln_eps);
  return lm_head_.forward(n);  // [T, V]
}

std::vector<int> ScenesModel::vqa_prompt(const std::string& question) const {
  std::vector<int> q = tok_.encode(question);
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
  opt.banned = {cfg_.pad_id, cfg_.bos_id, cfg_.sep_id, cfg_.cap_id};
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
