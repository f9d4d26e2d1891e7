"""Several ``pyflclient server`` processes sharing one job through a real Redis (``--distributed-cache-address``).

Four server processes on consecutive ports, eight protocol-level devices that pick a random port per
request as r1.6's ELB client does (``--use_elb=true --server_num=4``) and retry another port or later on a
refused connection or ``SystemError``, as the r1.6 client does. Each test checks FedAvg exactly against numpy.
"""
from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.device import DeviceClient
from pyflclient.wire.protocol import PLAIN_TEXT_JOB_FINISHED, ResponseCode

from conftest import LENET_SHAPES, fedavg_of, random_model, upload_of

PROCESSES = 4
DEVICES = 8
ITERATIONS = 5


def consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


class ServerGroup:
    """``PROCESSES`` real ``python -m pyflclient.cli server`` processes on one Redis and one checkpoint folder."""

    def __init__(self, folder: Path, redis_address: str, model: dict[str, np.ndarray] | Path,
                 threshold: int = DEVICES, iterations: int = ITERATIONS, args: tuple[str, ...] = ()):
        self.folder = folder
        if isinstance(model, Path):  # a .ms device model, for Java clients
            self.model_path = model
        else:
            self.model_path = folder / "model.npz"
            np.savez(self.model_path, **model)
        self.threshold, self.iterations = threshold, iterations
        self.base = consecutive_free_ports(PROCESSES)
        self.ports = list(range(self.base, self.base + PROCESSES))
        self.redis_address = redis_address
        self.args = args
        self.processes: list[subprocess.Popen[str]] = []

    def start(self) -> "ServerGroup":
        for i, port in enumerate(self.ports):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "pyflclient.cli", "server", "--model", str(self.model_path),
                 "--fl-server-port", str(port), "--distributed-cache-address", self.redis_address,
                 "--start-fl-job-threshold", str(self.threshold), "--fl-iteration-num", str(self.iterations),
                 "--start-fl-job-time-window", "60000", "--update-model-time-window", "60000",
                 "--checkpoint-dir", str(self.folder / "ckpt"), "--get-model-hold-ms", "2000", *self.args],
                stdout=subprocess.PIPE, stderr=open(self.folder / f"server-{i}.log", "w"), text=True))
        for i, proc in enumerate(self.processes):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("listening on"), (self.folder / f"server-{i}.log").read_text()
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        return self

    def kill(self, index: int) -> None:
        os.kill(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait()

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log(self) -> str:
        return "\n".join((self.folder / f"server-{i}.log").read_text() for i in range(PROCESSES))


@pytest.fixture
def server_group(tmp_path: Path) -> Any:
    groups: list[ServerGroup] = []

    def start(redis_address: str, model: dict[str, np.ndarray] | Path, **settings: Any) -> ServerGroup:
        group = ServerGroup(tmp_path, redis_address, model, **settings).start()
        groups.append(group)
        return group

    yield start
    for group in groups:
        group.stop()


class ElbDevice:
    """One device that sends each request to a random port of the group (r1.6's ELB client) and retries on a
    refused connection (a dead process: another port) or ``SystemError`` (Redis away: a little later)."""

    def __init__(self, ports: list[int], fl_id: str, data_size: int, seed: int):
        self.ports = ports
        self.fl_id = fl_id
        self.data_size = data_size
        self.rng = random.Random(seed)
        self.system_errors = 0

    def call(self, round_name: str, *args: Any, port: int | None = None) -> Any:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            chosen = port or self.rng.choice(self.ports)
            client = DeviceClient(f"http://127.0.0.1:{chosen}", fl_id=self.fl_id, data_size=self.data_size,
                                  timeout=10)
            try:
                reply = getattr(client, round_name)(*args)
            except (ConnectionError, http.client.HTTPException, OSError):
                port = None  # that process is gone: another port, as the ELB client does
                continue
            finally:
                client.close()
            if not isinstance(reply, str) and reply.retcode == ResponseCode.SystemError:
                self.system_errors += 1
                time.sleep(0.2)
                continue
            return reply
        raise AssertionError(f"{self.fl_id}: no answer to {round_name} within 40 s")

    def join(self, iteration: int) -> Any:
        while True:
            reply = self.call("start_fl_job")
            assert reply != PLAIN_TEXT_JOB_FINISHED, f"{self.fl_id}: job finished before iteration {iteration}"
            if reply.retcode == ResponseCode.SUCCEED and reply.iteration == iteration:
                return reply
            time.sleep(0.05)  # the previous iteration is being published

    def upload(self, iteration: int, weights: dict[str, np.ndarray], port: int | None = None) -> None:
        reply = self.call("update_model", iteration, weights, port=port)
        # a retry of an upload whose reply was lost with its process: the first one is in the store
        assert reply.retcode == ResponseCode.SUCCEED or "already uploaded" in reply.reason, reply.reason

    def model(self, iteration: int) -> dict[str, np.ndarray]:
        while True:
            reply = self.call("get_model", iteration)
            if reply.retcode == ResponseCode.SUCCEED:
                return {n: np.asarray(a).reshape(LENET_SHAPES[n]) for n, a in reply.weights.items()}
            assert reply.retcode == ResponseCode.SucNotReady, reply.reason


def run_iteration(devices: list[ElbDevice], iteration: int,
                  after_upload: Callable[[int, ElbDevice], int | None] | None = None
                  ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Every device joins, uploads data_size × (model + noise), downloads the new model. Returns the numpy
    FedAvg (in fl_id order, as the server sums) and the model each device got. ``after_upload(i, device)``
    may name the port device i uploads to and act once it is acknowledged."""
    uploads: dict[str, tuple[dict[str, np.ndarray], int]] = {}

    def device_round(i: int) -> dict[str, np.ndarray]:
        d = devices[i]
        joined = d.join(iteration)
        _, up = upload_of(dict(joined.weights), d.data_size, seed=iteration * 100 + i)
        uploads[d.fl_id] = (up, d.data_size)
        d.upload(iteration, up)
        return d.model(iteration)

    with ThreadPoolExecutor(len(devices)) as pool:
        got = list(pool.map(device_round, range(len(devices))))
    order = sorted(uploads)
    want = fedavg_of([uploads[f][0] for f in order], [uploads[f][1] for f in order])
    return want, got


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name in want:
        np.testing.assert_array_equal(np.asarray(got[name]).reshape(-1), np.asarray(want[name]).reshape(-1),
                                      err_msg=name)


def devices_of(group: ServerGroup) -> list[ElbDevice]:
    return [ElbDevice(group.ports, f"dev-{i}", data_size=16 * (i + 1), seed=i) for i in range(DEVICES)]


def finish_job(group: ServerGroup, devices: list[ElbDevice], first: int) -> None:
    """Iterations ``first``..ITERATIONS, each exact; then the job is finished on every live process and the
    shared checkpoint folder holds every iteration's model."""
    models = {}
    for iteration in range(first, ITERATIONS + 1):
        want, got = run_iteration(devices, iteration)
        for model in got:
            assert_same(model, want)
        models[iteration] = want
    assert devices[0].call("start_fl_job") == PLAIN_TEXT_JOB_FINISHED
    checkpoints = Checkpoints(group.folder / "ckpt")
    for iteration, want in models.items():
        assert_same(checkpoints.load(iteration), want)


@pytest.mark.timeout(120)
def test_four_processes_serve_one_job_and_fedavg_is_exact(redis_server, server_group):
    group = server_group(redis_server.address, random_model(LENET_SHAPES, seed=1))
    devices = devices_of(group)
    finish_job(group, devices, first=1)
    for i in range(PROCESSES):  # every process answers for the shared job
        reply = DeviceClient(f"http://127.0.0.1:{group.ports[i]}").start_fl_job()
        assert reply == PLAIN_TEXT_JOB_FINISHED
    assert "Traceback" not in group.log()


@pytest.mark.timeout(120)
def test_a_process_killed_right_after_acknowledging_an_upload_loses_nothing(redis_server, server_group):
    group = server_group(redis_server.address, random_model(LENET_SHAPES, seed=2))
    devices = devices_of(group)
    for iteration in (1, 2):
        want, got = run_iteration(devices, iteration)
        assert_same(got[0], want)
    # iteration 3: dev-0 uploads to process 1 and gets SUCCEED; process 1 is SIGKILLed at once
    iteration = 3
    joined = devices[0].join(iteration)
    _, acknowledged = upload_of(dict(joined.weights), devices[0].data_size, seed=999)
    devices[0].upload(iteration, acknowledged, port=group.ports[1])
    group.kill(1)
    others: dict[str, tuple[dict[str, np.ndarray], int]] = {}

    def device_round(i: int) -> dict[str, np.ndarray]:
        d = devices[i]
        if i > 0:
            j = d.join(iteration)
            _, up = upload_of(dict(j.weights), d.data_size, seed=iteration * 100 + i)
            others[d.fl_id] = (up, d.data_size)
            d.upload(iteration, up)
        return d.model(iteration)

    with ThreadPoolExecutor(DEVICES) as pool:
        got = list(pool.map(device_round, range(DEVICES)))
    others["dev-0"] = (acknowledged, devices[0].data_size)
    order = sorted(others)
    want = fedavg_of([others[f][0] for f in order], [others[f][1] for f in order])
    for model in got:
        assert_same(model, want)
    finish_job(group, devices, first=iteration + 1)


@pytest.mark.timeout(120)
def test_redis_away_for_3_s_mid_iteration_and_the_job_finishes(durable_redis_server, server_group):
    group = server_group(durable_redis_server.address, random_model(LENET_SHAPES, seed=3))
    devices = devices_of(group)
    want, got = run_iteration(devices, 1)
    assert_same(got[0], want)
    # iteration 2: half the devices upload, Redis dies for 3 s, the others join and upload meanwhile (retrying)
    iteration = 2
    uploads: dict[str, tuple[dict[str, np.ndarray], int]] = {}
    acknowledged = threading.Semaphore(0)
    redis_killed = threading.Event()

    def device_round(i: int) -> dict[str, np.ndarray]:
        d = devices[i]
        j = d.join(iteration)
        _, up = upload_of(dict(j.weights), d.data_size, seed=iteration * 100 + i)
        uploads[d.fl_id] = (up, d.data_size)
        if i >= DEVICES // 2:
            assert redis_killed.wait(timeout=30)
        d.upload(iteration, up)
        if i < DEVICES // 2:
            acknowledged.release()
        return d.model(iteration)

    with ThreadPoolExecutor(DEVICES) as pool:
        futures = [pool.submit(device_round, i) for i in range(DEVICES)]
        for _ in range(DEVICES // 2):
            assert acknowledged.acquire(timeout=30)
        durable_redis_server.kill()
        redis_killed.set()
        time.sleep(3)  # the outage itself: the devices meanwhile get SystemError and retry
        durable_redis_server.start()
        got = [f.result() for f in futures]
    order = sorted(uploads)
    want = fedavg_of([uploads[f][0] for f in order], [uploads[f][1] for f in order])
    for model in got:
        assert_same(model, want)
    assert sum(d.system_errors for d in devices) > 0  # the outage was seen by the devices
    finish_job(group, devices, first=iteration + 1)
    log = group.log()
    assert "Traceback" not in log
    for i in range(PROCESSES):  # at most one line per process for the outage
        text = (group.folder / f"server-{i}.log").read_text()
        assert text.count("unreachable") <= 1, text


@pytest.mark.timeout(120)
def test_the_whole_group_and_redis_restarted_resume_at_the_next_iteration(redis_server, server_group):
    model = random_model(LENET_SHAPES, seed=4)
    group = server_group(redis_server.address, model)
    devices = devices_of(group)
    for iteration in (1, 2):
        want, got = run_iteration(devices, iteration)
        assert_same(got[0], want)
    group.stop()
    redis_server.stop()
    redis_server.start()  # empty: no persistence; the checkpoints are all that is left
    group = server_group(redis_server.address, model)
    for d in devices:
        d.ports = group.ports
    assert devices[0].join(3).iteration == 3
    assert_same(devices[1].model(2), want)
    finish_job(group, devices, first=3)


def test_the_seeds_elb_java_clients_train_against_four_processes(server_group, redis_server, bundled_clients,
                                                                client_models, tmp_path):
    """r1.6's client side, ``--use_elb=true --server_num=4``: 4 Java clients, each request to a random process."""
    import pyflclient as fl
    from conftest import LENET_MS

    group = server_group(redis_server.address, LENET_MS, threshold=4, iterations=2)
    models = client_models(4)
    params = fl.params_for_clients(bundled_clients[:4], models, f"http://127.0.0.1:{group.base}", use_elb=True,
                                   server_num=PROCESSES, sleep_time_ms=50)
    results = fl.Simulation(params, output_dir=tmp_path / "run", max_trainers=2, progress=False).run(timeout=300)
    assert set(results.status.values()) == {"SUCCESS"}
    served = Checkpoints(tmp_path / "ckpt").latest()
    assert served is not None and served[0] == 2  # both iterations closed once, by one of the processes
    assert "Traceback" not in group.log()


def test_pw_encrypt_across_four_processes_survives_a_dropout_and_publishes_the_fedavg(redis_server, server_group):
    """PW_ENCRYPT's phases live in Redis: device i talks to process i mod 4 throughout, one device vanishes after
    shareSecrets, and the published model is the FedAvg of the seven uploads."""
    from pyflclient.server.device import MaskingDevice

    from test_server_secure_aggregation import assert_close, pw_iteration

    model = random_model({"fc.weight": (4, 3), "fc.bias": (4,)}, seed=5)
    group = server_group(redis_server.address, model, iterations=1,
                         args=("--encrypt-type", "PW_ENCRYPT", "--update-model-ratio", str(7 / 8),
                               "--reconstruct-secrets-threshold", "5"))
    devices = [MaskingDevice(f"http://127.0.0.1:{group.ports[i % PROCESSES]}", fl_id=f"dev-{i}", data_size=10 + i)
               for i in range(DEVICES)]
    try:
        k, plain = pw_iteration(None, devices, vanish_after_share={"dev-2"})
        deadline = time.monotonic() + 30
        while True:
            reply = devices[0].get_model(k)
            if reply.retcode == ResponseCode.SUCCEED or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert reply.retcode == ResponseCode.SUCCEED, reply.reason
        sizes = {d.fl_id: d.data_size for d in devices}
        assert_close(reply.weights, fedavg_of(list(plain.values()), [sizes[f] for f in plain]))
    finally:
        for d in devices:
            d.close()
    assert "Traceback" not in group.log()
