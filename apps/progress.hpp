// A progress reporter for long loops (synth, eval): count, percentage, rate and ETA on stderr.
// On a terminal (isatty(stderr)) it redraws one bar line in place at most 10 times a second;
// otherwise it prints a plain line every `period_s` seconds (default 5), so logs stay short.
// A final summary line is printed by finish() (or the destructor). Disabled entirely when
// constructed with enabled = false (--quiet). advance() may be called from any thread.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace xmodal::app {

class Progress {
 public:
  // label: what is counted ("synth"); unit: the plural noun ("images"); total > 0.
  Progress(std::string label, int64_t total, std::string unit, bool enabled, double period_s = 5.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);  // thread-safe
  void finish();                // prints the final line once
  int64_t done() const { return done_.load(); }

  // "12.3s", "4m05s", "1h02m": used for ETA and elapsed time.
  static std::string format_duration(double seconds);
  // The line drawn for a given state (exposed for tests): label, bar (when width > 0),
  // count/total, percent, rate, ETA.
  static std::string render(const std::string& label, const std::string& unit, int64_t done, int64_t total,
                            double elapsed_s, int bar_width);

 private:
  void draw(bool final_line);
  std::string label_, unit_;
  int64_t total_;
  bool enabled_, tty_, finished_ = false;
  double period_s_;
  std::atomic<int64_t> done_{0};
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace xmodal::app
