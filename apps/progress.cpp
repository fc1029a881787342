#include "apps/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace xmodal::app {

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, double period_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total > 0 ? total : 1),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      period_s_(period_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

std::string Progress::format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    const long t = std::lround(s);
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  } else {
    const long t = std::lround(s / 60);
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 60, t % 60);
  }
  return buf;
}

std::string Progress::render(const std::string& label, const std::string& unit, int64_t done, int64_t total,
                             double elapsed_s, int bar_width) {
  const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  std::string line = label + ": ";
  if (bar_width > 0) {
    const int full = static_cast<int>(frac * bar_width);
    line += '[';  // appends, not "lit" + string&&: gcc 12 warns (-Wrestrict false positive)
    line.append(full, '#').append(bar_width - full, '.').append("] ");
  }
  char buf[160];
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  std::snprintf(buf, sizeof buf, "%lld/%lld %s %3.0f%%  %.0f/s", static_cast<long long>(done),
                static_cast<long long>(total), unit.c_str(), frac * 100.0, rate);
  line += buf;
  if (done < total) {
    line += "  ETA ";
    line += rate > 0 ? format_duration((total - done) / rate) : std::string("?");
  } else {
    line += "  in ";
    line += format_duration(elapsed_s);
  }
  return line;
}

void Progress::draw(bool final_line) {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = render(label_, unit_, done_.load(), total_, el, tty_ ? 30 : 0);
  if (tty_) {
    // \r + clear to end of line; the final line ends with a newline.
    std::cerr << "\r" << line << "\033[K" << (final_line ? "\n" : "") << std::flush;
  } else {
    std::cerr << line << "\n" << std::flush;
  }
}

void Progress::advance(int64_t n) {
  done_.fetch_add(n);
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double period = tty_ ? 0.1 : period_s_;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;  // another thread is drawing
  if (std::chrono::duration<double>(now - last_draw_).count() < period) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

}  // namespace xmodal::app
