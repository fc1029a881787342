#!/usr/bin/python3
"""Writes the PyTorch reference for the C++ scenes model tests, from the shipped model.

  /usr/bin/python3 training/make_scenes_fixtures.py            (run from the repository root)

Reads assets/models/scenes (config.json, model.safetensors, tokenizer.model) and the sample
images assets/samples/scene-*.png, and writes tests/fixtures/scenes_model/:
  reference.safetensors  per sample i:  s{i}.resized  U8 [S, S, 3]  (PIL bicubic resize)
                                        s{i}.memory   F32 [G*G, d] (encoder output)
                                        s{i}.cap.logits, s{i}.q{j}.logits  F32 [L, V]: teacher-
                                        forced logits of prompt + greedy continuation (+ eos)
  reference.json         the sample files, prompts, greedy ids (without eos) and decoded texts,
                         the ground-truth answers from assets/samples/samples.json.
  expected.tsv           file, task, question, expected output: what tests/cli/caption_vqa.sh
                         expects `xmodal caption` / `xmodal vqa` to print.
The greedy reference decodes without a KV cache (the whole sequence every step), so it is
independent of the C++ cached path. Rerun after every change of the shipped model.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from scenes_model import ScenesModel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "assets/models/scenes")
SAMPLES = os.path.join(ROOT, "assets/samples")
OUT = os.path.join(ROOT, "tests/fixtures/scenes_model")


def load_model():
    with open(os.path.join(MODEL, "config.json")) as f:
        c = json.load(f)
    cfg = {k: c[k] for k in ("image_size", "conv_channels", "conv_strides", "d_model", "n_heads", "d_ff",
                             "n_enc_layers", "n_dec_layers", "max_len", "vocab_size")}
    cfg["ln_eps"] = c["layer_norm_eps"]
    m = ScenesModel(cfg)
    m.load_state_dict(st.load_file(os.path.join(MODEL, "model.safetensors")))
    m.eval()
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(MODEL, "tokenizer.model"))
    return m, sp, c


@torch.no_grad()
def greedy(m, kvs, prompt, eos, banned, max_new):
    """No-cache greedy decoding: (generated ids without eos, teacher-forced logits [L, V] of
    prompt + generated + eos, up to the last predicting position)."""
    ids = list(prompt)
    out = []
    for _ in range(max_new):
        logits = m.decode(torch.tensor([ids]), kvs)[0, -1].clone()
        logits[banned] = float("-inf")
        nxt = int(logits.argmax())
        if nxt == eos:
            break
        out.append(nxt)
        ids.append(nxt)
    full = m.decode(torch.tensor([ids]), kvs)[0]  # [L, V] for every position of prompt + out
    return out, full


def main():
    torch.set_num_threads(1)
    m, sp, c = load_model()
    sp_ids = c["special_ids"]
    eos, S = sp_ids["eos"], c["image_size"]
    banned = [sp_ids["pad"], sp_ids["bos"], sp_ids["sep"], sp_ids["cap"]]
    with open(os.path.join(SAMPLES, "samples.json")) as f:
        samples = json.load(f)["samples"]
    tensors, ref = {}, {"model": "assets/models/scenes", "tolerance": 1e-4, "samples": []}
    for i, s in enumerate(samples):
        with Image.open(os.path.join(SAMPLES, s["file"])) as pil:
            img = pil.convert("RGB").resize((S, S), Image.BICUBIC) if pil.size != (S, S) else pil.convert("RGB")
        arr = np.asarray(img, dtype=np.uint8)
        tensors[f"s{i}.resized"] = torch.from_numpy(arr.copy())
        x = torch.from_numpy(arr.transpose(2, 0, 1).copy()).unsqueeze(0)
        with torch.no_grad():
            mem = m.encode(m.normalize(x))
            kvs = m.cross_kv(mem)
        tensors[f"s{i}.memory"] = mem[0].contiguous()
        entry = {"file": "assets/samples/" + s["file"], "preset": s["preset"]}
        prompt = [sp_ids["bos"], sp_ids["cap"], sp_ids["sep"]]
        ids, logits = greedy(m, kvs, prompt, eos, banned, c["max_len"] - len(prompt))
        tensors[f"s{i}.cap.logits"] = logits.contiguous()
        entry["caption"] = {"prompt": prompt, "ids": ids, "text": sp.decode(ids)}
        entry["questions"] = []
        for j, q in enumerate(s["questions"]):
            prompt = [sp_ids["bos"]] + sp.encode(q["question"]) + [sp_ids["sep"]]
            ids, logits = greedy(m, kvs, prompt, eos, banned, 8)
            tensors[f"s{i}.q{j}.logits"] = logits.contiguous()
            entry["questions"].append({"question": q["question"], "truth": q["answer"], "prompt": prompt,
                                       "ids": ids, "text": sp.decode(ids)})
        ref["samples"].append(entry)
        print(f"{s['file']}: caption '{entry['caption']['text']}'; answers " +
              ", ".join(f"{e['text']}({e['truth']})" for e in entry["questions"]))
    os.makedirs(OUT, exist_ok=True)
    st.save_file(tensors, os.path.join(OUT, "reference.safetensors"))
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        for e in ref["samples"]:
            f.write(f"{e['file']}\tcaption\t-\t{e['caption']['text']}\n")
            for q in e["questions"]:
                f.write(f"{e['file']}\tvqa\t{q['question']}\t{q['text']}\n")
    right = sum(q["text"] == q["truth"] for e in ref["samples"] for q in e["questions"])
    total = sum(len(e["questions"]) for e in ref["samples"])
    print(f"{right} of {total} sample answers are correct")
    print(f"wrote {OUT}/reference.json and reference.safetensors ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
