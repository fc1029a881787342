// VQA accuracy as the official evaluation (GT-Vision-Lab/VQA, vqaEval.py) computes it.
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "core/error.hpp"
#include "pipeline/metrics.hpp"

namespace xmodal::metrics {

namespace {

// vqaEval.contractions: written-without-apostrophe forms -> the form with apostrophes (the
// table's own oddities, such as "somebody'd" -> "somebodyd", are kept).
const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> m = {
      {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
      {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"},
      {"dont", "don't"}, {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"},
      {"hasnt", "hasn't"}, {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
      {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"},
      {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"},
      {"itd've", "it'd've"}, {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"},
      {"mightnt", "mightn't"}, {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"},
      {"mightve", "might've"}, {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"},
      {"notve", "not've"}, {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"},
      {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"}, {"shant", "shan't"}, {"shed've", "she'd've"},
      {"she'dve", "she'd've"}, {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"}, {"someoned", "someone'd"}, {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"}, {"someonell", "someone'll"}, {"someones", "someone's"},
      {"somethingd", "something'd"}, {"somethingd've", "something'd've"}, {"something'dve", "something'd've"},
      {"somethingll", "something'll"}, {"thats", "that's"}, {"thered", "there'd"}, {"thered've", "there'd've"},
      {"there'dve", "there'd've"}, {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"},
      {"theyd've", "they'd've"}, {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"},
      {"theyve", "they've"}, {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"},
      {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"},
      {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"}, {"wheres", "where's"},
      {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"}, {"who'dve", "who'd've"},
      {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"},
      {"whys", "why's"}, {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
      {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"},
      {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"},
      {"y'all'dve", "y'all'd've"}, {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"},
      {"youll", "you'll"}, {"youre", "you're"}, {"youve", "you've"},
  };
  return m;
}

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

std::string replace_all(const std::string& s, char from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == from) out += to;
    else out += c;
  }
  return out;
}

std::string tabs_newlines_to_spaces(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  return s;
}

}  // namespace

std::string vqa_process_punctuation(const std::string& in) {
  static const char kPunct[] = {';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+',
                                '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'};
  // commaStrip: a digit, a comma, a digit anywhere in the (original) text.
  bool comma_digits = false;
  for (size_t i = 0; i + 2 < in.size() && !comma_digits; ++i)
    comma_digits = is_ascii_digit(in[i]) && in[i + 1] == ',' && is_ascii_digit(in[i + 2]);
  std::string out = in;
  for (char p : kPunct) {
    // Tested on the original text; the replacement applies to the text so far.
    bool spaced = in.find(std::string{p, ' '}) != std::string::npos || in.find(std::string{' ', p}) != std::string::npos;
    out = replace_all(out, p, (spaced || comma_digits) ? "" : " ");
  }
  // periodStrip "(?!<=\d)(\.)(?!\d)" with count=re.UNICODE (32): at most 32 periods not
  // followed by a digit are removed.
  std::string res;
  res.reserve(out.size());
  int removed = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && is_ascii_digit(out[i + 1]))) {
      ++removed;
      continue;
    }
    res += out[i];
  }
  return res;
}

std::string vqa_process_digit_article(const std::string& in) {
  static const std::unordered_map<std::string, std::string> manual = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"}, {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};
  std::vector<std::string> words;
  for (auto& w : text::python_split(text::python_lower(in))) {
    auto it = manual.find(w);
    std::string word = it == manual.end() ? w : it->second;
    if (word != "a" && word != "an" && word != "the") words.push_back(std::move(word));
  }
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    auto it = contractions().find(words[i]);
    if (i) out += ' ';
    out += it == contractions().end() ? words[i] : it->second;
  }
  return out;
}

double vqa_accuracy(const std::vector<std::string>& answers_in, const std::string& prediction, VqaEvalVersion version) {
  check(!answers_in.empty(), "vqa_accuracy: no human answers");
  std::vector<std::string> answers;
  std::string res = text::python_strip(tabs_newlines_to_spaces(prediction));
  if (version == VqaEvalVersion::current) {
    for (const auto& a : answers_in) answers.push_back(text::python_strip(tabs_newlines_to_spaces(a)));
    if (std::set<std::string>(answers.begin(), answers.end()).size() > 1) {
      for (auto& a : answers) a = vqa_process_digit_article(vqa_process_punctuation(a));
      res = vqa_process_digit_article(vqa_process_punctuation(res));
    }
  } else {
    res = vqa_process_digit_article(vqa_process_punctuation(res));
    answers = answers_in;
    if (std::set<std::string>(answers.begin(), answers.end()).size() > 1)
      for (auto& a : answers) a = vqa_process_punctuation(a);
  }
  // Leave each human answer out in turn; min(1, matches among the others / 3); average.
  double sum = 0.0;
  for (size_t i = 0; i < answers.size(); ++i) {
    int matches = 0;
    for (size_t j = 0; j < answers.size(); ++j)
      if (j != i && answers[j] == res) ++matches;
    sum += std::min(1.0, static_cast<double>(matches) / 3);
  }
  return sum / static_cast<double>(answers.size());
}

VqaScores score_vqa(const std::vector<data::VqaAnnotation>& annotations, const std::vector<data::VqaResult>& results,
                    VqaEvalVersion version) {
  std::unordered_map<int64_t, const std::string*> answer_of;
  for (const auto& r : results) answer_of.emplace(r.question_id, &r.answer);
  VqaScores s;
  double total = 0.0;
  std::map<std::string, std::pair<double, size_t>> by_ans, by_ques;
  for (const auto& a : annotations) {
    auto it = answer_of.find(a.question_id);
    if (it == answer_of.end()) continue;
    double acc = vqa_accuracy(a.answers, *it->second, version);
    s.per_question.push_back(acc);
    total += acc;
    auto& at = by_ans[a.answer_type];
    at.first += acc;
    ++at.second;
    auto& qt = by_ques[a.question_type];
    qt.first += acc;
    ++qt.second;
  }
  s.n_questions = s.per_question.size();
  if (s.n_questions == 0) return s;
  auto pct = [](double sum, size_t n) { return python2_round(100 * sum / static_cast<double>(n), 2); };
  s.overall = pct(total, s.n_questions);
  for (const auto& [k, v] : by_ans) s.per_answer_type.emplace_back(k, pct(v.first, v.second));
  for (const auto& [k, v] : by_ques) s.per_question_type.emplace_back(k, pct(v.first, v.second));
  return s;
}

}  // namespace xmodal::metrics
