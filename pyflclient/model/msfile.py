"""Read and write ``.ms`` device model files (``schema/ms_model.fbs``) with numpy arrays.

The ``.ms`` file is the one artefact the converter, the FL server and the Java runtime
share: the converter writes it, the server reads the trainable weights out of it to
seed and aggregate the global model and writes aggregated weights back into a copy,
and the runtime trains it. This module is the Python side of that file: a plain
in-memory :class:`MsModel` (tensors as numpy arrays, nodes with their attributes as a
``dict``) built on the FlatBuffers code generated from the schema
(``pyflclient._fbs.ms_model_generated``), so no Python code ever hand-parses bytes.

:func:`load` runs the schema-driven verifier (:mod:`pyflclient.wire.verify`) before any
read, then checks the model itself (tensor indices in range, data sizes equal to
shapes) and raises :class:`MsFormatError` naming the file and what is wrong.

The 90% uses are one line::

    weights = trainable_weights("lenet_train.ms")         # {"conv1.weight": ndarray, ...}
    write_weights("lenet_train.ms", weights, "global.ms")  # same graph, new weights
"""
from __future__ import annotations

import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

import flatbuffers
import numpy as np

from pyflclient.wire import verify as fbverify
from pyflclient._fbs import ms_model_generated as fb

log = logging.getLogger(__name__)

#: "PFMS": the file_identifier of schema/ms_model.fbs
FILE_IDENTIFIER = fbverify.load_schema("ms_model.fbs").file_identifiers["Model"].encode()
FORMAT_VERSION = 1

#: Attribute values as Python objects: the kind written to the file follows the type
#: (bool → Bool, int → Int, float → Float, str → String, tuple of ints → Ints,
#: tuple of floats → Floats).
AttrValue = Union[bool, int, float, str, tuple[int, ...], tuple[float, ...]]
PathLike = Union[str, "os.PathLike[str]"]


class DataType:
    """Element types of a tensor (values of the schema's ``DataType`` enum)."""

    FLOAT32 = fb.DataType.Float32
    INT32 = fb.DataType.Int32
    INT64 = fb.DataType.Int64
    BOOL = fb.DataType.Bool


class Role:
    """What a tensor is for the runtime (values of the schema's ``TensorRole`` enum)."""

    ACTIVATION = fb.TensorRole.Activation
    CONSTANT = fb.TensorRole.Constant
    PARAMETER = fb.TensorRole.Parameter
    INPUT = fb.TensorRole.Input


class Phase:
    """When a node runs (values of the schema's ``Phase`` enum)."""

    FORWARD = fb.Phase.Forward
    BACKWARD = fb.Phase.Backward
    OPTIMIZER = fb.Phase.Optimizer


_NUMPY_DTYPE: dict[int, type] = {
    DataType.FLOAT32: np.float32,
    DataType.INT32: np.int32,
    DataType.INT64: np.int64,
    DataType.BOOL: np.bool_,
}
_ROLE_NAMES = {v: k.lower() for k, v in vars(Role).items() if k.isupper()}
_PHASE_NAMES = {v: k.lower() for k, v in vars(Phase).items() if k.isupper()}


class MsFormatError(ValueError):
    """A ``.ms`` file (or an in-memory model about to be written) is not a valid device model."""


@dataclass
class MsTensor:
    """One tensor of the graph.

    ``data`` holds the values of Constant and Parameter tensors (shaped, dtype from
    ``dtype``) and is ``None`` for Activations and Inputs, whose values exist only
    while the runtime executes a step.
    """

    name: str
    shape: tuple[int, ...]
    dtype: int = DataType.FLOAT32
    role: int = Role.ACTIVATION
    trainable: bool = False
    data: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def __repr__(self) -> str:
        return (f"MsTensor({self.name!r}, shape={self.shape}, {_ROLE_NAMES.get(self.role, self.role)}"
                f"{', trainable' if self.trainable else ''})")


@dataclass
class MsNode:
    """One op of the graph in execution order; ``inputs``/``outputs`` index ``MsModel.tensors``."""

    name: str
    op_type: str
    inputs: list[int]
    outputs: list[int]
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    phase: int = Phase.FORWARD

    def __repr__(self) -> str:
        return (f"MsNode({self.name!r}, {self.op_type}, in={self.inputs}, out={self.outputs}, "
                f"{_PHASE_NAMES.get(self.phase, self.phase)}, attrs={self.attrs})")


