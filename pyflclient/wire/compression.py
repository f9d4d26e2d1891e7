"""Update compression on the wire: MindSpore Federated's DIFF_SPARSE_QUANT upload and QUANT download.

The codecs, their parameters and the constants both sides must share live in
``schema/compression.json`` (the Java device has the constants generated from the same file,
``com.mindspore.flclient.runtime.schema.CompressionParameters``, and its codec is
``com.mindspore.flclient.compress.Codec``). The maths, with ``M = mask_modulus`` (2^31 − 1),
``a = mask_multiplier`` (48271), ``L = quant_levels`` (255), ``o = quant_offset`` (128),
``ε = quant_scale_epsilon`` (1e-10):

**The mask** of ``n`` entries, rate ``r`` and seed ``s`` (the iteration): ``k = max(1, ⌊n · r⌋)``
entries (``r`` as the float32 the wire carries, the product in float64) are kept. A Lehmer
generator ``x_0 = (s mod (M − 1)) + 1``, ``x_{t+1} = a · x_t mod M`` (64-bit integers) gives
``u_t = x_{t+1} / M ∈ (0, 1)``; a Fisher–Yates pass over the permutation ``p = (0 … n−1)``
swaps ``p[i]`` and ``p[j]``, ``j = i + ⌊u_i · (n − i)⌋`` (float64), for ``i = 0 … n−1``;
entry ``t`` is kept iff ``p[t] < k``. Every device of an iteration has the same mask, so no
index travels. (MindSpore Federated uses the same generator and shuffle in 32-bit integers that
overflow; ours never overflows, so its masks differ from MindSpore's.)

**The quantisation** of a float32 tensor ``x`` (all arithmetic float32, rounded each step, as in
Java): ``lo = min x``, ``hi = max x``, ``σ = (hi − lo) / L + ε``, ``v = (x − lo) / σ``,
``q = clamp(⌊v + 0.5⌋, 0, L) − o`` (the floor in float64, exact) as int8;
dequantised ``x' = (q + o) · σ + lo``. ``|x' − x| ≤ σ / 2`` (plus float32 rounding).

**DIFF_SPARSE_QUANT upload** of a device with ``data_size`` ``D`` that received ``w⁰`` and
trained ``w¹``: the difference ``d = D · w¹ − D · w⁰`` (what r1.6 would upload minus what the
server can rebuild), flattened in the order of ``name_vec``; the kept entries of each tensor,
quantised per tensor, travel as ``CompressFeatureMap(weight_fullname, compress_data, min_val,
max_val)``. The server rebuilds ``D · w + d'`` (``d'`` = the dequantised entries, 0 elsewhere,
``w`` its model of the iteration), an ordinary r1.6 upload for every aggregation type. With
download QUANT the devices' ``w⁰`` is the dequantised model (:func:`served_model`, bit for bit
what they decode) while the server adds their change to its full-precision ``w``: the download's
quantisation error never accumulates in the global model.

**Error feedback** (DIFF_SPARSE_QUANT_EF; Seide et al. 2014, Karimireddy et al. 2019 "EF-SGD"):
the device adds its residual ``e`` to the update before compressing, ``p = d + D · e``, sends
``C(p)`` and keeps ``e ← (p − C(p)) / D`` beside its model for the next time; the server decodes
as for DIFF_SPARSE_QUANT.

**QUANT download**: every tensor of the model quantised as above in ``compress_feature_map``;
sent only to a device that listed QUANT in ``download_compress_types`` (an r1.6 device does not,
and gets the float32 model).
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pyflclient.wire.verify import schema_dir

__all__ = ["TABLE", "Codec", "CompressionError", "CompressedTensor", "table", "retained_count", "mask",
           "quantise", "dequantise", "encode_upload", "decode_upload", "encode_model", "decode_model",
           "served_model"]


class CompressionError(ValueError):
    """A compressed message that does not fit the plan or the model (the reason is one line)."""


@dataclass(frozen=True)
class Codec:
    """One row of schema/compression.json: a codec of one direction."""

    name: str
    wire: int
    params: tuple[str, ...]
    error_feedback: bool
    help: str

    @property
    def compresses(self) -> bool:
        return self.wire != 0


@dataclass(frozen=True)
class Parameter:
    name: str
    default: float
    min: float
    min_open: bool
    max: float
    max_open: bool
    rule: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not allowed (the row's rule), or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            return self.rule
        v = float(value)
        if v < self.min or (self.min_open and v == self.min) or v > self.max or (self.max_open and v == self.max):
            return self.rule
        return None


@dataclass(frozen=True)
class CompressionTable:
    upload: Mapping[str, Codec]
    download: Mapping[str, Codec]
    parameters: Mapping[str, Parameter]
    constants: Mapping[str, float]

    def upload_by_wire(self, wire: int) -> Codec | None:
        return next((c for c in self.upload.values() if c.wire == wire), None)

    def download_by_wire(self, wire: int) -> Codec | None:
        return next((c for c in self.download.values() if c.wire == wire), None)

    @property
    def no_compress(self) -> int:
        """The wire value that means "not compressed" (both directions)."""
        return next(c.wire for c in self.upload.values() if not c.compresses)


@functools.lru_cache(maxsize=1)
def table() -> CompressionTable:
    """The rows of schema/compression.json (read once)."""
    raw = json.loads((schema_dir() / "compression.json").read_text(encoding="utf-8"))

    def codecs(rows: list[dict]) -> dict[str, Codec]:
        return {r["name"]: Codec(r["name"], int(r["wire"]), tuple(r["params"]), bool(r.get("error_feedback")),
                                 r["help"]) for r in rows}

    params = {p["name"]: Parameter(p["name"], float(p["default"]), float(p["min"]), bool(p["min_open"]),
                                   float(p["max"]), bool(p["max_open"]), p["rule"], p["help"])
              for p in raw["parameters"]}
    return CompressionTable(codecs(raw["upload_compress_types"]), codecs(raw["download_compress_types"]), params,
                            dict(raw["constants"]))


TABLE = table()
_C = TABLE.constants
_LEVELS = np.float32(_C["quant_levels"])
_OFFSET = int(_C["quant_offset"])
_EPS = np.float32(_C["quant_scale_epsilon"])
_A = int(_C["mask_multiplier"])
_M = int(_C["mask_modulus"])
assert 2 ** int(_C["quant_bits"]) - 1 == _C["quant_levels"] and 2 ** (int(_C["quant_bits"]) - 1) == _OFFSET


# -- the mask ----------------------------------------------------------------------------------------

def retained_count(n: int, rate: float) -> int:
    """``k = max(1, ⌊n · r⌋)`` with ``r`` the float32 of the wire (0 for n = 0)."""
    if n <= 0:
        return 0
    return max(1, int(math.floor(n * float(np.float32(rate)))))


@functools.lru_cache(maxsize=8)
def _mask(seed: int, rate32: float, n: int) -> np.ndarray:
    k = retained_count(n, rate32)
    perm = list(range(n))
    x = (seed % (_M - 1)) + 1
    for i in range(n):
        x = (x * _A) % _M
        j = i + int((x / _M) * (n - i))
        perm[i], perm[j] = perm[j], perm[i]
    out = np.asarray(perm, dtype=np.int64) < k
    out.setflags(write=False)
    return out


def mask(seed: int, rate: float, n: int) -> np.ndarray:
    """The boolean mask of ``n`` entries (module docstring); the same for every device of an iteration."""
    if seed < 0:
        raise CompressionError(f"the mask's seed (the iteration) must be >= 0, got {seed}")
    return _mask(int(seed), float(np.float32(rate)), int(n))


# -- the quantisation --------------------------------------------------------------------------------

def quantise(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(q as int8, lo, hi)`` of a float32 tensor; an empty tensor gives ``(∅, 0, 0)``."""
    x = np.ascontiguousarray(x, dtype=np.float32).ravel()
    if x.size == 0:
        return np.zeros(0, dtype=np.int8), 0.0, 0.0
    lo, hi = np.float32(x.min()), np.float32(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CompressionError("cannot quantise a tensor with a non-finite value")
    scale = np.float32(np.float32(hi - lo) / _LEVELS) + _EPS
    v = (x - lo) / scale  # float32, each op rounded
    q = np.clip(np.floor(v.astype(np.float64) + 0.5), 0, float(_LEVELS)) - _OFFSET
    return q.astype(np.int8), float(lo), float(hi)


def dequantise(q: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(q + o) · σ + lo`` in float32."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    scale = np.float32(np.float32(hi32 - lo32) / _LEVELS) + _EPS
    return (np.asarray(q, dtype=np.int8).astype(np.float32) + np.float32(_OFFSET)) * scale + lo32


@dataclass(frozen=True)
class CompressedTensor:
    """One ``CompressFeatureMap`` of fl_job.fbs."""

    name: str
    data: np.ndarray  # int8
    min_val: float
    max_val: float


def _check_range(t: CompressedTensor, what: str) -> tuple[np.float32, np.float32]:
    lo, hi = np.float32(t.min_val), np.float32(t.max_val)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CompressionError(f"{what} {t.name!r}: min_val/max_val must be finite, got {t.min_val}/{t.max_val}")
    if lo > hi:
        raise CompressionError(f"{what} {t.name!r}: min_val {t.min_val} > max_val {t.max_val}")
    return lo, hi


# -- the upload --------------------------------------------------------------------------------------

def encode_upload(update: Mapping[str, np.ndarray], names: Sequence[str], seed: int, rate: float
                  ) -> tuple[list[CompressedTensor], dict[str, np.ndarray]]:
    """``(compressed tensors in names order, what the server will decode)`` of ``update`` (= ``d`` or
    ``p`` of the module docstring, float32); the second is what error feedback subtracts."""
    flat = [np.ascontiguousarray(update[n], dtype=np.float32).ravel() for n in names]
    m = mask(seed, rate, sum(f.size for f in flat))
    out, sent, at = [], {}, 0
    for name, f in zip(names, flat):
        keep = m[at:at + f.size]
        at += f.size
        q, lo, hi = quantise(f[keep])
        rebuilt = np.zeros(f.size, dtype=np.float32)
        rebuilt[keep] = dequantise(q, lo, hi)
        out.append(CompressedTensor(name, q, lo, hi))
        sent[name] = rebuilt.reshape(np.shape(update[name]))
    return out, sent


def decode_upload(tensors: Sequence[CompressedTensor], names: Sequence[str], seed: int, rate: float,
                  base: Mapping[str, np.ndarray], data_size: int) -> dict[str, np.ndarray]:
    """The r1.6 upload ``D · w⁰ + d'`` from a DIFF_SPARSE_QUANT upload; ``base`` = ``w⁰`` (the model the
    devices received). Refuses (:class:`CompressionError`) names that are not the model's, a tensor
    whose size is not its share of the mask, non-finite or inverted min/max."""
    names = list(names)
    if sorted(names) != sorted(base) or len(set(names)) != len(names):
        missing, extra = sorted(set(base) - set(names)), sorted(set(names) - set(base))
        raise CompressionError(f"name_vec must name each weight of the model once (missing {missing[:3]}, "
                               f"unknown {extra[:3]}, {len(names)} names for {len(base)} weights)")
    if [t.name for t in tensors] != names:
        raise CompressionError("compress_feature_map must hold one entry per name of name_vec, in its order")
    sizes = [int(np.size(base[n])) for n in names]
    m = mask(seed, rate, sum(sizes))
    out: dict[str, np.ndarray] = {}
    at = 0
    d32 = np.float32(data_size)
    for t, size in zip(tensors, sizes):
        keep = m[at:at + size]
        at += size
        expected = int(keep.sum())
        if t.data.size != expected:
            raise CompressionError(f"compress_feature_map {t.name!r} holds {t.data.size} values; the mask of "
                                   f"iteration {seed} at upload_sparse_rate {float(np.float32(rate)):g} keeps "
                                   f"{expected} of its {size}")
        lo, hi = _check_range(t, "compress_feature_map")
        diff = np.zeros(size, dtype=np.float32)
        diff[keep] = dequantise(t.data, lo, hi)
        w0 = np.ascontiguousarray(base[t.name], dtype=np.float32).ravel()
        out[t.name] = (w0 * d32 + diff).reshape(np.shape(base[t.name]))
    return out


# -- the download ------------------------------------------------------------------------------------

def encode_model(model: Mapping[str, np.ndarray]) -> list[CompressedTensor]:
    """QUANT: each tensor of ``model`` (in its order) quantised between its min and max."""
    out = []
    for name, w in model.items():
        q, lo, hi = quantise(np.asarray(w, dtype=np.float32))
        out.append(CompressedTensor(name, q, lo, hi))
    return out


def decode_model(tensors: Sequence[CompressedTensor], shapes: Mapping[str, tuple[int, ...]]
                 ) -> dict[str, np.ndarray]:
    """The float32 model of a QUANT download; refuses a tensor of the wrong size or range."""
    out = {}
    for t in tensors:
        if t.name not in shapes:
            raise CompressionError(f"compress_feature_map names {t.name!r}, which the model does not have")
        size = int(np.prod(shapes[t.name], dtype=np.int64))
        if t.data.size != size:
            raise CompressionError(f"compress_feature_map {t.name!r} holds {t.data.size} values for {size} weights")
        lo, hi = _check_range(t, "compress_feature_map")
        out[t.name] = dequantise(t.data, lo, hi).reshape(shapes[t.name])
    return out


def served_model(model: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a device that received ``model`` under QUANT holds: ``decode_model(encode_model(model))``."""
    return {t.name: dequantise(t.data, t.min_val, t.max_val).reshape(np.shape(model[t.name]))
            for t in encode_model(model)}
