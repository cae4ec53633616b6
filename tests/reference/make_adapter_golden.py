#!/usr/bin/python3
"""make_adapter_golden.py: random ST-Adapter checkpoints on the tiny test
backbone tests/data/models/hf, and PyTorch golden outputs of the adapted
model for the stacl C test tests/golden/test_adapter_golden.c.

    /usr/bin/python3 tests/reference/make_adapter_golden.py [--check]

Writes tests/data/adapter/<case>/{adapter.safetensors,input.npy [B,T,3,H,W],
tokens.npy [B,T,L,W], logits.npy [B,classes]} for two placements:
  mlp_all    adapter_pre_mlp in every block, kernel (3, 1, 1) (the 12x384
             K400 preset's placement), plain reference names;
  attn_mlp   adapter_pre_attn + adapter_pre_mlp in the last 2 blocks, kernel
             (3, 3, 3), names with a `visual.` prefix and a backbone tensor
             that the loader must ignore.
The adapter weights are random and non-zero (the reference init zeroes the
conv, which would make every adapter an identity and test nothing).

The adapted model is written here from the ST-Adapter paper/reference
semantics in float64 with plain torch ops: per adapter, on the patch tokens
only, x[:, 1:] += fc2(conv3d_depthwise(fc1(x[:, 1:]))) with the conv over
[T, h, w] (zero padding k // 2, bias, no activation), placed on the residual
stream before ln_1 and/or ln_2; head: class tokens averaged over frames,
ln_post, fc (eval: no dropout). The backbone weights and its block math come
from make_golden.py (already checked against torch.nn modules there).
--check regenerates into a temporary directory and compares bytes.
"""

import argparse
import filecmp
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden as mg  # noqa: E402
st = mg.st

CASES = {
    "mlp_all": dict(pre_attn=False, pre_mlp=True, last=3, aw=32, kernel=(3, 1, 1), classes=5,
                    prefix="", clips=2, frames=3, seed=51),
    "attn_mlp": dict(pre_attn=True, pre_mlp=True, last=2, aw=16, kernel=(3, 3, 3), classes=7,
                     prefix="visual.", clips=2, frames=3, seed=52),
}


def make_adapter(spec, case, gen):
    """Random non-zero adapter + head tensors (float32), reference names."""
    w, layers = spec["width"], spec["layers"]
    aw, (kt, kh, kw) = case["aw"], case["kernel"]
    r = lambda *s, std: (torch.randn(*s, generator=gen, dtype=torch.float64) * std).float()  # noqa: E731
    t = {}
    for i in range(layers - case["last"], layers):
        for site, on in (("adapter_pre_attn", case["pre_attn"]), ("adapter_pre_mlp", case["pre_mlp"])):
            if not on:
                continue
            p = "transformer.resblocks.%d.%s." % (i, site)
            t[p + "fc1.weight"] = r(aw, w, std=w ** -0.5)
            t[p + "fc1.bias"] = r(aw, std=0.1)
            t[p + "conv.weight"] = r(aw, 1, kt, kh, kw, std=0.8 / (kt * kh * kw) ** 0.5)
            t[p + "conv.bias"] = r(aw, std=0.1)
            t[p + "fc2.weight"] = r(w, aw, std=aw ** -0.5)
            t[p + "fc2.bias"] = r(w, std=0.1)
    t["fc.weight"] = r(case["classes"], w, std=0.2)
    t["fc.bias"] = r(case["classes"], std=0.1)
    return t


