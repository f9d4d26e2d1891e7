"""A numpy interpreter of ``.ms`` graphs: the executable form of docs/ms-format.md.

Slow and simple on purpose. It exists to check the converter against MindSpore without
the Java runtime (tests/test_converter_mindspore.py trains a converted graph here and in
MindSpore and compares), and to give the Java runtime a second, independent reading
of every op's semantics. Each op is one small function ``(interp, node) -> None`` that
reads its inputs from the tensor table and writes its outputs (or updates Parameters in
place) — the same shape as the Java runtime's op classes.

Usage::

    interp = Interpreter(msfile.load("lenet_train.ms"))
    loss = interp.train_step(x, y)        # x: [N, C, H, W] float32, y: [N] int32
    interp.predict(x)                     # arg-max of the Forward pass
    interp.model.trainable_weights()      # the updated weights
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pyflclient.model.msfile import MsModel, MsNode, Phase, Role


class Interpreter:
    """Runs the nodes of one :class:`MsModel` on numpy arrays (Parameters updated in ``model``)."""

    def __init__(self, model: MsModel) -> None:
        unknown = sorted({n.op_type for n in model.nodes if n.op_type not in OPS})
        if unknown:
            raise ValueError(f"the reference interpreter has no op {', '.join(unknown)}")
        self.model = model
        self.values: list[np.ndarray | None] = [
            t.data if t.role in (Role.CONSTANT, Role.PARAMETER) else None for t in model.tensors]
        self._forward_logits = self._ancestors(model.logits)

    def _ancestors(self, tensor: int) -> list[MsNode]:
        producer = {o: n for n in self.model.nodes for o in n.outputs}
        need: set[int] = set()
        stack = [tensor]
        while stack:
            t = stack.pop()
            n = producer.get(t)
            if n is not None and id(n) not in need:
                need.add(id(n))
                stack += [i for i in n.inputs if i >= 0]
        return [n for n in self.model.nodes if id(n) in need]

    def _feed(self, data: np.ndarray, labels: np.ndarray | None) -> None:
        m = self.model
        shape = m.tensors[m.data_input].shape
        self.values[m.data_input] = np.asarray(data, np.float32).reshape(shape)
        if labels is not None and m.label_input >= 0:
            self.values[m.label_input] = np.asarray(labels, np.int32).reshape(m.tensors[m.label_input].shape)

    def train_step(self, data: np.ndarray, labels: np.ndarray) -> float:
        """One step (forward, backward, optimizer) on one batch; returns the loss."""
        self._feed(data, labels)
        for node in self.model.nodes:
            OPS[node.op_type](self, node)
        return float(self.values[self.model.loss])  # type: ignore[arg-type]

    def logits(self, data: np.ndarray) -> np.ndarray:
        """Forward pass (only the nodes the logits need) of one batch."""
        self._feed(data, None)
        for node in self._forward_logits:
            OPS[node.op_type](self, node)
        return np.array(self.values[self.model.logits])

    def predict(self, data: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(data), axis=1).astype(np.int32)

    # -- helpers for the op functions
    def get(self, node: MsNode, i: int) -> np.ndarray:
        value = self.values[node.inputs[i]]
        if value is None:
            raise RuntimeError(f"node {node.name} ({node.op_type}): input {i} "
                               f"({self.model.tensors[node.inputs[i]].name}) has no value yet")
        return value

    def set(self, node: MsNode, value: np.ndarray, k: int = 0) -> None:
        t = self.model.tensors[node.outputs[k]]
        self.values[node.outputs[k]] = np.asarray(value).astype(np.float32 if t.dtype == 0 else value.dtype,
                                                                 copy=False).reshape(t.shape)

    def update(self, node: MsNode, i: int, value: np.ndarray) -> None:
        """In-place update of the Parameter given as input ``i`` (what the optimizer ops do)."""
        t = self.model.tensors[node.inputs[i]]
        arr = self.values[node.inputs[i]]
        assert arr is not None
        arr[...] = np.asarray(value).reshape(t.shape).astype(arr.dtype)


# ---- convolution and pooling (NCHW) ------------------------------------------------------------

def _pad(x: np.ndarray, pad: tuple, value: float = 0.0) -> np.ndarray:
    top, bottom, left, right = pad
    if not any(pad):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(xp: np.ndarray, k: tuple, stride: tuple, dilation: tuple, out_hw: tuple) -> np.ndarray:
    """[N, C, Ho, Wo, kh, kw] view of the (padded) input's receptive fields."""
    eh, ew = dilation[0] * (k[0] - 1) + 1, dilation[1] * (k[1] - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    return win[:, :, :out_hw[0], :out_hw[1]]


def _out_size(size: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _conv_geometry(attrs: dict, x_shape: tuple, w_shape: tuple) -> tuple[int, int]:
    (sh, sw), (dh, dw), pad = attrs["stride"], attrs["dilation"], attrs["pad"]
    return (_out_size(x_shape[2], w_shape[2], sh, dh, pad[0], pad[1]),
            _out_size(x_shape[3], w_shape[3], sw, dw, pad[2], pad[3]))


def _grouped(x: np.ndarray, w: np.ndarray, g: int):
    cg, og = x.shape[1] // g, w.shape[0] // g
    for i in range(g):
        yield i, slice(i * cg, (i + 1) * cg), slice(i * og, (i + 1) * og)


def conv2d(it: Interpreter, n: MsNode) -> None:
    x, w = it.get(n, 0), it.get(n, 1)
    a = n.attrs
    ho, wo = _conv_geometry(a, x.shape, w.shape)
    win = _windows(_pad(x, a["pad"]), w.shape[2:], a["stride"], a["dilation"], (ho, wo))
    y = np.empty((x.shape[0], w.shape[0], ho, wo), np.float32)
    for _, cs, os in _grouped(x, w, a["group"]):
        y[:, os] = np.einsum("nchwij,ocij->nohw", win[:, cs], w[os], optimize=True)
    it.set(n, y)


def conv2d_backprop_filter(it: Interpreter, n: MsNode) -> None:
    dy, x = it.get(n, 0), it.get(n, 1)
    a = n.attrs
    fshape = tuple(a["filter_shape"])
    win = _windows(_pad(x, a["pad"]), fshape[2:], a["stride"], a["dilation"], dy.shape[2:])
    dw = np.empty(fshape, np.float32)
    g = a["group"]
    cg, og = x.shape[1] // g, fshape[0] // g
    for i in range(g):
        dw[i * og:(i + 1) * og] = np.einsum("nohw,nchwij->ocij", dy[:, i * og:(i + 1) * og],
                                            win[:, i * cg:(i + 1) * cg], optimize=True)
    it.set(n, dw)


def conv2d_backprop_input(it: Interpreter, n: MsNode) -> None:
    dy, w = it.get(n, 0), it.get(n, 1)
    a = n.attrs
    xshape = tuple(a["input_shape"])
    (sh, sw), (dh, dw_), (pt, pb, pl, pr) = a["stride"], a["dilation"], a["pad"]
    ho, wo = dy.shape[2:]
    dxp = np.zeros((xshape[0], xshape[1], xshape[2] + pt + pb, xshape[3] + pl + pr), np.float32)
    g = a["group"]
    cg, og = xshape[1] // g, w.shape[0] // g
    for gi in range(g):
        dyg, wg = dy[:, gi * og:(gi + 1) * og], w[gi * og:(gi + 1) * og]
        for i in range(w.shape[2]):
            for j in range(w.shape[3]):
                contrib = np.einsum("nohw,oc->nchw", dyg, wg[:, :, i, j], optimize=True)
                dxp[:, gi * cg:(gi + 1) * cg, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                    j * dw_:j * dw_ + sw * (wo - 1) + 1:sw] += contrib
    it.set(n, dxp[:, :, pt:pt + xshape[2], pl:pl + xshape[3]])


def _pool_geometry(a: dict, x_shape: tuple) -> tuple[int, int]:
    (kh, kw), (sh, sw), pad = a["kernel"], a["stride"], a["pad"]
    return _out_size(x_shape[2], kh, sh, 1, pad[0], pad[1]), _out_size(x_shape[3], kw, sw, 1, pad[2], pad[3])


def max_pool(it: Interpreter, n: MsNode) -> None:
    x, a = it.get(n, 0), n.attrs
    out = _pool_geometry(a, x.shape)
    win = _windows(_pad(x, a["pad"], -np.inf), a["kernel"], a["stride"], (1, 1), out)
    it.set(n, win.max(axis=(4, 5)))


def max_pool_grad(it: Interpreter, n: MsNode) -> None:
    x, dy, a = it.get(n, 0), it.get(n, 2), n.attrs
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = a["kernel"], a["stride"], a["pad"]
    ho, wo = _pool_geometry(a, x.shape)
    win = _windows(_pad(x, a["pad"], -np.inf), (kh, kw), (sh, sw), (1, 1), (ho, wo))
    arg = win.reshape(*win.shape[:4], kh * kw).argmax(axis=4)   # first arg-max of each window
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + pt + pb, x.shape[3] + pl + pr), np.float32)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += dy * (arg == i * kw + j)
    it.set(n, dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]])


