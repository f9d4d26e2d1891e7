"""The device (Java, com.mindspore.flclient.compress.Codec) and the server (Python,
pyflclient.wire.compression) compute update compression bit for bit alike: masks, quantisation,
a whole DIFF_SPARSE_QUANT upload and a QUANT model. Random cases from hypothesis, run through the
real classes of the shipped jar in this process's JVM; the constants of both come from
schema/compression.json (the Java ones generated)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from conftest import LENET_SHAPES, random_model
from pyflclient.client import jvm
from pyflclient.wire import compression as c

jvm.start_jvm()
import jpype  # noqa: E402  (after the JVM: the classes load from the shipped jars)

Codec = jpype.JClass("com.mindspore.flclient.compress.Codec")
Params = jpype.JClass("com.mindspore.flclient.runtime.schema.CompressionParameters")
LinkedHashMap = jpype.JClass("java.util.LinkedHashMap")
ArrayList = jpype.JClass("java.util.ArrayList")
Integer = jpype.JClass("java.lang.Integer")


def jfloats(x: np.ndarray):  # type: ignore[no-untyped-def]
    return jpype.JArray(jpype.JFloat)(np.ascontiguousarray(x, dtype=np.float32).ravel())


def pyint8(a) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array(a, dtype=np.int8)


def test_the_generated_constants_are_the_tables():
    k = c.TABLE.constants
    assert (Params.QUANT_LEVELS, Params.QUANT_OFFSET, Params.MASK_MULTIPLIER, Params.MASK_MODULUS) == (
        k["quant_levels"], k["quant_offset"], k["mask_multiplier"], k["mask_modulus"])
    assert np.float32(Params.QUANT_SCALE_EPSILON) == np.float32(k["quant_scale_epsilon"])
    for row in c.TABLE.upload.values():
        assert int(getattr(Params, "UPLOAD_" + row.name)) == row.wire
        assert bool(Params.errorFeedback(row.wire)) == row.error_feedback


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rate=st.floats(0.0009765625, 1.0, width=32), n=st.integers(0, 20000))
def test_the_mask_of_an_iteration_is_the_same_on_both_sides(seed, rate, n):
    java = np.array(Codec.mask(seed, jpype.JFloat(rate), n), dtype=bool)
    assert java.tobytes() == c.mask(seed, rate, n).tobytes()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e7, 1e7, width=32), min_size=1, max_size=500))
def test_quantisation_is_the_same_on_both_sides(values):
    x = np.array(values, dtype=np.float32)
    t = Codec.quantise("x", jfloats(x), len(values))
    q, lo, hi = c.quantise(x)
    assert pyint8(t.data).tobytes() == q.tobytes()
    assert (float(t.min), float(t.max)) == (lo, hi)
    back = np.array(Codec.dequantise(t.data, t.min, t.max), dtype=np.float32)
    assert back.tobytes() == c.dequantise(q, lo, hi).tobytes()


def test_a_lenet_upload_encoded_in_java_is_the_pythons_and_decodes_on_the_server():
    w0, w1 = random_model(LENET_SHAPES, 7), random_model(LENET_SHAPES, 8)
    names, D, seed, rate = list(LENET_SHAPES), 23, 5, 0.4
    diff = {n: w1[n] * np.float32(D) - w0[n] * np.float32(D) for n in names}
    jupdate = LinkedHashMap()
    jnames = ArrayList()
    for n in names:
        jupdate.put(n, jfloats(diff[n]))
        jnames.add(n)
    java = Codec.encodeUpload(jupdate, jnames, seed, jpype.JFloat(rate))
    py, sent = c.encode_upload(diff, names, seed, rate)
    for jt, pt in zip(java.tensors, py):
        assert str(jt.name) == pt.name and pyint8(jt.data).tobytes() == pt.data.tobytes()
        assert (float(jt.min), float(jt.max)) == (pt.min_val, pt.max_val)
        assert np.array(java.decoded.get(pt.name), dtype=np.float32).tobytes() == sent[pt.name].ravel().tobytes()
    tensors = [c.CompressedTensor(str(t.name), pyint8(t.data), float(t.min), float(t.max)) for t in java.tensors]
    rebuilt = c.decode_upload(tensors, names, seed, rate, w0, D)
    for n in names:
        assert rebuilt[n].tobytes() == (w0[n] * np.float32(D) + sent[n]).tobytes()


def test_a_quantised_model_decodes_in_java_to_what_the_server_assumes():
    model = random_model(LENET_SHAPES, 9)
    jtensors = ArrayList()
    for t in c.encode_model(model):
        jtensors.add(Codec.Tensor(t.name, jpype.JArray(jpype.JByte)(t.data.tobytes()), jpype.JFloat(t.min_val),
                                  jpype.JFloat(t.max_val)))
    sizes = LinkedHashMap()
    for n, s in LENET_SHAPES.items():
        sizes.put(n, Integer(int(np.prod(s))))
    java = Codec.decodeModel(jtensors, sizes)
    served = c.served_model(model)
    for n in model:
        assert np.array(java.get(n), dtype=np.float32).tobytes() == served[n].ravel().tobytes()
