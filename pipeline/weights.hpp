// Model directories and checked, by-name weight access.
//
// A model directory (DESIGN.md) holds:
//   config.json        "architecture" + "format_version" (xmodal models), or Hugging Face's
//                      "architectures": ["BlipForConditionalGeneration"] (checkpoints used as is)
//   model.safetensors  the weights, keyed by PyTorch state-dict names
//   tokenizer.model    (sentencepiece) or vocab.txt (WordPiece), optional
//
// Layers take their tensors by checkpoint name through a Weights scope, and say so beside the
// field (STYLE.md 3-5):
//
//   Linear::Linear(const Weights& w, int64_t in, int64_t out)
//       : weight(w.take("weight", {out, in})),        // <scope>.weight [out, in]
//         bias(w.take_optional("bias", {out})) {}     // <scope>.bias [out], optional
//   ...
//   ModelDir m = ModelDir::open(dir);
//   Weights w = m.weights();
//   Encoder enc(w.scope("text_decoder.bert"), m.config.sub("text_config"));
//   w.ignore("text_decoder.bert.embeddings.position_ids");  // a buffer we recompute
//   w.check_all_used();   // ModelError listing unexpected tensors: "loaded N of M tensors"
//
// Every problem is a ModelError naming the file: missing tensor (with the closest name), shape
// found vs expected, a dtype that cannot become f32, unused tensors, missing or mistyped config
// keys ("config.json: key 'vision_config.hidden_size' is a string, expected an integer").
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/safetensors.hpp"
#include "core/tensor.hpp"

namespace xmodal {

// Typed, checked access to one JSON object of a config file. Nested objects keep their path
// for messages ("vision_config.hidden_size"). All errors: ModelError(file, ...).
class Config {
 public:
  Config() = default;
  // j must be an object (ModelError otherwise). path is the dotted location of j in the file.
  Config(nlohmann::json j, std::string file, std::string path = "");

  bool has(const std::string& key) const;  // present and not null
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const;  // also checks lo <= v <= hi
  int64_t int_or(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;  // integers are accepted
  double float_or(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key) const;
  bool bool_or(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key) const;  // array of integers
  std::vector<double> get_floats(const std::string& key) const;  // array of numbers
  Config sub(const std::string& key) const;  // nested object, e.g. "vision_config"
  std::optional<Config> sub_optional(const std::string& key) const;

  const nlohmann::json& json() const { return j_; }
  const std::string& file() const { return file_; }
  std::string where(const std::string& key) const;  // "vision_config.hidden_size"

 private:
  const nlohmann::json& need(const std::string& key) const;  // ModelError when missing
  nlohmann::json j_ = nlohmann::json::object();
  std::string file_, path_;
};

// The free-function spelling, for a one-off read of a JSON object from `file`.
int64_t cfg_int(const nlohmann::json& j, const std::string& key, const std::string& file);
double cfg_float(const nlohmann::json& j, const std::string& key, const std::string& file);
std::string cfg_string(const nlohmann::json& j, const std::string& key, const std::string& file);
bool cfg_bool(const nlohmann::json& j, const std::string& key, const std::string& file);

// Named tensors of one checkpoint, seen through a name prefix. Copies share the file and the
// record of which tensors were taken, so scopes handed to layers all count towards
// check_all_used(). Methods are const: taking a tensor only updates that shared record.
class Weights {
 public:
  Weights() = default;
  // owner names what is loading, for messages: "xmodal-scenes", "blip-caption".
  explicit Weights(SafetensorsFile file, std::string owner = "");

  // A view whose names are prefixed by prefix() + name + "." (a trailing '.' is not doubled):
  // w.scope("text_decoder").scope("bert") takes "x" as "text_decoder.bert.x".
  Weights scope(const std::string& name) const;
  const std::string& prefix() const { return prefix_; }
  std::string full_name(const std::string& name) const { return prefix_ + name; }

  bool has(const std::string& name) const;
  Shape shape(const std::string& name) const;  // stored shape; ModelError when absent

  // The tensor as f32 (a zero-copy view for F32; converted from BF16/F16/F64), shape-checked
  // against expected (-1 matches any size). Marks it used. ModelError when missing, mis-shaped
  // or of a non-float dtype.
  Tensor take(const std::string& name, const Shape& expected) const;
  // Like take, but absence is fine (nullopt); a present tensor is still shape-checked.
  std::optional<Tensor> take_optional(const std::string& name, const Shape& expected) const;
  // The stored dtype as a view (F32, BF16, I32, I64, U8/BOOL), shape-checked. Marks it used.
  Tensor take_raw(const std::string& name, const Shape& expected) const;

  // Marks a present tensor as deliberately unused (a buffer we recompute, a head we do not
  // run). Returns whether it was present.
  bool ignore(const std::string& name) const;
  // Same for every tensor whose name starts with full_name(prefix). Returns how many.
  size_t ignore_prefix(const std::string& prefix) const;

  size_t used_count() const;
  size_t total_count() const;
  std::vector<std::string> unused() const;  // full names, sorted
  std::string summary() const;              // "loaded 12 of 14 tensors"
  // ModelError listing the tensors nobody took (up to 10 names, then a count), with the
  // summary, when any are left.
  void check_all_used() const;

  const SafetensorsFile& file() const;
  bool defined() const { return state_ != nullptr; }

 private:
  struct State;
  const StEntry& checked(const std::string& full, const Shape& expected) const;
  [[noreturn]] void missing(const std::string& full, const Shape& expected) const;
  std::shared_ptr<State> state_;
  std::string prefix_;
};

enum class TokenizerKind { none, sentencepiece, wordpiece };

// The highest xmodal model format_version this build reads.
constexpr int64_t kModelFormatVersion = 1;

struct ModelDir {
  std::string dir;
  std::string config_path;    // <dir>/config.json
  Config config;              // the whole config.json
  std::string architecture;   // "xmodal-scenes", "blip-caption", "blip-vqa", or an HF class name
  int64_t format_version = 0; // xmodal format version; 0 for a Hugging Face checkpoint
  std::string format;         // "xmodal 1" or "transformers 4.26.0.dev0" (for display)
  std::string weights_path;   // <dir>/model.safetensors
  SafetensorsFile file;
  TokenizerKind tokenizer = TokenizerKind::none;
  std::string tokenizer_path;  // <dir>/tokenizer.model or <dir>/vocab.txt, empty if none

  // Reads config.json and opens model.safetensors. ModelError naming the file for a missing
  // directory, missing/malformed config.json (missing 'architecture', wrong types, a newer
  // format_version), or missing/corrupt weights.
  static ModelDir open(const std::string& dir);

  // A fresh root scope over the weights (its own record of used tensors).
  Weights weights() const { return Weights(file, architecture); }
};

}  // namespace xmodal
