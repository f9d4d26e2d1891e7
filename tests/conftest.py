"""Shared fixtures. Each fixture says what real thing it provides; add yours in its own section."""
from __future__ import annotations

import os

# Ray's core would put its SIGSEGV handler over the JVM's (which takes SIGSEGV in normal work) in a
# process that runs both, as the Ray tests do; Ray reads this when it is imported (ray_backend.import_ray).
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
from typing import Any, Callable, Iterator

import numpy as np
import pytest

# -- FL server (pyflclient.server) ------------------------------------------------------

#: the 8 trainable weights of LeNet5 (3×32×32 → 62): 66,404 floats
LENET_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.weight": (6, 3, 5, 5), "conv2.weight": (16, 6, 5, 5),
    "fc1.weight": (120, 400), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
    "fc3.weight": (62, 84), "fc3.bias": (62,),
}


def random_model(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.fixture
def small_model() -> dict[str, np.ndarray]:
    """A three-weight model, small enough to read in a failure message."""
    return random_model({"conv.weight": (2, 1, 3, 3), "fc.weight": (4, 3), "fc.bias": (4,)}, seed=1)


@pytest.fixture
def lenet_weights() -> dict[str, np.ndarray]:
    """A LeNet-size model with random weights."""
    return random_model(LENET_SHAPES, seed=2)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Any]]:
    """``start_server(model, **settings)`` → a running ``pyflclient.Server`` on a free loopback port,
    recording uploads; every server started is stopped at the end of the test."""
    from _recording import RecordingServer

    started: list[RecordingServer] = []

    def start(model: Any, **settings: Any) -> RecordingServer:
        srv = RecordingServer(model, **settings).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def device() -> Iterator[Callable[..., Any]]:
    """``device(url, data_size=..., fl_id=...)`` → a protocol-speaking DeviceClient, closed at the end."""
    from pyflclient.server.device import DeviceClient

    made: list[DeviceClient] = []

    def make(url: str, **kwargs: Any) -> DeviceClient:
        client = DeviceClient(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def upload_of(model: dict[str, np.ndarray], data_size: int, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """A device's trained weights w (model + noise) and its upload data_size × w, as a device sends it."""
    rng = np.random.default_rng(seed)
    trained = {n: (a + rng.normal(0, 0.05, a.shape)).astype(np.float32) for n, a in model.items()}
    return trained, {n: (a * np.float32(data_size)).astype(np.float32) for n, a in trained.items()}


def fedavg_of(uploads: list[dict[str, np.ndarray]], data_sizes: list[int]) -> dict[str, np.ndarray]:
    """The reference FedAvg in plain numpy: Σ uploads / Σ data_size, in float64, as float32."""
    total = sum(data_sizes)
    return {n: (sum(u[n].astype(np.float64) for u in uploads) / total).astype(np.float32) for n in uploads[0]}


@pytest.fixture
def run_round() -> Callable[..., dict[str, np.ndarray]]:
    """``run_round(srv, devices, seed)``: every device joins, uploads data_size × (model + noise);
    returns the numpy FedAvg the server must publish for that iteration."""
    from pyflclient.wire.protocol import ResponseCode

    def run(srv: Any, devices: list[Any], seed: int = 0) -> dict[str, np.ndarray]:
        joined = [d.start_fl_job() for d in devices]
        assert all(j.retcode == ResponseCode.SUCCEED for j in joined), [j.reason for j in joined]
        iteration = joined[0].iteration
        uploads = []
        for i, (d, j) in enumerate(zip(devices, joined)):
            _, up = upload_of(dict(j.weights), d.data_size, seed * 1000 + i)
            uploads.append(up)
            reply = d.update_model(iteration, up)
            assert reply.retcode == ResponseCode.SUCCEED, reply.reason
        assert srv.wait_iteration(iteration, timeout=30)
        return fedavg_of(uploads, [d.data_size for d in devices])

    return run


# -- JPype bridge (pyflclient.FLJob / Simulation) ------------------------------------------------
# One JVM per pytest process (JPype cannot restart it): every bridge test shares the one
# pyflclient._jvm starts with the jars found in the documented order (env override,
# pyflclient/jars/, jars/*/target/).

from pyflclient.model import LENET_TRAIN_MS as LENET_MS  # noqa: E402  (the model the package ships)


@pytest.fixture(scope="session")
def bundled_clients(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """20 real non-IID clients of the bundled MNIST digits (bin layout, batch 32)."""
    from pyflclient.data import build_bundled_clients

    return build_bundled_clients(tmp_path_factory.mktemp("bundled") / "data", num_clients=20, batch_size=32, seed=0)


@pytest.fixture
def client_models(tmp_path: Any) -> Callable[[int], list[Any]]:
    """``client_models(n)`` → n fresh copies of the shipped LeNet .ms, one per client."""
    from pyflclient.data import copy_models

    return lambda n: copy_models(LENET_MS, n, tmp_path / "ms")


# -- Redis (the distributed cache of a server group) ---------------------------------------
# A real redis-server (Debian's, installed by .ci/run) on a free loopback port in a temp dir.


class RedisServer:
    """One ``redis-server`` process; ``kill()`` SIGKILLs it, ``start()`` brings it back on the same port
    and folder (with ``durable``: the append-only file, fsynced at every write, so nothing acknowledged is lost)."""

    def __init__(self, folder: Any, durable: bool):
        import socket

        self.folder = folder
        self.durable = durable
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.process: Any = None

    def start(self) -> "RedisServer":
        import subprocess
        import time

        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", *persistence, "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.ping():
            assert self.process.poll() is None, (self.folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer PING within 20 s"
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError):
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait()


def _running_redis(tmp_path_factory: pytest.TempPathFactory, durable: bool) -> Iterator[RedisServer]:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    server = RedisServer(tmp_path_factory.mktemp("redis"), durable=durable).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, no persistence, stopped at the end of the test."""
    yield from _running_redis(tmp_path_factory, durable=False)


@pytest.fixture
def durable_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server whose append-only file (fsync always, in a temp dir) survives ``kill()``."""
    yield from _running_redis(tmp_path_factory, durable=True)
