#!/usr/bin/env python3
"""plot_results.py: bar charts (SVG, standard library only) of the JSON that
stacl-bench-gemm, stacl-bench-forward, stacl-bench-train and torch_forward.py
write.

    python3 bench/plot_results.py --gemm off=a.json tuned=b.json --blas Debian=b.json \\
        --forward off=c.json tuned=d1.json,d2.json --torch 2-threads=e.json \\
        --train 12x384=f.json 24x384=g.json --out summary.svg

Left: GFLOP/s per GEMM shape for each labelled stacl-bench-gemm run (median,
stacl wall time) and the OpenBLAS baseline of the first run. Middle: seconds per
8-frame ViT-B/16 clip (median over all timed passes of the files given for a
label) for each forward run and PyTorch. Right (with --train): device seconds
per clip of a training step, by group (adapter kernels, backbone GEMMs, other
kernels; medians), for each stacl-bench-train run.
"""
import argparse
import json
import statistics

COLORS = ["#9e9e9e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"]


def labelled(items):
    """LABEL=FILE[,FILE...] -> [(label, [parsed JSON, ...])]."""
    out = []
    for it in items or []:
        label, paths = it.split("=", 1)
        docs = []
        for path in paths.split(","):
            with open(path) as f:
                docs.append(json.load(f))
        out.append((label, docs))
    return out


def bars(x0, y0, w, h, title, groups, series, unit):
    """groups: names on the x axis; series: [(label, [values per group])]."""
    vmax = max([v for _, vals in series for v in vals if v] + [1e-9]) * 1.15
    s = [f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-weight="bold">{title}</text>',
         f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="black"/>']
    for i in range(5):
        v = vmax * i / 4
        y = y0 + h - h * i / 4
        s.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end" font-size="10">{v:.3g}</text>')
        s.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
    gw = w / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    for g, name in enumerate(groups):
        s.append(f'<text x="{x0 + gw * (g + 0.5)}" y="{y0 + h + 14}" text-anchor="middle" font-size="11">{name}</text>')
        for k, (_, vals) in enumerate(series):
            v = vals[g] or 0
            bh = h * v / vmax
            x = x0 + gw * g + gw * 0.1 + bw * k
            s.append(f'<rect x="{x:.1f}" y="{y0 + h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                     f'fill="{COLORS[k % len(COLORS)]}"><title>{v:.3g} {unit}</title></rect>')
    for k, (label, _) in enumerate(series):
        y = y0 + h + 30 + 14 * k
        s.append(f'<rect x="{x0}" y="{y - 9}" width="10" height="10" fill="{COLORS[k % len(COLORS)]}"/>')
        s.append(f'<text x="{x0 + 14}" y="{y}" font-size="11">{label}</text>')
    s.append(f'<text x="{x0 - 34}" y="{y0 + h / 2}" font-size="11" transform="rotate(-90 {x0 - 34} {y0 + h / 2})" '
             f'text-anchor="middle">{unit}</text>')
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gemm", nargs="*", help="LABEL=stacl-bench-gemm.json ...")
    ap.add_argument("--blas", nargs="*", help="LABEL=stacl-bench-gemm.json: add that run's OpenBLAS column")
    ap.add_argument("--forward", nargs="*", help="LABEL=stacl-bench-forward.json ...")
    ap.add_argument("--torch", nargs="*", help="LABEL=torch_forward.json ...")
    ap.add_argument("--train", nargs="*", help="LABEL=stacl-bench-train.json ...")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    train = labelled(a.train)
    width = 1460 if train else 1100
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="420" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    gemm = labelled(a.gemm)
    if gemm:
        names = [s["name"] for s in gemm[0][1][0]["shapes"]]
        series = []
        for label, docs in gemm:
            by = {s["name"]: s.get("stacl", {}).get("gflops_wall_median") for s in docs[0]["shapes"]}
            series.append((f"stacl, {label}", [by.get(n) for n in names]))
        for label, docs in labelled(a.blas):
            by = {s["name"]: s.get("openblas", {}).get("gflops_median") for s in docs[0]["shapes"]}
            series.append((f"OpenBLAS, {label}", [by.get(n) for n in names]))
        parts += bars(70, 40, 560, 250, "ViT-B/16 GEMMs, T = 8 (median GFLOP/s)", names, series, "GFLOP/s")
    # Several files per label: the median over all of their timed passes.
    fwd = [(f"stacl, {l}", statistics.median([t / 1e3 for d in ds for t in d["wall_ms"]]))
           for l, ds in labelled(a.forward)]
    fwd += [(f"PyTorch, {l}", statistics.median([t for d in ds for t in d["runs_s"]])) for l, ds in labelled(a.torch)]
    if fwd:
        parts += bars(760, 40, 300, 250, "Forward, 8 frames (median s/clip)", [""],
                      [(l, [v]) for l, v in fwd], "seconds")
    if train:
        groups = [("adapter", "adapter kernels"), ("gemm", "backbone GEMMs"), ("other", "other kernels")]
        # The first file of each label (one run per label).
        series = [(name, [d[0]["groups"][key]["ms_per_clip_median"] / 1e3 for _, d in train]) for key, name in groups]
        parts += bars(1130, 40, 300, 250, "Training step, 8 frames (device s/clip)", [l for l, _ in train],
                      series, "seconds")
    parts.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
