#!/usr/bin/python3
"""Round-trip tests of models/safetensors_io.py, models/convert_pth.py,
models/convert_openai_pt.py and models/convert_st_adapter.py.

    /usr/bin/python3 tests/reference/test_converters.py

Exits 0 when every check passes, 1 otherwise.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import traceback
from collections import OrderedDict

import torch
import torch.nn as nn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(REPO, "models")
sys.path.insert(0, MODELS)
import safetensors_io as st  # noqa: E402

CONVERT_PTH = os.path.join(MODELS, "convert_pth.py")
CONVERT_OPENAI = os.path.join(MODELS, "convert_openai_pt.py")
CONVERT_ST_ADAPTER = os.path.join(MODELS, "convert_st_adapter.py")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def run(script, *args):
    p = subprocess.run([sys.executable, script] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def same(a, b, name):
    check(a.dtype == b.dtype, "%s: dtype %s != %s" % (name, a.dtype, b.dtype))
    check(tuple(a.shape) == tuple(b.shape), "%s: shape %s != %s" % (name, list(a.shape), list(b.shape)))
    # bitwise: compare as raw bytes
    check(st._torch_to_record(name, a).data == st._torch_to_record(name, b).data,
          "%s: values differ" % name)


def read_back(path):
    recs, meta = st.load(path)
    return {k: st.to_torch(r) for k, r in recs.items()}, meta, recs


def raw_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return n, f.read(n)


class Tiny(nn.Module):
    """Every kind of entry a state dict can hold."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.lin = nn.Linear(6, 4)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight              # tied weights
        self.f16 = nn.Parameter(torch.randn(3, 5).half())
        self.register_buffer("bf", torch.randn(7).to(torch.bfloat16))
        self.register_buffer("ids", torch.arange(5, dtype=torch.int64)[None])
        self.register_buffer("mask", torch.tensor([True, False, True]))
        self.scale = nn.Parameter(torch.tensor(2.6592))  # 0-d
        self.register_buffer("empty", torch.zeros(0, 3))
        self.register_buffer("trans", torch.randn(4, 6).t())  # non-contiguous


def tiny_state():
    torch.manual_seed(0)
    return Tiny().state_dict()


# ---- safetensors_io ---------------------------------------------------------

