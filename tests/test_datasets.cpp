// COCO-caption and VQA-v2 readers/writers: round trips, the committed fixtures, and every
// validation error (malformed JSON, missing keys, wrong types, duplicate and unknown ids, paths).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "pipeline/datasets.hpp"

using namespace xmodal;
using namespace xmodal::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "xmodal_datasets_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

// Runs f, which must throw InputError; returns its one-line message.
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.one_line();
  }
  FAIL("expected an InputError");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string fixture(const std::string& name) { return std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/metrics/" + name; }

}  // namespace

TEST_CASE("datasets: COCO captions round trip through the writer") {
  TempDir t;
  CocoCaptions c;
  c.images = {{7, "a/b.jpg", 640, 480}, {9, "c.png", 0, 0}};
  c.annotations = {{1, 7, "A dog."}, {2, 7, "caf\xc3\xa9 \"quoted\"\nnewline"}, {3, 9, "x"}};
  const std::string p = t.path + "/caps.json";
  write_coco_captions(p, c);
  CocoCaptions r = read_coco_captions(p);
  REQUIRE(r.images.size() == 2);
  CHECK(r.images[0].id == 7);
  CHECK(r.images[0].file_name == "a/b.jpg");
  CHECK(r.images[0].width == 640);
  CHECK(r.images[0].height == 480);
  REQUIRE(r.annotations.size() == 3);
  CHECK(r.annotations[1].caption == c.annotations[1].caption);
  CHECK(r.annotations[2].image_id == 9);
  // The writer adds the keys the original coco-caption loadRes copies.
  std::string text = read_file(p);
  CHECK(contains(text, "\"info\""));
  CHECK(contains(text, "\"licenses\""));
  CHECK(contains(text, "\"type\""));

  std::vector<CaptionResult> res = {{9, "a cat"}, {7, "two dogs"}};
  write_caption_results(t.path + "/res.json", res);
  auto rr = read_caption_results(t.path + "/res.json");
  REQUIRE(rr.size() == 2);
  CHECK(rr[0].image_id == 9);
  CHECK(rr[1].caption == "two dogs");
  CHECK_NOTHROW(check_caption_results(r, rr, "res.json"));
}

TEST_CASE("datasets: VQA round trip through the writers") {
  TempDir t;
  std::vector<VqaQuestion> q = {{10, 1, "What color is it?"}, {11, 1, "How many?"}};
  std::vector<VqaAnnotation> a = {{10, 1, "what color is", "other", "red", std::vector<std::string>(10, "red")},
                                  {11, 1, "how many", "number", "2", {"2", "two", "2", "3", "2", "2", "2", "2", "2", "2"}}};
  std::vector<VqaResult> r = {{11, "2"}, {10, "blue"}};
  write_vqa_questions(t.path + "/q.json", q);
  write_vqa_annotations(t.path + "/a.json", a);
  write_vqa_results(t.path + "/r.json", r);
  auto q2 = read_vqa_questions(t.path + "/q.json");
  auto a2 = read_vqa_annotations(t.path + "/a.json");
  auto r2 = read_vqa_results(t.path + "/r.json");
  REQUIRE(q2.size() == 2);
  CHECK(q2[1].question == "How many?");
  REQUIRE(a2.size() == 2);
  CHECK(a2[1].answers == a[1].answers);
  CHECK(a2[0].question_type == "what color is");
  CHECK(a2[1].answer_type == "number");
  CHECK(a2[1].multiple_choice_answer == "2");
  REQUIRE(r2.size() == 2);
  CHECK(r2[1].answer == "blue");
  CHECK_NOTHROW(check_vqa_annotations(q2, a2, "a.json"));
  CHECK_NOTHROW(check_vqa_results(a2, r2, "r.json"));
  // The question file carries the keys the official VQA API copies in loadRes.
  std::string text = read_file(t.path + "/q.json");
  for (const char* k : {"\"info\"", "\"task_type\"", "\"data_type\"", "\"data_subtype\"", "\"license\""})
    CHECK(contains(text, k));
  // answer_id makes each answer record distinct (the official leave-one-out compares records).
  CHECK(contains(read_file(t.path + "/a.json"), "\"answer_id\":10"));
}

