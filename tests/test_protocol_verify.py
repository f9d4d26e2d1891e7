"""pyflclient.wire.verify: what it refuses, and that what it accepts can be read without a fault."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyflclient.wire import verify as fbverify
from pyflclient.wire.verify import SchemaError, VerificationError, parse_fbs, verify
from pyflclient.wire.protocol import (
    FLPlan, GetModelRequest, ProtocolError, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest,
)

WEIGHTS = {"a": np.arange(5, dtype=np.float32), "b": np.ones((2, 3), np.float32)}


def _response() -> bytes:
    return StartFLJobResponse(200, "ok", 1, True, "12", FLPlan(3, 1, 32, 0.1, "Lenet"), WEIGHTS, "1").to_bytes()


def test_valid_buffers_of_every_round_verify_exactly():
    verify(StartFLJobRequest("L", "d", 1, 5, "t").to_bytes(), "RequestFLJob", exact=True)
    verify(UpdateModelRequest("L", "d", 1, WEIGHTS).to_bytes(), "RequestUpdateModel", exact=True)
    verify(_response(), "ResponseFLJob", exact=True)


def test_every_truncation_that_cuts_data_is_refused():
    body = _response()
    last_string_end = len(body.rstrip(b"\0")) + 1  # what follows the last NUL is alignment padding
    for n in range(last_string_end):
        with pytest.raises(VerificationError):
            verify(body[:n], "ResponseFLJob")


def test_root_offset_past_the_end_is_refused():
    with pytest.raises(VerificationError, match="outside"):
        verify(struct.pack("<I", 4000) + bytes(12), "RequestGetModel")


def _string_position(body: bytes, text: bytes) -> int:
    at = body.index(text)
    assert struct.unpack_from("<I", body, at - 4)[0] == len(text)
    return at


def test_string_without_its_terminator_is_refused():
    body = bytearray(StartFLJobRequest("L", "device-1", 1, 5).to_bytes())
    at = _string_position(bytes(body), b"device-1")
    body[at + len(b"device-1")] = ord("x")
    with pytest.raises(VerificationError, match="fl_id: string is not NUL-terminated"):
        verify(bytes(body), "RequestFLJob")


def test_string_that_is_not_utf8_is_refused():
    body = bytearray(StartFLJobRequest("L", "device-1", 1, 5).to_bytes())
    body[_string_position(bytes(body), b"device-1")] = 0xFF
    with pytest.raises(VerificationError, match="UTF-8"):
        verify(bytes(body), "RequestFLJob")


def test_vector_longer_than_the_buffer_is_refused():
    body = bytearray(UpdateModelRequest("L", "d", 1, {"a": np.arange(5, dtype=np.float32)}).to_bytes())
    data = np.arange(5, dtype=np.float32).tobytes()
    at = bytes(body).index(data)
    struct.pack_into("<I", body, at - 4, 10**6)
    with pytest.raises(VerificationError, match=r"feature_map\[0\]\.data: vector of 1000000"):
        verify(bytes(body), "RequestUpdateModel")


def test_buffer_of_another_table_is_refused_in_exact_mode():
    upload = UpdateModelRequest("L", "d", 1, WEIGHTS).to_bytes()
    verify(upload, "RequestFLJob")  # FlatBuffers have no type tag: the plain verifier cannot tell
    with pytest.raises(VerificationError, match="belong to no field"):
        verify(upload, "RequestFLJob", exact=True)


def test_vtable_slot_unknown_to_the_schema_is_refused_in_exact_mode():
    with pytest.raises(VerificationError, match="field slot 2 is not in table RequestAsyncGetModel"):
        verify(StartFLJobRequest("L", "d", 1, 5).to_bytes(), "RequestAsyncGetModel", exact=True)


def test_required_field_and_nesting_depth_are_enforced():
    schema = parse_fbs(["table Node { name: string (required); child: Node; }"])
    import flatbuffers

    b = flatbuffers.Builder(64)
    b.StartObject(2)
    inner = b.EndObject()
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, inner, 0)
    b.Finish(b.EndObject())
    with pytest.raises(VerificationError, match="Node.name: required field is missing"):
        verify(bytes(b.Output()), "Node", schema=schema)
    with pytest.raises(VerificationError, match="nested deeper than 0"):
        verify(bytes(b.Output()), "Node", schema=parse_fbs(["table Node { name: string; child: Node; }"]),
               max_depth=0)


@pytest.mark.parametrize("text, words", [
    ("struct Vec { x: float; }", "struct"),
    ("union Any { A }", "union"),
    ("table T { x: Unknown; }", "unknown type"),
])
def test_schema_constructs_the_parser_does_not_know_are_refused_by_name(text, words):
    with pytest.raises(SchemaError, match=words):
        parse_fbs([text])


def test_schema_is_read_from_the_fbs_files_not_a_copy():
    schema = fbverify.load_schema()
    assert [f.name for f in schema.table("RequestFLJob").fields][:4] == ["fl_name", "fl_id", "iteration",
                                                                        "data_size"]
    assert schema.enums["AggregationType"] == "byte"


SEEDS = [StartFLJobRequest("L", "d", 1, 5, "t").to_bytes(), UpdateModelRequest("L", "d", 1, WEIGHTS).to_bytes(),
         GetModelRequest("L", 3, "t").to_bytes(), _response()]
READERS = [StartFLJobRequest.from_bytes, UpdateModelRequest.from_bytes, GetModelRequest.from_bytes,
           StartFLJobResponse.from_bytes]


@settings(max_examples=1500, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(range(len(SEEDS))), reader=st.sampled_from(range(len(READERS))),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(0, 10**6))
def test_whatever_verifies_can_be_read_completely_without_a_fault(seed, reader, edits, cut):
    body = bytearray(SEEDS[seed])
    for at, value in edits:
        body[at % len(body)] = value
    body = bytes(body[: max(8, len(body) - cut % 16)])
    try:
        READERS[reader](body)  # verifies, then reads every field the message has
    except ProtocolError:
        pass  # refused: fine; anything else (struct.error, IndexError, UnicodeError) is a verifier hole
