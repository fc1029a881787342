#include "pipeline/weights.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal {

using Json = nlohmann::json;

namespace {

std::string kind(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a float";
    default: return "an unsupported value";
  }
}

std::string short_dump(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// Reads an integer; integral floats (3.0) are accepted, 3.5 is not.
std::optional<int64_t> to_int(const Json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::string expected_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  return r + "]";
}

bool shape_matches(const Shape& found, const Shape& expected) {
  if (found.size() != expected.size()) return false;
  for (size_t i = 0; i < found.size(); ++i)
    if (expected[i] >= 0 && found[i] != expected[i]) return false;
  return true;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool is_regular(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Config

Config::Config(Json j, std::string file, std::string path) : j_(std::move(j)), file_(std::move(file)), path_(std::move(path)) {
  if (!j_.is_object())
    throw ModelError(file_, (path_.empty() ? std::string("top level") : "key '" + path_ + "'") + " is " + kind(j_) +
                                ", expected an object");
}

std::string Config::where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

bool Config::has(const std::string& key) const {
  auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

const Json& Config::need(const std::string& key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) throw ModelError(file_, "missing key '" + where(key) + "'");
  return *it;
}

int64_t Config::get_int(const std::string& key) const {
  const Json& v = need(key);
  auto r = to_int(v);
  if (!r) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + " (" + short_dump(v) + "), expected an integer");
  return *r;
}

int64_t Config::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  int64_t v = get_int(key);
  if (v < lo || v > hi)
    throw ModelError(file_, "key '" + where(key) + "' = " + std::to_string(v) + " is out of range [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "]");
  return v;
}

int64_t Config::int_or(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }

double Config::get_float(const std::string& key) const {
  const Json& v = need(key);
  if (!v.is_number()) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + " (" + short_dump(v) + "), expected a number");
  return v.get<double>();
}

double Config::float_or(const std::string& key, double fallback) const { return has(key) ? get_float(key) : fallback; }

bool Config::get_bool(const std::string& key) const {
  const Json& v = need(key);
  if (!v.is_boolean()) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + " (" + short_dump(v) + "), expected true or false");
  return v.get<bool>();
}

bool Config::bool_or(const std::string& key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

std::string Config::get_string(const std::string& key) const {
  const Json& v = need(key);
  if (!v.is_string()) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + " (" + short_dump(v) + "), expected a string");
  return v.get<std::string>();
}

std::string Config::string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::vector<int64_t> Config::get_ints(const std::string& key) const {
  const Json& v = need(key);
  if (!v.is_array()) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + ", expected an array of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    auto r = to_int(v[i]);
    if (!r)
      throw ModelError(file_, "key '" + where(key) + "[" + std::to_string(i) + "]' is " + kind(v[i]) + " (" +
                                  short_dump(v[i]) + "), expected an integer");
    out.push_back(*r);
  }
  return out;
}

std::vector<double> Config::get_floats(const std::string& key) const {
  const Json& v = need(key);
  if (!v.is_array()) throw ModelError(file_, "key '" + where(key) + "' is " + kind(v) + ", expected an array of numbers");
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number())
      throw ModelError(file_, "key '" + where(key) + "[" + std::to_string(i) + "]' is " + kind(v[i]) + " (" +
                                  short_dump(v[i]) + "), expected a number");
    out.push_back(v[i].get<double>());
  }
  return out;
}

Config Config::sub(const std::string& key) const { return Config(need(key), file_, where(key)); }

std::optional<Config> Config::sub_optional(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return sub(key);
}

int64_t cfg_int(const Json& j, const std::string& key, const std::string& file) { return Config(j, file).get_int(key); }
double cfg_float(const Json& j, const std::string& key, const std::string& file) { return Config(j, file).get_float(key); }
std::string cfg_string(const Json& j, const std::string& key, const std::string& file) {
  return Config(j, file).get_string(key);
}
bool cfg_bool(const Json& j, const std::string& key, const std::string& file) { return Config(j, file).get_bool(key); }

// ---------------------------------------------------------------------------------------------
// Weights

struct Weights::State {
  SafetensorsFile file;
  std::string owner;
  std::vector<char> used;  // parallel to file.entries()
  size_t index(const StEntry& e) const { return static_cast<size_t>(&e - file.entries().data()); }
};