def _avg_counts(x_shape: tuple, a: dict, out: tuple) -> np.ndarray:
    ones = np.ones((1, 1, *x_shape[2:]), np.float32)
    return _windows(_pad(ones, a["pad"]), a["kernel"], a["stride"], (1, 1), out).sum(axis=(4, 5))


def avg_pool(it: Interpreter, n: MsNode) -> None:
    x, a = it.get(n, 0), n.attrs
    out = _pool_geometry(a, x.shape)
    win = _windows(_pad(x, a["pad"]), a["kernel"], a["stride"], (1, 1), out)
    it.set(n, win.sum(axis=(4, 5)) / _avg_counts(x.shape, a, out))


def avg_pool_grad(it: Interpreter, n: MsNode) -> None:
    x, dy, a = it.get(n, 0), it.get(n, 2), n.attrs
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = a["kernel"], a["stride"], a["pad"]
    ho, wo = _pool_geometry(a, x.shape)
    share = dy / _avg_counts(x.shape, a, (ho, wo))
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + pt + pb, x.shape[3] + pl + pr), np.float32)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += share
    it.set(n, dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]])


# ---- dense, activations, shapes, elementwise ---------------------------------------------------

def matmul(it: Interpreter, n: MsNode) -> None:
    a, b = it.get(n, 0), it.get(n, 1)
    if n.attrs.get("transpose_a"):
        a = a.T
    if n.attrs.get("transpose_b"):
        b = b.T
    it.set(n, a @ b)


