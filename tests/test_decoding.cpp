// pipeline/decoding: greedy (single and batched) and beam search, on toy step functions whose
// probabilities are known, so that the best sequence can be found by enumeration.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pipeline/decoding.hpp"

using namespace xmodal;

namespace {

// A toy model over V tokens: the next-token distribution is a function of the whole sequence so
// far. Keeps one history per row, reordered by `parents` exactly as a model's KV cache would be.
struct Toy {
  int V;
  std::function<std::vector<double>(const std::vector<int>&)> probs;  // sequence -> p [V]
  std::vector<std::vector<int>> rows;
  int calls = 0;
  std::vector<size_t> rows_per_call;
  Toy(int v, std::function<std::vector<double>(const std::vector<int>&)> p) : V(v), probs(std::move(p)) {}

  Tensor logits_of(const std::vector<int>& seq) const {
    const auto p = probs(seq);
    Tensor l = Tensor::empty({V});
    for (int i = 0; i < V; ++i) l.f32()[i] = p[static_cast<size_t>(i)] > 0 ? static_cast<float>(std::log(p[static_cast<size_t>(i)])) : -1e30f;
    return l;
  }
  BatchStep batch_step() {
    rows.clear();
    calls = 0;
    rows_per_call.clear();
    return [this](const std::vector<int>& parents, const std::vector<std::vector<int>>& ids) {
      if (calls == 0) {
        REQUIRE(parents.empty());
        rows.assign(ids.size(), {});
      } else {
        REQUIRE(parents.size() == ids.size());
        std::vector<std::vector<int>> next;
        for (int p : parents) {
          REQUIRE(p >= 0);
          REQUIRE(p < static_cast<int>(rows.size()));
          next.push_back(rows[static_cast<size_t>(p)]);
        }
        rows = next;
      }
      ++calls;
      rows_per_call.push_back(ids.size());
      Tensor out = Tensor::empty({static_cast<int64_t>(ids.size()), V});
      for (size_t r = 0; r < ids.size(); ++r) {
        if (calls > 1) REQUIRE(ids[r].size() == 1);
        rows[r].insert(rows[r].end(), ids[r].begin(), ids[r].end());
        Tensor l = logits_of(rows[r]);
        std::copy(l.f32(), l.f32() + V, out.f32() + static_cast<int64_t>(r) * V);
      }
      return out;
    };
  }
  DecodeStep single_step() {
    auto seq = std::make_shared<std::vector<int>>();
    return [this, seq](const std::vector<int>& ids) {
      seq->insert(seq->end(), ids.begin(), ids.end());
      return logits_of(*seq);
    };
  }
};

// Enumerates every sequence (up to max_new generated ids, ending in eos or cut at max_new) and
// returns the best by the beam score (length counts the prompt, not eos).
struct Best {
  std::vector<int> ids;
  double score = -1e300;
};
void enumerate(const Toy& toy, std::vector<int> seq, size_t prompt_len, int eos, int max_new, int min_new, double lp_exp,
               double logp, Best& best) {
  const int gen = static_cast<int>(seq.size() - prompt_len);
  if (gen >= max_new) {
    const double sc = logp / std::pow(static_cast<double>(seq.size()), lp_exp);
    if (sc > best.score) best = {std::vector<int>(seq.begin() + static_cast<long>(prompt_len), seq.end()), sc};
    return;
  }
  const auto p = toy.probs(seq);
  for (int t = 0; t < toy.V; ++t) {
    if (p[static_cast<size_t>(t)] <= 0) continue;
    const double l = logp + std::log(p[static_cast<size_t>(t)]);
    if (t == eos) {
      if (gen < min_new) continue;
      const double sc = l / std::pow(static_cast<double>(seq.size()), lp_exp);
      if (sc > best.score) best = {std::vector<int>(seq.begin() + static_cast<long>(prompt_len), seq.end()), sc};
      continue;
    }
    auto s = seq;
    s.push_back(t);
    enumerate(toy, s, prompt_len, eos, max_new, min_new, lp_exp, l, best);
  }
}

// A deterministic pseudo-random distribution of the sequence (normalised, eos = V-1).
std::vector<double> hashed_probs(const std::vector<int>& seq, int V) {
  uint64_t h = 1469598103934665603ull;
  for (int t : seq) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  std::vector<double> p(static_cast<size_t>(V));
  double s = 0;
  for (int i = 0; i < V; ++i) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    p[static_cast<size_t>(i)] = 0.05 + static_cast<double>((h >> 33) % 1000) / 1000.0;
    if (i == V - 1) p[static_cast<size_t>(i)] *= 0.5 + 0.3 * static_cast<double>(seq.size() % 4);  // eos grows with length
    s += p[static_cast<size_t>(i)];
  }
  for (double& x : p) x /= s;
  return p;
}

}  // namespace

