// BLIP runs of xmodal caption / vqa / eval (see apps/blip_cli.hpp), through pipeline/vlm.hpp.
#include "apps/blip_cli.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "apps/progress.hpp"
#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/image.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"
#include "pipeline/vlm.hpp"

namespace xmodal::app {

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
double round3(double x) { return std::round(x * 1000.0) / 1000.0; }

// ---------------------------------------------------------------------------------- options

struct Opts {
  std::string model;
  bool bf16 = false;
  int batch = 8;
  int beams = 1, max_length = 20, min_length = 0;
  float length_penalty = 1.0f;
  bool as_json = false, timings = false;
};

po::options_description model_options(Opts& o) {
  po::options_description d("Model (a Hugging Face BLIP checkpoint directory, see docs/blip.md)");
  d.add_options()
    ("model,m", po::value(&o.model)->default_value(""), "BLIP model directory (config.json, model.safetensors, vocab.txt)")
    ("bf16", po::bool_switch(&o.bf16), "bf16 weights (faster, half the memory; ids may change, see docs/blip.md)")
    ("batch", po::value(&o.batch)->default_value(8), "images per vision-encoder batch");
  return d;
}

po::options_description decode_options(Opts& o, int default_max) {
  po::options_description d("Decoding");
  o.max_length = default_max;
  d.add_options()
    ("beams", po::value(&o.beams)->default_value(1), "beam width (1 = greedy)")
    ("max-length", po::value(&o.max_length)->default_value(default_max),
     "longest sequence in tokens, counting [DEC] and any prompt (Hugging Face max_length)")
    ("min-length", po::value(&o.min_length)->default_value(0), "shortest sequence before [SEP] may end it")
    ("length-penalty", po::value(&o.length_penalty)->default_value(1.0f, "1.0"),
     "beam score = sum log p / length^penalty");
  return d;
}

void check_opts(const Opts& o) {
  if (o.model.empty()) throw UsageError("--model DIR is required", "--model");
  if (o.batch < 1 || o.batch > 256) throw UsageError("--batch must be 1 .. 256, got " + std::to_string(o.batch), "--batch");
  if (o.beams < 1 || o.beams > 64) throw UsageError("--beams must be 1 .. 64, got " + std::to_string(o.beams), "--beams");
  if (o.max_length < 2 || o.max_length > 512)
    throw UsageError("--max-length must be 2 .. 512, got " + std::to_string(o.max_length), "--max-length");
  if (o.min_length < 0 || o.min_length > o.max_length)
    throw UsageError("--min-length must be 0 .. --max-length, got " + std::to_string(o.min_length), "--min-length");
  if (!(o.length_penalty > -10 && o.length_penalty < 10))
    throw UsageError("--length-penalty must be in (-10, 10)", "--length-penalty");
}

VlmRequest request(const Opts& o) {
  VlmRequest r;
  r.max_length = o.max_length;
  r.min_length = o.min_length;
  r.num_beams = o.beams;
  r.length_penalty = o.length_penalty;
  return r;
}

std::unique_ptr<Vlm> open_blip(const Opts& o, bool maps, double* load_ms) {
  const auto t0 = Clock::now();
  VlmLoadOptions lo;
  lo.weight_dtype = o.bf16 ? DType::bf16 : DType::f32;
  lo.attention_maps = maps;
  auto m = open_vlm(o.model, lo);
  if (load_ms) *load_ms = ms_since(t0);
  verbose("model: " + o.model + " (" + m->architecture() + (o.bf16 ? ", bf16" : ", f32") + ")");
  return m;
}

int first_token_enc(const std::string& s) {
  if (s == "cls") return 0;
  if (s == "enc") return 1;
  throw UsageError("--first-token must be cls or enc, got '" + s + "'", "--first-token");
}

// One answer per line, or a JSON array of strings (BLIP's answer_list.json).
std::vector<std::string> read_answer_list(const std::string& path) {
  const std::string text = read_file(path, 64ull << 20);
  std::vector<std::string> out;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    Json j;
    try {
      j = Json::parse(text);
    } catch (const Json::exception& e) {
      throw InputError(path, std::string("not valid JSON: ") + e.what());
    }
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_string()) throw InputError(path, "element " + std::to_string(i) + " is not a string");
      out.push_back(j[i].get<std::string>());
    }
  } else {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      std::string line = text.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(line);
      start = nl + 1;
    }
  }
  if (out.empty()) throw InputError(path, "the answer list is empty");
  return out;
}