@test
def writer_reader_formats():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "a.safetensors")
        raw = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
        st.save(path, [("t", ("F32", [2, 2], raw)),
                       ("h", torch.tensor([1.0, -0.5], dtype=torch.float16)),
                       ("b", torch.tensor([1.5, 3.0], dtype=torch.bfloat16)),
                       ("i", torch.tensor([[-1, 2**40]], dtype=torch.int64)),
                       ("s", torch.tensor(7.0)),
                       ("z", ("F32", [0], b""))],
                {"format": "pt", "k": "v"})
        n, hdr = raw_header(path)
        check(n % 8 == 0, "header length %d not a multiple of 8" % n)
        check(hdr.rstrip(b" ").endswith(b"}") and len(hdr) - len(hdr.rstrip(b" ")) < 8,
              "header must be JSON padded with fewer than 8 spaces")
        j = json.loads(hdr)
        check(j["__metadata__"] == {"format": "pt", "k": "v"}, "metadata %r" % j["__metadata__"])
        check(list(k for k in j if k != "__metadata__") == ["t", "h", "b", "i", "s", "z"],
              "header order %r" % list(j))
        check(j["t"] == {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, repr(j["t"]))
        check(j["h"]["data_offsets"] == [16, 20] and j["b"]["dtype"] == "BF16", repr(j))
        check(j["s"]["shape"] == [] and j["s"]["data_offsets"][1] - j["s"]["data_offsets"][0] == 4,
              "0-d: %r" % j["s"])
        check(os.path.getsize(path) == 8 + n + 16 + 4 + 4 + 16 + 4, "file size")
        t, meta, recs = read_back(path)
        check(meta == {"format": "pt", "k": "v"}, "metadata read back")
        check(t["t"].tolist() == [[1.0, -2.0], [0.5, 3.25]], "F32 values")
        check(t["h"].tolist() == [1.0, -0.5] and t["h"].dtype == torch.float16, "F16")
        check(t["b"].tolist() == [1.5, 3.0] and t["b"].dtype == torch.bfloat16, "BF16")
        check(t["i"].tolist() == [[-1, 2**40]], "I64")
        check(t["s"].shape == () and t["s"].item() == 7.0, "0-d")
        check(t["z"].shape == (0,), "empty")
        check(recs["h"].data == struct.pack("<2e", 1.0, -0.5), "F16 bytes little-endian")
        check(not os.path.exists(path + ".tmp"), "temporary file left behind")


@test
def reader_rejects_malformed():
    def expect_error(blob, what):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.safetensors")
            with open(p, "wb") as f:
                f.write(blob)
            try:
                st.load(p)
            except st.SafetensorsError:
                return
            raise AssertionError("reader accepted " + what)

    def file_of(header, data):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data

    ok = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    st_ok = file_of(ok, b"\0" * 8)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "ok.safetensors")
        with open(p, "wb") as f:
            f.write(st_ok)
        st.load(p)  # unpadded headers are legal
    expect_error(b"\1\0\0", "a 3-byte file")
    expect_error(struct.pack("<Q", 1000) + b"{}", "a header longer than the file")
    expect_error(file_of(ok, b"\0" * 4), "data shorter than the offsets")
    expect_error(file_of(ok, b"\0" * 12), "trailing bytes")
    expect_error(file_of({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}},
                         b"\0" * 8), "an unknown dtype")
    expect_error(file_of({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                         b"\0" * 8), "a shape/size mismatch")
    expect_error(file_of({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                         b"\0" * 8), "overlapping tensors")
    expect_error(struct.pack("<Q", 4) + b"[1,2", "invalid JSON")


@test
def writer_rejects_bad_input():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        for bad, what in [([("a", ("F32", [3], b"\0" * 8))], "size mismatch"),
                          ([("a", ("Q8", [1], b"\0"))], "unknown dtype"),
                          ([("a", 3.0)], "a float"),
                          ([("a", torch.zeros(1)), ("a", torch.zeros(1))], "duplicate name"),
                          ([("__metadata__", torch.zeros(1))], "reserved name")]:
            try:
                st.save(p, bad)
            except st.SafetensorsError:
                continue
            raise AssertionError("writer accepted " + what)
        check(not os.path.exists(p), "a failed write left a file")


@test
def golden_models_rewrite_identically():
    """Reading a committed model and writing it back gives the same bytes."""
    data = os.path.join(REPO, "tests", "data", "models")
    found = 0
    for name in sorted(os.listdir(data)) if os.path.isdir(data) else []:
        path = os.path.join(data, name, "model.safetensors")
        if not os.path.exists(path):
            continue
        found += 1
        recs, meta = st.load(path)
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.safetensors")
            st.save(out, list(recs.items()), meta)
            with open(path, "rb") as a, open(out, "rb") as b:
                check(a.read() == b.read(), "%s: rewrite differs" % name)
    check(found > 0, "no models in tests/data/models (run tests/reference/make_golden.py)")


# ---- convert_pth -------------------------------------------------------------

def expect_names(t, sd, prefix=""):
    check(sorted(t) == sorted(prefix + k for k in sd), "names %s != %s" % (sorted(t), sorted(sd)))


@test
def pth_plain_state_dict():
    sd = tiny_state()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "plain.pth")
        torch.save(sd, src)
        rc, out = run(CONVERT_PTH, src)
        check(rc == 0, "convert failed: " + out)
        t, meta, recs = read_back(os.path.join(d, "plain.safetensors"))
        expect_names(t, sd)
        for k, v in sd.items():
            same(t[k], v, k)
        check(meta == {"format": "pt", "source": "plain.pth"}, "metadata %r" % meta)
        # tied weights: both names present, each with its own data
        check(recs["emb.weight"].data == recs["head.weight"].data, "tied weights differ")
        # alignment: wide dtypes first
        hdr, _, _ = st.load_header(os.path.join(d, "plain.safetensors"))
        for k, h in hdr.items():
            size = st.DTYPE_SIZES[h["dtype"]]
            check(h["data_offsets"][0] % size == 0, "%s misaligned" % k)


@test
def pth_nested_prefix_and_dtype():
    sd = tiny_state()
    with tempfile.TemporaryDirectory() as d:
        for key in ("state_dict", "model"):
            src = os.path.join(d, "ckpt_%s.pt" % key)
            torch.save({"epoch": 3, "optimizer": {"lr": 0.1},
                        key: {"module." + k: v for k, v in sd.items()}}, src)
            out_dir = os.path.join(d, "out_%s" % key) + os.sep
            rc, out = run(CONVERT_PTH, src, "--strip-prefix", "module.", "-o", out_dir)
            check(rc == 0, "convert failed: " + out)
            t, _, _ = read_back(os.path.join(out_dir, "model.safetensors"))
            expect_names(t, sd)
            for k, v in sd.items():
                same(t[k], v, k)
        # --dtype f32: floats become F32, integers and bools stay
        src = os.path.join(d, "ckpt_state_dict.pt")
        dst = os.path.join(d, "f32.safetensors")
        rc, out = run(CONVERT_PTH, src, "--strip-prefix", "module.", "--dtype", "f32", "-o", dst)
        check(rc == 0, "convert --dtype f32 failed: " + out)
        t, _, _ = read_back(dst)
        for k, v in sd.items():
            want = v.float() if v.is_floating_point() else v
            same(t[k], want, k)
        # without stripping, names keep the prefix
        rc, out = run(CONVERT_PTH, src, "-o", os.path.join(d, "p.safetensors"))
        check(rc == 0, out)
        t, _, _ = read_back(os.path.join(d, "p.safetensors"))
        expect_names(t, sd, "module.")
        # --key with a nested path
        src2 = os.path.join(d, "deep.pt")
        torch.save({"a": {"b": sd}, "note": "x"}, src2)
        rc, out = run(CONVERT_PTH, src2, "--key", "a/b", "-o", os.path.join(d, "deep.safetensors"))
        check(rc == 0, out)
        t, _, _ = read_back(os.path.join(d, "deep.safetensors"))
        expect_names(t, sd)


@test
def pth_whole_module():
    # A pickled module needs its class importable when loading: use torch's.
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2).half())
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "module.pt")
        torch.save(m, src)
        rc, out = run(CONVERT_PTH, src)
        check(rc == 0, "convert failed: " + out)
        t, _, _ = read_back(os.path.join(d, "module.safetensors"))
        sd = m.state_dict()
        expect_names(t, sd)
        for k, v in sd.items():
            same(t[k], v, k)