TEST_CASE("beam search finds the better sequence where greedy does not") {
  // V = 4: a=0, b=1, c=2, eos=3. After the prompt a is likelier (0.5) than b (0.4), but after a
  // everything is uncertain (0.25 each) while after b eos is nearly sure (0.9).
  Toy toy{4, [](const std::vector<int>& s) -> std::vector<double> {
            const int last = s.back();
            if (s.size() == 1) return {0.5, 0.4, 0.05, 0.05};
            if (last == 1) return {0.03, 0.03, 0.04, 0.9};
            return {0.25, 0.25, 0.25, 0.25};
          }};
  GreedyOptions g;
  g.eos_id = 3;
  g.max_new_tokens = 4;
  const GreedyResult gr = greedy_decode(toy.single_step(), {1}, g);
  CHECK(gr.ids.front() == 0);  // greedy takes a first
  double greedy_logp = 0;
  for (float l : gr.logprobs) greedy_logp += l;

  BeamOptions b;
  b.eos_id = 3;
  b.max_new_tokens = 4;
  b.num_beams = 2;
  b.length_penalty = 0.f;  // score = total log-probability
  const BeamResult br = beam_search(toy.batch_step(), {1}, b);
  CHECK(br.ids == std::vector<int>{1});
  CHECK(br.stopped_at_eos);
  CHECK(br.score == doctest::Approx(std::log(0.4 * 0.9)).epsilon(1e-6));
  CHECK(br.logprob == doctest::Approx(std::log(0.4 * 0.9)).epsilon(1e-6));
  MESSAGE("greedy log p " << greedy_logp << ", beam log p " << br.logprob);
  CHECK(br.logprob > greedy_logp + 0.5);
  // and it is the best of all sequences
  Best best;
  enumerate(toy, {1}, 1, 3, 4, 0, 0.0, 0.0, best);
  CHECK(best.ids == br.ids);
  CHECK(best.score == doctest::Approx(br.score).epsilon(1e-6));
}

TEST_CASE("beam search with a wide beam matches exhaustive search on random toy models") {
  for (int seed = 0; seed < 12; ++seed) {
    const int V = 4;
    Toy toy{V, [](const std::vector<int>& s) { return hashed_probs(s, V); }};
    for (double lp : {0.0, 1.0, 2.0}) {
      BeamOptions b;
      b.eos_id = V - 1;
      b.max_new_tokens = 3;
      b.num_beams = 27;  // (V-1)^max_new: every live sequence fits, so nothing is pruned
      b.length_penalty = static_cast<float>(lp);
      const std::vector<int> prompt{seed % 3, (seed / 3) % 3};
      const BeamResult br = beam_search(toy.batch_step(), prompt, b);
      Best best;
      enumerate(toy, prompt, prompt.size(), V - 1, 3, 0, lp, 0.0, best);
      CAPTURE(seed);
      CAPTURE(lp);
      CHECK(br.ids == best.ids);
      CHECK(br.score == doctest::Approx(best.score).epsilon(1e-6));  // float logits
    }
  }
}

