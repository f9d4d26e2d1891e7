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

import collections
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyflclient.wire.protocol import (
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


def seed_bodies(model: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
    """Valid bodies of every round (by round), from a device that is not admitted."""
    _, up = upload_of(model, 4, seed=99)
    other = {"conv.weight": up["conv.weight"], "fc.weight": up["fc.weight"][:5], "fc.bias": up["fc.bias"]}
    return {
        "startFLJob": [StartFLJobRequest("Lenet", "zzzz-fuzz-zzzz", 1, 4, "1700000000000").to_bytes()],
        "updateModel": [UpdateModelRequest("Lenet", "zzzz-fuzz-zzzz", 1, up, "1700000000000").to_bytes(),
                        UpdateModelRequest("Lenet", "zzzz-fuzz-zzzz", 1, other).to_bytes()],
        "getModel": [GetModelRequest("Lenet", 1, "1700000000000").to_bytes()],
    }


@st.composite
def mutated(draw: st.DrawFn, own: list[bytes], everything: list[bytes]) -> bytes:
    """Mostly a mutant of a body of the same round; sometimes another round's body or pure noise."""
    source = draw(st.integers(0, 9))
    if source == 0:
        return draw(st.binary(max_size=256))
    body = bytearray(draw(st.sampled_from(everything if source == 1 else own)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["flip", "set", "float", "float", "truncate", "insert", "splice"]))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if kind == "float" and len(body) >= 100:
            # the builder writes weight data first, i.e. at the end: a valid buffer with odd values
            at = len(body) - 4 * draw(st.integers(2, 24))
            body[at:at + 4] = struct.pack("<f", draw(st.floats(width=32, allow_nan=True, allow_infinity=True)))
        elif kind == "flip" and body:
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and body:
            body[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del body[at:]
        elif kind == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "splice":
            other = draw(st.sampled_from(everything))
            body = body[:at] + bytearray(other[draw(st.integers(0, len(other))):])
    return bytes(body)


def fuzz(fuzzer, seeds: dict[str, list[bytes]], examples: int, check, sent, reached) -> None:  # type: ignore[no-untyped-def]
    """Post ``examples`` mutated bodies of the rounds of ``seeds``; each reply must be HTTP 200 (or 413) and pass
    ``check(round, body)``, which returns the reply's reason; counts what the verifier and the rules refused."""
    everything = [b for bodies in seeds.values() for b in bodies]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data(), round_name=st.sampled_from(sorted(seeds)))
    def body_changes_nothing(data: st.DataObject, round_name: str) -> None:
        body = data.draw(mutated(seeds[round_name], everything))
        status, reply = fuzzer.post(round_name, body)
        sent["n"] += 1
        if status == 413:
            fuzzer.close()
            return
        assert status == 200
        reason = check(round_name, reply)
        reached["verifier" if reason.startswith("not a valid") else "round rules"] += 1

    body_changes_nothing()


def test_mutated_bodies_change_nothing_and_a_clean_iteration_follows(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=2, max_body_bytes=64 * 1024,
                       get_model_hold_ms=0,  # a getModel of the running iteration answers at once
                       start_fl_job_time_window=600_000, update_model_time_window=600_000)
    flat = {n: a.reshape(-1) for n, a in small_model.items()}
    devices = [device(srv.url, fl_id=f"device-{c}", data_size=s) for c, s in zip("ABC", (3, 5, 8))]
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    before = srv.state()
    fuzzer = device(srv.url)
    seeds = seed_bodies(flat)
    sent = {"n": 0}
    reached: collections.Counter[str] = collections.Counter()


    def check(round_name: str, reply: bytes) -> str:
        parsed = REPLY_OF[round_name].from_bytes(reply)
        assert parsed.retcode in ALLOWED[round_name], (parsed.retcode, parsed.reason)
        return parsed.reason

    fuzz(fuzzer, seeds, 2500, check, sent, reached)
    assert sent["n"] >= 2000
    # the fuzz is worth something only if many bodies get past the verifier into the rules
    assert reached["round rules"] >= 400, reached
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


def cipher_seed_bodies(iteration: int) -> dict[str, list[bytes]]:
    """Valid bodies of the six PW_ENCRYPT rounds from a device that is not admitted (fresh timestamps)."""
    from pyflclient.wire import secagg
    from pyflclient.wire.protocol import cipher_message, now_ms

    fl_id, ts, key = "zzzz-fuzz-zzzz", str(now_ms()), secagg.new_key_pair().public
    share = {"fl_id": "device-A", "share": bytes(250), "index": 1}
    return {
        "exchangeKeys": [cipher_message("RequestExchangeKeys", fl_id=fl_id, c_pk=key, s_pk=key, iteration=iteration,
                                        timestamp=ts)],
        "getKeys": [cipher_message("GetExchangeKeys", fl_id=fl_id, iteration=iteration, timestamp=ts)],
        "shareSecrets": [cipher_message("RequestShareSecrets", fl_id=fl_id, encrypted_shares=[share] * 3,
                                        iteration=iteration, timestamp=ts)],
        "getSecrets": [cipher_message("GetShareSecrets", fl_id=fl_id, iteration=iteration, timestamp=ts)],
        "getClientList": [cipher_message("GetClientList", fl_id=fl_id, iteration=iteration, timestamp=ts)],
        "reconstructSecrets": [cipher_message("SendReconstructSecret", fl_id=fl_id, iteration=iteration,
                                              reconstruct_secret_shares=[dict(share, share=bytes(66))] * 3,
                                              timestamp=ts)],
    }


def test_mutated_cipher_bodies_change_nothing_and_a_masked_iteration_follows(start_server, small_model):
    """The same fuzz against the six PW_ENCRYPT rounds of a server whose three devices are admitted."""
    from pyflclient.server.device import MaskingDevice
    from pyflclient.wire.protocol import SECURE_AGGREGATION_ROUNDS, read_cipher

    from test_server_secure_aggregation import assert_close, pw_iteration

    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       reconstruct_secrets_threshold=2, start_fl_job_time_window=600_000, cipher_time_window=600_000)
    devices = [MaskingDevice(srv.url, fl_id=f"device-{c}", data_size=s) for c, s in zip("ABC", (3, 5, 8))]
    before = srv.state()
    fuzzer = MaskingDevice(srv.url)
    seeds = cipher_seed_bodies(1)
    sent, reached = {"n": 0}, collections.Counter()

    def check(round_name: str, reply: bytes) -> str:
        parsed = read_cipher(reply, SECURE_AGGREGATION_ROUNDS[round_name][1])
        assert parsed["retcode"] in (ResponseCode.RequestError, ResponseCode.OutOfTime), parsed
        return parsed.get("reason", "")

    try:
        fuzz(fuzzer, seeds, 1500, check, sent, reached)
        assert sent["n"] >= 1200
        assert reached["round rules"] >= 300, reached
        assert srv.state() == before
        k, plain = pw_iteration(srv, devices)
        assert srv.wait_iteration(k, timeout=30)
        assert_close(srv.global_model(k), fedavg_of(list(plain.values()), [d.data_size for d in devices]))
    finally:
        for d in (*devices, fuzzer):
            d.close()
