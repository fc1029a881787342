// Autoregressive decoding loops, independent of any one model.
//
// A model exposes one step function: given the next token ids (the whole prompt on the first
// call, then one token per call) it appends them to its own state (KV cache) and returns the
// logits of the LAST position. The loop owns the stopping rules.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.hpp"

namespace xmodal {

// ids [T] -> logits [V] (f32) of the last of those positions, after appending all T.
using DecodeStep = std::function<Tensor(const std::vector<int>& ids)>;

struct GreedyOptions {
  int eos_id = -1;         // stop after generating it (it is not returned)
  int max_new_tokens = 32; // stop after this many tokens
  // Tokens never generated (e.g. pad, bos, control ids): their logits are skipped by argmax.
  std::vector<int> banned;
};

struct GreedyResult {
  std::vector<int> ids;            // generated ids, without eos
  bool stopped_at_eos = false;     // false: max_new_tokens was reached first
  std::vector<float> logprobs;     // log-softmax of each chosen token (same length as ids,
                                   // plus one for eos when stopped_at_eos)
};

// prompt [T0] non-empty. Greedy: at each step the highest logit wins (ties: the lowest id).
GreedyResult greedy_decode(const DecodeStep& step, const std::vector<int>& prompt, const GreedyOptions& opt);

// Index of the largest of n logits, skipping `banned` (ties: the lowest index). -1 if n == 0.
int argmax_logits(const float* logits, int64_t n, const std::vector<int>& banned = {});

}  // namespace xmodal
