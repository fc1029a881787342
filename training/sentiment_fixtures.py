#!/usr/bin/python3
"""Test fixtures for the audio front end and the sentiment model.

  /usr/bin/python3 training/sentiment_fixtures.py audio   # -> tests/fixtures/audio/
  /usr/bin/python3 training/sentiment_fixtures.py model   # -> tests/fixtures/sentiment/ (needs assets/models/sentiment)

audio: small audio files in many containers and sample formats (WAV 8/16/24/32-bit int and
32-bit float, 1/2/6 channels, 8 to 96001 Hz, FLAC, OGG Vorbis) plus bad files, and
expected.safetensors holding, per good case, the 16 kHz mono samples ("<case>.samples", from
sentiment_audio.resample, float64 -> f32) and the log-mel ("<case>.logmel", computed here with
torch.stft in float64 plus the HTK filterbank of sentiment_audio). cases.json describes each file.
The numpy log_mel of sentiment_audio (the training front end) is checked against torch.stft here.
Needs espeak-ng and sox (Debian) to make the speech clip and the FLAC/OGG/float files.

model: for the shipped model (assets/models/sentiment), a few (text, clip) pairs with every
intermediate tensor of the PyTorch forward pass (sentiment_model.py): the normalised log-mel,
the audio memory, the text states, the fused states, the logits, the probabilities and the last
fusion layer's head-averaged cross-attention probabilities, in tests/fixtures/sentiment/.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import sentiment_audio as sa  # noqa: E402
import st  # noqa: E402


# ------------------------------------------------------------------ audio

def torch_log_mel(x):
    """The independent reference: torch.stft (float64, center=True, reflect) + filterbank."""
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    win = torch.hann_window(sa.N_FFT, periodic=True, dtype=torch.float64)
    spec = torch.stft(t, sa.N_FFT, hop_length=sa.HOP, win_length=sa.N_FFT, window=win, center=True,
                      pad_mode="reflect", return_complex=True)  # [201, T]
    power = spec.abs() ** 2
    fb = torch.from_numpy(sa.mel_filterbank())
    mel = fb @ power  # [80, T]
    return torch.log(torch.clamp(mel, min=sa.LOG_FLOOR)).T.numpy()


def tones(sr, seconds, seed, f0=140.0):
    """A speech-like test signal: a gliding harmonic tone, a noise burst and a short gap."""
    rng = np.random.default_rng(seed)
    n = int(round(sr * seconds))
    t = np.arange(n) / sr
    f = f0 * (1.0 + 0.3 * np.sin(2 * np.pi * 1.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, 12) if k * f0 * 1.3 < sr / 2)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    burst = (t > seconds * 0.55) & (t < seconds * 0.7)
    x = np.where(burst, 0.2 * rng.standard_normal(n), x)
    gap = (t > seconds * 0.75) & (t < seconds * 0.8)
    x = np.where(gap, 0.0, x)
    return x + 0.003 * rng.standard_normal(n)


def write_pcm(path, x, sr, width):
    """x [N] or [N, C] in [-1, 1] -> integer PCM WAV (width bytes; 1 = unsigned 8-bit).
    Returns the float values libsndfile will decode (int / 2^(bits-1))."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    bits = 8 * width
    scale = 2.0 ** (bits - 1)
    q = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
    if width == 1:
        raw = (q + 128).astype(np.uint8).tobytes()
    elif width == 3:
        u = (q & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        raw = u.tobytes()
    else:
        raw = q.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(path, "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(sr)
        w.writeframes(raw)
    return (q / scale).astype(np.float32)


def expected_mono(decoded):
    """[N, C] float32 decoded samples -> float32 mono (mean in float64, like the C++ downmix)."""
    d = np.asarray(decoded, dtype=np.float32)
    if d.ndim == 1:
        return d
    return d.astype(np.float64).mean(axis=1).astype(np.float32)


def sox(*args):
    subprocess.run(["sox", *args], check=True)


def make_audio(out):
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    cases, tensors = [], {}

    def add(name, file, fmt, encoding, sr, channels, decoded, tol, exact=True, note=""):
        mono = expected_mono(decoded)
        y = sa.resample(mono.astype(np.float64), sr).astype(np.float32)
        lm = torch_log_mel(y.astype(np.float64)).astype(np.float32)
        np_lm = sa.log_mel(y.astype(np.float64))
        d = float(np.abs(np_lm - lm).max())
        assert d < 1e-4, f"{name}: numpy log_mel differs from torch.stft by {d}"
        if exact:
            tensors[name + ".samples"] = torch.from_numpy(y)
        tensors[name + ".logmel"] = torch.from_numpy(lm)
        frames = len(decoded)
        cases.append({"name": name, "file": file, "format": fmt, "encoding": encoding, "sample_rate": sr,
                      "channels": channels, "frames": frames, "samples_16k": len(y), "logmel_frames": lm.shape[0],
                      "exact": exact, "tolerance": tol, "note": note})
        print(f"{name:28s} {file:28s} {sr:6d} Hz x{channels}  {frames} frames -> {len(y)} @16k, "
              f"{lm.shape[0]} mel frames, numpy vs torch {d:.1e}")

    tmp = tempfile.mkdtemp()
    # 1. espeak-ng speech, its native 22050 Hz 16-bit mono
    sp = os.path.join(out, "speech_22050_s16.wav")
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-p", "60", "-s", "175", "-w", os.path.join(tmp, "sp.wav"),
                    "well, that happened"], check=True)
    x, sr = sa.read_wav_pcm16(os.path.join(tmp, "sp.wav"))
    x = x + 0.002 * np.random.default_rng(1).standard_normal(len(x))  # no digital silence
    dec = write_pcm(sp, x, sr, 2)
    add("speech_22050_s16", os.path.basename(sp), "WAV", "Signed 16 bit PCM", sr, 1, dec, 2e-6,
        note="espeak-ng speech, resampled 22050 -> 16000")
    # 2. stereo 44.1 kHz 16-bit: two different channels, downmixed
    st2 = np.stack([tones(44100, 0.3, 2), tones(44100, 0.3, 3, f0=220.0)], 1) * 0.8
    dec = write_pcm(os.path.join(out, "tones_44100_stereo_s16.wav"), st2, 44100, 2)
    add("tones_44100_stereo_s16", "tones_44100_stereo_s16.wav", "WAV", "Signed 16 bit PCM", 44100, 2, dec, 2e-6)
    # 3. 24-bit at 16 kHz (no resampling)
    dec = write_pcm(os.path.join(out, "tones_16000_s24.wav"), tones(16000, 0.5, 4), 16000, 3)
    add("tones_16000_s24", "tones_16000_s24.wav", "WAV", "Signed 24 bit PCM", 16000, 1, dec, 1e-6)
    # 4. unsigned 8-bit at 8 kHz (upsampling)
    dec = write_pcm(os.path.join(out, "tones_8000_u8.wav"), tones(8000, 0.5, 5), 8000, 1)
    add("tones_8000_u8", "tones_8000_u8.wav", "WAV", "Unsigned 8 bit PCM", 8000, 1, dec, 2e-6)
    # 5. six channels of 32-bit int at 32 kHz
    six = np.stack([tones(32000, 0.2, 10 + c, f0=100.0 + 30 * c) * 0.5 for c in range(6)], 1)
    dec = write_pcm(os.path.join(out, "tones_32000_6ch_s32.wav"), six, 32000, 4)
    add("tones_32000_6ch_s32", "tones_32000_6ch_s32.wav", "WAV", "Signed 32 bit PCM", 32000, 6, dec, 2e-6)
    # 6. 32-bit float WAV at 48 kHz (sox widens 16-bit samples exactly)
    src = os.path.join(tmp, "f.wav")
    dec = write_pcm(src, tones(48000, 0.4, 6) * 1.2, 48000, 2)
    sox(src, "-e", "floating-point", "-b", "32", os.path.join(out, "tones_48000_f32.wav"))
    add("tones_48000_f32", "tones_48000_f32.wav", "WAV", "32 bit float", 48000, 1, dec, 2e-6)
    # 7. an odd rate whose exact phase table is too big: the interpolated path
    dec = write_pcm(os.path.join(out, "tones_96001_s16.wav"), tones(96001, 0.2, 7), 96001, 2)
    add("tones_96001_s16", "tones_96001_s16.wav", "WAV", "Signed 16 bit PCM", 96001, 1, dec, 1e-5,
        note="4096-phase interpolated taps")
    # 8. FLAC, stereo 44.1 kHz (lossless: same samples as the 16-bit source)
    src = os.path.join(tmp, "fl.wav")
    dec = write_pcm(src, np.stack([tones(44100, 0.4, 8), tones(44100, 0.4, 9, f0=90.0)], 1), 44100, 2)
    sox(src, os.path.join(out, "tones_44100_stereo.flac"))
    add("tones_44100_stereo_flac", "tones_44100_stereo.flac", "FLAC", "Signed 16 bit PCM", 44100, 2, dec, 2e-6)
    # 9. OGG Vorbis (lossy): only the length and the log-mel roughly (checked by SNR in the test)
    src = os.path.join(tmp, "ov.wav")
    dec = write_pcm(src, x, 22050, 2)
    sox(src, "-C", "6", os.path.join(out, "speech_22050.ogg"))
    add("speech_22050_ogg", "speech_22050.ogg", "OGG", "Vorbis", 22050, 1, dec, 0.0, exact=False,
        note="lossy: the test checks length and log-mel agreement on loud bins, not samples")

    # Bad files: (file, what the one-line message must contain)
    bad = []
    open(os.path.join(out, "bad_empty.wav"), "wb").close()
    bad.append(("bad_empty.wav", "empty"))
    with open(os.path.join(out, "bad_text.wav"), "w") as f:
        f.write("this is not a sound file, just some text that happens to end in .wav\n" * 4)
    bad.append(("bad_text.wav", "not a readable audio file"))
    with open(sp, "rb") as f:
        whole = f.read()
    with open(os.path.join(out, "bad_truncated_header.wav"), "wb") as f:
        f.write(whole[:30])
    bad.append(("bad_truncated_header.wav", "not a readable audio file"))
    with open(os.path.join(out, "bad_truncated_data.wav"), "wb") as f:
        f.write(whole[:44 + (len(whole) - 44) // 3])
    bad.append(("bad_truncated_data.wav", "truncated"))
    write_pcm(os.path.join(out, "bad_no_samples.wav"), np.zeros(0), 16000, 2)
    bad.append(("bad_no_samples.wav", "no audio samples"))
    write_pcm(os.path.join(out, "bad_too_short.wav"), tones(16000, 0.02, 11), 16000, 2)
    bad.append(("bad_too_short.wav", "at least 0.1 s"))
    src = os.path.join(tmp, "nan.wav")
    write_pcm(src, tones(16000, 0.3, 12), 16000, 2)
    sox(src, "-e", "floating-point", "-b", "32", os.path.join(tmp, "nanf.wav"))
    with open(os.path.join(tmp, "nanf.wav"), "rb") as f:
        b = bytearray(f.read())
    data = b.index(b"data") + 8
    b[data + 4 * 1000:data + 4 * 1001] = np.array([np.nan], dtype="<f4").tobytes()
    with open(os.path.join(out, "bad_nan_f32.wav"), "wb") as f:
        f.write(bytes(b))
    bad.append(("bad_nan_f32.wav", "non-finite sample at frame 1000"))
    with open(os.path.join(out, "tones_44100_stereo.flac"), "rb") as f:
        fl = f.read()
    with open(os.path.join(out, "bad_truncated.flac"), "wb") as f:
        f.write(fl[:len(fl) // 2])
    bad.append(("bad_truncated.flac", "truncated"))
    with open(os.path.join(out, "bad_garbage.ogg"), "wb") as f:
        f.write(b"OggS" + np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    bad.append(("bad_garbage.ogg", "not a readable audio file"))
    shutil.rmtree(tmp)

    st.save_file(tensors, os.path.join(out, "expected.safetensors"),
                 metadata={"made_by": "training/sentiment_fixtures.py audio"})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"good": cases, "bad": [{"file": a, "message": m} for a, m in bad],
                   "logmel_tolerance": 1e-3}, f, indent=1)
    print(f"wrote {len(cases)} good and {len(bad)} bad cases to {out}")


# ------------------------------------------------------------------ model

def make_model(out, model_dir):
    """Every stage of the exported model on the demo clips, computed in float64 with PyTorch."""
    import sentencepiece as spm

    from sentiment_export import load_exported  # noqa: E402

    os.makedirs(out, exist_ok=True)
    model, cfg = load_exported(model_dir)
    model = model.double()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    samples = json.load(open(os.path.join(ROOT, "tests", "fixtures", "sentiment", "samples.json")))
    tensors, cases = {}, []
    # The demo clips with their own text, plus the happy/flat clips read with other words
    # (the same voice, different meaning) and an unseen-word text.
    pairs = [(s["file"], s["text"]) for s in samples]
    pairs += [("sentiment-flat.wav", "the concert was wonderful."), ("sentiment-happy.wav", "I hate the movie"),
              ("sentiment-neutral.wav", "Zebras eat QUICKLY, don't they?")]
    for k, (wav, text) in enumerate(pairs):
        feats = sa.features_from_file(os.path.join(ROOT, "assets", "samples", wav))  # float64 [T, 80]
        ids = sp.encode(text)
        with torch.no_grad():
            f = torch.from_numpy(feats)[None]
            logits, o = model(torch.tensor([ids]), torch.tensor([len(ids)]), f, torch.tensor([f.shape[1]]),
                              return_all=True)
        name = f"case{k}"
        tensors[name + ".logmel"] = torch.from_numpy(feats).float()
        tensors[name + ".ids"] = torch.tensor(ids, dtype=torch.int64)
        tensors[name + ".memory"] = o["memory"].float()
        tensors[name + ".text"] = o["text"].float()
        tensors[name + ".fused"] = o["fused"].float()
        tensors[name + ".logits"] = logits[0].float()
        tensors[name + ".attention"] = o["attention"][0].float()
        probs = logits[0].softmax(-1)
        pred = cfg["labels"][int(probs.argmax())]
        cases.append({"name": name, "wav": wav, "text": text, "pieces": sp.encode(text, out_type=str),
                      "label": pred, "probabilities": [round(float(p), 6) for p in probs]})
        print(f"{name}: {wav:26s} '{text}' -> {pred} {[round(float(p), 3) for p in probs]}")
    st.save_file(tensors, os.path.join(out, "model_dump.safetensors"),
                 metadata={"made_by": "training/sentiment_fixtures.py model", "precision": "float64 reference"})
    with open(os.path.join(out, "model_dump.json"), "w") as f:
        json.dump({"model": os.path.relpath(model_dir, ROOT), "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["audio", "model"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--model", default=os.path.join(ROOT, "assets", "models", "sentiment"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.what == "audio":
        make_audio(a.out or os.path.join(ROOT, "tests", "fixtures", "audio"))
    else:
        make_model(a.out or os.path.join(ROOT, "tests", "fixtures", "sentiment"), a.model)


if __name__ == "__main__":
    main()
