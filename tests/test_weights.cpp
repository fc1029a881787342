// pipeline/weights: ModelDir (config.json + model.safetensors + tokenizer detection), Config
// accessors and their messages, Weights take / shape checks / scopes / optional / unused report.
// Fixture: tests/fixtures/models/tiny (training/make_io_fixtures.py).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "pipeline/weights.hpp"

using namespace xmodal;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/models/tiny";

struct TmpDir {
  std::string path = (fs::temp_directory_path() / "xmodal_test_weights_XXXXXX").string();
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

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
#define CHECK_HAS(msg, part) CHECK_MESSAGE(has(msg, part), "message: " << msg << "\n   lacks: " << part)

// Runs f, expects a ModelError; returns "subject: message".
template <class F>
std::string model_error(F&& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.subject() + ": " + e.what();
  }
  FAIL("expected a ModelError");
  return "";
}

// A copy of the tiny model dir with config.json replaced (unless config is empty).
std::string model_dir(const std::string& name, const std::string& config) {
  std::string d = tmpdir() + "/" + name;
  fs::create_directories(d);
  fs::copy_file(kTiny + "/model.safetensors", d + "/model.safetensors", fs::copy_options::overwrite_existing);
  std::ofstream(d + "/config.json") << config;
  return d;
}

}  // namespace

TEST_CASE("ModelDir: the tiny fixture opens") {
  ModelDir m = ModelDir::open(kTiny + "/");  // a trailing slash is fine
  CHECK(m.architecture == "xmodal-test");
  CHECK(m.format_version == 1);
  CHECK(m.format == "xmodal 1");
  CHECK(m.config_path == kTiny + "/config.json");
  CHECK(m.file.size() == 8);
  CHECK(m.tokenizer == TokenizerKind::none);
  CHECK(m.config.get_int("hidden_size") == 4);
}

TEST_CASE("Config: typed access and messages that name the key") {
  ModelDir m = ModelDir::open(kTiny);
  const Config& c = m.config;
  const std::string f = kTiny + "/config.json";
  CHECK(c.get_int("num_layers", 1, 64) == 2);
  CHECK(c.get_float("layer_norm_eps") == doctest::Approx(1e-5));
  CHECK(c.get_float("hidden_size") == 4.0);  // integers are numbers too
  CHECK(c.get_bool("use_bias"));
  CHECK(c.get_string("name") == "tiny");
  CHECK(c.get_floats("image_mean") == std::vector<double>{0.5, 0.25, 0.125});
  CHECK(c.int_or("absent", 7) == 7);
  CHECK(c.string_or("absent", "x") == "x");
  CHECK_FALSE(c.has("absent"));
  Config v = c.sub("vision_config");
  CHECK(v.get_int("patch_size") == 2);
  CHECK_FALSE(c.sub_optional("text_config").has_value());
  CHECK(cfg_int(c.json(), "vocab_size", f) == 10);

  CHECK(model_error([&] { c.get_int("absent"); }) == f + ": missing key 'absent'");
  CHECK(model_error([&] { v.get_int("hidden"); }) == f + ": missing key 'vision_config.hidden'");
  CHECK(model_error([&] { c.get_string("hidden_size"); }) == f + ": key 'hidden_size' is an integer (4), expected a string");
  CHECK(model_error([&] { c.get_int("layer_norm_eps"); }) == f + ": key 'layer_norm_eps' is a float (1e-05), expected an integer");
  CHECK(model_error([&] { c.get_int("num_layers", 3, 8); }) == f + ": key 'num_layers' = 2 is out of range [3, 8]");
  CHECK(model_error([&] { c.get_bool("name"); }) == f + ": key 'name' is a string (\"tiny\"), expected true or false");
  CHECK(model_error([&] { c.sub("name"); }) == f + ": key 'name' is a string, expected an object");
  CHECK(model_error([&] { c.get_ints("image_mean"); }) == f + ": key 'image_mean[0]' is a float (0.5), expected an integer");
  CHECK(model_error([&] { cfg_float(c.json(), "name", f); }) == f + ": key 'name' is a string (\"tiny\"), expected a number");
}

