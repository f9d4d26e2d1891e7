"""pki_verify: r1.6's device authentication, with real keys and certificates (pyflclient.pki, ``cryptography``),
over the wire from a raw Python device. Every refusal is RequestError with its reason and changes nothing: a
signed device still takes the seat and completes the iteration afterwards."""
from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyflclient.pki import DeviceSigner, init_authority, issue_device, revoke_device
from pyflclient.server.device import DeviceClient
from pyflclient.wire.protocol import (
    ResponseCode, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest, UpdateModelResponse, now_ms,
)

from conftest import upload_of


class Authority:
    def __init__(self, folder: Path, devices: list[str]):
        init_authority(folder)
        self.folder = folder
        self.signers = {d: DeviceSigner.load(issue_device(folder, d, folder / "devices")) for d in devices}

    def settings(self, **more: Any) -> dict[str, Any]:
        return {"pki_verify": True, "root_first_ca_path": str(self.folder / "root_ca.pem"),
                "equip_crl_path": str(self.folder / "crl.pem"), **more}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("pki"), ["dev-a", "dev-b", "dev-c"])


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """Another authority: its devices' chains end in a root the server does not know."""
    return Authority(tmp_path_factory.mktemp("foreign"), ["dev-a"])


def _post(url: str, round_name: str, body: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", f"/{round_name}", body=body)
        return conn.getresponse().read()
    finally:
        conn.close()


def _start(url: str, **fields: Any) -> StartFLJobResponse:
    return StartFLJobResponse.from_bytes(_post(url, "startFLJob", StartFLJobRequest(**fields).to_bytes()))


def _signed_start(signer: DeviceSigner, fl_id: str, timestamp: str | None = None, **override: Any) -> dict[str, Any]:
    ts = timestamp or str(now_ms())
    return dict(fl_name="Lenet", fl_id=fl_id, iteration=0, data_size=4, timestamp=ts,
                **{**signer.start_fields(fl_id, ts), **override})


def _complete_round(srv: Any, signer: DeviceSigner, fl_id: str, model: dict[str, np.ndarray]) -> None:
    """The signed device joins, uploads and the iteration finishes: the refusals before changed nothing."""
    dev = DeviceClient(srv.url, fl_id=fl_id, data_size=4, signer=signer)
    try:
        joined = dev.start_fl_job()
        assert joined.retcode == ResponseCode.SUCCEED, joined.reason
        _, up = upload_of(dict(joined.weights), 4, seed=1)
        reply = dev.update_model(joined.iteration, up)
        assert reply.retcode == ResponseCode.SUCCEED, reply.reason
        assert srv.wait_iteration(joined.iteration, timeout=30)
        assert [u.fl_id for u in srv.uploads(joined.iteration)] == [fl_id]
    finally:
        dev.close()


@pytest.fixture
def pki_server(start_server, small_model, pki) -> Any:
    return start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=3, **pki.settings())


def _refused(reply: Any, words: str) -> None:
    assert reply.retcode == ResponseCode.RequestError, reply
    assert words in reply.reason, reply.reason


def test_a_signed_device_joins_uploads_and_finishes_the_iteration(pki_server, pki, small_model):
    _complete_round(pki_server, pki.signers["dev-a"], "dev-a", small_model)


