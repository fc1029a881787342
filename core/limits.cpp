#include "core/limits.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"

namespace xmodal {

namespace {
Limits& current() {
  static Limits l;
  return l;
}
}  // namespace

const Limits& limits() { return current(); }
void set_limits(const Limits& l) { current() = l; }

std::string bytes_str(double bytes) {
  const char* unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%.0f %s", bytes, unit[u]);
  else
    std::snprintf(buf, sizeof buf, bytes < 10 ? "%.2f %s" : bytes < 100 ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
  return buf;
}

void check_prompt_tokens(int64_t n, const std::string& subject, const std::string& what) {
  const int64_t max = limits().max_prompt_tokens;
  if (n > max)
    throw InputError(subject, (subject == what ? "" : "the " + what + " ") + "is " + std::to_string(n) + " tokens long, over the limit of " + std::to_string(max) +
                                  " (raise it with --max-prompt-tokens)");
}

void check_new_tokens(int64_t n) {
  const int64_t max = limits().max_new_tokens;
  if (n > max)
    throw UsageError("a decoding of up to " + std::to_string(n) + " new tokens was asked for, over the limit of " +
                         std::to_string(max) + " (lower --max-len or raise --max-new-tokens)",
                     "--max-new-tokens");
}

void check_batch_memory(int64_t batch, int64_t bytes, const std::string& what) {
  const int64_t max = limits().max_batch_bytes;
  if (batch < 1 || bytes <= max) return;
  if (batch == 1)
    throw UsageError("one image needs about " + bytes_str(double(bytes)) + " (" + what + "), over the limit of " +
                         bytes_str(double(max)) + "; raise --max-batch-mb",
                     "--max-batch-mb");
  const double per = static_cast<double>(bytes) / static_cast<double>(batch);
  const int64_t fits = per > 0 ? static_cast<int64_t>(static_cast<double>(max) / per) : batch;
  throw UsageError("a batch of " + std::to_string(batch) + " images needs about " + bytes_str(double(bytes)) + " (" +
                       bytes_str(per) + " each, " + what + "), over the limit of " + bytes_str(double(max)) +
                       "; use --batch " + std::to_string(std::max<int64_t>(fits, 1)) + " or less, or raise --max-batch-mb",
                   "--batch");
}

}  // namespace xmodal
