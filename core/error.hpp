// Typed errors. Each carries the file (or other subject) it is about and a one-line message.
// Only main() catches them; it prints "xmodal: <file>: <what>" and exits with exit_code().
#pragma once
#include <stdexcept>
#include <string>

namespace xmodal {

enum class ExitCode : int { ok = 0, internal = 1, usage = 2, bad_input = 3, bad_model = 4 };

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string subject, const std::string& what)
      : std::runtime_error(what), code_(code), subject_(std::move(subject)) {}
  ExitCode code() const noexcept { return code_; }
  int exit_code() const noexcept { return static_cast<int>(code_); }
  // The file (or flag, or tensor) the message is about; may be empty.
  const std::string& subject() const noexcept { return subject_; }
  // "xmodal: <subject>: <what>" on one line (newlines in the message become spaces).
  std::string one_line() const;

 private:
  ExitCode code_;
  std::string subject_;
};

// Bad flags or arguments (exit 2).
struct UsageError : Error {
  explicit UsageError(const std::string& what, std::string subject = "")
      : Error(ExitCode::usage, std::move(subject), what) {}
};
// Bad input data: image, audio, JSON, question (exit 3).
struct InputError : Error {
  InputError(std::string file, const std::string& what) : Error(ExitCode::bad_input, std::move(file), what) {}
};
// Missing, corrupt or mis-shaped model (exit 4).
struct ModelError : Error {
  ModelError(std::string file, const std::string& what) : Error(ExitCode::bad_model, std::move(file), what) {}
};
// A bug or an environment failure (exit 1). Shape mismatches in kernels use this.
struct InternalError : Error {
  explicit InternalError(const std::string& what, std::string subject = "")
      : Error(ExitCode::internal, std::move(subject), what) {}
};

// Throw InternalError with the given message when cond is false.
inline void check(bool cond, const std::string& what) {
  if (!cond) throw InternalError(what);
}

}  // namespace xmodal
