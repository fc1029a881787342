// The sentiment model (pipeline/sentiment) against PyTorch (training/sentiment_model.py, run in
// float64): on the shipped model (assets/models/sentiment) and the committed demo clips, every
// stage to 1e-4 (audio memory, text states, fused states, logits, probabilities and the
// head-averaged cross-attention map), the tokenizer's ids exactly, and the whole path from the
// WAV file (C++ libsndfile + log-mel) to the same label. Fixture: tests/fixtures/sentiment
// (training/sentiment_fixtures.py model). Also: text and load errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/safetensors.hpp"
#include "encoders/audio.hpp"
#include "pipeline/sentiment.hpp"

using namespace xmodal;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

const std::string kRoot = XMODAL_SOURCE_DIR;
const std::string kModel = kRoot + "/assets/models/sentiment";
const std::string kFix = kRoot + "/tests/fixtures/sentiment";
const std::string kSamples = kRoot + "/assets/samples/";
constexpr double kTol = 1e-4;  // model parity (the float64 reference vs our f32)

const SentimentModel& model() {
  static SentimentModel m = SentimentModel::load(kModel);
  return m;
}

struct Fixture {
  Json ref;
  SafetensorsFile st;
  Fixture() : ref(Json::parse(read_file(kFix + "/model_dump.json"))), st(SafetensorsFile::open(kFix + "/model_dump.safetensors")) {}
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}

// max |a - b| over two f32 tensors with the same element count (a may be strided)
double maxdiff(const Tensor& a, const Tensor& b) {
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  REQUIRE(ac.numel() == bc.numel());
  double m = 0;
  for (int64_t i = 0; i < ac.numel(); ++i) m = std::max(m, std::fabs(double(ac.f32()[i]) - double(bc.f32()[i])));
  return m;
}

std::vector<int> fixture_ids(const std::string& name) {
  const Tensor t = fixture().st.view(name + ".ids");  // [L] int64
  REQUIRE(t.dtype() == DType::i64);
  const int64_t* p = t.data<int64_t>();
  return std::vector<int>(p, p + t.numel());
}

// A scratch copy of the shipped model directory, for the load-error cases.
struct TempModel {
  fs::path dir;
  explicit TempModel(const std::string& tag) {
    dir = fs::temp_directory_path() / ("xmodal_test_sentiment_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"}) fs::copy_file(fs::path(kModel) / f, dir / f);
  }
  ~TempModel() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Json config() const { return Json::parse(read_file((dir / "config.json").string())); }
  void set_config(const Json& j) const { write_file_atomic((dir / "config.json").string(), j.dump(1)); }
};

int exit_code_of_load(const std::string& dir, std::string* msg = nullptr) {
  try {
    (void)SentimentModel::load(dir);
  } catch (const Error& e) {
    if (msg) *msg = e.one_line();
    return e.exit_code();
  }
  return 0;
}

}  // namespace

TEST_CASE("sentiment: every stage matches PyTorch (float64) to 1e-4 on the demo clips") {
  const SentimentModel& m = model();
  const auto& cases = fixture().ref["cases"];
  REQUIRE(cases.size() >= 6);
  double worst[6] = {0, 0, 0, 0, 0, 0};  // memory, text, fused, logits, probs, attention
  for (const auto& c : cases) {
    const std::string name = c["name"], text = c["text"];
    CAPTURE(name);
    CAPTURE(text);
    // The tokenizer: same ids and pieces as sentencepiece.
    const std::vector<int> ids = m.tokenize(text);
    CHECK(ids == fixture_ids(name));
    // Stages, from the reference's own log-mel (so this isolates the model).
    const Tensor logmel = fixture().st.to_f32(name + ".logmel");  // [T, 80]
    const Tensor memory = m.encode_audio(logmel);                   // [1, T', d]
    const Tensor ref_mem = fixture().st.to_f32(name + ".memory");
    REQUIRE(memory.shape() == ref_mem.shape());
    CHECK(memory.size(1) == SentimentModel::memory_length(logmel.size(0)));
    const double d_mem = maxdiff(memory, ref_mem);
    const double d_text = maxdiff(m.encode_text(ids), fixture().st.to_f32(name + ".text"));
    Tensor fused;
    const SentimentResult r = m.classify(ids, memory, /*want_attention=*/true, &fused);
    const double d_fused = maxdiff(fused, fixture().st.to_f32(name + ".fused"));
    const double d_logits = maxdiff(r.logits, fixture().st.to_f32(name + ".logits"));
    double d_probs = 0;
    const auto want_p = c["probabilities"].get<std::vector<double>>();
    REQUIRE(r.probs.size() == want_p.size());
    for (size_t i = 0; i < want_p.size(); ++i) d_probs = std::max(d_probs, std::fabs(r.probs[i] - want_p[i]));
    const Tensor ref_att = fixture().st.to_f32(name + ".attention");  // [L, T']
    REQUIRE(r.attention.shape() == ref_att.shape());
    const double d_att = maxdiff(r.attention, ref_att);
    // Each word's attention is a distribution over the audio frames.
    for (int64_t i = 0; i < r.attention.size(0); ++i) {
      double s = 0;
      for (int64_t t = 0; t < r.attention.size(1); ++t) s += r.attention.f32()[i * r.attention.size(1) + t];
      CHECK(std::fabs(s - 1.0) < 1e-5);
    }
    CHECK(d_mem < kTol);
    CHECK(d_text < kTol);
    CHECK(d_fused < kTol);
    CHECK(d_logits < kTol);
    CHECK(d_probs < 1e-5 + kTol);  // the JSON holds 6 decimals
    CHECK(d_att < kTol);
    CHECK(m.config().labels[static_cast<size_t>(r.label)] == c["label"].get<std::string>());
    // Pieces as sentencepiece spells them (an unknown piece is "<unk>" here and the
    // original characters in sentencepiece's string output).
    const auto want_pieces = c["pieces"].get<std::vector<std::string>>();
    REQUIRE(r.pieces.size() == want_pieces.size());
    for (size_t i = 0; i < want_pieces.size(); ++i)
      if (!m.tokenizer().is_unknown(ids[i])) CHECK(r.pieces[i] == want_pieces[i]);
    const double d[6] = {d_mem, d_text, d_fused, d_logits, d_probs, d_att};
    for (int k = 0; k < 6; ++k) worst[k] = std::max(worst[k], d[k]);
  }
  MESSAGE("max |C++ - PyTorch| over " << cases.size() << " cases: memory " << worst[0] << ", text " << worst[1]
                                      << ", fused " << worst[2] << ", logits " << worst[3] << ", probabilities "
                                      << worst[4] << ", attention " << worst[5] << " (tol " << kTol << ")");
}

