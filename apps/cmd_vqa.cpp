// xmodal vqa: answers questions about one image with any model behind pipeline/vlm.hpp (the
// built-in scenes model, or a BLIP VQA checkpoint with --model DIR). The image is encoded once;
// the questions are decoded --batch at a time.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/attention_png.hpp"
#include "apps/subcommand.hpp"
#include "apps/vlm_cli.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "encoders/image.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

int run_vqa(const std::vector<std::string>& args) {
  Common c;
  ModelOpts mo;
  DecodeOpts d;
  std::vector<std::string> positional;
  std::string questions_file, answer_list, maps_dir;
  int rank_k = 128;
  bool as_json = false, jsonl = false, stream = false, timings = false;
  po::options_description io("Input and output");
  io.add_options()
    ("args", po::value(&positional)->multitoken(), "IMAGE QUESTION [QUESTION...] (positional)")
    ("questions", po::value(&questions_file)->default_value("", "none"), "also read questions from FILE, one per line")
    ("answer-list", po::value(&answer_list)->default_value("", "none"),
     "BLIP: rank this fixed list (one answer per line, or a JSON array) instead of generating")
    ("rank-k", po::value(&rank_k)->default_value(128), "with --answer-list: candidates kept by first-token probability")
    ("jsonl", po::bool_switch(&jsonl), "print one JSON object per question and line: {question, answer, ids, tokens, score}")
    ("json", po::bool_switch(&as_json), "print one JSON array of {question, answer, ids, tokens, score, ms}")
    ("stream", po::bool_switch(&stream), "print each answer token as it is decoded (one question at a time)")
    ("attention-map", po::value(&maps_dir)->default_value("", "none"),
     "write DIR/<image>.q<N>.<NN>.<word>.png per answer word (cross-attention heatmap) and DIR/<image>.q<N>.sheet.png")
    ("timings", po::bool_switch(&timings), "print per-stage times, tokens/s and peak memory to stderr (and into --json)");
  po::options_description visible("Options");
  visible.add(io).add(model_options(mo)).add(decode_options(d, false, true)).add(map_options(d)).add(common_options(c));
  po::options_description all;
  all.add(visible).add(alias_options());
  po::positional_options_description pos;
  pos.add("args", -1);
  const auto vm = parse("vqa", args, all, pos, c);
  if (c.help) {
    print_help("vqa", "[--model DIR] [options] IMAGE QUESTION [QUESTION...]",
               "Answers questions about one image with the built-in scenes model (default) or a BLIP VQA\n"
               "checkpoint (--model DIR, docs/blip.md). The image is encoded once; the questions are decoded\n"
               "--batch at a time. Prints one answer per line, in question order. Questions are free text\n"
               "(case is folded; unknown words are tokenized), an empty one is an input error.\n"
               "Exit codes: 0 ok, 2 usage, 3 bad input (image or question), 4 bad model.",
               visible,
               "  xmodal vqa assets/samples/scene-0.png \"what color is the object closest to the red circle?\"\n"
               "  xmodal vqa scene.png \"how many circles are there?\" \"is there a blue square?\" --jsonl\n"
               "  xmodal vqa --questions questions.txt --attention-map maps/ scene.png\n"
               "  xmodal vqa --model blip-vqa-base --answer-list answers.txt photo.jpg \"what color is the car?\"\n");
    return 0;
  }
  apply_aliases(vm, d, &maps_dir);
  check_options(mo, d);
  if (rank_k < 1) throw UsageError("--rank-k must be >= 1, got " + std::to_string(rank_k), "--rank-k");
  if (stream && (as_json || jsonl)) throw UsageError("--stream prints text; it cannot be combined with --json or --jsonl", "--stream");
  if (as_json && jsonl) throw UsageError("--json and --jsonl are exclusive", "--jsonl");
  if (positional.empty()) throw UsageError("expected IMAGE and at least one QUESTION (see xmodal vqa --help)", "IMAGE");
  const std::string path = positional[0];
  std::vector<std::string> questions(positional.begin() + 1, positional.end());
  if (!questions_file.empty())
    for (auto& q : read_text_list(questions_file, "question")) questions.push_back(std::move(q));
  if (questions.empty()) throw UsageError("expected IMAGE and at least one QUESTION (see xmodal vqa --help)", "QUESTION");
  for (size_t i = 0; i < questions.size(); ++i)
    if (questions[i].find_first_not_of(" \t\r\n") == std::string::npos)
      throw InputError("question " + std::to_string(i + 1), "is empty");
  const bool maps = !maps_dir.empty();

  Timings T;
  auto m = open_model(mo, maps, &T.load_ms);
  if (!m->can_answer())
    throw UsageError(model_dir(mo) + " is a " + m->architecture() + " model: it captions (xmodal caption), it does not answer",
                     "--model");
  std::shared_ptr<const Vlm::AnswerSet> set;
  if (!answer_list.empty()) set = m->answer_set(read_text_list(answer_list, "answer"));
  if (maps) {
    std::error_code ec;
    fs::create_directories(maps_dir, ec);
    if (ec) throw InputError(maps_dir, "cannot create the folder: " + ec.message());
  }
  auto t0 = Clock::now();
  const Image img = load_image(path);
  T.read_ms = ms_since(t0);
  T.images = 1;
  const auto enc = m->encode({img}, &T.encode_ms);
  VlmRequest req = make_request(d, maps);
  bool streamed = false;
  if (stream)
    req.on_token = [&streamed](size_t, const std::string& piece) {
      std::cout << piece << std::flush;
      streamed = true;
    };
  const size_t batch = (stream || set) ? 1 : static_cast<size_t>(mo.batch);
  Json out = Json::array();
  for (size_t b0 = 0; b0 < questions.size(); b0 += batch) {
    const size_t b1 = std::min(questions.size(), b0 + batch);
    std::vector<VlmResult> rs;
    streamed = false;
    const auto td = Clock::now();
    try {
      if (set) {
        rs.push_back(m->rank(*enc[0], questions[b0], *set, rank_k, req));
      } else {
        const std::vector<const Vlm::Encoded*> ptrs(b1 - b0, enc[0].get());
        rs = m->answer_batch(ptrs, std::vector<std::string>(questions.begin() + static_cast<std::ptrdiff_t>(b0),
                                                            questions.begin() + static_cast<std::ptrdiff_t>(b1)),
                             req);
      }
    } catch (const InputError& e) {
      // Name the question (the model names the text only); a batch of one says which.
      throw InputError(b1 - b0 == 1 ? "question " + std::to_string(b0 + 1) : e.subject(), e.what());
    }
    const double dec_ms = ms_since(td);
    for (size_t i = 0; i < rs.size(); ++i) {
      VlmResult& r = rs[i];
      const size_t qi = b0 + i;
      T.text_ms += r.text_ms;
      T.decode_ms += r.text_ms > 0 ? std::max(0.0, dec_ms / static_cast<double>(rs.size()) - r.text_ms)
                                   : dec_ms / static_cast<double>(rs.size());
      T.sequences += 1;
      T.tokens += set ? 0 : generated_tokens(r, *m);
      if (maps && !r.attention.empty()) {
        const size_t first = r.tokens.size() >= r.attention.size() ? r.tokens.size() - r.attention.size() : 0;
        std::vector<std::string> words(r.tokens.begin() + static_cast<std::ptrdiff_t>(first), r.tokens.end());
        words.resize(r.attention.size());
        write_attention_maps(img, r.attention, m->map_grid(), words, maps_dir,
                             fs::path(path).stem().string() + ".q" + std::to_string(qi + 1));
      }
      if (stream) {
        if (!streamed) std::cout << r.text;
        std::cout << "\n" << std::flush;
      } else if (jsonl) {
        std::cout << Json{{"question", questions[qi]}, {"answer", r.text}, {"ids", r.ids}, {"tokens", r.tokens},
                          {"score", r.score}}.dump()
                  << "\n" << std::flush;
      } else if (as_json) {
        Json j = {{"question", questions[qi]}, {"answer", r.text}, {"ids", r.ids}, {"tokens", r.tokens}, {"score", r.score},
                  {"ms", {{"encode", T.encode_ms}, {"question", r.text_ms}, {"decode", dec_ms / static_cast<double>(rs.size())}}}};
        if (maps) {
          j["attention_grid"] = m->map_grid();
          j["attention"] = r.attention;
        }
        out.push_back(std::move(j));
      } else {
        std::cout << r.text << "\n";
      }
    }
  }
  if (as_json) {
    if (timings) std::cout << Json{{"results", out}, {"timings", timings_json(T)}}.dump(2) << "\n";
    else std::cout << out.dump(2) << "\n";
  }
  if (timings) std::cerr << timings_text(T);
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("vqa", "answer questions about an image (built-in scenes model or a BLIP checkpoint)", run_vqa);

}  // namespace xmodal::app
