// bench_blip: full-size BLIP-base (random weights with the real names and shapes of
// Salesforce/blip-image-captioning-base and blip-vqa-base) in xmodal (f32 and bf16) against the
// PyTorch reference (training/blip_reference.py via training/blip_bench.py, OpenBLAS), each in its
// own process so that peak memory is per implementation.
//
// Measured per implementation: load, preprocessing (640x480 PNG -> 384x384), vision encoding,
// a 20-token caption (20 ids after [DEC], [SEP] suppressed so every run decodes the same
// length), VQA with a 10-token answer (vision + question encoder + decoder), peak RSS (VmHWM).
// Validation comes first: the xmodal child compares its pixel values, vision states, question
// states and teacher-forced logits with the PyTorch dump, and its greedy ids with PyTorch's.
//
// usage: bench_blip [--threads 2] [--runs 3] [--tokens 20] [--answer-tokens 10]
//                   [--dir /tmp/xmodal_bench_blip] [--python /usr/bin/python3] [--no-baseline]
// The first run writes the two checkpoints (about 1 GB and 1.5 GB) under --dir; later runs reuse
// them. Children: bench_blip --child caption|vqa --dtype f32|bf16 [--check ref.safetensors] ...
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/onednn.hpp"
#include "core/safetensors.hpp"
#include "encoders/image.hpp"
#include "pipeline/blip.hpp"

using namespace xmodal;
using json = nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  int threads = 2, runs = 3, tokens = 20, answer_tokens = 10;
  std::string dir = "/tmp/xmodal_bench_blip";
  std::string python = "/usr/bin/python3";
  bool baseline = true;
  std::string child, dtype = "f32", check;
};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double proc_status_mb(const char* key) {  // VmHWM / VmRSS in MB
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key) + 1)) / 1024.0;
  return 0;
}

// ------------------------------------------------------------------ random full-size models

struct Rng {  // xorshift64* + Box-Muller
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  double uniform() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<double>((s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
  }
  float normal() {
    const double u = std::max(uniform(), 1e-300), v = uniform();
    return static_cast<float>(std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v));
  }
};

class Writer {
 public:
  explicit Writer(uint64_t seed) : rng_(seed) {}
  std::map<std::string, Tensor> t;
  Tensor randn(const Shape& s, float scale) {
    Tensor x = Tensor::empty(s);
    float* p = x.f32();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = rng_.normal() * scale;
    return x;
  }
  void lin(const std::string& n, int64_t out, int64_t in) {
    t[n + ".weight"] = randn({out, in}, 1.f / std::sqrt(static_cast<float>(in)));
    t[n + ".bias"] = randn({out}, 0.02f);
  }
  void ln(const std::string& n, int64_t d) {
    Tensor g = randn({d}, 0.05f);
    for (int64_t i = 0; i < d; ++i) g.f32()[i] += 1.f;
    t[n + ".weight"] = g;
    t[n + ".bias"] = randn({d}, 0.02f);
  }
  void bert(const std::string& p, int64_t D, int64_t I, int64_t L, int64_t V, int64_t P, int64_t mem) {
    t[p + "embeddings.word_embeddings.weight"] = randn({V, D}, 0.5f);
    t[p + "embeddings.position_embeddings.weight"] = randn({P, D}, 0.5f);
    ln(p + "embeddings.LayerNorm", D);
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = p + "encoder.layer." + std::to_string(i) + ".";
      for (auto [a, kv] : {std::pair{"attention", D}, {"crossattention", mem}}) {
        lin(q + a + ".self.query", D, D);
        lin(q + a + ".self.key", D, kv);
        lin(q + a + ".self.value", D, kv);
        lin(q + a + ".output.dense", D, D);
        ln(q + a + ".output.LayerNorm", D);
      }
      lin(q + "intermediate.dense", I, D);
      lin(q + "output.dense", D, I);
      ln(q + "output.LayerNorm", D);
    }
  }

 private:
  Rng rng_;
};

