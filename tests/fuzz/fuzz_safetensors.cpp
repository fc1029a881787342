// libFuzzer target: the safetensors parser (core/safetensors.hpp) on arbitrary file bytes.
// Opens the file (header length, JSON, dtypes, shapes, offsets all validated), then reads every
// tensor it accepted through view() and to_f32() so out-of-bounds offsets would be touched.
#include <cstdint>

#include "core/safetensors.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = xmodal::fuzz::scratch_file(data, size, ".safetensors");
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    auto f = xmodal::SafetensorsFile::open(path);
    volatile float sink = 0;
    for (const auto& e : f.entries()) {
      XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
        xmodal::Tensor t = f.view(e.name);
        (void)t;
      });
      XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
        xmodal::Tensor t = f.to_f32(e.name);
        const float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) sink = sink + p[i];
      });
    }
    (void)f.metadata();
  });
  return 0;
}