def bias_add(it: Interpreter, n: MsNode) -> None:
    x, b = it.get(n, 0), it.get(n, 1)
    it.set(n, x + b.reshape((1, -1) + (1,) * (x.ndim - 2)))


def bias_add_grad(it: Interpreter, n: MsNode) -> None:
    dy = it.get(n, 0)
    it.set(n, dy.sum(axis=tuple(i for i in range(dy.ndim) if i != 1)))


def _elementwise(fn: Callable[..., np.ndarray], arity: int) -> Callable[[Interpreter, MsNode], None]:
    def op(it: Interpreter, n: MsNode) -> None:
        it.set(n, fn(*(it.get(n, i) for i in range(arity))))
    return op


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sparse_softmax_ce(it: Interpreter, n: MsNode) -> None:
    logits, labels = it.get(n, 0).astype(np.float64), it.get(n, 1)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    if n.attrs.get("is_grad"):
        p[rows, labels] -= 1.0
        it.set(n, (p / len(labels)).astype(np.float32))
    else:
        it.set(n, np.asarray(-np.log(p[rows, labels]).mean(), np.float32))


# ---- optimizers (in place) ----------------------------------------------------------------------

def apply_momentum(it: Interpreter, n: MsNode) -> None:
    var, accum, lr, grad, mom = (it.get(n, i) for i in range(5))
    new_accum = mom * accum + grad
    step = grad + mom * new_accum if n.attrs.get("use_nesterov") else new_accum
    it.update(n, 1, new_accum)
    it.update(n, 0, var - lr * step)


