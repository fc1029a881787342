"""PyTorch baseline for bench/blip: times training/blip_reference.py (our plain-PyTorch copy of HF
BLIP inference: cross-attention K/V recomputed every step as HF does, self-attention K/V cached)
on a model directory written by bench_blip, and dumps what bench_blip validates against.

Run by bench_blip (not by hand):
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 training/blip_bench.py \
      --model DIR --task caption|vqa --image IMG --tokens 20 --runs 3 --threads 2 --dump OUT.safetensors
Prints one JSON line: {"impl": "pytorch", "load_ms", "preprocess_ms", "vision_ms", "text_ms",
"decode_ms", "total_ms", "generated", "peak_rss_mb", "ids": [...]} (times are medians).
Needs Debian python3-torch with OpenBLAS (libopenblas0-pthread), or the timings are meaningless.
"""
import argparse
import json
import os
import resource
import statistics
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from blip_reference import Blip, BertWordPiece, preprocess, load_config  # noqa: E402

_DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "I64": torch.int64}


def load_lean(path):
    """Reads a safetensors file tensor by tensor straight into torch storage (no whole-file
    buffer, no mmap), so peak memory is the weights themselves, like HF's loader."""
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=_DT[info["dtype"]])
            f.seek(base + b)
            f.readinto(memoryview(t.numpy()).cast("B") if t.dtype != torch.bfloat16 else
                       memoryview(t.view(torch.int16).numpy()).cast("B"))
            assert e - b == t.numel() * t.element_size()
            out[name] = t
    return out


def ms(t0):
    return (time.perf_counter() - t0) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", choices=["caption", "vqa"], required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--question", default="what is the man holding in his hand?")
    ap.add_argument("--tokens", type=int, default=20, help="ids generated after [DEC] (forced: no early stop)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dump", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cfg = load_config(a.model)
    sd = load_lean(os.path.join(a.model, "model.safetensors"))
    blip = Blip(cfg, sd)
    tc = cfg["text_config"]
    tok = BertWordPiece(os.path.join(a.model, "vocab.txt"), added={"[DEC]": tc["bos_token_id"],
                                                                  "[ENC]": tc["bos_token_id"] + 1})
    load_ms = ms(t0)
    size = cfg["vision_config"]["image_size"]
    n = 1 + a.tokens  # max_length counts [DEC]
    rows = []
    with torch.inference_mode():
        for run in range(a.runs + 1):  # the first run is the warm-up
            r = {}
            t = time.perf_counter()
            pixels = preprocess(a.image, size)
            r["preprocess_ms"] = ms(t)
            t = time.perf_counter()
            enc = blip.vision(pixels)
            r["vision_ms"] = ms(t)
            mem = enc
            r["text_ms"] = 0.0
            if a.task == "vqa":
                t = time.perf_counter()
                qids = tok.encode(a.question)
                mem = blip.encode_question(torch.tensor([qids]), enc)
                r["text_ms"] = ms(t)
            t = time.perf_counter()
            ids = blip.greedy(mem, [blip.bos], max_length=n, min_length=n, cache_cross=False)
            r["decode_ms"] = ms(t)
            r["total_ms"] = r["preprocess_ms"] + r["vision_ms"] + r["text_ms"] + r["decode_ms"]
            if run > 0:
                rows.append(r)
        if a.dump:
            logits = blip.decoder_logits(torch.tensor([ids]), mem)
            out = {"vision_states": enc[0].contiguous(), "logits": logits[0].contiguous(),
                   "ids": torch.tensor(ids, dtype=torch.int64), "pixel_values": pixels[0].contiguous()}
            if a.task == "vqa":
                out["question_states"] = mem[0].contiguous()
            st.save_file(out, a.dump)
    res = {"impl": "pytorch", "task": a.task, "threads": a.threads, "load_ms": load_ms,
           "generated": len(ids) - 1, "ids": ids,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "torch": torch.__version__, "blas": torch.__config__.show().count("OpenBLAS") > 0}
    for k in rows[0]:
        res[k] = statistics.median(r[k] for r in rows)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
