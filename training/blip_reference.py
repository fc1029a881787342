"""A plain-PyTorch re-implementation of Hugging Face BLIP inference (BlipForConditionalGeneration,
BlipForQuestionAnswering), its BertTokenizer and its BlipImageProcessor, written from reading
transformers/models/blip/{modeling_blip.py, modeling_blip_text.py, configuration_blip.py} and
BertTokenizer (transformers is not installable here). It is the independent reference that the C++
pipeline/blip is tested against (training/make_blip_fixtures.py) and the baseline of bench/blip.

Usage as a library:  from blip_reference import Blip, BertWordPiece, preprocess
Runs with /usr/bin/python3 (Debian python3-torch 1.13, python3-pil, python3-numpy).

Details followed (see docs/blip.md):
- Vision: pre-LN ViT, LayerNorm eps from vision_config.layer_norm_eps (1e-5), exact erf GELU,
  fused qkv rows [Q; K; V], class token + position embeddings, post_layernorm over all tokens.
- Text: post-LN BERT, LN eps text_config.layer_norm_eps (1e-12), word + position embeddings then
  LN, per layer self-attention -> cross-attention -> FFN. The self-attention mask is additive
  (1 - m) * -10000 (causal for the decoder); the cross mask is all ones (adds 0).
- LM head: transform dense -> GELU -> LN, then cls.predictions.decoder.weight (or the word
  embeddings when that key is absent) and cls.predictions.bias.
- Generation starts from [DEC] (bos_token_id) and stops at [SEP] (sep_token_id); max_length counts
  every token including [DEC] and any prompt. Self-attention K/V are cached; like HF, the
  cross-attention K/V are recomputed at every step unless cache_cross=True.
- VQA: the question [CLS] q [SEP] (or [ENC] q [SEP], the original BLIP) is encoded
  bidirectionally with cross-attention to the image; the answer decoder cross-attends to the
  question states with an all-ones mask. Rank mode follows the original BLIP rank_answer: top-k
  answers by the first token's probability, then the best total log-likelihood.
"""
import json
import math
import os
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# BertTokenizer (slow, do_lower_case=True) re-implementation