// ------------------------------------------------------------------------- attention maps

std::string safe_token(const std::string& t) {
  std::string s;
  for (unsigned char c : t)
    if (std::isalnum(c)) s += static_cast<char>(c);
  return s.empty() ? "tok" : s.substr(0, 24);
}

// The image (shrunk to at most 512 px) with the map, stretched over it as the model's input is,
// blended in red. map: grid x grid, row-major.
void write_overlay(const Image& image, const std::vector<float>& map, int64_t grid, const std::string& path) {
  const double s = std::min(1.0, 512.0 / std::max(image.width, image.height));
  const int w = std::max(1, static_cast<int>(std::lround(image.width * s)));
  const int h = std::max(1, static_cast<int>(std::lround(image.height * s)));
  Image out = (w == image.width && h == image.height) ? image : resize(image, w, h, Resample::bilinear);
  const float mx = std::max(1e-12f, *std::max_element(map.begin(), map.end()));
  const double G = static_cast<double>(grid);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double gx = std::clamp((x + 0.5) * G / w - 0.5, 0.0, G - 1), gy = std::clamp((y + 0.5) * G / h - 0.5, 0.0, G - 1);
      const int x0 = static_cast<int>(gx), y0 = static_cast<int>(gy);
      const int x1 = std::min<int>(x0 + 1, static_cast<int>(grid) - 1), y1 = std::min<int>(y0 + 1, static_cast<int>(grid) - 1);
      const double fx = gx - x0, fy = gy - y0;
      auto at = [&](int yy, int xx) { return static_cast<double>(map[static_cast<size_t>(yy * grid + xx)]); };
      const double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
      const double a = 0.7 * v / mx;
      uint8_t* p = out.at(x, y);
      p[0] = static_cast<uint8_t>(std::lround((1 - a) * p[0] + a * 255));
      p[1] = static_cast<uint8_t>(std::lround((1 - a) * p[1]));
      p[2] = static_cast<uint8_t>(std::lround((1 - a) * p[2]));
    }
  save_image(out, path);
}

// --------------------------------------------------------------------------------- caption

const char* kModelHelp =
    "BLIP checkpoints: download Salesforce/blip-image-captioning-base or Salesforce/blip-vqa-base\n"
    "elsewhere (docs/blip.md) and pass the directory with --model.";

}  // namespace

bool wants_blip(const std::vector<std::string>& args) {
  std::string model;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--model" || a == "-m") && i + 1 < args.size()) model = args[i + 1];
    else if (a.rfind("--model=", 0) == 0) model = a.substr(8);
    else if (a.rfind("-m", 0) == 0 && a.size() > 2 && a[2] != '-') model = a.substr(2);
  }
  if (model.empty()) {
    const char* env = std::getenv("XMODAL_MODEL_DIR");
    if (!env || !*env) return false;
    model = env;
  }
  try {
    const Json j = Json::parse(read_file(model + "/config.json", 16 << 20));
    if (j.contains("architecture") && j["architecture"].is_string()) {
      const std::string a = j["architecture"];
      return a == "blip-caption" || a == "blip-vqa";
    }
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string()) {
      const std::string a = j["architectures"][0];
      return a == "BlipForConditionalGeneration" || a == "BlipForQuestionAnswering";
    }
  } catch (...) {
  }
  return false;
}

