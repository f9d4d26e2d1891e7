"""The HTTP side of the FL server: aiohttp endpoints over :class:`~pyflclient.server.rounds.Rounds`.

Every request body is read by :class:`~pyflclient.server.transport.Transport` (size
bound, time bound; HTTP 413/408 otherwise), verified as the round's FlatBuffer before
any field is read (``RequestError`` otherwise), and only then handed to the round rules. The content type is ignored
(the stock client misspells it). Protocol-level refusals travel as HTTP 200 with a
``retcode`` in the body, as the r1.6 client expects. One :class:`ServerCore` listens
on ``server_num`` consecutive ports that share one state (ELB clients pick a random
one per request), over HTTPS when a certificate is configured; the sockets, their
deadlines and the connection cap are the transport's (``transport.py``).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Awaitable, Callable

from aiohttp import web

from pyflclient.wire import protocol
from pyflclient.wire.protocol import (
    GetModelRequest, GetModelResponse, ProtocolError, ResponseCode, StartFLJobRequest, StartFLJobResponse,
    UpdateModelRequest, UpdateModelResponse, now_ms,
)
from pyflclient.server.async_rounds import AsyncRounds
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.config import ServerConfig
from pyflclient.server.rounds import IterationResult, Rounds
from pyflclient.server.store import MemoryStore, Model, StateStore, StoreUnavailable
from pyflclient.server.transport import BodyRefused, ListenSite, Transport

__all__ = ["ServerCore", "build_app"]

log = logging.getLogger(__name__)

_OCTETS = "application/octet-stream"


def _reply(message: object) -> web.Response:
    if isinstance(message, str):  # the plain-text state replies of the protocol
        return web.Response(text=message)
    if isinstance(message, bytes):  # a finished buffer (the cipher rounds build theirs directly)
        return web.Response(body=message, content_type=_OCTETS)
    return web.Response(body=message.to_bytes(), content_type=_OCTETS)  # type: ignore[attr-defined]


_Endpoint = Callable[[web.Request], Awaitable[web.Response]]


def _with_body(transport: Transport, answer: Callable[[web.Request, bytes], Awaitable[web.Response]]) -> _Endpoint:
    """An endpoint that first reads the body through the transport (its refusals are the reply)."""

    async def endpoint(request: web.Request) -> web.Response:
        try:
            body = await transport.read_body(request)
        except BodyRefused as refused:
            return refused.response
        return await answer(request, body)

    return endpoint


def _device_round(transport: Transport, parse: Callable[[bytes], object],
                  handle: Callable[..., Awaitable[object]],
                  error: Callable[[ResponseCode, str], object]) -> _Endpoint:
    """One endpoint: bounded read → verify/parse → rules → reply; faults become SystemError replies."""

    async def answer(request: web.Request, body: bytes) -> web.Response:
        try:
            message = parse(body)
        except ProtocolError as exc:
            transport.faults.report("refused body", str(request.remote), f"{request.path}: {exc}")
            return _reply(error(ResponseCode.RequestError, str(exc)))
        try:
            return _reply(await handle(message, remote=request.remote))
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:  # the store logs the outage once; the device retries (r1.6's SystemError path)
            return _reply(error(ResponseCode.SystemError, f"{exc}; retry later"))
        except Exception:  # a server bug must not take the endpoint down; the device retries later
            log.exception("%s: internal error", request.path)
            return _reply(error(ResponseCode.SystemError, "internal server error; see the server log"))

    return _with_body(transport, answer)


def _secure_aggregation_round(transport: Transport, round_name: str, config: ServerConfig, rounds: Rounds
                              ) -> _Endpoint:
    """One cipher round: verified body → the encrypt type's handler when its mode answers this round
    (pairwise masking), else a RequestError reply."""
    request_table, response_table = protocol.SECURE_AGGREGATION_ROUNDS[round_name]
    handle = rounds.mode.endpoints().get(round_name)
    disabled = (f"secure aggregation is not enabled on this server (encrypt_type={config.encrypt_type}); "
                f"/{round_name} is a round of pairwise masking (docs/secure-aggregation.md)")

    def refusal(why: str, iteration: int, code: ResponseCode = ResponseCode.RequestError) -> web.Response:
        return _reply(protocol.secure_aggregation_refusal(response_table, why, iteration,
                                                          str(now_ms() + config.retry_interval), retcode=code))

    async def answer(request: web.Request, body: bytes) -> web.Response:
        try:
            message = protocol.read_cipher(body, request_table)
        except ProtocolError as exc:
            transport.faults.report("refused body", str(request.remote), f"{request.path}: {exc}")
            return refusal(str(exc) if handle is not None else f"{exc}; and {disabled}", (await rounds.view()).iteration)
        if handle is None:
            return refusal(disabled, (await rounds.view()).iteration)
        try:
            return _reply(await handle(message))
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:  # the store logs the outage once; the device retries
            return refusal(f"{exc}; retry later", 0, ResponseCode.SystemError)
        except Exception:  # a server bug must not take the endpoint down; the device retries later
            log.exception("%s: internal error", request.path)
            return refusal("internal server error; see the server log", 0, ResponseCode.SystemError)

    return _with_body(transport, answer)


def build_app(rounds: Rounds | AsyncRounds, transport: Transport) -> web.Application:
    """The aiohttp application of one server process (all its ports share it)."""
    config = rounds.config
    app = web.Application(client_max_size=transport.max_body_bytes)
    if isinstance(rounds, AsyncRounds):  # server_mode ASYNC_FEDERATED_LEARNING: its own device rounds
        for name, (parse, handle, error) in rounds.device_rounds().items():
            app.router.add_post(f"/{name}", _device_round(transport, parse, handle, error))
        return app
    app.router.add_post("/startFLJob", _device_round(
        transport, StartFLJobRequest.from_bytes, rounds.start_fl_job,  # type: ignore[arg-type]
        lambda code, why: StartFLJobResponse(code, why, timestamp=str(now_ms()))))
    app.router.add_post("/updateModel", _device_round(
        transport, UpdateModelRequest.from_bytes, rounds.update_model,  # type: ignore[arg-type]
        lambda code, why: UpdateModelResponse(code, why, timestamp=str(now_ms()))))
    app.router.add_post("/getModel", _device_round(
        transport, GetModelRequest.from_bytes, rounds.get_model,  # type: ignore[arg-type]
        lambda code, why: GetModelResponse(code, why, timestamp=str(now_ms()))))
    for round_name in protocol.SECURE_AGGREGATION_ROUNDS:
        app.router.add_post(f"/{round_name}", _secure_aggregation_round(transport, round_name, config, rounds))
    return app


def _bind(host: str, port: int, count: int) -> list[socket.socket]:
    """Listening sockets on ``count`` consecutive ports from ``port`` (0: find a free run)."""
    def bind_run(base: int) -> list[socket.socket]:
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, p))
                s.listen(1024)
                s.setblocking(False)
        except OSError:
            for s in socks:
                s.close()
            raise
        return socks

    if port:
        try:
            return bind_run(port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {host}:{port}..{port + count - 1} ({exc.strerror}); "
                                     f"choose another fl_server_port") from None
    last: OSError | None = None
    for _ in range(50):
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        probe.bind((host, 0))
        base = probe.getsockname()[1]
        probe.close()
        if base + count - 1 > 65535:
            continue
        try:
            return bind_run(base)
        except OSError as exc:
            last = exc
    raise OSError(f"no run of {count} free consecutive ports on {host}: {last}")


class ServerCore:
    """The core of one server process: the rules, the store and the HTTP sites, on the running event loop.

    :class:`pyflclient.Server` runs one in a thread for Python callers; ``pyflclient server`` runs
    one on the main thread."""

    def __init__(self, config: ServerConfig, model: Model, *, store: StateStore | None = None,
                 on_iteration: Callable[[IterationResult], None] | None = None):
        self.config = config
        self.checkpoints = Checkpoints(config.checkpoint_dir) if config.checkpoint_dir else None
        rules = AsyncRounds if config.server_mode == ASYNC_SERVER_MODE else Rounds
        self.rounds = rules(config, store or _store_of(config), model, self.checkpoints, on_iteration=on_iteration)
        #: the sockets' policy: timeouts, body bound, connection cap, client-fault log
        self.transport = Transport(config, model, masked=self.rounds.mode.MASKED,
                                   control_variate=self.rounds.control_variates)
        self.ports: list[int] = []
        self._runner: web.AppRunner | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.config.ssl_cert else "http"

    @property
    def urls(self) -> list[str]:
        host = self.config.fl_server_ip
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return [f"{self.scheme}://{host}:{p}" for p in self.ports]

    async def start(self) -> list[int]:
        """Resume/begin the job and listen; returns the ports."""
        await self.rounds.begin()
        ctx = None
        if self.config.ssl_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.config.ssl_cert, self.config.ssl_key)
        socks = _bind(self.config.fl_server_ip, self.config.fl_server_port, self.config.server_num)
        self._runner = web.AppRunner(build_app(self.rounds, self.transport), access_log=None, handle_signals=False)
        await self._runner.setup()
        for sock in socks:
            await ListenSite(self._runner, sock, self.transport, ssl_context=ctx).start()
        self.ports = [s.getsockname()[1] for s in socks]
        log.info("FL server listening on %s (%d iterations, threshold %d, %s)", ", ".join(self.urls),
                 self.config.fl_iteration_num, self.config.start_fl_job_threshold, self.config.fl_name)
        return self.ports

    async def stop(self) -> None:
        self.rounds.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.transport.close()
        if isinstance(self.rounds, AsyncRounds):
            await self.rounds.shared.aclose()
        await self.rounds.store.aclose()


def _store_of(config: ServerConfig) -> StateStore:
    """The state of the job: in Redis with ``distributed_cache_address`` (several processes, one job), else here."""
    if config.distributed_cache_address is None:
        return MemoryStore()
    from pyflclient.server.redis_store import RedisStore  # needs the redis extra

    return RedisStore(config.distributed_cache_address, fl_name=config.fl_name)
