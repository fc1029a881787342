// xmodal eval: runs the scenes model over a dataset (COCO captions or VQA-v2 layout, e.g. the
// output of `xmodal synth`) and scores it with pipeline/metrics (+ the caption checker when the
// dataset has a scenes.json).
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "apps/blip_cli.hpp"
#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/image.hpp"
#include "pipeline/caption_checker.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"
#include "pipeline/scenes.hpp"
#include "pipeline/scenes_model.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// image_id -> file name, from DIR/captions.json (COCO "images"), else DIR/scenes.json.
std::unordered_map<int64_t, std::string> image_files(const std::string& dir) {
  std::unordered_map<int64_t, std::string> m;
  const std::string caps = dir + "/captions.json", scenes = dir + "/scenes.json";
  if (data::regular_file_exists(caps)) {
    for (const auto& im : data::read_coco_captions(caps).images) m[im.id] = im.file_name;
  } else if (data::regular_file_exists(scenes)) {
    for (const auto& s : scenes::read_scenes(scenes)) m[s.image_id] = s.file_name;
  } else {
    throw InputError(dir, "has neither captions.json nor scenes.json to map image ids to files");
  }
  return m;
}

Json pairs_json(const std::vector<std::pair<std::string, double>>& v) {
  Json j = Json::object();
  for (const auto& [k, x] : v) j[k] = x;
  return j;
}

double round2(double x) { return std::round(x * 100.0) / 100.0; }

Json eval_vqa(const ScenesModel& m, const std::string& dir, int64_t limit, const std::string& results_out) {
  const std::string qpath = dir + "/questions.json", apath = dir + "/annotations.json";
  const auto questions = data::read_vqa_questions(qpath);
  auto annotations = data::read_vqa_annotations(apath);
  data::check_vqa_annotations(questions, annotations, apath);
  const auto files = image_files(dir);

  // Questions grouped by image, images in first-appearance order, at most `limit` images.
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
  const auto t0 = Clock::now();
  double encode_s = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t id = order[i];
    auto f = files.find(id);
    if (f == files.end()) throw InputError(qpath, "image_id " + std::to_string(id) + " has no image file entry");
    const auto te = Clock::now();
    const Image img = load_image(data::resolve_under_root(dir + "/images", f->second, qpath));
    const auto mem = m.prepare_image(img);
    encode_s += seconds_since(te);
    for (const auto* q : by_image[id]) results.push_back({q->question_id, m.answer(mem, q->question)});
    if ((i + 1) % 200 == 0) info("eval: " + std::to_string(i + 1) + "/" + std::to_string(order.size()) + " images");
  }
  const double secs = seconds_since(t0);
  if (!results_out.empty()) data::write_vqa_results(results_out, results);

  // Score only the annotations that were answered (all of them without --limit).
  std::unordered_map<int64_t, bool> answered;
  for (const auto& r : results) answered[r.question_id] = true;
  std::vector<data::VqaAnnotation> scored;
  for (auto& a : annotations)
    if (answered.count(a.question_id)) scored.push_back(a);
  data::check_vqa_results(scored, results, results_out.empty() ? "results" : results_out);
  const auto s = metrics::score_vqa(scored, results);

  Json j;
  j["task"] = "vqa";
  j["images"] = order.size();
  j["questions"] = s.n_questions;
  j["accuracy"] = s.overall;
  j["per_question_type"] = pairs_json(s.per_question_type);
  j["per_answer_type"] = pairs_json(s.per_answer_type);
  // Sort-of-CLEVR's two headline numbers: U* non-relational, B* relational.
  double rel = 0, nonrel = 0;
  int64_t nrel = 0, nnon = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    const std::string& t = scored[i].question_type;
    if (t.size() == 2 && t[0] == 'B') rel += s.per_question[i], ++nrel;
    if (t.size() == 2 && t[0] == 'U') nonrel += s.per_question[i], ++nnon;
  }
  if (nrel + nnon > 0) {
    j["non_relational"] = nnon ? round2(100.0 * nonrel / static_cast<double>(nnon)) : 0.0;
    j["relational"] = nrel ? round2(100.0 * rel / static_cast<double>(nrel)) : 0.0;
  }
  j["seconds"] = secs;
  j["ms_per_image_encode"] = order.empty() ? 0.0 : 1000.0 * encode_s / static_cast<double>(order.size());
  j["ms_per_question"] = results.empty() ? 0.0 : 1000.0 * (secs - encode_s) / static_cast<double>(results.size());
  return j;
}

