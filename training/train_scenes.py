#!/usr/bin/python3
"""Trains the built-in scenes model (training/scenes_model.py) on `xmodal synth` datasets.

Example (the exact commands and wall times of the shipped model are in training/README.md):
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 training/train_scenes.py \
      --data /data/soc-train --data /data/shp-train --val /data/soc-val --val /data/shp-val \
      --out /data/run1 --steps 20000

Each --data/--val is a directory written by `xmodal synth` (images/, scenes.json, captions.json,
questions.json, annotations.json). Images are resized once (PIL bicubic) to image_size^2 and
kept in memory as uint8; the resized arrays are cached next to the run (OUT/cache/).
Sequences: VQA "<bos> question <sep> answer <eos>", captions "<bos> <cap> <sep> caption <eos>";
the loss covers the tokens after <sep>. Every step draws B images and, per image, q questions
and c captions, so the image is encoded once for all of its sequences.
Deterministic given --seed (single-threaded torch; threads are a CLI option).
Writes OUT/tokenizer.model, OUT/ckpt.pt (latest, resumable), OUT/log.txt, OUT/config.json.
"""
import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenes_model import DEFAULT_CONFIG, ScenesModel, count_params  # noqa: E402

SPECIALS = {"pad": 0, "unk": 1, "bos": 2, "eos": 3, "sep": 4, "cap": 5}


