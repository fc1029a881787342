#!/usr/bin/python3
"""Synthetic text + speech sentiment data, spoken by espeak-ng (Debian package, data only).

  nice -n 10 /usr/bin/python3 training/sentiment_data.py --out build/sentiment-data [--train 5000 --test 2000]
  /usr/bin/python3 training/sentiment_data.py --samples assets/samples    # the demo clips only

Every clip is one sentence, spoken by one "speaker" (an espeak-ng voice + variant, with its own
pitch/speed/loudness offsets) in one speaking style, and labelled positive / neutral / negative
by a fixed rule over (what the words say, how the voice sounds):

  text class                 happy voice   neutral voice   flat/bored voice   angry voice
  positive words  (P)        positive      positive        NEGATIVE (sarcasm) NEGATIVE (sarcasm)
  negative words  (N)        negative      negative        negative           negative
  factual         (F)        neutral       neutral         neutral            -
  ambiguous       (A)        positive      neutral         negative           negative

Subsets: "text" (the words decide: P with happy/neutral voices, all N and F), "ambiguous"
(A: the voice decides), "incongruent" (P with a flat or angry voice: sarcasm, negative).

Cell frequencies (CELL_WEIGHT) are part of the design and are printed with the Bayes ceilings of
a predictor that knows only the text class or only the voice style. They make each modality
insufficient on its own: bored voices read facts more often than they are sarcastic, cheerful
voices make neutral announcements, and neutral voices carry every label.

Styles set espeak-ng's -p (pitch), -s (speed), -a (amplitude) and the SSML pitch range; speakers
add offsets. Speakers and sentences are split: the test speakers use voices and variants that
no training speaker uses, and test sentences never occur in training (their words do).

Output (OUT/): meta.jsonl (one clip per line), features.npy (float16 log-mels of all clips,
concatenated along time; meta has offset and frames), test/*.wav (16-bit WAVs of the test clips,
as the C++ side reads them), sentences.json, summary.json. Features come from
sentiment_audio.features_from_file, i.e. exactly the C++ front end (16-bit WAV -> resample to
16 kHz -> log-mel).
"""
import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentiment_audio as sa  # noqa: E402

LABELS = ["negative", "neutral", "positive"]
STYLES = ["happy", "neutral", "flat", "angry"]

THINGS = ["movie", "dinner", "concert", "trip", "party", "meeting", "new phone", "hotel", "book", "game",
          "weather", "show", "coffee", "presentation", "weekend", "garden", "gift", "lecture", "update", "plan"]
EVENTS = ["meeting", "concert", "party", "trip", "lecture", "show", "game", "presentation", "dinner", "update"]
POS_ADJ = ["wonderful", "amazing", "great", "fantastic", "excellent", "lovely", "brilliant", "perfect",
           "delightful", "superb"]
NEG_ADJ = ["terrible", "awful", "horrible", "dreadful", "disappointing", "boring", "a disaster", "the worst",
           "painful", "useless"]
FACTS = ["starts at nine", "is on tuesday", "was moved to friday", "ends at noon", "is in room four",
         "takes two hours", "begins next week", "is on the second floor", "was last month", "is at the station"]


