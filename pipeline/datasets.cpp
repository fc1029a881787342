// COCO-caption and VQA-v2 readers and writers (see datasets.hpp).
// Every reader trusts nothing: each element is checked for its type and its keys, ids must be
// unique, and every error names the file and the element ("annotations[17]: missing 'caption'").
#include "pipeline/datasets.hpp"

#include <sys/stat.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal::data {

namespace {

using json = nlohmann::json;

// nlohmann messages start with "[json.exception.parse_error.101] "; drop that tag.
std::string strip_json_tag(const std::string& what) {
  if (!what.empty() && what[0] == '[') {
    auto close = what.find("] ");
    if (close != std::string::npos) return what.substr(close + 2);
  }
  return what;
}

json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(path, "invalid JSON at byte " + std::to_string(e.byte) + ": " + strip_json_tag(e.what()));
  } catch (const json::exception& e) {  // e.g. out_of_range.406 for a number like 1e400
    throw InputError(path, "invalid JSON: " + strip_json_tag(e.what()));
  }
}

// Serialises and writes atomically. Strings that are not valid UTF-8 are an input error.
void write_json_file(const std::string& path, const json& j) {
  std::string text;
  try {
    text = j.dump();
  } catch (const json::type_error& e) {
    throw InputError(path, "cannot write JSON: " + strip_json_tag(e.what()));
  }
  text += '\n';
  write_file_atomic(path, text);
}

// One JSON string literal, escaped exactly as json::dump() does. Invalid UTF-8 is an input error.
std::string json_string(const std::string& path, const std::string& v) {
  try {
    return json(v).dump();
  } catch (const json::type_error& e) {
    throw InputError(path, "cannot write JSON: " + strip_json_tag(e.what()));
  }
}

// The reader's view of one element: the file and where in it ("annotations[17]").
struct Where {
  const std::string& path;
  std::string at;
  [[noreturn]] void fail(const std::string& msg) const { throw InputError(path, at + ": " + msg); }
};

const json& need_object(const json& j, const Where& w) {
  if (!j.is_object()) w.fail(std::string("expected an object, got ") + j.type_name());
  return j;
}

const json& need_key(const json& obj, const char* key, const Where& w) {
  auto it = obj.find(key);
  if (it == obj.end()) w.fail(std::string("missing '") + key + "'");
  return *it;
}

int64_t as_int(const json& v, const char* key, const Where& w) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      w.fail(std::string("'") + key + "' is too large: " + v.dump());
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {  // Python writes 42.0 for numpy floats; accept exact integers
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) return static_cast<int64_t>(d);
    w.fail(std::string("'") + key + "' must be an integer, got " + v.dump());
  }
  w.fail(std::string("'") + key + "' must be an integer, got " + v.type_name());
}

int64_t get_int(const json& obj, const char* key, const Where& w) { return as_int(need_key(obj, key, w), key, w); }

std::string get_str(const json& obj, const char* key, const Where& w) {
  const json& v = need_key(obj, key, w);
  if (!v.is_string()) w.fail(std::string("'") + key + "' must be a string, got " + v.type_name());
  return v.get<std::string>();
}

int get_dim(const json& obj, const char* key, const Where& w) {  // optional image width/height
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return 0;
  int64_t v = as_int(*it, key, w);
  if (v < 0 || v > std::numeric_limits<int>::max()) w.fail(std::string("'") + key + "' out of range: " + std::to_string(v));
  return static_cast<int>(v);
}

// The array stored under `key` of a top-level object (or the top-level array when key is null).
const json& top_array(const json& root, const char* key, const std::string& path) {
  if (!key) {
    if (!root.is_array()) throw InputError(path, std::string("expected a JSON array at top level, got ") + root.type_name());
    return root;
  }
  if (!root.is_object()) throw InputError(path, std::string("expected a JSON object at top level, got ") + root.type_name());
  auto it = root.find(key);
  if (it == root.end()) throw InputError(path, std::string("missing top-level '") + key + "'");
  if (!it->is_array()) throw InputError(path, std::string("'") + key + "' must be an array, got " + it->type_name());
  return *it;
}

Where at(const std::string& path, const char* name, size_t i) {
  return Where{path, std::string(name) + "[" + std::to_string(i) + "]"};
}

