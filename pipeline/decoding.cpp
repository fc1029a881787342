#include "pipeline/decoding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/error.hpp"

namespace xmodal {

int argmax_logits(const float* logits, int64_t n, const std::vector<int>& banned) {
  int best = -1;
  float bv = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    if (!banned.empty() && std::find(banned.begin(), banned.end(), static_cast<int>(i)) != banned.end()) continue;
    if (best < 0 || logits[i] > bv) {
      best = static_cast<int>(i);
      bv = logits[i];
    }
  }
  return best;
}

void log_softmax(const float* l, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  if (n == 0) return;
  double mx = l[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i]) - mx);
  const double lse = mx + std::log(s);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(l[i]) - lse;
}

namespace {
// log-softmax of entry k of logits [n]
float log_softmax_at(const float* l, int64_t n, int k) {
  float mx = l[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, l[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i] - mx));
  return static_cast<float>(l[k] - mx - std::log(s));
}

// banned plus eos while fewer than min_new tokens exist
const std::vector<int>& banned_now(const GreedyOptions& opt, size_t generated, std::vector<int>& scratch) {
  if (opt.eos_id < 0 || static_cast<int>(generated) >= opt.min_new_tokens) return opt.banned;
  scratch = opt.banned;
  scratch.push_back(opt.eos_id);
  return scratch;
}

// The new-token limit of sequence i of n.
int limit_of(int max_new, const std::vector<int>& each, size_t i, size_t n) {
  if (each.empty()) return max_new;
  if (each.size() != n)
    throw InternalError("decoding: " + std::to_string(each.size()) + " per-sequence limits for " + std::to_string(n) + " prompts");
  return std::min(max_new, each[i]);
}

// logits [R, V] from a batched step, checked
void check_batch_logits(const Tensor& logits, size_t rows, const char* who) {
  if (logits.dtype() != DType::f32 || logits.dim() != 2 || !logits.is_contiguous() ||
      logits.size(0) != static_cast<int64_t>(rows) || logits.size(1) < 1)
    throw InternalError(std::string(who) + ": step returned " + logits.describe() + ", expected contiguous f32[" +
                        std::to_string(rows) + ", V]");
}
}  // namespace

GreedyResult greedy_decode(const DecodeStep& step, const std::vector<int>& prompt, const GreedyOptions& opt) {
  if (prompt.empty()) throw InternalError("greedy_decode: empty prompt");
  GreedyResult r;
  std::vector<int> next = prompt, scratch;
  for (int t = 0; t < opt.max_new_tokens; ++t) {
    Tensor logits = step(next);
    if (logits.dtype() != DType::f32 || logits.dim() != 1 || !logits.is_contiguous())
      throw InternalError("greedy_decode: step returned " + logits.describe() + ", expected contiguous f32[V]");
    const int64_t V = logits.numel();
    const int id = argmax_logits(logits.f32(), V, banned_now(opt, r.ids.size(), scratch));
    if (id < 0) throw InternalError("greedy_decode: every one of " + std::to_string(V) + " logits is banned");
    r.logprobs.push_back(log_softmax_at(logits.f32(), V, id));
    if (id == opt.eos_id) {
      r.stopped_at_eos = true;
      break;
    }
    r.ids.push_back(id);
    next.assign(1, id);
  }
  return r;
}