TEST_CASE("Weights: take converts to f32 and checks shapes") {
  ModelDir m = ModelDir::open(kTiny);
  Weights w = m.weights();
  const std::string wf = kTiny + "/model.safetensors";
  CHECK(w.total_count() == 8);
  CHECK(w.used_count() == 0);

  Tensor e = w.take("embed.weight", {10, 4});  // arange(40) / 10
  CHECK(e.dtype() == DType::f32);
  for (int i = 0; i < 40; ++i) CHECK(e.f32()[i] == doctest::Approx(i / 10.0));

  Weights l1 = w.scope("layers").scope("1").scope("fc.");  // trailing '.' not doubled
  CHECK(l1.prefix() == "layers.1.fc.");
  Tensor wb = l1.take("weight", {4, 4});  // stored bf16: arange(16) * 0.5
  CHECK(wb.dtype() == DType::f32);
  for (int i = 0; i < 16; ++i) CHECK(wb.f32()[i] == i * 0.5f);
  Tensor bh = l1.take("bias", {-1});  // stored f16: [0.25, 0.5, 0.75, 1]; -1 matches any size
  for (int i = 0; i < 4; ++i) CHECK(bh.f32()[i] == (i + 1) * 0.25f);
  CHECK(w.used_count() == 3);  // scopes share the record
  CHECK(w.summary() == "loaded 3 of 8 tensors");

  SUBCASE("shape mismatch names the tensor and both shapes") {
    auto msg = model_error([&] { w.scope("layers.0.fc").take("weight", {4, 5}); });
    CHECK_HAS(msg, wf + ": tensor 'layers.0.fc.weight' has shape [4, 4] in the checkpoint, expected [4, 5] by xmodal-test");
    msg = model_error([&] { w.take("norm.bias", {4, 1}); });
    CHECK_HAS(msg, "'norm.bias' has shape [4] in the checkpoint, expected [4, 1]");
  }
  SUBCASE("missing tensor suggests the closest name") {
    auto msg = model_error([&] { w.scope("layers.0.fc").take("weights", {4, 4}); });
    CHECK_HAS(msg, "missing tensor 'layers.0.fc.weights' (expected [4, 4]) needed by xmodal-test");
    CHECK_HAS(msg, "closest name: 'layers.0.fc.weight'");
    msg = model_error([&] { w.scope("text_decoder").take("x", {1}); });
    CHECK_HAS(msg, "no tensor under 'text_decoder.'");
  }
  SUBCASE("optional tensors") {
    CHECK_FALSE(w.take_optional("layers.0.ln.weight", {4}).has_value());
    auto b = w.take_optional("layers.0.fc.bias", {4});
    REQUIRE(b.has_value());
    CHECK(b->f32()[3] == -1.0f);
    CHECK_THROWS_AS(w.take_optional("layers.0.fc.bias", {3}), ModelError);  // present but wrong
  }
  SUBCASE("integer buffers: take refuses, take_raw views") {
    CHECK_HAS(model_error([&] { w.take("position_ids", {1, 6}); }), "position_ids: dtype I64 cannot be read as f32");
    Tensor p = w.take_raw("position_ids", {1, -1});
    CHECK(p.dtype() == DType::i64);
    CHECK(p.data<int64_t>()[5] == 5);
  }
  SUBCASE("check_all_used lists what nobody took") {
    auto msg = model_error([&] { w.check_all_used(); });
    CHECK_HAS(msg, wf + ": 5 unexpected tensors not used by xmodal-test (loaded 3 of 8 tensors): ");
    CHECK_HAS(msg, "'layers.0.fc.bias', 'layers.0.fc.weight', 'norm.bias', 'norm.weight', 'position_ids'");
    CHECK(w.scope("layers").ignore_prefix("0.") == 2);
    CHECK(w.ignore("position_ids"));
    CHECK_FALSE(w.ignore("nope"));
    CHECK(w.unused() == std::vector<std::string>{"norm.bias", "norm.weight"});
    w.take("norm.weight", {4});
    w.take("norm.bias", {4});
    CHECK_NOTHROW(w.check_all_used());
    CHECK(w.summary() == "loaded 8 of 8 tensors");
    // A fresh root scope starts a fresh record.
    CHECK(m.weights().used_count() == 0);
  }
  SUBCASE("the f32 result is a zero-copy view of the mapping") {
    Tensor a = w.take("norm.weight", {4});
    Tensor b = w.take("norm.weight", {4});
    CHECK(a.raw() == b.raw());
  }
}