@dataclass
class MsModel:
    """A whole ``.ms`` device model in memory (see docs/ms-format.md for the semantics)."""

    tensors: list[MsTensor]
    nodes: list[MsNode]
    name: str = ""
    producer: str = ""
    format_version: int = FORMAT_VERSION
    data_input: int = -1
    label_input: int = -1
    logits: int = -1
    loss: int = -1
    learning_rate: int = -1

    # ---- lookups -------------------------------------------------------------------
    def index_of(self, name: str) -> int:
        """Index of the tensor called ``name``; KeyError listing the known names otherwise."""
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise KeyError(f"no tensor named {name!r} in model {self.name!r}")

    def tensor(self, name: str) -> MsTensor:
        return self.tensors[self.index_of(name)]

    @property
    def weight_names(self) -> list[str]:
        """Names of the trainable weights in file order (the weights FL aggregates)."""
        return [t.name for t in self.tensors if t.trainable]

    def trainable_weights(self) -> dict[str, np.ndarray]:
        """Copies of the trainable weights, float32 and shaped, in file order."""
        return {t.name: np.array(t.data, dtype=np.float32, copy=True)
                for t in self.tensors if t.trainable and t.data is not None}

    def set_weights(self, weights: Mapping[str, np.ndarray], *, strict: bool = False) -> None:
        """Overwrite Parameter tensors by name.

        Any Parameter may be set (optimizer state too); each value must have the
        tensor's number of elements (it is reshaped to the tensor's shape).
        ``strict=True`` also requires every trainable weight to be given.
        """
        by_name = {t.name: t for t in self.tensors}
        for name, value in weights.items():
            t = by_name.get(name)
            if t is None or t.role != Role.PARAMETER:
                raise KeyError(f"{name!r} is not a Parameter tensor of model {self.name!r} "
                               f"(trainable weights: {', '.join(self.weight_names)})")
            arr = np.asarray(value, dtype=_NUMPY_DTYPE[t.dtype])
            if arr.size != t.size:
                raise ValueError(f"weight {name!r} needs {t.size} values of shape {t.shape}, got {arr.size} "
                                 f"(shape {arr.shape})")
            if t.dtype == DataType.FLOAT32 and not np.all(np.isfinite(arr)):
                raise ValueError(f"weight {name!r} contains NaN or infinite values")
            t.data = arr.reshape(t.shape).copy()
        if strict:
            missing = [n for n in self.weight_names if n not in weights]
            if missing:
                raise KeyError(f"weights missing for {', '.join(missing)}")

    # ---- checks --------------------------------------------------------------------
    def validate(self) -> None:
        """Raise MsFormatError if the model is inconsistent (what the Java runtime would refuse)."""
        n = len(self.tensors)
        problems: list[str] = []
        for i, t in enumerate(self.tensors):
            if t.dtype not in _NUMPY_DTYPE:
                problems.append(f"tensor {i} {t.name!r}: unknown dtype {t.dtype}")
                continue
            if any(d < 0 for d in t.shape):
                problems.append(f"tensor {i} {t.name!r}: negative dimension in shape {t.shape}")
            if t.role in (Role.CONSTANT, Role.PARAMETER):
                if t.data is None:
                    problems.append(f"tensor {i} {t.name!r}: {_ROLE_NAMES[t.role]} without data")
                elif t.data.size != t.size:
                    problems.append(f"tensor {i} {t.name!r}: {t.data.size} values for shape {t.shape}")
            if t.trainable and (t.role != Role.PARAMETER or t.dtype != DataType.FLOAT32):
                problems.append(f"tensor {i} {t.name!r}: trainable but not a float32 Parameter")
        for j, node in enumerate(self.nodes):
            for k in node.inputs:
                if not -1 <= k < n:
                    problems.append(f"node {j} {node.name!r} ({node.op_type}): input index {k} out of range")
            for k in node.outputs:
                if not 0 <= k < n:
                    problems.append(f"node {j} {node.name!r} ({node.op_type}): output index {k} out of range")
        for field_name in ("data_input", "label_input", "logits", "loss", "learning_rate"):
            k = getattr(self, field_name)
            if not -1 <= k < n:
                problems.append(f"{field_name} index {k} out of range")
        if problems:
            raise MsFormatError("; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)"
                                                            if len(problems) > 10 else ""))

    # ---- bytes ---------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise to the FlatBuffers bytes of a ``.ms`` file (validates first)."""
        self.validate()
        return _encode(self)

    @classmethod
    def from_bytes(cls, buf: bytes, name_for_errors: str = "<bytes>") -> "MsModel":
        """Parse and check ``.ms`` bytes; MsFormatError naming ``name_for_errors`` on any problem."""
        return _decode(buf, name_for_errors)

    def save(self, path: PathLike) -> Path:
        """Write the model to ``path`` atomically (temporary file + rename)."""
        return _atomic_write(Path(path), self.to_bytes())

    def summary(self) -> str:
        """A few human-readable lines: inputs, weights, op counts per phase."""
        def desc(k: int) -> str:
            return "-" if k < 0 else f"{self.tensors[k].name} {list(self.tensors[k].shape)}"
        ops: dict[str, int] = {}
        for node in self.nodes:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
        lines = [f"model {self.name!r} (format {self.format_version}, {self.producer})",
                 f"  data {desc(self.data_input)}  label {desc(self.label_input)}  "
                 f"logits {desc(self.logits)}  loss {desc(self.loss)}  lr {desc(self.learning_rate)}",
                 f"  {len(self.tensors)} tensors, {len(self.nodes)} nodes: "
                 + ", ".join(f"{k}×{v}" for k, v in ops.items())]
        lines += [f"  weight {t.name} {list(t.shape)}" for t in self.tensors if t.trainable]
        return "\n".join(lines)


