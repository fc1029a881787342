"""Writes tests/fixtures/attention/*.safetensors: inputs, weights and PyTorch outputs for the
attention tests (tests/test_attention_*.cpp).

Run from the repo root:  /usr/bin/python3 training/make_attention_fixtures.py
(Debian python3-torch 1.13, CPU. Deterministic: torch.manual_seed(0). Every input is drawn in
f32, then the reference is computed in float64 from exactly those f32 values and rounded to f32
once, so the fixture carries no f32 accumulation noise.)

torch 1.13 has no F.scaled_dot_product_attention, so SDPA is written out as
softmax(Q K^T * scale + mask) V. Conventions shared with attention/sdpa.hpp:
  causal: query i (of Lq, the last Lq positions) sees key j iff j <= i + (Lk - Lq)
  window: additionally j > i + (Lk - Lq) - window
  kv_lens: keys j >= kv_lens[b] are padding
  GQA/MQA: query head h reads kv head h // (Hq / Hkv)   (repeat_interleave)
Files:
  sdpa.safetensors      SDPA cases (MHA/GQA/MQA, causal, window, padding)
  mha.safetensors       torch.nn.MultiheadAttention (self and cross, kdim != embed_dim), a GQA
                        self-attention layer (q/k/v/o_proj) and an MQA cross-attention layer
  additive.safetensors  Bahdanau scoring v^T tanh(W_q q + W_k k), query/key widths differ
  mla.safetensors       DeepSeek-V2-style latent attention, naive expanded form (no RoPE)
  linear.safetensors    linear attention (elu+1), causal and non-causal, naive O(n^2) form
  din.safetensors       DIN target attention: MLP over [q, k, q-k, q*k], no softmax
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "attention")
torch.manual_seed(0)
D64 = torch.float64


def rand(*shape, scale=1.0):
    """f32 values (what the C++ side reads), returned as float64 for the reference math."""
    return (torch.randn(*shape) * scale).to(torch.float32).to(D64)


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def i32(values):
    return torch.tensor(values, dtype=torch.int32)


def visible(lq, lk, causal, window, kv_len):
    """[lq, lk] bool: which keys each query may see (the attention/sdpa.hpp rule)."""
    i = torch.arange(lq).unsqueeze(1) + (lk - lq)
    j = torch.arange(lk).unsqueeze(0)
    ok = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        ok &= j <= i
    if window > 0:
        ok &= j > i - window
    if kv_len is not None:
        ok &= j < kv_len
    return ok


def sdpa_ref(q, k, v, causal=False, window=0, kv_lens=None, scale=None):
    """q [B,Hq,Lq,D], k [B,Hkv,Lk,D], v [B,Hkv,Lk,Dv] -> [B,Hq,Lq,Dv]; fully masked rows -> 0."""
    B, Hq, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    g = Hq // Hkv
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    mask = torch.stack([visible(Lq, Lk, causal, window, None if kv_lens is None else kv_lens[b]) for b in range(B)])
    mask = mask.unsqueeze(1)  # [B,1,Lq,Lk]
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.nan_to_num(p, nan=0.0)  # fully masked rows: 0/0 -> 0
    return torch.matmul(p, v)


def save(name, tensors):
    path = os.path.join(OUT, name)
    st.save_file({k: (v if v.dtype != D64 else f32(v)) for k, v in tensors.items()}, path,
                 metadata={"generator": "training/make_attention_fixtures.py"})
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


# ---------------------------------------------------------------------------------------------
def make_sdpa():
    t = {}
    cases = {
        # name: B, Hq, Hkv, Lq, Lk, D, Dv, causal, window, kv_lens
        "mha": (2, 4, 4, 5, 7, 16, 16, False, 0, None),
        "gqa_causal": (2, 6, 2, 6, 6, 8, 8, True, 0, None),
        "mqa_pad": (3, 4, 1, 4, 9, 16, 12, False, 0, [9, 5, 1]),
        "gqa_window": (2, 4, 2, 8, 8, 8, 8, True, 3, None),
        "decode_pad": (2, 4, 2, 1, 10, 16, 16, True, 0, [10, 6]),
    }
    for name, (B, Hq, Hkv, Lq, Lk, D, Dv, causal, window, lens) in cases.items():
        q, k, v = rand(B, Hq, Lq, D), rand(B, Hkv, Lk, D), rand(B, Hkv, Lk, Dv)
        t[f"{name}.q"], t[f"{name}.k"], t[f"{name}.v"] = q, k, v
        t[f"{name}.out"] = sdpa_ref(q, k, v, causal, window, lens)
        t[f"{name}.params"] = i32([int(causal), window])
        if lens is not None:
            t[f"{name}.kv_lens"] = i32(lens)
    save("sdpa.safetensors", t)


# ---------------------------------------------------------------------------------------------
class GqaAttention(torch.nn.Module):
    """q/k/v/o_proj attention with n_kv_heads (the layout attention/mha.hpp documents)."""

    def __init__(self, d, hq, hkv, hd, kv_dim=None):
        super().__init__()
        kv_dim = kv_dim or d
        self.hq, self.hkv, self.hd = hq, hkv, hd
        self.q_proj = torch.nn.Linear(d, hq * hd, dtype=D64)
        self.k_proj = torch.nn.Linear(kv_dim, hkv * hd, dtype=D64)
        self.v_proj = torch.nn.Linear(kv_dim, hkv * hd, dtype=D64)
        self.o_proj = torch.nn.Linear(hq * hd, d, dtype=D64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(p.to(torch.float32).to(D64))  # weights exactly representable in f32

    def forward(self, x, mem=None, causal=False, window=0, kv_lens=None):
        mem = x if mem is None else mem
        B, L, _ = x.shape
        Lm = mem.shape[1]
        q = self.q_proj(x).view(B, L, self.hq, self.hd).transpose(1, 2)
        k = self.k_proj(mem).view(B, Lm, self.hkv, self.hd).transpose(1, 2)
        v = self.v_proj(mem).view(B, Lm, self.hkv, self.hd).transpose(1, 2)
        o = sdpa_ref(q, k, v, causal, window, kv_lens)
        return self.o_proj(o.transpose(1, 2).reshape(B, L, self.hq * self.hd))


def make_mha():
    t = {}
    B, L, E, H = 2, 6, 32, 4
    # torch.nn.MultiheadAttention, self-attention: causal mask + key padding (no empty row).
    m = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=D64).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p, dtype=torch.float32).to(D64) * 0.15)
    x = rand(B, L, E)
    lens = [6, 4]
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)  # True = masked
    pad = torch.arange(L).unsqueeze(0) >= torch.tensor(lens).unsqueeze(1)
    with torch.no_grad():
        out, _ = m(x, x, x, attn_mask=causal, key_padding_mask=pad, need_weights=False)
    t["torch_self.in_proj_weight"] = m.in_proj_weight
    t["torch_self.in_proj_bias"] = m.in_proj_bias
    t["torch_self.out_proj.weight"] = m.out_proj.weight
    t["torch_self.out_proj.bias"] = m.out_proj.bias
    t["torch_self.x"], t["torch_self.kv_lens"], t["torch_self.out"] = x, i32(lens), out

    # torch.nn.MultiheadAttention, cross-attention with kdim = vdim = 24 (separate projections).
    Lm, KD = 9, 24
    m = torch.nn.MultiheadAttention(E, H, batch_first=True, kdim=KD, vdim=KD, dtype=D64).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p, dtype=torch.float32).to(D64) * 0.15)
    x, mem = rand(B, 3, E), rand(B, Lm, KD)
    lens = [9, 5]
    pad = torch.arange(Lm).unsqueeze(0) >= torch.tensor(lens).unsqueeze(1)
    with torch.no_grad():
        out, _ = m(x, mem, mem, key_padding_mask=pad, need_weights=False)
    t["torch_cross.q_proj_weight"] = m.q_proj_weight
    t["torch_cross.k_proj_weight"] = m.k_proj_weight
    t["torch_cross.v_proj_weight"] = m.v_proj_weight
    t["torch_cross.in_proj_bias"] = m.in_proj_bias
    t["torch_cross.out_proj.weight"] = m.out_proj.weight
    t["torch_cross.out_proj.bias"] = m.out_proj.bias
    t["torch_cross.x"], t["torch_cross.mem"], t["torch_cross.kv_lens"], t["torch_cross.out"] = x, mem, i32(lens), out

    # GQA self-attention (Hq 4, Hkv 2, hd 8): causal, causal + window 3, causal + padding.
    g = GqaAttention(E, 4, 2, 8)
    x = rand(B, 7, E)
    for k_, v_ in g.state_dict().items():
        t[f"gqa_self.{k_}"] = v_
    t["gqa_self.x"] = x
    t["gqa_self.kv_lens"] = i32([7, 5])
    with torch.no_grad():
        t["gqa_self.out_causal"] = g(x, causal=True)
        t["gqa_self.out_window"] = g(x, causal=True, window=3)
        t["gqa_self.out_pad"] = g(x, causal=True, kv_lens=[7, 5])

    # MQA cross-attention (Hq 4, Hkv 1, hd 8, memory width 24) with padding.
    g = GqaAttention(E, 4, 1, 8, kv_dim=KD)
    x, mem = rand(B, 5, E), rand(B, Lm, KD)
    for k_, v_ in g.state_dict().items():
        t[f"mqa_cross.{k_}"] = v_
    t["mqa_cross.x"], t["mqa_cross.mem"], t["mqa_cross.kv_lens"] = x, mem, i32([9, 3])
    with torch.no_grad():
        t["mqa_cross.out"] = g(x, mem, kv_lens=[9, 3])
    save("mha.safetensors", t)


# ---------------------------------------------------------------------------------------------
def additive_ref(q, k, v, wq, bq, wk, bk, va, kv_lens=None, causal=False):
    """score[b,i,j] = va . tanh(Wq q_i + bq + Wk k_j + bk); softmax over visible j; sum_j p v_j."""
    qp = q @ wq.T + bq  # [B, Lq, A]
    kp = k @ wk.T + bk  # [B, Lk, A]
    s = torch.tanh(qp.unsqueeze(2) + kp.unsqueeze(1)) @ va.reshape(-1)  # [B, Lq, Lk]
    B, Lq, Lk = s.shape
    mask = torch.stack([visible(Lq, Lk, causal, 0, None if kv_lens is None else kv_lens[b]) for b in range(B)])
    p = torch.nan_to_num(torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1), nan=0.0)
    return p @ v, p


def make_additive():
    B, Lq, Lk, Dq, Dk, A, Dv = 2, 3, 6, 12, 20, 16, 10
    t = {"q": rand(B, Lq, Dq), "k": rand(B, Lk, Dk), "v": rand(B, Lk, Dv),
         "q_proj.weight": rand(A, Dq, scale=0.3), "q_proj.bias": rand(A, scale=0.1),
         "k_proj.weight": rand(A, Dk, scale=0.3), "k_proj.bias": rand(A, scale=0.1),
         "v.weight": rand(1, A, scale=0.5), "kv_lens": i32([6, 4])}
    out, p = additive_ref(t["q"], t["k"], t["v"], t["q_proj.weight"], t["q_proj.bias"], t["k_proj.weight"],
                          t["k_proj.bias"], t["v.weight"], kv_lens=[6, 4])
    t["out"], t["weights"] = out, p
    save("additive.safetensors", t)


# ---------------------------------------------------------------------------------------------
def mla_ref(x, wq, wdkv, wukv, wo, H, dqk, dv, causal=True, kv_lens=None):
    """Naive expanded MLA: c = x Wdkv^T (the latent), k_h = c Wuk_h^T, v_h = c Wuv_h^T."""
    B, L, _ = x.shape
    q = (x @ wq.T).view(B, L, H, dqk).transpose(1, 2)
    c = x @ wdkv.T  # [B, L, r]
    kv = (c @ wukv.T).view(B, L, H, dqk + dv).transpose(1, 2)  # DeepSeek kv_b_proj layout
    k, v = kv[..., :dqk], kv[..., dqk:]
    o = sdpa_ref(q, k, v, causal=causal, kv_lens=kv_lens, scale=1.0 / math.sqrt(dqk))
    return o.transpose(1, 2).reshape(B, L, H * dv) @ wo.T


def make_mla():
    B, L, d, H, dqk, dv, r = 2, 7, 32, 4, 8, 6, 12
    t = {"x": rand(B, L, d),
         "q_proj.weight": rand(H * dqk, d, scale=d ** -0.5),
         "kv_a_proj.weight": rand(r, d, scale=d ** -0.5),
         "kv_b_proj.weight": rand(H * (dqk + dv), r, scale=r ** -0.5),
         "o_proj.weight": rand(d, H * dv, scale=(H * dv) ** -0.5),
         "dims": i32([H, dqk, dv, r]),
         "kv_lens": i32([7, 5])}
    args = (t["q_proj.weight"], t["kv_a_proj.weight"], t["kv_b_proj.weight"], t["o_proj.weight"], H, dqk, dv)
    t["out_causal"] = mla_ref(t["x"], *args, causal=True)
    t["out_pad"] = mla_ref(t["x"], *args, causal=False, kv_lens=[7, 5])
    save("mla.safetensors", t)


# ---------------------------------------------------------------------------------------------
def linear_ref(q, k, v, causal, kv_lens=None, eps=1e-6):
    """Katharopoulos et al., naive O(n^2): a_ij = phi(q_i).phi(k_j), phi = elu + 1."""
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    a = fq @ fk.transpose(-1, -2)  # [B, H, Lq, Lk]
    B, _, Lq, Lk = a.shape
    mask = torch.stack([visible(Lq, Lk, causal, 0, None if kv_lens is None else kv_lens[b]) for b in range(B)])
    a = a * mask.unsqueeze(1)
    return (a @ v) / (a.sum(-1, keepdim=True) + eps)


def make_linear():
    B, H, L, D, Dv = 2, 3, 9, 8, 6
    t = {"q": rand(B, H, L, D), "k": rand(B, H, L, D), "v": rand(B, H, L, Dv), "kv_lens": i32([9, 4])}
    t["out_noncausal"] = linear_ref(t["q"], t["k"], t["v"], False)
    t["out_causal"] = linear_ref(t["q"], t["k"], t["v"], True)
    t["out_pad"] = linear_ref(t["q"], t["k"], t["v"], False, kv_lens=[9, 4])
    save("linear.safetensors", t)


# ---------------------------------------------------------------------------------------------
class DinAttention(torch.nn.Module):
    """DIN activation unit: MLP(4D -> 16 -> 8 -> 1) with sigmoid hidden activations."""

    def __init__(self, d):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(4 * d, 16, dtype=D64), torch.nn.Sigmoid(),
                                       torch.nn.Linear(16, 8, dtype=D64), torch.nn.Sigmoid(),
                                       torch.nn.Linear(8, 1, dtype=D64))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn_like(p, dtype=torch.float32).to(D64) * 0.5)

    def forward(self, q, hist, lens):
        B, T, _ = hist.shape
        qe = q.unsqueeze(1).expand(B, T, q.shape[1])
        s = self.mlp(torch.cat([qe, hist, qe - hist, qe * hist], dim=-1)).squeeze(-1)  # [B, T]
        s = s * (torch.arange(T).unsqueeze(0) < torch.tensor(lens).unsqueeze(1))
        return (s.unsqueeze(-1) * hist).sum(1), s


def make_din():
    B, T, D = 3, 5, 8
    m = DinAttention(D)
    t = {f"{k}": v for k, v in m.state_dict().items()}
    t["q"], t["hist"], t["lens"] = rand(B, D), rand(B, T, D), i32([5, 3, 0])
    with torch.no_grad():
        t["out"], t["scores"] = m(t["q"], t["hist"], [5, 3, 0])
    save("din.safetensors", t)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_sdpa()
    make_mha()
    make_additive()
    make_mla()
    make_linear()
    make_din()
