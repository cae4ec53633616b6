#!/usr/bin/python3
"""Convert a PyTorch state dict (.pth / .pt / .bin) to safetensors for stacl.

Accepts a state dict saved with torch.save (for example a Hugging Face
pytorch_model.bin), a training checkpoint that nests it under "state_dict",
"model" or "model_state_dict" (or any key given with --key), or a whole
pickled nn.Module. Names can be cleaned with --strip-prefix (e.g. "module."
left by DataParallel). Dtypes are kept unless --dtype converts the
floating-point tensors. Every name is written once with its own data (tied
or shared weights become separate copies), in the reference library's order
(wider dtypes first, then by name), with __metadata__ {"format": "pt",
"source": <file name>}.

Example:
    /usr/bin/python3 models/convert_pth.py ckpt.pth --strip-prefix module. \\
        -o models/finetuned/   # -> models/finetuned/model.safetensors

torch.load unpickles the file: only convert files you trust, or use
--weights-only (torch's restricted unpickler).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

DTYPES = {"keep": None, "f32": "float32", "f16": "float16", "bf16": "bfloat16"}
NEST_KEYS = ("state_dict", "model", "model_state_dict")


def find_state_dict(obj, key=None):
    """Returns (state_dict, where) from what torch.load gave."""
    import torch
    where = "top level"
    if key is not None:
        for part in key.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                raise st.SafetensorsError("key %r not found (available: %s)" % (
                    key, ", ".join(map(repr, list(obj)[:20])) if isinstance(obj, dict) else "-"))
            obj = obj[part]
        where = "key %r" % key
    elif isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for k in NEST_KEYS:
            if k in obj and isinstance(obj[k], (dict, torch.nn.Module)):
                obj, where = obj[k], "key %r" % k
                break
    if isinstance(obj, torch.nn.Module):
        obj, where = obj.state_dict(), where + " (nn.Module)"
    if not isinstance(obj, dict):
        raise st.SafetensorsError("%s holds a %s, not a state dict" % (where, type(obj).__name__))
    return dict(obj), where


def strip_prefixes(sd, prefixes):
    if not prefixes:
        return sd
    out = {}
    for k, v in sd.items():
        new = k
        for p in prefixes:
            if new.startswith(p):
                new = new[len(p):]
        if not new:
            raise st.SafetensorsError("stripping %r leaves an empty name" % k)
        if new in out:
            raise st.SafetensorsError("after stripping prefixes, two tensors are named %r" % new)
        out[new] = v
    return out


def resolve_output(out, path):
    if out is None:
        return os.path.splitext(path)[0] + ".safetensors"
    if out.endswith(os.sep) or os.path.isdir(out):
        os.makedirs(out, exist_ok=True)
        return os.path.join(out, "model.safetensors")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See models/README.md for the tensor layouts.")
    ap.add_argument("input", help=".pth/.pt/.bin file written by torch.save")
    ap.add_argument("-o", "--output",
                    help="output .safetensors file, or a directory (ending in '/' or "
                         "existing) to get DIR/model.safetensors; default: INPUT with "
                         "the extension replaced by .safetensors")
    ap.add_argument("--key", help="where the state dict is in the checkpoint "
                                  "(nested keys separated by '/'); default: the top "
                                  "level, else one of " + ", ".join(NEST_KEYS))
    ap.add_argument("--strip-prefix", action="append", default=[], metavar="PREFIX",
                    help="remove PREFIX from the start of names (repeatable, applied "
                         "in order), e.g. --strip-prefix module.")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="keep",
                    help="convert floating-point tensors (default: keep)")
    ap.add_argument("--skip-non-tensors", action="store_true",
                    help="drop entries that are not tensors instead of failing")
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
            if isinstance(e, AttributeError) or "Can't get attribute" in msg:
                msg += (" (the file pickles objects of a class that is not importable here: "
                        "add its package to PYTHONPATH, or save model.state_dict() instead)")
            raise st.SafetensorsError("%s: torch.load failed: %s" % (args.input, msg))
        sd, where = find_state_dict(obj, args.key)
        if args.skip_non_tensors:
            dropped = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
            if dropped:
                print("warning: dropping %d non-tensor entries: %s" % (
                    len(dropped), ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else "")),
                    file=sys.stderr)
            sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
        sd = strip_prefixes(sd, args.strip_prefix)
        if not sd:
            raise st.SafetensorsError("%s: no tensors in the state dict (%s)" % (args.input, where))
        cast = getattr(torch, DTYPES[args.dtype]) if DTYPES[args.dtype] else None
        try:
            tensors = st.state_dict_to_tensors(sd, cast=cast)
        except st.SafetensorsError as e:
            raise st.SafetensorsError("%s (%s): %s; use --key to pick the state dict or "
                                      "--skip-non-tensors to drop them" % (args.input, where, e))
        out = resolve_output(args.output, args.input)
        st.save(out, st.reference_order(tensors),
                {"format": "pt", "source": os.path.basename(args.input)})
    except (st.SafetensorsError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    counts = {}
    for _, t in tensors:
        name = st.torch_dtype_name(t.dtype)
        counts[name] = counts.get(name, 0) + 1
    print("%s (%s): %d tensors (%s) -> %s, %d bytes" % (
        args.input, where, len(tensors),
        ", ".join("%d %s" % (n, d) for d, n in sorted(counts.items())),
        out, os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
