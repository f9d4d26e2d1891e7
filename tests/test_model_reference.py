"""The numpy reference interpreter of .ms graphs (pyflclient.model.reference).

Every backward op is checked against its forward op: for the ops that are linear in
the differentiated input (convolutions, average pooling, matmul) exactly —
⟨dy, f(x + d) − f(x)⟩ = ⟨dx, d⟩ for any d — and by central finite differences for
the others. No MindSpore needed; tests/test_converter_mindspore.py checks the same
interpreter against MindSpore on whole exported graphs.
"""
from __future__ import annotations

import numpy as np
import pytest

from pyflclient.model import LENET_TRAIN_MS, msfile
from pyflclient.model.msfile import DataType, MsModel, MsNode, MsTensor, Role
from pyflclient.model.reference import Interpreter

rng = np.random.default_rng(0)


def run_op(op_type: str, inputs: list[np.ndarray], out_shape: tuple[int, ...], **attrs) -> np.ndarray:
    """One node of ``op_type`` on constant inputs, through the interpreter."""
    tensors = [MsTensor(f"in{i}", a.shape, DataType.INT32 if a.dtype == np.int32 else DataType.FLOAT32,
                        Role.CONSTANT, data=a) for i, a in enumerate(inputs)]
    tensors.append(MsTensor("out", out_shape))
    model = MsModel(tensors, [MsNode("n", op_type, list(range(len(inputs))), [len(inputs)], attrs)],
                    data_input=0, logits=len(inputs))
    interp = Interpreter(model)
    from pyflclient.model.reference import OPS
    OPS[op_type](interp, model.nodes[0])
    return np.array(interp.values[len(inputs)], dtype=np.float64)


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


CONV = dict(stride=(2, 1), dilation=(2, 1), pad=(1, 0, 2, 1), group=2)
X_SHAPE, W_SHAPE, Y_SHAPE = (2, 4, 9, 8), (6, 2, 3, 3), (2, 6, 3, 9)


def test_conv2d_output_has_the_geometry_of_its_attributes():
    # H: ⌊(9 + 1 + 0 − 2·2 − 1)/2⌋ + 1 = 3 ; W: (8 + 2 + 1 − 1·2 − 1)/1 + 1 = 9
    y = run_op("Conv2D", [f32(*X_SHAPE), f32(*W_SHAPE)], Y_SHAPE, **CONV)
    assert y.shape == Y_SHAPE


def test_conv2d_backprop_input_is_the_adjoint_of_conv2d_in_x():
    x, w, d, dy = f32(*X_SHAPE), f32(*W_SHAPE), f32(*X_SHAPE), f32(*Y_SHAPE)
    change = run_op("Conv2D", [x + d, w], Y_SHAPE, **CONV) - run_op("Conv2D", [x, w], Y_SHAPE, **CONV)
    dx = run_op("Conv2DBackpropInput", [dy, w], X_SHAPE, input_shape=X_SHAPE, **CONV)
    assert np.vdot(dy, change) == pytest.approx(np.vdot(dx, d), rel=1e-4)


def test_conv2d_backprop_filter_is_the_adjoint_of_conv2d_in_w():
    x, w, d, dy = f32(*X_SHAPE), f32(*W_SHAPE), f32(*W_SHAPE), f32(*Y_SHAPE)
    change = run_op("Conv2D", [x, w + d], Y_SHAPE, **CONV) - run_op("Conv2D", [x, w], Y_SHAPE, **CONV)
    dw = run_op("Conv2DBackpropFilter", [dy, x], W_SHAPE, filter_shape=W_SHAPE, **CONV)
    assert np.vdot(dy, change) == pytest.approx(np.vdot(dw, d), rel=1e-4)


POOL = dict(kernel=(3, 3), stride=(2, 2), pad=(0, 1, 0, 1))   # 'same' on 8×8 → 4×4


