// open_vlm: dispatch on config.json's architecture, and the scenes model behind the Vlm
// interface (batched encoding and decoding through ScenesModel::prepare_images / step_batch,
// greedy or beam search from pipeline/decoding, streaming, attention maps). The BLIP side is
// pipeline/blip_vlm.cpp.
#include "pipeline/vlm.hpp"

#include <algorithm>
#include <chrono>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "pipeline/scenes_model.hpp"
#include "pipeline/weights.hpp"

namespace xmodal {

std::shared_ptr<const Vlm::AnswerSet> Vlm::answer_set(const std::vector<std::string>&) const {
  throw UsageError("the " + architecture() + " model cannot rank a fixed answer list (--answer-list needs blip-vqa)");
}

VlmResult Vlm::rank(const Encoded&, const std::string&, const AnswerSet&, int, const VlmRequest&) const {
  throw UsageError("the " + architecture() + " model cannot rank a fixed answer list (--answer-list needs blip-vqa)");
}

std::vector<VlmResult> Vlm::caption_batch(const std::vector<const Encoded*>& images, const VlmRequest& req) const {
  std::vector<VlmResult> out;
  out.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    VlmRequest r = req;
    if (req.on_token) r.on_token = [&req, i](size_t, const std::string& piece) { req.on_token(i, piece); };
    out.push_back(caption(*images[i], r));
  }
  return out;
}

