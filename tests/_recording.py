"""Test-only recording of what devices sent: a state store that keeps every accepted upload.

The server lets go of an iteration's uploads once it has averaged them; tests that check
the aggregate against the devices' own updates use :class:`RecordingServer`, a
:class:`pyflclient.Server` whose in-memory store also records each accepted upload with
the ``data_size`` its device was admitted with.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyflclient.server import Server
from pyflclient.server.store import Admission, IterationView, MemoryStore, Model, Upload


@dataclass(frozen=True)
class RecordedUpload:
    """What one device sent in one iteration (weights as uploaded: × data_size)."""

    fl_id: str
    data_size: int
    weights: dict[str, np.ndarray]
    loss: float | None = None                          # upload_loss, when the plan asked for it
    control_variate: dict[str, np.ndarray] | None = None  # Scaffold's delta c_i


class RecordingStore(MemoryStore):
    """:class:`MemoryStore` that also keeps every admitted data size and accepted upload."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # written on the server's loop, read from the test thread
        self._sizes: dict[tuple[int, str], int] = {}
        self._uploads: dict[int, list[RecordedUpload]] = {}

    async def admit(self, iteration: int, fl_id: str, data_size: int, now_ms: int, threshold: int,
                    window_ms: int, **seat_rule: Any) -> tuple[Admission, IterationView]:
        outcome, view = await super().admit(iteration, fl_id, data_size, now_ms, threshold, window_ms, **seat_rule)
        if outcome is Admission.ADMITTED:
            with self._lock:
                self._sizes[(iteration, fl_id)] = data_size
        return outcome, view

    async def add_upload(self, iteration: int, fl_id: str, weights: Model, now_ms: int, **sent: Any
                         ) -> tuple[Upload, IterationView]:
        outcome, view = await super().add_upload(iteration, fl_id, weights, now_ms, **sent)
        if outcome is Upload.ACCEPTED:
            with self._lock:
                cv = sent.get("control_variate")
                self._uploads.setdefault(iteration, []).append(RecordedUpload(
                    fl_id, self._sizes.get((iteration, fl_id), 0), {n: np.array(a) for n, a in weights.items()},
                    sent.get("loss"), None if cv is None else {n: np.array(a) for n, a in cv.items()}))
        return outcome, view

    def uploads(self, iteration: int) -> list[RecordedUpload]:
        with self._lock:
            return list(self._uploads.get(iteration, []))


class RecordingServer(Server):
    """A :class:`pyflclient.Server` on a :class:`RecordingStore`; ``uploads(k)`` lists iteration k's."""

    def __init__(self, model: Any, **settings: Any) -> None:
        self.recording = RecordingStore()
        super().__init__(model, store=self.recording, **settings)

    def uploads(self, iteration: int) -> list[RecordedUpload]:
        """What each device uploaded in ``iteration``, in arrival order."""
        return self.recording.uploads(iteration)

    def assert_global_model_is_fedavg(self, iteration: int) -> None:
        """The published model of ``iteration`` = Σ recorded uploads / Σ data_size (float64 sums)."""
        uploads = self.uploads(iteration)
        total = sum(u.data_size for u in uploads)
        published = self.global_model(iteration)
        assert set(published) == set(uploads[0].weights)
        for name, got in published.items():
            expected = sum(u.weights[name].astype(np.float64) for u in uploads) / total
            np.testing.assert_allclose(got.reshape(-1), expected.astype(np.float32).reshape(-1), rtol=1e-6,
                                       atol=1e-7, err_msg=name)


@dataclass(frozen=True)
class RecordedJob:
    """A finished job of Java clients against a :class:`RecordingServer`: its global models by iteration (0 the
    initial one), what each device uploaded by iteration, the simulation's results and the early-stop reason."""

    models: dict[int, dict[str, np.ndarray]]
    uploads: dict[int, list[RecordedUpload]]
    results: Any
    early_stop: str | None


def run_recorded_job(model: Any, clients: list[Any], out: Any, iterations: int, **server: Any) -> RecordedJob:
    """``clients`` (bundled ClientData) as Java devices, two trainers, one epoch per iteration, against a
    recording server with ``server`` settings and a checkpoint folder under ``out``; every device must end SUCCESS
    unless the job stopped early."""
    import pyflclient as fl
    from pyflclient.data import copy_models

    models = copy_models(model, len(clients), out / "ms")
    with RecordingServer(model, start_fl_job_threshold=len(clients), fl_iteration_num=iterations, client_epoch_num=1,
                         checkpoint_dir=str(out / "ckpt"), **server) as srv:
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                 sleep_time_ms=50, client_id=f"f{i}") for i, (c, m) in enumerate(zip(clients, models))]
        results = fl.Simulation(params, output_dir=out / "run", max_trainers=2, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=60)
        if srv.early_stop is None:
            assert set(results.status.values()) == {"SUCCESS"}, results.status
        done = max(m["iteration"] for m in srv.metrics())
        return RecordedJob({k: srv.global_model(k) for k in range(done + 1)},
                           {k: srv.uploads(k) for k in range(1, done + 1)}, results, srv.early_stop)


class CountingProxy:
    """A loopback HTTP proxy in front of a server that counts the device requests per (endpoint, fl_id).

    Test-only recording of what reaches the server: every request is forwarded as it is (one upstream
    connection per client connection, so held requests stay held) and each startFLJob is counted under
    its parsed fl_id. ``url`` is what the devices are given."""

    ROUNDS = {"startFLJob": "StartFLJobRequest"}

    def __init__(self, upstream: str) -> None:
        import http.client
        import http.server
        from urllib.parse import urlsplit

        from pyflclient.wire import protocol

        target = urlsplit(upstream)
        counts: dict[tuple[str, str], int] = {}
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                name = self.path.lstrip("/").split("?")[0]
                if name in CountingProxy.ROUNDS and body:
                    fl_id = getattr(protocol, CountingProxy.ROUNDS[name]).from_bytes(body).fl_id
                    with lock:
                        counts[(name, fl_id)] = counts.get((name, fl_id), 0) + 1
                if not hasattr(self, "upstream"):
                    self.upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=900)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type",)}
                self.upstream.request(method, self.path, body=body, headers=headers)
                reply = self.upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.getheader("Content-Type") or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._forward("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

        self.counts = counts
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
