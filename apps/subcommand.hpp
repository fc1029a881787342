// Subcommand registry. Each apps/cmd_<name>.cpp registers itself with XMODAL_SUBCOMMAND;
// main() dispatches. Register a subcommand only when it works.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "core/limits.hpp"

namespace xmodal::app {

namespace po = boost::program_options;

struct Subcommand {
  std::string name;
  std::string summary;  // one line for `xmodal --help`
  // Receives the arguments after the subcommand name. Returns the exit code.
  std::function<int(const std::vector<std::string>&)> run;
};

std::map<std::string, Subcommand>& registry();

struct Registrar {
  Registrar(Subcommand s) { registry().emplace(s.name, std::move(s)); }
};

#define XMODAL_SUBCOMMAND_CAT2(a, b) a##b
#define XMODAL_SUBCOMMAND_CAT(a, b) XMODAL_SUBCOMMAND_CAT2(a, b)
#define XMODAL_SUBCOMMAND(name, summary, fn) \
  static ::xmodal::app::Registrar XMODAL_SUBCOMMAND_CAT(xmodal_registrar_, __LINE__)({name, summary, fn})

// Common options every subcommand accepts: --help, --threads, --quiet, --verbose.
// Every subcommand also accepts the resource limits (core/limits.hpp), added by parse() and shown
// by print_help() in a "Limits" group: --max-pixels MP, --max-audio-seconds S,
// --max-prompt-tokens N, --max-new-tokens N, --max-batch-mb MB. A subcommand that defines one of
// these names itself keeps its own (e.g. inspect's --max-pixels); the others are set process-wide
// (xmodal::set_limits), so load_image, load_audio, the models' tokenization, decoding and
// Vlm::encode apply them without any code in the subcommand.
struct Common {
  bool help = false;
  int threads = 0;
  bool quiet = false;
  bool verbose = false;
  Limits limits;  // after parse(): the limits in force (also xmodal::limits())
};
po::options_description common_options(Common& c);

// Parses args against the given options (and positional spec) plus the limit flags. Unknown
// flags and bad values throw UsageError. Returns the variables map. Applies --threads and the
// limits (xmodal::set_limits; c.limits gets a copy).
po::variables_map parse(const std::string& sub, const std::vector<std::string>& args,
                        const po::options_description& opts, const po::positional_options_description& pos,
                        Common& c);

// Prints "usage: xmodal <sub> <synopsis>", the description, the options with defaults and the
// examples, to stdout.
void print_help(const std::string& sub, const std::string& synopsis, const std::string& description,
                const po::options_description& opts, const std::string& examples);

// Logging that honours --quiet/--verbose. Messages go to stderr.
void set_verbosity(int v);  // 0 quiet, 1 normal, 2 verbose
void info(const std::string& msg);
void verbose(const std::string& msg);
void warn(const std::string& msg);

}  // namespace xmodal::app