json text_config() {
  return {{"attention_probs_dropout_prob", 0.0}, {"bos_token_id", 30522}, {"eos_token_id", 2},
          {"hidden_act", "gelu"}, {"hidden_size", 768}, {"initializer_range", 0.02},
          {"intermediate_size", 3072}, {"is_decoder", true}, {"layer_norm_eps", 1e-12},
          {"max_length", 20}, {"max_position_embeddings", 512}, {"model_type", "blip_text_model"},
          {"num_attention_heads", 12}, {"num_hidden_layers", 12}, {"pad_token_id", 0},
          {"sep_token_id", 102}, {"vocab_size", 30524}, {"encoder_hidden_size", 768}};
}
json vision_config() {
  return {{"hidden_act", "gelu"}, {"hidden_size", 768}, {"image_size", 384}, {"intermediate_size", 3072},
          {"layer_norm_eps", 1e-5}, {"model_type", "blip_vision_model"}, {"num_attention_heads", 12},
          {"num_channels", 3}, {"num_hidden_layers", 12}, {"patch_size", 16}};
}

// Writes DIR/{config.json, preprocessor_config.json, vocab.txt, model.safetensors} for
// BlipForConditionalGeneration (vqa=false) or BlipForQuestionAnswering (vqa=true).
void write_model(const std::string& dir, bool vqa) {
  fs::create_directories(dir);
  const int64_t D = 768, I = 3072, L = 12, V = 30524, P = 512, N = 577;
  Writer w(vqa ? 2 : 1);
  w.t["vision_model.embeddings.class_embedding"] = w.randn({1, 1, D}, 0.5f);
  w.t["vision_model.embeddings.patch_embedding.weight"] = w.randn({D, 3, 16, 16}, 1.f / std::sqrt(768.f));
  w.t["vision_model.embeddings.patch_embedding.bias"] = w.randn({D}, 0.02f);
  w.t["vision_model.embeddings.position_embedding"] = w.randn({1, N, D}, 0.5f);
  for (int64_t i = 0; i < L; ++i) {
    const std::string q = "vision_model.encoder.layers." + std::to_string(i) + ".";
    w.ln(q + "layer_norm1", D);
    w.lin(q + "self_attn.qkv", 3 * D, D);
    w.lin(q + "self_attn.projection", D, D);
    w.ln(q + "layer_norm2", D);
    w.lin(q + "mlp.fc1", I, D);
    w.lin(q + "mlp.fc2", D, I);
  }
  w.ln("vision_model.post_layernorm", D);
  if (vqa) w.bert("text_encoder.", D, I, L, V, P, D);
  w.bert("text_decoder.bert.", D, I, L, V, P, D);
  w.lin("text_decoder.cls.predictions.transform.dense", D, D);
  w.ln("text_decoder.cls.predictions.transform.LayerNorm", D);
  w.t["text_decoder.cls.predictions.bias"] = w.randn({V}, 0.02f);
  if (!vqa) {  // blip-image-captioning-base stores the decoder weight; blip-vqa-base: tied
    w.t["text_decoder.cls.predictions.decoder.weight"] = w.t["text_decoder.bert.embeddings.word_embeddings.weight"].clone();
    w.t["text_decoder.cls.predictions.decoder.bias"] = w.t["text_decoder.cls.predictions.bias"].clone();
  }
  json cfg = {{"architectures", {vqa ? "BlipForQuestionAnswering" : "BlipForConditionalGeneration"}},
              {"model_type", "blip"}, {"projection_dim", 512}, {"image_text_hidden_size", 256},
              {"text_config", text_config()}, {"vision_config", vision_config()}};
  write_file_atomic(dir + "/config.json", cfg.dump(2));
  json pre = {{"do_normalize", true}, {"do_resize", true}, {"do_rescale", true}, {"do_convert_rgb", true},
              {"image_mean", {0.48145466, 0.4578275, 0.40821073}}, {"image_std", {0.26862954, 0.26130258, 0.27577711}},
              {"resample", 3}, {"rescale_factor", 1.0 / 255.0}, {"size", {{"height", 384}, {"width", 384}}},
              {"image_processor_type", "BlipImageProcessor"}};
  write_file_atomic(dir + "/preprocessor_config.json", pre.dump(2));
  std::string vocab = "[PAD]\n";  // the real special ids; filler tokens elsewhere (30522 lines)
  for (int i = 0; i < 99; ++i) {
    vocab += "[unused";
    vocab += std::to_string(i);
    vocab += "]\n";
  }
  vocab += "[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  const char* words[] = {"what", "is", "the", "man", "holding", "in", "his", "hand", "?", "a", "picture", "of"};
  for (const char* s : words) {
    vocab += s;
    vocab += '\n';
  }
  for (int i = 104 + 12; i < 30522; ++i) {
    vocab += 'w';
    vocab += std::to_string(i);
    vocab += '\n';
  }
  write_file_atomic(dir + "/vocab.txt", vocab);
  save_safetensors(dir + "/model.safetensors", w.t, {{"format", "pt"}});
}

