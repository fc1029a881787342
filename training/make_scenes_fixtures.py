#!/usr/bin/python3
"""Writes the PyTorch reference for the C++ scenes model tests, from the shipped model.

  /usr/bin/python3 training/make_scenes_fixtures.py            (run from the repository root)

Reads assets/models/scenes (config.json, model.safetensors, tokenizer.model) and the sample
images assets/samples/scene-*.png, and writes tests/fixtures/scenes_model/:
  reference.safetensors  per sample i:  s{i}.resized  U8 [S, S, 3]  (PIL bicubic resize)
                                        s{i}.memory   F32 [G*G, d] (encoder output)
                                        s{i}.cap.logits, s{i}.q{j}.logits  F32 [L, V]: teacher-
                                        forced logits of prompt + greedy continuation (+ eos)
                                        s{i}.cap.cross_attn, s0.q0.cross_attn  F32 [n_dec, H, L, G*G]:
                                        the decoder's cross-attention weights at every position
                                        of those sequences (softmax(q k^T / sqrt(hd)) per head)
  reference.json         the sample files, prompts, greedy ids (without eos) and decoded texts,
                         the ground-truth answers from assets/samples/samples.json, and beam
                         search results (ids, score) for beam widths 2 and 3 (BEAMS below):
                         an independent no-cache implementation of Hugging Face's
                         BeamSearchScorer rules (early_stopping=False; length penalty over the
                         whole sequence, prompt included, eos not).
  expected.tsv           file, task, question, expected output: what tests/cli/caption_vqa.sh
                         expects `xmodal caption` / `xmodal vqa` to print.
The greedy reference decodes without a KV cache (the whole sequence every step), so it is
independent of the C++ cached path. Rerun after every change of the shipped model.
"""
import json
import math
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
    cfg["grid_ln"] = bool(c.get("grid_layer_norm", False))
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


@torch.no_grad()
def cross_attention(m, ids, kvs):
    """Teacher-forced pass over ids [L] -> cross-attention weights [n_dec, H, L, N], computed
    from the model's own modules (as ScenesModel.decode, with the weights kept)."""
    tokens = torch.tensor([ids])
    x = m.tok_emb(tokens) + m.pos_emb[:len(ids)]
    out = []
    for layer, (ck, cv) in zip(m.dec_layers, kvs):
        x = x + layer.self_attn(layer.ln1(x), causal=True)
        y = layer.ln2(x)
        q = layer.cross_attn.split(layer.cross_attn.q_proj(y))
        out.append(torch.softmax(q @ ck.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1])), -1)[0])
        x = x + layer.cross_attn.attend(y, ck, cv, causal=False)
        x = x + layer.ffn(layer.ln3(x))
    return torch.stack(out).contiguous()


@torch.no_grad()
def beam_search(m, kvs, prompt, eos, banned, max_new, num_beams, length_penalty):
    """Hugging Face BeamSearchScorer rules, no KV cache: each step ranks (beam log p + token
    log p) over all live beams, best first (ties: lower beam, then lower id); an eos among the
    first num_beams closes a hypothesis scored sum / len ** length_penalty (len = prompt +
    generated, eos not counted); done when num_beams hypotheses exist and the best candidate
    over the current length cannot beat the worst; at max_new the live beams become hypotheses.
    Returns (ids without eos, score)."""
    live = [(0.0, [])]  # (sum log p, generated ids)
    hyps = []           # (score, ids)

    def add(score, ids):
        hyps.append((score, ids))
        hyps.sort(key=lambda h: h[0])  # stable: among equal scores the first added goes first
        if len(hyps) > num_beams:
            del hyps[0]

    for step in range(max_new):
        cur_len = len(prompt) + step
        cands = []
        for b, (lp_sum, ids) in enumerate(live):
            logits = m.decode(torch.tensor([prompt + ids]), kvs)[0, -1].double()
            lp = torch.log_softmax(logits, -1)
            lp[banned] = float("-inf")
            for t in range(lp.shape[0]):
                if lp[t] != float("-inf"):
                    cands.append((lp_sum + float(lp[t]), b, t))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        cands = cands[:2 * num_beams]
        nxt = []
        for rank, (score, b, t) in enumerate(cands):
            if t == eos:
                if rank < num_beams:
                    sc = score / cur_len ** length_penalty
                    if len(hyps) < num_beams or sc > hyps[0][0]:
                        add(sc, list(live[b][1]))
            else:
                nxt.append((score, live[b][1] + [t]))
            if len(nxt) == num_beams:
                break
        if len(hyps) >= num_beams and hyps[0][0] >= cands[0][0] / cur_len ** length_penalty:
            break
        live = nxt
        if step + 1 == max_new:
            for score, ids in live:
                sc = score / (cur_len + 1) ** length_penalty
                if len(hyps) < num_beams or sc > hyps[0][0]:
                    add(sc, ids)
    best = max(reversed(hyps), key=lambda h: h[0])  # ties: the later added, as HF's sort + pop
    return best[1], best[0]


BEAMS = [(2, 1.0), (3, 0.6)]  # (width, length penalty) of the beam references


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
        tensors[f"s{i}.cap.cross_attn"] = cross_attention(m, prompt + ids, kvs)
        entry["caption"] = {"prompt": prompt, "ids": ids, "text": sp.decode(ids)}
        entry["caption"]["beam"] = []
        for nb, lpen in BEAMS:
            bids, bscore = beam_search(m, kvs, prompt, eos, banned, c["max_len"] - len(prompt), nb, lpen)
            entry["caption"]["beam"].append({"num_beams": nb, "length_penalty": lpen, "ids": bids, "score": bscore})
        entry["questions"] = []
        for j, q in enumerate(s["questions"]):
            prompt = [sp_ids["bos"]] + sp.encode(q["question"]) + [sp_ids["sep"]]
            ids, logits = greedy(m, kvs, prompt, eos, banned, 8)
            tensors[f"s{i}.q{j}.logits"] = logits.contiguous()
            if i == 0 and j == 0:
                tensors["s0.q0.cross_attn"] = cross_attention(m, prompt + ids, kvs)
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
