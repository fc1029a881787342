// libFuzzer target: config.json model loading (pipeline/weights.hpp). Each input becomes
// config.json in a scratch model directory beside a valid tiny model.safetensors (committed
// fixture tests/fixtures/models/tiny), and ModelDir::open reads it; then every key of every
// object goes through each typed Config getter, as model constructors do.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "pipeline/weights.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {

std::string make_dir() {
  const char* tmp = getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/xmodal_fuzz_model_" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  std::string src = std::string(XMODAL_SOURCE_DIR) + "/tests/fixtures/models/tiny/model.safetensors";
  std::string dst = dir + "/model.safetensors";
  FILE* in = fopen(src.c_str(), "rb");
  FILE* out = fopen(dst.c_str(), "wb");
  if (!in || !out) __builtin_trap();
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
  return dir;
}

void walk(const xmodal::Config& c, int depth) {
  if (depth > 8) return;
  for (auto it = c.json().begin(); it != c.json().end(); ++it) {
    const std::string& k = it.key();
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_int(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_int(k, -5, 1 << 20));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_float(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_bool(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_string(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_ints(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.get_floats(k));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.int_or(k, 1));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS((void)c.string_or(k, "x"));
    XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS(walk(c.sub(k), depth + 1));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = make_dir();
  const std::string cfg = dir + "/config.json";
  FILE* f = fopen(cfg.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size) fwrite(data, 1, size, f);
  fclose(f);
  XMODAL_FUZZ_EXPECT_ONLY_TYPED_ERRORS({
    xmodal::ModelDir m = xmodal::ModelDir::open(dir);
    walk(m.config, 0);
  });
  return 0;
}