std::vector<VlmResult> Vlm::answer_batch(const std::vector<const Encoded*>& images, const std::vector<std::string>& questions,
                                         const VlmRequest& req) const {
  if (images.size() != questions.size())
    throw InternalError("answer_batch: " + std::to_string(images.size()) + " images but " +
                        std::to_string(questions.size()) + " questions");
  std::vector<VlmResult> out;
  out.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    VlmRequest r = req;
    if (req.on_token) r.on_token = [&req, i](size_t, const std::string& piece) { req.on_token(i, piece); };
    out.push_back(answer(*images[i], questions[i], r));
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct ScenesEncoded : Vlm::Encoded {
  ScenesModel::ImageMemory memory;
};

bool ends_with_replacement_char(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

// Streams one sequence's text: each new id re-decodes the ids so far and emits what was added,
// so the pieces concatenate to the final text (sentencepiece drops the leading space of the
// first word and joins byte-fallback pieces; a piece is held back while the text is not an
// extension of what was emitted or ends in an incomplete UTF-8 character).
struct TextStream {
  std::vector<int> ids;
  std::string emitted;
  void push(const SpTokenizer& tok, int id, size_t index, const std::function<void(size_t, const std::string&)>& cb) {
    ids.push_back(id);
    const std::string text = tok.decode(ids);
    if (text.size() > emitted.size() && text.compare(0, emitted.size(), emitted) == 0 && !ends_with_replacement_char(text)) {
      cb(index, text.substr(emitted.size()));
      emitted = text;
    }
  }
  // the rest of the final text
  void finish(const std::string& final_text, size_t index, const std::function<void(size_t, const std::string&)>& cb) {
    if (final_text.size() > emitted.size() && final_text.compare(0, emitted.size(), emitted) == 0)
      cb(index, final_text.substr(emitted.size()));
    emitted = final_text;
  }
};

// The scenes model behind the Vlm interface: images encoded as one batch; captions and answers
// decoded as one batch (greedy or beam search, pipeline/decoding), each row at its own length;
// streaming; attention maps over the G x G grid.
class ScenesVlm : public Vlm {
 public:
  ScenesVlm(const std::string& dir, const VlmLoadOptions& opt) : m_(ScenesModel::load(dir)) {
    if (opt.weight_dtype != DType::f32) throw UsageError("the scenes model runs in f32 only (no --bf16)");
  }
  std::string architecture() const override { return "xmodal-scenes"; }
  bool can_caption() const override { return true; }
  bool can_answer() const override { return true; }
  int64_t map_grid() const override { return m_.config().grid; }

  std::vector<std::unique_ptr<Encoded>> encode(const std::vector<Image>& images, double* encode_ms) const override {
    const auto t0 = Clock::now();
    // --max-batch-mb (core/limits.hpp): the decoded images, the [3, S, S] inputs, and per layer
    // about 8 activations of the conv grid (G*G positions x d_model: q, k, v, output, 4x FFN).
    const ScenesConfig& c = m_.config();
    int64_t bytes = 0;
    for (const Image& im : images) bytes += int64_t{im.width} * im.height * 3;
    bytes += static_cast<int64_t>(images.size()) * 4 * (3 * c.image_size * c.image_size + 8 * c.grid * c.grid * c.d_model);
    check_batch_memory(static_cast<int64_t>(images.size()), bytes, architecture());
    std::vector<ScenesModel::ImageMemory> mems = m_.prepare_images(images);
    std::vector<std::unique_ptr<Encoded>> out;
    for (auto& m : mems) {
      auto e = std::make_unique<ScenesEncoded>();
      e->memory = std::move(m);
      out.push_back(std::move(e));
    }
    if (encode_ms) *encode_ms = ms_since(t0);
    return out;
  }

  VlmResult caption(const Encoded& image, const VlmRequest& req) const override {
    return std::move(caption_batch({&image}, req).at(0));
  }
  VlmResult answer(const Encoded& image, const std::string& question, const VlmRequest& req) const override {
    return std::move(answer_batch({&image}, {question}, req).at(0));
  }

  std::vector<VlmResult> caption_batch(const std::vector<const Encoded*>& images, const VlmRequest& req) const override {
    check(req);
    if (!req.prompt.empty()) throw UsageError("the scenes model takes no caption prompt (--prompt is for BLIP)");
    const int max_new = req.max_length > 0 ? req.max_length : static_cast<int>(m_.config().max_len - 3);
    return run(images, std::vector<std::vector<int>>(images.size(), m_.caption_prompt()), max_new, req, 0.0);
  }

  std::vector<VlmResult> answer_batch(const std::vector<const Encoded*>& images, const std::vector<std::string>& questions,
                                      const VlmRequest& req) const override {
    check(req);
    if (!req.prompt.empty()) throw UsageError("--prompt applies to captions");
    if (images.size() != questions.size())
      throw InternalError("answer_batch: " + std::to_string(images.size()) + " images but " +
                          std::to_string(questions.size()) + " questions");
    const auto t0 = Clock::now();
    std::vector<std::vector<int>> prompts;
    for (const auto& q : questions) prompts.push_back(m_.vqa_prompt(q));
    const int max_new = req.max_length > 0 ? req.max_length : ScenesModel::kMaxAnswerTokens;
    return run(images, prompts, max_new, req, ms_since(t0));
  }

 private:
  void check(const VlmRequest& req) const {
    if (req.enc_first) throw UsageError("--first-token is for BLIP VQA");
    if (req.num_beams < 1) throw UsageError("--beam " + std::to_string(req.num_beams) + ": the beam width must be >= 1");
    const int64_t layers = m_.config().n_dec_layers, heads = m_.config().n_heads;
    if (req.map_layer < -1 || req.map_layer >= layers)
      throw UsageError("attention-map layer " + std::to_string(req.map_layer) + " is out of range: the scenes model has decoder layers 0.." +
                       std::to_string(layers - 1) + " (-1: the last)");
    if (req.map_head < -1 || req.map_head >= heads)
      throw UsageError("attention-map head " + std::to_string(req.map_head) + " is out of range: the scenes model has heads 0.." +
                       std::to_string(heads - 1) + " (-1: the mean over heads)");
  }

  // prompts [B][T_b] -> B results. decode_ms of each result is the batch's decoding time / B
  // (so that the results' times add up to the wall time); text_ms likewise.
  std::vector<VlmResult> run(const std::vector<const Encoded*>& images, const std::vector<std::vector<int>>& prompts, int max_new,
                             const VlmRequest& req, double text_ms) const {
    std::vector<VlmResult> out(images.size());
    if (images.empty()) return out;
    std::vector<const ScenesModel::ImageMemory*> mems;
    for (const Encoded* im : images) {
      const auto* e = dynamic_cast<const ScenesEncoded*>(im);
      if (!e) throw InternalError("scenes: the image was encoded by another model");
      mems.push_back(&e->memory);
    }
    const auto t0 = Clock::now();
    const ScenesConfig& c = m_.config();
    check_new_tokens(max_new);  // --max-new-tokens (core/limits.hpp), as asked, before the model's own cap
    // Every row must fit max_len: each prompt bounds its own new tokens.
    std::vector<int> room;
    for (const auto& p : prompts) {
      room.push_back(static_cast<int>(c.max_len - static_cast<int64_t>(p.size())));
      if (room.back() < 1) throw InternalError("scenes model: prompt of " + std::to_string(p.size()) + " tokens leaves no room");
    }

    ScenesModel::Batch batch = m_.start_batch(mems);
    ScenesModel::MapSpec spec{req.map_layer, req.map_head};
    std::vector<Tensor> maps;  // per step call: [R, G*G]
    BatchStep step = [&](const std::vector<int>& parents, const std::vector<std::vector<int>>& ids) {
      Tensor mp;
      Tensor l = m_.step_batch(batch, parents, ids, false, req.attention_maps ? &spec : nullptr,
                               req.attention_maps ? &mp : nullptr);
      if (req.attention_maps) maps.push_back(std::move(mp));
      return l;
    };
    const SpTokenizer& tok = m_.tokenizer();
    std::vector<TextStream> streams(images.size());
    std::vector<std::vector<int>> gen_ids(images.size());
    std::vector<std::vector<TokenOrigin>> origins(images.size());
    if (req.num_beams <= 1) {
      GreedyOptions o;
      o.eos_id = c.eos_id;
      o.max_new_tokens = max_new;
      o.max_new_each = room;
      o.min_new_tokens = req.min_length;
      o.banned = m_.banned_ids();
      std::function<void(size_t, int)> on_id;
      if (req.on_token) on_id = [&](size_t i, int id) { streams[i].push(tok, id, i, req.on_token); };
      std::vector<GreedyResult> g = greedy_decode_batch(step, prompts, o, on_id);
      for (size_t i = 0; i < g.size(); ++i) {
        gen_ids[i] = std::move(g[i].ids);
        origins[i] = std::move(g[i].origin);
        for (float lp : g[i].logprobs) out[i].score += lp;
      }
    } else {
      BeamOptions o;
      o.num_beams = req.num_beams;
      o.eos_id = c.eos_id;
      o.max_new_tokens = max_new;
      o.max_new_each = room;
      o.min_new_tokens = req.min_length;
      o.length_penalty = req.length_penalty;
      o.banned = m_.banned_ids();
      std::vector<BeamResult> b = beam_search_batch(step, prompts, o);
      for (size_t i = 0; i < b.size(); ++i) {
        gen_ids[i] = std::move(b[i].ids);
        origins[i] = std::move(b[i].origin);
        out[i].score = b[i].score;
      }
    }
    const int64_t N = c.grid * c.grid;
    for (size_t i = 0; i < out.size(); ++i) {
      VlmResult& r = out[i];
      r.text = tok.decode(gen_ids[i]);
      r.ids.assign(gen_ids[i].begin(), gen_ids[i].end());
      for (int id : gen_ids[i]) r.tokens.push_back(tok.decode({id}));
      if (req.attention_maps)
        for (const TokenOrigin& o : origins[i]) {
          const float* p = maps.at(static_cast<size_t>(o.call)).f32() + o.row * N;
          r.attention.emplace_back(p, p + N);
        }
      if (req.on_token) streams[i].finish(r.text, i, req.on_token);
    }
    const double per = ms_since(t0) / static_cast<double>(out.size());
    for (VlmResult& r : out) {
      r.decode_ms = per;
      r.text_ms = text_ms / static_cast<double>(out.size());
    }
    return out;
  }
  ScenesModel m_;
};

}  // namespace

std::unique_ptr<Vlm> open_vlm(const std::string& dir, const VlmLoadOptions& opt) {
  std::string arch;
  {
    const ModelDir m = ModelDir::open(dir);
    arch = m.architecture;
  }
  if (arch == "blip-caption" || arch == "blip-vqa") return open_blip_vlm(dir, opt);
  if (arch == "xmodal-scenes") return std::make_unique<ScenesVlm>(dir, opt);
  throw ModelError(dir + "/config.json", "architecture '" + arch +
                                             "' cannot caption or answer; supported: xmodal-scenes, blip-caption "
                                             "(BlipForConditionalGeneration), blip-vqa (BlipForQuestionAnswering)");
}

}  // namespace xmodal
