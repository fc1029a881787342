// BLIP parity against training/blip_reference.py (our PyTorch re-implementation of HF BLIP), on
// the tiny random checkpoints in tests/fixtures/blip/{caption,vqa} that carry the real Hugging Face
// tensor names and config layout (made by training/make_blip_fixtures.py).
// Tolerances: pixel values, vision states, question states and logits within 1e-4 (absolute);
// greedy, beam and rank results exactly.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/onednn.hpp"
#include "core/safetensors.hpp"
#include "encoders/image.hpp"
#include "pipeline/blip.hpp"
#include "pipeline/vlm.hpp"

using namespace xmodal;
using json = nlohmann::json;
namespace fs = std::filesystem;

static const std::string kDir = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/blip/";

static json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return json::parse(f);
}

// Tiny models: one thread avoids OpenMP start-up and oversubscription stalls on a busy machine.
struct OneThread {
  OneThread() { set_num_threads(1); }
};
static OneThread one_thread;

static std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

// Compares two f32 tensors of the same shape; prints the max difference.
static float check_close(const Tensor& got, const Tensor& want, float tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << shape_str(got.shape()) << " vs "
                                                    << shape_str(want.shape()));
  const float d = max_abs_diff(got, want);
  MESSAGE(what << ": max |diff| = " << d);
  CHECK_MESSAGE(d <= tol, what << ": max |diff| " << d << " > " << tol);
  return d;
}

static Tensor add_batch(const Tensor& t) {
  Shape s = t.shape();
  s.insert(s.begin(), 1);
  return t.contiguous().reshape(s);
}

TEST_CASE("blip caption: config, preprocessing, vision, logits and decoding match the reference") {
  const SafetensorsFile dump = SafetensorsFile::open(kDir + "caption_dump.safetensors");
  const json d = read_json(kDir + "caption_dump.json");
  blip::Model m = blip::Model::load(kDir + "caption");
  const blip::Config& c = m.config();
  CHECK(c.architecture == "blip-caption");
  CHECK_FALSE(m.is_vqa());
  CHECK(c.vision.hidden == 48);
  CHECK(c.vision.grid() == 4);
  CHECK(c.text.hidden == 32);
  CHECK(c.text.bos == m.tokenizer().id("[DEC]"));
  CHECK(c.text.sep == 102);
  CHECK(c.source == "preprocessor_config.json");
  CHECK(c.pre.resample == Resample::bicubic);

  // Preprocessing: PNG -> 32x32 bicubic (downscale, antialiased) -> CLIP normalisation.
  Tensor pixels = m.preprocess(load_image(kDir + d["image"].get<std::string>()));
  check_close(pixels, dump.to_f32("pixel_values"), 1e-4f, "pixel values");

  // Vision from the reference's pixels, so this does not depend on the resize.
  Tensor states = m.encode_image(add_batch(dump.to_f32("pixel_values")));
  check_close(states, add_batch(dump.to_f32("vision_states")), 1e-4f, "vision states");

  // Full-sequence decoder logits (the separate decoder weight is used, not the embeddings).
  check_close(m.decoder_logits(ids_of(d["greedy_ids"]), states), dump.to_f32("logits"), 1e-4f, "logits");
  check_close(m.decoder_logits(ids_of(d["prompt_greedy_ids"]), states), dump.to_f32("logits_prompt"), 1e-4f,
              "logits with prompt");

  blip::GenerateOptions o;
  blip::Generation g = m.caption(states, "", o);
  CHECK(g.ids == ids_of(d["greedy_ids"]));
  CHECK(g.ids.back() == 102);  // stopped at [SEP] by itself
  CHECK(g.text == d["greedy_text"].get<std::string>());
  CHECK(g.prompt_length == 1);

  g = m.caption(states, d["prompt"].get<std::string>(), o);
  CHECK(g.ids == ids_of(d["prompt_greedy_ids"]));
  CHECK(g.prompt_length == 4);
  CHECK(g.text == d["prompt_text_stripped"].get<std::string>());

  o.max_length = 6;
  o.min_length = 6;
  CHECK(m.caption(states, "", o).ids == ids_of(d["min6_max6_ids"]));

  blip::GenerateOptions b;
  b.num_beams = 3;
  g = m.caption(states, "", b);
  CHECK(g.ids == ids_of(d["beam3_ids"]));
  CHECK(g.text == d["beam3_text"].get<std::string>());
  b.min_length = 5;
  CHECK(m.caption(states, "", b).ids == ids_of(d["beam3_min5_ids"]));
  b = {};
  b.num_beams = 4;
  b.max_length = 12;
  b.length_penalty = 0.5f;
  CHECK(m.caption(states, "", b).ids == ids_of(d["beam4_max12_lp05_ids"]));
}

