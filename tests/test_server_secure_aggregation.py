"""PW_ENCRYPT on a real server over loopback, driven by protocol devices that do the cipher rounds
(pyflclient.server.device.MaskingDevice): the server learns the FedAvg of the uploads and nothing else,
survives a device that vanishes after shareSecrets, and refuses bad cipher requests without a state change."""
from __future__ import annotations

import time

import numpy as np
import pytest

from pyflclient.server.device import MaskingDevice
from pyflclient.wire import secagg
from pyflclient.wire.protocol import ResponseCode

from conftest import fedavg_of, upload_of

DEVICES = 8


def ready(call, *args, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """The device's poll of a get* round: ask again while the server says SucNotReady."""
    deadline = time.monotonic() + timeout
    while True:
        reply = call(*args)
        if isinstance(reply, str) or reply["retcode"] != ResponseCode.SucNotReady or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


@pytest.fixture
def masking_devices():  # type: ignore[no-untyped-def]
    made: list[MaskingDevice] = []

    def make(url: str, n: int = DEVICES) -> list[MaskingDevice]:
        out = [MaskingDevice(url, fl_id=f"dev-{i}", data_size=20 + 7 * i) for i in range(n)]
        made.extend(out)
        return out

    yield make
    for d in made:
        d.close()


def pw_iteration(srv, devices, *, vanish_after_share=(), upload_only=None, seed=0):  # type: ignore[no-untyped-def]
    """One PW_ENCRYPT iteration of ``devices``; returns {fl_id: plain upload} of the devices that uploaded."""
    joined = [d.start_fl_job() for d in devices]
    assert all(j.retcode == ResponseCode.SUCCEED for j in joined), [j.reason for j in joined]
    k, t = joined[0].iteration, joined[0].plan.t
    for d in devices:
        assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
    for d in devices:
        assert ready(d.get_keys, k)["retcode"] == ResponseCode.SUCCEED
    for d in devices:
        reply = d.share_secrets(k, t)
        assert reply["retcode"] == ResponseCode.SUCCEED, reply["reason"]
    alive = [d for d in devices if d.fl_id not in vanish_after_share]
    for d in alive:
        assert ready(d.get_secrets, k)["retcode"] == ResponseCode.SUCCEED
    uploaders = alive if upload_only is None else alive[:upload_only]
    plain = {}
    for i, d in enumerate(uploaders):
        _, up = upload_of(dict(joined[0].weights), d.data_size, seed * 100 + i)
        plain[d.fl_id] = up
        reply = d.update_model(k, d.masked(k, up))
        assert reply.retcode == ResponseCode.SUCCEED, reply.reason
    for d in uploaders:
        listed = ready(d.get_client_list, k)
        if isinstance(listed, str) or listed["retcode"] != ResponseCode.SUCCEED:
            break  # the iteration ended invalid: no list to read
        reply = d.reconstruct_secrets(k, listed["clients"])
        if reply["retcode"] != ResponseCode.SUCCEED:
            break
    return k, plain


def assert_close(got, want, rel=1e-5):  # type: ignore[no-untyped-def]
    worst = max(float(np.max(np.abs(np.ravel(got[n]) - np.ravel(want[n])) / (np.abs(np.ravel(want[n])) + 1e-3)))
                for n in want)
    assert worst < rel, f"largest relative difference {worst:.3g}"
    return worst


def test_the_masked_uploads_sum_to_the_fedavg_of_the_plain_uploads(start_server, masking_devices, small_model):
    srv = start_server(small_model, start_fl_job_threshold=DEVICES, fl_iteration_num=2, encrypt_type="PW_ENCRYPT")
    devices = masking_devices(srv.url)
    for seed in (1, 2):
        k, plain = pw_iteration(srv, devices, seed=seed)
        assert srv.wait_iteration(k, timeout=30)
        sizes = {d.fl_id: d.data_size for d in devices}
        assert_close(srv.global_model(k), fedavg_of(list(plain.values()), [sizes[f] for f in plain]))


def test_what_the_server_receives_from_a_device_is_uncorrelated_with_its_update(start_server, masking_devices,
                                                                               lenet_weights):
    srv = start_server(lenet_weights, start_fl_job_threshold=3, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       reconstruct_secrets_threshold=2)
    devices = masking_devices(srv.url, 3)
    k, plain = pw_iteration(srv, devices)
    assert srv.wait_iteration(k, timeout=30)
    for recorded in srv.uploads(k):
        received = secagg.dequantise(np.concatenate([secagg.wire_to_ring(np.reshape(recorded.weights[n], -1))
                                                     for n in sorted(lenet_weights)]))
        true = secagg.flatten(plain[recorded.fl_id])
        assert abs(np.corrcoef(received, true)[0, 1]) < 0.01


def test_a_device_that_vanishes_after_share_secrets_leaves_the_fedavg_of_the_others(start_server, masking_devices,
                                                                                    small_model):
    srv = start_server(small_model, start_fl_job_threshold=DEVICES, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       update_model_ratio=(DEVICES - 1) / DEVICES, reconstruct_secrets_threshold=5)
    devices = masking_devices(srv.url)
    k, plain = pw_iteration(srv, devices, vanish_after_share={"dev-3"})
    assert srv.wait_iteration(k, timeout=30)
    assert "dev-3" not in plain and len(plain) == DEVICES - 1
    sizes = {d.fl_id: d.data_size for d in devices}
    assert srv.metrics()[-1]["valid"]
    assert_close(srv.global_model(k), fedavg_of(list(plain.values()), [sizes[f] for f in plain]))


def test_fewer_uploads_than_the_threshold_make_the_iteration_invalid(start_server, masking_devices, small_model):
    srv = start_server(small_model, start_fl_job_threshold=DEVICES, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       update_model_ratio=0.5, reconstruct_secrets_threshold=6)
    devices = masking_devices(srv.url)
    k, _ = pw_iteration(srv, devices, upload_only=4)
    assert srv.wait_iteration(k, timeout=30)
    assert not srv.metrics()[-1]["valid"]
    for name, a in small_model.items():
        assert np.array_equal(srv.global_model(k)[name], a)  # the previous model is kept