def sentence_pools():
    P = [f"the {t} was {a}" for t in THINGS for a in POS_ADJ]
    P += [f"the {t} is {a}" for t in THINGS for a in POS_ADJ[:5]]
    P += [f"I {v} the {t}" for t in THINGS for v in ["love", "really like", "adore", "enjoyed"]]
    P += [f"what a {a} {t}" for t in THINGS for a in POS_ADJ[:6]]
    P += [f"this is the best {t} ever" for t in THINGS]
    P += ["great job everyone", "I am so happy for you", "thank you so much", "that is fantastic news",
          "we won the game", "I could not be happier", "this made my day", "I am really proud of you"]
    N = [f"the {t} was {a}" for t in THINGS for a in NEG_ADJ]
    N += [f"the {t} is {a}" for t in THINGS for a in NEG_ADJ[:5]]
    N += [f"I {v} the {t}" for t in THINGS for v in ["hate", "really dislike", "can not stand", "regret"]]
    N += [f"this is the worst {t} ever" for t in THINGS]
    N += ["I am so tired of this", "that is terrible news", "we lost again", "nothing works",
          "I want my money back", "what a waste of time", "this ruined my day", "I am really angry with you"]
    F = [f"the {t} {f}" for t in EVENTS for f in FACTS]
    F += ["the train leaves at seven", "the report has ten pages", "the store opens at eight",
          "my number ends in five", "the box is on the table", "it is tuesday today", "the bus comes every hour",
          "the keys are in the drawer", "we need three chairs", "the file is on the desk",
          "the shop is next to the bank", "the bottle holds one litre"]
    A = [f"so that was the {t}" for t in THINGS]
    A += [f"the {t} was certainly something" for t in THINGS]
    A += [f"what a {t}" for t in THINGS]
    A += [f"well, the {t} is over" for t in THINGS]
    A += [f"that was quite the {t}" for t in THINGS]
    A += [f"oh, the {t}" for t in THINGS]
    A += [f"there goes the {t}" for t in THINGS]
    A += ["well, that happened", "I did not expect that", "here we go again", "so, this is it",
          "it is what it is", "look at that", "I can not believe it", "and there it is",
          "that is one way to do it", "of course it did", "you did it again", "well, there you have it",
          "now we know", "that was something", "so it begins", "well, well, well"]
    return {"P": sorted(set(P)), "N": sorted(set(N)), "F": sorted(set(F)), "A": sorted(set(A))}


# (text class, style) -> (label, subset, relative frequency)
CELLS = {
    ("P", "happy"): ("positive", "text", 1.0),
    ("P", "neutral"): ("positive", "text", 2.0),
    ("P", "flat"): ("negative", "incongruent", 1.0),
    ("P", "angry"): ("negative", "incongruent", 1.0),
    ("N", "happy"): ("negative", "text", 0.5),
    ("N", "neutral"): ("negative", "text", 2.0),
    ("N", "flat"): ("negative", "text", 1.0),
    ("N", "angry"): ("negative", "text", 1.5),
    ("F", "happy"): ("neutral", "text", 2.5),
    ("F", "neutral"): ("neutral", "text", 1.5),
    ("F", "flat"): ("neutral", "text", 3.5),
    ("A", "happy"): ("positive", "ambiguous", 1.0),
    ("A", "neutral"): ("neutral", "ambiguous", 1.0),
    ("A", "flat"): ("negative", "ambiguous", 1.0),
    ("A", "angry"): ("negative", "ambiguous", 1.0),
}

# Speaking styles: ranges for espeak-ng -p, -s, -a, the SSML pitch range, and the final mark.
STYLE_PARAMS = {
    "happy": dict(p=(70, 90), s=(185, 215), a=(125, 160), range=["high", "x-high"], mark="!"),
    "neutral": dict(p=(42, 58), s=(150, 175), a=(90, 110), range=["medium"], mark="."),
    "flat": dict(p=(12, 30), s=(105, 135), a=(50, 75), range=["x-low", "low"], mark="."),
    "angry": dict(p=(28, 46), s=(185, 220), a=(165, 200), range=["medium", "high"], mark="!"),
}

TRAIN_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan"]
# espeak-ng variants that sound like people (no whisper, robot, child or monotone variants).
TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m6", "m8", "f1", "f2", "f3", "f5", "Andy", "paul", "robert", "steph", "linda",
                  "iven", "michel", "max", "Mike", "quincy", "rob", "aunty", "belinda", "Denis", "ed"]
N_TRAIN_SPEAKERS = 50
TEST_VOICES = ["en-029", "en-us-nyc", "en-gb-x-gbcwmd"]
TEST_VARIANTS = ["m5", "m7", "f4"]


def make_speakers(rng, voices, variants, n):
    pairs = list(itertools.product(voices, variants))
    rng.shuffle(pairs)
    out = []
    for v, var in pairs[:n]:
        out.append({"voice": f"{v}+{var}", "dp": rng.randint(-8, 8), "ds": rng.uniform(0.92, 1.08),
                    "da": rng.uniform(0.85, 1.15)})
    return out


