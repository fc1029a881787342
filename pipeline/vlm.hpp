// One interface over every model that captions images and answers questions about them, chosen
// by config.json's architecture, so that `xmodal caption|vqa|eval --model DIR` work the same way
// for the built-in scenes model (xmodal-scenes, pipeline/scenes_model) and for Hugging Face BLIP
// checkpoints (blip-caption, blip-vqa, pipeline/blip).
//
//   auto m = open_vlm(dir);                      // dispatches on the architecture
//   auto enc = m->encode({img1, img2});          // one batch through the image encoder
//   VlmResult r = m->caption(*enc[0], {});       // or m->answer(*enc[0], "what ...?", {})
//
// Options a model does not support (prompts and bf16 on the scenes model, attention maps of BLIP
// VQA answers) are a UsageError naming the option, never silently ignored.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "encoders/image.hpp"

namespace xmodal {

struct VlmLoadOptions {
  DType weight_dtype = DType::f32;  // bf16: bf16 weights (BLIP only)
  bool attention_maps = false;      // keep what attention maps need (BLIP only)
};

struct VlmRequest {
  int max_length = 0;           // 0: the model's default. BLIP: total tokens counting [DEC] and
                                // the prompt (HF max_length, default 20); scenes: new tokens
  int min_length = 0;           // BLIP: [SEP] forbidden below this total length; scenes: eos
                                // forbidden before this many new tokens
  int num_beams = 1;            // > 1: beam search
  float length_penalty = 1.0f;  // beam search
  std::string prompt;           // caption prompt, e.g. "a picture of" (BLIP only); stripped
  bool enc_first = false;       // VQA: [ENC] instead of [CLS] first (the original BLIP; BLIP only)
  bool attention_maps = false;  // per generated token, over the image grid (needs the load option)
  int map_layer = -1;           // attention maps: decoder layer (-1: the model's default, e.g. the last)
  int map_head = -1;            // attention maps: head (-1: the mean over heads)
  // Streaming: called with (index of the sequence in the batch, text piece) as each token is
  // chosen (greedy only; beam search emits nothing until the end, where the scenes model emits
  // the whole text as one piece). The pieces of a sequence concatenate to its text. Empty: no
  // streaming.
  std::function<void(size_t, const std::string&)> on_token;
};

struct VlmResult {
  std::string text;
  std::vector<int32_t> ids;  // the model's ids (BLIP: [DEC], prompt, generated ids, [SEP])
  std::vector<std::string> tokens;  // the vocabulary entry of each id (same length as ids)
  double score = 0;          // sum of log-probabilities (greedy) or the beam score; rank: log-likelihood
  // One map per generated id: map_grid() x map_grid() floats, row-major, summing to 1.
  std::vector<std::vector<float>> attention;
  double text_ms = 0, decode_ms = 0;  // question encoding and decoding time of this call (scenes
                                      // batch calls: the batch's time split evenly over its results)
};

class Vlm {
 public:
  virtual ~Vlm() = default;

  // One image, encoded once (image states, cross-attention memory...), reusable for any number
  // of captions and questions.
  struct Encoded {
    virtual ~Encoded() = default;
  };
  // A tokenized answer list for rank(); build once, use for every question.
  struct AnswerSet {
    virtual ~AnswerSet() = default;
    std::vector<std::string> answers;
  };

  virtual std::string architecture() const = 0;  // "xmodal-scenes", "blip-caption", "blip-vqa"
  virtual bool can_caption() const = 0;
  virtual bool can_answer() const = 0;
  virtual bool can_rank() const { return false; }
  // Side of the attention-map grid (24 for BLIP-base at 384 px); 0 when the model has no maps.
  virtual int64_t map_grid() const { return 0; }

  // Decodes nothing: images [H, W, 3] u8 in, one Encoded per image out, run as one batch where
  // the model can. encode_ms (if not null) gets the wall time of preprocessing + encoding.
  virtual std::vector<std::unique_ptr<Encoded>> encode(const std::vector<Image>& images,
                                                       double* encode_ms = nullptr) const = 0;
  virtual VlmResult caption(const Encoded& image, const VlmRequest& req) const = 0;
  virtual VlmResult answer(const Encoded& image, const std::string& question, const VlmRequest& req) const = 0;
  // Several images (and questions) decoded together: one batched decoder pass per step where the
  // model can. The default implementations loop over caption()/answer(). Results are in input
  // order and equal to the one-at-a-time results (up to float rounding of batched matmuls).
  virtual std::vector<VlmResult> caption_batch(const std::vector<const Encoded*>& images, const VlmRequest& req) const;
  virtual std::vector<VlmResult> answer_batch(const std::vector<const Encoded*>& images,
                                              const std::vector<std::string>& questions, const VlmRequest& req) const;
  // Fixed-list answering: the most likely answer of the set (BLIP's rank_answer, top-k by the
  // first token's probability). UsageError on models that cannot.
  virtual std::shared_ptr<const AnswerSet> answer_set(const std::vector<std::string>& answers) const;
  virtual VlmResult rank(const Encoded& image, const std::string& question, const AnswerSet& answers, int k,
                         const VlmRequest& req) const;
};

// Opens a model directory and dispatches on config.json's architecture. ModelError for an
// architecture that cannot caption or answer, with the list of those that can.
std::unique_ptr<Vlm> open_vlm(const std::string& dir, const VlmLoadOptions& opt = {});

// The BLIP implementation (pipeline/blip_vlm.cpp); open_vlm calls it for blip-caption/blip-vqa.
std::unique_ptr<Vlm> open_blip_vlm(const std::string& dir, const VlmLoadOptions& opt);

}  // namespace xmodal
