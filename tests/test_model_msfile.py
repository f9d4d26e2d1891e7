"""The .ms file in Python (pyflclient.model.msfile) and the LeNet model shipped with pyflclient.

No MindSpore needed: these run everywhere.
"""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from pyflclient.model import LENET_TRAIN_MS, msfile
from pyflclient.model.lenet import WEIGHT_NAMES
from pyflclient.model.ops import op_names
from pyflclient.model.msfile import DataType, MsFormatError, MsModel, MsNode, MsTensor, Phase, Role

# the ops of the format (schema/ops.json): the converter may emit nothing else
CONTRACT_OPS = op_names()


def tiny_model() -> MsModel:
    """x[2,3] · wᵀ[4,3] → y[2,4]: one node carrying one attribute of every kind."""
    return MsModel(
        tensors=[
            MsTensor("x", (2, 3), role=Role.INPUT),
            MsTensor("w", (4, 3), role=Role.PARAMETER, trainable=True,
                     data=np.arange(12, dtype=np.float32).reshape(4, 3)),
            MsTensor("step", (1,), DataType.INT32, Role.PARAMETER, data=np.array([5], np.int32)),
            MsTensor("y", (2, 4)),
        ],
        nodes=[MsNode("mm", "MatMul", [0, 1], [3],
                      {"transpose_a": False, "transpose_b": True, "group": 1, "scale": 0.5, "mode": "same",
                       "pad": (0, 1, 0, 1), "weights": (0.25, 0.75)}, Phase.FORWARD)],
        name="tiny", producer="test", data_input=0, logits=3)


def test_a_model_survives_a_round_trip_through_bytes():
    original = tiny_model()
    again = MsModel.from_bytes(original.to_bytes())
    assert [(t.name, t.shape, t.dtype, t.role, t.trainable) for t in again.tensors] == \
        [(t.name, t.shape, t.dtype, t.role, t.trainable) for t in original.tensors]
    np.testing.assert_array_equal(again.tensor("w").data, original.tensor("w").data)
    assert again.tensor("step").data.dtype == np.int32 and again.tensor("step").data.tolist() == [5]
    assert again.nodes[0].attrs == original.nodes[0].attrs
    assert (again.data_input, again.logits, again.loss, again.label_input) == (0, 3, -1, -1)


def test_attribute_kinds_follow_the_python_types():
    attrs = MsModel.from_bytes(tiny_model().to_bytes()).nodes[0].attrs
    assert type(attrs["transpose_b"]) is bool and type(attrs["group"]) is int
    assert type(attrs["scale"]) is float and attrs["mode"] == "same"
    assert attrs["pad"] == (0, 1, 0, 1) and attrs["weights"] == (0.25, 0.75)


def test_trainable_weights_of_the_shipped_lenet_are_the_eight_weights_float32_shaped_in_order():
    weights = msfile.trainable_weights(LENET_TRAIN_MS)
    assert list(weights) == list(WEIGHT_NAMES)
    assert {k: v.shape for k, v in weights.items()} == {
        "conv1.weight": (6, 3, 5, 5), "conv2.weight": (16, 6, 5, 5), "fc1.weight": (120, 400), "fc1.bias": (120,),
        "fc2.weight": (84, 120), "fc2.bias": (84,), "fc3.weight": (62, 84), "fc3.bias": (62,)}
    assert all(v.dtype == np.float32 for v in weights.values())


def test_shipped_lenet_has_he_uniform_weights_not_small_normal_ones():
    # HeUniform(a=√5) on fan_in 75: bound 1/√75 ≈ 0.115; Normal(0.02) would have std 0.02
    w = msfile.trainable_weights(LENET_TRAIN_MS)["conv1.weight"]
    assert 0.09 < np.abs(w).max() <= 1 / np.sqrt(75) + 1e-6
    assert w.std() > 0.05


def test_shipped_lenet_marks_inputs_logits_loss_and_learning_rate():
    m = msfile.load(LENET_TRAIN_MS)
    assert m.tensors[m.data_input].shape == (32, 3, 32, 32)
    assert m.tensors[m.label_input].shape == (32,) and m.tensors[m.label_input].dtype == DataType.INT32
    assert m.tensors[m.logits].shape == (32, 62)
    assert m.tensors[m.loss].shape == ()
    assert float(m.tensors[m.learning_rate].data) == pytest.approx(0.01)


