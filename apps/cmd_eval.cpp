// xmodal eval: runs any model behind pipeline/vlm.hpp (the built-in scenes model or a BLIP
// checkpoint) over a COCO-caption or VQA-v2 dataset (real ones, or `xmodal synth` output) and
// scores it with pipeline/metrics (+ the scenes caption checker when the dataset has scenes.json).
// Results go to a journal as they are made (apps/eval_journal), so a killed run continues with
// --resume; --shard K/N runs one slice and `--merge` scores the slices' journals once.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "apps/eval_journal.hpp"
#include "apps/progress.hpp"
#include "apps/subcommand.hpp"
#include "apps/vlm_cli.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/image.hpp"
#include "pipeline/caption_checker.hpp"
#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"
#include "pipeline/scenes.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ----------------------------------------------------------------------------------- dataset

struct Item {  // one image of the run, in dataset order
  int64_t image_id = 0;
  std::string file;                              // resolved path
  std::vector<const data::VqaQuestion*> questions;  // vqa: this image's questions, file order
};

struct Dataset {
  std::string task, dir, source;  // source: the JSON file the work list comes from
  data::CocoCaptions gt;          // caption
  std::vector<data::VqaQuestion> questions;
  std::vector<data::VqaAnnotation> annotations;
  std::vector<Item> items;
};

// image_id -> file name, from DIR/captions.json (COCO "images"), else DIR/scenes.json.
std::unordered_map<int64_t, std::string> image_files(const std::string& dir) {
  std::unordered_map<int64_t, std::string> m;
  const std::string caps = dir + "/captions.json", scenes_path = dir + "/scenes.json";
  if (data::regular_file_exists(caps)) {
    for (const auto& im : data::read_coco_captions(caps).images) m[im.id] = im.file_name;
  } else if (data::regular_file_exists(scenes_path)) {
    for (const auto& s : scenes::read_scenes(scenes_path)) m[s.image_id] = s.file_name;
  } else {
    throw InputError(dir, "has neither captions.json nor scenes.json to map image ids to files");
  }
  return m;
}

Dataset load_dataset(const std::string& dir, const std::string& task, int64_t limit) {
  Dataset d;
  d.task = task;
  d.dir = dir;
  const std::string images = dir + "/images";
  if (task == "caption") {
    d.source = dir + "/captions.json";
    d.gt = data::read_coco_captions(d.source);
    for (const auto& im : d.gt.images) {
      if (limit > 0 && static_cast<int64_t>(d.items.size()) >= limit) break;
      d.items.push_back({im.id, data::resolve_under_root(images, im.file_name, d.source), {}});
    }
    return d;
  }
  d.source = dir + "/questions.json";
  const std::string apath = dir + "/annotations.json";
  d.questions = data::read_vqa_questions(d.source);
  d.annotations = data::read_vqa_annotations(apath);
  data::check_vqa_annotations(d.questions, d.annotations, apath);
  const auto files = image_files(dir);
  std::unordered_map<int64_t, size_t> index;
  for (const auto& q : d.questions) {
    auto it = index.find(q.image_id);
    if (it == index.end()) {
      if (limit > 0 && static_cast<int64_t>(d.items.size()) >= limit) continue;
      auto f = files.find(q.image_id);
      if (f == files.end())
        throw InputError(d.source, "image_id " + std::to_string(q.image_id) + " has no image file entry");
      it = index.emplace(q.image_id, d.items.size()).first;
      d.items.push_back({q.image_id, data::resolve_under_root(images, f->second, d.source), {}});
    }
    d.items[it->second].questions.push_back(&q);
  }
  return d;
}

// ------------------------------------------------------------------------------------ scoring

// Records (journal lines) -> results in dataset order. Records of other images are ignored;
// missing ones are left out (and counted in *missing).
std::vector<data::CaptionResult> caption_results(const Dataset& d, const std::unordered_map<int64_t, std::string>& got,
                                                 size_t* missing) {
  std::vector<data::CaptionResult> out;
  for (const auto& it : d.items) {
    auto f = got.find(it.image_id);
    if (f == got.end()) ++*missing;
    else out.push_back({it.image_id, f->second});
  }
  return out;
}

