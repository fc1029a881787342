// Shared pieces of xmodal caption / vqa / eval (see apps/vlm_cli.hpp).
#include "apps/vlm_cli.hpp"

#include <glob.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "pipeline/scenes_model.hpp"

namespace xmodal::app {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------- options

po::options_description model_options(ModelOpts& o) {
  po::options_description d("Model");
  d.add_options()
    ("model,m", po::value(&o.model)->default_value("", "built-in"),
     "model directory: the built-in scenes model (assets/models/scenes, or $XMODAL_MODEL_DIR) or a BLIP "
     "checkpoint (docs/blip.md)")
    ("bf16", po::bool_switch(&o.bf16), "bf16 weights (BLIP only; faster, half the memory)")
    ("batch", po::value(&o.batch)->default_value(8), "images per batch through the image encoder and the decoder");
  return d;
}

po::options_description decode_options(DecodeOpts& o, bool caption, bool vqa) {
  po::options_description d("Decoding");
  d.add_options()
    ("beam", po::value(&o.beam)->default_value(1), "beam width (1 = greedy)")
    ("length-penalty", po::value(&o.length_penalty)->default_value(1.0f, "1.0"),
     "beam search: score = sum log p / length^penalty")
    ("min-len", po::value(&o.min_len)->default_value(0), "shortest output before the end token may end it")
    ("max-len", po::value(&o.max_len)->default_value(0),
     "longest output, 0 = the model's default (BLIP: 20 tokens counting [DEC] and the prompt; scenes: "
     "new tokens)");
  if (caption)
    d.add_options()("prompt", po::value(&o.prompt)->default_value("", "none"),
                    "text the caption continues, e.g. \"a picture of\" (BLIP; stripped from the output)");
  if (vqa)
    d.add_options()("first-token", po::value(&o.first_token)->default_value("cls"),
                    "BLIP VQA: first question token, cls (Hugging Face) or enc (the original BLIP's [ENC])");
  return d;
}

po::options_description map_options(DecodeOpts& o) {
  po::options_description d("Attention maps");
  d.add_options()
    ("map-layer", po::value(&o.map_layer)->default_value(-1), "decoder layer of the maps (-1 = the model's default)")
    ("map-head", po::value(&o.map_head)->default_value(-1), "attention head (-1 = the mean over heads)");
  return d;
}

po::options_description alias_options() {
  po::options_description d("aliases");
  d.add_options()
    ("beams", po::value<int>(), "= --beam")
    ("max-length", po::value<int>(), "= --max-len")
    ("min-length", po::value<int>(), "= --min-len")
    ("attention-maps", po::value<std::string>(), "= --attention-map");
  return d;
}

void apply_aliases(const po::variables_map& vm, DecodeOpts& d, std::string* maps_dir) {
  if (vm.count("beams")) d.beam = vm["beams"].as<int>();
  if (vm.count("max-length")) d.max_len = vm["max-length"].as<int>();
  if (vm.count("min-length")) d.min_len = vm["min-length"].as<int>();
  if (vm.count("attention-maps") && maps_dir) *maps_dir = vm["attention-maps"].as<std::string>();
}

void check_options(const ModelOpts& m, const DecodeOpts& d) {
  if (m.batch < 1 || m.batch > 256) throw UsageError("--batch must be 1 .. 256, got " + std::to_string(m.batch), "--batch");
  if (d.beam < 1 || d.beam > 64) throw UsageError("--beam must be 1 .. 64, got " + std::to_string(d.beam), "--beam");
  if (d.max_len < 0 || d.max_len > 512)
    throw UsageError("--max-len must be 0 .. 512 (0 = the model's default), got " + std::to_string(d.max_len), "--max-len");
  if (d.min_len < 0 || (d.max_len > 0 && d.min_len > d.max_len))
    throw UsageError("--min-len must be 0 .. --max-len, got " + std::to_string(d.min_len), "--min-len");
  if (!(d.length_penalty > -10 && d.length_penalty < 10))
    throw UsageError("--length-penalty must be in (-10, 10)", "--length-penalty");
  if (d.first_token != "cls" && d.first_token != "enc")
    throw UsageError("--first-token must be cls or enc, got '" + d.first_token + "'", "--first-token");
  if (d.map_layer < -1) throw UsageError("--map-layer must be >= -1, got " + std::to_string(d.map_layer), "--map-layer");
  if (d.map_head < -1) throw UsageError("--map-head must be >= -1, got " + std::to_string(d.map_head), "--map-head");
}

VlmRequest make_request(const DecodeOpts& d, bool attention_maps) {
  VlmRequest r;
  r.max_length = d.max_len;
  r.min_length = d.min_len;
  r.num_beams = d.beam;
  r.length_penalty = d.length_penalty;
  r.prompt = d.prompt;
  r.enc_first = d.first_token == "enc";
  r.attention_maps = attention_maps;
  r.map_layer = d.map_layer;
  r.map_head = d.map_head;
  return r;
}

std::string model_dir(const ModelOpts& o) { return resolve_scenes_model_dir(o.model); }

std::unique_ptr<Vlm> open_model(const ModelOpts& o, bool attention_maps, double* load_ms) {
  const auto t0 = Clock::now();
  VlmLoadOptions lo;
  lo.weight_dtype = o.bf16 ? DType::bf16 : DType::f32;
  lo.attention_maps = attention_maps;
  const std::string dir = model_dir(o);
  auto m = open_vlm(dir, lo);
  if (load_ms) *load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  verbose("model: " + dir + " (" + m->architecture() + (o.bf16 ? ", bf16)" : ", f32)"));
  return m;
}

// ----------------------------------------------------------------------------------- inputs

namespace {

bool image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* known[] = {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".pbm",
                                ".pgm", ".ppm", ".pnm", ".pxm", ".sr",  ".ras", ".jp2", ".hdr", ".pic", ".gif"};
  return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return e == k; });
}

