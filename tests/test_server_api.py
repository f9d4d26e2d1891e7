"""The Python API of the server: pyflclient.Server in a background thread."""
from __future__ import annotations

import socket

import numpy as np
import pytest

import pyflclient
from pyflclient.wire.protocol import ResponseCode
from pyflclient.server import ConfigError, Server


def test_server_is_exported_at_the_top_level():
    assert pyflclient.Server is Server


def test_given_port_is_used_and_a_busy_port_fails_in_the_caller(small_model):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Server(small_model, fl_server_port=port) as srv:
        assert srv.url == f"http://127.0.0.1:{port}"
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            Server(small_model, fl_server_port=port).start()


def test_bad_setting_fails_at_construction(small_model):
    with pytest.raises(ConfigError, match="start_fl_job_threshold"):
        Server(small_model, start_fl_job_threshold=-1)


def test_global_model_of_an_older_iteration_and_of_one_not_finished(start_server, device, run_round, small_model):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=3)
    d = device(srv.url, data_size=4)
    first = run_round(srv, [d], seed=1)
    run_round(srv, [d], seed=2)
    np.testing.assert_array_equal(srv.global_model(1)["fc.bias"], first["fc.bias"])
    np.testing.assert_array_equal(srv.global_model(0)["fc.bias"], small_model["fc.bias"])
    with pytest.raises(KeyError, match="no model of iteration 3"):
        srv.global_model(3)


def test_global_model_is_a_copy_with_the_model_shapes(start_server, small_model):
    srv = start_server(small_model)
    got = srv.global_model()
    assert {n: a.shape for n, a in got.items()} == {n: a.shape for n, a in small_model.items()}
    got["fc.bias"][:] = 99
    assert not np.array_equal(srv.global_model()["fc.bias"], got["fc.bias"])


def test_stop_is_idempotent_and_the_port_is_released(small_model, device):
    srv = Server(small_model).start()
    url = srv.url
    assert device(url).start_fl_job().retcode == ResponseCode.SUCCEED
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        device(url, timeout=5).start_fl_job()
    with pytest.raises(RuntimeError, match="not running"):
        srv.state()
