"""benchmarks/async_bench.py's AVG is the devices' AVG.

Its first version evaluated the checkpoints on the bin files' NHWC images fed to the NCHW LeNet,
so every mode read as chance accuracy (0.13 where the devices reported 0.85). Here a short job of
real Java devices reports each device's accuracy of each global model; the bench's evaluator,
given the same device's test set and the same checkpoint, must give the same number.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import pyflclient as fl

from conftest import LENET_MS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_the_bench_evaluator_gives_each_device_its_own_accuracy(bundled_clients, client_models, tmp_path) -> None:
    import async_bench

    from pyflclient.server.checkpoint import Checkpoints

    n, iterations = 4, 3
    clients = bundled_clients[:n]
    with fl.Server(LENET_MS, start_fl_job_threshold=n, fl_iteration_num=iterations, client_epoch_num=5,
                   client_learning_rate=0.05, checkpoint_dir=str(tmp_path / "ckpt")) as srv:
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, test_dataset=c.folder,
                                 train_model_path=m, batch_size=32, sleep_time_ms=50, client_id=f"d{i}")
                  for i, (c, m) in enumerate(zip(clients, client_models(n)))]
        results = fl.Simulation(params, output_dir=tmp_path / "run", max_trainers=2, progress=False).run(timeout=600)
    ckpt = Checkpoints(tmp_path / "ckpt")
    per_device = [async_bench.Evaluator(async_bench._test_sets([c], 1)) for c in clients]
    reported = results.accuracy[iterations]
    assert len(reported) == n, reported
    assert max(reported.values()) > 0.3  # trained past chance: a wrong layout could not match by luck
    model = ckpt.load(iterations)
    for name, evaluator in zip(sorted(reported), per_device):
        assert evaluator.accuracy(model) == pytest.approx(reported[name], abs=1e-6), name
