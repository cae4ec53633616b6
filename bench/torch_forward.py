#!/usr/bin/python3
"""torch_forward.py: the PyTorch CPU baseline for stacl-bench-forward.

Builds the CLIP ViT-B/16 vision tower (OpenAI layout: conv1 patch embedding,
class + positional embedding, ln_pre, 12 pre-LN residual blocks with
nn.MultiheadAttention and a QuickGELU MLP, ln_post, projection) with random
weights, fp32, and times forward passes of a T-frame clip at 224x224 with a
fixed thread count: the same shapes and FLOPs as stacl's forward.

Run with Debian's interpreter (python3-torch): /usr/bin/python3, not the
`python3` first on PATH.

    /usr/bin/python3 bench/torch_forward.py --frames 8 --runs 5 --threads 2 --json out.json
"""
import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), QuickGELU(), nn.Linear(mlp, width))

    def forward(self, x):  # x: [L, N, W], the layout of OpenAI's CLIP
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class VisionTower(nn.Module):
    def __init__(self, width=768, layers=12, heads=12, mlp=3072, patch=16, image=224, proj=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        tokens = (image // patch) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.positional_embedding = nn.Parameter(torch.randn(tokens, width) * 0.01)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads, mlp) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, proj) * width ** -0.5)

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [T, P, W]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).transpose(0, 1)  # [L, T, W]
        for b in self.blocks:
            x = b(x)
        return self.ln_post(x[0]) @ self.proj


def gflop_per_clip(frames, width=768, layers=12, mlp=3072, patch=16, image=224, proj=512):
    # The count of bench/bench_forward.c: GEMMs only, 2 FLOPs per multiply-add.
    p = (image // patch) ** 2
    L = p + 1
    per_frame = 2 * p * 3 * patch * patch * width + layers * (8 * L * width ** 2 + 4 * L * width * mlp
                                                               + 4 * L * L * width) + 2 * width * proj
    return frames * per_frame / 1e9


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write every measurement here")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = VisionTower().eval()
    x = torch.randn(a.frames, 3, 224, 224)
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(x)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    gf = gflop_per_clip(a.frames)
    res = {
        "program": "bench/torch_forward.py",
        "torch": torch.__version__,
        "threads": a.threads,
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "blas": torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in torch.__config__.show() else "",
        "frames": a.frames,
        "gflop_per_clip": gf,
        "warmup_s": warm,
        "runs_s": times,
        "median_s": med,
        "clips_per_s": 1.0 / med,
        "gflops": gf / med,
    }
    print(f"torch {torch.__version__}, {a.threads} threads, {res['cpu']}, BLAS {res['blas']}")
    print(f"ViT-B/16 forward, T = {a.frames}: median {med:.3f} s [{min(times):.3f}-{max(times):.3f}] of {a.runs}"
          f" (warm-up {warm:.3f} s): {1 / med:.3f} clips/s, {gf / med:.1f} GFLOP/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
