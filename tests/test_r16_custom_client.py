"""A custom case written for MindSpore r1.6 compiles against the client jar and trains.

r1.6's tutorial tells users to write their own ``ModelClient.java`` inheriting
``com.mindspore.flclient.model.Client``. ``tests/r16_client/`` is such a case, shaped
like r1.6's LenetClient and using only r1.6 types (``Client``, ``DataSet``,
``Callback``, ``LossCallback``, ``RunType``, ``Status`` and MindSpore Lite's
``LiteSession``/``MSTensor``). It is compiled here with ``javac`` against
``mindspore-lite-java-flclient.jar`` alone, then two ``java … SyncFLJob`` processes
train it for two iterations against the project's server, and one infers with it.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from _recording import RecordingServer
from pyflclient.client.jvm import find_jars
from test_java_client_e2e import LENET, Device, assert_model_files_hold, make_device

SOURCES = Path(__file__).resolve().parent / "r16_client"
CASE = "com.example.r16.ModelClient"
CLIENTS = 2
ITERATIONS = 2
EPOCHS = 3

pytestmark = pytest.mark.timeout(400)


@dataclass
class Run:
    server: RecordingServer
    devices: list[Device]
    classes: Path
    exit_codes: list[int]
    outputs: list[str]


def r16_client(classes: Path, device: Device, url: str, task: str, *extra: str) -> list[str]:
    client_jar, _ = find_jars()
    return ["java", "-Xmx256m", "-cp", f"{client_jar}:{classes}", "com.mindspore.flclient.SyncFLJob",
            "--task", task, "--flName", CASE, "--trainModelPath", str(device.model), "--domainName", url,
            "--trainData", f"{device.train[0]},{device.train[1]}", "--evalData", f"{device.test[0]},{device.test[1]}",
            "--clientID", device.fl_id, "--logPath", str(device.log), *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("r16")
    classes = root / "classes"
    client_jar, _ = find_jars()
    javac = subprocess.run(["javac", "-d", str(classes), "-cp", str(client_jar),
                            *map(str, sorted(SOURCES.rglob("*.java")))], capture_output=True, text=True)
    assert javac.returncode == 0, javac.stdout + javac.stderr
    devices = [make_device(root, i) for i in range(CLIENTS)]
    with RecordingServer(LENET, start_fl_job_threshold=CLIENTS, fl_iteration_num=ITERATIONS, client_epoch_num=EPOCHS,
                         client_batch_size=32, client_learning_rate=0.01, start_fl_job_time_window=120_000,
                         update_model_time_window=120_000) as srv:
        procs = []
        for d in devices:
            with open(d.folder / "java.out", "w") as sink:
                procs.append(subprocess.Popen(r16_client(classes, d, srv.url, "train"), stdout=sink,
                                              stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=300) for p in procs]
        assert srv.wait_finished(timeout=30), f"server did not finish: {srv.metrics()}"
        yield Run(srv, devices, classes, codes, [(d.folder / "java.out").read_text() for d in devices])


def test_the_r16_case_trains_two_iterations_in_every_client(run: Run) -> None:
    assert run.exit_codes == [0] * CLIENTS, "\n".join(run.outputs)
    assert [m["uploaded"] for m in run.server.metrics()] == [CLIENTS] * ITERATIONS


def test_the_r16_case_uploads_its_trained_weights_and_saves_the_global_model(run: Run) -> None:
    run.server.assert_global_model_is_fedavg(ITERATIONS)
    assert_model_files_hold(run.devices, run.server.global_model())


def test_the_r16_loss_callback_logs_r16s_lines_and_the_loss_falls(run: Run) -> None:
    for d in run.devices:
        log = d.log.read_text()
        epochs = re.findall(r"INFO: <FLClient> ----------epoch:(\d+),average loss:([-+0-9.Ee]+) ----------", log)
        assert [int(e) for e, _ in epochs] == list(range(EPOCHS)) * ITERATIONS, log
        batches = -(-len(np.fromfile(d.train[1], dtype=np.int32)) // 32)
        steps = re.findall(r"INFO: <FLClient> batch:(\d+),loss:[-+0-9.Ee]+", log)
        assert [int(s) for s in steps] == list(range(batches)) * EPOCHS * ITERATIONS
        losses = [float(v) for _, v in epochs]
        assert losses[-1] < losses[0], losses
        accs = re.findall(r"INFO: <FLClient> \[evaluate\] evaluate acc: ([0-9.]+)", log)
        assert len(accs) == ITERATIONS and all(0.0 <= float(a) <= 1.0 for a in accs)


def test_the_r16_case_infers_one_label_per_image(run: Run) -> None:
    d = run.devices[0]
    proc = subprocess.run(r16_client(run.classes, d, run.server.url, "inference", "--inferData", str(d.test[0])),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = re.findall(r"\[model inference\] the predicted labels: \[([0-9, ]*)\]", d.log.read_text())[-1]
    labels = [int(v) for v in line.split(",")]
    assert len(labels) == len(np.fromfile(d.test[1], dtype=np.int32))
