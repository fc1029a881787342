#!/usr/bin/python3
"""Trains the sentiment model and its two single-modality baselines with one recipe, and
evaluates all three on the held-out test split (unseen speakers and sentences).

  nice -n 10 /usr/bin/python3 training/sentiment_train.py --data build/sentiment-data \
      --out build/sentiment-run [--modes fused,text,audio] [--epochs 12]

Data: training/sentiment_data.py. Writes OUT/tokenizer.model (sentencepiece, trained on the
training texts), OUT/<mode>/model.pt + config.json, OUT/results.json (Acc-3, weighted F1 and the
confusion matrix per model, overall and per subset) and OUT/results.md (the README table).
One thread, deterministic seeds: the same command gives the same numbers on this machine.
"""
import argparse
import io
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sentiment_model import DEFAULT_CONFIG, LABELS, SentimentModel, count_params  # noqa: E402

SUBSETS = ["all", "text", "ambiguous", "incongruent"]


def load_data(data_dir):
    meta = [json.loads(l) for l in open(os.path.join(data_dir, "meta.jsonl"))]
    feats = np.load(os.path.join(data_dir, "features.npy"), mmap_mode="r")
    return meta, feats


def train_tokenizer(texts, out_dir, vocab_size):
    import sentencepiece as spm

    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sorted(set(texts))), model_prefix=prefix, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, normalization_rule_name="nmt_nfkc_cf",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, hard_vocab_limit=False, num_threads=1,
        minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


class Batches:
    def __init__(self, items, feats, sp, max_text_len):
        self.items, self.feats = items, feats
        self.ids = [sp.encode(m["text"])[:max_text_len] for m in items]
        self.labels = [LABELS.index(m["label"]) for m in items]

    def make(self, idx):
        B = len(idx)
        T = max(self.items[i]["frames"] for i in idx)
        L = max(len(self.ids[i]) for i in idx)
        f = np.zeros((B, T, 80), dtype=np.float32)
        ids = np.zeros((B, L), dtype=np.int64)
        alen, tlen = np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
        for b, i in enumerate(idx):
            m = self.items[i]
            f[b, :m["frames"]] = self.feats[m["offset"]:m["offset"] + m["frames"]]
            ids[b, :len(self.ids[i])] = self.ids[i]
            alen[b], tlen[b] = m["frames"], len(self.ids[i])
        return (torch.from_numpy(ids), torch.from_numpy(tlen), torch.from_numpy(f), torch.from_numpy(alen),
                torch.tensor([self.labels[i] for i in idx]))

    def epoch(self, bs, rng):
        """Length-bucketed shuffled batches (less padding, still random)."""
        order = list(range(len(self.items)))
        rng.shuffle(order)
        chunks = [order[i:i + bs * 20] for i in range(0, len(order), bs * 20)]
        out = []
        for c in chunks:
            c.sort(key=lambda i: self.items[i]["frames"])
            out += [c[i:i + bs] for i in range(0, len(c), bs)]
        rng.shuffle(out)
        return out


def spec_augment(f, lens, rng, shift=0):
    """One time mask (up to 15 frames) and one mel mask (up to 8 bins) per clip, filled with
    the clip's mean, and (shift > 0) a shift of the mel axis by up to +-shift bins (edge bins
    repeated), a crude vocal-tract-length change so the model looks at relative pitch. The
    same for every mode."""
    f = f.clone()
    for b in range(f.shape[0]):
        n = int(lens[b])
        k = rng.randint(-shift, shift) if shift else 0
        if k > 0:
            f[b, :n, k:] = f[b, :n, :-k].clone()
            f[b, :n, :k] = f[b, :n, k:k + 1]
        elif k < 0:
            f[b, :n, :k] = f[b, :n, -k:].clone()
            f[b, :n, k:] = f[b, :n, k - 1:k]
        w = rng.randint(0, 15)
        s = rng.randint(0, max(0, n - w))
        fill = f[b, :n].mean()
        f[b, s:s + w] = fill
        w = rng.randint(0, 8)
        s = rng.randint(0, 80 - w)
        f[b, :n, s:s + w] = fill
    return f