void write_image(const std::string& path) {
  Image im(640, 480);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin(x / 23.0) * std::cos(y / 17.0));
      p[1] = static_cast<uint8_t>((x * 7 + y * 3) % 256);
      p[2] = static_cast<uint8_t>(((x / 40 + y / 40) % 2) ? 220 : 30);
    }
  save_image(im, path);
}

// --------------------------------------------------------------------------------- children

int run_child(const Args& a) {
  set_num_threads(a.threads);
  const bool vqa = a.child == "vqa";
  const std::string model_dir = a.dir + (vqa ? "/blip-vqa-base" : "/blip-image-captioning-base");
  blip::LoadOptions lo;
  lo.weight_dtype = a.dtype == "bf16" ? DType::bf16 : DType::f32;
  auto t0 = Clock::now();
  blip::Model m = blip::Model::load(model_dir, lo);
  const double load_ms = ms_since(t0);
  const double rss_after_load = proc_status_mb("VmRSS:");
  const std::string question = "what is the man holding in his hand?";
  blip::GenerateOptions go;
  go.max_length = go.min_length = 1 + (vqa ? a.answer_tokens : a.tokens);
  json res = {{"impl", std::string("xmodal-") + a.dtype}, {"task", a.child}, {"threads", a.threads},
              {"load_ms", load_ms}, {"rss_after_load_mb", rss_after_load}};

  // Validation against the PyTorch dump (same weights, same image).
  if (!a.check.empty()) {
    SafetensorsFile ref = SafetensorsFile::open(a.check);
    auto rel = [](const Tensor& got, const Tensor& want) {
      float mx = 0;
      for (int64_t i = 0; i < want.numel(); ++i) mx = std::max(mx, std::abs(want.f32()[i]));
      return max_abs_diff(got, want) / std::max(mx, 1e-6f);
    };
    Tensor pixels = m.preprocess(load_image(a.dir + "/image.png"));
    res["check_pixels_max_abs"] = max_abs_diff(pixels, ref.to_f32("pixel_values"));
    Tensor rp = ref.to_f32("pixel_values").contiguous();
    Tensor states = m.encode_image(rp.reshape({1, 3, rp.size(1), rp.size(2)}));
    Tensor rv = ref.to_f32("vision_states");
    res["check_vision_rel"] = rel(states.reshape(rv.shape()), rv);
    Tensor mem = states;
    if (vqa) {
      mem = m.encode_question(m.question_ids(question, false), states);
      Tensor rq = ref.to_f32("question_states");
      res["check_question_rel"] = rel(mem.reshape(rq.shape()), rq);
    }
    Tensor rid = ref.view("ids");
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < rid.numel(); ++i) ids.push_back(static_cast<int32_t>(rid.data<int64_t>()[i]));
    Tensor lg = m.decoder_logits(ids, mem);
    res["check_logits_max_abs"] = max_abs_diff(lg, ref.to_f32("logits"));
    blip::Generation g = vqa ? m.answer(mem, go) : m.caption(mem, "", go);
    res["check_ids_equal"] = g.ids == ids;
  }

  std::vector<double> pre, vis, txt, dec, tot;
  std::vector<int32_t> ids;
  for (int r = 0; r <= a.runs; ++r) {  // run 0 is the warm-up
    auto t = Clock::now();
    Tensor pixels = m.preprocess(load_image(a.dir + "/image.png"));
    const double t_pre = ms_since(t);
    t = Clock::now();
    Tensor states = m.encode_image(pixels);
    const double t_vis = ms_since(t);
    double t_txt = 0;
    Tensor mem = states;
    t = Clock::now();
    if (vqa) mem = m.encode_question(m.question_ids(question, false), states);
    t_txt = ms_since(t);
    t = Clock::now();
    blip::Generation g = vqa ? m.answer(mem, go) : m.caption(mem, "", go);
    const double t_dec = ms_since(t);
    ids = g.ids;
    if (r == 0) continue;
    pre.push_back(t_pre);
    vis.push_back(t_vis);
    txt.push_back(t_txt);
    dec.push_back(t_dec);
    tot.push_back(t_pre + t_vis + t_txt + t_dec);
  }
  res["preprocess_ms"] = median(pre);
  res["vision_ms"] = median(vis);
  res["text_ms"] = median(txt);
  res["decode_ms"] = median(dec);
  res["total_ms"] = median(tot);
  res["generated"] = static_cast<int>(ids.size()) - 1;
  res["ids"] = ids;
  res["peak_rss_mb"] = proc_status_mb("VmHWM:");
  std::cout << res.dump() << std::endl;
  return 0;
}

