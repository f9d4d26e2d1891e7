"""The Java client's asynchronous loop in Ray actors: the same engine in each actor's JVM, one async server."""
from __future__ import annotations

import logging
import os

import pytest

import pyflclient as fl
from pyflclient.client.ray_backend import import_ray  # noqa: E402  (before Ray: the JVM keeps its SIGSEGV)
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE, FEDBUFF

from conftest import LENET_MS

pytest.importorskip("ray")
ray = import_ray()

pytestmark = pytest.mark.timeout(240)


def test_async_devices_run_in_ray_actors(bundled_clients, client_models, tmp_path) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        n, versions, k = 6, 4, 2
        with fl.Server(LENET_MS, server_mode=ASYNC_SERVER_MODE, async_aggregation=FEDBUFF, fedbuff_buffer_size=k,
                       async_concurrency=3, max_staleness=3, fl_iteration_num=versions, retry_interval=100) as srv:
            params = fl.params_for_clients(bundled_clients[:n], client_models(n), srv.url, sleep_time_ms=50)
            results = fl.Simulation(params, output_dir=tmp_path / "run", progress=False, backend="ray",
                                    ray_actors=2).run(timeout=180)
            assert srv.wait_finished(timeout=60)
            report = srv.async_results()
            metrics = srv.metrics()
    finally:
        ray.shutdown()
    assert set(results.status.values()) <= {"SUCCESS", "NOT_SELECTED"}, results.status
    assert [m["iteration"] for m in metrics] == list(range(1, versions + 1))
    assert sum(report["staleness_histogram"].values()) == versions * k
