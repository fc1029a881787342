// The scenes model (pipeline/scenes_model) against PyTorch (training/scenes_model.py):
// resize, encoder memory, teacher-forced logits (all at once and step by step through the KV
// cache) to 1e-4, and greedy ids exactly, for both tasks, on the shipped model and the committed
// sample scenes. Fixture: tests/fixtures/scenes_model (training/make_scenes_fixtures.py).
// Also: greedy_decode's stopping rules, and load errors. Batching (encoder and decoder; rows of
// different prompt lengths) against PyTorch and against one sequence at a time, beam search
// against an independent PyTorch implementation, attention maps against PyTorch's weights,
// streaming, determinism, and the Vlm request checks.
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
#include "pipeline/vlm.hpp"

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

// ------------------------------------------------------------------ batching, beams, maps

namespace {

struct RefSeq {
  size_t sample;
  std::string tag;                 // "s0.cap", "s1.q2"
  std::vector<int> prompt, gen;    // gen: greedy ids without eos
  std::string question;            // empty for captions
};
std::vector<RefSeq> ref_sequences() {
  std::vector<RefSeq> out;
  const auto& samples = fixture().ref.at("samples");
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const std::string t = "s" + std::to_string(i);
    out.push_back({i, t + ".cap", ints(s.at("caption").at("prompt")), ints(s.at("caption").at("ids")), ""});
    const auto& qs = s.at("questions");
    for (size_t j = 0; j < qs.size(); ++j)
      out.push_back({i, t + ".q" + std::to_string(j), ints(qs[j].at("prompt")), ints(qs[j].at("ids")),
                     qs[j].at("question").get<std::string>()});
  }
  return out;
}

std::vector<Image> sample_images() {
  std::vector<Image> v;
  for (const auto& s : fixture().ref.at("samples")) v.push_back(load_image(kRoot + "/" + s.at("file").get<std::string>()));
  return v;
}

double maxdiff_span(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

const Vlm& vlm() {
  static std::unique_ptr<Vlm> v = open_vlm(kModel);
  return *v;
}

}  // namespace

TEST_CASE("batched image encoding equals one image at a time") {
  const ScenesModel& m = model();
  const auto images = sample_images();
  const auto batched = m.prepare_images(images);
  REQUIRE(batched.size() == images.size());
  double d = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto one = m.prepare_image(images[i]);
    for (size_t l = 0; l < one.cross.size(); ++l) {
      d = std::max(d, maxdiff(batched[i].cross[l].k, one.cross[l].k));
      d = std::max(d, maxdiff(batched[i].cross[l].v, one.cross[l].v));
    }
  }
  MESSAGE("max |cross K/V diff| batched vs single: " << d);
  CHECK(d <= 1e-5);
}