class BertWordPiece:
    def __init__(self, vocab_path, added=None, max_chars=100):
        self.vocab = {}
        with open(vocab_path, encoding="utf-8") as f:
            lines = f.readlines()
        self.inv = []
        for i, line in enumerate(lines):
            tok = line.rstrip("\n")
            self.vocab[tok] = i
            self.inv.append(tok)
        self.added = dict(added or {})  # token -> id, outside vocab.txt
        self.max_chars = max_chars
        self.specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in self.vocab]
        self.specials += list(self.added)
        self.special_ids = {self.id(t) for t in self.specials}
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    def id(self, tok):
        if tok in self.added:
            return self.added[tok]
        return self.vocab.get(tok, -1)

    @staticmethod
    def _is_whitespace(ch):
        return ch in (" ", "\t", "\n", "\r") or unicodedata.category(ch) == "Zs"

    @staticmethod
    def _is_control(ch):
        if ch in ("\t", "\n", "\r"):
            return False
        return unicodedata.category(ch).startswith("C")

    @staticmethod
    def _is_punct(ch):
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    @staticmethod
    def _is_cjk(cp):
        return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
                or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
                or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)

    def _basic(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or self._is_control(ch):
                continue
            if self._is_whitespace(ch):
                out.append(" ")
            elif self._is_cjk(cp):
                out += [" ", ch, " "]
            else:
                out.append(ch)
        text = unicodedata.normalize("NFC", "".join(out))
        split = []
        for tok in text.split():
            tok = tok.lower()
            tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
            cur = []
            for c in tok:
                if self._is_punct(c):
                    if cur:
                        split.append("".join(cur))
                        cur = []
                    split.append(c)
                else:
                    cur.append(c)
            if cur:
                split.append("".join(cur))
        return " ".join(split).split()

    def _wordpiece(self, word):
        if len(word) > self.max_chars:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = "##" + sub
                if sub in self.vocab:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                return ["[UNK]"]
            pieces.append(cur)
            start = end
        return pieces

    def tokenize(self, text):
        # PreTrainedTokenizer.tokenize: special tokens stay whole; everything else is lower-cased
        # one character at a time (its regex "(.+?)"), then BasicTokenizer + WordPiece.
        chunks, i, start = [], 0, 0
        while i < len(text):
            best = None
            for s in self.specials:
                if text.startswith(s, i) and (best is None or len(s) > len(best)):
                    best = s
            if best:
                chunks.append((False, text[start:i]))
                chunks.append((True, best))
                i += len(best)
                start = i
            else:
                i += 1
        chunks.append((False, text[start:]))
        out = []
        for special, chunk in chunks:
            if special:
                out.append(chunk)
                continue
            chunk = "".join(c.lower() for c in chunk)
            for w in self._basic(chunk):
                out += self._wordpiece(w)
        return out

    def encode(self, text, add_cls_sep=True):
        ids = [self.id(t) for t in self.tokenize(text)]
        return [self.cls] + ids + [self.sep] if add_cls_sep else ids

    def token(self, i):
        for t, j in self.added.items():
            if j == i:
                return t
        return self.inv[i] if 0 <= i < len(self.inv) else f"[id {i}]"

    def decode(self, ids, skip_special=True):
        parts, run = [], []

        def flush():
            if run:
                parts.append(" ".join(run).replace(" ##", "").strip())
                run.clear()

        for i in ids:
            if skip_special and i in self.special_ids:
                continue
            if i in self.added.values():
                flush()
                parts.append(self.token(i))
            else:
                run.append(self.token(i))
        flush()
        text = " ".join(parts)
        for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(a, b)
        return text


# ----------------------------------------------------------------------------------------------
# Preprocessing (BlipImageProcessor with PIL): RGB, stretch resize, 1/255, CLIP mean/std


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(path, size, mean=CLIP_MEAN, std=CLIP_STD, rescale=1 / 255):
    from PIL import Image
    im = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = np.asarray(im).astype(np.float32) * np.float32(rescale)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]  # [1, 3, size, size]


# ----------------------------------------------------------------------------------------------
# The model


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