int run_blip_caption(const std::vector<std::string>& args) {
  Common c;
  Opts o;
  std::vector<std::string> images;
  std::string prompt, maps_dir;
  po::options_description opts("Options");
  opts.add_options()
    ("image", po::value(&images)->multitoken(), "image file(s); also positional")
    ("prompt", po::value(&prompt)->default_value(""), "text the caption continues, e.g. \"a picture of\" (stripped from the output)")
    ("attention-maps", po::value(&maps_dir)->default_value(""),
     "write DIR/<image>.<k>.<word>.png: each word's cross-attention over the patch grid, blended on the image")
    ("json", po::bool_switch(&o.as_json), "print a JSON array of {image, caption, ids, score, ms[, attention]}")
    ("timings", po::bool_switch(&o.timings), "print per-stage times to stderr");
  opts.add(model_options(o)).add(decode_options(o, 20)).add(common_options(c));
  po::positional_options_description pos;
  pos.add("image", -1);
  parse("caption", args, opts, pos, c);
  if (c.help) {
    print_help("caption", "--model BLIP_DIR [options] IMAGE...",
               std::string("Captions images with a BLIP captioning checkpoint (BlipForConditionalGeneration):\n"
                           "batched vision encoder, cross-attention K/V projected once per image, KV-cached\n"
                           "decoding from [DEC] to [SEP], greedy or beam search. One caption per line (IMAGE<TAB>\n"
                           "caption with several images).\n") + kModelHelp,
               opts,
               "  xmodal caption --model blip-image-captioning-base photo.jpg\n"
               "  xmodal caption --model blip-image-captioning-base --prompt \"a picture of\" --beams 3 *.jpg\n"
               "  xmodal caption --model blip-image-captioning-base --json --attention-maps maps/ photo.jpg\n");
    return 0;
  }
  check_opts(o);
  if (images.empty()) throw UsageError("at least one IMAGE is required (see xmodal caption --help)", "IMAGE");
  const bool maps = !maps_dir.empty();
  double load_ms = 0;
  auto m = open_blip(o, maps, &load_ms);
  if (!m->can_caption())
    throw UsageError(o.model + " is a " + m->architecture() + " model: it answers questions (xmodal vqa), it does not caption",
                     "--model");
  if (maps) fs::create_directories(maps_dir);
  if (o.timings) std::cerr << "timings: load " << round3(load_ms) << " ms\n";
  VlmRequest req = request(o);
  req.prompt = prompt;
  req.attention_maps = maps;
  Json out = Json::array();
  for (size_t b0 = 0; b0 < images.size(); b0 += static_cast<size_t>(o.batch)) {
    const size_t b1 = std::min(images.size(), b0 + static_cast<size_t>(o.batch));
    std::vector<Image> batch;
    auto t0 = Clock::now();
    for (size_t i = b0; i < b1; ++i) batch.push_back(load_image(images[i]));
    const double read_ms = ms_since(t0);
    double enc_ms = 0;
    auto enc = m->encode(batch, &enc_ms);
    for (size_t i = b0; i < b1; ++i) {
      const VlmResult r = m->caption(*enc[i - b0], req);
      const double n = static_cast<double>(b1 - b0);
      const int generated = static_cast<int>(r.ids.size()) - 1;
      if (o.timings)
        std::cerr << "timings: " << images[i] << ": read " << round3(read_ms / n) << " ms, preprocess+vision "
                  << round3(enc_ms / n) << " ms (batch of " << (b1 - b0) << "), decode " << round3(r.decode_ms)
                  << " ms (" << generated << " ids)\n";
      if (maps) {
        const std::string stem = fs::path(images[i]).stem().string();
        const size_t first = r.tokens.size() - r.attention.size();  // maps cover the generated ids
        for (size_t k = 0; k < r.attention.size(); ++k) {
          char idx[24];
          std::snprintf(idx, sizeof idx, "%02zu", k);
          write_overlay(batch[i - b0], r.attention[k], m->map_grid(),
                        maps_dir + "/" + stem + "." + idx + "." + safe_token(r.tokens[first + k]) + ".png");
        }
      }
      if (o.as_json) {
        Json j = {{"image", images[i]}, {"caption", r.text}, {"ids", r.ids}, {"tokens", r.tokens}, {"score", r.score},
                  {"ms", {{"read", read_ms / n}, {"encode", enc_ms / n}, {"decode", r.decode_ms}}}};
        if (maps) {
          j["attention_grid"] = m->map_grid();
          j["attention"] = r.attention;
        }
        out.push_back(std::move(j));
      } else if (images.size() == 1) {
        std::cout << r.text << "\n";
      } else {
        std::cout << images[i] << "\t" << r.text << "\n";
      }
    }
  }
  if (o.as_json) std::cout << out.dump(2) << "\n";
  return 0;
}

