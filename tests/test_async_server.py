"""The asynchronous server mode (FedAsync, FedBuff) through a real server on loopback.

Protocol-level devices (:class:`pyflclient.server.device.DeviceClient`) drive a real
:class:`pyflclient.Server`; the published versions are held to numpy transcriptions of the
papers' update rules written here (Xie et al. 2019 Algorithm 1 and §5.2; Nguyen et al. 2022
Algorithm 1 with the data-size-weighted average of the rebased updates).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

from pyflclient.server import Server
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE, FEDASYNC, FEDBUFF, STALENESS_FUNCTIONS, staleness
from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.server.device import DeviceClient
from pyflclient.wire.protocol import PLAIN_TEXT_JOB_FINISHED, ResponseCode

SHAPES = {"conv.weight": (2, 3), "fc.bias": (4,)}
ASYNC = {"server_mode": ASYNC_SERVER_MODE, "retry_interval": 50}


def initial_model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in SHAPES.items()}


def trained(seed: int, received: Mapping[str, np.ndarray], data_size: int) -> tuple[dict, dict]:
    """A device's trained model (float32) and its upload (× data_size, flat float32 as on the wire)."""
    rng = np.random.default_rng(seed)
    model = {n: (np.reshape(received[n], SHAPES[n]) + rng.normal(0, 0.3, SHAPES[n])).astype(np.float32) for n in SHAPES}
    return model, {n: (np.float32(data_size) * m).reshape(-1).astype(np.float32) for n, m in model.items()}


# -- the paper's equations, transcribed ----------------------------------------------------

def s_numpy(name: str, tau: np.ndarray, a: float, b: float) -> np.ndarray:
    """Xie et al. 2019 §5.2: constant, polynomial (τ+1)^-a, hinge (1 up to b, then 1/(a(τ-b)+1))."""
    if name == "constant":
        return np.ones_like(tau, dtype=np.float64)
    if name == "polynomial":
        return np.power(tau + 1.0, -a)
    with np.errstate(divide="ignore"):  # the branch not taken (τ <= b) may divide by 0
        return np.where(tau <= b, 1.0, 1.0 / (a * (tau - b) + 1.0))


def fedasync_numpy(x: Mapping[str, np.ndarray], x_new: Mapping[str, np.ndarray], alpha: float, s: float) -> dict:
    """x_{t+1} = (1 - α s(τ)) x_t + α s(τ) x_new."""
    a = alpha * s
    return {n: ((1 - a) * x[n].astype(np.float64) + a * x_new[n].astype(np.float64)).astype(np.float32) for n in x}


def fedbuff_numpy(x_t: Mapping[str, np.ndarray], entries: list[tuple[int, Mapping, Mapping, float]]) -> dict:
    """x_{t+1} = x_t + Σ_k n_k s(τ_k) (x_k − x_{i_k}) / Σ_k n_k over the buffer (n_k, x_k, x_{i_k}, s_k)."""
    total = sum(n for n, _, _, _ in entries)
    out = {}
    for name in x_t:
        step = sum(n * s * (xk[name].astype(np.float64) - xi[name].astype(np.float64)) for n, xk, xi, s in entries)
        out[name] = (x_t[name].astype(np.float64) + step / total).astype(np.float32)
    return out


@pytest.mark.parametrize("name", list(STALENESS_FUNCTIONS))
@pytest.mark.parametrize("a,b", [(0.5, 4.0), (2.0, 0.0), (0.0, 10.0)])
def test_staleness_weights_match_the_papers_functions(name: str, a: float, b: float) -> None:
    tau = np.arange(0, 40)
    got = np.array([staleness(name, a, b).weight(int(t)) for t in tau])
    np.testing.assert_allclose(got, s_numpy(name, tau.astype(np.float64), a, b), rtol=1e-15, atol=0)


