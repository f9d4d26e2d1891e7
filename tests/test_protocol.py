"""The r1.6 messages: round trips, numpy views, wire layout against docs/protocol.md."""
from __future__ import annotations

import re
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from pyflclient.wire import verify as fbverify
from pyflclient._fbs import fl_job_generated as fb
from pyflclient.wire.protocol import (
    PLAIN_TEXT_JOB_FINISHED, FLPlan, GetModelRequest, GetModelResponse, ProtocolError, ResponseCode,
    StartFLJobRequest, StartFLJobResponse, UpdateModelRequest, UpdateModelResponse, plain_text_reply,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


@pytest.fixture
def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"conv1.weight": rng.normal(size=(6, 3, 5, 5)).astype(np.float32), "fc3.bias": np.arange(62.0)}


def test_start_fl_job_request_round_trips():
    req = StartFLJobRequest("Lenet", "dev-1", 3, 640, "1700000000000")
    assert StartFLJobRequest.from_bytes(req.to_bytes()) == req


def test_start_fl_job_response_round_trips_plan_and_weights(weights):
    plan = FLPlan(iterations=10, epochs=2, mini_batch=32, lr=0.5, fl_name="Lenet")
    resp = StartFLJobResponse(ResponseCode.SUCCEED, "ok", 4, True, "1700000000123", plan, weights, "17")
    back = StartFLJobResponse.from_bytes(resp.to_bytes())
    assert (back.retcode, back.reason, back.iteration, back.is_selected, back.next_req_time, back.plan) == (
        200, "ok", 4, True, "1700000000123", plan)
    for name, array in weights.items():
        np.testing.assert_array_equal(back.weights[name], np.asarray(array, np.float32).reshape(-1))


def test_update_model_round_trips_and_get_model_too(weights):
    req = UpdateModelRequest("Lenet", "dev-1", 2, weights, "5")
    back = UpdateModelRequest.from_bytes(req.to_bytes())
    assert (back.fl_name, back.fl_id, back.iteration, list(back.weights)) == ("Lenet", "dev-1", 2, list(weights))
    assert UpdateModelResponse.from_bytes(UpdateModelResponse(300, "late", "99").to_bytes()).next_req_time == "99"
    assert GetModelRequest.from_bytes(GetModelRequest("Lenet", 7).to_bytes()).iteration == 7
    got = GetModelResponse.from_bytes(GetModelResponse(200, "", 7, weights).to_bytes())
    np.testing.assert_array_equal(got.weights["fc3.bias"], np.arange(62, dtype=np.float32))


def test_received_weights_are_read_only_views_into_the_body_not_copies(weights):
    body = UpdateModelRequest("Lenet", "dev-1", 2, weights).to_bytes()
    data = UpdateModelRequest.from_bytes(body).weights["conv1.weight"]
    assert data.dtype == np.dtype("<f4") and not data.flags.writeable and not data.flags.owndata


def test_duplicate_weight_names_are_a_protocol_error():
    b = flatbuffers.Builder(64)
    maps = []
    for _ in range(2):
        name = b.CreateString("w")
        fb.FeatureMapStart(b)
        fb.FeatureMapAddWeightFullname(b, name)
        maps.append(fb.FeatureMapEnd(b))
    b.StartVector(4, 2, 4)
    for off in reversed(maps):
        b.PrependUOffsetTRelative(off)
    vec = b.EndVector()
    fb.RequestUpdateModelStart(b)
    fb.RequestUpdateModelAddFeatureMap(b, vec)
    b.Finish(fb.RequestUpdateModelEnd(b))
    with pytest.raises(ProtocolError, match="appears twice"):
        UpdateModelRequest.from_bytes(bytes(b.Output()))


def test_a_buffer_finished_with_a_file_identifier_is_still_read():
    b = flatbuffers.Builder(64)
    fb.RequestGetModelStart(b)
    fb.RequestGetModelAddIteration(b, 9)
    b.Finish(fb.RequestGetModelEnd(b), file_identifier=b"FLJB")
    assert GetModelRequest.from_bytes(bytes(b.Output())).iteration == 9


def test_plain_text_replies_are_recognised_and_flatbuffers_are_not():
    assert plain_text_reply(PLAIN_TEXT_JOB_FINISHED.encode()) == PLAIN_TEXT_JOB_FINISHED
    assert plain_text_reply(GetModelRequest("Lenet", 1).to_bytes()) is None


def _documented_tables() -> dict[str, list[tuple[str, str]]]:
    """The field tables of docs/protocol.md: | Table | name:type, ... |."""
    tables = {}
    field_list = r"\w+:[\w\[\]=]+(?:, \w+:[\w\[\]=]+)*"
    for m in re.finditer(rf"^\| (\w+) \| ({field_list}) \|$", DOCS.read_text(), re.M):
        fields = [f.split("=")[0] for f in m.group(2).split(", ")]
        tables[m.group(1)] = [tuple(f.split(":", 1)) for f in fields]
    return tables


def test_schema_fields_are_in_the_documented_wire_order_with_the_documented_types():
    documented = _documented_tables()
    schema = fbverify.load_schema()
    assert set(documented) == set(schema.tables)
    for name, fields in documented.items():
        got = [f.name for f in schema.table(name).fields]
        assert got == [f for f, _ in fields], name
        for field, doc_type in fields:
            spec = next(f for f in schema.table(name).fields if f.name == field)
            if doc_type.startswith("["):
                assert spec.kind == "vector", (name, field)
            elif doc_type == "string":
                assert spec.kind == "string", (name, field)
            elif doc_type in ("int", "float"):
                assert (spec.kind, spec.size) == ("scalar", 4), (name, field)
            elif doc_type == "bool":
                assert (spec.kind, spec.size) == ("scalar", 1), (name, field)


def test_upload_loss_is_told_apart_from_not_sent_and_control_variates_round_trip():
    w = {"fc.w": np.arange(6, dtype=np.float32)}
    plain = UpdateModelRequest.from_bytes(UpdateModelRequest("L", "d", 2, w).to_bytes())
    assert plain.upload_loss is None and dict(plain.control_variate) == {}
    sent = UpdateModelRequest.from_bytes(UpdateModelRequest("L", "d", 2, w, upload_loss=0.0,
                                                            control_variate={"fc.w": -np.ones(6, np.float32)}).to_bytes())
    assert sent.upload_loss == 0.0
    np.testing.assert_array_equal(sent.control_variate["fc.w"], -np.ones(6, np.float32))


def test_plan_carries_aggregation_weights_early_stop_and_the_server_control_variate():
    plan = FLPlan(iterations=3, epochs=1, mini_batch=32, lr=0.01, aggregation=7, aggregation_weights=(0.25,),
                  early_stop=(1, 0.5, 2))
    reply = StartFLJobResponse(200, "admitted", 1, True, "0", plan, {"w": np.ones(2, np.float32)}, "1",
                               control_variate={"w": np.full(2, 0.5, np.float32)})
    back = StartFLJobResponse.from_bytes(reply.to_bytes())
    assert back.plan.aggregation == 7 and back.plan.aggregation_weights == (0.25,)
    assert back.plan.early_stop == (1, 0.5, 2)
    np.testing.assert_array_equal(back.control_variate["w"], np.full(2, 0.5, np.float32))
    old = StartFLJobResponse.from_bytes(StartFLJobResponse(200, "", 1, True, "0", FLPlan(1, 1, 32, 0.01)).to_bytes())
    assert old.plan.aggregation_weights == () and old.plan.early_stop is None and dict(old.control_variate) == {}
