"""The round semantics of docs/protocol.md, on a real server over loopback HTTP."""
from __future__ import annotations

import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pyflclient.wire.protocol import PLAIN_TEXT_JOB_FINISHED, ResponseCode, now_ms

from conftest import fedavg_of, upload_of


def flat(model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: np.asarray(a).reshape(-1) for n, a in model.items()}


def assert_models_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(np.asarray(got[name]).reshape(-1), np.asarray(want[name]).reshape(-1),
                                      err_msg=name)


def test_fedavg_of_several_clients_over_several_iterations_is_exact(start_server, device, run_round, lenet_weights):
    srv = start_server(lenet_weights, start_fl_job_threshold=3, fl_iteration_num=3)
    devices = [device(srv.url, data_size=s) for s in (32, 96, 160)]
    for iteration in (1, 2, 3):
        expected = run_round(srv, devices, seed=iteration)
        assert_models_equal(srv.global_model(), expected)
        got = devices[0].get_model(iteration)
        assert (got.retcode, got.iteration) == (ResponseCode.SUCCEED, iteration)
        assert_models_equal(dict(got.weights), expected)
    assert srv.wait_finished(timeout=5)
    assert [m["valid"] for m in srv.metrics()] == [True, True, True]


def test_fedavg_matches_what_the_devices_uploaded(start_server, device, run_round, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=1)
    devices = [device(srv.url, data_size=s) for s in (5, 7)]
    run_round(srv, devices)
    recorded = srv.uploads(1)
    assert [(u.fl_id, u.data_size) for u in recorded] == [(d.fl_id, d.data_size) for d in devices]
    expected = fedavg_of([u.weights for u in recorded], [u.data_size for u in recorded])
    assert_models_equal(srv.global_model(), expected)


def test_admitted_device_gets_plan_and_current_model(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=7, client_epoch_num=3,
                       client_batch_size=16, client_learning_rate=0.05, fl_name="Lenet")
    reply = device(srv.url, data_size=10).start_fl_job()
    assert (reply.retcode, reply.is_selected, reply.iteration) == (ResponseCode.SUCCEED, True, 1)
    plan = reply.plan
    assert (plan.iterations, plan.epochs, plan.mini_batch, plan.encrypt_type) == (7, 3, 16, "NOT_ENCRYPT")
    assert plan.lr == pytest.approx(0.05)
    assert_models_equal(dict(reply.weights), small_model)


def test_device_past_the_threshold_is_told_when_to_come_back(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, start_fl_job_time_window=60_000)
    device(srv.url).start_fl_job()
    device(srv.url).start_fl_job()
    before = now_ms()
    refused = device(srv.url).start_fl_job()
    assert refused.retcode == ResponseCode.OutOfTime and not refused.is_selected
    assert "threshold" in refused.reason
    assert int(refused.next_req_time) > before  # absolute epoch ms, as a decimal string


def test_repeated_start_fl_job_of_an_admitted_device_is_answered_again_without_counting(
        start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2)
    a = device(srv.url)
    assert a.start_fl_job().retcode == ResponseCode.SUCCEED
    assert a.start_fl_job().retcode == ResponseCode.SUCCEED
    assert device(srv.url).start_fl_job().retcode == ResponseCode.SUCCEED  # the second seat is still free


def test_admission_closes_when_the_start_window_is_over(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=5, start_fl_job_time_window=200,
                       update_model_time_window=60_000)
    opened = now_ms()
    assert device(srv.url).start_fl_job().retcode == ResponseCode.SUCCEED
    time.sleep(max(0.0, (opened + 300 - now_ms()) / 1000))  # the behaviour under test is the clock itself
    late = device(srv.url).start_fl_job()
    assert late.retcode == ResponseCode.OutOfTime
    assert "start_fl_job_time_window is over" in late.reason


def test_admitted_devices_that_never_upload_end_the_iteration_invalid_on_the_timers(
        start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=5, start_fl_job_time_window=100,
                       update_model_time_window=100)
    assert device(srv.url).start_fl_job().retcode == ResponseCode.SUCCEED
    # no request arrives after this: only the server's timers can end iteration 1
    assert srv.wait_iteration(1, timeout=10)
    assert srv.metrics()[0]["valid"] is False
    assert srv.iteration == 2


