// Replays every libFuzzer target (tests/fuzz/fuzz_*.cpp) on its committed inputs, in the normal
// g++ build and therefore also under ASan + UBSan in the sanitizer job of scripts/test:
//   - tests/fuzz/corpus/<target>/*       the seed corpus (valid and broken files of each kind);
//   - tests/fuzz/regressions/<target>/*  every input a fuzzing run found to crash, hang or leak
//                                        (tests/fuzz/README.md lists them and the fixes).
// A target's contract: it returns normally (xmodal's typed errors are caught inside it); a crash,
// a foreign exception or a sanitizer report fails this test. Each input must also finish within a
// generous CPU budget (a regression input for a hang must stay fixed).
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <doctest/doctest.h>

// Each target defines the same extern "C" entry point; give each its own name here.
#define LLVMFuzzerTestOneInput xmodal_replay_audio
#include "tests/fuzz/fuzz_audio.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_config
#include "tests/fuzz/fuzz_config.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_datasets
#include "tests/fuzz/fuzz_datasets.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_image
#include "tests/fuzz/fuzz_image.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_safetensors
#include "tests/fuzz/fuzz_safetensors.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_tokenizers
#include "tests/fuzz/fuzz_tokenizers.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput xmodal_replay_metrics
#include "tests/fuzz/fuzz_metrics.cpp"
#undef LLVMFuzzerTestOneInput

namespace {

namespace fs = std::filesystem;
using Target = int (*)(const uint8_t*, size_t);

std::vector<std::string> inputs_of(const std::string& target) {
  std::vector<std::string> out;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(XMODAL_SOURCE_DIR) / "tests/fuzz" / kind / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void replay(const std::string& target, Target fn) {
  const auto files = inputs_of(target);
  CHECK_MESSAGE(!files.empty(), "no committed inputs for fuzz target " << target);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read " << f);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO("fuzz target " << target << ", input " << f << " (" << bytes.size() << " bytes)");
    const std::clock_t c0 = std::clock();
    CHECK(fn(bytes.data(), bytes.size()) == 0);
    const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
    CHECK(cpu < 20.0);  // libFuzzer's -timeout in scripts/fuzz
  }
  MESSAGE("fuzz target " << target << ": " << files.size() << " inputs replayed");
}

}  // namespace

TEST_CASE("fuzz replay: audio") { replay("audio", xmodal_replay_audio); }
TEST_CASE("fuzz replay: config") { replay("config", xmodal_replay_config); }
TEST_CASE("fuzz replay: datasets") { replay("datasets", xmodal_replay_datasets); }
TEST_CASE("fuzz replay: image") { replay("image", xmodal_replay_image); }
TEST_CASE("fuzz replay: safetensors") { replay("safetensors", xmodal_replay_safetensors); }
TEST_CASE("fuzz replay: tokenizers") { replay("tokenizers", xmodal_replay_tokenizers); }
TEST_CASE("fuzz replay: metrics") { replay("metrics", xmodal_replay_metrics); }