def sgd(it: Interpreter, n: MsNode) -> None:
    var, grad, lr, accum, mom, stat = (it.get(n, i) for i in range(6))
    a = n.attrs
    g = grad + a.get("weight_decay", 0.0) * var
    if float(mom) > 0:
        new_accum = np.where(stat > 0, g, accum * mom + (1 - a.get("dampening", 0.0)) * g)
        it.update(n, 3, new_accum)
        it.update(n, 5, np.zeros_like(stat))
        g = g + new_accum * mom if a.get("nesterov") else new_accum
    it.update(n, 0, var - lr * g)


def adam(it: Interpreter, n: MsNode) -> None:
    var, m, v, b1p, b2p, lr, b1, b2, eps, grad = (it.get(n, i) for i in range(10))
    lr_t = lr * np.sqrt(1 - b2p) / (1 - b1p)
    m_new = m + (grad - m) * (1 - b1)
    v_new = v + (grad * grad - v) * (1 - b2)
    num = m_new * b1 + (1 - b1) * grad if n.attrs.get("use_nesterov") else m_new
    it.update(n, 1, m_new)
    it.update(n, 2, v_new)
    it.update(n, 0, var - lr_t * num / (np.sqrt(v_new) + eps))


def assign_add(it: Interpreter, n: MsNode) -> None:
    it.update(n, 0, it.get(n, 0) + it.get(n, 1))


def assign(it: Interpreter, n: MsNode) -> None:
    it.update(n, 0, it.get(n, 1))


OPS: dict[str, Callable[[Interpreter, MsNode], None]] = {
    "Conv2D": conv2d,
    "Conv2DBackpropInput": conv2d_backprop_input,
    "Conv2DBackpropFilter": conv2d_backprop_filter,
    "BiasAdd": bias_add,
    "BiasAddGrad": bias_add_grad,
    "MatMul": matmul,
    "ReLU": _elementwise(lambda x: np.maximum(x, 0), 1),
    "ReluGrad": _elementwise(lambda dy, y: dy * (y > 0), 2),
    "Sigmoid": _elementwise(_sigmoid, 1),
    "SigmoidGrad": _elementwise(lambda y, dy: dy * y * (1 - y), 2),
    "Tanh": _elementwise(np.tanh, 1),
    "TanhGrad": _elementwise(lambda y, dy: dy * (1 - y * y), 2),
    "MaxPool": max_pool,
    "MaxPoolGrad": max_pool_grad,
    "AvgPool": avg_pool,
    "AvgPoolGrad": avg_pool_grad,
    "Flatten": _elementwise(lambda x: x.reshape(x.shape[0], -1), 1),
    "Reshape": _elementwise(lambda x: x, 1),   # the output tensor's shape is the attr's
    "Add": _elementwise(np.add, 2),
    "Sub": _elementwise(np.subtract, 2),
    "Mul": _elementwise(np.multiply, 2),
    "RealDiv": _elementwise(np.divide, 2),
    "Sqrt": _elementwise(np.sqrt, 1),
    "Square": _elementwise(np.square, 1),
    "Neg": _elementwise(np.negative, 1),
    "SparseSoftmaxCrossEntropyWithLogits": sparse_softmax_ce,
    "ApplyMomentum": apply_momentum,
    "SGD": sgd,
    "Adam": adam,
    "AssignAdd": assign_add,
    "Assign": assign,
}

__all__ = ["Interpreter", "OPS", "Phase"]