TEST_CASE("datasets: the streamed annotation writer gives json::dump()'s exact bytes") {
  // Independent reference: the same records as an nlohmann tree, dumped compactly.
  TempDir t;
  std::vector<VqaAnnotation> a = {
      {7001, 7, "B1", "other", "sq\"uare\\", {"a", "\xc3\xa9t\xc3\xa9", "tab\there", "ctl\x01", "\xf0\x9f\x98\x80"}},
      {7002, 7, "count", "number", "3", std::vector<std::string>(10, "3")},
      {-5, 0, "", "", "", {""}}};
  write_vqa_annotations(t.path + "/a.json", a);
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& x : a) {
    nlohmann::json ans = nlohmann::json::array();
    for (size_t k = 0; k < x.answers.size(); ++k)
      ans.push_back({{"answer", x.answers[k]}, {"answer_confidence", "yes"}, {"answer_id", k + 1}});
    arr.push_back({{"question_id", x.question_id}, {"image_id", x.image_id}, {"question_type", x.question_type},
                   {"answer_type", x.answer_type}, {"multiple_choice_answer", x.multiple_choice_answer},
                   {"answers", ans}});
  }
  nlohmann::json root = {{"info", {{"description", "written by xmodal"}}}, {"data_type", "mscoco"},
                         {"data_subtype", "xmodal"}, {"license", nlohmann::json::object()}, {"annotations", arr}};
  CHECK(read_file(t.path + "/a.json") == root.dump() + "\n");
  // Empty list, and invalid UTF-8 is an input error naming the file (nothing written).
  write_vqa_annotations(t.path + "/e.json", {});
  CHECK(read_file(t.path + "/e.json") ==
        "{\"annotations\":[],\"data_subtype\":\"xmodal\",\"data_type\":\"mscoco\",\"info\":{\"description\":\"written "
        "by xmodal\"},\"license\":{}}\n");
  std::vector<VqaAnnotation> bad = {{1, 0, "x", "other", "\xff", {"\xff"}}};
  CHECK_THROWS_AS(write_vqa_annotations(t.path + "/b.json", bad), InputError);
  CHECK_FALSE(fs::exists(t.path + "/b.json"));
}

TEST_CASE("datasets: the committed fixtures read") {
  auto c = read_coco_captions(fixture("captions_gt.json"));
  CHECK(c.images.size() == 9);
  CHECK(c.annotations.size() == 30);
  auto q = read_vqa_questions(fixture("vqa_random_questions.json"));
  auto a = read_vqa_annotations(fixture("vqa_random_annotations.json"));
  CHECK(q.size() == 200);
  CHECK(a.size() == 200);
  for (const auto& x : a) CHECK(x.answers.size() == 10);
}

TEST_CASE("datasets: malformed JSON names the file and the byte") {
  TempDir t;
  std::string p = t.write("bad.json", "{\"images\": [1, 2,, ]}");
  std::string msg = input_error([&] { read_coco_captions(p); });
  CHECK(contains(msg, p));
  CHECK(contains(msg, "invalid JSON at byte 18"));
  CHECK(msg.find('\n') == std::string::npos);
  p = t.write("empty.json", "");
  CHECK(contains(input_error([&] { read_vqa_results(p); }), "invalid JSON at byte"));
  p = t.write("trunc.json", "[{\"question_id\": 1, \"answer\": \"ye");
  CHECK(contains(input_error([&] { read_vqa_results(p); }), "invalid JSON"));
  p = t.write("huge.json", "[{\"question_id\": 1e400, \"answer\": \"x\"}]");  // out of double range
  CHECK(contains(input_error([&] { read_vqa_results(p); }), "invalid JSON"));
  p = t.write("big.json", "[{\"question_id\": 1e300, \"answer\": \"x\"}]");
  CHECK(contains(input_error([&] { read_vqa_results(p); }), "'question_id' must be an integer, got 1e+300"));
  CHECK(contains(input_error([&] { read_vqa_results(t.path + "/missing.json"); }), "missing.json"));
  CHECK(contains(input_error([&] { read_vqa_results(t.path); }), "directory"));
}

