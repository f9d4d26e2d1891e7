"""/metrics, /pushMetrics and the watch routes' access rules, against a real server on loopback.

The run below has counts known in advance (admissions, refusals by reason, a late and a
duplicate upload, device pushes); /metrics is parsed with prometheus_client's own parser
and every one of them is checked.
"""
from __future__ import annotations

import json
import math
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import upload_of
from pyflclient.server.metrics import DEVICE_METRICS_FILE
from pyflclient.wire.protocol import PushMetricsRequest, ResponseCode


def scrape(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> dict[tuple, float]:
    """/metrics as {(sample name, sorted labels): value}, read by prometheus_client's parser."""
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_a_run_whose_counts_are_known(start_server, device, small_model, tmp_path):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=2, checkpoint_dir=str(tmp_path))
    a, b, c = (device(srv.url, fl_id=f, data_size=n) for f, n in (("a", 10), ("b", 30), ("c", 5)))
    # iteration 1: a and b admitted, c refused (threshold); a uploads twice (the second is a duplicate)
    for d in (a, b):
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    assert c.start_fl_job().retcode == ResponseCode.OutOfTime
    up_a, up_b = upload_of(small_model, 10, 1)[1], upload_of(small_model, 30, 2)[1]
    assert a.update_model(1, up_a).retcode == ResponseCode.SUCCEED
    assert a.update_model(1, up_a).retcode == ResponseCode.RequestError
    assert b.update_model(1, up_b).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    # the devices evaluate the model of iteration 1 and push; c's accuracy is not a ratio: refused
    assert a.push_metrics(0.5, 0.8).retcode == ResponseCode.SUCCEED
    assert b.push_metrics(0.7, 0.6).retcode == ResponseCode.SUCCEED
    assert c.push_metrics(0.1, 1.5).retcode == ResponseCode.RequestError
    # iteration 2: an upload for iteration 1 is late
    for d in (a, b):
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    assert c.update_model(1, up_a).retcode == ResponseCode.OutOfTime
    assert a.update_model(2, up_a).retcode == ResponseCode.SUCCEED
    assert b.update_model(2, up_b).retcode == ResponseCode.SUCCEED
    assert srv.wait_finished(timeout=30)

    m = scrape(srv.url)
    assert value(m, "pyflclient_iteration") == 2
    assert value(m, "pyflclient_phase", phase="finished") == 1
    assert value(m, "pyflclient_phase", phase="upload") == 0
    assert value(m, "pyflclient_devices_admitted_total") == 4
    assert value(m, "pyflclient_devices_uploaded_total") == 4
    assert value(m, "pyflclient_devices_refused_total", round="startFLJob", reason="threshold_reached") == 1
    assert value(m, "pyflclient_devices_refused_total", round="updateModel", reason="duplicate") == 1
    assert value(m, "pyflclient_devices_refused_total", round="updateModel", reason="out_of_time") == 1
    assert value(m, "pyflclient_uploads_late_total") == 1
    assert value(m, "pyflclient_requests_total", endpoint="startFLJob", retcode="SUCCEED") == 4
    assert value(m, "pyflclient_requests_total", endpoint="startFLJob", retcode="OutOfTime") == 1
    assert value(m, "pyflclient_requests_total", endpoint="updateModel", retcode="SUCCEED") == 4
    assert value(m, "pyflclient_requests_total", endpoint="updateModel", retcode="RequestError") == 1
    assert value(m, "pyflclient_requests_total", endpoint="updateModel", retcode="OutOfTime") == 1
    assert value(m, "pyflclient_requests_total", endpoint="pushMetrics", retcode="SUCCEED") == 2
    assert value(m, "pyflclient_requests_total", endpoint="pushMetrics", retcode="RequestError") == 1
    assert value(m, "pyflclient_request_duration_seconds_count", endpoint="startFLJob") == 5
    assert value(m, "pyflclient_received_bytes_total", endpoint="pushMetrics") == \
        3 * len(PushMetricsRequest(0.5, 0.8).to_bytes())
    assert value(m, "pyflclient_upload_decode_seconds_count") == 6
    assert value(m, "pyflclient_aggregation_seconds_count") == 2
    assert value(m, "pyflclient_checkpoint_writes_total") == 2
    assert value(m, "pyflclient_iterations_total", valid="true") == 2
    assert value(m, "pyflclient_store_errors_total") == 0
    # the devices' reports on the model of iteration 1: AVG/TOP5/LOW5 of {0.8, 0.6}, mean loss 0.6
    assert value(m, "pyflclient_device_metrics_iteration") == 1
    assert value(m, "pyflclient_device_reports") == 2
    assert math.isclose(value(m, "pyflclient_device_accuracy_ratio", stat="avg"), 0.7, rel_tol=1e-6)
    assert math.isclose(value(m, "pyflclient_device_accuracy_ratio", stat="top5"), 0.7, rel_tol=1e-6)
    assert math.isclose(value(m, "pyflclient_device_loss"), 0.6, rel_tol=1e-6)
    assert value(m, "pyflclient_device_reports_received_total") == 2
    # and beside the checkpoints, once the devices moved on to iteration 2
    lines = [json.loads(x) for x in (tmp_path / DEVICE_METRICS_FILE).read_text().splitlines()]
    assert [(x["iteration"], x["count"]) for x in lines] == [(1, 2)]
    assert math.isclose(lines[0]["accuracy_low5"], 0.7, rel_tol=1e-6)  # fewer than 5 devices: all of them