TEST_CASE("ModelDir: bad directories give one ModelError naming the file") {
  const std::string d = tmpdir();
  CHECK_HAS(model_error([&] { ModelDir::open(d + "/nope"); }), d + "/nope: model directory: No such file or directory");
  std::ofstream(d + "/plain") << "x";
  CHECK_HAS(model_error([&] { ModelDir::open(d + "/plain"); }), d + "/plain: is not a directory");
  fs::create_directories(d + "/empty");
  CHECK_HAS(model_error([&] { ModelDir::open(d + "/empty"); }), d + "/empty/config.json: missing");

  auto cfg_err = [&](const std::string& name, const std::string& config) {
    std::string dir = model_dir(name, config);
    return model_error([&] { ModelDir::open(dir); });
  };
  CHECK_HAS(cfg_err("badjson", "{\"architecture\": "), "badjson/config.json: not valid JSON: ");
  CHECK_HAS(cfg_err("array", "[1, 2]"), "array/config.json: top level is an array, expected an object");
  CHECK_HAS(cfg_err("noarch", "{\"format_version\": 1}"),
            "noarch/config.json: missing key 'architecture' (or Hugging Face's 'architectures')");
  CHECK_HAS(cfg_err("archint", "{\"architecture\": 3, \"format_version\": 1}"),
            "archint/config.json: key 'architecture' is an integer (3), expected a string");
  CHECK_HAS(cfg_err("nover", "{\"architecture\": \"xmodal-test\"}"), "nover/config.json: missing key 'format_version'");
  CHECK_HAS(cfg_err("newver", "{\"architecture\": \"xmodal-test\", \"format_version\": 2}"),
            "newver/config.json: format_version 2 is newer than this xmodal reads (1); update xmodal");
  CHECK_HAS(cfg_err("hfbad", "{\"architectures\": []}"), "hfbad/config.json: key 'architectures' is []");

  // Weights problems name model.safetensors.
  std::string nw = model_dir("noweights", R"({"architecture": "xmodal-test", "format_version": 1})");
  fs::remove(nw + "/model.safetensors");
  CHECK(model_error([&] { ModelDir::open(nw); }) == nw + "/model.safetensors: missing");
  std::ofstream(nw + "/pytorch_model.bin") << "x";
  CHECK_HAS(model_error([&] { ModelDir::open(nw); }), "convert pytorch_model.bin to model.safetensors");
  std::string tr = model_dir("truncated", R"({"architecture": "xmodal-test", "format_version": 1})");
  fs::resize_file(tr + "/model.safetensors", fs::file_size(tr + "/model.safetensors") - 10);
  CHECK_HAS(model_error([&] { ModelDir::open(tr); }), tr + "/model.safetensors: ");
  CHECK_HAS(model_error([&] { ModelDir::open(tr); }), "outside the data section");
}

TEST_CASE("ModelDir: a Hugging Face config and tokenizer detection") {
  std::string d = model_dir("hf", R"({"architectures": ["BlipForQuestionAnswering"], "model_type": "blip",
                                       "transformers_version": "4.26.0.dev0", "text_config": {"hidden_size": 768}})");
  std::ofstream(d + "/vocab.txt") << "[PAD]\n";
  ModelDir m = ModelDir::open(d);
  CHECK(m.architecture == "blip-vqa");
  CHECK(m.format_version == 0);
  CHECK(m.format == "transformers 4.26.0.dev0");
  CHECK(m.tokenizer == TokenizerKind::wordpiece);
  CHECK(m.tokenizer_path == d + "/vocab.txt");
  CHECK(m.config.sub("text_config").get_int("hidden_size") == 768);
  std::ofstream(d + "/tokenizer.model") << "x";
  CHECK(ModelDir::open(d).tokenizer == TokenizerKind::sentencepiece);
}
