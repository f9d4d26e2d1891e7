"""The round's codec on the server: decode compressed uploads, encode the served model.

The maths is :mod:`pyflclient.wire.compression`'s (docs/compression.md); this module is the step of
the round rules that applies it, chosen by the configuration's ``upload_compress_type``,
``upload_sparse_rate`` and ``download_compress_type`` (rows of schema/compression.json):

* every admitted device's ``ResponseFLJob`` announces the upload codec and its sparse rate (an r1.6
  device ignores the appended fields and uploads plainly, which is always accepted);
* a device that lists the download codec in ``download_compress_types`` gets the model quantised
  (``compress_feature_map``, no ``feature_map``) in ResponseFLJob and ResponseGetModel; the others
  get the float32 model;
* a compressed upload is refused with a reason (model unchanged) when its type or sparse rate is not
  the plan's, its names or sizes do not fit the mask, or a min/max is not finite; otherwise it
  becomes the r1.6 upload ``data_size × w + d'``, ``w`` the server's model of the iteration in full
  precision. Aggregation then runs as for any upload. Under QUANT the device trained from the
  dequantised model ``w_q`` and ``d`` is its change from there: the server applies the change to
  ``w``, not to ``w_q``, so the quantisation of the download never accumulates in the global model
  (for FedAvg ``w + mean(d)/D``; a pseudo-gradient type reads exactly the devices' mean change).

No state: the mask is a function of the iteration, the base the published model, so every process
of a group and a restarted server decode alike.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from pyflclient.server.config import ServerConfig
from pyflclient.wire import compression
from pyflclient.wire.compression import CompressionError
from pyflclient.wire.protocol import GetModelResponse, ResponseCode, StartFLJobResponse, UpdateModelRequest

__all__ = ["ServerCodec"]

Model = Mapping[str, np.ndarray]


class ServerCodec:
    """The codec step of one server process (stateless but for caches of the newest encodings)."""

    def __init__(self, config: ServerConfig):
        self.upload = config.upload_codec
        self.download = config.download_codec
        self.rate = float(np.float32(config.upload_sparse_rate))
        table = compression.table()
        self._no_compress = table.no_compress
        # (the plain reply it came from, its compressed twin); the newest per kind
        self._replies: dict[tuple[str, bool], tuple[object, object]] = {}

    @property
    def active(self) -> bool:
        return self.upload.compresses or self.download.compresses

    def _wants(self, download_types: Sequence[int]) -> bool:
        return self.download.compresses and self.download.wire in download_types

    # -- the model on the way down ------------------------------------------------------------------

    def admit_reply(self, reply: StartFLJobResponse | str, download_types: Sequence[int]) -> StartFLJobResponse | str:
        """An admission with the plan's compression fields, and the model quantised for a device that decodes it."""
        if not self.active or isinstance(reply, str) or reply.retcode != ResponseCode.SUCCEED:
            return reply
        quant = self._wants(download_types)
        key = ("admit", quant)
        cached = self._replies.get(key)
        if cached is not None and cached[0] is reply:
            return cached[1]  # type: ignore[return-value]
        changes: dict[str, object] = {}
        if self.upload.compresses:
            changes.update(upload_compress_type=self.upload.wire, upload_sparse_rate=self.rate)
        if quant and reply.weights:
            changes.update(weights={}, download_compress_type=self.download.wire,
                           compressed=tuple(compression.encode_model(reply.weights)))
        twin = dataclasses.replace(reply, **changes) if changes else reply
        self._replies[key] = (reply, twin)
        return twin

    def model_reply(self, reply: GetModelResponse, download_types: Sequence[int]) -> GetModelResponse:
        """A getModel reply with the model quantised for a device that decodes it."""
        if reply.retcode != ResponseCode.SUCCEED or not reply.weights or not self._wants(download_types):
            return reply
        cached = self._replies.get(("model", True))
        if cached is not None and cached[0] is reply:
            return cached[1]  # type: ignore[return-value]
        twin = dataclasses.replace(reply, weights={}, download_compress_type=self.download.wire,
                                   compressed=tuple(compression.encode_model(reply.weights)))
        self._replies[("model", True)] = (reply, twin)
        return twin

    # -- the update on the way up -------------------------------------------------------------------

    def compressed(self, req: UpdateModelRequest) -> bool:
        """Whether ``req`` carries a compressed update (its upload_compress_type is not NO_COMPRESS)."""
        return req.upload_compress_type != self._no_compress

    def decode(self, req: UpdateModelRequest, base: Model, data_size: int) -> tuple[dict[str, np.ndarray] | None,
                                                                                     str | None]:
        """``(the r1.6 upload data_size × base + d', None)`` of a compressed update, or ``(None, why it is
        refused)``; ``base``: the iteration's model."""
        codec = compression.table().upload_by_wire(req.upload_compress_type)
        if codec is None:
            return None, (f"upload_compress_type {req.upload_compress_type} is not a CompressType of an upload "
                          f"({', '.join(f'{c.wire} {c.name}' for c in compression.table().upload.values())})")
        if not self.upload.compresses:
            return None, f"upload_compress_type {codec.name}: the plan announced {self.upload.name}"
        if codec.params != self.upload.params:  # with and without error feedback decode alike
            return None, f"upload_compress_type {codec.name}: the plan announced {self.upload.name}"
        if float(np.float32(req.upload_sparse_rate)) != self.rate:
            return None, (f"upload_sparse_rate {float(np.float32(req.upload_sparse_rate)):g} is not the plan's "
                          f"{self.rate:g}")
        if req.weights:
            return None, "a compressed upload carries its update in compress_feature_map, not in feature_map"
        try:
            return compression.decode_upload(req.compressed, req.name_vec, req.iteration, self.rate, base,
                                              data_size), None
        except CompressionError as exc:
            return None, str(exc)
