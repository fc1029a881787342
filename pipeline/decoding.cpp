#include "pipeline/decoding.hpp"

#include <algorithm>
#include <cmath>
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

namespace {
// log-softmax of entry k of logits [n]
float log_softmax_at(const float* l, int64_t n, int k) {
  float mx = l[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, l[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i] - mx));
  return static_cast<float>(l[k] - mx - std::log(s));
}
}  // namespace

GreedyResult greedy_decode(const DecodeStep& step, const std::vector<int>& prompt, const GreedyOptions& opt) {
  if (prompt.empty()) throw InternalError("greedy_decode: empty prompt");
  GreedyResult r;
  std::vector<int> next = prompt;
  for (int t = 0; t < opt.max_new_tokens; ++t) {
    Tensor logits = step(next);
    if (logits.dtype() != DType::f32 || logits.dim() != 1 || !logits.is_contiguous())
      throw InternalError("greedy_decode: step returned " + logits.describe() + ", expected contiguous f32[V]");
    const int64_t V = logits.numel();
    const int id = argmax_logits(logits.f32(), V, opt.banned);
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

}  // namespace xmodal