Json eval_caption(const ScenesModel& m, const std::string& dir, int64_t limit, const std::string& results_out) {
  const std::string cpath = dir + "/captions.json";
  const auto gt = data::read_coco_captions(cpath);
  std::vector<data::CaptionResult> results;
  const auto t0 = Clock::now();
  for (const auto& im : gt.images) {
    if (limit > 0 && static_cast<int64_t>(results.size()) >= limit) break;
    const Image img = load_image(data::resolve_under_root(dir + "/images", im.file_name, cpath));
    results.push_back({im.id, m.caption(m.prepare_image(img))});
    if (results.size() % 200 == 0) info("eval: " + std::to_string(results.size()) + "/" + std::to_string(gt.images.size()) + " images");
  }
  const double secs = seconds_since(t0);
  if (!results_out.empty()) data::write_caption_results(results_out, results);
  data::check_caption_results(gt, results, results_out.empty() ? "results" : results_out);
  const auto s = metrics::score_captions(gt, results);
  Json j;
  j["task"] = "caption";
  j["images"] = results.size();
  j["bleu"] = {s.bleu[0], s.bleu[1], s.bleu[2], s.bleu[3]};
  j["bleu_4"] = s.bleu[3];
  j["rouge_l"] = s.rouge_l;
  j["cider_d"] = s.cider_d;
  const std::string scenes_path = dir + "/scenes.json";
  if (data::regular_file_exists(scenes_path)) {
    const auto r = scenes::check_captions(scenes::read_scenes(scenes_path), results);
    j["parse_rate"] = r.parse_rate;
    j["truthfulness"] = r.truthfulness;
    j["coverage"] = r.coverage;
    Json kinds = Json::object();
    for (const auto& [k, n] : r.parsed_by_kind) kinds[k] = n;
    j["parsed_by_kind"] = kinds;
  }
  j["seconds"] = secs;
  j["ms_per_image"] = results.empty() ? 0.0 : 1000.0 * secs / static_cast<double>(results.size());
  return j;
}

int run_eval(const std::vector<std::string>& args) {
  if (wants_blip(args)) return run_blip_eval(args);  // a BLIP checkpoint: apps/blip_cli.cpp
  Common c;
  std::string model, dataset, task, results_out, summary_out;
  int64_t limit = 0;
  po::options_description opts("Options");
  opts.add_options()
    ("model,m", po::value(&model)->default_value(""),
     "model directory (default: the built-in assets/models/scenes, or $XMODAL_MODEL_DIR)")
    ("dataset,d", po::value(&dataset)->default_value(""),
     "dataset directory: images/ + captions.json (caption) or questions.json + annotations.json (vqa)")
    ("task,t", po::value(&task)->default_value(""), "caption | vqa")
    ("results-out,o", po::value(&results_out)->default_value(""),
     "write the results file: COCO [{image_id, caption}] or VQA [{question_id, answer}]")
    ("summary-out", po::value(&summary_out)->default_value(""), "also write the summary JSON to this file")
    ("limit", po::value(&limit)->default_value(0), "evaluate only the first N images (0 = all)");
  opts.add(common_options(c));
  po::positional_options_description pos;
  parse("eval", args, opts, pos, c);
  if (c.help) {
    print_help("eval", "[--model DIR] --dataset DIR --task caption|vqa [--results-out FILE]",
               "Captions every image (caption) or answers every question (vqa) of a dataset with greedy\n"
               "decoding, then scores the results: VQA accuracy (official formula; per question type and\n"
               "answer type; Sort-of-CLEVR's non-relational U* and relational B* averages), or BLEU-1..4,\n"
               "ROUGE-L, CIDEr-D and, when DIR/scenes.json exists, the caption checker's parse rate,\n"
               "truthfulness and coverage. Prints one JSON summary to stdout.\nBLIP checkpoints (docs/blip.md): xmodal eval --model BLIP_DIR --help lists their options.",
               opts,
               "  xmodal synth --preset sort-of-clevr --split test --out /tmp/soc-test\n"
               "  xmodal eval --dataset /tmp/soc-test --task vqa --results-out /tmp/soc-test-results.json\n"
               "  xmodal eval --dataset /tmp/shapes-test --task caption --limit 100\n");
    return 0;
  }
  if (dataset.empty()) throw UsageError("--dataset DIR is required (see xmodal eval --help)", "--dataset");
  if (task != "caption" && task != "vqa") throw UsageError("--task must be caption or vqa, got '" + task + "'", "--task");
  if (limit < 0) throw UsageError("--limit must be >= 0, got " + std::to_string(limit), "--limit");
  const ScenesModel m = ScenesModel::load(resolve_scenes_model_dir(model));
  Json j = task == "vqa" ? eval_vqa(m, dataset, limit, results_out) : eval_caption(m, dataset, limit, results_out);
  j["model"] = m.dir();
  j["dataset"] = dataset;
  const std::string text = j.dump(2) + "\n";
  if (!summary_out.empty()) write_file_atomic(summary_out, text);
  std::cout << text;
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("eval", "score the scenes model on a caption or VQA dataset", run_eval);

}  // namespace xmodal::app