def test_fedasync_mixes_each_upload_with_its_staleness_weight() -> None:
    x0 = initial_model()
    with Server(x0, fl_iteration_num=5, async_aggregation=FEDASYNC, fedasync_alpha=0.7,
                staleness_function="polynomial", staleness_a=0.5, **ASYNC) as srv:
        with DeviceClient(srv.url, fl_id="a", data_size=5) as a, DeviceClient(srv.url, fl_id="b", data_size=3) as b:
            ra, rb = a.start_fl_job(), b.start_fl_job()
            assert ra.retcode == rb.retcode == ResponseCode.SUCCEED and ra.iteration == rb.iteration == 0
            assert ra.plan.server_mode == ASYNC_SERVER_MODE
            xa, ua = trained(1, ra.weights, 5)
            xb, ub = trained(2, rb.weights, 3)
            assert a.async_update_model(0, ua).iteration == 1  # τ = 0
            reply = b.async_update_model(0, ub)  # trained on version 0, arrives at version 1: τ = 1
            assert reply.retcode == ResponseCode.SUCCEED and reply.iteration == 2
            got = b.async_get_model()
        x1 = fedasync_numpy(x0, xa, 0.7, 1.0)
        x2 = fedasync_numpy(x1, xb, 0.7, 2.0 ** -0.5)
        assert got.iteration == 2
        for n in SHAPES:
            np.testing.assert_allclose(np.reshape(got.weights[n], SHAPES[n]), x2[n], rtol=1e-6, atol=1e-7)


def _fedbuff_settings(folder: Path) -> dict[str, Any]:
    return dict(fl_iteration_num=3, async_aggregation=FEDBUFF, fedbuff_buffer_size=3, staleness_function="hinge",
                staleness_a=2.0, staleness_b=0.0, checkpoint_dir=str(folder), **ASYNC)


def test_fedbuff_buffer_of_k_survives_a_restart(tmp_path: Path) -> None:
    x0 = initial_model()
    sizes = {"d1": 4, "d2": 9, "d3": 2, "d4": 6}
    sent: dict[str, tuple[dict, dict]] = {}
    with Server(x0, **_fedbuff_settings(tmp_path)) as srv:
        # version 1 from a first buffer of three, so that the next buffer holds a stale upload
        for i, fl_id in enumerate(["d1", "d2", "d3"]):
            with DeviceClient(srv.url, fl_id=fl_id, data_size=sizes[fl_id]) as d:
                sent[fl_id] = trained(10 + i, d.start_fl_job().weights, sizes[fl_id])
        with DeviceClient(srv.url, fl_id="d4", data_size=6) as d4:  # trains on version 0 too
            stale = trained(20, d4.start_fl_job().weights, 6)
        for fl_id in ["d1", "d2", "d3"]:
            with DeviceClient(srv.url, fl_id=fl_id, data_size=sizes[fl_id]) as d:
                assert d.async_update_model(0, sent[fl_id][1]).retcode == ResponseCode.SUCCEED
        assert srv.iteration == 2  # version 1 is out, version 2 is being built
        x1 = srv.global_model(1)
        # the second buffer: two acknowledged uploads, then the server stops
        with DeviceClient(srv.url, fl_id="d4", data_size=6) as d4:
            assert d4.async_update_model(0, stale[1]).retcode == ResponseCode.SUCCEED  # τ = 1
        with DeviceClient(srv.url, fl_id="d1", data_size=4) as d1:
            fresh = trained(30, d1.start_fl_job().weights, 4)
            assert d1.async_update_model(1, fresh[1]).retcode == ResponseCode.SUCCEED  # τ = 0
        assert srv.state().uploaded == 2
    with Server(x0, **_fedbuff_settings(tmp_path)) as srv:
        assert srv.state().uploaded == 2 and srv.iteration == 2
        with DeviceClient(srv.url, fl_id="d2", data_size=9) as d2:
            last = trained(40, d2.start_fl_job().weights, 9)
            assert d2.async_update_model(1, last[1]).iteration == 2  # the K-th upload makes version 2
        x2 = srv.global_model(2)
    np.testing.assert_allclose(  # the same sum in another order: the last bit may differ
        np.concatenate([x1[n].ravel() for n in SHAPES]),
        np.concatenate([v.ravel() for v in fedbuff_numpy(x0, [(sizes[f], sent[f][0], x0, 1.0) for f in
                                                              ["d1", "d2", "d3"]]).values()]), rtol=1e-6, atol=1e-7)
    want = fedbuff_numpy(x1, [(6, stale[0], x0, 1 / 3), (4, fresh[0], x1, 1.0), (9, last[0], x1, 1.0)])
    for n in SHAPES:
        np.testing.assert_allclose(x2[n], want[n], rtol=1e-6, atol=1e-7)