def metrics(y, p):
    """Acc-3, weighted F1 and the confusion matrix (rows = true, cols = predicted)."""
    y, p = np.asarray(y), np.asarray(p)
    cm = np.zeros((3, 3), dtype=np.int64)
    for a, b in zip(y, p):
        cm[a, b] += 1
    acc = float((y == p).mean()) if len(y) else float("nan")
    f1w = 0.0
    for c in range(3):
        tp = cm[c, c]
        prec = tp / cm[:, c].sum() if cm[:, c].sum() else 0.0
        rec = tp / cm[c, :].sum() if cm[c, :].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1w += f1 * cm[c, :].sum() / max(1, len(y))
    return {"n": int(len(y)), "acc3": round(acc, 4), "f1_weighted": round(float(f1w), 4), "confusion": cm.tolist()}


@torch.no_grad()
def evaluate(model, data, bs=64):
    model.eval()
    preds = []
    order = sorted(range(len(data.items)), key=lambda i: data.items[i]["frames"])
    pred_of = {}
    for k in range(0, len(order), bs):
        idx = order[k:k + bs]
        ids, tl, f, al, y = data.make(idx)
        logits = model(ids, tl, f, al)
        for i, c in zip(idx, logits.argmax(1).tolist()):
            pred_of[i] = c
    preds = [pred_of[i] for i in range(len(data.items))]
    res = {}
    for s in SUBSETS:
        sel = [i for i, m in enumerate(data.items) if s == "all" or m["subset"] == s]
        res[s] = metrics([data.labels[i] for i in sel], [preds[i] for i in sel])
    return res, preds


