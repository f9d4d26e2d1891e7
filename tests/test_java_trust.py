"""The Java client against the server's trust boundary, over real JVMs: plain HTTP on the HTTPS port fails at
once with what to check (not retried as an outage)."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from _recording import RecordingServer
from test_java_client_e2e import LENET, java_client, make_device


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr[-200:]!r}")
    return cert, key


def test_a_java_client_speaking_http_to_the_https_port_fails_at_once_saying_what_to_check(tmp_path: Path) -> None:
    """http:// to an HTTPS server: the client ends within 30 s (it used to retry for 300 s), its log names the
    cause (HTTPS only) and the settings to check (--domainName https://, --certPath), and nothing is retried."""
    cert, key = _self_signed(tmp_path)
    device = make_device(tmp_path, 0)
    with RecordingServer(LENET, start_fl_job_threshold=1, fl_iteration_num=1, client_batch_size=32,
                         ssl_cert=str(cert), ssl_key=str(key)) as srv:
        plain = srv.url.replace("https://", "http://")
        t0 = time.monotonic()
        proc = subprocess.run(java_client(device, plain, "train"), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
    log = device.log.read_text() if device.log.exists() else proc.stdout + proc.stderr
    assert took < 30, took
    assert "HTTPS only" in log and "--domainName (use https://)" in log and "--certPath" in log, log[-2000:]
    assert "retrying in" not in log, log[-2000:]
