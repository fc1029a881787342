// The scenes model (pipeline/scenes_model) against PyTorch (training/scenes_model.py):
// resize, encoder memory, teacher-forced logits (all at once and step by step through the KV
// cache) to 1e-4, and greedy ids exactly, for both tasks, on the shipped model and the committed
// sample scenes. Fixture: tests/fixtures/scenes_model (training/make_scenes_fixtures.py).
// Also: greedy_decode's stopping rules, and load errors.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/safetensors.hpp"
#include "pipeline/decoding.hpp"
#include "pipeline/scenes_model.hpp"

using namespace xmodal;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

const std::string kRoot = XMODAL_SOURCE_DIR;
const std::string kModel = kRoot + "/assets/models/scenes";
const std::string kFix = kRoot + "/tests/fixtures/scenes_model";

const ScenesModel& model() {
  static ScenesModel m = ScenesModel::load(kModel);
  return m;
}

// max |a - b| over two f32 tensors of the same element count (a may be strided).
double maxdiff(const Tensor& a, const Tensor& b) {
  Tensor ac = a.contiguous(), bc = b.contiguous();
  REQUIRE(ac.numel() == bc.numel());
  double m = 0;
  for (int64_t i = 0; i < ac.numel(); ++i) m = std::max(m, std::fabs(double(ac.f32()[i]) - double(bc.f32()[i])));
  return m;
}

std::vector<int> ints(const Json& j) { return j.get<std::vector<int>>(); }

struct Fixture {
  Json ref;
  SafetensorsFile st;
  Fixture() : ref(Json::parse(read_file(kFix + "/reference.json"))), st(SafetensorsFile::open(kFix + "/reference.safetensors")) {}
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}

// Checks one sequence: all-at-once and step-by-step logits vs the reference, then greedy ids.
void check_sequence(const ScenesModel& m, const ScenesModel::ImageMemory& mem, const std::vector<int>& prompt,
                    const std::vector<int>& gen, const Tensor& ref_logits, int max_new, const std::string& what) {
  std::vector<int> all = prompt;
  all.insert(all.end(), gen.begin(), gen.end());
  REQUIRE(ref_logits.size(0) == static_cast<int64_t>(all.size()));
  // All positions at once (prefill path).
  auto seq = m.start(mem);
  Tensor l = m.step(seq, all);
  const double d_all = maxdiff(l, ref_logits);
  // Prompt, then one token at a time (the KV-cache decode path).
  auto seq2 = m.start(mem);
  Tensor lp = m.step(seq2, prompt);
  double d_step = maxdiff(lp, ref_logits.slice(0, 0, static_cast<int64_t>(prompt.size())));
  for (size_t t = 0; t < gen.size(); ++t) {
    Tensor lt = m.step(seq2, {gen[t]});
    const int64_t row = static_cast<int64_t>(prompt.size() + t);
    d_step = std::max(d_step, maxdiff(lt, ref_logits.slice(0, row, row + 1)));
  }
  MESSAGE(what << ": max |logit diff| all-at-once " << d_all << ", step-by-step " << d_step);
  CHECK(d_all <= 1e-4);
  CHECK(d_step <= 1e-4);
  const auto g = m.generate(mem, prompt, max_new);
  CHECK_MESSAGE(g.ids == gen, what << ": greedy ids differ");
  CHECK(g.stopped_at_eos);
}

}  // namespace

TEST_CASE("scenes model matches PyTorch on the committed samples (caption and VQA)") {
  const ScenesModel& m = model();
  const Fixture& f = fixture();
  const auto& samples = f.ref.at("samples");
  REQUIRE(samples.size() >= 2);
  const int64_t S = m.config().image_size;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const std::string tag = "s" + std::to_string(i);
    CAPTURE(s.at("file").get<std::string>());
    // 1. Resize: PIL bicubic, exactly.
    const Image img = load_image(kRoot + "/" + s.at("file").get<std::string>());
    const Image r = m.resize(img);
    const Tensor ref_r = f.st.view(tag + ".resized");
    REQUIRE(ref_r.shape() == Shape{S, S, 3});
    int max_px = 0;
    for (size_t k = 0; k < r.pixels.size(); ++k)
      max_px = std::max(max_px, std::abs(int(r.pixels[k]) - int(ref_r.data<uint8_t>()[k])));
    CHECK_MESSAGE(max_px == 0, "resized pixels differ from PIL by up to " << max_px);
    // 2. Encoder memory from the reference pixels.
    Image ri(static_cast<int>(S), static_cast<int>(S));
    std::copy(ref_r.data<uint8_t>(), ref_r.data<uint8_t>() + ri.pixels.size(), ri.pixels.begin());
    const Tensor memory = m.encode(m.to_input(ri));
    const double d_mem = maxdiff(memory, f.st.view(tag + ".memory"));
    MESSAGE(tag << ": max |memory diff| " << d_mem);
    CHECK(d_mem <= 1e-4);
    const auto mem = m.project(memory);
    // 3. Caption and questions.
    const auto& cap = s.at("caption");
    check_sequence(m, mem, ints(cap.at("prompt")), ints(cap.at("ids")), f.st.view(tag + ".cap.logits"),
                   static_cast<int>(m.config().max_len), tag + " caption");
    CHECK(m.caption(mem) == cap.at("text").get<std::string>());
    const auto& qs = s.at("questions");
    for (size_t j = 0; j < qs.size(); ++j) {
      const auto& q = qs[j];
      const std::string question = q.at("question").get<std::string>();
      CHECK(m.vqa_prompt(question) == ints(q.at("prompt")));
      check_sequence(m, mem, ints(q.at("prompt")), ints(q.at("ids")), f.st.view(tag + ".q" + std::to_string(j) + ".logits"),
                     ScenesModel::kMaxAnswerTokens, tag + " q" + std::to_string(j));
      CHECK(m.answer(mem, question) == q.at("text").get<std::string>());
    }
  }
}

