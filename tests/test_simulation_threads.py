"""Simulation: many clients as Java threads of this process's one JVM, against the loopback server."""
from __future__ import annotations

import numpy as np
import pytest

import pyflclient as fl

from conftest import LENET_MS


def client_params(clients, models, url, **changes) -> list[fl.FLParameter]:
    return [fl.FLParameter(domain_name=url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                           sleep_time_ms=50, client_id=f"f{i}", **changes)
            for i, (c, m) in enumerate(zip(clients, models))]


@pytest.fixture(scope="module")
def twenty_clients_run(bundled_clients, tmp_path_factory):
    """20 clients × 3 iterations, every client in every iteration; the server records the uploads."""
    from pyflclient.data import copy_models
    from _recording import RecordingServer

    out = tmp_path_factory.mktemp("sim20")
    models = copy_models(LENET_MS, 20, out / "ms")
    rounds = []
    with RecordingServer(LENET_MS, start_fl_job_threshold=20, fl_iteration_num=3, client_epoch_num=1) as srv:
        sim = fl.Simulation(client_params(bundled_clients, models, srv.url), output_dir=out / "run",
                            max_trainers=2, progress=False, on_round=rounds.append)
        results = sim.run(timeout=600)
        assert srv.wait_finished(timeout=30)
        uploads = {it: srv.uploads(it) for it in (1, 2, 3)}
        globals_ = {it: srv.global_model(it) for it in (1, 2, 3)}
    return sim, results, uploads, globals_, models, rounds


def test_every_client_finishes_every_iteration(twenty_clients_run):
    sim, results, *_ = twenty_clients_run
    assert results.status == {f"client_{i}": "SUCCESS" for i in range(20)}
    assert all(job.result.iterations == 3 for job in sim.jobs)
    assert not sim.is_running()


def test_server_global_model_is_the_exact_fedavg_of_the_client_uploads(twenty_clients_run, bundled_clients):
    _, _, uploads, globals_, *_ = twenty_clients_run
    sizes = {f"f{i}": c.num_train for i, c in enumerate(bundled_clients)}
    for it in (1, 2, 3):
        ups = uploads[it]
        assert sorted(u.fl_id for u in ups) == sorted(sizes)
        assert all(u.data_size == sizes[u.fl_id] for u in ups)
        total = sum(u.data_size for u in ups)
        for name, global_w in globals_[it].items():
            expected = sum(u.weights[name].astype(np.float64) for u in ups) / total
            np.testing.assert_allclose(global_w.ravel(), expected.astype(np.float32).ravel(), rtol=1e-6, atol=1e-7)


def test_each_client_ends_with_the_final_global_model_in_its_file(twenty_clients_run):
    sim, _, _, globals_, *_ = twenty_clients_run
    for job in sim.jobs[:3]:
        for name, w in job.weights().items():
            np.testing.assert_array_equal(w, globals_[3][name])


def test_results_hold_accuracy_and_loss_of_every_client_per_iteration(twenty_clients_run):
    _, results, _, _, _, rounds = twenty_clients_run
    for it in (1, 2, 3):
        assert len(results.accuracy[it]) == 20 and len(results.loss[it]) == 20
    summary = results.summary()
    assert [s.iteration for s in summary] == [1, 2, 3]
    assert all(s.low5 <= s.avg <= s.top5 for s in summary)
    assert summary[-1].avg_loss < summary[0].avg_loss  # the federation learns
    assert [s.iteration for s in rounds] == [1, 2, 3]  # on_round, once per iteration, in order


def test_each_client_writes_its_own_log(twenty_clients_run):
    sim, *_ = twenty_clients_run
    logs = [sim.output_dir / f"client_{i}" / "client.log" for i in range(20)]
    assert all(p.is_file() for p in logs)
    assert "f7" in logs[7].read_text() and "f8" not in logs[7].read_text()


def test_max_trainers_threads_train_and_no_client_has_a_thread(twenty_clients_run):
    import jpype

    sim, *_ = twenty_clients_run
    names = [str(t.getName()) for t in jpype.JClass("java.lang.Thread").getAllStackTraces().keySet()]
    assert sum(n.startswith("fl-engine-trainer-") for n in names) <= sim.max_trainers == 2
    assert not [n for n in names if n.startswith("pyflclient-client_")]


def test_saved_results_files(twenty_clients_run, tmp_path):
    sim, *_ = twenty_clients_run
    files = sim.save(tmp_path)
    assert fl.SimulationResults.load_json(files["json"]).summary() == sim.results.summary()
    assert files["png"].stat().st_size > 1000


def test_two_clients_sharing_a_model_file_are_refused(bundled_clients, client_models):
    model = client_models(1)[0]
    params = client_params(bundled_clients[:2], [model, model], "http://127.0.0.1:1")
    with pytest.raises(ValueError, match="own copy"):
        fl.Simulation(params, progress=False)


def test_embedded_start_wait_stop_ends_every_client_within_two_seconds(bundled_clients, client_models, start_server,
                                                                       tmp_path):
    import time

    srv = start_server(LENET_MS, start_fl_job_threshold=4, fl_iteration_num=50, client_epoch_num=200)
    sim = fl.Simulation(client_params(bundled_clients[:4], client_models(4), srv.url), output_dir=tmp_path,
                        max_trainers=2, progress=False)
    sim.start()
    assert sim.wait(timeout=0.5) is None and sim.is_running()  # still training: wait gives up, nothing stops
    t0 = time.monotonic()
    assert sim.stop() is True
    assert time.monotonic() - t0 < 2.0 and not sim.is_running()
    assert all(job.result.status == "STOPPED" for job in sim.jobs)