std::vector<data::VqaResult> vqa_results(const Dataset& d, const std::unordered_map<int64_t, std::string>& got,
                                         size_t* missing) {
  std::vector<data::VqaResult> out;
  for (const auto& it : d.items)
    for (const auto* q : it.questions) {
      auto f = got.find(q->question_id);
      if (f == got.end()) ++*missing;
      else out.push_back({q->question_id, f->second});
    }
  return out;
}

Json pairs_json(const std::vector<std::pair<std::string, double>>& v) {
  Json j = Json::object();
  for (const auto& [k, x] : v) j[k] = x;
  return j;
}

double round2(double x) { return std::round(x * 100.0) / 100.0; }

// Scores the results (dataset order) and returns the summary. Writes results_out (atomic).
Json score(const Dataset& d, const std::unordered_map<int64_t, std::string>& got, const std::string& results_out) {
  Json j;
  size_t missing = 0;
  j["task"] = d.task;
  if (d.task == "caption") {
    const auto results = caption_results(d, got, &missing);
    if (!results_out.empty()) data::write_caption_results(results_out, results);
    data::check_caption_results(d.gt, results, results_out.empty() ? "results" : results_out);
    j["images"] = results.size();
    if (results.empty()) return j;
    const auto s = metrics::score_captions(d.gt, results);
    j["bleu"] = {s.bleu[0], s.bleu[1], s.bleu[2], s.bleu[3]};
    j["bleu_4"] = s.bleu[3];
    j["rouge_l"] = s.rouge_l;
    j["cider_d"] = s.cider_d;
    const std::string scenes_path = d.dir + "/scenes.json";
    if (data::regular_file_exists(scenes_path)) {
      const auto r = scenes::check_captions(scenes::read_scenes(scenes_path), results);
      j["parse_rate"] = r.parse_rate;
      j["truthfulness"] = r.truthfulness;
      j["coverage"] = r.coverage;
      Json kinds = Json::object();
      for (const auto& [k, n] : r.parsed_by_kind) kinds[k] = n;
      j["parsed_by_kind"] = kinds;
    }
    return j;
  }
  const auto results = vqa_results(d, got, &missing);
  if (!results_out.empty()) data::write_vqa_results(results_out, results);
  std::unordered_map<int64_t, bool> answered;
  for (const auto& r : results) answered[r.question_id] = true;
  std::vector<data::VqaAnnotation> scored;
  for (const auto& a : d.annotations)
    if (answered.count(a.question_id)) scored.push_back(a);
  data::check_vqa_results(scored, results, results_out.empty() ? "results" : results_out);
  std::set<int64_t> imgs;
  for (const auto& a : scored) imgs.insert(a.image_id);
  j["images"] = imgs.size();
  j["questions"] = results.size();
  if (results.empty()) return j;
  const auto s = metrics::score_vqa(scored, results);
  j["accuracy"] = s.overall;
  j["per_answer_type"] = pairs_json(s.per_answer_type);
  j["per_question_type"] = pairs_json(s.per_question_type);
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
  return j;
}

std::string fmt(double x, int prec) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, x);
  return b;
}

// The human-readable metrics table.
std::string table(const Json& j) {
  std::ostringstream o;
  auto row = [&](const std::string& k, const std::string& v) {
    o << "  " << k << std::string(k.size() < 28 ? 28 - k.size() : 1, ' ') << v << "\n";
  };
  if (j["task"] == "caption") {
    o << "caption metrics over " << j["images"].get<int64_t>() << " images\n";
    if (!j.contains("bleu")) return o.str();
    for (int n = 0; n < 4; ++n) row("BLEU-" + std::to_string(n + 1), fmt(j["bleu"][n].get<double>(), 4));
    row("ROUGE-L", fmt(j["rouge_l"].get<double>(), 4));
    row("CIDEr-D", fmt(j["cider_d"].get<double>(), 4));
    if (j.contains("parse_rate")) {
      row("checker parse rate", fmt(j["parse_rate"].get<double>(), 4));
      row("checker truthfulness", fmt(j["truthfulness"].get<double>(), 4));
      row("checker coverage", fmt(j["coverage"].get<double>(), 4));
    }
  } else {
    o << "VQA accuracy over " << j["questions"].get<int64_t>() << " questions on " << j["images"].get<int64_t>()
      << " images\n";
    if (!j.contains("accuracy")) return o.str();
    row("overall", fmt(j["accuracy"].get<double>(), 2));
    if (j.contains("non_relational")) {
      row("non-relational (U*)", fmt(j["non_relational"].get<double>(), 2));
      row("relational (B*)", fmt(j["relational"].get<double>(), 2));
    }
    for (auto it = j["per_answer_type"].begin(); it != j["per_answer_type"].end(); ++it)
      row("answer type " + it.key(), fmt(it.value().get<double>(), 2));
    for (auto it = j["per_question_type"].begin(); it != j["per_question_type"].end(); ++it)
      row("question type " + it.key(), fmt(it.value().get<double>(), 2));
  }
  return o.str();
}

