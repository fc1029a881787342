// Standard dataset formats: COCO captions and VQA-v2 (questions, annotations, results).
// The same code reads real COCO/VQA-v2 files and the ones `xmodal synth` writes.
// Readers validate everything (types, duplicate ids, unknown ids) and throw
// InputError(file, "...") with the offending id/index. Writers are atomic (temp + rename).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace xmodal::data {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;  // relative to the image root, as in COCO
  int width = 0, height = 0;
};
struct CocoCaption {
  int64_t id = 0;
  int64_t image_id = 0;
  std::string caption;
};
struct CocoCaptions {
  std::vector<CocoImage> images;
  std::vector<CocoCaption> annotations;
};
struct CaptionResult {  // results file: [{"image_id", "caption"}]
  int64_t image_id = 0;
  std::string caption;
};

struct VqaQuestion {
  int64_t question_id = 0;
  int64_t image_id = 0;
  std::string question;
};
struct VqaAnnotation {
  int64_t question_id = 0;
  int64_t image_id = 0;
  std::string question_type;  // e.g. "B1", or "what color is" in real VQA-v2
  std::string answer_type;    // "yes/no", "number" or "other"
  std::string multiple_choice_answer;
  std::vector<std::string> answers;  // the 10 human answers ("answers":[{"answer",...}])
};
struct VqaResult {  // results file: [{"question_id", "answer"}]
  int64_t question_id = 0;
  std::string answer;
};

// images[].file_name must be relative without ".." (see resolve_under_root).
CocoCaptions read_coco_captions(const std::string& path);
void write_coco_captions(const std::string& path, const CocoCaptions& c);
std::vector<CaptionResult> read_caption_results(const std::string& path);
void write_caption_results(const std::string& path, const std::vector<CaptionResult>& r);

// VQA-v2 question file: {"questions": [...]} (other top-level keys are kept/ignored).
std::vector<VqaQuestion> read_vqa_questions(const std::string& path);
void write_vqa_questions(const std::string& path, const std::vector<VqaQuestion>& q);
// VQA-v2 annotation file: {"annotations": [...]}.
std::vector<VqaAnnotation> read_vqa_annotations(const std::string& path);
void write_vqa_annotations(const std::string& path, const std::vector<VqaAnnotation>& a);
std::vector<VqaResult> read_vqa_results(const std::string& path);
void write_vqa_results(const std::string& path, const std::vector<VqaResult>& r);

// Cross-file checks (InputError naming the checked file and the element index):
// every result's image_id is an annotated image that has at least one reference caption.
void check_caption_results(const CocoCaptions& gt, const std::vector<CaptionResult>& results,
                           const std::string& results_path);
// every annotation's question_id is in the questions file, with the same image_id.
void check_vqa_annotations(const std::vector<VqaQuestion>& questions, const std::vector<VqaAnnotation>& annotations,
                           const std::string& annotations_path);
// every result's question_id is in the annotations.
void check_vqa_results(const std::vector<VqaAnnotation>& annotations, const std::vector<VqaResult>& results,
                       const std::string& results_path);

// Joins root and a dataset-relative file name. Refuses absolute names and any ".." component
// (InputError naming `source`, the file the name came from).
std::string resolve_under_root(const std::string& root, const std::string& name, const std::string& source);

// True when path names an existing regular file (symlinks followed); never throws. For batch
// work that reports and skips missing images.
bool regular_file_exists(const std::string& path);
// The ids of the images whose file (resolve_under_root(root, file_name, source)) is not a
// regular file. Throws InputError(source) for an absolute or ".." file name.
std::vector<int64_t> missing_images(const std::string& root, const std::vector<CocoImage>& images,
                                    const std::string& source);

}  // namespace xmodal::data
