"""The main job: `pyflclient demo` end to end, as a user runs it.

A fresh process (its own JVM) runs the demo with 8 clients for 3 iterations of 1
epoch: bundled data, the shipped LeNet, an in-process server, clients as threads;
then the files a user looks at are checked for what they must say.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyflclient.model import LENET_TRAIN_MS, trainable_weights
from pyflclient.client.results import SimulationResults

CLIENTS, ITERATIONS = 8, 3


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "pyflclient.cli", "demo", "--clients", str(CLIENTS), "--iterations", str(ITERATIONS),
         "--epochs", "1", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return out, proc


def test_demo_reports_every_iteration_with_avg_top5_low5(demo_run) -> None:
    out, proc = demo_run
    logged = proc.stdout + proc.stderr
    for k in range(1, ITERATIONS + 1):
        assert f"iteration {k}: AVG" in logged
    assert "TOP5" in logged and "LOW5" in logged
    assert "demo finished" in proc.stdout


def test_demo_writes_results_json_csv_and_plot(demo_run) -> None:
    out, _ = demo_run
    results = SimulationResults.load_json(out / "results.json")
    summary = results.summary()
    assert [s.iteration for s in summary] == list(range(1, ITERATIONS + 1))
    assert all(s.clients == CLIENTS for s in summary)
    for s in summary:
        assert 0.0 <= s.low5 <= s.avg <= s.top5 <= 1.0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, "results.csv is empty"
    png = (out / "accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_demo_leaves_one_log_per_client_with_the_seed_lines(demo_run) -> None:
    out, _ = demo_run
    for i in range(CLIENTS):
        text = (out / f"client_{i}" / "client.log").read_text()
        assert "[startFLJob] startFLJob succeed, curIteration: 1" in text
        assert "average loss:" in text
        assert "[evaluate] evaluate acc:" in text


def test_demo_checkpoints_a_trained_global_model_per_iteration(demo_run) -> None:
    out, _ = demo_run
    metrics = [json.loads(line) for line in (out / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == list(range(1, ITERATIONS + 1))
    assert all(m["uploaded"] == CLIENTS for m in metrics)
    # every client's copy ends with the final global model, which moved away from the shipped start
    start = trainable_weights(LENET_TRAIN_MS)
    final = trainable_weights(out / "ms" / "lenet_train0.ms")
    for i in range(1, CLIENTS):
        other = trainable_weights(out / "ms" / f"lenet_train{i}.ms")
        for name in final:
            np.testing.assert_array_equal(other[name], final[name])
    assert any(not np.allclose(start[n], final[n]) for n in start)
