// Metrics against the reference implementations run on the committed fixtures
// (tests/fixtures/metrics, made by training/metrics_reference.py with the original Java
// PTBTokenizer, pycocoevalcap and vqaEval.py), plus small hand-computed cases.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"

using namespace xmodal;
using namespace xmodal::metrics;
using json = nlohmann::json;

namespace {

std::string fixture(const std::string& name) { return std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/metrics/" + name; }

json load_json(const std::string& name) { return json::parse(read_file(fixture(name))); }

std::vector<std::string> load_lines(const std::string& name) {
  std::string s = read_file(fixture(name));
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    size_t p = s.find('\n', start);
    if (p == std::string::npos) {
      lines.push_back(s.substr(start));
      break;
    }
    lines.push_back(s.substr(start, p - start));
    start = p + 1;
  }
  return lines;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + v[i];
  return out;
}

std::string rstrip_spaces(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Compares the C++ caption scores of a fixture set with pycocoevalcap's; returns the max diff.
double check_caption_set(const std::string& prefix) {
  const std::string gt_path = fixture(prefix + "_gt.json"), res_path = fixture(prefix + "_results.json");
  auto gt = data::read_coco_captions(gt_path);
  auto res = data::read_caption_results(res_path);
  data::check_caption_results(gt, res, res_path);
  json want = load_json(prefix + "_expected.json");
  CaptionScores got = score_captions(gt, res);
  REQUIRE(got.n_images == want["n_images"].get<size_t>());
  double maxdiff = 0;
  auto cmp = [&](double a, double b) { maxdiff = std::max(maxdiff, std::fabs(a - b)); };
  for (int k = 0; k < 4; ++k) cmp(got.bleu[k], want["bleu"][k].get<double>());
  cmp(got.rouge_l, want["rouge_l"].get<double>());
  cmp(got.cider_d, want["cider_d"].get<double>());
  REQUIRE(got.rouge_l_per_image.size() == want["rouge_l_per_image"].size());
  for (size_t i = 0; i < got.rouge_l_per_image.size(); ++i) {
    cmp(got.rouge_l_per_image[i], want["rouge_l_per_image"][i].get<double>());
    cmp(got.cider_d_per_image[i], want["cider_d_per_image"][i].get<double>());
  }
  MESSAGE(prefix << ": " << got.n_images << " images, BLEU-4 " << got.bleu[3] << " ROUGE-L " << got.rouge_l
                 << " CIDEr-D " << got.cider_d << ", max |diff| vs pycocoevalcap " << maxdiff);
  // The tokenized captions themselves (the Java tokenizer's output after punctuation removal).
  std::vector<std::string> hyps;
  for (const auto& h : want["tokenized_hyps"]) hyps.push_back(h.get<std::string>());
  std::vector<std::vector<std::string>> refs;
  for (const auto& r : want["tokenized_refs"]) refs.push_back(r.get<std::vector<std::string>>());
  // Rebuild the inputs in the scored order to compare tokenization directly.
  std::vector<std::string> raw_hyps, raw_refs;
  std::vector<std::string> flat_want_refs;
  for (auto id_j : want["image_ids"]) {
    int64_t id = id_j.get<int64_t>();
    for (const auto& r : res)
      if (r.image_id == id) raw_hyps.push_back(r.caption);
    for (const auto& a : gt.annotations)
      if (a.image_id == id) raw_refs.push_back(a.caption);
  }
  for (const auto& rs : refs)
    for (const auto& r : rs) flat_want_refs.push_back(r);
  CHECK(coco_tokenize(raw_hyps) == hyps);
  CHECK(coco_tokenize(raw_refs) == flat_want_refs);
  // Scoring the reference tokenization directly gives the same numbers.
  CaptionScores again = score_tokenized(refs, hyps);
  CHECK(again.cider_d == got.cider_d);
  CHECK(again.bleu[3] == got.bleu[3]);
  return maxdiff;
}

void check_vqa_set(const std::string& prefix) {
  const std::string res_path = fixture(prefix + "_results.json"), ann_path = fixture(prefix + "_annotations.json");
  auto q = data::read_vqa_questions(fixture(prefix + "_questions.json"));
  auto a = data::read_vqa_annotations(ann_path);
  auto r = data::read_vqa_results(res_path);
  data::check_vqa_annotations(q, a, ann_path);
  data::check_vqa_results(a, r, res_path);
  json want_all = load_json(prefix + "_expected.json");
  for (auto [name, version] : {std::pair{"current", VqaEvalVersion::current}, std::pair{"legacy", VqaEvalVersion::legacy}}) {
    const json& want = want_all[name];
    VqaScores got = score_vqa(a, r, version);
    REQUIRE(got.n_questions == want["n_questions"].get<size_t>());
    double maxdiff = 0;
    for (size_t i = 0; i < got.per_question.size(); ++i)
      maxdiff = std::max(maxdiff, std::fabs(got.per_question[i] - want["per_question"][i].get<double>()));
    CHECK(maxdiff <= 1e-12);
    CHECK(got.overall == want["overall"].get<double>());
    CHECK(got.per_answer_type.size() == want["per_answer_type"].size());
    for (const auto& [k, v] : got.per_answer_type) CHECK(v == want["per_answer_type"][k].get<double>());
    CHECK(got.per_question_type.size() == want["per_question_type"].size());
    for (const auto& [k, v] : got.per_question_type) CHECK(v == want["per_question_type"][k].get<double>());
    MESSAGE(prefix << " " << std::string(name) << ": overall " << got.overall << " over " << got.n_questions
                   << " questions; max |diff| per question " << maxdiff);
  }
}

}  // namespace

TEST_CASE("ptb tokenizer: identical to the Java PTBTokenizer 3.4.1 on the fixture lines") {
  auto input = load_lines("ptb_input.txt");
  auto want = load_lines("ptb_expected.txt");
  REQUIRE(input.size() > 600);
  REQUIRE(want.size() >= input.size());
  auto got = ptb_tokens_lines(input);
  REQUIRE(got.size() == input.size());
  int bad = 0;
  for (size_t i = 0; i < input.size(); ++i) {
    if (rstrip_spaces(join(got[i])) != rstrip_spaces(want[i])) {
      if (++bad <= 5) MESSAGE("line " << i << ": '" << input[i] << "' -> '" << join(got[i]) << "', Java '" << want[i] << "'");
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("ptb tokenizer: contractions, quotes, brackets, punctuation removal") {
  CHECK(join(ptb_tokens("Don't stop!")) == "do n't stop !");
  CHECK(join(ptb_tokens("it's a dog's toy")) == "it 's a dog 's toy");
  CHECK(join(ptb_tokens("They can't, won't; I'm sure.")) == "they ca n't , wo n't ; i 'm sure .");
  CHECK(join(ptb_tokens("\"Hi\" (there)")) == "`` hi '' -lrb- there -rrb-");
  CHECK(join(ptb_tokens("cannot")) == "can not");
  CHECK(join(ptb_tokens("A 3.5-inch disk, 1,000 of them at 10:30.")) == "a 3.5-inch disk , 1,000 of them at 10:30 .");
  CHECK(join(ptb_tokens("Mr. Smith on Main St.")) == "mr. smith on main st.");
  CHECK(join(ptb_tokens("It's late...")) == "it 's late ...");
  // pycocoevalcap drops '' ' `` ` -LRB- ... but compares after lower-casing, so -lrb- stays.
  CHECK(coco_tokenize("\"Two dogs\" (with a toy) -- don't!") == "two dogs -lrb- with a toy -rrb- do n't");
  CHECK(coco_tokenize("...") == "");
  CHECK(coco_tokenize("A man, a plan; a canal: Panama?!") == "a man a plan a canal panama ?!");
}

TEST_CASE("caption metrics: hand-computed BLEU and ROUGE-L") {
  // hyp "a b" vs ref "a b c d": p1 = 2/2, p2 = 1/1, p3 = p4 = (0+1e-15)/(0+1e-9);
  // brevity penalty exp(1 - 4/2) (ratio computed with the tiny/small offsets).
  double b[4];
  bleu({{"a b c d"}}, {"a b"}, b);
  const double ratio = (2 + 1e-15) / (4 + 1e-9), bp = std::exp(1 - 1 / ratio);
  CHECK(b[0] == doctest::Approx((2 + 1e-15) / (2 + 1e-9) * bp).epsilon(1e-14));
  CHECK(b[1] == doctest::Approx(std::sqrt((2 + 1e-15) / (2 + 1e-9) * (1 + 1e-15) / (1 + 1e-9)) * bp).epsilon(1e-14));
  CHECK(b[3] < 1e-2);
  // Identical sentences: every precision is 1 up to the offsets.
  bleu({{"a b c d e"}}, {"a b c d e"}, b);
  for (double x : b) CHECK(x == doctest::Approx(1.0).epsilon(1e-8));
  // ROUGE-L: ref "a b c d", hyp "a c e": LCS 2, P = 2/3, R = 1/2, F = (1+1.44) P R / (R + 1.44 P).
  const double p = 2.0 / 3, r = 0.5, f = (1 + 1.44) * p * r / (r + 1.44 * p);
  CHECK(rouge_l({"a b c d"}, "a c e") == doctest::Approx(f).epsilon(1e-12));
  // The best precision and the best recall may come from different references.
  CHECK(rouge_l({"x", "a c e f g h"}, "a c e") > 0);
  CHECK(rouge_l({"a b"}, "") == 0.0);
  // CIDEr-D: one image only -> idf log(1) - log(1) = 0 for every n-gram -> 0.
  CHECK(cider_d({{"a b c"}}, {"a b c"})[0] == 0.0);
}

TEST_CASE("caption metrics: pycocoevalcap on the hand-made set (punctuation, contractions, numbers)") {
  CHECK(check_caption_set("captions") <= 1e-12);
}

TEST_CASE("caption metrics: pycocoevalcap on 200 generated images") {
  CHECK(check_caption_set("captions_random") <= 1e-12);
}

TEST_CASE("vqa: normalisation steps") {
  CHECK(vqa_process_punctuation("yes.") == "yes");
  CHECK(vqa_process_punctuation("3.5") == "3.5");
  CHECK(vqa_process_punctuation("1,000") == "1000");       // digit,digit anywhere: punctuation deleted
  CHECK(vqa_process_punctuation("t-shirt") == "t shirt");  // otherwise replaced by a space
  CHECK(vqa_process_punctuation("black, white") == "black white");  // ", " -> deleted
  CHECK(vqa_process_punctuation(std::string(40, '.') + "x") == std::string(8, '.') + "x");  // count=32
  CHECK(vqa_process_digit_article("Two Dogs") == "2 dogs");
  CHECK(vqa_process_digit_article("the dog") == "dog");
  CHECK(vqa_process_digit_article("none") == "0");
  CHECK(vqa_process_digit_article("dont know") == "don't know");
  CHECK(vqa_process_digit_article("  an   apple ") == "apple");
}

TEST_CASE("vqa: accuracy per question, current and legacy") {
  std::vector<std::string> yes10(10, "yes");
  CHECK(vqa_accuracy(yes10, "yes") == 1.0);
  CHECK(vqa_accuracy(yes10, "Yes") == 0.0);  // current: unanimous answers are not normalised
  CHECK(vqa_accuracy(yes10, "Yes", VqaEvalVersion::legacy) == 1.0);
  std::vector<std::string> mixed = {"2", "2", "two", "3", "3", "3", "3", "3", "3", "3"};
  // 'two' -> '2' matches 3 answers: 3 leave-one-out subsets with 2 matches (2/3), 7 with 3 (1).
  CHECK(vqa_accuracy(mixed, "two") == doctest::Approx((3 * (2.0 / 3) + 7 * 1.0) / 10).epsilon(1e-15));
  CHECK(vqa_accuracy(mixed, "four") == 0.0);
}

TEST_CASE("vqa: official evaluation on the hand-made and the generated set") {
  check_vqa_set("vqa");
  check_vqa_set("vqa_random");
}

TEST_CASE("python2_round: exact binary value, ties away from zero") {
  json cases = load_json("py2_round.json");
  for (const auto& c : cases) {
    double x = c[0].get<double>(), want = c[1].get<double>();
    CHECK_MESSAGE(python2_round(x, 2) == want, x);
  }
  CHECK(python2_round(0.125, 2) == 0.13);  // exact tie: away from zero (Python 3 gives 0.12)
  CHECK(python2_round(2.675, 2) == 2.67);  // 2.67499999... in binary
  CHECK(python2_round(-0.125, 2) == -0.13);
}
