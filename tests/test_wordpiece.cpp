// WordPiece (BERT) tokenizer against ids from training/blip_reference.py's BertTokenizer
// re-implementation, on the tricky strings in tests/fixtures/blip/wordpiece_cases.json.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "encoders/wordpiece.hpp"

using namespace xmodal;
using json = nlohmann::json;

static const std::string kDir = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/blip/";

static json load_cases() {
  std::ifstream f(kDir + "wordpiece_cases.json");
  REQUIRE(f.good());
  return json::parse(f);
}

static WordPiece load_tok(const json& j) {
  WordPiece w = WordPiece::from_file(kDir + j["vocab"].get<std::string>());
  for (auto& [t, id] : j["added"].items()) w.add_special(t, id.get<int32_t>());
  return w;
}

TEST_CASE("wordpiece: vocab and special ids") {
  json j = load_cases();
  WordPiece w = load_tok(j);
  CHECK(w.pad_id() == 0);
  CHECK(w.unk_id() == 100);
  CHECK(w.cls_id() == 101);
  CHECK(w.sep_id() == 102);
  CHECK(w.mask_id() == 103);
  CHECK(w.id("hello") >= 0);
  CHECK(w.id("no-such-token") == -1);
  const int32_t dec = j["added"]["[DEC]"].get<int32_t>();
  CHECK(w.token(dec) == "[DEC]");
  CHECK(w.is_special(dec));
  CHECK_FALSE(w.is_special(w.id("hello")));
}

TEST_CASE("wordpiece: tricky strings match the reference tokens and ids") {
  json j = load_cases();
  WordPiece w = load_tok(j);
  int n = 0;
  for (const auto& c : j["cases"]) {
    if (!c.contains("text")) continue;
    const std::string text = c["text"];
    INFO("text: " << c["text"].dump());
    CHECK(w.tokenize(text) == c["tokens"].get<std::vector<std::string>>());
    const auto ids = w.encode(text);
    CHECK(ids == c["ids"].get<std::vector<int32_t>>());
    CHECK(w.decode(ids) == c["decoded"].get<std::string>());
    ++n;
  }
  CHECK(n >= 25);
}

TEST_CASE("wordpiece: decode merges ## pieces and tightens punctuation like HF") {
  json j = load_cases();
  WordPiece w = load_tok(j);
  int n = 0;
  for (const auto& c : j["cases"]) {
    if (!c.contains("decode_ids")) continue;
    const auto ids = c["decode_ids"].get<std::vector<int32_t>>();
    CHECK(w.decode(ids) == c["decoded"].get<std::string>());
    CHECK(w.decode(ids, false) == c["decoded_raw"].get<std::string>());
    ++n;
  }
  CHECK(n == 2);
}

TEST_CASE("wordpiece: hand-checked basics") {
  WordPiece w = WordPiece::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "run", "##ning", ","},
                                       "inline", {});
  CHECK(w.tokenize("UnAffable, running") == std::vector<std::string>{"un", "##aff", "##able", ",", "run", "##ning"});
  CHECK(w.encode("unaffable") == std::vector<int32_t>{2, 4, 5, 6, 3});
  CHECK(w.tokenize("unaffablex") == std::vector<std::string>{"[UNK]"});  // no match for the rest
  WordPiece::Options o;
  o.max_chars_per_word = 3;
  WordPiece short_words = WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]", "run", "##ning"}, "inline", o);
  CHECK(short_words.tokenize("run running") == std::vector<std::string>{"run", "[UNK]"});
  CHECK(w.decode({2, 4, 5, 6, 9, 7, 8, 3}) == "unaffable, running");
}

TEST_CASE("wordpiece: errors name the file and the problem") {
  WordPiece w = WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]"}, "inline", {});
  CHECK_THROWS_AS(w.encode("bad \xff byte", true, "question"), InputError);
  try {
    w.encode("ok \xe2\x82", true, "question");  // truncated 3-byte sequence
    FAIL("no throw");
  } catch (const InputError& e) {
    CHECK(e.subject() == "question");
    CHECK(std::string(e.what()).find("byte 3") != std::string::npos);
  }
  CHECK_THROWS_AS(w.encode("\xed\xa0\x80", true), InputError);      // surrogate
  CHECK_THROWS_AS(w.encode("\xc0\xaf", true), InputError);          // overlong
  CHECK_THROWS_AS(WordPiece::from_tokens({"[CLS]", "[SEP]"}, "v.txt", {}), ModelError);  // no [UNK]
  CHECK_THROWS_AS(WordPiece::from_file(kDir + "no-such-vocab.txt"), ModelError);
  CHECK(utf8_encode(utf8_decode("h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\xba")) == "h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\xba");
}
