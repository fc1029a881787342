// Audio input: decode (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, AIFF, ... any channel count,
// sample rate and sample format), downmix to mono, resample to 16 kHz, and log-mel features.
//
// The numbers follow training/sentiment_audio.py, which is the specification (and the training
// front end); tests/test_audio.cpp checks this file against it and against torch.stft:
//
//   load_audio:  libsndfile -> float samples (integer formats scaled by 1/2^(bits-1), as
//                libsndfile does) -> mean over channels -> resample(sr -> 16000)
//   resample:    windowed-sinc (Kaiser, beta 8.6, 16 zero crossings, cutoff 0.945 of the lower
//                Nyquist) at exact rational positions n * sr_in / sr_out; a per-phase table of
//                taps (exact for every rate whose table is small, i.e. all the usual ones; for
//                odd rates whose table would pass kMaxResampleTable entries the taps come from a
//                4096-phase table with linear interpolation, error < 1e-6)
//   log_mel:     n_fft 400 (25 ms), hop 160 (10 ms), periodic Hann, centred frames with reflect
//                padding (torch.stft center=True), power |X|^2, 80 HTK mel filters 0..8000 Hz
//                without normalisation, ln(max(mel, 1e-10)) -> [frames, 80], frames = 1 + N/160
//   The DFT is a mixed-radix FFT in double precision.
//
// Every problem with an input file is an InputError naming the file: missing, a directory or
// other non-regular file, empty, not audio, an unsupported or corrupt encoding, truncated data,
// no samples, non-finite samples, too short (< kMinSeconds), or longer than max_seconds (checked
// from the header, before anything is decoded).
#pragma once
#include <complex>
#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.hpp"
#include "core/tensor.hpp"

namespace xmodal::audio {

constexpr int kSampleRate = 16000;
constexpr int kNfft = 400;
constexpr int kHop = 160;
constexpr int kMels = 80;
constexpr double kMinSeconds = 0.1;
constexpr double kDefaultMaxSeconds = Limits::kDefaultMaxAudioSeconds;  // 60 s (core/limits.hpp)
constexpr int kMinRate = 1000, kMaxRate = 768000;
constexpr int kMaxChannels = 256;
constexpr int64_t kMaxResampleTable = 1 << 21;  // entries (doubles) of an exact phase table

struct AudioInfo {
  std::string format;   // "WAV", "FLAC", "OGG", ... (libsndfile's major format name)
  std::string encoding; // "Signed 16 bit PCM", "Vorbis", ... (libsndfile's subtype name)
  int sample_rate = 0;  // of the file
  int channels = 0;
  int64_t frames = 0;   // per channel, as decoded
  double seconds() const { return sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0.0; }
};

struct Audio {
  std::vector<float> samples;  // mono, kSampleRate
  AudioInfo source;            // what the file held
  double seconds() const { return static_cast<double>(samples.size()) / kSampleRate; }
};

struct LoadOptions {
  // Longer files are refused before decoding. Defaults to the process-wide limit
  // (core/limits.hpp; the CLI's --max-audio-seconds).
  double max_seconds = limits().max_audio_seconds;
};

// Decodes a file to interleaved float frames without resampling: out [frames * channels].
// InputError(path, ...) for every problem listed above (except the length limits).
std::vector<float> decode_file(const std::string& path, AudioInfo& info, double max_seconds = limits().max_audio_seconds);

// Reads, downmixes and resamples to 16 kHz. InputError(path, ...) on any problem.
Audio load_audio(const std::string& path, const LoadOptions& opt = {});

// x [frames, channels] interleaved -> [frames] mean over channels
std::vector<float> downmix(const std::vector<float>& interleaved, int channels);

// x [N] at sr_in -> [ceil(N * sr_out / sr_in)] at sr_out; the same rate returns x unchanged.
// InternalError for a rate outside [kMinRate, kMaxRate].
std::vector<float> resample(const std::vector<float>& x, int sr_in, int sr_out = kSampleRate);

// Complex DFT of any size n >= 1 (mixed radix over n's prime factors), double precision,
// X[k] = sum_j x[j] exp(-2 pi i j k / n). One plan serves any number of transforms.
class Fft {
 public:
  explicit Fft(int n);
  int size() const { return n_; }
  // in [n] -> out [n] (distinct buffers); scratch-free, thread-safe.
  void forward(const std::complex<double>* in, std::complex<double>* out) const;

 private:
  void rec(const std::complex<double>* in, std::complex<double>* out, int n, int stride, size_t fi) const;
  int n_;
  std::vector<int> factors_;
  std::vector<std::complex<double>> tw_;  // exp(-2 pi i j / n), j < n
};

// [kMels, kNfft/2 + 1] HTK triangles (f32 copy of the double-precision filterbank)
Tensor mel_filterbank();

// x [N] mono at 16 kHz, N > kNfft/2 -> [1 + N/kHop, kMels] natural-log mel power.
// InternalError when N is too short for the reflect padding (load_audio refuses such files).
Tensor log_mel(const std::vector<float>& x);

}  // namespace xmodal::audio