@test
def pth_errors():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "mixed.pth")
        torch.save({"w": torch.ones(2), "step": 5, "name": "x"}, src)
        rc, out = run(CONVERT_PTH, src)
        check(rc == 1, "non-tensor entries accepted (rc %d): %s" % (rc, out))
        check("'step' (int)" in out and "'name' (str)" in out and "--skip-non-tensors" in out,
              "unclear error: " + out)
        check(not os.path.exists(os.path.join(d, "mixed.safetensors")), "output written on error")
        rc, out = run(CONVERT_PTH, src, "--skip-non-tensors")
        check(rc == 0, out)
        t, _, _ = read_back(os.path.join(d, "mixed.safetensors"))
        check(list(t) == ["w"], "kept %r" % list(t))
        # prefix stripping that makes two names collide
        src = os.path.join(d, "clash.pth")
        torch.save({"module.a": torch.ones(1), "a": torch.zeros(1)}, src)
        rc, out = run(CONVERT_PTH, src, "--strip-prefix", "module.")
        check(rc == 1 and "two tensors are named 'a'" in out, "collision: " + out)
        # not a torch file
        src = os.path.join(d, "junk.pth")
        with open(src, "wb") as f:
            f.write(b"not a checkpoint")
        rc, out = run(CONVERT_PTH, src)
        check(rc == 1 and "torch.load failed" in out, "junk: " + out)
        rc, out = run(CONVERT_PTH, os.path.join(d, "missing.pth"))
        check(rc == 1 and "error:" in out, "missing file: " + out)
        # a missing --key
        src = os.path.join(d, "plain.pth")
        torch.save({"w": torch.ones(1)}, src)
        rc, out = run(CONVERT_PTH, src, "--key", "nope")
        check(rc == 1 and "'nope' not found" in out, "missing key: " + out)


# ---- convert_openai_pt ---------------------------------------------------------

