"""Update sanity: one device cannot steer or block the job on its own (docs/server.md, "Update sanity")."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.server.rounds import Rounds
from pyflclient.server.store import MemoryStore
from pyflclient.wire.protocol import ResponseCode, StartFLJobRequest

from conftest import upload_of


def flat_norm(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((np.reshape(a[n], -1).astype(np.float64)
                                     - np.reshape(b[n], -1).astype(np.float64)) ** 2) for n in a)))


def huge_upload(model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a hostile data_size-1 device sends: 3.0e38 everywhere (finite in float32, so not refused as NaN/Inf)."""
    return {n: np.full(a.size, 3.0e38, np.float32) for n, a in model.items()}


# -- max_data_size --------------------------------------------------------------------------

def test_data_size_above_max_data_size_is_refused_with_the_reason(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, max_data_size=1000)
    refused = device(srv.url, data_size=1001).start_fl_job()
    assert refused.retcode == ResponseCode.RequestError and not refused.is_selected
    assert "max_data_size 1000" in refused.reason
    assert srv.state().admitted == 0  # a refusal changes nothing
    assert device(srv.url, data_size=1000).start_fl_job().retcode == ResponseCode.SUCCEED


def test_a_billion_samples_are_refused_by_default(start_server, device, small_model):
    srv = start_server(small_model)
    assert device(srv.url, data_size=10**9).start_fl_job().retcode == ResponseCode.RequestError
    assert device(srv.url, data_size=ServerConfig().max_data_size).start_fl_job().retcode == ResponseCode.SUCCEED


# -- max_update_norm ------------------------------------------------------------------------

def test_a_3e38_upload_is_refused_under_max_update_norm_and_the_honest_one_is_the_model(
        start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, update_model_ratio=0.5, max_update_norm=10.0)
    hostile, honest = device(srv.url, data_size=1), device(srv.url, data_size=40)
    assert hostile.start_fl_job().retcode == ResponseCode.SUCCEED
    assert honest.start_fl_job().retcode == ResponseCode.SUCCEED
    refused = hostile.update_model(1, huge_upload(small_model))
    assert refused.retcode == ResponseCode.RequestError
    assert "above max_update_norm 10" in refused.reason
    trained, up = upload_of(small_model, 40, seed=3)
    assert honest.update_model(1, up).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    assert [u.fl_id for u in srv.uploads(1)] == [honest.fl_id]
    for name, want in trained.items():
        np.testing.assert_allclose(srv.global_model()[name], want, rtol=1e-6)


def test_a_3e38_upload_is_clipped_to_max_update_norm_with_clip(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, max_update_norm=2.0, update_norm_action="clip")
    hostile = device(srv.url, data_size=1)
    assert hostile.start_fl_job().retcode == ResponseCode.SUCCEED
    assert hostile.update_model(1, huge_upload(small_model)).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    model = srv.global_model()
    assert flat_norm(model, small_model) == pytest.approx(2.0, rel=1e-5)
    assert max(float(np.abs(a).max()) for a in model.values()) < 3.0


def test_an_update_within_max_update_norm_is_aggregated_unchanged(start_server, device, run_round, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, max_update_norm=10.0)
    expected = run_round(srv, [device(srv.url, data_size=s) for s in (30, 70)], seed=5)
    for name, want in expected.items():
        np.testing.assert_array_equal(srv.global_model()[name].reshape(-1), want.reshape(-1))


def test_a_second_upload_of_a_refused_device_within_the_bound_is_accepted(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, max_update_norm=10.0)
    d = device(srv.url, data_size=8)
    assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    assert d.update_model(1, huge_upload(small_model)).retcode == ResponseCode.RequestError
    _, up = upload_of(small_model, 8, seed=1)
    assert d.update_model(1, up).retcode == ResponseCode.SUCCEED  # the refusal changed no state


@pytest.mark.parametrize("key, value", [("max_data_size", 0), ("max_update_norm", -1.0),
                                        ("max_update_norm", float("inf")), ("update_norm_action", "ignore"),
                                        ("max_admissions_per_address", -1)])
def test_a_bad_sanity_setting_fails_with_its_name(key, value):
    with pytest.raises(ConfigError, match=key):
        ServerConfig.from_mapping({key: value})


# -- max_admissions_per_address (Rounds directly: the remote address is the argument) --------

def join(rounds: Rounds, fl_id: str, remote: str | None):
    return rounds.start_fl_job(StartFLJobRequest("Lenet", fl_id, 0, 10), remote=remote)


