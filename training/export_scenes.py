#!/usr/bin/python3
"""Exports a trained scenes model (a train_scenes.py run directory) as an xmodal model directory.

  /usr/bin/python3 training/export_scenes.py --run RUN_DIR --out assets/models/scenes [--note TEXT]

Writes OUT/config.json (architecture "xmodal-scenes", sizes, special ids, preprocessing,
format_version), OUT/model.safetensors (f32, keyed exactly by the PyTorch state-dict names) and
OUT/tokenizer.model. Reads RUN_DIR/model.pt (final weights) or else RUN_DIR/ckpt.pt.
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from scenes_model import ScenesModel, count_params  # noqa: E402
from train_scenes import SPECIALS, load_tokenizer  # noqa: E402

FORMAT_VERSION = 1


def model_config(cfg, sp, extra=None):
    """The config.json written beside the weights. Everything the C++ side needs is here."""
    out = {
        "architecture": "xmodal-scenes",
        "format_version": FORMAT_VERSION,
        # image encoder
        "image_size": cfg["image_size"],
        "coord_channels": True,           # input = 3 normalised RGB + x, y in [-1, 1]
        "conv_channels": cfg["conv_channels"],
        "conv_strides": cfg["conv_strides"],
        "conv_kernel": 3,
        "conv_padding": 1,
        "conv_activation": "relu",
        "grid_size": None,                # filled below
        # transformer
        "d_model": cfg["d_model"],
        "n_heads": cfg["n_heads"],
        "d_ff": cfg["d_ff"],
        "ffn_activation": "gelu_erf",
        "n_enc_layers": cfg["n_enc_layers"],
        "n_dec_layers": cfg["n_dec_layers"],
        "max_len": cfg["max_len"],
        "vocab_size": cfg["vocab_size"],
        "layer_norm_eps": cfg["ln_eps"],
        "grid_layer_norm": bool(cfg.get("grid_ln", False)),  # img = LN(img_proj(conv)) + img_pos
        "pre_layer_norm": True,
        "tie_word_embeddings": True,      # logits = dec_ln(x) @ tok_emb.weight^T
        "special_ids": dict(SPECIALS),
        "prompt": {"vqa": "<bos> question <sep>", "caption": "<bos> <cap> <sep>"},
        "preprocessing": {"size": cfg["image_size"], "resample": "bicubic", "rescale": 1.0 / 255.0,
                          "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "tokenizer": {"file": "tokenizer.model", "normalization": "nmt_nfkc_cf (case-folding)"},
    }
    g = cfg["image_size"]
    for s in cfg["conv_strides"]:
        g = (g + 2 - 3) // s + 1
    out["grid_size"] = g
    if sp.get_piece_size() != cfg["vocab_size"]:
        raise SystemExit(f"tokenizer has {sp.get_piece_size()} pieces, config says {cfg['vocab_size']}")
    if extra:
        out["training"] = extra
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="", help="free text stored under config.json 'training'")
    args = ap.parse_args()

    with open(os.path.join(args.run, "config.json")) as f:
        cfg = json.load(f)
    final = os.path.join(args.run, "model.pt")
    sd = torch.load(final) if os.path.exists(final) else torch.load(os.path.join(args.run, "ckpt.pt"))["model"]
    model = ScenesModel(cfg)
    model.load_state_dict(sd)  # strict: names and shapes must match the definition
    sp = load_tokenizer(os.path.join(args.run, "tokenizer.model"))

    os.makedirs(args.out, exist_ok=True)
    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    st.save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    extra = {"params": count_params(model)}
    if args.note:
        extra["note"] = args.note
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(model_config(cfg, sp, extra), f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(args.run, "tokenizer.model"), os.path.join(args.out, "tokenizer.model"))
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"exported {len(tensors)} tensors, {count_params(model)} params, {size / 1e6:.2f} MB to {args.out}")


if __name__ == "__main__":
    main()
