// Autoregressive decoding loops, independent of any one model.
//
// Single sequence: a model exposes one step function; given the next token ids (the whole
// prompt on the first call, then one token per call) it appends them to its own state (KV
// cache) and returns the logits of the LAST position. The loop owns the stopping rules.
//
// Batched (several sequences, or several beams, in lockstep): the step function works on rows.
// Call c passes, for each row r of its result, parents[r], the row of call c-1 whose state row r
// continues (rows may be dropped, duplicated or reordered; parents is empty on the first call,
// where row r is prompt r), and ids[r], the tokens appended to row r (the whole prompt on the
// first call, then exactly one). It returns the logits of each row's last appended position.
//   greedy_decode_batch: finished sequences drop out of the next call.
//   beam_search[_batch]: Hugging Face BeamSearchScorer semantics (see beam_search below).
// Ties are broken deterministically: the lowest id (greedy); the highest score, then the lowest
// (row, id) pair (beam), so a width of 1 gives the greedy ids.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace xmodal {

// ids [T] -> logits [V] (f32) of the last of those positions, after appending all T.
using DecodeStep = std::function<Tensor(const std::vector<int>& ids)>;

// parents [R] (empty on the first call), ids [R][T_r] -> logits [R, V] (contiguous f32) of the
// last appended position of each row.
using BatchStep = std::function<Tensor(const std::vector<int>& parents, const std::vector<std::vector<int>>& ids)>;

struct GreedyOptions {
  int eos_id = -1;         // stop after generating it (it is not returned)
  int max_new_tokens = 32; // stop after this many tokens
  // Batched decoding: when non-empty (one per prompt), sequence i stops after
  // min(max_new_tokens, max_new_each[i]) tokens (e.g. what each prompt leaves of a context).
  std::vector<int> max_new_each;
  int min_new_tokens = 0;  // eos is never chosen before this many tokens were generated
  // Tokens never generated (e.g. pad, bos, control ids): their logits are skipped by argmax.
  std::vector<int> banned;
};

// Where a generated id came from in a batched decode: the step call whose logits chose it
// (0 = the prompt call) and the row of that call.
struct TokenOrigin {
  int call = 0, row = 0;
  bool operator==(const TokenOrigin& o) const { return call == o.call && row == o.row; }
};

struct GreedyResult {
  std::vector<int> ids;            // generated ids, without eos
  bool stopped_at_eos = false;     // false: max_new_tokens was reached first
  std::vector<float> logprobs;     // log-softmax of each chosen token (same length as ids,
                                   // plus one for eos when stopped_at_eos)
  std::vector<TokenOrigin> origin; // batched decoding only: one per id (eos not included)
};

// prompt [T0] non-empty. Greedy: at each step the highest logit wins (ties: the lowest id).
GreedyResult greedy_decode(const DecodeStep& step, const std::vector<int>& prompt, const GreedyOptions& opt);

// Greedy decoding of prompts.size() sequences in lockstep: one step call per generated
// position; sequences that stop drop out of later calls. Result i equals greedy_decode of
// prompt i (given a model whose rows do not interact). on_token(i, id), if set, is called for
// each generated id (never eos) as soon as it is chosen, in order within each sequence.
std::vector<GreedyResult> greedy_decode_batch(const BatchStep& step, const std::vector<std::vector<int>>& prompts,
                                              const GreedyOptions& opt,
                                              const std::function<void(size_t, int)>& on_token = {});

struct BeamOptions {
  int num_beams = 4;
  int eos_id = -1;
  int max_new_tokens = 32;   // generated tokens, eos not counted
  std::vector<int> max_new_each;  // when non-empty: per prompt, min(max_new_tokens, this)
  int min_new_tokens = 0;    // eos is forbidden before this many generated tokens
  float length_penalty = 1.0f;  // score = sum of log-probabilities / length ** length_penalty
  std::vector<int> banned;   // never generated
};

struct BeamResult {
  std::vector<int> ids;            // the best hypothesis, generated ids without eos
  double score = 0;                // its length-penalised score
  double logprob = 0;              // its sum of log-probabilities (eos included when it ended)
  bool stopped_at_eos = false;
  std::vector<TokenOrigin> origin; // one per id: the call and row whose logits chose it
};

// Beam search, Hugging Face BeamSearchScorer semantics (early_stopping=False, one returned
// sequence). Each step takes the best 2*num_beams of (beam log-probability + token
// log-probability) over the live beams of a sequence, best first (ties: lowest row, then
// lowest id). An eos among the first num_beams of them closes a hypothesis whose score is
// sum_logprobs / length ** length_penalty, length counting the prompt and the generated ids
// (not eos), as HF counts input_ids; the other candidates continue, up to num_beams live beams.
// A sequence is done when it holds num_beams hypotheses and the best live candidate, normalised
// by the current length, cannot beat the worst of them; at max_new_tokens its live beams become
// hypotheses. The first call has one row per prompt; later calls num_beams rows per unfinished
// sequence (fewer only when the vocabulary leaves fewer continuations), grouped by sequence.
std::vector<BeamResult> beam_search_batch(const BatchStep& step, const std::vector<std::vector<int>>& prompts,
                                          const BeamOptions& opt);
BeamResult beam_search(const BatchStep& step, const std::vector<int>& prompt, const BeamOptions& opt);

// Index of the largest of n logits, skipping `banned` (ties: the lowest index). -1 if n == 0.
int argmax_logits(const float* logits, int64_t n, const std::vector<int>& banned = {});

// log-softmax of logits [n] into out [n] (double precision).
void log_softmax(const float* logits, int64_t n, std::vector<double>& out);

}  // namespace xmodal
