// libFuzzer target: the sentencepiece and WordPiece tokenizers on arbitrary bytes
// (encoders/sp_tokenizer.hpp, encoders/wordpiece.hpp), with the committed fixture models:
// encode (ids and pieces) and decode back, for text that may be invalid UTF-8, contain NUL,
// control or combining characters. The first byte picks options (WordPiece lower_case /
// split_cjk / a short max_chars_per_word); ids from the input are decoded too (out-of-range
// ids must not read out of bounds).
#include <cstdint>
#include <cstring>
#include <string>

#include "encoders/sp_tokenizer.hpp"
#include "encoders/wordpiece.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace xmodal;

namespace {
const std::string kFix = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/tokenizer/";
const std::string kWp = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/blip/vocab.txt";  // small BERT-style vocab
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const SpTokenizer sp = SpTokenizer::load(kFix + "tiny.model");
  static WordPiece wp[4] = {
      WordPiece::from_file(kWp, {true, true, 100}), WordPiece::from_file(kWp, {false, true, 100}),
      WordPiece::from_file(kWp, {true, false, 3}), WordPiece::from_file(kWp, {false, false, 1})};
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    std::vector<int> ids = sp.encode(text);
    (void)sp.encode_pieces(text);
    (void)sp.decode(ids);
    std::vector<int> raw;
    for (size_t i = 0; i + 4 <= text.size() && raw.size() < 64; i += 4) {
      int32_t v;
      std::memcpy(&v, text.data() + i, 4);
      raw.push_back(v);
    }
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)sp.decode(raw));
  });
  const WordPiece& w = wp[data[0] % 4];
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    std::vector<int32_t> ids = w.encode(text, true, "fuzz");
    (void)w.tokenize(text, "fuzz");
    (void)w.decode(ids, data[0] & 4);
  });
  std::vector<int32_t> raw;
  for (size_t i = 0; i + 4 <= text.size() && raw.size() < 64; i += 4) {
    int32_t v;
    std::memcpy(&v, text.data() + i, 4);
    raw.push_back(v);
  }
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)w.decode(raw, false));
  return 0;
}
