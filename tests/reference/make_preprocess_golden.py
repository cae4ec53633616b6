#!/usr/bin/python3
"""make_preprocess_golden.py: the preprocessing goldens in tests/data/preprocess.

An independent reference for stacl's host/preprocess.c: ST-Adapter's
test-time pipeline (linziyi96/st-adapter video_dataset/dataset.py) run with
Debian's PyTorch: frames / 255, CLIP mean/std normalization, then
F.interpolate(mode='bicubic', align_corners=False) (antialias off, torch's
default and what ST-Adapter calls) to short side S with long = long * S // short,
then the center crop or the three crops along the long side.

Inputs are deterministic RGB24 test images (a smooth pattern plus hard edges
and a seeded noise field, so both the filter shape and the edge clamping
matter), written as raw .rgb next to the .npy outputs [3, crop, crop].

usage: /usr/bin/python3 tests/reference/make_preprocess_golden.py [--check]
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "preprocess")
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])

# name, width, height, S, crop, spatial views
CASES = [
    ("down_80x60", 80, 60, 32, 32, 1),     # downscale, landscape, center crop
    ("down_60x90", 60, 90, 40, 32, 1),     # downscale, portrait, crop < S
    ("up_40x30", 40, 30, 56, 56, 3),       # upscale (synthetic-dataset case), three crops
    ("down_97x61_3crop", 97, 61, 48, 48, 3),  # odd sizes, three crops
]


def image(w, h, seed):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 127.5 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    g = np.where((x // 8 + y // 8) % 2 == 0, 230.0, 20.0)  # checkerboard: hard edges
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 256, size=(h, w)).astype(np.float64)
    img = np.stack([r, g, b], axis=-1)
    img[0, :, :] = 255.0  # saturated border rows/cols exercise edge clamping
    img[:, -1, :] = 0.0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def reference(img, S, crop, views):
    h, w = img.shape[:2]
    x = torch.from_numpy(img).float() / 255.0          # H, W, C
    x = (x - MEAN) / STD
    x = x.permute(2, 0, 1).unsqueeze(0)                 # 1, C, H, W
    if h < w:
        nh, nw = S, w * S // h
    else:
        nh, nw = h * S // w, S
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False)[0]
    outs = []
    if views == 1:
        y0, x0 = (nh - crop) // 2, (nw - crop) // 2
        outs.append(x[:, y0:y0 + crop, x0:x0 + crop])
    else:
        margin = max(nh, nw) - crop
        for st in (0, margin // 2, margin):
            if nh > nw:
                x0 = (nw - crop) // 2
                outs.append(x[:, st:st + crop, x0:x0 + crop])
            else:
                y0 = (nh - crop) // 2
                outs.append(x[:, y0:y0 + crop, st:st + crop])
    return [o.contiguous().numpy().astype(np.float32) for o in outs]


def main():
    check = "--check" in sys.argv
    os.makedirs(OUT, exist_ok=True)
    bad = 0
    for k, (name, w, h, S, crop, views) in enumerate(CASES):
        img = image(w, h, k + 1)
        files = {name + ".rgb": img.tobytes()}
        for v, o in enumerate(reference(img, S, crop, views)):
            path = os.path.join(OUT, "%s.view%d.npy" % (name, v))
            if check:
                if not np.array_equal(np.load(path), o):
                    print("differs:", path)
                    bad += 1
            else:
                np.save(path, o)
        for fn, data in files.items():
            path = os.path.join(OUT, fn)
            if check:
                if open(path, "rb").read() != data:
                    print("differs:", path)
                    bad += 1
            else:
                open(path, "wb").write(data)
    print("torch", torch.__version__, "check failed" if bad else ("checked" if check else "written"), OUT)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
