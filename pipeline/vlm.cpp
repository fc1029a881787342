// open_vlm: dispatch on config.json's architecture, and the scenes model behind the Vlm
// interface (greedy decoding, as ScenesModel::caption / ::answer do; ids come from
// ScenesModel::generate). The BLIP side is pipeline/blip_vlm.cpp.
#include "pipeline/vlm.hpp"

#include <chrono>

#include "core/error.hpp"
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

class ScenesVlm : public Vlm {
 public:
  ScenesVlm(const std::string& dir, const VlmLoadOptions& opt) : m_(ScenesModel::load(dir)) {
    if (opt.weight_dtype != DType::f32) throw UsageError("the scenes model runs in f32 only (no --bf16)");
    if (opt.attention_maps) throw UsageError("the scenes model has no attention maps yet");
  }
  std::string architecture() const override { return "xmodal-scenes"; }
  bool can_caption() const override { return true; }
  bool can_answer() const override { return true; }

  std::vector<std::unique_ptr<Encoded>> encode(const std::vector<Image>& images, double* encode_ms) const override {
    const auto t0 = Clock::now();
    std::vector<std::unique_ptr<Encoded>> out;
    for (const Image& im : images) {
      auto e = std::make_unique<ScenesEncoded>();
      e->memory = m_.prepare_image(im);
      out.push_back(std::move(e));
    }
    if (encode_ms) *encode_ms = ms_since(t0);
    return out;
  }

  VlmResult caption(const Encoded& image, const VlmRequest& req) const override {
    check(req);
    if (!req.prompt.empty()) throw UsageError("the scenes model takes no caption prompt (--prompt is for BLIP)");
    const int max_new = req.max_length > 0 ? req.max_length : static_cast<int>(m_.config().max_len - 3);
    return run(image, m_.caption_prompt(), max_new);
  }

  VlmResult answer(const Encoded& image, const std::string& question, const VlmRequest& req) const override {
    check(req);
    if (!req.prompt.empty()) throw UsageError("--prompt applies to captions");
    const int max_new = req.max_length > 0 ? req.max_length : ScenesModel::kMaxAnswerTokens;
    return run(image, m_.vqa_prompt(question), max_new);
  }

 private:
  static void check(const VlmRequest& req) {
    if (req.num_beams > 1) throw UsageError("the scenes model decodes greedily only (beam search is for BLIP)");
    if (req.enc_first) throw UsageError("--first-token is for BLIP VQA");
    if (req.attention_maps) throw UsageError("the scenes model has no attention maps yet");
    if (req.min_length > 0) throw UsageError("--min-length is for BLIP");
  }
  VlmResult run(const Encoded& image, const std::vector<int>& prompt, int max_new) const {
    const auto* e = dynamic_cast<const ScenesEncoded*>(&image);
    if (!e) throw InternalError("scenes: the image was encoded by another model");
    const auto t0 = Clock::now();
    GreedyResult g = m_.generate(e->memory, prompt, max_new);
    VlmResult r;
    r.text = m_.tokenizer().decode(g.ids);
    r.ids.assign(g.ids.begin(), g.ids.end());
    for (int id : g.ids) r.tokens.push_back(m_.tokenizer().decode({id}));
    for (float lp : g.logprobs) r.score += lp;
    r.decode_ms = ms_since(t0);
    return r;
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