class Visual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=2, stride=2, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(8))
        self.positional_embedding = nn.Parameter(torch.randn(5, 8))
        self.ln_pre = nn.LayerNorm(8)
        self.proj = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        return self.ln_pre(x) @ self.proj


class FakeOpenAI(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = Visual()
        self.token_embedding = nn.Embedding(16, 8)
        self.text_projection = nn.Parameter(torch.randn(8, 4))
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.register_buffer("input_resolution", torch.tensor(4))

    def forward(self, x):
        return self.visual(x) * self.logit_scale.exp()


@test
def openai_torchscript_roundtrip():
    torch.manual_seed(2)
    m = FakeOpenAI().half()  # float16 everywhere, as OpenAI's archives
    sd = m.state_dict()
    check(sd["input_resolution"].dtype == torch.int64, "int buffer stays int64")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "ViT-T-2.pt")
        torch.jit.script(m).save(src)
        rc, out = run(CONVERT_OPENAI, src, "-o", os.path.join(d, "keep") + os.sep)
        check(rc == 0, "convert failed: " + out)
        check("torchscript" in out, "not read as TorchScript: " + out)
        t, meta, recs = read_back(os.path.join(d, "keep", "model.safetensors"))
        expect_names(t, sd)
        for k, v in sd.items():
            same(t[k], v, k)
        check(recs["visual.conv1.weight"].dtype == "F16", "F16 not kept")
        check(recs["logit_scale"].shape == () and recs["input_resolution"].dtype == "I64",
              "0-d tensors")
        check(meta == {"format": "pt", "source": "ViT-T-2.pt"}, "metadata %r" % meta)

        dst = os.path.join(d, "f32.safetensors")
        rc, out = run(CONVERT_OPENAI, src, "--dtype", "f32", "-o", dst)
        check(rc == 0, out)
        t, _, recs = read_back(dst)
        for k, v in sd.items():
            same(t[k], v.float() if v.is_floating_point() else v, k)

        dst = os.path.join(d, "vision.safetensors")
        rc, out = run(CONVERT_OPENAI, src, "--vision-only", "-o", dst)
        check(rc == 0, out)
        t, _, _ = read_back(dst)
        check(sorted(t) == sorted(k for k in sd if k.startswith("visual.") or k == "logit_scale"),
              "vision-only kept %r" % sorted(t))


@test
def openai_plain_state_dict_and_errors():
    torch.manual_seed(3)
    sd = FakeOpenAI().half().state_dict()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "sd.pt")
        torch.save({"state_dict": sd}, src)
        rc, out = run(CONVERT_OPENAI, src)
        check(rc == 0 and "pickle" in out, "convert failed: " + out)
        t, _, _ = read_back(os.path.join(d, "sd.safetensors"))
        for k, v in sd.items():
            same(t[k], v, k)
        src = os.path.join(d, "bad.pt")
        torch.save({"visual.conv1.weight": torch.ones(1), "epoch": 7}, src)
        rc, out = run(CONVERT_OPENAI, src)
        check(rc == 1 and "'epoch' (int)" in out, "non-tensor entry: " + out)
        src = os.path.join(d, "junk.pt")
        with open(src, "wb") as f:
            f.write(b"\0junk")
        rc, out = run(CONVERT_OPENAI, src)
        check(rc == 1 and "neither a TorchScript archive" in out, "junk: " + out)


# ---- convert_st_adapter ----------------------------------------------------------

class RefAdapter(nn.Module):
    """linziyi96/st-adapter models_adapter.Adapter's parameters."""

    def __init__(self, w, a, kernel):
        super().__init__()
        self.fc1 = nn.Linear(w, a)
        self.conv = nn.Conv3d(a, a, kernel_size=kernel, padding=tuple(k // 2 for k in kernel), groups=a)
        self.fc2 = nn.Linear(a, w)


class RefBlock(nn.Module):
    def __init__(self, w, heads, a, kernel, pre_attn, pre_mlp):
        super().__init__()
        self.attn = nn.MultiheadAttention(w, heads)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(w, 4 * w)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(4 * w, w))]))
        self.ln_2 = nn.LayerNorm(w)
        self.adapter_pre_attn = RefAdapter(w, a, kernel) if pre_attn else None
        self.adapter_pre_mlp = RefAdapter(w, a, kernel) if pre_mlp else None