TEST_CASE("datasets: missing keys and wrong types name the element") {
  TempDir t;
  auto err = [&](const std::string& content, auto reader) {
    std::string p = t.write("x.json", content);
    std::string m = input_error([&] { reader(p); });
    CHECK(contains(m, p));
    return m;
  };
  auto coco = [](const std::string& p) { read_coco_captions(p); };
  const std::string img = "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}]";
  CHECK(contains(err("{" + img + ", \"annotations\": [{\"id\": 1, \"image_id\": 1, \"caption\": \"x\"}, "
                                   "{\"id\": 2, \"image_id\": 1}]}", coco),
                 "annotations[1]: missing 'caption'"));
  CHECK(contains(err("{" + img + ", \"annotations\": [{\"id\": 1, \"image_id\": \"1\", \"caption\": \"x\"}]}", coco),
                 "annotations[0]: 'image_id' must be an integer, got string"));
  CHECK(contains(err("{" + img + ", \"annotations\": [{\"id\": 1.5, \"image_id\": 1, \"caption\": \"x\"}]}", coco),
                 "'id' must be an integer, got 1.5"));
  CHECK(contains(err("{" + img + ", \"annotations\": [{\"id\": 1, \"image_id\": 1, \"caption\": 7}]}", coco),
                 "'caption' must be a string, got number"));
  CHECK(contains(err("{" + img + "}", coco), "missing top-level 'annotations'"));
  CHECK(contains(err("[]", coco), "expected a JSON object at top level, got array"));
  CHECK(contains(err("{\"images\": {}, \"annotations\": []}", coco), "'images' must be an array, got object"));
  CHECK(contains(err("{\"images\": [3], \"annotations\": []}", coco), "images[0]: expected an object, got number"));
  auto res = [](const std::string& p) { read_caption_results(p); };
  CHECK(contains(err("{\"image_id\": 1}", res), "expected a JSON array at top level, got object"));
  CHECK(contains(err("[{\"image_id\": 1}]", res), "results[0]: missing 'caption'"));
  auto ann = [](const std::string& p) { read_vqa_annotations(p); };
  const std::string head = "{\"annotations\": [{\"question_id\": 1, \"image_id\": 1, \"question_type\": \"t\", "
                           "\"answer_type\": \"other\", \"multiple_choice_answer\": \"x\", ";
  CHECK(contains(err(head + "\"answers\": [{\"answer\": \"x\"}, {\"answer_id\": 2}]}]}", ann),
                 "annotations[0].answers[1]: missing 'answer'"));
  CHECK(contains(err(head + "\"answers\": []}]}", ann), "annotations[0]: 'answers' is empty"));
  CHECK(contains(err(head + "\"answers\": \"x\"}]}", ann), "'answers' must be an array, got string"));
  auto ques = [](const std::string& p) { read_vqa_questions(p); };
  CHECK(contains(err("{\"questions\": [{\"question_id\": 1, \"image_id\": 1}]}", ques), "questions[0]: missing 'question'"));
}