TEST_CASE("batched decoding: mixed prompt lengths and images, vs PyTorch and vs one sequence at a time") {
  const ScenesModel& m = model();
  const Fixture& f = fixture();
  const auto images = sample_images();
  const auto mems = m.prepare_images(images);
  const auto seqs = ref_sequences();
  const int64_t V = m.config().vocab_size;
  std::vector<const ScenesModel::ImageMemory*> rows;
  std::vector<std::vector<int>> prompts;
  for (const auto& s : seqs) {
    rows.push_back(&mems[s.sample]);
    prompts.push_back(s.prompt);
  }
  // one sequence at a time, as the reference for "batched == single"
  std::vector<ScenesModel::Sequence> singles;
  for (const auto& s : seqs) singles.push_back(m.start(mems[s.sample]));
  auto batch = m.start_batch(rows);
  // prefill every prompt at once (all positions), then one teacher-forced id per row per step,
  // rows dropping out when their reference sequence ends
  Tensor pre = m.step_batch(batch, {}, prompts, /*all_positions=*/true);
  double d_ref = 0, d_single = 0;
  int64_t at = 0;
  for (size_t r = 0; r < seqs.size(); ++r) {
    const int64_t T = static_cast<int64_t>(seqs[r].prompt.size());
    const Tensor ref = f.st.view(seqs[r].tag + ".logits");
    d_ref = std::max(d_ref, maxdiff_span(pre.f32() + at * V, ref.contiguous().f32(), T * V));
    Tensor one = m.step(singles[r], seqs[r].prompt);
    d_single = std::max(d_single, maxdiff_span(pre.f32() + at * V, one.f32(), T * V));
    at += T;
  }
  std::vector<size_t> active(seqs.size());
  for (size_t r = 0; r < seqs.size(); ++r) active[r] = r;
  int steps = 0;
  for (size_t t = 0;; ++t) {
    std::vector<int> parents;
    std::vector<std::vector<int>> ids;
    std::vector<size_t> next;
    for (size_t k = 0; k < active.size(); ++k)
      if (t < seqs[active[k]].gen.size()) {
        parents.push_back(static_cast<int>(k));
        ids.push_back({seqs[active[k]].gen[t]});
        next.push_back(active[k]);
      }
    if (next.empty()) break;
    active = next;
    Tensor l = m.step_batch(batch, parents, ids);  // [R, V]
    REQUIRE(l.size(0) == static_cast<int64_t>(active.size()));
    ++steps;
    for (size_t k = 0; k < active.size(); ++k) {
      const RefSeq& s = seqs[active[k]];
      const int64_t pos = static_cast<int64_t>(s.prompt.size() + t);
      const Tensor ref = f.st.view(s.tag + ".logits").select(0, pos).contiguous();
      d_ref = std::max(d_ref, maxdiff_span(l.f32() + static_cast<int64_t>(k) * V, ref.f32(), V));
      Tensor one = m.step(singles[active[k]], {s.gen[t]});
      d_single = std::max(d_single, maxdiff_span(l.f32() + static_cast<int64_t>(k) * V, one.f32(), V));
    }
  }
  MESSAGE(seqs.size() << " rows, " << steps << " batched steps: max |logit diff| vs PyTorch " << d_ref << ", vs one at a time "
                      << d_single);
  CHECK(steps >= 3);
  CHECK(d_ref <= 1e-4);
  CHECK(d_single <= 1e-4);
  CHECK_THROWS_AS(m.step_batch(batch, {99}, {{1}}), InternalError);
}

TEST_CASE("Vlm: caption_batch and answer_batch equal one-at-a-time results and the PyTorch greedy ids") {
  const Vlm& v = vlm();
  const auto images = sample_images();
  const auto enc = v.encode(images);
  REQUIRE(enc.size() == images.size());
  std::vector<const Vlm::Encoded*> ptrs;
  for (const auto& e : enc) ptrs.push_back(e.get());
  VlmRequest req;
  const auto caps = v.caption_batch(ptrs, req);
  const auto& samples = fixture().ref.at("samples");
  double d_score = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto enc1 = v.encode({images[i]});
    const VlmResult one = v.caption(*enc1[0], req);
    CHECK(caps[i].ids == one.ids);
    CHECK(caps[i].text == one.text);
    d_score = std::max(d_score, std::fabs(caps[i].score - one.score));
    CHECK(std::vector<int>(caps[i].ids.begin(), caps[i].ids.end()) == ints(samples[i].at("caption").at("ids")));
    CHECK(caps[i].text == samples[i].at("caption").at("text").get<std::string>());
    CHECK(caps[i].tokens.size() == caps[i].ids.size());
  }
  // every question of every sample in one batch (prompts of 5 to 10 tokens)
  std::vector<const Vlm::Encoded*> qimg;
  std::vector<std::string> qs;
  std::vector<std::vector<int>> want;
  for (const auto& s : ref_sequences())
    if (!s.question.empty()) {
      qimg.push_back(ptrs[s.sample]);
      qs.push_back(s.question);
      want.push_back(s.gen);
    }
  const auto ans = v.answer_batch(qimg, qs, req);
  REQUIRE(ans.size() == qs.size());
  for (size_t k = 0; k < qs.size(); ++k) {
    CAPTURE(qs[k]);
    const VlmResult one = v.answer(*qimg[k], qs[k], req);
    CHECK(ans[k].ids == one.ids);
    CHECK(ans[k].text == one.text);
    d_score = std::max(d_score, std::fabs(ans[k].score - one.score));
    CHECK(std::vector<int>(ans[k].ids.begin(), ans[k].ids.end()) == want[k]);
  }
  // a long --max-len: each row stops at what its own prompt leaves of max_len, as it would alone
  VlmRequest longer;
  longer.max_length = static_cast<int>(model().config().max_len);
  longer.min_length = 12;  // forces long answers, so the per-row limits bind
  const std::vector<const Vlm::Encoded*> qi(qimg.begin(), qimg.begin() + 6);
  const std::vector<std::string> qq(qs.begin(), qs.begin() + 6);
  const auto ans2 = v.answer_batch(qi, qq, longer);
  for (size_t k = 0; k < qq.size(); ++k) {
    const VlmResult one = v.answer(*qi[k], qq[k], longer);
    CHECK(ans2[k].ids == one.ids);
    CHECK(ans2[k].ids.size() >= 12);
    CHECK(static_cast<int64_t>(ans2[k].ids.size() + model().vqa_prompt(qq[k]).size()) <= model().config().max_len);
    d_score = std::max(d_score, std::fabs(ans2[k].score - one.score));
  }
  MESSAGE("max |score diff| batched vs single: " << d_score);
  CHECK(d_score <= 1e-4);
}