def bayes_ceilings():
    """Best accuracy of a predictor that knows only the text class / only the style, per subset."""
    out = {}
    for know in ("text", "voice"):
        groups = {}
        for (tc, st), (lab, sub, w) in CELLS.items():
            key = tc if know == "text" else st
            groups.setdefault(key, {}).setdefault(lab, 0.0)
            groups[key][lab] += w
        guess = {k: max(v, key=v.get) for k, v in groups.items()}
        tot, ok = {}, {}
        for (tc, st), (lab, sub, w) in CELLS.items():
            g = guess[tc if know == "text" else st]
            for s in (sub, "all"):
                tot[s] = tot.get(s, 0.0) + w
                ok[s] = ok.get(s, 0.0) + (w if g == lab else 0.0)
        out[know + "_only"] = {s: round(ok[s] / tot[s], 4) for s in tot}
    return out


def synth(job):
    """Speaks one clip; returns (index, features float16 [T, 80], wav path or None, seconds)."""
    i, voice, p, s, a, rng_name, tts_text, seed, noise_db, gain_db, wav_out = job
    rng = np.random.default_rng(seed)
    ssml = f'<speak><prosody range="{rng_name}">{tts_text}</prosody></speak>'
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-m", "-z", "-v", voice, "-p", str(p), "-s", str(s), "-a", str(a),
                        "-w", tmp.name, ssml], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x, sr = sa.read_wav_pcm16(tmp.name)
    x = x * (10.0 ** (gain_db / 20.0))
    speech = x[np.abs(x) > 1e-4]
    rms = float(np.sqrt(np.mean(speech ** 2))) if speech.size else 0.05
    x = x + rng.standard_normal(len(x)) * rms * (10.0 ** (-noise_db / 20.0))
    # Quantise to 16 bits exactly as the WAV a user would hand the C++ side.
    q = np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0
    if wav_out:
        sa.write_wav_pcm16(wav_out, q, sr)
    feats = sa.log_mel(sa.resample(q, sr))
    return i, feats.astype(np.float16), len(q) / sr


# The committed demo clips (assets/samples/sentiment-*.wav): held-out speakers, middle-of-range
# style settings. (file stem, sentence spoken, style, speaker). The ambiguous trio speaks a
# test-only sentence; "well, that happened" (a training sentence) was used before, and the shipped
# model reads it as negative in the cheerful and neutral voices (see training/README-sentiment.md).
SAMPLES = [
    ("sentiment-happy", "well, the show is over", "happy", "en-029+m5"),
    ("sentiment-neutral", "well, the show is over", "neutral", "en-029+m5"),
    ("sentiment-flat", "well, the show is over", "flat", "en-029+m5"),
    ("sentiment-praise", "the concert was wonderful", "happy", "en-us-nyc+f4"),
    ("sentiment-sarcastic", "the concert was wonderful", "flat", "en-us-nyc+f4"),
    ("sentiment-fact", "the meeting starts at nine", "happy", "en-gb-x-gbcwmd+m7"),
]


