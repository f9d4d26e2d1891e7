"""Robust aggregation against poisoned devices, end to end (issue 21, "Poisoning").

50 simulated LeNet devices on the bundled digits, every one in every iteration; 5 of them
(10 %) are poisoned devices of the case jar: 3 upload twenty times their update
(``ScaledLenetClient``), 2 upload it sign-flipped x 10 (``SignFlippedLenetClient``). The
same job (same data, same seed) runs clean under FedAvg, then poisoned under FedAvg,
FedMedian, FedTrimmedAvg and Krum. The robust types must end within 0.05 AVG accuracy of
the clean FedAvg run; poisoned FedAvg must fall clearly below it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLIENTS = 50
ITERATIONS = 8
EPOCHS = 10
ATTACKERS = {0: "ScaledLenetClient", 1: "SignFlippedLenetClient", 2: "ScaledLenetClient",
             3: "SignFlippedLenetClient", 4: "ScaledLenetClient"}
ATTACK_PACKAGE = "com.mindspore.flclient.demo.lenet.attacks."


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory):
    from pyflclient.data.bundled import build_bundled_clients

    return build_bundled_clients(tmp_path_factory.mktemp("bundled"), num_clients=CLIENTS, seed=0)


def _final_avg(data, out: Path, poisoned: bool, **server: object) -> float:
    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server

    models = copy_models(LENET_TRAIN_MS, CLIENTS, out / "ms")
    with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=CLIENTS, fl_iteration_num=ITERATIONS,
                client_epoch_num=EPOCHS, client_batch_size=32, client_learning_rate=0.01,
                start_fl_job_time_window=600_000, update_model_time_window=600_000, **server) as srv:
        params = params_for_clients(data, models, srv.url, batch_size=32)
        if poisoned:
            for i, kind in ATTACKERS.items():
                params[i] = params[i].replace(fl_name=ATTACK_PACKAGE + kind)
        honest = [f"client_{i}" for i in range(CLIENTS)]
        results = Simulation(params, output_dir=out, progress=False, iterations=ITERATIONS, names=honest).run()
        assert srv.wait_finished(timeout=60)
    last = results.summary()[-1]
    assert last.iteration == ITERATIONS
    return last.avg


def test_robust_aggregation_keeps_the_accuracy_that_poisoned_devices_take_from_fedavg(bundled, tmp_path):
    clean = _final_avg(bundled, tmp_path / "clean", poisoned=False)
    fedavg = _final_avg(bundled, tmp_path / "fedavg", poisoned=True)
    robust = {
        "FedMedian": _final_avg(bundled, tmp_path / "median", True, aggregation_type="FedMedian"),
        "FedTrimmedAvg": _final_avg(bundled, tmp_path / "trimmed", True, aggregation_type="FedTrimmedAvg",
                                    trim_beta=0.2),
        "Krum": _final_avg(bundled, tmp_path / "krum", True, aggregation_type="Krum", krum_byzantine=len(ATTACKERS),
                           krum_keep=CLIENTS - len(ATTACKERS)),  # Multi-Krum, m = n - f
    }
    print(f"clean FedAvg {clean:.4f}, poisoned FedAvg {fedavg:.4f}, "
          + ", ".join(f"poisoned {k} {v:.4f}" for k, v in robust.items()))
    assert clean > 0.5, "the clean run must learn for the comparison to mean anything"
    assert fedavg < clean - 0.05
    for name, avg in robust.items():
        assert avg >= clean - 0.05, (name, avg, clean)
