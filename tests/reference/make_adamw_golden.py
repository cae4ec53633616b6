#!/usr/bin/python3
"""make_adamw_golden.py: golden data to check stacl's host AdamW (with global
gradient-norm clipping) against torch.optim.AdamW.

    /usr/bin/python3 tests/reference/make_adamw_golden.py [--check]

Writes tests/data/train/adamw/ (all little-endian):
  params0.safetensors   F32 initial parameters, in this order (the order of
                        the parameter list given to clip_grad_norm_):
                          "blk.fc1.weight"  [5, 7]        decay
                          "blk.fc1.bias"    [5]           no decay
                          "blk.conv.weight" [3, 1, 3, 1, 1] decay
                          "blk.conv.bias"   [3]           no decay
                          "fc.weight"       [4, 6]        decay
                          "fc.bias"         [4]           no decay
  grads.safetensors     F32 "step{i}/{name}", i = 0..4: the raw gradient of
                        step i (before clipping), step-major, names as above
  expected.safetensors  F32 "step{i}/{name}": the parameters after step i
  schedule.safetensors  lrs: F64 [5]: the learning rate of step i
                        norms: F64 [5]: the pre-clip global gradient norm of step
                        i as clip_grad_norm_ returns it (a float32 value)

What torch computes (float32 tensors on the CPU, torch 1.13), per step i:
  1. p.grad = grads[step{i}/name] for every parameter;
  2. norm = torch.nn.utils.clip_grad_norm_(all 6 params, max_norm=1.0):
     norm = || (||g_1||_2, ..., ||g_6||_2) ||_2 (one global norm, float32),
     coef = min(1, 1.0 / (norm + 1e-6)) (float32), every g *= coef (steps
     with norm <= 1 - 1e-6 are unchanged: coef is exactly 1);
  3. group['lr'] = lrs[i] for both groups, then AdamW.step() with two param
     groups: decay (tensors with ndim >= 2) weight_decay 0.05, no-decay
     (1-D: biases) weight_decay 0; betas (0.9, 0.999), eps 1e-8, amsgrad off,
     state zero-initialised, t = i + 1. Per tensor (single-tensor path):
        p  *= 1 - lr * wd                       (decoupled decay first)
        m   = 0.9 m + 0.1 g
        v   = 0.999 v + 0.001 g * g
        p  -= lr / (1 - 0.9^t) * m / (sqrt(v) / sqrt(1 - 0.999^t) + 1e-8)
     (scalars in float64 on the host, rounded to float32 where they meet the
     tensors).
The gradients are random directions scaled so that the pre-clip norms are
about 0.6, 2.5, 0.3, 4.0, 1.6: steps 1, 3 and 4 are clipped. The learning
rates are a 2-step linear warmup to 1e-2 followed by cosine values
(5e-3, 1e-2, 1e-2, 8.54e-3, 5e-3). The script also replays the update in
float64 numpy from the formulas above and fails if that differs from torch's
float32 result by more than 1e-5 relative to the parameter scale; a float32
C implementation should match expected.safetensors to a few 1e-7 absolute
(parameters are O(1), each step moves them by about lr).
--check regenerates into a temporary directory and compares bytes.
"""

import argparse
import filecmp
import math
import os
import sys
import tempfile

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "models"))
import safetensors_io as st  # noqa: E402

SHAPES = [("blk.fc1.weight", (5, 7)), ("blk.fc1.bias", (5,)), ("blk.conv.weight", (3, 1, 3, 1, 1)),
          ("blk.conv.bias", (3,)), ("fc.weight", (4, 6)), ("fc.bias", (4,))]
STEPS = 5
WEIGHT_DECAY = 0.05
BETAS = (0.9, 0.999)
EPS = 1e-8
MAX_NORM = 1.0
TARGET_NORMS = (0.6, 2.5, 0.3, 4.0, 1.6)
BASE_LR, WARMUP, COSINE_STEPS = 1e-2, 2, 4
SEED = 71
FILES = ("params0.safetensors", "grads.safetensors", "expected.safetensors", "schedule.safetensors")


def learning_rates():
    out = []
    for s in range(STEPS):
        if s < WARMUP:
            out.append(BASE_LR * (s + 1) / WARMUP)
        else:
            out.append(BASE_LR * (0.5 + 0.5 * math.cos(math.pi * (s - WARMUP) / COSINE_STEPS)))
    return out