std::vector<GreedyResult> greedy_decode_batch(const BatchStep& step, const std::vector<std::vector<int>>& prompts,
                                              const GreedyOptions& opt, const std::function<void(size_t, int)>& on_token) {
  std::vector<GreedyResult> out(prompts.size());
  for (const auto& p : prompts)
    if (p.empty()) throw InternalError("greedy_decode_batch: empty prompt");
  std::vector<int> limit(prompts.size());
  std::vector<size_t> active;
  std::vector<std::vector<int>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    limit[i] = limit_of(opt.max_new_tokens, opt.max_new_each, i, prompts.size());
    if (limit[i] > 0) {
      active.push_back(i);
      ids.push_back(prompts[i]);
    }
  }
  std::vector<int> parents, scratch;
  for (int call = 0; !active.empty(); ++call) {
    Tensor logits = step(parents, ids);
    check_batch_logits(logits, active.size(), "greedy_decode_batch");
    const int64_t V = logits.size(1);
    std::vector<size_t> next_active;
    std::vector<int> next_parents;
    std::vector<std::vector<int>> next_ids;
    for (size_t r = 0; r < active.size(); ++r) {
      GreedyResult& g = out[active[r]];
      const float* l = logits.f32() + static_cast<int64_t>(r) * V;
      const int id = argmax_logits(l, V, banned_now(opt, g.ids.size(), scratch));
      if (id < 0) throw InternalError("greedy_decode_batch: every one of " + std::to_string(V) + " logits is banned");
      g.logprobs.push_back(log_softmax_at(l, V, id));
      if (id == opt.eos_id) {
        g.stopped_at_eos = true;
        continue;
      }
      g.ids.push_back(id);
      g.origin.push_back({call, static_cast<int>(r)});
      if (on_token) on_token(active[r], id);
      if (static_cast<int>(g.ids.size()) >= limit[active[r]]) continue;
      next_active.push_back(active[r]);
      next_parents.push_back(static_cast<int>(r));
      next_ids.push_back({id});
    }
    active = std::move(next_active);
    parents = std::move(next_parents);
    ids = std::move(next_ids);
  }
  return out;
}

// ------------------------------------------------------------------------------- beam search

namespace {

struct Beam {
  std::vector<int> ids;
  std::vector<TokenOrigin> origin;
  double logprob = 0;
  int row = 0;  // its row in the current call
};

struct Hyp {
  double score, logprob;
  std::vector<int> ids;
  std::vector<TokenOrigin> origin;
  bool eos;
};

// HF BeamHypotheses: keeps the best n; worst is the score a new one must beat once full.
struct Hyps {
  int n = 1;
  std::vector<Hyp> list;
  double worst = 1e9;
  void add(Hyp h) {
    const double sc = h.score;
    if (static_cast<int>(list.size()) < n || sc > worst) {
      list.push_back(std::move(h));
      if (static_cast<int>(list.size()) > n) {
        // drop the worst (ties: the one added first), as HF's sorted-by-score deletion
        size_t wi = 0;
        for (size_t i = 1; i < list.size(); ++i)
          if (list[i].score < list[wi].score) wi = i;
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(wi));
        worst = list[0].score;
        for (const Hyp& x : list) worst = std::min(worst, x.score);
      } else {
        worst = std::min(sc, worst);
      }
    }
  }
};

struct SeqState {
  std::vector<Beam> live;
  Hyps hyps;
  int prompt_len = 0;
  int max_new = 0;
  bool done = false;
};

struct Cand {
  double score;
  int beam, id;
};

}  // namespace

