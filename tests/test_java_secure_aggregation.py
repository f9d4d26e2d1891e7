"""PW_ENCRYPT and DP_ENCRYPT with the real Java clients (8 simulated devices in this process's JVM) against the
loopback server: the masked job publishes the same models as the plain job of the same seed, the server never
holds an unmasked upload, and DP_ENCRYPT changes the uploads by clipping and noise."""
from __future__ import annotations

import numpy as np
import pytest

import pyflclient as fl

from conftest import LENET_MS

CLIENTS = 8
ITERATIONS = 3


def run_job(bundled_clients, tmp_path, name, clients=CLIENTS, iterations=ITERATIONS, **server):  # type: ignore[no-untyped-def]
    from _recording import run_recorded_job

    job = run_recorded_job(LENET_MS, bundled_clients[:clients], tmp_path / name, iterations, **server)
    return job.models, job.uploads, tmp_path / name


@pytest.fixture(scope="module")
def plain_and_masked(bundled_clients, tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("pw")
    plain = run_job(bundled_clients, tmp, "plain")
    masked = run_job(bundled_clients, tmp, "masked", encrypt_type="PW_ENCRYPT")
    return plain, masked


def test_the_pw_encrypt_job_publishes_the_models_of_the_plain_job(plain_and_masked):
    (plain, _, _), (masked, _, _) = plain_and_masked
    worst = 0.0
    for k in range(1, ITERATIONS + 1):
        for name, want in plain[k].items():
            got = masked[k][name]
            worst = max(worst, float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-3))))
    print(f"\nlargest relative difference PW_ENCRYPT vs NOT_ENCRYPT over {ITERATIONS} iterations: {worst:.3g}")
    assert worst < 1e-5


def test_no_unmasked_upload_reaches_the_server_its_log_or_checkpoints(plain_and_masked):
    from pyflclient.wire import secagg

    (plain_models, plain_uploads, _), (_, masked_uploads, out) = plain_and_masked
    received, uploads, updates = [], [], []
    for k in range(1, ITERATIONS + 1):
        start = secagg.flatten(plain_models[k - 1])
        truth = {u.fl_id: secagg.flatten(u.weights) for u in plain_uploads[k]}
        for u in masked_uploads[k]:
            received.append(secagg.dequantise(np.concatenate([secagg.wire_to_ring(np.reshape(u.weights[n], -1))
                                                              for n in sorted(u.weights)])))
            uploads.append(truth[u.fl_id])
            updates.append(truth[u.fl_id] / u.data_size - start)  # the device's trained − received weights
            # one device, one iteration: 66,404 values, so |r| of unrelated data is ~N(0, 0.0039): 0.03 is 7.7 sigma
            assert abs(np.corrcoef(received[-1], uploads[-1])[0, 1]) < 0.03
            assert abs(np.corrcoef(received[-1], updates[-1])[0, 1]) < 0.03
    # all 24 uploads: 1.6 M values, sigma 0.0008; a mask that leaked any of the update would show far above 0.01
    everything = np.concatenate(received)
    assert abs(np.corrcoef(everything, np.concatenate(uploads))[0, 1]) < 0.01
    assert abs(np.corrcoef(everything, np.concatenate(updates))[0, 1]) < 0.01
    # the checkpoints hold the global models only; no upload's bytes are in any file the server wrote
    probe = {u.fl_id: np.ascontiguousarray(next(iter(u.weights.values())), "<f4").tobytes()[:64]
             for u in plain_uploads[1]}
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(p in data for p in probe.values()), path


def update_norms(models, uploads):  # type: ignore[no-untyped-def]
    """‖upload / data_size − the global model the device received‖ of each device of iteration 1."""
    start = models[0]
    return [float(np.sqrt(sum(np.sum((np.ravel(u.weights[n]) / u.data_size - np.ravel(start[n])).astype(np.float64)
                                     ** 2) for n in start))) for u in uploads[1]]


