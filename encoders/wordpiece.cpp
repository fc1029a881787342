#include "encoders/wordpiece.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal {

namespace {

struct CpRange {
  char32_t lo, hi;
};
struct CpPair {
  char32_t from, to;
};
struct CpStrip {
  char32_t cp;
  uint8_t n;
  char32_t kept[3];
};

#include "encoders/wordpiece_unicode.inc"

template <size_t N>
bool in_ranges(const CpRange (&r)[N], char32_t c) {
  const CpRange* it = std::upper_bound(r, r + N, c, [](char32_t v, const CpRange& x) { return v < x.lo; });
  return it != r && c <= (it - 1)->hi;
}

bool is_whitespace(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || in_ranges(kSpaceRanges, c);
}
// Python's str.split() (BERT's whitespace_tokenize) also splits on these, which survive cleaning.
bool is_python_only_space(char32_t c) { return c == 0x2028 || c == 0x2029; }
bool is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return in_ranges(kOtherRanges, c);
}
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return in_ranges(kPunctRanges, c);
}
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Appends str.lower() of one codepoint.
void append_lower(char32_t c, std::u32string& out) {
  if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + COMBINING DOT ABOVE
    out += U'i';
    out += char32_t(0x307);
    return;
  }
  const CpPair* end = kLower + std::size(kLower);
  const CpPair* it = std::lower_bound(kLower, end, c, [](const CpPair& p, char32_t v) { return p.from < v; });
  out += (it != end && it->from == c) ? it->to : c;
}

// Appends NFD(c) with the Mn marks removed (BERT's _run_strip_accents, one codepoint at a time).
void append_stripped(char32_t c, std::u32string& out) {
  if (c >= 0xAC00 && c <= 0xD7A3) {  // Hangul syllable: L V (T) jamo, none of them Mn
    const char32_t s = c - 0xAC00;
    out += char32_t(0x1100 + s / (21 * 28));
    out += char32_t(0x1161 + (s % (21 * 28)) / 28);
    if (s % 28) out += char32_t(0x11A7 + s % 28);
    return;
  }
  const CpStrip* end = kStrip + std::size(kStrip);
  const CpStrip* it = std::lower_bound(kStrip, end, c, [](const CpStrip& p, char32_t v) { return p.cp < v; });
  if (it != end && it->cp == c) {
    for (int i = 0; i < it->n; ++i) out += it->kept[i];
    return;
  }
  if (!in_ranges(kMnRanges, c)) out += c;
}

}  // namespace

std::u32string utf8_decode(const std::string& s, const std::string& source) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = p[i];
    auto bad = [&] { throw InputError(source, "invalid UTF-8 at byte " + std::to_string(i) + " of " + std::to_string(n)); };
    char32_t c;
    size_t len;
    if (b < 0x80) {
      c = b;
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      c = b & 0x1F;
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      c = b & 0x0F;
      len = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      c = b & 0x07;
      len = 4;
    } else {
      bad();
    }
    if (i + len > n) bad();
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) bad();
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF)) bad();
    out += c;
    i += len;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

WordPiece WordPiece::from_file(const std::string& vocab_path, Options opt) {
  std::string text;
  try {
    text = read_file(vocab_path, 64ull << 20);
  } catch (const InputError& e) {
    throw ModelError(vocab_path, std::string("cannot read the WordPiece vocabulary: ") + e.what());
  }
  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(std::move(line));
    start = nl + 1;
  }
  return from_tokens(tokens, vocab_path, opt);
}

WordPiece WordPiece::from_tokens(const std::vector<std::string>& tokens, const std::string& source, Options opt) {
  if (tokens.empty()) throw ModelError(source, "the WordPiece vocabulary is empty (expected one token per line)");
  if (opt.max_chars_per_word < 1)
    throw UsageError("max_chars_per_word must be >= 1, got " + std::to_string(opt.max_chars_per_word));
  WordPiece w;
  w.opt_ = opt;
  w.source_ = source;
  w.tokens_ = tokens;
  for (size_t i = 0; i < tokens.size(); ++i) {
    utf8_decode(tokens[i], source + " line " + std::to_string(i + 1));  // validates
    w.ids_[tokens[i]] = static_cast<int32_t>(i);  // a later duplicate wins, as in HF load_vocab
  }
  auto need = [&](const char* name) {
    int32_t id = w.id(name);
    if (id < 0)
      throw ModelError(source, std::string("the WordPiece vocabulary (") + std::to_string(tokens.size()) +
                                   " tokens) has no " + name + " token");
    return id;
  };
  w.unk_ = need("[UNK]");
  w.cls_ = need("[CLS]");
  w.sep_ = need("[SEP]");
  w.pad_ = w.id("[PAD]");
  w.mask_ = w.id("[MASK]");
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    int32_t id = w.id(s);
    if (id >= 0) w.specials_.emplace_back(s, id);
  }
  return w;
}

void WordPiece::add_special(const std::string& token, int32_t id) {
  if (token.empty()) throw InternalError("WordPiece::add_special: empty token");
  for (auto& [t, i] : specials_)
    if (t == token) {
      i = id;
      ids_[token] = id;
      if (id >= vocab_size()) added_[id] = token;
      return;
    }
  specials_.emplace_back(token, id);
  ids_[token] = id;
  if (id >= vocab_size()) added_[id] = token;
}