def test_each_bad_start_fl_job_is_refused_with_its_reason_and_changes_nothing(pki_server, pki, foreign, small_model):
    url, a, b = pki_server.url, pki.signers["dev-a"], pki.signers["dev-b"]
    _refused(_start(url, fl_name="Lenet", fl_id="dev-a", iteration=0, data_size=4, timestamp=str(now_ms())),
             "carries no sign_data")
    _refused(_start(url, **_signed_start(foreign.signers["dev-a"], "dev-a")), "not issued by root_first_ca_path")
    _refused(_start(url, **_signed_start(b, "dev-a")), "is not the one in equip_cert")  # b's cert, a's fl_id
    forged = _signed_start(a, "dev-a")
    _refused(_start(url, **{**forged, "timestamp": str(int(forged["timestamp"]) + 1)}), "sign_data does not match")
    _refused(_start(url, **_signed_start(a, "dev-a", sign_data=b.sign(b"dev-a 1"))), "sign_data does not match")
    # a chain with b's attestation under a's equip_cert: not issued by it
    _refused(_start(url, **_signed_start(a, "dev-a", key_attestation=b.key_attestation)), "not issued by equip_cert")
    old = str(now_ms() - 700_000)  # replay_attack_time_diff is 600 s
    _refused(_start(url, **_signed_start(a, "dev-a", timestamp=old)), "outside replay_attack_time_diff")
    _refused(_start(url, **_signed_start(a, "dev-a", equip_cert="garbage")), "equip_cert is not a PEM certificate")
    assert pki_server.core.transport.faults.counts["startFLJob refused"] == 8
    _complete_round(pki_server, a, "dev-a", small_model)


def test_a_replayed_start_fl_job_is_refused(pki_server, pki):
    body = StartFLJobRequest(**_signed_start(pki.signers["dev-b"], "dev-b")).to_bytes()
    first = StartFLJobResponse.from_bytes(_post(pki_server.url, "startFLJob", body))
    assert first.retcode == ResponseCode.SUCCEED, first.reason
    _refused(StartFLJobResponse.from_bytes(_post(pki_server.url, "startFLJob", body)), "replayed startFLJob")


def test_bad_and_replayed_uploads_are_refused(pki_server, pki, small_model):
    a = pki.signers["dev-a"]
    joined = _start(pki_server.url, **_signed_start(a, "dev-a"))
    assert joined.retcode == ResponseCode.SUCCEED
    it = joined.iteration
    _, up = upload_of(dict(joined.weights), 4, seed=2)

    def upload(**fields: Any) -> UpdateModelResponse:
        req = UpdateModelRequest(**{"fl_name": "Lenet", "fl_id": "dev-a", "iteration": it, "weights": up,
                                    "timestamp": str(now_ms()), **fields})
        return UpdateModelResponse.from_bytes(_post(pki_server.url, "updateModel", req.to_bytes()))

    _refused(upload(), "carries no signature")
    ts = str(now_ms())
    _refused(upload(timestamp=ts, signature=a.update_signature(ts, it + 1)), "signature does not match")
    _refused(upload(timestamp=ts, signature=pki.signers["dev-b"].update_signature(ts, it)), "signature does not match")
    _refused(upload(fl_id="dev-c", timestamp=ts, signature=pki.signers["dev-c"].update_signature(ts, it)),
             "no signed startFLJob of 'dev-c'")
    old = str(now_ms() - 700_000)
    _refused(upload(timestamp=old, signature=a.update_signature(old, it)), "outside replay_attack_time_diff")
    assert not pki_server.uploads(it)
    signature = a.update_signature(ts, it)
    assert upload(timestamp=ts, signature=signature).retcode == ResponseCode.SUCCEED
    _refused(upload(timestamp=ts, signature=signature), "replayed updateModel")
    assert pki_server.wait_iteration(it, timeout=30)


def test_a_revoked_device_is_refused_from_its_next_request(start_server, small_model, tmp_path):
    """Revoked before: its startFLJob is refused. Revoked after joining: its upload is refused (the CRL is read
    again when the file changes), and the other device's round goes on."""
    pki = Authority(tmp_path / "pki", ["dev-a", "dev-b", "dev-r"])
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=2, **pki.settings())
    revoke_device(pki.folder, "dev-r")
    os.utime(pki.folder / "crl.pem", (1, 1))  # a new mtime even within the file system's clock tick
    _refused(_start(srv.url, **_signed_start(pki.signers["dev-r"], "dev-r")), "is revoked")
    devices = {d: DeviceClient(srv.url, fl_id=d, data_size=4, signer=pki.signers[d]) for d in ("dev-a", "dev-b")}
    joined = {d: dev.start_fl_job() for d, dev in devices.items()}
    assert all(j.retcode == ResponseCode.SUCCEED for j in joined.values())
    revoke_device(pki.folder, "dev-b")
    os.utime(pki.folder / "crl.pem", (2, 2))
    it = joined["dev-a"].iteration
    _, up = upload_of(dict(joined["dev-a"].weights), 4, seed=3)
    _refused(devices["dev-b"].update_model(it, up), "is revoked")
    assert devices["dev-a"].update_model(it, up).retcode == ResponseCode.SUCCEED
    assert [u.fl_id for u in srv.uploads(it)] == ["dev-a"]
    for dev in devices.values():
        dev.close()


