"""Whole-system replay: the same data, model, server config and seed give bit-identical global models.

Two simulations of the same population run with 1 and with 2 trainer threads, so the
uploads reach the server in different orders (shown) and clients train in different
interleavings; the server sums uploads in fl_id order, so every global model is the same
bit for bit, and so are the evaluation curves. With more devices registered than seats,
``clients_per_iteration`` (simulated availability, drawn from the seed) set to the server's
threshold makes the first-come rule admit exactly the drawn devices: the same devices take
part in the same iterations in both runs, and participation spreads over the population.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyflclient as fl

from conftest import LENET_MS


def _run(data, models, out, trainers, threshold, iterations, **sim_options):
    from _recording import RecordingServer

    with RecordingServer(LENET_MS, start_fl_job_threshold=threshold, fl_iteration_num=iterations,
                         client_epoch_num=1, start_fl_job_time_window=60_000,
                         update_model_time_window=60_000) as srv:
        params = fl.params_for_clients(data, models, srv.url, sleep_time_ms=50)
        sim = fl.Simulation(params, output_dir=out, max_trainers=trainers, progress=False, **sim_options)
        results = sim.run(timeout=600)
        assert srv.wait_finished(timeout=60)
        globals_ = {it: srv.global_model(it) for it in range(1, iterations + 1)}
        arrivals = {it: [u.fl_id for u in srv.uploads(it)] for it in range(1, iterations + 1)}
    return results, globals_, arrivals


def _assert_same_models(a, b):
    for it in a:
        assert a[it].keys() == b[it].keys()
        for name in a[it]:
            assert np.array_equal(a[it][name], b[it][name]), f"iteration {it}, weight {name} differs"


def test_all_admitted_runs_are_bit_identical_with_1_and_2_trainers(bundled_clients, tmp_path):
    from pyflclient.data import copy_models

    data = bundled_clients[:24]
    runs = []
    for trainers in (1, 2):
        models = copy_models(LENET_MS, len(data), tmp_path / f"ms{trainers}")
        runs.append(_run(data, models, tmp_path / f"run{trainers}", trainers, threshold=len(data), iterations=2))
    (res1, glob1, arr1), (res2, glob2, arr2) = runs
    assert any(arr1[it] != arr2[it] for it in arr1), "the uploads arrived in the same order: the test shows nothing"
    _assert_same_models(glob1, glob2)
    assert res1.accuracy == res2.accuracy
    assert res1.loss == res2.loss


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    from pyflclient.data.population import build_population

    out = tmp_path_factory.mktemp("population")
    return build_population(out / "data", 240, source="bundled", samples_per_client=64, size_cv=0.0, seed=1)


def test_240_registered_20_admitted_replays_the_same_participants_and_models(population, tmp_path):
    from pyflclient.data import copy_models

    data = population
    runs = []
    for trainers in (1, 2):
        models = copy_models(LENET_MS, len(data), tmp_path / f"ms{trainers}")
        runs.append(_run(data, models, tmp_path / f"run{trainers}", trainers, threshold=20, iterations=3,
                         clients_per_iteration=20, seed=5))
    (res1, glob1, arr1), (res2, glob2, arr2) = runs
    for it in arr1:
        assert sorted(arr1[it]) == sorted(arr2[it]), f"iteration {it}: other devices took part"
        assert len(arr1[it]) == 20
    _assert_same_models(glob1, glob2)
    assert res1.accuracy == res2.accuracy
    took_part = {c for c, n in res1.participation.items() if n > 0}
    assert len(took_part) > 20, "participation spreads beyond one iteration's seats"
    assert set(res1.status.values()) <= {"SUCCESS", "NOT_SELECTED"}


def test_sampled_evaluation_evaluates_the_drawn_clients_and_every_model_file_gets_the_global_model(
        bundled_clients, tmp_path):
    """eval_every=2, eval_fraction=0.5: evaluated after iterations 2 and 3 (the last), each by the same
    seeded half whatever the run; a client that does not evaluate writes the global weights into its
    model file without loading the model, and its file is then the one a loading client would write."""
    from pyflclient.data import copy_models
    from pyflclient.model.msfile import trainable_weights

    data = bundled_clients[:8]
    models = copy_models(LENET_MS, len(data), tmp_path / "ms")
    results, globals_, _ = _run(data, models, tmp_path / "run", 2, threshold=len(data), iterations=3,
                                eval_every=2, eval_fraction=0.5, seed=3)
    assert set(results.accuracy) == {2, 3}, "evaluated after every 2nd iteration and the last only"
    assert all(0 < len(results.accuracy[it]) < len(data) for it in (2, 3)), results.accuracy
    again = copy_models(LENET_MS, len(data), tmp_path / "ms2")
    replay, _, _ = _run(data, again, tmp_path / "run2", 1, threshold=len(data), iterations=3,
                        eval_every=2, eval_fraction=0.5, seed=3)
    assert replay.accuracy == results.accuracy
    final = globals_[3]
    for path in models:
        weights = trainable_weights(path)
        for name, value in final.items():
            assert np.array_equal(weights[name].reshape(-1), np.asarray(value).reshape(-1)), f"{path}: {name}"
