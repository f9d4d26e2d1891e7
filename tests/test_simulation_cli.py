"""``pyflclient simulate`` (train, inference, getModel) and ``pyflclient stop``, as a user runs them."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import LENET_MS

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pyflclient.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def seed_flags(data: Path, models: list[Path], url: str, out: Path, n: int, task: str = "train") -> list[str]:
    return ["simulate", "--train_dataset", str(data), "--train_model_path", str(models[0].parent),
            "--domain_name", url, "--client_num", str(n), "--output_dir", str(out), "--task", task,
            "--no_progress", "--batch_size", "32", "--use_elb", "false", "--server_num", "1", "--thread_num", "1"]


@pytest.fixture(scope="module")
def trained(bundled_clients, tmp_path_factory):
    """A 4-client, 2-iteration `simulate --task train` run against a loopback server that stays up."""
    from pyflclient.data import copy_models
    from pyflclient.server import Server

    tmp = tmp_path_factory.mktemp("cli")
    models = copy_models(LENET_MS, 4, tmp / "ms")
    data = bundled_clients[0].folder.parent
    srv = Server(LENET_MS, start_fl_job_threshold=4, fl_iteration_num=2, client_epoch_num=1).start()
    try:
        run = cli(*seed_flags(data, models, srv.url, tmp / "out", 4), cwd=tmp)
        yield srv, data, models, tmp, run
    finally:
        srv.stop()


def test_train_task_runs_every_client_and_saves_results(trained):
    srv, _, _, tmp, run = trained
    assert run.returncode == 0, run.stderr
    assert "iteration 2: AVG" in run.stdout
    results = json.loads((tmp / "out" / "results.json").read_text())
    assert results["status"] == {f"client_{i}": "SUCCESS" for i in range(4)}
    assert [row["iteration"] for row in results["summary"]] == [1, 2]
    assert (tmp / "out" / "results.csv").is_file() and (tmp / "out" / "accuracy.png").is_file()
    assert all((tmp / "out" / f"client_{i}" / "client.log").is_file() for i in range(4))
    assert not (tmp / "out" / "pyflclient-simulate.pid").exists()  # removed at exit


def test_inference_task_writes_the_labels_the_java_client_logged(trained):
    srv, data, models, tmp, _ = trained
    run = cli(*seed_flags(data, models, srv.url, tmp / "out", 4, task="inference"), cwd=tmp)
    assert run.returncode == 0, run.stderr
    for i in range(4):
        labels = [int(x) for x in (tmp / "out" / f"client_{i}" / "inference_labels.txt").read_text().split()]
        logged = re.findall(r"the predicted labels: (\[[^\]]*\])", (tmp / "out" / f"client_{i}" / "client.log").read_text())
        assert labels == ast.literal_eval(logged[-1]) and len(labels) > 0


def test_get_model_task_writes_the_global_model_into_each_client_file(trained):
    from pyflclient.model.msfile import trainable_weights

    srv, data, models, tmp, _ = trained
    for m in models:  # reset the files so getModel has something to do
        m.write_bytes(LENET_MS.read_bytes())
    run = cli(*seed_flags(data, models, srv.url, tmp / "out", 4, task="getModel"), cwd=tmp)
    assert run.returncode == 0, run.stderr
    final = srv.global_model()
    for m in models:
        got = trainable_weights(m)
        for name, array in final.items():
            np.testing.assert_array_equal(np.asarray(got[name]).reshape(array.shape), array)


def test_stop_stops_a_detached_simulation_by_its_recorded_pid(bundled_clients, client_models, start_server, tmp_path):
    srv = start_server(LENET_MS, start_fl_job_threshold=2, fl_iteration_num=100, client_epoch_num=100)
    models = client_models(2)
    out = tmp_path / "out"
    started = cli(*seed_flags(bundled_clients[0].folder.parent, models, srv.url, out, 2), "--detach", cwd=tmp_path,
                  timeout=120)
    assert started.returncode == 0, started.stderr
    pid = json.loads((out / "pyflclient-simulate.pid").read_text())["pid"]
    assert Path(f"/proc/{pid}").exists()
    stopped = cli("stop", "--output_dir", str(out), cwd=tmp_path, timeout=60)
    assert stopped.returncode == 0 and f"stopped the simulation (pid {pid})" in stopped.stdout, stopped.stderr
    assert not (out / "pyflclient-simulate.pid").exists()
    assert "stopped" in (out / "simulate.log").read_text()
    assert srv.iteration == 1  # nobody finished the long first iteration


def test_stop_without_a_running_simulation_says_so(tmp_path):
    run = cli("stop", "--output_dir", str(tmp_path), cwd=tmp_path)
    assert run.returncode == 1 and "no running simulation" in run.stderr


def test_one_model_file_for_many_clients_is_refused_with_the_fix(bundled_clients, client_models, tmp_path):
    models = client_models(1)
    flags = seed_flags(bundled_clients[0].folder.parent, models, "http://127.0.0.1:1", tmp_path / "o", 2)
    flags[flags.index("--train_model_path") + 1] = str(models[0])
    run = cli(*flags, cwd=tmp_path)
    assert run.returncode != 0 and "copy-models" in run.stderr


def test_a_second_simulation_in_the_same_output_dir_is_refused(bundled_clients, client_models, start_server, tmp_path):
    srv = start_server(LENET_MS, start_fl_job_threshold=2, fl_iteration_num=100, client_epoch_num=100)
    models = client_models(2)
    out = tmp_path / "out"
    flags = seed_flags(bundled_clients[0].folder.parent, models, srv.url, out, 2)
    assert cli(*flags, "--detach", cwd=tmp_path, timeout=120).returncode == 0
    try:
        second = cli(*flags, cwd=tmp_path)
        assert second.returncode == 2 and "already runs" in second.stderr
    finally:
        assert cli("stop", "--output_dir", str(out), cwd=tmp_path, timeout=60).returncode == 0


def test_bad_device_profiles_are_one_line_naming_flag_file_device_and_field(bundled_clients, client_models,
                                                                               tmp_path):
    profiles = tmp_path / "profiles.json"
    profiles.write_text('{"devices": {}, "default": {"ms_per_sample": -2}}')
    flags = seed_flags(bundled_clients[0].folder.parent, client_models(2), "http://127.0.0.1:1", tmp_path / "o", 2)
    run = cli(*flags, "--device_profiles", str(profiles), cwd=tmp_path)
    lines = [line for line in run.stderr.splitlines() if "device_profiles" in line]
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert str(profiles) in lines[0] and "'default'" in lines[0] and "'ms_per_sample'" in lines[0]