Weights::Weights(SafetensorsFile file, std::string owner) : state_(std::make_shared<State>()) {
  state_->file = std::move(file);
  state_->owner = std::move(owner);
  state_->used.assign(state_->file.entries().size(), 0);
}

const SafetensorsFile& Weights::file() const {
  check(state_ != nullptr, "Weights used before being given a file");
  return state_->file;
}

Weights Weights::scope(const std::string& name) const {
  Weights w = *this;
  if (!name.empty()) w.prefix_ += name.back() == '.' ? name : name + ".";
  return w;
}

bool Weights::has(const std::string& name) const { return file().has(full_name(name)); }

Shape Weights::shape(const std::string& name) const {
  std::string full = full_name(name);
  const StEntry* e = file().find(full);
  if (!e) missing(full, {});
  return e->shape;
}

void Weights::missing(const std::string& full, const Shape& expected) const {
  const auto& entries = file().entries();
  std::string msg = "missing tensor '" + full + "'";
  if (!expected.empty()) msg += " (expected " + expected_str(expected) + ")";
  if (!state_->owner.empty()) msg += " needed by " + state_->owner;
  // Point at the likely fix: the closest name, or that nothing at all lives under the scope.
  const std::string* best = nullptr;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& e : entries) {
    size_t d = edit_distance(full, e.name);
    if (d < best_d) best_d = d, best = &e.name;
  }
  bool scope_empty = !prefix_.empty() && std::none_of(entries.begin(), entries.end(), [&](const StEntry& e) {
    return e.name.compare(0, prefix_.size(), prefix_) == 0;
  });
  if (scope_empty)
    msg += "; the checkpoint has no tensor under '" + prefix_ + "' (wrong checkpoint or architecture?)";
  else if (best && best_d <= std::max<size_t>(3, full.size() / 4))
    msg += "; closest name: '" + *best + "'";
  throw ModelError(file().path(), msg);
}

const StEntry& Weights::checked(const std::string& full, const Shape& expected) const {
  const StEntry* e = file().find(full);
  if (!e) missing(full, expected);
  if (!shape_matches(e->shape, expected))
    throw ModelError(file().path(), "tensor '" + full + "' has shape " + shape_str(e->shape) + " in the checkpoint, expected " +
                                        expected_str(expected) +
                                        (state_->owner.empty() ? "" : " by " + state_->owner) +
                                        " (does config.json match these weights?)");
  return *e;
}

Tensor Weights::take(const std::string& name, const Shape& expected) const {
  std::string full = full_name(name);
  const StEntry& e = checked(full, expected);
  Tensor t = file().to_f32(full);
  state_->used[state_->index(e)] = 1;
  return t;
}

std::optional<Tensor> Weights::take_optional(const std::string& name, const Shape& expected) const {
  if (!has(name)) return std::nullopt;
  return take(name, expected);
}

Tensor Weights::take_raw(const std::string& name, const Shape& expected) const {
  std::string full = full_name(name);
  const StEntry& e = checked(full, expected);
  Tensor t = file().view(full);
  state_->used[state_->index(e)] = 1;
  return t;
}

bool Weights::ignore(const std::string& name) const {
  const StEntry* e = file().find(full_name(name));
  if (!e) return false;
  state_->used[state_->index(*e)] = 1;
  return true;
}

size_t Weights::ignore_prefix(const std::string& prefix) const {
  std::string full = full_name(prefix);
  size_t n = 0;
  for (const auto& e : file().entries())
    if (e.name.compare(0, full.size(), full) == 0) {
      state_->used[state_->index(e)] = 1;
      ++n;
    }
  return n;
}

size_t Weights::used_count() const {
  file();
  return static_cast<size_t>(std::count(state_->used.begin(), state_->used.end(), 1));
}

size_t Weights::total_count() const { return file().entries().size(); }

std::vector<std::string> Weights::unused() const {
  std::vector<std::string> out;
  const auto& entries = file().entries();
  for (size_t i = 0; i < entries.size(); ++i)
    if (!state_->used[i]) out.push_back(entries[i].name);
  return out;
}

std::string Weights::summary() const {
  return "loaded " + std::to_string(used_count()) + " of " + std::to_string(total_count()) + " tensors";
}