// Remembers the first index of each id; a second one is an error naming both.
class UniqueIds {
 public:
  UniqueIds(const std::string& path, const char* array, const char* key) : path_(path), array_(array), key_(key) {}
  void add(int64_t id, size_t i) {
    auto [it, fresh] = first_.emplace(id, i);
    if (!fresh)
      throw InputError(path_, std::string(array_) + "[" + std::to_string(i) + "]: duplicate " + key_ + " " +
                                  std::to_string(id) + " (first at " + array_ + "[" + std::to_string(it->second) + "])");
  }

 private:
  const std::string& path_;
  const char* array_;
  const char* key_;
  std::unordered_map<int64_t, size_t> first_;
};

// Why a dataset-relative file name is unsafe, or "" when it is fine: empty, NUL, absolute, "..".
std::string bad_relative_name(const std::string& name) {
  if (name.empty()) return "empty file name";
  if (name.find('\0') != std::string::npos) return "file name contains a NUL byte";
  if (name.front() == '/') return "'" + name + "' is an absolute path; names must be relative to the image root";
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (end - start == 2 && name.compare(start, 2, "..") == 0)
      return "'" + name + "' contains '..'; names must stay under the image root";
    start = end + 1;
  }
  return "";
}

}  // namespace

// ---- COCO captions ----------------------------------------------------------------------

CocoCaptions read_coco_captions(const std::string& path) {
  const json root = parse_json_file(path);
  const json& imgs = top_array(root, "images", path);
  const json& anns = top_array(root, "annotations", path);
  CocoCaptions c;
  c.images.reserve(imgs.size());
  UniqueIds img_ids(path, "images", "id");
  for (size_t i = 0; i < imgs.size(); ++i) {
    Where w = at(path, "images", i);
    const json& o = need_object(imgs[i], w);
    CocoImage im;
    im.id = get_int(o, "id", w);
    im.file_name = get_str(o, "file_name", w);
    if (std::string why = bad_relative_name(im.file_name); !why.empty()) w.fail("file_name: " + why);
    im.width = get_dim(o, "width", w);
    im.height = get_dim(o, "height", w);
    img_ids.add(im.id, i);
    c.images.push_back(std::move(im));
  }
  std::unordered_set<int64_t> known;
  for (const auto& im : c.images) known.insert(im.id);
  c.annotations.reserve(anns.size());
  UniqueIds ann_ids(path, "annotations", "id");
  for (size_t i = 0; i < anns.size(); ++i) {
    Where w = at(path, "annotations", i);
    const json& o = need_object(anns[i], w);
    CocoCaption a;
    a.id = get_int(o, "id", w);
    a.image_id = get_int(o, "image_id", w);
    a.caption = get_str(o, "caption", w);
    ann_ids.add(a.id, i);
    if (!known.count(a.image_id)) w.fail("image_id " + std::to_string(a.image_id) + " is not in 'images'");
    c.annotations.push_back(std::move(a));
  }
  return c;
}

void write_coco_captions(const std::string& path, const CocoCaptions& c) {
  json imgs = json::array(), anns = json::array();
  for (const auto& im : c.images)
    imgs.push_back({{"id", im.id}, {"file_name", im.file_name}, {"width", im.width}, {"height", im.height}});
  for (const auto& a : c.annotations) anns.push_back({{"id", a.id}, {"image_id", a.image_id}, {"caption", a.caption}});
  // info/type/licenses: the original coco-caption tools copy these keys and fail without them.
  json root = {{"info", {{"description", "written by xmodal"}}},
               {"type", "captions"},
               {"licenses", json::array()},
               {"images", std::move(imgs)},
               {"annotations", std::move(anns)}};
  write_json_file(path, root);
}

std::vector<CaptionResult> read_caption_results(const std::string& path) {
  const json root = parse_json_file(path);
  const json& arr = top_array(root, nullptr, path);
  std::vector<CaptionResult> out;
  out.reserve(arr.size());
  UniqueIds ids(path, "results", "image_id");
  for (size_t i = 0; i < arr.size(); ++i) {
    Where w = at(path, "results", i);
    const json& o = need_object(arr[i], w);
    CaptionResult r;
    r.image_id = get_int(o, "image_id", w);
    r.caption = get_str(o, "caption", w);
    ids.add(r.image_id, i);
    out.push_back(std::move(r));
  }
  return out;
}