def test_an_upload_beyond_max_staleness_is_refused_with_the_reason() -> None:
    x0 = initial_model()
    with Server(x0, fl_iteration_num=10, async_aggregation=FEDASYNC, max_staleness=1, **ASYNC) as srv:
        with DeviceClient(srv.url, fl_id="old", data_size=2) as old, DeviceClient(srv.url, fl_id="new", data_size=2) as new:
            _, stale = trained(1, old.start_fl_job().weights, 2)
            for version in range(2):
                _, upload = trained(2 + version, new.start_fl_job().weights, 2)
                assert new.async_update_model(version, upload).retcode == ResponseCode.SUCCEED
            before = srv.global_model()
            reply = old.async_update_model(0, stale)  # τ = 2 > max_staleness 1
            assert reply.retcode == ResponseCode.OutOfTime
            assert "staleness 2" in reply.reason and "max_staleness 1" in reply.reason
            assert reply.iteration == 2
        after = srv.global_model()
    for n in SHAPES:
        np.testing.assert_array_equal(before[n], after[n])  # a refusal changes nothing


def test_admission_stops_at_async_concurrency_and_a_seat_frees_at_the_upload() -> None:
    with Server(initial_model(), fl_iteration_num=5, async_concurrency=2, **ASYNC) as srv:
        devices = [DeviceClient(srv.url, fl_id=f"d{i}", data_size=3) for i in range(3)]
        try:
            first = [d.start_fl_job() for d in devices]
            assert [r.retcode for r in first] == [ResponseCode.SUCCEED, ResponseCode.SUCCEED, ResponseCode.OutOfTime]
            assert "async_concurrency 2" in first[2].reason
            _, upload = trained(5, first[0].weights, 3)
            assert devices[0].async_update_model(0, upload).retcode == ResponseCode.SUCCEED
            again = devices[2].start_fl_job()
            assert again.retcode == ResponseCode.SUCCEED and again.iteration == 1
            idle = srv.async_results()["idle_ms"]
            assert set(idle) == {"d0", "d1", "d2"}
        finally:
            for d in devices:
                d.close()


def _replay(order: list[str], folder: Path) -> bytes:
    """A FedBuff job of two versions whose buffers arrive in ``order``; the checkpoint bytes of version 2."""
    x0 = initial_model()
    sizes = {"p": 3, "q": 8, "r": 5}
    with Server(x0, fl_iteration_num=2, async_aggregation=FEDBUFF, fedbuff_buffer_size=3,
                aggregation_type="FedAdam", checkpoint_dir=str(folder), **ASYNC) as srv:
        for version in range(2):
            received = {f: DeviceClient(srv.url, fl_id=f, data_size=n) for f, n in sizes.items()}
            models = {f: d.start_fl_job().weights for f, d in received.items()}
            for f in order:
                seed = 100 * version + sorted(sizes).index(f)
                reply = received[f].async_update_model(version, trained(seed, models[f], sizes[f])[1])
                assert reply.retcode == ResponseCode.SUCCEED, reply
            for d in received.values():
                d.close()
        assert srv.finished
        with DeviceClient(srv.url, fl_id="late") as late:
            assert late.start_fl_job() == PLAIN_TEXT_JOB_FINISHED
    return (folder / "iteration_000002.npz").read_bytes()


def test_replay_gives_bit_identical_versions_whatever_the_arrival_order(tmp_path: Path) -> None:
    first = _replay(["p", "q", "r"], tmp_path / "a")
    assert _replay(["r", "p", "q"], tmp_path / "b") == first
    assert _replay(["p", "q", "r"], tmp_path / "c") == first


def test_the_async_mode_refuses_what_it_does_not_combine_with() -> None:
    with pytest.raises(ConfigError, match="^encrypt_type='PW_ENCRYPT': must be NOT_ENCRYPT"):
        ServerConfig(server_mode=ASYNC_SERVER_MODE, encrypt_type="PW_ENCRYPT")
    with pytest.raises(ConfigError, match="^aggregation_type='FedAdam': must be FedAvg with async_aggregation"):
        ServerConfig(server_mode=ASYNC_SERVER_MODE, aggregation_type="FedAdam")
    with pytest.raises(ConfigError, match="^staleness_function='linear': one of"):
        ServerConfig(server_mode=ASYNC_SERVER_MODE, staleness_function="linear")


