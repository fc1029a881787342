// BLIP (Salesforce, as implemented by Hugging Face transformers) from published checkpoints:
//   blip-caption  BlipForConditionalGeneration  (Salesforce/blip-image-captioning-base|large)
//   blip-vqa      BlipForQuestionAnswering      (Salesforce/blip-vqa-base, -capfilt-large)
// A model directory is the downloaded Hugging Face repository, unchanged: config.json
// ("architectures": ["BlipFor..."], vision_config, text_config), model.safetensors (HF state-dict
// names), vocab.txt, and optionally preprocessor_config.json. docs/blip.md says how to get one.
//
// The graph (every detail checked against training/blip_reference.py, our PyTorch
// re-implementation of the HF source):
//   image --RGB, stretch resize size x size (PIL bicubic), x/255, CLIP mean/std--> [3, S, S]
//   vision: patch conv (P x P, stride P) -> [CLS; patches] + position embeddings -> pre-LN ViT
//           layers (LN eps vision_config.layer_norm_eps, fused qkv rows [Q; K; V], exact GELU)
//           -> post_layernorm over all 1 + (S/P)^2 tokens  = image states [N, Dv]
//   text:   post-LN BERT (LN eps text_config.layer_norm_eps): word + position embeddings -> LN;
//           per layer self-attention (causal for the decoder) -> cross-attention -> FFN (GELU)
//   head:   dense -> GELU -> LN -> decoder weight (cls.predictions.decoder.weight, or the word
//           embeddings when that key is absent) + cls.predictions.bias
//   caption: the decoder cross-attends to the image states; starts from [DEC] (bos_token_id),
//            optionally followed by a prompt, stops at [SEP] (sep_token_id)
//   vqa:    the question [CLS] q [SEP] (or [ENC] q [SEP], the original BLIP) is encoded
//           bidirectionally by text_encoder with cross-attention to the image; the answer decoder
//           cross-attends to the question states (all of them: an all-ones mask)
// Decoding projects each layer's cross-attention K/V once per input and caches the
// self-attention K/V (HF recomputes the cross K/V at every step; the results are the same).
// The causal mask: HF adds (1 - m) * -10000 to the scores; exp(-10000 + s) underflows to exactly
// 0 in f32 for any realistic score, so a hard mask gives the same probabilities.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "encoders/image.hpp"
#include "encoders/wordpiece.hpp"

namespace xmodal {
struct ModelDir;
}