class RefTransformer(nn.Module):
    def __init__(self, w, layers, heads, a, adapter_layers, kernel, pre_attn, pre_mlp):
        super().__init__()
        self.resblocks = nn.ModuleList(
            RefBlock(w, heads, a, kernel, pre_attn and i >= layers - adapter_layers,
                     pre_mlp and i >= layers - adapter_layers) for i in range(layers))


class RefVisionTransformer(nn.Module):
    """The parameter layout of models_adapter.VisionTransformer (the model is
    the top-level module; its frozen backbone is float16, adapters and head
    float32, as the reference's __init__ leaves them)."""

    def __init__(self, w=16, layers=3, heads=2, patch=4, image=8, classes=5, a=4, adapter_layers=2,
                 kernel=(3, 1, 1), pre_attn=True, pre_mlp=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w))
        self.positional_embedding = nn.Parameter(torch.randn((image // patch) ** 2 + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = RefTransformer(w, layers, heads, a, adapter_layers, kernel, pre_attn, pre_mlp)
        self.ln_post = nn.LayerNorm(w)
        for n, p in self.named_parameters():
            if "adapter" not in n:
                p.requires_grad_(False)
                p.data = p.data.half()
            else:
                p.data.normal_()  # the reference zeroes conv and biases: make every value distinct
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(w, classes)


def reference_checkpoint(model, full):
    """What utils.save_model writes (full=False: frozen params deleted), or
    the same dict holding the whole state dict (fp16 backbone included)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for n, p in trainable if ".bias" not in n], "weight_decay": 0.01},
                             {"params": [p for n, p in trainable if ".bias" in n], "weight_decay": 0.}], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    for _, p in trainable:
        p.grad = torch.randn_like(p)
    opt.step()
    sched.step()
    sd = model.state_dict()
    if not full:
        for n, p in model.named_parameters():
            if not p.requires_grad:
                del sd[n]
    return {"model": sd, "optimizer": opt.state_dict(), "lr_sched": sched.state_dict(),
            "loss_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                            "growth_interval": 2000, "_growth_tracker": 17},
            "next_epoch": 3}


def adapter_names(layers, adapter_layers, sites):
    out = []
    for i in range(layers - adapter_layers, layers):
        for site in sites:
            for part in ("fc1", "conv", "fc2"):
                for wb in ("weight", "bias"):
                    out.append("transformer.resblocks.%d.%s.%s.%s" % (i, site, part, wb))
    return out + ["fc.weight", "fc.bias"]


@test
def st_adapter_reference_checkpoint():
    torch.manual_seed(4)
    m = RefVisionTransformer(kernel=(3, 3, 3))
    sd = m.state_dict()
    want = adapter_names(3, 2, ("adapter_pre_attn", "adapter_pre_mlp"))
    check(sd["conv1.weight"].dtype == torch.float16 and sd["fc.weight"].dtype == torch.float32 and
          sd["transformer.resblocks.2.adapter_pre_mlp.conv.weight"].dtype == torch.float32, "fake model dtypes")
    check(sorted(k for k in sd if "adapter" in k or k.startswith("fc.")) == sorted(want), "fake model names")
    with tempfile.TemporaryDirectory() as d:
        for full in (True, False):
            src = os.path.join(d, "checkpoint-%d.pth" % full)
            torch.save(reference_checkpoint(m, full), src)
            dst = os.path.join(d, "out%d" % full) + os.sep
            rc, out = run(CONVERT_ST_ADAPTER, src, "-o", dst)
            check(rc == 0, "convert failed: " + out)
            check("key 'model'" in out and "A 4, kernel 3x3x3" in out and "5 classes" in out, out)
            t, meta, recs = read_back(os.path.join(dst, "adapter.safetensors"))
            check(sorted(t) == sorted(want), "kept %r" % sorted(t))
            check(meta == {"format": "pt", "source": os.path.basename(src)}, "metadata %r" % meta)
            for k in want:
                check(recs[k].dtype == "F32", "%s stored as %s" % (k, recs[k].dtype))
                same(t[k], sd[k], k)
            check(list(t["transformer.resblocks.1.adapter_pre_attn.conv.weight"].shape) == [4, 1, 3, 3, 3] and
                  list(t["transformer.resblocks.2.adapter_pre_mlp.fc1.weight"].shape) == [4, 16] and
                  list(t["transformer.resblocks.2.adapter_pre_mlp.fc2.weight"].shape) == [16, 4] and
                  list(t["fc.weight"].shape) == [5, 16], "shapes")
            check(("dropped %d others" % (len(sd) - len(want) if full else 0)) in out, out)


@test
def st_adapter_prefixes_and_f16():
    torch.manual_seed(5)
    m = RefVisionTransformer(adapter_layers=3, pre_attn=False)  # the 12x384 placement, in small
    sd = m.state_dict()
    want = adapter_names(3, 3, ("adapter_pre_mlp",))
    with tempfile.TemporaryDirectory() as d:
        # DDP wrapper names, adapters saved as float16, nested under "state_dict"
        src = os.path.join(d, "ddp.pth")
        torch.save({"state_dict": {"module." + k: v.half() for k, v in sd.items()}, "epoch": 1}, src)
        dst = os.path.join(d, "ddp.safetensors")
        rc, out = run(CONVERT_ST_ADAPTER, src, "-o", dst)
        check(rc == 0, "convert failed: " + out)
        t, _, recs = read_back(dst)
        check(sorted(t) == sorted(want), "kept %r" % sorted(t))
        for k in want:
            check(recs[k].dtype == "F32", k)
            same(t[k], sd[k].half().float(), k)
        # a bare state dict with CLIP's "visual." prefix; default output name
        src = os.path.join(d, "visual.pth")
        torch.save({"visual." + k: v for k, v in sd.items()}, src)
        rc, out = run(CONVERT_ST_ADAPTER, src, "--weights-only")  # tensors only: 1.13 can
        check(rc == 0 and "top level" in out, "convert failed: " + out)
        t, _, _ = read_back(os.path.join(d, "visual.safetensors"))
        check(sorted(t) == sorted(want), "kept %r" % sorted(t))
        for k in want:
            same(t[k], sd[k].float(), k)


@test
def st_adapter_errors():
    torch.manual_seed(6)
    sd = RefVisionTransformer().state_dict()
    with tempfile.TemporaryDirectory() as d:
        def expect(state, needle, what):
            src = os.path.join(d, "bad.pth")
            torch.save({"model": state}, src)
            rc, out = run(CONVERT_ST_ADAPTER, src)
            check(rc == 1 and needle in out, "%s: rc %d: %s" % (what, rc, out))
            check(not os.path.exists(os.path.join(d, "bad.safetensors")), "output written on error")
        bad = dict(sd)
        del bad["transformer.resblocks.1.adapter_pre_mlp.conv.bias"]
        expect(bad, "missing transformer.resblocks.1.adapter_pre_mlp.conv.bias", "missing part")
        bad = dict(sd)
        bad["transformer.resblocks.2.adapter_pre_attn.fc2.weight"] = torch.zeros(16, 3)
        expect(bad, "transformer.resblocks.2.adapter_pre_attn.fc2.weight has shape [16, 3], expected [16, 4]",
               "shape mismatch")
        bad = dict(sd)
        bad["fc.weight"] = torch.zeros(5, 15)
        expect(bad, "head fc.weight [5, 15]", "head width")
        expect({k: v for k, v in sd.items() if "adapter" not in k and not k.startswith("fc.")},
               "no adapter tensors", "backbone only")
        bad = dict(sd)
        bad["module.fc.bias"] = torch.zeros(5)
        expect(bad, "both map to 'fc.bias'", "prefix collision")
        rc, out = run(CONVERT_ST_ADAPTER, "--help")
        check(rc == 0 and "usage:" in out and "--weights-only" in out, out)


@test
def help_texts():
    for script in (CONVERT_PTH, CONVERT_OPENAI):
        rc, out = run(script, "--help")
        check(rc == 0 and "usage:" in out and "--dtype" in out, "%s --help: %s" % (script, out))


def main():
    failed = 0
    for fn in TESTS:
        try:
            fn()
            print("ok    %s" % fn.__name__)
        except Exception:
            failed += 1
            print("FAIL  %s" % fn.__name__)
            traceback.print_exc()
    print("%d/%d passed" % (len(TESTS) - failed, len(TESTS)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
