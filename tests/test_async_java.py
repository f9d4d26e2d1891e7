"""The Java client's asynchronous loop against the asynchronous server: real JVM, real engine, loopback.

Many devices run as state machines of one Java ``ClientEngine`` (the same engine as the
synchronous rounds); the server's plan says ``server_mode`` ASYNC_FEDERATED_LEARNING and each
device trains on the newest model, uploads with asyncUpdateModel, fetches with asyncGetModel
and asks again, until the server has its versions.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import pyflclient as fl
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE, FEDASYNC, FEDBUFF

from conftest import LENET_MS

ROOT = Path(__file__).resolve().parents[1]
JAVA = ROOT / "jars/flclient/src/main/java/com/mindspore/flclient/AsyncRounds.java"


def test_java_and_python_name_the_same_async_server_mode() -> None:
    found = re.search(r'static final String SERVER_MODE = "([^"]+)";', JAVA.read_text())
    assert found is not None and found.group(1) == ASYNC_SERVER_MODE


def _params(clients, models, url):
    return [fl.FLParameter(domain_name=url, train_dataset=c.folder, test_dataset=c.folder, train_model_path=m,
                           batch_size=32, sleep_time_ms=50, client_id=f"a{i}")
            for i, (c, m) in enumerate(zip(clients, models))]


@pytest.mark.parametrize("aggregation,versions", [(FEDBUFF, 3), (FEDASYNC, 6)])
def test_java_devices_run_the_async_loop_on_one_engine(bundled_clients, client_models, tmp_path, aggregation,
                                                       versions) -> None:
    n = 6
    with fl.Server(LENET_MS, server_mode=ASYNC_SERVER_MODE, async_aggregation=aggregation, fedbuff_buffer_size=3,
                   async_concurrency=3, max_staleness=4, fl_iteration_num=versions, retry_interval=100,
                   checkpoint_dir=str(tmp_path / "ckpt")) as srv:
        sim = fl.Simulation(_params(bundled_clients[:n], client_models(n), srv.url), output_dir=tmp_path / "run",
                            max_trainers=2, progress=False)
        results = sim.run(timeout=600)
        assert srv.wait_finished(timeout=30)
        report = srv.async_results()
        final = srv.global_model()
        metrics = srv.metrics()
    assert set(results.status.values()) <= {"SUCCESS", "NOT_SELECTED"}, results.status
    assert [m["iteration"] for m in metrics] == list(range(1, versions + 1))
    uploads = sum(report["staleness_histogram"].values())
    assert uploads == (versions * 3 if aggregation == FEDBUFF else versions)
    assert max(report["staleness_histogram"]) <= 4
    assert all(np.isfinite(w).all() for w in final.values())
    lines = [line for line in (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == versions and all('"staleness"' in line for line in lines)
