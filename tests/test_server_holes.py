"""Small holes of issue 26, each held by a test that failed before its fix: a damaged checksum sidecar, a
duplicate metrics.jsonl line after a checkpoint fallback, data_size <= 0 and a malformed fl_name answered
RequestError (not OutOfTime), and rate-limited refusal log lines."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from pyflclient.server import Server
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.wire.protocol import ResponseCode


@pytest.mark.parametrize("garbled", [b"", b"not a checksum\n", b"\xff\xfe\x00garbage", b"0123abcd  iteration"],
                         ids=["empty", "words", "binary", "cut"])
def test_a_damaged_sidecar_does_not_discard_an_intact_checkpoint(garbled, small_model, tmp_path, caplog):
    """Iteration 2's .npz intact, its .sha256 garbled: iteration 2 is resumed (not set aside), one WARNING
    names the sidecar, and the sidecar is written anew (the next start is clean)."""
    ckpt = Checkpoints(tmp_path)
    ckpt.save(1, {n: a + 1 for n, a in small_model.items()})
    second = {n: (a + 2).astype(np.float32) for n, a in small_model.items()}
    ckpt.save(2, second)
    sidecar = Checkpoints.checksum_path(ckpt.path(2))
    sidecar.write_bytes(garbled)
    with caplog.at_level(logging.WARNING):
        iteration, model = ckpt.latest()
    assert iteration == 2
    for name, want in second.items():
        np.testing.assert_array_equal(model[name], want)
    assert not list(tmp_path.glob("*.corrupt-*"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and sidecar.name in warnings[0] and "damaged" in warnings[0], warnings
    digest, name = sidecar.read_text().split()
    assert name == ckpt.path(2).name and len(digest) == 64


def test_no_duplicate_metrics_line_after_a_checkpoint_fallback(device, run_round, small_model, tmp_path):
    """Iterations 1 and 2 run, iteration 2's checkpoint damaged: the restart resumes at 2 and runs it again;
    metrics.jsonl then has one line per iteration (1, 2), not two lines for iteration 2."""
    settings = dict(start_fl_job_threshold=1, fl_iteration_num=3, checkpoint_dir=str(tmp_path))
    with Server(small_model, **settings) as first:
        run_round(first, [device(first.url)], seed=1)
        run_round(first, [device(first.url)], seed=2)
    path = Checkpoints(tmp_path).path(2)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with Server(small_model, **settings) as second:
        assert second.iteration == 2
        run_round(second, [device(second.url)], seed=3)
        lines = [json.loads(x)["iteration"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
        assert lines == [1, 2], lines
        assert [m["iteration"] for m in second.metrics()] == [1, 2]


def test_data_size_below_1_and_a_malformed_fl_name_are_request_errors(start_server, device, small_model):
    """data_size 0 and -3 and an fl_name that names nothing ('' / 'a b' / '../x') are RequestError (they used
    to be OutOfTime, "come back later", and accepted); the stock client's class name and the job's name pass."""
    srv = start_server(small_model, start_fl_job_threshold=3)
    for size in (0, -3):
        reply = device(srv.url, data_size=size).start_fl_job()
        assert reply.retcode == ResponseCode.RequestError and "data_size" in reply.reason, reply
    for name in ("", "a b", "../x", "x" * 300):
        reply = device(srv.url, fl_name=name).start_fl_job()
        assert reply.retcode == ResponseCode.RequestError and "fl_name" in reply.reason, (name, reply)
    for name in ("Lenet", "com.mindspore.flclient.demo.lenet.LenetClient"):
        assert device(srv.url, fl_name=name).start_fl_job().retcode == ResponseCode.SUCCEED
    assert srv.iteration == 1 and srv.core.transport.faults.counts["startFLJob refused"] == 6


def test_refused_uploads_log_at_most_two_lines_per_kind(start_server, device, small_model, caplog):
    """300 uploads for a wrong iteration: 300 refusals counted, at most 2 INFO lines about them (the first, and
    one 'N more' when the 10 s interval ends or the server stops), not 300."""
    srv = start_server(small_model, start_fl_job_threshold=2)
    dev = device(srv.url)
    with caplog.at_level(logging.INFO):
        for _ in range(300):
            assert dev.update_model(7, small_model).retcode == ResponseCode.OutOfTime
        counts = srv.core.rounds.refusals.counts
        assert counts["updateModel refused (OutOfTime)"] == 300
    lines = [r for r in caplog.records if "updateModel refused" in r.getMessage()]
    assert 1 <= len(lines) <= 2, len(lines)


@pytest.mark.parametrize("poison", ["1e9 x w", "3e38 everywhere"])
def test_the_default_bound_refuses_a_poisoned_update_and_the_model_stays_put(poison, start_server, device,
                                                                              small_model):
    """Defaults only (no max_update_norm): three honest devices (model + N(0, 0.05) noise, data_size 20) and one
    admitted with data_size 1 uploading 1e9 x w or 3.0e38 everywhere. Before the default bound the poisoned upload
    was accepted and moved the model by ~1e9; now it is refused (RequestError, 'update norm') in the first
    iteration (the warm-up bound) and the global model is the honest devices' FedAvg."""
    from conftest import fedavg_of, upload_of

    srv = start_server(small_model, start_fl_job_threshold=4, update_model_ratio=0.75, fl_iteration_num=2)
    honest = [device(srv.url, fl_id=f"h{i}", data_size=20) for i in range(3)]
    attacker = device(srv.url, fl_id="attacker", data_size=1)
    joined = [d.start_fl_job() for d in [attacker] + honest]
    assert all(j.retcode == ResponseCode.SUCCEED for j in joined)
    weights = dict(joined[0].weights)
    bad = ({n: (a * np.float32(1e9)).astype(np.float32) for n, a in weights.items()} if poison == "1e9 x w"
           else {n: np.full(a.shape, 3.0e38, np.float32) for n, a in weights.items()})
    reply = attacker.update_model(1, bad)
    assert reply.retcode == ResponseCode.RequestError and "update norm" in reply.reason, reply
    ups = []
    for i, d in enumerate(honest):
        _, up = upload_of(weights, 20, seed=i)
        ups.append(up)
        assert d.update_model(1, up).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    want = fedavg_of(ups, [20, 20, 20])
    for name, got in srv.global_model(1).items():
        np.testing.assert_allclose(np.reshape(got, -1), np.reshape(want[name], -1), rtol=1e-5, atol=1e-6)
    assert srv.core.rounds.norm_bound.refused == 1


def test_the_default_bound_never_trips_on_honest_updates_of_different_sizes(start_server, device, small_model):
    """Five iterations of 10 honest devices whose updates differ 30-fold in size (noise 0.005 .. 0.15, as
    devices with 1 to 30 local steps): no refusal, once the median takes over (after 8 accepted) too."""

    srv = start_server(small_model, start_fl_job_threshold=10, fl_iteration_num=5)
    devs = [device(srv.url, fl_id=f"d{i}", data_size=5 + i) for i in range(10)]
    for it in range(1, 6):
        joined = [d.start_fl_job() for d in devs]
        assert all(j.retcode == ResponseCode.SUCCEED for j in joined)
        weights = dict(joined[0].weights)
        for i, d in enumerate(devs):
            scale = 0.005 * (1 + 29 * i / 9)
            rng = np.random.default_rng(it * 100 + i)
            up = {n: ((a + rng.normal(0, scale, a.shape)) * d.data_size).astype(np.float32) for n, a in weights.items()}
            reply = d.update_model(it, up)
            assert reply.retcode == ResponseCode.SUCCEED, reply.reason
        assert srv.wait_iteration(it, timeout=30)
    assert srv.core.rounds.norm_bound.refused == 0
