"""A device that speaks the protocol but does not train: for tests, benchmarks and smoke checks.

It sends exactly the messages a r1.6 device sends (built with
:mod:`pyflclient.wire.protocol`, the server's own codec) over one keep-alive HTTP(S)
connection, and hands back parsed replies, or the plain-text state reply as a
``str``. The training device is the Java client; this one lets a test drive the
server through every path with chosen weights.
"""
from __future__ import annotations

import http.client
import secrets
import ssl
import uuid
from typing import Any, Mapping
from urllib.parse import urlsplit

import numpy as np

from pyflclient.wire import secagg
from pyflclient.wire.protocol import (
    AsyncGetModelRequest, AsyncGetModelResponse, AsyncUpdateModelRequest, AsyncUpdateModelResponse,
    SECURE_AGGREGATION_ROUNDS, GetModelRequest, GetModelResponse, PushMetricsRequest, PushMetricsResponse,
    StartFLJobRequest, StartFLJobResponse,
    UpdateModelRequest, UpdateModelResponse, cipher_message, now_ms, plain_text_reply, read_cipher,
)

__all__ = ["DeviceClient", "HTTPStatusError", "MaskingDevice"]


class HTTPStatusError(RuntimeError):
    """The server answered with an HTTP status other than 200 (e.g. 413 for a body over the limit)."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class DeviceClient:
    """One simulated device (``fl_id``, ``data_size``) talking to ``url``."""

    def __init__(self, url: str, *, fl_id: str | None = None, data_size: int = 1, fl_name: str = "Lenet",
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None, signer: Any = None):
        """``signer``: a :class:`pyflclient.pki.DeviceSigner` to sign startFLJob and updateModel (pki_verify)."""
        parts = urlsplit(url)
        self.signer = signer
        self.fl_id = fl_id or str(uuid.uuid4())
        self.data_size = data_size
        self.fl_name = fl_name
        if parts.scheme == "https":
            self._conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "127.0.0.1", parts.port, timeout=timeout, context=ssl_context)
        else:
            self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)

    def post(self, round_name: str, body: bytes) -> tuple[int, bytes]:
        """POST one body to ``/round_name``; returns (HTTP status, response body)."""
        reused = self._conn.sock is not None
        try:
            return self._post_once(round_name, body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            if not reused:
                raise
            # the server closed the kept-alive connection while it idled (keep_alive_timeout_ms):
            # the request never reached it; a new connection, once, as HTTP clients do
            self._conn.close()
            return self._post_once(round_name, body)

    def _post_once(self, round_name: str, body: bytes) -> tuple[int, bytes]:
        # the stock client's misspelled content type: the server must not care
        self._conn.request("POST", f"/{round_name}", body=body,
                           headers={"Content-Type": "applicatiom/json;charset=utf-8"})
        resp = self._conn.getresponse()
        return resp.status, resp.read()

    def _exchange(self, round_name: str, body: bytes, parse):  # type: ignore[no-untyped-def]
        status, data = self.post(round_name, body)
        if status != 200:
            raise HTTPStatusError(status, data)
        text = plain_text_reply(data)
        return text if text is not None else parse(data)

    def start_fl_job(self, iteration: int = 0, download_compress_types: tuple[int, ...] = ()
                     ) -> StartFLJobResponse | str:
        """``download_compress_types``: the CompressType values this device decodes (QUANT's: a quantised model)."""
        timestamp = str(now_ms())
        signed = self.signer.start_fields(self.fl_id, timestamp) if self.signer is not None else {}
        req = StartFLJobRequest(self.fl_name, self.fl_id, iteration, self.data_size, timestamp, **signed,
                                download_compress_types=tuple(download_compress_types))
        return self._exchange("startFLJob", req.to_bytes(), StartFLJobResponse.from_bytes)

    def update_model(self, iteration: int, weights: Mapping[str, np.ndarray], *, upload_loss: float | None = None,
                     control_variate: Mapping[str, np.ndarray] | None = None) -> UpdateModelResponse | str:
        """Upload ``weights`` as given (the caller multiplies by data_size, as a device does), with the
        device's ``upload_loss`` and Scaffold's ``control_variate`` (Δc_i) when given; signed with ``signer``."""
        timestamp = str(now_ms())
        signature = self.signer.update_signature(timestamp, iteration) if self.signer is not None else b""
        req = UpdateModelRequest(self.fl_name, self.fl_id, iteration, weights, timestamp, upload_loss,
                                 dict(control_variate or {}), signature)
        return self._exchange("updateModel", req.to_bytes(), UpdateModelResponse.from_bytes)

    def update_model_compressed(self, iteration: int, update: Mapping[str, np.ndarray], compress_type: int,
                                sparse_rate: float) -> UpdateModelResponse | str:
        """Upload ``update`` (data_size x (trained - received), float32) as a DIFF_SPARSE_QUANT device does
        (pyflclient.wire.compression), names in the update's order."""
        from pyflclient.wire.compression import encode_upload

        names = tuple(update)
        tensors, _ = encode_upload(update, names, iteration, sparse_rate)
        req = UpdateModelRequest(self.fl_name, self.fl_id, iteration, {}, str(now_ms()),
                                 upload_compress_type=compress_type, upload_sparse_rate=sparse_rate, name_vec=names,
                                 compressed=tuple(tensors))
        return self._exchange("updateModel", req.to_bytes(), UpdateModelResponse.from_bytes)

    def get_model(self, iteration: int, download_compress_types: tuple[int, ...] = ()) -> GetModelResponse | str:
        req = GetModelRequest(self.fl_name, iteration, str(now_ms()), tuple(download_compress_types))
        return self._exchange("getModel", req.to_bytes(), GetModelResponse.from_bytes)

    def async_update_model(self, iteration: int, weights: Mapping[str, np.ndarray]) -> AsyncUpdateModelResponse | str:
        """The asynchronous upload: ``weights`` (× data_size, by the caller) trained on version ``iteration``."""
        req = AsyncUpdateModelRequest(self.fl_name, self.fl_id, iteration, self.data_size, weights)
        return self._exchange(req.ROUND, req.to_bytes(), AsyncUpdateModelResponse.from_bytes)

    def async_get_model(self, iteration: int = 0) -> AsyncGetModelResponse | str:
        req = AsyncGetModelRequest(self.fl_name, iteration)
        return self._exchange(req.ROUND, req.to_bytes(), AsyncGetModelResponse.from_bytes)

    def push_metrics(self, loss: float, accuracy: float) -> PushMetricsResponse | str:
        """r1.6's ``/pushMetrics``: this device's loss and accuracy after its evaluation."""
        return self._exchange("pushMetrics", PushMetricsRequest(loss, accuracy).to_bytes(),
                              PushMetricsResponse.from_bytes)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "DeviceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaskingDevice(DeviceClient):
    """A :class:`DeviceClient` that also speaks PW_ENCRYPT's cipher rounds (pyflclient.wire.secagg), with
    chosen weights: the server's tests and benchmarks drive the cipher rounds through it. The training
    device that does the same is the Java client (``com.mindspore.flclient.cipher``)."""

    def __init__(self, url: str, **kwargs: object):
        super().__init__(url, **kwargs)  # type: ignore[arg-type]
        self.c_keys = self.s_keys = None
        self.self_seed = b""
        self.peers: dict[str, tuple[bytes, bytes]] = {}   # fl_id -> (c_pk, s_pk) of U1
        self.held: dict[str, tuple[int, bytes, bytes]] = {}  # owner -> (my point, b share, s-key share)
        self.sharers: list[str] = []                       # U2

    def cipher(self, round_name: str, **fields: object) -> dict | str:
        """POST one cipher round's request (fl_id and timestamp filled in) and decode its reply."""
        request, response = SECURE_AGGREGATION_ROUNDS[round_name]
        fields = {"fl_id": self.fl_id, "timestamp": str(now_ms()), **fields}
        return self._exchange(round_name, cipher_message(request, **fields), lambda b: read_cipher(b, response))

    def exchange_keys(self, iteration: int) -> dict | str:
        self.c_keys, self.s_keys = secagg.new_key_pair(), secagg.new_key_pair()
        self.self_seed = secrets.token_bytes(secagg.SECRET_BYTES)
        return self.cipher("exchangeKeys", iteration=iteration, c_pk=self.c_keys.public, s_pk=self.s_keys.public)

    def get_keys(self, iteration: int) -> dict | str:
        reply = self.cipher("getKeys", iteration=iteration)
        if isinstance(reply, dict):
            self.peers = {k["fl_id"]: (k["c_pk"], k["s_pk"]) for k in reply["remote_publickeys"]}
        return reply

    def share_secrets(self, iteration: int, t: int) -> dict | str:
        """Shamir-share the self-mask seed and the s private key among U1, each share sealed for its holder."""
        assert self.c_keys is not None and self.s_keys is not None
        members = sorted(self.peers)
        points = list(range(1, len(members) + 1))
        b_shares = secagg.split(int.from_bytes(self.self_seed, "big"), t, points)
        s_shares = secagg.split(int.from_bytes(self.s_keys.private, "big"), t, points)
        out = []
        for holder, x in zip(members, points):
            b, s = secagg.int_to_share(b_shares[x]), secagg.int_to_share(s_shares[x])
            key = secagg.share_key(self.c_keys.private, self.peers[holder][0])
            sealed = secagg.seal(key, b + s, secagg.share_aad(self.fl_id, holder, iteration))
            out.append({"fl_id": holder, "share": secagg.commitment(b) + secagg.commitment(s) + sealed, "index": x})
        return self.cipher("shareSecrets", iteration=iteration, encrypted_shares=out)

    def get_secrets(self, iteration: int) -> dict | str:
        assert self.c_keys is not None
        reply = self.cipher("getSecrets", iteration=iteration)
        if isinstance(reply, dict) and reply["retcode"] == 200:
            self.held, self.sharers = {}, []
            for s in reply["encrypted_shares"]:
                key = secagg.share_key(self.c_keys.private, self.peers[s["fl_id"]][0])
                plain = secagg.open_sealed(key, s["share"], secagg.share_aad(s["fl_id"], self.fl_id, iteration))
                self.held[s["fl_id"]] = (s["index"], plain[:secagg.SHARE_BYTES], plain[secagg.SHARE_BYTES:])
                self.sharers.append(s["fl_id"])
        return reply

    def masked(self, iteration: int, upload: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``upload`` (data_size × weights) quantised and masked for U2, as wire slots per weight."""
        assert self.s_keys is not None
        flat = secagg.flatten(upload)
        y = secagg.quantise(flat) + secagg.prg(self.self_seed, secagg.PARAMS["self_mask_info"], iteration, flat.size)
        y += secagg.mask_sum(((secagg.sign_of(self.fl_id, j), secagg.agree(self.s_keys.private, self.peers[j][1]))
                              for j in self.sharers if j != self.fl_id), secagg.PARAMS["pairwise_mask_info"],
                             iteration, flat.size)
        out, at = {}, 0
        for name in sorted(upload):
            size = int(np.size(upload[name]))
            out[name] = secagg.ring_to_wire(y[at:at + size])
            at += size
        return out

    def get_client_list(self, iteration: int) -> dict | str:
        return self.cipher("getClientList", iteration=iteration)

    def reconstruct_secrets(self, iteration: int, uploaders: list[str]) -> dict | str:
        """Return, for each device of U2, the b share if it uploaded, else the s-key share."""
        shares = [{"fl_id": owner, "index": x, "share": b if owner in uploaders else s}
                  for owner, (x, b, s) in sorted(self.held.items())]
        return self.cipher("reconstructSecrets", iteration=iteration, reconstruct_secret_shares=shares)