def test_get_model_of_a_running_iteration_is_not_ready(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, get_model_hold_ms=0)
    d = device(srv.url)
    d.start_fl_job()
    reply = d.get_model(1)
    assert (reply.retcode, reply.iteration) == (ResponseCode.SucNotReady, 1)


def test_get_model_held_open_is_not_ready_when_the_hold_ends_first(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, get_model_hold_ms=300)
    d = device(srv.url)
    d.start_fl_job()
    t0 = time.monotonic()
    reply = d.get_model(1)
    assert (reply.retcode, reply.iteration) == (ResponseCode.SucNotReady, 1)
    assert time.monotonic() - t0 >= 0.29


def test_get_model_held_open_gets_the_model_the_moment_it_is_published(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=2, get_model_hold_ms=30_000)
    d = device(srv.url, data_size=3)
    d.start_fl_job()
    trained, up = upload_of(flat(small_model), 3, seed=5)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(device(srv.url).get_model, 1)
        while srv.held_get_models == 0:  # the request is at the server, held open
            assert not waiting.done(), waiting.result()
        assert d.update_model(1, up).retcode == ResponseCode.SUCCEED
        reply = waiting.result(timeout=10)  # well before the 30 s hold ends
    assert (reply.retcode, reply.iteration) == (ResponseCode.SUCCEED, 1)
    for name, array in trained.items():
        np.testing.assert_allclose(reply.weights[name], array, rtol=1e-6)


def test_iteration_whose_update_window_expires_is_invalid_and_keeps_the_previous_model(
        start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=3, update_model_time_window=200)
    a, b = device(srv.url, data_size=4), device(srv.url, data_size=4)
    a.start_fl_job()
    b.start_fl_job()
    _, up = upload_of(flat(small_model), 4, seed=1)
    assert a.update_model(1, up).retcode == ResponseCode.SUCCEED  # b never uploads
    assert srv.wait_iteration(1, timeout=10)
    line = srv.metrics()[0]
    assert {k: line[k] for k in ("iteration", "admitted", "uploaded", "data_size", "valid")} == {
        "iteration": 1, "admitted": 2, "uploaded": 1, "data_size": 4, "valid": False}
    assert line["requests"] == 3 and line["bytes_up"] > 0  # two startFLJob, one updateModel (traffic.py)
    assert_models_equal(srv.global_model(), small_model)
    reply = a.get_model(1)
    assert (reply.retcode, reply.iteration) == (ResponseCode.SUCCEED, 1)
    assert_models_equal(dict(reply.weights), small_model)
    assert srv.iteration == 2  # the invalid iteration counted


def test_late_upload_to_a_finished_iteration_is_out_of_time(start_server, device, small_model):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=3, update_model_time_window=100)
    a, b = device(srv.url), device(srv.url)
    a.start_fl_job()
    b.start_fl_job()
    _, up = upload_of(flat(small_model), 1, seed=1)
    a.update_model(1, up)
    assert srv.wait_iteration(1, timeout=10)
    late = b.update_model(1, up)
    assert late.retcode == ResponseCode.OutOfTime
    assert int(late.next_req_time) > 0


def test_iterations_do_not_burn_while_no_device_is_admitted(start_server, device, run_round, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=2, start_fl_job_time_window=50,
                       update_model_time_window=50)
    # nobody there: the windows never start, so iteration 1 stays current however long we wait
    assert not srv.wait_iteration(1, timeout=0.3)
    assert srv.iteration == 1 and srv.metrics() == []
    run_round(srv, [device(srv.url, data_size=3)])
    assert srv.metrics()[0]["valid"] is True


def test_finished_job_refuses_new_rounds_and_keeps_serving_the_final_model(start_server, device, run_round,
                                                                          small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=1)
    d = device(srv.url, data_size=2)
    expected = run_round(srv, [d])
    assert srv.wait_finished(timeout=5)
    assert d.start_fl_job() == PLAIN_TEXT_JOB_FINISHED
    assert d.update_model(1, expected) == PLAIN_TEXT_JOB_FINISHED
    final = d.get_model(1)
    assert (final.retcode, final.iteration) == (ResponseCode.SUCCEED, 1)
    assert_models_equal(dict(final.weights), expected)