def test_a_redis_group_shares_versions_seats_and_the_buffer(redis_server) -> None:
    """Two server processes' worth of state (two Servers, one Redis): uploads through either join one buffer;
    the one that stops loses nothing acknowledged; both serve the same versions."""
    x0 = initial_model()
    settings = dict(fl_iteration_num=2, async_aggregation=FEDBUFF, fedbuff_buffer_size=4, async_concurrency=3,
                    max_staleness=2, distributed_cache_address=redis_server.address, **ASYNC)
    sizes = {"g1": 3, "g2": 5, "g3": 2, "g4": 7}
    a, b = Server(x0, **settings).start(), Server(x0, **settings).start()
    try:
        sent = {}
        for i, (fl_id, n) in enumerate(sizes.items()):
            with DeviceClient((a if i % 2 else b).url, fl_id=fl_id, data_size=n) as d:
                reply = d.start_fl_job()
                if i < 3:
                    assert reply.retcode == ResponseCode.SUCCEED  # three seats in the whole group
                else:
                    assert reply.retcode == ResponseCode.OutOfTime and "async_concurrency 3" in reply.reason
                sent[fl_id] = trained(50 + i, x0, n)
        for fl_id in ["g1", "g2"]:
            with DeviceClient(a.url, fl_id=fl_id, data_size=sizes[fl_id]) as d:
                assert d.async_update_model(0, sent[fl_id][1]).retcode == ResponseCode.SUCCEED
        a.stop()  # its two acknowledged uploads are in Redis
        for fl_id in ["g3", "g4"]:
            with DeviceClient(b.url, fl_id=fl_id, data_size=sizes[fl_id]) as d:
                reply = d.async_update_model(0, sent[fl_id][1])
                assert reply.retcode == ResponseCode.SUCCEED
        assert reply.iteration == 1
        got = b.global_model(1)
        c = Server(x0, **settings).start()  # a process joining the group serves the same version
        try:
            with DeviceClient(c.url, fl_id="g5", data_size=1) as d:
                joined = d.async_get_model()
            assert joined.iteration == 1
        finally:
            c.stop()
    finally:
        a.stop()
        b.stop()
    want = fedbuff_numpy(x0, [(n, sent[f][0], x0, 1.0) for f, n in sizes.items()])
    for n in SHAPES:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(np.reshape(joined.weights[n], SHAPES[n]), got[n])


class PlannedClock:
    """A clock that plans: device d's upload arrives 1000 × data_size ms after its admission (a stand-in for the
    device profiles' download + training + upload times), and the time is the last upload taken."""

    def __init__(self) -> None:
        self.t = 0

    def now_ms(self) -> int:
        return self.t

    def upload_ms(self, fl_id: str, data_size: int, admitted_ms: int) -> int:
        return admitted_ms + 1000 * data_size

    def advance(self, to_ms: int) -> None:
        self.t = max(self.t, to_ms)

    def refusal(self, fl_id: str) -> None:
        return None

    PLANS = True

    def offline(self, fl_id: str, at_ms: int) -> None:
        return None

    def online_from(self, fl_id: str, at_ms: int) -> int:
        return at_ms

    def hours(self, at_ms: int) -> float:
        return at_ms / 3_600_000


def _planned_fedasync(wall_seed: int, versions: int = 7) -> tuple[dict[str, np.ndarray], list[str], int]:
    """FedAsync under the planning clock: three devices loop (startFLJob, train, asyncUpdateModel) with wall
    training times drawn from ``wall_seed``; (the final model, the fl_ids in the order the server took them,
    the clock's time)."""
    import asyncio
    import random

    from pyflclient.server.async_rounds import AsyncRounds
    from pyflclient.server.store import MemoryStore
    from pyflclient.wire.protocol import AsyncUpdateModelRequest, StartFLJobRequest

    x0 = initial_model()
    config = ServerConfig(fl_iteration_num=versions, async_aggregation=FEDASYNC, fedasync_alpha=0.5, **ASYNC)
    wall = random.Random(wall_seed)
    taken: list[str] = []

    async def run() -> tuple[dict[str, np.ndarray], list[str], int]:
        clock = PlannedClock()
        rounds = AsyncRounds(config, MemoryStore(), x0, clock=clock)
        await rounds.begin()

        async def device(fl_id: str, n: int) -> None:
            while True:
                reply = await rounds.start_fl_job(StartFLJobRequest("Lenet", fl_id, 0, n))
                if isinstance(reply, str):
                    return  # the job is finished
                await asyncio.sleep(wall.uniform(0, 0.03))  # "training" on the host: any wall time
                upload = trained(100 * n + reply.iteration, reply.weights, n)[1]
                answer = await rounds.async_update_model(AsyncUpdateModelRequest("Lenet", fl_id, reply.iteration, n,
                                                                                 upload))
                if isinstance(answer, str):
                    return
                taken.append((answer.iteration, fl_id))

        await asyncio.gather(*(device(f, n) for f, n in SIZES.items()))
        return dict(await rounds.model()), [f for _, f in sorted(taken)], clock.now_ms()

    return asyncio.run(run())


