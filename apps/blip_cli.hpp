// xmodal caption / vqa / eval with a BLIP checkpoint (--model DIR whose config.json names
// BlipForConditionalGeneration or BlipForQuestionAnswering, or architecture blip-caption /
// blip-vqa). The three commands (apps/cmd_caption.cpp, cmd_vqa.cpp, cmd_eval.cpp) hand such runs
// here; everything goes through the common model interface (pipeline/vlm.hpp). See docs/blip.md.
#pragma once
#include <string>
#include <vector>

namespace xmodal::app {

// True when the arguments' --model/-m (or $XMODAL_MODEL_DIR when no --model is given) is a
// directory whose config.json is a BLIP one. Never throws: anything unreadable is "no", and the
// caller's own loading reports it.
bool wants_blip(const std::vector<std::string>& args);

int run_blip_caption(const std::vector<std::string>& args);
int run_blip_vqa(const std::vector<std::string>& args);
int run_blip_eval(const std::vector<std::string>& args);

}  // namespace xmodal::app
