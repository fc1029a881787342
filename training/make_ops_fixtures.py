"""Writes tests/fixtures/ops/ops.safetensors: inputs and PyTorch outputs for core/ops tests.

Run from the repo root:  /usr/bin/python3 training/make_ops_fixtures.py
(Debian python3-torch 1.13, CPU; deterministic: torch.manual_seed(0), float64 math cast to f32
where it matters so the reference itself carries no f32 rounding noise.)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.manual_seed(0)
out = {}


def f32(t):
    return t.to(torch.float32).contiguous()


def rand(*shape, scale=1.0):
    return f32(torch.randn(*shape, dtype=torch.float64) * scale)


# Linear: odd sizes (tails) and a BERT-like size; y = x W^T + b, then exact GELU.
for name, (lead, k, n) in {"lin_a": ((3, 5), 37, 29), "lin_b": ((7,), 384, 96)}.items():
    x, w, b = rand(*lead, k), rand(n, k, scale=k ** -0.5), rand(n, scale=0.1)
    y = F.linear(x.double(), w.double(), b.double())
    out[name + ".x"], out[name + ".w"], out[name + ".b"] = x, w, b
    out[name + ".y"] = f32(y)
    out[name + ".y_gelu"] = f32(F.gelu(y))
    out[name + ".y_nobias_relu"] = f32(F.relu(F.linear(x.double(), w.double())))

# LayerNorm: a large common offset (mean 100) checks the variance is not E[x^2]-E[x]^2 in f32.
for name, (shape, eps, off) in {"ln_a": ((4, 7, 48), 1e-5, 100.0), "ln_b": ((3, 768), 1e-12, 0.0)}.items():
    x = f32(torch.randn(*shape, dtype=torch.float64) * 2.0 + off)
    d = shape[-1]
    g, b = rand(d, scale=0.5) + 1.0, rand(d, scale=0.1)
    out[name + ".x"], out[name + ".g"], out[name + ".b"] = x, g, b
    out[name + ".y"] = f32(F.layer_norm(x.double(), (d,), g.double(), b.double(), eps))
    out[name + ".eps"] = torch.tensor([eps], dtype=torch.float32)

# Conv2d: stride 2 + padding 1 on a 3-channel odd-sized image; a 16->32 3x3 conv; a ViT-style
# patch embedding (stride = kernel); a depthwise conv (groups = channels).
convs = {
    "conv_a": ((2, 3, 17, 19), (8, 3, 3, 3), 2, 1, 1),
    "conv_b": ((1, 16, 9, 9), (32, 16, 3, 3), 1, 1, 1),
    "conv_c": ((1, 3, 32, 32), (24, 3, 8, 8), 8, 0, 1),
    "conv_d": ((2, 16, 10, 10), (16, 1, 3, 3), 1, 1, 16),
}
for name, (xs, ws, s, p, g) in convs.items():
    x, w, b = rand(*xs), rand(*ws, scale=0.3), rand(ws[0], scale=0.1)
    out[name + ".x"], out[name + ".w"], out[name + ".b"] = x, w, b
    y = F.conv2d(x.double(), w.double(), b.double(), stride=s, padding=p, groups=g)
    out[name + ".y"] = f32(y)
    out[name + ".y_relu"] = f32(F.relu(y))
    out[name + ".params"] = torch.tensor([s, p, g], dtype=torch.int32)

# Activations over a wide range.
x = f32(torch.linspace(-8.0, 8.0, 1001, dtype=torch.float64))
out["act.x"] = x
out["act.gelu_erf"] = f32(F.gelu(x.double()))
out["act.gelu_tanh"] = f32(F.gelu(x.double(), approximate="tanh"))
out["act.tanh"] = f32(torch.tanh(x.double()))
out["act.sigmoid"] = f32(torch.sigmoid(x.double()))

# Softmax / log-softmax with a wide range of logits (max subtraction matters).
x = rand(5, 77, scale=20.0)
out["sm.x"] = x
out["sm.y"] = f32(torch.softmax(x.double(), -1))
out["sm.logy"] = f32(torch.log_softmax(x.double(), -1))

# Max pooling with padding (ResNet stem: k3 s2 p1).
x = rand(1, 4, 9, 9)
out["mp.x"] = x
out["mp.y"] = f32(F.max_pool2d(x, 3, 2, 1))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops", "ops.safetensors")
st.save_file(out, path, metadata={"made_by": "training/make_ops_fixtures.py", "torch": torch.__version__})
print("wrote", os.path.normpath(path), len(out), "tensors")