// Journal records -> id -> text; InputError for a malformed record or a duplicate.
void collect(const std::string& task, const std::string& path, const std::vector<Json>& records,
             std::unordered_map<int64_t, std::string>& got, std::unordered_map<int64_t, std::string>* owner) {
  const char* idk = task == "caption" ? "image_id" : "question_id";
  const char* tk = task == "caption" ? "caption" : "answer";
  for (size_t i = 0; i < records.size(); ++i) {
    const Json& r = records[i];
    if (!r.contains(idk) || !r[idk].is_number_integer() || !r.contains(tk) || !r[tk].is_string())
      throw InputError(path, "record " + std::to_string(i + 1) + " lacks " + idk + " or " + tk);
    const int64_t id = r[idk].get<int64_t>();
    auto [it, fresh] = got.emplace(id, r[tk].get<std::string>());
    if (!fresh && owner)
      throw InputError(path, std::string(idk) + " " + std::to_string(id) + " is also in " + (*owner)[id] +
                                 " (shards overlap)");
    if (owner) (*owner)[id] = path;
    // Within one journal a repeat would only come from two runs appending at once: keep the first.
  }
}

// "K/N" -> {K, N}.
std::pair<int, int> parse_shard(const std::string& s) {
  const size_t slash = s.find('/');
  int k = -1, n = 0;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t p1 = 0, p2 = 0;
    k = std::stoi(s.substr(0, slash), &p1);
    n = std::stoi(s.substr(slash + 1), &p2);
    if (p1 != slash || p2 != s.size() - slash - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    throw UsageError("--shard must be K/N (e.g. 0/4), got '" + s + "'", "--shard");
  }
  if (n < 1 || n > 100000 || k < 0 || k >= n)
    throw UsageError("--shard K/N needs 0 <= K < N <= 100000, got '" + s + "'", "--shard");
  return {k, n};
}

// ------------------------------------------------------------------------------------- merge

