// libFuzzer target: the audio reader and log-mel front end (encoders/audio.hpp) on arbitrary
// file bytes: load_audio (libsndfile decode of WAV/FLAC/OGG/AIFF/..., header checks, downmix,
// resample to 16 kHz) with a 2 s duration cap so the fuzzer stays in the parsers, then log_mel
// on what was decoded. Output shape and finiteness are checked.
#include <cmath>
#include <cstdint>

#include "encoders/audio.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace xmodal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch_file(data, size, ".audio");
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    audio::LoadOptions opt;
    opt.max_seconds = 2.0;
    audio::Audio a = audio::load_audio(path, opt);
    Tensor m = audio::log_mel(a.samples);
    const int64_t frames = 1 + static_cast<int64_t>(a.samples.size()) / audio::kHop;
    if (m.numel() != frames * audio::kMels) __builtin_trap();
    const float* p = m.data<float>();
    for (int64_t i = 0; i < m.numel(); ++i)
      if (!std::isfinite(p[i])) __builtin_trap();
  });
  return 0;
}
