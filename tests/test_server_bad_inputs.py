"""Nothing let in: every bad request gets its specific code and changes no state.

Each test runs the same scene: three devices admitted to iteration 1, device A has
uploaded; then one bad request; then the state must be exactly as before, and B
and C completing the iteration must give the exact FedAvg of A, B and C.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

from pyflclient.wire.protocol import (
    GetModelRequest, ResponseCode, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest, UpdateModelResponse,
)

from conftest import fedavg_of, upload_of


@dataclass
class Scene:
    srv: Any
    devices: list[Any]
    uploads: list[dict[str, np.ndarray]]
    model: dict[str, np.ndarray]

    def good_upload(self, i: int) -> dict[str, np.ndarray]:
        return self.uploads[i]

    def finish_and_check_fedavg(self) -> None:
        for d, up in zip(self.devices[1:], self.uploads[1:]):
            assert d.update_model(1, up).retcode == ResponseCode.SUCCEED
        assert self.srv.wait_iteration(1, timeout=10)
        expected = fedavg_of(self.uploads, [d.data_size for d in self.devices])
        got = self.srv.global_model()
        for name, want in expected.items():
            np.testing.assert_array_equal(got[name].reshape(-1), want, err_msg=name)


@pytest.fixture
def scene(start_server, device, small_model) -> Scene:
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=2, max_body_bytes=64 * 1024)
    devices = [device(srv.url, fl_id=f"device-{c}", data_size=s) for c, s in zip("ABC", (3, 5, 8))]
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    flat = {n: a.reshape(-1) for n, a in small_model.items()}
    uploads = [upload_of(flat, d.data_size, seed=i)[1] for i, d in enumerate(devices)]
    assert devices[0].update_model(1, uploads[0]).retcode == ResponseCode.SUCCEED
    return Scene(srv, devices, uploads, flat)


def _upload_body(scene: Scene, fl_id: str = "device-B", iteration: int = 1,
                 change: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = lambda w: w) -> bytes:
    return UpdateModelRequest("Lenet", fl_id, iteration, change(dict(scene.good_upload(1)))).to_bytes()


def _with(name: str, value: np.ndarray) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    return lambda w: {**w, name: value}


def _without(name: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    return lambda w: {k: v for k, v in w.items() if k != name}


def _nan_in(name: str, value: float) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    def change(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        bad = w[name].copy()
        bad[len(bad) // 2] = value
        return {**w, name: bad}
    return change


# (round, body maker, expected retcode, words the reason must contain)
BAD_UPLOADS: dict[str, tuple[Callable[[Scene], bytes], int, str]] = {
    "unknown weight name": (lambda s: _upload_body(s, change=_with("conv9.weight", np.ones(3, np.float32))),
                            ResponseCode.RequestError, "unknown weight"),
    "missing weight": (lambda s: _upload_body(s, change=_without("fc.bias")), ResponseCode.RequestError, "missing"),
    "wrong size": (lambda s: _upload_body(s, change=_with("fc.bias", np.ones(5, np.float32))),
                   ResponseCode.RequestError, "has 5 values"),
    "NaN": (lambda s: _upload_body(s, change=_nan_in("fc.weight", np.nan)), ResponseCode.RequestError, "NaN"),
    "Inf": (lambda s: _upload_body(s, change=_nan_in("conv.weight", -np.inf)), ResponseCode.RequestError, "Inf"),
    "second upload of the same fl_id": (lambda s: _upload_body(s, fl_id="device-A"), ResponseCode.RequestError,
                                        "already uploaded"),
    "unknown fl_id": (lambda s: _upload_body(s, fl_id="device-Z"), ResponseCode.OutOfTime, "not admitted"),
    "wrong iteration": (lambda s: _upload_body(s, iteration=2), ResponseCode.OutOfTime, "current is 1"),
    "random bytes": (lambda s: np.random.default_rng(0).bytes(300), ResponseCode.RequestError, "not a valid"),
    "empty body": (lambda s: b"", ResponseCode.RequestError, "too short"),
    "truncated buffer": (lambda s: _upload_body(s)[:-40], ResponseCode.RequestError, "not a valid"),
    "valid buffer of another table": (lambda s: StartFLJobRequest("Lenet", "device-B", 1, 5).to_bytes(),
                                      ResponseCode.RequestError, "not a valid RequestUpdateModel"),
}


BAD_JOB_REQUESTS: dict[str, tuple[Callable[[Scene], bytes], int, str]] = {
    "valid buffer of another table": (lambda s: _upload_body(s, fl_id="device-Z"), ResponseCode.RequestError,
                                      "not a valid RequestFLJob"),
    "random bytes": (lambda s: np.random.default_rng(1).bytes(64), ResponseCode.RequestError, "not a valid"),
    "data_size 0": (lambda s: StartFLJobRequest("Lenet", "device-Z", 1, 0).to_bytes(), ResponseCode.RequestError,
                    "data_size"),
    "data_size -5": (lambda s: StartFLJobRequest("Lenet", "device-Z", 1, -5).to_bytes(), ResponseCode.RequestError,
                     "data_size"),
    "fl_name not a name": (lambda s: StartFLJobRequest("x y/../z", "device-Z", 1, 5).to_bytes(),
                           ResponseCode.RequestError, "fl_name"),
    "empty fl_id": (lambda s: StartFLJobRequest("Lenet", "", 1, 5).to_bytes(), ResponseCode.RequestError, "fl_id"),
    "over the threshold": (lambda s: StartFLJobRequest("Lenet", "device-Z", 1, 5).to_bytes(),
                           ResponseCode.OutOfTime, "threshold"),
}


BAD_REQUESTS = {("updateModel", case): v for case, v in BAD_UPLOADS.items()} | {
    ("startFLJob", case): v for case, v in BAD_JOB_REQUESTS.items()}
REPLY_OF = {"updateModel": UpdateModelResponse, "startFLJob": StartFLJobResponse}


@pytest.mark.parametrize("round_name, case", sorted(BAD_REQUESTS))
def test_bad_request_gets_its_code_and_changes_nothing(scene, round_name, case):
    make_body, code, words = BAD_REQUESTS[(round_name, case)]
    before = scene.srv.state()
    status, body = scene.devices[1].post(round_name, make_body(scene))
    assert status == 200
    reply = REPLY_OF[round_name].from_bytes(body)
    assert reply.retcode == code, reply.reason
    assert words in reply.reason
    assert not getattr(reply, "is_selected", False)
    assert scene.srv.state() == before
    assert len(scene.srv.uploads(1)) == 1
    scene.finish_and_check_fedavg()


def test_body_over_the_size_limit_gets_http_413_and_changes_nothing(scene):
    before = scene.srv.state()
    huge = _upload_body(scene, change=_with("fc.bias", np.ones(40_000, np.float32)))
    assert len(huge) > 64 * 1024
    status, _ = scene.devices[1].post("updateModel", huge)
    assert status == 413
    assert scene.srv.state() == before
    scene.devices[1].close()  # the server may close a connection whose body it did not read
    scene.finish_and_check_fedavg()


def test_get_model_with_a_bad_body_is_a_request_error(scene):
    from pyflclient.wire.protocol import GetModelResponse

    status, body = scene.devices[0].post("getModel", StartFLJobRequest("Lenet", "x", 1, 1).to_bytes())
    assert GetModelResponse.from_bytes(body).retcode == ResponseCode.RequestError
    status, body = scene.devices[0].post("getModel", GetModelRequest("Lenet", -3).to_bytes())
    assert GetModelResponse.from_bytes(body).retcode == ResponseCode.RequestError
    scene.finish_and_check_fedavg()