TEST_CASE("datasets: duplicate and unknown ids") {
  TempDir t;
  auto msg = [&](const std::string& content, auto reader) {
    std::string p = t.write("x.json", content);
    return input_error([&] { reader(p); });
  };
  auto coco = [](const std::string& p) { read_coco_captions(p); };
  CHECK(contains(msg("{\"images\": [{\"id\": 1, \"file_name\": \"a\"}, {\"id\": 1, \"file_name\": \"b\"}], "
                     "\"annotations\": []}", coco),
                 "images[1]: duplicate id 1 (first at images[0])"));
  CHECK(contains(msg("{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": ["
                     "{\"id\": 5, \"image_id\": 1, \"caption\": \"x\"}, {\"id\": 5, \"image_id\": 1, \"caption\": \"y\"}]}",
                     coco),
                 "annotations[1]: duplicate id 5"));
  CHECK(contains(msg("{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": ["
                     "{\"id\": 5, \"image_id\": 17, \"caption\": \"x\"}]}", coco),
                 "annotations[0]: image_id 17 is not in 'images'"));
  CHECK(contains(msg("[{\"image_id\": 3, \"caption\": \"a\"}, {\"image_id\": 3, \"caption\": \"b\"}]",
                     [](const std::string& p) { read_caption_results(p); }),
                 "results[1]: duplicate image_id 3"));
  CHECK(contains(msg("[{\"question_id\": 3, \"answer\": \"a\"}, {\"question_id\": 3, \"answer\": \"b\"}]",
                     [](const std::string& p) { read_vqa_results(p); }),
                 "results[1]: duplicate question_id 3"));

  // Cross-file checks name the checked file and the element.
  CocoCaptions gt;
  gt.images = {{1, "a.jpg", 0, 0}, {2, "b.jpg", 0, 0}};
  gt.annotations = {{1, 1, "x"}};
  std::vector<CaptionResult> res = {{1, "y"}, {42, "z"}};
  std::string m = input_error([&] { check_caption_results(gt, res, "res.json"); });
  CHECK(contains(m, "res.json: results[1]: image_id 42 is not in the annotations"));
  res = {{2, "y"}};
  CHECK(contains(input_error([&] { check_caption_results(gt, res, "res.json"); }), "image_id 2 has no reference captions"));

  std::vector<VqaQuestion> q = {{10, 1, "?"}};
  std::vector<VqaAnnotation> a = {{10, 1, "t", "other", "x", {"x"}}, {11, 1, "t", "other", "x", {"x"}}};
  CHECK(contains(input_error([&] { check_vqa_annotations(q, a, "ann.json"); }),
                 "ann.json: annotations[1]: question_id 11 is not in the questions file"));
  a = {{10, 2, "t", "other", "x", {"x"}}};
  CHECK(contains(input_error([&] { check_vqa_annotations(q, a, "ann.json"); }),
                 "question_id 10 has image_id 2 but the questions file says 1"));
  std::vector<VqaResult> r = {{10, "x"}, {99, "y"}};
  CHECK(contains(input_error([&] { check_vqa_results(a, r, "r.json"); }),
                 "r.json: results[1]: question_id 99 is not in the annotations"));
}

TEST_CASE("datasets: paths stay under the root; missing images are reported") {
  CHECK(resolve_under_root("/data/coco", "val2014/x.jpg", "s.json") == "/data/coco/val2014/x.jpg");
  CHECK(resolve_under_root("/data/coco/", "x.jpg", "s.json") == "/data/coco/x.jpg");
  CHECK(resolve_under_root("", "x.jpg", "s.json") == "x.jpg");
  CHECK(resolve_under_root("r", "a..b/..c", "s.json") == "r/a..b/..c");  // only a whole ".." component is refused
  CHECK(contains(input_error([] { resolve_under_root("/r", "/etc/passwd", "s.json"); }), "s.json: '/etc/passwd' is an absolute path"));
  CHECK(contains(input_error([] { resolve_under_root("/r", "../x.jpg", "s.json"); }), "contains '..'"));
  CHECK(contains(input_error([] { resolve_under_root("/r", "a/../../x.jpg", "s.json"); }), "contains '..'"));
  CHECK(contains(input_error([] { resolve_under_root("/r", "a/..", "s.json"); }), "contains '..'"));
  CHECK(contains(input_error([] { resolve_under_root("/r", "", "s.json"); }), "empty file name"));

  TempDir t;
  // The reader refuses such names too, naming the image.
  std::string p = t.write("c.json", "{\"images\": [{\"id\": 1, \"file_name\": \"ok.jpg\"}, {\"id\": 2, \"file_name\": "
                                    "\"../../etc/passwd\"}], \"annotations\": []}");
  CHECK(contains(input_error([&] { read_coco_captions(p); }), "images[1]: file_name: '../../etc/passwd' contains '..'"));

  t.write("here.jpg", "x");
  fs::create_directory(t.path + "/dir.jpg");
  std::vector<CocoImage> imgs = {{1, "here.jpg", 0, 0}, {2, "gone.jpg", 0, 0}, {3, "dir.jpg", 0, 0}};
  CHECK(missing_images(t.path, imgs, "c.json") == std::vector<int64_t>{2, 3});
  CHECK(regular_file_exists(t.path + "/here.jpg"));
  CHECK_FALSE(regular_file_exists(t.path + "/dir.jpg"));
  imgs.push_back({4, "/abs.jpg", 0, 0});
  CHECK_THROWS_AS(missing_images(t.path, imgs, "c.json"), InputError);
}

TEST_CASE("datasets: writers are atomic and report failures") {
  TempDir t;
  std::string p = t.path + "/r.json";
  write_vqa_results(p, {{1, "a"}});
  // Writing into a directory that does not exist fails with an InputError naming the file and
  // leaves nothing behind.
  std::string bad = t.path + "/no/such/dir/r.json";
  CHECK(contains(input_error([&] { write_vqa_results(bad, {{1, "a"}}); }), bad));
  // Invalid UTF-8 cannot be written as JSON.
  CHECK(contains(input_error([&] { write_vqa_results(p, {{1, std::string("\xff\xfe")}}); }), "cannot write JSON"));
  CHECK(read_vqa_results(p).at(0).answer == "a");  // the previous file is untouched
  size_t n = 0;
  for (auto& e : fs::directory_iterator(t.path)) n += e.path().filename().string().find(".tmp") != std::string::npos;
  CHECK(n == 0);
}