// ---------------------------------------------------------------------------------- parent

json run_json(const std::string& cmd) {
  std::cerr << "bench_blip: " << cmd << "\n";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw InternalError("cannot run: " + cmd);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  if (st != 0) throw InternalError("failed (status " + std::to_string(st) + "): " + cmd);
  const size_t nl = out.find_last_of('{');
  if (nl == std::string::npos) throw InternalError("no JSON from: " + cmd);
  return json::parse(out.substr(nl));
}

std::string fmt(double v, int prec = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

int run_parent(const Args& a, const std::string& self) {
  fs::create_directories(a.dir);
  for (auto [sub, vqa] : {std::pair{"/blip-image-captioning-base", false}, {"/blip-vqa-base", true}}) {
    const std::string d = a.dir + sub;
    if (!fs::exists(d + "/model.safetensors")) {
      std::cerr << "bench_blip: writing random full-size " << sub + 1 << " to " << d << "\n";
      write_model(d, vqa);
    }
  }
  if (!fs::exists(a.dir + "/image.png")) write_image(a.dir + "/image.png");
  const std::string root = XMODAL_SOURCE_DIR;
  const std::string common = " --threads " + std::to_string(a.threads) + " --runs " + std::to_string(a.runs);
  std::vector<json> rows;
  for (const std::string task : {"caption", "vqa"}) {
    const bool vqa = task == "vqa";
    const int toks = vqa ? a.answer_tokens : a.tokens;
    const std::string model = a.dir + (vqa ? "/blip-vqa-base" : "/blip-image-captioning-base");
    const std::string dump = a.dir + "/ref_" + task + ".safetensors";
    bool have_ref = false;
    if (a.baseline) {
      const std::string env = "OMP_NUM_THREADS=" + std::to_string(a.threads) +
                              " OPENBLAS_NUM_THREADS=" + std::to_string(a.threads) + " ";
      rows.push_back(run_json(env + a.python + " " + root + "/training/blip_bench.py --model " + model + " --task " +
                              task + " --image " + a.dir + "/image.png --tokens " + std::to_string(toks) + common +
                              " --dump " + dump));
      have_ref = true;
    }
    for (const char* dt : {"f32", "bf16"})
      rows.push_back(run_json(self + " --child " + task + " --dtype " + dt + " --dir " + a.dir + common +
                              " --tokens " + std::to_string(a.tokens) + " --answer-tokens " +
                              std::to_string(a.answer_tokens) + (have_ref ? " --check " + dump : "")));
  }
  // Validation first.
  std::cout << "## Validation (xmodal vs the PyTorch reference, same random full-size weights)\n\n";
  for (const json& r : rows) {
    if (!r.contains("check_vision_rel")) continue;
    std::cout << "- " << r["task"].get<std::string>() << " " << r["impl"].get<std::string>()
              << ": pixels max|diff| " << fmt(r["check_pixels_max_abs"].get<double>(), 6) << ", vision states rel "
              << fmt(r["check_vision_rel"].get<double>(), 7);
    if (r.contains("check_question_rel")) std::cout << ", question states rel " << fmt(r["check_question_rel"].get<double>(), 7);
    std::cout << ", teacher-forced logits max|diff| " << fmt(r["check_logits_max_abs"].get<double>(), 5)
              << ", greedy ids " << (r["check_ids_equal"].get<bool>() ? "equal" : "DIFFER") << "\n";
  }
  std::cout << "\n## Timings (median of " << a.runs << " runs after a warm-up, " << a.threads
            << " threads; ms)\n\n"
            << "| task | impl | preprocess | vision | question | decode | total | x PyTorch | peak RSS MB | x PyTorch | load ms |\n"
            << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const json& r : rows) {
    const json* base = nullptr;
    for (const json& b : rows)
      if (b["task"] == r["task"] && b["impl"] == "pytorch") base = &b;
    const double tot = r["total_ms"].get<double>(), rss = r["peak_rss_mb"].get<double>();
    std::cout << "| " << r["task"].get<std::string>() << " (" << r["generated"].get<int>() << " tokens) | "
              << r["impl"].get<std::string>() << " | " << fmt(r["preprocess_ms"].get<double>()) << " | "
              << fmt(r["vision_ms"].get<double>()) << " | " << fmt(r["text_ms"].get<double>()) << " | "
              << fmt(r["decode_ms"].get<double>()) << " | " << fmt(tot) << " | "
              << (base ? fmt(tot / (*base)["total_ms"].get<double>(), 3) : "-") << " | " << fmt(rss, 0) << " | "
              << (base ? fmt(rss / (*base)["peak_rss_mb"].get<double>(), 3) : "-") << " | "
              << fmt(r["load_ms"].get<double>(), 0) << " |\n";
  }
  std::cout << "\nbf16 effect on ids (vs xmodal f32):";
  for (const json& r : rows)
    if (r["impl"] == "xmodal-bf16")
      for (const json& f : rows)
        if (f["task"] == r["task"] && f["impl"] == "xmodal-f32") {
          const auto a_ids = r["ids"].get<std::vector<int>>(), b_ids = f["ids"].get<std::vector<int>>();
          size_t same = 0;
          while (same < a_ids.size() && same < b_ids.size() && a_ids[same] == b_ids[same]) ++same;
          std::cout << " " << r["task"].get<std::string>() << ": " << (a_ids == b_ids ? "identical" : "first difference at position " + std::to_string(same)) << ";";
        }
  std::cout << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(k + " needs a value");
        return argv[++i];
      };
      if (k == "--threads") a.threads = std::stoi(val());
      else if (k == "--runs") a.runs = std::stoi(val());
      else if (k == "--tokens") a.tokens = std::stoi(val());
      else if (k == "--answer-tokens") a.answer_tokens = std::stoi(val());
      else if (k == "--dir") a.dir = val();
      else if (k == "--python") a.python = val();
      else if (k == "--no-baseline") a.baseline = false;
      else if (k == "--child") a.child = val();
      else if (k == "--dtype") a.dtype = val();
      else if (k == "--check") a.check = val();
      else if (k == "--help" || k == "-h") {
        std::cout << "usage: bench_blip [--threads 2] [--runs 3] [--tokens 20] [--answer-tokens 10] "
                     "[--dir /tmp/xmodal_bench_blip] [--python /usr/bin/python3] [--no-baseline]\n";
        return 0;
      } else {
        throw UsageError("unknown option " + k);
      }
    }
    if (!a.child.empty()) return run_child(a);
    return run_parent(a, fs::canonical("/proc/self/exe").string());
  } catch (const Error& e) {
    std::cerr << e.one_line() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "bench_blip: " << e.what() << "\n";
    return 1;
  }
}
