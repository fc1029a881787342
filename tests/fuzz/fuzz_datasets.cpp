// libFuzzer target: the COCO and VQA JSON readers (pipeline/datasets.hpp). The first input byte
// picks the reader (COCO captions, caption results, VQA questions, annotations, results); the
// rest is the file. Readers that succeed feed the consistency checks and the scorers.
#include <cstdint>

#include "pipeline/datasets.hpp"
#include "pipeline/metrics.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace xmodal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int which = data[0] % 5;
  const std::string path = fuzz::scratch_file(data + 1, size - 1, ".json");
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    switch (which) {
      case 0: {
        auto c = data::read_coco_captions(path);
        std::vector<data::CaptionResult> res;
        for (const auto& an : c.annotations) res.push_back({an.image_id, an.caption + " a cat"});
        XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
          data::check_caption_results(c, res, "results.json");
          (void)metrics::score_captions(c, res);
        });
        break;
      }
      case 1: (void)data::read_caption_results(path); break;
      case 2: (void)data::read_vqa_questions(path); break;
      case 3: {
        auto a = data::read_vqa_annotations(path);
        std::vector<data::VqaResult> res;
        for (const auto& x : a) res.push_back({x.question_id, x.multiple_choice_answer});
        XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
          data::check_vqa_results(a, res, "results.json");
          (void)metrics::score_vqa(a, res);
        });
        break;
      }
      default: (void)data::read_vqa_results(path); break;
    }
  });
  return 0;
}