def train_one(mode, cfg, train, test, args, out_dir):
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    c = dict(cfg, mode=mode)
    model = SentimentModel(c)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    n_batches = math.ceil(len(train.items) / args.batch)
    total = args.epochs * n_batches
    warm = n_batches
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    print(f"[{mode}] {count_params(model)} parameters, {args.epochs} epochs x {n_batches} batches", flush=True)
    t0 = time.time()
    log = []
    for ep in range(args.epochs):
        model.train()
        tot, n = 0.0, 0
        for idx in train.epoch(args.batch, rng):
            ids, tl, f, al, y = train.make(idx)
            f = spec_augment(f, al, rng, args.freq_shift)
            loss = F.cross_entropy(model(ids, tl, f, al), y, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        log.append({"epoch": ep + 1, "loss": round(tot / n, 4), "seconds": round(time.time() - t0, 1)})
        print(f"[{mode}] epoch {ep + 1}: loss {tot / n:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    res, preds = evaluate(model, test)
    os.makedirs(out_dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out_dir, "model.pt"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    with open(os.path.join(out_dir, "predictions.json"), "w") as f:
        json.dump([{"id": m["id"], "pred": LABELS[p]} for m, p in zip(test.items, preds)], f)
    return {"params": count_params(model), "train_seconds": round(time.time() - t0, 1), "log": log, "test": res}


def results_md(results, summary):
    names = {"fused": "text+audio (cross-attention)", "text": "text only", "audio": "audio only"}
    lines = ["Held-out test split: synthetic speech (espeak-ng), speakers and sentences unseen in training.", "",
             "| model | subset | n | Acc-3 | weighted F1 |", "|---|---|---|---|---|"]
    for mode, r in results.items():
        for s in SUBSETS:
            m = r["test"][s]
            lines.append(f"| {names.get(mode, mode)} | {s} | {m['n']} | {m['acc3']:.3f} | {m['f1_weighted']:.3f} |")
    lines += ["", "Confusion matrices (rows: true negative / neutral / positive; in each row the counts "
              "predicted negative, neutral, positive):", "",
              "| model | " + " | ".join(SUBSETS) + " |", "|---|" + "---|" * len(SUBSETS)]
    for mode, r in results.items():
        cells = [" / ".join("[" + " ".join(f"{v}" for v in row) + "]" for row in r["test"][s]["confusion"])
                 for s in SUBSETS]
        lines.append(f"| {names.get(mode, mode)} | " + " | ".join(cells) + " |")
    if summary:
        bc = summary.get("bayes_ceilings", {})
        lines += ["", "Ceilings of a predictor that knows only the text class / only the voice style "
                  "(from the generator's cell table): " +
                  "; ".join(f"{k}: " + ", ".join(f"{s} {v:.2f}" for s, v in d.items()) for k, d in bc.items())]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="build/sentiment-data")
    ap.add_argument("--out", default="build/sentiment-run")
    ap.add_argument("--modes", default="fused,text,audio")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--freq-shift", type=int, default=0, help="mel-axis shift augmentation, +- bins")
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--limit", type=int, default=0, help="use only this many training clips (smoke tests)")
    ap.add_argument("--report", action="store_true", help="only rebuild results.json/.md from OUT/<mode>/result.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    meta, feats = load_data(args.data)
    tr = [m for m in meta if m["split"] == "train"]
    te = [m for m in meta if m["split"] == "test"]
    if args.limit:
        tr = tr[:args.limit]
        te = te[:max(200, args.limit // 2)]
    if args.report:
        write_report(args)
        return
    # The modes may train in parallel processes: the first trains the tokenizer, the rest reuse it.
    if os.path.exists(os.path.join(args.out, "tokenizer.model")):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "tokenizer.model"))
    else:
        sp = train_tokenizer([m["text"] for m in tr], args.out, args.vocab)
    # Feature normalisation: one mean and std over every training frame and bin.
    acc, acc2, cnt = 0.0, 0.0, 0
    for m in tr:
        x = np.asarray(feats[m["offset"]:m["offset"] + m["frames"]], dtype=np.float64)
        acc += x.sum()
        acc2 += (x * x).sum()
        cnt += x.size
    mean = acc / cnt
    std = math.sqrt(acc2 / cnt - mean * mean)
    cfg = dict(DEFAULT_CONFIG, vocab_size=sp.get_piece_size(), feature_mean=round(mean, 4), feature_std=round(std, 4))
    train, test = Batches(tr, feats, sp, cfg["max_text_len"]), Batches(te, feats, sp, cfg["max_text_len"])
    print(f"{len(tr)} train / {len(te)} test clips, vocab {sp.get_piece_size()}, features mean {mean:.3f} std {std:.3f}",
          flush=True)
    for mode in args.modes.split(","):
        r = train_one(mode, cfg, train, test, args, os.path.join(args.out, mode))
        for sub in SUBSETS:
            m = r["test"][sub]
            print(f"[{mode}] test {sub:12s} n={m['n']:5d} acc3={m['acc3']:.3f} f1w={m['f1_weighted']:.3f}", flush=True)
        with open(os.path.join(args.out, mode, "result.json"), "w") as f:
            json.dump({"args": vars(args), "config": cfg, "result": r}, f, indent=1)
    write_report(args)


def write_report(args):
    """OUT/results.json and OUT/results.md from every OUT/<mode>/result.json present."""
    results, run_args, cfg = {}, None, None
    for mode in ("fused", "text", "audio"):
        p = os.path.join(args.out, mode, "result.json")
        if os.path.exists(p):
            d = json.load(open(p))
            results[mode] = d["result"]
            run_args, cfg = run_args or d["args"], cfg or d["config"]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": run_args, "config": cfg, "models": results}, f, indent=1)
    summary = None
    sp_path = os.path.join(args.data, "summary.json")
    if os.path.exists(sp_path):
        summary = json.load(open(sp_path))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(results_md(results, summary))
    print(open(os.path.join(args.out, "results.md")).read())


if __name__ == "__main__":
    main()
