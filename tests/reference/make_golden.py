#!/usr/bin/python3
"""make_golden.py: small random CLIP models and PyTorch golden outputs for the
stacl C tests.

    /usr/bin/python3 tests/reference/make_golden.py [--check]

Writes (relative to the repository root)
  tests/data/models/openai_f16/model.safetensors     OpenAI CLIP names, F16
  tests/data/models/hf/{config.json,model.safetensors}  HF CLIPModel, F32
  tests/data/models/hf_vision_gelu/{config.json,model.safetensors}
                                                     HF CLIPVisionModel, F32
  tests/data/golden/<model>/*.npy                    inputs and activations

The reference forward pass below is written from the published CLIP math
(OpenAI CLIP VisionTransformer / Hugging Face CLIPVisionTransformer) with plain
torch ops in float64, using the weights exactly as stored in the written files
(read back with models/safetensors_io.py, so F16 rounding is included). Two
independent checks run every time:
  * attention computed per head from separate q/k/v matrices == attention from
    the fused [3w, w] in_proj matrix;
  * a float32 pass written with torch.nn modules (Conv2d, LayerNorm,
    MultiheadAttention, Linear) agrees with the float64 pass to 1e-4 relative.
--check: regenerate into a temporary directory and compare bytes with the
committed files (exit 1 on any difference).

Everything is deterministic: fixed seeds, single-threaded torch, files written
in a fixed order.
"""

import argparse
import filecmp
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "models"))
import safetensors_io as st  # noqa: E402

LN_EPS = 1e-5
F32_REL_TOL = 1e-4       # float32 nn-module pass vs float64 reference
SPLIT_REL_TOL = 1e-12    # per-head vs fused attention, both float64


# ---------------------------------------------------------------------------
# Model specifications
# ---------------------------------------------------------------------------

SPECS = {
    # a. OpenAI layout, F16 storage, QuickGELU, heads = width / 64.
    "openai_f16": dict(layout="openai", width=128, layers=2, heads=2, mlp=512,
                       patch=8, image=48, proj=32, act="quick_gelu", f16=True,
                       frames=2, seed=1001,
                       text=dict(vocab=64, context=8, width=64, layers=2, heads=1)),
    # b. Hugging Face CLIPModel, F32, QuickGELU, head_dim 32.
    "hf": dict(layout="hf", width=64, layers=3, heads=2, mlp=256, patch=4, image=28,
               proj=24, act="quick_gelu", f16=False, frames=3, seed=2002,
               text=dict(vocab=64, context=8, width=32, layers=1, heads=2, mlp=128)),
    # c. Hugging Face CLIPVisionModel (no projection), exact GELU, MLP ratio 2.
    "hf_vision_gelu": dict(layout="hf_vision", width=48, layers=1, heads=3, mlp=96,
                           patch=7, image=21, proj=0, act="gelu", f16=False, frames=1,
                           seed=3003, text=None),
}


