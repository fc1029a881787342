"""The xmodal audio front end, in numpy (float64), exactly as encoders/audio.cpp computes it.

Used by the sentiment data generator (features for training) and by the fixture script (which
also checks it against torch.stft). The definitions here are the specification:

Resampling (any rate -> 16 kHz), windowed-sinc interpolation at exact rational positions:
  g = gcd(sr_in, sr_out), L = sr_out / g, M = sr_in / g
  output n sits at input time t_n = n * M / L (input samples); N_out = ceil(N_in * L / M)
  r = ROLLOFF * min(sr_in, sr_out) / sr_in       (cutoff as a fraction of the input rate x2)
  h(t) = r * sinc(r t) * kaiser(t / W),  W = ZEROS / r  (half-width in input samples),
  kaiser(u) = I0(BETA sqrt(1 - u^2)) / I0(BETA) for |u| < 1, else 0
  y[n] = sum_k x[k] h(t_n - k) over 0 <= k < N_in (samples outside the signal are zero)
  Same rate: the samples pass through unchanged.

Log-mel (Whisper-like framing, HTK mel scale):
  n_fft = 400 (25 ms), hop = 160 (10 ms), periodic Hann window of 400,
  centred frames: the signal is reflect-padded by n_fft/2 on both sides (torch.stft center=True),
  frames = 1 + N // hop, power = |rfft|^2 (201 bins),
  80 triangular HTK mel filters over 0..8000 Hz, no area normalisation
  (mel(f) = 2595 log10(1 + f/700); band edges equally spaced in mel; filter weights are the
  triangle evaluated at the bin frequencies k * 16000 / 400),
  logmel = ln(max(mel_power, 1e-10)), laid out [frames, 80].
"""
import math

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
F_MIN = 0.0
F_MAX = 8000.0
LOG_FLOOR = 1e-10

ZEROS = 16
ROLLOFF = 0.945
BETA = 8.6


def resample(x, sr_in, sr_out=SAMPLE_RATE):
    """x [N] float -> [ceil(N * sr_out / sr_in)] float64."""
    x = np.asarray(x, dtype=np.float64)
    if sr_in == sr_out:
        return x.copy()
    g = math.gcd(sr_in, sr_out)
    L, M = sr_out // g, sr_in // g
    n_in = len(x)
    n_out = (n_in * L + M - 1) // M
    r = ROLLOFF * min(sr_in, sr_out) / sr_in
    W = ZEROS / r
    K = int(math.ceil(W)) + 1
    j = np.arange(-K, K + 1)
    # table[p, j + K] = h(p / L - j)
    d = np.arange(L)[:, None] / L - j[None, :]
    u = d / W
    inside = np.abs(u) < 1.0
    win = np.where(inside, np.i0(BETA * np.sqrt(np.clip(1.0 - u * u, 0.0, None))) / np.i0(BETA), 0.0)
    table = r * np.sinc(r * d) * win
    n = np.arange(n_out, dtype=np.int64)
    base = (n * M) // L
    phase = (n * M) % L
    idx = base[:, None] + j[None, :]
    valid = (idx >= 0) & (idx < n_in)
    xs = np.where(valid, x[np.clip(idx, 0, max(n_in - 1, 0))], 0.0)
    return np.einsum("nj,nj->n", xs, table[phase])


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank():
    """[N_MELS, N_FFT // 2 + 1] float64, HTK triangles, no normalisation."""
    n_freqs = N_FFT // 2 + 1
    freqs = np.arange(n_freqs) * (SAMPLE_RATE / N_FFT)
    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    fb = np.zeros((N_MELS, n_freqs))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    assert (fb.max(axis=1) > 0).all(), "an empty mel filter"
    return fb


def hann_periodic(n=N_FFT):
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def log_mel(x):
    """x [N] at 16 kHz (N > N_FFT // 2) -> [1 + N // HOP, N_MELS] float64."""
    x = np.asarray(x, dtype=np.float64)
    pad = N_FFT // 2
    if len(x) <= pad:
        raise ValueError(f"{len(x)} samples is too short for reflect padding of {pad}")
    xp = np.pad(x, (pad, pad), mode="reflect")
    n_frames = 1 + len(x) // HOP
    idx = np.arange(n_frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    frames = xp[idx] * hann_periodic()[None, :]
    spec = np.fft.rfft(frames, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filterbank().T
    return np.log(np.maximum(mel, LOG_FLOOR))


def read_wav_pcm16(path):
    """(samples float64 in [-1, 1) mono, sample_rate) of a 16-bit PCM WAV (espeak-ng output)."""
    import wave

    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, path
        ch, sr = w.getnchannels(), w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, sr


def write_wav_pcm16(path, x, sr):
    import wave

    y = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(y.tobytes())


def features_from_file(path):
    """A 16-bit WAV -> log-mel [T, 80] float64, through resample() like the C++ reader."""
    x, sr = read_wav_pcm16(path)
    return log_mel(resample(x, sr))