def adapter(x, t, p, B, T):
    """x [B*T, L, w] float64; the adapter with tensor prefix p."""
    d = lambda n: t[p + n].double()  # noqa: E731
    BT, L, w = x.shape
    g = int(round((L - 1) ** 0.5))
    h = x[:, 1:, :] @ d("fc1.weight").t() + d("fc1.bias")            # [BT, P, A]
    A = h.shape[-1]
    h = h.reshape(B, T, g, g, A).permute(0, 4, 1, 2, 3)               # [B, A, T, g, g]
    k = d("conv.weight")
    h = F.conv3d(h, k, d("conv.bias"), padding=tuple(s // 2 for s in k.shape[2:]), groups=A)
    h = h.permute(0, 2, 3, 4, 1).reshape(BT, L - 1, A)
    out = x.clone()
    out[:, 1:, :] = x[:, 1:, :] + h @ d("fc2.weight").t() + d("fc2.bias")
    return out


def adapted_forward(v, spec, t, pixels, B, T):
    """pixels [B*T, 3, H, W] float64 -> (tokens [B*T, L, w], logits [B, C])."""
    p = spec["patch"]
    x = F.conv2d(pixels, v["conv"], stride=p).flatten(2).transpose(1, 2)
    BT, _, w = x.shape
    x = torch.cat([v["cls"].expand(BT, 1, w), x], 1) + v["pos"]
    x = mg.layer_norm(x, v["ln_pre_w"], v["ln_pre_b"])
    for i, blk in enumerate(v["blocks"]):
        pa, pm = "transformer.resblocks.%d.adapter_pre_attn." % i, "transformer.resblocks.%d.adapter_pre_mlp." % i
        if pa + "fc1.weight" in t:
            x = adapter(x, t, pa, B, T)
        x = x + mg.attention_fused(mg.layer_norm(x, blk["ln1_w"], blk["ln1_b"]), blk, spec["heads"])
        if pm + "fc1.weight" in t:
            x = adapter(x, t, pm, B, T)
        h = mg.activation(mg.layer_norm(x, blk["ln2_w"], blk["ln2_b"]) @ blk["fc1_w"].t() + blk["fc1_b"], spec["act"])
        x = x + h @ blk["fc2_w"].t() + blk["fc2_b"]
    cls = x.reshape(B, T, x.shape[1], w)[:, :, 0, :].mean(1)          # mean over frames, then ln_post
    y = mg.layer_norm(cls, v["ln_post_w"], v["ln_post_b"])
    logits = y @ t["fc.weight"].double().t() + t["fc.bias"].double()
    return x, logits


def build(data_dir):
    torch.set_num_threads(1)
    spec = mg.SPECS["hf"]
    v = mg.canonical_from_file(spec, os.path.join(data_dir, "models", "hf"))
    for name, case in CASES.items():
        gen = torch.Generator().manual_seed(case["seed"])
        t = make_adapter(spec, case, gen)
        B, T, S = case["clips"], case["frames"], spec["image"]
        pixels = torch.randn(B, T, 3, S, S, generator=gen, dtype=torch.float64).float()
        tokens, logits = adapted_forward(v, spec, t, pixels.double().reshape(B * T, 3, S, S), B, T)
        out = os.path.join(data_dir, "adapter", name)
        os.makedirs(out, exist_ok=True)
        items = [(case["prefix"] + k, val) for k, val in t.items()]
        if case["prefix"]:
            items.append(("visual.conv1.weight", torch.zeros(2, 3, 2, 2)))  # backbone tensor: ignored
        st.save(os.path.join(out, "adapter.safetensors"), items)
        mg.save_npy(os.path.join(out, "input.npy"), pixels)
        mg.save_npy(os.path.join(out, "tokens.npy"), tokens.reshape(B, T, *tokens.shape[1:]))
        mg.save_npy(os.path.join(out, "logits.npy"), logits)
        print("%s: tokens scale %.3f, logits %s" % (name, tokens.abs().max().item(), logits.shape))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with tests/data")
    ap.add_argument("--data-dir", default=os.path.join(mg.REPO, "tests", "data"))
    a = ap.parse_args()
    if not a.check:
        build(a.data_dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.join(a.data_dir, "models"), os.path.join(tmp, "models"))
        build(tmp)
        bad = 0
        for name in CASES:
            for f in ("adapter.safetensors", "input.npy", "tokens.npy", "logits.npy"):
                p = os.path.join("adapter", name, f)
                if not filecmp.cmp(os.path.join(tmp, p), os.path.join(a.data_dir, p), shallow=False):
                    print("differs: " + p)
                    bad = 1
        print("check: " + ("FAILED" if bad else "identical"))
        return bad


if __name__ == "__main__":
    sys.exit(main())