TEST_CASE("questions: case folding, unknown words and length limits") {
  const ScenesModel& m = model();
  CHECK(m.vqa_prompt("How Many CIRCLES are there?") == m.vqa_prompt("how many circles are there?"));
  // Unknown words never fail: byte fallback gives ids, and the model answers.
  const auto p = m.vqa_prompt("is the zebra ünïcödé fuchsia?");
  CHECK(p.size() > 5);
  const Image img = load_image(kRoot + "/" + fixture().ref.at("samples")[0].at("file").get<std::string>());
  const auto mem = m.prepare_image(img);
  CHECK_FALSE(m.answer(mem, "is the zebra fuchsia?").empty());
  std::string long_q;
  for (int i = 0; i < 100; ++i) long_q += "what ";
  CHECK_THROWS_AS(m.vqa_prompt(long_q), InputError);
}

TEST_CASE("greedy_decode: argmax, eos, max tokens, banned ids") {
  // A fake model: after seeing token t it puts the highest logit on t + 1 (V = 6); eos = 5.
  int calls = 0;
  std::vector<int> seen;
  DecodeStep step = [&](const std::vector<int>& ids) {
    ++calls;
    seen.insert(seen.end(), ids.begin(), ids.end());
    Tensor l = Tensor::zeros({6});
    l.f32()[(ids.back() + 1) % 6] = 3.f;
    l.f32()[0] = 2.f;  // runner-up everywhere
    return l;
  };
  GreedyOptions o;
  o.eos_id = 5;
  o.max_new_tokens = 10;
  auto r = greedy_decode(step, {1, 2}, o);
  CHECK(r.ids == std::vector<int>{3, 4});
  CHECK(r.stopped_at_eos);
  CHECK(calls == 3);                                 // prompt once, then one token per step
  CHECK(seen == std::vector<int>{1, 2, 3, 4});       // the prompt is fed whole, then single ids
  CHECK(r.logprobs.size() == 3);
  CHECK(r.logprobs[0] < 0.f);
  o.max_new_tokens = 1;
  calls = 0;
  seen.clear();
  r = greedy_decode(step, {1}, o);
  CHECK(r.ids == std::vector<int>{2});
  CHECK_FALSE(r.stopped_at_eos);
  o.max_new_tokens = 10;
  o.banned = {3};  // after 2 the best is banned, so the runner-up 0 wins, then 1, 2, 0, ...
  r = greedy_decode(step, {2}, o);
  CHECK(r.ids.size() == 10);
  CHECK(r.ids[0] == 0);
  CHECK(r.ids[1] == 1);
  CHECK_THROWS_AS(greedy_decode(step, {}, o), InternalError);
  const float tie[3] = {1.f, 5.f, 5.f};
  CHECK(argmax_logits(tie, 3) == 1);
  CHECK(argmax_logits(tie, 3, {1}) == 2);
}

TEST_CASE("load errors are ModelErrors that name the problem") {
  const std::string tmp = (fs::temp_directory_path() / "xmodal_test_scenes_model_XXXXXX").string();
  std::string dir = tmp;
  REQUIRE(::mkdtemp(dir.data()));
  for (const char* f : {"model.safetensors", "tokenizer.model"}) fs::copy_file(kModel + "/" + f, dir + "/" + f);
  Json cfg = Json::parse(read_file(kModel + "/config.json"));
  auto expect = [&](const Json& c, const std::string& part) {
    write_file_atomic(dir + "/config.json", c.dump());
    try {
      ScenesModel::load(dir);
      FAIL("no error; expected one mentioning " << part);
    } catch (const ModelError& e) {
      const std::string msg = e.one_line();
      CHECK_MESSAGE(msg.find(part) != std::string::npos, msg << "\n   lacks: " << part);
    }
  };
  Json c = cfg;
  c["d_model"] = cfg["d_model"].get<int>() + 8;  // every tensor is then mis-shaped
  expect(c, "expected");
  c = cfg;
  c["architecture"] = "blip-caption";
  expect(c, "xmodal-scenes");
  c = cfg;
  c["grid_size"] = 5;
  expect(c, "grid_size");
  c = cfg;
  c["vocab_size"] = cfg["vocab_size"].get<int>() + 1;
  expect(c, "vocab_size");
  c = cfg;
  c.erase("special_ids");
  expect(c, "special_ids");
  std::error_code ec;
  fs::remove_all(dir, ec);
  CHECK_THROWS_AS(ScenesModel::load(kRoot + "/no/such/model"), ModelError);
}
