// Scenes: scenes.json reader/writer and the whole-dataset writer (images + COCO + VQA files).
#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::scenes {

using json = nlohmann::json;

// ---------------------------------------------------------------- scenes.json
void write_scenes_file(const std::string& path, const ScenesFile& f) {
  json scenes = json::array();
  for (const Scene& s : f.scenes) {
    json objs = json::array();
    for (const Object& o : s.objects)
      objs.push_back({{"color", color_name(o.color)},
                      {"shape", shape_name(o.shape)},
                      {"size", size_name(o.size)},
                      {"cx", o.cx},
                      {"cy", o.cy},
                      {"r", o.r}});
    scenes.push_back({{"image_id", s.image_id},
                      {"file_name", s.file_name},
                      {"width", s.width},
                      {"height", s.height},
                      {"background", s.background},
                      {"objects", std::move(objs)}});
  }
  json root = {{"generator", "xmodal synth"},
               {"generator_version", f.generator_version},
               {"preset", preset_name(f.preset)},
               {"seed", f.seed},
               {"scenes", std::move(scenes)}};
  write_file_atomic(path, root.dump() + "\n");
}

namespace {

struct At {
  const std::string& path;
  std::string where;
  [[noreturn]] void fail(const std::string& msg) const {
    throw InputError(path, (where.empty() ? "" : where + ": ") + msg);
  }
  const json& key(const json& obj, const char* k) const {
    if (!obj.is_object()) fail(std::string("expected an object, got ") + obj.type_name());
    auto it = obj.find(k);
    if (it == obj.end()) fail(std::string("missing '") + k + "'");
    return *it;
  }
  int64_t integer(const json& obj, const char* k, int64_t lo, int64_t hi) const {
    const json& v = key(obj, k);
    if (!v.is_number_integer()) fail(std::string("'") + k + "' must be an integer, got " + v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
      fail(std::string("'") + k + "' = " + v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      fail(std::string("'") + k + "' = " + std::to_string(x) + " is outside [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
    return x;
  }
  std::string str(const json& obj, const char* k) const {
    const json& v = key(obj, k);
    if (!v.is_string()) fail(std::string("'") + k + "' must be a string, got " + v.type_name());
    return v.get<std::string>();
  }
};

}  // namespace

ScenesFile read_scenes_file(const std::string& path) {
  const std::string text = read_file(path);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(path, "invalid JSON at byte " + std::to_string(e.byte));
  } catch (const json::exception& e) {  // e.g. out_of_range.406 for a number like 1e400
    throw InputError(path, std::string("invalid JSON: ") + e.what());
  }
  At top{path, ""};
  ScenesFile f;
  const std::string preset = top.str(root, "preset");
  auto p = parse_preset(preset);
  if (!p) top.fail("unknown preset '" + preset + "' (expected sort-of-clevr or shapes)");
  f.preset = *p;
  const json& seed = top.key(root, "seed");
  if (!seed.is_number_integer() || (!seed.is_number_unsigned() && seed.get<int64_t>() < 0))
    top.fail("'seed' must be a non-negative integer, got " + seed.dump());
  f.seed = seed.get<uint64_t>();
  f.generator_version = static_cast<int>(top.integer(root, "generator_version", 1, 1000000));
  if (f.generator_version > kGeneratorVersion)
    top.fail("generator_version " + std::to_string(f.generator_version) + " is newer than this xmodal reads (" +
             std::to_string(kGeneratorVersion) + "); update xmodal");
  const json& arr = top.key(root, "scenes");
  if (!arr.is_array()) top.fail(std::string("'scenes' must be an array, got ") + arr.type_name());
  std::set<int64_t> ids;
  for (size_t i = 0; i < arr.size(); ++i) {
    At at{path, "scenes[" + std::to_string(i) + "]"};
    const json& js = arr[i];
    Scene s;
    s.preset = f.preset;
    s.image_id = at.integer(js, "image_id", 0, INT64_MAX / 1000);
    if (!ids.insert(s.image_id).second) at.fail("duplicate image_id " + std::to_string(s.image_id));
    s.file_name = at.str(js, "file_name");
    s.width = static_cast<int>(at.integer(js, "width", 1, 100000));
    s.height = static_cast<int>(at.integer(js, "height", 1, 100000));
    s.background = js.contains("background") ? static_cast<int>(at.integer(js, "background", 0, 255)) : 255;
    const json& objs = at.key(js, "objects");
    if (!objs.is_array()) at.fail(std::string("'objects' must be an array, got ") + objs.type_name());
    for (size_t k = 0; k < objs.size(); ++k) {
      At ao{path, at.where + ".objects[" + std::to_string(k) + "]"};
      Object o;
      const std::string c = ao.str(objs[k], "color"), sh = ao.str(objs[k], "shape"), sz = ao.str(objs[k], "size");
      auto pc = parse_color(c);
      auto ps = parse_shape(sh);
      auto pz = parse_size(sz);
      if (!pc) ao.fail("unknown color '" + c + "'");
      if (!ps) ao.fail("unknown shape '" + sh + "'");
      if (!pz) ao.fail("unknown size '" + sz + "'");
      o.color = *pc, o.shape = *ps, o.size = *pz;
      o.cx = static_cast<int>(ao.integer(objs[k], "cx", 0, s.width - 1));
      o.cy = static_cast<int>(ao.integer(objs[k], "cy", 0, s.height - 1));
      o.r = static_cast<int>(ao.integer(objs[k], "r", 1, 100000));
      for (const Object& e : s.objects)
        if (e.color == o.color) ao.fail("color '" + c + "' appears twice in this scene (colours must be unique)");
      s.objects.push_back(o);
    }
    f.scenes.push_back(std::move(s));
  }
  return f;
}

std::vector<Scene> read_scenes(const std::string& path) { return read_scenes_file(path).scenes; }

// ---------------------------------------------------------------- the dataset
namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  // Plain write (no fsync per image: 10,000 fsyncs would dominate); the JSON files, written
  // last and atomically, mark a complete dataset.
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw InputError(path, std::string("cannot create file: ") + std::strerror(errno));
  const size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  const int e = n == bytes.size() ? 0 : errno;
  if (std::fclose(f) != 0 || n != bytes.size())
    throw InputError(path, std::string("write failed: ") + std::strerror(e ? e : errno));
}

}  // namespace

