"""The device–cloud messages of MindSpore r1.6 cross-device FL, as small Python objects.

Each round's request and response is one frozen dataclass with ``to_bytes()`` (a
FlatBuffer finished without file identifier, byte-compatible with r1.6) and
``from_bytes()`` (verified by :mod:`pyflclient.wire.verify` against the schema *before*
any field is read, then decoded). Weights travel as ``FeatureMap`` tables; on the
way in they are numpy float32 views into the received bytes (no per-float Python
work, no copy), on the way out any float array is accepted. The server, the test
and benchmark clients all use these classes, so both ends share one codec.
See docs/protocol.md for the wire facts.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

import flatbuffers
import numpy as np

from pyflclient.wire import verify as fbverify
from pyflclient.wire.compression import CompressedTensor
from pyflclient._fbs import cipher_generated as cfb
from pyflclient._fbs import fl_job_generated as fb

__all__ = [
    "ResponseCode", "ProtocolError", "FLPlan", "StartFLJobRequest", "StartFLJobResponse",
    "UpdateModelRequest", "UpdateModelResponse", "GetModelRequest", "GetModelResponse",
    "PushMetricsRequest", "PushMetricsResponse",
    "PLAIN_TEXT_SAFEMODE", "PLAIN_TEXT_JOB_FINISHED", "SECURE_AGGREGATION_ROUNDS",
    "plain_text_reply", "secure_aggregation_refusal", "now_ms", "cipher_message", "read_cipher",
    "AsyncUpdateModelRequest", "AsyncUpdateModelResponse", "AsyncGetModelRequest", "AsyncGetModelResponse",
]

Weights = Mapping[str, np.ndarray]

#: plain-text bodies the stock client understands as "come back later" / "wait"
PLAIN_TEXT_SAFEMODE = "The cluster is in safemode."
PLAIN_TEXT_JOB_FINISHED = "The server's training job is disabled or finished."
_PLAIN_TEXTS = (PLAIN_TEXT_SAFEMODE, PLAIN_TEXT_JOB_FINISHED)


#: ``retcode`` of every response: the schema's ``ResponseCode`` enum (schema/fl_job.fbs), the one
#: definition both languages use; ``pyflclient.ResponseCode`` and the client callbacks report it too.
ResponseCode = enum.IntEnum("ResponseCode", {name: value for name, value in vars(fb.ResponseCode).items()
                                             if not name.startswith("_")}, module=__name__)


class ProtocolError(ValueError):
    """A body is not a valid message of the expected round (bad buffer, duplicate weight name, ...)."""


def now_ms() -> int:
    """Wall-clock epoch milliseconds: the unit of ``timestamp`` and ``next_req_time``."""
    return time.time_ns() // 1_000_000


def plain_text_reply(body: bytes) -> str | None:
    """The plain-text state reply carried by ``body``, or None when it is a FlatBuffer."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return text if text in _PLAIN_TEXTS else None


# -- helpers shared by the messages ---------------------------------------------------

def _verified(buf: bytes, table: str) -> bytes:
    buf = bytes(buf)
    try:
        fbverify.verify(buf, table, exact=True)
    except fbverify.VerificationError as exc:
        raise ProtocolError(f"not a valid {table} buffer: {exc}") from None
    return buf


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8") if raw else ""


def _write_feature_maps(builder: flatbuffers.Builder, weights: Weights) -> int:
    """Build a ``[FeatureMap]`` vector (children first, as FlatBuffers requires)."""
    tables = []
    for name, array in weights.items():
        data = _Ref(builder.CreateNumpyVector(np.ascontiguousarray(array, dtype="<f4").reshape(-1)))
        tables.append(_write_table(builder, "FeatureMap", weight_fullname=name, data=data))
    builder.StartVector(4, len(tables), 4)
    for off in reversed(tables):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _read_feature_maps(msg: object, field: str = "FeatureMap") -> dict[str, np.ndarray]:
    """Decode ``msg.<field>(i)`` (a ``[FeatureMap]`` vector: ``feature_map``, ``control_variate``) into
    name → read-only float32 view; duplicate names are an error."""
    out: dict[str, np.ndarray] = {}
    at, length = getattr(msg, field), getattr(msg, field + "Length")
    for i in range(length()):
        fm = at(i)
        name = _text(fm.WeightFullname())
        if not name:
            raise ProtocolError(f"{field}[{i}] has no weight_fullname")
        if name in out:
            raise ProtocolError(f"weight {name!r} appears twice in {field}")
        data = fm.DataAsNumpy()
        out[name] = data if isinstance(data, np.ndarray) else np.zeros(0, dtype="<f4")
    return out


