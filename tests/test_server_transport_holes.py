"""Transport holes found by the adversarial probe of issue 26, each closed and held here.

- a client that sends requests and never reads the replies is closed within ``body_timeout_ms``
  (its reply not taken), and never starves the connection cap: at the cap it is displaced;
- a client that pipelines more than ``MAX_PIPELINED`` requests ahead of its replies is closed;
- a 413 reaches a client that is still sending its oversized body (lingering close, not a reset);
- plain HTTP on the HTTPS port gets a plain-text 400 that says what to check.
"""
from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from pyflclient.server.transport import MAX_PIPELINED
from pyflclient.wire.protocol import GetModelRequest


def _big_model() -> dict[str, np.ndarray]:
    """4 MiB of float32: a getModel reply the kernel's socket buffers cannot absorb."""
    return {"fc.weight": np.random.default_rng(0).normal(0, 0.1, (1024, 1024)).astype(np.float32)}


def _get_model_bytes(fl_name: str = "Lenet") -> bytes:
    body = GetModelRequest(fl_name, 0).to_bytes()  # iteration 0: the newest model, at once
    return (b"POST /getModel HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def _non_reader(port: int, requests: int) -> socket.socket:
    """A client that sends ``requests`` getModels and never reads (its receive buffer kept at 4 KiB)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(_get_model_bytes() * requests)
    return s


def _wait_closed(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``s`` (EOF or reset), reading and dropping what it sent; None if not."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            if not s.recv(1 << 20):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def _server_closed_all(srv, seconds: float) -> float | None:
    """Seconds until the server holds no connection, or None. (The client's side may not learn of the close
    until it sends: the server's reset lands beyond the zero window of a client that does not read.)"""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if srv.core.transport.open_connections == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def test_a_client_that_never_reads_its_reply_is_closed_within_body_timeout(start_server):
    """A 4 MiB getModel reply that the client never reads: closed within body_timeout_ms (1 s) + 2 s."""
    srv = start_server(_big_model(), body_timeout_ms=1000, get_model_hold_ms=0)
    s = _non_reader(srv.port, 1)
    try:
        deadline = time.monotonic() + 5
        while srv.core.transport.open_connections == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        took = _server_closed_all(srv, 10)
        assert took is not None, "a client that never reads pinned its connection for 10 s"
        assert took < 3.0, took
        assert srv.core.transport.faults.counts["reply not taken"] == 1
    finally:
        s.close()


def test_non_reading_clients_at_the_connection_cap_are_displaced_and_devices_answered(start_server, device):
    """max_connections=8, all 8 held by clients pinned writing replies they never read (body_timeout 30 s):
    a device's startFLJob is answered within 2 s, each one displacing a non-reader."""
    srv = start_server(_big_model(), max_connections=8, get_model_hold_ms=0)
    pinned = [_non_reader(srv.port, 1) for _ in range(8)]
    try:
        time.sleep(0.5)  # they are all writing now
        assert srv.core.transport.open_connections == 8
        for i in range(3):
            t0 = time.monotonic()
            reply = device(srv.url, fl_id=f"dev{i}", timeout=5).start_fl_job()
            assert not isinstance(reply, str) and reply.retcode is not None
            assert time.monotonic() - t0 < 2.0
    finally:
        for s in pinned:
            s.close()


def test_more_pipelined_requests_than_the_bound_close_the_connection(start_server, small_model):
    """MAX_PIPELINED + 4 getModels in one send: the connection is closed (one fault counted); a client that
    pipelines 3 and reads gets 3 replies."""
    srv = start_server(small_model, get_model_hold_ms=0)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(_get_model_bytes() * (MAX_PIPELINED + 4))
    assert _wait_closed(s, 5) is not None
    s.close()
    assert srv.core.transport.faults.counts["too many pipelined requests"] == 1
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as ok:
        ok.sendall(_get_model_bytes() * 3)
        got = b""
        while got.count(b"HTTP/1.1 200") < 3:
            chunk = ok.recv(65536)
            assert chunk, got[:200]
            got += chunk


def test_a_413_reaches_clients_still_sending_the_body(start_server, small_model):
    """20 clients each send a 4 MiB body against max_body_bytes 64 KiB with a blocking send, then read:
    all 20 read the 413 (the server drops the rest of the body instead of resetting the connection)."""
    srv = start_server(small_model, max_body_bytes=64 * 1024)
    body = b"\0" * (4 << 20)
    head = b"POST /updateModel HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    seen = []
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            try:
                s.sendall(head + body)
                reply = s.recv(65536)
            except OSError as exc:
                reply = repr(exc).encode()
            seen.append(reply[:12])
    assert seen.count(b"HTTP/1.1 413") == 20, seen


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr[-200:]!r}")
    return cert, key


def test_plain_http_on_the_https_port_gets_a_plain_400_that_says_https_only(start_server, small_model, tmp_path):
    """Plain HTTP to an HTTPS port: a plain-text 400 naming the fix ("HTTPS only", https://, certPath), then
    EOF; HTTPS on the same port still works."""
    cert, key = _self_signed(tmp_path)
    srv = start_server(small_model, ssl_cert=str(cert), ssl_key=str(key))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /startFLJob HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 400"), got[:80]
    assert b"HTTPS only" in got and b"https://" in got and b"certPath" in got, got
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert tls.recv(65536).startswith(b"HTTP/1.1 404")


def test_a_silent_client_on_the_https_port_is_closed_within_header_timeout(start_server, small_model, tmp_path):
    """The first byte is looked at before the TLS handshake; a client that sends none is closed once
    header_timeout_ms (500 ms) has passed, counted as a TLS handshake timeout, its slot given back."""
    cert, key = _self_signed(tmp_path)
    srv = start_server(small_model, ssl_cert=str(cert), ssl_key=str(key), header_timeout_ms=500)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        t0 = time.monotonic()
        assert s.recv(10) == b""
        took = time.monotonic() - t0
    assert 0.4 <= took < 1.5, took
    assert _server_closed_all(srv, 5) is not None
    assert srv.core.transport.faults.counts["TLS handshake timeout"] == 1