# ---- module-level conveniences -----------------------------------------------------
def load(path: PathLike) -> MsModel:
    """Read and check a ``.ms`` file; MsFormatError naming the file if it is not a valid model."""
    p = Path(path)
    try:
        buf = p.read_bytes()
    except OSError as e:
        raise MsFormatError(f"cannot read device model {p}: {e.strerror or e}") from e
    return _decode(buf, str(p))


def save(model: MsModel, path: PathLike) -> Path:
    """Write ``model`` to ``path`` atomically."""
    return model.save(path)


def model_batch(path: PathLike) -> int | None:
    """The batch a ``.ms`` model was exported with (dim 0 of its data input), read cheaply.

    Only the root table, the data-input index and that tensor's shape are read (about
    0.1 ms, against ~35 ms for :func:`load`), so thousands of client parameters can be
    checked at once. A file that is not a ``.ms`` model, or whose batch cannot be read,
    gives None: the full check happens where the model is loaded for training.
    """
    try:
        buf = Path(path).read_bytes()
        if len(buf) < 8 or not fb.Model.ModelBufferHasIdentifier(buf, 0):
            return None
        root = fb.Model.GetRootAs(buf, 0)
        index = root.DataInput()
        if not 0 <= index < root.TensorsLength():
            return None
        tensor = root.Tensors(index)
        if tensor.ShapeLength() < 1:
            return None
        batch = int(tensor.Shape(0))
        return batch if batch > 0 else None
    except (OSError, struct.error, IndexError, ValueError, TypeError, OverflowError):
        return None


def batch_mismatch(setting: int, exported: int, model_name: str) -> str:
    """The one message for a batch size that differs from the model's; the Java client's
    ``BatchRule`` says the same (tests/test_parameter_rules.py compares them)."""
    return (f"{setting}: the model {model_name} was exported with batch {exported}; leave the batch size "
            f"unset or set it to {exported} (re-export the model for another batch)")


def trainable_weights(path: PathLike) -> dict[str, np.ndarray]:
    """The trainable weights of a ``.ms`` file: float32, shaped, in file order."""
    return load(path).trainable_weights()


def write_weights(path: PathLike, weights: Mapping[str, np.ndarray], out: PathLike | None = None,
                  *, strict: bool = True) -> Path:
    """Copy the model at ``path`` with ``weights`` replacing its Parameters, into ``out`` (default: in place).

    ``strict`` (default) requires every trainable weight to be given, which is what
    a server publishing a full global model wants.
    """
    model = load(path)
    model.set_weights(weights, strict=strict)
    return model.save(out if out is not None else path)


# ---- encoding ------------------------------------------------------------------------
def _read_umask() -> int:
    # os.umask can only be read by setting it: do it once, at import, not while threads write files
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would make copies unreadable to other users
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _attr_kind(name: str, value: AttrValue) -> int:
    if isinstance(value, (bool, np.bool_)):
        return fb.AttrKind.Bool
    if isinstance(value, (int, np.integer)):
        return fb.AttrKind.Int
    if isinstance(value, (float, np.floating)):
        return fb.AttrKind.Float
    if isinstance(value, str):
        return fb.AttrKind.String
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(value)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            return fb.AttrKind.Ints
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
            return fb.AttrKind.Floats
    raise MsFormatError(f"attribute {name!r}: cannot store a value of type {type(value).__name__} ({value!r})")


