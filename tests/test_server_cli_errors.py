"""``pyflclient server`` fails in one line: what is wrong and what to do, an exit code, no traceback.

Each test runs the real console entry (``python -m pyflclient.cli server ...``) in its own process.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyflclient.server.checkpoint import Checkpoints

from conftest import LENET_MS


def server(*args: str, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pyflclient.cli"] + (["-v"] if verbose else []) + ["server", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def assert_one_line_failure(run: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    lines = run.stderr.splitlines()
    assert run.returncode == code, run.stderr
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("pyflclient server: ")
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture
def npz_model(tmp_path: Path, small_model: dict[str, np.ndarray]) -> str:
    path = tmp_path / "model.npz"
    np.savez(path, **small_model)
    return str(path)


def test_missing_model_file(tmp_path):
    assert_one_line_failure(server("--model", str(tmp_path / "missing.npz")), 2, "no such model file", ".ms")


def test_model_file_that_is_not_a_model(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert_one_line_failure(server("--model", str(tmp_path / "model.npz")), 2, "cannot read it as a .npz model")


def test_bad_setting_value(npz_model):
    assert_one_line_failure(server("--model", npz_model, "--start-fl-job-threshold", "0"), 2,
                            "start_fl_job_threshold=0", "at least 1")


def test_config_file_that_is_not_yaml(npz_model, tmp_path):
    (tmp_path / "server.yaml").write_text("fl_server_port: [1,\n  {")
    assert_one_line_failure(server("--model", npz_model, "--config", str(tmp_path / "server.yaml")), 2,
                            "not valid YAML")


def test_unknown_key_in_the_config_file(npz_model, tmp_path):
    (tmp_path / "server.yaml").write_text("start_fl_job_treshold: 3\n")
    assert_one_line_failure(server("--model", npz_model, "--config", str(tmp_path / "server.yaml")), 2,
                            "unknown server setting", "start_fl_job_treshold")


def test_checkpoint_dir_of_another_model(npz_model, tmp_path):
    Checkpoints(tmp_path / "ckpt").save(1, {"other.weight": np.ones(3, np.float32)})
    assert_one_line_failure(server("--model", npz_model, "--checkpoint-dir", str(tmp_path / "ckpt")), 2,
                            "different model", "use another checkpoint_dir")


def test_checkpoint_dir_without_a_valid_checkpoint(npz_model, small_model, tmp_path):
    ckpt = Checkpoints(tmp_path / "ckpt")
    ckpt.save(1, small_model)
    ckpt.path(1).write_bytes(b"")
    assert_one_line_failure(server("--model", npz_model, "--checkpoint-dir", str(tmp_path / "ckpt")), 2,
                            "no valid checkpoint", "move the folder away")


def test_checkpoint_dir_that_is_a_file(npz_model, tmp_path):
    (tmp_path / "ckpt").write_text("a file")
    assert_one_line_failure(server("--model", npz_model, "--checkpoint-dir", str(tmp_path / "ckpt")), 2,
                            "checkpoint_dir", "give a folder path")


def test_port_in_use(npz_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        run = server("--model", npz_model, "--fl-server-port", str(taken.getsockname()[1]), "--linger", "0")
    assert_one_line_failure(run, 1, "cannot listen", "choose another fl_server_port")


def test_client_batch_size_other_than_the_ms_models():
    assert_one_line_failure(server("--model", str(LENET_MS), "--client-batch-size", "16"), 2,
                            "client_batch_size", "batch 32")


def test_missing_certificate_file(npz_model, tmp_path):
    assert_one_line_failure(server("--model", npz_model, "--ssl-cert", str(tmp_path / "c.pem"),
                                   "--ssl-key", str(tmp_path / "k.pem")), 2, "ssl_cert", "no such file")


def test_verbose_shows_the_traceback_too(tmp_path):
    run = server("--model", str(tmp_path / "missing.npz"), verbose=True)
    assert run.returncode == 2
    assert "Traceback" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("pyflclient server: ")


def test_a_corrupt_newest_checkpoint_is_a_warning_and_the_server_serves_the_previous_one(
        npz_model, small_model, tmp_path):
    ckpt = Checkpoints(tmp_path / "ckpt")
    ckpt.save(1, small_model)
    ckpt.save(2, small_model)
    ckpt.path(2).write_bytes(ckpt.path(2).read_bytes()[:-10])
    run = server("--model", npz_model, "--checkpoint-dir", str(tmp_path / "ckpt"), "--fl-iteration-num", "1",
                 "--linger", "0")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    warning, = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert "iteration_000002.npz" in warning and "set aside" in warning
    assert "already finished" in run.stdout  # resumed after iteration 1, the job's last


@pytest.mark.parametrize("flags, says", [
    (["--clients", "0"], "--clients 0: must be at least 1"),
    (["--iterations", "-2"], "--iterations -2: must be at least 1"),
    (["--epochs", "0"], "--epochs 0: must be at least 1"),
    (["--lr", "nan"], "--lr nan: must be a positive number"),
    (["--alpha", "0"], "--alpha 0.0: must be a positive number"),
    (["--eval-fraction", "1.5"], "--eval-fraction 1.5: must be in (0, 1]"),
    (["--max-trainers", "0"], "--max-trainers 0: must be at least 1"),
    (["--model", "/no/such.ms"], "--model /no/such.ms: no such file"),
    (["--iterations", "x"], "argument --iterations: invalid int value: 'x'"),
    (["--encrypt-type", "FOO"], "encrypt_type='FOO': one of NOT_ENCRYPT, PW_ENCRYPT, DP_ENCRYPT"),
    (["--encrypt-type", "DP_ENCRYPT", "--dp-eps", "-1"], "dp_eps=-1.0: must be > 0"),
])
def test_every_bad_demo_flag_is_one_line_and_exit_2(flags, says, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pyflclient.cli", "demo", "--out", str(tmp_path), *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("pyflclient demo: ") and says in proc.stderr, \
        proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_server_prints_its_dashboard_and_no_dashboard_turns_it_off(npz_model, tmp_path):
    import urllib.error
    import urllib.request

    for flags, served in (([], True), (["--no-dashboard"], False)):
        proc = subprocess.Popen([sys.executable, "-m", "pyflclient.cli", "server", "--model", str(npz_model),
                                 "--fl-iteration-num", "1", *flags], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
            line = proc.stdout.readline()
            assert line.startswith("dashboard: http://127.0.0.1:") and line.rstrip().endswith("/metrics)"), line
            url = line.split()[1]
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    assert served and b"dashboard.js" in resp.read()
            except urllib.error.HTTPError as err:
                assert not served and err.code == 404
            with urllib.request.urlopen(url + "metrics", timeout=10) as resp:
                assert b"pyflclient_iteration 1.0" in resp.read()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