def _write_compressed(b: flatbuffers.Builder, tensors: "tuple[CompressedTensor, ...]") -> "_Ref | None":
    """A ``[CompressFeatureMap]`` vector (None when empty: the field is left out)."""
    if not tensors:
        return None
    offsets = []
    for t in tensors:
        name = b.CreateString(t.name)
        data = b.CreateNumpyVector(np.ascontiguousarray(t.data, dtype=np.int8))
        fb.CompressFeatureMapStart(b)
        fb.CompressFeatureMapAddWeightFullname(b, name)
        fb.CompressFeatureMapAddCompressData(b, data)
        fb.CompressFeatureMapAddMinVal(b, float(t.min_val))
        fb.CompressFeatureMapAddMaxVal(b, float(t.max_val))
        offsets.append(fb.CompressFeatureMapEnd(b))
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return _Ref(b.EndVector())


def _read_compressed(msg: Any) -> "tuple[CompressedTensor, ...]":
    """``compress_feature_map`` as :class:`CompressedTensor` rows (int8 views; empty data: size 0)."""
    out = []
    for i in range(msg.CompressFeatureMapLength()):
        fm = msg.CompressFeatureMap(i)
        data = fm.CompressDataAsNumpy()
        out.append(CompressedTensor(_text(fm.WeightFullname()),
                                    data if isinstance(data, np.ndarray) else np.zeros(0, dtype=np.int8),
                                    float(fm.MinVal()), float(fm.MaxVal())))
    return tuple(out)


def _write_types(b: flatbuffers.Builder, types: "tuple[int, ...]") -> "_Ref | None":
    """A ``[CompressType]`` vector (bytes), None when empty."""
    return _Ref(b.CreateNumpyVector(np.asarray(types, dtype=np.int8))) if types else None


def _read_types(msg: Any) -> "tuple[int, ...]":
    if not msg.DownloadCompressTypesLength():
        return ()
    return tuple(int(v) for v in msg.DownloadCompressTypesAsNumpy())


def _write_strings(b: flatbuffers.Builder, names: "tuple[str, ...]") -> "_Ref | None":
    if not names:
        return None
    offsets = [b.CreateString(n) for n in names]
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return _Ref(b.EndVector())


def _finish(builder: flatbuffers.Builder, root: int) -> bytes:
    builder.Finish(root)  # no file identifier: the r1.6 wire format has none
    return bytes(builder.Output())


def _memoized(reply: object, build: Callable[[], bytes]) -> bytes:
    """The bytes of a reply that carries a model, built the first time they are asked for: the server
    hands one reply object to every device of an iteration (a model's FlatBuffer per request was a
    third of its CPU with 500 devices). Replies are frozen, and their weights are never changed."""
    built = reply.__dict__.get("_bytes")
    if built is None:
        built = build()
        object.__setattr__(reply, "_bytes", built)
    return built


def _has_field(table: Any, vtable_offset: int) -> bool:
    """Whether a table carries the field at ``vtable_offset`` (4 + 2 x its id): tells a scalar sent as
    its default (0.0) from one not sent."""
    return table._tab.Offset(vtable_offset) != 0


class _Forced(float):
    """A scalar written even when it equals the schema's default (0.0), so that "sent as 0" differs from
    "not sent" (``upload_loss``)."""


class _Ref(int):
    """The offset of a child already written into the builder (a table or vector), not a scalar."""


def _camel(field_name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field_name.split("_"))