def test_device_summary_is_avg_top5_low5_of_the_accuracies_and_the_mean_loss():
    from pyflclient.server.metrics import DeviceSummary

    rng = np.random.default_rng(3)
    loss, acc = rng.uniform(0, 3, 12), rng.uniform(0, 1, 12)
    s = DeviceSummary.of(4, list(zip(loss.tolist(), acc.tolist())))
    ordered = np.sort(acc)
    assert (s.iteration, s.count) == (4, 12)
    assert np.isclose(s.avg, acc.mean()) and np.isclose(s.top5, ordered[-5:].mean())
    assert np.isclose(s.low5, ordered[:5].mean()) and np.isclose(s.loss, loss.mean())


def test_metrics_off_serves_no_metrics_but_still_takes_pushes(start_server, device, small_model):
    srv = start_server(small_model, metrics="off", dashboard="off")
    with pytest.raises(urllib.error.HTTPError) as err:
        scrape(srv.url)
    assert err.value.code in (404, 405)
    assert device(srv.url).push_metrics(0.1, 0.9).retcode == ResponseCode.SUCCEED


def test_the_token_guards_metrics_and_dashboard_but_not_the_devices(start_server, device, small_model):
    token = "s3cret-token"
    srv = start_server(small_model, metrics_token=token)
    for path in ("/metrics", "/", "/api/status"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + path, timeout=10)
        assert err.value.code == 401 and err.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(urllib.error.HTTPError):
        scrape(srv.url, token="wrong-token")
    assert value(scrape(srv.url, token=token), "pyflclient_iteration") == 1
    with urllib.request.urlopen(f"{srv.url}/api/status?token={token}", timeout=10) as resp:
        assert json.load(resp)["job"]["fl_iteration_num"] == srv.config.fl_iteration_num
    assert device(srv.url).start_fl_job().retcode == ResponseCode.SUCCEED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_port_moves_metrics_and_dashboard_off_the_fl_port(start_server, device, small_model):
    port = free_port()
    srv = start_server(small_model, metrics_port=port, metrics_ip="127.0.0.1")
    assert srv.core.watch_url == f"http://127.0.0.1:{port}/"
    assert value(scrape(f"http://127.0.0.1:{port}"), "pyflclient_iteration") == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        assert b"dashboard.js" in resp.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        scrape(srv.url)
    assert err.value.code in (404, 405)
    assert device(srv.url).start_fl_job().retcode == ResponseCode.SUCCEED


def test_metrics_follow_the_servers_tls(start_server, small_model, tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr[-200:]!r}")
    port = free_port()
    srv = start_server(small_model, ssl_cert=str(cert), ssl_key=str(key), metrics_port=port)
    ctx = ssl.create_default_context(cafile=str(cert))
    assert srv.core.watch_url == f"https://127.0.0.1:{port}/"
    assert value(scrape(f"https://127.0.0.1:{port}", context=ctx), "pyflclient_iteration") == 1
    with pytest.raises(urllib.error.HTTPError):  # not on the FL ports any more
        scrape(srv.url, context=ctx)


def test_bad_watch_settings_name_the_key(small_model):
    from pyflclient.server.config import ConfigError, ServerConfig

    for settings, key in (({"metrics": "yes"}, "metrics"), ({"metrics": "off"}, "dashboard"),
                          ({"metrics_ip": "0.0.0.0"}, "metrics_ip"), ({"metrics_token": "short"}, "metrics_token"),
                          ({"metrics_port": 70000}, "metrics_port")):
        with pytest.raises(ConfigError, match=f"^{key}="):
            ServerConfig(**settings)


@pytest.fixture
def two_process_group(redis_server, small_model):
    """Two servers sharing one job through the real Redis (the recording test server keeps its own store)."""
    from pyflclient.server import Server

    group = dict(distributed_cache_address=redis_server.address, start_fl_job_threshold=1, fl_iteration_num=3)
    a = Server(small_model, **group).start()
    b = Server(small_model, **group).start()
    yield a, b
    a.stop()
    b.stop()


def test_a_redis_group_shares_device_reports_and_lists_its_processes(two_process_group, device, small_model):
    a, b = two_process_group
    d = device(a.url, fl_id="d", data_size=4)
    assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    assert d.update_model(1, upload_of(small_model, 4, 0)[1]).retcode == ResponseCode.SUCCEED
    assert a.wait_iteration(1, timeout=30)
    assert device(b.url).push_metrics(0.25, 0.875).retcode == ResponseCode.SUCCEED  # to the other process
    m = scrape(a.url)
    assert value(m, "pyflclient_device_metrics_iteration") == 1 and value(m, "pyflclient_device_reports") == 1
    assert value(m, "pyflclient_device_accuracy_ratio", stat="avg") == 0.875
    assert value(m, "pyflclient_device_reports_received_total") == 0  # b took it: a's own counter says so
    assert value(scrape(b.url), "pyflclient_device_reports_received_total") == 1
    assert a.device_reports(1) == b.device_reports(1) == [(0.25, 0.875)]
    with urllib.request.urlopen(a.url + "/api/status", timeout=10) as resp:
        status = json.load(resp)
    assert sorted(p["urls"][0] for p in status["processes"].values()) == sorted([a.url, b.url])
    assert status["now"]["iteration"] == 2 and status["job"]["store"] == "redis"