TEST_CASE("blip vqa: question encoder, answer decoder, [ENC] switch, beam and rank match the reference") {
  const SafetensorsFile dump = SafetensorsFile::open(kDir + "vqa_dump.safetensors");
  const json d = read_json(kDir + "vqa_dump.json");
  blip::Model m = blip::Model::load(kDir + "vqa");
  CHECK(m.is_vqa());
  CHECK(m.config().architecture == "blip-vqa");

  Tensor states = m.encode_image(add_batch(dump.to_f32("pixel_values")));
  check_close(states, add_batch(dump.to_f32("vision_states")), 1e-4f, "vision states");

  const std::string q = d["question"];
  const auto q_cls = m.question_ids(q, false);
  const auto q_enc = m.question_ids(q, true);
  CHECK(q_cls == ids_of(d["question_ids_cls"]));
  CHECK(q_enc == ids_of(d["question_ids_enc"]));
  Tensor qs = m.encode_question(q_cls, states);
  check_close(qs, add_batch(dump.to_f32("question_states")), 1e-4f, "question states ([CLS])");
  Tensor qs_enc = m.encode_question(q_enc, states);
  check_close(qs_enc, add_batch(dump.to_f32("question_states_enc")), 1e-4f, "question states ([ENC])");

  // The tied LM head (no decoder.weight in this checkpoint) reads the word embeddings.
  check_close(m.decoder_logits(ids_of(d["greedy_ids"]), qs), dump.to_f32("answer_logits"), 1e-4f, "answer logits");

  blip::GenerateOptions o;
  blip::Generation g = m.answer(qs, o);
  CHECK(g.ids == ids_of(d["greedy_ids"]));
  CHECK(g.text == d["greedy_text"].get<std::string>());
  CHECK(m.answer(qs_enc, o).ids == ids_of(d["greedy_ids_enc"]));
  o.num_beams = 3;
  o.max_length = 10;
  CHECK(m.answer(qs, o).ids == ids_of(d["beam3_max10_ids"]));

  std::vector<std::vector<int32_t>> answers;
  for (const auto& a : d["answers"]) answers.push_back(m.answer_ids(a.get<std::string>()));
  CHECK(answers == d["answer_ids"].get<std::vector<std::vector<int32_t>>>());
  for (const char* key : {"rank_k5", "rank_all"}) {
    const json& r = d[key];
    blip::RankResult rr = m.rank(qs, answers, std::string(key) == "rank_k5" ? 5 : 128);
    CHECK(rr.best == r["best"].get<int>());
    CHECK(rr.candidates == r["candidates"].get<std::vector<int>>());
    const auto want = r["logliks"].get<std::vector<double>>();
    REQUIRE(rr.logliks.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(rr.logliks[i] - want[i]));
    MESSAGE(std::string(key) << ": max |loglik diff| = " << worst);
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("blip: attention maps are distributions over the patch grid") {
  blip::LoadOptions lo;
  lo.attention_maps = true;
  blip::Model m = blip::Model::load(kDir + "caption", lo);
  const SafetensorsFile dump = SafetensorsFile::open(kDir + "caption_dump.safetensors");
  Tensor states = m.encode_image(add_batch(dump.to_f32("pixel_values")));
  blip::GenerateOptions o;
  o.attention_maps = true;
  blip::Generation g = m.caption(states, "", o);
  const json d = read_json(kDir + "caption_dump.json");
  CHECK(g.ids == ids_of(d["greedy_ids"]));  // maps do not change the result
  REQUIRE(g.attention.size() == g.ids.size() - 1);
  for (const auto& a : g.attention) {
    REQUIRE(a.size() == 16);  // 4x4 grid
    double s = 0;
    for (float v : a) {
      CHECK(v >= 0.f);
      s += v;
    }
    CHECK(std::abs(s - 1.0) < 1e-5);
  }
  // Beam search carries the maps of the chosen hypothesis.
  o.num_beams = 3;
  g = m.caption(states, "", o);
  CHECK(g.attention.size() == g.ids.size() - 1);
}

TEST_CASE("blip: the oneDNN attention composition gives the same results as the fused kernel") {
  blip::LoadOptions lo;
  lo.attention = blip::Attention::onednn;
  blip::Model m = blip::Model::load(kDir + "caption", lo);
  const SafetensorsFile dump = SafetensorsFile::open(kDir + "caption_dump.safetensors");
  const json d = read_json(kDir + "caption_dump.json");
  Tensor states = m.encode_image(add_batch(dump.to_f32("pixel_values")));
  check_close(states, add_batch(dump.to_f32("vision_states")), 1e-4f, "vision states (oneDNN attention)");
  check_close(m.decoder_logits(ids_of(d["greedy_ids"]), states), dump.to_f32("logits"), 1e-4f, "logits (oneDNN attention)");
  CHECK(m.caption(states, "", {}).ids == ids_of(d["greedy_ids"]));
  blip::GenerateOptions b;
  b.num_beams = 3;
  CHECK(m.caption(states, "", b).ids == ids_of(d["beam3_ids"]));
  blip::Model v = blip::Model::load(kDir + "vqa", lo);
  const SafetensorsFile vdump = SafetensorsFile::open(kDir + "vqa_dump.safetensors");
  const json vd = read_json(kDir + "vqa_dump.json");
  Tensor vs = v.encode_image(add_batch(vdump.to_f32("pixel_values")));
  Tensor qs = v.encode_question(ids_of(vd["question_ids_cls"]), vs);
  check_close(qs, add_batch(vdump.to_f32("question_states")), 1e-4f, "question states (oneDNN attention)");
  CHECK(v.answer(qs, {}).ids == ids_of(vd["greedy_ids"]));
}

TEST_CASE("blip: bf16 weights stay close to f32") {
  blip::LoadOptions lo;
  lo.weight_dtype = DType::bf16;
  blip::Model m = blip::Model::load(kDir + "caption", lo);
  const SafetensorsFile dump = SafetensorsFile::open(kDir + "caption_dump.safetensors");
  const json d = read_json(kDir + "caption_dump.json");
  Tensor states = m.encode_image(add_batch(dump.to_f32("pixel_values")));
  const float dv = max_abs_diff(states, add_batch(dump.to_f32("vision_states")));
  const float dl = max_abs_diff(m.decoder_logits(ids_of(d["greedy_ids"]), states), dump.to_f32("logits"));
  MESSAGE("bf16: vision max |diff| " << dv << ", logits max |diff| " << dl);
  CHECK(dv < 0.2f);
  CHECK(dl < 1.0f);
  CHECK(dv > 0.f);  // it really ran in bf16
}

// ---- load errors on damaged copies of the fixture ----

struct TempModel {
  fs::path dir;
  explicit TempModel(const std::string& name) {
    dir = fs::temp_directory_path() / ("xmodal_blip_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"config.json", "preprocessor_config.json", "vocab.txt", "model.safetensors"})
      fs::copy_file(kDir + "caption/" + f, dir / f);
  }
  ~TempModel() { fs::remove_all(dir); }
  // Rewrites model.safetensors through edit(tensors).
  template <class F>
  void edit_weights(F edit) {
    std::map<std::string, Tensor> t;
    {
      SafetensorsFile f = SafetensorsFile::open((dir / "model.safetensors").string());
      for (const auto& e : f.entries()) t[e.name] = f.view(e.name).clone();
    }
    edit(t);
    save_safetensors((dir / "model.safetensors").string(), t);
  }
};

static std::string load_error(const fs::path& dir) {
  try {
    blip::Model::load(dir.string());
  } catch (const ModelError& e) {
    return e.one_line();
  }
  return "(no error)";
}

TEST_CASE("blip: load errors name the tensor, the shapes, and the file") {
  {
    TempModel t("missing");
    t.edit_weights([](auto& w) { w.erase("text_decoder.bert.encoder.layer.1.crossattention.self.key.weight"); });
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("text_decoder.bert.encoder.layer.1.crossattention.self.key.weight") != std::string::npos);
  }
  {
    TempModel t("shape");
    t.edit_weights([](auto& w) { w["vision_model.post_layernorm.weight"] = Tensor::zeros({47}); });
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("vision_model.post_layernorm.weight") != std::string::npos);
    CHECK(e.find("47") != std::string::npos);
    CHECK(e.find("48") != std::string::npos);
  }
  {
    TempModel t("extra");
    t.edit_weights([](auto& w) { w["text_decoder.bert.encoder.layer.9.output.dense.weight"] = Tensor::zeros({2, 2}); });
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("text_decoder.bert.encoder.layer.9.output.dense.weight") != std::string::npos);
  }
  {
    TempModel t("novocab");
    fs::remove(t.dir / "vocab.txt");
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("vocab.txt") != std::string::npos);
  }
  {
    TempModel t("badsize");
    std::ofstream(t.dir / "preprocessor_config.json") << R"({"size": {"height": 64, "width": 64}})";
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("preprocessor_config.json") != std::string::npos);
    CHECK(e.find("64") != std::string::npos);
  }
  {
    TempModel t("noprep");  // without preprocessor_config.json: config.json's image size, CLIP defaults
    fs::remove(t.dir / "preprocessor_config.json");
    blip::Model m = blip::Model::load(t.dir.string());
    CHECK(m.config().source == "config.json");
    CHECK(m.config().pre.height == 32);
    CHECK(m.config().pre.mean[0] == doctest::Approx(0.48145466f));
  }
  {
    TempModel t("act");
    json cfg = read_json((t.dir / "config.json").string());
    cfg["text_config"]["hidden_act"] = "relu";
    std::ofstream(t.dir / "config.json") << cfg.dump();
    const std::string e = load_error(t.dir);
    INFO(e);
    CHECK(e.find("text_config.hidden_act") != std::string::npos);
  }
}