def make_inputs():
    g = torch.Generator().manual_seed(SEED)
    params0 = [(n, (torch.randn(s, generator=g, dtype=torch.float64) * 0.5).float()) for n, s in SHAPES]
    grads = []
    for i in range(STEPS):
        raw = [torch.randn(s, generator=g, dtype=torch.float64) for _, s in SHAPES]
        total = math.sqrt(sum((r * r).sum().item() for r in raw))
        grads.append([(n, (r * (TARGET_NORMS[i] / total)).float()) for (n, _), r in zip(SHAPES, raw)])
    return params0, grads


def run_torch(params0, grads, lrs):
    params = [torch.nn.Parameter(p.clone()) for _, p in params0]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lrs[0], betas=BETAS, eps=EPS)
    expected, norms = [], []
    for i in range(STEPS):
        for p, (_, gr) in zip(params, grads[i]):
            p.grad = gr.clone()
        norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_NORM).item())
        for group in opt.param_groups:
            group["lr"] = lrs[i]
        opt.step()
        expected.append([(n, p.detach().clone()) for (n, _), p in zip(SHAPES, params)])
    return expected, norms


def replay_float64(params0, grads, lrs):
    """The documented formulas in float64 numpy."""
    p = [x.double().numpy().copy() for _, x in params0]
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    out, norms = [], []
    for i in range(STEPS):
        g = [x.double().numpy() for _, x in grads[i]]
        norm = math.sqrt(sum(float((x * x).sum()) for x in g))
        coef = min(1.0, MAX_NORM / (norm + 1e-6))
        t = i + 1
        for j, (_, shape) in enumerate(SHAPES):
            wd = WEIGHT_DECAY if len(shape) >= 2 else 0.0
            gj = g[j] * coef
            p[j] *= 1 - lrs[i] * wd
            m[j] = BETAS[0] * m[j] + (1 - BETAS[0]) * gj
            v[j] = BETAS[1] * v[j] + (1 - BETAS[1]) * gj * gj
            denom = np.sqrt(v[j]) / math.sqrt(1 - BETAS[1] ** t) + EPS
            p[j] -= lrs[i] / (1 - BETAS[0] ** t) * m[j] / denom
        out.append([x.copy() for x in p])
        norms.append(norm)
    return out, norms


def build(data_dir):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    lrs = learning_rates()
    params0, grads = make_inputs()
    expected, norms = run_torch(params0, grads, lrs)
    ref, ref_norms = replay_float64(params0, grads, lrs)
    worst = 0.0
    for i in range(STEPS):
        for (n, e), r in zip(expected[i], ref[i]):
            worst = max(worst, float(np.abs(e.double().numpy() - r).max()))
        if abs(norms[i] - ref_norms[i]) > 1e-6 * ref_norms[i]:
            raise SystemExit("FAIL: step %d norm %.9g vs float64 %.9g" % (i, norms[i], ref_norms[i]))
    moved = max(float((e - p).abs().max()) for (_, e), (_, p) in zip(expected[-1], params0))
    print("lrs %s" % ", ".join("%.6g" % x for x in lrs))
    print("pre-clip norms %s (clipped: steps %s)" % (", ".join("%.6f" % x for x in norms),
                                                    [i for i, x in enumerate(norms) if x > MAX_NORM]))
    print("params move by up to %.4e over %d steps; float64 replay max abs diff %.3e" % (moved, STEPS, worst))
    if worst > 1e-5:
        raise SystemExit("FAIL: torch AdamW disagrees with the documented formulas (%.3e)" % worst)
    out = os.path.join(data_dir, "train", "adamw")
    os.makedirs(out, exist_ok=True)
    st.save(os.path.join(out, "params0.safetensors"), params0)
    st.save(os.path.join(out, "grads.safetensors"),
            [("step%d/%s" % (i, n), g) for i in range(STEPS) for n, g in grads[i]])
    st.save(os.path.join(out, "expected.safetensors"),
            [("step%d/%s" % (i, n), p) for i in range(STEPS) for n, p in expected[i]])
    st.save(os.path.join(out, "schedule.safetensors"),
            [("lrs", np.array(lrs, dtype="<f8")), ("norms", np.array(norms, dtype="<f8"))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with tests/data")
    ap.add_argument("--data-dir", default=os.path.join(REPO, "tests", "data"))
    a = ap.parse_args()
    if not a.check:
        build(a.data_dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        bad = 0
        for f in FILES:
            p = os.path.join("train", "adamw", f)
            old = os.path.join(a.data_dir, p)
            if not os.path.exists(old) or not filecmp.cmp(os.path.join(tmp, p), old, shallow=False):
                print("differs: " + p)
                bad = 1
        print("check: " + ("FAILED" if bad else "identical"))
        return bad


if __name__ == "__main__":
    sys.exit(main())
