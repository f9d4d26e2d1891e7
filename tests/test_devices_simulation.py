"""The Java engine with the simulated clock and with fair turns: real JVM clients, real server, real files.

* Fair by default: without profiles and without ``clients_per_iteration`` every device asks, one after
  the other in a seeded shuffle per iteration (``ClientEngine.setSeededTurns``); the server's first-come
  rule admits the first of it, so participation spreads over the population and a run replays, same
  participants and bit-identical models, at 1 and 2 trainer threads.
* Device profiles: the server's simulated clock decides admissions and late uploads; the same seed
  gives the same simulated times, participants and models at 1 and 2 trainers and on Ray.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import pyflclient as fl

from conftest import LENET_MS


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    from pyflclient.data.population import build_population

    out = tmp_path_factory.mktemp("devices")
    return build_population(out / "data", 60, source="bundled", samples_per_client=64, size_cv=0.5, seed=2)


def _run(data, out, trainers, threshold, iterations, seed, server=None, backend="threads", requests=None, **sim):
    """``requests``: a dict filled with the startFLJob requests that reached the server, per (endpoint, fl_id)
    (the devices talk to it through a counting proxy)."""
    from _recording import CountingProxy, RecordingServer
    from pyflclient.data import copy_models

    models = copy_models(LENET_MS, len(data), out / "ms")
    with RecordingServer(LENET_MS, start_fl_job_threshold=threshold, fl_iteration_num=iterations,
                         client_epoch_num=1, start_fl_job_time_window=600_000, update_model_time_window=600_000,
                         checkpoint_dir=str(out / "ckpt"), **(server or {})) as srv:
        proxy = CountingProxy(srv.url) if requests is not None else None
        params = fl.params_for_clients(data, models, srv.url if proxy is None else proxy.url, sleep_time_ms=50)
        extra = dict(ray_actors=2) if backend == "ray" else {}
        s = fl.Simulation(params, output_dir=out / "sim", max_trainers=trainers, progress=False, seed=seed,
                          eval_fraction=0.2, backend=backend, **extra, **sim)
        s.run(timeout=600)
        assert srv.wait_finished(timeout=60)
        models_ = {it: srv.global_model(it) for it in range(1, iterations + 1)}
        who = {it: sorted(u.fl_id for u in srv.uploads(it)) for it in range(1, iterations + 1)}
        metrics = srv.metrics()
        if proxy is not None:
            requests.update(proxy.counts)
            proxy.close()
    return who, models_, metrics


def _same_models(a, b):
    for it in a:
        for name in a[it]:
            assert a[it][name].tobytes() == b[it][name].tobytes(), f"iteration {it}, weight {name} differs"


def test_without_profiles_waiting_devices_take_seeded_turns_fair_and_replayable(population, tmp_path):
    runs = [_run(population, tmp_path / f"t{t}", t, threshold=6, iterations=4, seed=3) for t in (1, 2)]
    (who1, m1, _), (who2, m2, _) = runs
    assert who1 == who2
    _same_models(m1, m2)
    distinct = set().union(*who1.values())
    assert len(distinct) >= 18  # 24 seats over 60 devices: a uniform draw gives ~22; "the fastest" gives 6
    other = _run(population, tmp_path / "s4", 2, threshold=6, iterations=1, seed=4)[0]
    assert other[1] != who1[1]  # the seed chooses


def test_profiles_replay_same_simulated_times_participants_and_models_at_1_and_2_trainers(population, tmp_path):
    profiles = tmp_path / "profiles.json"
    # a quarter of the devices are 20× slower: under update_model_ratio they are cut
    profiles.write_text(json.dumps({"devices": {c_id: {"ms_per_sample": 200.0} for c_id in
                                                [f"f{i}_{c.name}" for i, c in enumerate(population) if i % 4 == 0]},
                                    "default": {"ms_per_sample": 10.0, "download_kbps": 20_000,
                                                "upload_kbps": 5_000, "latency_ms": 50}}))
    server = dict(device_profiles=str(profiles), device_seed=9, device_count=len(population),
                  update_model_ratio=0.7)
    runs = [_run(population, tmp_path / f"p{t}", t, threshold=10, iterations=3, seed=9, server=server,
                 device_profiles=str(profiles)) for t in (1, 2)]
    (who1, m1, met1), (who2, m2, met2) = runs
    assert who1 == who2
    _same_models(m1, m2)
    sim = [{k: m[k] for k in ("sim_start_h", "sim_end_h", "admitted", "finished", "late")} for m in met1]
    assert sim == [{k: m[k] for k in ("sim_start_h", "sim_end_h", "admitted", "finished", "late")} for m in met2]
    assert all(m["admitted"] == 10 and m["finished"] == 7 for m in met1)
    assert sum(m["late"] for m in met1) > 0  # some slow devices were admitted, and cut


def test_a_device_offline_for_the_whole_run_never_asks_and_the_run_replays(population, tmp_path):
    ids = [f"f{i}_{c.name}" for i, c in enumerate(population)]
    # two devices online only late in the simulated day (the run lasts simulated seconds), the rest always
    off = sorted(ids[i] for i in (3, 17))
    late_day = {"availability": {"period_s": 86_400, "online": [[80_000, 86_400]]}}
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"devices": {d: {"ms_per_sample": 10.0, **late_day} for d in off},
                                    "default": {"ms_per_sample": 10.0, "download_kbps": 20_000,
                                                "upload_kbps": 5_000, "latency_ms": 50}}))
    server = dict(device_profiles=str(profiles), device_seed=5, device_count=len(population))
    runs, counts = [], []
    for t in (1, 2):
        requests: dict = {}
        runs.append(_run(population, tmp_path / f"o{t}", t, threshold=10, iterations=3, seed=5, server=server,
                         device_profiles=str(profiles), requests=requests))
        counts.append(requests)
    (who1, m1, met1), (who2, m2, met2) = runs
    for requests in counts:
        assert [requests.get(("startFLJob", d), 0) for d in off] == [0, 0]  # they never asked
        assert sum(n for (r, _), n in requests.items() if r == "startFLJob") >= 3 * 10  # the others did
    assert all(m["offline"] == 2 and m["admitted"] == 10 for m in met1)  # still counted per iteration
    assert who1 == who2
    _same_models(m1, m2)
    sim = [{k: m[k] for k in ("sim_start_h", "sim_end_h", "admitted", "finished", "late", "offline")}
           for m in met1]
    assert sim == [{k: m[k] for k in ("sim_start_h", "sim_end_h", "admitted", "finished", "late", "offline")}
                   for m in met2]


def test_profiles_replay_on_ray(population, tmp_path):
    pytest.importorskip("ray")
    server = dict(device_profiles="mobile", device_seed=1, device_count=len(population))
    threads = _run(population, tmp_path / "threads", 2, threshold=6, iterations=2, seed=1, server=server,
                   device_profiles="mobile")
    ray = _run(population, tmp_path / "ray", 1, threshold=6, iterations=2, seed=1, server=server,
               device_profiles="mobile", backend="ray")
    assert threads[0] == ray[0]
    _same_models(threads[1], ray[1])
    assert [(m["sim_start_h"], m["sim_end_h"]) for m in threads[2]] == [(m["sim_start_h"], m["sim_end_h"])
                                                                          for m in ray[2]]
    assert np.isfinite([m["sim_end_h"] for m in threads[2]]).all()


def test_demo_realistic_writes_the_simulated_timeline_and_its_plot(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "pyflclient.cli", "demo", "--clients", "8", "--iterations", "2",
                           "--epochs", "1", "--out", str(out), "--no-progress", "--realistic", "--seed", "3",
                           "--target-accuracy", "0.01"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "simulated hours" in proc.stdout
    doc = json.loads((out / "timeline.json").read_text())
    rows = doc["iterations"]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert rows[0]["sim_start_h"] == 0.0 and rows[0]["sim_end_h"] <= rows[1]["sim_start_h"] <= rows[1]["sim_end_h"]
    assert all(r["admitted"] + r["offline"] + r["refused"] == 8 for r in rows)
    assert (out / "accuracy_vs_time.png").stat().st_size > 1000
    metrics = [json.loads(line) for line in (out / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    assert all({"sim_start_ms", "sim_end_ms", "finished", "late", "offline"} <= set(m) for m in metrics)