# ---------------------------------------------------------------- tokenizer
def train_tokenizer(texts, prefix, vocab_size):
    """Runs spm_train (unigram, byte fallback, case-folding normalisation) on the texts."""
    txt = prefix + ".txt"
    with open(txt, "w") as f:
        for t in texts:
            f.write(t + "\n")
    cmd = ["spm_train", f"--input={txt}", f"--model_prefix={prefix}", f"--vocab_size={vocab_size}",
           "--model_type=bpe", "--byte_fallback=true", "--character_coverage=1.0",
           "--normalization_rule_name=nmt_nfkc_cf", "--pad_id=0", "--unk_id=1", "--bos_id=2", "--eos_id=3",
           "--control_symbols=<sep>,<cap>", "--hard_vocab_limit=false", "--split_digits=false",
           "--num_threads=1", "--minloglevel=2"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    os.remove(txt)
    if os.path.exists(prefix + ".vocab"):
        os.remove(prefix + ".vocab")
    return prefix + ".model"


def load_tokenizer(path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=path)
    for name, i in SPECIALS.items():
        piece = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>", "sep": "<sep>", "cap": "<cap>"}[name]
        if sp.piece_to_id(piece) != i:
            raise SystemExit(f"{path}: special {piece} has id {sp.piece_to_id(piece)}, expected {i}")
    return sp


# ---------------------------------------------------------------- data
def read_dataset(d):
    with open(os.path.join(d, "scenes.json")) as f:
        scenes = json.load(f)
    with open(os.path.join(d, "captions.json")) as f:
        caps = json.load(f)
    with open(os.path.join(d, "questions.json")) as f:
        qs = json.load(f)["questions"]
    with open(os.path.join(d, "annotations.json")) as f:
        anns = {a["question_id"]: a for a in json.load(f)["annotations"]}
    images = sorted(caps["images"], key=lambda im: im["id"])
    return scenes, images, caps["annotations"], qs, anns


def load_images(d, images, size, cache_dir):
    """uint8 [N, 3, size, size], PIL bicubic resize of every image, cached as .npy."""
    key = hashlib.sha1((os.path.abspath(d) + f"|{size}|{len(images)}").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"img-{key}.npy")
    if os.path.exists(path):
        return torch.from_numpy(np.load(path))
    arr = np.empty((len(images), 3, size, size), np.uint8)
    for i, im in enumerate(images):
        with Image.open(os.path.join(d, "images", im["file_name"])) as pil:
            pil = pil.convert("RGB")
            if pil.size != (size, size):
                pil = pil.resize((size, size), Image.BICUBIC)
            arr[i] = np.asarray(pil).transpose(2, 0, 1)
    os.makedirs(cache_dir, exist_ok=True)
    np.save(path, arr)
    return torch.from_numpy(arr)


def vqa_seq(sp, q, a):
    return [SPECIALS["bos"]] + sp.encode(q) + [SPECIALS["sep"]], sp.encode(a) + [SPECIALS["eos"]]


def cap_seq(sp, c):
    return [SPECIALS["bos"], SPECIALS["cap"], SPECIALS["sep"]], sp.encode(c) + [SPECIALS["eos"]]


class SeqBank:
    """Tokenised sequences, padded into one int64 array, grouped by image."""

    def __init__(self, seqs_per_image, max_len):
        self.starts, self.counts, rows, plens, lens = [], [], [], [], []
        for seqs in seqs_per_image:
            self.starts.append(len(rows))
            self.counts.append(len(seqs))
            for pre, tgt in seqs:
                s = pre + tgt
                if len(s) > max_len + 1:
                    raise SystemExit(f"sequence of {len(s)} tokens exceeds max_len+1 = {max_len + 1}")
                rows.append(s)
                plens.append(len(pre))
                lens.append(len(s))
        self.lens = np.array(lens, np.int64)
        self.plens = np.array(plens, np.int64)
        self.tok = np.zeros((len(rows), max(lens) if lens else 1), np.int64)
        for i, s in enumerate(rows):
            self.tok[i, :len(s)] = s
        self.starts = np.array(self.starts, np.int64)
        self.counts = np.array(self.counts, np.int64)

    def sample(self, img_idx, k, rng):
        """k sequence rows per image (without replacement when possible), grouped by image."""
        out = []
        for i in img_idx:
            n = self.counts[i]
            pick = rng.choice(n, k, replace=bool(n < k))
            out.append(self.starts[i] + pick)
        return np.concatenate(out)


def make_batch(bank, rows):
    """rows -> (inputs [R, L], labels [R, L] with -100 outside the target part)."""
    L = int(bank.lens[rows].max()) - 1
    tok = torch.from_numpy(bank.tok[rows, :L + 1])
    inp, lab = tok[:, :-1].clone(), tok[:, 1:].clone()
    pos = torch.arange(L).unsqueeze(0)
    plen = torch.from_numpy(bank.plens[rows]).unsqueeze(1)
    ln = torch.from_numpy(bank.lens[rows]).unsqueeze(1)
    keep = (pos + 1 >= plen) & (pos + 1 < ln)
    lab[~keep] = -100
    return inp, lab


def seq_loss(model, kvs, inp, lab):
    """Cross-entropy over the target positions only (the LM head runs only there)."""
    L = inp.shape[1]
    x = model.tok_emb(inp) + model.pos_emb[:L]
    for layer, (ck, cv) in zip(model.dec_layers, kvs):
        x = layer(x, ck, cv)
    m = lab >= 0
    h = model.dec_ln(x[m])
    logits = h @ model.tok_emb.weight.t()
    return F.cross_entropy(logits, lab[m], reduction="sum"), logits.argmax(-1) == lab[m], m


class Split:
    def __init__(self, d, sp, size, cache_dir, max_len, q_aug=0.0, seed=0):
        scenes, images, caps, qs, anns = read_dataset(d)
        self.dir = d
        self.preset = scenes.get("preset", "?")
        self.img = load_images(d, images, size, cache_dir)
        idx = {im["id"]: i for i, im in enumerate(images)}
        qper = [[] for _ in images]
        self.qinfo = [[] for _ in images]  # (question_id, family, question, answer)
        rnd = random.Random(seed)
        for q in qs:
            a = anns[q["question_id"]]
            text = q["question"]
            if q_aug > 0 and rnd.random() < q_aug and text.endswith("?"):
                text = text[:-1]
            qper[idx[q["image_id"]]].append(vqa_seq(sp, text, a["multiple_choice_answer"]))
            self.qinfo[idx[q["image_id"]]].append((q["question_id"], a["question_type"], q["question"], a["multiple_choice_answer"]))
        cper = [[] for _ in images]
        for c in caps:
            cper[idx[c["image_id"]]].append(cap_seq(sp, c["caption"]))
        self.q = SeqBank(qper, max_len)
        self.c = SeqBank(cper, max_len)
        self.families = sorted({f for rows in self.qinfo for (_, f, _, _) in rows})
        fam_of = {f: i for i, f in enumerate(self.families)}
        self.qfam = np.array([fam_of[f] for rows in self.qinfo for (_, f, _, _) in rows], np.int64)
        self.n = len(images)


# ---------------------------------------------------------------- eval
@torch.no_grad()
def evaluate(model, split, batch_images=64):
    """Teacher-forced exact match on every question (equal to greedy-decoding correctness) and
    caption token accuracy. Returns {family: acc}, overall."""
    model.eval()
    correct = np.zeros(len(split.q.lens), bool)
    ctok, ctot = 0, 0
    for b0 in range(0, split.n, batch_images):
        ids = np.arange(b0, min(split.n, b0 + batch_images))
        kvs = model.cross_kv(model.encode(model.normalize(split.img[ids])))
        rows = np.concatenate([split.q.starts[i] + np.arange(split.q.counts[i]) for i in ids])
        k = int(split.q.counts[ids[0]])
        if all(split.q.counts[i] == k for i in ids) and k > 0:
            inp, lab = make_batch(split.q, rows)
            _, ok, m = seq_loss(model, kvs, inp, lab)
            per = torch.ones(m.shape, dtype=torch.bool)
            per[m] = ok
            correct[rows] = per.all(1).numpy()
        k = int(split.c.counts[ids[0]])
        if all(split.c.counts[i] == k for i in ids) and k > 0:
            rows = np.concatenate([split.c.starts[i] + np.arange(split.c.counts[i]) for i in ids])
            inp, lab = make_batch(split.c, rows)
            _, ok, _ = seq_loss(model, kvs, inp, lab)
            ctok += int(ok.sum())
            ctot += ok.numel()
    model.train()
    res = {f: float(correct[split.qfam == i].mean()) for i, f in enumerate(split.families)}
    res["all"] = float(correct.mean())
    res["cap_tok"] = ctok / max(1, ctot)
    return res


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="training dataset dir (repeatable)")
    ap.add_argument("--val", action="append", default=[], help="validation dataset dir (repeatable)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", help="existing tokenizer.model (default: train one on --data text)")
    ap.add_argument("--vocab-size", type=int, default=480)
    ap.add_argument("--config", default="{}", help="JSON overrides of scenes_model.DEFAULT_CONFIG")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-images", type=int, default=32)
    ap.add_argument("--q-per-image", type=int, default=8)
    ap.add_argument("--c-per-image", type=int, default=2)
    ap.add_argument("--cap-weight", type=float, default=0.5, help="caption loss weight (per target token)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.02)
    ap.add_argument("--decay-start", type=int, default=-1,
                    help="warmup-stable-decay: constant LR until this step, then linear decay to min-lr-frac at "
                         "--steps (a cooldown can branch from any checkpoint); -1 = cosine over all steps")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--q-aug", type=float, default=0.1, help="fraction of questions trained without '?'")
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.txt"), "a")

    def say(msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say("args " + json.dumps(vars(args)))
    cfg = dict(DEFAULT_CONFIG, **json.loads(args.config))
    tok_path = os.path.join(args.out, "tokenizer.model")
    if args.tokenizer:
        if os.path.abspath(args.tokenizer) != os.path.abspath(tok_path):
            with open(args.tokenizer, "rb") as f, open(tok_path, "wb") as g:
                g.write(f.read())
    elif not os.path.exists(tok_path):
        texts = []
        for d in args.data:
            _, _, caps, qs, anns = read_dataset(d)
            texts += [c["caption"] for c in caps]
            texts += [q["question"] for q in qs]
            texts += [a["multiple_choice_answer"] for a in anns.values()]
        train_tokenizer(texts, os.path.join(args.out, "tokenizer"), args.vocab_size)
    sp = load_tokenizer(tok_path)
    cfg["vocab_size"] = sp.get_piece_size()
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)

    cache = os.path.join(args.out, "cache")
    t0 = time.time()
    train = [Split(d, sp, cfg["image_size"], cache, cfg["max_len"], args.q_aug, args.seed + i) for i, d in enumerate(args.data)]
    val = [Split(d, sp, cfg["image_size"], cache, cfg["max_len"]) for d in args.val]
    say(f"data loaded in {time.time() - t0:.0f}s: " + ", ".join(f"{s.dir} ({s.preset}, {s.n} images)" for s in train))

    model = ScenesModel(cfg)
    say(f"params {count_params(model)} grid {model.grid}x{model.grid} vocab {cfg['vocab_size']}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos" not in n and "emb" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "pos" not in n and "emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    step = 0
    ck_path = os.path.join(args.out, "ckpt.pt")
    if os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        rng = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        say(f"resumed at step {step}")

    # One flat index over all training images; each step draws batch_images of them.
    offs = np.cumsum([0] + [s.n for s in train])
    total = int(offs[-1])
    perm, pp = rng.permutation(total), 0

    def lr_at(s):
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        if args.decay_start >= 0:
            t = max(0.0, (s - args.decay_start) / max(1, args.steps - args.decay_start))
            return args.lr * (1 - (1 - args.min_lr_frac) * min(1.0, t))
        t = (s - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    t_start, run_loss, run_acc, run_n = time.time(), 0.0, 0.0, 0
    while step < args.steps:
        if pp + args.batch_images > total:
            perm, pp = rng.permutation(total), 0
        gidx = np.sort(perm[pp:pp + args.batch_images])
        pp += args.batch_images
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss_q = loss_c = 0.0
        nq = nc = 0
        accs = []
        for si, s in enumerate(train):
            ids = gidx[(gidx >= offs[si]) & (gidx < offs[si + 1])] - offs[si]
            if len(ids) == 0:
                continue
            kvs = model.cross_kv(model.encode(model.normalize(s.img[ids])))
            inp, lab = make_batch(s.q, s.q.sample(ids, args.q_per_image, rng))
            l, ok, _ = seq_loss(model, kvs, inp, lab)
            loss_q, nq = loss_q + l, nq + ok.numel()
            accs.append(ok.float().mean().item())
            if args.c_per_image > 0 and s.c.counts[ids].min() > 0:
                inp, lab = make_batch(s.c, s.c.sample(ids, args.c_per_image, rng))
                l, ok, _ = seq_loss(model, kvs, inp, lab)
                loss_c, nc = loss_c + l, nc + ok.numel()
        loss = loss_q / max(1, nq) + (args.cap_weight * loss_c / max(1, nc) if nc else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += float(loss)
        run_acc += float(np.mean(accs))
        run_n += 1
        if step % 50 == 0:
            el = time.time() - t_start
            say(f"step {step} loss {run_loss / run_n:.4f} q_tok_acc {run_acc / run_n:.4f} lr {lr_at(step):.2e} "
                f"{el / run_n:.2f}s/step")
            run_loss = run_acc = 0.0
            run_n, t_start = 0, time.time()
        if step % args.ckpt_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rng,
                        "torch_rng": torch.get_rng_state(), "config": cfg}, ck_path + ".tmp")
            os.replace(ck_path + ".tmp", ck_path)
        if step % args.eval_every == 0 or step == args.steps:
            for v in val:
                r = evaluate(model, v)
                say(f"eval step {step} {os.path.basename(v.dir.rstrip('/'))}: " + " ".join(f"{k}={x:.4f}" for k, x in r.items()))
            t_start = time.time()
    torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    say("done")


if __name__ == "__main__":
    main()