SynthSummary write_dataset(const SynthOptions& o, const std::function<void(int64_t)>& on_progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.images < 1 || o.images > 1000000)
    throw UsageError("--images must be in [1, 1000000], got " + std::to_string(o.images), "--images");
  namespace fs = std::filesystem;
  const std::string img_dir = (fs::path(o.out) / "images").string();
  std::error_code ec;
  fs::create_directories(img_dir, ec);
  if (ec) throw InputError(img_dir, "cannot create directory: " + ec.message());

  // Each PNG encode allocates and frees ~256 KB of zlib state; with glibc's default trim
  // threshold every free gives the memory back to the kernel and the next encode faults it in
  // again (measured: 2/3 of the run time was brk/page faults). Keep freed memory instead.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);

  const int64_t n = o.images;
  std::vector<Scene> scenes(n);
  std::vector<std::vector<std::string>> caps(n);
  std::vector<std::vector<Question>> qs(n);
  std::exception_ptr error;
  std::mutex error_mu;
  std::atomic<bool> failed{false};

#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      scenes[i] = generate_scene(o.preset, o.seed, i);
      Rng cap_rng(image_key(o.preset, o.seed, i, 1));
      caps[i] = make_captions(scenes[i], cap_rng);
      Rng q_rng(image_key(o.preset, o.seed, i, 2));
      qs[i] = make_questions(scenes[i], q_rng);
      write_bytes(img_dir + "/" + scenes[i].file_name, encode_png(scenes[i]));
      if (on_progress) on_progress(1);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  }
  if (error) std::rethrow_exception(error);
  const auto t1 = std::chrono::steady_clock::now();

  data::CocoCaptions coco;
  std::vector<data::VqaQuestion> vq;
  std::vector<data::VqaAnnotation> va;
  for (int64_t i = 0; i < n; ++i) {
    const Scene& s = scenes[i];
    coco.images.push_back({s.image_id, s.file_name, s.width, s.height});
    for (size_t k = 0; k < caps[i].size(); ++k)
      coco.annotations.push_back({s.image_id * 1000 + static_cast<int64_t>(k), s.image_id, caps[i][k]});
    for (size_t k = 0; k < qs[i].size(); ++k) {
      const Question& q = qs[i][k];
      const int64_t qid = s.image_id * 1000 + static_cast<int64_t>(k);
      vq.push_back({qid, s.image_id, q.question});
      va.push_back({qid, s.image_id, q.family, q.answer_type, q.answer, std::vector<std::string>(10, q.answer)});
    }
  }
  const fs::path out(o.out);
  ScenesFile sf;
  sf.preset = o.preset;
  sf.seed = o.seed;
  sf.scenes = std::move(scenes);
  // The four JSON files are independent: write them in parallel (serialising 100k VQA
  // annotations alone takes seconds).
  std::exception_ptr json_error;
#pragma omp parallel for schedule(dynamic, 1)
  for (int f = 0; f < 4; ++f) {
    try {
      switch (f) {
        case 0: data::write_vqa_annotations((out / "annotations.json").string(), va); break;
        case 1: data::write_vqa_questions((out / "questions.json").string(), vq); break;
        case 2: data::write_coco_captions((out / "captions.json").string(), coco); break;
        case 3: write_scenes_file((out / "scenes.json").string(), sf); break;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!json_error) json_error = std::current_exception();
    }
  }
  if (json_error) std::rethrow_exception(json_error);

  SynthSummary sum;
  sum.images = n;
  sum.captions = static_cast<int64_t>(coco.annotations.size());
  sum.questions = static_cast<int64_t>(vq.size());
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.seconds_images = std::chrono::duration<double>(t1 - t0).count();
  return sum;
}

}  // namespace xmodal::scenes
