// xmodal score: evaluates a results file against COCO-caption or VQA-v2 annotations, with the
// numbers the reference tools give (pycocoevalcap: BLEU-1..4, ROUGE-L, CIDEr-D; vqaEval.py:
// accuracy overall, per answer type, per question type). No model is involved.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_set>

#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "pipeline/caption_checker.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

// The scenes caption checker's report for the results (nullopt without --scenes).
std::optional<scenes::CaptionCheckReport> check_against_scenes(const std::string& scenes_path,
                                                                const std::vector<data::CaptionResult>& res) {
  if (scenes_path.empty()) return std::nullopt;
  auto sc = scenes::read_scenes(scenes_path);
  try {
    return scenes::check_captions(sc, res);
  } catch (const InputError& e) {
    if (!e.subject().empty()) throw;
    throw InputError(scenes_path, e.what());  // name the file the missing scene was looked up in
  }
}

int score_caption(const std::string& ann_path, const std::string& res_path, const std::string& scenes_path,
                  bool as_json) {
  auto gt = data::read_coco_captions(ann_path);
  auto res = data::read_caption_results(res_path);
  if (res.empty()) throw InputError(res_path, "no results to score");
  data::check_caption_results(gt, res, res_path);
  std::unordered_set<int64_t> annotated;
  for (const auto& a : gt.annotations) annotated.insert(a.image_id);
  if (res.size() < annotated.size())
    warn(std::to_string(annotated.size() - res.size()) + " of " + std::to_string(annotated.size()) +
         " annotated images have no result; scoring the " + std::to_string(res.size()) +
         " that do (as pycocoevalcap does with params['image_id'] = the result images)");
  auto check = check_against_scenes(scenes_path, res);
  metrics::CaptionScores s = metrics::score_captions(gt, res);
  if (as_json) {
    // Keys as pycocoevalcap's COCOEvalCap.eval names them.
    Json j = {{"task", "caption"},          {"n_images", s.n_images}, {"Bleu_1", s.bleu[0]}, {"Bleu_2", s.bleu[1]},
              {"Bleu_3", s.bleu[2]},        {"Bleu_4", s.bleu[3]},    {"ROUGE_L", s.rouge_l}, {"CIDEr", s.cider_d},
              {"annotations", ann_path},    {"results", res_path}};
    if (check) {
      Json kinds = Json::object();
      for (const auto& [k, v] : check->parsed_by_kind) kinds[k] = v;
      j["scenes"] = scenes_path;
      j["checker"] = {{"parse_rate", check->parse_rate},
                      {"truthfulness", check->truthfulness},
                      {"coverage", check->coverage},
                      {"captions", check->captions},
                      {"parsed", check->parsed},
                      {"propositions", check->propositions},
                      {"true_propositions", check->true_propositions},
                      {"images", check->images},
                      {"objects", check->objects},
                      {"objects_mentioned", check->objects_mentioned},
                      {"parsed_by_kind", kinds}};
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "metric     score\n";
  const char* names[4] = {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"};
  for (int k = 0; k < 4; ++k) std::cout << pad(names[k], 11) << fixed(s.bleu[k], 4) << "\n";
  std::cout << pad("ROUGE-L", 11) << fixed(s.rouge_l, 4) << "\n";
  std::cout << pad("CIDEr-D", 11) << fixed(s.cider_d, 4) << "\n";
  if (check) {  // the scenes caption checker (pipeline/caption_checker.hpp)
    std::cout << pad("parse", 11) << fixed(check->parse_rate, 4) << "   (" << check->parsed << " of "
              << check->captions << " captions follow the template grammar)\n";
    std::cout << pad("truth", 11) << fixed(check->truthfulness, 4) << "   (" << check->true_propositions << " of "
              << check->propositions << " statements true of the scene)\n";
    std::cout << pad("coverage", 11) << fixed(check->coverage, 4) << "   (" << check->objects_mentioned << " of "
              << check->objects << " objects named)\n";
  }
  std::cout << pad("N", 11) << s.n_images << "\n";
  return 0;
}

int score_vqa(const std::string& ann_path, const std::string& ques_path, const std::string& res_path,
              metrics::VqaEvalVersion version, bool as_json) {
  auto anns = data::read_vqa_annotations(ann_path);
  if (!ques_path.empty()) data::check_vqa_annotations(data::read_vqa_questions(ques_path), anns, ann_path);
  auto res = data::read_vqa_results(res_path);
  if (res.empty()) throw InputError(res_path, "no results to score");
  data::check_vqa_results(anns, res, res_path);
  if (res.size() < anns.size())
    warn(std::to_string(anns.size() - res.size()) + " of " + std::to_string(anns.size()) +
         " questions have no result; scoring the " + std::to_string(res.size()) +
         " that do (the official loadRes would refuse a partial results file)");
  metrics::VqaScores s = metrics::score_vqa(anns, res, version);
  const char* vname = version == metrics::VqaEvalVersion::current ? "current" : "legacy";
  if (as_json) {
    // Keys as vqaEval.py's accuracy dict names them.
    Json per_ans = Json::object(), per_q = Json::object();
    for (const auto& [k, v] : s.per_answer_type) per_ans[k] = v;
    for (const auto& [k, v] : s.per_question_type) per_q[k] = v;
    Json j = {{"task", "vqa"},           {"eval", vname},          {"n_questions", s.n_questions},
              {"overall", s.overall},    {"perAnswerType", per_ans}, {"perQuestionType", per_q},
              {"annotations", ann_path}, {"results", res_path}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  size_t w = 16;
  for (const auto& [k, v] : s.per_question_type) w = std::max(w, k.size() + 4);
  std::cout << pad("accuracy (%)", w) << "score\n";
  std::cout << pad("overall", w) << fixed(s.overall, 2) << "\n";
  std::cout << "per answer type:\n";
  for (const auto& [k, v] : s.per_answer_type) std::cout << pad("  " + k, w) << fixed(v, 2) << "\n";
  std::cout << "per question type:\n";
  for (const auto& [k, v] : s.per_question_type) std::cout << pad("  " + k, w) << fixed(v, 2) << "\n";
  std::cout << pad("N", w) << s.n_questions << "\n";
  return 0;
}

int run_score(const std::vector<std::string>& args) {
  Common c;
  std::string task, annotations, questions, results, scenes_path, vqa_eval = "current";
  bool as_json = false;
  po::options_description opts("Options");
  opts.add_options()
    ("task", po::value(&task)->default_value(""), "caption | vqa (required)")
    ("annotations,a", po::value(&annotations)->default_value(""),
     "COCO-caption file (images + annotations) or VQA-v2 annotation file (required)")
    ("results,r", po::value(&results)->default_value(""),
     "results: [{\"image_id\", \"caption\"}] or [{\"question_id\", \"answer\"}] (required)")
    ("questions", po::value(&questions)->default_value(""),
     "VQA-v2 question file; when given, every annotation is checked against it (vqa only)")
    ("scenes", po::value(&scenes_path)->default_value(""),
     "scenes.json of an `xmodal synth` set (caption only): adds the caption checker's parse rate, "
     "truthfulness and object coverage")
    ("vqa-eval", po::value(&vqa_eval)->default_value(vqa_eval),
     "current: vqaEval.py as of 2021 (normalise only when the 10 answers differ) | legacy: the 2016-2021 "
     "version (always normalise the prediction)")
    ("json", po::bool_switch(&as_json), "print the scores as JSON (pycocoevalcap / vqaEval.py key names)");
  opts.add(common_options(c));
  parse("score", args, opts, {}, c);
  if (c.help) {
    print_help("score", "--task caption|vqa --annotations F --results F [--questions F] [--scenes F] [--json]",
               "Scores results against annotations, reproducing the reference tools. caption: the\n"
               "Stanford PTB tokenization of pycocoevalcap (lower-cased, punctuation removed), then\n"
               "BLEU-1..4, ROUGE-L and CIDEr-D over the images that have a result (METEOR and SPICE are\n"
               "not computed). vqa: the official VQA accuracy, min(1, matching humans / 3) averaged over\n"
               "the ten leave-one-out subsets, in percent rounded to 2 decimals, overall, per answer type\n"
               "and per question type. Ids in the results that are not in the annotations are an error\n"
               "(exit 3); annotated items without a result are skipped with a warning. With --scenes\n"
               "(captions of an `xmodal synth` set), the caption checker also reports how many captions\n"
               "parse, how many of their statements are true of the scene, and how many objects they name.",
               opts,
               "  xmodal score --task caption --annotations data/shapes-test/captions.json --results caps.json\n"
               "  xmodal score --task caption -a data/shapes-test/captions.json -r caps.json \\\n"
               "               --scenes data/shapes-test/scenes.json\n"
               "  xmodal score --task vqa --annotations data/soc-test/annotations.json \\\n"
               "               --questions data/soc-test/questions.json --results answers.json --json\n"
               "  xmodal score --task vqa -a v2_mscoco_val2014_annotations.json -r res.json --vqa-eval legacy\n");
    return 0;
  }
  if (task.empty()) throw UsageError("--task is required: caption or vqa (see xmodal score --help)", "--task");
  if (annotations.empty()) throw UsageError("--annotations FILE is required (see xmodal score --help)", "--annotations");
  if (results.empty()) throw UsageError("--results FILE is required (see xmodal score --help)", "--results");
  metrics::VqaEvalVersion version;
  if (vqa_eval == "current") version = metrics::VqaEvalVersion::current;
  else if (vqa_eval == "legacy") version = metrics::VqaEvalVersion::legacy;
  else throw UsageError("unknown --vqa-eval '" + vqa_eval + "' (expected current or legacy)", "--vqa-eval");
  if (task == "caption") {
    if (!questions.empty()) throw UsageError("--questions is for --task vqa", "--questions");
    return score_caption(annotations, results, scenes_path, as_json);
  }
  if (task == "vqa") {
    if (!scenes_path.empty()) throw UsageError("--scenes is for --task caption", "--scenes");
    return score_vqa(annotations, questions, results, version, as_json);
  }
  throw UsageError("unknown --task '" + task + "' (expected caption or vqa)", "--task");
}

}  // namespace

XMODAL_SUBCOMMAND("score", "score caption or VQA results (BLEU, ROUGE-L, CIDEr-D; VQA accuracy)", run_score);

}  // namespace xmodal::app
