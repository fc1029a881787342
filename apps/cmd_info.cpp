// xmodal info: what is in a model directory (architecture, format, parameter count, tensors,
// tokenizer), as text or JSON. Opening the directory runs every load-time check, so this is
// also the quickest way to see why a model does not load (exit 4, one line naming the file).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/sp_tokenizer.hpp"
#include "pipeline/weights.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;

bool is_float(StDType t) {
  switch (t) {
    case StDType::F16:
    case StDType::BF16:
    case StDType::F32:
    case StDType::F64:
    case StDType::F8_E5M2:
    case StDType::F8_E4M3: return true;
    default: return false;
  }
}

// "text_decoder.bert.encoder.layer.11.attention.self.query.weight" -> "...layer.#.attention..."
std::string group_pattern(const std::string& name) {
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    size_t j = name.find('.', i);
    if (j == std::string::npos) j = name.size();
    std::string part = name.substr(i, j - i);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); });
    out += digits ? "#" : part;
    if (j < name.size()) out += '.';
    i = j + 1;
  }
  return out;
}

std::string human(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000)
    std::snprintf(buf, sizeof buf, " (%.2f B)", n / 1e9);
  else if (n >= 1'000'000)
    std::snprintf(buf, sizeof buf, " (%.1f M)", n / 1e6);
  else if (n >= 10'000)
    std::snprintf(buf, sizeof buf, " (%.1f K)", n / 1e3);
  else
    return "";
  return buf;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

struct Tokenizer {
  std::string kind = "none";
  std::string file;
  int64_t vocab = 0;
};

Tokenizer describe_tokenizer(const ModelDir& m) {
  Tokenizer t;
  if (m.tokenizer == TokenizerKind::sentencepiece) {
    t.kind = "sentencepiece";
    t.vocab = SpTokenizer::load(m.tokenizer_path).vocab_size();  // validates the file too
  } else if (m.tokenizer == TokenizerKind::wordpiece) {
    t.kind = "wordpiece";
    std::string text;
    try {
      text = read_file(m.tokenizer_path, 64u << 20);
    } catch (const InputError& e) {
      throw ModelError(m.tokenizer_path, e.what());
    }
    t.vocab = std::count(text.begin(), text.end(), '\n') + (!text.empty() && text.back() != '\n');
  }
  t.file = m.tokenizer_path;
  return t;
}

int run_info(const std::vector<std::string>& args) {
  Common c;
  std::string dir;
  bool all = false, as_json = false;
  po::options_description opts("Options");
  opts.add_options()
    ("model,m", po::value(&dir)->default_value(""), "model directory (config.json + model.safetensors); also positional")
    ("all,a", po::bool_switch(&all), "list every tensor instead of grouping numbered layers")
    ("json", po::bool_switch(&as_json), "print one JSON object (always lists every tensor)");
  opts.add(common_options(c));
  po::positional_options_description pos;
  pos.add("model", 1);
  parse("info", args, opts, pos, c);
  if (c.help) {
    print_help("info", "--model DIR [--all] [--json]",
               "Opens a model directory with every load-time check and prints its architecture, format\n"
               "version, parameter count (floating-point elements), tokenizer and a tensor summary.\n"
               "Numbered layers are grouped ('layer.#.attention.self.query.weight' x12); --all lists\n"
               "each tensor. A model that does not load exits 4 with one line naming the file.",
               opts,
               "  xmodal info --model assets/models/scenes\n"
               "  xmodal info tests/fixtures/models/tiny --all\n"
               "  xmodal info --model ~/models/blip-image-captioning-base --json | jq .parameters\n");
    return 0;
  }
  if (dir.empty()) throw UsageError("--model DIR is required (see xmodal info --help)", "--model");

  ModelDir m = ModelDir::open(dir);
  Tokenizer tok = describe_tokenizer(m);
  const auto& entries = m.file.entries();
  int64_t params = 0, other = 0;
  std::map<std::string, int> dtype_count;
  for (const auto& e : entries) {
    (is_float(e.dtype) ? params : other) += e.numel;
    dtype_count[st_dtype_name(e.dtype)]++;
  }

  if (as_json) {
    Json j;
    j["model_dir"] = m.dir;
    j["architecture"] = m.architecture;
    j["format"] = m.format;
    j["format_version"] = m.format_version;
    j["parameters"] = params;
    j["integer_elements"] = other;
    j["weights"] = {{"file", m.weights_path}, {"bytes", m.file.file_size()}, {"tensors", entries.size()}};
    j["tokenizer"] = {{"kind", tok.kind}, {"file", tok.file}, {"vocab_size", tok.vocab}};
    j["metadata"] = m.file.metadata();
    Json ts = Json::array();
    for (const auto& e : entries)
      ts.push_back({{"name", e.name}, {"dtype", st_dtype_name(e.dtype)}, {"shape", e.shape}, {"numel", e.numel}});
    j["tensors"] = std::move(ts);
    j["config"] = m.config.json();
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return 0;
  }

  std::string dtypes;
  for (const auto& [name, n] : dtype_count) dtypes += (dtypes.empty() ? "" : ", ") + name + " " + std::to_string(n);
  std::cout << "model:         " << m.dir << "\n"
            << "architecture:  " << m.architecture << "\n"
            << "format:        " << m.format << "\n"
            << "parameters:    " << params << human(params);
  if (other) std::cout << " (+ " << other << " elements in integer tensors)";
  std::cout << "\n"
            << "weights:       " << m.weights_path << ", " << m.file.file_size() << " bytes, " << entries.size()
            << " tensors" << (dtypes.empty() ? "" : " (" + dtypes + ")") << "\n"
            << "tokenizer:     " << tok.kind;
  if (tok.kind != "none") std::cout << ", " << tok.file << ", " << tok.vocab << " entries";
  std::cout << "\n";
  if (!m.file.metadata().empty()) {
    std::cout << "metadata:     ";
    for (const auto& [k, v] : m.file.metadata()) std::cout << " " << k << "=" << v;
    std::cout << "\n";
  }

  struct Row {
    std::string name, dtype, shape;
    int64_t count = 0, numel = 0;
  };
  std::vector<Row> rows;
  if (all) {
    for (const auto& e : entries) rows.push_back({e.name, st_dtype_name(e.dtype), shape_str(e.shape), 1, e.numel});
  } else {
    // Group numbered layers; keep first-seen order of the sorted names.
    std::map<std::string, size_t> index;
    for (const auto& e : entries) {
      std::string p = group_pattern(e.name);
      auto [it, fresh] = index.emplace(p, rows.size());
      if (fresh) rows.push_back({p, st_dtype_name(e.dtype), shape_str(e.shape), 0, 0});
      Row& r = rows[it->second];
      if (r.dtype != st_dtype_name(e.dtype)) r.dtype = "mixed";
      if (r.shape != shape_str(e.shape)) r.shape = "mixed";
      r.count++;
      r.numel += e.numel;
    }
  }
  const std::string head = all ? "tensor" : "tensor (# = layer index)";
  size_t w = head.size();
  for (const auto& r : rows) w = std::max(w, r.name.size());
  w = std::min<size_t>(w, 72);
  std::cout << "\n" << pad(head, w) << "  dtype  " << pad("shape", 18)
            << (all ? "" : "  count") << "  elements\n";
  const size_t limit = all ? rows.size() : 200;
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const Row& r = rows[i];
    std::cout << pad(r.name, w) << "  " << pad(r.dtype, 5) << "  " << pad(r.shape, 18);
    if (!all) {
      std::string cnt = std::to_string(r.count);
      std::cout << "  " << std::string(cnt.size() < 5 ? 5 - cnt.size() : 0, ' ') << cnt;
    }
    std::cout << "  " << r.numel << "\n";
  }
  if (rows.size() > limit) std::cout << "... " << rows.size() - limit << " more groups (use --all or --json)\n";
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("info", "describe a model directory (architecture, parameters, tensors)", run_info);

}  // namespace xmodal::app