def _write_table(b: flatbuffers.Builder, table: str, module: Any = fb, **values: Any) -> _Ref:
    """Write one ``table`` through the generated ``<table>Start/Add<Field>/End`` functions.

    Values: ``str`` → string, weights mapping → ``[FeatureMap]``, ``_Ref`` → child
    offset, anything else → scalar; ``None`` leaves the field out. Children are
    written before the table starts, as FlatBuffers requires.
    """
    refs: dict[str, int] = {}
    for name, value in values.items():
        if isinstance(value, str):
            refs[name] = b.CreateString(value)
        elif isinstance(value, Mapping):
            refs[name] = _write_feature_maps(b, value)
    getattr(module, f"{table}Start")(b)
    for name, value in values.items():
        if value is not None:
            b.forceDefaults = isinstance(value, _Forced)
            getattr(module, f"{table}Add{_camel(name)}")(b, refs.get(name, value))
            b.forceDefaults = False
    return _Ref(getattr(module, f"{table}End")(b))


def _message(table: str, module: Any = fb, **values: Any) -> bytes:
    """A finished buffer whose root is ``table``."""
    floats = sum(np.size(w) + 16 for v in values.values() if isinstance(v, Mapping) for w in v.values())
    b = flatbuffers.Builder(512 + 4 * floats)
    return _finish(b, _write_table(b, table, module, **values))


# -- the plan -------------------------------------------------------------------------

@dataclass(frozen=True)
class FLPlan:
    """``FLPlan``: what an admitted device is told to do (MindSpore set_fl_context names in comments)."""

    iterations: int            # fl_iteration_num
    epochs: int                # client_epoch_num
    mini_batch: int            # client_batch_size
    lr: float                  # client_learning_rate
    fl_name: str = ""
    server_mode: str = "FEDERATED_LEARNING"
    encrypt_type: str = "NOT_ENCRYPT"
    aggregation: int = fb.AggregationType.FedAvg
    #: ``Aggregation.weights``: the aggregation type's device parameters, in the order of its
    #: ``device_params`` in schema/round_plugins.json (FedProx: [mu])
    aggregation_weights: tuple[float, ...] = ()
    #: ``EarlyStop`` (None: no early stop): (EarlyStopType value, weight, rounds)
    early_stop: tuple[int, float, int] | None = None
    t: int = 0                 # reconstruct_secrets_threshold (PW_ENCRYPT)
    prime: bytes = b""         # the Shamir field's prime, big-endian (PW_ENCRYPT)
    dp_eps: float = 0.0        # DP_ENCRYPT
    dp_delta: float = 0.0
    dp_norm_clip: float = 0.0

    def _write(self, b: flatbuffers.Builder) -> _Ref:
        prime = _Ref(b.CreateByteVector(self.prime)) if self.prime else None
        cipher = _write_table(b, "CipherPublicParams", t=self.t, prime=prime, dp_eps=self.dp_eps,
                              dp_delta=self.dp_delta, dp_norm_clip=self.dp_norm_clip, encrypt_type=self.encrypt_type)
        weights = (_Ref(b.CreateNumpyVector(np.asarray(self.aggregation_weights, dtype="<f4")))
                   if self.aggregation_weights else None)
        aggregation = _write_table(b, "Aggregation", type=self.aggregation, weights=weights)
        early_stop = None
        if self.early_stop is not None:
            kind, weight, rounds = self.early_stop
            early_stop = _write_table(b, "EarlyStop", early_stop_type=kind, weight=weight, rounds=rounds)
        return _write_table(b, "FLPlan", server_mode=self.server_mode, fl_name=self.fl_name,
                            iterations=self.iterations, epochs=self.epochs, early_stop=early_stop,
                            mini_batch=self.mini_batch, lr=self.lr, aggregation=aggregation, cipher=cipher)

    @classmethod
    def _read(cls, plan: fb.FLPlan) -> "FLPlan":
        cipher, aggregation, stop = plan.Cipher(), plan.Aggregation(), plan.EarlyStop()
        return cls(iterations=plan.Iterations(), epochs=plan.Epochs(), mini_batch=plan.MiniBatch(), lr=plan.Lr(),
                   fl_name=_text(plan.FlName()), server_mode=_text(plan.ServerMode()),
                   encrypt_type=_text(cipher.EncryptType()) if cipher else "",
                   aggregation=aggregation.Type() if aggregation else fb.AggregationType.FedAvg,
                   aggregation_weights=(tuple(float(x) for x in aggregation.WeightsAsNumpy())
                                        if aggregation and aggregation.WeightsLength() else ()),
                   early_stop=(stop.EarlyStopType(), stop.Weight(), stop.Rounds()) if stop else None,
                   t=cipher.T() if cipher else 0,
                   prime=cipher.PrimeAsNumpy().tobytes() if cipher and cipher.PrimeLength() else b"",
                   dp_eps=cipher.DpEps() if cipher else 0.0, dp_delta=cipher.DpDelta() if cipher else 0.0,
                   dp_norm_clip=cipher.DpNormClip() if cipher else 0.0)


