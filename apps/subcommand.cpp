#include "apps/subcommand.hpp"

#include <cmath>
#include <iostream>

#include "core/error.hpp"
#include "core/onednn.hpp"

namespace xmodal::app {

static int g_verbosity = 1;
void set_verbosity(int v) { g_verbosity = v; }
void info(const std::string& msg) {
  if (g_verbosity >= 1) std::cerr << msg << "\n";
}
void verbose(const std::string& msg) {
  if (g_verbosity >= 2) std::cerr << msg << "\n";
}
void warn(const std::string& msg) { std::cerr << "xmodal: warning: " << msg << "\n"; }

po::options_description common_options(Common& c) {
  po::options_description o("General");
  o.add_options()
    ("help,h", po::bool_switch(&c.help), "show this help")
    ("threads", po::value<int>(&c.threads)->default_value(0), "threads for oneDNN and kernels (0 = $OMP_NUM_THREADS if set, else all cores)")
    ("quiet,q", po::bool_switch(&c.quiet), "print results only, no progress or notes")
    ("verbose,v", po::bool_switch(&c.verbose), "print extra detail to stderr");
  return o;
}

namespace {

// The limit flags, in the units a user thinks in (megapixels, seconds, MiB).
struct LimitFlags {
  double max_mp = static_cast<double>(Limits::kDefaultMaxPixels) / 1e6;
  double max_audio_seconds = Limits::kDefaultMaxAudioSeconds;
  int max_prompt_tokens = Limits::kDefaultMaxPromptTokens;
  int max_new_tokens = Limits::kDefaultMaxNewTokens;
  int64_t max_batch_mb = Limits::kDefaultMaxBatchBytes >> 20;
};

// The "Limits" group: each flag that `own` (the subcommand's options) does not define itself.
po::options_description limit_options(LimitFlags& f, const po::options_description& own) {
  po::options_description o("Limits (for untrusted inputs; every subcommand accepts them)");
  // The value semantic is created only for a flag that is added: options_description owns what
  // it is given, and one made for a skipped flag would leak (LeakSanitizer, inspect --help).
  auto add = [&](const char* name, auto make_value, const char* help) {
    if (own.find_nothrow(name, false) == nullptr) o.add_options()(name, make_value(), help);
  };
  add("max-pixels", [&] { return po::value(&f.max_mp)->default_value(f.max_mp, "50"); },
      "refuse images of more megapixels (width*height/1e6), checked from the header before decoding");
  add("max-audio-seconds", [&] { return po::value(&f.max_audio_seconds)->default_value(f.max_audio_seconds, "60"); },
      "refuse longer audio, checked from the header before decoding");
  add("max-prompt-tokens", [&] { return po::value(&f.max_prompt_tokens)->default_value(f.max_prompt_tokens); },
      "refuse a question or caption prompt of more tokens (it is never truncated)");
  add("max-new-tokens", [&] { return po::value(&f.max_new_tokens)->default_value(f.max_new_tokens); },
      "refuse a decoding that may generate more tokens (see --max-len)");
  add("max-batch-mb", [&] { return po::value(&f.max_batch_mb)->default_value(f.max_batch_mb); },
      "refuse a --batch whose estimated working memory (images x image size x model dims) is larger, in MiB");
  return o;
}

Limits to_limits(const LimitFlags& f, const std::string& sub) {
  auto bad = [&](const std::string& flag, const std::string& range, const std::string& got) {
    return UsageError(flag + " must be in " + range + ", got " + got + " (see xmodal " + sub + " --help)", flag);
  };
  if (!std::isfinite(f.max_mp) || f.max_mp <= 0 || f.max_mp > 1e7)
    throw bad("--max-pixels", "(0, 1e7] megapixels", std::to_string(f.max_mp));
  if (!std::isfinite(f.max_audio_seconds) || f.max_audio_seconds <= 0 || f.max_audio_seconds > 86400)
    throw bad("--max-audio-seconds", "(0, 86400]", std::to_string(f.max_audio_seconds));
  if (f.max_prompt_tokens < 1 || f.max_prompt_tokens > 1'000'000)
    throw bad("--max-prompt-tokens", "1 .. 1000000", std::to_string(f.max_prompt_tokens));
  if (f.max_new_tokens < 1 || f.max_new_tokens > 1'000'000)
    throw bad("--max-new-tokens", "1 .. 1000000", std::to_string(f.max_new_tokens));
  if (f.max_batch_mb < 1 || f.max_batch_mb > (int64_t{1} << 30))
    throw bad("--max-batch-mb", "1 .. 1073741824", std::to_string(f.max_batch_mb));
  Limits l;
  l.max_pixels = std::max<int64_t>(1, std::llround(f.max_mp * 1e6));
  l.max_audio_seconds = f.max_audio_seconds;
  l.max_prompt_tokens = f.max_prompt_tokens;
  l.max_new_tokens = f.max_new_tokens;
  l.max_batch_bytes = f.max_batch_mb << 20;
  return l;
}

}  // namespace

po::variables_map parse(const std::string& sub, const std::vector<std::string>& args,
                        const po::options_description& opts, const po::positional_options_description& pos,
                        Common& c) {
  LimitFlags lf;
  po::options_description all;
  all.add(opts).add(limit_options(lf, opts));
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see xmodal " + sub + " --help)", sub);
  }
  if (c.quiet && c.verbose) throw UsageError("--quiet and --verbose are exclusive", sub);
  set_verbosity(c.quiet ? 0 : c.verbose ? 2 : 1);
  c.limits = to_limits(lf, sub);
  set_limits(c.limits);
  if (!c.help) set_num_threads(c.threads);
  return vm;
}

void print_help(const std::string& sub, const std::string& synopsis, const std::string& description,
                const po::options_description& opts, const std::string& examples) {
  LimitFlags lf;
  std::cout << "usage: xmodal " << sub << " " << synopsis << "\n\n" << description << "\n\n" << opts << "\n"
            << limit_options(lf, opts) << "\n";
  if (!examples.empty()) std::cout << "examples:\n" << examples << "\n";
}

}  // namespace xmodal::app