std::vector<BeamResult> beam_search_batch(const BatchStep& step, const std::vector<std::vector<int>>& prompts,
                                          const BeamOptions& opt) {
  if (opt.num_beams < 1) throw InternalError("beam_search: num_beams " + std::to_string(opt.num_beams) + " < 1");
  const int K = opt.num_beams;
  const double lp_exp = opt.length_penalty;
  std::vector<BeamResult> out(prompts.size());
  std::vector<SeqState> seqs(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw InternalError("beam_search: empty prompt");
    seqs[i].hyps.n = K;
    seqs[i].prompt_len = static_cast<int>(prompts[i].size());
    seqs[i].live.push_back(Beam{{}, {}, 0.0, static_cast<int>(i)});
    seqs[i].max_new = limit_of(opt.max_new_tokens, opt.max_new_each, i, prompts.size());
    if (seqs[i].max_new <= 0) seqs[i].done = true;
  }
  std::vector<int> parents;
  std::vector<std::vector<int>> ids;
  size_t rows = 0;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (!seqs[i].done) {
      ids.push_back(prompts[i]);
      seqs[i].live[0].row = static_cast<int>(rows++);
    }
  std::vector<double> lp;
  std::vector<int> order;
  std::vector<Cand> cand;
  for (int call = 0; rows > 0; ++call) {
    Tensor logits = step(parents, ids);
    check_batch_logits(logits, rows, "beam_search");
    const int64_t V = logits.size(1);
    parents.clear();
    ids.clear();
    size_t next_rows = 0;
    for (SeqState& s : seqs) {
      if (s.done) continue;
      const int gen = static_cast<int>(s.live[0].ids.size());
      const int cur_len = s.prompt_len + gen;
      const bool eos_ok = opt.eos_id >= 0 && gen >= opt.min_new_tokens;
      cand.clear();
      for (size_t b = 0; b < s.live.size(); ++b) {
        const Beam& beam = s.live[b];
        log_softmax(logits.f32() + static_cast<int64_t>(beam.row) * V, V, lp);
        for (int t : opt.banned)
          if (t >= 0 && t < V) lp[static_cast<size_t>(t)] = -std::numeric_limits<double>::infinity();
        if (!eos_ok && opt.eos_id >= 0 && opt.eos_id < V)
          lp[static_cast<size_t>(opt.eos_id)] = -std::numeric_limits<double>::infinity();
        // only the best 2K tokens of a beam can be among the best 2K overall
        order.resize(static_cast<size_t>(V));
        std::iota(order.begin(), order.end(), 0);
        const int64_t keep = std::min<int64_t>(2 * K, V);
        std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int a, int c) {
          const double la = lp[static_cast<size_t>(a)], lc = lp[static_cast<size_t>(c)];
          return la > lc || (la == lc && a < c);
        });
        for (int64_t k = 0; k < keep; ++k) {
          const int t = order[static_cast<size_t>(k)];
          const double v = lp[static_cast<size_t>(t)];
          if (std::isinf(v)) break;
          cand.push_back({beam.logprob + v, static_cast<int>(b), t});
        }
      }
      const size_t top = std::min<size_t>(2 * static_cast<size_t>(K), cand.size());
      std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(top), cand.end(),
                        [](const Cand& a, const Cand& c) {
                          if (a.score != c.score) return a.score > c.score;
                          if (a.beam != c.beam) return a.beam < c.beam;
                          return a.id < c.id;
                        });
      std::vector<Beam> next;
      for (size_t k = 0; k < top && static_cast<int>(next.size()) < K; ++k) {
        const Cand& c = cand[k];
        const Beam& src = s.live[static_cast<size_t>(c.beam)];
        if (c.id == opt.eos_id) {
          if (static_cast<int>(k) >= K) continue;
          s.hyps.add({c.score / std::pow(static_cast<double>(cur_len), lp_exp), c.score, src.ids, src.origin, true});
          continue;
        }
        Beam nb;
        nb.ids = src.ids;
        nb.ids.push_back(c.id);
        nb.origin = src.origin;
        nb.origin.push_back({call, src.row});
        nb.logprob = c.score;
        nb.row = src.row;  // the parent's row, until renumbered below
        next.push_back(std::move(nb));
      }
      if (static_cast<int>(s.hyps.list.size()) >= K && !cand.empty() &&
          s.hyps.worst >= cand[0].score / std::pow(static_cast<double>(cur_len), lp_exp))
        s.done = true;
      if (!s.done && (next.empty() || gen + 1 >= s.max_new)) {
        for (Beam& b : next)
          s.hyps.add({b.logprob / std::pow(static_cast<double>(cur_len + 1), lp_exp), b.logprob, b.ids, b.origin, false});
        s.done = true;
      }
      if (s.done) {
        s.live.clear();
        continue;
      }
      for (Beam& b : next) {
        parents.push_back(b.row);
        ids.push_back({b.ids.back()});
        b.row = static_cast<int>(next_rows++);
      }
      s.live = std::move(next);
    }
    rows = next_rows;
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& list = seqs[i].hyps.list;
    if (list.empty()) continue;  // max_new_tokens <= 0
    size_t best = 0;
    for (size_t h = 1; h < list.size(); ++h)
      if (list[h].score >= list[best].score) best = h;  // ties: the later one, as HF's sort + pop
    const Hyp& h = list[best];
    out[i].ids = h.ids;
    out[i].score = h.score;
    out[i].logprob = h.logprob;
    out[i].stopped_at_eos = h.eos;
    out[i].origin = h.origin;
  }
  return out;
}

BeamResult beam_search(const BatchStep& step, const std::vector<int>& prompt, const BeamOptions& opt) {
  return beam_search_batch(step, {prompt}, opt).at(0);
}

}  // namespace xmodal
