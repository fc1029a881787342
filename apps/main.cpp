// xmodal: the command-line entry point. The only place that catches errors and maps them to
// exit codes (see DESIGN.md): 0 ok, 1 internal, 2 usage, 3 bad input, 4 bad model.
#include <cstdio>
#include <iostream>
#include <dnnl.hpp>
#include <opencv2/core.hpp>  // cv::Exception

#include "apps/subcommand.hpp"
#include "core/error.hpp"

namespace xmodal::app {

std::map<std::string, Subcommand>& registry() {
  static std::map<std::string, Subcommand> r;
  return r;
}

static void print_main_help() {
  std::cout << "xmodal " XMODAL_VERSION " - look at pictures and talk about them\n\n"
               "usage: xmodal <command> [options]\n       xmodal <command> --help\n\ncommands:\n";
  for (auto& [name, s] : registry()) {
    std::string pad(name.size() < 12 ? 12 - name.size() : 1, ' ');
    std::cout << "  " << name << pad << s.summary << "\n";
  }
  std::cout << "\nexit codes: 0 ok, 1 internal error, 2 usage error, 3 bad input, 4 bad model\n";
}

}  // namespace xmodal::app

int main(int argc, char** argv) {
  using namespace xmodal;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      app::print_main_help();
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
      std::cout << "xmodal " XMODAL_VERSION "\n";
      return 0;
    }
    auto it = app::registry().find(args[0]);
    if (it == app::registry().end())
      throw UsageError("unknown command '" + args[0] + "' (see xmodal --help)");
    std::vector<std::string> rest(args.begin() + 1, args.end());
    return it->second.run(rest);
  } catch (const Error& e) {
    std::cerr << e.one_line() << "\n";
    return e.exit_code();
  } catch (const dnnl::error& e) {
    std::cerr << "xmodal: oneDNN error: " << e.what() << "\n";
    return 1;
  } catch (const cv::Exception& e) {
    std::cerr << "xmodal: OpenCV error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "xmodal: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "xmodal: internal error: " << e.what() << "\n";
    return 1;
  }
}
