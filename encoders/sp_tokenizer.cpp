#include "encoders/sp_tokenizer.hpp"

#include <sentencepiece_processor.h>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal {

namespace {
constexpr uint64_t kMaxModelBytes = 64ull << 20;
}

SpTokenizer SpTokenizer::load(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file(path, kMaxModelBytes);
  } catch (const InputError& e) {
    throw ModelError(path, std::string("tokenizer: ") + e.what());
  }
  return from_bytes(bytes, path);
}

SpTokenizer SpTokenizer::from_bytes(const std::string& bytes, const std::string& name) {
  // An empty buffer parses as an empty (valid) protobuf; say what is wrong instead.
  if (bytes.empty()) throw ModelError(name, "tokenizer model is empty (0 bytes)");
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  auto st = sp->LoadFromSerializedProto(bytes);
  if (!st.ok()) {
    std::string why = st.message();
    if (why.find("ParseFromArray") != std::string::npos)
      why = "the protobuf does not parse (truncated, or not a tokenizer.model)";
    while (!why.empty() && (why.back() == ' ' || why.back() == '\n')) why.pop_back();
    throw ModelError(name, "not a valid sentencepiece model (" + std::to_string(bytes.size()) + " bytes): " + why);
  }
  SpTokenizer t;
  t.sp_ = std::move(sp);
  t.path_ = name;
  t.size_ = t.sp_->GetPieceSize();
  if (t.size_ <= 0) throw ModelError(name, "sentencepiece model has no pieces");
  // The library reports ids from the trainer spec; keep only those that name a real piece.
  auto valid = [&](int id) { return id >= 0 && id < t.size_ ? id : -1; };
  t.unk_ = valid(t.sp_->unk_id());
  t.bos_ = valid(t.sp_->bos_id());
  t.eos_ = valid(t.sp_->eos_id());
  t.pad_ = valid(t.sp_->pad_id());
  return t;
}

static void need_loaded(const std::shared_ptr<sentencepiece::SentencePieceProcessor>& sp) {
  if (!sp) throw InternalError("SpTokenizer used before load()");
}

std::vector<int> SpTokenizer::encode(std::string_view text) const {
  need_loaded(sp_);
  std::vector<int> ids;
  if (text.empty()) return ids;
  auto st = sp_->Encode(absl::string_view(text.data(), text.size()), &ids);
  if (!st.ok()) throw InternalError("sentencepiece encode failed: " + st.ToString(), path_);
  return ids;
}

std::vector<std::string> SpTokenizer::encode_pieces(std::string_view text) const {
  need_loaded(sp_);
  std::vector<std::string> pieces;
  if (text.empty()) return pieces;
  auto st = sp_->Encode(absl::string_view(text.data(), text.size()), &pieces);
  if (!st.ok()) throw InternalError("sentencepiece encode failed: " + st.ToString(), path_);
  return pieces;
}

void SpTokenizer::check_id(int id) const {
  need_loaded(sp_);
  if (id < 0 || id >= size_)
    throw InternalError("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(size_) + ")",
                        path_);
}

std::string SpTokenizer::decode(const std::vector<int>& ids) const {
  need_loaded(sp_);
  for (int id : ids) check_id(id);
  std::string text;
  auto st = sp_->Decode(ids, &text);
  if (!st.ok()) throw InternalError("sentencepiece decode failed: " + st.ToString(), path_);
  return text;
}

int SpTokenizer::vocab_size() const { return size_; }

int SpTokenizer::piece_to_id(std::string_view piece) const {
  need_loaded(sp_);
  int id = sp_->PieceToId(absl::string_view(piece.data(), piece.size()));
  if (id < 0 || id >= size_) return -1;
  // The library maps unknown pieces to unk_id; only the unk piece itself should give it.
  if (id == unk_ && sp_->IdToPiece(id) != piece) return -1;
  return id;
}

std::string SpTokenizer::id_to_piece(int id) const {
  check_id(id);
  return sp_->IdToPiece(id);
}

bool SpTokenizer::is_control(int id) const {
  check_id(id);
  return sp_->IsControl(id);
}

bool SpTokenizer::is_unknown(int id) const {
  check_id(id);
  return sp_->IsUnknown(id);
}

}  // namespace xmodal