TEST_CASE("blip: strip_prompt") {
  CHECK(blip::strip_prompt("a picture of a dog", "a picture of") == "a dog");
  CHECK(blip::strip_prompt("a picture of", "a picture of") == "");
  CHECK(blip::strip_prompt("a picture offer", "a picture of") == "a picture offer");
  CHECK(blip::strip_prompt("something else", "a picture of") == "something else");
  CHECK(blip::strip_prompt("a dog", "") == "a dog");
}

TEST_CASE("vlm: open_vlm dispatches on the architecture; BLIP through the common interface") {
  const json cd = read_json(kDir + "caption_dump.json");
  const json vd = read_json(kDir + "vqa_dump.json");
  const Image img = load_image(kDir + "image.png");

  VlmLoadOptions lo;
  lo.attention_maps = true;
  auto cap = open_vlm(kDir + "caption", lo);
  CHECK(cap->architecture() == "blip-caption");
  CHECK(cap->can_caption());
  CHECK_FALSE(cap->can_answer());
  CHECK(cap->map_grid() == 4);
  double enc_ms = -1;
  auto enc = cap->encode({img, img}, &enc_ms);  // one batch of two
  REQUIRE(enc.size() == 2);
  CHECK(enc_ms >= 0);
  VlmRequest req;
  VlmResult r0 = cap->caption(*enc[0], req), r1 = cap->caption(*enc[1], req);
  CHECK(r0.ids == ids_of(cd["greedy_ids"]));  // image.png through our preprocessing = the reference's pixels
  CHECK(r1.ids == r0.ids);
  CHECK(r0.text == cd["greedy_text"].get<std::string>());
  req.attention_maps = true;
  req.num_beams = 3;
  VlmResult rb = cap->caption(*enc[0], req);
  CHECK(rb.ids == ids_of(cd["beam3_ids"]));
  CHECK(rb.attention.size() == rb.ids.size() - 1);
  req = {};
  req.prompt = cd["prompt"].get<std::string>();
  CHECK(cap->caption(*enc[0], req).text == cd["prompt_text_stripped"].get<std::string>());
  CHECK_THROWS_AS(cap->answer(*enc[0], "what?", {}), UsageError);
  CHECK_THROWS_AS(cap->answer_set({"yes"}), UsageError);

  auto vqa = open_vlm(kDir + "vqa");
  CHECK(vqa->architecture() == "blip-vqa");
  CHECK(vqa->can_answer());
  CHECK(vqa->can_rank());
  CHECK(vqa->map_grid() == 0);
  auto venc = vqa->encode({img});
  VlmRequest q;
  VlmResult a = vqa->answer(*venc[0], vd["question"].get<std::string>(), q);
  CHECK(a.ids == ids_of(vd["greedy_ids"]));
  CHECK(a.text == vd["greedy_text"].get<std::string>());
  q.enc_first = true;
  CHECK(vqa->answer(*venc[0], vd["question"].get<std::string>(), q).ids == ids_of(vd["greedy_ids_enc"]));
  auto set = vqa->answer_set(vd["answers"].get<std::vector<std::string>>());
  VlmResult rk = vqa->rank(*venc[0], vd["question"].get<std::string>(), *set, 5, {});
  CHECK(rk.text == vd["rank_k5"]["best_answer"].get<std::string>());
  CHECK_THROWS_AS(vqa->caption(*venc[0], {}), UsageError);
  CHECK_THROWS_AS(vqa->caption(*enc[0], {}), UsageError);

  try {
    open_vlm(std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/models/tiny");
    FAIL("no error for a model that cannot caption");
  } catch (const ModelError& e) {
    CHECK(std::string(e.what()).find("xmodal-test") != std::string::npos);
  }
}
