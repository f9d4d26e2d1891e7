"""MindIR train graph → ``.ms`` device model: the converter of ``pyflclient convert``.

``mindspore.export(TrainOneStepCell(...), x, y, file_format="MINDIR")`` writes one flat
graph: the forward pass, the loss, the gradient ops and the optimizer's in-place updates,
held in order by MindSpore's side-effect bookkeeping (``Load``, ``UpdateState``,
``Depend``, ``MakeTuple``, ``TupleGetItem`` and monad constants). Node attributes live
in ``model.primitives`` (a node's ``op_type`` ``REF::Conv2D:4`` names one), and several
attributes are given as constant *inputs* (MatMul's transpose flags, BiasAdd's format,
Reshape's shape, the backprop ops' input/filter sizes).

The converter turns this into the canonical graph of ``docs/ms-format.md``:

1. every op outside the supported set is listed at once (:class:`UnsupportedOpsError`);
2. bookkeeping is folded (``Load(p)`` is ``p``, ``Depend(a, b)`` is ``a``) and constant
   inputs become attributes (or Constant tensors where the op reads them as data);
3. pad modes become explicit pads, strides/dilations/kernels their spatial pair;
4. nodes are tagged Forward (what ``logits`` and ``loss`` need), Optimizer (in-place
   updates of Parameters) or Backward (the rest), and stably reordered in that order —
   legal because no gradient op reads an optimizer's result, and it makes "all reads of
   a weight in a step see the weight of the step's start" hold by construction;
5. the data and label inputs, the logits, the loss and the learning-rate Parameter are
   marked, trainable weights flagged (the ``var`` of each optimizer op), graph-name
   prefixes stripped from tensor names (``…_construct_29:conv1.weight`` → ``conv1.weight``).

Reading MindIR needs ``mindspore.train.mind_ir_pb2`` from the optional mindspore extra.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pyflclient import __version__
from pyflclient.model import msfile
from pyflclient.model.msfile import DataType, MsModel, MsNode, MsTensor, Phase, Role
from pyflclient.model.ops import in_place_inputs, op_table

log = logging.getLogger(__name__)


class ConversionError(Exception):
    """The MindIR cannot be turned into a ``.ms`` device model; the message says why."""


class UnsupportedOpsError(ConversionError):
    """The graph uses ops outside docs/ms-format.md; ``ops`` lists every such op name."""

    def __init__(self, ops: Sequence[str], source: str) -> None:
        self.ops = sorted(set(ops))
        super().__init__(f"{source}: unsupported op(s) {', '.join(self.ops)} — the .ms runtime implements only "
                         f"the ops of docs/ms-format.md")


# ---- MindIR values --------------------------------------------------------------------

class _Monad:
    """MindSpore's side-effect tokens (UMonad/IOMonad, UpdateState results)."""

    def __repr__(self) -> str:
        return "MONAD"


MONAD = _Monad()

# MindIR TensorProto.DataType → (numpy dtype, .ms DataType)
_MINDIR_DTYPES: dict[int, tuple[type, int]] = {
    1: (np.float32, DataType.FLOAT32),
    6: (np.int32, DataType.INT32),
    7: (np.int64, DataType.INT64),
    9: (np.bool_, DataType.BOOL),
}
_MINDIR_NUMPY_ONLY: dict[int, type] = {2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 10: np.float16,
                                       11: np.float64, 12: np.uint32, 13: np.uint64}


