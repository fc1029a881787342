// core/safetensors: malformed files (one per check), writer -> reader round trip, and a file
// written by training/st.py (tests/fixtures/safetensors/, made by training/make_io_fixtures.py).
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "core/safetensors.hpp"

using namespace xmodal;
namespace fs = std::filesystem;

namespace {

// A private temporary folder, removed at exit.
struct TmpDir {
  std::string path = (fs::temp_directory_path() / "xmodal_test_st_XXXXXX").string();
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

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

std::string write_bytes(const std::string& name, const std::string& bytes) {
  std::string path = tmpdir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A file with the given header text and data section; the length prefix is the header's size.
std::string write_st(const std::string& name, const std::string& header, const std::string& data) {
  return write_bytes(name, le64(header.size()) + header + data);
}

// Opens path, expects a ModelError about that file, returns its message.
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const ModelError& e) {
    CHECK(e.subject() == path);
    return e.what();
  }
  FAIL("expected a ModelError for " << path);
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

#define CHECK_HAS(msg, part) CHECK_MESSAGE(has(msg, part), "message: " << msg << "\n   lacks: " << part)

// 12 bytes of data: three f32 values.
const std::string kData12(12, '\0');

}  // namespace

TEST_CASE("safetensors: a minimal valid file opens") {
  auto path = write_st("ok.st", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", kData12);
  auto f = SafetensorsFile::open(path);
  CHECK(f.size() == 1);
  CHECK(f.entry("w").shape == Shape{3});
  CHECK(f.total_numel() == 3);
}

TEST_CASE("safetensors: file-level problems") {
  SUBCASE("missing file") { CHECK_HAS(open_error(tmpdir() + "/nope.st"), "No such file"); }
  SUBCASE("directory") { CHECK_HAS(open_error(tmpdir()), "is a directory"); }
  SUBCASE("shorter than 8 bytes") {
    auto m = open_error(write_bytes("short.st", "abc"));
    CHECK_HAS(m, "3 bytes");
    CHECK_HAS(m, "too short");
  }
  SUBCASE("empty file") { CHECK_HAS(open_error(write_bytes("empty.st", "")), "0 bytes"); }
  SUBCASE("absurd header length") {
    auto m = open_error(write_bytes("huge.st", le64(1ull << 40) + "{}"));
    CHECK_HAS(m, "header length 1099511627776");
    CHECK_HAS(m, "limit of 100000000");
  }
  SUBCASE("header length larger than the file") {
    auto m = open_error(write_bytes("long.st", le64(100) + "{}"));
    CHECK_HAS(m, "header length 100");
    CHECK_HAS(m, "2 bytes after it");
  }
  SUBCASE("truncated data") {
    std::string h = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
    auto m = open_error(write_bytes("trunc.st", le64(h.size()) + h + std::string(5, '\0')));
    CHECK_HAS(m, "w: data_offsets [0, 12] lie outside the data section of 5 bytes");
  }
  SUBCASE("header is not JSON") { CHECK_HAS(open_error(write_st("nojson.st", "{not json", "")), "not valid JSON"); }
  SUBCASE("header is not an object") {
    CHECK_HAS(open_error(write_st("arr.st", "[1,2]", "")), "does not start with '{'");
  }
  SUBCASE("invalid UTF-8 in the header") {
    CHECK_HAS(open_error(write_st("utf8.st", "{\"\xff\xfe\":{}}", "")), "not valid JSON");
  }
  SUBCASE("trailing garbage after the JSON") {
    CHECK_HAS(open_error(write_st("garbage.st", "{} x", "")), "not valid JSON");
  }
}

TEST_CASE("safetensors: entry problems name the tensor") {
  struct Case {
    const char* what;
    std::string header;
    std::string data;
    std::vector<std::string> expect;
  };
  const Case cases[] = {
      {"entry not an object", R"({"w":[1]})", "", {"w: entry is an array"}},
      {"missing dtype", R"({"w":{"shape":[3],"data_offsets":[0,12]}})", kData12, {"w: missing 'dtype'"}},
      {"missing shape", R"({"w":{"dtype":"F32","data_offsets":[0,12]}})", kData12, {"w: missing 'shape'"}},
      {"missing offsets", R"({"w":{"dtype":"F32","shape":[3]}})", kData12, {"w: missing 'data_offsets'"}},
      {"dtype not a string", R"({"w":{"dtype":7,"shape":[3],"data_offsets":[0,12]}})", kData12,
       {"w: 'dtype' is an integer, expected a string"}},
      {"unknown dtype", R"({"w":{"dtype":"F17","shape":[3],"data_offsets":[0,12]}})", kData12,
       {"w: unknown dtype 'F17'"}},
      {"shape not an array", R"({"w":{"dtype":"F32","shape":"3","data_offsets":[0,12]}})", kData12,
       {"w: 'shape' is a string"}},
      {"float dim", R"({"w":{"dtype":"F32","shape":[1,2.5],"data_offsets":[0,12]}})", kData12,
       {"w: shape[1] is 2.5"}},
      {"negative dim", R"({"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}})", kData12,
       {"w: negative dimension -3"}},
      {"dim beyond int64", R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,12]}})", kData12,
       {"w: shape[0] is 18446744073709551615"}},
      {"numel overflow", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,12]}})",
       kData12, {"w: shape [4294967296,4294967296]", "overflow"}},
      {"byte count overflow", R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,12]}})",
       kData12, {"w:", "overflows the byte count"}},
      {"offsets not a pair", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0]}})", kData12,
       {"w: 'data_offsets' is [0], expected [begin, end]"}},
      {"negative offset", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[-4,8]}})", kData12,
       {"w: 'data_offsets' [-4,8] must be two non-negative integers"}},
      {"end before begin", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[12,0]}})", kData12,
       {"w: data_offsets [12, 0] end before they begin"}},
      {"offsets outside data", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})", kData12,
       {"w: data_offsets [4, 16] lie outside the data section of 12 bytes"}},
      {"size mismatch", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'),
       {"w: data_offsets [0, 8] span 8 bytes, but F32[3] needs 12"}},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       kData12, {"b: data [4, 12) overlaps 'a' [0, 8)"}},
      {"hole",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       kData12, {"b: data [8, 12) leaves a hole of 4 unused bytes after 'a'"}},
      {"hole at the start", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", kData12,
       {"a: data [4, 12) leaves a hole of 4 unused bytes after the header"}},
      {"trailing bytes", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kData12,
       {"4 unused bytes after the last tensor", "data section 12 bytes, tensors cover 8"}},
      {"metadata not an object", R"({"__metadata__":[1]})", "", {"__metadata__: is an array"}},
      {"metadata value not a string", R"({"__metadata__":{"format":"pt","n":3}})", "",
       {"__metadata__: value of 'n' is an integer, expected a string"}},
      {"duplicate name",
       R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
       std::string(2, '\0'), {"a: tensor name appears twice"}},
  };
  int i = 0;
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto m = open_error(write_st("case" + std::to_string(i++) + ".st", c.header, c.data));
    for (const auto& e : c.expect) CHECK_HAS(m, e);
  }
}

