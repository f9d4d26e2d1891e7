"""A device that speaks the protocol but does not train: for tests, benchmarks and smoke checks.

It sends exactly the messages a r1.6 device sends (built with
:mod:`pyflclient.wire.protocol`, the server's own codec) over one keep-alive HTTP(S)
connection, and hands back parsed replies, or the plain-text state reply as a
``str``. The training device is the Java client; this one lets a test drive the
server through every path with chosen weights.
"""
from __future__ import annotations

import http.client
import ssl
import uuid
from typing import Mapping
from urllib.parse import urlsplit

import numpy as np

from pyflclient.wire.protocol import (
    GetModelRequest, GetModelResponse, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest,
    UpdateModelResponse, now_ms, plain_text_reply,
)

__all__ = ["DeviceClient", "HTTPStatusError"]


class HTTPStatusError(RuntimeError):
    """The server answered with an HTTP status other than 200 (e.g. 413 for a body over the limit)."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class DeviceClient:
    """One simulated device (``fl_id``, ``data_size``) talking to ``url``."""

    def __init__(self, url: str, *, fl_id: str | None = None, data_size: int = 1, fl_name: str = "Lenet",
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
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

    def start_fl_job(self, iteration: int = 0) -> StartFLJobResponse | str:
        req = StartFLJobRequest(self.fl_name, self.fl_id, iteration, self.data_size, str(now_ms()))
        return self._exchange("startFLJob", req.to_bytes(), StartFLJobResponse.from_bytes)

    def update_model(self, iteration: int, weights: Mapping[str, np.ndarray]) -> UpdateModelResponse | str:
        """Upload ``weights`` as given (the caller multiplies by data_size, as a device does)."""
        req = UpdateModelRequest(self.fl_name, self.fl_id, iteration, weights, str(now_ms()))
        return self._exchange("updateModel", req.to_bytes(), UpdateModelResponse.from_bytes)

    def get_model(self, iteration: int) -> GetModelResponse | str:
        req = GetModelRequest(self.fl_name, iteration, str(now_ms()))
        return self._exchange("getModel", req.to_bytes(), GetModelResponse.from_bytes)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "DeviceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