int run_merge(const std::vector<std::string>& journals, const std::string& dataset_flag, const std::string& results_out,
              const std::string& summary_out, bool as_json) {
  if (journals.empty()) throw UsageError("--merge needs the shard journals (positional)", "--merge");
  Json ref;
  std::string ref_path;
  std::map<int, std::string> shards;
  std::unordered_map<int64_t, std::string> got, owner;
  int n = 0;
  std::vector<std::pair<std::string, JournalContents>> all;
  for (const auto& p : journals) {
    if (!data::regular_file_exists(p)) throw InputError(p, "no such journal file");
    JournalContents c = read_journal(p);
    if (c.header.is_null()) throw InputError(p, "is empty (no journal header)");
    const auto [k, nn] = parse_shard(c.header.value("shard", std::string("0/1")));
    if (ref.is_null()) {
      ref = c.header;
      ref_path = p;
      n = nn;
    }
    for (auto it = ref.begin(); it != ref.end(); ++it) {
      if (it.key() == "shard" || (it.key() == "dataset" && !dataset_flag.empty())) continue;
      const bool differs = !c.header.contains(it.key()) || c.header[it.key()] != it.value();
      if (differs && (it.key() == "model" || it.key() == "dataset")) {
        // Shards on other machines may see the same files under other paths.
        warn(p + ": " + it.key() + " " + c.header.value(it.key(), std::string("?")) + " differs from " + ref_path +
             "'s " + it.value().get<std::string>() + "; assuming the same files");
        continue;
      }
      if (differs)
        throw InputError(p, "was made with a different " + it.key() + " than " + ref_path + " (" +
                                (c.header.contains(it.key()) ? c.header[it.key()].dump() : std::string("none")) + " vs " +
                                it.value().dump() + ")");
    }
    if (nn != n) throw InputError(p, "is shard " + std::to_string(k) + "/" + std::to_string(nn) + " but " + ref_path +
                                         " has N = " + std::to_string(n));
    if (!shards.emplace(k, p).second)
      throw InputError(p, "is shard " + std::to_string(k) + "/" + std::to_string(n) + ", as is " + shards[k]);
    all.emplace_back(p, std::move(c));
  }
  for (int k = 0; k < n; ++k)
    if (!shards.count(k))
      throw UsageError("shard " + std::to_string(k) + "/" + std::to_string(n) + " is missing from the journals given",
                       "--merge");
  const std::string task = ref["task"].get<std::string>();
  const std::string dir = dataset_flag.empty() ? ref["dataset"].get<std::string>() : dataset_flag;
  const Dataset d = load_dataset(dir, task, ref.value("limit", int64_t{0}));
  for (auto& [p, c] : all) collect(task, p, c.records, got, &owner);
  // Every item of the run must be there: name the shard that is short.
  std::map<int, size_t> short_by;
  for (size_t i = 0; i < d.items.size(); ++i) {
    const int k = static_cast<int>(i % static_cast<size_t>(n));
    if (task == "caption") {
      if (!got.count(d.items[i].image_id)) ++short_by[k];
    } else {
      for (const auto* q : d.items[i].questions)
        if (!got.count(q->question_id)) ++short_by[k];
    }
  }
  if (!short_by.empty()) {
    const auto& [k, cnt] = *short_by.begin();
    throw InputError(shards[k], "shard " + std::to_string(k) + "/" + std::to_string(n) + " is incomplete (" +
                                    std::to_string(cnt) + " results missing); finish it with --resume");
  }
  Json j = score(d, got, results_out);
  j["merged_shards"] = n;
  j["model"] = ref.value("model", "");
  j["dataset"] = dir;
  const std::string text = as_json ? j.dump(2) + "\n" : table(j);
  if (!summary_out.empty()) write_file_atomic(summary_out, j.dump(2) + "\n");
  std::cout << text;
  return 0;
}

// --------------------------------------------------------------------------------------- run

