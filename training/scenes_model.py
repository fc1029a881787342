"""The built-in xmodal scenes model (architecture "xmodal-scenes"): one small network that both
captions scene images and answers questions about them, as a prefix language model.

    image uint8 [3, S, S] -> /255, (x - mean) / std, + 2 coordinate channels (CoordConv)
      -> conv stack (3x3, ReLU; total stride 8) -> grid [G*G, C]
      -> Linear to d + learned 2-D position embedding [G*G, d]
      -> n_enc pre-LN transformer encoder layers (bidirectional self-attention over the grid)
      -> LayerNorm -> memory [G*G, d]
    tokens [L] -> embedding + learned position embedding
      -> n_dec pre-LN decoder layers: causal self-attention -> cross-attention to memory -> FFN
      -> LayerNorm -> logits = x @ tok_emb.weight^T (tied)

Sequences: VQA      <bos> question <sep> answer <eos>
           caption  <bos> <cap> <sep> caption <eos>
The loss covers only the tokens after <sep>. Only blocks the C++ side reproduces exactly:
Conv2d (zero padding), ReLU, Linear, LayerNorm, exact (erf) GELU, standard multi-head attention
with separate q/k/v/o projections (with biases). State-dict names are the checkpoint names.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "image_size": 96,          # every image is resized (PIL bicubic) to image_size^2
    "conv_channels": [24, 48, 48, 96],
    "conv_strides": [2, 2, 1, 2],
    "d_model": 96,
    "n_heads": 4,
    "d_ff": 384,
    "n_enc_layers": 2,
    "n_dec_layers": 3,
    "max_len": 48,
    "vocab_size": 0,           # set from the tokenizer
    "ln_eps": 1e-5,
    "grid_ln": True,           # LayerNorm on the projected conv features before the position code
}


def coord_channels(n, s, device=None):
    """[n, 2, s, s]: channel 0 is x, channel 1 is y, both -1 + 2*i/(s-1) (exactly as in C++)."""
    r = torch.arange(s, dtype=torch.float32, device=device) * (2.0 / (s - 1)) - 1.0
    xs = r.view(1, 1, 1, s).expand(n, 1, s, s)
    ys = r.view(1, 1, s, 1).expand(n, 1, s, s)
    return torch.cat([xs, ys], 1)


def sincos_2d(g, d):
    """[g*g, d]: row-major (y, x) cells; d/4 frequencies from pi/g to pi, sin/cos of x then y."""
    n = d // 4
    k = torch.arange(n, dtype=torch.float64)
    omega = (math.pi / g) * (float(g) ** (k / max(1, n - 1)))
    pos = torch.arange(g, dtype=torch.float64)
    ang = pos[:, None] * omega[None, :]  # [g, n]
    sx, cx = torch.sin(ang), torch.cos(ang)
    out = torch.zeros(g, g, d, dtype=torch.float64)
    out[:, :, 0:n] = sx[None, :, :]
    out[:, :, n:2 * n] = cx[None, :, :]
    out[:, :, 2 * n:3 * n] = sx[:, None, :]
    out[:, :, 3 * n:4 * n] = cx[:, None, :]
    return out.reshape(g * g, d).float()


class Attention(nn.Module):
    """Multi-head attention, separate projections. Returns [B, Lq, d]."""

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

    def kv(self, mem):  # mem [B, Lk, d] -> k, v [B, h, Lk, dh]
        return self.split(self.k_proj(mem)), self.split(self.v_proj(mem))

    def attend(self, x, k, v, causal):  # x [B, Lq, d], k/v [B, h, Lk, dh] -> [B, Lq, d]
        q = self.split(self.q_proj(x))
        s = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1]))
        if causal:
            lq, lk = s.shape[-2], s.shape[-1]
            m = torch.ones(lq, lk, dtype=torch.bool, device=x.device).triu(lk - lq + 1)
            s = s.masked_fill(m, float("-inf"))
        o = torch.softmax(s, -1) @ v
        b, _, l, _ = o.shape
        return self.o_proj(o.transpose(1, 2).reshape(b, l, -1))

    def forward(self, x, mem=None, causal=False):
        k, v = self.kv(x if mem is None else mem)
        return self.attend(x, k, v, causal)


class FFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.fc1 = nn.Linear(d, f)
        self.fc2 = nn.Linear(f, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d, h, f, eps):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, h)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.ffn = FFN(d, f)

    def forward(self, x):  # x [B, N, d]
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class DecoderLayer(nn.Module):
    def __init__(self, d, h, f, eps):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = Attention(d, h)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.cross_attn = Attention(d, h)
        self.ln3 = nn.LayerNorm(d, eps=eps)
        self.ffn = FFN(d, f)

    def forward(self, x, ck, cv):
        """x [B*k, L, d] (k sequences per image, grouped by image); ck/cv [B, h, N, dh]."""
        x = x + self.self_attn(self.ln1(x), causal=True)
        # Cross-attention has no interaction between query rows, so the k sequences of an
        # image are flattened into one query block against that image's memory.
        bk, l, d = x.shape
        b = ck.shape[0]
        y = self.ln2(x).reshape(b, (bk // b) * l, d)
        x = x + self.cross_attn.attend(y, ck, cv, causal=False).reshape(bk, l, d)
        return x + self.ffn(self.ln3(x))


class ScenesModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        d, h, f, eps = cfg["d_model"], cfg["n_heads"], cfg["d_ff"], cfg["ln_eps"]
        convs, cin = [], 5
        for c, s in zip(cfg["conv_channels"], cfg["conv_strides"]):
            convs.append(nn.Conv2d(cin, c, 3, stride=s, padding=1))
            cin = c
        self.convs = nn.ModuleList(convs)
        g = cfg["image_size"]
        for s in cfg["conv_strides"]:
            g = (g + 2 - 3) // s + 1
        self.grid = g
        self.img_proj = nn.Linear(cin, d)
        # With PyTorch's default conv/linear init the projected conv features start ~100x smaller
        # than the position code, so content is drowned and colour lookups stay at chance for
        # thousands of steps; a LayerNorm puts content and position on the same scale.
        self.img_ln = nn.LayerNorm(d, eps=cfg["ln_eps"]) if cfg.get("grid_ln", False) else None
        # Learned, but initialised with a 2-D sin/cos code of amplitude 1 so that positions are
        # as salient as content from the start (with a 0.02 random init a first run spent
        # 2,000+ steps at chance on left/right questions).
        self.img_pos = nn.Parameter(sincos_2d(g, d))
        self.enc_layers = nn.ModuleList([EncoderLayer(d, h, f, eps) for _ in range(cfg["n_enc_layers"])])
        self.enc_ln = nn.LayerNorm(d, eps=eps)
        self.tok_emb = nn.Embedding(cfg["vocab_size"], d)
        self.pos_emb = nn.Parameter(torch.randn(cfg["max_len"], d) * 0.02)
        self.dec_layers = nn.ModuleList([DecoderLayer(d, h, f, eps) for _ in range(cfg["n_dec_layers"])])
        self.dec_ln = nn.LayerNorm(d, eps=eps)
        nn.init.normal_(self.tok_emb.weight, std=0.02)

    def normalize(self, img_u8):
        """img_u8 [B, 3, S, S] uint8 -> [B, 5, S, S] float (normalised RGB + coords)."""
        x = img_u8.float() * (1.0 / 255.0)
        x = (x - 0.5) / 0.5
        return torch.cat([x, coord_channels(x.shape[0], x.shape[-1], x.device)], 1)

    def encode(self, x):
        """x [B, 5, S, S] (from normalize) -> memory [B, G*G, d]."""
        for c in self.convs:
            x = F.relu(c(x))
        x = x.flatten(2).transpose(1, 2)  # [B, G*G, C], row-major over (y, x)
        x = self.img_proj(x)
        if self.img_ln is not None:
            x = self.img_ln(x)
        x = x + self.img_pos
        for layer in self.enc_layers:
            x = layer(x)
        return self.enc_ln(x)

    def cross_kv(self, mem):
        """mem [B, N, d] -> per decoder layer (k, v), each [B, h, N, dh]."""
        return [layer.cross_attn.kv(mem) for layer in self.dec_layers]

    def decode(self, tokens, kvs):
        """tokens [B*k, L] int64 (k sequences per image, grouped) -> logits [B*k, L, V]."""
        L = tokens.shape[1]
        x = self.tok_emb(tokens) + self.pos_emb[:L]
        for layer, (ck, cv) in zip(self.dec_layers, kvs):
            x = layer(x, ck, cv)
        return self.dec_ln(x) @ self.tok_emb.weight.t()

    def forward(self, img_u8, tokens):
        """img_u8 [B, 3, S, S] uint8, tokens [B*k, L] -> logits [B*k, L, V]."""
        return self.decode(tokens, self.cross_kv(self.encode(self.normalize(img_u8))))


def count_params(model):
    return sum(p.numel() for p in model.parameters())