# -- startFLJob -----------------------------------------------------------------------

@dataclass(frozen=True)
class StartFLJobRequest:
    """``RequestFLJob``: a device asks to join the current iteration with ``data_size`` samples."""

    ROUND: ClassVar[str] = "startFLJob"
    fl_name: str
    fl_id: str
    iteration: int
    data_size: int
    timestamp: str = ""
    #: r1.6's device authentication (pki_verify; docs/security.md): the RSA-PSS signature of
    #: ``fl_id + " " + timestamp`` by the key of ``key_attestation`` (a PEM certificate), whose chain is
    #: ``equip_cert`` ← ``equip_ca_cert`` ← a root (``root_cert``, as the device has it); empty without PKI
    sign_data: bytes = b""
    key_attestation: str = ""
    equip_cert: str = ""
    equip_ca_cert: str = ""
    root_cert: str = ""
    #: MindSpore Federated's ``download_compress_types``: the CompressType values the device can decode
    download_compress_types: tuple[int, ...] = ()

    def to_bytes(self) -> bytes:
        b = flatbuffers.Builder(512 + len(self.sign_data) + len(self.key_attestation) + len(self.equip_cert)
                                + len(self.equip_ca_cert) + len(self.root_cert))
        sign = _Ref(b.CreateByteVector(self.sign_data)) if self.sign_data else None
        types = _write_types(b, self.download_compress_types)
        return _finish(b, _write_table(
            b, "RequestFLJob", fl_name=self.fl_name, fl_id=self.fl_id, iteration=self.iteration,
            data_size=self.data_size, timestamp=self.timestamp, sign_data=sign,
            key_attestation=self.key_attestation or None, equip_cert=self.equip_cert or None,
            equip_ca_cert=self.equip_ca_cert or None, root_cert=self.root_cert or None,
            download_compress_types=types))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "StartFLJobRequest":
        m = fb.RequestFLJob.GetRootAs(_verified(buf, "RequestFLJob"))
        sign = m.SignDataAsNumpy().tobytes() if m.SignDataLength() else b""
        return cls(_text(m.FlName()), _text(m.FlId()), m.Iteration(), m.DataSize(), _text(m.Timestamp()), sign,
                   _text(m.KeyAttestation()), _text(m.EquipCert()), _text(m.EquipCaCert()), _text(m.RootCert()),
                   _read_types(m))


