// Shared helpers of the metrics: UTF-8, the bits of Python string semantics the reference
// implementations depend on, and Python 2 rounding.
#include "pipeline/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace xmodal::metrics {

namespace text {

namespace {
bool in(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }
void append_utf8(std::string& out, char32_t c) {
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
}  // namespace

std::u32string decode_utf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char32_t cp = 0xFFFD;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 && cont(1)) {
      cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
      len = 2;
    } else if ((c >> 4) == 14 && cont(1) && cont(2)) {
      cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      len = 3;
    } else if ((c >> 3) == 30 && cont(1) && cont(2) && cont(3)) {
      cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
      len = 4;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(const std::u32string& t) {
  std::string out;
  out.reserve(t.size());
  for (char32_t c : t) append_utf8(out, c);
  return out;
}

char32_t to_lower(char32_t c) {
  if (in(c, 'A', 'Z')) return c + 32;
  if (c < 0xC0) return c;
  if (in(c, 0xC0, 0xD6) || in(c, 0xD8, 0xDE)) return c + 32;
  if (in(c, 0x100, 0x137) || in(c, 0x14A, 0x177)) return c | 1u;
  if (in(c, 0x139, 0x148) || in(c, 0x179, 0x17E)) return (c & 1u) ? c + 1 : c;
  if (c == 0x178) return 0xFF;
  if (in(c, 0x391, 0x3A9) && c != 0x3A2) return c + 32;
  if (in(c, 0x410, 0x42F)) return c + 32;
  if (in(c, 0x400, 0x40F)) return c + 80;
  return c;
}

bool python_isspace(char32_t c) {
  return in(c, 0x09, 0x0D) || in(c, 0x1C, 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 || in(c, 0x2000, 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::vector<std::string> python_split(const std::string& s) {
  std::vector<std::string> out;
  bool ascii = true;
  for (char ch : s) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {  // fast path
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && python_isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t j = i;
      while (j < s.size() && !python_isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i) out.emplace_back(s, i, j - i);
      i = j;
    }
    return out;
  }
  std::u32string t = decode_utf8(s), cur;
  for (char32_t c : t) {
    if (python_isspace(c)) {
      if (!cur.empty()) out.push_back(encode_utf8(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(encode_utf8(cur));
  return out;
}

std::string python_strip(const std::string& s) {
  std::u32string t = decode_utf8(s);
  size_t b = 0, e = t.size();
  while (b < e && python_isspace(t[b])) ++b;
  while (e > b && python_isspace(t[e - 1])) --e;
  return encode_utf8(t.substr(b, e - b));
}

std::string python_lower(const std::string& s) {
  std::u32string t = decode_utf8(s);
  for (char32_t& c : t) c = to_lower(c);
  return encode_utf8(t);
}

}  // namespace text

double python2_round(double x, int ndigits) {
  if (!std::isfinite(x) || ndigits < 0 || ndigits > 300) return x;
  // glibc prints the exact binary value; round the decimal digits half away from zero.
  std::vector<char> buf(1500);
  int len = std::snprintf(buf.data(), buf.size(), "%.1100f", std::fabs(x));
  if (len <= 0 || static_cast<size_t>(len) >= buf.size()) return x;
  std::string s(buf.data(), static_cast<size_t>(len));
  size_t dot = s.find('.');
  std::string digits = s.substr(0, dot) + s.substr(dot + 1);  // all digits, point after `int_len`
  size_t int_len = dot;
  size_t keep = int_len + static_cast<size_t>(ndigits);  // digits kept
  bool up = digits[keep] >= '5';  // ties (5 then zeros) also round up, i.e. away from zero
  std::string kept = digits.substr(0, keep);
  if (up) {
    int i = static_cast<int>(kept.size()) - 1;
    while (i >= 0 && kept[static_cast<size_t>(i)] == '9') kept[static_cast<size_t>(i--)] = '0';
    if (i >= 0) ++kept[static_cast<size_t>(i)];
    else {
      kept.insert(kept.begin(), '1');
      ++int_len;
    }
  }
  std::string dec = kept.substr(0, int_len) + "." + kept.substr(int_len) + "0";
  double r = std::strtod(dec.c_str(), nullptr);
  return std::signbit(x) ? -r : r;
}

}  // namespace xmodal::metrics
