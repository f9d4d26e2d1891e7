"""Server settings (MindSpore set_fl_context names) and the `pyflclient server` command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyflclient.wire.protocol import ResponseCode
from pyflclient.server.config import ConfigError, ServerConfig

from conftest import upload_of

REPO = Path(__file__).resolve().parent.parent


def test_finish_count_is_ceil_of_threshold_times_ratio():
    assert ServerConfig(start_fl_job_threshold=50, update_model_ratio=1.0).update_model_threshold == 50
    assert ServerConfig(start_fl_job_threshold=5, update_model_ratio=0.5).update_model_threshold == 3
    assert ServerConfig(start_fl_job_threshold=10, update_model_ratio=0.3).update_model_threshold == 3


@pytest.mark.parametrize("key, value, words", [
    ("start_fl_job_threshold", 0, "at least 1"),
    ("update_model_ratio", 1.5, "(0, 1]"),
    ("encrypt_type", "SSL_ENCRYPT", "PW_ENCRYPT"),
    ("reconstruct_secrets_threshold", 9, "0..start_fl_job_threshold"),
    ("dp_delta", 1.5, "(0, 1)"),
    ("share_secrets_ratio", 0, "(0, 1]"),
    ("server_mode", "HYBRID_TRAINING", "FEDERATED_LEARNING"),
    ("ssl_cert", "cert.pem", "both ssl_cert and ssl_key"),
    ("start_fl_job_time_window", "10x", "expected int"),
    ("admission_policy", "fastest", "first_come"),
    ("admission_window_ms", 60_000, "60 s HTTP timeout"),
])
def test_bad_setting_names_the_key_and_what_is_accepted(key, value, words):
    with pytest.raises(ConfigError, match=key) as err:
        ServerConfig.from_mapping({key: value})
    assert words in str(err.value)


def test_unknown_setting_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown server setting.*start_fl_job_threshold"):
        ServerConfig.from_mapping({"start_fl_job_treshold": 3})


def _server_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", "import sys; from pyflclient.cli import main; sys.exit(main())",
                             "server", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _listening_url(proc: subprocess.Popen[str]) -> str:
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("listening on "):
            return line.split()[2]
    raise AssertionError(f"the server printed no address; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]


def test_cli_flags_override_the_config_file_and_one_line_per_iteration_is_printed(tmp_path, device, small_model):
    np.savez(tmp_path / "init.npz", **small_model)
    (tmp_path / "server.yaml").write_text(
        "model: init.npz\nstart_fl_job_threshold: 5\nfl_iteration_num: 1\nclient_epoch_num: 7\n")
    proc = _server_cli("--config", "server.yaml", "--start-fl-job-threshold", "1", "--checkpoint-dir", "ckpt",
                       "--linger", "0", cwd=tmp_path)
    try:
        url = _listening_url(proc)
        d = device(url, data_size=2)
        joined = d.start_fl_job()
        assert joined.retcode == ResponseCode.SUCCEED
        assert joined.plan.epochs == 7  # from the file
        _, up = upload_of(dict(joined.weights), 2, seed=1)
        assert d.update_model(1, up).retcode == ResponseCode.SUCCEED  # threshold 1 from the flag: done
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "iteration 1: valid, 1 admitted, 1 uploaded" in out
    assert (tmp_path / "ckpt" / "iteration_000001.npz").exists()


def test_cli_stops_cleanly_on_sigterm(tmp_path, small_model):
    np.savez(tmp_path / "init.npz", **small_model)
    proc = _server_cli("--model", "init.npz", cwd=tmp_path)
    try:
        _listening_url(proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "server stopped" in out


def test_cli_without_a_model_says_what_to_give(tmp_path):
    proc = _server_cli(cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--model" in err


def test_distributed_cache_address_takes_host_port_or_a_redis_url():
    assert ServerConfig(distributed_cache_address="127.0.0.1:6379").distributed_cache_address == "127.0.0.1:6379"
    assert ServerConfig(distributed_cache_address="redis://10.0.0.5:6380/2").distributed_cache_address
    with pytest.raises(ConfigError, match="distributed_cache_address.*host:port"):
        ServerConfig(distributed_cache_address="127.0.0.1:sixty")


def test_the_yaml_key_distributed_cache_address_is_mindspore_federateds(tmp_path):
    import argparse

    from pyflclient.server.cli import register, settings_from

    (tmp_path / "server.yaml").write_text("model: m.npz\ndistributed_cache:\n  address: 127.0.0.1:6390\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    _, config = settings_from(parser.parse_args(["server", "--config", str(tmp_path / "server.yaml")]))
    assert config.distributed_cache_address == "127.0.0.1:6390"


def test_the_cipher_settings_come_from_yaml_and_flags_with_mindsporess_names(tmp_path):
    import argparse
    import math

    from pyflclient.server.cli import register, settings_from

    (tmp_path / "server.yaml").write_text("model: m.npz\nstart_fl_job_threshold: 8\nencrypt_type: PW_ENCRYPT\n"
                                          "share_secrets_ratio: 0.9\nreconstruct_secrets_threshold: 4\n"
                                          "cipher_time_window: 5000\ndp_eps: .inf\ndp_delta: 0.001\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    _, config = settings_from(parser.parse_args(["server", "--config", str(tmp_path / "server.yaml"),
                                                 "--cipher-time-window", "7000", "--dp-norm-clip", "2.5"]))
    assert (config.encrypt_type, config.share_secrets_ratio, config.secret_threshold, config.cipher_time_window,
            config.dp_delta, config.dp_norm_clip) == ("PW_ENCRYPT", 0.9, 4, 7000, 0.001, 2.5)
    assert math.isinf(config.dp_eps)
    assert ServerConfig(start_fl_job_threshold=8).secret_threshold == 5  # 0: a majority
    with pytest.raises(ConfigError, match="max_update_norm"):
        ServerConfig(encrypt_type="PW_ENCRYPT", start_fl_job_threshold=4, max_update_norm=1.0)
    with pytest.raises(ConfigError, match="at least 2 with PW_ENCRYPT"):
        ServerConfig(encrypt_type="PW_ENCRYPT", start_fl_job_threshold=4, reconstruct_secrets_threshold=1)
