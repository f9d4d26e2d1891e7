"""Issue 27's levers keep results bit for bit: the built program a trainer thread reuses across its
clients (``flclient.runtime.reuse``) and the trained models kept in memory between upload and
getModel up to a budget (``TrainedModels``; past it, the ``.trained`` scratch file).

The same simulation (real server, real JVM, bundled LeNet, 8 clients, 2 iterations, 1 and 2
trainers) runs with every program built afresh and every trained model in its file (the way before
issue 27), with reuse and everything in memory, and with reuse and a budget of about two models (some
clients in memory, the rest in files); the global models, the accuracy and loss curves and every
client's final model file are the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyflclient as fl
from pyflclient.client import jvm

from conftest import LENET_MS


@pytest.fixture
def java_knobs():
    """Sets reuse / budget for one run and restores the defaults after the test."""
    jvm.start_jvm()
    system = jvm.jclass("java.lang.System")
    trained = jvm.jclass("com.mindspore.flclient.cases.TrainedModels")
    default_budget = int(trained.budget())

    def set_knobs(reuse: bool, budget: int) -> None:
        system.setProperty("flclient.runtime.reuse", "true" if reuse else "false")
        trained.setBudget(budget)

    yield set_knobs, trained
    system.clearProperty("flclient.runtime.reuse")
    trained.setBudget(default_budget)


def _run(data, out: Path, trainers: int):
    from _recording import RecordingServer
    from pyflclient.data import copy_models

    models = copy_models(LENET_MS, len(data), out / "ms")
    with RecordingServer(LENET_MS, start_fl_job_threshold=len(data), fl_iteration_num=2, client_epoch_num=1,
                         start_fl_job_time_window=60_000, update_model_time_window=60_000) as srv:
        params = fl.params_for_clients(data, models, srv.url, sleep_time_ms=50)
        results = fl.Simulation(params, output_dir=out / "sim", max_trainers=trainers, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=60)
        globals_ = {it: srv.global_model(it) for it in (1, 2)}
    files = [Path(m).read_bytes() for m in models]
    return results, globals_, files, models


@pytest.mark.parametrize("trainers", [1, 2])
def test_reused_programs_and_models_in_memory_give_the_bytes_of_fresh_programs_and_files(
        bundled_clients, tmp_path, java_knobs, trainers):
    set_knobs, trained = java_knobs
    data = bundled_clients[:8]
    model_bytes = Path(LENET_MS).stat().st_size
    runs = {}
    for name, reuse, budget in (("fresh+files", False, 0), ("reuse+memory", True, 1 << 30),
                                ("reuse+budget of 2 models", True, 2 * model_bytes + 1)):
        set_knobs(reuse, budget)
        runs[name] = _run(data, tmp_path / name.replace(" ", "_").replace("+", "_"), trainers)
        assert trained.used() == 0, f"{name}: every kept trained model is dropped after its getModel"
        for m in runs[name][3]:
            assert not Path(str(m) + ".trained").exists(), f"{name}: a scratch file outlived its round"
    base_results, base_globals, base_files, _ = runs["fresh+files"]
    for name, (results, globals_, files, _) in runs.items():
        for it in base_globals:
            for w in base_globals[it]:
                assert np.array_equal(base_globals[it][w], globals_[it][w]), f"{name}: iteration {it} {w} differs"
        assert results.accuracy == base_results.accuracy, name
        assert results.loss == base_results.loss, name
        assert files == base_files, f"{name}: a client's final model file differs"


def test_past_the_budget_the_trained_model_goes_to_its_scratch_file_and_loads_the_same(tmp_path, java_knobs):
    """The store itself: within the budget the bytes stay in memory (no file) and RuntimeModel.load
    reads them; past it the file is written; both load to the same weights."""
    set_knobs, trained = java_knobs
    runtime_model = jvm.jclass("com.mindspore.flclient.cases.RuntimeModel")
    paths = jvm.jclass("java.nio.file.Paths")
    size = Path(LENET_MS).stat().st_size
    set_knobs(True, size + 1)  # room for one model
    source = runtime_model.load(paths.get(str(LENET_MS)))
    source.setWeight("fc3.bias", [0.5] * 62)
    first, second = tmp_path / "a.ms.trained", tmp_path / "b.ms.trained"
    assert trained.save(source, paths.get(str(first)))
    assert not first.exists() and trained.has(paths.get(str(first)))
    assert not trained.save(source, paths.get(str(second))), "the second model is past the budget"
    assert second.exists() and not trained.has(paths.get(str(second)))
    assert bytes(trained.get(paths.get(str(first)))) == second.read_bytes()
    source.close()
    for f in (first, second):
        m = runtime_model.load(paths.get(str(f)))
        assert list(m.getWeight("fc3.bias")) == [0.5] * 62
        m.close()
    trained.remove(paths.get(str(first)))
    assert trained.used() == 0


def test_the_simulation_flag_sets_the_jvms_budget_and_refuses_a_bad_value(bundled_clients, tmp_path, java_knobs):
    _, trained = java_knobs
    from pyflclient.data import copy_models

    data = bundled_clients[:2]
    params = fl.params_for_clients(data, copy_models(LENET_MS, 2, tmp_path / "ms"), "http://127.0.0.1:1")
    fl.Simulation(params, output_dir=tmp_path / "sim", progress=False, trained_model_memory_mb=3)
    assert int(trained.budget()) == 3 << 20
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"^trained_model_memory_mb: .*expected an integer >= 0 \(MiB\)$"):
            fl.Simulation(params, output_dir=tmp_path / "sim", progress=False, trained_model_memory_mb=bad)
