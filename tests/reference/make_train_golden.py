#!/usr/bin/python3
"""make_train_golden.py: golden data for ONE TRAINING STEP (forward, loss,
backward) of the ST-Adapter model on the tiny test backbone
tests/data/models/hf, for stacl's C training code.

    /usr/bin/python3 tests/reference/make_train_golden.py [--check]

Writes tests/data/train/<case>/ for two placements:
  mlp_all    adapter_pre_mlp in every block (0, 1, 2), kernel (3, 1, 1),
             adapter width 8, 5 classes, 2 clips x 3 frames;
  attn_mlp   adapter_pre_attn + adapter_pre_mlp in the last 2 blocks (1, 2),
             kernel (3, 3, 3), adapter width 6, 4 classes, 2 clips x 2 frames.

Files (all little-endian):
  adapter.safetensors  F32, reference names (no prefix), in this order: per
                       block, per site (pre_attn, then pre_mlp)
                       transformer.resblocks.N.adapter_pre_{attn,mlp}.
                         fc1.weight [A, W], fc1.bias [A],
                         conv.weight [A, 1, kt, kh, kw], conv.bias [A],
                         fc2.weight [W, A], fc2.bias [W];
                       then fc.weight [classes, W], fc.bias [classes].
  input.npy            float32 [B, T, 3, H, W] normalized frames (randn)
  targets.safetensors  labels: I64 [B]; loss: F64 0-d (below)
  logits.npy           float32 [B, classes]
  dlogits.npy          float32 [B, classes]: d loss / d logits (for staging
                       the C backward: loss gradient first, then the model)
  loss                 float64 0-d: F.cross_entropy(logits, labels,
                       label_smoothing=0.1), mean over the batch, i.e.
                       mean_b [ -(1 - 0.1) log p[b, y_b] - 0.1/C sum_k log p[b, k] ]
  grads.safetensors    F32, same names, shapes and order as
                       adapter.safetensors: d loss / d tensor, computed in
                       float64 and rounded to float32.

The model (dropout off, i.e. what the reference computes in eval mode, or in
training with the head's Dropout(0.5) disabled): backbone weights of
tests/data/models/hf (float32 as stored) and the block math of make_golden.py;
adapters as in make_adapter_golden.py: on the patch tokens only,
x[:, 1:] += fc2(dwconv3d(fc1(x[:, 1:]))), conv over [T, h, w] with zero
padding k // 2 and bias, no activation, placed on the residual stream before
ln_1 (pre_attn) and/or ln_2 (pre_mlp); head: class tokens of the last block
averaged over the T frames of each clip, ln_post, fc (no projection).
Attention is written out (softmax(q k^T / sqrt(d)) v, torch 1.13 has no
scaled_dot_product_attention). Everything is float64 autograd, computed FROM
the float32 values that are stored (weights, inputs), then rounded.

Note: the adapter_pre_mlp of the LAST block has an exactly zero gradient in
both cases: it only changes patch tokens, after it there is no attention, and
the head reads only the class token. This is a property of the ST-Adapter
architecture (the reference's last pre_mlp adapter never learns, except
through weight decay), not of this script: its grads are stored as exact
zeros, so compare those with an absolute tolerance. Every other tensor has a
non-zero gradient in every element.

Checks (the script fails otherwise):
  * the loss written out by hand equals F.cross_entropy(label_smoothing=0.1);
  * central finite differences of the float64 loss along random directions
    agree with the autograd gradient (relative error < 1e-7);
  * a second, differently written float32 model (torch.nn Conv2d, LayerNorm,
    MultiheadAttention, Linear, Conv3d(groups=A) adapters as in the reference
    models_adapter.py) gives the same logits, loss and gradients (max abs
    error / max |grad| < 1e-3 per tensor).
--check regenerates into a temporary directory and compares bytes.
"""

import argparse
import filecmp
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_adapter_golden as mag  # noqa: E402
mg = mag.mg
st = mg.st

LABEL_SMOOTHING = 0.1
FC2_SCALE = 0.25          # exact power of two: keeps the adapted model near the backbone
FD_REL_TOL = 1e-7
F32_REL_TOL = 1e-3
FILES = ("adapter.safetensors", "input.npy", "targets.safetensors", "logits.npy", "dlogits.npy",
         "grads.safetensors")

CASES = {
    "mlp_all": dict(pre_attn=False, pre_mlp=True, last=3, aw=8, kernel=(3, 1, 1), classes=5,
                    clips=2, frames=3, seed=61),
    "attn_mlp": dict(pre_attn=True, pre_mlp=True, last=2, aw=6, kernel=(3, 3, 3), classes=4,
                     clips=2, frames=2, seed=62),
}


def make_params(spec, case, gen):
    """make_adapter_golden's random non-zero tensors, fc2 scaled down."""
    t = mag.make_adapter(spec, case, gen)
    for k in t:
        if ".fc2." in k:
            t[k] = t[k] * FC2_SCALE
    return t