std::string err_line(const std::string& file, const std::string& what) { return "xmodal: " + file + ": " + what; }

void expand_one(const std::string& a, std::vector<Input>& out, bool allow_glob) {
  std::error_code ec;
  const fs::file_status st = fs::status(a, ec);
  if (!ec && fs::is_directory(st)) {
    std::vector<std::string> files;
    for (fs::directory_iterator it(a, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (it->is_regular_file(ec2) && image_extension(it->path())) files.push_back(it->path().string());
    }
    if (ec) {
      out.push_back({a, err_line(a, "cannot list the folder: " + ec.message())});
      return;
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) out.push_back({a, err_line(a, "the folder holds no image files (.png, .jpg, ...)")});
    for (auto& f : files) out.push_back({std::move(f), ""});
    return;
  }
  if (allow_glob && ec && a.find_first_of("*?[") != std::string::npos) {
    glob_t g{};
    const int rc = ::glob(a.c_str(), 0, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.push_back(g.gl_pathv[i]);
    ::globfree(&g);
    if (matches.empty()) {
      out.push_back({a, err_line(a, "the pattern matches no file")});
      return;
    }
    for (const auto& m : matches) expand_one(m, out, false);
    return;
  }
  out.push_back({a, ""});  // a file (or a missing one: load_image reports it)
}

}  // namespace

std::vector<Input> expand_inputs(const std::vector<std::string>& args, const std::string& list_file) {
  std::vector<Input> out;
  for (const auto& a : args) expand_one(a, out, true);
  if (!list_file.empty()) {
    std::string text;
    if (list_file == "-") {
      std::ostringstream ss;
      ss << std::cin.rdbuf();
      text = ss.str();
    } else {
      text = read_file(list_file, 256ull << 20);
    }
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos || line[b] == '#') continue;
      const size_t e = line.find_last_not_of(" \t");
      expand_one(line.substr(b, e - b + 1), out, false);
    }
  }
  return out;
}

int64_t image_id_from_name(const std::string& path) {
  const std::string s = fs::path(path).stem().string();
  size_t end = s.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(s[end - 1]))) --end;
  if (end == 0) return -1;
  size_t b = end;
  while (b > 0 && std::isdigit(static_cast<unsigned char>(s[b - 1]))) --b;
  const std::string digits = s.substr(b, end - b);
  if (digits.size() > 15) return -1;
  return std::stoll(digits);
}

// One answer per line, or a JSON array of strings (BLIP's answer_list.json).
std::vector<std::string> read_text_list(const std::string& path, const std::string& what) {
  const std::string text = read_file(path, 64ull << 20);
  std::vector<std::string> out;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
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
  if (out.empty()) throw InputError(path, "the " + what + " list is empty");
  return out;
}

// ------------------------------------------------------------------------------ interruption

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int sig) { g_stop = sig; }
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;  // restart interrupted reads and writes (no EINTR surprises in libraries)
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return g_stop; }

// ---------------------------------------------------------------------------------- timings

int64_t peak_rss_bytes() {
  rusage u{};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

namespace {
double r3(double x) { return std::round(x * 1000.0) / 1000.0; }
}  // namespace

nlohmann::json timings_json(const Timings& t) {
  const double tok_s = t.decode_ms > 0 ? 1000.0 * static_cast<double>(t.tokens) / t.decode_ms : 0.0;
  return {{"load_ms", r3(t.load_ms)},
          {"image_decode_ms", r3(t.read_ms)},
          {"preprocess_encode_ms", r3(t.encode_ms)},
          {"question_ms", r3(t.text_ms)},
          {"text_decode_ms", r3(t.decode_ms)},
          {"images", t.images},
          {"sequences", t.sequences},
          {"generated_tokens", t.tokens},
          {"tokens_per_s", std::round(tok_s * 10.0) / 10.0},
          {"peak_rss_mb", std::round(static_cast<double>(peak_rss_bytes()) / (1 << 20) * 10.0) / 10.0}};
}

std::string timings_text(const Timings& t) {
  const double n = static_cast<double>(std::max<int64_t>(t.images, 1));
  const double tok_s = t.decode_ms > 0 ? 1000.0 * static_cast<double>(t.tokens) / t.decode_ms : 0.0;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "timings: model load %.1f ms\n"
                "timings: image decode %.1f ms (%.2f ms/image, %lld images)\n"
                "timings: preprocess+encode %.1f ms (%.2f ms/image)\n"
                "%s"
                "timings: text decode %.1f ms, %lld tokens in %lld sequences, %.1f tokens/s\n"
                "timings: peak RSS %.1f MB\n",
                t.load_ms, t.read_ms, t.read_ms / n, static_cast<long long>(t.images), t.encode_ms, t.encode_ms / n,
                t.text_ms > 0 ? ("timings: question encoding " + std::to_string(t.text_ms) + " ms\n").c_str() : "",
                t.decode_ms, static_cast<long long>(t.tokens), static_cast<long long>(t.sequences), tok_s,
                static_cast<double>(peak_rss_bytes()) / (1 << 20));
  return buf;
}

int64_t generated_tokens(const VlmResult& r, const Vlm& m) {
  if (!r.attention.empty()) return static_cast<int64_t>(r.attention.size());
  const bool blip = m.architecture().rfind("blip", 0) == 0;
  return std::max<int64_t>(0, static_cast<int64_t>(r.ids.size()) - (blip ? 1 : 0));
}

}  // namespace xmodal::app