int run_eval(const std::vector<std::string>& args) {
  Common c;
  ModelOpts mo;
  DecodeOpts dopt;
  std::string dataset, task, results_out, summary_out, journal_path, shard = "0/1", answer_list;
  std::vector<std::string> merge_files;
  int64_t limit = 0;
  int rank_k = 128;
  bool resume = false, merge = false, as_json = false, timings = false;
  po::options_description io("Evaluation");
  io.add_options()
    ("dataset,d", po::value(&dataset)->default_value("", "none"),
     "dataset folder: images/ + captions.json (caption), or + questions.json + annotations.json (vqa)")
    ("task,t", po::value(&task)->default_value("", "none"), "caption | vqa")
    ("limit", po::value(&limit)->default_value(0), "evaluate only the first N images (0 = all)")
    ("journal", po::value(&journal_path)->default_value("", "none"),
     "append each batch's results to FILE (JSON Lines, fsync'd) as they are made; needed by --resume and --merge")
    ("resume", po::bool_switch(&resume), "continue the run recorded in --journal: skip what it holds (same settings)")
    ("shard", po::value(&shard)->default_value("0/1"), "run only slice K of N (images K, K+N, K+2N, ...; needs --journal)")
    ("merge", po::bool_switch(&merge), "score the shard journals given as arguments together (all N of them)")
    ("journals", po::value(&merge_files)->multitoken(), "with --merge: the journals (positional)")
    ("results-out,o", po::value(&results_out)->default_value("", "none"),
     "write the results file (atomically): COCO [{image_id, caption}] or VQA [{question_id, answer}]")
    ("summary-out", po::value(&summary_out)->default_value("", "none"), "also write the JSON summary to FILE")
    ("json", po::bool_switch(&as_json), "print the summary as JSON instead of a table")
    ("timings", po::bool_switch(&timings), "per-stage times, tokens/s and peak memory (stderr, and in --json)")
    ("answer-list", po::value(&answer_list)->default_value("", "none"), "VQA with BLIP: rank this fixed answer list")
    ("rank-k", po::value(&rank_k)->default_value(128), "VQA with --answer-list: candidates kept");
  po::options_description visible("Options");
  visible.add(io).add(model_options(mo)).add(decode_options(dopt, true, true)).add(common_options(c));
  po::options_description all;
  all.add(visible).add(alias_options());
  po::positional_options_description pos;
  pos.add("journals", -1);
  const auto vm = parse("eval", args, all, pos, c);
  if (c.help) {
    print_help("eval", "[--model DIR] --dataset DIR --task caption|vqa [options]\n       xmodal eval --merge JOURNAL... [options]",
               "Captions every image (caption) or answers every question (vqa) of a COCO / VQA-v2 style dataset\n"
               "with the built-in scenes model or a BLIP checkpoint (--model), --batch images at a time, then\n"
               "scores the results: BLEU-1..4, ROUGE-L, CIDEr-D (+ the scenes caption checker when DIR/scenes.json\n"
               "exists), or VQA accuracy per answer and question type. Prints a table, or JSON with --json.\n"
               "\n"
               "No lost work: with --journal FILE each batch's results are appended and fsync'd as they are\n"
               "made. A run killed at any moment (Ctrl-C, SIGTERM, kill -9, a crash) is continued by the same\n"
               "command with --resume: nothing is lost, nothing is done twice. Ctrl-C or SIGTERM stop after the\n"
               "current batch (exit 130); a second Ctrl-C stops at once. A write error (full disk) is exit 3.\n"
               "\n"
               "Many machines: --shard K/N runs images K, K+N, ... into its own journal; then\n"
               "`xmodal eval --merge JOURNAL...` checks that the N shards are complete and disjoint, writes the\n"
               "results in dataset order (identical to a single run's) and scores them once.\n"
               "An image that cannot be read is reported (one line) and skipped; the exit code is then 3.\n"
               "Exit codes: 0 ok, 2 usage, 3 bad input, 4 bad model, 130 interrupted.",
               visible,
               "  xmodal synth --preset sort-of-clevr --split test --out /tmp/soc-test\n"
               "  xmodal eval --dataset /tmp/soc-test --task vqa\n"
               "  xmodal eval -d /tmp/soc-test -t caption --journal run.jsonl --resume --results-out res.json\n"
               "  xmodal eval -d /tmp/soc-test -t vqa --shard 0/4 --journal shard0.jsonl   # one per machine\n"
               "  xmodal eval --merge shard0.jsonl shard1.jsonl shard2.jsonl shard3.jsonl --json\n"
               "  xmodal eval --model blip-vqa-base -d vqa-val -t vqa --batch 16 --timings\n");
    return 0;
  }
  apply_aliases(vm, dopt, nullptr);
  if (merge) return run_merge(merge_files, dataset, results_out, summary_out, as_json);
  if (!merge_files.empty())
    throw UsageError("unexpected argument '" + merge_files[0] + "' (journals are only given with --merge)", "eval");
  check_options(mo, dopt);
  if (dataset.empty()) throw UsageError("--dataset DIR is required (see xmodal eval --help)", "--dataset");
  if (task != "caption" && task != "vqa") throw UsageError("--task must be caption or vqa, got '" + task + "'", "--task");
  if (limit < 0) throw UsageError("--limit must be >= 0, got " + std::to_string(limit), "--limit");
  if (rank_k < 1) throw UsageError("--rank-k must be >= 1, got " + std::to_string(rank_k), "--rank-k");
  const auto [shard_k, shard_n] = parse_shard(shard);
  if (resume && journal_path.empty()) throw UsageError("--resume needs --journal FILE", "--resume");
  if (shard_n > 1 && journal_path.empty())
    throw UsageError("--shard needs --journal FILE (the shard's results, for --merge)", "--shard");
  if (task == "caption" && !answer_list.empty()) throw UsageError("--answer-list is for --task vqa", "--answer-list");

  const Dataset d = load_dataset(dataset, task, limit);
  Timings T;
  auto m = open_model(mo, false, &T.load_ms);
  if (task == "caption" && !m->can_caption())
    throw UsageError(model_dir(mo) + " is a " + m->architecture() + " model; --task caption needs a captioning model", "--task");
  if (task == "vqa" && !m->can_answer())
    throw UsageError(model_dir(mo) + " is a " + m->architecture() + " model; --task vqa needs a VQA model", "--task");
  VlmRequest req = make_request(dopt, false);
  if (task == "vqa") req.prompt.clear();
  std::shared_ptr<const Vlm::AnswerSet> set;
  if (!answer_list.empty()) {
    set = m->answer_set(read_text_list(answer_list, "answer"));
  }

  // The journal: its header holds every setting that changes the results.
  std::unordered_map<int64_t, std::string> got;
  std::unique_ptr<Journal> journal;
  if (!journal_path.empty()) {
    Json header = {{"xmodal_eval_journal", 1},
                   {"task", task},
                   {"dataset", fs::absolute(dataset).lexically_normal().string()},
                   {"limit", limit},
                   {"shard", std::to_string(shard_k) + "/" + std::to_string(shard_n)},
                   {"model", fs::absolute(model_dir(mo)).lexically_normal().string()},
                   {"architecture", m->architecture()},
                   {"weights", mo.bf16 ? "bf16" : "f32"},
                   {"decoding", {{"beam", dopt.beam}, {"length_penalty", dopt.length_penalty}, {"min_len", dopt.min_len},
                                 {"max_len", dopt.max_len}, {"prompt", req.prompt}, {"first_token", dopt.first_token},
                                 {"answer_list", answer_list}, {"rank_k", set ? rank_k : 0}}}};
    std::vector<Json> done;
    journal = std::make_unique<Journal>(journal_path, header, resume, &done);
    collect(task, journal_path, done, got, nullptr);
    if (!done.empty()) info("eval: resuming " + journal_path + ": " + std::to_string(got.size()) + " results already done");
  }

  // This shard's images that still have work.
  std::vector<const Item*> todo;
  size_t shard_items = 0;
  for (size_t i = 0; i < d.items.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(shard_n)) != shard_k) continue;
    ++shard_items;
    const Item& it = d.items[i];
    bool pending = task == "caption" ? !got.count(it.image_id) : false;
    for (const auto* q : it.questions) pending = pending || !got.count(q->question_id);
    if (pending) todo.push_back(&it);
  }

  install_stop_handlers();
  const size_t batch = static_cast<size_t>(mo.batch);
  int failed = 0;
  const auto t_all = Clock::now();
  {
    Progress progress("eval", static_cast<int64_t>(std::max<size_t>(todo.size(), 1)), "images", !c.quiet && !todo.empty());
    size_t next = 0;
    while (next < todo.size() && !stop_signal()) {
      std::vector<Image> imgs;
      std::vector<const Item*> items;
      while (next < todo.size() && imgs.size() < batch) {
        const Item* it = todo[next++];
        const auto t0 = Clock::now();
        try {
          imgs.push_back(load_image(it->file));
          items.push_back(it);
        } catch (const InputError& e) {
          std::cerr << e.one_line() << "\n";
          ++failed;
          progress.advance();
        }
        T.read_ms += ms_since(t0);
      }
      if (imgs.empty()) continue;
      double enc_ms = 0;
      const auto enc = m->encode(imgs, &enc_ms);
      T.encode_ms += enc_ms;
      T.images += static_cast<int64_t>(imgs.size());
      std::vector<Json> records;
      const auto td = Clock::now();
      if (task == "caption") {
        std::vector<const Vlm::Encoded*> ptrs;
        for (const auto& e : enc) ptrs.push_back(e.get());
        const auto rs = m->caption_batch(ptrs, req);
        for (size_t i = 0; i < rs.size(); ++i) {
          T.sequences += 1;
          T.tokens += generated_tokens(rs[i], *m);
          records.push_back({{"image_id", items[i]->image_id}, {"caption", rs[i].text}});
        }
      } else {
        std::vector<const Vlm::Encoded*> ptrs;
        std::vector<std::string> qs;
        std::vector<int64_t> qids;
        for (size_t i = 0; i < items.size(); ++i)
          for (const auto* q : items[i]->questions)
            if (!got.count(q->question_id)) {
              ptrs.push_back(enc[i].get());
              qs.push_back(q->question);
              qids.push_back(q->question_id);
            }
        std::vector<VlmResult> rs;
        if (set) {
          for (size_t i = 0; i < qs.size(); ++i) rs.push_back(m->rank(*ptrs[i], qs[i], *set, rank_k, req));
        } else {
          for (size_t b0 = 0; b0 < qs.size(); b0 += batch) {  // at most --batch questions per decoder pass
            const size_t b1 = std::min(qs.size(), b0 + batch);
            auto part = m->answer_batch(
                std::vector<const Vlm::Encoded*>(ptrs.begin() + static_cast<std::ptrdiff_t>(b0), ptrs.begin() + static_cast<std::ptrdiff_t>(b1)),
                std::vector<std::string>(qs.begin() + static_cast<std::ptrdiff_t>(b0), qs.begin() + static_cast<std::ptrdiff_t>(b1)), req);
            for (auto& r : part) rs.push_back(std::move(r));
          }
        }
        for (size_t i = 0; i < rs.size(); ++i) {
          T.sequences += 1;
          T.text_ms += rs[i].text_ms;
          T.tokens += set ? 0 : generated_tokens(rs[i], *m);
          records.push_back({{"question_id", qids[i]}, {"answer", rs[i].text}});
        }
      }
      T.decode_ms += std::max(0.0, ms_since(td) - 0.0);
      if (journal) journal->append(records);  // one write + fsync per batch
      collect(task, journal_path, records, got, nullptr);
      progress.advance(static_cast<int64_t>(items.size()));
    }
    if (!stop_signal()) progress.finish();
  }
  if (journal) journal->close();
  const double seconds = std::chrono::duration<double>(Clock::now() - t_all).count();

  if (stop_signal()) {
    std::cerr << "xmodal: eval: interrupted (" << (stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT") << "); "
              << got.size() << " results kept"
              << (journal ? " in " + journal_path + "; run the same command with --resume to continue"
                          : "; without --journal they are written to --results-out only, if given")
              << "\n";
    if (!journal && !results_out.empty()) {
      size_t missing = 0;
      if (task == "caption") data::write_caption_results(results_out, caption_results(d, got, &missing));
      else data::write_vqa_results(results_out, vqa_results(d, got, &missing));
    }
    return 130;
  }

  Json j;
  if (shard_n > 1) {
    // A shard is not scored on its own: merge the N journals and score once.
    j = {{"task", task}, {"shard", shard}, {"images", shard_items}, {"results", got.size()}, {"journal", journal_path}};
    if (!as_json)
      std::cout << "shard " << shard << ": " << got.size() << " results in " << journal_path
                << "; score all shards with: xmodal eval --merge JOURNAL...\n";
  } else {
    // Score the results of this dataset that are present (a resumed run's earlier ones included).
    j = score(d, got, results_out);
  }
  j["seconds"] = seconds;
  j["model"] = model_dir(mo);
  j["architecture"] = m->architecture();
  j["dataset"] = dataset;
  j["decoding"] = {{"beam", dopt.beam}, {"max_len", dopt.max_len}, {"min_len", dopt.min_len}};
  if (timings) {
    j["timings"] = timings_json(T);
    std::cerr << timings_text(T);
  }
  if (!summary_out.empty()) write_file_atomic(summary_out, j.dump(2) + "\n");
  if (as_json) std::cout << j.dump(2) << "\n";
  else if (shard_n == 1) std::cout << table(j);
  if (failed > 0) {
    info("eval: " + std::to_string(failed) + " images could not be read and were skipped (exit 3)");
    return 3;
  }
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("eval", "score a model on a caption or VQA dataset (resumable, shardable)", run_eval);

}  // namespace xmodal::app
