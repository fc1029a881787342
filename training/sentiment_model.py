"""The xmodal sentiment model (architecture "xmodal-sentiment"): text tokens attend to audio
frames (MulT-style cross-modal attention), plus the text-only and audio-only baselines trained
with the same recipe.

    audio: log-mel [T, 80] -> (x - feature_mean) / feature_std  [80, T] (mel bins as channels)
      -> Conv1d k3 stride 2 pad 1 + ReLU [C1, T/2] -> Conv1d k3 stride 2 pad 1 + ReLU [d, T/4]
      -> frames [T/4, d] + sinusoidal positions   (one frame = 40 ms)
      -> n_audio_layers pre-LN transformer layers (self-attention) -> audio_ln = memory [T/4, d]
    text: sentencepiece ids [L] -> tok_emb + pos_emb -> n_text_layers pre-LN self-attention layers
    fusion: n_fusion_layers of  h += CrossAttn(ln1(h), memory);  h += FFN(ln2(h))
      (queries = text tokens, keys/values = audio frames)
    head: final_ln -> mean over the text tokens -> Linear(d, 3): logits of (negative, neutral, positive)

Baselines ("mode"): "text" replaces each fusion layer by a text self-attention layer and never
reads audio; "audio" replaces them by audio self-attention layers and pools the audio frames.
Padding in batches is masked everywhere (and the first conv's output is zeroed past each clip's
length), so a padded batch computes exactly what the C++ side computes for one clip.
Only blocks the C++ side reproduces exactly: Conv1d (zero padding; a Conv2d with a 1 x 3 kernel there), ReLU, Linear, LayerNorm,
exact (erf) GELU, multi-head attention with separate q/k/v/o projections (with biases).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LABELS = ["negative", "neutral", "positive"]

DEFAULT_CONFIG = {
    "n_mels": 80,
    "conv_channels": [64, 64],  # the second must equal d_model
    "d_model": 64,
    "n_heads": 4,
    "d_ff": 128,
    "n_audio_layers": 2,
    "n_text_layers": 1,
    "n_fusion_layers": 2,
    "max_text_len": 32,
    "vocab_size": 0,        # from the tokenizer
    "ln_eps": 1e-5,
    "feature_mean": 0.0,    # from the training features
    "feature_std": 1.0,
    "mode": "fused",        # fused | text | audio
}


def sinusoid(n, d):
    """[n, d] float32: pe[t, 2i] = sin(t w_i), pe[t, 2i+1] = cos(t w_i), w_i = 10000^(-2i/d)
    (computed in float64, as in C++)."""
    t = torch.arange(n, dtype=torch.float64)[:, None]
    w = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float64) / d)[None, :]
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * w)
    pe[:, 1::2] = torch.cos(t * w)
    return pe.float()


def conv_len(n):
    """Output length of a 3-wide, stride-2, pad-1 convolution: ceil(n / 2)."""
    return (n + 1) // 2


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.o_proj = nn.Linear(d, d)

    def split(self, x):  # [B, L, d] -> [B, h, L, dh]
        b, l, d = x.shape
        return x.view(b, l, self.h, d // self.h).transpose(1, 2)

    def forward(self, x, mem, key_mask=None, return_probs=False):
        """x [B, Lq, d], mem [B, Lk, d], key_mask [B, Lk] bool (True = real) -> [B, Lq, d]
        (and the probabilities [B, h, Lq, Lk] when asked)."""
        q, k, v = self.split(self.q_proj(x)), self.split(self.k_proj(mem)), self.split(self.v_proj(mem))
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if key_mask is not None:
            s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        p = s.softmax(-1)
        o = (p @ v).transpose(1, 2).reshape(x.shape)
        o = self.o_proj(o)
        return (o, p) if return_probs else o


class FFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.fc1 = nn.Linear(d, f)
        self.fc2 = nn.Linear(f, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Layer(nn.Module):
    """Pre-LN: h += Attn(ln1(h), ln1(h) or memory); h += FFN(ln2(h))."""

    def __init__(self, d, h, f, eps):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, h)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.ffn = FFN(d, f)

    def forward(self, x, mask, memory=None, mem_mask=None, return_probs=False):
        n = self.ln1(x)
        if memory is None:
            a = self.attn(n, n, mask, return_probs)
        else:
            a = self.attn(n, memory, mem_mask, return_probs)
        probs = None
        if return_probs:
            a, probs = a
        x = x + a
        x = x + self.ffn(self.ln2(x))
        return (x, probs) if return_probs else x


class SentimentModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        c = self.cfg
        d, h, f, eps = c["d_model"], c["n_heads"], c["d_ff"], c["ln_eps"]
        self.mode = c["mode"]
        if self.mode in ("fused", "audio"):
            c1, c2 = c["conv_channels"]
            assert c2 == d, "conv_channels[1] must equal d_model"
            self.conv1 = nn.Conv1d(c["n_mels"], c1, 3, stride=2, padding=1)
            self.conv2 = nn.Conv1d(c1, c2, 3, stride=2, padding=1)
            self.audio_layers = nn.ModuleList(Layer(d, h, f, eps) for _ in range(c["n_audio_layers"]))
            self.audio_ln = nn.LayerNorm(d, eps=eps)
        if self.mode in ("fused", "text"):
            self.tok_emb = nn.Embedding(c["vocab_size"], d)
            self.pos_emb = nn.Parameter(torch.randn(c["max_text_len"], d) * 0.02)
            self.text_layers = nn.ModuleList(Layer(d, h, f, eps) for _ in range(c["n_text_layers"]))
        # The same depth in every mode: cross-attention layers, or self-attention on one modality.
        self.fusion_layers = nn.ModuleList(Layer(d, h, f, eps) for _ in range(c["n_fusion_layers"]))
        self.final_ln = nn.LayerNorm(d, eps=eps)
        self.classifier = nn.Linear(d, len(LABELS))

    # feats [B, T, 80] raw log-mel (padded anywhere), lens [B] -> memory [B, T', d], mask [B, T']
    def encode_audio(self, feats, lens):
        c = self.cfg
        x = (feats - c["feature_mean"]) / c["feature_std"]
        t = torch.arange(x.shape[1], device=x.device)
        x = x.masked_fill(~(t[None, :] < lens[:, None])[:, :, None], 0.0)
        x = F.relu(self.conv1(x.transpose(1, 2)))  # [B, C1, T1]
        l1 = conv_len(lens)
        t1 = torch.arange(x.shape[2], device=x.device)
        x = x * (t1[None, :] < l1[:, None])[:, None, :]
        x = F.relu(self.conv2(x))  # [B, d, T2]
        l2 = conv_len(l1)
        t2 = x.shape[2]
        x = x.transpose(1, 2) + sinusoid(t2, c["d_model"]).to(x.device)[None]
        mask = torch.arange(t2, device=x.device)[None, :] < l2[:, None]
        for layer in self.audio_layers:
            x = layer(x, mask)
        return self.audio_ln(x), mask

    # ids [B, L] (padded), lens [B] -> states [B, L, d], mask [B, L]
    def encode_text(self, ids, lens):
        L = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb[:L][None]
        mask = torch.arange(L, device=ids.device)[None, :] < lens[:, None]
        for layer in self.text_layers:
            x = layer(x, mask)
        return x, mask

    def forward(self, ids=None, text_lens=None, feats=None, audio_lens=None, return_all=False):
        """-> logits [B, 3]; with return_all, also a dict of intermediate tensors."""
        out = {}
        if self.mode in ("fused", "audio"):
            mem, mem_mask = self.encode_audio(feats, audio_lens)
            out["memory"] = mem
        if self.mode in ("fused", "text"):
            h, h_mask = self.encode_text(ids, text_lens)
            out["text"] = h
        if self.mode == "audio":
            h, h_mask = mem, mem_mask
        probs = None
        for i, layer in enumerate(self.fusion_layers):
            last = i == len(self.fusion_layers) - 1
            if self.mode == "fused":
                r = layer(h, h_mask, mem, mem_mask, return_probs=return_all and last)
                h, probs = r if (return_all and last) else (r, None)
            else:
                h = layer(h, h_mask)
        out["fused"] = h
        h = self.final_ln(h)
        m = h_mask.to(h.dtype)[:, :, None]
        pooled = (h * m).sum(1) / m.sum(1)
        logits = self.classifier(pooled)
        if return_all:
            out["pooled"] = pooled
            out["logits"] = logits
            if probs is not None:
                out["attention"] = probs.mean(1)  # [B, L, T'] averaged over heads
            return logits, out
        return logits


def count_params(m):
    return sum(p.numel() for p in m.parameters())
