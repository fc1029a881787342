// The built-in scenes model ("xmodal-scenes", assets/models/scenes): one small network that
// captions scene images and answers questions about them, as a prefix language model.
// Definition and training: training/scenes_model.py, training/train_scenes.py.
//
//   image -> RGB u8 -> PIL-bicubic resize to S x S -> (v/255 - mean)/std, + x, y coordinate
//   channels in [-1, 1]  [B, 5, S, S]
//     -> Conv2d 3x3 (+ReLU) x n (total stride 8)  [B, C, G, G] -> [B, G*G, C]
//     -> Linear C->d (+ LayerNorm with grid_layer_norm) + img_pos [G*G, d] -> pre-LN encoder
//        layers -> enc_ln  = memory [B, G*G, d]
//   tokens -> tok_emb + pos_emb -> pre-LN decoder layers (causal self-attention with KV cache,
//     cross-attention to memory whose K/V are projected once per image, GELU FFN)
//     -> dec_ln -> logits = x tok_emb^T
// Prompts: VQA "<bos> question <sep>", caption "<bos> <cap> <sep>"; generation stops at <eos>.
//
// Batching: prepare_images runs B images through the convs and the encoder as one batch.
// step_batch decodes R rows (sequences, or beams) in lockstep, each over its own image and at
// its own length, with the rows' tokens stacked as the M dimension of every projection and FFN
// matmul; the attention (tens of cached keys, or the G*G grid) runs per row in plain loops,
// which also yields the cross-attention weights for attention maps. The decoding loops (greedy,
// beam search) are pipeline/decoding; ScenesVlm (pipeline/vlm.cpp) puts them together.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "attention/mha.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"
#include "encoders/image.hpp"
#include "encoders/sp_tokenizer.hpp"
#include "pipeline/decoding.hpp"
#include "pipeline/weights.hpp"

namespace xmodal {

struct ScenesConfig {
  int64_t image_size = 0;                   // "image_size" (== preprocessing.size)
  std::vector<int64_t> conv_channels;       // "conv_channels"
  std::vector<int64_t> conv_strides;        // "conv_strides"
  int64_t grid = 0;                         // "grid_size": G, memory length G*G
  int64_t d_model = 0, n_heads = 0, d_ff = 0;
  int64_t n_enc_layers = 0, n_dec_layers = 0;
  int64_t max_len = 0, vocab_size = 0;
  float ln_eps = 1e-5f;                     // "layer_norm_eps"
  bool grid_ln = false;                     // "grid_layer_norm": LayerNorm(img_proj(conv)) before + img_pos
  Resample resample = Resample::bicubic;    // "preprocessing.resample"
  std::array<float, 3> mean{}, std{};       // "preprocessing.mean" / ".std"
  float rescale = 1.f / 255.f;              // "preprocessing.rescale"
  // "special_ids"
  int pad_id = 0, unk_id = 1, bos_id = 2, eos_id = 3, sep_id = 4, cap_id = 5;

  // Reads and checks config.json (ModelError naming the key on anything unexpected).
  static ScenesConfig from(const Config& c);
};

class ScenesModel {
 public:
  // Loads a model directory: config.json, model.safetensors (every tensor checked by name and
  // shape; unknown tensors are an error), tokenizer.model. ModelError on any problem.
  static ScenesModel load(const std::string& dir);

  const ScenesConfig& config() const { return cfg_; }
  const SpTokenizer& tokenizer() const { return tok_; }
  const std::string& dir() const { return dir_; }

  // ---- the stages (public for the parity tests) ----
  // image [H, W, 3] u8 -> [S, S, 3] u8, PIL-compatible resize (no-op when already S x S)
  Image resize(const Image& image) const;
  // resized [S, S, 3] u8 -> x [1, 5, S, S] f32 (normalised RGB + coordinate channels)
  Tensor to_input(const Image& resized) const;
  // x [B, 5, S, S] -> memory [B, G*G, d] (one batch through the convs and the encoder)
  Tensor encode(const Tensor& x) const;