TEST_CASE("beam search on the scenes model: PyTorch reference, width 1 is greedy, batched equals single") {
  const ScenesModel& m = model();
  const Vlm& v = vlm();
  const auto images = sample_images();
  const auto enc = v.encode(images);
  std::vector<const Vlm::Encoded*> ptrs;
  for (const auto& e : enc) ptrs.push_back(e.get());
  const auto& samples = fixture().ref.at("samples");
  const size_t n_beam_refs = samples[0].at("caption").at("beam").size();
  REQUIRE(n_beam_refs >= 2);
  int differs_from_greedy = 0;
  for (size_t b = 0; b < n_beam_refs; ++b) {
    VlmRequest req;
    req.num_beams = samples[0].at("caption").at("beam")[b].at("num_beams").get<int>();
    req.length_penalty = samples[0].at("caption").at("beam")[b].at("length_penalty").get<float>();
    CAPTURE(req.num_beams);
    const auto res = v.caption_batch(ptrs, req);
    for (size_t i = 0; i < images.size(); ++i) {
      CAPTURE(i);
      const auto& ref = samples[i].at("caption").at("beam")[b];
      CHECK(std::vector<int>(res[i].ids.begin(), res[i].ids.end()) == ints(ref.at("ids")));
      CHECK(res[i].score == doctest::Approx(ref.at("score").get<double>()).epsilon(1e-4));
      const VlmResult one = v.caption(*ptrs[i], req);
      CHECK(one.ids == res[i].ids);
      CHECK(one.score == doctest::Approx(res[i].score).epsilon(1e-5));
      differs_from_greedy += ints(ref.at("ids")) != ints(samples[i].at("caption").at("ids"));
    }
  }
  // (informative only: whether beams beat greedy depends on the model; test_decoding proves it
  // on a toy model)
  MESSAGE(differs_from_greedy << " beam references differ from the greedy caption");
  // width 1 == greedy, on each caption and first question (decoding.hpp beam_search over step_batch)
  const auto mems = m.prepare_images(images);
  for (const auto& s : ref_sequences()) {
    if (s.tag.find(".q") != std::string::npos && s.tag.find(".q0") == std::string::npos) continue;
    auto batch = m.start_batch({&mems[s.sample]});
    BeamOptions o;
    o.num_beams = 1;
    o.eos_id = m.config().eos_id;
    o.banned = m.banned_ids();
    o.max_new_tokens = s.question.empty() ? static_cast<int>(m.config().max_len - 3) : ScenesModel::kMaxAnswerTokens;
    const BeamResult br = beam_search(
        [&](const std::vector<int>& parents, const std::vector<std::vector<int>>& ids) {
          return m.step_batch(batch, parents, ids);
        },
        s.prompt, o);
    CHECK_MESSAGE(br.ids == s.gen, s.tag);
    CHECK(br.ids == m.generate(mems[s.sample], s.prompt, o.max_new_tokens).ids);
  }
}

