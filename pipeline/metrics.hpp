// Caption and VQA metrics that reproduce the reference implementations:
//  - COCO caption evaluation (pycocoevalcap / coco-caption): Stanford PTBTokenizer 3.4.1 with
//    -preserveLines -lowerCase, punctuation tokens removed; BLEU-1..4 ("closest" reference
//    length, corpus level); ROUGE-L (beta 1.2); CIDEr-D (n 4, sigma 6, document frequencies over
//    the references of the evaluated images, x10). METEOR and SPICE are not implemented.
//  - VQA accuracy (GT-Vision-Lab/VQA PythonEvaluationTools/vqaEval.py): answer normalisation,
//    min(1, matches/3) averaged over the 10 leave-one-out subsets, percentages rounded to 2
//    decimals the way Python 2's round() does.
// See tests/fixtures/metrics/README.md for how the reference values were produced.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/datasets.hpp"

namespace xmodal::metrics {

// ---- PTB tokenization ---------------------------------------------------------------------

// The tokens the Stanford PTBTokenizer (CoreNLP 3.4.1, PTB3 escaping, lower-cased) gives for
// one line of text, before any punctuation is removed: "Don't (stop)!" -> do n't -lrb- stop
// -rrb- !. Newline characters are treated as spaces.
std::vector<std::string> ptb_tokens(const std::string& text);
// Several lines tokenized as one text, one line each (as the Java tool with -preserveLines sees
// a file): a token's trailing context may look into the next line, so this can differ from
// calling ptb_tokens per line. '\n' inside a line must not occur (it would start a new line).
std::vector<std::vector<std::string>> ptb_tokens_lines(const std::vector<std::string>& lines);

// pycocoevalcap's PTBTokenizer.tokenize for a list of captions: the captions are tokenized as
// one text with one caption per line (as the Java tool sees them), the tokens in pycocoevalcap's
// PUNCTUATIONS list are dropped, and each caption's remaining tokens are joined by one space.
std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions);
// The same for a single caption.
std::string coco_tokenize(const std::string& caption);

// ---- Caption metrics (inputs already tokenized: space-joined strings) ------------------------

struct CaptionScores {
  double bleu[4] = {0, 0, 0, 0};  // corpus BLEU-1..4
  double rouge_l = 0;             // mean per-image ROUGE-L
  double cider_d = 0;             // mean per-image CIDEr-D
  size_t n_images = 0;
  // Per image, in input order.
  std::vector<double> rouge_l_per_image, cider_d_per_image;
};

// refs[i]: the tokenized reference captions of image i (at least one); hyps[i]: its tokenized
// candidate. Throws InternalError when the sizes differ or an image has no reference.
CaptionScores score_tokenized(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps);

// Each metric alone (same inputs).
void bleu(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps, double out[4]);
double rouge_l(const std::vector<std::string>& refs, const std::string& hyp);  // one image
std::vector<double> cider_d(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps);

// pycocoevalcap end to end: the images scored are those in the results, in the order of the
// annotation file's images; gt and results must already have passed
// data::check_caption_results. Tokenizes references and candidates as pycocoevalcap does.
CaptionScores score_captions(const data::CocoCaptions& gt, const std::vector<data::CaptionResult>& results);

// ---- VQA accuracy ---------------------------------------------------------------------------

// Which version of the official vqaEval.py to follow:
//  current: the repository head (commit a013f00, 2021): when the ten answers are not all the
//           same, both the answers and the prediction get processPunctuation and
//           processDigitArticle; when they are all the same nothing is normalised.
//  legacy:  the version used 2016-2021 (commit 458a8b2): the prediction is always normalised;
//           the answers get processPunctuation only, and only when they are not all the same.
enum class VqaEvalVersion { current, legacy };

// vqaEval.processPunctuation and vqaEval.processDigitArticle (ASCII case folding and spaces).
std::string vqa_process_punctuation(const std::string& text);
std::string vqa_process_digit_article(const std::string& text);

// Accuracy of one prediction against the human answers, in [0, 1], unrounded.
double vqa_accuracy(const std::vector<std::string>& answers, const std::string& prediction,
                    VqaEvalVersion version = VqaEvalVersion::current);

struct VqaScores {
  double overall = 0;  // percent, rounded to 2 decimals as the official code does
  std::vector<std::pair<std::string, double>> per_answer_type;    // sorted by name
  std::vector<std::pair<std::string, double>> per_question_type;  // sorted by name
  size_t n_questions = 0;
  std::vector<double> per_question;  // unrounded accuracy in [0,1], annotation order of the scored questions
};

// Scores the questions that have a result (in annotation-file order). results must have passed
// data::check_vqa_results.
VqaScores score_vqa(const std::vector<data::VqaAnnotation>& annotations, const std::vector<data::VqaResult>& results,
                    VqaEvalVersion version = VqaEvalVersion::current);

// ---- Python string semantics the reference code relies on ---------------------------------
namespace text {
std::u32string decode_utf8(const std::string& s);  // invalid bytes -> U+FFFD
std::string encode_utf8(const std::u32string& t);
char32_t to_lower(char32_t c);         // Unicode lower case (Latin, Greek, Cyrillic)
bool python_isspace(char32_t c);       // str.isspace() of Python 3
std::vector<std::string> python_split(const std::string& s);  // s.split()
std::string python_strip(const std::string& s);               // s.strip()
std::string python_lower(const std::string& s);               // s.lower()
}  // namespace text

// Python 2's round(x, ndigits): correctly rounded from the exact binary value, ties away from
// zero.
double python2_round(double x, int ndigits);

}  // namespace xmodal::metrics