class Rng(object):
    """float32 normal samples from one seeded generator, in call order."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std

    def ln(self, n):
        return 1.0 + self.randn(n, std=0.1), self.randn(n, std=0.1)

    def bias(self, n):
        return self.randn(n, std=0.02)


def random_vision(spec, rng):
    """Vision weights in a canonical form (fused qkv, OpenAI orientation of
    the projection [w, proj]), float32."""
    w, nl, p, m = spec["width"], spec["layers"], spec["patch"], spec["mlp"]
    grid = spec["image"] // p
    ntok = grid * grid + 1
    attn_std = w ** -0.5
    proj_std = w ** -0.5 * (2 * nl) ** -0.5
    fc_std = (2 * w) ** -0.5
    v = {}
    v["conv"] = rng.randn(w, 3, p, p, std=(3 * p * p) ** -0.5)
    v["cls"] = rng.randn(w, std=w ** -0.5)
    v["pos"] = rng.randn(ntok, w, std=w ** -0.5)
    v["ln_pre_w"], v["ln_pre_b"] = rng.ln(w)
    blocks = []
    for _ in range(nl):
        b = {}
        b["ln1_w"], b["ln1_b"] = rng.ln(w)
        b["qkv_w"] = rng.randn(3 * w, w, std=attn_std)
        b["qkv_b"] = rng.bias(3 * w)
        b["out_w"] = rng.randn(w, w, std=proj_std)
        b["out_b"] = rng.bias(w)
        b["ln2_w"], b["ln2_b"] = rng.ln(w)
        b["fc1_w"] = rng.randn(m, w, std=fc_std)
        b["fc1_b"] = rng.bias(m)
        b["fc2_w"] = rng.randn(w, m, std=proj_std)
        b["fc2_b"] = rng.bias(w)
        blocks.append(b)
    v["blocks"] = blocks
    v["ln_post_w"], v["ln_post_b"] = rng.ln(w)
    v["proj"] = rng.randn(w, spec["proj"], std=w ** -0.5) if spec["proj"] else None
    return v


# ---------------------------------------------------------------------------
# Writing the real file layouts
# ---------------------------------------------------------------------------

def openai_tensors(spec, v, rng):
    ft = torch.float16 if spec["f16"] else torch.float32
    t = spec["text"]
    tw, tm = t["width"], 4 * t["width"]
    out = []

    def add(name, x):
        out.append((name, x.to(ft) if x.is_floating_point() else x))

    # Python ints stored as 0-d int64 tensors in OpenAI's TorchScript archives
    # (clip.build_model deletes them): a loader must ignore them.
    add("input_resolution", torch.tensor(spec["image"], dtype=torch.int64))
    add("context_length", torch.tensor(t["context"], dtype=torch.int64))
    add("vocab_size", torch.tensor(t["vocab"], dtype=torch.int64))
    add("logit_scale", torch.tensor(math.log(1 / 0.07), dtype=torch.float32))
    add("visual.class_embedding", v["cls"])
    add("visual.positional_embedding", v["pos"])
    add("visual.proj", v["proj"])
    add("visual.conv1.weight", v["conv"])
    add("visual.ln_pre.weight", v["ln_pre_w"])
    add("visual.ln_pre.bias", v["ln_pre_b"])
    for i, b in enumerate(v["blocks"]):
        pre = "visual.transformer.resblocks.%d." % i
        add(pre + "attn.in_proj_weight", b["qkv_w"])
        add(pre + "attn.in_proj_bias", b["qkv_b"])
        add(pre + "attn.out_proj.weight", b["out_w"])
        add(pre + "attn.out_proj.bias", b["out_b"])
        add(pre + "ln_1.weight", b["ln1_w"])
        add(pre + "ln_1.bias", b["ln1_b"])
        add(pre + "mlp.c_fc.weight", b["fc1_w"])
        add(pre + "mlp.c_fc.bias", b["fc1_b"])
        add(pre + "mlp.c_proj.weight", b["fc2_w"])
        add(pre + "mlp.c_proj.bias", b["fc2_b"])
        add(pre + "ln_2.weight", b["ln2_w"])
        add(pre + "ln_2.bias", b["ln2_b"])
    add("visual.ln_post.weight", v["ln_post_w"])
    add("visual.ln_post.bias", v["ln_post_b"])
    # Tiny text tower (heads = width / 64, as OpenAI's).
    add("token_embedding.weight", rng.randn(t["vocab"], tw, std=0.02))
    add("positional_embedding", rng.randn(t["context"], tw, std=0.01))
    for i in range(t["layers"]):
        pre = "transformer.resblocks.%d." % i
        add(pre + "attn.in_proj_weight", rng.randn(3 * tw, tw, std=tw ** -0.5))
        add(pre + "attn.in_proj_bias", rng.bias(3 * tw))
        add(pre + "attn.out_proj.weight", rng.randn(tw, tw, std=tw ** -0.5))
        add(pre + "attn.out_proj.bias", rng.bias(tw))
        add(pre + "ln_1.weight", rng.ln(tw)[0])
        add(pre + "ln_1.bias", rng.bias(tw))
        add(pre + "mlp.c_fc.weight", rng.randn(tm, tw, std=(2 * tw) ** -0.5))
        add(pre + "mlp.c_fc.bias", rng.bias(tm))
        add(pre + "mlp.c_proj.weight", rng.randn(tw, tm, std=tm ** -0.5))
        add(pre + "mlp.c_proj.bias", rng.bias(tw))
        add(pre + "ln_2.weight", rng.ln(tw)[0])
        add(pre + "ln_2.bias", rng.bias(tw))
    add("ln_final.weight", rng.ln(tw)[0])
    add("ln_final.bias", rng.bias(tw))
    add("text_projection", rng.randn(tw, spec["proj"], std=tw ** -0.5))
    return out


def hf_vision_tensors(spec, v, prefix, with_position_ids):
    w = spec["width"]
    out = []
    e = prefix + "embeddings."
    out.append((e + "class_embedding", v["cls"]))
    out.append((e + "patch_embedding.weight", v["conv"]))
    out.append((e + "position_embedding.weight", v["pos"]))
    if with_position_ids:
        out.append((e + "position_ids", torch.arange(v["pos"].shape[0], dtype=torch.int64)[None]))
    out.append((prefix + "pre_layrnorm.weight", v["ln_pre_w"]))  # sic: HF's spelling
    out.append((prefix + "pre_layrnorm.bias", v["ln_pre_b"]))
    for i, b in enumerate(v["blocks"]):
        pre = prefix + "encoder.layers.%d." % i
        for j, n in enumerate("qkv"):
            out.append((pre + "self_attn.%s_proj.weight" % n, b["qkv_w"][j * w:(j + 1) * w]))
            out.append((pre + "self_attn.%s_proj.bias" % n, b["qkv_b"][j * w:(j + 1) * w]))
        out.append((pre + "self_attn.out_proj.weight", b["out_w"]))
        out.append((pre + "self_attn.out_proj.bias", b["out_b"]))
        out.append((pre + "layer_norm1.weight", b["ln1_w"]))
        out.append((pre + "layer_norm1.bias", b["ln1_b"]))
        out.append((pre + "mlp.fc1.weight", b["fc1_w"]))
        out.append((pre + "mlp.fc1.bias", b["fc1_b"]))
        out.append((pre + "mlp.fc2.weight", b["fc2_w"]))
        out.append((pre + "mlp.fc2.bias", b["fc2_b"]))
        out.append((pre + "layer_norm2.weight", b["ln2_w"]))
        out.append((pre + "layer_norm2.bias", b["ln2_b"]))
    out.append((prefix + "post_layernorm.weight", v["ln_post_w"]))
    out.append((prefix + "post_layernorm.bias", v["ln_post_b"]))
    return out


def hf_text_tensors(t, proj, rng):
    tw, tm = t["width"], t["mlp"]
    out = []
    e = "text_model.embeddings."
    out.append((e + "token_embedding.weight", rng.randn(t["vocab"], tw, std=0.02)))
    out.append((e + "position_embedding.weight", rng.randn(t["context"], tw, std=0.01)))
    out.append((e + "position_ids", torch.arange(t["context"], dtype=torch.int64)[None]))
    for i in range(t["layers"]):
        pre = "text_model.encoder.layers.%d." % i
        for n in ("q", "k", "v", "out"):
            out.append((pre + "self_attn.%s_proj.weight" % n, rng.randn(tw, tw, std=tw ** -0.5)))
            out.append((pre + "self_attn.%s_proj.bias" % n, rng.bias(tw)))
        out.append((pre + "layer_norm1.weight", rng.ln(tw)[0]))
        out.append((pre + "layer_norm1.bias", rng.bias(tw)))
        out.append((pre + "mlp.fc1.weight", rng.randn(tm, tw, std=(2 * tw) ** -0.5)))
        out.append((pre + "mlp.fc1.bias", rng.bias(tm)))
        out.append((pre + "mlp.fc2.weight", rng.randn(tw, tm, std=tm ** -0.5)))
        out.append((pre + "mlp.fc2.bias", rng.bias(tw)))
        out.append((pre + "layer_norm2.weight", rng.ln(tw)[0]))
        out.append((pre + "layer_norm2.bias", rng.bias(tw)))
    out.append(("text_model.final_layer_norm.weight", rng.ln(tw)[0]))
    out.append(("text_model.final_layer_norm.bias", rng.bias(tw)))
    out.append(("text_projection.weight", rng.randn(proj, tw, std=tw ** -0.5)))
    return out


def hf_vision_config_fields(spec):
    return {
        "hidden_size": spec["width"],
        "intermediate_size": spec["mlp"],
        "num_attention_heads": spec["heads"],
        "num_hidden_layers": spec["layers"],
        "patch_size": spec["patch"],
        "image_size": spec["image"],
        "hidden_act": spec["act"],
        "layer_norm_eps": LN_EPS,
        "num_channels": 3,
        # Fields transformers writes that stacl does not need.
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_model(name, spec, v, rng, model_dir):
    """Writes model_dir/model.safetensors (+ config.json)."""
    os.makedirs(model_dir, exist_ok=True)
    meta = {"format": "pt"}
    if spec["layout"] == "openai":
        tensors = openai_tensors(spec, v, rng)
    elif spec["layout"] == "hf":
        t = spec["text"]
        tensors = hf_vision_tensors(spec, v, "vision_model.", True)
        tensors.append(("visual_projection.weight", v["proj"].t().contiguous()))  # [proj, w]
        tensors.append(("logit_scale", torch.tensor(2.6592, dtype=torch.float32)))
        tensors += hf_text_tensors(t, spec["proj"], rng)
        vc = hf_vision_config_fields(spec)
        vc.update({"projection_dim": spec["proj"], "model_type": "clip_vision_model"})
        tc = {"hidden_size": t["width"], "intermediate_size": t["mlp"],
              "num_attention_heads": t["heads"], "num_hidden_layers": t["layers"],
              "max_position_embeddings": t["context"], "vocab_size": t["vocab"],
              "hidden_act": "quick_gelu", "layer_norm_eps": LN_EPS,
              "projection_dim": spec["proj"], "model_type": "clip_text_model",
              "bos_token_id": t["vocab"] - 2, "eos_token_id": t["vocab"] - 1,
              "pad_token_id": 1, "attention_dropout": 0.0, "dropout": 0.0,
              "initializer_factor": 1.0, "initializer_range": 0.02}
        write_json(os.path.join(model_dir, "config.json"), {
            "architectures": ["CLIPModel"], "model_type": "clip",
            "projection_dim": spec["proj"], "logit_scale_init_value": 2.6592,
            "initializer_factor": 1.0, "torch_dtype": "float32",
            "transformers_version": "4.26.0",
            "vision_config": vc, "text_config": tc})
    elif spec["layout"] == "hf_vision":
        tensors = hf_vision_tensors(spec, v, "vision_model.", False)
        cfg = hf_vision_config_fields(spec)
        # CLIPVisionConfig.to_dict() always carries projection_dim (default
        # 512), even for a CLIPVisionModel that has no projection: a loader
        # must decide on the projection from the tensors / architecture.
        cfg.update({"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model",
                    "projection_dim": 512, "torch_dtype": "float32",
                    "transformers_version": "4.26.0"})
        write_json(os.path.join(model_dir, "config.json"), cfg)
    else:
        raise ValueError(spec["layout"])
    # Order of the reference safetensors library: wider dtypes first, then by
    # name (every tensor aligned to its element size).
    st.save(os.path.join(model_dir, "model.safetensors"), st.reference_order(tensors), meta)


# ---------------------------------------------------------------------------
# Reading the files back (weights as stored)
# ---------------------------------------------------------------------------

def load_stored(model_dir):
    recs, _ = st.load(os.path.join(model_dir, "model.safetensors"))
    return {k: st.to_torch(r) for k, r in recs.items()}


def canonical_from_file(spec, model_dir):
    """Reads the written file and maps it to the canonical form, float64.
    Also returns per-block separate q/k/v tensors (for HF: the stored
    tensors themselves; for OpenAI: thirds of in_proj)."""
    sd = load_stored(model_dir)
    d = lambda x: x.to(torch.float64)  # noqa: E731
    w = spec["width"]
    v = {"blocks": []}
    if spec["layout"] == "openai":
        v["conv"] = d(sd["visual.conv1.weight"])
        v["cls"] = d(sd["visual.class_embedding"])
        v["pos"] = d(sd["visual.positional_embedding"])
        v["ln_pre_w"], v["ln_pre_b"] = d(sd["visual.ln_pre.weight"]), d(sd["visual.ln_pre.bias"])
        for i in range(spec["layers"]):
            p = "visual.transformer.resblocks.%d." % i
            qkv_w, qkv_b = d(sd[p + "attn.in_proj_weight"]), d(sd[p + "attn.in_proj_bias"])
            v["blocks"].append({
                "ln1_w": d(sd[p + "ln_1.weight"]), "ln1_b": d(sd[p + "ln_1.bias"]),
                "qkv_w": qkv_w, "qkv_b": qkv_b,
                "q_w": qkv_w[:w], "k_w": qkv_w[w:2 * w], "v_w": qkv_w[2 * w:],
                "q_b": qkv_b[:w], "k_b": qkv_b[w:2 * w], "v_b": qkv_b[2 * w:],
                "out_w": d(sd[p + "attn.out_proj.weight"]), "out_b": d(sd[p + "attn.out_proj.bias"]),
                "ln2_w": d(sd[p + "ln_2.weight"]), "ln2_b": d(sd[p + "ln_2.bias"]),
                "fc1_w": d(sd[p + "mlp.c_fc.weight"]), "fc1_b": d(sd[p + "mlp.c_fc.bias"]),
                "fc2_w": d(sd[p + "mlp.c_proj.weight"]), "fc2_b": d(sd[p + "mlp.c_proj.bias"]),
            })
        v["ln_post_w"], v["ln_post_b"] = d(sd["visual.ln_post.weight"]), d(sd["visual.ln_post.bias"])
        v["proj"] = d(sd["visual.proj"])
    else:
        m = "vision_model."
        e = m + "embeddings."
        v["conv"] = d(sd[e + "patch_embedding.weight"])
        v["cls"] = d(sd[e + "class_embedding"])
        v["pos"] = d(sd[e + "position_embedding.weight"])
        v["ln_pre_w"], v["ln_pre_b"] = d(sd[m + "pre_layrnorm.weight"]), d(sd[m + "pre_layrnorm.bias"])
        for i in range(spec["layers"]):
            p = m + "encoder.layers.%d." % i
            blk = {}
            for n in "qkv":
                blk[n + "_w"] = d(sd[p + "self_attn.%s_proj.weight" % n])
                blk[n + "_b"] = d(sd[p + "self_attn.%s_proj.bias" % n])
            blk["qkv_w"] = torch.cat([blk["q_w"], blk["k_w"], blk["v_w"]], 0)
            blk["qkv_b"] = torch.cat([blk["q_b"], blk["k_b"], blk["v_b"]], 0)
            blk.update({
                "ln1_w": d(sd[p + "layer_norm1.weight"]), "ln1_b": d(sd[p + "layer_norm1.bias"]),
                "out_w": d(sd[p + "self_attn.out_proj.weight"]),
                "out_b": d(sd[p + "self_attn.out_proj.bias"]),
                "ln2_w": d(sd[p + "layer_norm2.weight"]), "ln2_b": d(sd[p + "layer_norm2.bias"]),
                "fc1_w": d(sd[p + "mlp.fc1.weight"]), "fc1_b": d(sd[p + "mlp.fc1.bias"]),
                "fc2_w": d(sd[p + "mlp.fc2.weight"]), "fc2_b": d(sd[p + "mlp.fc2.bias"]),
            })
            v["blocks"].append(blk)
        v["ln_post_w"] = d(sd[m + "post_layernorm.weight"])
        v["ln_post_b"] = d(sd[m + "post_layernorm.bias"])
        if "visual_projection.weight" in sd:
            v["proj"] = d(sd["visual_projection.weight"]).t()  # [proj, w] -> [w, proj]
        else:
            v["proj"] = None
    return v


# ---------------------------------------------------------------------------
# Reference forward pass (float64, plain ops)
# ---------------------------------------------------------------------------

def layer_norm(x, w, b, eps=LN_EPS):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance
    return (x - mu) / torch.sqrt(var + eps) * w + b


def activation(x, act):
    if act == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if act == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    raise ValueError(act)


def softmax(s):
    s = s - s.max(-1, keepdim=True).values
    e = torch.exp(s)
    return e / e.sum(-1, keepdim=True)


def attention_fused(x, blk, heads):
    """x [T, L, w]: one [3w, w] matmul, then all heads batched."""
    T, L, w = x.shape
    hd = w // heads
    qkv = x @ blk["qkv_w"].t() + blk["qkv_b"]                      # [T, L, 3w]
    q, k, v = qkv.split(w, dim=-1)
    q, k, v = (t.reshape(T, L, heads, hd).transpose(1, 2) for t in (q, k, v))  # [T, H, L, hd]
    p = softmax((q @ k.transpose(-1, -2)) * hd ** -0.5)            # [T, H, L, L]
    o = (p @ v).transpose(1, 2).reshape(T, L, w)
    return o @ blk["out_w"].t() + blk["out_b"]


def attention_per_head(x, blk, heads):
    """Same math, head by head from the separate q/k/v matrices, summing each
    head's contribution through its slice of the output projection."""
    T, L, w = x.shape
    hd = w // heads
    out = torch.zeros_like(x) + blk["out_b"]
    for h in range(heads):
        r = slice(h * hd, (h + 1) * hd)
        q = x @ blk["q_w"][r].t() + blk["q_b"][r]                  # [T, L, hd]
        k = x @ blk["k_w"][r].t() + blk["k_b"][r]
        v = x @ blk["v_w"][r].t() + blk["v_b"][r]
        p = softmax(torch.einsum("tid,tjd->tij", q, k) / math.sqrt(hd))
        o = torch.einsum("tij,tjd->tid", p, v)
        out = out + o @ blk["out_w"][:, r].t()
    return out