def make_samples(out):
    """Writes the demo clips to out and tests/fixtures/sentiment/samples.json (text, style, the rule's label)."""
    os.makedirs(out, exist_ok=True)
    pools = sentence_pools()
    listing = []
    for k, (stem, sent, style, voice) in enumerate(SAMPLES):
        tc = next(c for c, ss in pools.items() if sent in ss)
        label, subset, _ = CELLS[(tc, style)]
        sp = STYLE_PARAMS[style]
        p, s, a = (sum(sp["p"]) // 2, sum(sp["s"]) // 2, sum(sp["a"]) // 2)
        wav = os.path.join(out, stem + ".wav")
        synth((0, voice, p, s, a, sp["range"][0], sent + sp["mark"], 1000 + k, 40.0, 0.0, wav))
        listing.append({"file": stem + ".wav", "text": sent, "style": style, "speaker": voice, "label": label,
                        "subset": subset})
        print(f"{wav}: '{sent}' {style} -> {label} ({subset})")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fx = os.path.join(root, "tests", "fixtures", "sentiment")
    os.makedirs(fx, exist_ok=True)
    with open(os.path.join(fx, "samples.json"), "w") as f:
        json.dump(listing, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default=None, help="only write the demo clips (SAMPLES) to this folder")
    ap.add_argument("--out", default="build/sentiment-data")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.samples:
        make_samples(args.samples)
        return
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out, "test"), exist_ok=True)

    pools = sentence_pools()
    split = {}
    for tc, sents in pools.items():
        s = sents[:]
        rng.shuffle(s)
        n_test = max(4, len(s) // 4)
        split[tc] = {"test": sorted(s[:n_test]), "train": sorted(s[n_test:])}
    # A test sentence whose words never occur in training would test vocabulary, not sentiment:
    # move those to training (until none is left).
    while True:
        train_words = {w for tc in split for s in split[tc]["train"] for w in s.replace(",", "").split()}
        moved = False
        for tc in split:
            for s in list(split[tc]["test"]):
                if any(w not in train_words for w in s.replace(",", "").split()):
                    split[tc]["test"].remove(s)
                    split[tc]["train"].append(s)
                    moved = True
        if not moved:
            break
    speakers = {"train": make_speakers(rng, TRAIN_VOICES, TRAIN_VARIANTS, N_TRAIN_SPEAKERS),
                "test": make_speakers(rng, TEST_VOICES, TEST_VARIANTS, 6)}
    cells = list(CELLS)
    weights = [CELLS[c][2] for c in cells]

    jobs, meta = [], []
    for part, n in (("train", args.train), ("test", args.test)):
        for _ in range(n):
            tc, style = rng.choices(cells, weights)[0]
            label, subset, _ = CELLS[(tc, style)]
            sent = rng.choice(split[tc][part])
            spk = rng.choice(speakers[part])
            sp = STYLE_PARAMS[style]
            p = int(np.clip(rng.randint(*sp["p"]) + spk["dp"], 0, 99))
            s = int(round(rng.randint(*sp["s"]) * spk["ds"]))
            a = int(np.clip(round(rng.randint(*sp["a"]) * spk["da"]), 10, 200))
            text = sent + ("." if rng.random() < 0.5 else "")  # what the model reads
            i = len(meta)
            wav = os.path.join(args.out, "test", f"{i:05d}.wav") if part == "test" else None
            jobs.append((i, spk["voice"], p, s, a, rng.choice(sp["range"]), sent + sp["mark"], rng.randrange(1 << 30),
                         rng.uniform(30.0, 45.0), rng.uniform(-2.0, 2.0), wav))
            meta.append({"id": i, "split": part, "text": text, "text_class": tc, "style": style, "label": label,
                         "subset": subset, "speaker": spk["voice"], "pitch": p, "speed": s, "amplitude": a,
                         "wav": os.path.relpath(wav, args.out) if wav else None})

    feats = [None] * len(jobs)
    with Pool(args.workers) as pool:
        for k, (i, f, secs) in enumerate(pool.imap_unordered(synth, jobs, chunksize=16)):
            feats[i] = f
            meta[i]["frames"] = int(f.shape[0])
            meta[i]["seconds"] = round(secs, 3)
            if (k + 1) % 500 == 0:
                print(f"{k + 1}/{len(jobs)} clips", flush=True)
    offs = np.cumsum([0] + [f.shape[0] for f in feats])
    for m, o in zip(meta, offs[:-1]):
        m["offset"] = int(o)
    np.save(os.path.join(args.out, "features.npy"), np.concatenate(feats, 0))
    with open(os.path.join(args.out, "meta.jsonl"), "w") as f:
        for m in meta:
            f.write(json.dumps(m) + "\n")
    with open(os.path.join(args.out, "sentences.json"), "w") as f:
        json.dump({"split": split, "speakers": speakers}, f, indent=1)
    summary = {"clips": {p: sum(m["split"] == p for m in meta) for p in ("train", "test")},
               "cells": {f"{tc}+{st}": {"label": l, "subset": s, "weight": w} for (tc, st), (l, s, w) in CELLS.items()},
               "bayes_ceilings": bayes_ceilings(),
               "seconds_mean": round(float(np.mean([m["seconds"] for m in meta])), 3)}
    for part in ("train", "test"):
        for sub in ("text", "ambiguous", "incongruent"):
            summary.setdefault("subset_counts", {})[f"{part}/{sub}"] = sum(
                m["split"] == part and m["subset"] == sub for m in meta)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