TEST_CASE("a beam width of 1 gives the greedy ids; batched greedy equals one at a time") {
  const int V = 7;
  Toy toy{V, [](const std::vector<int>& s) { return hashed_probs(s, V); }};
  std::vector<std::vector<int>> prompts;
  for (int i = 0; i < 9; ++i) prompts.push_back(std::vector<int>(static_cast<size_t>(1 + i % 4), i % 5));
  GreedyOptions g;
  g.eos_id = V - 1;
  g.max_new_tokens = 12;
  g.banned = {0};
  BeamOptions b;
  b.eos_id = V - 1;
  b.max_new_tokens = 12;
  b.banned = {0};
  b.num_beams = 1;
  std::vector<std::pair<size_t, int>> streamed;
  const auto batched = greedy_decode_batch(toy.batch_step(), prompts, g, [&](size_t i, int id) { streamed.push_back({i, id}); });
  // finished sequences drop out: the row count never grows
  for (size_t c = 1; c < toy.rows_per_call.size(); ++c) CHECK(toy.rows_per_call[c] <= toy.rows_per_call[c - 1]);
  const auto beams = beam_search_batch(toy.batch_step(), prompts, b);
  int differ_from_beam2 = 0;
  size_t streamed_total = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(i);
    const GreedyResult one = greedy_decode(toy.single_step(), prompts[i], g);
    CHECK(batched[i].ids == one.ids);
    CHECK(batched[i].logprobs == one.logprobs);
    CHECK(batched[i].stopped_at_eos == one.stopped_at_eos);
    CHECK(batched[i].origin.size() == one.ids.size());
    for (int id : one.ids) CHECK(id != 0);
    CHECK(beams[i].ids == one.ids);
    CHECK(beams[i].stopped_at_eos == one.stopped_at_eos);
    // streaming: the ids of sequence i in order
    std::vector<int> s;
    for (const auto& [k, id] : streamed)
      if (k == i) s.push_back(id);
    CHECK(s == one.ids);
    streamed_total += s.size();
    BeamOptions b2 = b;
    b2.num_beams = 3;
    differ_from_beam2 += beam_search(toy.batch_step(), prompts[i], b2).ids != one.ids;
  }
  CHECK(streamed_total == streamed.size());
  MESSAGE(differ_from_beam2 << " of " << prompts.size() << " sequences differ between beam 3 and greedy");
  CHECK(differ_from_beam2 > 0);  // the toy is not trivially greedy-optimal
}

TEST_CASE("batched beam search equals one sequence at a time") {
  const int V = 6;
  Toy toy{V, [](const std::vector<int>& s) { return hashed_probs(s, V); }};
  std::vector<std::vector<int>> prompts{{1}, {2, 3}, {4, 4, 4}, {1, 2}, {3}};
  BeamOptions b;
  b.eos_id = V - 1;
  b.max_new_tokens = 9;
  b.num_beams = 3;
  b.length_penalty = 1.3f;
  const auto batched = beam_search_batch(toy.batch_step(), prompts, b);
  for (size_t c = 1; c < toy.rows_per_call.size(); ++c) CHECK(toy.rows_per_call[c] <= prompts.size() * 3);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const BeamResult one = beam_search(toy.batch_step(), prompts[i], b);
    CHECK(batched[i].ids == one.ids);
    CHECK(batched[i].score == one.score);
    CHECK(batched[i].origin.size() == one.ids.size());
  }
}