#: planned upload every 1000 x data_size ms of the PlannedClock
SIZES = {"slow": 5, "fast": 1, "mid": 3}


def test_a_planning_clock_makes_fedasync_a_function_of_the_plan_not_of_the_host() -> None:
    model, order, now = _planned_fedasync(wall_seed=1)
    # the plan, transcribed: device d uploads every 1000 n_d ms, ties by (version trained on, fl_id)
    x, version, models = initial_model(), 0, {0: initial_model()}
    t_next, trained_on, want = {f: 1000 * n for f, n in SIZES.items()}, {f: 0 for f in SIZES}, []
    while version < 7:
        f = min(SIZES, key=lambda d: (t_next[d], trained_on[d], d))
        n, tau = SIZES[f], version - trained_on[f]
        x = fedasync_numpy(x, trained(100 * n + trained_on[f], models[trained_on[f]], n)[0], 0.5, (tau + 1.0) ** -0.5)
        version += 1
        models[version] = x
        want.append(f)
        trained_on[f] = version
        t_next[f] += 1000 * n
    assert order == want == ["fast", "fast", "mid", "fast", "fast", "slow", "fast"]
    assert now == 5000
    for n in SHAPES:
        np.testing.assert_allclose(model[n], x[n], rtol=1e-6, atol=1e-7)
    for seed in (2, 3):
        again, again_order, _ = _planned_fedasync(wall_seed=seed)
        assert again_order == order
        for n in SHAPES:
            np.testing.assert_array_equal(again[n], model[n])


def test_an_upload_from_the_future_or_with_a_bad_data_size_is_a_request_error_that_changes_nothing() -> None:
    x0 = initial_model()
    with Server(x0, fl_iteration_num=5, **ASYNC) as srv:
        with DeviceClient(srv.url, fl_id="d", data_size=2) as d:
            _, upload = trained(1, d.start_fl_job().weights, 2)
            future = d.async_update_model(3, upload)
            assert future.retcode == ResponseCode.RequestError and "iteration 3 is no version" in future.reason
            d.data_size = 0
            zero = d.async_update_model(0, upload)
            assert zero.retcode == ResponseCode.RequestError and "data_size must be in 1..max_data_size" in zero.reason
            d.data_size = 2
            bad = d.async_update_model(0, {**upload, "fc.bias": np.full(4, np.nan, np.float32)})
            assert bad.retcode == ResponseCode.RequestError and "NaN or Inf" in bad.reason
        assert srv.iteration == 1
        for n in SHAPES:
            np.testing.assert_array_equal(srv.global_model()[n], x0[n])


def test_fedbuff_takes_a_second_training_on_one_version_and_refuses_a_resend() -> None:
    x0 = initial_model()
    with Server(x0, fl_iteration_num=2, async_aggregation=FEDBUFF, fedbuff_buffer_size=3, **ASYNC) as srv:
        with DeviceClient(srv.url, fl_id="quick", data_size=4) as d:
            first = trained(1, d.start_fl_job().weights, 4)
            assert d.async_update_model(0, first[1]).retcode == ResponseCode.SUCCEED
            resent = d.async_update_model(0, first[1])  # an outage made the device send it again
            assert resent.retcode == ResponseCode.RequestError and "already uploaded in this iteration" in resent.reason
            second = trained(2, d.start_fl_job().weights, 4)  # the version is still 0: it trains on it again
            assert d.async_update_model(0, second[1]).retcode == ResponseCode.SUCCEED
            assert srv.state().uploaded == 2