TEST_CASE("safetensors: zero-size tensors and an empty header are fine") {
  auto path = write_st("zero.st",
                       R"({"__metadata__":{"format":"pt"},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                       R"("s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})",
                       le64(42));
  auto f = SafetensorsFile::open(path);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.view("e").numel() == 0);
  CHECK(f.view("s").data<int64_t>()[0] == 42);
  CHECK(f.view("s").dim() == 0);
  auto g = SafetensorsFile::open(write_st("empty_header.st", "{}      ", ""));
  CHECK(g.size() == 0);
}

TEST_CASE("safetensors: writer -> reader round trip") {
  std::map<std::string, Tensor> ts;
  ts["f32"] = Tensor::from({2, 3}, {1.5f, -2, 3, 4, 5, 6e-8f});
  ts["bf16"] = Tensor::from({3}, {1, -0.5f, 3.25f}).to(DType::bf16);
  Tensor i64 = Tensor::empty({2}, DType::i64);
  i64.data<int64_t>()[0] = -7;
  i64.data<int64_t>()[1] = 1LL << 40;
  ts["i64"] = i64;
  Tensor i32 = Tensor::empty({1}, DType::i32);
  i32.data<int32_t>()[0] = 123456;
  ts["i32"] = i32;
  Tensor u8 = Tensor::empty({3}, DType::u8);  // 3 bytes: would misalign what follows
  for (int k = 0; k < 3; ++k) u8.data<uint8_t>()[k] = static_cast<uint8_t>(250 + k);
  ts["a_u8"] = u8;
  ts["transposed"] = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5}).transpose(0, 1);  // written contiguous
  ts["empty"] = Tensor::zeros({0, 4});
  std::string path = tmpdir() + "/rt.safetensors";
  save_safetensors(path, ts, {{"format", "pt"}, {"note", "ünïcode ok"}});
  CHECK_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
  // 8 + padded header + 24 (f32) + 16 (i64) + 4 (i32) + 6 (bf16) + 3 (u8) + 24 (transposed) + 0.
  const uint64_t data_bytes = 24 + 16 + 4 + 6 + 3 + 24;

  Tensor keep;
  {
    auto f = SafetensorsFile::open(path);
    CHECK(f.size() == ts.size());
    CHECK((f.header_size() % 8) == 0);
    CHECK(f.file_size() == 8 + f.header_size() + data_bytes);
    CHECK(f.metadata().at("note") == "ünïcode ok");
    for (const auto& e : f.entries()) {
      CAPTURE(e.name);
      CHECK(e.begin % st_dtype_size(e.dtype) == 0);  // the writer keeps every tensor aligned
      Tensor v = f.view(e.name);
      CHECK(v.shape() == ts[e.name].shape());
      CHECK(v.dtype() == ts[e.name].dtype());
      Tensor want = ts[e.name].contiguous();
      CHECK(std::memcmp(v.raw(), want.raw(), want.nbytes()) == 0);
    }
    CHECK(f.entry("bf16").dtype == StDType::BF16);
    Tensor b = f.to_f32("bf16");
    CHECK(b.f32()[2] == 3.25f);
    CHECK(f.view("transposed").shape() == Shape{3, 2});
    CHECK(f.view("transposed").f32()[1] == 3.0f);
    keep = f.view("f32");
    // Views are zero-copy: they point into the mapping.
    const char* lo = static_cast<const char*>(keep.raw()) - f.data_offset() - f.entry("f32").begin;
    CHECK(static_cast<const char*>(f.view("i64").raw()) == lo + f.data_offset() + f.entry("i64").begin);
    CHECK_THROWS_AS(f.to_f32("i64"), ModelError);
    CHECK_THROWS_AS(f.view("nope"), ModelError);
  }
  // The view outlives the file object: it keeps the mapping alive.
  CHECK(keep.f32()[0] == 1.5f);
  CHECK(keep.f32()[5] == 6e-8f);
  // Writing through a view is private (copy-on-write): the file is unchanged.
  keep.f32()[0] = 99.f;
  CHECK(SafetensorsFile::open(path).view("f32").f32()[0] == 1.5f);
}

