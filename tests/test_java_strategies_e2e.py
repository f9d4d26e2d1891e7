"""The aggregation types with the real Java clients (LeNet, bundled digits) against the loopback server.

What the device does differently for a type (FedProx's proximal term, Scaffold's control variates,
qffl's loss at the received model, early stop by loss) is checked end to end: the Java client reads
the plan, trains, sends the appended fields, and the server aggregates them into the published model,
in the clear and under PW_ENCRYPT.
"""
from __future__ import annotations

import math

import numpy as np


from conftest import LENET_MS

CLIENTS = 4
ITERATIONS = 2


def run_job(bundled_clients, tmp_path, name, clients=CLIENTS, iterations=ITERATIONS, **server):  # type: ignore[no-untyped-def]
    from _recording import run_recorded_job

    job = run_recorded_job(LENET_MS, bundled_clients[:clients], tmp_path / name, iterations, **server)
    return job.models, job.uploads, job.results, job.early_stop, tmp_path / name


def _flat(model):  # type: ignore[no-untyped-def]
    return np.concatenate([np.ravel(model[n]).astype(np.float64) for n in sorted(model)])


def test_scaffold_devices_send_control_variates_and_keep_c_i_and_pw_encrypt_gives_the_same_models(
        bundled_clients, tmp_path):
    plain, uploads, results, _, out = run_job(bundled_clients, tmp_path, "scaffold", aggregation_type="Scaffold",
                                              scaffold_num_clients=CLIENTS)
    assert set(results.status.values()) == {"SUCCESS"}, results.status
    for k, ups in uploads.items():
        assert len(ups) == CLIENTS
        for u in ups:
            assert u.control_variate is not None and set(u.control_variate) == set(u.weights), (k, u.fl_id)
            assert all(np.isfinite(a).all() for a in u.control_variate.values())
    assert len(list((out / "ms").glob("*.scaffold"))) == CLIENTS  # c_i beside each device's model file
    masked, _, results, _, _ = run_job(bundled_clients, tmp_path, "scaffold-pw", aggregation_type="Scaffold",
                                       scaffold_num_clients=CLIENTS, encrypt_type="PW_ENCRYPT")
    assert set(results.status.values()) == {"SUCCESS"}, results.status
    for k in range(1, ITERATIONS + 1):
        # the masked sums are fixed-point (2^-24): c differs from the plain job's by ~1e-7, and iteration 2's
        # local steps carry that into the weights (measured: 2.5e-7 at most)
        want, got = _flat(plain[k]), _flat(masked[k])
        assert np.max(np.abs(got - want)) < 2e-6, k


def test_qffl_devices_report_their_loss_at_the_received_model_and_the_server_takes_the_qffl_step(
        bundled_clients, tmp_path):
    from pyflclient.server.strategies import aggregator
    from pyflclient.server.strategies.base import DeviceUpload

    models, uploads, results, _, _ = run_job(bundled_clients, tmp_path, "qffl", aggregation_type="qffl")
    assert set(results.status.values()) == {"SUCCESS"}, results.status
    shapes = {n: np.shape(a) for n, a in models[0].items()}
    for k, ups in uploads.items():
        losses = [u.loss for u in ups]
        assert all(loss is not None and math.isfinite(loss) and loss > 0 for loss in losses), losses
        if k == 1:  # the untrained LeNet over 62 classes: cross entropy near ln(62) for every device
            assert all(abs(loss - math.log(62)) < 0.5 for loss in losses), losses
        step = aggregator("qffl", shapes).aggregate(
            models[k - 1], {u.fl_id: DeviceUpload(u.data_size, u.weights, u.loss) for u in ups}, k)
        for name, want in step.items():
            np.testing.assert_array_equal(models[k][name], want, err_msg=f"iteration {k} {name}")


def test_fedprox_keeps_each_device_nearer_the_global_model_than_fedavg(bundled_clients, tmp_path):
    def update_norms(models, uploads):  # type: ignore[no-untyped-def]
        start = _flat(models[0])
        return np.array([np.linalg.norm(_flat(u.weights) / u.data_size - start) for u in uploads[1]])

    plain_models, plain_uploads, _, _, _ = run_job(bundled_clients, tmp_path, "fedavg", iterations=1)
    prox_models, prox_uploads, _, _, _ = run_job(bundled_clients, tmp_path, "fedprox", iterations=1,
                                                 aggregation_type="FedProx", fedprox_mu=10.0)
    plain, prox = update_norms(plain_models, plain_uploads), update_norms(prox_models, prox_uploads)
    print(f"\nupdate norms FedAvg {np.round(plain, 4)} FedProx mu=10 {np.round(prox, 4)}")
    assert np.all(prox < 0.9 * plain)


def test_a_loss_early_stop_ends_the_job_of_java_devices_before_fl_iteration_num(bundled_clients, tmp_path):
    models, uploads, results, reason, _ = run_job(bundled_clients, tmp_path, "stop", iterations=5,
                                                  early_stop_type="loss_abs", early_stop_weight=100.0,
                                                  early_stop_rounds=1)
    assert reason is not None and "loss_abs" in reason, reason
    assert sorted(uploads) == [1]
    assert all(u.loss is not None for u in uploads[1])
    assert "FAILED" not in set(results.status.values()), results.status
