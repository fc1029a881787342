// Captions one image through the xmodal C++ API (pipeline/vlm.hpp): open a model directory
// (the built-in scenes model or a BLIP checkpoint), encode the image, decode a caption.
//
//   cmake --install build --prefix $HOME/xmodal
//   cmake -S examples -B build-example -DCMAKE_PREFIX_PATH=$HOME/xmodal && cmake --build build-example
//   build-example/caption $HOME/xmodal/share/xmodal/assets/models/scenes assets/samples/scene-0.png
#include <iostream>
#include <vector>

#include "core/error.hpp"
#include "encoders/image.hpp"
#include "pipeline/vlm.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: caption MODEL_DIR IMAGE\n";
    return 2;
  }
  try {
    const auto model = xmodal::open_vlm(argv[1]);                // dispatches on config.json
    const std::vector<xmodal::Image> images{xmodal::load_image(argv[2])};
    const auto encoded = model->encode(images);                  // one batch, one image
    xmodal::VlmRequest request;                                  // greedy, the model's max length
    const xmodal::VlmResult result = model->caption(*encoded[0], request);
    std::cout << result.text << "\n";
    return 0;
  } catch (const xmodal::Error& e) {                             // typed errors: file + problem
    std::cerr << e.one_line() << "\n";
    return e.exit_code();
  }
}