int32_t WordPiece::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::string WordPiece::token(int32_t id) const {
  if (id >= 0 && id < vocab_size()) return tokens_[static_cast<size_t>(id)];
  auto it = added_.find(id);
  if (it != added_.end()) return it->second;
  return "[id " + std::to_string(id) + "]";
}

bool WordPiece::is_special(int32_t id) const {
  for (const auto& [t, i] : specials_)
    if (i == id) return true;
  return false;
}

void WordPiece::tokenize_plain(const std::u32string& text, std::vector<std::string>& out) const {
  // Lower-case (per codepoint), clean, and space out CJK ideographs.
  std::u32string clean;
  clean.reserve(text.size() + 8);
  std::u32string low;
  for (char32_t c0 : text) {
    low.clear();
    if (opt_.lower_case)
      append_lower(c0, low);
    else
      low += c0;
    for (char32_t c : low) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c) || is_python_only_space(c)) {
        clean += U' ';
      } else if (opt_.split_cjk && is_cjk(c)) {
        clean += U' ';
        clean += c;
        clean += U' ';
      } else {
        clean += c;
      }
    }
  }
  // Whitespace split; per word: strip accents, split punctuation; then WordPiece each piece.
  std::vector<std::u32string> words;
  std::u32string cur, stripped;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(cur);
    cur.clear();
  };
  size_t i = 0;
  while (i < clean.size()) {
    while (i < clean.size() && clean[i] == U' ') ++i;
    size_t j = i;
    while (j < clean.size() && clean[j] != U' ') ++j;
    if (j == i) break;
    stripped.clear();
    for (size_t k = i; k < j; ++k) {
      if (opt_.lower_case)
        append_stripped(clean[k], stripped);
      else
        stripped += clean[k];
    }
    for (char32_t c : stripped) {
      if (is_punctuation(c)) {
        flush();
        words.push_back(std::u32string(1, c));
      } else {
        cur += c;
      }
    }
    flush();
    i = j;
  }
  const std::string unk = tokens_[static_cast<size_t>(unk_)];
  std::vector<std::string> pieces;
  for (const auto& w : words) {
    if (static_cast<int64_t>(w.size()) > opt_.max_chars_per_word) {
      out.push_back(unk);
      continue;
    }
    pieces.clear();
    bool bad = false;
    size_t start = 0;
    while (start < w.size()) {
      size_t end = w.size();
      std::string found;
      while (start < end) {
        std::string sub = (start > 0 ? "##" : "") + utf8_encode(w.substr(start, end - start));
        if (ids_.count(sub)) {
          found = std::move(sub);
          break;
        }
        --end;
      }
      if (found.empty()) {
        bad = true;
        break;
      }
      pieces.push_back(std::move(found));
      start = end;
    }
    if (bad)
      out.push_back(unk);
    else
      out.insert(out.end(), pieces.begin(), pieces.end());
  }
}

std::vector<std::string> WordPiece::tokenize(const std::string& text, const std::string& source) const {
  const std::u32string u = utf8_decode(text, source);
  // Special tokens, matched verbatim: earliest start wins, then the longest.
  std::vector<std::pair<std::u32string, std::string>> specials;
  for (const auto& [t, id] : specials_) specials.emplace_back(utf8_decode(t), t);
  std::vector<std::string> out;
  size_t chunk = 0;
  for (size_t i = 0; i < u.size();) {
    size_t best = 0;
    const std::string* best_tok = nullptr;
    for (const auto& [s, t] : specials)
      if (s.size() > best && u.compare(i, s.size(), s) == 0) {
        best = s.size();
        best_tok = &t;
      }
    if (best_tok) {
      tokenize_plain(u.substr(chunk, i - chunk), out);
      out.push_back(*best_tok);
      i += best;
      chunk = i;
    } else {
      ++i;
    }
  }
  tokenize_plain(u.substr(chunk), out);
  return out;
}

std::vector<int32_t> WordPiece::encode(const std::string& text, bool add_cls_sep, const std::string& source) const {
  std::vector<int32_t> ids;
  if (add_cls_sep) ids.push_back(cls_);
  for (const auto& t : tokenize(text, source)) ids.push_back(id(t));
  if (add_cls_sep) ids.push_back(sep_);
  return ids;
}

std::string WordPiece::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  // Plain tokens are joined by convert_tokens_to_string; added tokens stand alone.
  std::vector<std::string> parts, run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string s;
    for (size_t i = 0; i < run.size(); ++i) {
      if (i) s += ' ';
      s += run[i];
    }
    std::string t;
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, 3, " ##") == 0) {
        i += 3;
      } else {
        t += s[i++];
      }
    }
    size_t a = t.find_first_not_of(' '), b = t.find_last_not_of(' ');
    parts.push_back(a == std::string::npos ? std::string() : t.substr(a, b - a + 1));
    run.clear();
  };
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    if (added_.count(id)) {
      flush();
      parts.push_back(added_.at(id));
    } else {
      run.push_back(token(id));
    }
  }
  flush();
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) text += ' ';
    text += parts[i];
  }
  static const std::pair<const char*, const char*> kCleanup[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kCleanup) {
    const size_t fl = std::strlen(from);
    std::string r;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, fl, from) == 0) {
        r += to;
        i += fl;
      } else {
        r += text[i++];
      }
    }
    text = std::move(r);
  }
  return text;
}

}  // namespace xmodal
