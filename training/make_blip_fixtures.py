"""Writes tests/fixtures/blip/: a small WordPiece vocab with tricky tokenizer cases, and two tiny
random BLIP checkpoints (blip-caption, blip-vqa) with the real Hugging Face tensor names and
config.json / preprocessor_config.json layout, plus dumps from training/blip_reference.py
(pixel values, vision states, logits, greedy / beam / rank results) for tests/test_blip.cpp.

Run from the repository root:  /usr/bin/python3 training/make_blip_fixtures.py
Deterministic (fixed seeds). Everything written is < 1 MB.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from blip_reference import Blip, BertWordPiece, preprocess, answer_ids_for  # noqa: E402

OUT = "tests/fixtures/blip"

# ----------------------------------------------------------------------------------------------
# Vocabulary: the real BERT special ids ([PAD] 0, [unused*] 1-99, [UNK] 100, [CLS] 101, [SEP] 102,
# [MASK] 103), then a few hundred tokens. (The real vocab.txt has 30522 entries.)

WORDS = """a an the of in on at is are what where who how many there this that it its picture photo image
cat cats dog dogs man woman people person sitting standing running red blue green yellow white black
color table couch street car bus two three one yes no and with near next to front behind holding
playing ball grass water sky tree building hello world cafe naive istanbul coop una over under
small large big little boy girl child field beach room kitchen bed open do don can isn t s n m ve re
orange brown pink purple zero four five six seven eight nine ten sign road train plane bird horse""".split()
PIECES = "##s ##ing ##ed ##er ##ly ##able ##ffa ##ble ##es ##y ##n ##t ##ness ##ful".split()
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + list("¡¿«»—–…“”‘’·、。")
OTHER = list("αβγδοσςπ") + list("中文字日本") + ["ß", "ǆ", "½", "²"]


def make_vocab():
    v = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v += PUNCT + [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    v += [chr(c) for c in range(ord("a"), ord("z") + 1)] + [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)]
    v += OTHER + [w for w in WORDS] + PIECES
    seen, out = set(), []
    for t in v:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


TRICKY = [
    "A picture of a CAT.",
    "what is the man holding?",
    "Héllo wörld, naïve café!",
    "don't do that; isn't it?",
    "\t tabs\nand\r\nnewlines   and  spaces ",
    "ctrl\x00chars\x07here\u200bzero\ufffdwidth",
    "中文字 and 日本語テスト",
    "ＡＢＣ fullwidth",
    "İstanbul",
    "ΟΔΟΣ σοφος",
    "x" * 100,
    "y" * 101,
    "unaffable playing",
    "hello[SEP]world [CLS] [cls] [MASK]",
    "I \u2764\ufe0f cats \U0001F63A",
    "e\u0301 cafe\u0301",
    "\ufb01le",
    "$100.00 and 50%",
    "a\u00a0b\u3000c\u2028d\u0085e",
    "½ ² Ǆ ß Å",
    "한국어",
    "co\u200dop",
    "\u0378unassigned\ue000private",
    "",
    "   ",
    "«quoted» ¿que? ¡si! … — – “x” ‘y’ ·",
    "Dogs' ball's sitting-standing (running) [red] {blue} <green>",
    "[DEC] start [ENC] enc",
]


def tokenizer_cases(vocab_path, added):
    tok = BertWordPiece(vocab_path, added=added)
    cases = []
    for s in TRICKY:
        ids = tok.encode(s)
        cases.append({"text": s, "tokens": tok.tokenize(s), "ids": ids, "decoded": tok.decode(ids)})
    # decode cases with ## merging and clean-up spaces
    for ids in ([101, tok.id("a"), tok.id("dog"), tok.id("##s"), tok.id("'"), tok.id("s"), tok.id("ball"),
                 tok.id("."), 102, 0, 0],
                [added["[DEC]"], tok.id("do"), tok.id("##n"), tok.id("'"), tok.id("t"), tok.id("?"), tok.id("!"),
                 tok.id(","), 100, added["[ENC]"], 102]):
        cases.append({"decode_ids": ids, "decoded": tok.decode(ids), "decoded_raw": tok.decode(ids, skip_special=False)})
    return cases


# ----------------------------------------------------------------------------------------------
# Tiny random checkpoints with the real names


def text_config(vocab_size, hidden, layers, heads, inter, enc_hidden):
    return {
        "_name_or_path": "",
        "add_cross_attention": False,
        "architectures": None,
        "attention_probs_dropout_prob": 0.0,
        "bos_token_id": vocab_size - 2,
        "chunk_size_feed_forward": 0,
        "encoder_hidden_size": enc_hidden,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": hidden,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "is_decoder": True,
        "is_encoder_decoder": False,
        "label_smoothing": 0.0,
        "layer_norm_eps": 1e-12,
        "max_length": 20,
        "max_position_embeddings": 64,
        "min_length": 0,
        "model_type": "blip_text_model",
        "num_attention_heads": heads,
        "num_beams": 1,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "projection_dim": 768,
        "sep_token_id": 102,
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def vision_config(image, patch, hidden, layers, heads, inter):
    return {
        "_name_or_path": "",
        "architectures": None,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_size": hidden,
        "image_size": image,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-05,
        "model_type": "blip_vision_model",
        "num_attention_heads": heads,
        "num_channels": 3,
        "num_hidden_layers": layers,
        "patch_size": patch,
        "projection_dim": 512,
    }


def full_config(arch, tc, vc):
    return {
        "_commit_hash": None,
        "architectures": [arch],
        "image_text_hidden_size": 256,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "label_smoothing": 0.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "blip",
        "projection_dim": 512,
        "text_config": tc,
        "torch_dtype": "float32",
        "transformers_version": None,
        "vision_config": vc,
    }


def preprocessor_config(size):
    return {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "BlipImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "processor_class": "BlipProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": size, "width": size},
    }


class Init:
    """Random weights large enough that activations are O(1) (HF's 0.02 init would make every
    comparison trivially pass)."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def lin(self, sd, name, out, inp, scale=None):
        s = scale if scale is not None else 1.0 / math.sqrt(inp)
        sd[name + ".weight"] = torch.randn(out, inp, generator=self.g) * s
        sd[name + ".bias"] = torch.randn(out, generator=self.g) * 0.1

    def ln(self, sd, name, d):
        sd[name + ".weight"] = 1.0 + 0.2 * torch.randn(d, generator=self.g)
        sd[name + ".bias"] = 0.1 * torch.randn(d, generator=self.g)

    def t(self, *shape, s=1.0):
        return torch.randn(*shape, generator=self.g) * s


