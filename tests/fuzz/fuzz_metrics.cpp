// libFuzzer target: the metric tokenizers and normalisers (pipeline/metrics.hpp) on arbitrary
// bytes: the PTB tokenizer emulation (one line and the batch path), the COCO caption
// tokenizer, VQA processPunctuation / processDigitArticle and vqa_accuracy, and the Python
// string helpers they rely on (invalid UTF-8 becomes U+FFFD, never a crash). The input is split
// at the first '\x01' into a candidate and a reference so BLEU/ROUGE-L/CIDEr-D run on them too.
#include <cstdint>
#include <string>

#include "pipeline/metrics.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace xmodal::metrics;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t cut = in.find('\x01');
  const std::string a = in.substr(0, cut), b = cut == std::string::npos ? std::string("a b c") : in.substr(cut + 1);
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    (void)ptb_tokens(in);
    std::string la = a, lb = b;
    for (char& c : la) if (c == '\n') c = ' ';
    for (char& c : lb) if (c == '\n') c = ' ';
    (void)ptb_tokens_lines({la, lb});
    std::string ta = coco_tokenize(la), tb = coco_tokenize(lb);
    if (!tb.empty()) {
      (void)score_tokenized({{tb}, {tb, ta}}, {ta, tb});
      (void)rouge_l({tb}, ta);
    }
    std::string p = vqa_process_punctuation(a);
    (void)vqa_process_digit_article(p);
    (void)vqa_accuracy({b, b, a, "yes"}, a, VqaEvalVersion::current);
    (void)vqa_accuracy({b, a, a}, b, VqaEvalVersion::legacy);
    (void)text::python_split(in);
    (void)text::python_strip(in);
    (void)text::python_lower(in);
    (void)text::encode_utf8(text::decode_utf8(in));
  });
  return 0;
}