  // Per image: the cross-attention K/V of every decoder layer, projected once.
  struct ImageMemory {
    std::vector<attn::CrossMemory> cross;  // one per decoder layer; k, v [1, H, G*G, hd] (no oneDNN prepared copy)
  };
  ImageMemory project(const Tensor& memory) const;  // memory [1, G*G, d]
  std::vector<ImageMemory> project_batch(const Tensor& memory) const;  // memory [B, G*G, d] -> B memories
  ImageMemory prepare_image(const Image& image) const { return project(encode(to_input(resize(image)))); }
  // Images of any sizes -> one memory each; resize and normalise per image, then the convs, the
  // encoder and the K/V projections run once over the batch [B, ...].
  std::vector<ImageMemory> prepare_images(const std::vector<Image>& images) const;

  // ---- batched decoding ----
  // R sequences ("rows") decoded in lockstep, each over its own image and at its own position
  // (prompts of different lengths need no padding). All rows run through one matmul per
  // projection per layer per step; the attention itself (a few dozen keys, or the G*G grid) is
  // computed per row in plain loops, which also gives the cross-attention weights for maps.
  struct Batch {
    std::vector<const ImageMemory*> images;  // per row
    std::vector<int64_t> len;                // per row: positions already in the cache
    std::vector<Tensor> k, v;                // per decoder layer: [rows_cap, H, max_len, hd]
    std::vector<Tensor> k2, v2;              // spare buffers for reordering rows
    int64_t rows() const { return static_cast<int64_t>(images.size()); }
  };
  Batch start_batch(const std::vector<const ImageMemory*>& images) const;
  // Which cross-attention weights step_batch reports: decoder layer (-1: the last) and head
  // (-1: the mean over heads).
  struct MapSpec {
    int layer = -1, head = -1;
  };
  // Row r of the batch first becomes old row parents[r] (empty parents: rows unchanged; rows
  // may be dropped, duplicated, reordered), then ids[r] (>= 1 token) are appended to it.
  // -> logits [R, V] of each row's last appended position, or with all_positions [sum T_r, V]
  // (every appended position, rows in order). maps (if not null) gets [R, G*G]: each row's last
  // position's cross-attention over the grid, per `spec` (rows sum to 1).
  // InternalError past max_len positions or for a bad parent index.
  Tensor step_batch(Batch& batch, const std::vector<int>& parents, const std::vector<std::vector<int>>& ids,
                    bool all_positions = false, const MapSpec* spec = nullptr, Tensor* maps = nullptr) const;

  // Decoding state of one sequence (a batch of one row).
  struct Sequence {
    const ImageMemory* image = nullptr;
    Batch batch;
    int64_t pos = 0;
  };
  Sequence start(const ImageMemory& image) const;
  // Appends ids [T] to the sequence (KV cache) -> logits [T, V] of those positions.
  // InternalError past max_len positions (callers bound their lengths).
  Tensor step(Sequence& seq, const std::vector<int>& ids) const;

  // Prompts.
  std::vector<int> vqa_prompt(const std::string& question) const;  // <bos> question <sep>
  std::vector<int> caption_prompt() const;                          // <bos> <cap> <sep>
  // Tokens the model never generates (pad, bos, sep, cap).
  std::vector<int> banned_ids() const { return {cfg_.pad_id, cfg_.bos_id, cfg_.sep_id, cfg_.cap_id}; }
  // Greedy generation after a prompt, bounded by max_len; returns the generated ids.
  GreedyResult generate(const ImageMemory& image, const std::vector<int>& prompt, int max_new_tokens) const;
  std::string caption(const ImageMemory& image) const;
  std::string answer(const ImageMemory& image, const std::string& question) const;
  // Longest question, in tokens, that still leaves room for an answer.
  int64_t max_question_tokens() const { return cfg_.max_len - 3 - kMaxAnswerTokens; }
  static constexpr int kMaxAnswerTokens = 8;