void write_caption_results(const std::string& path, const std::vector<CaptionResult>& r) {
  json arr = json::array();
  for (const auto& x : r) arr.push_back({{"image_id", x.image_id}, {"caption", x.caption}});
  write_json_file(path, arr);
}

// ---- VQA-v2 -----------------------------------------------------------------------------

std::vector<VqaQuestion> read_vqa_questions(const std::string& path) {
  const json root = parse_json_file(path);
  const json& arr = top_array(root, "questions", path);
  std::vector<VqaQuestion> out;
  out.reserve(arr.size());
  UniqueIds ids(path, "questions", "question_id");
  for (size_t i = 0; i < arr.size(); ++i) {
    Where w = at(path, "questions", i);
    const json& o = need_object(arr[i], w);
    VqaQuestion q;
    q.question_id = get_int(o, "question_id", w);
    q.image_id = get_int(o, "image_id", w);
    q.question = get_str(o, "question", w);
    ids.add(q.question_id, i);
    out.push_back(std::move(q));
  }
  return out;
}

void write_vqa_questions(const std::string& path, const std::vector<VqaQuestion>& q) {
  json arr = json::array();
  for (const auto& x : q) arr.push_back({{"question_id", x.question_id}, {"image_id", x.image_id}, {"question", x.question}});
  // The official VQA API copies info/task_type/data_type/data_subtype/license from here.
  json root = {{"info", {{"description", "written by xmodal"}}},
               {"task_type", "Open-Ended"},
               {"data_type", "mscoco"},
               {"data_subtype", "xmodal"},
               {"license", json::object()},
               {"questions", std::move(arr)}};
  write_json_file(path, root);
}

std::vector<VqaAnnotation> read_vqa_annotations(const std::string& path) {
  const json root = parse_json_file(path);
  const json& arr = top_array(root, "annotations", path);
  std::vector<VqaAnnotation> out;
  out.reserve(arr.size());
  UniqueIds ids(path, "annotations", "question_id");
  for (size_t i = 0; i < arr.size(); ++i) {
    Where w = at(path, "annotations", i);
    const json& o = need_object(arr[i], w);
    VqaAnnotation a;
    a.question_id = get_int(o, "question_id", w);
    a.image_id = get_int(o, "image_id", w);
    a.question_type = get_str(o, "question_type", w);
    a.answer_type = get_str(o, "answer_type", w);
    a.multiple_choice_answer = get_str(o, "multiple_choice_answer", w);
    const json& answers = need_key(o, "answers", w);
    if (!answers.is_array()) w.fail(std::string("'answers' must be an array, got ") + answers.type_name());
    if (answers.empty()) w.fail("'answers' is empty");
    a.answers.reserve(answers.size());
    for (size_t k = 0; k < answers.size(); ++k) {
      Where wk{path, w.at + ".answers[" + std::to_string(k) + "]"};
      a.answers.push_back(get_str(need_object(answers[k], wk), "answer", wk));
    }
    ids.add(a.question_id, i);
    out.push_back(std::move(a));
  }
  return out;
}

// Written as text directly rather than through a json tree: a 10,000-image synth set has 100,000
// annotations with 10 answers each, and building a million small json objects took most of the
// writer's time. The bytes are exactly what json::dump() of the equivalent tree gives (keys in
// sorted order, compact), which tests/test_datasets.cpp checks.
void write_vqa_annotations(const std::string& path, const std::vector<VqaAnnotation>& a) {
  std::string text;
  text.reserve(a.size() * 420 + 256);
  text += "{\"annotations\":[";
  for (size_t i = 0; i < a.size(); ++i) {
    const VqaAnnotation& x = a[i];
    if (i) text += ',';
    text += "{\"answer_type\":";
    text += json_string(path, x.answer_type);
    text += ",\"answers\":[";
    // answer_id makes the answer records distinct, which the official leave-one-out relies on.
    for (size_t k = 0; k < x.answers.size(); ++k) {
      if (k) text += ',';
      text += "{\"answer\":";
      text += json_string(path, x.answers[k]);
      text += ",\"answer_confidence\":\"yes\",\"answer_id\":";
      text += std::to_string(k + 1);
      text += '}';
    }
    text += "],\"image_id\":";
    text += std::to_string(x.image_id);
    text += ",\"multiple_choice_answer\":";
    text += json_string(path, x.multiple_choice_answer);
    text += ",\"question_id\":";
    text += std::to_string(x.question_id);
    text += ",\"question_type\":";
    text += json_string(path, x.question_type);
    text += '}';
  }
  text += "],\"data_subtype\":\"xmodal\",\"data_type\":\"mscoco\",\"info\":{\"description\":\"written by xmodal\"},"
          "\"license\":{}}\n";
  write_file_atomic(path, text);
}

