// SentencePiece tokenizer (tokenizer.model in a model directory), a thin, checked wrapper
// around libsentencepiece.
//
// - load() reads the file itself (regular files only, size-capped) and parses the bytes with
//   LoadFromSerializedProto, so a missing, truncated or garbage model is a ModelError naming the
//   file, never an abort inside the library. The library trusts the model's precompiled
//   normalization trie (a flipped byte there loads fine, then segfaults on encode), so load()
//   first walks that trie with bounds checks (detail::sp_check_charsmap).
// - encode("") is empty; invalid UTF-8 never crashes (the library maps bad bytes to U+FFFD,
//   which then encodes as unknown pieces).
// - decode() range-checks ids itself (the library does not check in every path); control pieces
//   (bos, eos, pad) decode to nothing.
// - Special ids are -1 when the model has no such piece.
//
// Not thread-safe to load; encode/decode on one instance from several threads is fine (the
// library's processor is const for these calls). Copies share the processor.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace xmodal {

class SpTokenizer {
 public:
  SpTokenizer() = default;
  // ModelError(path, ...) if the file is missing, not a regular file, over 64 MB, or not a
  // valid sentencepiece model.
  static SpTokenizer load(const std::string& path);
  // From the serialized model; `name` is used in messages.
  static SpTokenizer from_bytes(const std::string& bytes, const std::string& name);

  bool loaded() const { return sp_ != nullptr; }
  const std::string& path() const { return path_; }

  // text (UTF-8, normalized by the model's rules) -> ids, no bos/eos added.
  std::vector<int> encode(std::string_view text) const;
  std::vector<std::string> encode_pieces(std::string_view text) const;
  // ids -> text. InternalError naming the tokenizer for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const;
  // -1 when the piece is not in the vocabulary (the library would answer unk_id()).
  int piece_to_id(std::string_view piece) const;
  // InternalError for an id outside [0, vocab_size()).
  std::string id_to_piece(int id) const;
  bool is_control(int id) const;  // bos, eos, pad and other control pieces
  bool is_unknown(int id) const;

  int unk_id() const { return unk_; }
  int bos_id() const { return bos_; }
  int eos_id() const { return eos_; }
  int pad_id() const { return pad_; }

 private:
  void check_id(int id) const;
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
  int size_ = 0, unk_ = -1, bos_ = -1, eos_ = -1, pad_ = -1;
};

namespace detail {
// Checks a sentencepiece precompiled normalization map (u32 trie size, double-array trie,
// NUL-terminated strings) the way the library will walk it. Empty when safe, else the problem.
// load() runs it on every map in the model, because the library walks it unchecked.
std::string sp_check_charsmap(std::string_view blob);
}  // namespace detail

}  // namespace xmodal