def test_pki_settings_are_checked_at_start(pki, small_model):
    from pyflclient.server.config import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match="root_first_ca_path"):
        ServerConfig(pki_verify=True)
    with pytest.raises(ConfigError, match="equip_crl_path"):
        ServerConfig(**pki.settings(equip_crl_path="/no/such/crl.pem"))


def test_two_server_processes_in_a_redis_group_share_the_replay_window_and_the_keys(tmp_path, redis_server, pki):
    """Two ``pyflclient server`` processes on one Redis: a startFLJob accepted by the first is a replay to the
    second; the device's upload to the second is verified with the key the first accepted."""
    from test_server_connections import ServerProcess

    flags = ["--pki-verify", "true", "--root-first-ca-path", str(pki.folder / "root_ca.pem"),
             "--equip-crl-path", str(pki.folder / "crl.pem"), "--distributed-cache-address", redis_server.address,
             "--start-fl-job-threshold", "1", "--fl-iteration-num", "2"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, two = ServerProcess(tmp_path / "one", *flags), ServerProcess(tmp_path / "two", *flags)
    try:
        signer = pki.signers["dev-c"]
        body = StartFLJobRequest(**_signed_start(signer, "dev-c")).to_bytes()
        joined = StartFLJobResponse.from_bytes(_post(one.url, "startFLJob", body))
        assert joined.retcode == ResponseCode.SUCCEED, joined.reason
        _refused(StartFLJobResponse.from_bytes(_post(two.url, "startFLJob", body)), "replayed startFLJob")
        _, up = upload_of(dict(joined.weights), 4, seed=4)
        ts = str(now_ms())
        req = UpdateModelRequest("Lenet", "dev-c", joined.iteration, up, ts,
                                 signature=signer.update_signature(ts, joined.iteration))
        reply = UpdateModelResponse.from_bytes(_post(two.url, "updateModel", req.to_bytes()))
        assert reply.retcode == ResponseCode.SUCCEED, reply.reason
        _refused(UpdateModelResponse.from_bytes(_post(one.url, "updateModel", req.to_bytes())), "replayed updateModel")
    finally:
        one.stop()
        two.stop()


def test_signed_devices_complete_a_pw_encrypt_iteration_and_an_unsigned_upload_is_refused(start_server, small_model,
                                                                                         tmp_path):
    """pki_verify with PW_ENCRYPT: four certified devices run the cipher rounds and their signed masked uploads
    are accepted; the sum unmasks to their FedAvg. A masked upload without a signature is refused."""
    from pyflclient.server.device import MaskingDevice
    from test_server_secure_aggregation import assert_close, pw_iteration

    from conftest import fedavg_of

    pki = Authority(tmp_path / "pki", [f"dev-{i}" for i in range(4)])
    srv = start_server(small_model, start_fl_job_threshold=4, encrypt_type="PW_ENCRYPT", **pki.settings())
    devices = [MaskingDevice(srv.url, fl_id=f"dev-{i}", data_size=20 + 7 * i, signer=pki.signers[f"dev-{i}"])
               for i in range(4)]
    unsigned = DeviceClient(srv.url, fl_id="dev-0", data_size=20)
    try:
        _refused(unsigned.update_model(1, small_model), "carries no signature")
        k, plain = pw_iteration(srv, devices)
        assert srv.wait_iteration(k, timeout=30)
        assert_close(srv.global_model(k), fedavg_of(list(plain.values()), [d.data_size for d in devices]))
    finally:
        unsigned.close()
        for d in devices:
            d.close()
