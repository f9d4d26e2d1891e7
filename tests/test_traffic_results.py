"""Every byte accounted for, on the devices: each exchange's request and reply bodies, per client and
iteration, in results.json / results.csv, the iteration's log line and bar, the figure's second panel
and `pyflclient plot`; with real Java clients, the devices' count equals the server's."""
from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import pytest

from pyflclient.client.results import SimulationResults


def filled() -> SimulationResults:
    res = SimulationResults(["a", "b"])
    res.record_traffic("a", "startFLJob", 100, 1000)     # before admission: counts for iteration 1
    res.record_traffic("a", "startFLJob", 100, 50)       # a second try (not selected the first time)
    res.record_admitted("a", 1)
    res.record_traffic("a", "updateModel", 2000, 40)
    res.record_traffic("a", "getModel", 60, 1000)
    res.record_traffic("b", "startFLJob", 100, 1000)
    res.record_admitted("b", 1)
    res.record_traffic("b", "updateModel", 2000, 40)
    res.record_accuracy("a", 1, 0.5)
    res.record_accuracy("b", 1, 0.7)
    res.record_traffic("a", "startFLJob", 100, 1000)
    res.record_admitted("a", 2)
    res.record_traffic("a", "updateModel", 1000, 40)
    res.record_accuracy("a", 2, 0.8)
    res.record_traffic("b", "startFLJob", 100, 20)        # the job finished: admitted nowhere
    return res


def test_bytes_go_to_the_iteration_the_client_is_in_and_add_up():
    res = filled()
    rows = {r["iteration"]: r for r in res.traffic_rows()}
    assert (rows[1]["bytes_up"], rows[1]["bytes_down"]) == (100 + 100 + 2000 + 60 + 100 + 2000, 1000 + 50 + 40 + 1000
                                                              + 1000 + 40)
    assert rows[1]["bytes_up_per_client"] == rows[1]["bytes_up"] / 2
    assert (rows[2]["bytes_up"], rows[2]["bytes_down"]) == (1100, 1040)
    assert rows[2]["cumulative_bytes"] == rows[1]["bytes_up"] + rows[1]["bytes_down"] + 1100 + 1040
    s1, s2 = res.summary()
    assert (s1.bytes_up, s2.cumulative_bytes) == (rows[1]["bytes_up"], rows[2]["cumulative_bytes"])
    data = res.to_dict()
    assert data["traffic_not_admitted"] == {"b": [100, 20]}
    assert SimulationResults.from_dict(json.loads(json.dumps(data))).summary() == res.summary()


def test_csv_has_the_bytes_columns(tmp_path):
    with open(filled().save_csv(tmp_path / "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert int(rows[1]["bytes_up"]) == 1100 and float(rows[0]["bytes_down_per_client"]) == 1565.0
    assert int(rows[1]["cumulative_bytes"]) == sum(int(r["bytes_up"]) + int(r["bytes_down"]) for r in rows)


def test_the_figure_gets_a_bytes_panel_and_pyflclient_plot_draws_several_runs(tmp_path):
    import matplotlib.image

    files = filled().save(tmp_path / "a")
    assert matplotlib.image.imread(files["png"]).shape[1] == 1200  # two panels, 12 in at 100 dpi
    SimulationResults(["x"]).save(tmp_path / "empty")
    proc = subprocess.run([sys.executable, "-m", "pyflclient.cli", "plot", str(tmp_path / "a"),
                           str(tmp_path / "a" / "results.json"), "--labels", "one,two",
                           "--out", str(tmp_path / "cmp.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "pyflclient.cli", "plot", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "no results.json at" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(600)
def test_java_clients_count_the_bytes_the_server_counts(bundled_clients, client_models, tmp_path, caplog):
    import pyflclient as fl
    from pyflclient.client.simulation import params_for_clients
    from conftest import LENET_MS

    n = 3
    with fl.Server(LENET_MS, start_fl_job_threshold=n, fl_iteration_num=2, client_epoch_num=1,
                   checkpoint_dir=str(tmp_path / "ckpt")) as srv:
        params = params_for_clients(bundled_clients[:n], client_models(n), srv.url, batch_size=32)
        with caplog.at_level(logging.INFO, logger="pyflclient.client.simulation"):
            res = fl.Simulation(params, output_dir=tmp_path / "run", max_trainers=2, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=60)
        traffic = srv.core.transport.traffic
        server_total = (traffic.total_up, traffic.total_down)
    data = res.to_dict()
    device_up = sum(v[0] for per in res.traffic.values() for v in per.values()) + sum(
        v[0] for v in data["traffic_not_admitted"].values())
    device_down = sum(v[1] for per in res.traffic.values() for v in per.values()) + sum(
        v[1] for v in data["traffic_not_admitted"].values())
    assert (device_up, device_down) == server_total
    rows = res.traffic_rows()
    assert [r["iteration"] for r in rows] == [1, 2] and all(r["clients"] == n for r in rows)
    # LeNet's 66,404 weights travel as float32 each way: more than 250 KB per client and iteration
    assert all(r["bytes_up_per_client"] > 250_000 and r["bytes_down_per_client"] > 250_000 for r in rows)
    lines = [r.getMessage() for r in caplog.records if "MB up" in r.getMessage()]
    assert len(lines) == 2 and f"{rows[0]['bytes_up'] / 1e6:.2f} MB up" in lines[0]
