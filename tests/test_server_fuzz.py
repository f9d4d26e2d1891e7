"""Property test: thousands of mutated bodies change nothing, and the next clean iteration is exact.

Hypothesis mutates valid bodies of every round (bit flips, byte overwrites,
truncations, insertions, splices of two bodies) and sends pure random bytes, all to
one live server whose iteration 1 has its three seats taken. Whatever arrives, the
server must answer with HTTP 200 and a well-formed reply of the round's table (or
HTTP 413), must not admit or record anything, and then B, A and C must complete the
iteration with a FedAvg equal to numpy's. The fuzzed bodies carry fl_ids far (in
Hamming distance) from the admitted ones, so that a mutation which happens to stay
valid is a legitimate request that is still refused (not admitted / threshold full)
rather than a real upload.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyflclient.protocol import (
    GetModelRequest, GetModelResponse, ResponseCode, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest,
    UpdateModelResponse,
)

from conftest import fedavg_of, upload_of

REPLY_OF = {"startFLJob": StartFLJobResponse, "updateModel": UpdateModelResponse, "getModel": GetModelResponse}
ALLOWED = {
    "startFLJob": {ResponseCode.RequestError, ResponseCode.OutOfTime},
    "updateModel": {ResponseCode.RequestError, ResponseCode.OutOfTime},
    # a mutated getModel may still ask a valid question
    "getModel": {ResponseCode.RequestError, ResponseCode.SucNotReady, ResponseCode.SUCCEED},
}


def seed_bodies(model: dict[str, np.ndarray]) -> list[bytes]:
    """Valid bodies of every round, from a device that is not admitted."""
    _, up = upload_of(model, 4, seed=99)
    other = {"conv.weight": up["conv.weight"], "fc.weight": up["fc.weight"][:5], "fc.bias": up["fc.bias"]}
    return [
        StartFLJobRequest("Lenet", "zzzz-fuzz-zzzz", 1, 4, "1700000000000").to_bytes(),
        UpdateModelRequest("Lenet", "zzzz-fuzz-zzzz", 1, up, "1700000000000").to_bytes(),
        UpdateModelRequest("Lenet", "zzzz-fuzz-zzzz", 1, other).to_bytes(),
        GetModelRequest("Lenet", 1, "1700000000000").to_bytes(),
    ]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    body = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "splice"]))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if kind == "flip" and body:
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and body:
            body[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del body[at:]
        elif kind == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            body = body[:at] + bytearray(other[draw(st.integers(0, len(other))):])
    return bytes(body)


def test_mutated_bodies_change_nothing_and_a_clean_iteration_follows(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=2, max_body_bytes=64 * 1024,
                       start_fl_job_time_window=600_000, update_model_time_window=600_000)
    flat = {n: a.reshape(-1) for n, a in small_model.items()}
    devices = [device(srv.url, fl_id=f"device-{c}", data_size=s) for c, s in zip("ABC", (3, 5, 8))]
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    before = srv.state()
    fuzzer = device(srv.url)
    seeds = seed_bodies(flat)
    sent = {"n": 0}

    @settings(max_examples=2500, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(round_name=st.sampled_from(sorted(REPLY_OF)),
           body=st.one_of(mutated(seeds), st.binary(max_size=256)))
    def body_changes_nothing(round_name: str, body: bytes) -> None:
        status, reply = fuzzer.post(round_name, body)
        sent["n"] += 1
        if status == 413:
            fuzzer.close()
            return
        assert status == 200
        parsed = REPLY_OF[round_name].from_bytes(reply)
        assert parsed.retcode in ALLOWED[round_name], (parsed.retcode, parsed.reason)

    body_changes_nothing()
    assert sent["n"] >= 2000
    assert srv.state() == before
    assert srv.uploads(1) == []

    uploads = [upload_of(flat, d.data_size, seed=i)[1] for i, d in enumerate(devices)]
    for i in (1, 0, 2):
        assert devices[i].update_model(1, uploads[i]).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=10)
    expected = fedavg_of(uploads, [3, 5, 8])
    got = srv.global_model()
    for name, want in expected.items():
        np.testing.assert_array_equal(got[name].reshape(-1), want, err_msg=name)