def forward_reference(v, spec, pixels, per_head=False):
    """pixels [T, 3, H, W] float64. Returns an ordered dict of stages."""
    p, heads, act = spec["patch"], spec["heads"], spec["act"]
    attn = attention_per_head if per_head else attention_fused
    stages = {}
    x = F.conv2d(pixels, v["conv"], bias=None, stride=p)           # [T, w, g, g]
    x = x.flatten(2).transpose(1, 2)                                # [T, P, w], row-major patches
    stages["patch_embed"] = x
    T, _, w = x.shape
    x = torch.cat([v["cls"].expand(T, 1, w), x], dim=1) + v["pos"]
    x = layer_norm(x, v["ln_pre_w"], v["ln_pre_b"])
    stages["ln_pre"] = x
    for i, blk in enumerate(v["blocks"]):
        x = x + attn(layer_norm(x, blk["ln1_w"], blk["ln1_b"]), blk, heads)
        h = layer_norm(x, blk["ln2_w"], blk["ln2_b"])
        h = activation(h @ blk["fc1_w"].t() + blk["fc1_b"], act)
        x = x + (h @ blk["fc2_w"].t() + blk["fc2_b"])
        stages["block_%02d" % i] = x
    stages["tokens"] = x
    y = layer_norm(x[:, 0, :], v["ln_post_w"], v["ln_post_b"])
    if v["proj"] is not None:
        y = y @ v["proj"]
    stages["embed"] = y
    return stages


