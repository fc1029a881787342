// xmodal caption: captions images with any model behind pipeline/vlm.hpp (the built-in scenes
// model, or a BLIP checkpoint with --model DIR): files, folders, globs and --list, true batches
// through the image encoder and the decoder, text / JSON Lines / COCO results output, streaming,
// attention-map pictures and per-stage timings.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/attention_png.hpp"
#include "apps/subcommand.hpp"
#include "apps/vlm_cli.hpp"
#include "core/error.hpp"
#include "encoders/image.hpp"
#include "pipeline/datasets.hpp"

namespace xmodal::app {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Done {
  std::string path;
  VlmResult r;
};

int run_caption(const std::vector<std::string>& args) {
  Common c;
  ModelOpts mo;
  DecodeOpts d;
  std::vector<std::string> images;
  std::string list, coco, maps_dir;
  bool as_json = false, jsonl = false, stream = false, timings = false;
  po::options_description io("Input and output");
  io.add_options()
    ("image", po::value(&images)->multitoken(), "image files, folders (their images, sorted) or glob patterns; positional")
    ("list", po::value(&list)->default_value("", "none"), "also read image paths from FILE, one per line (- = stdin; # comments)")
    ("jsonl", po::bool_switch(&jsonl), "print one JSON object per image and line: {image, image_id, caption, ids, tokens, score}")
    ("json", po::bool_switch(&as_json), "print one JSON array of {image, caption, ids, tokens, score, ms}")
    ("coco-results", po::value(&coco)->default_value("", "none"),
     "also write a COCO results file [{image_id, caption}] (atomically); image_id = the last number in the file name")
    ("stream", po::bool_switch(&stream), "print each token as it is decoded (one image at a time)")
    ("attention-map", po::value(&maps_dir)->default_value("", "none"),
     "write DIR/<image>.<NN>.<word>.png per generated word (cross-attention heatmap on the image) and DIR/<image>.sheet.png")
    ("timings", po::bool_switch(&timings), "print per-stage times, tokens/s and peak memory to stderr (and into --json)");
  po::options_description visible("Options");
  visible.add(io).add(model_options(mo)).add(decode_options(d, true, false)).add(map_options(d)).add(common_options(c));
  po::options_description all;
  all.add(visible).add(alias_options());
  po::positional_options_description pos;
  pos.add("image", -1);
  const auto vm = parse("caption", args, all, pos, c);
  if (c.help) {
    print_help("caption", "[--model DIR] [options] IMAGE|FOLDER|PATTERN...",
               "Generates one caption per image with the built-in scenes model (default) or a BLIP captioning\n"
               "checkpoint (--model DIR, docs/blip.md). Images are read, then encoded and decoded --batch at a\n"
               "time (one batched encoder pass and one batched decoder pass per step). With a single image\n"
               "argument the caption alone is printed; otherwise each line is IMAGE<TAB>caption, in input order.\n"
               "An image that cannot be read is reported on stderr (one line naming it) and skipped; the others\n"
               "are still captioned, and the exit code is then 3. Output is deterministic for the same\n"
               "input and --threads. Ctrl-C (or SIGTERM) stops after the current batch; what was done is printed\n"
               "and written to --coco-results. Exit codes: 0 ok, 2 usage, 3 bad input (any image), 4 bad model,\n"
               "130 interrupted.",
               visible,
               "  xmodal caption assets/samples/scene-0.png\n"
               "  xmodal caption assets/samples/ --jsonl > captions.jsonl\n"
               "  xmodal caption 'photos/*.jpg' --batch 16 --coco-results results.json\n"
               "  xmodal caption --list files.txt --timings\n"
               "  xmodal caption --stream assets/samples/scene-1.png\n"
               "  xmodal caption --attention-map maps/ assets/samples/scene-2.png\n"
               "  xmodal caption --model blip-image-captioning-base --beam 3 --prompt \"a picture of\" photo.jpg\n");
    return 0;
  }
  apply_aliases(vm, d, &maps_dir);
  check_options(mo, d);
  if (stream && (as_json || jsonl)) throw UsageError("--stream prints text; it cannot be combined with --json or --jsonl", "--stream");
  if (as_json && jsonl) throw UsageError("--json and --jsonl are exclusive", "--jsonl");
  if (images.empty() && list.empty())
    throw UsageError("at least one IMAGE (or --list FILE) is required (see xmodal caption --help)", "IMAGE");
  const std::vector<Input> inputs = expand_inputs(images, list);
  const bool single = list.empty() && images.size() == 1 && inputs.size() == 1 && inputs[0].path == images[0];
  const bool maps = !maps_dir.empty();

  Timings T;
  auto m = open_model(mo, maps, &T.load_ms);
  if (!m->can_caption())
    throw UsageError(model_dir(mo) + " is a " + m->architecture() + " model: it answers questions (xmodal vqa), it does not caption",
                     "--model");
  if (maps) {
    std::error_code ec;
    fs::create_directories(maps_dir, ec);
    if (ec) throw InputError(maps_dir, "cannot create the folder: " + ec.message());
  }
  VlmRequest req = make_request(d, maps);
  bool streamed = false;
  if (stream)
    req.on_token = [&streamed](size_t, const std::string& piece) {
      std::cout << piece << std::flush;
      streamed = true;
    };
  const size_t batch = stream ? 1 : static_cast<size_t>(mo.batch);

  Json out = Json::array();
  std::vector<Done> done;
  std::map<std::string, int> stems;
  int failed = 0;
  size_t next = 0;
  install_stop_handlers();
  while (next < inputs.size() && !stop_signal()) {
    // Read up to `batch` images; failures are reported and skipped.
    std::vector<Image> imgs;
    std::vector<std::string> paths;
    while (next < inputs.size() && imgs.size() < batch) {
      const Input& in = inputs[next++];
      if (!in.error.empty()) {
        std::cerr << in.error << "\n";
        ++failed;
        continue;
      }
      const auto t0 = Clock::now();
      try {
        imgs.push_back(load_image(in.path));
        paths.push_back(in.path);
      } catch (const InputError& e) {
        std::cerr << e.one_line() << "\n";
        ++failed;
      }
      T.read_ms += ms_since(t0);
    }
    if (imgs.empty()) continue;
    double enc_ms = 0;
    const auto enc = m->encode(imgs, &enc_ms);
    T.encode_ms += enc_ms;
    T.images += static_cast<int64_t>(imgs.size());
    std::vector<const Vlm::Encoded*> ptrs;
    for (const auto& e : enc) ptrs.push_back(e.get());
    if (stream && !single) std::cout << paths[0] << "\t" << std::flush;
    streamed = false;
    const auto td = Clock::now();
    std::vector<VlmResult> rs = m->caption_batch(ptrs, req);
    const double dec_ms = ms_since(td);
    T.decode_ms += dec_ms;
    for (size_t i = 0; i < rs.size(); ++i) {
      VlmResult& r = rs[i];
      T.sequences += 1;
      T.tokens += generated_tokens(r, *m);
      verbose(paths[i] + ": " + std::to_string(r.ids.size()) + " ids, score " + std::to_string(r.score));
      if (maps) {
        std::string stem = fs::path(paths[i]).stem().string();
        const int k = stems[stem]++;
        if (k > 0) stem += "-" + std::to_string(k + 1);
        const size_t first = r.tokens.size() >= r.attention.size() ? r.tokens.size() - r.attention.size() : 0;
        std::vector<std::string> words(r.tokens.begin() + static_cast<std::ptrdiff_t>(first), r.tokens.end());
        words.resize(r.attention.size());
        write_attention_maps(imgs[i], r.attention, m->map_grid(), words, maps_dir, stem);
      }
      if (stream) {
        if (!streamed) std::cout << r.text;  // the model emitted no pieces (e.g. beam search)
        std::cout << "\n" << std::flush;
      } else if (jsonl) {
        Json j = {{"image", paths[i]}, {"caption", r.text}, {"ids", r.ids}, {"tokens", r.tokens}, {"score", r.score}};
        const int64_t id = image_id_from_name(paths[i]);
        if (id >= 0) j["image_id"] = id;
        std::cout << j.dump() << "\n" << std::flush;
      } else if (as_json) {
        Json j = {{"image", paths[i]}, {"caption", r.text}, {"ids", r.ids}, {"tokens", r.tokens}, {"score", r.score},
                  {"ms", {{"encode", enc_ms / static_cast<double>(rs.size())},
                          {"decode", dec_ms / static_cast<double>(rs.size())}}}};
        if (maps) {
          j["attention_grid"] = m->map_grid();
          j["attention"] = r.attention;
        }
        out.push_back(std::move(j));
      } else if (single) {
        std::cout << r.text << "\n";
      } else {
        std::cout << paths[i] << "\t" << r.text << "\n";
      }
      if (!coco.empty()) done.push_back({paths[i], std::move(r)});
    }
    std::cout << std::flush;
  }
  if (as_json) {
    if (timings) std::cout << Json{{"results", out}, {"timings", timings_json(T)}}.dump(2) << "\n";
    else std::cout << out.dump(2) << "\n";
  }
  if (!coco.empty()) {
    // image ids from the file names; when some have none or two share one, the input order (1, 2, ...).
    std::vector<data::CaptionResult> res;
    std::set<int64_t> seen;
    bool by_name = true;
    for (const auto& x : done) {
      const int64_t id = image_id_from_name(x.path);
      if (id < 0 || !seen.insert(id).second) by_name = false;
    }
    if (!by_name) warn("--coco-results: not every file name holds a distinct number; image_id is the position (1, 2, ...)");
    for (size_t i = 0; i < done.size(); ++i)
      res.push_back({by_name ? image_id_from_name(done[i].path) : static_cast<int64_t>(i + 1), done[i].r.text});
    data::write_caption_results(coco, res);
  }
  if (timings) std::cerr << timings_text(T);
  if (stop_signal()) {
    std::cerr << "xmodal: caption: interrupted; " << T.images << " images done"
              << (coco.empty() ? "" : " (in " + coco + ")") << ", " << (inputs.size() - next) << " not started\n";
    return 130;
  }
  if (failed > 0) {
    if (inputs.size() > 1) info("caption: " + std::to_string(failed) + " of " + std::to_string(inputs.size()) + " inputs failed (exit 3)");
    return 3;
  }
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("caption", "caption images (built-in scenes model or a BLIP checkpoint)", run_caption);

}  // namespace xmodal::app