TEST_CASE("safetensors: writer refuses bad names and failed writes are atomic") {
  std::string path = tmpdir() + "/bad.safetensors";
  CHECK_THROWS_AS(save_safetensors(path, {{"__metadata__", Tensor::zeros({1})}}), InternalError);
  CHECK_THROWS_AS(save_safetensors(path, {{"", Tensor::zeros({1})}}), InternalError);
  CHECK_THROWS_AS(save_safetensors(tmpdir() + "/no/such/dir/x.safetensors", {{"a", Tensor::zeros({1})}}), InputError);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("safetensors: f16 -> f32 matches the IEEE definition for all 65536 values") {
  int mismatches = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    int s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    double ref;
    if (e == 31)
      ref = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    else if (e == 0)
      ref = std::ldexp(m / 1024.0, -14);
    else
      ref = std::ldexp(1.0 + m / 1024.0, e - 15);
    if (s) ref = -ref;
    float got = f16_to_f32(static_cast<uint16_t>(h));
    bool ok = std::isnan(ref) ? std::isnan(got) : static_cast<double>(got) == ref && std::signbit(got) == std::signbit(ref);
    mismatches += !ok;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("safetensors: a file written by training/st.py reads back with the right values") {
  // Written by `/usr/bin/python3 training/make_io_fixtures.py`; the values are formulas, so the
  // expectations here are independent of the file.
  auto f = SafetensorsFile::open(std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/safetensors/st_py.safetensors");
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("made_by") == "training/make_io_fixtures.py");
  CHECK(f.size() == 7);

  // a_u8 = [1, 2, 3] (3 bytes, so b_f32 that follows it in st.py's name order is misaligned)
  Tensor u8 = f.view("a_u8");
  CHECK(u8.shape() == Shape{3});
  CHECK(u8.data<uint8_t>()[2] == 3);
  // b_f32 = arange(6) * 0.25 - 1, shape [2, 3]
  Tensor b = f.to_f32("b_f32");
  REQUIRE(b.shape() == Shape{2, 3});
  CHECK(reinterpret_cast<uintptr_t>(b.raw()) % 4 == 0);
  for (int i = 0; i < 6; ++i) CHECK(b.f32()[i] == i * 0.25f - 1.f);
  // c_bf16 = [1, -2, 0.5, 3.140625] in bf16
  Tensor c = f.to_f32("c_bf16");
  CHECK(c.f32()[3] == 3.140625f);
  CHECK(f.view("c_bf16").dtype() == DType::bf16);
  // d_f16 = [0, 1, -2, 0.5, 65504, 2^-14, 2^-24, inf]
  CHECK(f.entry("d_f16").dtype == StDType::F16);
  Tensor d = f.to_f32("d_f16");
  const float want_d[] = {0.f, 1.f, -2.f, 0.5f, 65504.f, std::ldexp(1.f, -14), std::ldexp(1.f, -24),
                          std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 8; ++i) CHECK(d.f32()[i] == want_d[i]);
  CHECK_THROWS_AS(f.view("d_f16"), ModelError);  // no f16 Tensor type: convert instead
  // e_i64 = arange(4) - 2, f_i32 = [[7], [-8]], g_f64 = [0.1, 1e300]
  Tensor e = f.view("e_i64");
  for (int i = 0; i < 4; ++i) CHECK(e.data<int64_t>()[i] == i - 2);
  Tensor fi = f.view("f_i32");
  CHECK(fi.shape() == Shape{2, 1});
  CHECK(fi.data<int32_t>()[1] == -8);
  Tensor g = f.to_f32("g_f64");
  CHECK(g.f32()[0] == 0.1f);
  CHECK(std::isinf(g.f32()[1]));
}