@dataclass(frozen=True)
class StartFLJobResponse:
    """``ResponseFLJob``: admitted (plan + current global model) or refused (``next_req_time``)."""

    retcode: int
    reason: str = ""
    iteration: int = 0
    is_selected: bool = False
    next_req_time: str = ""
    plan: FLPlan | None = None
    weights: Weights = field(default_factory=dict)
    timestamp: str = ""
    #: pyflclient's appended ``control_variate``: Scaffold's server control variate c (empty otherwise)
    control_variate: Weights = field(default_factory=dict)
    #: MindSpore Federated's compression fields (pyflclient.wire.compression): how to upload, how the
    #: model travels; with download QUANT the model is in ``compressed`` and ``weights`` is empty
    upload_compress_type: int = 0
    upload_sparse_rate: float = 0.0
    download_compress_type: int = 0
    compressed: tuple[CompressedTensor, ...] = ()

    def to_bytes(self) -> bytes:
        return _memoized(self, self._build)

    def _build(self) -> bytes:
        b = flatbuffers.Builder(1024 + sum(4 * np.size(w) + 64 for m in (self.weights, self.control_variate)
                                           for w in m.values()) + sum(t.data.size + 64 for t in self.compressed))
        plan = self.plan._write(b) if self.plan else None
        compressed = _write_compressed(b, self.compressed)
        return _finish(b, _write_table(
            b, "ResponseFLJob", retcode=int(self.retcode), reason=self.reason, iteration=self.iteration,
            is_selected=self.is_selected, next_req_time=self.next_req_time, fl_plan_config=plan,
            feature_map=self.weights, timestamp=self.timestamp,
            upload_compress_type=self.upload_compress_type or None,
            upload_sparse_rate=self.upload_sparse_rate or None,
            download_compress_type=self.download_compress_type or None, compress_feature_map=compressed,
            control_variate=self.control_variate or None))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "StartFLJobResponse":
        m = fb.ResponseFLJob.GetRootAs(_verified(buf, "ResponseFLJob"))
        plan = m.FlPlanConfig()
        return cls(m.Retcode(), _text(m.Reason()), m.Iteration(), bool(m.IsSelected()), _text(m.NextReqTime()),
                   FLPlan._read(plan) if plan else None, _read_feature_maps(m), _text(m.Timestamp()),
                   _read_feature_maps(m, "ControlVariate"), m.UploadCompressType(), m.UploadSparseRate(),
                   m.DownloadCompressType(), _read_compressed(m))


# -- updateModel ----------------------------------------------------------------------

@dataclass(frozen=True)
class UpdateModelRequest:
    """``RequestUpdateModel``: an admitted device uploads its weights, each × its ``data_size``."""

    ROUND: ClassVar[str] = "updateModel"
    fl_name: str
    fl_id: str
    iteration: int
    weights: Weights
    timestamp: str = ""
    #: MindSpore Federated's ``upload_loss``: the device's mean training loss at the received model, sent
    #: when the plan's aggregation or early stop needs it (None: not sent)
    upload_loss: float | None = None
    #: pyflclient's appended ``control_variate``: Scaffold's delta c_i (empty otherwise)
    control_variate: Weights = field(default_factory=dict)
    #: r1.6's ``signature`` (pki_verify): RSA-PSS of ``timestamp + str(iteration)`` by the key whose
    #: key_attestation the device sent with its startFLJob; empty without PKI
    signature: bytes = b""
    #: MindSpore Federated's compressed upload (DIFF_SPARSE_QUANT): ``weights`` is empty, the update is in
    #: ``compressed``, one row per name of ``name_vec`` (pyflclient.wire.compression)
    upload_compress_type: int = 0
    upload_sparse_rate: float = 0.0
    name_vec: tuple[str, ...] = ()
    compressed: tuple[CompressedTensor, ...] = ()

    def to_bytes(self) -> bytes:
        floats = sum(np.size(w) + 16 for m in (self.weights, self.control_variate) for w in m.values())
        b = flatbuffers.Builder(1024 + 4 * floats + len(self.signature) + sum(t.data.size + 64 for t in self.compressed))
        signature = _Ref(b.CreateByteVector(self.signature)) if self.signature else None
        compressed = _write_compressed(b, self.compressed)
        names = _write_strings(b, self.name_vec)
        return _finish(b, _write_table(
            b, "RequestUpdateModel", fl_name=self.fl_name, fl_id=self.fl_id, iteration=self.iteration,
            feature_map=self.weights, timestamp=self.timestamp, signature=signature,
            upload_loss=None if self.upload_loss is None else _Forced(self.upload_loss),
            compress_feature_map=compressed, upload_compress_type=self.upload_compress_type or None,
            upload_sparse_rate=self.upload_sparse_rate or None, name_vec=names,
            control_variate=self.control_variate or None))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "UpdateModelRequest":
        m = fb.RequestUpdateModel.GetRootAs(_verified(buf, "RequestUpdateModel"))
        loss = m.UploadLoss() if _has_field(m, 16) else None
        signature = m.SignatureAsNumpy().tobytes() if m.SignatureLength() else b""
        return cls(_text(m.FlName()), _text(m.FlId()), m.Iteration(), MappingProxyType(_read_feature_maps(m)),
                   _text(m.Timestamp()), loss, MappingProxyType(_read_feature_maps(m, "ControlVariate")), signature,
                   m.UploadCompressType(), m.UploadSparseRate(),
                   tuple(_text(m.NameVec(i)) for i in range(m.NameVecLength())), _read_compressed(m))