# ---------------------------------------------------------------------------
# Text tower: weights as stored, float64 reference, float32 nn-module check
# ---------------------------------------------------------------------------

def text_from_file(spec, model_dir):
    """Canonical text weights (fused qkv, projection [w, proj]), float64,
    plus the head count (OpenAI: width / 64; HF: text_config)."""
    sd = load_stored(model_dir)
    d = lambda x: x.to(torch.float64)  # noqa: E731
    t = {"blocks": []}
    if spec["layout"] == "openai":
        t["tok"], t["pos"] = d(sd["token_embedding.weight"]), d(sd["positional_embedding"])
        w = t["tok"].shape[1]
        t["heads"] = w // 64
        for i in range(spec["text"]["layers"]):
            p = "transformer.resblocks.%d." % i
            t["blocks"].append({
                "ln1_w": d(sd[p + "ln_1.weight"]), "ln1_b": d(sd[p + "ln_1.bias"]),
                "qkv_w": d(sd[p + "attn.in_proj_weight"]), "qkv_b": d(sd[p + "attn.in_proj_bias"]),
                "out_w": d(sd[p + "attn.out_proj.weight"]), "out_b": d(sd[p + "attn.out_proj.bias"]),
                "ln2_w": d(sd[p + "ln_2.weight"]), "ln2_b": d(sd[p + "ln_2.bias"]),
                "fc1_w": d(sd[p + "mlp.c_fc.weight"]), "fc1_b": d(sd[p + "mlp.c_fc.bias"]),
                "fc2_w": d(sd[p + "mlp.c_proj.weight"]), "fc2_b": d(sd[p + "mlp.c_proj.bias"]),
            })
        t["ln_w"], t["ln_b"] = d(sd["ln_final.weight"]), d(sd["ln_final.bias"])
        t["proj"] = d(sd["text_projection"])
    else:
        m = "text_model."
        t["tok"] = d(sd[m + "embeddings.token_embedding.weight"])
        t["pos"] = d(sd[m + "embeddings.position_embedding.weight"])
        t["heads"] = spec["text"]["heads"]
        for i in range(spec["text"]["layers"]):
            p = m + "encoder.layers.%d." % i
            g = lambda n: d(sd[p + n])  # noqa: E731
            t["blocks"].append({
                "ln1_w": g("layer_norm1.weight"), "ln1_b": g("layer_norm1.bias"),
                "qkv_w": torch.cat([g("self_attn.%s_proj.weight" % n) for n in "qkv"], 0),
                "qkv_b": torch.cat([g("self_attn.%s_proj.bias" % n) for n in "qkv"], 0),
                "out_w": g("self_attn.out_proj.weight"), "out_b": g("self_attn.out_proj.bias"),
                "ln2_w": g("layer_norm2.weight"), "ln2_b": g("layer_norm2.bias"),
                "fc1_w": g("mlp.fc1.weight"), "fc1_b": g("mlp.fc1.bias"),
                "fc2_w": g("mlp.fc2.weight"), "fc2_b": g("mlp.fc2.bias"),
            })
        t["ln_w"] = d(sd[m + "final_layer_norm.weight"])
        t["ln_b"] = d(sd[m + "final_layer_norm.bias"])
        t["proj"] = d(sd["text_projection.weight"]).t()  # [proj, w] -> [w, proj]
    return t