def test_avg_pool_grad_is_the_adjoint_of_avg_pool():
    x, d, dy = f32(2, 3, 8, 8), f32(2, 3, 8, 8), f32(2, 3, 4, 4)
    y = run_op("AvgPool", [x], (2, 3, 4, 4), **POOL)
    change = run_op("AvgPool", [x + d], (2, 3, 4, 4), **POOL) - y
    dx = run_op("AvgPoolGrad", [x, y.astype(np.float32), dy], x.shape, **POOL)
    assert np.vdot(dy, change) == pytest.approx(np.vdot(dx, d), rel=1e-4)


def test_avg_pool_divides_by_the_in_bounds_cells_of_each_window():
    y = run_op("AvgPool", [np.ones((1, 1, 8, 8), np.float32)], (1, 1, 4, 4), **POOL)
    np.testing.assert_allclose(y, 1.0)


def test_max_pool_grad_matches_finite_differences():
    x, dy = f32(1, 2, 8, 8), f32(1, 2, 4, 4)
    y = run_op("MaxPool", [x], (1, 2, 4, 4), **POOL)
    dx = run_op("MaxPoolGrad", [x, y.astype(np.float32), dy], x.shape, **POOL)
    d = f32(*x.shape) * 1e-3
    change = run_op("MaxPool", [x + d], y.shape, **POOL) - run_op("MaxPool", [x - d], y.shape, **POOL)
    assert np.vdot(dy, change) / 2 == pytest.approx(np.vdot(dx, d), rel=1e-2)


def test_max_pool_padding_never_wins():
    y = run_op("MaxPool", [-np.ones((1, 1, 8, 8), np.float32)], (1, 1, 4, 4), **POOL)
    np.testing.assert_array_equal(y, -1.0)


@pytest.mark.parametrize("ta, tb", [(False, True), (False, False), (True, False)])
def test_matmul_honours_its_transpose_flags(ta, tb):
    a, b = f32(3, 4), f32(4, 5)
    a_in, b_in = (a.T.copy() if ta else a), (b.T.copy() if tb else b)
    np.testing.assert_allclose(run_op("MatMul", [a_in, b_in], (3, 5), transpose_a=ta, transpose_b=tb), a @ b,
                               rtol=1e-5)


@pytest.mark.parametrize("forward, backward", [("Sigmoid", "SigmoidGrad"), ("Tanh", "TanhGrad")])
def test_activation_grads_take_the_output_then_dy(forward, backward):
    x, dy = f32(4, 5), f32(4, 5)
    y = run_op(forward, [x], x.shape)
    dx = run_op(backward, [y.astype(np.float32), dy], x.shape)
    eps = 1e-2
    numeric = (run_op(forward, [x + eps], x.shape) - run_op(forward, [x - eps], x.shape)) / (2 * eps)
    np.testing.assert_allclose(dx, dy * numeric, rtol=1e-2, atol=1e-4)


def test_sparse_softmax_cross_entropy_gradient_is_the_derivative_of_the_mean_loss():
    logits, labels = f32(4, 6), np.array([0, 5, 2, 2], np.int32)
    grad = run_op("SparseSoftmaxCrossEntropyWithLogits", [logits, labels], (4, 6), is_grad=True)
    d = f32(4, 6) * 1e-2
    up = run_op("SparseSoftmaxCrossEntropyWithLogits", [logits + d, labels], (), is_grad=False)
    down = run_op("SparseSoftmaxCrossEntropyWithLogits", [logits - d, labels], (), is_grad=False)
    assert (up - down) / 2 == pytest.approx(np.vdot(grad, d), rel=1e-2)


def test_bias_add_grad_sums_every_axis_but_the_channels():
    dy = f32(2, 3, 4, 5)
    np.testing.assert_allclose(run_op("BiasAddGrad", [dy], (3,)), dy.sum(axis=(0, 2, 3)), rtol=1e-5)


def test_training_the_shipped_lenet_on_one_batch_lowers_its_loss():
    model = msfile.load(LENET_TRAIN_MS)
    model.tensor("learning_rate").data[...] = 0.05   # what setLearningRate does
    interp = Interpreter(model)
    x = rng.random((32, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 62, 32).astype(np.int32)
    losses = [interp.train_step(x, y) for _ in range(25)]
    assert losses[-1] < 0.9 * losses[0]
    assert model.tensor("global_step").data.tolist() == [25]