 private:
  struct EncoderLayer {
    Tensor ln1_w, ln1_b;         // enc_layers.{i}.ln1.weight / .bias [d]
    attn::MultiHeadAttention attn;  // enc_layers.{i}.attn.{q,k,v,o}_proj.{weight,bias}
    Tensor ln2_w, ln2_b;         // enc_layers.{i}.ln2.weight / .bias [d]
    ops::Linear fc1;             // enc_layers.{i}.ffn.fc1.weight [d_ff, d], .bias [d_ff] (+GELU erf)
    ops::Linear fc2;             // enc_layers.{i}.ffn.fc2.weight [d, d_ff], .bias [d]
  };
  struct DecoderLayer {
    Tensor ln1_w, ln1_b;  // dec_layers.{i}.ln1.weight / .bias [d]
    ops::Linear self_qkv; // dec_layers.{i}.self_attn.{q,k,v}_proj.weight [d, d] stacked -> [3d, d], biases [3d]
    ops::Linear self_o;   // dec_layers.{i}.self_attn.o_proj.weight [d, d], .bias [d]
    Tensor ln2_w, ln2_b;  // dec_layers.{i}.ln2.weight / .bias [d]
    ops::Linear cross_q;  // dec_layers.{i}.cross_attn.q_proj.weight [d, d], .bias [d]
    ops::Linear cross_kv; // dec_layers.{i}.cross_attn.{k,v}_proj.weight [d, d] stacked -> [2d, d], biases [2d]
    ops::Linear cross_o;  // dec_layers.{i}.cross_attn.o_proj.weight [d, d], .bias [d]
    Tensor ln3_w, ln3_b;  // dec_layers.{i}.ln3.weight / .bias [d]
    ops::Linear fc1;      // dec_layers.{i}.ffn.fc1.weight [d_ff, d], .bias [d_ff] (+GELU erf)
    ops::Linear fc2;      // dec_layers.{i}.ffn.fc2.weight [d, d_ff], .bias [d]
  };
  // Makes room for `rows` rows in the spare cache buffers (keeps them when big enough).
  void reserve_rows(std::vector<Tensor>& bufs_k, std::vector<Tensor>& bufs_v, int64_t rows) const;

  ScenesConfig cfg_;
  std::string dir_;
  SpTokenizer tok_;
  std::vector<ops::Conv2d> convs_;  // convs.{i}.weight [C_i, C_{i-1}, 3, 3], convs.{i}.bias [C_i] (+ReLU)
  ops::Linear img_proj_;            // img_proj.weight [d, C_last], img_proj.bias [d]
  Tensor img_pos_;                  // img_pos [G*G, d]
  Tensor img_ln_w_, img_ln_b_;      // img_ln.weight/bias [d] (only with grid_layer_norm)
  std::vector<EncoderLayer> enc_;   // enc_layers.{i}.*
  Tensor enc_ln_w_, enc_ln_b_;      // enc_ln.weight / enc_ln.bias [d]
  Tensor tok_emb_;                  // tok_emb.weight [V, d] (also the tied LM head)
  ops::Linear lm_head_;             // tok_emb.weight used as [V, d] weight, no bias
  Tensor pos_emb_;                  // pos_emb [max_len, d]
  std::vector<DecoderLayer> dec_;   // dec_layers.{i}.*
  Tensor dec_ln_w_, dec_ln_b_;      // dec_ln.weight / dec_ln.bias [d]
};

// Where the shipped model lives: $XMODAL_MODEL_DIR if set, else assets/models/scenes found
// next to the executable (../assets, ../../assets, ... or share/xmodal/assets), or else in
// the source tree it was compiled from. Returns "" when none exists.
std::string default_scenes_model_dir(const std::string& argv0_hint = "");
// flag when non-empty, else default_scenes_model_dir(); ModelError when neither exists.
std::string resolve_scenes_model_dir(const std::string& flag);

}  // namespace xmodal