@dataclass(frozen=True)
class UpdateModelResponse:
    """``ResponseUpdateModel``."""

    retcode: int
    reason: str = ""
    next_req_time: str = ""
    timestamp: str = ""

    def to_bytes(self) -> bytes:
        return _message("ResponseUpdateModel", retcode=int(self.retcode), reason=self.reason,
                        next_req_time=self.next_req_time, timestamp=self.timestamp)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "UpdateModelResponse":
        m = fb.ResponseUpdateModel.GetRootAs(_verified(buf, "ResponseUpdateModel"))
        return cls(m.Retcode(), _text(m.Reason()), _text(m.NextReqTime()), _text(m.Timestamp()))


# -- getModel -------------------------------------------------------------------------

@dataclass(frozen=True)
class GetModelRequest:
    """``RequestGetModel``: the global model of ``iteration``, once that iteration is finished."""

    ROUND: ClassVar[str] = "getModel"
    fl_name: str
    iteration: int
    timestamp: str = ""
    #: MindSpore Federated's ``download_compress_types``: the CompressType values the device can decode
    download_compress_types: tuple[int, ...] = ()

    def to_bytes(self) -> bytes:
        b = flatbuffers.Builder(256)
        types = _write_types(b, self.download_compress_types)
        return _finish(b, _write_table(b, "RequestGetModel", fl_name=self.fl_name, iteration=self.iteration,
                                       timestamp=self.timestamp, download_compress_types=types))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "GetModelRequest":
        m = fb.RequestGetModel.GetRootAs(_verified(buf, "RequestGetModel"))
        return cls(_text(m.FlName()), m.Iteration(), _text(m.Timestamp()), _read_types(m))


@dataclass(frozen=True)
class GetModelResponse:
    """``ResponseGetModel``: ``SucNotReady`` while the iteration runs, then its model."""

    retcode: int
    reason: str = ""
    iteration: int = 0
    weights: Weights = field(default_factory=dict)
    timestamp: str = ""
    #: MindSpore Federated's QUANT download: the model is in ``compressed`` and ``weights`` is empty
    download_compress_type: int = 0
    compressed: tuple[CompressedTensor, ...] = ()

    def to_bytes(self) -> bytes:
        return _memoized(self, self._build)

    def _build(self) -> bytes:
        b = flatbuffers.Builder(512 + sum(4 * np.size(w) + 64 for w in self.weights.values())
                                + sum(t.data.size + 64 for t in self.compressed))
        compressed = _write_compressed(b, self.compressed)
        return _finish(b, _write_table(
            b, "ResponseGetModel", retcode=int(self.retcode), reason=self.reason, iteration=self.iteration,
            feature_map=self.weights, timestamp=self.timestamp,
            download_compress_type=self.download_compress_type or None, compress_feature_map=compressed))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "GetModelResponse":
        m = fb.ResponseGetModel.GetRootAs(_verified(buf, "ResponseGetModel"))
        return cls(m.Retcode(), _text(m.Reason()), m.Iteration(), _read_feature_maps(m), _text(m.Timestamp()),
                   m.DownloadCompressType(), _read_compressed(m))


# -- r1.6's metrics push -----------------------------------------------------------------

