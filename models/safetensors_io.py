"""safetensors_io.py: a small safetensors writer and reader (standard library only).

The format: an 8-byte little-endian u64 N, then N bytes of JSON header
(padded with spaces to a multiple of 8), then the raw little-endian tensor
data. The header maps each tensor name to
{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets are
relative to the start of the data section) and may hold "__metadata__", a
string -> string map.

Writing takes, per tensor name, one of
  * a torch.Tensor (any device/layout; it is made contiguous on the CPU),
  * a numpy-like array (anything with .dtype.str and .tobytes()),
  * a tuple (dtype, shape, data_bytes), dtype one of DTYPE_SIZES' keys.
Neither torch nor numpy is imported by this module: torch tensors are read
through ctypes from their data pointer.

Reading returns raw (dtype, shape, bytes) records; to_torch() turns one into a
torch tensor (importing torch only then).
"""

import ctypes
import json
import os
import struct
import sys

__all__ = [
    "DTYPE_SIZES", "SafetensorsError", "TensorRecord", "save", "load",
    "load_header", "to_torch", "torch_dtype_name", "state_dict_to_tensors",
    "reference_order",
]

# Every dtype name of the safetensors format we know, with its element size.
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}

# numpy's dtype.str for little-endian (or byte-order-free) types -> name.
_NUMPY_STR = {
    "<f8": "F64", "<f4": "F32", "<f2": "F16",
    "<i8": "I64", "<i4": "I32", "<i2": "I16", "|i1": "I8",
    "<u8": "U64", "<u4": "U32", "<u2": "U16", "|u1": "U8", "|b1": "BOOL",
}

# Upper bound of a header we accept when reading (the reference
# implementation uses 100 MB).
MAX_HEADER_BYTES = 100 * 1000 * 1000


class SafetensorsError(ValueError):
    """A malformed file or an unsupported/invalid tensor."""


class TensorRecord(object):
    """One tensor as stored: dtype name, shape tuple, raw little-endian bytes."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.data = data

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return "TensorRecord(%s, %s, %d bytes)" % (self.dtype, list(self.shape), len(self.data))


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# ---- torch helpers (torch is only imported if the caller passes tensors) ---

def torch_dtype_name(dtype):
    """safetensors dtype name of a torch.dtype."""
    import torch
    table = {
        torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
        torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
        torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
    }
    if dtype not in table:
        raise SafetensorsError("dtype %s has no safetensors equivalent" % (dtype,))
    return table[dtype]


def _is_torch_tensor(obj):
    mod = sys.modules.get("torch")
    return mod is not None and isinstance(obj, mod.Tensor)


def _torch_to_record(name, t):
    if t.is_sparse or getattr(t, "is_quantized", False):
        raise SafetensorsError("tensor %r: sparse/quantized tensors are not supported" % name)
    dtype = torch_dtype_name(t.dtype)
    t = t.detach().cpu().contiguous()
    nbytes = t.numel() * t.element_size()
    data = ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b""
    return TensorRecord(dtype, tuple(t.shape), data)


def _to_record(name, value):
    if isinstance(value, TensorRecord):
        rec = value
    elif _is_torch_tensor(value):
        rec = _torch_to_record(name, value)
    elif isinstance(value, tuple) and len(value) == 3:
        dtype, shape, data = value
        rec = TensorRecord(dtype, shape, bytes(data))
    elif hasattr(value, "dtype") and hasattr(value, "tobytes") and hasattr(value, "shape"):
        key = getattr(value.dtype, "str", None)
        if key not in _NUMPY_STR:
            raise SafetensorsError("tensor %r: array dtype %r not supported (need little-endian)"
                                   % (name, key))
        rec = TensorRecord(_NUMPY_STR[key], tuple(value.shape), value.tobytes(order="C"))
    else:
        raise SafetensorsError("tensor %r: expected a torch tensor, an array or "
                               "(dtype, shape, bytes), got %s" % (name, type(value).__name__))
    if rec.dtype not in DTYPE_SIZES:
        raise SafetensorsError("tensor %r: unknown dtype %r" % (name, rec.dtype))
    for d in rec.shape:
        if d < 0:
            raise SafetensorsError("tensor %r: negative dimension in %r" % (name, rec.shape))
    want = _numel(rec.shape) * DTYPE_SIZES[rec.dtype]
    if len(rec.data) != want:
        raise SafetensorsError("tensor %r: %d bytes of data, shape %s %s needs %d"
                               % (name, len(rec.data), list(rec.shape), rec.dtype, want))
    return rec


# ---- writing ---------------------------------------------------------------

def _dtype_name_of(value):
    if isinstance(value, TensorRecord):
        return value.dtype
    if _is_torch_tensor(value):
        return torch_dtype_name(value.dtype)
    if isinstance(value, tuple) and len(value) == 3:
        return value[0]
    return _NUMPY_STR.get(getattr(getattr(value, "dtype", None), "str", None), "U8")


def reference_order(items):
    """(name, value) pairs in the order the reference safetensors library
    writes them: wider dtypes first, then by name. Every tensor then starts
    at a multiple of its element size in the data section (which itself
    starts at a multiple of 8), so readers may use aligned loads."""
    items = list(items.items()) if isinstance(items, dict) else list(items)
    return sorted(items, key=lambda kv: (-DTYPE_SIZES.get(_dtype_name_of(kv[1]), 1), kv[0]))


def save(path, tensors, metadata=None):
    """Writes tensors (a dict, or a list of (name, value) pairs, in that order)
    to path. metadata: dict of str -> str, written as "__metadata__".
    The file is written to path + ".tmp" and renamed."""
    if sys.byteorder != "little":
        raise SafetensorsError("this writer assumes a little-endian host")
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("metadata must map str to str, got %r: %r" % (k, v))
        header["__metadata__"] = dict(metadata)
    records = []
    offset = 0
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise SafetensorsError("tensor names must be non-empty strings, got %r" % (name,))
        if name == "__metadata__" or name in header:
            raise SafetensorsError("duplicate or reserved tensor name %r" % name)
        rec = _to_record(name, value)
        header[name] = {"dtype": rec.dtype, "shape": list(rec.shape),
                        "data_offsets": [offset, offset + len(rec.data)]}
        offset += len(rec.data)
        records.append(rec)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for rec in records:
            f.write(rec.data)
    os.replace(tmp, path)


# ---- reading ---------------------------------------------------------------

def _parse_header(raw, data_len, path):
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError("%s: header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("%s: __metadata__ must map strings to strings" % path)
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError("%s: tensor %r: bad entry %r" % (path, name, info))
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_SIZES:
            raise SafetensorsError("%s: tensor %r: unknown dtype %r" % (path, name, dtype))
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise SafetensorsError("%s: tensor %r: bad shape %r" % (path, name, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) and not isinstance(o, bool) for o in offs) or
                not 0 <= offs[0] <= offs[1] <= data_len):
            raise SafetensorsError("%s: tensor %r: bad data_offsets %r (data section %d bytes)"
                                   % (path, name, offs, data_len))
        if offs[1] - offs[0] != _numel(shape) * DTYPE_SIZES[dtype]:
            raise SafetensorsError("%s: tensor %r: %d bytes for shape %r %s"
                                   % (path, name, offs[1] - offs[0], shape, dtype))
        entries.append((offs[0], offs[1], name, dtype, shape))
    # The data section must be covered exactly, without overlaps.
    pos = 0
    for begin, end, name, _, _ in sorted(entries):
        if begin != pos:
            raise SafetensorsError("%s: tensor %r starts at %d, expected %d (gap or overlap)"
                                   % (path, name, begin, pos))
        pos = end
    if pos != data_len:
        raise SafetensorsError("%s: tensors cover %d of %d data bytes" % (path, pos, data_len))
    return entries, metadata


def load_header(path):
    """Returns (header_dict_without_metadata, metadata, header_length)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SafetensorsError("%s: shorter than 8 bytes" % path)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise SafetensorsError("%s: header length %d too large" % (path, n))
        raw = f.read(n)
        if len(raw) != n:
            raise SafetensorsError("%s: truncated header" % path)
    data_len = os.path.getsize(path) - 8 - n
    entries, metadata = _parse_header(raw, data_len, path)
    header = {name: {"dtype": dt, "shape": shape, "data_offsets": [b, e]}
              for b, e, name, dt, shape in entries}
    return header, metadata, n


