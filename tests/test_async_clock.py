"""The asynchronous mode on the simulated clock (device_profiles): Java devices, real server, replayed."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pyflclient as fl
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE, FEDASYNC, FEDBUFF

from conftest import LENET_MS

N = 4


@pytest.fixture
def profiles(tmp_path):
    """Four always-online devices, 2 to 5 ms a sample, one slow link: comparable speeds, so that the fast ones
    do not have to train hundreds of times (in wall time) while a slow one's upload is due."""
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"devices": {f"a{i}": {"ms_per_sample": 2 + i, "download_kbps": 20_000,
                                                      "upload_kbps": 5_000 if i else 1_000, "latency_ms": 50}
                                            for i in range(N)}}))
    return str(path)


def _run(bundled_clients, models, out, profiles, aggregation, versions):
    with fl.Server(LENET_MS, server_mode=ASYNC_SERVER_MODE, async_aggregation=aggregation, fedbuff_buffer_size=2,
                   async_concurrency=N, max_staleness=6, fl_iteration_num=versions, retry_interval=100,
                   device_profiles=profiles, device_count=N, checkpoint_dir=str(out / "ckpt")) as srv:
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                 sleep_time_ms=50, client_id=f"a{i}") for i, (c, m) in enumerate(zip(bundled_clients, models))]
        fl.Simulation(params, output_dir=out / "run", progress=False, max_trainers=2,
                      device_profiles=profiles).run(timeout=300)
        assert srv.wait_finished(timeout=60)
        final = srv.global_model()
    lines = [json.loads(line) for line in (out / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    return final, [(line["sim_end_h"], line["staleness"]) for line in lines]


@pytest.mark.parametrize("aggregation,versions", [(FEDASYNC, 6), (FEDBUFF, 3)])
def test_async_on_the_simulated_clock_replays_bit_identically(bundled_clients, tmp_path, profiles, aggregation,
                                                               versions):
    from pyflclient.data import copy_models

    runs = []
    for run in ("a", "b"):
        models = copy_models(LENET_MS, N, tmp_path / run / "ms")
        runs.append(_run(bundled_clients[:N], models, tmp_path / run, profiles, aggregation, versions))
    (a, timeline_a), (b, timeline_b) = runs
    hours = [h for h, _ in timeline_a]
    assert hours == sorted(hours) and hours[0] > 0
    assert timeline_a == timeline_b
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def _replays(tmp_path, clients, devices: dict, aggregation: str, versions: int):
    """Run ``devices`` (profiles by fl_id) with async_concurrency 2 at 1 and then 2 trainers; both runs'
    (final model, [(sim_end_h, staleness)] per version, async_results())."""
    from pyflclient.data import copy_models

    n = len(devices)
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"devices": devices}))
    runs = []
    for trainers in (1, 2):
        out = tmp_path / f"t{trainers}"
        models = copy_models(LENET_MS, n, out / "ms")
        with fl.Server(LENET_MS, server_mode=ASYNC_SERVER_MODE, async_aggregation=aggregation, fedbuff_buffer_size=2,
                       async_concurrency=2, max_staleness=6, fl_iteration_num=versions, retry_interval=100,
                       device_profiles=str(path), device_count=n, checkpoint_dir=str(out / "ckpt")) as srv:
            params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                     sleep_time_ms=50, client_id=f"a{i}")
                      for i, (c, m) in enumerate(zip(clients[:n], models))]
            fl.Simulation(params, output_dir=out / "run", progress=False, max_trainers=trainers,
                          device_profiles=str(path)).run(timeout=300)
            assert srv.wait_finished(timeout=60)
            final = srv.global_model()
            report = srv.async_results()
        lines = [json.loads(line) for line in (out / "ckpt" / "metrics.jsonl").read_text().splitlines()]
        runs.append((final, [(line["sim_end_h"], line["staleness"]) for line in lines], report))
    return runs


def _same(runs, versions: int) -> None:
    (a, timeline_a, report_a), (b, timeline_b, report_b) = runs
    assert len(timeline_a) == versions
    assert timeline_a == timeline_b
    assert report_a == report_b  # the same devices waited the same simulated time for their seats
    assert len(report_a["idle_ms"]) > 2  # more devices than seats took part
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("aggregation,versions", [(FEDASYNC, 8), (FEDBUFF, 4)])
def test_freed_seats_go_by_a_seeded_draw_and_replay_at_1_and_2_trainers(bundled_clients, tmp_path, aggregation,
                                                                         versions):
    """async_concurrency 2 of 6 devices: each freed seat is drawn among the waiting devices (the uploader
    included), so the run is the same at 1 and 2 trainers, and the seats rotate among the devices."""
    devices = {f"a{i}": {"ms_per_sample": 2 + i % 3, "download_kbps": 20_000, "upload_kbps": 5_000, "latency_ms": 50}
               for i in range(6)}
    _same(_replays(tmp_path, bundled_clients, devices, aggregation, versions), versions)


def test_the_draw_replays_with_devices_going_offline(bundled_clients, tmp_path):
    """The same with online sessions of 1 s every 2.5 s, staggered by 0.2 s (nobody online from 2 to 2.5 s):
    some devices are offline at a draw (not drawn), some uploads come after the session's end (dropped,
    refused), and at moments no device is online and none trains (the seat goes to the first to come online)."""
    devices = {f"a{i}": {"ms_per_sample": 1 + i % 3, "download_kbps": 20_000, "upload_kbps": 5_000, "latency_ms": 50,
                         "availability": {"period_s": 2.5, "online": [[0.2 * i, 0.2 * i + 1.0]]}}
               for i in range(6)}
    _same(_replays(tmp_path, bundled_clients, devices, FEDASYNC, 8), 8)