TEST_CASE("attention maps match PyTorch's cross-attention weights (layer and head selection)") {
  const ScenesModel& m = model();
  const Vlm& v = vlm();
  const Fixture& f = fixture();
  const auto images = sample_images();
  const auto enc = v.encode(images);
  std::vector<const Vlm::Encoded*> ptrs;
  for (const auto& e : enc) ptrs.push_back(e.get());
  const int64_t G = v.map_grid(), N = G * G, H = m.config().n_heads, nl = m.config().n_dec_layers;
  REQUIRE(G == m.config().grid);
  // ref [n_dec, H, L, N]: the map of generated id t is position prompt_len - 1 + t
  auto ref_map = [&](const Tensor& ref, int64_t layer, int64_t head, int64_t pos) {
    const int64_t L = ref.size(2);
    std::vector<float> out(static_cast<size_t>(N), 0.f);
    for (int64_t h = 0; h < H; ++h) {
      if (head >= 0 && h != head) continue;
      const float* p = ref.f32() + ((layer * H + h) * L + pos) * N;
      for (int64_t n = 0; n < N; ++n) out[static_cast<size_t>(n)] += head >= 0 ? p[n] : p[n] / static_cast<float>(H);
    }
    return out;
  };
  double d = 0, d_sum = 0;
  size_t maps_checked = 0;
  for (const auto& [layer, head] : std::vector<std::pair<int, int>>{{-1, -1}, {0, 2}, {1, -1}}) {
    VlmRequest req;
    req.attention_maps = true;
    req.map_layer = layer;
    req.map_head = head;
    const auto caps = v.caption_batch(ptrs, req);
    for (size_t i = 0; i < images.size(); ++i) {
      const Tensor ref = f.st.view("s" + std::to_string(i) + ".cap.cross_attn").contiguous();
      REQUIRE(ref.shape() == Shape{nl, H, ref.size(2), N});
      REQUIRE(caps[i].attention.size() == caps[i].ids.size());
      for (size_t t = 0; t < caps[i].attention.size(); ++t) {
        const auto want = ref_map(ref, layer < 0 ? nl - 1 : layer, head, 2 + static_cast<int64_t>(t));
        REQUIRE(caps[i].attention[t].size() == static_cast<size_t>(N));
        d = std::max(d, maxdiff_span(caps[i].attention[t].data(), want.data(), N));
        double s = 0;
        for (float x : caps[i].attention[t]) s += x;
        d_sum = std::max(d_sum, std::fabs(s - 1.0));
        ++maps_checked;
      }
    }
  }
  // an answer's maps (s0, question 0: prompt of p tokens)
  {
    const auto& q0 = f.ref.at("samples")[0].at("questions")[0];
    VlmRequest req;
    req.attention_maps = true;
    const VlmResult a = v.answer(*ptrs[0], q0.at("question").get<std::string>(), req);
    const Tensor ref = f.st.view("s0.q0.cross_attn").contiguous();
    const int64_t p = static_cast<int64_t>(q0.at("prompt").size());
    REQUIRE(a.attention.size() == a.ids.size());
    REQUIRE(!a.attention.empty());
    for (size_t t = 0; t < a.attention.size(); ++t) {
      const auto want = ref_map(ref, nl - 1, -1, p - 1 + static_cast<int64_t>(t));
      d = std::max(d, maxdiff_span(a.attention[t].data(), want.data(), N));
      ++maps_checked;
    }
  }
  MESSAGE(maps_checked << " maps: max |weight diff| vs PyTorch " << d << ", max |sum - 1| " << d_sum);
  CHECK(d <= 1e-4);
  CHECK(d_sum <= 1e-4);
  // beam search keeps each hypothesis's own maps: the winner's maps equal a greedy-free
  // teacher-forced recomputation, i.e. the maps of the same ids decoded again
  VlmRequest breq;
  breq.attention_maps = true;
  breq.num_beams = 3;
  const VlmResult br = v.caption(*ptrs[1], breq);
  REQUIRE(br.attention.size() == br.ids.size());
  const auto mems = m.prepare_images({images[1]});
  auto batch = m.start_batch({&mems[0]});
  std::vector<int> feed = m.caption_prompt();
  double d_beam = 0;
  for (size_t t = 0; t < br.ids.size(); ++t) {
    Tensor mp;
    ScenesModel::MapSpec spec;
    m.step_batch(batch, {}, {feed}, false, &spec, &mp);
    d_beam = std::max(d_beam, maxdiff_span(mp.f32(), br.attention[t].data(), N));
    feed = {br.ids[t]};
  }
  MESSAGE("beam maps vs teacher-forced maps of the same ids: " << d_beam);
  CHECK(d_beam <= 1e-5);
}

