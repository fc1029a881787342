#include "encoders/sp_tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <cstring>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal {

namespace {
constexpr uint64_t kMaxModelBytes = 64ull << 20;

// --- Checking the precompiled normalization map ------------------------------------------
// libsentencepiece trusts the `precompiled_charsmap` of a model: a double-array trie that it
// walks without bounds checks, whose values index NUL-terminated strings. A corrupted byte there
// loads fine and then crashes (SIGSEGV) on the first encode. So before handing the bytes to the
// library we find the map(s) with a minimal protobuf reader and walk every reachable trie state
// with bounds checks, exactly as the library's commonPrefixSearch would.
//   ModelProto: 3 = normalizer_spec, 5 = denormalizer_spec; NormalizerSpec: 2 = precompiled_charsmap
//   charsmap  : u32 trie_bytes | trie units (u32 each) | normalized strings (NUL-terminated)
//   unit      : has_leaf = bit 8, value = bits 0..30, label = bits 0..7 | bit 31,
//               offset = (u >> 10) << ((u & (1 << 9)) >> 6)

// Reads a base-128 varint; false at the end of the buffer or after 10 bytes.
bool read_varint(std::string_view& b, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && !b.empty(); shift += 7) {
    auto c = static_cast<unsigned char>(b.front());
    b.remove_prefix(1);
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

// Calls f(field, payload) for each length-delimited field of a message; false if malformed.
template <class F>
bool for_each_bytes_field(std::string_view b, F&& f) {
  while (!b.empty()) {
    uint64_t key, n;
    if (!read_varint(b, key)) return false;
    switch (key & 7) {
      case 0: if (!read_varint(b, n)) return false; break;
      case 1: if (b.size() < 8) return false; b.remove_prefix(8); break;
      case 5: if (b.size() < 4) return false; b.remove_prefix(4); break;
      case 2:
        if (!read_varint(b, n) || n > b.size()) return false;
        f(key >> 3, b.substr(0, n));
        b.remove_prefix(n);
        break;
      default: return false;  // groups (3, 4) are not used by sentencepiece
    }
  }
  return true;
}

}  // namespace

// Empty when the map is safe for the library to use, else what is wrong.
std::string detail::sp_check_charsmap(std::string_view blob) {
  if (blob.empty()) return "";  // no map: the library skips normalization by trie
  uint32_t trie_bytes;
  if (blob.size() <= 4) return "normalization map is " + std::to_string(blob.size()) + " bytes";
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes > blob.size() - 4)
    return "normalization trie size " + std::to_string(trie_bytes) + " exceeds the map (" + std::to_string(blob.size()) + " bytes)";
  const size_t n = trie_bytes / 4;
  std::vector<uint32_t> a(n);
  if (n) std::memcpy(a.data(), blob.data() + 4, n * 4);
  std::string_view strings = blob.substr(4 + trie_bytes);
  // A value v is safe when a NUL follows it inside the strings blob.
  const size_t last_nul = strings.rfind('\0');
  auto offset = [](uint32_t u) { return static_cast<size_t>((u >> 10) << ((u & (1u << 9)) >> 6)); };
  if (n == 0) return "normalization trie is empty";
  std::vector<char> seen(n, 0);
  std::vector<size_t> todo{offset(a[0])};
  while (!todo.empty()) {
    size_t s = todo.back();
    todo.pop_back();
    // The library reads a[s ^ c] for any next input byte c.
    if ((s | 0xff) >= n) return "normalization trie state " + std::to_string(s) + " points outside the trie (" + std::to_string(n) + " units)";
    if (seen[s]) continue;
    seen[s] = 1;
    for (uint32_t c = 0; c < 256; ++c) {
      uint32_t u = a[s ^ c];
      if ((u & ((1u << 31) | 0xffu)) != c) continue;  // no edge labelled c
      size_t next = (s ^ c) ^ offset(u);
      if ((u >> 8) & 1) {
        if (next >= n) return "normalization trie leaf points outside the trie";
        uint32_t v = a[next] & ((1u << 31) - 1);
        if (last_nul == std::string_view::npos || v > last_nul)
          return "normalization trie value " + std::to_string(v) + " is outside the string table (" + std::to_string(strings.size()) + " bytes)";
      }
      todo.push_back(next);
    }
  }
  return "";
}

namespace {

// Empty when every precompiled map in the serialized ModelProto is safe, else what is wrong.
std::string check_model_charsmaps(std::string_view model) {
  std::string why;
  bool ok = for_each_bytes_field(model, [&](uint64_t field, std::string_view spec) {
    if ((field != 3 && field != 5) || !why.empty()) return;
    bool inner = for_each_bytes_field(spec, [&](uint64_t f2, std::string_view map) {
      if (f2 == 2 && why.empty()) why = detail::sp_check_charsmap(map);
    });
    if (!inner && why.empty()) why = "normalizer spec does not parse";
  });
  if (!ok && why.empty()) why = "the protobuf does not parse (truncated, or not a tokenizer.model)";
  return why;
}

}  // namespace

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
  if (std::string why = check_model_charsmaps(bytes); !why.empty())
    throw ModelError(name, "not a valid sentencepiece model (" + std::to_string(bytes.size()) + " bytes): " + why);
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
