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
    received, true = [], []
    for recorded in srv.uploads(k):
        received.append(secagg.dequantise(np.concatenate([secagg.wire_to_ring(np.reshape(recorded.weights[n], -1))
                                                          for n in sorted(lenet_weights)])))
        true.append(secagg.flatten(plain[recorded.fl_id]))
        assert abs(np.corrcoef(received[-1], true[-1])[0, 1]) < 0.03  # 66,404 values: sigma of |r| 0.0039
    assert abs(np.corrcoef(np.concatenate(received), np.concatenate(true))[0, 1]) < 0.01  # sigma 0.0022


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


# -- bad input: a specific error, and nothing changes ---------------------------------------------

def joined(srv, devices):  # type: ignore[no-untyped-def]
    replies = [d.start_fl_job() for d in devices]
    assert all(r.retcode == ResponseCode.SUCCEED for r in replies)
    return replies[0].iteration, replies[0].plan.t


def test_bad_public_keys_are_refused_by_name_and_the_device_can_still_send_good_ones(start_server,
                                                                                    masking_devices, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=1, encrypt_type="PW_ENCRYPT")
    a, b = masking_devices(srv.url, 2)
    k, _ = joined(srv, [a, b])
    good = secagg.new_key_pair().public
    short = a.cipher("exchangeKeys", iteration=k, c_pk=good[:31], s_pk=good)
    assert short["retcode"] == ResponseCode.RequestError and "c_pk is 31 bytes" in short["reason"]
    low_order = a.cipher("exchangeKeys", iteration=k, c_pk=good, s_pk=bytes(32))
    assert low_order["retcode"] == ResponseCode.RequestError and "low-order point" in low_order["reason"]
    stale = a.cipher("exchangeKeys", iteration=k, c_pk=good, s_pk=good, timestamp=str(int(time.time() * 1000) - 10**6))
    assert stale["retcode"] == ResponseCode.RequestError and "replayed" in stale["reason"]
    wrong = a.cipher("exchangeKeys", iteration=k + 1, c_pk=good, s_pk=good)
    assert wrong["retcode"] == ResponseCode.OutOfTime and f"current is {k}" in wrong["reason"]
    for d in (a, b):  # none of the refusals was kept: both devices' first real keys are accepted
        assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
    assert ready(a.get_keys, k)["retcode"] == ResponseCode.SUCCEED and len(a.peers) == 2


def test_a_replayed_exchange_keys_and_a_device_not_admitted_are_refused(start_server, masking_devices, small_model):
    from pyflclient.wire.protocol import cipher_message, read_cipher

    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=1, encrypt_type="PW_ENCRYPT")
    a, b, stranger = masking_devices(srv.url, 3)
    k, _ = joined(srv, [a, b])
    keys = secagg.new_key_pair().public
    body = cipher_message("RequestExchangeKeys", fl_id=a.fl_id, iteration=k, c_pk=keys, s_pk=keys,
                          timestamp=str(int(time.time() * 1000)))
    assert read_cipher(a.post("exchangeKeys", body)[1], "ResponseExchangeKeys")["retcode"] == ResponseCode.SUCCEED
    replay = read_cipher(a.post("exchangeKeys", body)[1], "ResponseExchangeKeys")
    assert replay["retcode"] == ResponseCode.RequestError and "already sent its keys" in replay["reason"]
    outsider = stranger.exchange_keys(k)
    assert outsider["retcode"] == ResponseCode.RequestError and "was not admitted" in outsider["reason"]


def test_a_late_exchange_keys_after_the_window_is_out_of_time(start_server, masking_devices, small_model):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       cipher_time_window=300, reconstruct_secrets_threshold=2)
    a, b, late = masking_devices(srv.url, 3)
    k, _ = joined(srv, [a, b, late])
    for d in (a, b):
        assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
    assert ready(a.get_keys, k)["retcode"] == ResponseCode.SUCCEED  # the window ended with two devices
    assert sorted(a.peers) == [a.fl_id, b.fl_id]
    reply = late.exchange_keys(k)
    assert reply["retcode"] == ResponseCode.OutOfTime and "keys phase of iteration 1 is over" in reply["reason"]


