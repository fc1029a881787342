// Resource limits for untrusted inputs (issue 9). One process-wide set, with defaults that suit
// a workstation; the CLI sets them from the flags every subcommand accepts (apps/subcommand:
// --max-pixels, --max-audio-seconds, --max-prompt-tokens, --max-new-tokens, --max-batch-mb) and
// the library reads them where the input is checked:
//   - image pixels:   encoders/image (ImageLoadOptions' default), from the header, before decoding;
//   - audio seconds:  encoders/audio (LoadOptions' default), from the header, before decoding;
//   - prompt tokens:  the models' question/prompt tokenization (pipeline/scenes_model, pipeline/blip):
//                     a longer question or prompt is REFUSED (InputError), never truncated, since
//                     answering a different question than the one asked would be silently wrong;
//   - new tokens:     the decoders (pipeline/vlm, pipeline/blip): asking for more is a UsageError;
//   - batch memory:   Vlm::encode (pipeline/vlm, pipeline/blip_vlm) estimates the bytes a batch
//                     needs (check_batch_memory) and refuses one over the limit (UsageError).
// Every refusal is one line that names the input and the flag that raises the limit.
#pragma once
#include <cstdint>
#include <string>

namespace xmodal {

struct Limits {
  static constexpr int64_t kDefaultMaxPixels = 50'000'000;  // 50 megapixels
  static constexpr double kDefaultMaxAudioSeconds = 60.0;
  static constexpr int kDefaultMaxPromptTokens = 128;
  static constexpr int kDefaultMaxNewTokens = 256;
  static constexpr int64_t kDefaultMaxBatchBytes = int64_t{4096} << 20;  // 4 GiB

  int64_t max_pixels = kDefaultMaxPixels;              // width * height of one image
  double max_audio_seconds = kDefaultMaxAudioSeconds;  // duration of one audio file
  int max_prompt_tokens = kDefaultMaxPromptTokens;     // tokens of one question or caption prompt
  int max_new_tokens = kDefaultMaxNewTokens;           // tokens one decoding may generate
  int64_t max_batch_bytes = kDefaultMaxBatchBytes;     // estimated working memory of one batch
};

// The current limits (the defaults until set_limits is called). Not synchronised: set them once,
// before any work starts (the CLI does so while parsing its flags).
const Limits& limits();
void set_limits(const Limits& l);

// InputError(subject, ...) when a question/prompt of n tokens is over limits().max_prompt_tokens.
// `what` is "question" or "prompt".
void check_prompt_tokens(int64_t n, const std::string& subject, const std::string& what = "question");

// UsageError when a decoding that may generate `n` new tokens is over limits().max_new_tokens.
void check_new_tokens(int64_t n);

// UsageError when a batch of `batch` items needing an estimated `bytes` in all is over
// limits().max_batch_bytes; the message gives the estimate per item and the largest batch that
// fits. `what` names the model, e.g. "blip-caption".
void check_batch_memory(int64_t batch, int64_t bytes, const std::string& what);

// "1.5 GiB" / "320 MiB" / "12 KiB" style size.
std::string bytes_str(double bytes);

}  // namespace xmodal
