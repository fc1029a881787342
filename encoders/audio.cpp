#include "encoders/audio.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <string>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal::audio {

namespace {

// Resampler constants (training/sentiment_audio.py: ZEROS, ROLLOFF, BETA).
constexpr int kZeros = 16;
constexpr double kRolloff = 0.945;
constexpr double kBeta = 8.6;
constexpr int kInterpPhases = 4096;
constexpr double kLogFloor = 1e-10;
constexpr double kPi = 3.14159265358979323846;

std::string fmt_seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, s < 10 ? "%.3g" : "%.1f", s);
  std::string r = b;
  if (r.size() > 2 && r.compare(r.size() - 2, 2, ".0") == 0 && s >= 10) r.resize(r.size() - 2);
  return r;
}

struct SfCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SfHandle = std::unique_ptr<SNDFILE, SfCloser>;

std::string format_name(int format, int mask) {
  SF_FORMAT_INFO fi{};
  fi.format = format & mask;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof fi) != 0 || !fi.name)
    return "format " + std::to_string(fi.format);
  std::string n = fi.name;
  // "WAV (Microsoft)" -> "WAV"
  if (auto p = n.find(" ("); p != std::string::npos && mask == SF_FORMAT_TYPEMASK) n.resize(p);
  return n;
}

// Modified Bessel function of the first kind, order 0 (power series; x <= ~20 here).
double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 200; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  const double a = kPi * x;
  return std::sin(a) / a;
}

// The double-precision mel filterbank [kMels, kNfft/2 + 1], plus each filter's non-zero range.
struct MelBank {
  std::vector<double> w;            // [kMels * nbins]
  std::vector<int> lo, hi;          // non-zero bins of filter m: [lo[m], hi[m])
  static constexpr int nbins = kNfft / 2 + 1;
};

const MelBank& mel_bank() {
  static const MelBank bank = [] {
    MelBank b;
    auto hz_to_mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
    auto mel_to_hz = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); };
    const double m_lo = hz_to_mel(0.0), m_hi = hz_to_mel(kSampleRate / 2.0);
    std::vector<double> edges(kMels + 2);
    for (int i = 0; i < kMels + 2; ++i) edges[i] = mel_to_hz(m_lo + (m_hi - m_lo) * i / (kMels + 1));
    b.w.assign(static_cast<size_t>(kMels) * MelBank::nbins, 0.0);
    b.lo.assign(kMels, MelBank::nbins);
    b.hi.assign(kMels, 0);
    for (int m = 0; m < kMels; ++m)
      for (int k = 0; k < MelBank::nbins; ++k) {
        const double f = k * (static_cast<double>(kSampleRate) / kNfft);
        const double up = (f - edges[m]) / (edges[m + 1] - edges[m]);
        const double down = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]);
        const double v = std::max(0.0, std::min(up, down));
        b.w[static_cast<size_t>(m) * MelBank::nbins + k] = v;
        if (v > 0.0) {
          b.lo[m] = std::min(b.lo[m], k);
          b.hi[m] = k + 1;
        }
      }
    return b;
  }();
  return bank;
}

}  // namespace

// ---------------------------------------------------------------- decoding