def _encode(model: MsModel) -> bytes:
    b = flatbuffers.Builder(1024 + sum(t.size * 4 for t in model.tensors if t.data is not None))

    tensor_offsets = []
    for t in model.tensors:
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int64))
        fdata = idata = None
        if t.data is not None:
            if t.dtype == DataType.FLOAT32:
                fdata = b.CreateNumpyVector(np.ascontiguousarray(t.data, dtype=np.float32).ravel())
            else:
                idata = b.CreateNumpyVector(np.ascontiguousarray(t.data, dtype=np.int64).ravel())
        fb.TensorStart(b)
        fb.TensorAddName(b, name)
        fb.TensorAddShape(b, shape)
        fb.TensorAddDtype(b, t.dtype)
        fb.TensorAddRole(b, t.role)
        fb.TensorAddTrainable(b, t.trainable)
        if fdata is not None:
            fb.TensorAddFloatData(b, fdata)
        if idata is not None:
            fb.TensorAddIntData(b, idata)
        tensor_offsets.append(fb.TensorEnd(b))

    node_offsets = []
    for node in model.nodes:
        attr_offsets = []
        for key, value in node.attrs.items():
            kind = _attr_kind(key, value)
            aname = b.CreateString(key)
            s = b.CreateString(value) if kind == fb.AttrKind.String else None
            ints = b.CreateNumpyVector(np.asarray(value, dtype=np.int64)) if kind == fb.AttrKind.Ints else None
            floats = (b.CreateNumpyVector(np.asarray(value, dtype=np.float32))
                      if kind == fb.AttrKind.Floats else None)
            fb.AttrStart(b)
            fb.AttrAddName(b, aname)
            fb.AttrAddKind(b, kind)
            if kind == fb.AttrKind.Int:
                fb.AttrAddI(b, int(value))  # type: ignore[arg-type]
            elif kind == fb.AttrKind.Float:
                fb.AttrAddF(b, float(value))  # type: ignore[arg-type]
            elif kind == fb.AttrKind.Bool:
                fb.AttrAddB(b, bool(value))
            elif s is not None:
                fb.AttrAddS(b, s)
            elif ints is not None:
                fb.AttrAddInts(b, ints)
            elif floats is not None:
                fb.AttrAddFloats(b, floats)
            attr_offsets.append(fb.AttrEnd(b))
        name = b.CreateString(node.name)
        op = b.CreateString(node.op_type)
        inputs = b.CreateNumpyVector(np.asarray(node.inputs, dtype=np.int32))
        outputs = b.CreateNumpyVector(np.asarray(node.outputs, dtype=np.int32))
        attrs = _vector_of_tables(b, fb.NodeStartAttrsVector, attr_offsets)
        fb.NodeStart(b)
        fb.NodeAddName(b, name)
        fb.NodeAddOpType(b, op)
        fb.NodeAddInputs(b, inputs)
        fb.NodeAddOutputs(b, outputs)
        fb.NodeAddAttrs(b, attrs)
        fb.NodeAddPhase(b, node.phase)
        node_offsets.append(fb.NodeEnd(b))

    tensors = _vector_of_tables(b, fb.ModelStartTensorsVector, tensor_offsets)
    nodes = _vector_of_tables(b, fb.ModelStartNodesVector, node_offsets)
    name = b.CreateString(model.name)
    producer = b.CreateString(model.producer)
    fb.ModelStart(b)
    fb.ModelAddName(b, name)
    fb.ModelAddFormatVersion(b, model.format_version)
    fb.ModelAddProducer(b, producer)
    fb.ModelAddTensors(b, tensors)
    fb.ModelAddNodes(b, nodes)
    # -1 is not the schema default for every reader, so always write the indices explicitly
    b.ForceDefaults(True)
    fb.ModelAddDataInput(b, model.data_input)
    fb.ModelAddLabelInput(b, model.label_input)
    fb.ModelAddLogits(b, model.logits)
    fb.ModelAddLoss(b, model.loss)
    fb.ModelAddLearningRate(b, model.learning_rate)
    b.ForceDefaults(False)
    b.Finish(fb.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def _vector_of_tables(b: flatbuffers.Builder, start, offsets: Sequence[int]) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


# ---- decoding ------------------------------------------------------------------------
def _decode(buf: bytes, source: str) -> MsModel:
    if len(buf) < 8:
        raise MsFormatError(f"{source}: not a .ms device model ({len(buf)} bytes, too short)")
    if not fb.Model.ModelBufferHasIdentifier(buf, 0):
        raise MsFormatError(f"{source}: not a .ms device model (file identifier {bytes(buf[4:8])!r}, "
                            f"expected {FILE_IDENTIFIER!r}); convert a MindIR with `pyflclient convert`")
    try:
        fbverify.verify(buf, "Model", schema=fbverify.load_schema("ms_model.fbs"))
    except fbverify.VerificationError as e:
        raise MsFormatError(f"{source}: corrupt or truncated .ms device model ({e})") from e
    try:
        model = _decode_unchecked(buf)
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError) as e:
        raise MsFormatError(f"{source}: corrupt or truncated .ms device model ({type(e).__name__}: {e})") from e
    if model.format_version != FORMAT_VERSION:
        raise MsFormatError(f"{source}: format version {model.format_version} is not supported "
                            f"(this pyflclient reads version {FORMAT_VERSION})")
    try:
        model.validate()
    except MsFormatError as e:
        raise MsFormatError(f"{source}: invalid .ms device model: {e}") from e
    return model