namespace xmodal::blip {

struct VisionConfig {
  int64_t hidden = 768, intermediate = 3072, layers = 12, heads = 12;
  int64_t image_size = 384, patch_size = 16;
  float eps = 1e-5f;
  int64_t grid() const { return image_size / patch_size; }  // patches per side (24 for 384/16)
  int64_t tokens() const { return 1 + grid() * grid(); }      // CLS + patches
};

struct TextConfig {
  int64_t vocab = 30524, hidden = 768, intermediate = 3072, layers = 12, heads = 12;
  int64_t max_positions = 512;
  float eps = 1e-12f;
  int32_t bos = 30522;  // [DEC]
  int32_t sep = 102;    // [SEP], where generation stops
  int32_t pad = 0;
};

struct Preprocessing {
  int64_t height = 384, width = 384;
  bool do_resize = true, do_rescale = true, do_normalize = true;
  Resample resample = Resample::bicubic;
  float rescale = 1.0f / 255.0f;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

struct Config {
  std::string architecture;  // "blip-caption" | "blip-vqa"
  VisionConfig vision;
  TextConfig text;
  Preprocessing pre;
  std::string source;  // where the preprocessing came from: "preprocessor_config.json" or "config.json"
};

// Reads config.json (and preprocessor_config.json when present) of an opened model directory.
// Missing keys take Hugging Face's defaults; wrong types, an unsupported hidden_act, or sizes that
// do not fit (hidden % heads, image_size % patch_size) are ModelError naming the key.
Config read_config(const ModelDir& m);

enum class Attention { fused, onednn };  // attn::SdpaBackend used by every attention layer

struct LoadOptions {
  DType weight_dtype = DType::f32;  // bf16: bf16 weights in every Linear (f32 accumulation)
  bool attention_maps = false;      // keep what attention maps need (the cross-attention queries)
  // fused: the online-softmax kernel, no score matrices kept (the vision encoder's 577 x 577
  // scores would cost 16 MB per layer); onednn: the matmul-softmax-matmul composition.
  Attention attention = Attention::fused;
};

struct GenerateOptions {
  int max_length = 20;   // total tokens, counting [DEC] and any prompt (Hugging Face semantics)
  int min_length = 0;    // [SEP] is forbidden while the sequence is shorter than this
  int num_beams = 1;     // 1 = greedy
  float length_penalty = 1.0f;  // beam score = sum log p / length ** length_penalty
  bool attention_maps = false;  // needs LoadOptions::attention_maps
};

struct Generation {
  std::vector<int32_t> ids;  // the whole sequence: [DEC], prompt, generated ids, [SEP] if reached
  int prompt_length = 1;     // ids before the first generated one
  std::string text;          // decoded (special tokens skipped), prompt stripped
  double score = 0;          // greedy: sum of log-probabilities; beam: the length-normalised score
  // One map per generated id (in order): cross-attention to the image patches averaged over heads
  // and layers, CLS dropped and renormalised, grid x grid row-major. VQA answers attend to the
  // question, so their maps are empty.
  std::vector<std::vector<float>> attention;
};

struct RankResult {
  int best = -1;                // index into the answer list
  std::vector<int> candidates;  // the top-k answers by first-token probability, best first
  std::vector<double> logliks;  // their total log-likelihoods ([SEP] included)
};

struct Timings {  // milliseconds of the last call that measured them
  double preprocess = 0, vision = 0, text = 0, decode = 0;
  int generated = 0;  // ids generated by the last decode
};

class Model {
 public:
  Model();
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Opens DIR (config.json, model.safetensors, vocab.txt), checks every tensor's name and shape,
  // and reports unexpected tensors. ModelError naming the file and the tensor otherwise.
  static Model load(const std::string& dir, const LoadOptions& opt = {});

  const Config& config() const;
  bool is_vqa() const;
  const WordPiece& tokenizer() const;
  int64_t grid() const { return config().vision.grid(); }

  // image [H, W, 3] u8 -> pixels [3, S, S] (resize, rescale, normalise as configured)
  Tensor preprocess(const Image& image) const;
  // pixels [B, 3, S, S] -> image states [B, 1 + grid^2, Dv]
  Tensor encode_image(const Tensor& pixels) const;

  // Caption one image. image_states [1, N, Dv]. prompt "" = none; otherwise the caption continues
  // "a picture of" and the prompt is stripped from the text.
  Generation caption(const Tensor& image_states, const std::string& prompt, const GenerateOptions& opt) const;

  // Question ids: [CLS] q [SEP], or [ENC] q [SEP] with enc_first (the original BLIP).
  std::vector<int32_t> question_ids(const std::string& question, bool enc_first,
                                    const std::string& source = "question") const;
  // ids [Lq], image_states [1, N, Dv] -> question states [1, Lq, D]
  Tensor encode_question(const std::vector<int32_t>& ids, const Tensor& image_states) const;
  // question_states [1, Lq, D] -> generated answer
  Generation answer(const Tensor& question_states, const GenerateOptions& opt) const;
  // BLIP's rank_answer: top-k answers by the probability of their first token, then the best
  // total log-likelihood. Answer ids come from answer_ids().
  RankResult rank(const Tensor& question_states, const std::vector<std::vector<int32_t>>& answers, int k) const;
  // [DEC] a [SEP] (the tokenizer's [CLS] a [SEP] with [CLS] replaced)
  std::vector<int32_t> answer_ids(const std::string& answer) const;

  // For tests: full-sequence decoder logits without cache. ids [L], memory [1, M, Dm] -> [L, V]
  Tensor decoder_logits(const std::vector<int32_t>& ids, const Tensor& memory) const;

  // Milliseconds spent by the last calls of preprocess / encode_image / encode_question /
  // caption-or-answer on this thread's model (not thread-safe; one Model per thread).
  const Timings& timings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

// Text without the prompt: when text starts with the decoded prompt (word boundary), the rest,
// trimmed; otherwise the text unchanged.
std::string strip_prompt(const std::string& text, const std::string& prompt_text);

}  // namespace xmodal::blip
