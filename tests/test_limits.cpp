// Resource limits (core/limits.hpp) and the PTB tokenizer's bounded cost on huge words (issue 9).
#include <ctime>
#include <string>

#include "core/error.hpp"
#include "core/limits.hpp"
#include <doctest/doctest.h>
#include "encoders/audio.hpp"
#include "encoders/image.hpp"
#include "pipeline/metrics.hpp"

using namespace xmodal;

namespace {

const std::string kFx = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/";

// Sanitized builds run several times slower; the CPU budgets below are for optimised builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlow = 6.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kSlow = 6.0;
#else
constexpr double kSlow = 1.0;
#endif
#else
constexpr double kSlow = 1.0;
#endif

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Restores the default limits when a test case ends.
struct LimitsGuard {
  Limits saved = limits();
  ~LimitsGuard() { set_limits(saved); }
};

template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.one_line();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("ptb tokenizer: a 1 MB single-token caption is scored in well under a second of CPU") {
  // Regression: RepNode::ends merged a growing sorted 'seen' list at every repetition step, so
  // one run of n letters cost O(n^2): 20k letters took 7 s, 100k letters > 100 s.
  const std::string word(1 << 20, 'a');
  const double t0 = cpu_seconds();
  const std::vector<std::string> got = metrics::coco_tokenize(std::vector<std::string>{word, "a dog on a mat."});
  const double t = cpu_seconds() - t0;
  MESSAGE("1 MB single-token caption: " << t << " s CPU");
  REQUIRE(got.size() == 2);
  CHECK(got[0] == word);
  CHECK(got[1] == "a dog on a mat");
  CHECK(t < 0.5 * kSlow);

  // Just under the bound (10,000 characters) the grammar runs: linear, so still fast. Mixed
  // letters, digits and dots exercise the nested repetitions (WORD, NUM, FILENAME, URLs).
  std::string mixed;
  while (mixed.size() < 9990) mixed += "ab1.c";
  const double t1 = cpu_seconds();
  const auto toks = metrics::ptb_tokens(mixed);
  const double tm = cpu_seconds() - t1;
  MESSAGE("9,990-character mixed run through the grammar: " << tm << " s CPU, " << toks.size() << " tokens");
  CHECK(!toks.empty());
  CHECK(tm < 0.5 * kSlow);
}

TEST_CASE("ptb tokenizer: ordinary text is unchanged by the run bound") {
  CHECK(metrics::coco_tokenize("A man riding a wave on top of a surfboard.") == "a man riding a wave on top of a surfboard");
  CHECK(metrics::coco_tokenize("Don't stop, it's 3.5-inch!") == "do n't stop it 's 3.5-inch");
  // A run over the bound is one lower-cased token, whatever punctuation it holds.
  const std::string run = std::string(6000, 'A') + "." + std::string(6000, 'b');
  const auto t = metrics::ptb_tokens("x " + run + " y");
  REQUIRE(t.size() == 3);
  CHECK(t[0] == "x");
  CHECK(t[1] == std::string(6000, 'a') + "." + std::string(6000, 'b'));
  CHECK(t[2] == "y");
}

TEST_CASE("limits: defaults and the one-line refusals name the flag") {
  const Limits d;
  CHECK(d.max_pixels == 50'000'000);
  CHECK(d.max_audio_seconds == 60.0);
  CHECK(d.max_prompt_tokens == 128);
  CHECK(d.max_new_tokens == 256);
  CHECK(d.max_batch_bytes == int64_t{4096} << 20);

  LimitsGuard g;
  Limits l;
  l.max_prompt_tokens = 10;
  l.max_new_tokens = 20;
  l.max_batch_bytes = 100 << 20;
  set_limits(l);

  CHECK_NOTHROW(check_prompt_tokens(10, "question 1"));
  CHECK(message_of<InputError>([] { check_prompt_tokens(11, "questions.json"); }) ==
        "xmodal: questions.json: the question is 11 tokens long, over the limit of 10 (raise it with --max-prompt-tokens)");
  CHECK(message_of<InputError>([] { check_prompt_tokens(12, "prompt", "prompt"); }) ==
        "xmodal: prompt: is 12 tokens long, over the limit of 10 (raise it with --max-prompt-tokens)");
  CHECK_NOTHROW(check_new_tokens(20));
  const std::string nt = message_of<UsageError>([] { check_new_tokens(21); });
  CHECK(nt.find("21 new tokens") != std::string::npos);
  CHECK(nt.find("--max-new-tokens") != std::string::npos);

  CHECK_NOTHROW(check_batch_memory(4, 100 << 20, "m"));
  // 8 items of 30 MiB = 240 MiB > 100 MiB: at most 3 fit.
  const std::string bm = message_of<UsageError>([] { check_batch_memory(8, int64_t{240} << 20, "blip-caption"); });
  CHECK(bm.find("a batch of 8 images needs about 240 MiB (30.0 MiB each, blip-caption)") != std::string::npos);
  CHECK(bm.find("over the limit of 100 MiB; use --batch 3 or less, or raise --max-batch-mb") != std::string::npos);
  CHECK(bm.find('\n') == std::string::npos);

  CHECK(bytes_str(512) == "512 bytes");
  CHECK(bytes_str(1536) == "1.50 KiB");
  CHECK(bytes_str(double(int64_t{4096} << 20)) == "4.00 GiB");
}

TEST_CASE("limits: image and audio loading follow set_limits by default") {
  LimitsGuard g;
  const std::string png = kFx + "image/rgb8.png";
  const Image ok = load_image(png);
  REQUIRE(ok.width * ok.height > 4);
  Limits l;
  l.max_pixels = int64_t{ok.width} * ok.height - 1;
  set_limits(l);
  const std::string e = message_of<InputError>([&] { load_image(png); });
  CHECK(e.find("xmodal: " + png + ": image is ") == 0);
  CHECK(e.find("(raise it with --max-pixels)") != std::string::npos);
  ImageLoadOptions explicit_opt;  // an explicit option still wins
  explicit_opt.max_pixels = int64_t{1} << 40;
  CHECK_NOTHROW(load_image(png, explicit_opt));

  const std::string wav = kFx + "audio/tones_16000_s24.wav";
  l = Limits{};
  l.max_audio_seconds = 0.2;
  set_limits(l);
  const std::string a = message_of<InputError>([&] { audio::load_audio(wav); });
  CHECK(a.find("xmodal: " + wav + ": is ") == 0);
  CHECK(a.find("over the limit of 0.2 s (raise it with --max-audio-seconds)") != std::string::npos);
  set_limits(Limits{});
  CHECK_NOTHROW(audio::load_audio(wav));
}