def load(path):
    """Reads a whole file. Returns (tensors, metadata): tensors is a dict
    name -> TensorRecord in the header's order, metadata a dict of str."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack_from("<Q", blob, 0)
    if n > MAX_HEADER_BYTES or 8 + n > len(blob):
        raise SafetensorsError("%s: header length %d does not fit the %d-byte file"
                               % (path, n, len(blob)))
    entries, metadata = _parse_header(blob[8:8 + n], len(blob) - 8 - n, path)
    base = 8 + n
    tensors = {}
    for begin, end, name, dtype, shape in entries:
        tensors[name] = TensorRecord(dtype, shape, blob[base + begin:base + end])
    return tensors, metadata


def to_torch(rec):
    """A TensorRecord as a (writable, CPU) torch tensor of its own dtype."""
    import torch
    table = {
        "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
        "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
        "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
    }
    if rec.dtype not in table:
        raise SafetensorsError("dtype %s has no torch equivalent here" % rec.dtype)
    if rec.numel == 0:
        return torch.empty(rec.shape, dtype=table[rec.dtype])
    buf = bytearray(rec.data)  # a writable copy: frombuffer shares memory
    return torch.frombuffer(buf, dtype=table[rec.dtype]).reshape(rec.shape).clone()


# ---- state-dict helpers for the converters --------------------------------

def state_dict_to_tensors(state, cast=None):
    """Checks that every value of a state dict is a tensor and returns a list
    of (name, tensor) in order, each made contiguous on the CPU (so shared or
    tied storages are written once per name, as separate copies).
    cast: None (keep dtypes), or a torch.dtype that every floating-point
    tensor is converted to (integer/bool tensors are kept).
    Raises SafetensorsError naming all non-tensor entries."""
    import torch
    bad = [(k, type(v).__name__) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        lines = ", ".join("%r (%s)" % kv for kv in bad[:20])
        more = "" if len(bad) <= 20 else " and %d more" % (len(bad) - 20)
        raise SafetensorsError("%d entr%s not a tensor: %s%s" % (
            len(bad), "y is" if len(bad) == 1 else "ies are", lines, more))
    out = []
    for k, v in state.items():
        if not isinstance(k, str):
            raise SafetensorsError("state-dict key %r is not a string" % (k,))
        v = v.detach().cpu()
        if cast is not None and v.is_floating_point():
            v = v.to(cast)
        out.append((k, v.contiguous().clone()))
    return out