void Weights::check_all_used() const {
  auto left = unused();
  if (left.empty()) return;
  std::string msg = std::to_string(left.size()) + " unexpected tensor" + (left.size() == 1 ? "" : "s") +
                    (state_->owner.empty() ? "" : " not used by " + state_->owner) + " (" + summary() + "): ";
  const size_t show = 10;
  for (size_t i = 0; i < left.size() && i < show; ++i) msg += (i ? ", '" : "'") + left[i] + "'";
  if (left.size() > show) msg += ", ... and " + std::to_string(left.size() - show) + " more";
  throw ModelError(file().path(), msg);
}

// ---------------------------------------------------------------------------------------------
// ModelDir

namespace {

// Hugging Face class names -> our architecture names.
std::string hf_architecture(const std::string& cls) {
  if (cls == "BlipForConditionalGeneration") return "blip-caption";
  if (cls == "BlipForQuestionAnswering") return "blip-vqa";
  return cls;
}

}  // namespace

ModelDir ModelDir::open(const std::string& dir_in) {
  ModelDir m;
  m.dir = dir_in;
  while (m.dir.size() > 1 && m.dir.back() == '/') m.dir.pop_back();
  {
    struct stat st {};
    if (m.dir.empty() || ::stat(m.dir.c_str(), &st) != 0)
      throw ModelError(dir_in, std::string("model directory: ") + std::strerror(m.dir.empty() ? ENOENT : errno));
    if (!S_ISDIR(st.st_mode))
      throw ModelError(dir_in, "is not a directory (a model is a directory with config.json and model.safetensors)");
  }

  m.config_path = m.dir + "/config.json";
  if (!is_regular(m.config_path))
    throw ModelError(m.config_path, "missing (a model directory needs config.json and model.safetensors)");
  std::string text;
  try {
    text = read_file(m.config_path, 16u << 20);
  } catch (const InputError& e) {
    throw ModelError(m.config_path, e.what());
  }
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    std::string msg = e.what();
    if (auto pos = msg.find("] "); msg.rfind("[Json.exception", 0) == 0 && pos != std::string::npos) msg = msg.substr(pos + 2);
    throw ModelError(m.config_path, "not valid JSON: " + msg);
  }
  m.config = Config(std::move(j), m.config_path);

  const Config& c = m.config;
  if (c.has("architecture")) {
    m.architecture = c.get_string("architecture");
    if (m.architecture.empty()) throw ModelError(m.config_path, "key 'architecture' is empty");
    int64_t v = c.get_int("format_version");
    if (v < 1) throw ModelError(m.config_path, "key 'format_version' = " + std::to_string(v) + " must be >= 1");
    if (v > kModelFormatVersion)
      throw ModelError(m.config_path, "format_version " + std::to_string(v) + " is newer than this xmodal reads (" +
                                          std::to_string(kModelFormatVersion) + "); update xmodal");
    m.format_version = v;
    m.format = "xmodal " + std::to_string(v);
  } else if (c.has("architectures")) {
    // A Hugging Face checkpoint used as downloaded.
    const Json& a = c.json().at("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string())
      throw ModelError(m.config_path, "key 'architectures' is " + short_dump(a) + ", expected a non-empty array of class names");
    m.architecture = hf_architecture(a[0].get<std::string>());
    m.format = "transformers " + c.string_or("transformers_version", "(unknown version)");
  } else {
    throw ModelError(m.config_path, "missing key 'architecture' (or Hugging Face's 'architectures')");
  }

  m.weights_path = m.dir + "/model.safetensors";
  if (!is_regular(m.weights_path)) {
    std::string hint = "missing";
    if (is_regular(m.dir + "/model.safetensors.index.json"))
      hint += " (sharded checkpoints are not supported: merge the shards into one model.safetensors)";
    else if (is_regular(m.dir + "/pytorch_model.bin"))
      hint += " (only safetensors weights are read; convert pytorch_model.bin to model.safetensors)";
    throw ModelError(m.weights_path, hint);
  }
  m.file = SafetensorsFile::open(m.weights_path);

  if (is_regular(m.dir + "/tokenizer.model")) {
    m.tokenizer = TokenizerKind::sentencepiece;
    m.tokenizer_path = m.dir + "/tokenizer.model";
  } else if (is_regular(m.dir + "/vocab.txt")) {
    m.tokenizer = TokenizerKind::wordpiece;
    m.tokenizer_path = m.dir + "/vocab.txt";
  }
  return m;
}

}  // namespace xmodal
