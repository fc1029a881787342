"""Writes the core-I/O test fixtures with training/st.py (the reference safetensors writer).

Run from the repository root:  /usr/bin/python3 training/make_io_fixtures.py

- tests/fixtures/safetensors/st_py.safetensors: one tensor per dtype, values given by formulas
  that tests/test_safetensors.cpp re-derives independently. st.py writes in name order with no
  alignment, so b_f32 (after the 3-byte a_u8) is misaligned in the file: the reader must copy it.
- tests/fixtures/models/tiny/: a tiny model directory (config.json + model.safetensors) used by
  tests/test_weights.cpp and tests/cli/info.sh. 88 floating-point parameters + a 6-element i64
  buffer; mixed f32/bf16/f16 storage to exercise the converting loader.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- one tensor per dtype -------------------------------------------------------------------
out = os.path.join(root, "tests/fixtures/safetensors")
os.makedirs(out, exist_ok=True)
tensors = {
    "a_u8": torch.tensor([1, 2, 3], dtype=torch.uint8),
    "b_f32": (torch.arange(6, dtype=torch.float32) * 0.25 - 1).reshape(2, 3),
    "c_bf16": torch.tensor([1, -2, 0.5, 3.140625], dtype=torch.bfloat16),
    "d_f16": torch.tensor([0, 1, -2, 0.5, 65504, 2.0**-14, 2.0**-24, float("inf")], dtype=torch.float16),
    "e_i64": torch.arange(4, dtype=torch.int64) - 2,
    "f_i32": torch.tensor([[7], [-8]], dtype=torch.int32),
    "g_f64": torch.tensor([0.1, 1e300], dtype=torch.float64),
}
# st.py has no F64 entry; add it for this fixture only.
st._DT.setdefault(torch.float64, "F64")
st._TD.setdefault("F64", torch.float64)
st.save_file(tensors, os.path.join(out, "st_py.safetensors"),
             metadata={"format": "pt", "made_by": "training/make_io_fixtures.py"})
back = st.load_file(os.path.join(out, "st_py.safetensors"))
for k, v in tensors.items():
    assert torch.equal(back[k], v), k

# --- tiny model directory -------------------------------------------------------------------
tiny = os.path.join(root, "tests/fixtures/models/tiny")
os.makedirs(tiny, exist_ok=True)
config = {
    "architecture": "xmodal-test",
    "format_version": 1,
    "hidden_size": 4,
    "num_layers": 2,
    "vocab_size": 10,
    "layer_norm_eps": 1e-5,
    "use_bias": True,
    "name": "tiny",
    "image_mean": [0.5, 0.25, 0.125],
    "vision_config": {"hidden_size": 8, "patch_size": 2},
}
with open(os.path.join(tiny, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
model = {
    "embed.weight": (torch.arange(40, dtype=torch.float32) / 10).reshape(10, 4),   # 40
    "layers.0.fc.weight": torch.eye(4),                                           # 16
    "layers.0.fc.bias": torch.tensor([0.5, -0.5, 1.0, -1.0]),                     # 4
    "layers.1.fc.weight": (torch.arange(16) * 0.5).reshape(4, 4).to(torch.bfloat16),  # 16
    "layers.1.fc.bias": (torch.arange(1, 5) * 0.25).to(torch.float16),            # 4
    "norm.weight": torch.ones(4),                                                 # 4
    "norm.bias": torch.zeros(4),                                                  # 4
    "position_ids": torch.arange(6, dtype=torch.int64).reshape(1, 6),             # buffer
}
st.save_file(model, os.path.join(tiny, "model.safetensors"), metadata={"format": "pt"})
print("wrote", out, "and", tiny)
