"""pyflclient.wire.compression against a numpy transcription of MindSpore Federated's codec as
schema/compression.json and docs/compression.md state it: the seeded mask, the per-tensor 8-bit
quantisation, DIFF_SPARSE_QUANT's difference, QUANT's model, error feedback; and the refusals."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import LENET_SHAPES, random_model
from pyflclient.wire import compression as c

TABLE = json.loads((Path(__file__).resolve().parent.parent / "schema" / "compression.json").read_text())
K = TABLE["constants"]


# -- the transcription (written from the equations, element by element) ---------------------------------

def t_mask(seed: int, rate: float, n: int) -> np.ndarray:
    """k = max(1, floor(n r32)); x_t = a^t x_0 mod M (by modular powers, not the recurrence);
    Fisher-Yates over the positions of k ones."""
    a, m = K["mask_multiplier"], K["mask_modulus"]
    k = max(1, math.floor(n * float(np.float32(rate)))) if n else 0
    bits = np.zeros(n, dtype=bool)
    bits[:k] = True
    x0 = seed % (m - 1) + 1
    for i in range(n):
        u = (pow(a, i + 1, m) * x0 % m) / m
        j = i + math.floor(u * (n - i))
        bits[i], bits[j] = bits[j], bits[i]
    return bits


def t_quant(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.float32]:
    f32 = np.float32
    lo, hi = f32(min(x)), f32(max(x))
    sigma = f32(f32(hi - lo) / f32(K["quant_levels"])) + f32(K["quant_scale_epsilon"])
    q = []
    for v in x:
        r = math.floor(float(f32(f32(v - lo) / sigma)) + 0.5)
        q.append(min(max(r, 0), K["quant_levels"]) - K["quant_offset"])
    return np.array(q, dtype=np.int8), lo, hi


def t_dequant(q: np.ndarray, lo: np.float32, hi: np.float32) -> np.ndarray:
    f32 = np.float32
    sigma = f32(f32(hi - lo) / f32(K["quant_levels"])) + f32(K["quant_scale_epsilon"])
    return np.array([f32(f32(f32(int(v) + K["quant_offset"]) * sigma) + lo) for v in q], dtype=np.float32)


# -- mask and quantisation ------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**40), rate=st.floats(1e-3, 1.0), n=st.integers(0, 3000))
def test_the_mask_is_the_transcription(seed, rate, n):
    got = c.mask(seed, rate, n)
    assert got.tolist() == t_mask(seed, rate, n).tolist()
    assert int(got.sum()) == c.retained_count(n, rate)


def test_masks_differ_between_iterations_and_cover_the_model_evenly():
    n, rate = 66404, 0.4
    masks = np.stack([c.mask(it, rate, n) for it in range(1, 21)])
    assert all(not np.array_equal(masks[0], m) for m in masks[1:])
    share = masks.mean(axis=0)  # each entry is kept in about rate of the iterations
    assert abs(share.mean() - rate) < 1e-3 and share.std() < 0.15


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=300))
def test_quantisation_is_the_transcription_and_within_half_a_step(values):
    x = np.array(values, dtype=np.float32)
    q, lo, hi = c.quantise(x)
    tq, tlo, thi = t_quant(x)
    assert q.tobytes() == tq.tobytes() and (lo, hi) == (float(tlo), float(thi))
    back = c.dequantise(q, lo, hi)
    assert back.tobytes() == t_dequant(tq, tlo, thi).tobytes()
    sigma = (float(hi) - float(lo)) / 255 + 1e-10
    assert np.all(np.abs(back.astype(np.float64) - x) <= sigma / 2 + 4 * np.spacing(np.abs(x).max() + abs(sigma)))


def test_a_constant_tensor_comes_back_exactly():
    q, lo, hi = c.quantise(np.full(7, -0.25, dtype=np.float32))
    assert np.all(c.dequantise(q, lo, hi) == np.float32(-0.25))


# -- DIFF_SPARSE_QUANT, QUANT, error feedback -----------------------------------------------------------

def test_an_upload_round_trip_is_the_transcription_on_lenet():
    w0, w1 = random_model(LENET_SHAPES, 3), random_model(LENET_SHAPES, 4)
    names, D, seed, rate = sorted(LENET_SHAPES), 37, 12, 0.4
    diff = {n: w1[n] * np.float32(D) - w0[n] * np.float32(D) for n in names}
    tensors, sent = c.encode_upload(diff, names, seed, rate)
    # the transcription: one mask over the concatenation in names order, quantise each tensor's kept entries
    flat_mask = t_mask(seed, rate, sum(int(np.prod(LENET_SHAPES[n])) for n in names))
    at = 0
    for n, t in zip(names, tensors):
        size = int(np.prod(LENET_SHAPES[n]))
        keep = flat_mask[at:at + size]
        at += size
        tq, tlo, thi = t_quant(diff[n].ravel()[keep])
        assert t.name == n and t.data.tobytes() == tq.tobytes() and (t.min_val, t.max_val) == (tlo, thi)
    rebuilt = c.decode_upload(tensors, names, seed, rate, w0, D)
    at = 0
    for n in names:
        size = int(np.prod(LENET_SHAPES[n]))
        keep = flat_mask[at:at + size]
        at += size
        d = np.zeros(size, dtype=np.float32)  # the entries off the mask stay D * w0
        d[keep] = sent[n].ravel()[keep]
        assert rebuilt[n].tobytes() == (w0[n].ravel() * np.float32(D) + d).reshape(LENET_SHAPES[n]).tobytes()
        step = (float(diff[n].ravel()[keep].max()) - float(diff[n].ravel()[keep].min())) / 255
        assert np.abs(rebuilt[n].ravel()[keep] - (w1[n] * np.float32(D)).ravel()[keep]).max() <= step / 2 + 1e-3
    # bytes: 8 bits for 40 % of the entries against 32 bits for all: 10x smaller payload
    payload = sum(t.data.size for t in tensors)
    assert payload == c.retained_count(sum(int(np.prod(s)) for s in LENET_SHAPES.values()), rate)


def test_a_quantised_model_is_what_the_server_assumes_the_device_holds():
    model = random_model(LENET_SHAPES, 5)
    tensors = c.encode_model(model)
    got = c.decode_model(tensors, LENET_SHAPES)
    served = c.served_model(model)
    for n in model:
        assert got[n].tobytes() == served[n].tobytes()
        tq, tlo, thi = t_quant(model[n].ravel())
        assert got[n].ravel().tobytes() == t_dequant(tq, tlo, thi).tobytes()


def test_error_feedback_sends_over_two_iterations_what_one_dropped():
    """EF-SGD: p_t = d_t + e_t, send C(p_t), e_{t+1} = p_t - C(p_t); the sum of what was sent plus the
    residual equals the sum of the updates (the compression drops nothing for good)."""
    rng = np.random.default_rng(0)
    shapes = {"a": (50,), "b": (7, 3)}
    e = {n: np.zeros(s, dtype=np.float32) for n, s in shapes.items()}
    total_d = {n: np.zeros(s, dtype=np.float64) for n, s in shapes.items()}
    total_sent = {n: np.zeros(s, dtype=np.float64) for n, s in shapes.items()}
    for it in range(1, 6):
        d = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
        p = {n: d[n] + e[n] for n in shapes}
        _, sent = c.encode_upload(p, sorted(shapes), it, 0.3)
        for n in shapes:
            e[n] = p[n] - sent[n]
            total_d[n] += d[n]
            total_sent[n] += sent[n]
    for n in shapes:
        np.testing.assert_allclose(total_sent[n] + e[n], total_d[n], atol=1e-4)


# -- refusals -------------------------------------------------------------------------------------------

@pytest.fixture
def upload():
    w0 = random_model({"w": (10, 10), "b": (10,)}, 1)
    d = {n: np.ones_like(v) for n, v in w0.items()}
    tensors, _ = c.encode_upload(d, ["w", "b"], 4, 0.5)
    return w0, tensors


def test_a_wrong_size_is_refused(upload):
    w0, tensors = upload
    bad = [c.CompressedTensor(tensors[0].name, tensors[0].data[:-1], tensors[0].min_val, tensors[0].max_val),
           tensors[1]]
    with pytest.raises(c.CompressionError, match="'w' holds 49 values; the mask of iteration 4 .* keeps 50"):
        c.decode_upload(bad, ["w", "b"], 4, 0.5, w0, 3)


def test_another_sparse_rate_does_not_fit(upload):
    w0, tensors = upload
    with pytest.raises(c.CompressionError, match="upload_sparse_rate 0.4 keeps"):
        c.decode_upload(tensors, ["w", "b"], 4, 0.4, w0, 3)


@pytest.mark.parametrize("lo,hi", [(math.nan, 1.0), (0.0, math.inf), (2.0, 1.0)])
def test_a_bad_range_is_refused(upload, lo, hi):
    w0, tensors = upload
    bad = [c.CompressedTensor("w", tensors[0].data, lo, hi), tensors[1]]
    with pytest.raises(c.CompressionError, match="'w'"):
        c.decode_upload(bad, ["w", "b"], 4, 0.5, w0, 3)
    with pytest.raises(c.CompressionError, match="'w'"):
        c.decode_model([c.CompressedTensor("w", np.zeros(100, np.int8), lo, hi)], {"w": (10, 10)})


def test_names_that_are_not_the_models_are_refused(upload):
    w0, tensors = upload
    with pytest.raises(c.CompressionError, match="name_vec must name each weight"):
        c.decode_upload(tensors, ["w", "x"], 4, 0.5, w0, 3)
    with pytest.raises(c.CompressionError, match="in its order"):
        c.decode_upload(tensors[::-1], ["w", "b"], 4, 0.5, w0, 3)


def test_the_table_rows():
    assert c.TABLE.upload_by_wire(1).params == ("upload_sparse_rate",)
    assert [r.error_feedback for r in c.TABLE.upload.values()].count(True) == 1
    rate = c.TABLE.parameters["upload_sparse_rate"]
    assert rate.problem(0.0) and rate.problem(1.5) and rate.problem(math.nan) and rate.problem(1.0) is None
