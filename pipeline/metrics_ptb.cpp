// An emulation of the Stanford PTBTokenizer (CoreNLP 3.4.1, the jar pycocoevalcap runs with
// -preserveLines -lowerCase), written from the lexer's published token grammar.
//
// The Java tool is a JFlex scanner: at each position every rule is tried, the longest match
// wins (a trailing context r1/r2 counts towards the length but only r1 becomes the token), and
// ties go to the earlier rule. We do the same with a tiny set-of-end-positions regex engine: each
// pattern returns every position where a match starting at `pos` can end, so the longest match
// is exact whatever the alternation order. JFlex's %caseless applies to literal characters only;
// character classes stay case-sensitive (so "Ark." is an abbreviation and "ark." is not).
//
// Limits (documented in the README): Unicode letters/digits/case mapping are approximated by
// common ranges (Latin, Greek, Cyrillic, Hebrew, Arabic, CJK, Hangul); the rare XML entity forms
// (&amp; &quot; ...) and SGML tags are handled as the grammar says.
#include <algorithm>
#include <array>
#include <bitset>
#include <memory>

#include "core/error.hpp"
#include "pipeline/metrics.hpp"

namespace xmodal::metrics {

namespace {

using Cp = char32_t;
using Text = std::u32string;
using Ends = std::vector<uint32_t>;

using text::decode_utf8;
using text::encode_utf8;
using text::to_lower;

// ---- Unicode character properties (approximate outside ASCII) ------------------------------

bool in(Cp c, Cp lo, Cp hi) { return c >= lo && c <= hi; }

bool is_unicode_letter(Cp c) {  // Java Character.isLetter, common scripts
  if (c < 0x80) return in(c, 'A', 'Z') || in(c, 'a', 'z');
  return c == 0xAA || c == 0xB5 || c == 0xBA || in(c, 0xC0, 0xD6) || in(c, 0xD8, 0xF6) || in(c, 0xF8, 0x2C1) ||
         in(c, 0x2C6, 0x2D1) || in(c, 0x2E0, 0x2E4) || c == 0x2EC || c == 0x2EE || in(c, 0x370, 0x374) ||
         in(c, 0x376, 0x377) || in(c, 0x37A, 0x37D) || c == 0x386 || in(c, 0x388, 0x3F5) || in(c, 0x3F7, 0x481) ||
         in(c, 0x48A, 0x52F) || in(c, 0x531, 0x556) || in(c, 0x561, 0x587) || in(c, 0x5D0, 0x5EA) ||
         in(c, 0x620, 0x64A) || in(c, 0x671, 0x6D3) || in(c, 0x904, 0x939) || in(c, 0xE01, 0xE30) ||
         in(c, 0x10A0, 0x10FF) || in(c, 0x1E00, 0x1FBC) || in(c, 0x3041, 0x3096) || in(c, 0x30A1, 0x30FA) ||
         in(c, 0x3400, 0x4DBF) || in(c, 0x4E00, 0x9FFF) || in(c, 0xAC00, 0xD7A3) || in(c, 0xF900, 0xFAFF) ||
         in(c, 0xFF21, 0xFF3A) || in(c, 0xFF41, 0xFF5A);
}

bool is_unicode_digit(Cp c) {  // [:digit:] (Unicode Nd), common blocks
  return in(c, '0', '9') || in(c, 0x660, 0x669) || in(c, 0x6F0, 0x6F9) || in(c, 0x966, 0x96F) ||
         in(c, 0xFF10, 0xFF19);
}

bool is_unicode_upper(Cp c) {
  return in(c, 'A', 'Z') || in(c, 0xC0, 0xD6) || in(c, 0xD8, 0xDE) || in(c, 0x391, 0x3A9) || in(c, 0x410, 0x42F);
}

Cp fold_ascii(Cp c) { return in(c, 'A', 'Z') ? c + 32 : c; }

// ---- The pattern engine --------------------------------------------------------------------

struct Node {
  virtual ~Node() = default;
  // Appends every position where a match starting at pos can end (unsorted, maybe repeated).
  virtual void ends(const Text& s, uint32_t pos, Ends& out) const = 0;
  virtual bool nullable() const = 0;
  virtual bool can_start(Cp c) const = 0;
  // A shortcut for repetitions: 1 when the only match at pos is the one character s[pos], 0 when
  // there is no match at pos, -1 when it is not that simple (call ends()).
  virtual int one(const Text& s, uint32_t pos) const {
    if (nullable()) return -1;
    return pos < s.size() && can_start(s[pos]) ? -1 : 0;
  }
};
using P = std::shared_ptr<const Node>;

using Pred = bool (*)(Cp);

// Scratch position lists, reused across calls (matching allocates nothing in the steady state).
class Scratch {
 public:
  Scratch() {
    auto& pool = free_list();
    if (pool.empty()) {
      v_ = new Ends;
    } else {
      v_ = pool.back();
      pool.pop_back();
    }
    v_->clear();
  }
  ~Scratch() { free_list().push_back(v_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Ends& operator*() { return *v_; }
  Ends* operator->() { return v_; }

 private:
  struct Pool {
    std::vector<Ends*> v;
    ~Pool() {
      for (Ends* e : v) delete e;
    }
  };
  static std::vector<Ends*>& free_list() {
    thread_local Pool pool;
    return pool.v;
  }
  Ends* v_;
};

// A character class: ASCII bitmap, code point ranges and an optional predicate; maybe negated.
struct ClassNode : Node {
  std::bitset<128> ascii;
  std::vector<std::pair<Cp, Cp>> ranges;
  std::vector<Pred> preds;
  bool negated = false;
  bool test(Cp c) const {
    bool hit = false;
    if (c < 128 && ascii[c]) hit = true;
    for (size_t i = 0; !hit && i < ranges.size(); ++i) hit = in(c, ranges[i].first, ranges[i].second);
    for (size_t i = 0; !hit && i < preds.size(); ++i) hit = preds[i](c);
    return hit != negated;
  }
  void ends(const Text& s, uint32_t pos, Ends& out) const override {
    if (pos < s.size() && test(s[pos])) out.push_back(pos + 1);
  }
  bool nullable() const override { return false; }
  bool can_start(Cp c) const override { return test(c); }
  int one(const Text& s, uint32_t pos) const override { return pos < s.size() && test(s[pos]) ? 1 : 0; }
};

struct LitNode : Node {  // a literal string, ASCII letters caseless (JFlex %caseless)
  Text lit;
  void ends(const Text& s, uint32_t pos, Ends& out) const override {
    if (pos + lit.size() > s.size()) return;
    for (size_t i = 0; i < lit.size(); ++i)
      if (fold_ascii(s[pos + i]) != fold_ascii(lit[i])) return;
    out.push_back(pos + static_cast<uint32_t>(lit.size()));
  }
  bool nullable() const override { return lit.empty(); }
  bool can_start(Cp c) const override { return !lit.empty() && fold_ascii(c) == fold_ascii(lit[0]); }
  int one(const Text& s, uint32_t pos) const override {
    if (lit.size() != 1) return Node::one(s, pos);
    return pos < s.size() && fold_ascii(s[pos]) == fold_ascii(lit[0]) ? 1 : 0;
  }
};

// A set of text positions, as one stamp per position: the position is in the set when its stamp
// equals the current generation. Membership and insertion are O(1), so a repetition that walks n
// characters costs O(n) (it used to keep a sorted vector and merge it at every step, O(n^2): a
// 20k-letter word took 7 s), and duplicates are dropped without sorting. Pooled per thread like
// Scratch, one stamp array per nesting depth, so nested users never share one.
class SeenSet {
 public:
  explicit SeenSet(size_t text_size) {
    auto& pool = free_list();
    if (pool.empty()) {
      st_ = new Stamps;
    } else {
      st_ = pool.back();
      pool.pop_back();
    }
    if (st_->mark.size() < text_size + 1) st_->mark.resize(text_size + 1, 0);
    if (++st_->gen == 0) {  // wrapped: forget every old stamp
      std::fill(st_->mark.begin(), st_->mark.end(), 0u);
      st_->gen = 1;
    }
  }
  ~SeenSet() { free_list().push_back(st_); }
  SeenSet(const SeenSet&) = delete;
  SeenSet& operator=(const SeenSet&) = delete;
  // True the first time q is inserted.
  bool insert(uint32_t q) {
    if (st_->mark[q] == st_->gen) return false;
    st_->mark[q] = st_->gen;
    return true;
  }

 private:
  struct Stamps {
    std::vector<uint32_t> mark;
    uint32_t gen = 0;
  };
  struct Pool {
    std::vector<Stamps*> v;
    ~Pool() {
      for (Stamps* e : v) delete e;
    }
  };
  static std::vector<Stamps*>& free_list() {
    thread_local Pool pool;
    return pool.v;
  }
  Stamps* st_;
};

// Drops repeated positions from e (order kept), O(e.size()).
void dedup(Ends& e, size_t text_size) {
  if (e.size() < 2) return;
  if (e.size() == 2) {
    if (e[0] == e[1]) e.pop_back();
    return;
  }
  SeenSet seen(text_size);
  size_t w = 0;
  for (uint32_t q : e)
    if (seen.insert(q)) e[w++] = q;
  e.resize(w);
}

struct SeqNode : Node {
  std::vector<P> parts;
  void ends(const Text& s, uint32_t pos, Ends& out) const override {
    Scratch a, b;
    Ends* cur = &*a;
    Ends* next = &*b;
    cur->push_back(pos);
    for (const auto& p : parts) {
      next->clear();
      for (uint32_t q : *cur) p->ends(s, q, *next);
      if (next->empty()) return;
      dedup(*next, s.size());
      std::swap(cur, next);
    }
    out.insert(out.end(), cur->begin(), cur->end());
  }
  bool nullable() const override {
    for (const auto& p : parts)
      if (!p->nullable()) return false;
    return true;
  }
  bool can_start(Cp c) const override {
    for (const auto& p : parts) {
      if (p->can_start(c)) return true;
      if (!p->nullable()) return false;
    }
    return false;
  }
};

struct AltNode : Node {
  std::vector<P> alts;
  void ends(const Text& s, uint32_t pos, Ends& out) const override {
    for (const auto& a : alts) a->ends(s, pos, out);
  }
  bool nullable() const override {
    for (const auto& a : alts)
      if (a->nullable()) return true;
    return false;
  }
  bool can_start(Cp c) const override {
    for (const auto& a : alts)
      if (a->can_start(c)) return true;
    return false;
  }
  int one(const Text& s, uint32_t pos) const override {
    int r = 0;
    for (const auto& a : alts) {
      const int v = a->one(s, pos);
      if (v < 0) return -1;
      r |= v;
    }
    return r;
  }
};

struct RepNode : Node {  // x{lo,hi}; hi < 0 is unbounded
  P x;
  const ClassNode* x_class = nullptr;  // x when it is one character class (the common case)
  int lo = 0, hi = -1;
  void ends(const Text& s, uint32_t pos, Ends& out) const override {
    if (x_class) {  // the ends are the contiguous run pos+lo .. pos+m: one scan, no frontier sets
      if (lo == 0) out.push_back(pos);
      uint32_t q = pos;
      for (int k = 1; (hi < 0 || k <= hi) && q < s.size() && x_class->test(s[q]); ++k) {
        ++q;
        if (k >= lo) out.push_back(q);
      }
      return;
    }
    Scratch fa, na;
    SeenSet seen(s.size());
    Ends* frontier = &*fa;
    Ends* next = &*na;
    frontier->push_back(pos);
    if (lo == 0) out.push_back(pos);
    for (int k = 1; hi < 0 || k <= hi; ++k) {
      next->clear();
      const int single = frontier->size() == 1 ? x->one(s, frontier->front()) : -1;
      if (single == 1) {
        next->push_back(frontier->front() + 1);
      } else if (single < 0) {
        for (uint32_t q : *frontier) x->ends(s, q, *next);
      }
      if (k >= lo) {
        // Past the minimum, positions already reached add nothing new (guarantees termination);
        // this also removes duplicates, in O(1) per position.
        size_t w = 0;
        for (uint32_t q : *next)
          if (seen.insert(q)) (*next)[w++] = q;
        next->resize(w);
        out.insert(out.end(), next->begin(), next->end());
      } else {
        dedup(*next, s.size());
      }
      if (next->empty()) break;
      std::swap(frontier, next);
    }
  }
  bool nullable() const override { return lo == 0 || x->nullable(); }
  bool can_start(Cp c) const override { return x->can_start(c); }
};

// -- builders --
P lit(const std::u32string& s) {
  auto n = std::make_shared<LitNode>();
  n->lit = s;
  return n;
}
P lit(const char* s) { return lit(decode_utf8(s)); }

// A class from a JFlex-like spec: "A-Za-z\\-" (ranges, backslash escapes).
std::shared_ptr<ClassNode> make_class(const std::u32string& spec, bool negated) {
  auto n = std::make_shared<ClassNode>();
  n->negated = negated;
  std::vector<Cp> items;
  std::vector<bool> escaped;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == U'\\' && i + 1 < spec.size()) {
      items.push_back(spec[++i]);
      escaped.push_back(true);
    } else {
      items.push_back(spec[i]);
      escaped.push_back(false);
    }
  }
  auto add = [&](Cp lo, Cp hi) {
    for (Cp c = lo; c <= hi && c < 128; ++c) n->ascii.set(c);
    if (hi >= 128) n->ranges.emplace_back(std::max<Cp>(lo, 128), hi);
  };
  for (size_t i = 0; i < items.size(); ++i) {
    if (i + 2 < items.size() && items[i + 1] == U'-' && !escaped[i + 1]) {
      add(items[i], items[i + 2]);
      i += 2;
    } else {
      add(items[i], items[i]);
    }
  }
  return n;
}
P cls(const std::u32string& spec) { return make_class(spec, false); }
P ncls(const std::u32string& spec) { return make_class(spec, true); }
P pred(Pred f) {
  auto n = std::make_shared<ClassNode>();
  n->preds.push_back(f);
  return n;
}
P any_char() { return ncls(U""); }
P seq(std::vector<P> parts) {
  auto n = std::make_shared<SeqNode>();
  n->parts = std::move(parts);
  return n;
}
P alt(std::vector<P> alts) {
  auto n = std::make_shared<AltNode>();
  n->alts = std::move(alts);
  return n;
}
P rep(P x, int lo, int hi) {
  auto n = std::make_shared<RepNode>();
  n->x_class = dynamic_cast<const ClassNode*>(x.get());
  n->x = std::move(x);
  n->lo = lo;
  n->hi = hi;
  return n;
}
P opt(P x) { return rep(std::move(x), 0, 1); }
P star(P x) { return rep(std::move(x), 0, -1); }
P plus(P x) { return rep(std::move(x), 1, -1); }
// Alternation of caseless literal words, "a|b|c".
P words(const char* list) {
  std::vector<P> alts;
  std::string cur;
  for (const char* p = list;; ++p) {
    if (*p == '|' || *p == '\0') {
      alts.push_back(lit(cur.c_str()));
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  return alt(std::move(alts));
}

// ---- The token grammar (macros of PTBLexer.flex, CoreNLP 3.4.1) -----------------------------

enum class Act {
  text,         // the matched text as is
  soft_hyphen,  // remove U+00AD (a token never becomes empty: "-")
  quotes_right, // latex quotes, probably a closing quote
  quotes_left,  // latex quotes, probably an opening quote
  pushback3,    // cannot -> can; 'twas -> 't ...: keep all but the last 3 (pushed back)
  pushback2,
  mdash,        // "--"
  amp,          // &amp; -> &
  fractions,    // ½ -> 1/2
  currency,     // ¢ -> cents, £ -> #, € -> $
  nbsp,         // spaces -> U+00A0
  phone,        // spaces -> U+00A0, parentheses -> -LRB- -RRB-
  parens,       // parentheses -> -LRB- -RRB-
  acronym_end,  // sentence-final acronym: see lexer
  abbrev_dot,   // token keeps its period and the period is lexed again
  ellipsis,     // "..."
  hyphens,      // 3-4 hyphens -> "--"
  lsb, rsb, lcb, rcb, lrb, rrb,
  less, greater,
  skip,         // whitespace and the like: no token
};

struct Rule {
  P main;
  P trail;  // may be null
  Act act;
  std::bitset<128> first;  // ASCII characters the rule can start with
};

bool is_letter_p(Cp c) { return is_unicode_letter(c); }
bool is_digit_p(Cp c) { return is_unicode_digit(c); }
bool is_upper_p(Cp c) { return is_unicode_upper(c); }
bool is_letter_extra_p(Cp c) {  // the extra ranges the lexer adds to LETTER (combining marks etc.)
  return c == 0xAD || in(c, 0x237, 0x24F) || in(c, 0x2C2, 0x2C5) || in(c, 0x2D2, 0x2DF) || in(c, 0x2E5, 0x2FF) ||
         in(c, 0x300, 0x36F) || in(c, 0x370, 0x37D) || c == 0x384 || c == 0x385 || c == 0x3CF || c == 0x3F6 ||
         in(c, 0x3FC, 0x3FF) || in(c, 0x483, 0x487) || c == 0x4CF || in(c, 0x4F6, 0x4FF) || in(c, 0x510, 0x525) ||
         in(c, 0x55A, 0x55F) || in(c, 0x591, 0x5BD) || in(c, 0x64B, 0x65E) || c == 0x670 || in(c, 0x6D6, 0x6EF) ||
         in(c, 0x900, 0x903) || c == 0x93C || in(c, 0x93E, 0x94E) || in(c, 0xE30, 0xE3A) || in(c, 0xE47, 0xE4E);
}

struct Grammar {
  std::vector<Rule> rules;
  Grammar();
};

Grammar::Grammar() {
  // Character sets.
  P LETTERC = pred(is_letter_p);  // [:letter:]
  P DIGIT = alt({pred(is_digit_p), cls(U"\u07C0-\u07C9")});
  P UPPER = pred(is_upper_p);
  P SPACE = cls(U" \t\u00A0\u2000-\u200A\u3000");
  P NEWLINE = alt({lit("\r"), seq({opt(lit("\r")), lit("\n")}), cls(U"\u2028\u2029\u000B\u000C\u0085")});
  P SPACENL = alt({SPACE, NEWLINE});
  P SPACENLS = plus(SPACENL);
  P AZaz = cls(U"A-Za-z");
  P AZaz09 = cls(U"A-Za-z0-9");
  P D09 = cls(U"0-9");

  P SGML_NAME = seq({AZaz, star(cls(U"A-Za-z0-9_:.\\-"))});
  P SGML = seq({lit("<"),
                alt({seq({cls(U"!?"), cls(U"A-Za-z\\-"), star(ncls(U">\r\n"))}),
                     seq({SGML_NAME,
                          star(seq({plus(lit(" ")),
                                    alt({SGML_NAME,
                                         seq({SGML_NAME, star(lit(" ")), lit("="), star(lit(" ")),
                                              alt({seq({lit("'"), star(ncls(U"'")), lit("'")}),
                                                   seq({lit("\""), star(ncls(U"\"")), lit("\"")})})})})})),
                          star(lit(" ")), opt(lit("/"))}),
                     seq({lit("/"), SGML_NAME})}),
                star(lit(" ")), lit(">")});
  P SENTEND = seq({SPACENL, alt({SPACENL, UPPER, SGML})});
  P SPMDASH = alt({seq({lit("&"), words("MD|mdash|ndash"), lit(";")}), cls(U"\u0096\u0097\u2013\u2014\u2015")});
  P SPAMP = lit("&amp;");
  P SPPUNC = seq({lit("&"), alt({words("HT|TL|UR|LR|QC|QL|QR|odq|cdq"), seq({lit("#"), plus(D09)})}), lit(";")});
  P SPLET = seq({lit("&"), cls(U"aeiouAEIOU"), words("acute|grave|uml"), lit(";")});
  P DATE = seq({rep(DIGIT, 1, 2), cls(U"\\-/"), rep(DIGIT, 1, 2), cls(U"\\-/"), rep(DIGIT, 2, 4)});
  P NUM = alt({plus(DIGIT), seq({star(DIGIT), plus(seq({cls(U".:,\u00AD\u066B\u066C"), plus(DIGIT)}))})});
  P NUMBER = seq({opt(cls(U"\\-+")), NUM});
  P SUBSUPNUM = seq({opt(cls(U"\u207A\u207B\u208A\u208B")),
                     alt({plus(cls(U"\u2070\u00B9\u00B2\u00B3\u2074-\u2079")), plus(cls(U"\u2080-\u2089"))})});
  P FRAC = seq({opt(seq({rep(DIGIT, 1, 4), cls(U"\\- \u00A0")})), rep(DIGIT, 1, 4),
                alt({seq({opt(lit("\\")), lit("/")}), lit(U"\u2044")}), rep(DIGIT, 1, 4)});
  P FRAC2 = cls(U"\u00BC\u00BD\u00BE\u2153-\u215E");
  P DOLSIGN = alt({seq({star(cls(U"A-Z")), lit("$")}), lit("#")});
  P DOLSIGN2 = cls(U"\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6");
  P LETTER = alt({LETTERC, SPLET, pred(is_letter_extra_p)});
  P LETDIG = alt({LETTER, DIGIT});
  P WORD = seq({LETTER, star(LETDIG), star(seq({cls(U".!?"), LETTER, star(LETDIG)}))});
  P FILENAME_EXT = words(
      "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|"
      "py|sql|tar|txt|wav|x|xml|zip");
  P FILENAME = seq({plus(LETDIG), star(seq({lit("."), plus(LETDIG)})), lit("."), FILENAME_EXT});
  P APOS = alt({cls(U"'\u0092\u2019"), lit("&apos;")});
  P APOSETCETERA = alt({APOS, cls(U"`\u0091\u2018\u201B")});
  P HYPHEN = cls(U"\\-_\u058A\u2010\u2011");
  P LD = alt({LETTERC, DIGIT});  // [:letter:]|[:digit:]
  P THING_PART = seq({opt(seq({cls(U"dDoOlL"), APOSETCETERA, LD})), plus(LD)});
  P THING = seq({THING_PART, star(seq({HYPHEN, THING_PART}))});
  P THINGA = seq({plus(cls(U"A-Z")), plus(seq({alt({cls(U"+&"), SPAMP}), plus(cls(U"A-Z"))}))});
  P THING3_PART = seq({plus(AZaz09), rep(seq({lit("-"), plus(AZaz)}), 0, 2)});
  P THING3 = seq({THING3_PART, rep(seq({opt(lit("\\")), lit("/"), THING3_PART}), 1, 2)});
  P ACRO_SPECIAL = alt({seq({words("Canada|Sino|Korean|EU|Japan|non"), lit("-U.S")}),
                        seq({lit("U.S.-"), words("U.K|U.S.S.R")})});
  P ACRO = alt({seq({AZaz, star(seq({lit("."), AZaz}))}), ACRO_SPECIAL});
  P ACRO2 = alt({seq({AZaz, plus(seq({lit("."), AZaz}))}), ACRO_SPECIAL});
  P HTHING = seq({AZaz09, star(cls(U"A-Za-z0-9.,\u00AD")),
                  plus(seq({lit("-"), alt({plus(cls(U"A-Za-z0-9\u00AD")), seq({ACRO2, lit(".")})})}))});
  P REDAUX = seq({APOS, alt({cls(U"msdMSD"), lit("re"), lit("ve"), lit("ll")})});
  P SWORD = seq({star(cls(U"A-Za-z\u00AD")), cls(U"A-MO-Za-mo-z"), star(lit(U"\u00AD"))});
  P SREDAUX = seq({lit("n"), APOSETCETERA, lit("t")});
  P APOWORD = alt({
      seq({APOS, lit("n"), opt(APOS)}),
      seq({cls(U"lLdDjJ"), APOS}),
      seq({lit("Dunkin"), APOS}),
      seq({lit("somethin"), APOS}),
      seq({lit("ol"), APOS}),
      seq({APOS, lit("em")}),
      seq({cls(U"A-HJ-XZn"), APOSETCETERA, LETTERC, LETTERC, star(LETTERC)}),
      seq({APOS, cls(U"2-9"), lit("0s")}),
      seq({APOS, lit("til"), opt(lit("l"))}),
      seq({LETTERC, star(LETTERC), cls(U"aeiouyAEIOUY"), APOSETCETERA, cls(U"aeiouA-Z"), star(LETTERC)}),
      seq({APOS, lit("cause")}),
      seq({lit("cont'd"), opt(lit("."))}),
      words("'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l"),
      seq({lit("O"), APOSETCETERA, lit("o")}),
  });
  P APOWORD2 = seq({lit("y"), APOS});
  P FULLURL = seq({lit("http"), opt(lit("s")), lit("://"), plus(ncls(U" \t\n\f\r\"<>|(){}")),
                   ncls(U" \t\n\f\r\"<>|.!?(){},-")});
  P LIKELYURL = seq({alt({seq({lit("www."), plus(seq({plus(ncls(U" \t\n\f\r\"<>|.!?(){},")), lit(".")})),
                               rep(AZaz, 2, 4)}),
                          seq({plus(seq({plus(ncls(U" \t\n\f\r\"`'<>|.!?(){},-_$")), lit(".")})),
                               words("com|net|org|edu")})}),
                     opt(seq({lit("/"), plus(ncls(U" \t\n\f\r\"<>|()")), ncls(U" \t\n\f\r\"<>|.!?(){},-")}))});
  P EMAIL = seq({opt(alt({lit("&lt;"), lit("<")})), AZaz09, star(ncls(U" \t\n\f\r\"<>|()\u00A0{}")), lit("@"),
                 star(seq({plus(ncls(U" \t\n\f\r\"<>|(){}.\u00A0")), lit(".")})),
                 plus(ncls(U" \t\n\f\r\"<>|(){}.\u00A0")), opt(alt({lit("&gt;"), lit(">")}))});
  P TWITTER = alt({seq({lit("@"), cls(U"a-zA-Z_"), star(cls(U"a-zA-Z_0-9"))}), seq({lit("#"), plus(LETTER)})});

  P ABMONTH = words("Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec");
  P ABDAYS = words("Mon|Tue|Tues|Wed|Thu|Thurs|Fri");
  // Entries written [X]yz in the lexer start with a case-sensitive class.
  auto cap = [](const char32_t* first, const char* rest) { return seq({cls(first), lit(rest)}); };
  P ABSTATE = alt({words("Ala|Ariz"), cap(U"A", "z"), cap(U"A", "rk"), words("Calif|Colo|Conn|Ct|Dak"),
                   cap(U"D", "el"), words("Fla|Ga"), cap(U"I", "ll"), words("Ind"), seq({lit("Kan"), opt(lit("s"))}),
                   words("Ky"), cap(U"L", "a"), cap(U"M", "ass"), words("Md|Mich|Minn"), cap(U"M", "iss"),
                   words("Mo|Mont|Neb|Nev|Okla"), cap(U"O", "re"), cap(U"P", "a"), words("Penn|Tenn"), cap(U"T", "ex"),
                   words("Va|Vt"), cap(U"W", "ash"), seq({lit("Wis"), opt(lit("c"))}), words("Wyo")});
  P ABCOMP = alt({words("Inc"), seq({lit("Co"), opt(lit("s"))}), words("Corp"),
                  seq({lit("P"), opt(lit("p")), lit("t"), cls(U"ye"), opt(lit("s"))}),
                  words("Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys")});
  P ABNUM = words("tel|est|ext|sq");
  P ABPTIT = alt({words("Jr|Sr|Bros"), seq({words("Ed|Ph"), lit(".D")}), words("Blvd|Rd|Esq")});
  P ABBREV1 = seq({alt({ABMONTH, ABDAYS, ABSTATE, ABCOMP, ABNUM, ABPTIT, words("etc|al|seq|Bldg")}), lit(".")});
  auto opt_s = [](const char* w) { return seq({lit(w), opt(lit("s"))}); };
  P ABTITLE = alt({words("Mr|Mrs|Ms"), cap(U"M", "iss"), opt_s("Dr"), opt_s("Prof"), opt_s("Sen"), opt_s("Rep"),
                   opt_s("Atty"), words("Lt|Col|Gen|Messrs"), opt_s("Gov"), words("Adm|Rev|Maj|Sgt|Cpl|Pvt|Capt"),
                   seq({lit("St"), opt(lit("e"))}), words("Ave|Pres|Lieut|Hon|Brig"),
                   seq({lit("C"), opt(lit("o")), lit("mdr")}), words("Pfc|Spc"), opt_s("Supt"),
                   words("Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc")});
  P ABCOMP2 = alt({words("Invt|Elec|Natl"), seq({lit("M"), cls(U"ft"), lit("g")}), words("Dept")});
  P ABBREV4 = alt({ABTITLE, words("vs|Alex|Wm|Jos|Cie|a.k.a|cf|TREAS|Ph"), ACRO, ABCOMP2});
  P ABBREV2 = seq({ABBREV4, lit(".")});
  P ACRONYM = seq({ACRO, lit(".")});
  P ABBREV3 = seq({words("ca|figs|fig|prop|nos|no|art|bldg|pp|op"), lit(".")});
  P D = D09;
  P PHONE_SEP = cls(U"\\- \u00A0");
  P PHONE = alt({seq({alt({seq({lit("("), rep(D, 2, 3), lit(")"), opt(cls(U" \u00A0"))}),
                           seq({opt(seq({lit("+"), opt(lit("+"))})), opt(seq({rep(D, 2, 4), PHONE_SEP})), rep(D, 2, 4),
                                PHONE_SEP})}),
                      rep(D, 3, 4), opt(PHONE_SEP), rep(D, 3, 5)}),
                 seq({opt(seq({opt(seq({lit("+"), opt(lit("+"))})), rep(D, 2, 4), lit(".")})), rep(D, 2, 4), lit("."),
                      rep(D, 3, 4), lit("."), rep(D, 3, 5)})});
  P FAKEDUCKFEET = alt({lit("<<"), lit(">>")});
  P LESSTHAN = alt({lit("<"), lit("&lt;")});
  P GREATERTHAN = alt({lit(">"), lit("&gt;")});
  P HYPHENS = plus(lit("-"));
  P LDOTS = alt({rep(lit("."), 3, 5), seq({rep(seq({lit("."), cls(U" \u00A0")}), 2, 4), lit(".")}),
                 cls(U"\u0085\u2026")});
  P FNMARKS = alt({plus(lit("@")), plus(lit("#")), plus(lit("_"))});
  P ASTS = alt({plus(lit("*")), rep(lit("\\*"), 1, 3)});
  P INSENTP = cls(U",;:\u3001");
  P QUOTES = alt({APOS, lit("''"),
                  rep(cls(U"`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A"
                          U"\u00AB\u00BB"),
                      1, 2)});
  P DBLQUOT = alt({lit("\""), lit("&quot;")});
  P TBSPEC = alt({seq({lit("-"), words("RRB|LRB|RCB|LCB|RSB|LSB"), lit("-")}), words("C.D.s|pro-|anti-"),
                  seq({lit("S"), alt({lit("&"), lit("&amp;")}), words("P-500|Ls")}), seq({lit("Cap"), APOS, lit("n")}),
                  seq({lit("c"), APOS, lit("est")})});
  P TBSPEC2 = seq({APOS, D, D});
  P SMILEY = seq({opt(cls(U"<>")), cls(U":;="), opt(cls(U"\\-o*'")), cls(U"()DPdpO\\\\{@|[]")});
  P ASM = cls(U"\\^x=~<>");
  P ASM2 = cls(U"\\-\\^x=~<>'");
  P ASIANSMILEY = alt({seq({ASM, lit(".[^x=~<>]")}), seq({ASM2, lit("_"), ASM2}),
                       seq({lit("("), ASM2, opt(cls(U"_.")), ASM2, lit(")")}),
                       seq({lit("("), cls(U"\\^x=~<>'"), lit("-"), cls(U"\\^x=~<>'`"), lit(")")})});
  P MISCSYMBOL = cls(
      U"+%&~\\^|\\\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387\u05BE"
      U"\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D\u0703-\u070D"
      U"\u07F6\u07F7\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044"
      U"\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB\uFF01-\uFF0F\uFF1A-\uFF20"
      U"\uFF3B-\uFF40\uFF5B-\uFF65");
  P ACRONYM_NEXT = alt({cap(U"A", "bout"), cap(U"A", "ccording"), cap(U"A", "dditionally"), cap(U"A", "fter"),
                        cap(U"A", "n"), cls(U"A"), cap(U"A", "s"), cap(U"A", "t"), cap(U"B", "ut"), cap(U"E", "arlier"),
                        cap(U"H", "e"), cap(U"H", "er"), cap(U"H", "ere"), cap(U"H", "owever"), cap(U"I", "f"),
                        cap(U"I", "n"), cap(U"I", "t"), cap(U"L", "ast"), cap(U"M", "any"), cap(U"M", "ore"),
                        cap(U"M", "r."), cap(U"M", "s."), cap(U"N", "ow"), cap(U"O", "nce"), cap(U"O", "ne"),
                        cap(U"O", "ther"), cap(U"O", "ur"), cap(U"S", "he"), cap(U"S", "ince"), cap(U"S", "o"),
                        cap(U"S", "ome"), cap(U"S", "uch"), cap(U"T", "hat"), cap(U"T", "he"), cap(U"T", "heir"),
                        cap(U"T", "hen"), cap(U"T", "here"), cap(U"T", "hese"), cap(U"T", "hey"), cap(U"T", "his"),
                        cap(U"W", "e"), cap(U"W", "hen"), cap(U"W", "hile"), cap(U"W", "hat"), cap(U"Y", "et"),
                        cap(U"Y", "ou"), SGML});

  auto add = [this](P main, P trail, Act act) { rules.push_back(Rule{std::move(main), std::move(trail), act, {}}); };
  P none;
  P NOT_AZaz = ncls(U"A-Za-z");
  // The rules, in the lexer's order (earlier wins a tie).
  add(seq({lit("c"), lit("+"), lit("+")}), none, Act::text);
  add(seq({cls(U"cCfF"), lit("#")}), none, Act::text);
  add(lit("cannot"), none, Act::pushback3);
  add(lit("'twas"), none, Act::pushback3);
  add(lit("'tis"), none, Act::pushback2);
  add(words("gonna|gotta|lemme|gimme|wanna"), none, Act::pushback2);
  add(SGML, none, Act::nbsp);
  add(SPMDASH, none, Act::mdash);
  add(SPAMP, none, Act::amp);
  add(SPPUNC, none, Act::text);
  add(WORD, REDAUX, Act::soft_hyphen);
  add(SWORD, SREDAUX, Act::soft_hyphen);
  add(WORD, none, Act::soft_hyphen);
  add(APOWORD, none, Act::text);
  add(APOWORD2, LETTERC, Act::text);
  add(FULLURL, none, Act::text);
  add(LIKELYURL, none, Act::text);
  add(EMAIL, none, Act::text);
  add(TWITTER, none, Act::text);
  add(REDAUX, NOT_AZaz, Act::quotes_right);
  add(SREDAUX, NOT_AZaz, Act::quotes_right);
  add(DATE, none, Act::text);
  add(NUMBER, none, Act::soft_hyphen);
  add(SUBSUPNUM, none, Act::text);
  add(FRAC, none, Act::nbsp);
  add(FRAC2, none, Act::fractions);
  add(TBSPEC, none, Act::amp);
  add(THING3, none, Act::text);
  add(DOLSIGN, none, Act::text);
  add(DOLSIGN2, none, Act::currency);
  add(ACRONYM, seq({SPACENLS, ACRONYM_NEXT, SPACENL}), Act::acronym_end);
  add(ABBREV3, seq({opt(SPACENL), DIGIT}), Act::text);
  add(seq({alt({seq({lit("pt"), cls(U"eyEY")}), lit("co")}), lit(".")}), seq({SPACE, words("ltd|lim")}), Act::text);
  add(ABBREV1, SENTEND, Act::abbrev_dot);
  add(ABBREV1, seq({any_char(), any_char()}), Act::text);
  add(ABBREV1, none, Act::abbrev_dot);
  add(ABBREV2, none, Act::text);
  add(ABBREV4, SPACE, Act::text);
  add(ACRO, SPACENL, Act::text);
  add(TBSPEC2, SPACENL, Act::text);
  add(FILENAME, alt({SPACENL, cls(U".?!,")}), Act::text);
  add(seq({WORD, lit(".")}), INSENTP, Act::soft_hyphen);
  add(PHONE, none, Act::phone);
  add(DBLQUOT, cls(U"A-Za-z0-9$"), Act::quotes_left);
  add(DBLQUOT, none, Act::quotes_right);
  add(lit(U"\u007F"), none, Act::skip);
  add(LESSTHAN, none, Act::less);
  add(GREATERTHAN, none, Act::greater);
  add(SMILEY, ncls(U"A-Za-z0-9"), Act::parens);
  add(ASIANSMILEY, none, Act::parens);
  add(lit("{"), none, Act::lcb);
  add(lit("}"), none, Act::rcb);
  add(lit("["), none, Act::lsb);
  add(lit("]"), none, Act::rsb);
  add(lit("("), none, Act::lrb);
  add(lit(")"), none, Act::rrb);
  add(HYPHENS, none, Act::hyphens);
  add(LDOTS, none, Act::ellipsis);
  add(FNMARKS, none, Act::text);
  add(ASTS, none, Act::text);
  add(INSENTP, none, Act::text);
  add(plus(cls(U"?!")), none, Act::text);
  add(cls(U".\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002"), none, Act::text);
  add(lit("="), none, Act::text);
  add(lit("/"), none, Act::text);
  add(seq({HTHING, lit(".")}), INSENTP, Act::soft_hyphen);
  add(HTHING, none, Act::soft_hyphen);
  add(seq({THING, lit(".")}), INSENTP, Act::text);
  add(THING, none, Act::text);
  add(seq({THINGA, lit(".")}), INSENTP, Act::amp);
  add(THINGA, none, Act::amp);
  add(lit("'"), seq({AZaz, ncls(U" \t\n\r\u00A0")}), Act::quotes_left);
  add(REDAUX, none, Act::quotes_right);
  add(SREDAUX, none, Act::quotes_right);
  add(QUOTES, none, Act::quotes_right);
  add(FAKEDUCKFEET, none, Act::text);
  add(MISCSYMBOL, none, Act::text);
  add(alt({lit(U"\u0000"), plus(SPACE), cls(U"\u200B\u200E-\u200F\uFEFF")}), none, Act::skip);
  add(NEWLINE, none, Act::skip);
  add(lit("&nbsp;"), none, Act::skip);
  for (auto& r : rules)
    for (Cp c = 0; c < 128; ++c)
      if (r.main->can_start(c)) r.first.set(c);
}

const Grammar& grammar() {
  static const Grammar g;
  return g;
}

// ---- Token transformations ------------------------------------------------------------------

Text replace_all(const Text& s, const Text& from, const Text& to) {
  Text out;
  size_t i = 0;
  while (i < s.size()) {
    if (!from.empty() && s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

Text replace_all_ci(const Text& s, const Text& from, const Text& to) {  // ASCII-caseless
  Text out;
  size_t i = 0;
  while (i < s.size()) {
    bool hit = i + from.size() <= s.size();
    for (size_t k = 0; hit && k < from.size(); ++k) hit = fold_ascii(s[i + k]) == fold_ascii(from[k]);
    if (hit && !from.empty()) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

Text remove_soft_hyphens(const Text& s) {
  Text out;
  for (Cp c : s)
    if (c != 0xAD) out += c;
  return out.empty() ? Text(U"-") : out;
}

Text latex_quotes(const Text& tok, bool left) {
  Text s = replace_all(tok, U"&apos;", U"'");
  s = replace_all(s, U"&quot;", U"\"");
  Text out;
  for (Cp c : s) {
    if (c == U'\'') out += left ? U"`" : U"'";
    else if (c == U'"') out += left ? U"``" : U"''";
    else if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) out += U"`";
    else if (c == 0x92 || c == 0x2019 || c == 0x203A) out += U"'";
    else if (c == 0x93 || c == 0x201C || c == 0xAB) out += U"``";
    else if (c == 0x94 || c == 0x201D || c == 0xBB) out += U"''";
    else out += c;
  }
  return out;
}

Text parens(const Text& s) {
  Text out;
  for (Cp c : s) {
    if (c == U'(') out += U"-LRB-";
    else if (c == U')') out += U"-RRB-";
    else out += c;
  }
  return out;
}

Text spaces_to_nbsp(Text s) {
  for (Cp& c : s)
    if (c == U' ') c = 0xA0;
  return s;
}

// One token of text, lower-cased as the tool's -lowerCase does.
void emit(std::vector<std::string>& out, const Text& tok) {
  Text low(tok);
  for (Cp& c : low) c = to_lower(c);
  out.push_back(encode_utf8(low));
}

// The grammar engine is linear in the length of a run of non-space characters, but with a large
// constant (every rule that can start there walks the run: ~1 s per MB). A run longer than
// kMaxRun code points (no real caption has one; a hostile results file may) is therefore emitted
// as one lower-cased token without running the grammar, where the Java tool might split it at
// punctuation. This bounds the work to O(length) with a small constant (tests/test_metrics.cpp:
// a 1 MB single-token caption).
constexpr uint32_t kMaxRun = 10000;
bool is_break(Cp c) {  // SPACE and NEWLINE of the grammar: where a run of characters ends
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || c == 0xA0 || in(c, 0x2000, 0x200A) || c == 0x3000 ||
         c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C || c == 0x85;
}

// Tokenizes a whole text; a NEWLINE ends a line (used when several captions are tokenized as
// one text, one per line, as pycocoevalcap does).
std::vector<std::vector<std::string>> tokenize_lines(const Text& s) {
  const Grammar& g = grammar();
  std::vector<std::vector<std::string>> lines(1);
  Ends e1, e2;
  uint32_t pos = 0;
  const uint32_t n = static_cast<uint32_t>(s.size());
  uint32_t run_ok_until = 0;  // the run of non-space characters up to here is within kMaxRun
  while (pos < n) {
    const Cp c = s[pos];
    if (c == U'\n') {  // a line break between captions
      lines.emplace_back();
      ++pos;
      continue;
    }
    if (pos >= run_ok_until) {
      uint32_t r = pos;
      while (r < n && !is_break(s[r])) ++r;
      if (r - pos > kMaxRun) {  // bounded work: one token, the grammar is not run on it
        emit(lines.back(), s.substr(pos, r - pos));
        pos = r;
        continue;
      }
      run_ok_until = r;
    }
    size_t best_rule = SIZE_MAX;
    uint32_t best_total = pos, best_tok = pos;
    for (size_t r = 0; r < g.rules.size(); ++r) {
      const Rule& rule = g.rules[r];
      if (c < 128 ? !rule.first[c] : !rule.main->can_start(c)) continue;
      e1.clear();
      rule.main->ends(s, pos, e1);
      if (e1.empty()) continue;
      uint32_t total = pos, tok = pos;
      if (!rule.trail) {
        for (uint32_t e : e1) total = std::max(total, e);
        tok = total;
      } else {
        for (uint32_t a : e1) {
          e2.clear();
          rule.trail->ends(s, a, e2);
          for (uint32_t b : e2)
            if (b > total || (b == total && a > tok)) {
              total = b;
              tok = a;
            }
        }
      }
      if (tok > pos && total > best_total) {
        best_total = total;
        best_tok = tok;
        best_rule = r;
      }
    }
    if (best_rule == SIZE_MAX) {  // untokenizable: the tool deletes it
      ++pos;
      continue;
    }
    const Text tok = s.substr(pos, best_tok - pos);
    auto& out = lines.back();
    uint32_t next = best_tok;
    switch (g.rules[best_rule].act) {
      case Act::text: emit(out, tok); break;
      case Act::soft_hyphen: emit(out, remove_soft_hyphens(tok)); break;
      case Act::quotes_right: emit(out, latex_quotes(tok, false)); break;
      case Act::quotes_left: emit(out, latex_quotes(tok, true)); break;
      case Act::pushback3:
        next = best_tok - 3;
        emit(out, tok.substr(0, tok.size() - 3));
        break;
      case Act::pushback2:
        next = best_tok - 2;
        emit(out, tok.substr(0, tok.size() - 2));
        break;
      case Act::mdash: emit(out, U"--"); break;
      case Act::amp: emit(out, replace_all_ci(tok, U"&amp;", U"&")); break;
      case Act::fractions: {
        Text t = replace_all(tok, U"\u00BC", U"1/4");
        t = replace_all(t, U"\u00BD", U"1/2");
        t = replace_all(t, U"\u00BE", U"3/4");
        t = replace_all(t, U"\u2153", U"1/3");
        t = replace_all(t, U"\u2154", U"2/3");
        emit(out, t);
        break;
      }
      case Act::currency: {
        Text t;
        for (Cp ch : tok) {
          if (ch == 0xA2) t += U"cents";
          else if (ch == 0xA3) t += U"#";
          else if (ch == 0x80 || ch == 0xA4 || ch == 0x20A0 || ch == 0x20AC) t += U"$";
          else t += ch;
        }
        emit(out, t);
        break;
      }
      case Act::nbsp: emit(out, spaces_to_nbsp(tok)); break;
      case Act::phone: emit(out, parens(spaces_to_nbsp(tok))); break;
      case Act::parens: emit(out, parens(tok)); break;
      case Act::acronym_end:
        if (tok.size() == 2) {  // "I." -> "I", and the period is lexed again
          emit(out, tok.substr(0, 1));
        } else {  // "U.S." and the period again
          emit(out, tok);
        }
        next = best_tok - 1;
        break;
      case Act::abbrev_dot:
        emit(out, tok);
        next = best_tok - 1;
        break;
      case Act::ellipsis: emit(out, U"..."); break;
      case Act::hyphens: emit(out, tok.size() >= 3 && tok.size() <= 4 ? Text(U"--") : tok); break;
      case Act::lsb: emit(out, U"-LSB-"); break;
      case Act::rsb: emit(out, U"-RSB-"); break;
      case Act::lcb: emit(out, U"-LCB-"); break;
      case Act::rcb: emit(out, U"-RCB-"); break;
      case Act::lrb: emit(out, U"-LRB-"); break;
      case Act::rrb: emit(out, U"-RRB-"); break;
      case Act::less: emit(out, U"<"); break;
      case Act::greater: emit(out, U">"); break;
      case Act::skip: break;
    }
    pos = next;
  }
  return lines;
}

// pycocoevalcap's PUNCTUATIONS (compared after lower-casing, so "-LRB-" never matches "-lrb-").
bool is_coco_punctuation(const std::string& t) {
  static const char* const kPunct[] = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".",
                                       "?",  "!", ",",  ":", "-",     "--",    "...",   ";"};
  for (const char* p : kPunct)
    if (t == p) return true;
  return false;
}

}  // namespace

std::vector<std::string> ptb_tokens(const std::string& text) {
  Text t = decode_utf8(text);
  for (Cp& c : t)
    if (c == U'\n') c = U' ';
  auto lines = tokenize_lines(t);
  return lines.front();
}

std::vector<std::vector<std::string>> ptb_tokens_lines(const std::vector<std::string>& captions) {
  if (captions.empty()) return {};
  // One caption per line, '\n' inside a caption replaced by a space (as pycocoevalcap does).
  Text all;
  for (size_t i = 0; i < captions.size(); ++i) {
    if (i) all += U'\n';
    Text t = decode_utf8(captions[i]);
    for (Cp& c : t)
      if (c == U'\n') c = U' ';
    all += t;
  }
  auto lines = tokenize_lines(all);
  check(lines.size() == captions.size(), "ptb_tokens_lines: line count mismatch");
  return lines;
}

std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions) {
  auto lines = ptb_tokens_lines(captions);
  std::vector<std::string> out(captions.size());
  for (size_t i = 0; i < captions.size(); ++i) {
    std::string joined;
    for (const auto& tok : lines[i]) {
      if (is_coco_punctuation(tok)) continue;
      if (!joined.empty()) joined += ' ';
      joined += tok;
    }
    out[i] = std::move(joined);
  }
  return out;
}

std::string coco_tokenize(const std::string& caption) { return coco_tokenize(std::vector<std::string>{caption}).front(); }

}  // namespace xmodal::metrics
