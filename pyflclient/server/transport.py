"""The FL server's connections: who may hold a socket, for how long, and what a client's fault costs.

aiohttp parses HTTP; this module owns everything around it that a client can abuse.
Each listening socket is served by our own accept loop (:class:`ListenSite`), so a
connection over ``max_connections`` is dealt with before it costs more than its file
descriptor, a listening socket pauses (instead of spinning, as asyncio's loop does) when
the process is out of descriptors, and a failed TLS handshake is reported. Each
connection is a :class:`Connection`, aiohttp's ``RequestHandler`` with a watchdog: its
headers must complete within ``header_timeout_ms`` (of the connection, or of the request's
first byte after an idle keep-alive), its body within ``body_timeout_ms`` and within
``max_body_bytes`` (refused from Content-Length before a byte is read), and it may idle
``keep_alive_timeout_ms`` between requests. A request being answered (a held getModel)
has no deadline here, but its reply must be taken by the client within ``body_timeout_ms``
(the time an upload of the same size may take), and at most ``MAX_PIPELINED`` requests may
wait behind it: a client that sends and never reads is closed. At the cap a new connection
displaces the one that has waited longest without sending a request (then the longest-reading
body, then the oldest reply the client is not taking), as nginx reuses idle connections, so
stalled clients cannot lock out the devices. A refused body (413, 408) is answered, the
write side shut (FIN) and the rest of the body read and dropped for up to ``LINGER_S``, so the
client reads the refusal instead of a reset. Everything a client can cause is one
rate-limited INFO line (:class:`ClientFaults`), never a traceback.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import resource
import socket
import ssl
import time
from http import HTTPStatus
from typing import Any, Callable, Mapping

import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_runner import BaseRunner, BaseSite

from pyflclient.server.config import ServerConfig
from pyflclient.server.faults import ClientFaults
from pyflclient.server.traffic import Traffic

__all__ = ["Transport", "Connection", "ListenSite", "ClientFaults", "BodyRefused", "raise_open_file_limit"]

log = logging.getLogger(__name__)

#: a derived body bound: 2 × the model's float32 bytes (an update plus the FlatBuffer's names, padding
#: and fields) + this much for the small requests; never more than _DERIVED_BODY_MAX
_DERIVED_BODY_SLACK = 64 * 1024
_DERIVED_BODY_MAX = 1 << 30
#: a derived connection cap leaves 1/8 of the open-file limit (at least 64) to checkpoints, logs, a JVM
_DERIVED_CONNECTIONS_MAX = 10_000
#: a paused listening socket (out of descriptors) is retried after this long
_ACCEPT_RETRY_S = 0.5
#: at most this many accepts per wake-up, so one busy port cannot starve the loop
_ACCEPTS_PER_WAKEUP = 128
#: an episode at the connection cap ends once the open connections fall below this share of it
_LIMIT_EPISODE_END = 0.9
#: requests a client may send ahead of the reply it is waiting for (HTTP/1.1 pipelining); one more closes it.
#: No FL device pipelines; the bound keeps a client that sends and never reads from queueing replies.
MAX_PIPELINED = 8
#: after refusing a body, read and drop the rest of it for at most this long, so that the client, which
#: is still sending, reads the refusal instead of the reset a close with unread bytes causes
LINGER_S = 2.0
#: the plain-text body of the 400 that answers plain HTTP on an https port; the Java client
#: (FLCommunication.PLAIN_HTTP_REFUSED) recognises "HTTPS only" in it and fails at once with it
PLAIN_HTTP_ON_HTTPS = ("400 Bad Request: plain HTTP sent to port {port}, which speaks HTTPS only; use https:// in "
                       "the server address (domainName) and trust the server's certificate (certPath)")


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now in force.

    The usual soft limit of 1,024 is what an FL server with a thousand devices runs out of first;
    the hard limit is what the administrator allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = soft if hard == resource.RLIM_INFINITY else hard
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.debug("open-file limit: cannot raise the soft limit %d to %d: %s", soft, target, exc)
    log.debug("open-file limit: soft %s, hard %s", soft, "unlimited" if hard == resource.RLIM_INFINITY else hard)
    return soft


def connection_limit(setting: int) -> int:
    """``max_connections``, or (0) 7/8 of the process's open-file limit, at most 10,000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if setting:
        if soft != resource.RLIM_INFINITY and setting > soft - 64:
            log.warning("max_connections=%d is not below the open-file limit (%d) with room for files: "
                        "accept() may fail before the cap; raise the limit (ulimit -n) or lower the cap",
                        setting, soft)
        return setting
    if soft == resource.RLIM_INFINITY:
        return _DERIVED_CONNECTIONS_MAX
    return max(2, min(soft - max(64, soft // 8), _DERIVED_CONNECTIONS_MAX))


def body_limit(setting: int, model: Mapping[str, np.ndarray], devices_sharing: int = 0, copies: int = 1) -> int:
    """``max_body_bytes``, or (0) 2 × ``copies`` × the model's float32 bytes + 64 KiB, at most 1 GiB (room for a
    masked upload's two slots a value; ``copies``: 2 when an upload carries a control variate beside its
    weights); with pairwise masking (``devices_sharing`` =
    start_fl_job_threshold) at least a shareSecrets body of that many sealed shares."""
    if setting:
        return setting
    floats = copies * sum(int(np.asarray(a).size) for a in model.values())
    shares = 0
    if devices_sharing:
        from pyflclient.server.secure_aggregation import SEALED_SHARE_BYTES

        shares = devices_sharing * (SEALED_SHARE_BYTES + 256)  # a ClientShare: its fl_id, vector and table
    return min(max(2 * 4 * floats, shares) + _DERIVED_BODY_SLACK, _DERIVED_BODY_MAX)


class BodyRefused(Exception):
    """A request body the server will not take (too large, too slow, cut off); ``response`` is the
    reply, which closes the connection so the client cannot keep streaming."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.response = web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}: {reason}")
        self.response.force_close()


class _Slot:
    """One accepted socket's place under the connection cap, given back exactly once."""

    __slots__ = ("_transport", "_held")

    def __init__(self, transport: "Transport"):
        self._transport = transport
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._transport.slot_released()


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "?"


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "…"


class Connection(RequestHandler):
    """aiohttp's handler of one connection, with a watchdog on the client's progress.

    Five phases: *waiting* for a request (fresh, idle, or headers arriving: deadline
    ``header_timeout`` from the connection or the first byte, ``keep_alive_timeout`` when idle
    after a response), *reading* a body (the body timeout is the reader's, :meth:`Transport.read_body`),
    *answering* (no deadline: the handler bounds itself, e.g. the getModel hold), *writing* the
    reply (deadline ``body_timeout``: a client that does not read its replies is closed) and
    *lingering* after a refused body (``LINGER_S``, the rest of the body dropped). One timer per
    connection, moved lazily: it only ever fires at or after the current deadline."""

    __slots__ = ("_hub", "_slot", "_peer", "_phase", "_idle", "_deadline", "_timer", "_first_bytes",
                 "_linger", "_lingered", "closed_by_server")

    WAITING, READING, ANSWERING, WRITING, LINGERING = "waiting", "reading", "answering", "writing", "lingering"

    def __init__(self, hub: "Transport", slot: _Slot, manager: web.Server, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._hub = hub
        self._slot = slot
        self._peer = "?"
        self._phase = self.WAITING
        self._idle = False
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._first_bytes = b""
        self._linger = False  # the reply being written refuses a body: linger after it
        self._lingered: asyncio.Future[None] | None = None
        #: why the server closed this connection (a timeout, displaced at the cap), None otherwise
        self.closed_by_server: str | None = None

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def phase(self) -> str:
        return self._phase

    def stalled_writing(self) -> bool:
        """Writing a reply that the client is not taking as fast as it is written (bytes wait in our buffer)."""
        return (self._phase == self.WRITING and self.transport is not None
                and self.transport.get_write_buffer_size() > 0)

    # -- the watchdog -----------------------------------------------------------------------

    def _arm(self, deadline: float | None) -> None:
        self._deadline = deadline
        if deadline is not None and (self._timer is None or self._timer.when() > deadline):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._deadline is None or self.transport is None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        if self._phase == self.LINGERING:
            self._end_linger()
        elif self._phase == self.WRITING:
            self._hub.faults.report("reply not taken", self._peer,
                                    f"the client did not read its reply within {self._hub.body_timeout:g} s; closed")
            self.close_now("reply timeout")
        elif self._idle:
            log.debug("closing idle keep-alive connection from %s", self._peer)
            self.close_now("idle keep-alive timeout")
        else:
            self._hub.faults.report("header timeout", self._peer,
                                    f"no complete request headers within {self._hub.header_timeout:g} s; closed")
            self.close_now("header timeout")

    def _wait_for_request(self, idle: bool) -> None:
        self._phase, self._idle = self.WAITING, idle
        self._hub.queue(self, self.WAITING)
        self._arm(self._loop.time() + (self._hub.keep_alive_timeout if idle else self._hub.header_timeout))

    def reading_body(self) -> None:
        """The request's headers are in and its handler reads the body."""
        self._phase, self._idle = self.READING, False
        self._hub.queue(self, self.READING)
        self._arm(None)

    def answering(self) -> None:
        """The request is read; its handler is working on the reply (no deadline, not displaceable)."""
        self._phase, self._idle = self.ANSWERING, False
        self._hub.queue(self, None)
        self._arm(None)

    def linger_after_reply(self) -> None:
        """The reply refuses the request's body: after writing it, drop the rest of the body for a while."""
        self._linger = True

    def close_now(self, why: str) -> None:
        """Close at once (no flush: nothing is owed to a stalled client) and give the slot back."""
        self.closed_by_server = why
        self._slot.release()
        self._hub.queue(self, None)
        if self.transport is not None:
            self.transport.abort()
        self.force_close()
        self._end_linger()

    def _end_linger(self) -> None:
        if self._lingered is not None and not self._lingered.done():
            self._lingered.set_result(None)

    # -- aiohttp's protocol events ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._peer = _peer_text(transport.get_extra_info("peername"))
        super().connection_made(transport)
        self._wait_for_request(idle=False)

    def data_received(self, data: bytes) -> None:
        if self._phase == self.LINGERING:  # the rest of a refused body: dropped unread
            return
        if not self._first_bytes:
            self._first_bytes = data[:3]
        if self._idle:  # the next request begins: its headers get header_timeout from here
            self._idle = False
            self._arm(self._loop.time() + self._hub.header_timeout)
        super().data_received(data)
        if len(self._messages) > MAX_PIPELINED and self.closed_by_server is None:
            self._hub.faults.report("too many pipelined requests", self._peer,
                                    f"{len(self._messages)} requests sent ahead of their replies (at most "
                                    f"{MAX_PIPELINED}); closed")
            self.close_now("pipelining")

    def eof_received(self) -> bool | None:
        self._end_linger()
        return super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        self._hub.queue(self, None)
        self._slot.release()
        self._end_linger()
        super().connection_lost(exc)

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        self._phase, self._idle = self.WRITING, False
        self._hub.queue(self, self.WRITING)
        self._arm(self._loop.time() + self._hub.body_timeout)
        result = await super().finish_response(request, resp, start_time)
        if self.transport is not None and self.closed_by_server is None:
            if self._linger:
                await self._linger_out()
            else:
                self._wait_for_request(idle=True)
        return result

    async def _linger_out(self) -> None:
        """After a refused body's reply: FIN (where the transport can half-close), then drop what still
        comes for at most ``LINGER_S``, until the client closes. A close with unread bytes would be a
        reset, and a client still sending would see the reset, not the refusal."""
        assert self.transport is not None
        self._phase, self._idle = self.LINGERING, False
        self._hub.queue(self, self.WAITING)  # nothing more is owed: displaceable first
        self._lingered = self._loop.create_future()
        self._arm(self._loop.time() + LINGER_S)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if isinstance(self.transport, asyncio.ReadTransport):
            self.transport.resume_reading()  # the body's buffer may have paused it; what comes now is dropped
        await self._lingered

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # bytes that are not an HTTP request this server takes: the client's fault, one line
        kind = ("TLS handshake on the http port" if self._first_bytes[:2] == b"\x16\x03"
                else "malformed HTTP request")
        self._hub.faults.report(kind, self._peer, _one_line(f"{type(exc).__name__}: {message or exc}"))
        resp = web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}")
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, (ConnectionError, HttpProcessingError, web.RequestPayloadError)):
            self._hub.faults.report("connection error", self._peer, _one_line(f"{type(exc).__name__}: {exc}"))
        else:
            super().log_exception(*args, **kw)


class Transport:
    """The connection policy of one server process, shared by all its ports: the timeouts, the body
    bound, the connection cap with displacement, and the client-fault log."""

    def __init__(self, config: ServerConfig, model: Mapping[str, np.ndarray], *,
                 faults: ClientFaults | None = None, masked: bool = False, control_variate: bool = False,
                 traffic: Traffic | None = None):
        """``masked``: uploads are masked (two float32 slots a value, cipher rounds with shares);
        ``control_variate``: uploads carry one beside the weights (Scaffold); ``traffic``: the counter
        of the device exchanges' body bytes (the round rules' own)."""
        self.header_timeout = config.header_timeout_ms / 1000
        self.body_timeout = config.body_timeout_ms / 1000
        self.keep_alive_timeout = config.keep_alive_timeout_ms / 1000
        self.max_body_bytes = body_limit(config.max_body_bytes, model,
                                         config.start_fl_job_threshold if masked else 0,
                                         2 if control_variate else 1)
        self.max_connections = connection_limit(config.max_connections)
        self.faults = faults or ClientFaults()
        #: the body bytes of every device exchange (the round rules take them at each iteration's close)
        self.traffic = traffic or Traffic()
        self.open_connections = 0  # accepted sockets not yet closed, TLS handshakes included
        # displaceable connections, oldest first (dicts keep insertion order)
        self._waiting: dict[Connection, None] = {}
        self._reading: dict[Connection, None] = {}
        self._writing: dict[Connection, None] = {}
        self._episode: dict[str, float] | None = None
        self._out_of_fds = False
        self._connecting = 0  # accepted sockets whose Connection is not made yet (the next loop turn, TLS)
        self._on_connected: list[Callable[[], None]] = []

    # -- the cap ----------------------------------------------------------------------------

    def must_wait(self, resume: Callable[[], None]) -> bool:
        """At the cap with nobody to displace yet but connections about to be made (accepted in the
        same turn, or in their TLS handshake): True, and ``resume`` is called once one is made."""
        if (self.open_connections < self.max_connections or self._waiting or self._reading
                or any(c.stalled_writing() for c in self._writing) or not self._connecting):
            return False
        self._on_connected.append(resume)
        return True

    def connected(self) -> None:
        """An accepted socket's connection is made (or failed): listeners waiting on it resume."""
        self._connecting -= 1
        waiting, self._on_connected = self._on_connected, []
        for resume in waiting:
            resume()

    def admit(self) -> _Slot | None:
        """A slot for a socket just accepted, displacing a waiting/reading connection at the cap;
        None: the cap is reached by connections being answered, close the new one."""
        if self.open_connections >= self.max_connections:
            victim = (next(iter(self._waiting), None) or next(iter(self._reading), None)
                      or next((c for c in self._writing if c.stalled_writing()), None))
            self._at_limit(displaced=victim is not None)
            if victim is None:
                return None
            victim.close_now("displaced at the connection limit")
        self.open_connections += 1
        self._connecting += 1
        return _Slot(self)

    def slot_released(self) -> None:
        self.open_connections -= 1
        if self._episode is not None and self.open_connections < _LIMIT_EPISODE_END * self.max_connections:
            ep, self._episode = self._episode, None
            log.info("connections back under the limit (%d open): %d waiting or stalled connection(s) displaced "
                     "and %d new one(s) closed in %.1f s at the limit", self.open_connections, ep["displaced"],
                     ep["refused"], time.monotonic() - ep["since"])

    def _at_limit(self, displaced: bool) -> None:
        if self._episode is None:
            self._episode = {"since": time.monotonic(), "displaced": 0, "refused": 0}
            log.warning("%d connections open, the max_connections limit: each new connection displaces the "
                        "longest-waiting idle or stalled one (or is closed if all are being answered); "
                        "one more line when this ends", self.max_connections)
        self._episode["displaced" if displaced else "refused"] += 1

    def queue(self, conn: Connection, phase: str | None) -> None:
        """Where ``conn`` waits to be displaced: at the end of the waiting, reading or writing line, or nowhere
        (a writing connection is displaced only while the client is not taking its reply)."""
        self._waiting.pop(conn, None)
        self._reading.pop(conn, None)
        self._writing.pop(conn, None)
        if phase == Connection.WAITING:
            self._waiting[conn] = None
        elif phase == Connection.READING:
            self._reading[conn] = None
        elif phase == Connection.WRITING:
            self._writing[conn] = None

    def out_of_descriptors(self, port: int, exc: OSError) -> None:
        if not self._out_of_fds:
            self._out_of_fds = True
            log.warning("accept() on port %d failed (%s): pausing that port for %.1f s at a time until it "
                        "works; lower max_connections or raise the open-file limit", port, exc.strerror,
                        _ACCEPT_RETRY_S)

    def accepting(self) -> None:
        if self._out_of_fds:
            self._out_of_fds = False
            log.info("accept() works again")

    def protocol_factory(self, manager: web.Server, slot: _Slot) -> functools.partial[Connection]:
        loop = asyncio.get_running_loop()
        # aiohttp's own keep-alive close is only a backstop behind the watchdog
        backstop = self.keep_alive_timeout + self.header_timeout + 1
        return functools.partial(Connection, self, slot, manager, loop=loop, keepalive_timeout=backstop,
                                 lingering_time=0.0, access_log=None)

    # -- bodies -----------------------------------------------------------------------------

    async def read_body(self, request: web.BaseRequest) -> bytes:
        """The request's body, within ``max_body_bytes`` and ``body_timeout``; :class:`BodyRefused`
        otherwise (413 from Content-Length before a byte is read, or as soon as a chunked body
        passes the bound; 408 when too slow; 400 when the client hung up or sent a broken body)."""
        conn = request.protocol if isinstance(request.protocol, Connection) else None
        peer = conn.peer if conn is not None else str(request.remote)
        limit = self.max_body_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            self.faults.report("body too large", peer, f"{request.path}: Content-Length {declared} > "
                                                       f"max_body_bytes {limit}; refused unread")
            if conn is not None:
                conn.linger_after_reply()
            raise BodyRefused(413, f"Content-Length {declared} is over the server's limit of {limit} bytes")
        if conn is not None:
            conn.reading_body()
        chunks: list[bytes] = []  # joined once at the end (no copy for a body that came in one chunk)
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.content.iter_any():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        self.faults.report("body too large", peer,
                                           f"{request.path}: chunked body passed max_body_bytes {limit}; refused")
                        if conn is not None:
                            conn.linger_after_reply()
                        raise BodyRefused(413, f"the body is over the server's limit of {limit} bytes")
        except TimeoutError:
            self.faults.report("body timeout", peer, f"{request.path}: {size} of "
                                                     f"{declared if declared is not None else 'chunked'} bytes in "
                                                     f"{self.body_timeout:g} s; closed")
            raise BodyRefused(408, f"the body did not arrive within {self.body_timeout:g} s") from None
        except (ConnectionError, HttpProcessingError, web.RequestPayloadError) as exc:
            if conn is None or conn.closed_by_server is None:
                self.faults.report("hang-up mid-body", peer, f"{request.path}: after {size} bytes "
                                                            f"({_one_line(f'{type(exc).__name__}: {exc}')})")
            raise BodyRefused(400, "the body was cut off") from None
        if conn is not None:
            conn.answering()
        return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        self.faults.close()


class ListenSite(BaseSite):
    """An aiohttp site on a bound, listening socket, with :class:`Transport`'s accept loop.

    asyncio's own accept loop logs a traceback per failed ``accept()`` and retries ``backlog``
    times per wake-up while out of descriptors (tens of thousands of lines a second); this one
    pauses the port, says so once, and puts every new socket under the connection cap first."""

    def __init__(self, runner: BaseRunner, sock: socket.socket, transport: Transport, *,
                 ssl_context: ssl.SSLContext | None = None):
        super().__init__(runner, ssl_context=ssl_context)
        self._owner = runner
        self._sock = sock
        self._transport = transport
        self._port = sock.getsockname()[1]
        self._retry: asyncio.TimerHandle | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused = True  # not reading the listening socket (not started, out of fds, at the cap)
        self._stopped = False

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{_peer_text(self._sock.getsockname())}"

    async def start(self) -> None:
        await super().start()
        self._loop = asyncio.get_running_loop()
        self._listen()

    def _listen(self) -> None:
        self._retry = None
        if self._paused and not self._stopped:
            self._paused = False
            assert self._loop is not None
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        assert self._loop is not None
        for _ in range(_ACCEPTS_PER_WAKEUP):
            if self._transport.must_wait(self._listen):  # the backlog waits in the kernel meanwhile
                self._loop.remove_reader(self._sock.fileno())
                self._paused = True
                return
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: pause, do not spin
                self._transport.out_of_descriptors(self._port, exc)
                self._loop.remove_reader(self._sock.fileno())
                self._paused = True
                self._retry = self._loop.call_later(_ACCEPT_RETRY_S, self._listen)
                return
            self._transport.accepting()
            slot = self._transport.admit()
            if slot is None:
                conn.close()
                continue
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn, addr, slot))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _connect(self, conn: socket.socket, addr: Any, slot: _Slot) -> None:
        assert self._loop is not None and self._owner.server is not None
        factory = self._transport.protocol_factory(self._owner.server, slot)
        peer = _peer_text(addr)
        try:
            if self._ssl_context is None:
                await self._loop.connect_accepted_socket(factory, conn)
            else:
                deadline = self._loop.time() + self._transport.header_timeout
                tls = await self._speaks_tls(conn)
                if tls is None:
                    raise TimeoutError(f"no byte within {self._transport.header_timeout:g} s")
                if not tls:
                    slot.release()
                    self._transport.faults.report("plain HTTP on the https port", peer,
                                                  f"port {self._port} speaks HTTPS only; answered 400 in plain text")
                    return
                await self._loop.connect_accepted_socket(
                    factory, conn, ssl=self._ssl_context,
                    ssl_handshake_timeout=max(0.1, deadline - self._loop.time()))
        except asyncio.CancelledError:
            conn.close()
            slot.release()
            raise
        except ssl.SSLError as exc:
            slot.release()
            if exc.reason == "HTTP_REQUEST":
                self._transport.faults.report("plain HTTP on the https port", peer,
                                              f"port {self._port} speaks HTTPS only; closed")
            else:
                self._transport.faults.report("TLS handshake failed", peer, _one_line(str(exc)))
        except (OSError, TimeoutError) as exc:
            slot.release()
            what = "TLS handshake timeout" if isinstance(exc, (ConnectionAbortedError, TimeoutError)) else \
                "connection error"
            self._transport.faults.report(what, peer, _one_line(f"{type(exc).__name__}: {exc}"))
        finally:
            self._transport.connected()

    async def _speaks_tls(self, conn: socket.socket) -> bool | None:
        """Wait (``header_timeout``) for the client's first byte and look at it without taking it: True for a
        TLS record, None when nothing came (the caller closes it as a handshake timeout). A plain HTTP
        request is answered with a plain-text 400 that says what to check (as nginx does) and closed (False),
        so a device given http:// for an https port fails at once with the reason instead of retrying."""
        assert self._loop is not None
        readable = self._loop.create_future()
        fd = conn.fileno()
        self._loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            async with asyncio.timeout(self._transport.header_timeout):
                await readable
        except TimeoutError:
            readable = None  # type: ignore[assignment]
        finally:
            self._loop.remove_reader(fd)
        if readable is None:
            conn.close()
            return None
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        if not first or first == b"\x16" or not first.isalpha():  # 0x16: a TLS handshake record
            return True
        body = PLAIN_HTTP_ON_HTTPS.format(port=self._port).encode()
        try:
            conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):  # what the client sent, taken so that the close is not a reset
                pass
        except OSError:  # BlockingIOError: the rest of the request is still on its way; the close may reset it
            pass
        conn.close()
        return False

    async def stop(self) -> None:
        self._stopped = True
        if self._loop is not None:
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            if not self._paused:
                self._loop.remove_reader(self._sock.fileno())
            for task in list(self._handshakes):
                task.cancel()
        self._sock.close()
        await super().stop()