def text_tokens(spec, rng_seed):
    """Token rows as clip.tokenize makes them, with the tiny vocabulary:
    SOT = vocab - 2, EOT = vocab - 1 (the largest id), then zero padding.
    Rows: empty text, a short one, one that fills the context, one mid."""
    vocab, ctx = spec["text"]["vocab"], spec["text"]["context"]
    g = torch.Generator().manual_seed(rng_seed)
    rows = []
    for n_words in (0, 3, ctx - 2, ctx // 2):
        ids = torch.randint(1, vocab - 2, (n_words,), generator=g).tolist()
        row = [vocab - 2] + ids + [vocab - 1]
        rows.append(row + [0] * (ctx - len(row)))
    return torch.tensor(rows, dtype=torch.int64)


def text_reference(t, tokens, act="quick_gelu"):
    """float64 CLIP text transformer: causal mask, argmax pooling."""
    stages = {}
    N, L = tokens.shape
    x = t["tok"][tokens] + t["pos"][:L]
    stages["text_embed"] = x
    causal = torch.full((L, L), float("-inf"), dtype=torch.float64).triu(1)
    for i, blk in enumerate(t["blocks"]):
        h = layer_norm(x, blk["ln1_w"], blk["ln1_b"])
        w = h.shape[-1]
        hd = w // t["heads"]
        qkv = h @ blk["qkv_w"].t() + blk["qkv_b"]
        q, k, v = (z.reshape(N, L, t["heads"], hd).transpose(1, 2) for z in qkv.split(w, dim=-1))
        p = softmax((q @ k.transpose(-1, -2)) * hd ** -0.5 + causal)
        o = (p @ v).transpose(1, 2).reshape(N, L, w)
        x = x + o @ blk["out_w"].t() + blk["out_b"]
        h = activation(layer_norm(x, blk["ln2_w"], blk["ln2_b"]) @ blk["fc1_w"].t() + blk["fc1_b"], act)
        x = x + h @ blk["fc2_w"].t() + blk["fc2_b"]
        stages["text_block_%02d" % i] = x
    x = layer_norm(x, t["ln_w"], t["ln_b"])
    pooled = x[torch.arange(N), tokens.argmax(dim=-1)]
    stages["text_features"] = pooled @ t["proj"]
    return stages


def text_nn_check(t, tokens):
    """float32 pass with torch.nn.MultiheadAttention and a boolean causal
    attn_mask (OpenAI's build_attention_mask), vs the float64 reference."""
    f = lambda z: z.to(torch.float32)  # noqa: E731
    N, L = tokens.shape
    w = t["tok"].shape[1]
    x = f(t["tok"])[tokens] + f(t["pos"])[:L]
    mask = torch.ones(L, L, dtype=torch.bool).triu(1)  # True = not allowed
    for blk in t["blocks"]:
        m = NNBlock(w, t["heads"], blk["fc1_w"].shape[0], "quick_gelu")
        with torch.no_grad():
            m.ln_1.weight.copy_(f(blk["ln1_w"])); m.ln_1.bias.copy_(f(blk["ln1_b"]))
            m.attn.in_proj_weight.copy_(f(blk["qkv_w"])); m.attn.in_proj_bias.copy_(f(blk["qkv_b"]))
            m.attn.out_proj.weight.copy_(f(blk["out_w"])); m.attn.out_proj.bias.copy_(f(blk["out_b"]))
            m.ln_2.weight.copy_(f(blk["ln2_w"])); m.ln_2.bias.copy_(f(blk["ln2_b"]))
            m.fc1.weight.copy_(f(blk["fc1_w"])); m.fc1.bias.copy_(f(blk["fc1_b"]))
            m.fc2.weight.copy_(f(blk["fc2_w"])); m.fc2.bias.copy_(f(blk["fc2_b"]))
            y = m.ln_1(x)
            x = x + m.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
            h = m.fc1(m.ln_2(x))
            x = x + m.fc2(h * torch.sigmoid(1.702 * h))
    x = F.layer_norm(x, (w,), f(t["ln_w"]), f(t["ln_b"]), eps=LN_EPS)
    return x[torch.arange(N), tokens.argmax(dim=-1)] @ f(t["proj"])


def build_text(name, spec, model_dir, gdir):
    t = text_from_file(spec, model_dir)
    tokens = text_tokens(spec, spec["seed"] + 2)
    ref = text_reference(t, tokens)
    err, rel = compare(text_nn_check(t, tokens), ref["text_features"])
    print("   text tower: float32 nn.MultiheadAttention path vs float64: max abs err %.3e rel %.3e" % (err, rel))
    if not rel <= F32_REL_TOL:
        raise SystemExit("FAIL: %s text features rel err %.3e" % (name, rel))
    # The causal mask at work: changing what follows a text's EOT must not
    # change its features, while changing an earlier token must.
    alt = tokens.clone()
    alt[1, 5:] = 7
    alt[1, 5 + 1:] = 0
    moved = text_reference(t, alt)["text_features"]
    if (moved[1] - ref["text_features"][1]).abs().max().item() != 0.0:
        raise SystemExit("FAIL: %s: tokens after EOT changed the features" % name)
    save_npy(os.path.join(gdir, "text_tokens.npy"), tokens.to(torch.float32))
    for k, v in ref.items():
        save_npy(os.path.join(gdir, k + ".npy"), v)


# ---------------------------------------------------------------------------
# Second, differently written path: torch.nn modules in float32
# ---------------------------------------------------------------------------

class NNBlock(nn.Module):
    def __init__(self, w, heads, mlp, act):
        super().__init__()
        self.ln_1 = nn.LayerNorm(w, eps=LN_EPS)
        self.attn = nn.MultiheadAttention(w, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(w, eps=LN_EPS)
        self.fc1 = nn.Linear(w, mlp)
        self.fc2 = nn.Linear(mlp, w)
        self.act = act

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        h = self.fc1(self.ln_2(x))
        h = h * torch.sigmoid(1.702 * h) if self.act == "quick_gelu" else F.gelu(h)
        return x + self.fc2(h)


class NNVision(nn.Module):
    def __init__(self, spec):
        super().__init__()
        w, p = spec["width"], spec["patch"]
        ntok = (spec["image"] // p) ** 2 + 1
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(ntok, w))
        self.ln_pre = nn.LayerNorm(w, eps=LN_EPS)
        self.blocks = nn.ModuleList(NNBlock(w, spec["heads"], spec["mlp"], spec["act"])
                                    for _ in range(spec["layers"]))
        self.ln_post = nn.LayerNorm(w, eps=LN_EPS)
        self.proj = nn.Linear(w, spec["proj"], bias=False) if spec["proj"] else None

    def load_canonical(self, v):
        f = lambda t: t.to(torch.float32)  # noqa: E731
        with torch.no_grad():
            self.conv1.weight.copy_(f(v["conv"]))
            self.class_embedding.copy_(f(v["cls"]))
            self.positional_embedding.copy_(f(v["pos"]))
            self.ln_pre.weight.copy_(f(v["ln_pre_w"]))
            self.ln_pre.bias.copy_(f(v["ln_pre_b"]))
            for m, b in zip(self.blocks, v["blocks"]):
                m.ln_1.weight.copy_(f(b["ln1_w"]))
                m.ln_1.bias.copy_(f(b["ln1_b"]))
                m.attn.in_proj_weight.copy_(f(b["qkv_w"]))
                m.attn.in_proj_bias.copy_(f(b["qkv_b"]))
                m.attn.out_proj.weight.copy_(f(b["out_w"]))
                m.attn.out_proj.bias.copy_(f(b["out_b"]))
                m.ln_2.weight.copy_(f(b["ln2_w"]))
                m.ln_2.bias.copy_(f(b["ln2_b"]))
                m.fc1.weight.copy_(f(b["fc1_w"]))
                m.fc1.bias.copy_(f(b["fc1_b"]))
                m.fc2.weight.copy_(f(b["fc2_w"]))
                m.fc2.bias.copy_(f(b["fc2_b"]))
            self.ln_post.weight.copy_(f(v["ln_post_w"]))
            self.ln_post.bias.copy_(f(v["ln_post_b"]))
            if self.proj is not None:
                self.proj.weight.copy_(f(v["proj"]).t())

    def forward(self, pixels):
        stages = {}
        x = self.conv1(pixels)
        T, w = x.shape[0], x.shape[1]
        x = x.reshape(T, w, -1).permute(0, 2, 1)
        stages["patch_embed"] = x
        cls = self.class_embedding.reshape(1, 1, w).repeat(T, 1, 1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        stages["ln_pre"] = x
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            stages["block_%02d" % i] = x
        stages["tokens"] = x
        y = self.ln_post(x[:, 0])
        stages["embed"] = self.proj(y) if self.proj is not None else y
        return stages


# ---------------------------------------------------------------------------

def compare(a, b):
    """(max abs error, max abs error / max |b|)."""
    err = (a.to(torch.float64) - b.to(torch.float64)).abs().max().item()
    scale = b.abs().max().item()
    return err, err / scale if scale > 0 else err


def save_npy(path, t):
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
    np.save(path, arr, allow_pickle=False)


def build(name, spec, data_dir):
    print("== %s (%s layout, %s)" % (name, spec["layout"], "F16" if spec["f16"] else "F32"))
    rng = Rng(spec["seed"])
    v32 = random_vision(spec, rng)
    model_dir = os.path.join(data_dir, "models", name)
    write_model(name, spec, v32, rng, model_dir)
    path = os.path.join(model_dir, "model.safetensors")
    hdr, _, _ = st.load_header(path)
    print("   %s: %d tensors, %d bytes" % (os.path.relpath(path, data_dir), len(hdr),
                                           os.path.getsize(path)))

    # Inputs: a separate stream, so the weights above never depend on T.
    irng = Rng(spec["seed"] + 1)
    T, H = spec["frames"], spec["image"]
    pixels = irng.randn(T, 3, H, H)
    batch = None
    if name == "hf":
        # input_batch[0] is input.npy, so embed_batch[0] == embed.
        batch = torch.stack([pixels, irng.randn(T, 3, H, H)])

    v = canonical_from_file(spec, model_dir)      # weights as stored, float64
    ref = forward_reference(v, spec, pixels.to(torch.float64))

    # Check 1: per-head separate q/k/v == fused qkv.
    split = forward_reference(v, spec, pixels.to(torch.float64), per_head=True)
    worst = 0.0
    for k in ref:
        err, rel = compare(split[k], ref[k])
        worst = max(worst, rel)
    print("   per-head q/k/v vs fused qkv (float64): max rel err %.3e over all stages" % worst)
    if worst > SPLIT_REL_TOL:
        raise SystemExit("FAIL: %s per-head attention disagrees with fused (%.3e)" % (name, worst))

    # Check 2: float32 torch.nn modules vs float64 reference.
    torch.manual_seed(0)  # module init is overwritten, but keep it deterministic
    mod = NNVision(spec).eval()
    mod.load_canonical(v)
    with torch.no_grad():
        nn_out = mod(pixels)
    print("   float32 nn-module path vs float64 reference:")
    for k in ref:
        err, rel = compare(nn_out[k], ref[k])
        print("     %-12s max abs err %.3e   rel %.3e" % (k, err, rel))
        if not rel <= F32_REL_TOL:
            raise SystemExit("FAIL: %s stage %s: rel err %.3e > %.0e" % (name, k, rel, F32_REL_TOL))

    gdir = os.path.join(data_dir, "golden", name)
    os.makedirs(gdir, exist_ok=True)
    save_npy(os.path.join(gdir, "input.npy"), pixels)
    for k, t in ref.items():
        save_npy(os.path.join(gdir, k + ".npy"), t)
    if batch is not None:
        flat = batch.reshape(-1, 3, H, H).to(torch.float64)
        eb = forward_reference(v, spec, flat)["embed"].reshape(2, T, -1)
        save_npy(os.path.join(gdir, "input_batch.npy"), batch)
        save_npy(os.path.join(gdir, "embed_batch.npy"), eb)
        err, _ = compare(eb[0], ref["embed"])
        print("   embed_batch[0] vs embed: max abs diff %.3e" % err)

    if spec["text"] is not None:
        build_text(name, spec, model_dir, gdir)

    print("   goldens in %s:" % os.path.relpath(gdir, data_dir))
    for fn in sorted(os.listdir(gdir)):
        a = np.load(os.path.join(gdir, fn))
        print("     %-16s %-18s std %.4f  max|x| %.4f" % (fn, list(a.shape), a.std(),
                                                       np.abs(a).max()))
    # Each block must change the residual stream noticeably.
    prev = ref["ln_pre"]
    for i in range(spec["layers"]):
        cur = ref["block_%02d" % i]
        ratio = ((cur - prev).norm() / prev.norm()).item()
        print("     block_%02d changes the stream by %.3f (relative norm)" % (i, ratio))
        prev = cur


def write_readme(data_dir):
    text = """# Golden outputs for the stacl C tests

Generated by

    /usr/bin/python3 tests/reference/make_golden.py

(Debian's python3 with torch 1.13 and numpy; verify the committed files with
`--check`, which regenerates into a temporary directory and compares bytes).
The script is deterministic: fixed seeds, one torch thread, fixed file order.

Models (`tests/data/models/`), random weights with CLIP-like scales
(attention std width^-0.5, MLP fc (2 width)^-0.5, output projections
width^-0.5 (2 layers)^-0.5, LayerNorm weight 1 + 0.1 randn, bias 0.1 randn,
other biases 0.02 randn):

| model            | layout                              | dtype | width | layers | heads | mlp | patch | image | tokens | out     | act        | frames |
|------------------|-------------------------------------|-------|-------|--------|-------|-----|-------|-------|--------|---------|------------|--------|
| `openai_f16`     | OpenAI (`visual.*` + text tower)    | F16   | 128   | 2      | 2     | 512 | 8     | 48    | 37     | proj 32 | QuickGELU  | 2      |
| `hf`             | HF `CLIPModel` + config.json        | F32   | 64    | 3      | 2     | 256 | 4     | 28    | 50     | proj 24 | QuickGELU  | 3      |
| `hf_vision_gelu` | HF `CLIPVisionModel` + config.json  | F32   | 48    | 1      | 3     | 96  | 7     | 21    | 10     | width 48 (no proj) | exact GELU | 1 |

Text towers (`openai_f16`, `hf`): vocab 64, context 8; `openai_f16` width 64,
2 layers, 1 head (width / 64), MLP 256, projection [64, 32]; `hf` width 32, 1
layer, 2 heads (text_config), MLP 128, `text_projection.weight` [24, 32].

Layout details that a loader must cope with:
- `openai_f16` stores every float tensor as F16 (as OpenAI's checkpoints do),
  plus 0-d I64 `input_resolution`, `context_length`, `vocab_size` (present in
  OpenAI's TorchScript archives) and a 0-d `logit_scale`; heads = width / 64.
- `hf` has `vision_model.embeddings.position_ids` (I64 [1, 50]), the text
  tower, a 0-d `logit_scale`, and `visual_projection.weight` [24, 64]
  ([proj, width], the transpose of OpenAI's `visual.proj`).
- `hf_vision_gelu/config.json` is a flat CLIPVisionConfig; like the files
  transformers writes, it carries `projection_dim` (512) although a
  `CLIPVisionModel` has no projection: the output is post_layernorm of the
  class token, [T, 48].
- Tensors are stored in the order of the reference safetensors library
  (wider dtypes first, then by name), so each is aligned to its element size.

Golden files (`tests/data/golden/<model>/`), all float32 little-endian `.npy`:

| file              | shape            | content |
|-------------------|------------------|---------|
| `input.npy`       | [T, 3, H, W]     | normalized frames (randn) |
| `patch_embed.npy` | [T, P, width]    | conv patch embedding (no bias), patches row-major (conv output `flatten(2).transpose(1, 2)`) |
| `ln_pre.npy`      | [T, L, width]    | after prepending the class token, adding positions, ln_pre |
| `block_NN.npy`    | [T, L, width]    | residual stream after block NN: `x += attn(ln_1(x)); x += mlp(ln_2(x))` |
| `tokens.npy`      | [T, L, width]    | last block output (= last `block_NN.npy`) |
| `embed.npy`       | [T, proj] or [T, width] | `ln_post(tokens[:, 0]) @ proj` |
| `input_batch.npy` | [2, T, 3, H, W]  | `hf` only; `input_batch[0]` is `input.npy` |
| `embed_batch.npy` | [2, T, proj]     | `hf` only; embeddings of `input_batch` |
| `text_tokens.npy` | [4, 8]           | token rows as float32 (exact integers): SOT = vocab-2 = 62, ids, EOT = 63, zero padding; 0, 3, 6 and 4 words |
| `text_embed.npy`  | [4, 8, text width] | token + positional embeddings |
| `text_block_NN.npy` | [4, 8, text width] | text residual stream after block NN (causal mask) |
| `text_features.npy` | [4, proj]      | `ln_final(x)[n, argmax(tokens[n])] @ text_projection` |

The values are computed in float64 from the weights exactly as stored (F16
rounding included), with attention scale 1/sqrt(head_dim), LayerNorm eps 1e-5,
QuickGELU `x * sigmoid(1.702 x)` or exact erf GELU, then rounded to float32.
The script cross-checks (and fails otherwise) that per-head attention from
separate q/k/v equals the fused-qkv computation, and that a float32 pass built
from torch.nn modules (Conv2d, LayerNorm, MultiheadAttention, Linear) agrees
with the float64 values to 1e-4 relative (max abs error / max |value|) at every
stage. The float32 path typically agrees to ~1e-6 relative, a sensible bound
for float32 OpenCL results is a few 1e-5 relative to each tensor's scale.
The text goldens are cross-checked the same way against a float32 pass with
nn.MultiheadAttention and OpenAI's boolean causal mask, and the script checks
that changing tokens after a text's EOT leaves its features bit-identical.
"""
    with open(os.path.join(data_dir, "golden", "README.md"), "w") as f:
        f.write(text)


def generate(data_dir):
    for name, spec in SPECS.items():
        build(name, spec, data_dir)
    write_readme(data_dir)


def check(data_dir):
    tmp = tempfile.mkdtemp(prefix="stacl_golden_")
    try:
        generate(tmp)
        bad = []
        for root, _, files in os.walk(tmp):
            for fn in files:
                new = os.path.join(root, fn)
                rel = os.path.relpath(new, tmp)
                old = os.path.join(data_dir, rel)
                if not os.path.exists(old) or not filecmp.cmp(new, old, shallow=False):
                    bad.append(rel)
        if bad:
            print("MISMATCH with committed files: %s" % ", ".join(sorted(bad)))
            return 1
        print("all regenerated files are byte-identical to %s" % data_dir)
        return 0
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with tests/data")
    ap.add_argument("--data-dir", default=os.path.join(REPO, "tests", "data"),
                    help="output root (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.check:
        return check(args.data_dir)
    generate(args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
