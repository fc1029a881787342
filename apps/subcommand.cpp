#include "apps/subcommand.hpp"

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
    ("threads", po::value<int>(&c.threads)->default_value(0), "threads for oneDNN and kernels (0 = all cores)")
    ("quiet,q", po::bool_switch(&c.quiet), "print results only, no progress or notes")
    ("verbose,v", po::bool_switch(&c.verbose), "print extra detail to stderr");
  return o;
}

po::variables_map parse(const std::string& sub, const std::vector<std::string>& args,
                        const po::options_description& opts, const po::positional_options_description& pos,
                        Common& c) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see xmodal " + sub + " --help)", sub);
  }
  if (c.quiet && c.verbose) throw UsageError("--quiet and --verbose are exclusive", sub);
  set_verbosity(c.quiet ? 0 : c.verbose ? 2 : 1);
  if (!c.help) set_num_threads(c.threads);
  return vm;
}

void print_help(const std::string& sub, const std::string& synopsis, const std::string& description,
                const po::options_description& opts, const std::string& examples) {
  std::cout << "usage: xmodal " << sub << " " << synopsis << "\n\n" << description << "\n\n" << opts << "\n";
  if (!examples.empty()) std::cout << "examples:\n" << examples << "\n";
}

}  // namespace xmodal::app
