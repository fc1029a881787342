// encoders/sp_tokenizer against the fixture made by training/make_tokenizer_fixture.sh:
// ids compared with spm_encode's output, round trips, special ids, invalid UTF-8, corrupt models.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/sp_tokenizer.hpp"

using namespace xmodal;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/tokenizer";
const std::string kModel = kDir + "/tiny.model";

struct TmpDir {
  std::string path = (fs::temp_directory_path() / "xmodal_test_sp_XXXXXX").string();
  TmpDir() {
    if (!::mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed");
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const std::string& tmpdir() {
  static TmpDir d;
  return d.path;
}

const SpTokenizer& tok() {
  static SpTokenizer t = SpTokenizer::load(kModel);
  return t;
}

std::string load_error(const std::string& path) {
  try {
    SpTokenizer::load(path);
  } catch (const ModelError& e) {
    CHECK(e.subject() == path);
    return e.what();
  }
  FAIL("expected a ModelError for " << path);
  return "";
}

}  // namespace

TEST_CASE("sp_tokenizer: vocabulary and special ids") {
  const auto& t = tok();
  CHECK(t.vocab_size() == 80);
  CHECK(t.pad_id() == 0);
  CHECK(t.unk_id() == 1);
  CHECK(t.bos_id() == 2);
  CHECK(t.eos_id() == 3);
  CHECK(t.id_to_piece(2) == "<s>");
  CHECK(t.id_to_piece(3) == "</s>");
  CHECK(t.piece_to_id("<s>") == 2);
  CHECK(t.piece_to_id("<unk>") == 1);
  CHECK(t.piece_to_id("no-such-piece") == -1);
  CHECK(t.is_control(2));
  CHECK(t.is_control(3));
  CHECK(t.is_unknown(1));
  CHECK_FALSE(t.is_control(10));
  for (int id = 4; id < t.vocab_size(); ++id) CHECK(t.piece_to_id(t.id_to_piece(id)) == id);
  CHECK_THROWS_AS(t.id_to_piece(80), InternalError);
  CHECK_THROWS_AS(t.id_to_piece(-1), InternalError);
}

TEST_CASE("sp_tokenizer: ids match spm_encode") {
  std::istringstream in(read_file(kDir + "/expected_ids.tsv"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    std::string text = line.substr(0, tab);
    std::vector<int> want;
    std::istringstream ids(line.substr(tab + 1));
    for (int id; ids >> id;) want.push_back(id);
    CAPTURE(text);
    CHECK(tok().encode(text) == want);
    ++n;
  }
  CHECK(n == 5);
}

TEST_CASE("sp_tokenizer: round trips and edge cases") {
  const auto& t = tok();
  for (const char* s : {"there are two circles, one square and one triangle.", "is there a purple triangle?",
                        "how many red objects are there?", "a", "0 1 2 3"}) {
    CAPTURE(s);
    auto ids = t.encode(s);
    CHECK_FALSE(ids.empty());
    CHECK(t.decode(ids) == s);
  }
  // Unknown characters become unk and decode as the unknown surface marker, not a crash.
  auto ids = t.encode("zebra Q");
  CHECK(std::count(ids.begin(), ids.end(), t.unk_id()) >= 1);
  CHECK(t.encode("").empty());
  CHECK(t.encode_pieces("").empty());
  CHECK(t.decode({}).empty());
  // Control ids decode to nothing.
  auto body = t.encode("yes");
  std::vector<int> framed = {t.bos_id()};
  framed.insert(framed.end(), body.begin(), body.end());
  framed.push_back(t.eos_id());
  framed.push_back(t.pad_id());
  CHECK(t.decode(framed) == "yes");
  // Pieces and ids agree.
  auto pieces = t.encode_pieces("the red circle");
  auto pids = t.encode("the red circle");
  REQUIRE(pieces.size() == pids.size());
  for (size_t i = 0; i < pieces.size(); ++i) CHECK(t.piece_to_id(pieces[i]) == pids[i]);
  // Out-of-range ids are refused before they reach the library.
  CHECK_THROWS_AS(t.decode({5, 80}), InternalError);
  CHECK_THROWS_AS(t.decode({-3}), InternalError);
}

TEST_CASE("sp_tokenizer: invalid UTF-8 does not crash") {
  const auto& t = tok();
  for (std::string s : {std::string("\xff\xfe"), std::string("abc \xc3"), std::string("\xed\xa0\x80 red"),
                        std::string("red\0blue", 8), std::string(1000, '\x80')}) {
    std::vector<int> ids;
    CHECK_NOTHROW(ids = t.encode(s));
    CHECK_FALSE(ids.empty());
    for (int id : ids) CHECK((id >= 0 && id < t.vocab_size()));
    CHECK_NOTHROW(t.decode(ids));
  }
}

TEST_CASE("sp_tokenizer: corrupt or missing models are ModelErrors naming the file") {
  const std::string d = tmpdir();
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::string p = d + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  };
  std::string good = read_file(kModel);
  CHECK(load_error(d + "/missing.model") == "tokenizer: No such file or directory");
  CHECK(load_error(d).find("is a directory") != std::string::npos);
  CHECK(load_error(write("empty.model", "")) == "tokenizer model is empty (0 bytes)");
  auto not_valid = [](const std::string& m) { return m.find("not a valid sentencepiece model") != std::string::npos; };
  CHECK(not_valid(load_error(write("text.model", "this is not a model\n"))));
  CHECK(not_valid(load_error(write("half.model", good.substr(0, good.size() / 2)))));
  // A protobuf that parses but is no usable model: one piece "a", no <unk>.
  auto m = load_error(write("nounk.model", std::string("\x0a\x03\x0a\x01\x61", 5)));
  CHECK(m.find("not a valid sentencepiece model (5 bytes): ") == 0);
  std::string noise(4096, '\0');
  uint32_t x = 12345;
  for (char& c : noise) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  CHECK(not_valid(load_error(write("noise.model", noise))));
  // The safetensors fixture is not a sentencepiece model either.
  CHECK(not_valid(load_error(std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/safetensors/st_py.safetensors")));
}

namespace {
// A hand-built normalization map: one rule 'A' -> "a". 768 units: root state 256, edge 'A' at
// unit 256^0x41 = 321 leading to state 512, whose leaf unit (512) holds string offset 0.
struct Charsmap {
  std::vector<uint32_t> units = std::vector<uint32_t>(768, 0);
  std::string strings = std::string("a\0", 2);
  Charsmap() {
    units[0] = 256u << 10;                                // root: offset 256
    units[321] = ((321u ^ 512u) << 10) | (1u << 8) | 0x41;  // label 'A', has a leaf, next state 512
    units[512] = (1u << 31) | 0u;                          // leaf: value 0 -> "a"
  }
  std::string blob(uint32_t trie_bytes_override = 0) const {
    uint32_t tb = trie_bytes_override ? trie_bytes_override : static_cast<uint32_t>(units.size() * 4);
    std::string b(reinterpret_cast<const char*>(&tb), 4);
    b.append(reinterpret_cast<const char*>(units.data()), units.size() * 4);
    return b + strings;
  }
};
}  // namespace

TEST_CASE("sp_tokenizer: the normalization trie is walked with bounds checks") {
  using detail::sp_check_charsmap;
  Charsmap ok;
  CHECK(sp_check_charsmap(ok.blob()) == "");
  CHECK(sp_check_charsmap("") == "");  // no map at all
  CHECK(sp_check_charsmap(ok.blob(1u << 30)).find("exceeds the map") != std::string::npos);
  Charsmap far = ok;
  far.units[321] = ((321u ^ 5000u) << 10) | (1u << 8) | 0x41;  // next state beyond the 768 units
  CHECK(sp_check_charsmap(far.blob()).find("outside the trie") != std::string::npos);
  Charsmap root = ok;
  root.units[0] = 800u << 10;  // root state 800: past the 768 units
  CHECK(sp_check_charsmap(root.blob()).find("state 800 points outside the trie (768 units)") != std::string::npos);
  Charsmap value = ok;
  value.units[512] = (1u << 31) | 7u;  // string offset 7 in a 2-byte table
  CHECK(sp_check_charsmap(value.blob()).find("value 7 is outside the string table (2 bytes)") != std::string::npos);
  Charsmap noterm = ok;
  noterm.strings.resize(1);  // no NUL: the library's strlen would run off the end
  CHECK(sp_check_charsmap(noterm.blob()).find("outside the string table") != std::string::npos);

  // The same check guards load(): corrupt the root of the fixture's map (found after the
  // normalizer name "nmt_nfkc", field 2, varint length, u32 trie size).
  std::string model = read_file(kModel);
  size_t p = model.find(std::string("nmt_nfkc\x12", 9));
  REQUIRE(p != std::string::npos);
  p += 9;
  while (static_cast<unsigned char>(model[p]) & 0x80) ++p;  // skip the varint length
  p += 1 + 4;                                               // its last byte, then the trie size
  uint32_t bad_root = 0xfffffc00u;                          // offset far outside the trie
  std::memcpy(&model[p], &bad_root, 4);
  try {
    SpTokenizer::from_bytes(model, "corrupt.model");
    FAIL("a corrupt normalization trie loaded");
  } catch (const ModelError& e) {
    CHECK(std::string(e.what()).find("normalization trie state") != std::string::npos);
  }
}