def _tensor_value(t: Any) -> np.ndarray:
    """A MindIR TensorProto with data as a numpy array."""
    dims = [int(d) for d in t.dims]
    dt = _MINDIR_DTYPES.get(t.data_type, (None,))[0] or _MINDIR_NUMPY_ONLY.get(t.data_type)
    if dt is None:
        raise ConversionError(f"tensor {t.name!r}: MindIR data type {t.data_type} is not supported")
    if t.raw_data:
        arr = np.frombuffer(t.raw_data, dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
    elif len(t.float_data):
        arr = np.array(t.float_data, dtype=dt)
    elif len(t.int32_data):
        arr = np.array(t.int32_data, dtype=dt)
    elif len(t.int64_data):
        arr = np.array(t.int64_data, dtype=dt)
    elif len(t.double_data):
        arr = np.array(t.double_data, dtype=dt)
    else:
        arr = np.zeros(dims, dtype=dt)
    if arr.size != int(np.prod(dims, dtype=np.int64)):
        raise ConversionError(f"tensor {t.name!r}: {arr.size} values for shape {dims}")
    return arr.reshape(dims)


def _attr_value(a: Any) -> Any:
    """A MindIR AttributeProto as a Python value (scalars, strings, tuples, numpy arrays, MONAD)."""
    T = type(a)
    ty = a.type
    if ty == T.STRING:
        return a.s.decode("utf-8")
    if ty == T.BOOL:
        return bool(a.ints[0]) if len(a.ints) else bool(a.i)
    if ty in (T.INT8, T.INT16, T.INT32, T.INT64, T.UINT8, T.UINT16, T.UINT32, T.UINT64):
        return int(a.ints[0]) if len(a.ints) else int(a.i)
    if ty in (T.FLOAT, T.FLOAT16, T.BFLOAT16):
        return float(a.floats[0]) if len(a.floats) else float(a.f)
    if ty == T.DOUBLE:
        return float(a.doubles[0]) if len(a.doubles) else float(a.d)
    if ty in (T.TUPLE, T.LIST):
        return tuple(_attr_value(v) for v in a.values)
    if ty == T.TENSOR:
        return _tensor_value(a.t)
    if ty in (T.TENSORS, T.SCALAR):
        values = [_tensor_value(t) for t in a.tensors]
        return values[0] if len(values) == 1 else values
    if ty in (T.UMONAD, T.IOMONAD):
        return MONAD
    if ty == T.NONE:
        return None
    return _Opaque(T.AttributeType.Name(ty))


@dataclass(frozen=True)
class _Opaque:
    """An attribute kind the converter never needs to read (kept only for error messages)."""

    kind: str


@dataclass(frozen=True)
class _Shape:
    """Declared output shape and dtype of a MindIR node (its ``shape`` attribute)."""

    dims: tuple[int, ...]
    mindir_dtype: int


def _node_shapes(node: Any) -> list[_Shape]:
    for a in node.attribute:
        if a.name == "shape":
            return _shapes_of(a)
    return []


def _shapes_of(a: Any) -> list[_Shape]:
    T = type(a)
    if a.type == T.TENSORS:
        return [_Shape(tuple(int(d) for d in t.dims), t.data_type) for t in a.tensors]
    if a.type in (T.TUPLE, T.LIST):
        return [s for v in a.values for s in _shapes_of(v)]
    return []


# ---- the converter's graph values ------------------------------------------------------------

@dataclass
class _Ref:
    """A value flowing along a MindIR edge once bookkeeping is folded.

    One of: ``tensor`` (index into the output tensors; ``after_update_of`` set when it is
    a ``Load`` of a Parameter some optimizer op already updated in this step), ``const``
    with ``is_const`` (a constant Python/numpy value), ``items`` (a MakeTuple),
    ``effect_of`` (an in-place op's result, which only bookkeeping may consume), or
    :data:`MONAD_REF` (side-effect tokens).
    """

    tensor: int | None = None
    const: Any = None
    is_const: bool = False
    items: tuple["_Ref", ...] | None = None
    effect_of: str | None = None          # name of the in-place op whose result this is
    after_update_of: str | None = None    # Load of a Parameter after an in-place update of it


# in-place ops: (op_type → indices of the inputs they update)
IN_PLACE_OPS: dict[str, tuple[int, ...]] = in_place_inputs()  # from schema/ops.json
OPTIMIZER_OPS = tuple(name for name, spec in op_table().items() if spec.phase == "optimizer")
BOOKKEEPING_OPS = frozenset({"Load", "UpdateState", "Depend", "MakeTuple", "TupleGetItem", "Constant"})


class _Ctx:
    """What an op handler sees of one MindIR node."""

    def __init__(self, conv: "_Converter", name: str, op_type: str, inputs: list[_Ref],
                 prim: dict[str, Any], shapes: list[_Shape]) -> None:
        self.conv, self.name, self.op_type, self.inputs, self.prim, self.shapes = conv, name, op_type, inputs, prim, shapes

    def fail(self, why: str) -> ConversionError:
        return ConversionError(f"{self.conv.source}: node {self.conv.clean(self.name)} ({self.op_type}): {why}")

    def tensor(self, i: int) -> int:
        """Input ``i`` as a tensor index (a constant input becomes a Constant tensor)."""
        if i >= len(self.inputs):
            raise self.fail(f"expected at least {i + 1} inputs, got {len(self.inputs)}")
        ref = self.inputs[i]
        if ref.tensor is not None:
            return ref.tensor
        if ref.is_const:
            return self.conv.constant_tensor(ref.const, f"{self.name}/input{i}")
        raise self.fail(f"input {i} is not a tensor ({ref})")

    def const(self, i: int) -> Any:
        if i >= len(self.inputs) or not self.inputs[i].is_const:
            raise self.fail(f"input {i} must be a constant (it gives an attribute)")
        return self.inputs[i].const

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self.conv.tensors[tensor].shape

    def out_shape(self) -> tuple[int, ...]:
        if not self.shapes:
            raise self.fail("MindIR gives no output shape")
        return self.shapes[0].dims

    def emit(self, op_type: str, inputs: list[int], attrs: dict[str, Any] | None = None,
             *, in_place: bool = False) -> None:
        """Add one canonical node; its output (unless in place) is a new Activation tensor."""
        outputs: list[int] = []
        if in_place:
            self.conv.values[self.name] = _Ref(effect_of=self.name)
        else:
            if not self.shapes:
                raise self.fail("MindIR gives no output shape")
            s = self.shapes[0]
            dtype = _MINDIR_DTYPES.get(s.mindir_dtype, (None, None))[1]
            if dtype is None:
                raise self.fail(f"output data type {s.mindir_dtype} is not supported")
            out = self.conv.add_tensor(MsTensor(self.conv.clean(self.name), s.dims, dtype, Role.ACTIVATION))
            outputs.append(out)
            self.conv.values[self.name] = _Ref(tensor=out)
        self.conv.emitted.append(MsNode(self.conv.clean(self.name), op_type, inputs, outputs, attrs or {}))


# ---- attribute helpers ----------------------------------------------------------------

def _pair(value: Any, what: str, ctx: _Ctx) -> tuple[int, int]:
    """MindSpore gives strides/kernels/dilations as 1, 2 or 4 numbers (N, C, H, W): the spatial pair."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    v = tuple(int(x) for x in value)
    if len(v) == 2:
        return v[0], v[1]
    if len(v) == 4:
        return v[2], v[3]
    raise ctx.fail(f"{what} {v}: expected 1, 2 or 4 numbers")


def _same_pads(in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int] = (1, 1)) -> tuple[int, int, int, int]:
    """TensorFlow/MindSpore 'same' padding: output ceil(in/stride), the extra row/column at the end."""
    pads: list[int] = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-size // s)
        needed = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        pads += [needed // 2, needed - needed // 2]
    return pads[0], pads[1], pads[2], pads[3]


def _pads(ctx: _Ctx, in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
          dilation: Sequence[int] = (1, 1)) -> tuple[int, int, int, int]:
    mode = str(ctx.prim.get("pad_mode", "valid")).lower()
    if mode == "valid":
        return 0, 0, 0, 0
    if mode == "same":
        return _same_pads(in_hw, kernel, stride, dilation)
    if mode == "pad":
        pad = ctx.prim.get("pad_list") or ctx.prim.get("pad", (0, 0, 0, 0))
        if isinstance(pad, (int, np.integer)):
            pad = (pad,) * 4
        if len(pad) != 4:
            raise ctx.fail(f"pad {pad}: expected 4 numbers (top, bottom, left, right)")
        return tuple(int(p) for p in pad)  # type: ignore[return-value]
    raise ctx.fail(f"pad_mode {ctx.prim.get('pad_mode')!r} unknown (valid, same, pad)")


def _check_nchw(ctx: _Ctx) -> None:
    for key in ("format", "data_format"):
        fmt = ctx.prim.get(key)
        if fmt is not None and str(fmt).upper() not in ("NCHW", "0"):
            raise ctx.fail(f"{key} {fmt}: only NCHW is supported")


def _conv_attrs(ctx: _Ctx, x_shape: Sequence[int], w_shape: Sequence[int]) -> dict[str, Any]:
    _check_nchw(ctx)
    stride = _pair(ctx.prim.get("stride", 1), "stride", ctx)
    dilation = _pair(ctx.prim.get("dilation", 1), "dilation", ctx)
    group = int(ctx.prim.get("group", ctx.prim.get("groups", 1)))
    pad = _pads(ctx, x_shape[2:], w_shape[2:], stride, dilation)
    return {"stride": stride, "dilation": dilation, "pad": pad, "group": group}


def _pool_attrs(ctx: _Ctx, x_shape: Sequence[int]) -> dict[str, Any]:
    _check_nchw(ctx)
    kernel = _pair(ctx.prim.get("kernel_size", 1), "kernel_size", ctx)
    stride = _pair(ctx.prim.get("strides", 1), "strides", ctx)
    return {"kernel": kernel, "stride": stride, "pad": _pads(ctx, x_shape[2:], kernel, stride)}


def _format_input(ctx: _Ctx, i: int, x: int) -> None:
    """BiasAdd/BiasAddGrad format given as a constant input: 0 / "NCHW" (bias on axis 1)."""
    if i < len(ctx.inputs) and ctx.inputs[i].is_const:
        fmt = ctx.inputs[i].const
        if fmt not in (0, "NCHW", None) and len(ctx.shape(x)) > 2:
            raise ctx.fail(f"data format {fmt}: only NCHW (bias on axis 1) is supported")
    _check_nchw(ctx)


# ---- op handlers: MindSpore op → canonical node(s) of docs/ms-format.md -----------------------

def _conv2d(ctx: _Ctx) -> None:
    x, w = ctx.tensor(0), ctx.tensor(1)
    ctx.emit("Conv2D", [x, w], _conv_attrs(ctx, ctx.shape(x), ctx.shape(w)))


def _conv2d_backprop_input(ctx: _Ctx) -> None:
    dy, w = ctx.tensor(0), ctx.tensor(1)
    input_shape = tuple(int(v) for v in np.asarray(ctx.const(2)).ravel()) if len(ctx.inputs) > 2 else ctx.out_shape()
    attrs = _conv_attrs(ctx, input_shape, ctx.shape(w))
    attrs["input_shape"] = input_shape
    ctx.emit("Conv2DBackpropInput", [dy, w], attrs)


def _conv2d_backprop_filter(ctx: _Ctx) -> None:
    dy, x = ctx.tensor(0), ctx.tensor(1)
    filter_shape = tuple(int(v) for v in np.asarray(ctx.const(2)).ravel()) if len(ctx.inputs) > 2 else ctx.out_shape()
    attrs = _conv_attrs(ctx, ctx.shape(x), filter_shape)
    attrs["filter_shape"] = filter_shape
    ctx.emit("Conv2DBackpropFilter", [dy, x], attrs)


def _bias_add(ctx: _Ctx) -> None:
    x, b = ctx.tensor(0), ctx.tensor(1)
    _format_input(ctx, 2, x)
    ctx.emit("BiasAdd", [x, b])


def _bias_add_grad(ctx: _Ctx) -> None:
    dy = ctx.tensor(0)
    _format_input(ctx, 1, dy)
    ctx.emit("BiasAddGrad", [dy])


def _matmul(ctx: _Ctx) -> None:
    a, b = ctx.tensor(0), ctx.tensor(1)
    ta = bool(ctx.const(2)) if len(ctx.inputs) > 2 else bool(ctx.prim.get("transpose_a", False))
    tb = bool(ctx.const(3)) if len(ctx.inputs) > 3 else bool(ctx.prim.get("transpose_b", False))
    ctx.emit("MatMul", [a, b], {"transpose_a": ta, "transpose_b": tb})


def _unary(op: str) -> Callable[[_Ctx], None]:
    def handler(ctx: _Ctx) -> None:
        ctx.emit(op, [ctx.tensor(0)])
    return handler


def _binary(op: str) -> Callable[[_Ctx], None]:
    def handler(ctx: _Ctx) -> None:
        ctx.emit(op, [ctx.tensor(0), ctx.tensor(1)])
    return handler


# MindSpore's PadMode / Format enums, for attributes given as constant int inputs
_PAD_MODES = {0: "pad", 1: "same", 2: "valid"}
_FORMATS = {0: "NCHW", 1: "NHWC"}


def _attrs_from_inputs(ctx: _Ctx, first: int, names: Sequence[str]) -> None:
    """MindSpore 2.x passes some primitives' attributes as constant inputs (AvgPool: kernel_size,
    strides, pad_mode, data_format): fold them into ``ctx.prim``."""
    for k, key in enumerate(names, start=first):
        if k < len(ctx.inputs):
            value = ctx.const(k)
            if key == "pad_mode" and isinstance(value, (int, np.integer)):
                value = _PAD_MODES.get(int(value), value)
            if key == "data_format" and isinstance(value, (int, np.integer)):
                value = _FORMATS.get(int(value), value)
            ctx.prim[key] = value


_POOL_ATTR_INPUTS = ("kernel_size", "strides", "pad_mode", "data_format")


def _pool(op: str) -> Callable[[_Ctx], None]:
    def handler(ctx: _Ctx) -> None:
        x = ctx.tensor(0)
        _attrs_from_inputs(ctx, 1, _POOL_ATTR_INPUTS)
        if op == "AvgPool":
            _check_count_include_pad(ctx)
        ctx.emit(op, [x], _pool_attrs(ctx, ctx.shape(x)))
    return handler


def _pool_grad(op: str) -> Callable[[_Ctx], None]:
    def handler(ctx: _Ctx) -> None:
        x, y, dy = ctx.tensor(0), ctx.tensor(1), ctx.tensor(2)
        _attrs_from_inputs(ctx, 3, _POOL_ATTR_INPUTS)
        if op == "AvgPoolGrad":
            _check_count_include_pad(ctx)
        ctx.emit(op, [x, y, dy], _pool_attrs(ctx, ctx.shape(x)))
    return handler


def _check_count_include_pad(ctx: _Ctx) -> None:
    if str(ctx.prim.get("pad_mode", "valid")).lower() == "pad" and ctx.prim.get("count_include_pad", False):
        raise ctx.fail("explicit padding with count_include_pad=True is not supported (use pad_mode 'same' "
                       "or 'valid', or count_include_pad=False)")


def _reshape(ctx: _Ctx) -> None:
    # the constant shape may hold -1; MindIR's inferred output shape is the resolved one
    ctx.emit("Reshape", [ctx.tensor(0)], {"shape": tuple(ctx.out_shape())})


def _sparse_softmax_ce(ctx: _Ctx) -> None:
    logits, labels = ctx.tensor(0), ctx.tensor(1)
    is_grad = bool(ctx.prim.get("is_grad", False))
    ctx.emit("SparseSoftmaxCrossEntropyWithLogits", [logits, labels], {"is_grad": is_grad})
    if not is_grad:
        ctx.conv.loss_candidates.append((logits, ctx.conv.values[ctx.name].tensor))


def _apply_momentum(ctx: _Ctx) -> None:
    if float(ctx.prim.get("gradient_scale", 1.0)) != 1.0:
        raise ctx.fail(f"gradient_scale {ctx.prim['gradient_scale']} is not supported (only 1.0)")
    ins = [ctx.tensor(i) for i in range(5)]   # var, accum, lr, grad, momentum (input 5: monad)
    ctx.emit("ApplyMomentum", ins, {"use_nesterov": bool(ctx.prim.get("use_nesterov", False))}, in_place=True)
    ctx.conv.optimizer_uses(var=ins[0], lr=ins[2])


def _sgd(ctx: _Ctx) -> None:
    ins = [ctx.tensor(i) for i in range(6)]   # var, grad, lr, accum, momentum, stat
    ctx.emit("SGD", ins, {"dampening": float(ctx.prim.get("dampening", 0.0)),
                          "weight_decay": float(ctx.prim.get("weight_decay", 0.0)),
                          "nesterov": bool(ctx.prim.get("nesterov", False))}, in_place=True)
    ctx.conv.optimizer_uses(var=ins[0], lr=ins[2])


def _adam(ctx: _Ctx) -> None:
    ins = [ctx.tensor(i) for i in range(10)]  # var, m, v, beta1_power, beta2_power, lr, beta1, beta2, eps, grad
    ctx.emit("Adam", ins, {"use_nesterov": bool(ctx.prim.get("use_nesterov", False))}, in_place=True)
    ctx.conv.optimizer_uses(var=ins[0], lr=ins[5])


def _addn(ctx: _Ctx) -> None:
    """AddN (what weight decay adds to the gradients) as a chain of Adds."""
    terms = [ctx.tensor(i) for i in range(len(ctx.inputs))]
    if len(terms) == 1:
        ctx.conv.values[ctx.name] = _Ref(tensor=terms[0])
        return
    acc = terms[0]
    for k, term in enumerate(terms[1:-1], start=1):
        t = ctx.conv.tensors[acc]
        partial = ctx.conv.add_tensor(MsTensor(f"{ctx.conv.clean(ctx.name)}/sum{k}", t.shape, t.dtype))
        ctx.conv.emitted.append(MsNode(ctx.conv.tensors[partial].name, "Add", [acc, term], [partial]))
        acc = partial
    ctx.emit("Add", [acc, terms[-1]])


def _assign_like(op: str) -> Callable[[_Ctx], None]:
    def handler(ctx: _Ctx) -> None:
        ctx.emit(op, [ctx.tensor(0), ctx.tensor(1)], in_place=True)
    return handler


#: MindSpore op type → handler emitting the canonical node(s)
HANDLERS: dict[str, Callable[[_Ctx], None]] = {
    "Conv2D": _conv2d,
    "Conv2DBackpropInput": _conv2d_backprop_input,
    "Conv2DBackpropFilter": _conv2d_backprop_filter,
    "BiasAdd": _bias_add,
    "BiasAddGrad": _bias_add_grad,
    "MatMul": _matmul,
    "ReLU": _unary("ReLU"),
    "ReluGrad": _binary("ReluGrad"),
    "Sigmoid": _unary("Sigmoid"),
    "SigmoidGrad": _binary("SigmoidGrad"),
    "Tanh": _unary("Tanh"),
    "TanhGrad": _binary("TanhGrad"),
    "MaxPool": _pool("MaxPool"),
    "MaxPoolGrad": _pool_grad("MaxPoolGrad"),
    "AvgPool": _pool("AvgPool"),
    "AvgPoolGrad": _pool_grad("AvgPoolGrad"),
    "Flatten": _unary("Flatten"),
    "Reshape": _reshape,
    "Add": _binary("Add"),
    "AddN": _addn,
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("RealDiv"),
    "Sqrt": _unary("Sqrt"),
    "Square": _unary("Square"),
    "Neg": _unary("Neg"),
    "SparseSoftmaxCrossEntropyWithLogits": _sparse_softmax_ce,
    "ApplyMomentum": _apply_momentum,
    "SGD": _sgd,
    "Adam": _adam,
    "AssignAdd": _assign_like("AssignAdd"),
    "Assign": _assign_like("Assign"),
}
SUPPORTED_OPS = tuple(sorted(HANDLERS))
#: MindIR ops with a handler that are not ops of the .ms format: they are lowered to format ops
MINDIR_ONLY_OPS = frozenset({"AddN"})  # a chain of Add


# ---- the conversion ---------------------------------------------------------------------------

def _primitive_op_type(node_op_type: str) -> tuple[str, str | None]:
    """``REF::Conv2D:4`` → (``Conv2D``, ``Conv2D:4``); a plain ``Conv2D`` → (``Conv2D``, None)."""
    if node_op_type.startswith("REF::"):
        ref = node_op_type[len("REF::"):]
        return ref.rsplit(":", 1)[0] if ":" in ref else ref, ref
    return node_op_type, None


class _Converter:
    def __init__(self, proto: Any, source: str, name: str) -> None:
        self.proto, self.source, self.name = proto, source, name
        self.prefix = proto.graph.name + ":" if proto.graph.name else ""
        self.tensors: list[MsTensor] = []
        self.values: dict[str, _Ref] = {}
        self.emitted: list[MsNode] = []
        self.loss_candidates: list[tuple[int, int | None]] = []
        self.trainable: list[int] = []
        self.lr_tensors: list[int] = []
        self.updated_params: set[int] = set()
        self.primitives = {p.name: (p.op_type, {a.name: _attr_value(a) for a in p.attribute})
                           for p in proto.primitives}

    # -- tensors
    def clean(self, name: str) -> str:
        return name[len(self.prefix):] if self.prefix and name.startswith(self.prefix) else name

    def add_tensor(self, t: MsTensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    def constant_tensor(self, value: Any, name: str) -> int:
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        dtype = {np.dtype(np.float32): DataType.FLOAT32, np.dtype(np.int32): DataType.INT32,
                 np.dtype(np.int64): DataType.INT64, np.dtype(np.bool_): DataType.BOOL}.get(arr.dtype)
        if dtype is None:
            raise ConversionError(f"{self.source}: constant {name} of type {arr.dtype} is not supported")
        return self.add_tensor(MsTensor(self.clean(name), tuple(arr.shape), dtype, Role.CONSTANT, data=arr))

    def optimizer_uses(self, var: int, lr: int) -> None:
        if var not in self.trainable:
            self.trainable.append(var)
        if self.tensors[lr].role == Role.PARAMETER and lr not in self.lr_tensors:
            self.lr_tensors.append(lr)

    # -- the whole graph
    def run(self, train_model: bool) -> MsModel:
        g = self.proto.graph
        self._check_supported()
        data_input, label_input = self._inputs(g)
        for p in g.parameter:
            arr = _tensor_value(p)
            dtype = _MINDIR_DTYPES.get(p.data_type, (None, None))[1]
            if dtype is None:
                raise ConversionError(f"{self.source}: parameter {self.clean(p.name)} has unsupported data type "
                                      f"{p.data_type}")
            idx = self.add_tensor(MsTensor(self.clean(p.name), tuple(arr.shape), dtype, Role.PARAMETER,
                                           data=arr.astype(_MINDIR_DTYPES[p.data_type][0])))
            self.values[p.name] = self.values[self.clean(p.name)] = _Ref(tensor=idx)
        for node in g.node:
            self._node(node)
        return self._finish(data_input, label_input, g, train_model)

    def _check_supported(self) -> None:
        unsupported = []
        for node in self.proto.graph.node:
            op, _ = _primitive_op_type(node.op_type)
            if op not in HANDLERS and op not in BOOKKEEPING_OPS:
                unsupported.append(op)
        if unsupported:
            raise UnsupportedOpsError(unsupported, self.source)
        if len(self.proto.functions):
            raise ConversionError(f"{self.source}: the MindIR has {len(self.proto.functions)} sub-graph(s) "
                                  f"(control flow or a non-inlined cell); only flat train graphs convert")

    def _inputs(self, g: Any) -> tuple[int, int]:
        data = label = -1
        for vi in g.input:
            if not len(vi.tensor):
                raise ConversionError(f"{self.source}: graph input {self.clean(vi.name)} has no tensor type")
            t = vi.tensor[0]
            dtype = _MINDIR_DTYPES.get(t.data_type, (None, None))[1]
            shape = tuple(int(d) for d in t.dims)
            if any(d < 0 for d in shape):
                raise ConversionError(f"{self.source}: input {self.clean(vi.name)} has a dynamic shape {shape}; "
                                      f"export with a fixed batch size")
            idx = self.add_tensor(MsTensor(self.clean(vi.name), shape, dtype if dtype is not None else -1,
                                           Role.INPUT))
            self.values[vi.name] = _Ref(tensor=idx)
            if dtype == DataType.FLOAT32 and data < 0:
                data = idx
            elif dtype in (DataType.INT32, DataType.INT64) and label < 0:
                label = idx
            else:
                raise ConversionError(f"{self.source}: unexpected graph input {self.clean(vi.name)} "
                                      f"(type {t.data_type}, shape {shape}); a train graph takes one float "
                                      f"image batch and one int label batch")
        if data < 0:
            raise ConversionError(f"{self.source}: the graph has no float32 data input")
        return data, label

    def _ref(self, name: str, consumer: str) -> _Ref:
        ref = self.values.get(name)
        if ref is None:
            raise ConversionError(f"{self.source}: node {self.clean(consumer)} reads {self.clean(name)}, "
                                  f"which no earlier node, parameter or input defines")
        return ref

    def _node(self, node: Any) -> None:
        op, prim_name = _primitive_op_type(node.op_type)
        out = node.output[0] if len(node.output) else node.name
        if op == "Constant":
            value = None
            for a in node.attribute:
                if a.name == "value":
                    value = _attr_value(a)
            self.values[out] = MONAD_REF if value is MONAD else _Ref(const=value, is_const=True)
            return
        inputs = [self._ref(i, node.name) for i in node.input]
        if op == "Load":
            ref = inputs[0]
            if ref.tensor is not None and ref.tensor in self.updated_params:
                ref = _Ref(tensor=ref.tensor, after_update_of=self.tensors[ref.tensor].name)
            self.values[out] = ref
            return
        if op == "Depend":
            self.values[out] = inputs[0]
            return
        if op == "UpdateState":
            self.values[out] = MONAD_REF
            return
        if op == "MakeTuple":
            self.values[out] = _Ref(items=tuple(inputs))
            return
        if op == "TupleGetItem":
            tup, idx = inputs[0], inputs[1]
            if tup.items is None or not idx.is_const:
                raise ConversionError(f"{self.source}: node {self.clean(node.name)}: TupleGetItem of a "
                                      f"multi-output op is not supported")
            self.values[out] = tup.items[int(idx.const)]
            return
        # a compute op: monad inputs are ordering tokens only
        data_inputs = [r for r in inputs if r is not MONAD_REF]
        if op == "AddN" and len(data_inputs) == 1 and data_inputs[0].items is not None:
            data_inputs = list(data_inputs[0].items)   # AddN(MakeTuple(a, b, ...))
        for i, r in enumerate(data_inputs):
            if r.effect_of is not None or r.items is not None:
                raise ConversionError(f"{self.source}: node {self.clean(node.name)} ({op}) reads "
                                      f"{'the result of in-place op ' + r.effect_of if r.effect_of else 'a tuple'} "
                                      f"as input {i}; not supported")
            if r.after_update_of is not None and op not in IN_PLACE_OPS:
                raise ConversionError(f"{self.source}: node {self.clean(node.name)} ({op}) reads "
                                      f"{r.after_update_of} after an optimizer updated it in the same step; "
                                      f"not supported")
        # a copy: handlers fold constant inputs into it, and primitives are shared between nodes
        prim = dict(self.primitives.get(prim_name, (op, {}))[1]) if prim_name else \
            {a.name: _attr_value(a) for a in node.attribute if a.name != "shape"}
        ctx = _Ctx(self, out, op, data_inputs, prim, _node_shapes(node))
        HANDLERS[op](ctx)
        if op in IN_PLACE_OPS:
            for k in IN_PLACE_OPS[op]:
                if k < len(data_inputs) and data_inputs[k].tensor is not None:
                    self.updated_params.add(data_inputs[k].tensor)

    # -- phases, ordering, marking
    def _finish(self, data_input: int, label_input: int, g: Any, train_model: bool) -> MsModel:
        if not self.loss_candidates:
            raise ConversionError(f"{self.source}: no SparseSoftmaxCrossEntropyWithLogits loss found; export "
                                  f"TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits("
                                  f"sparse=True, reduction='mean')), optimizer)")
        if len(self.loss_candidates) > 1:
            raise ConversionError(f"{self.source}: {len(self.loss_candidates)} loss ops; expected one")
        logits, loss = self.loss_candidates[0]
        assert loss is not None
        if train_model and not any(e.op_type in OPTIMIZER_OPS for e in self.emitted):
            raise ConversionError(f"{self.source}: no optimizer op (ApplyMomentum, SGD, Adam): export the "
                                  f"TrainOneStepCell, not the bare network, or convert with --trainModel=false")
        if len(self.lr_tensors) > 1:
            raise ConversionError(f"{self.source}: the optimizers read {len(self.lr_tensors)} different "
                                  f"learning-rate parameters; one is supported")

        producer = {o: i for i, e in enumerate(self.emitted) for o in e.outputs}

        def ancestors(roots: Sequence[int]) -> set[int]:
            seen: set[int] = set()
            stack = [producer[t] for t in roots if t in producer]
            while stack:
                i = stack.pop()
                if i in seen:
                    continue
                seen.add(i)
                stack += [producer[t] for t in self.emitted[i].inputs if t in producer]
            return seen

        forward = ancestors([logits, loss])
        for i, e in enumerate(self.emitted):
            e.phase = (Phase.FORWARD if i in forward else
                       Phase.OPTIMIZER if e.op_type in IN_PLACE_OPS else Phase.BACKWARD)
        keep: list[MsNode]
        if train_model:
            needed = ancestors([t for e in self.emitted if e.op_type in IN_PLACE_OPS for t in e.inputs])
            needed |= forward | {i for i, e in enumerate(self.emitted) if e.op_type in IN_PLACE_OPS}
            dead = [e.name for i, e in enumerate(self.emitted) if i not in needed]
            if dead:
                log.info("dropping %d node(s) whose results nothing uses: %s", len(dead), ", ".join(dead))
            keep = [e for i, e in enumerate(self.emitted) if i in needed]
        else:
            keep = [e for i, e in enumerate(self.emitted) if i in ancestors([logits])]
        order = sorted(range(len(keep)), key=lambda i: (keep[i].phase, i))
        nodes = [keep[i] for i in order]
        self._check_order(nodes)
        self._canonical_names(nodes)

        # tensors: inputs, parameters (MindIR order), then constants/activations in use order
        used = {t for e in nodes for t in e.inputs + e.outputs if t >= 0}
        used |= {data_input, logits} | ({label_input, loss} if train_model else set())
        used.discard(-1)
        ranked = sorted(used, key=lambda t: ({Role.INPUT: 0, Role.PARAMETER: 1}.get(self.tensors[t].role, 2), t))
        remap = {old: new for new, old in enumerate(ranked)}
        tensors = []
        for old in ranked:
            t = self.tensors[old]
            t.trainable = old in self.trainable
            tensors.append(t)
        lr = self.lr_tensors[0] if self.lr_tensors and train_model else -1
        if train_model and lr < 0:
            log.warning("%s: the learning rate is not a Parameter (dynamic lr?): setLearningRate will not apply",
                        self.source)
        model = MsModel(
            tensors=tensors,
            nodes=[MsNode(e.name, e.op_type, [remap[t] if t >= 0 else -1 for t in e.inputs],
                          [remap[t] for t in e.outputs], e.attrs, e.phase) for e in nodes],
            name=self.name,
            producer=f"pyflclient-convert {__version__} from {self.proto.producer_name or 'MindSpore'} "
                     f"{_mindspore_version()} MindIR",
            data_input=remap[data_input],
            label_input=remap[label_input] if train_model and label_input >= 0 else -1,
            logits=remap[logits],
            loss=remap[loss] if train_model else -1,
            learning_rate=remap[lr] if lr >= 0 else -1)
        if not train_model:
            for t in model.tensors:
                t.trainable = t.role == Role.PARAMETER and t.dtype == DataType.FLOAT32
        model.validate()
        return model

    def _canonical_names(self, nodes: list[MsNode]) -> None:
        """Name nodes ``<op>-<position>``, their outputs alike, constants after their first reader.

        MindIR's node names (``equiv_15_output:3``) carry counters of the exporting process
        (they change when other graphs were compiled before), so they are replaced: the
        same network then converts to the same bytes whatever ran before the export.
        Inputs and Parameters keep their (meaningful, stable) names.
        """
        renamed: set[int] = set()
        for k, e in enumerate(nodes):
            e.name = f"{e.op_type}-{k}"
            for j, t in enumerate(e.outputs):
                self.tensors[t].name = e.name if len(e.outputs) == 1 else f"{e.name}:{j}"
                renamed.add(t)
            for i, t in enumerate(e.inputs):
                if t >= 0 and t not in renamed and self.tensors[t].role == Role.CONSTANT:
                    self.tensors[t].name = f"{e.name}.input{i}"
                    renamed.add(t)

    def _check_order(self, nodes: list[MsNode]) -> None:
        ready = {i for i, t in enumerate(self.tensors) if t.role != Role.ACTIVATION}
        for e in nodes:
            missing = [self.tensors[t].name for t in e.inputs if t >= 0 and t not in ready]
            if missing:
                raise ConversionError(f"{self.source}: node {e.name} ({e.op_type}) would run before "
                                      f"{', '.join(missing)} is computed; the graph cannot be put in "
                                      f"forward/backward/optimizer order")
            ready.update(e.outputs)


MONAD_REF = _Ref(const=MONAD)


def _mindspore_version() -> str:
    try:
        from importlib.metadata import version
        return version("mindspore")
    except Exception:  # noqa: BLE001 - only a label in the file
        return ""


# ---- public API -------------------------------------------------------------------------------

def load_mindir(path: str | Path) -> Any:
    """Parse a MindIR file with MindSpore's own protobuf classes (``mind_ir_pb2.ModelProto``)."""
    from pyflclient.model._mindspore import import_mind_ir_pb2

    pb = import_mind_ir_pb2()
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConversionError(f"cannot read MindIR file {p}: {e.strerror or e}") from e
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ConversionError(f"{p} is not a MindIR file (protobuf parse failed: {e})") from e
    if not proto.HasField("graph") or not len(proto.graph.node):
        raise ConversionError(f"{p} is not a MindIR model (no graph nodes)")
    return proto


def convert_proto(proto: Any, *, name: str = "model", source: str = "<MindIR>",
                  train_model: bool = True) -> MsModel:
    """Convert a parsed MindIR ``ModelProto`` into an in-memory :class:`MsModel`."""
    return _Converter(proto, source, name).run(train_model)


def convert(mindir_path: str | Path, output: str | Path, *, train_model: bool = True) -> Path:
    """Convert a train MindIR file to ``output`` (``.ms`` appended unless present); returns the file written.

    ``train_model=False`` keeps only what inference needs (the forward ops of the logits).
    """
    src = Path(mindir_path)
    out = Path(output)
    if out.suffix != ".ms":
        out = out.with_name(out.name + ".ms")
    model = convert_proto(load_mindir(src), name=out.stem, source=str(src), train_model=train_model)
    msfile.save(model, out)
    log.info("converted %s → %s (%d tensors, %d nodes, weights %s)", src, out, len(model.tensors),
             len(model.nodes), ", ".join(model.weight_names))
    return out
