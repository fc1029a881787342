// libFuzzer target: image decode-and-preprocess (encoders/image.hpp) on arbitrary file bytes:
// decode_image (header sniffing, size checks before decoding, OpenCV decode, EXIF orientation),
// then the preprocessing a model does: PIL-exact bicubic resize to 24x24, center crop and
// normalisation to CHW f32. The pixel cap is lowered to 4 megapixels so the fuzzer spends its
// time in parsers rather than in legitimately large decodes.
#include <cstdint>

#include "encoders/image.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xmodal::ImageLoadOptions opt;
  opt.max_pixels = 4'000'000;
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    xmodal::ImageInfo info;
    xmodal::Image img = xmodal::decode_image(data, size, "fuzz.img", opt, &info);
    if (img.empty()) __builtin_trap();  // decode_image promises an image or an error
    xmodal::Image r = xmodal::resize(img, 24, 20, xmodal::Resample::bicubic);
    xmodal::Image c = xmodal::center_crop(r, 16, 16);
    xmodal::Tensor t = xmodal::to_chw_normalized(c, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f});
    if (t.numel() != 3 * 16 * 16) __builtin_trap();
  });
  return 0;
}