std::vector<float> decode_file(const std::string& path, AudioInfo& info, double max_seconds) {
  require_regular_file(path);  // missing, directory, FIFO, device -> InputError
  SF_INFO si{};
  SfHandle f(sf_open(path.c_str(), SFM_READ, &si));
  if (!f) {
    std::string why = sf_strerror(nullptr);
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) == 0 && !ec) why = "the file is empty";
    throw InputError(path, "not a readable audio file (" + why + ")");
  }
  info.format = format_name(si.format, SF_FORMAT_TYPEMASK);
  info.encoding = format_name(si.format, SF_FORMAT_SUBMASK);
  info.sample_rate = si.samplerate;
  info.channels = si.channels;
  if (si.channels < 1 || si.channels > kMaxChannels)
    throw InputError(path, "has " + std::to_string(si.channels) + " channels; 1 to " + std::to_string(kMaxChannels) +
                               " are supported");
  if (si.samplerate < kMinRate || si.samplerate > kMaxRate)
    throw InputError(path, "has a sample rate of " + std::to_string(si.samplerate) + " Hz; " + std::to_string(kMinRate) +
                               " to " + std::to_string(kMaxRate) + " Hz are supported");
  const bool known_length = si.frames >= 0 && si.frames < std::numeric_limits<sf_count_t>::max() / 2;
  const auto max_frames = static_cast<int64_t>(std::floor(max_seconds * si.samplerate));
  if (known_length && si.frames > max_frames)
    throw InputError(path, "is " + fmt_seconds(static_cast<double>(si.frames) / si.samplerate) + " s long, over the limit of " +
                               fmt_seconds(max_seconds) + " s (raise it with --max-audio-seconds)");
  if (known_length && si.frames == 0) throw InputError(path, "has no audio samples (" + info.format + ", 0 frames)");

  const int64_t ch = si.channels;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(known_length ? si.frames * ch : 0));
  std::vector<float> buf(static_cast<size_t>(4096 * ch));
  int64_t got = 0;
  for (;;) {
    const sf_count_t n = sf_readf_float(f.get(), buf.data(), 4096);
    if (n <= 0) break;
    got += n;
    if (got > max_frames)
      throw InputError(path, "is longer than the limit of " + fmt_seconds(max_seconds) +
                                 " s (raise it with --max-audio-seconds)");
    out.insert(out.end(), buf.begin(), buf.begin() + n * ch);
  }
  if (sf_error(f.get()) != SF_ERR_NO_ERROR)
    throw InputError(path, "is truncated or corrupt: cannot be decoded after frame " + std::to_string(got) + " (" +
                               sf_strerror(f.get()) + ")");
  if (known_length && got < si.frames)
    throw InputError(path, "is truncated: the header declares " + std::to_string(si.frames) + " frames, only " +
                               std::to_string(got) + " could be decoded");
  // libsndfile clamps a data chunk that runs past the end of the file and only logs it.
  {
    char log[4096] = {};
    sf_command(f.get(), SFC_GET_LOG_INFO, log, sizeof log);
    const std::string l = log;
    for (const char* marker : {"> file length", "greater than file", "truncated", "past end of file"})
      if (l.find(marker) != std::string::npos)
        throw InputError(path, "is truncated: its header declares more data than the file holds (" + info.format + ")");
  }
  if (got == 0) throw InputError(path, "has no audio samples (" + info.format + ")");
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i]))
      throw InputError(path, "has a non-finite sample at frame " + std::to_string(i / static_cast<size_t>(ch)));
  info.frames = got;
  return out;
}

std::vector<float> downmix(const std::vector<float>& x, int channels) {
  if (channels < 1 || x.size() % static_cast<size_t>(channels) != 0)
    throw InternalError("downmix: " + std::to_string(x.size()) + " samples is not a multiple of " +
                        std::to_string(channels) + " channels");
  if (channels == 1) return x;
  const size_t n = x.size() / static_cast<size_t>(channels);
  std::vector<float> y(n);
  for (size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int c = 0; c < channels; ++c) s += x[i * static_cast<size_t>(channels) + static_cast<size_t>(c)];
    y[i] = static_cast<float>(s / channels);
  }
  return y;
}

Audio load_audio(const std::string& path, const LoadOptions& opt) {
  Audio a;
  const std::vector<float> raw = decode_file(path, a.source, opt.max_seconds);
  if (a.source.seconds() < kMinSeconds)
    throw InputError(path, "is " + fmt_seconds(a.source.seconds()) + " s long; at least " + fmt_seconds(kMinSeconds) +
                               " s is needed");
  a.samples = resample(downmix(raw, a.source.channels), a.source.sample_rate, kSampleRate);
  return a;
}

// ---------------------------------------------------------------- resampling