def _decode_unchecked(buf: bytes) -> MsModel:
    root = fb.Model.GetRootAs(buf, 0)
    if not 0 < root._tab.Pos < len(buf):
        raise ValueError(f"root table offset {root._tab.Pos} outside the buffer")
    tensors: list[MsTensor] = []
    for i in range(root.TensorsLength()):
        t = root.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if not t.ShapeIsNone() else ()
        dtype = t.Dtype()
        data: np.ndarray | None = None
        if not t.FloatDataIsNone():
            data = np.array(t.FloatDataAsNumpy(), dtype=np.float32)
        elif not t.IntDataIsNone():
            data = np.array(t.IntDataAsNumpy(), dtype=_NUMPY_DTYPE.get(dtype, np.int64))
        if data is not None and data.size == int(np.prod(shape, dtype=np.int64)):
            data = data.reshape(shape)
        name = t.Name()
        tensors.append(MsTensor(name=_str(name),
                                shape=shape, dtype=dtype, role=t.Role(), trainable=bool(t.Trainable()),
                                data=data))
    nodes: list[MsNode] = []
    for j in range(root.NodesLength()):
        n = root.Nodes(j)
        attrs: dict[str, AttrValue] = {}
        for k in range(n.AttrsLength()):
            a = n.Attrs(k)
            kind = a.Kind()
            value: AttrValue
            if kind == fb.AttrKind.Int:
                value = int(a.I())
            elif kind == fb.AttrKind.Float:
                value = float(a.F())
            elif kind == fb.AttrKind.String:
                value = _str(a.S())
            elif kind == fb.AttrKind.Ints:
                value = tuple(int(v) for v in a.IntsAsNumpy()) if not a.IntsIsNone() else ()
            elif kind == fb.AttrKind.Floats:
                value = tuple(float(v) for v in a.FloatsAsNumpy()) if not a.FloatsIsNone() else ()
            elif kind == fb.AttrKind.Bool:
                value = bool(a.B())
            else:
                raise ValueError(f"attribute kind {kind} unknown")
            attrs[_str(a.Name())] = value
        nodes.append(MsNode(
            name=_str(n.Name()), op_type=_str(n.OpType()),
            inputs=[int(v) for v in n.InputsAsNumpy()] if not n.InputsIsNone() else [],
            outputs=[int(v) for v in n.OutputsAsNumpy()] if not n.OutputsIsNone() else [],
            attrs=attrs, phase=n.Phase()))
    return MsModel(tensors=tensors, nodes=nodes, name=_str(root.Name()), producer=_str(root.Producer()),
                   format_version=root.FormatVersion(), data_input=root.DataInput(),
                   label_input=root.LabelInput(), logits=root.Logits(), loss=root.Loss(),
                   learning_rate=root.LearningRate())


def _str(s: str | bytes | None) -> str:
    if s is None:
        return ""
    return s.decode("utf-8") if isinstance(s, bytes) else s
