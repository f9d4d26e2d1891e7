"""Deterministic replay: the same uploads give the bit-identical global model, whatever order they arrive in.

The uploads here cancel each other, where float64 addition is visibly not associative
(uploads of similar magnitudes sum exactly in float64 and hide the order): the last test shows that summing them in arrival order (what the server did before)
gives different models for the two orders used, so the first test can fail.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pyflclient.wire.protocol import ResponseCode

from conftest import fedavg_of

DEVICES = 30


def cancelling_uploads(model: dict[str, np.ndarray], seed: int) -> dict[str, tuple[int, dict[str, np.ndarray]]]:
    """fl_id → (data_size, upload) of DEVICES devices: ten upload values near ±2^40, ten the exact opposites,
    ten values near 1. The large ones cancel, so the result is the small ones' sum, which float64
    keeps only if no large value is pending when they are added: the order of additions shows."""
    rng = np.random.default_rng(seed)
    third = DEVICES // 3
    large = [{n: (rng.normal(size=a.shape) * 2.0 ** 40).astype(np.float32) for n, a in model.items()}
             for _ in range(third)]
    small = [{n: rng.normal(size=a.shape).astype(np.float32) for n, a in model.items()}
             for _ in range(DEVICES - 2 * third)]
    weights = large + [{n: -a for n, a in w.items()} for w in large] + small
    return {f"device-{i:02d}": (int(rng.integers(1, 500)), w) for i, w in enumerate(weights)}


def bits(model: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {n: np.ascontiguousarray(a, dtype=np.float32).tobytes() for n, a in model.items()}


def global_model_of(start_server, device, model, uploads, order, concurrently=False):  # type: ignore[no-untyped-def]
    """Run one iteration in which the devices upload in ``order`` (or all at once from threads)."""
    # uploads near 2^40 on purpose: the default update bound (update_norm_factor) would refuse them
    srv = start_server(model, start_fl_job_threshold=DEVICES, fl_iteration_num=1, update_norm_factor=0)
    devices = {fl_id: device(srv.url, fl_id=fl_id, data_size=size) for fl_id, (size, _) in uploads.items()}
    for fl_id in order:
        assert devices[fl_id].start_fl_job().retcode == ResponseCode.SUCCEED

    def upload(fl_id: str) -> None:
        reply = devices[fl_id].update_model(1, uploads[fl_id][1])
        assert reply.retcode == ResponseCode.SUCCEED, reply.reason

    if concurrently:
        with ThreadPoolExecutor(DEVICES) as pool:
            list(pool.map(upload, order))
    else:
        for fl_id in order:
            upload(fl_id)
    assert srv.wait_iteration(1, timeout=30)
    return srv.global_model(1)


def test_the_global_model_is_bit_identical_whatever_the_order_uploads_arrive_in(start_server, device, small_model):
    uploads = cancelling_uploads(small_model, seed=7)
    order = list(uploads)
    shuffled = [order[i] for i in np.random.default_rng(1).permutation(DEVICES)]
    one = global_model_of(start_server, device, small_model, uploads, order)
    other = global_model_of(start_server, device, small_model, uploads, shuffled)
    threads = global_model_of(start_server, device, small_model, uploads, shuffled[::-1], concurrently=True)
    in_fl_id_order = fedavg_of([uploads[f][1] for f in sorted(uploads)], [uploads[f][0] for f in sorted(uploads)])
    assert bits(one) == bits(other) == bits(threads) == bits(in_fl_id_order)


def test_summing_these_uploads_in_arrival_order_would_give_different_models(small_model):
    uploads = cancelling_uploads(small_model, seed=7)
    order = list(uploads)
    shuffled = [order[i] for i in np.random.default_rng(1).permutation(DEVICES)]
    one, other = (fedavg_of([uploads[f][1] for f in o], [uploads[f][0] for f in o]) for o in (order, shuffled))
    assert bits(one) != bits(other)
