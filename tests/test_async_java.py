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


@pytest.mark.parametrize("aggregation,versions", [(FEDASYNC, 6), (FEDBUFF, 3)])
def test_java_uploads_make_the_papers_versions(bundled_clients, client_models, tmp_path, monkeypatch, aggregation,
                                               versions) -> None:
    """Real Java devices, real server: every version equals the paper's update of the uploads that made it,
    transcribed here from the raw uploads (weights × data_size, data_size, version trained on) and the
    checkpointed models: FedAsync (Xie et al. 2019) x_t = (1 − a_t) x_{t−1} + a_t x_new, a_t = α s(τ);
    FedBuff (Nguyen et al. 2022) with FedAvg, η_g = 1: x_t = x_{t−1} + Σ_k n_k s(τ_k) Δ_k / Σ_k n_k,
    Δ_k = x_k − x_{i_k}; s(τ) = (τ + 1)^−a. The uploads are watched on their way into the server's mixing (the
    server still does all of it). The versions move: none is the initial model."""
    from pyflclient.server.async_rounds import AsyncRounds
    from pyflclient.server.checkpoint import Checkpoints, load_model

    alpha, a = 0.6, 0.5
    seen: list[tuple[int, list[tuple[int, int, dict[str, np.ndarray]]]]] = []
    original = AsyncRounds._next_version

    async def watched(self, version, entries):
        seen.append((version, [(e.iteration, e.data_size, {n: np.asarray(w, np.float64) for n, w in e.weights.items()})
                               for _, e in sorted(entries.items())]))
        return await original(self, version, entries)

    monkeypatch.setattr(AsyncRounds, "_next_version", watched)
    n = 4
    with fl.Server(LENET_MS, server_mode=ASYNC_SERVER_MODE, async_aggregation=aggregation, fedbuff_buffer_size=3,
                   async_concurrency=3, max_staleness=10, fedasync_alpha=alpha, staleness_function="polynomial",
                   staleness_a=a, fl_iteration_num=versions, retry_interval=100, client_epoch_num=2,
                   client_learning_rate=0.05, checkpoint_dir=str(tmp_path / "ckpt")) as srv:
        results = fl.Simulation(_params(bundled_clients[:n], client_models(n), srv.url), output_dir=tmp_path / "run",
                                max_trainers=2, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=30)
    assert set(results.status.values()) <= {"SUCCESS", "NOT_SELECTED"}, results.status
    ckpt = Checkpoints(tmp_path / "ckpt")
    x = {0: {k: np.asarray(v, np.float64) for k, v in load_model(LENET_MS).items()}}
    x.update({v: {k: np.asarray(w, np.float64) for k, w in ckpt.load(v).items()} for v in range(1, versions + 1)})
    assert [v for v, _ in seen] == list(range(versions))
    for version, entries in seen:
        prev, want = x[version], {}
        for name in prev:
            if aggregation == FEDASYNC:
                (i, size, w), = entries
                a_t = alpha * (version - i + 1.0) ** -a
                want[name] = (1 - a_t) * prev[name] + a_t * w[name].reshape(prev[name].shape) / size
            else:
                assert len(entries) == 3
                total = sum(size for _, size, _ in entries)
                want[name] = prev[name] + sum(size * (version - i + 1.0) ** -a * (w[name].reshape(prev[name].shape)
                                                                                  / size - x[i][name])
                                              for i, size, w in entries) / total
            np.testing.assert_allclose(x[version + 1][name], want[name], rtol=1e-5, atol=1e-6)
    dist = [sum(float(np.sum((x[v][k] - x[0][k]) ** 2)) for k in x[0]) for v in range(versions + 1)]
    assert all(d > 0 for d in dist[1:])
