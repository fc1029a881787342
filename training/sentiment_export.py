#!/usr/bin/python3
"""Exports the trained text+audio sentiment model as an xmodal model directory.

  /usr/bin/python3 training/sentiment_export.py --run build/sentiment-run --out assets/models/sentiment

Writes OUT/config.json (architecture "xmodal-sentiment", sizes, the audio front end it was
trained on, labels, format_version, and the held-out results of all three models),
OUT/model.safetensors (f32, keyed exactly by the PyTorch state-dict names) and OUT/tokenizer.model.
Only the fused model is exported; the baselines stay in the run directory (they are
reproduced by training/sentiment_train.py).
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentiment_audio as sa  # noqa: E402
import st  # noqa: E402
from sentiment_model import LABELS, SentimentModel, count_params  # noqa: E402

FORMAT_VERSION = 1


def model_config(cfg, results=None):
    out = {
        "architecture": "xmodal-sentiment",
        "format_version": FORMAT_VERSION,
        "labels": LABELS,
        "audio_features": {
            "sample_rate": sa.SAMPLE_RATE, "n_fft": sa.N_FFT, "hop_length": sa.HOP, "n_mels": sa.N_MELS,
            "f_min": sa.F_MIN, "f_max": sa.F_MAX, "mel_scale": "htk", "window": "hann_periodic",
            "log_floor": sa.LOG_FLOOR, "feature_mean": cfg["feature_mean"], "feature_std": cfg["feature_std"],
        },
        "conv_channels": cfg["conv_channels"],
        "conv_type": "conv1d",
        "conv_kernel": 3,
        "conv_stride": 2,
        "conv_padding": 1,
        "d_model": cfg["d_model"],
        "n_heads": cfg["n_heads"],
        "d_ff": cfg["d_ff"],
        "ffn_activation": "gelu_erf",
        "n_audio_layers": cfg["n_audio_layers"],
        "n_text_layers": cfg["n_text_layers"],
        "n_fusion_layers": cfg["n_fusion_layers"],
        "max_text_len": cfg["max_text_len"],
        "vocab_size": cfg["vocab_size"],
        "layer_norm_eps": cfg["ln_eps"],
        "audio_positions": "sinusoidal",
        "pooling": "mean_text",
        "mode": "fused",
        "pre_layer_norm": True,
    }
    if results:
        out["training"] = results
    return out


def load_exported(model_dir):
    """(model, config.json dict) of an exported directory, in PyTorch (for fixtures)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    af = cfg["audio_features"]
    tcfg = {"n_mels": af["n_mels"], "conv_channels": cfg["conv_channels"], "d_model": cfg["d_model"],
            "n_heads": cfg["n_heads"], "d_ff": cfg["d_ff"], "n_audio_layers": cfg["n_audio_layers"],
            "n_text_layers": cfg["n_text_layers"], "n_fusion_layers": cfg["n_fusion_layers"],
            "max_text_len": cfg["max_text_len"], "vocab_size": cfg["vocab_size"], "ln_eps": cfg["layer_norm_eps"],
            "feature_mean": af["feature_mean"], "feature_std": af["feature_std"], "mode": "fused"}
    m = SentimentModel(tcfg)
    m.load_state_dict(st.load_file(os.path.join(model_dir, "model.safetensors")))
    m.eval()
    return m, cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="build/sentiment-run")
    ap.add_argument("--out", default="assets/models/sentiment")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.run, "fused", "config.json")))
    model = SentimentModel(cfg)
    model.load_state_dict(torch.load(os.path.join(a.run, "fused", "model.pt"), map_location="cpu"))
    res = json.load(open(os.path.join(a.run, "results.json")))
    summary = {mode: {"params": r["params"], "test": {s: {k: v for k, v in m.items() if k != "confusion"}
                                                      for s, m in r["test"].items()}}
               for mode, r in res["models"].items()}
    summary = {"data": "training/sentiment_data.py (synthetic espeak-ng speech)",
               "recipe": {k: res["args"][k] for k in ("epochs", "batch", "lr", "seed")},
               "held_out_results": summary}
    os.makedirs(a.out, exist_ok=True)
    st.save_file({k: v.float() for k, v in model.state_dict().items()}, os.path.join(a.out, "model.safetensors"),
                 metadata={"format": "pt", "architecture": "xmodal-sentiment"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(model_config(cfg, summary), f, indent=1)
        f.write("\n")
    shutil.copy(os.path.join(a.run, "tokenizer.model"), os.path.join(a.out, "tokenizer.model"))
    size = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f"exported {count_params(model)} parameters to {a.out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
