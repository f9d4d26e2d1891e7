"""End to end without JPype: the project's server and four `java -cp … SyncFLJob` processes.

The seed runs one JVM per device from a shell (run_client_x86.py); this is that path.
Four clients with different data sizes train the shipped LeNet `.ms` for three
iterations on a generated task that a CNN learns fast (the class is the bright
quadrant of the image, 4 classes), so the test can demand accuracy well above
chance. The server records the uploads, so the final global model can be checked
against FedAvg computed here from what the Java clients really sent. The last client
is started exactly as MindSpore r1.6's run_client_x86.py starts one (`java
--module-path=… -jar mindspore-lite-java-flclient.jar` and 22 positional arguments),
its output redirected to client.log as the seed does.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from pyflclient.client.jvm import find_jars
from pyflclient.model import LENET_TRAIN_MS as LENET, msfile
from _recording import RecordingServer

CASE = "com.mindspore.flclient.demo.lenet.LenetClient"
CLIENTS = 4
ITERATIONS = 3
EPOCHS = 5
CLASSES = 4
#: 96, 112, 128, 144 training images: two clients need a padded last batch of 32.
TRAIN_SIZES = [96 + 16 * i for i in range(CLIENTS)]
TEST_SIZE = 64

pytestmark = pytest.mark.timeout(600)


def quadrant_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images NHWC (32, 32, 3) in [0, 1]: noise plus a bright 16×16 quadrant; the label is the quadrant."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    images = rng.uniform(0.0, 0.3, (n, 32, 32, 3)).astype(np.float32)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 2)
        images[i, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16, :] += 0.7
    return images, labels


@dataclass
class Device:
    index: int
    folder: Path
    model: Path
    train: tuple[Path, Path]
    test: tuple[Path, Path]

    @property
    def log(self) -> Path:
        return self.folder / "client.log"

    @property
    def fl_id(self) -> str:
        return f"f{self.index}"


def make_device(root: Path, i: int) -> Device:
    folder = root / f"client_{i}"
    folder.mkdir(parents=True)
    files = {}
    for part, n, seed in (("train", TRAIN_SIZES[i], i), ("test", TEST_SIZE, 100 + i)):
        x, y = quadrant_task(n, seed)
        files[part] = (folder / f"f{i}_bn_{n}_{part}_data.bin", folder / f"f{i}_bn_{n}_{part}_label.bin")
        x.tofile(files[part][0])
        y.tofile(files[part][1])
    model = folder / f"lenet_train{i}.ms"
    shutil.copy(LENET, model)
    return Device(i, folder, model, files["train"], files["test"])


def java_client(device: Device, url: str, task: str, *extra: str) -> list[str]:
    client_jar, case_jar = find_jars()
    return ["java", "-Xmx256m", "-cp", f"{client_jar}:{case_jar}", "com.mindspore.flclient.SyncFLJob",
            "--task", task, "--flName", CASE, "--trainModelPath", str(device.model), "--domainName", url,
            "--trainData", f"{device.train[0]},{device.train[1]}", "--evalData", f"{device.test[0]},{device.test[1]}",
            "--batchSize", "32", "--clientID", device.fl_id, "--logPath", str(device.log), *extra]


def seed_positional_client(device: Device, url: str) -> list[str]:
    """The command run_client_x86.py builds: each jar alone in a folder, both folders on
    --module-path, the client jar run with -jar, 22 positional arguments, no log option."""
    client_jar, case_jar = find_jars()
    jar_dir, case_dir = device.folder / "jarX86", device.folder / "case_jar"
    jar_dir.mkdir()
    case_dir.mkdir()
    shutil.copy(client_jar, jar_dir)
    shutil.copy(case_jar, case_dir)
    train = f"{device.train[0]},{device.train[1]}"
    test = f"{device.test[0]},{device.test[1]}"
    return ["java", "-Xmx256m", f"--module-path={jar_dir}:{case_dir}", "-jar", str(jar_dir / client_jar.name),
            train, test, test, ",", CASE, str(device.model), str(device.model), "TLSv1.2", "x86", url, "null",
            "false", "1", "train", "1", "NOT_BINDING_CORE", "null", "null", ",", "FEDERATED_LEARNING", "32", "null"]


POSITIONAL = CLIENTS - 1  # index of the client started the seed's way


@dataclass
class Run:
    server: RecordingServer
    devices: list[Device]
    exit_codes: list[int]
    outputs: list[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("e2e")
    devices = [make_device(root, i) for i in range(CLIENTS)]
    with RecordingServer(LENET, start_fl_job_threshold=CLIENTS, fl_iteration_num=ITERATIONS, client_epoch_num=EPOCHS,
                client_batch_size=32, client_learning_rate=0.01, start_fl_job_time_window=120_000,
                update_model_time_window=120_000) as srv:
        procs, outs = [], []
        for d in devices:
            seed_way = d.index == POSITIONAL
            out = d.log if seed_way else d.folder / "java.out"
            cmd = seed_positional_client(d, srv.url) if seed_way else java_client(d, srv.url, "train")
            with open(out, "w") as sink:
                procs.append(subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT))
            outs.append(out)
        codes = [p.wait(timeout=400) for p in procs]
        assert srv.wait_finished(timeout=30), f"server did not finish: {srv.metrics()}"
        yield Run(srv, devices, codes, [o.read_text() for o in outs])


def test_every_java_client_process_finishes_the_job_with_exit_code_0(run: Run) -> None:
    assert run.exit_codes == [0] * CLIENTS, "\n".join(run.outputs)
    assert [m["uploaded"] for m in run.server.metrics()] == [CLIENTS] * ITERATIONS


def test_each_client_sends_its_own_training_sample_count_as_data_size(run: Run) -> None:
    anonymous_ids = set()
    for it in range(1, ITERATIONS + 1):
        sizes = {u.fl_id: u.data_size for u in run.server.uploads(it)}
        named = {d.fl_id: TRAIN_SIZES[d.index] for d in run.devices if d.index != POSITIONAL}
        assert {k: v for k, v in sizes.items() if k in named} == named
        # the seed's form sets no fl_id: a random UUID, one per client for the whole job
        (anonymous,) = set(sizes) - set(named)
        assert sizes[anonymous] == TRAIN_SIZES[POSITIONAL]
        anonymous_ids.add(anonymous)
    assert len(anonymous_ids) == 1


def test_the_final_global_model_is_the_fedavg_of_what_the_java_clients_uploaded(run: Run) -> None:
    run.server.assert_global_model_is_fedavg(ITERATIONS)


def test_each_upload_is_the_clients_trained_weights_times_its_data_size(run: Run) -> None:
    """upload / data_size is a model of the size of the average of all of them; an unscaled
    upload would be data_size (96–144) times smaller, a doubly scaled one that much larger."""
    uploads = run.server.uploads(ITERATIONS)
    final = run.server.global_model()
    for u in uploads:
        local = np.concatenate([u.weights[n].reshape(-1) / u.data_size for n in sorted(final)])
        avg = np.concatenate([final[n].reshape(-1) for n in sorted(final)])
        ratio = np.linalg.norm(local) / np.linalg.norm(avg)
        assert 0.5 < ratio < 2.0, f"{u.fl_id}: |upload / data_size| = {ratio:.3f} x |global model|"


def assert_model_files_hold(devices: list[Device], weights: dict[str, np.ndarray]) -> None:
    for d in devices:
        saved = msfile.trainable_weights(d.model)
        for name, arr in weights.items():
            np.testing.assert_array_equal(saved[name].reshape(-1), arr.reshape(-1), err_msg=f"{d.model}: {name}")


def test_each_client_saved_the_final_global_model_into_its_model_file(run: Run) -> None:
    assert_model_files_hold(run.devices, run.server.global_model())


def test_each_client_log_has_the_seeds_loss_accuracy_and_round_lines(run: Run) -> None:
    for d in run.devices:
        log = d.log.read_text()
        losses = re.findall(r"----------epoch:(\d+),average loss:([-+0-9.Ee]+) ----------", log)
        assert len(losses) == ITERATIONS * EPOCHS, log
        assert all(np.isfinite(float(v)) for _, v in losses)
        assert len(re.findall(r"\[evaluate\] evaluate acc: [0-9.]+", log)) == ITERATIONS, log
        for it in range(1, ITERATIONS + 1):
            assert f"[startFLJob] startFLJob succeed, curIteration: {it}" in log
        assert log.count("[getModel] get response from server ok!") == ITERATIONS


def test_padding_of_the_last_batch_is_logged_not_silent(run: Run) -> None:
    for d in run.devices:
        pad = -TRAIN_SIZES[d.index] % 32
        log = d.log.read_text()
        if pad:
            assert f"the last batch is completed with {pad} repeated samples" in log, log
        else:
            assert "repeated samples" not in log.split("[evaluate]")[0]


def test_the_final_model_classifies_the_generated_task_far_above_chance(run: Run) -> None:
    final_acc = []
    for d in run.devices:
        accs = [float(a) for a in re.findall(r"\[evaluate\] evaluate acc: ([0-9.]+)", d.log.read_text())]
        final_acc.append(accs[-1])
    chance = 1 / CLASSES
    assert min(final_acc) > chance + 0.25, f"final accuracies {final_acc}, chance {chance}"


def test_inference_task_logs_one_predicted_label_per_test_image(run: Run) -> None:
    d = run.devices[0]
    proc = subprocess.run(java_client(d, run.server.url, "inference", "--inferData", str(d.test[0])),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = re.findall(r"\[model inference\] the predicted labels: \[([0-9, ]*)\]", d.log.read_text())[-1]
    labels = np.array([int(v) for v in line.split(",")])
    truth = np.fromfile(d.test[1], dtype=np.int32)
    assert labels.shape == truth.shape
    assert (labels == truth).mean() > 1 / CLASSES + 0.25


def test_getmodel_task_writes_the_servers_newest_model_into_a_fresh_copy(run: Run, tmp_path: Path) -> None:
    d = run.devices[1]
    fresh = tmp_path / "fresh.ms"
    shutil.copy(LENET, fresh)
    cmd = java_client(d, run.server.url, "getModel")
    cmd[cmd.index("--trainModelPath") + 1] = str(fresh)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = msfile.trainable_weights(fresh)
    for name, arr in run.server.global_model().items():
        np.testing.assert_array_equal(saved[name].reshape(-1), arr.reshape(-1), err_msg=name)


def test_a_bad_argument_exits_with_code_2_and_names_it(tmp_path: Path) -> None:
    client_jar, case_jar = find_jars()
    proc = subprocess.run(["java", "-cp", f"{client_jar}:{case_jar}", "com.mindspore.flclient.SyncFLJob",
                           "--task", "train", "--domainName", "ftp://x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "FLParameter.domainName = ftp://x" in proc.stderr


@pytest.mark.parametrize("tls", ["TLSv1.2", "TLSv1.3"])
def test_a_java_client_trains_over_https_trusting_the_servers_self_signed_certificate(tmp_path: Path,
                                                                                     tls: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                          capture_output=True, text=True)
    assert made.returncode == 0, f"openssl cannot make a test certificate: {made.stderr}"
    device = make_device(tmp_path, 0)
    with RecordingServer(LENET, start_fl_job_threshold=1, fl_iteration_num=1, client_epoch_num=1,
                         client_batch_size=32, ssl_cert=str(cert), ssl_key=str(key)) as srv:
        assert srv.url.startswith("https://")
        proc = subprocess.run(java_client(device, srv.url, "train", "--certPath", str(cert), "--sslProtocol", tls),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, device.log.read_text() if device.log.exists() else proc.stderr
        assert [u.fl_id for u in srv.uploads(1)] == [device.fl_id]