def test_shipped_lenet_uses_only_contract_ops_in_phase_order():
    m = msfile.load(LENET_TRAIN_MS)
    assert {n.op_type for n in m.nodes} <= CONTRACT_OPS
    assert [n.phase for n in m.nodes] == sorted(n.phase for n in m.nodes)


def test_written_weights_are_read_back_and_nothing_else_changes(tmp_path):
    new = {k: np.full(v.shape, 0.5, np.float32) for k, v in msfile.trainable_weights(LENET_TRAIN_MS).items()}
    out = msfile.write_weights(LENET_TRAIN_MS, new, tmp_path / "global.ms")
    for name, value in msfile.trainable_weights(out).items():
        np.testing.assert_array_equal(value, new[name])
    before, after = msfile.load(LENET_TRAIN_MS), msfile.load(out)
    assert [(n.op_type, n.inputs, n.attrs) for n in before.nodes] == [(n.op_type, n.inputs, n.attrs) for n in after.nodes]
    np.testing.assert_array_equal(before.tensor("moments.fc1.weight").data, after.tensor("moments.fc1.weight").data)


def test_weights_may_be_given_flat_and_are_reshaped():
    model = tiny_model()
    model.set_weights({"w": np.arange(12, dtype=np.float64)})
    assert model.tensor("w").data.shape == (4, 3) and model.tensor("w").data.dtype == np.float32


def test_a_weight_of_the_wrong_size_is_refused_naming_it():
    with pytest.raises(ValueError, match="'w' needs 12 values"):
        tiny_model().set_weights({"w": np.zeros(11, np.float32)})


def test_an_unknown_weight_is_refused_listing_the_known_ones():
    with pytest.raises(KeyError, match="trainable weights: w"):
        tiny_model().set_weights({"conv9.weight": np.zeros(12, np.float32)})


def test_non_finite_weights_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        tiny_model().set_weights({"w": np.full(12, np.nan, np.float32)})


def test_writing_a_full_model_requires_every_trainable_weight(tmp_path):
    weights = msfile.trainable_weights(LENET_TRAIN_MS)
    del weights["fc3.bias"]
    with pytest.raises(KeyError, match="fc3.bias"):
        msfile.write_weights(LENET_TRAIN_MS, weights, tmp_path / "partial.ms")
    assert not (tmp_path / "partial.ms").exists()


def test_a_truncated_file_fails_naming_the_file(tmp_path):
    path = tmp_path / "cut.ms"
    path.write_bytes(LENET_TRAIN_MS.read_bytes()[:100_000])
    with pytest.raises(MsFormatError, match=r"cut\.ms: corrupt or truncated"):
        msfile.load(path)


def test_a_file_of_another_kind_fails_saying_what_to_do(tmp_path):
    path = tmp_path / "model.mindir"
    path.write_bytes(b"\x08\x01\x12\x03abc" * 10)
    with pytest.raises(MsFormatError, match=r"model\.mindir: not a \.ms device model.*pyflclient convert"):
        msfile.load(path)


def test_a_missing_file_fails_naming_it(tmp_path):
    with pytest.raises(MsFormatError, match="cannot read device model .*absent.ms"):
        msfile.load(tmp_path / "absent.ms")


def test_an_index_out_of_range_is_refused_before_writing():
    model = tiny_model()
    model.nodes[0].inputs = [0, 9]
    with pytest.raises(MsFormatError, match="input index 9 out of range"):
        model.to_bytes()


def test_a_parameter_without_data_is_refused_before_writing():
    model = tiny_model()
    model.tensors[1].data = None
    with pytest.raises(MsFormatError, match="'w': parameter without data"):
        model.to_bytes()


def test_saving_replaces_the_file_atomically_and_leaves_it_readable(tmp_path):
    path = tmp_path / "m.ms"
    path.write_bytes(b"old")
    tiny_model().save(path)
    assert msfile.load(path).name == "tiny"
    assert [p.name for p in tmp_path.iterdir()] == ["m.ms"]   # no temporary left behind
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRUSR and mode == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