std::vector<VqaResult> read_vqa_results(const std::string& path) {
  const json root = parse_json_file(path);
  const json& arr = top_array(root, nullptr, path);
  std::vector<VqaResult> out;
  out.reserve(arr.size());
  UniqueIds ids(path, "results", "question_id");
  for (size_t i = 0; i < arr.size(); ++i) {
    Where w = at(path, "results", i);
    const json& o = need_object(arr[i], w);
    VqaResult r;
    r.question_id = get_int(o, "question_id", w);
    r.answer = get_str(o, "answer", w);
    ids.add(r.question_id, i);
    out.push_back(std::move(r));
  }
  return out;
}

void write_vqa_results(const std::string& path, const std::vector<VqaResult>& r) {
  json arr = json::array();
  for (const auto& x : r) arr.push_back({{"question_id", x.question_id}, {"answer", x.answer}});
  write_json_file(path, arr);
}

// ---- Cross-file checks --------------------------------------------------------------------

void check_caption_results(const CocoCaptions& gt, const std::vector<CaptionResult>& results,
                           const std::string& results_path) {
  std::unordered_map<int64_t, int> n_refs;
  for (const auto& im : gt.images) n_refs.emplace(im.id, 0);
  for (const auto& a : gt.annotations) ++n_refs[a.image_id];
  for (size_t i = 0; i < results.size(); ++i) {
    auto it = n_refs.find(results[i].image_id);
    if (it == n_refs.end())
      throw InputError(results_path, "results[" + std::to_string(i) + "]: image_id " +
                                         std::to_string(results[i].image_id) + " is not in the annotations");
    if (it->second == 0)
      throw InputError(results_path, "results[" + std::to_string(i) + "]: image_id " +
                                         std::to_string(results[i].image_id) + " has no reference captions");
  }
}

void check_vqa_annotations(const std::vector<VqaQuestion>& questions, const std::vector<VqaAnnotation>& annotations,
                           const std::string& annotations_path) {
  std::unordered_map<int64_t, int64_t> image_of;
  for (const auto& q : questions) image_of.emplace(q.question_id, q.image_id);
  for (size_t i = 0; i < annotations.size(); ++i) {
    const auto& a = annotations[i];
    auto it = image_of.find(a.question_id);
    std::string where = "annotations[" + std::to_string(i) + "]: question_id " + std::to_string(a.question_id);
    if (it == image_of.end()) throw InputError(annotations_path, where + " is not in the questions file");
    if (it->second != a.image_id)
      throw InputError(annotations_path, where + " has image_id " + std::to_string(a.image_id) +
                                             " but the questions file says " + std::to_string(it->second));
  }
}

void check_vqa_results(const std::vector<VqaAnnotation>& annotations, const std::vector<VqaResult>& results,
                       const std::string& results_path) {
  std::unordered_set<int64_t> known;
  for (const auto& a : annotations) known.insert(a.question_id);
  for (size_t i = 0; i < results.size(); ++i)
    if (!known.count(results[i].question_id))
      throw InputError(results_path, "results[" + std::to_string(i) + "]: question_id " +
                                         std::to_string(results[i].question_id) + " is not in the annotations");
}

// ---- Paths ------------------------------------------------------------------------------

std::string resolve_under_root(const std::string& root, const std::string& name, const std::string& source) {
  if (std::string why = bad_relative_name(name); !why.empty()) throw InputError(source, why);
  if (root.empty()) return name;
  return root.back() == '/' ? root + name : root + "/" + name;
}

bool regular_file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<int64_t> missing_images(const std::string& root, const std::vector<CocoImage>& images,
                                    const std::string& source) {
  std::vector<int64_t> missing;
  for (const auto& im : images)
    if (!regular_file_exists(resolve_under_root(root, im.file_name, source))) missing.push_back(im.id);
  return missing;
}

}  // namespace xmodal::data
