// The built-in sentiment model ("xmodal-sentiment", assets/models/sentiment): text tokens attend
// to audio frames (MulT-style cross-modal attention) and a classifier reads the fused text.
// Definition and training: training/sentiment_model.py, training/sentiment_train.py.
//
//   audio file -> encoders/audio: 16 kHz mono -> log-mel [T, 80]
//     -> (x - feature_mean) / feature_std, mel bins as channels  [80, T]
//     -> Conv1d k3 s2 p1 + ReLU [C1, T1] -> Conv1d k3 s2 p1 + ReLU [d, T']   T' = ceil(ceil(T/2)/2)
//        (each a oneDNN convolution with a 1 x 3 kernel over [1, C, 1, T])
//     -> frames [T', d] + sinusoidal positions
//     -> n_audio_layers pre-LN self-attention layers -> audio_ln   = memory [1, T', d]
//   text -> sentencepiece ids [L] -> tok_emb + pos_emb -> n_text_layers pre-LN self-attention
//     -> n_fusion_layers of { h += CrossAttn(ln1(h), memory); h += FFN(ln2(h)) }  (queries: words,
//        keys/values: audio frames; K/V projected once per clip)
//     -> final_ln -> mean over the L tokens -> classifier -> logits [3] (negative, neutral, positive)
//
// One audio frame of the memory covers 4 log-mel hops = 40 ms.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attention/mha.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"
#include "encoders/sp_tokenizer.hpp"
#include "pipeline/weights.hpp"

namespace xmodal {

struct SentimentConfig {
  std::vector<std::string> labels;  // "labels", e.g. negative, neutral, positive
  int64_t n_mels = 80;              // "n_mels" (the front end's other numbers are checked)
  float feature_mean = 0.f, feature_std = 1.f;  // "feature_mean", "feature_std"
  int64_t conv1 = 0;                // "conv_channels"[0] ([1] must equal d_model)
  int64_t d_model = 0, n_heads = 0, d_ff = 0;
  int64_t n_audio_layers = 0, n_text_layers = 0, n_fusion_layers = 0;
  int64_t max_text_len = 0, vocab_size = 0;
  float ln_eps = 1e-5f;             // "layer_norm_eps"

  // Reads and checks config.json (ModelError naming the key on anything unexpected).
  static SentimentConfig from(const Config& c);
};

struct SentimentResult {
  int label = 0;                   // index into SentimentConfig::labels
  std::vector<float> probs;        // softmax of logits, one per label
  Tensor logits;                   // [n_labels]
  std::vector<std::string> pieces; // the text's tokens
  Tensor attention;                // [L, T'] last fusion layer, mean over heads (when asked)
};

class SentimentModel {
 public:
  // Loads config.json, model.safetensors (every tensor checked by name and shape; unknown
  // tensors are an error) and tokenizer.model. ModelError on any problem.
  static SentimentModel load(const std::string& dir);

  const SentimentConfig& config() const { return cfg_; }
  const SpTokenizer& tokenizer() const { return tok_; }
  const std::string& dir() const { return dir_; }

  // ---- the stages (public for the parity tests) ----
  // logmel [T, n_mels] -> memory [1, T', d]
  Tensor encode_audio(const Tensor& logmel) const;
  // text -> ids [L]; InputError("--text") when empty or longer than max_text_len tokens
  std::vector<int> tokenize(const std::string& text) const;
  // ids [L] -> text states [1, L, d] (before fusion)
  Tensor encode_text(const std::vector<int>& ids) const;
  // ids [L], memory [1, T', d] -> result (fused states available through `fused` if non-null:
  // [1, L, d] before final_ln)
  SentimentResult classify(const std::vector<int>& ids, const Tensor& memory, bool want_attention,
                           Tensor* fused = nullptr) const;
  // The whole model: text and logmel [T, n_mels].
  SentimentResult predict(const std::string& text, const Tensor& logmel, bool want_attention = false) const;

  // T' for T log-mel frames.
  static int64_t memory_length(int64_t frames) { return ((frames + 1) / 2 + 1) / 2; }

 private:
  struct Layer {
    Tensor ln1_w, ln1_b;            // <scope>.ln1.weight / .bias [d]
    attn::MultiHeadAttention attn;  // <scope>.attn.{q,k,v,o}_proj.{weight,bias} [d, d] / [d]
    Tensor ln2_w, ln2_b;            // <scope>.ln2.weight / .bias [d]
    ops::Linear fc1;                // <scope>.ffn.fc1.weight [d_ff, d], .bias [d_ff] (+GELU erf)
    ops::Linear fc2;                // <scope>.ffn.fc2.weight [d, d_ff], .bias [d]
  };
  static Layer load_layer(const Weights& w, const SentimentConfig& c, bool cross);
  // x [1, L, d] += FFN(ln2(x)) after the attention residual
  void ffn(const Layer& L, Tensor& x) const;

  SentimentConfig cfg_;
  std::string dir_;
  SpTokenizer tok_;
  ops::Conv2d conv1_;           // conv1.weight [C1, n_mels, 3] (as [C1, n_mels, 1, 3]), conv1.bias [C1] (+ReLU)
  ops::Conv2d conv2_;           // conv2.weight [d, C1, 3] (as [d, C1, 1, 3]), conv2.bias [d] (+ReLU)
  std::vector<Layer> audio_;    // audio_layers.{i}.*
  Tensor audio_ln_w_, audio_ln_b_;  // audio_ln.weight / .bias [d]
  Tensor tok_emb_;              // tok_emb.weight [V, d]
  Tensor pos_emb_;              // pos_emb [max_text_len, d]
  std::vector<Layer> text_;     // text_layers.{i}.*
  std::vector<Layer> fusion_;   // fusion_layers.{i}.* (attn = cross-attention to the audio)
  ops::Linear map_q_;           // fusion_layers.{last}.attn.q_proj again, for attention maps
  Tensor final_ln_w_, final_ln_b_;  // final_ln.weight / .bias [d]
  ops::Linear classifier_;      // classifier.weight [n_labels, d], classifier.bias [n_labels]
};

// Where the shipped model lives: $XMODAL_SENTIMENT_MODEL_DIR if set, else assets/models/sentiment
// found next to the executable (../assets, ../../assets, ...). Returns "" when none exists.
std::string default_sentiment_model_dir();
// flag when non-empty, else default_sentiment_model_dir(); ModelError when neither exists.
std::string resolve_sentiment_model_dir(const std::string& flag);

}  // namespace xmodal
