"""The MindIR → .ms converter on graphs MindSpore 2.10 really exports.

Each network is defined in MindSpore, wrapped in TrainOneStepCell, exported with
``mindspore.export`` and converted; the converted graph is then trained by the numpy
reference interpreter (pyflclient.model.reference) on the same batches as MindSpore
itself, which checks the converter (attributes, pads, phases, folding) independently
of the Java runtime.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # before mindspore is imported: 40× faster convolutions
ms = pytest.importorskip("mindspore")

from _model_support import (SMALL_NETWORKS, Trained, exotic_cnn, mlp, random_batches,  # noqa: E402
                            relative_difference, small_cnn, train_mindspore, train_reference,
                            working_directory, worst_difference)

from pyflclient.model import converter, export, lenet, msfile  # noqa: E402
from pyflclient.model.msfile import Phase, Role  # noqa: E402

pytestmark = pytest.mark.mindspore

LENET_OPS = {"Conv2D", "ReLU", "MaxPool", "Flatten", "MatMul", "BiasAdd", "SparseSoftmaxCrossEntropyWithLogits",
             "ReluGrad", "Reshape", "MaxPoolGrad", "Conv2DBackpropInput", "Conv2DBackpropFilter", "BiasAddGrad",
             "ApplyMomentum", "AssignAdd"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory):
    with working_directory(tmp_path_factory.mktemp("mindspore")) as path:
        yield path


@pytest.fixture(scope="module")
def lenet_mindir(scratch):
    return export.export_lenet(scratch / "lenet" / "lenet_train.mindir", seed=7)


@pytest.fixture(scope="module")
def lenet_model(lenet_mindir) -> msfile.MsModel:
    return converter.convert_proto(converter.load_mindir(lenet_mindir), name="lenet_train",
                                   source=str(lenet_mindir))


def export_and_convert(train_cell, path, batch_size: int, image_shape: tuple[int, ...]) -> msfile.MsModel:
    mindir = export.export_train_cell(train_cell, path, batch_size=batch_size, input_shape=image_shape)
    return converter.convert_proto(converter.load_mindir(mindir), source=str(mindir))


# ---- structure of the converted LeNet ------------------------------------------------------------

def test_lenet_converts_to_exactly_the_canonical_ops_of_the_train_graph(lenet_model):
    assert {n.op_type for n in lenet_model.nodes} == LENET_OPS


def test_bookkeeping_nodes_are_folded_away(lenet_model):
    assert not {n.op_type for n in lenet_model.nodes} & converter.BOOKKEEPING_OPS


def test_trainable_weights_are_the_eight_lenet_weights_in_order_without_graph_prefix(lenet_model):
    assert lenet_model.weight_names == list(lenet.WEIGHT_NAMES)
    assert not [t.name for t in lenet_model.tensors if "TrainOneStepCell" in t.name]


def test_optimizer_state_is_kept_as_non_trainable_parameters(lenet_model):
    params = {t.name: t for t in lenet_model.tensors if t.role == Role.PARAMETER and not t.trainable}
    assert set(params) == {f"moments.{w}" for w in lenet.WEIGHT_NAMES} | {"learning_rate", "momentum", "global_step"}
    assert float(params["learning_rate"].data) == pytest.approx(0.01)
    assert float(params["momentum"].data) == pytest.approx(0.9)


def test_data_label_logits_loss_and_learning_rate_are_marked(lenet_model):
    m = lenet_model
    assert m.tensors[m.data_input].shape == (32, 3, 32, 32) and m.tensors[m.data_input].role == Role.INPUT
    assert m.tensors[m.label_input].shape == (32,) and m.tensors[m.label_input].dtype == msfile.DataType.INT32
    assert m.tensors[m.logits].shape == (32, 62)
    assert m.tensors[m.loss].shape == ()
    assert m.tensors[m.learning_rate].name == "learning_rate"


def test_nodes_run_forward_then_backward_then_optimizer(lenet_model):
    phases = [n.phase for n in lenet_model.nodes]
    assert phases == sorted(phases)
    assert [n.op_type for n in lenet_model.nodes if n.phase == Phase.OPTIMIZER] == ["AssignAdd"] + ["ApplyMomentum"] * 8


def test_forward_phase_is_exactly_what_logits_and_loss_need(lenet_model):
    forward = [n for n in lenet_model.nodes if n.phase == Phase.FORWARD]
    assert forward[-1].outputs == [lenet_model.loss]
    assert any(lenet_model.logits in n.outputs for n in forward)
    grad_loss = [n for n in lenet_model.nodes if n.op_type == "SparseSoftmaxCrossEntropyWithLogits"
                 and n.attrs["is_grad"]]
    assert len(grad_loss) == 1 and grad_loss[0].phase == Phase.BACKWARD


def test_matmul_transpose_flags_come_from_the_constant_inputs(lenet_model):
    flags = [(n.attrs["transpose_a"], n.attrs["transpose_b"]) for n in lenet_model.nodes if n.op_type == "MatMul"]
    assert flags.count((False, True)) == 3    # forward x·Wᵀ
    assert flags.count((False, False)) == 3   # dx = dy·W
    assert flags.count((True, False)) == 3    # dW = dyᵀ·x


def test_backprop_shapes_become_attributes(lenet_model):
    by_op = {n.op_type: n for n in lenet_model.nodes}
    assert by_op["Conv2DBackpropInput"].attrs["input_shape"] == (32, 6, 14, 14)
    assert {n.attrs["filter_shape"] for n in lenet_model.nodes if n.op_type == "Conv2DBackpropFilter"} == \
        {(6, 3, 5, 5), (16, 6, 5, 5)}
    assert by_op["Reshape"].attrs["shape"] == (32, 16, 5, 5)


def test_valid_padding_becomes_zero_pads(lenet_model):
    conv = [n for n in lenet_model.nodes if n.op_type == "Conv2D"]
    assert all(n.attrs["pad"] == (0, 0, 0, 0) and n.attrs["stride"] == (1, 1) for n in conv)
    pool = [n for n in lenet_model.nodes if n.op_type == "MaxPool"]
    assert all(n.attrs["kernel"] == (2, 2) and n.attrs["stride"] == (2, 2) for n in pool)


def test_converted_model_survives_a_file_round_trip(lenet_model, tmp_path):
    again = msfile.load(lenet_model.save(tmp_path / "m.ms"))
    assert [(n.op_type, n.inputs, n.outputs, n.attrs, n.phase) for n in again.nodes] == \
        [(n.op_type, n.inputs, n.outputs, n.attrs, n.phase) for n in lenet_model.nodes]


def test_inference_conversion_keeps_only_the_forward_ops_of_the_logits(lenet_mindir):
    model = converter.convert_proto(converter.load_mindir(lenet_mindir), train_model=False)
    assert {n.op_type for n in model.nodes} == {"Conv2D", "ReLU", "MaxPool", "Flatten", "MatMul", "BiasAdd"}
    assert model.loss == -1 and model.label_input == -1 and model.learning_rate == -1
    assert model.weight_names == list(lenet.WEIGHT_NAMES)


def test_same_padding_with_stride_is_resolved_to_explicit_pads(scratch):
    ms.set_seed(0)
    model = export_and_convert(export.make_train_cell(small_cnn()), scratch / "pads", 8, (3, 16, 16))
    conv = next(n for n in model.nodes if n.op_type == "Conv2D")
    # 16 → 8 with a 3×3 kernel and stride 2: one row/column of padding, at the end
    assert conv.attrs["pad"] == (0, 1, 0, 1) and conv.attrs["stride"] == (2, 2)
    dx = [n for n in model.nodes if n.op_type == "Conv2DBackpropFilter"]
    assert dx and dx[0].attrs["pad"] == (0, 1, 0, 1)


def test_unsupported_ops_are_all_listed_by_name(scratch):
    nn = ms.nn

    class WithBatchNormAndElu(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, pad_mode="valid")
            self.bn = nn.BatchNorm2d(4)
            self.act = nn.ELU()
            self.flat = nn.Flatten()
            self.fc = nn.Dense(4 * 6 * 6, 5)

        def construct(self, x):
            return self.fc(self.flat(self.act(self.bn(self.conv(x)))))

    mindir = export.export_train_cell(export.make_train_cell(WithBatchNormAndElu()), scratch / "unsupported",
                                      batch_size=4, input_shape=(3, 8, 8))
    with pytest.raises(converter.UnsupportedOpsError) as info:
        converter.convert_proto(converter.load_mindir(mindir), source=str(mindir))
    assert info.value.ops == ["BatchNorm", "BatchNormGrad", "Elu", "EluGrad"]
    assert "BatchNorm, BatchNormGrad, Elu, EluGrad" in str(info.value)


def test_exporting_the_bare_network_fails_with_what_to_export(scratch):
    nn = ms.nn
    net = nn.WithLossCell(lenet.build_lenet5(num_class=10), nn.SoftmaxCrossEntropyWithLogits(sparse=True,
                                                                                              reduction="mean"))
    mindir = export.export_train_cell(net, scratch / "no_optimizer", batch_size=4, input_shape=(3, 32, 32))
    with pytest.raises(converter.ConversionError, match="no optimizer op"):
        converter.convert_proto(converter.load_mindir(mindir))


# ---- numbers: the converted graph trains like MindSpore -------------------------------------------

def assert_same_training(expected: Trained, actual: Trained, model: msfile.MsModel, rtol: float) -> None:
    names = [t.name for t in model.tensors if t.role == Role.PARAMETER]
    name, worst = worst_difference(expected, actual, names)
    assert worst < rtol, f"{name} differs by {worst:.2e} (relative) after {len(expected.losses)} steps"


def test_lenet_trains_like_mindspore_in_the_reference_interpreter(scratch):
    ms.set_seed(11)
    net = lenet.build_lenet5()
    train = export.make_train_cell(net)
    model = export_and_convert(train, scratch / "lenet_parity", 32, lenet.IMAGE_SHAPE)
    x, y = random_batches(5, 32, lenet.IMAGE_SHAPE, 62, seed=1)
    expected = train_mindspore(train, x, y)
    actual = train_reference(model, x, y)
    assert_same_training(expected, actual, model, rtol=1e-5)


def test_lenet_predictions_match_mindspore_forward_pass(scratch):
    from pyflclient.model.reference import Interpreter

    ms.set_seed(12)
    net = lenet.build_lenet5()
    model = export_and_convert(export.make_train_cell(net), scratch / "lenet_predict", 32, lenet.IMAGE_SHAPE)
    x, _ = random_batches(1, 32, lenet.IMAGE_SHAPE, 62, seed=2)
    ms_logits = net(ms.Tensor(x[0])).asnumpy()
    interp = Interpreter(model)
    assert relative_difference(ms_logits, interp.logits(x[0])) < 1e-5
    np.testing.assert_array_equal(interp.predict(x[0]), ms_logits.argmax(axis=1))


def test_dense_without_bias_has_no_bias_weight(scratch):
    ms.set_seed(3)
    model = export_and_convert(export.make_train_cell(small_cnn()), scratch / "no_bias", 8, (3, 16, 16))
    assert model.weight_names == ["conv.weight", "conv.bias", "fc1.weight", "fc2.weight", "fc2.bias"]


def test_dilation_groups_and_explicit_pads_are_kept(scratch):
    ms.set_seed(3)
    model = export_and_convert(export.make_train_cell(exotic_cnn()), scratch / "exotic", 8, (3, 16, 16))
    convs = [n.attrs for n in model.nodes if n.op_type == "Conv2D"]
    assert convs[0]["dilation"] == (2, 2) and convs[0]["pad"] == (1, 1, 1, 1) and convs[1]["group"] == 2
    assert next(n for n in model.nodes if n.op_type == "MaxPool").attrs["pad"] == (0, 1, 0, 1)


def test_weight_decay_becomes_elementwise_ops_before_the_optimizer(scratch):
    ms.set_seed(3)
    train = export.make_train_cell(mlp(), optimizer="sgd", learning_rate=0.05, weight_decay=0.01)
    model = export_and_convert(train, scratch / "decay", 8, (3, 16, 16))
    assert {"Mul", "Add"} <= {n.op_type for n in model.nodes if n.phase == Phase.BACKWARD}


@pytest.mark.parametrize("network", sorted(SMALL_NETWORKS))
def test_small_networks_train_like_mindspore(scratch, network):
    build, options = SMALL_NETWORKS[network]
    ms.set_seed(3)
    train = export.make_train_cell(build(), **options)
    model = export_and_convert(train, scratch / network, 8, (3, 16, 16))
    x, y = random_batches(5, 8, (3, 16, 16), 5, seed=4)
    expected = train_mindspore(train, x, y)
    actual = train_reference(model, x, y)
    assert_same_training(expected, actual, model, rtol=1e-4)


def test_the_shipped_lenet_is_what_the_documented_command_regenerates(scratch, tmp_path):
    from pyflclient.model import LENET_TRAIN_MS

    mindir = export.export_lenet(scratch / "regenerate" / "lenet_train.mindir", seed=1)
    out = converter.convert(mindir, tmp_path / "lenet_train")
    assert out.read_bytes() == LENET_TRAIN_MS.read_bytes()
