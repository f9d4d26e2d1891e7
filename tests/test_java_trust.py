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


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pyflclient.pki import init_authority, issue_device

    folder = tmp_path_factory.mktemp("pki")
    init_authority(folder)
    for i in range(2):
        issue_device(folder, f"f{i}", folder / "devices")  # make_device(i)'s fl_id
    return folder


def _pki_server(authority: Path, **more: object) -> RecordingServer:
    settings = {"start_fl_job_threshold": 1, "fl_iteration_num": 1, "client_batch_size": 32, **more}
    return RecordingServer(LENET, pki_verify=True, root_first_ca_path=str(authority / "root_ca.pem"),
                           equip_crl_path=str(authority / "crl.pem"), **settings)


def test_a_java_client_signs_with_jca_and_trains_against_a_pki_verify_server(tmp_path: Path, authority: Path) -> None:
    """--pkiVerify true --pkiPath DIR: the JVM signs startFLJob and updateModel (RSASSA-PSS), the server verifies
    the chain, the fl_id, the signature and the timestamp, and the job completes with the device's upload."""
    device = make_device(tmp_path, 0)
    assert device.fl_id == "f0"
    with _pki_server(authority) as srv:
        proc = subprocess.run(java_client(device, srv.url, "train", "--pkiVerify", "true", "--pkiPath",
                                          str(authority / "devices" / "f0")),
                              capture_output=True, text=True, timeout=300)
        log = device.log.read_text() if device.log.exists() else proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-3000:]
        assert [u.fl_id for u in srv.uploads(1)] == ["f0"]
        assert not srv.core.transport.faults.counts, srv.core.transport.faults.counts


def test_a_java_client_without_pki_or_with_another_devices_folder_is_refused(tmp_path: Path, authority: Path) -> None:
    """Unsigned: refused (RequestError, 'carries no sign_data'); signing with f1's folder as f0: the
    fl_id is not the certificate's. Both end at once, the server takes nothing."""
    device = make_device(tmp_path, 0)
    with _pki_server(authority) as srv:
        for extra, words in (((), "carries no sign_data"),
                             (("--pkiVerify", "true", "--pkiPath", str(authority / "devices" / "f1")),
                              "is not the one in equip_cert")):
            proc = subprocess.run(java_client(device, srv.url, "train", *extra), capture_output=True, text=True,
                                  timeout=120)
            log = device.log.read_text() if device.log.exists() else proc.stdout + proc.stderr
            assert proc.returncode != 0 and words in log, log[-2000:]
        assert not srv.uploads(1)


def test_a_revoked_java_device_ends_at_start_saying_so(tmp_path: Path, authority: Path) -> None:
    """Revoked: without the CRL on the device the server refuses its startFLJob ('is revoked'); with
    --equipCrlPath the device ends before sending anything."""
    from pyflclient.pki import issue_device, revoke_device

    issue_device(authority, "f1", authority / "devices")  # a fresh certificate, then revoked
    revoke_device(authority, "f1")
    device = make_device(tmp_path, 1)
    with _pki_server(authority) as srv:
        proc = subprocess.run(java_client(device, srv.url, "train", "--pkiVerify", "true", "--pkiPath",
                                          str(authority / "devices" / "f1")), capture_output=True, text=True,
                              timeout=120)
        out = proc.stdout + proc.stderr + (device.log.read_text() if device.log.exists() else "")
        assert proc.returncode != 0 and "is revoked (equip_crl_path)" in out, out[-2000:]
        assert srv.core.transport.faults.counts["startFLJob refused"] == 1
        if device.log.exists():
            device.log.unlink()  # the next run's log only
        proc = subprocess.run(java_client(device, srv.url, "train", "--pkiVerify", "true", "--pkiPath",
                                          str(authority / "devices" / "f1"), "--equipCrlPath",
                                          str(authority / "crl.pem")), capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr + (device.log.read_text() if device.log.exists() else "")
        assert proc.returncode != 0 and "this device's certificate" in out and "is revoked" in out, out[-2000:]
        assert srv.core.transport.faults.counts["startFLJob refused"] == 1  # nothing sent this time
        assert not srv.uploads(1)


def test_simulate_signs_each_device_with_its_own_certificate_from_a_folder(bundled_clients, tmp_path: Path) -> None:
    """``pyflclient simulate --pki_dir DIR``: 3 simulated devices (Java threads of one JVM) each sign with
    DIR/<fl_id>/ against a pki_verify server, and all three uploads of the iteration are accepted."""
    import os
    import sys

    from pyflclient.data import copy_models
    from pyflclient.pki import init_authority, issue_device

    from conftest import LENET_MS

    data = bundled_clients[0].folder.parent
    names = sorted(p.name for p in data.iterdir() if p.is_dir())[:3]
    init_authority(tmp_path / "pki")
    for i, name in enumerate(names):
        issue_device(tmp_path / "pki", f"f{i}_{name}", tmp_path / "devices")
    models = copy_models(LENET_MS, 3, tmp_path / "ms")
    with _pki_server(tmp_path / "pki", start_fl_job_threshold=3) as srv:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        run = subprocess.run([sys.executable, "-m", "pyflclient.cli", "simulate", "--train_dataset", str(data),
                              "--train_model_path", str(models[0].parent), "--domain_name", srv.url,
                              "--client_num", "3", "--output_dir", str(tmp_path / "out"), "--no_progress",
                              "--batch_size", "32", "--pki_dir", str(tmp_path / "devices")],
                             cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert sorted(u.fl_id for u in srv.uploads(1)) == [f"f{i}_{n}" for i, n in enumerate(names)]


@pytest.mark.parametrize("encrypt", ["NOT_ENCRYPT", "PW_ENCRYPT"])
def test_demo_pki_runs_every_client_signed(tmp_path: Path, encrypt: str) -> None:
    """``pyflclient demo --pki``: a certificate per client, the server with pki_verify, 4 clients x 2 iterations,
    every client takes part in both (every signed request accepted), with PW_ENCRYPT's masked uploads too."""
    import json
    import os
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-m", "pyflclient.cli", "demo", "--clients", "4", "--iterations", "2",
                           "--epochs", "1", "--out", str(tmp_path / "demo"), "--no-progress", "--pki",
                           "--encrypt-type", encrypt],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["participation"] == {f"client_{i}": 2 for i in range(4)}
    assert len(list((tmp_path / "demo" / "pki" / "devices").iterdir())) == 4
