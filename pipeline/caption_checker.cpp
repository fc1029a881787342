// Caption checker: template-grammar parser and proposition truth (see caption_checker.hpp).
#include "pipeline/caption_checker.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <unordered_map>

#include "core/error.hpp"

namespace xmodal::scenes {
namespace {

std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&]() {
    if (!cur.empty()) out.push_back(cur), cur.clear();
  };
  for (unsigned char ch : text) {
    if (std::isspace(ch)) {
      flush();
    } else if (ch == ',' || ch == '.') {
      flush();
      out.push_back(std::string(1, static_cast<char>(ch)));
    } else {
      cur += static_cast<char>(std::tolower(ch));
    }
  }
  flush();
  return out;
}

std::optional<int> parse_number(const std::string& w) {
  static const char* kWords[] = {"zero", "one", "two",   "three", "four",   "five",  "six",
                                 "seven", "eight", "nine", "ten",  "eleven", "twelve"};
  for (int i = 0; i <= 12; ++i)
    if (w == kWords[i]) return i;
  if (!w.empty() && w.size() <= 3 && std::all_of(w.begin(), w.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::stoi(w);
  return std::nullopt;
}

// "circle" or "circles" -> circle
std::optional<Shape> parse_shape_word(const std::string& w) {
  if (auto s = parse_shape(w)) return s;
  if (w.size() > 1 && w.back() == 's') return parse_shape(w.substr(0, w.size() - 1));
  return std::nullopt;
}

struct NounPhrase {
  std::optional<Size> size;
  Color color = Color::red;
  Shape shape = Shape::circle;
  std::string text() const {
    return std::string(size ? std::string(size_name(*size)) + " " : "") + color_name(color) + " " + shape_name(shape);
  }
};

struct ParseError {
  std::string msg;
};

class Parser {
 public:
  explicit Parser(std::vector<std::string> t) : t_(std::move(t)) {}
  bool done() const { return i_ >= t_.size(); }
  const std::string& peek() const {
    static const std::string kEnd = "<end>";
    return done() ? kEnd : t_[i_];
  }
  [[noreturn]] void fail(const std::string& expected) const {
    throw ParseError{"expected " + expected + " at word " + std::to_string(i_ + 1) + ", got '" + peek() + "'"};
  }
  std::string next() {
    if (done()) fail("more words");
    return t_[i_++];
  }
  void expect(const std::string& w) {
    if (peek() != w) fail("'" + w + "'");
    ++i_;
  }
  bool accept(const std::string& w) {
    if (peek() != w) return false;
    ++i_;
    return true;
  }
  NounPhrase noun_phrase() {
    NounPhrase np;
    if (auto sz = parse_size(peek())) np.size = sz, ++i_;
    auto c = parse_color(peek());
    if (!c) fail(np.size ? "a colour" : "a size or a colour");
    np.color = *c, ++i_;
    auto s = parse_shape(peek());
    if (!s) fail("a shape (circle, square, triangle)");
    np.shape = *s, ++i_;
    return np;
  }
  // Between list items: ",", "and" or ", and". Returns false at the end of the sentence.
  bool separator() {
    if (done()) return false;
    if (accept(",")) {
      accept("and");
      return true;
    }
    if (accept("and")) return true;
    fail("',', 'and' or the end");
  }

 private:
  std::vector<std::string> t_;
  size_t i_ = 0;
};

// The index of the object the phrase describes (colour and shape right, and size if given).
int resolve(const Scene& s, const NounPhrase& np) {
  for (size_t i = 0; i < s.objects.size(); ++i) {
    const Object& o = s.objects[i];
    if (o.color == np.color && o.shape == np.shape && (!np.size || *np.size == o.size)) return static_cast<int>(i);
  }
  return -1;
}
// Mentioned: colour and shape right (size is not required).
int mentioned_index(const Scene& s, const NounPhrase& np) {
  for (size_t i = 0; i < s.objects.size(); ++i)
    if (s.objects[i].color == np.color && s.objects[i].shape == np.shape) return static_cast<int>(i);
  return -1;
}

struct Checker {
  const Scene& s;
  CaptionCheck& out;
  void prop(bool truth, const std::string& text) {
    ++out.propositions;
    if (truth)
      ++out.true_propositions;
    else
      out.false_propositions.push_back(text);
  }
  void mention(const NounPhrase& np) {
    const int i = mentioned_index(s, np);
    if (i >= 0) out.mentioned.push_back(i);
  }
};

}  // namespace

CaptionCheck check_caption(const Scene& scene, const std::string& caption) {
  CaptionCheck out;
  std::vector<std::string> toks = tokenize(caption);
  if (!toks.empty() && toks.back() == ".") toks.pop_back();  // the final '.' is optional
  if (toks.empty()) {
    out.error = "empty caption";
    return out;
  }
  if (std::find(toks.begin(), toks.end(), ".") != toks.end()) {
    out.error = "more than one sentence";
    return out;
  }
  CaptionCheck result;  // filled only when the whole caption parses
  Checker ck{scene, result};
  try {
    Parser p(toks);
    if (p.accept("there")) {
      result.kind = "count";
      if (!p.accept("is") && !p.accept("are")) p.fail("'is' or 'are'");
      do {
        auto n = parse_number(p.peek());
        if (!n) p.fail("a number");
        p.next();
        auto sh = parse_shape_word(p.peek());
        if (!sh) p.fail("a shape");
        p.next();
        int have = 0;
        for (const Object& o : scene.objects) have += o.shape == *sh;
        ck.prop(have == *n, "count(" + std::string(shape_name(*sh)) + ") = " + std::to_string(*n) + ", is " +
                                std::to_string(have));
      } while (p.separator());
    } else if (p.peek() == "a" || p.peek() == "an") {
      result.kind = "inventory";
      do {
        if (!p.accept("a") && !p.accept("an")) p.fail("'a' or 'an'");
        const NounPhrase np = p.noun_phrase();
        ck.prop(resolve(scene, np) >= 0, "exists(" + np.text() + ")");
        ck.mention(np);
      } while (p.separator());
    } else if (p.accept("the")) {
      const NounPhrase a = p.noun_phrase();
      p.expect("is");
      const std::string w = p.peek();
      std::optional<Rel> rel;
      int superlative = -1;  // 0 closest, 1 farthest
      if (w == "left" || w == "right") {
        p.next();
        p.expect("of");
        rel = w == "left" ? Rel::left_of : Rel::right_of;
      } else if (w == "above" || w == "below") {
        p.next();
        rel = w == "above" ? Rel::above : Rel::below;
      } else if (w == "closest") {
        p.next();
        p.expect("to");
        superlative = 0;
      } else if (w == "farthest" || w == "furthest") {
        p.next();
        p.expect("from");
        superlative = 1;
      } else {
        p.fail("a relation (left of, right of, above, below, closest to, farthest from)");
      }
      p.expect("the");
      const NounPhrase b = p.noun_phrase();
      if (!p.done()) p.fail("the end");
      const int ia = resolve(scene, a), ib = resolve(scene, b);
      ck.mention(a);
      ck.mention(b);
      if (rel) {
        result.kind = "relation";
        const bool truth = ia >= 0 && ib >= 0 && ia != ib && relation_holds(scene.objects[ia], *rel, scene.objects[ib]);
        ck.prop(truth, a.text() + " " + rel_phrase(*rel) + " " + b.text());
      } else {
        result.kind = "superlative";
        const bool truth = ia >= 0 && ib >= 0 && ia != ib && extreme_object(scene, ib, superlative == 1, 4.0) == ia;
        ck.prop(truth, a.text() + (superlative ? " farthest from " : " closest to ") + b.text());
      }
    } else {
      p.fail("'there', 'a', 'an' or 'the'");
    }
    if (!p.done()) p.fail("the end");
  } catch (const ParseError& e) {
    out.error = e.msg;
    return out;
  }
  result.parsed = true;
  std::sort(result.mentioned.begin(), result.mentioned.end());
  result.mentioned.erase(std::unique(result.mentioned.begin(), result.mentioned.end()), result.mentioned.end());
  return result;
}

CaptionCheckReport check_captions(const std::vector<Scene>& scenes, const std::vector<data::CaptionResult>& results) {
  std::unordered_map<int64_t, size_t> by_id;
  for (size_t i = 0; i < scenes.size(); ++i) by_id.emplace(scenes[i].image_id, i);
  std::vector<std::vector<char>> mentioned(scenes.size());
  CaptionCheckReport r;
  for (const auto& res : results) {
    auto it = by_id.find(res.image_id);
    if (it == by_id.end())
      throw InputError("", "caption result for image_id " + std::to_string(res.image_id) +
                               ": no such scene in scenes.json (" + std::to_string(scenes.size()) + " scenes)");
    const Scene& s = scenes[it->second];
    auto& m = mentioned[it->second];
    if (m.empty()) m.assign(s.objects.size() + 1, 0);  // +1: marks "has a caption" even with 0 objects
    m.back() = 1;
    const CaptionCheck c = check_caption(s, res.caption);
    ++r.captions;
    if (!c.parsed) continue;
    ++r.parsed;
    ++r.parsed_by_kind[c.kind];
    r.propositions += c.propositions;
    r.true_propositions += c.true_propositions;
    for (int i : c.mentioned) m[i] = 1;
  }
  for (size_t i = 0; i < scenes.size(); ++i) {
    if (mentioned[i].empty()) continue;
    ++r.images;
    r.objects += static_cast<int64_t>(scenes[i].objects.size());
    for (size_t k = 0; k < scenes[i].objects.size(); ++k) r.objects_mentioned += mentioned[i][k];
  }
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  r.parse_rate = ratio(r.parsed, r.captions);
  r.truthfulness = ratio(r.true_propositions, r.propositions);
  r.coverage = ratio(r.objects_mentioned, r.objects);
  return r;
}

}  // namespace xmodal::scenes
