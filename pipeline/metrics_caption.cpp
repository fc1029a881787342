// BLEU, ROUGE-L and CIDEr-D as pycocoevalcap computes them, including its floating-point order
// of operations (n-gram dictionaries in first-occurrence order, numpy's pairwise summation for
// the means), so results agree with the Python code to the last bit or nearly.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string_view>
#include <unordered_map>

#include "core/error.hpp"
#include "pipeline/metrics.hpp"

namespace xmodal::metrics {

namespace {

constexpr int kN = 4;  // n-gram order of BLEU and CIDEr-D

// An n-gram is the space-joined words (words never contain a space); its order is 1 + #spaces.
struct NGramCounts {
  std::vector<std::pair<std::string, int>> items;  // first-occurrence order (Python dict order)
  std::unordered_map<std::string, size_t> index;
  void add(std::string key) {
    auto [it, fresh] = index.emplace(std::move(key), items.size());
    if (fresh) items.emplace_back(it->first, 1);
    else ++items[it->second].second;
  }
  int get(const std::string& key) const {
    auto it = index.find(key);
    return it == index.end() ? 0 : items[it->second].second;
  }
};

int order_of(const std::string& ngram) { return 1 + static_cast<int>(std::count(ngram.begin(), ngram.end(), ' ')); }

// precook: counts of every n-gram, n = 1..4, in the order k = 1..4, then position.
NGramCounts precook(const std::vector<std::string>& words) {
  NGramCounts c;
  for (int k = 1; k <= kN; ++k)
    for (size_t i = 0; i + k <= words.size(); ++i) {
      std::string key = words[i];
      for (int j = 1; j < k; ++j) {
        key += ' ';
        key += words[i + j];
      }
      c.add(std::move(key));
    }
  return c;
}

// str.split(" ") (ROUGE-L splits on single spaces, so "" gives one empty token).
std::vector<std::string_view> split_space(const std::string& s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(' ', start);
    if (p == std::string::npos) {
      out.emplace_back(s.data() + start, s.size() - start);
      break;
    }
    out.emplace_back(s.data() + start, p - start);
    start = p + 1;
  }
  return out;
}

// numpy's float64 add.reduce: 0.0 + pairwise sums over blocks of the 8192-element buffer.
double pairwise(const double* a, size_t n) {
  if (n < 8) {
    double r = 0.0;
    for (size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

double numpy_mean(const std::vector<double>& v) {
  double s = 0.0;
  for (size_t off = 0; off < v.size(); off += 8192) s += pairwise(v.data() + off, std::min<size_t>(8192, v.size() - off));
  return s / static_cast<double>(v.size());
}

void check_inputs(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps) {
  check(refs.size() == hyps.size(), "caption metrics: " + std::to_string(refs.size()) + " reference sets but " +
                                        std::to_string(hyps.size()) + " candidates");
  for (size_t i = 0; i < refs.size(); ++i)
    check(!refs[i].empty(), "caption metrics: image " + std::to_string(i) + " has no reference caption");
}

// LCS length of two token lists (my_lcs is symmetric in its result).
size_t lcs(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

// refs[i] [R_i], hyps [N] -> out[4]: corpus BLEU-1..4 (bleu_scorer.py, option "closest").
void bleu(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps, double out[4]) {
  check_inputs(refs, hyps);
  const double small = 1e-9, tiny = 1e-15;
  long long testlen_sum = 0, reflen_sum = 0;
  long long guess[kN] = {0, 0, 0, 0}, correct[kN] = {0, 0, 0, 0};
  for (size_t img = 0; img < refs.size(); ++img) {
    std::vector<long long> reflens;
    std::unordered_map<std::string, int> maxcounts;
    for (const auto& r : refs[img]) {
      auto words = text::python_split(r);
      reflens.push_back(static_cast<long long>(words.size()));
      for (const auto& [ng, cnt] : precook(words).items) {
        int& m = maxcounts[ng];
        m = std::max(m, cnt);
      }
    }
    auto words = text::python_split(hyps[img]);
    const long long testlen = static_cast<long long>(words.size());
    // closest: min over (|l - testlen|, l)
    long long best = reflens[0];
    for (long long l : reflens)
      if (std::llabs(l - testlen) < std::llabs(best - testlen) || (std::llabs(l - testlen) == std::llabs(best - testlen) && l < best))
        best = l;
    testlen_sum += testlen;
    reflen_sum += best;
    for (int k = 0; k < kN; ++k) guess[k] += std::max<long long>(0, testlen - k);
    for (const auto& [ng, cnt] : precook(words).items) {
      auto it = maxcounts.find(ng);
      correct[order_of(ng) - 1] += std::min(it == maxcounts.end() ? 0 : it->second, cnt);
    }
  }
  double b = 1.0;
  for (int k = 0; k < kN; ++k) {
    b *= (static_cast<double>(correct[k]) + tiny) / (static_cast<double>(guess[k]) + small);
    out[k] = std::pow(b, 1.0 / (k + 1));
  }
  const double ratio = (static_cast<double>(testlen_sum) + tiny) / (static_cast<double>(reflen_sum) + small);
  if (ratio < 1)
    for (int k = 0; k < kN; ++k) out[k] *= std::exp(1 - 1 / ratio);
}

// refs [R] (tokenized), hyp -> ROUGE-L of one image (rouge.py, beta 1.2).
double rouge_l(const std::vector<std::string>& refs, const std::string& hyp) {
  check(!refs.empty(), "rouge_l: no reference caption");
  const double beta = 1.2;
  auto c = split_space(hyp);
  double prec_max = 0, rec_max = 0;
  bool first = true;
  for (const auto& r : refs) {
    auto t = split_space(r);
    double l = static_cast<double>(lcs(t, c));
    double p = l / static_cast<double>(c.size()), rc = l / static_cast<double>(t.size());
    prec_max = first ? p : std::max(prec_max, p);
    rec_max = first ? rc : std::max(rec_max, rc);
    first = false;
  }
  if (prec_max != 0 && rec_max != 0)
    return ((1 + beta * beta) * prec_max * rec_max) / (rec_max + beta * beta * prec_max);
  return 0.0;
}

// refs[i] [R_i], hyps [N] -> [N] CIDEr-D per image (cider_scorer.py: sigma 6, clipping, x10).
std::vector<double> cider_d(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps) {
  check_inputs(refs, hyps);
  const double sigma = 6.0;
  // N-grams are interned to dense ids; each sentence keeps (id, count) in first-occurrence
  // order, which is the order the reference code sums in.
  std::unordered_map<std::string, int> ids;
  std::vector<int> order;  // n-gram order (0-based) per id
  struct Cooked {
    std::vector<std::pair<int, int>> items;
  };
  auto cook = [&](const std::string& sentence) {
    Cooked c;
    for (const auto& [ng, cnt] : precook(text::python_split(sentence)).items) {
      auto [it, fresh] = ids.emplace(ng, static_cast<int>(order.size()));
      if (fresh) order.push_back(order_of(ng) - 1);
      c.items.emplace_back(it->second, cnt);
    }
    return c;
  };
  std::vector<Cooked> ctest;
  std::vector<std::vector<Cooked>> crefs(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    for (const auto& r : refs[i]) crefs[i].push_back(cook(r));
    ctest.push_back(cook(hyps[i]));
  }
  // Document frequency: the number of images whose references contain the n-gram.
  std::vector<double> df(order.size(), 0.0);
  std::vector<size_t> stamp(order.size(), SIZE_MAX);
  for (size_t i = 0; i < refs.size(); ++i)
    for (const auto& c : crefs[i])
      for (const auto& [id, cnt] : c.items)
        if (stamp[static_cast<size_t>(id)] != i) {
          stamp[static_cast<size_t>(id)] = i;
          df[static_cast<size_t>(id)] += 1.0;
        }
  const double ref_len = std::log(static_cast<double>(refs.size()));

  struct Vec {
    std::vector<std::pair<int, double>> items[kN];  // first-occurrence order per n-gram order
    double norm[kN] = {0, 0, 0, 0};
    int length = 0;  // number of bigrams (the reference code's "n == 1" test)
  };
  auto counts2vec = [&](const Cooked& c) {
    Vec v;
    for (const auto& [id, tf] : c.items) {
      const double d = std::log(std::max(1.0, df[static_cast<size_t>(id)]));
      const int n = order[static_cast<size_t>(id)];
      const double x = static_cast<double>(tf) * (ref_len - d);
      v.items[n].emplace_back(id, x);
      v.norm[n] += x * x;
      if (n == 1) v.length += tf;
    }
    for (double& nm : v.norm) nm = std::sqrt(nm);
    return v;
  };

  std::vector<double> ref_value(order.size(), 0.0);  // the current reference's vector, dense
  std::vector<double> scores;
  scores.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    const Vec vh = counts2vec(ctest[i]);
    double score[kN] = {0, 0, 0, 0};
    for (const auto& r : crefs[i]) {
      const Vec vr = counts2vec(r);
      for (const auto& items : vr.items)
        for (const auto& [id, y] : items) ref_value[static_cast<size_t>(id)] = y;
      const double delta = static_cast<double>(vh.length - vr.length);
      for (int n = 0; n < kN; ++n) {
        double val = 0.0;
        for (const auto& [id, x] : vh.items[n]) {
          const double y = ref_value[static_cast<size_t>(id)];
          val += std::min(x, y) * y;
        }
        if (vh.norm[n] != 0 && vr.norm[n] != 0) val /= vh.norm[n] * vr.norm[n];
        val *= std::pow(std::numbers::e, -(delta * delta) / (2 * sigma * sigma));
        score[n] += val;
      }
      for (const auto& items : vr.items)
        for (const auto& [id, y] : items) ref_value[static_cast<size_t>(id)] = 0.0;
    }
    double avg = 0.0;  // np.mean of 4 values
    for (double sc : score) avg += sc;
    avg /= kN;
    avg /= static_cast<double>(refs[i].size());
    avg *= 10.0;
    scores.push_back(avg);
  }
  return scores;
}

CaptionScores score_tokenized(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps) {
  check_inputs(refs, hyps);
  CaptionScores s;
  s.n_images = refs.size();
  if (refs.empty()) return s;
  bleu(refs, hyps, s.bleu);
  for (size_t i = 0; i < refs.size(); ++i) s.rouge_l_per_image.push_back(rouge_l(refs[i], hyps[i]));
  s.rouge_l = numpy_mean(s.rouge_l_per_image);
  s.cider_d_per_image = cider_d(refs, hyps);
  s.cider_d = numpy_mean(s.cider_d_per_image);
  return s;
}

CaptionScores score_captions(const data::CocoCaptions& gt, const std::vector<data::CaptionResult>& results) {
  // The images scored: those with a result, in the order of the annotation file's images.
  std::unordered_map<int64_t, const data::CaptionResult*> res_of;
  for (const auto& r : results) res_of.emplace(r.image_id, &r);
  std::unordered_map<int64_t, std::vector<const std::string*>> refs_of;
  for (const auto& a : gt.annotations) refs_of[a.image_id].push_back(&a.caption);
  std::vector<std::string> flat_refs, hyps;
  std::vector<size_t> n_refs;
  for (const auto& im : gt.images) {
    auto it = res_of.find(im.id);
    if (it == res_of.end()) continue;
    auto rit = refs_of.find(im.id);
    if (rit == refs_of.end()) throw InputError("", "image_id " + std::to_string(im.id) + " has no reference captions");
    for (const std::string* c : rit->second) flat_refs.push_back(*c);
    n_refs.push_back(rit->second.size());
    hyps.push_back(it->second->caption);
    res_of.erase(it);
  }
  if (!res_of.empty())
    throw InputError("", "result for image_id " + std::to_string(res_of.begin()->first) + " is not in the annotations");
  // pycocoevalcap tokenizes all references in one call and all candidates in another.
  std::vector<std::string> tok_refs = coco_tokenize(flat_refs), tok_hyps = coco_tokenize(hyps);
  std::vector<std::vector<std::string>> refs(n_refs.size());
  size_t k = 0;
  for (size_t i = 0; i < n_refs.size(); ++i)
    for (size_t j = 0; j < n_refs[i]; ++j) refs[i].push_back(std::move(tok_refs[k++]));
  return score_tokenized(refs, tok_hyps);
}

}  // namespace xmodal::metrics