TEST_CASE("sentiment: from the WAV file (C++ decoding + log-mel) to the reference's label") {
  const SentimentModel& m = model();
  double worst_mel = 0, worst_p = 0;
  for (const auto& c : fixture().ref["cases"]) {
    const std::string name = c["name"], wav = c["wav"];
    CAPTURE(name);
    const Tensor logmel = audio::log_mel(audio::load_audio(kSamples + wav).samples);
    const Tensor ref = fixture().st.to_f32(name + ".logmel");
    REQUIRE(logmel.shape() == ref.shape());
    worst_mel = std::max(worst_mel, maxdiff(logmel, ref));
    const SentimentResult r = m.predict(c["text"].get<std::string>(), logmel);
    CHECK(m.config().labels[static_cast<size_t>(r.label)] == c["label"].get<std::string>());
    const auto want_p = c["probabilities"].get<std::vector<double>>();
    for (size_t i = 0; i < want_p.size(); ++i) worst_p = std::max(worst_p, std::fabs(r.probs[i] - want_p[i]));
  }
  MESSAGE("end to end: log-mel max diff " << worst_mel << " (tol 1e-3), probabilities max diff " << worst_p
                                          << " (tol 1e-3)");
  CHECK(worst_mel < 1e-3);
  CHECK(worst_p < 1e-3);
}

TEST_CASE("sentiment: the demo clips say what samples.json says (same words, the voice decides)") {
  const SentimentModel& m = model();
  const Json samples = Json::parse(read_file(kFix + "/samples.json"));
  int correct = 0;
  for (const auto& s : samples) {
    const std::string file = s["file"];
    CAPTURE(file);
    const SentimentResult r = m.predict(s["text"], audio::log_mel(audio::load_audio(kSamples + file).samples));
    const std::string got = m.config().labels[static_cast<size_t>(r.label)];
    CHECK(got == s["label"].get<std::string>());
    correct += got == s["label"].get<std::string>();
  }
  MESSAGE(correct << " of " << samples.size() << " demo clips labelled as generated");
}

TEST_CASE("sentiment: text errors") {
  const SentimentModel& m = model();
  CHECK_THROWS_AS((void)m.tokenize(""), InputError);
  std::string longer;
  for (int i = 0; i < 80; ++i) longer += "wonderful ";
  try {
    (void)m.tokenize(longer);
    FAIL("a text over max_text_len tokens was accepted");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find(std::to_string(m.config().max_text_len)) != std::string::npos);
  }
  CHECK(m.tokenize("the concert was wonderful").size() >= 4);
}

TEST_CASE("sentiment: a missing or inconsistent model directory is a ModelError (exit 4) naming the file") {
  std::string msg;
  CHECK(exit_code_of_load(kRoot + "/no/such/dir", &msg) == 4);
  {
    TempModel t("arch");
    Json j = t.config();
    j["architecture"] = "something-else";
    t.set_config(j);
    CHECK(exit_code_of_load(t.dir.string(), &msg) == 4);
    CHECK(msg.find("config.json") != std::string::npos);
  }
  {
    TempModel t("dmodel");
    Json j = t.config();
    j["d_model"] = j["d_model"].get<int>() * 2;
    t.set_config(j);
    CHECK(exit_code_of_load(t.dir.string(), &msg) == 4);
  }
  {
    TempModel t("vocab");
    Json j = t.config();
    j["vocab_size"] = j["vocab_size"].get<int>() + 1;
    t.set_config(j);
    CHECK(exit_code_of_load(t.dir.string(), &msg) == 4);
  }
  {
    TempModel t("weights");
    const std::string w = (t.dir / "model.safetensors").string();
    fs::resize_file(w, fs::file_size(w) / 2);
    CHECK(exit_code_of_load(t.dir.string(), &msg) == 4);
    CHECK(msg.find("model.safetensors") != std::string::npos);
  }
  {
    TempModel t("tok");
    fs::remove(t.dir / "tokenizer.model");
    CHECK(exit_code_of_load(t.dir.string(), &msg) == 4);
    CHECK(msg.find("tokenizer.model") != std::string::npos);
  }
  TempModel t("ok");
  CHECK(exit_code_of_load(t.dir.string()) == 0);
}
