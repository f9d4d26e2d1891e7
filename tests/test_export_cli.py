"""`pyflclient export`: the server's global model out of the project, as a MindSpore checkpoint or a .npz.

A real job (Java clients as threads of this process's JVM, the real server with a
checkpoint_dir) trains the shipped LeNet for two iterations; `pyflclient export` (a real
subprocess) writes its final model as lenet.ckpt; MindSpore loads it into examples/lenet's
LeNet5 and evaluates every client's test set: it must score what the Java clients measured
with the server's model. Missing or damaged checkpoints are one line and exit 2.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import LENET_MS

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[1]


def export(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyflclient.cli", "export", *flags], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def finished_job(bundled_clients, tmp_path_factory):
    """Two Java clients, two iterations, one epoch; the server checkpoints each iteration."""
    import pyflclient as fl
    from pyflclient.data import copy_models

    out = tmp_path_factory.mktemp("export")
    clients = bundled_clients[:2]
    models = copy_models(LENET_MS, len(clients), out / "ms")
    with fl.Server(LENET_MS, start_fl_job_threshold=2, fl_iteration_num=2, checkpoint_dir=str(out / "ckpt")) as srv:
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                 sleep_time_ms=50, client_id=f"f{i}") for i, (c, m) in enumerate(zip(clients, models))]
        results = fl.Simulation(params, output_dir=out / "run", progress=False,
                                names=[c.name for c in clients]).run(timeout=600)
        assert srv.wait_finished(timeout=30)
        final = srv.global_model(2)
    return out, clients, results, final


@pytest.mark.mindspore
def test_the_exported_ckpt_scores_in_mindspore_what_the_devices_measured(finished_job, tmp_path):
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    ms = pytest.importorskip("mindspore")
    from _model_support import working_directory
    from pyflclient.model.lenet import build_lenet5

    out, clients, results, final = finished_job
    done = export("--checkpoint-dir", str(out / "ckpt"), "--out", str(tmp_path / "lenet.ckpt"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {tmp_path / 'lenet.ckpt'}: the global model of iteration 2 (ckpt)"
    with working_directory(tmp_path):
        net = build_lenet5()
        not_loaded, _ = ms.load_param_into_net(net, ms.load_checkpoint(str(tmp_path / "lenet.ckpt")))
        assert not_loaded == []
        for name, value in final.items():  # exactly the server's model
            np.testing.assert_array_equal(net.parameters_dict()[name].asnumpy(), value)
        net.set_train(False)
        for c in clients:
            x, y = c.load_test()
            logits = net(ms.Tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).asnumpy()
            accuracy = float(np.mean(logits.argmax(axis=1) == y))
            # the Java runtime's float32 kernels may flip an argmax on a near tie: at most one sample
            assert abs(accuracy - results.accuracy[2][c.name]) <= 1 / len(y) + 1e-6, (c.name, accuracy)


def test_npz_holds_the_chosen_iterations_model(finished_job, tmp_path):
    from pyflclient.server.checkpoint import Checkpoints

    out, *_ = finished_job
    done = export("--checkpoint-dir", str(out / "ckpt"), "--iteration", "1", "--format", "npz",
                  "--out", str(tmp_path / "it1.npz"))
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "it1.npz") as saved:
        expected = Checkpoints(out / "ckpt").load(1)
        assert set(saved.files) == set(expected)
        for name in expected:
            np.testing.assert_array_equal(saved[name], expected[name])


def test_missing_or_damaged_checkpoints_are_one_line_and_exit_2(finished_job, tmp_path):
    import shutil

    out, *_ = finished_job
    damaged = tmp_path / "damaged"
    shutil.copytree(out / "ckpt", damaged)
    path = damaged / "iteration_000002.npz"
    path.write_bytes(path.read_bytes()[:-100] + b"\0" * 100)
    (tmp_path / "empty").mkdir()
    for flags, says in (
            (["--checkpoint-dir", str(tmp_path / "none")], "no such folder"),
            (["--checkpoint-dir", str(tmp_path / "empty")], "holds no iteration_*.npz"),
            (["--checkpoint-dir", str(out / "ckpt"), "--iteration", "7"], "--iteration 7: no checkpoint of it"),
            (["--checkpoint-dir", str(damaged)], "give --iteration 1 for the one before")):
        done = export(*flags, "--out", str(tmp_path / "x.ckpt"))
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
        assert not (tmp_path / "x.ckpt").exists()
    assert sorted(p.name for p in damaged.iterdir()) == sorted(p.name for p in (out / "ckpt").iterdir())  # untouched