std::vector<float> resample(const std::vector<float>& x, int sr_in, int sr_out) {
  for (int sr : {sr_in, sr_out})
    if (sr < kMinRate || sr > kMaxRate)
      throw InternalError("resample: sample rate " + std::to_string(sr) + " Hz outside [" + std::to_string(kMinRate) + ", " +
                          std::to_string(kMaxRate) + "]");
  if (sr_in == sr_out) return x;
  const int64_t g = std::gcd(sr_in, sr_out), L = sr_out / g, M = sr_in / g;
  const int64_t n_in = static_cast<int64_t>(x.size());
  const int64_t n_out = (n_in * L + M - 1) / M;
  const double r = kRolloff * std::min(sr_in, sr_out) / sr_in;  // cutoff x2, in cycles per input sample
  const double W = kZeros / r;                                   // window half-width, input samples
  const int64_t K = static_cast<int64_t>(std::ceil(W)) + 1, taps = 2 * K + 1;
  const double i0_beta = bessel_i0(kBeta);
  // table[p][j] = h(p / P - (j - K)), P phases over one input sample
  const bool exact = L * taps <= kMaxResampleTable;
  const int64_t P = exact ? L : kInterpPhases;
  std::vector<double> table(static_cast<size_t>((P + 1) * taps));
  for (int64_t p = 0; p <= P; ++p)
    for (int64_t j = 0; j < taps; ++j) {
      const double d = static_cast<double>(p) / static_cast<double>(P) - static_cast<double>(j - K);
      const double u = d / W;
      const double win = std::abs(u) < 1.0 ? bessel_i0(kBeta * std::sqrt(std::max(0.0, 1.0 - u * u))) / i0_beta : 0.0;
      table[static_cast<size_t>(p * taps + j)] = r * sinc(r * d) * win;
    }
  std::vector<float> y(static_cast<size_t>(n_out));
  std::vector<double> w(static_cast<size_t>(taps));
  for (int64_t n = 0; n < n_out; ++n) {
    const int64_t num = n * M, base = num / L, p = num % L;
    const double* tw;
    if (exact) {
      tw = &table[static_cast<size_t>(p * taps)];
    } else {
      const double pos = static_cast<double>(p) * P / static_cast<double>(L);
      const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(pos), P - 1);
      const double fr = pos - static_cast<double>(i0);
      const double* a = &table[static_cast<size_t>(i0 * taps)];
      const double* b = a + taps;
      for (int64_t j = 0; j < taps; ++j) w[static_cast<size_t>(j)] = a[j] + fr * (b[j] - a[j]);
      tw = w.data();
    }
    const int64_t j0 = std::max<int64_t>(0, K - base), j1 = std::min<int64_t>(taps, n_in - base + K);
    double acc = 0.0;
    for (int64_t j = j0; j < j1; ++j) acc += static_cast<double>(x[static_cast<size_t>(base + j - K)]) * tw[j];
    y[static_cast<size_t>(n)] = static_cast<float>(acc);
  }
  return y;
}

// ---------------------------------------------------------------- FFT

Fft::Fft(int n) : n_(n) {
  if (n < 1) throw InternalError("Fft: size " + std::to_string(n) + " < 1");
  for (int m = n, p = 2; m > 1;) {
    if (static_cast<int64_t>(p) * p > m) p = m;
    if (m % p == 0) {
      factors_.push_back(p);
      m /= p;
    } else {
      ++p;
    }
  }
  tw_.resize(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    const double a = -2.0 * kPi * j / n;
    tw_[static_cast<size_t>(j)] = {std::cos(a), std::sin(a)};
  }
}

void Fft::forward(const std::complex<double>* in, std::complex<double>* out) const { rec(in, out, n_, 1, 0); }

