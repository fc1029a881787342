// Shared helpers for the libFuzzer targets in tests/fuzz (built only with -DXMODAL_FUZZ=ON and
// clang; see tests/fuzz/README.md).
//
// Contract checked by every target: on any input, the code under test either succeeds or throws
// one of xmodal's typed errors (core/error.hpp) — what apps/main.cpp turns into a one-line
// message and an exit code. Anything else is a finding: a crash or sanitizer report (ASan/UBSan
// are on in the fuzz build), or a foreign exception escaping (std::out_of_range, a JSON library
// exception, ...), which the fuzzer reports as a crash because it is not caught here.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.hpp"

namespace xmodal::fuzz {

// Writes the input to a per-process scratch file and returns its path (for readers that only
// take a path). The same path is reused for every input of this process.
inline std::string scratch_file(const uint8_t* data, size_t size, const char* ext) {
  const char* tmp = getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/xmodal_fuzz_" + std::to_string(getpid()) + ext;
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && fwrite(data, 1, size, f) != size) __builtin_trap();
  fclose(f);
  return path;
}

}  // namespace xmodal::fuzz

// Runs `body`; xmodal's typed errors are the expected way to refuse an input.
// Variadic so that a body with commas (braced lists) needs no extra parentheses.
#define XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS(...) \
  try {                                           \
    __VA_ARGS__;                                  \
  } catch (const xmodal::Error&) {                \
  }