def test_dp_encrypt_without_noise_clips_each_update_to_dp_norm_clip(bundled_clients, tmp_path):
    models, uploads, _ = run_job(bundled_clients, tmp_path, "clip", clients=2, iterations=1, encrypt_type="DP_ENCRYPT",
                                 dp_eps=float("inf"), dp_norm_clip=0.05)
    norms = update_norms(models, uploads)
    assert all(0.049 < n < 0.0501 for n in norms), norms  # trained updates are far longer: every one was clipped


def test_dp_encrypt_adds_gaussian_noise_of_the_mechanisms_sigma(bundled_clients, tmp_path):
    import math

    eps, delta, clip = 1.0, 0.01, 0.01
    models, uploads, _ = run_job(bundled_clients, tmp_path, "noise", clients=2, iterations=1, encrypt_type="DP_ENCRYPT",
                                 dp_eps=eps, dp_delta=delta, dp_norm_clip=clip)
    sigma = clip * math.sqrt(2 * math.log(1.25 / delta)) / eps
    values = sum(np.size(a) for a in models[0].values())
    for n in update_norms(models, uploads):  # noise dominates: ‖d‖ ≈ σ·sqrt(values)
        assert abs(n / (sigma * math.sqrt(values)) - 1) < 0.05, (n, sigma * math.sqrt(values))


def test_seven_java_clients_and_one_device_that_vanishes_after_share_secrets_give_the_fedavg_of_the_seven(
        bundled_clients, tmp_path):
    """The masked job of 7 Java clients and a protocol device that leaves after shareSecrets publishes the model
    that the plain job of the same 7 clients publishes: the dropout's masks were rebuilt and removed."""
    import threading
    import time

    from pyflclient.data import copy_models
    from pyflclient.server import Server
    from pyflclient.server.device import MaskingDevice
    from pyflclient.wire.protocol import ResponseCode

    seven = CLIENTS - 1
    plain, _, _ = run_job(bundled_clients, tmp_path, "plain7", clients=seven, iterations=1)
    models = copy_models(LENET_MS, seven, tmp_path / "ms")
    with Server(LENET_MS, start_fl_job_threshold=CLIENTS, fl_iteration_num=1, client_epoch_num=1,
                encrypt_type="PW_ENCRYPT", update_model_ratio=seven / CLIENTS, reconstruct_secrets_threshold=5) as srv:
        vanishing = MaskingDevice(srv.url, fl_id="zz-vanishes", data_size=40)
        left: list[str] = []

        def share_then_vanish() -> None:  # the device's rounds until shareSecrets, polling as a device does
            joined = vanishing.start_fl_job()
            while not hasattr(joined, "retcode") or joined.retcode != ResponseCode.SUCCEED:
                time.sleep(0.05)
                joined = vanishing.start_fl_job()
            assert vanishing.exchange_keys(1)["retcode"] == ResponseCode.SUCCEED
            while vanishing.get_keys(1)["retcode"] == ResponseCode.SucNotReady:
                time.sleep(0.05)
            left.append(vanishing.share_secrets(1, joined.plan.t)["reason"])
            vanishing.close()

        thread = threading.Thread(target=share_then_vanish, daemon=True)
        thread.start()
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                 sleep_time_ms=50, client_id=f"f{i}")
                  for i, (c, m) in enumerate(zip(bundled_clients[:seven], models))]
        results = fl.Simulation(params, output_dir=tmp_path / "run", max_trainers=2, progress=False).run(timeout=600)
        thread.join(timeout=60)
        assert srv.wait_finished(timeout=60)
        assert left == ["shares kept"] and set(results.status.values()) == {"SUCCESS"}
        assert srv.metrics()[-1]["uploaded"] == seven and srv.metrics()[-1]["valid"]
        masked = srv.global_model(1)
    worst = max(float(np.max(np.abs(masked[n] - w) / np.maximum(np.abs(w), 1e-3))) for n, w in plain[1].items())
    print(f"\nlargest relative difference, one dropout after shareSecrets vs the plain 7: {worst:.3g}")
    assert worst < 1e-5