// ------------------------------------------------------------------------------------- vqa

int run_blip_vqa(const std::vector<std::string>& args) {
  Common c;
  Opts o;
  std::vector<std::string> positional;
  std::string first = "cls", answer_list;
  int rank_k = 128;
  po::options_description opts("Options");
  opts.add_options()
    ("args", po::value(&positional)->multitoken(), "IMAGE QUESTION [QUESTION...] (positional)")
    ("first-token", po::value(&first)->default_value("cls"),
     "first question token: cls (Hugging Face) or enc (the original BLIP's [ENC])")
    ("answer-list", po::value(&answer_list)->default_value(""),
     "rank this fixed list (one answer per line, or a JSON array) instead of generating")
    ("rank-k", po::value(&rank_k)->default_value(128), "with --answer-list: candidates kept by first-token probability")
    ("json", po::bool_switch(&o.as_json), "print a JSON array of {question, answer, ids, score, ms}")
    ("timings", po::bool_switch(&o.timings), "print per-stage times to stderr");
  opts.add(model_options(o)).add(decode_options(o, 20)).add(common_options(c));
  po::positional_options_description pos;
  pos.add("args", -1);
  parse("vqa", args, opts, pos, c);
  if (c.help) {
    print_help("vqa", "--model BLIP_DIR [options] IMAGE QUESTION [QUESTION...]",
               std::string("Answers questions about one image with a BLIP VQA checkpoint (BlipForQuestionAnswering):\n"
                           "the image is encoded once, each question is encoded with cross-attention to it, and the\n"
                           "answer is decoded from [DEC] to [SEP] (greedy or beam), or picked from --answer-list.\n"
                           "One answer per line, in question order.\n") + kModelHelp,
               opts,
               "  xmodal vqa --model blip-vqa-base photo.jpg \"what is the man holding?\"\n"
               "  xmodal vqa --model blip-vqa-base --first-token enc photo.jpg \"how many dogs are there?\"\n"
               "  xmodal vqa --model blip-vqa-base --answer-list answers.txt photo.jpg \"what color is the car?\"\n");
    return 0;
  }
  check_opts(o);
  const bool enc_first = first_token_enc(first) == 1;
  if (rank_k < 1) throw UsageError("--rank-k must be >= 1, got " + std::to_string(rank_k), "--rank-k");
  if (positional.size() < 2)
    throw UsageError("expected IMAGE and at least one QUESTION (see xmodal vqa --help)", "QUESTION");
  const std::string path = positional[0];
  const std::vector<std::string> questions(positional.begin() + 1, positional.end());
  for (size_t i = 0; i < questions.size(); ++i)
    if (questions[i].find_first_not_of(" \t\r\n") == std::string::npos)
      throw InputError("question " + std::to_string(i + 1), "is empty");
  double load_ms = 0;
  auto m = open_blip(o, false, &load_ms);
  if (!m->can_answer())
    throw UsageError(o.model + " is a " + m->architecture() + " model: it captions (xmodal caption), it does not answer",
                     "--model");
  std::shared_ptr<const Vlm::AnswerSet> set;
  if (!answer_list.empty()) set = m->answer_set(read_answer_list(answer_list));
  if (o.timings) std::cerr << "timings: load " << round3(load_ms) << " ms\n";
  const Image img = load_image(path);
  double enc_ms = 0;
  auto enc = m->encode({img}, &enc_ms);
  if (o.timings) std::cerr << "timings: " << path << ": preprocess+vision " << round3(enc_ms) << " ms\n";
  VlmRequest req = request(o);
  req.enc_first = enc_first;
  Json out = Json::array();
  for (size_t i = 0; i < questions.size(); ++i) {
    const std::string src = "question " + std::to_string(i + 1);
    VlmResult r;
    try {
      r = set ? m->rank(*enc[0], questions[i], *set, rank_k, req) : m->answer(*enc[0], questions[i], req);
    } catch (const InputError& e) {
      throw InputError(src, e.what());
    }
    if (o.timings)
      std::cerr << "timings: " << src << ": question " << round3(r.text_ms) << " ms, " << (set ? "rank " : "decode ")
                << round3(r.decode_ms) << " ms\n";
    if (o.as_json)
      out.push_back({{"question", questions[i]}, {"answer", r.text}, {"ids", r.ids}, {"tokens", r.tokens}, {"score", r.score},
                     {"ms", {{"encode", enc_ms}, {"question", r.text_ms}, {"decode", r.decode_ms}}}});
    else
      std::cout << r.text << "\n";
  }
  if (o.as_json) std::cout << out.dump(2) << "\n";
  return 0;
}