TEST_CASE("streaming pieces concatenate to the final text; beam search emits the text at the end") {
  const Vlm& v = vlm();
  const auto images = sample_images();
  const auto enc = v.encode(images);
  std::vector<const Vlm::Encoded*> ptrs;
  for (const auto& e : enc) ptrs.push_back(e.get());
  for (int beams : {1, 3}) {
    CAPTURE(beams);
    std::vector<std::string> got(ptrs.size());
    std::vector<int> calls(ptrs.size(), 0);
    VlmRequest req;
    req.num_beams = beams;
    req.on_token = [&](size_t i, const std::string& piece) {
      REQUIRE(i < got.size());
      CHECK_FALSE(piece.empty());
      got[i] += piece;
      ++calls[i];
    };
    const auto res = v.caption_batch(ptrs, req);
    for (size_t i = 0; i < ptrs.size(); ++i) {
      CHECK(got[i] == res[i].text);
      if (beams == 1) {
        CHECK(calls[i] >= 2);  // word by word, not all at the end
        CHECK(calls[i] <= static_cast<int>(res[i].ids.size()));
      } else {
        CHECK(calls[i] == 1);
      }
    }
  }
}

TEST_CASE("deterministic: the same request twice gives identical ids, scores and maps") {
  const Vlm& v = vlm();
  const auto all = sample_images();
  const std::vector<Image> images(all.begin(), all.begin() + 2);
  const auto enc = v.encode(images);
  const auto enc2 = v.encode(images);
  std::vector<const Vlm::Encoded*> p1, p2;
  for (size_t i = 0; i < enc.size(); ++i) {
    p1.push_back(enc[i].get());
    p2.push_back(enc2[i].get());
  }
  for (int beams : {1, 3}) {
    VlmRequest req;
    req.num_beams = beams;
    req.attention_maps = true;
    const auto a = v.caption_batch(p1, req), b = v.caption_batch(p2, req);
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].ids == b[i].ids);
      CHECK(a[i].score == b[i].score);  // bit for bit
      CHECK(a[i].attention == b[i].attention);
    }
  }
}

TEST_CASE("Vlm request errors on the scenes model are UsageErrors") {
  const Vlm& v = vlm();
  const auto enc = v.encode({sample_images()[0]});
  auto expect = [&](VlmRequest r, const std::string& part) {
    try {
      v.caption(*enc[0], r);
      FAIL("no error; expected one mentioning " << part);
    } catch (const UsageError& e) {
      CHECK_MESSAGE(std::string(e.what()).find(part) != std::string::npos, e.what());
    }
  };
  VlmRequest r;
  r.map_layer = static_cast<int>(model().config().n_dec_layers);
  expect(r, "layer");
  r = {};
  r.map_head = static_cast<int>(model().config().n_heads);
  expect(r, "head");
  r = {};
  r.num_beams = 0;
  expect(r, "beam");
  r = {};
  r.prompt = "a picture of";
  expect(r, "prompt");
  r = {};
  r.min_length = 5;  // supported: at least 5 ids before eos
  r.max_length = 6;
  const VlmResult res = v.caption(*enc[0], r);
  CHECK(res.ids.size() >= 5);
  CHECK(res.ids.size() <= 6);
}