// Decimation in time: out [n] <- DFT of in[0], in[stride], ... (n values).
void Fft::rec(const std::complex<double>* in, std::complex<double>* out, int n, int stride, size_t fi) const {
  if (n == 1) {
    out[0] = in[0];
    return;
  }
  const int p = factors_[fi], m = n / p;
  for (int r = 0; r < p; ++r) rec(in + static_cast<ptrdiff_t>(r) * stride, out + static_cast<ptrdiff_t>(r) * m, m, stride * p, fi + 1);
  // out[r*m + k] holds Y_r[k]; X[k + q*m] = sum_r Y_r[k] W_n^{r k} W_p^{r q}. The p outputs of one
  // k occupy the same p slots as its p inputs, so each k is done in place through t[].
  const int step_n = n_ / n, step_p = n_ / p;
  std::complex<double> t[64];
  std::vector<std::complex<double>> big;
  std::complex<double>* tp = t;
  if (p > 64) {
    big.resize(static_cast<size_t>(p));
    tp = big.data();
  }
  for (int k = 0; k < m; ++k) {
    for (int r = 0; r < p; ++r)
      tp[r] = out[r * m + k] * tw_[static_cast<size_t>((static_cast<int64_t>(r) * k % n) * step_n)];
    if (p == 2) {
      out[k] = tp[0] + tp[1];
      out[k + m] = tp[0] - tp[1];
      continue;
    }
    for (int q = 0; q < p; ++q) {
      std::complex<double> s = tp[0];
      for (int r = 1; r < p; ++r) s += tp[r] * tw_[static_cast<size_t>((r * q % p) * step_p)];
      out[k + q * m] = s;
    }
  }
}

// ---------------------------------------------------------------- log-mel

Tensor mel_filterbank() {
  const MelBank& b = mel_bank();
  Tensor t = Tensor::empty({kMels, MelBank::nbins});
  for (size_t i = 0; i < b.w.size(); ++i) t.f32()[i] = static_cast<float>(b.w[i]);
  return t;
}

Tensor log_mel(const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size()), pad = kNfft / 2;
  if (n <= pad)
    throw InternalError("log_mel: " + std::to_string(n) + " samples; more than " + std::to_string(pad) + " are needed");
  const int64_t frames = 1 + n / kHop;
  const MelBank& bank = mel_bank();
  static const Fft fft(kNfft);
  static const std::vector<double> window = [] {
    std::vector<double> w(kNfft);
    for (int i = 0; i < kNfft; ++i) w[static_cast<size_t>(i)] = 0.5 - 0.5 * std::cos(2.0 * kPi * i / kNfft);
    return w;
  }();
  auto sample = [&](int64_t i) {  // reflect-padded signal, i in [0, n + 2 pad)
    int64_t s = i - pad;
    if (s < 0) s = -s;
    if (s >= n) s = 2 * (n - 1) - s;
    return static_cast<double>(x[static_cast<size_t>(s)]);
  };
  Tensor out = Tensor::empty({frames, kMels});
  float* o = out.f32();
#pragma omp parallel
  {
    std::vector<std::complex<double>> in(kNfft), spec(kNfft);
    std::vector<double> power(MelBank::nbins);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < frames; ++t) {
      for (int j = 0; j < kNfft; ++j) in[static_cast<size_t>(j)] = {sample(t * kHop + j) * window[static_cast<size_t>(j)], 0.0};
      fft.forward(in.data(), spec.data());
      for (int k = 0; k < MelBank::nbins; ++k) power[static_cast<size_t>(k)] = std::norm(spec[static_cast<size_t>(k)]);
      for (int m = 0; m < kMels; ++m) {
        double s = 0.0;
        const double* w = &bank.w[static_cast<size_t>(m) * MelBank::nbins];
        for (int k = bank.lo[static_cast<size_t>(m)]; k < bank.hi[static_cast<size_t>(m)]; ++k) s += w[k] * power[static_cast<size_t>(k)];
        o[t * kMels + m] = static_cast<float>(std::log(std::max(s, kLogFloor)));
      }
    }
  }
  return out;
}

}  // namespace xmodal::audio