@dataclass(frozen=True)
class PushMetricsRequest:
    """``RequestPushMetrics``: a device's ``loss`` and ``accuracy`` after its evaluation (``/pushMetrics``).

    r1.6 served this table to its hybrid-training worker; the table carries no fl_id and no
    iteration, so the server files a push under the newest model it has published (the one
    a device evaluates right after its getModel)."""

    ROUND: ClassVar[str] = "pushMetrics"
    loss: float
    accuracy: float

    def to_bytes(self) -> bytes:
        return _message("RequestPushMetrics", loss=float(self.loss), accuracy=float(self.accuracy))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PushMetricsRequest":
        m = fb.RequestPushMetrics.GetRootAs(_verified(buf, "RequestPushMetrics"))
        return cls(m.Loss(), m.Accuracy())


@dataclass(frozen=True)
class PushMetricsResponse:
    """``ResponsePushMetrics``: only a ``retcode``."""

    retcode: int

    def to_bytes(self) -> bytes:
        return _message("ResponsePushMetrics", retcode=int(self.retcode))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "PushMetricsResponse":
        return cls(fb.ResponsePushMetrics.GetRootAs(_verified(buf, "ResponsePushMetrics")).Retcode())


# -- r1.6's asynchronous rounds (/asyncUpdateModel, /asyncGetModel) -----------------------

@dataclass(frozen=True)
class AsyncUpdateModelRequest:
    """``RequestAsyncUpdateModel``: a device's upload in the asynchronous mode. ``iteration`` is the version of
    the global model it trained on; ``weights`` are its trained weights × ``data_size``, as updateModel's
    (docs/async.md), with ``data_size`` in the message so that no admission record is needed to read it."""

    ROUND: ClassVar[str] = "asyncUpdateModel"
    fl_name: str
    fl_id: str
    iteration: int
    data_size: int
    weights: Weights

    def to_bytes(self) -> bytes:
        return _message("RequestAsyncUpdateModel", fl_name=self.fl_name, fl_id=self.fl_id, iteration=self.iteration,
                        data_size=self.data_size, feature_map=self.weights)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "AsyncUpdateModelRequest":
        m = fb.RequestAsyncUpdateModel.GetRootAs(_verified(buf, "RequestAsyncUpdateModel"))
        return cls(_text(m.FlName()), _text(m.FlId()), m.Iteration(), m.DataSize(),
                   MappingProxyType(_read_feature_maps(m)))


@dataclass(frozen=True)
class AsyncUpdateModelResponse:
    """``ResponseAsyncUpdateModel``: ``iteration`` is the server's version after this upload."""

    retcode: int
    reason: str = ""
    iteration: int = 0

    def to_bytes(self) -> bytes:
        return _message("ResponseAsyncUpdateModel", retcode=int(self.retcode), reason=self.reason,
                        iteration=self.iteration)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "AsyncUpdateModelResponse":
        m = fb.ResponseAsyncUpdateModel.GetRootAs(_verified(buf, "ResponseAsyncUpdateModel"))
        return cls(m.Retcode(), _text(m.Reason()), m.Iteration())


@dataclass(frozen=True)
class AsyncGetModelRequest:
    """``RequestAsyncGetModel``: the newest global model (``iteration``: the version the device holds)."""

    ROUND: ClassVar[str] = "asyncGetModel"
    fl_name: str
    iteration: int

    def to_bytes(self) -> bytes:
        return _message("RequestAsyncGetModel", fl_name=self.fl_name, iteration=self.iteration)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "AsyncGetModelRequest":
        m = fb.RequestAsyncGetModel.GetRootAs(_verified(buf, "RequestAsyncGetModel"))
        return cls(_text(m.FlName()), m.Iteration())


@dataclass(frozen=True)
class AsyncGetModelResponse:
    """``ResponseAsyncGetModel``: the newest model and its version (``iteration``)."""

    retcode: int
    reason: str = ""
    iteration: int = 0
    weights: Weights = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return _memoized(self, lambda: _message(
            "ResponseAsyncGetModel", retcode=int(self.retcode), reason=self.reason, iteration=self.iteration,
            feature_map=self.weights))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "AsyncGetModelResponse":
        m = fb.ResponseAsyncGetModel.GetRootAs(_verified(buf, "ResponseAsyncGetModel"))
        return cls(m.Retcode(), _text(m.Reason()), m.Iteration(), _read_feature_maps(m))