// ------------------------------------------------------------------------------------ eval

namespace {

// image_id -> file name from DIR/captions.json (COCO "images").
std::unordered_map<int64_t, std::string> image_files(const std::string& dir) {
  const std::string caps = dir + "/captions.json";
  if (!data::regular_file_exists(caps))
    throw InputError(dir, "has no captions.json (COCO \"images\" with file names) to find the images of the questions");
  std::unordered_map<int64_t, std::string> m;
  for (const auto& im : data::read_coco_captions(caps).images) m[im.id] = im.file_name;
  return m;
}

Json pairs_json(const std::vector<std::pair<std::string, double>>& v) {
  Json j = Json::object();
  for (const auto& [k, x] : v) j[k] = x;
  return j;
}

}  // namespace

int run_blip_eval(const std::vector<std::string>& args) {
  Common c;
  Opts o;
  std::string dataset, task, results_out, summary_out, prompt, first = "cls", answer_list;
  int64_t limit = 0;
  int rank_k = 128;
  po::options_description opts("Options");
  opts.add_options()
    ("dataset,d", po::value(&dataset)->default_value(""),
     "dataset directory: images/ + captions.json (caption), plus questions.json + annotations.json (vqa)")
    ("task,t", po::value(&task)->default_value(""), "caption | vqa")
    ("results-out,o", po::value(&results_out)->default_value(""),
     "write the results file: COCO [{image_id, caption}] or VQA [{question_id, answer}]")
    ("summary-out", po::value(&summary_out)->default_value(""), "also write the summary JSON to this file")
    ("limit", po::value(&limit)->default_value(0), "evaluate only the first N images (0 = all)")
    ("prompt", po::value(&prompt)->default_value(""), "caption prompt (stripped), e.g. \"a picture of\"")
    ("first-token", po::value(&first)->default_value("cls"), "VQA: cls or enc")
    ("answer-list", po::value(&answer_list)->default_value(""), "VQA: rank this fixed answer list")
    ("rank-k", po::value(&rank_k)->default_value(128), "VQA with --answer-list: candidates kept");
  opts.add(model_options(o)).add(decode_options(o, 20)).add(common_options(c));
  po::positional_options_description pos;
  parse("eval", args, opts, pos, c);
  if (c.help) {
    print_help("eval", "--model BLIP_DIR --dataset DIR --task caption|vqa [options]",
               std::string("Captions every image or answers every question of a COCO / VQA-v2 style dataset with a\n"
                           "BLIP checkpoint (images batched through the vision encoder), then scores the results\n"
                           "(BLEU-1..4, ROUGE-L, CIDEr-D; or VQA accuracy per question and answer type). Prints one\n"
                           "JSON summary with the timings.\n") + kModelHelp,
               opts,
               "  xmodal eval --model blip-image-captioning-base --dataset coco-val --task caption --limit 500\n"
               "  xmodal eval --model blip-vqa-base --dataset vqa-val --task vqa --results-out results.json\n");
    return 0;
  }
  check_opts(o);
  if (dataset.empty()) throw UsageError("--dataset DIR is required (see xmodal eval --help)", "--dataset");
  if (task != "caption" && task != "vqa") throw UsageError("--task must be caption or vqa, got '" + task + "'", "--task");
  if (limit < 0) throw UsageError("--limit must be >= 0, got " + std::to_string(limit), "--limit");
  if (rank_k < 1) throw UsageError("--rank-k must be >= 1, got " + std::to_string(rank_k), "--rank-k");
  const bool enc_first = first_token_enc(first) == 1;
  double load_ms = 0;
  auto m = open_blip(o, false, &load_ms);
  if (task == "caption" && !m->can_caption())
    throw UsageError(o.model + " is a " + m->architecture() + " model; --task caption needs a blip-caption model", "--task");
  if (task == "vqa" && !m->can_answer())
    throw UsageError(o.model + " is a " + m->architecture() + " model; --task vqa needs a blip-vqa model", "--task");
  VlmRequest req = request(o);
  req.prompt = prompt;
  req.enc_first = enc_first;
  std::shared_ptr<const Vlm::AnswerSet> set;
  if (!answer_list.empty()) set = m->answer_set(read_answer_list(answer_list));

  Json j;
  double encode_ms = 0, decode_ms = 0, text_ms = 0;
  int64_t generated = 0;
  const auto t_all = Clock::now();
  const std::string cpath = dataset + "/captions.json";
  if (task == "caption") {
    const auto gt = data::read_coco_captions(cpath);
    std::vector<const data::CocoImage*> todo;
    for (const auto& im : gt.images)
      if (limit == 0 || static_cast<int64_t>(todo.size()) < limit) todo.push_back(&im);
    std::vector<data::CaptionResult> results;
    Progress progress("eval", static_cast<int64_t>(std::max<size_t>(todo.size(), 1)), "images", !c.quiet);
    for (size_t b0 = 0; b0 < todo.size(); b0 += static_cast<size_t>(o.batch)) {
      const size_t b1 = std::min(todo.size(), b0 + static_cast<size_t>(o.batch));
      std::vector<Image> batch;
      for (size_t i = b0; i < b1; ++i) batch.push_back(load_image(data::resolve_under_root(dataset + "/images", todo[i]->file_name, cpath)));
      double ems = 0;
      auto enc = m->encode(batch, &ems);
      encode_ms += ems;
      for (size_t i = b0; i < b1; ++i) {
        VlmResult r = m->caption(*enc[i - b0], req);
        decode_ms += r.decode_ms;
        generated += static_cast<int64_t>(r.ids.size()) - 1;
        results.push_back({todo[i]->id, r.text});
        progress.advance();
      }
    }
    progress.finish();
    if (!results_out.empty()) data::write_caption_results(results_out, results);
    data::check_caption_results(gt, results, results_out.empty() ? "results" : results_out);
    const auto s = metrics::score_captions(gt, results);
    j["task"] = "caption";
    j["images"] = results.size();
    j["bleu"] = {s.bleu[0], s.bleu[1], s.bleu[2], s.bleu[3]};
    j["bleu_4"] = s.bleu[3];
    j["rouge_l"] = s.rouge_l;
    j["cider_d"] = s.cider_d;
    j["ms_per_image_encode"] = results.empty() ? 0.0 : encode_ms / static_cast<double>(results.size());
    j["ms_per_caption_decode"] = results.empty() ? 0.0 : decode_ms / static_cast<double>(results.size());
  } else {
    const std::string qpath = dataset + "/questions.json", apath = dataset + "/annotations.json";
    const auto questions = data::read_vqa_questions(qpath);
    auto annotations = data::read_vqa_annotations(apath);
    data::check_vqa_annotations(questions, annotations, apath);
    const auto files = image_files(dataset);
    std::vector<int64_t> order;
    std::unordered_map<int64_t, std::vector<const data::VqaQuestion*>> by_image;
    for (const auto& q : questions) {
      auto [it, fresh] = by_image.try_emplace(q.image_id);
      if (fresh) {
        if (limit > 0 && static_cast<int64_t>(order.size()) >= limit) {
          by_image.erase(it);
          continue;
        }
        order.push_back(q.image_id);
      }
      it->second.push_back(&q);
    }
    std::vector<data::VqaResult> results;
    Progress progress("eval", static_cast<int64_t>(std::max<size_t>(order.size(), 1)), "images", !c.quiet);
    for (size_t b0 = 0; b0 < order.size(); b0 += static_cast<size_t>(o.batch)) {
      const size_t b1 = std::min(order.size(), b0 + static_cast<size_t>(o.batch));
      std::vector<Image> batch;
      for (size_t i = b0; i < b1; ++i) {
        auto f = files.find(order[i]);
        if (f == files.end())
          throw InputError(qpath, "image_id " + std::to_string(order[i]) + " is not in captions.json's images");
        batch.push_back(load_image(data::resolve_under_root(dataset + "/images", f->second, qpath)));
      }
      double ems = 0;
      auto enc = m->encode(batch, &ems);
      encode_ms += ems;
      for (size_t i = b0; i < b1; ++i) {
        for (const auto* q : by_image[order[i]]) {
          VlmResult r = set ? m->rank(*enc[i - b0], q->question, *set, rank_k, req) : m->answer(*enc[i - b0], q->question, req);
          text_ms += r.text_ms;
          decode_ms += r.decode_ms;
          generated += set ? 0 : static_cast<int64_t>(r.ids.size()) - 1;
          results.push_back({q->question_id, r.text});
        }
        progress.advance();
      }
    }
    progress.finish();
    if (!results_out.empty()) data::write_vqa_results(results_out, results);
    std::unordered_map<int64_t, bool> answered;
    for (const auto& r : results) answered[r.question_id] = true;
    std::vector<data::VqaAnnotation> scored;
    for (auto& a : annotations)
      if (answered.count(a.question_id)) scored.push_back(a);
    data::check_vqa_results(scored, results, results_out.empty() ? "results" : results_out);
    const auto s = metrics::score_vqa(scored, results);
    j["task"] = "vqa";
    j["images"] = order.size();
    j["questions"] = s.n_questions;
    j["accuracy"] = s.overall;
    j["per_question_type"] = pairs_json(s.per_question_type);
    j["per_answer_type"] = pairs_json(s.per_answer_type);
    j["mode"] = set ? "rank" : "generate";
    j["ms_per_image_encode"] = order.empty() ? 0.0 : encode_ms / static_cast<double>(order.size());
    j["ms_per_question"] = results.empty() ? 0.0 : (text_ms + decode_ms) / static_cast<double>(results.size());
  }
  j["seconds"] = std::chrono::duration<double>(Clock::now() - t_all).count();
  j["load_ms"] = load_ms;
  j["generated_ids"] = generated;
  j["model"] = o.model;
  j["architecture"] = m->architecture();
  j["weights"] = o.bf16 ? "bf16" : "f32";
  j["decoding"] = {{"beams", o.beams}, {"max_length", o.max_length}, {"min_length", o.min_length}};
  j["dataset"] = dataset;
  const std::string text = j.dump(2) + "\n";
  if (!summary_out.empty()) write_file_atomic(summary_out, text);
  std::cout << text;
  return 0;
}

}  // namespace xmodal::app