def test_get_model_serves_every_finished_iteration_and_iteration_0_is_the_newest(
        start_server, device, run_round, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=3)
    d = device(srv.url, data_size=2)
    models = [run_round(srv, [d], seed=s) for s in (1, 2)]
    for iteration, expected in enumerate(models, start=1):
        assert_models_equal(dict(d.get_model(iteration).weights), expected)
    newest = d.get_model(0)
    assert newest.iteration == 2
    assert_models_equal(dict(newest.weights), models[1])
    assert d.get_model(4).retcode == ResponseCode.SucNotReady  # one ahead of the running 3: wait, as r1.6
    assert d.get_model(5).retcode == ResponseCode.RequestError


def test_server_num_ports_share_one_state(start_server, device, small_model):
    srv = start_server(small_model, server_num=3, start_fl_job_threshold=3, fl_iteration_num=1)
    ports = [int(u.rsplit(":", 1)[1]) for u in srv.urls]
    assert ports == [ports[0], ports[0] + 1, ports[0] + 2]
    # like an ELB client: every request of every device to a different port
    devices = [device(url, data_size=2) for url in srv.urls]
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    uploads = []
    for i, d in enumerate(devices):
        _, up = upload_of(flat(small_model), 2, seed=i)
        uploads.append(up)
        assert device(srv.urls[(i + 1) % 3], fl_id=d.fl_id).update_model(1, up).retcode == ResponseCode.SUCCEED
    assert srv.wait_finished(timeout=5)
    assert_models_equal(dict(device(srv.urls[2]).get_model(1).weights), fedavg_of(uploads, [2, 2, 2]))


def test_secure_aggregation_rounds_are_refused_with_a_reason(start_server, device, small_model):
    from pyflclient._fbs import cipher_generated as cfb

    srv = start_server(small_model)
    status, body = device(srv.url).post("exchangeKeys", b"\x00" * 16)
    assert status == 200
    reply = cfb.ResponseExchangeKeys.GetRootAs(body)
    assert reply.Retcode() == ResponseCode.RequestError
    assert b"secure aggregation is not enabled" in reply.Reason()


def test_https_when_a_certificate_is_given(start_server, device, small_model, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr[-200:]!r}")
    srv = start_server(small_model, ssl_cert=str(cert), ssl_key=str(key))
    assert srv.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(cert))
    assert device(srv.url, ssl_context=ctx).start_fl_job().retcode == ResponseCode.SUCCEED


def test_concurrent_devices_are_each_admitted_and_counted_once(start_server, device, small_model):
    clients = 16
    srv = start_server(small_model, start_fl_job_threshold=clients, fl_iteration_num=1)
    devices = [device(srv.url, data_size=k + 1) for k in range(clients + 4)]  # 4 more than seats
    start = threading.Barrier(len(devices))

    def join(d):  # type: ignore[no-untyped-def]
        start.wait()
        return d, d.start_fl_job()

    with ThreadPoolExecutor(len(devices)) as pool:
        joined = list(pool.map(join, devices))
    admitted = [d for d, r in joined if r.retcode == ResponseCode.SUCCEED]
    assert len(admitted) == clients
    assert sum(r.retcode == ResponseCode.OutOfTime for _, r in joined) == 4
    uploads = {d.fl_id: upload_of(flat(small_model), d.data_size, seed=i)[1] for i, d in enumerate(admitted)}
    barrier = threading.Barrier(clients)

    def upload(d):  # type: ignore[no-untyped-def]
        barrier.wait()
        return d.update_model(1, uploads[d.fl_id]).retcode

    with ThreadPoolExecutor(clients) as pool:
        assert set(pool.map(upload, admitted)) == {ResponseCode.SUCCEED}
    assert srv.wait_finished(timeout=10)
    assert srv.metrics()[0]["uploaded"] == clients
    expected = fedavg_of(list(uploads.values()), [d.data_size for d in admitted])
    assert_models_equal(srv.global_model(), expected)