def loss_by_hand(logits, labels, eps=LABEL_SMOOTHING):
    logp = logits - torch.logsumexp(logits, -1, keepdim=True)
    nll = -logp[torch.arange(logits.shape[0]), labels]
    return ((1 - eps) * nll - eps * logp.mean(-1)).mean()


def loss_and_grads(v, spec, t, pixels, labels, B, T):
    """float64 autograd: (logits, loss, dlogits, {name: grad}), tokens."""
    leaves = {k: x.double().requires_grad_() for k, x in t.items()}
    tokens, logits = mag.adapted_forward(v, spec, leaves, pixels, B, T)
    logits.retain_grad()
    loss = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    grads = {k: x.grad.detach() for k, x in leaves.items()}
    return logits.detach(), loss.detach(), logits.grad.detach(), grads, tokens.detach()


def finite_difference_check(v, spec, t, pixels, labels, B, T, grads, gen, n_dirs=3, h=1e-5):
    worst = 0.0
    base = {k: x.double() for k, x in t.items()}
    with torch.no_grad():
        for _ in range(n_dirs):
            d = {k: torch.randn(x.shape, generator=gen, dtype=torch.float64) for k, x in base.items()}
            f = lambda s: F.cross_entropy(  # noqa: E731
                mag.adapted_forward(v, spec, {k: base[k] + s * d[k] for k in base}, pixels, B, T)[1],
                labels, label_smoothing=LABEL_SMOOTHING).item()
            fd = (f(h) - f(-h)) / (2 * h)
            an = sum((grads[k] * d[k]).sum().item() for k in base)
            worst = max(worst, abs(fd - an) / abs(an))
    return worst


# ---------------------------------------------------------------------------
# Second path: float32 torch.nn modules, adapters as the reference writes them
# ---------------------------------------------------------------------------