def admissions(small_model, requests: list[tuple[str, str | None]], after_first_iteration: list[tuple[str, str]]
               = (), **settings) -> list[tuple[ResponseCode, str]]:
    """Run the startFLJob ``requests`` (fl_id, remote) against fresh Rounds; then, if given, finish
    iteration 1 and run ``after_first_iteration``. Returns (retcode, reason) of each reply in order."""

    async def go() -> list[tuple[ResponseCode, str]]:
        rounds = Rounds(ServerConfig.from_mapping(settings), MemoryStore(), small_model)
        await rounds.begin()
        replies = [await join(rounds, fl_id, remote) for fl_id, remote in requests]
        if after_first_iteration:
            await rounds.finish(1)
            replies += [await join(rounds, fl_id, remote) for fl_id, remote in after_first_iteration]
        rounds.close()
        return [(r.retcode, r.reason) for r in replies]

    return asyncio.run(go())


def test_one_address_takes_at_most_half_the_seats_by_default(small_model):
    replies = admissions(small_model, [("a", "203.0.113.7"), ("b", "203.0.113.7"), ("c", "203.0.113.7"),
                                       ("d", "198.51.100.2")], start_fl_job_threshold=4)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED, ResponseCode.SUCCEED, ResponseCode.OutOfTime,
                                             ResponseCode.SUCCEED]
    assert "203.0.113.7 already holds 2 of the 4 seats" in replies[2][1]
    assert "max_admissions_per_address 2" in replies[2][1]


def test_two_made_up_fl_ids_from_one_address_cannot_take_both_seats(small_model):
    replies = admissions(small_model, [("x1", "203.0.113.7"), ("x2", "203.0.113.7"), ("real", "198.51.100.2")],
                         start_fl_job_threshold=2)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED, ResponseCode.OutOfTime, ResponseCode.SUCCEED]


def test_a_retry_of_an_admitted_device_at_the_address_limit_is_answered_again(small_model):
    replies = admissions(small_model, [("a", "203.0.113.7"), ("a", "203.0.113.7")], start_fl_job_threshold=2)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED, ResponseCode.SUCCEED]


def test_loopback_devices_are_not_limited_by_default(small_model):
    requests = [(f"sim{i}", remote) for i, remote in enumerate(["127.0.0.1"] * 3 + ["::1", "::ffff:127.0.0.1"])]
    replies = admissions(small_model, requests, start_fl_job_threshold=5)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED] * 5


def test_an_explicit_max_admissions_per_address_holds_for_loopback_too(small_model):
    replies = admissions(small_model, [("a", "127.0.0.1"), ("b", "127.0.0.1"), ("c", "127.0.0.1")],
                         start_fl_job_threshold=4, max_admissions_per_address=2)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED, ResponseCode.SUCCEED, ResponseCode.OutOfTime]


def test_seats_per_address_count_again_in_the_next_iteration(small_model):
    replies = admissions(small_model, [("a", "203.0.113.7"), ("b", "203.0.113.7")], [("b", "203.0.113.7")],
                         start_fl_job_threshold=2)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED, ResponseCode.OutOfTime, ResponseCode.SUCCEED]


def test_a_retry_from_another_address_takes_none_of_its_seats(small_model):
    # "a" is admitted from A; its retry from B is answered as admitted but holds no seat of B
    replies = admissions(small_model, [("a", "198.51.100.2"), ("a", "203.0.113.7"), ("x", "203.0.113.7"),
                                       ("y", "203.0.113.7")], start_fl_job_threshold=4)
    assert [code for code, _ in replies] == [ResponseCode.SUCCEED] * 4


def test_every_round_takes_the_remote_address_as_a_keyword(small_model):
    # the contract the HTTP layer relies on: handle(message, remote=request.remote) for each round
    from pyflclient.wire.protocol import GetModelRequest, UpdateModelRequest

    async def go() -> list[ResponseCode]:
        rounds = Rounds(ServerConfig(start_fl_job_threshold=2), MemoryStore(), small_model)
        await rounds.begin()
        joined = await rounds.start_fl_job(StartFLJobRequest("Lenet", "a", 0, 3), remote="203.0.113.7")
        uploaded = await rounds.update_model(UpdateModelRequest("Lenet", "a", 1, {
            n: (a * 3).reshape(-1) for n, a in small_model.items()}), remote="203.0.113.7")
        got = await rounds.get_model(GetModelRequest("Lenet", 0), remote="203.0.113.7")
        rounds.close()
        return [joined.retcode, uploaded.retcode, got.retcode]

    assert asyncio.run(go()) == [ResponseCode.SUCCEED] * 3
