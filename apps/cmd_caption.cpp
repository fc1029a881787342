// xmodal caption: captions images with the built-in scenes model (or --model DIR).
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/blip_cli.hpp"
#include "apps/subcommand.hpp"
#include "core/error.hpp"
#include "encoders/image.hpp"
#include "pipeline/scenes_model.hpp"

namespace xmodal::app {
namespace {

int run_caption(const std::vector<std::string>& args) {
  if (wants_blip(args)) return run_blip_caption(args);  // a BLIP checkpoint: apps/blip_cli.cpp
  Common c;
  std::string model;
  std::vector<std::string> images;
  bool as_json = false;
  po::options_description opts("Options");
  opts.add_options()
    ("model,m", po::value(&model)->default_value(""),
     "model directory (default: the built-in assets/models/scenes, or $XMODAL_MODEL_DIR)")
    ("image", po::value(&images)->multitoken(), "image file(s); also positional")
    ("json", po::bool_switch(&as_json), "print a JSON array of {image, caption, ms}");
  opts.add(common_options(c));
  po::positional_options_description pos;
  pos.add("image", -1);
  parse("caption", args, opts, pos, c);
  if (c.help) {
    print_help("caption", "[--model DIR] IMAGE...",
               "Generates one caption per image (greedy decoding, KV cache, image cross-attention K/V\n"
               "computed once per image). With one image the caption alone is printed; with several,\n"
               "each line is IMAGE<TAB>caption. Any image format OpenCV reads is accepted; the model\n"
               "resizes it (PIL bicubic) to its input size.\nBLIP checkpoints (docs/blip.md): xmodal caption --model BLIP_DIR --help lists their options.",
               opts,
               "  xmodal caption assets/samples/scene-0.png\n"
               "  xmodal caption assets/samples/*.png --json\n"
               "  XMODAL_MODEL_DIR=/path/to/model xmodal caption photo.png\n");
    return 0;
  }
  if (images.empty()) throw UsageError("at least one IMAGE is required (see xmodal caption --help)", "IMAGE");
  const ScenesModel m = ScenesModel::load(resolve_scenes_model_dir(model));
  verbose("model: " + m.dir());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& path : images) {
    const auto t0 = std::chrono::steady_clock::now();
    const Image img = load_image(path);
    const auto mem = m.prepare_image(img);
    const std::string cap = m.caption(mem);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (as_json) {
      out.push_back({{"image", path}, {"caption", cap}, {"ms", ms}});
    } else if (images.size() == 1) {
      std::cout << cap << "\n";
    } else {
      std::cout << path << "\t" << cap << "\n";
    }
  }
  if (as_json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

XMODAL_SUBCOMMAND("caption", "caption images with the built-in scenes model (or --model DIR)", run_caption);

}  // namespace xmodal::app