class RefAdapter(nn.Module):
    """linziyi96/st-adapter models_adapter.Adapter.forward, as written there
    (in-place `x_id[:, 1:, :] += x` on the block's residual stream)."""

    def __init__(self, w, a, kernel):
        super().__init__()
        self.fc1 = nn.Linear(w, a)
        self.conv = nn.Conv3d(a, a, kernel_size=kernel, stride=(1, 1, 1),
                              padding=tuple(k // 2 for k in kernel), groups=a)
        self.fc2 = nn.Linear(a, w)

    def forward(self, x, T):
        BT, L, C = x.size()
        B, Ca = BT // T, self.conv.in_channels
        H = W = round((L - 1) ** 0.5)
        h = self.fc1(x[:, 1:, :])
        h = h.view(B, T, H, W, Ca).permute(0, 4, 1, 2, 3).contiguous()
        h = self.conv(h)
        h = h.permute(0, 2, 3, 4, 1).contiguous().view(BT, L - 1, Ca)
        x_id = x
        x_id[:, 1:, :] += self.fc2(h)
        return x_id


def nn_path(v, spec, case, t, pixels, labels, B, T):
    """float32 logits, loss and {name: grad} from torch.nn modules."""
    torch.manual_seed(0)  # module init is overwritten
    vis = mg.NNVision(spec)
    vis.load_canonical(v)
    for p in vis.parameters():
        p.requires_grad_(False)
    w = spec["width"]
    ads = nn.ModuleDict()
    for k in t:
        if k.endswith("fc1.weight"):
            ads[k[:-len(".fc1.weight")].replace(".", "_")] = RefAdapter(w, case["aw"], case["kernel"])
    fc = nn.Linear(w, case["classes"])
    params = {}
    for k in t:
        if k.startswith("fc."):
            params[k] = getattr(fc, k.split(".")[1])
        else:
            site, rest = k.rsplit(".", 2)[0], k.rsplit(".", 2)[1:]
            params[k] = getattr(getattr(ads[site.replace(".", "_")], rest[0]), rest[1])
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(t[k])
    x = vis.conv1(pixels.float())
    x = x.reshape(x.shape[0], w, -1).permute(0, 2, 1)
    x = torch.cat([vis.class_embedding.reshape(1, 1, w).expand(x.shape[0], 1, w), x], 1)
    x = vis.ln_pre(x + vis.positional_embedding)
    for i, blk in enumerate(vis.blocks):
        pa = "transformer_resblocks_%d_adapter_pre_attn" % i
        pm = "transformer_resblocks_%d_adapter_pre_mlp" % i
        if pa in ads:
            x = ads[pa](x, T)
        y = blk.ln_1(x)
        x = x + blk.attn(y, y, y, need_weights=False)[0]
        if pm in ads:
            x = ads[pm](x, T)
        hid = blk.fc1(blk.ln_2(x))
        x = x + blk.fc2(hid * torch.sigmoid(1.702 * hid))
    cls = x.reshape(B, T, x.shape[1], w)[:, :, 0, :].mean(dim=1)
    logits = fc(vis.ln_post(cls))  # the reference's Dropout(0.5) sits here (off)
    loss = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    return logits.detach(), loss.detach(), {k: p.grad.detach().clone() for k, p in params.items()}


# ---------------------------------------------------------------------------

def save_np(path, arr):
    np.save(path, np.require(arr, requirements="C"), allow_pickle=False)  # keeps 0-d arrays 0-d


def build(data_dir):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    spec = mg.SPECS["hf"]
    v = mg.canonical_from_file(spec, os.path.join(data_dir, "models", "hf"))
    for name, case in CASES.items():
        gen = torch.Generator().manual_seed(case["seed"])
        t = make_params(spec, case, gen)
        B, T, S = case["clips"], case["frames"], spec["image"]
        pixels32 = torch.randn(B, T, 3, S, S, generator=gen, dtype=torch.float64).float()
        labels = torch.randint(case["classes"], (B,), generator=gen)
        pixels = pixels32.double().reshape(B * T, 3, S, S)

        logits, loss, dlogits, grads, tokens = loss_and_grads(v, spec, t, pixels, labels, B, T)

        # Adapters' effect on the residual stream (conditioning).
        bare = {k: x for k, x in t.items() if k.startswith("fc.")}
        tokens0, _ = mag.adapted_forward(v, spec, bare, pixels, B, T)
        change = ((tokens - tokens0).norm() / tokens0.norm()).item()

        # Check 1: loss by hand.
        err = abs(loss_by_hand(logits, labels).item() - loss.item())
        if err > 1e-13:
            raise SystemExit("FAIL: %s: loss by hand differs by %.3e" % (name, err))
        # Check 2: finite differences.
        fd = finite_difference_check(v, spec, t, pixels, labels, B, T, grads,
                                     torch.Generator().manual_seed(case["seed"] + 1000))
        if not fd < FD_REL_TOL:
            raise SystemExit("FAIL: %s: finite differences rel err %.3e" % (name, fd))
        # Check 3: float32 torch.nn path.
        l32, loss32, g32 = nn_path(v, spec, case, t, pixels32.reshape(B * T, 3, S, S), labels, B, T)
        lerr, _ = mg.compare(l32, logits)
        worst = 0.0
        for k, g in grads.items():
            scale = g.abs().max().item()
            e = (g32[k].double() - g).abs().max().item()
            worst = max(worst, e / scale if scale > 0 else e)
        print("%s: labels %s, loss %.6f, logits max |.| %.3f, adapters change tokens by %.3f "
              "(relative norm)" % (name, labels.tolist(), loss.item(), logits.abs().max().item(), change))
        print("   checks: finite differences rel err %.2e; float32 nn path: logits abs err %.2e, "
              "loss err %.2e, grads rel err %.2e" % (fd, lerr, abs(loss32.item() - loss.item()), worst))
        if not (worst < F32_REL_TOL and lerr < 1e-4):
            raise SystemExit("FAIL: %s: float32 nn path disagrees" % name)

        last = "transformer.resblocks.%d.adapter_pre_mlp." % (spec["layers"] - 1)
        for k, g in grads.items():
            g32r = g.float()
            zeros = int((g32r == 0).sum())
            dead = k.startswith(last)
            print("   %-52s %-16s |g| max %.3e min %.3e%s" % (
                k, list(g.shape), g.abs().max().item(), g.abs().min().item(),
                "  (exactly zero: last block's pre_mlp)" if dead else ""))
            if dead and g.abs().max().item() != 0.0:
                raise SystemExit("FAIL: %s: %s should have a zero gradient" % (name, k))
            if not dead and zeros:
                raise SystemExit("FAIL: %s: %s has %d zero gradient elements" % (name, k, zeros))

        out = os.path.join(data_dir, "train", name)
        os.makedirs(out, exist_ok=True)
        st.save(os.path.join(out, "adapter.safetensors"), list(t.items()))
        mg.save_npy(os.path.join(out, "input.npy"), pixels32)
        mg.save_npy(os.path.join(out, "logits.npy"), logits)
        mg.save_npy(os.path.join(out, "dlogits.npy"), dlogits)
        # stacl's .npy reader takes float32 only: the integer labels and the
        # float64 loss go in a safetensors file (I64, F64).
        st.save(os.path.join(out, "targets.safetensors"),
                [("labels", labels.numpy().astype("<i8")), ("loss", np.array(loss.item(), dtype="<f8"))])
        st.save(os.path.join(out, "grads.safetensors"), [(k, g.float()) for k, g in grads.items()])


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
            for f in FILES:
                p = os.path.join("train", name, f)
                old = os.path.join(a.data_dir, p)
                if not os.path.exists(old) or not filecmp.cmp(os.path.join(tmp, p), old, shallow=False):
                    print("differs: " + p)
                    bad = 1
        print("check: " + ("FAILED" if bad else "identical"))
        return bad


if __name__ == "__main__":
    sys.exit(main())