# -- secure aggregation (pairwise masking) -------------------------------------------------

#: round -> (request table, response table) of the PW_ENCRYPT rounds in cipher.fbs (r1.6's names)
SECURE_AGGREGATION_ROUNDS: dict[str, tuple[str, str]] = {
    "exchangeKeys": ("RequestExchangeKeys", "ResponseExchangeKeys"),
    "getKeys": ("GetExchangeKeys", "ReturnExchangeKeys"),
    "shareSecrets": ("RequestShareSecrets", "ResponseShareSecrets"),
    "getSecrets": ("GetShareSecrets", "ReturnShareSecrets"),
    "getClientList": ("GetClientList", "ReturnClientList"),
    "reconstructSecrets": ("SendReconstructSecret", "ReconstructSecret"),
}


def _write_cipher(b: flatbuffers.Builder, table: str, values: Mapping[str, Any]) -> _Ref:
    """One cipher.fbs table from plain values: bytes → [ubyte], list of mappings → [table], list of str → [string]."""
    fields = {f.name: f for f in fbverify.load_schema().table(table).fields}
    ready: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise KeyError(f"{table} has no field {name!r}")
        f = fields[name]
        if value is None:
            continue
        if isinstance(value, (bytes, bytearray)):
            ready[name] = _Ref(b.CreateByteVector(bytes(value)))
        elif isinstance(value, (list, tuple)):
            if f.element == "table":
                offsets = [_write_cipher(b, f.ref, v) for v in value]  # type: ignore[arg-type]
            else:
                offsets = [b.CreateString(v) for v in value]
            b.StartVector(4, len(offsets), 4)
            for off in reversed(offsets):
                b.PrependUOffsetTRelative(off)
            ready[name] = _Ref(b.EndVector())
        else:
            ready[name] = value
    return _write_table(b, table, cfb, **ready)


def cipher_message(table: str, **values: Any) -> bytes:
    """A finished ``table`` buffer of cipher.fbs (see :func:`_write_cipher` for the value types)."""
    b = flatbuffers.Builder(1024)
    return _finish(b, _write_cipher(b, table, values))


def _read_cipher(obj: Any, table: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fbverify.load_schema().table(table).fields:
        accessor = _camel(f.name)
        if f.kind == "scalar":
            out[f.name] = getattr(obj, accessor)()
        elif f.kind == "string":
            out[f.name] = _text(getattr(obj, accessor)())
        elif f.kind == "vector" and f.element == "scalar":
            n = getattr(obj, f"{accessor}Length")()
            out[f.name] = getattr(obj, f"{accessor}AsNumpy")().tobytes() if n else b""
        elif f.kind == "vector" and f.element == "table":
            out[f.name] = [_read_cipher(getattr(obj, accessor)(i), f.ref) for i in
                           range(getattr(obj, f"{accessor}Length")())]
        elif f.kind == "vector":
            out[f.name] = [_text(getattr(obj, accessor)(i)) for i in range(getattr(obj, f"{accessor}Length")())]
    return out


def read_cipher(buf: bytes, table: str) -> dict[str, Any]:
    """Verify ``buf`` as a ``table`` buffer of cipher.fbs (ProtocolError otherwise), then every field as plain values."""
    data = _verified(buf, table)
    return _read_cipher(getattr(cfb, table).GetRootAs(data), table)


def secure_aggregation_refusal(response_table: str, reason: str, iteration: int, next_req_time: str,
                               retcode: int = ResponseCode.RequestError) -> bytes:
    """A response of ``response_table`` with ``retcode`` (and ``reason`` where the table has one)."""
    has_reason = hasattr(cfb, f"{response_table}AddReason")
    return _message(response_table, cfb, retcode=int(retcode),
                    reason=reason if has_reason else None, iteration=iteration, next_req_time=next_req_time)


def verify_request(buf: bytes, table: str) -> None:
    """Verify ``buf`` as a ``table`` FlatBuffer; ProtocolError says what is wrong."""
    _verified(buf, table)