class Blip:
    """BLIP inference from an HF-style state dict (tensor names as in the published checkpoints)."""

    def __init__(self, cfg, sd):
        self.cfg, self.sd = cfg, sd
        self.v = cfg["vision_config"]
        self.t = cfg["text_config"]
        arch = cfg.get("architectures", [""])[0]
        self.vqa = arch == "BlipForQuestionAnswering"
        self.v_eps = self.v.get("layer_norm_eps", 1e-5)
        self.t_eps = self.t.get("layer_norm_eps", 1e-12)
        self.bos = self.t.get("bos_token_id", 30522)
        self.sep = self.t.get("sep_token_id", 102)
        self.pad = self.t.get("pad_token_id", 0)
        # The LM head's decoder weight; absent key -> the tied word embeddings.
        self.dec_w = sd.get("text_decoder.cls.predictions.decoder.weight",
                            sd["text_decoder.bert.embeddings.word_embeddings.weight"])
        self.dec_b = sd["text_decoder.cls.predictions.bias"]

    def W(self, name):
        return self.sd[name]

    def lin(self, x, name):
        return F.linear(x, self.sd[name + ".weight"], self.sd[name + ".bias"])

    def ln(self, x, name, eps):
        return F.layer_norm(x, x.shape[-1:], self.sd[name + ".weight"], self.sd[name + ".bias"], eps)

    # -- vision ----------------------------------------------------------------------------------
    def vision(self, pixels):  # [B, 3, S, S] -> [B, 1 + (S/P)^2, Dv]
        p = "vision_model."
        x = F.conv2d(pixels, self.W(p + "embeddings.patch_embedding.weight"),
                     self.W(p + "embeddings.patch_embedding.bias"), stride=self.v["patch_size"])
        x = x.flatten(2).transpose(1, 2)
        cls = self.W(p + "embeddings.class_embedding").expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1)
        x = x + self.W(p + "embeddings.position_embedding")[:, : x.shape[1]]
        H = self.v["num_attention_heads"]
        B, N, D = x.shape
        for i in range(self.v["num_hidden_layers"]):
            q = f"{p}encoder.layers.{i}."
            h = self.ln(x, q + "layer_norm1", self.v_eps)
            qkv = self.lin(h, q + "self_attn.qkv").reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
            a = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * (D // H) ** -0.5, -1) @ qkv[2]
            a = a.permute(0, 2, 1, 3).reshape(B, N, D)
            x = x + self.lin(a, q + "self_attn.projection")
            h = self.ln(x, q + "layer_norm2", self.v_eps)
            x = x + self.lin(F.gelu(self.lin(h, q + "mlp.fc1")), q + "mlp.fc2")
        return self.ln(x, p + "post_layernorm", self.v_eps)

    # -- text BERT -------------------------------------------------------------------------------
    def _attn(self, x, kv_src, name, mask, cache=None, layer=None, kind=None):
        """x [B, L, D] queries; kv_src [B, M, Dk] (or None: reuse cache) -> [B, L, D]."""
        H = self.t["num_attention_heads"]
        B, L, D = x.shape
        hd = D // H
        q = self.lin(x, name + ".self.query").view(B, L, H, hd).transpose(1, 2)
        key = (layer, kind)
        if cache is not None and kind == "cross" and key in cache:
            k, v = cache[key]
        else:
            k = self.lin(kv_src, name + ".self.key").view(B, -1, H, hd).transpose(1, 2)
            v = self.lin(kv_src, name + ".self.value").view(B, -1, H, hd).transpose(1, 2)
            if cache is not None and kind == "self" and key in cache:
                k = torch.cat([cache[key][0], k], 2)
                v = torch.cat([cache[key][1], v], 2)
            if cache is not None and (kind == "self" or cache.get("cache_cross")):
                cache[key] = (k, v)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if mask is not None:
            s = s + mask
        ctx = (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3).reshape(B, L, D)
        return self.ln(self.lin(ctx, name + ".output.dense") + x, name + ".output.LayerNorm", self.t_eps)

    def bert(self, prefix, ids, enc, causal, past=0, cache=None):
        """ids [B, L] (positions past..past+L-1), enc [B, M, De] -> hidden [B, L, D]."""
        B, L = ids.shape
        x = self.W(prefix + "embeddings.word_embeddings.weight")[ids]
        x = x + self.W(prefix + "embeddings.position_embeddings.weight")[past: past + L]
        x = self.ln(x, prefix + "embeddings.LayerNorm", self.t_eps)
        mask = None
        if causal:  # additive (1 - m) * -10000 over [L, past + L]
            m = torch.ones(L, past + L)
            m[:, past:] = torch.tril(torch.ones(L, L))
            mask = (1.0 - m) * -10000.0
        for i in range(self.t["num_hidden_layers"]):
            q = f"{prefix}encoder.layer.{i}."
            x = self._attn(x, x, q + "attention", mask, cache, i, "self")
            x = self._attn(x, enc, q + "crossattention", None, cache, i, "cross")
            h = F.gelu(self.lin(x, q + "intermediate.dense"))
            x = self.ln(self.lin(h, q + "output.dense") + x, q + "output.LayerNorm", self.t_eps)
        return x

    def lm_head(self, h):  # [B, L, D] -> [B, L, V]
        p = "text_decoder.cls.predictions.transform."
        h = self.ln(F.gelu(self.lin(h, p + "dense")), p + "LayerNorm", self.t_eps)
        return F.linear(h, self.dec_w, self.dec_b)

    def decoder_logits(self, ids, enc):
        """Full-sequence decoder logits, no cache: ids [B, L], enc [B, M, De] -> [B, L, V]."""
        return self.lm_head(self.bert("text_decoder.bert.", ids, enc, causal=True))

    def encode_question(self, qids, image_states):  # [B, Lq] -> [B, Lq, D]
        return self.bert("text_encoder.", qids, image_states, causal=False)

    # -- decoding --------------------------------------------------------------------------------
    def _step_fn(self, enc, cache_cross):
        cache = {"cache_cross": cache_cross}
        state = {"past": 0}

        def step(new_ids):  # new_ids [B, n] -> last logits [B, V]
            h = self.bert("text_decoder.bert.", new_ids, enc, causal=True, past=state["past"], cache=cache)
            state["past"] += new_ids.shape[1]
            return self.lm_head(h[:, -1:])[:, 0]
        return step, cache

    def greedy(self, enc, start_ids, max_length=20, min_length=0, cache_cross=False, margins=None):
        """enc [1, M, De], start_ids list -> list of ids (start included, [SEP] included if hit)."""
        step, _ = self._step_fn(enc, cache_cross)
        ids = list(start_ids)
        logits = step(torch.tensor([ids]))
        while len(ids) < max_length:
            lg = logits[0].clone()
            if len(ids) < min_length:
                lg[self.sep] = -math.inf
            top2 = torch.topk(lg, 2).values
            if margins is not None:
                margins.append(float(top2[0] - top2[1]))
            nxt = int(torch.argmax(lg))
            ids.append(nxt)
            if nxt == self.sep:
                break
            logits = step(torch.tensor([[nxt]]))
        return ids

    def beam(self, enc, start_ids, num_beams=3, max_length=20, min_length=0, length_penalty=1.0):
        """HF BeamSearchScorer semantics (early_stopping=False): hypotheses are scored
        sum_logprobs / len(hyp_without_eos) ** length_penalty; the output gets [SEP] appended when
        shorter than max_length. Returns (ids, score)."""
        nb = num_beams
        encb = enc.expand(nb, -1, -1)
        step, cache = self._step_fn(encb, False)
        seqs = torch.tensor([list(start_ids)] * nb)
        scores = torch.zeros(nb)
        scores[1:] = -1e9
        hyps = []  # (score, list)
        worst = 1e9
        logits = step(seqs)
        done = False
        while True:
            cur_len = seqs.shape[1]
            lp = torch.log_softmax(logits, -1)
            if cur_len < min_length:
                lp[:, self.sep] = -math.inf
            V = lp.shape[1]
            flat = (lp + scores[:, None]).reshape(-1)
            top_s, top_i = torch.topk(flat, 2 * nb)
            next_s, next_t, next_b = [], [], []
            for rank in range(2 * nb):
                b, t, s = int(top_i[rank]) // V, int(top_i[rank]) % V, float(top_s[rank])
                if t == self.sep:
                    if rank >= nb:
                        continue
                    hyp = seqs[b].tolist()
                    sc = s / (len(hyp) ** length_penalty)
                    if len(hyps) < nb or sc > worst:
                        hyps.append((sc, hyp))
                        if len(hyps) > nb:
                            hyps.sort(key=lambda h: h[0])
                            hyps.pop(0)
                            worst = hyps[0][0]
                        else:
                            worst = min(sc, worst)
                else:
                    next_s.append(s)
                    next_t.append(t)
                    next_b.append(b)
                if len(next_s) == nb:
                    break
            if len(hyps) >= nb:
                done = done or worst >= float(top_s.max()) / (cur_len ** length_penalty)
            seqs = torch.cat([seqs[next_b], torch.tensor(next_t)[:, None]], 1)
            scores = torch.tensor(next_s)
            for key in list(cache):
                if key != "cache_cross":
                    k, v = cache[key]
                    cache[key] = (k[next_b], v[next_b])
            if done or seqs.shape[1] >= max_length:
                break
            logits = step(seqs[:, -1:])
        if not done:
            for b in range(nb):
                hyp = seqs[b].tolist()
                sc = float(scores[b]) / (len(hyp) ** length_penalty)
                if len(hyps) < nb or sc > worst:
                    hyps.append((sc, hyp))
                    if len(hyps) > nb:
                        hyps.sort(key=lambda h: h[0])
                        hyps.pop(0)
                        worst = hyps[0][0]
                    else:
                        worst = min(sc, worst)
        best = max(hyps, key=lambda h: h[0])
        ids = list(best[1])
        if len(ids) < max_length:
            ids.append(self.sep)
        return ids, best[0]

    def caption(self, pixels, prompt_ids=None, **kw):
        """prompt_ids: tokenizer output [CLS] p [SEP] or None; returns generated ids."""
        enc = self.vision(pixels)
        start = [self.bos] if prompt_ids is None else [self.bos] + list(prompt_ids[1:-1])
        if kw.pop("num_beams", 1) > 1:
            return self.beam(enc, start, **kw)[0]
        return self.greedy(enc, start, **kw)

    def question_ids(self, tok, question, first="cls"):
        ids = tok.encode(question)
        if first == "enc":
            ids[0] = self.bos + 1  # [ENC], the original BLIP's first question token
        return ids

    def answer(self, pixels, qids, **kw):
        enc = self.vision(pixels)
        qs = self.encode_question(torch.tensor([qids]), enc)
        if kw.pop("num_beams", 1) > 1:
            return self.beam(qs, [self.bos], **kw)[0]
        return self.greedy(qs, [self.bos], **kw)

    def answer_logliks(self, qstates, answers_ids):
        """Total log-likelihood of each answer ([DEC] a.. [SEP], first id already [DEC]) given the
        question states [1, Lq, D]; answers are padded into one batch as BLIP does."""
        n = len(answers_ids)
        L = max(len(a) for a in answers_ids)
        ids = torch.full((n, L), self.pad, dtype=torch.long)
        att = torch.zeros(n, L)
        for i, a in enumerate(answers_ids):
            ids[i, : len(a)] = torch.tensor(a)
            att[i, : len(a)] = 1
        # decoder self-attention mask: causal * padding, additive -10000
        causal = torch.tril(torch.ones(L, L))[None] * att[:, None, :]
        mask = ((1.0 - causal) * -10000.0)[:, None]
        enc = qstates.expand(n, -1, -1)
        x = self.W("text_decoder.bert.embeddings.word_embeddings.weight")[ids]
        x = x + self.W("text_decoder.bert.embeddings.position_embeddings.weight")[:L]
        x = self.ln(x, "text_decoder.bert.embeddings.LayerNorm", self.t_eps)
        for i in range(self.t["num_hidden_layers"]):
            q = f"text_decoder.bert.encoder.layer.{i}."
            x = self._attn(x, x, q + "attention", mask)
            x = self._attn(x, enc, q + "crossattention", None)
            h = F.gelu(self.lin(x, q + "intermediate.dense"))
            x = self.ln(self.lin(h, q + "output.dense") + x, q + "output.LayerNorm", self.t_eps)
        lp = torch.log_softmax(self.lm_head(x), -1)
        out = []
        for i, a in enumerate(answers_ids):
            out.append(float(sum(lp[i, t - 1, a[t]] for t in range(1, len(a)))))
        return out

    def rank(self, pixels, qids, answers_ids, k=128):
        """BLIP rank_answer: returns (best index, candidate indices, their log-likelihoods)."""
        enc = self.vision(pixels)
        qs = self.encode_question(torch.tensor([qids]), enc)
        first = torch.softmax(self.decoder_logits(torch.tensor([[self.bos]]), qs)[0, 0], -1)
        p1 = torch.tensor([float(first[a[1]]) for a in answers_ids])
        k = min(k, len(answers_ids))
        top = torch.topk(p1, k).indices.tolist()
        ll = self.answer_logliks(qs, [answers_ids[i] for i in top])
        best = top[int(np.argmax(ll))]
        return best, top, ll


def answer_ids_for(tok, blip, answer):
    ids = tok.encode(answer)
    ids[0] = blip.bos
    return ids
