#!/usr/bin/python3
"""Convert an OpenAI CLIP checkpoint (.pt) to safetensors for stacl.

OpenAI's released checkpoints (ViT-B-32.pt, ViT-B-16.pt, ViT-L-14.pt, ...) are
TorchScript archives; their state dict holds every weight in float16 under the
names of clip/model.py (visual.conv1.weight, visual.transformer.resblocks.N.*,
visual.proj, ..., plus the text tower and 0-d int64 input_resolution,
context_length, vocab_size). A plain state dict saved with torch.save (as
written by clip.load(..., jit=False) users or fine-tuning code) is accepted
too, also nested under a "state_dict" key.

Names and dtypes are kept (F16 stays F16) unless --dtype converts the
floating-point tensors. Tensors are written in the reference library's order
(wider dtypes first, then by name), each name once (tied weights become
separate copies), with __metadata__ {"format": "pt", "source": <file name>}.

Example:
    /usr/bin/python3 models/convert_openai_pt.py ViT-B-16.pt -o models/vit-b-16/
    -> models/vit-b-16/model.safetensors (stacl_model_load accepts the directory)

Loading a non-TorchScript file unpickles it: only convert files you trust.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

DTYPES = {"keep": None, "f32": "float32", "f16": "float16"}


def load_openai_state_dict(path):
    """Returns (state_dict, kind) where kind is 'torchscript' or 'pickle'."""
    import torch
    try:
        module = torch.jit.load(path, map_location="cpu")
        return dict(module.state_dict()), "torchscript"
    except Exception as jit_err:  # not a TorchScript archive: try torch.load
        try:
            obj = torch.load(path, map_location="cpu")
        except Exception as pickle_err:
            raise st.SafetensorsError(
                "%s: neither a TorchScript archive (%s) nor a torch.save file (%s)"
                % (path, str(jit_err).strip().splitlines()[0],
                   str(pickle_err).strip().splitlines()[0]))
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise st.SafetensorsError("%s: holds a %s, not a state dict" % (path, type(obj).__name__))
    return dict(obj), "pickle"


def default_output(path):
    return os.path.splitext(path)[0] + ".safetensors"


def resolve_output(out, path):
    if out is None:
        return default_output(path)
    if out.endswith(os.sep) or os.path.isdir(out):
        os.makedirs(out, exist_ok=True)
        return os.path.join(out, "model.safetensors")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See models/README.md for the tensor layouts.")
    ap.add_argument("input", help="OpenAI CLIP .pt (TorchScript archive or state dict)")
    ap.add_argument("-o", "--output",
                    help="output .safetensors file, or a directory (ending in '/' or "
                         "existing) to get DIR/model.safetensors; default: INPUT with "
                         "the extension replaced by .safetensors")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="keep",
                    help="convert floating-point tensors (default: keep the stored "
                         "dtypes, F16 for OpenAI's checkpoints)")
    ap.add_argument("--vision-only", action="store_true",
                    help="write only the visual.* tensors (and logit_scale)")
    args = ap.parse_args(argv)

    try:
        import torch
        sd, kind = load_openai_state_dict(args.input)
        if "visual.conv1.weight" not in sd:
            print("warning: %s has no visual.conv1.weight: not an OpenAI CLIP vision "
                  "checkpoint? Converting anyway." % args.input, file=sys.stderr)
        if args.vision_only:
            sd = {k: v for k, v in sd.items() if k.startswith("visual.") or k == "logit_scale"}
        cast = getattr(torch, DTYPES[args.dtype]) if DTYPES[args.dtype] else None
        tensors = st.state_dict_to_tensors(sd, cast=cast)
        out = resolve_output(args.output, args.input)
        meta = {"format": "pt", "source": os.path.basename(args.input)}
        st.save(out, st.reference_order(tensors), meta)
    except (st.SafetensorsError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    counts = {}
    for _, t in tensors:
        name = st.torch_dtype_name(t.dtype)
        counts[name] = counts.get(name, 0) + 1
    print("%s (%s): %d tensors (%s) -> %s, %d bytes" % (
        args.input, kind, len(tensors),
        ", ".join("%d %s" % (n, d) for d, n in sorted(counts.items())),
        out, os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