TEST_CASE("min length forbids eos; max length and banned ids hold; ties go to the lowest id") {
  // eos (3) is the likeliest token everywhere
  const int V = 4;
  Toy toy{V, [](const std::vector<int>&) -> std::vector<double> { return {0.1, 0.2, 0.05, 0.65}; }};
  GreedyOptions g;
  g.eos_id = 3;
  g.max_new_tokens = 10;
  CHECK(greedy_decode(toy.single_step(), {0}, g).ids.empty());
  g.min_new_tokens = 3;
  GreedyResult r = greedy_decode(toy.single_step(), {0}, g);
  CHECK(r.ids == std::vector<int>{1, 1, 1});
  CHECK(r.stopped_at_eos);
  CHECK(greedy_decode_batch(toy.batch_step(), {{0}, {1, 2}}, g)[1].ids == std::vector<int>{1, 1, 1});
  BeamOptions b;
  b.eos_id = 3;
  b.max_new_tokens = 10;
  b.num_beams = 2;
  b.min_new_tokens = 3;
  BeamResult br = beam_search(toy.batch_step(), {0}, b);
  CHECK(br.ids == std::vector<int>{1, 1, 1});
  CHECK(br.stopped_at_eos);
  b.min_new_tokens = 5;
  b.max_new_tokens = 4;  // min above max: cut at max, no eos
  br = beam_search(toy.batch_step(), {0}, b);
  CHECK(br.ids == std::vector<int>{1, 1, 1, 1});
  CHECK_FALSE(br.stopped_at_eos);
  b.min_new_tokens = 2;
  b.max_new_tokens = 10;
  b.banned = {1};
  br = beam_search(toy.batch_step(), {0}, b);
  CHECK(br.ids == std::vector<int>{0, 0});
  b.max_new_tokens = 0;
  CHECK(beam_search(toy.batch_step(), {0}, b).ids.empty());

  // all logits equal: the lowest id that is allowed
  Toy flat{5, [](const std::vector<int>&) { return std::vector<double>(5, 0.2); }};
  GreedyOptions f;
  f.eos_id = 4;
  f.max_new_tokens = 3;
  f.banned = {0};
  CHECK(greedy_decode(flat.single_step(), {0}, f).ids == std::vector<int>{1, 1, 1});
  BeamOptions fb;
  fb.eos_id = 4;
  fb.max_new_tokens = 3;
  fb.banned = {0};
  fb.num_beams = 1;
  CHECK(beam_search(flat.batch_step(), {0}, fb).ids == std::vector<int>{1, 1, 1});
  fb.num_beams = 3;
  const BeamResult fr = beam_search(flat.batch_step(), {0}, fb);
  CHECK(fr.ids.size() <= 3);
  // deterministic: the same again
  CHECK(beam_search(flat.batch_step(), {0}, fb).ids == fr.ids);

  CHECK_THROWS_AS(beam_search(toy.batch_step(), {}, b), InternalError);
  b.num_beams = 0;
  CHECK_THROWS_AS(beam_search(toy.batch_step(), {0}, b), InternalError);
}

TEST_CASE("per-sequence new-token limits in a batch equal the same limits one at a time") {
  const int V = 5;
  // eos (4) is never likely: sequences run to their limits
  Toy toy{V, [](const std::vector<int>& s) -> std::vector<double> {
            std::vector<double> p = hashed_probs(s, V);
            p[4] = 0.0;
            return p;
          }};
  const std::vector<std::vector<int>> prompts{{1}, {2, 3}, {0, 0, 0}};
  GreedyOptions g;
  g.eos_id = 4;
  g.max_new_tokens = 6;
  g.max_new_each = {2, 9, 0};
  BeamOptions b;
  b.eos_id = 4;
  b.max_new_tokens = 6;
  b.max_new_each = {2, 9, 0};
  b.num_beams = 2;
  const auto gb = greedy_decode_batch(toy.batch_step(), prompts, g);
  const auto bb = beam_search_batch(toy.batch_step(), prompts, b);
  const std::vector<size_t> want{2, 6, 0};
  for (size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(i);
    CHECK(gb[i].ids.size() == want[i]);
    CHECK(bb[i].ids.size() == want[i]);
    GreedyOptions g1 = g;
    g1.max_new_each.clear();
    g1.max_new_tokens = static_cast<int>(want[i]);
    CHECK(greedy_decode(toy.single_step(), prompts[i], g1).ids == gb[i].ids);
    BeamOptions b1 = b;
    b1.max_new_each.clear();
    b1.max_new_tokens = static_cast<int>(want[i]);
    CHECK(beam_search(toy.batch_step(), prompts[i], b1).ids == bb[i].ids);
  }
  g.max_new_each = {1};  // not one per prompt
  CHECK_THROWS_AS(greedy_decode_batch(toy.batch_step(), prompts, g), InternalError);
}
