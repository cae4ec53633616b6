#!/usr/bin/python3
"""Convert an ST-Adapter reference checkpoint (linziyi96/st-adapter) to the
adapter safetensors that `stacl --adapter` reads.

The reference layout (utils.py save_model, main.py; checked against the
repository's only release, commit b914b38):

    torch.save({
        'model':       state_dict,   # VisionTransformer.state_dict() of the
                                     # DDP-unwrapped model, frozen params deleted
        'optimizer':   AdamW state_dict,
        'lr_sched':    LambdaLR state_dict,
        'loss_scaler': GradScaler state_dict,
        'next_epoch':  int,
    }, 'checkpoint-<epoch>.pth')

The model is the top-level module, so the names have no prefix:
    transformer.resblocks.N.adapter_pre_attn|adapter_pre_mlp.fc1.weight [A, W]
        ... .fc1.bias [A], .conv.weight [A, 1, kt, kh, kw], .conv.bias [A],
        ... .fc2.weight [W, A], .fc2.bias [W]             (float32)
    fc.weight [classes, W], fc.bias [classes]             (float32)
save_model drops every parameter with requires_grad False (the CLIP backbone,
stored there as float16), so a reference checkpoint holds only adapters and
head. This script also takes a full state dict (backbone included, e.g.
model.state_dict() saved by hand), a bare state dict, or one saved from the
DDP wrapper (`module.` prefix) or with a `visual.` prefix: it keeps only the
adapter and head tensors, strips `module.` and `visual.`, converts them to
float32, checks their shapes against each other and writes them with
__metadata__ {"format": "pt", "source": <file name>}. The optimizer,
scheduler and scaler states are ignored.

Example:
    /usr/bin/python3 models/convert_st_adapter.py checkpoint-11.pth -o k400_12x384.safetensors
    stacl forward --model models/vit-b-16 --adapter k400_12x384.safetensors ...

torch.load unpickles the file: only convert files you trust, or use
--weights-only (torch's restricted unpickler; the reference checkpoints hold
only tensors, numbers, strings and containers, but torch 1.13's restricted
unpickler rejects their float entries, e.g. the optimizer's lr: it needs a
newer torch).
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_pth  # noqa: E402
import safetensors_io as st  # noqa: E402

# Where the reference puts the state dict; then convert_pth's other guesses.
NEST_KEYS = ("model",) + tuple(k for k in convert_pth.NEST_KEYS if k != "model")
DEFAULT_PREFIXES = ("module.", "visual.")
SITE_RE = re.compile(r"^transformer\.resblocks\.(\d+)\.(adapter_pre_attn|adapter_pre_mlp)\."
                     r"(fc1|conv|fc2)\.(weight|bias)$")
HEAD_NAMES = ("fc.weight", "fc.bias")
PARTS = ("fc1.weight", "fc1.bias", "conv.weight", "conv.bias", "fc2.weight", "fc2.bias")


def find_state_dict(obj, key=None):
    import torch
    if key is None and isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for k in NEST_KEYS:
            if k in obj and isinstance(obj[k], (dict, torch.nn.Module)):
                key = k
                break
    return convert_pth.find_state_dict(obj, key)


def strip(name, prefixes):
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if name.startswith(p) and len(name) > len(p):
                name, changed = name[len(p):], True
    return name


def select(sd, prefixes):
    """(kept {name: tensor}, dropped [original names]). Raises on two tensors
    that map to the same name."""
    import torch
    kept, origin, dropped = {}, {}, []
    for k, v in sd.items():
        name = strip(k, prefixes)
        if not (SITE_RE.match(name) or name in HEAD_NAMES) or not isinstance(v, torch.Tensor):
            dropped.append(k)
            continue
        if name in kept:
            raise st.SafetensorsError("%r and %r both map to %r" % (origin[name], k, name))
        kept[name], origin[name] = v, k
    return kept, dropped


def check_shapes(t):
    """Validates the adapter/head tensors against each other; returns a
    summary dict (sites, width W, adapter width A, kernel, classes)."""
    sites = {}
    for name in t:
        m = SITE_RE.match(name)
        if m:
            sites.setdefault((int(m.group(1)), m.group(2)), set()).add(m.group(3) + "." + m.group(4))
    W = A = kernel = None
    for (layer, site), parts in sorted(sites.items()):
        p = "transformer.resblocks.%d.%s." % (layer, site)
        missing = [x for x in PARTS if x not in parts]
        if missing:
            raise st.SafetensorsError("%s: missing %s" % (p[:-1], ", ".join(p + x for x in missing)))
        w1 = t[p + "fc1.weight"]
        if w1.ndim != 2:
            raise st.SafetensorsError("%sfc1.weight has shape %s, expected [A, W]" % (p, list(w1.shape)))
        if W is None:
            A, W = int(w1.shape[0]), int(w1.shape[1])
            kernel = tuple(int(k) for k in t[p + "conv.weight"].shape[2:])
            if len(kernel) != 3:
                raise st.SafetensorsError("%sconv.weight has shape %s, expected [A, 1, kt, kh, kw]"
                                          % (p, list(t[p + "conv.weight"].shape)))
        want = {"fc1.weight": [A, W], "fc1.bias": [A], "conv.weight": [A, 1] + list(kernel),
                "conv.bias": [A], "fc2.weight": [W, A], "fc2.bias": [W]}
        for x in PARTS:
            if list(t[p + x].shape) != want[x]:
                raise st.SafetensorsError("%s%s has shape %s, expected %s (A = %d, W = %d, kernel %s from %s)"
                                          % (p, x, list(t[p + x].shape), want[x], A, W, kernel,
                                             "the first adapter"))
    classes = None
    if ("fc.weight" in t) != ("fc.bias" in t):
        raise st.SafetensorsError("the head needs both fc.weight and fc.bias")
    if "fc.weight" in t:
        fw, fb = t["fc.weight"], t["fc.bias"]
        if fw.ndim != 2 or (W is not None and fw.shape[1] != W) or list(fb.shape) != [fw.shape[0]]:
            raise st.SafetensorsError("head fc.weight %s / fc.bias %s, expected [classes, %s] / [classes]"
                                      % (list(fw.shape), list(fb.shape), W if W is not None else "W"))
        classes = int(fw.shape[0])
    if not sites and classes is None:
        raise st.SafetensorsError("no adapter tensors (transformer.resblocks.N.adapter_pre_attn|"
                                  "adapter_pre_mlp.*) and no head (fc.weight)")
    return {"sites": sorted(sites), "W": W, "A": A, "kernel": kernel, "classes": classes}


def resolve_output(out, path):
    if out is None:
        return os.path.splitext(path)[0] + ".safetensors"
    if out.endswith(os.sep) or os.path.isdir(out):
        os.makedirs(out, exist_ok=True)
        return os.path.join(out, "adapter.safetensors")
    return out


def describe(info):
    by_site = {}
    for layer, site in info["sites"]:
        by_site.setdefault(site, []).append(layer)
    parts = ["%s blocks %s" % (s, ",".join(map(str, ls))) for s, ls in sorted(by_site.items())]
    if info["A"] is not None:
        parts.append("W %d, A %d, kernel %s" % (info["W"], info["A"], "x".join(map(str, info["kernel"]))))
    parts.append("head %s" % ("%d classes" % info["classes"] if info["classes"] else "none"))
    return "; ".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See docs/adapters.md for the tensor layout.")
    ap.add_argument("input", help="checkpoint-N.pth written by the reference main.py (or any "
                                  "state dict with ST-Adapter names)")
    ap.add_argument("-o", "--output",
                    help="output .safetensors file, or a directory (ending in '/' or existing) "
                         "to get DIR/adapter.safetensors; default: INPUT with the extension "
                         "replaced by .safetensors")
    ap.add_argument("--key", help="where the state dict is (nested keys separated by '/'); "
                                  "default: 'model' (the reference's), else " +
                                  ", ".join(NEST_KEYS[1:]) + ", else the top level")
    ap.add_argument("--strip-prefix", action="append", default=[], metavar="PREFIX",
                    help="also remove PREFIX from names (repeatable); %s are always removed"
                         % " and ".join(DEFAULT_PREFIXES))
    ap.add_argument("--weights-only", action="store_true",
                    help="load with torch.load(weights_only=True)")
    args = ap.parse_args(argv)

    try:
        import torch
        kwargs = {"weights_only": True} if args.weights_only else {}
        try:
            obj = torch.load(args.input, map_location="cpu", **kwargs)
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise st.SafetensorsError("%s: torch.load failed: %s" % (args.input, msg))
        sd, where = find_state_dict(obj, args.key)
        kept, dropped = select(sd, list(DEFAULT_PREFIXES) + args.strip_prefix)
        bad = [k for k, v in kept.items() if not v.is_floating_point()]
        if bad:
            raise st.SafetensorsError("not floating point: %s" % ", ".join(bad))
        info = check_shapes(kept)
        tensors = st.state_dict_to_tensors(kept, cast=torch.float32)
        out = resolve_output(args.output, args.input)
        st.save(out, st.reference_order(tensors), {"format": "pt", "source": os.path.basename(args.input)})
    except (st.SafetensorsError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("%s (%s): kept %d adapter/head tensors as F32 (%s), dropped %d others -> %s, %d bytes" % (
        args.input, where, len(tensors), describe(info), len(dropped), out, os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