def vision_weights(ini, sd, vc):
    p = "vision_model."
    D, P, N = vc["hidden_size"], vc["patch_size"], (vc["image_size"] // vc["patch_size"]) ** 2
    sd[p + "embeddings.class_embedding"] = ini.t(1, 1, D, s=0.5)
    sd[p + "embeddings.patch_embedding.weight"] = ini.t(D, 3, P, P, s=1.0 / math.sqrt(3 * P * P))
    sd[p + "embeddings.patch_embedding.bias"] = ini.t(D, s=0.1)
    sd[p + "embeddings.position_embedding"] = ini.t(1, N + 1, D, s=0.5)
    for i in range(vc["num_hidden_layers"]):
        q = f"{p}encoder.layers.{i}."
        ini.ln(sd, q + "layer_norm1", D)
        ini.lin(sd, q + "self_attn.qkv", 3 * D, D)
        ini.lin(sd, q + "self_attn.projection", D, D)
        ini.ln(sd, q + "layer_norm2", D)
        ini.lin(sd, q + "mlp.fc1", vc["intermediate_size"], D)
        ini.lin(sd, q + "mlp.fc2", D, vc["intermediate_size"])
    ini.ln(sd, p + "post_layernorm", D)


def bert_weights(ini, sd, prefix, tc, enc_hidden, position_ids):
    D, V = tc["hidden_size"], tc["vocab_size"]
    sd[prefix + "embeddings.word_embeddings.weight"] = ini.t(V, D, s=0.6)
    sd[prefix + "embeddings.position_embeddings.weight"] = ini.t(tc["max_position_embeddings"], D, s=1.5)
    if position_ids:  # a persistent buffer in checkpoints saved by older transformers
        sd[prefix + "embeddings.position_ids"] = torch.arange(tc["max_position_embeddings"])[None]
    ini.ln(sd, prefix + "embeddings.LayerNorm", D)
    for i in range(tc["num_hidden_layers"]):
        q = f"{prefix}encoder.layer.{i}."
        for att, kv_in in (("attention", D), ("crossattention", enc_hidden)):
            ini.lin(sd, q + att + ".self.query", D, D)
            ini.lin(sd, q + att + ".self.key", D, kv_in)
            ini.lin(sd, q + att + ".self.value", D, kv_in)
            ini.lin(sd, q + att + ".output.dense", D, D)
            ini.ln(sd, q + att + ".output.LayerNorm", D)
        ini.lin(sd, q + "intermediate.dense", tc["intermediate_size"], D)
        ini.lin(sd, q + "output.dense", D, tc["intermediate_size"])
        ini.ln(sd, q + "output.LayerNorm", D)


def lm_head_weights(ini, sd, tc, separate_decoder):
    D, V = tc["hidden_size"], tc["vocab_size"]
    p = "text_decoder.cls.predictions."
    ini.lin(sd, p + "transform.dense", D, D)
    ini.ln(sd, p + "transform.LayerNorm", D)
    sd[p + "bias"] = ini.t(V, s=0.5)
    if separate_decoder:  # recent checkpoints store it, and it may differ from the embeddings
        sd[p + "decoder.weight"] = ini.t(V, D, s=1.0)
        sd[p + "decoder.bias"] = sd[p + "bias"].clone()


def make_image(path, w, h, seed):
    from PIL import Image
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
    img = np.clip(img + g.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(path)


def tune_sep_bias(blip, run, lo=4, hi=12):
    """Raises the [SEP] output bias until greedy decoding stops by itself at a length in [lo, hi],
    so the stop-at-[SEP] path is exercised. Returns the ids."""
    b0 = float(blip.dec_b[blip.sep])
    for extra in np.arange(0.0, 30.0, 0.05):
        blip.dec_b[blip.sep] = b0 + extra
        ids = run()
        if ids[-1] == blip.sep and lo <= len(ids) <= hi:
            return ids
    raise RuntimeError("could not make greedy decoding stop at [SEP]")


def write_model_dir(d, cfg, sd, size, vocab_lines):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(size), f, indent=2, sort_keys=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_lines) + "\n")
    st.save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    vocab = make_vocab()
    vocab_path = os.path.join(OUT, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    NV = len(vocab)
    added = {"[DEC]": NV, "[ENC]": NV + 1}
    cases = tokenizer_cases(vocab_path, added)
    with open(os.path.join(OUT, "wordpiece_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"vocab": "vocab.txt", "added": added, "cases": cases}, f, indent=1, ensure_ascii=False)
    tok = BertWordPiece(vocab_path, added=added)

    size = 32
    image_path = os.path.join(OUT, "image.png")
    make_image(image_path, 50, 41, 1)  # downscaled to 32x32: exercises the antialiased bicubic
    pixels = preprocess(image_path, size)

    report = {}
    # ---- caption: vision hidden 48 != text hidden 32, separate decoder weight, position_ids ----
    tc = text_config(NV + 2, 32, 2, 4, 64, 48)
    vc = vision_config(size, 8, 48, 2, 4, 96)
    cfg = full_config("BlipForConditionalGeneration", tc, vc)
    ini = Init(1234)
    sd = {}
    vision_weights(ini, sd, vc)
    bert_weights(ini, sd, "text_decoder.bert.", tc, 48, position_ids=True)
    lm_head_weights(ini, sd, tc, separate_decoder=True)
    blip = Blip(cfg, sd)
    with torch.no_grad():
        enc = blip.vision(pixels)
        margins = []
        ids = tune_sep_bias(blip, lambda: blip.greedy(enc, [blip.bos]))
        sd["text_decoder.cls.predictions.decoder.bias"] = sd["text_decoder.cls.predictions.bias"].clone()
        ids = blip.greedy(enc, [blip.bos], margins=margins)
        ids_nc = blip.greedy(enc, [blip.bos], cache_cross=True)
        assert ids == ids_nc
        logits = blip.decoder_logits(torch.tensor([ids]), enc)  # full sequence, no cache
        prompt = "a picture of"
        pids = tok.encode(prompt)
        ids_p = blip.greedy(enc, [blip.bos] + pids[1:-1], margins=margins)
        logits_p = blip.decoder_logits(torch.tensor([ids_p]), enc)
        ids_max = blip.greedy(enc, [blip.bos], max_length=6, min_length=6, margins=margins)
        beam_ids = blip.beam(enc, [blip.bos], num_beams=3, max_length=20)[0]
        beam_ids_min = blip.beam(enc, [blip.bos], num_beams=3, max_length=20, min_length=5)[0]
        beam_ids_lp = blip.beam(enc, [blip.bos], num_beams=4, max_length=12, length_penalty=0.5)[0]
    text_p = tok.decode(ids_p)
    ptext = tok.decode(pids)
    stripped = text_p[len(ptext):].strip() if text_p.startswith(ptext) else text_p
    write_model_dir(os.path.join(OUT, "caption"), cfg, sd, size, vocab)
    st.save_file({"pixel_values": pixels[0].contiguous(), "vision_states": enc[0].contiguous(),
                  "logits": logits[0].contiguous(), "logits_prompt": logits_p[0].contiguous()},
                 os.path.join(OUT, "caption_dump.safetensors"))
    dump = {"image": "image.png", "greedy_ids": ids, "greedy_text": tok.decode(ids),
            "prompt": prompt, "prompt_ids": pids, "prompt_greedy_ids": ids_p, "prompt_text_full": text_p,
            "prompt_text_stripped": stripped, "min6_max6_ids": ids_max,
            "beam3_ids": beam_ids, "beam3_text": tok.decode(beam_ids), "beam3_min5_ids": beam_ids_min,
            "beam4_max12_lp05_ids": beam_ids_lp, "min_greedy_margin": min(margins)}
    with open(os.path.join(OUT, "caption_dump.json"), "w") as f:
        json.dump(dump, f, indent=1)
    report["caption"] = dump

    # ---- vqa: hidden 32 everywhere, decoder weight absent (tied to the word embeddings) ----
    tc = text_config(NV + 2, 32, 2, 4, 64, 32)
    vc = vision_config(size, 8, 32, 2, 4, 64)
    cfg = full_config("BlipForQuestionAnswering", tc, vc)
    ini = Init(777)
    sd = {}
    vision_weights(ini, sd, vc)
    bert_weights(ini, sd, "text_encoder.", tc, 32, position_ids=False)
    bert_weights(ini, sd, "text_decoder.bert.", tc, 32, position_ids=False)
    lm_head_weights(ini, sd, tc, separate_decoder=False)
    blip = Blip(cfg, sd)
    question = "What color is the dog?"
    answers = ["red", "blue", "green", "yes", "no", "two", "a dog", "the cat", "white and black",
               "sitting", "playing ball", "orange"]
    with torch.no_grad():
        enc = blip.vision(pixels)
        q_cls = blip.question_ids(tok, question, "cls")
        q_enc = blip.question_ids(tok, question, "enc")
        qs = blip.encode_question(torch.tensor([q_cls]), enc)
        qs_enc = blip.encode_question(torch.tensor([q_enc]), enc)
        margins = []
        ans = tune_sep_bias(blip, lambda: blip.greedy(qs, [blip.bos]), lo=3, hi=8)
        ans = blip.greedy(qs, [blip.bos], margins=margins)
        ans_logits = blip.decoder_logits(torch.tensor([ans]), qs)
        ans_enc = blip.greedy(qs_enc, [blip.bos], margins=margins)
        ans_beam = blip.beam(qs, [blip.bos], num_beams=3, max_length=10)[0]
        aids = [answer_ids_for(tok, blip, a) for a in answers]
        best, top, ll = blip.rank(pixels, q_cls, aids, k=5)
        best_all, top_all, ll_all = blip.rank(pixels, q_cls, aids, k=128)
        # per-answer unpadded log-likelihoods equal the padded batch ones
        ll_single = [blip.answer_logliks(qs, [a])[0] for a in aids]
        assert max(abs(a - b) for a, b in zip(ll_single, [dict(zip(top_all, ll_all))[i] for i in range(len(aids))])) < 1e-4
    write_model_dir(os.path.join(OUT, "vqa"), cfg, sd, size, vocab)
    st.save_file({"pixel_values": pixels[0].contiguous(), "vision_states": enc[0].contiguous(),
                  "question_states": qs[0].contiguous(), "question_states_enc": qs_enc[0].contiguous(),
                  "answer_logits": ans_logits[0].contiguous()},
                 os.path.join(OUT, "vqa_dump.safetensors"))
    dump = {"image": "image.png", "question": question, "question_ids_cls": q_cls, "question_ids_enc": q_enc,
            "greedy_ids": ans, "greedy_text": tok.decode(ans), "greedy_ids_enc": ans_enc,
            "greedy_text_enc": tok.decode(ans_enc), "beam3_max10_ids": ans_beam,
            "answers": answers, "answer_ids": aids,
            "rank_k5": {"best": best, "best_answer": answers[best], "candidates": top, "logliks": ll},
            "rank_all": {"best": best_all, "best_answer": answers[best_all], "candidates": top_all,
                         "logliks": ll_all},
            "min_greedy_margin": min(margins)}
    with open(os.path.join(OUT, "vqa_dump.json"), "w") as f:
        json.dump(dump, f, indent=1)
    report["vqa"] = dump
    # Flat key<TAB>value file for tests/cli/blip.sh (shell, no JSON parser): ids comma-separated.
    cap, vqa = report["caption"], report["vqa"]
    flat = {"caption_text": cap["greedy_text"], "caption_ids": cap["greedy_ids"],
            "prompt": cap["prompt"], "prompt_text": cap["prompt_text_stripped"],
            "beam3_ids": cap["beam3_ids"], "question": vqa["question"], "answer": vqa["greedy_text"],
            "answer_ids": vqa["greedy_ids"], "answer_enc": vqa["greedy_text_enc"],
            "rank_k5_answer": vqa["rank_k5"]["best_answer"], "answers_json": json.dumps(vqa["answers"])}
    with open(os.path.join(OUT, "cli_expected.tsv"), "w") as f:
        for k, v in flat.items():
            f.write(k + "\t" + (",".join(map(str, v)) if isinstance(v, list) else v) + "\n")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if "ids" in kk or "text" in kk or "margin" in kk}
                      for k, v in report.items()}, indent=1))
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
