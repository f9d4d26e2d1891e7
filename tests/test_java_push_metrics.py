"""The Java client pushes its loss and accuracy after its evaluation (r1.6's /pushMetrics), over HTTP.

Four real Java clients (threads of this process's JVM, the same code as a device's) train the
shipped LeNet for two iterations against the real server on loopback; what the server filed
under each iteration's model must be exactly what each client measured and told its
TrainListener: the evaluation accuracy and its last local epoch's mean loss.
"""
from __future__ import annotations

import math
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import pyflclient as fl
from conftest import LENET_MS

pytestmark = pytest.mark.timeout(600)


def test_java_clients_push_their_evaluation_accuracy_and_last_epoch_loss(bundled_clients, client_models, tmp_path):
    from _recording import RecordingServer

    clients = 4
    with RecordingServer(LENET_MS, start_fl_job_threshold=clients, fl_iteration_num=2, client_epoch_num=1) as srv:
        params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, batch_size=32,
                                 sleep_time_ms=50, client_id=f"f{i}")
                  for i, (c, m) in enumerate(zip(bundled_clients[:clients], client_models(clients)))]
        results = fl.Simulation(params, output_dir=tmp_path, max_trainers=2, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=30)
        pushed = {it: srv.device_reports(it) for it in (1, 2)}
        with urllib.request.urlopen(srv.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
    for it in (1, 2):
        told = sorted((np.float32(results.loss[it][c]), np.float32(results.accuracy[it][c]))
                      for c in results.accuracy[it])
        assert len(told) == clients
        assert sorted((np.float32(loss), np.float32(acc)) for loss, acc in pushed[it]) == told
    samples = {(s.name, tuple(s.labels.items())): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("pyflclient_requests_total", (("endpoint", "pushMetrics"), ("retcode", "SUCCEED")))] == 2 * clients
    assert samples[("pyflclient_device_metrics_iteration", ())] == 2
    final = [acc for _, acc in pushed[2]]
    assert math.isclose(samples[("pyflclient_device_accuracy_ratio", (("stat", "avg"),))], float(np.mean(final)),
                        rel_tol=1e-6)
