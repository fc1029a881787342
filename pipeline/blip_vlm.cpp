// BLIP behind the Vlm interface (pipeline/vlm.hpp): batched image encoding, captions (greedy or
// beam, optional prompt), answers ([CLS] or [ENC] first), fixed-list ranking, attention maps.
#include <chrono>
#include <cstring>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "pipeline/blip.hpp"
#include "pipeline/vlm.hpp"

namespace xmodal {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct BlipEncoded : Vlm::Encoded {
  Tensor states;  // [1, N, Dv]
};

struct BlipAnswers : Vlm::AnswerSet {
  std::vector<std::vector<int32_t>> ids;  // [DEC] a [SEP]
};

class BlipVlm : public Vlm {
 public:
  BlipVlm(const std::string& dir, const VlmLoadOptions& opt) {
    blip::LoadOptions lo;
    lo.weight_dtype = opt.weight_dtype;
    lo.attention_maps = opt.attention_maps;
    m_ = blip::Model::load(dir, lo);
    maps_ = opt.attention_maps;
  }

  std::string architecture() const override { return m_.config().architecture; }
  bool can_caption() const override { return !m_.is_vqa(); }
  bool can_answer() const override { return m_.is_vqa(); }
  bool can_rank() const override { return m_.is_vqa(); }
  int64_t map_grid() const override { return m_.is_vqa() ? 0 : m_.grid(); }

  std::vector<std::unique_ptr<Encoded>> encode(const std::vector<Image>& images, double* encode_ms) const override {
    const auto t0 = Clock::now();
    std::vector<std::unique_ptr<Encoded>> out;
    if (images.empty()) return out;
    const int64_t S = m_.config().vision.image_size, B = static_cast<int64_t>(images.size());
    {  // --max-batch-mb (core/limits.hpp): decoded images + pixel tensor + vision activations
      // (per image N patches x hidden floats: the states, q/k/v, attention output and the
      // intermediate/hidden times wider MLP activation, live at once within one layer).
      const auto& v = m_.config().vision;
      const int64_t N = v.grid() * v.grid() + 1;
      int64_t bytes = 0;
      for (const Image& im : images) bytes += int64_t{im.width} * im.height * 3;
      bytes += B * 4 * (3 * S * S + N * (5 * v.hidden + v.intermediate));
      check_batch_memory(B, bytes, m_.config().architecture);
    }
    Tensor pixels = Tensor::empty({B, 3, S, S});
    for (int64_t b = 0; b < B; ++b) {
      Tensor p = m_.preprocess(images[static_cast<size_t>(b)]);
      std::memcpy(pixels.f32() + b * 3 * S * S, p.f32(), p.nbytes());
    }
    Tensor states = m_.encode_image(pixels);  // [B, N, Dv]
    for (int64_t b = 0; b < B; ++b) {
      auto e = std::make_unique<BlipEncoded>();
      e->states = states.slice(0, b, b + 1).clone();
      out.push_back(std::move(e));
    }
    if (encode_ms) *encode_ms = ms_since(t0);
    return out;
  }

  VlmResult caption(const Encoded& image, const VlmRequest& req) const override {
    if (!can_caption()) throw UsageError("this is a blip-vqa model: it answers questions (xmodal vqa), it does not caption");
    if (req.enc_first) throw UsageError("--first-token applies to questions, not captions");
    if (req.attention_maps && !maps_) throw InternalError("attention maps were not enabled at load time");
    blip::GenerateOptions o = options(req);
    o.attention_maps = req.attention_maps;
    const auto t0 = Clock::now();
    blip::Generation g = m_.caption(states(image), req.prompt, o);
    VlmResult r = result(std::move(g));
    r.decode_ms = ms_since(t0);
    return r;
  }

  VlmResult answer(const Encoded& image, const std::string& question, const VlmRequest& req) const override {
    if (!can_answer()) throw UsageError("this is a blip-caption model: it captions (xmodal caption), it does not answer questions");
    if (!req.prompt.empty()) throw UsageError("--prompt applies to captions, not answers");
    if (req.attention_maps) throw UsageError("BLIP's answer decoder attends to the question, not the image: no attention maps");
    auto t0 = Clock::now();
    Tensor q = m_.encode_question(m_.question_ids(question, req.enc_first), states(image));
    const double text_ms = ms_since(t0);
    t0 = Clock::now();
    VlmResult r = result(m_.answer(q, options(req)));
    r.text_ms = text_ms;
    r.decode_ms = ms_since(t0);
    return r;
  }

  std::shared_ptr<const AnswerSet> answer_set(const std::vector<std::string>& answers) const override {
    if (!can_rank()) return Vlm::answer_set(answers);
    if (answers.empty()) throw InputError("answer list", "is empty");
    auto s = std::make_shared<BlipAnswers>();
    s->answers = answers;
    for (const auto& a : answers) s->ids.push_back(m_.answer_ids(a));
    return s;
  }

  VlmResult rank(const Encoded& image, const std::string& question, const AnswerSet& answers, int k,
                 const VlmRequest& req) const override {
    if (!can_rank()) return Vlm::rank(image, question, answers, k, req);
    const auto* set = dynamic_cast<const BlipAnswers*>(&answers);
    if (!set) throw InternalError("rank: the answer set was not made by this model");
    auto t0 = Clock::now();
    Tensor q = m_.encode_question(m_.question_ids(question, req.enc_first), states(image));
    const double text_ms = ms_since(t0);
    t0 = Clock::now();
    blip::RankResult rr = m_.rank(q, set->ids, k);
    VlmResult r;
    r.text = set->answers[static_cast<size_t>(rr.best)];
    r.ids = set->ids[static_cast<size_t>(rr.best)];
    for (int32_t id : r.ids) r.tokens.push_back(m_.tokenizer().token(id));
    for (size_t i = 0; i < rr.candidates.size(); ++i)
      if (rr.candidates[i] == rr.best) r.score = rr.logliks[i];
    r.text_ms = text_ms;
    r.decode_ms = ms_since(t0);
    return r;
  }

 private:
  static const Tensor& states(const Encoded& e) {
    const auto* b = dynamic_cast<const BlipEncoded*>(&e);
    if (!b) throw InternalError("blip: the image was encoded by another model");
    return b->states;
  }
  blip::GenerateOptions options(const VlmRequest& req) const {
    blip::GenerateOptions o;
    if (req.max_length > 0) o.max_length = req.max_length;
    o.min_length = req.min_length;
    o.num_beams = req.num_beams;
    o.length_penalty = req.length_penalty;
    return o;
  }
  VlmResult result(blip::Generation g) const {
    VlmResult r;
    r.text = std::move(g.text);
    r.ids = std::move(g.ids);
    for (int32_t id : r.ids) r.tokens.push_back(m_.tokenizer().token(id));
    r.score = g.score;
    r.attention = std::move(g.attention);
    return r;
  }

  blip::Model m_;
  bool maps_ = false;
};

}  // namespace

std::unique_ptr<Vlm> open_blip_vlm(const std::string& dir, const VlmLoadOptions& opt) {
  return std::make_unique<BlipVlm>(dir, opt);
}

}  // namespace xmodal
