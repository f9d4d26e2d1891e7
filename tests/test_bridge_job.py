"""FLJob against the project's server on loopback, in this process's one JVM (real jars, real model)."""
from __future__ import annotations

import ast
import logging
import math
import re
import threading
import time

import numpy as np
import pytest

import pyflclient as fl
from pyflclient.data.binfiles import read_split
from pyflclient.client.job import ResponseCode

from conftest import LENET_MS


def params_for(client, model, url, tmp_path, **changes) -> fl.FLParameter:
    values = dict(domain_name=url, train_dataset=client.folder, train_model_path=model, batch_size=32,
                  log_path=tmp_path / "client_0" / "client.log", sleep_time_ms=50)
    values.update(changes)
    return fl.FLParameter(**values)


@pytest.fixture
def one_client(bundled_clients, client_models, start_server, tmp_path):
    """(server, params) for one client; the server runs 2 iterations of 2 local epochs."""
    srv = start_server(LENET_MS, start_fl_job_threshold=1, fl_iteration_num=2, client_epoch_num=2)
    return srv, params_for(bundled_clients[0], client_models(1)[0], srv.url, tmp_path)


def test_run_trains_every_iteration_of_the_plan(one_client):
    srv, params = one_client
    result = fl.FLJob(params).run(timeout=120)
    assert result.ok and result.status == "SUCCESS" and result.error is None
    assert result.iterations == 2
    assert sorted(result.losses) == [1, 2] and all(len(l) == 2 for l in result.losses.values())
    assert sorted(result.accuracy) == [1, 2] and all(0.0 <= a <= 1.0 for a in result.accuracy.values())
    assert result.iteration_codes == {1: ResponseCode.SUCCEED, 2: ResponseCode.SUCCEED}
    assert srv.finished


def test_callbacks_arrive_in_order_with_sane_values(one_client):
    _, params = one_client
    events: list[tuple] = []
    job = fl.FLJob(params, on_loss=lambda *a: events.append(("loss",) + a),
                   on_accuracy=lambda *a: events.append(("accuracy",) + a),
                   on_iteration=lambda *a: events.append(("iteration",) + a),
                   on_finish=lambda *a: events.append(("finish",) + a), name="alice")
    job.run(timeout=120)
    kinds = [(e[0], e[2]) for e in events]
    per_iteration = [("loss", 1), ("loss", 1), ("accuracy", 1), ("iteration", 1)]
    assert kinds == per_iteration + [(k, 2) for k, _ in per_iteration] + [("finish", 2)]
    assert all(e[1] == "alice" for e in events)
    losses = [e[4] for e in events if e[0] == "loss"]
    assert [e[3] for e in events if e[0] == "loss"] == [1, 2, 1, 2]  # epochs count from 1
    assert all(math.isfinite(l) and 0 < l < 10 for l in losses)
    assert losses[-1] < losses[0]  # it learns
    assert all(0.0 <= e[3] <= 1.0 for e in events if e[0] == "accuracy")
    assert events[-1][3] == ResponseCode.SUCCEED


def test_failing_callback_is_logged_and_the_client_goes_on(one_client, caplog):
    _, params = one_client

    def broken(*args):
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="pyflclient.client.job"):
        result = fl.FLJob(params, on_loss=broken, on_accuracy=broken).run(timeout=120)
    assert result.ok and sorted(result.accuracy) == [1, 2]
    failures = [r for r in caplog.records if "callback raised" in r.getMessage()]
    assert len(failures) == 4 + 2  # every call of both callbacks, each logged with its traceback
    assert all(r.exc_info and "callback bug" in str(r.exc_info[1]) for r in failures)


def test_inference_returns_the_labels_of_the_java_log(one_client):
    _, params = one_client
    job = fl.FLJob(params)
    job.run(timeout=120)
    labels = job.infer()
    assert labels.dtype == np.int32 and len(labels) == params.infer_dataset.num_samples
    logged = re.findall(r"the predicted labels: (\[[^\]]*\])", params.log_path.read_text())
    assert logged and np.array_equal(labels, np.array(ast.literal_eval(logged[-1]), dtype=np.int32))
    truth = read_split(params.infer_dataset.data, params.infer_dataset.label)[1]
    assert (labels == truth).mean() > 0.2  # two iterations on one client: far above chance (1/62)


def test_inference_of_in_memory_images_matches_the_files(one_client):
    _, params = one_client
    job = fl.FLJob(params)
    images, _ = read_split(params.infer_dataset.data, params.infer_dataset.label)
    assert np.array_equal(job.infer(images), job.infer())
    assert np.array_equal(job.infer(images[:5]), job.infer()[:5])


def test_inference_of_a_wrong_image_shape_names_the_layout(one_client):
    _, params = one_client
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\)"):
        fl.FLJob(params).infer(np.zeros((2, 3, 32, 32), np.float32))


def test_get_model_returns_the_servers_global_model(one_client):
    srv, params = one_client
    job = fl.FLJob(params)
    job.run(timeout=120)
    weights = job.get_model()
    final = srv.global_model()
    assert set(weights) == set(final)
    for name, array in final.items():
        assert weights[name].shape == array.shape
        np.testing.assert_array_equal(weights[name], array)


def test_stop_during_training_ends_the_job_within_two_seconds(bundled_clients, client_models, start_server, tmp_path):
    srv = start_server(LENET_MS, start_fl_job_threshold=1, fl_iteration_num=5, client_epoch_num=200)
    params = params_for(bundled_clients[0], client_models(1)[0], srv.url, tmp_path)
    training = threading.Event()
    job = fl.FLJob(params, on_loss=lambda *a: training.set())
    job.start()
    assert training.wait(60), "no epoch finished"
    t0 = time.monotonic()
    assert job.stop() is True
    assert time.monotonic() - t0 < 2.0
    assert not job.is_running()
    result = job.wait(0)
    assert result.status == "STOPPED" and not result.ok
    assert srv.iteration == 1  # the stopped client never uploaded


def test_unreachable_server_ends_as_failed_not_as_an_exception(bundled_clients, client_models, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = params_for(bundled_clients[0], client_models(1)[0], f"http://127.0.0.1:{port}", tmp_path,
                        max_retries=1, time_out_s=2)
    result = fl.FLJob(params).run(timeout=60)
    assert result.status == "FAILED" and result.iterations == 0


def test_corrupt_model_file_is_a_model_format_error_with_the_java_message(one_client, tmp_path):
    _, params = one_client
    bad = tmp_path / "corrupt.ms"
    bad.write_bytes(b"\x00" * 64)
    job = fl.FLJob(params.replace(train_model_path=bad))
    with pytest.raises(fl.ModelFormatError) as info:
        job.weights()
    err = info.value
    assert "corrupt.ms" in str(err) and err.java_class.endswith("ModelFormatException")
    assert "\tat " not in str(err) and "at com.mindspore" in err.java_stacktrace


def test_get_model_from_an_unreachable_server_is_an_fl_job_error_naming_it(bundled_clients, client_models, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = params_for(bundled_clients[0], client_models(1)[0], f"http://127.0.0.1:{port}", tmp_path,
                        max_retries=0, time_out_s=2)
    with pytest.raises(fl.FLJobError, match=f"127.0.0.1:{port}"):
        fl.FLJob(params).get_model()


def test_a_case_class_missing_from_the_jars_is_a_java_error_naming_it(one_client):
    _, params = one_client
    with pytest.raises(fl.JavaError, match="com.example.NoSuchClient") as info:
        fl.FLJob(params.replace(fl_name="com.example.NoSuchClient"))
    assert str(info.value).startswith("creating the client client: ")
