// Shared helpers for bench/ programs: a median-of-N timer with warm-up, the machine line, the
// date, and a tiny argv reader (benches do not link Boost). Header-only.
//
// Timing policy (DESIGN.md "Benchmarks", STYLE.md 13): validate first, then warm up, then time
// each call separately and report the median, so one preemption on a shared host (the 8 ms
// stalls in FACTS.md) moves a sample, not the result. Fast calls get more samples.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace xmodal::bench {

struct Timing {
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
};

inline double now_us() {
  using namespace std::chrono;
  return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

// Calls fn() `warmup` times, then times single calls until both `min_runs` samples and about
// `budget_ms` of wall time are reached (at most max_runs), and returns the median.
template <class F>
Timing time_median(F&& fn, int min_runs = 5, double budget_ms = 300, int warmup = 3, int max_runs = 2001) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  const double start = now_us();
  while (static_cast<int>(t.size()) < max_runs &&
         (static_cast<int>(t.size()) < min_runs || now_us() - start < budget_ms * 1000.0)) {
    const double a = now_us();
    fn();
    t.push_back(now_us() - a);
  }
  std::sort(t.begin(), t.end());
  Timing r;
  r.runs = static_cast<int>(t.size());
  r.min_us = t.front();
  r.max_us = t.back();
  r.median_us = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
  return r;
}

// "AMD EPYC 9R14, 2 logical CPUs" from /proc/cpuinfo (best effort).
inline std::string machine_line() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) model = line.substr(p + 2);
      break;
    }
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " logical CPUs";
}

// "1.02 0.98 0.77" (1, 5, 15 minute load averages): other work on a shared host moves timings.
inline std::string load_line() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

// "2026-11-25 12:34 UTC"
inline std::string date_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

// The command line as typed, for the record.
inline std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

// Minimal flag reader: --name value / --flag. Unknown flags are an error (exit 2).
class Args {
 public:
  Args(int argc, char** argv) : argv_(argv + 1, argv + argc) {}
  bool flag(const std::string& name) {
    auto it = std::find(argv_.begin(), argv_.end(), name);
    if (it == argv_.end()) return false;
    argv_.erase(it);
    return true;
  }
  std::string text(const std::string& name, const std::string& def) {
    auto it = std::find(argv_.begin(), argv_.end(), name);
    if (it == argv_.end()) return def;
    if (it + 1 == argv_.end()) fail(name + " needs a value");
    const std::string v = *(it + 1);
    argv_.erase(it, it + 2);
    return v;
  }
  long value(const std::string& name, long def) {
    auto it = std::find(argv_.begin(), argv_.end(), name);
    if (it == argv_.end()) return def;
    if (it + 1 == argv_.end()) fail(name + " needs a value");
    char* end = nullptr;
    const long v = std::strtol((it + 1)->c_str(), &end, 10);
    if (!end || *end) fail(name + ": not an integer: " + *(it + 1));
    argv_.erase(it, it + 2);
    return v;
  }
  // Call after reading every option.
  void done() const {
    if (!argv_.empty()) fail("unknown argument: " + argv_.front());
  }

 private:
  [[noreturn]] static void fail(const std::string& msg) {
    std::fprintf(stderr, "bench: %s (try --help)\n", msg.c_str());
    std::exit(2);
  }
  std::vector<std::string> argv_;
};

}  // namespace xmodal::bench