def test_a_forged_share_is_refused_and_the_true_one_still_completes_the_iteration(start_server, masking_devices,
                                                                                  small_model):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=1, encrypt_type="PW_ENCRYPT",
                       update_model_ratio=2 / 3, reconstruct_secrets_threshold=2)
    devices = masking_devices(srv.url, 3)
    k, t = joined(srv, devices)
    for d in devices:
        assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
    for d in devices:
        assert ready(d.get_keys, k)["retcode"] == ResponseCode.SUCCEED
    for d in devices:
        assert d.share_secrets(k, t)["retcode"] == ResponseCode.SUCCEED
    for d in devices:
        assert ready(d.get_secrets, k)["retcode"] == ResponseCode.SUCCEED
    start = {n: a.reshape(-1) for n, a in small_model.items()}
    plain = {}
    for i, d in enumerate(devices[:2]):  # devices[2] drops: its s-key shares are returned
        plain[d.fl_id] = upload_of(start, d.data_size, i)[1]
        assert d.update_model(k, d.masked(k, plain[d.fl_id])).retcode == ResponseCode.SUCCEED
    late = devices[2].update_model(k, devices[2].masked(k, upload_of(start, 1, 9)[1]))
    assert late.retcode == ResponseCode.RequestError and "upload phase of iteration 1 is over" in late.reason
    a = devices[0]
    listed = ready(a.get_client_list, k)["clients"]
    good = [{"fl_id": o, "index": x, "share": b if o in listed else s} for o, (x, b, s) in sorted(a.held.items())]
    for field, value, words in (("share", bytes(66), "does not match the commitment"),
                                ("share", b"\x01" * 65, "is 65 bytes"),
                                ("index", 7, "has index 7")):
        forged = [dict(good[0], **{field: value})] + good[1:]
        reply = a.cipher("reconstructSecrets", iteration=k, reconstruct_secret_shares=forged)
        assert reply["retcode"] == ResponseCode.RequestError and words in reply["reason"], reply["reason"]
    dropped_b = [dict(g, share=a.held[g["fl_id"]][2]) if g["fl_id"] == devices[1].fl_id else g for g in good]
    reply = a.cipher("reconstructSecrets", iteration=k, reconstruct_secret_shares=dropped_b)
    assert reply["retcode"] == ResponseCode.RequestError and "self-mask share" in reply["reason"]  # an s-key share of an uploader
    for d in devices[:2]:
        assert d.reconstruct_secrets(k, listed)["retcode"] == ResponseCode.SUCCEED
    assert srv.wait_iteration(k, timeout=30) and srv.metrics()[-1]["valid"]
    assert_close(srv.global_model(k), fedavg_of(list(plain.values()), [d.data_size for d in devices[:2]]))


def test_share_secrets_must_hold_one_well_formed_share_per_device(start_server, masking_devices, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=1, encrypt_type="PW_ENCRYPT")
    a, b = masking_devices(srv.url, 2)
    k, t = joined(srv, [a, b])
    for d in (a, b):
        assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
    for d in (a, b):
        assert ready(d.get_keys, k)["retcode"] == ResponseCode.SUCCEED
    one = {"fl_id": a.fl_id, "index": 1, "share": bytes(250)}
    for shares, words in (([one], "one share for each of the 2 devices"),
                          ([one, dict(one, fl_id=b.fl_id, index=2)], "a sealed share pair is"),
                          ([dict(one, index=2), dict(one, fl_id=b.fl_id, index=1)], "its point is 1")):
        reply = a.cipher("shareSecrets", iteration=k, encrypted_shares=shares)
        assert reply["retcode"] == ResponseCode.RequestError and words in reply["reason"], reply["reason"]
    assert a.share_secrets(k, t)["retcode"] == ResponseCode.SUCCEED  # nothing of the refused ones was kept


def test_the_derived_body_limit_takes_a_share_secrets_body_of_3500_devices(lenet_weights):
    from pyflclient.server.secure_aggregation import SEALED_SHARE_BYTES
    from pyflclient.server.transport import body_limit
    from pyflclient.wire.protocol import cipher_message

    shares = [{"fl_id": f"f{i}_client-with-a-long-name-{i:06d}", "share": bytes(SEALED_SHARE_BYTES), "index": i + 1}
              for i in range(3500)]
    body = cipher_message("RequestShareSecrets", fl_id="f0", encrypted_shares=shares, iteration=1, timestamp="1")
    assert len(body) > body_limit(0, lenet_weights)  # more than a LeNet upload's bound
    assert len(body) <= body_limit(0, lenet_weights, devices_sharing=3500)
