// xmodal vqa: answers questions about an image with the built-in scenes model (or --model DIR).
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/blip_cli.hpp"
#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "encoders/image.hpp"
#include "pipeline/scenes_model.hpp"

namespace xmodal::app {
namespace {

int run_vqa(const std::vector<std::string>& args) {
  if (wants_blip(args)) return run_blip_vqa(args);  // a BLIP checkpoint: apps/blip_cli.cpp
  Common c;
  std::string model;
  std::vector<std::string> positional;
  bool as_json = false;
  po::options_description opts("Options");
  opts.add_options()
    ("model,m", po::value(&model)->default_value(""),
     "model directory (default: the built-in assets/models/scenes, or $XMODAL_MODEL_DIR)")
    ("args", po::value(&positional)->multitoken(), "IMAGE QUESTION [QUESTION...] (positional)")
    ("json", po::bool_switch(&as_json), "print a JSON array of {question, answer}");
  opts.add(common_options(c));
  po::positional_options_description pos;
  pos.add("args", -1);
  parse("vqa", args, opts, pos, c);
  if (c.help) {
    print_help("vqa", "[--model DIR] IMAGE QUESTION [QUESTION...]",
               "Answers questions about one image (greedy decoding). The image is encoded once for all\n"
               "questions. Prints one answer per line, in question order. Questions are free text: case\n"
               "is folded, and unknown words are tokenized (byte fallback), so any question gets an answer.\n"
               "An empty question is an input error (exit 3).\nBLIP checkpoints (docs/blip.md): xmodal vqa --model BLIP_DIR --help lists their options.",
               opts,
               "  xmodal vqa assets/samples/scene-0.png \"what color is the object closest to the red circle?\"\n"
               "  xmodal vqa scene.png \"how many circles are there?\" \"is there a blue square?\"\n");
    return 0;
  }
  if (positional.size() < 2)
    throw UsageError("expected IMAGE and at least one QUESTION (see xmodal vqa --help)", "QUESTION");
  const std::string path = positional[0];
  std::vector<std::string> questions(positional.begin() + 1, positional.end());
  for (size_t i = 0; i < questions.size(); ++i)
    if (questions[i].find_first_not_of(" \t\r\n") == std::string::npos)
      throw InputError("question " + std::to_string(i + 1), "is empty");
  const ScenesModel m = ScenesModel::load(resolve_scenes_model_dir(model));
  const Image img = load_image(path);
  const auto mem = m.prepare_image(img);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& q : questions) {
    const std::string a = m.answer(mem, q);
    if (as_json)
      out.push_back({{"question", q}, {"answer", a}});
    else
      std::cout << a << "\n";
  }
  if (as_json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("vqa", "answer questions about an image with the built-in scenes model", run_vqa);

}  // namespace xmodal::app
