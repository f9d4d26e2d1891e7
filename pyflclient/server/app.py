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
from typing import Any, Awaitable, Callable

from aiohttp import web

from pyflclient.wire import protocol
from pyflclient.wire.protocol import (
    GetModelRequest, GetModelResponse, ProtocolError, PushMetricsRequest, PushMetricsResponse, ResponseCode,
    StartFLJobRequest, StartFLJobResponse, UpdateModelRequest, UpdateModelResponse, now_ms,
)
from pyflclient.server.async_rounds import AsyncRounds
from pyflclient.server.asynchrony import ASYNC_SERVER_MODE
from pyflclient.server import metrics as watch
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.config import ServerConfig
from pyflclient.server.guard import RequestGuard
from pyflclient.server.rounds import IterationResult, Rounds
from pyflclient.server.store import MemoryStore, Model, StateStore, StoreUnavailable
from pyflclient.server.transport import BodyRefused, ListenSite, Transport

__all__ = ["ServerCore", "build_app"]

log = logging.getLogger(__name__)

_OCTETS = "application/octet-stream"
#: the request's key for the fl_id of its parsed message (kept for Traffic's per-device sizes)
_FL_ID: Any = web.RequestKey("pyflclient.fl_id", str) if hasattr(web, "RequestKey") else "pyflclient.fl_id"


def _reply(message: object) -> web.Response:
    watch.note_reply(message)  # the retcode, for /metrics
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
        response = await answer(request, body)
        sent = response.body
        transport.traffic.record(request.path.lstrip("/"), len(body),
                                 len(sent) if isinstance(sent, (bytes, bytearray)) else response.content_length or 0,
                                 request.get(_FL_ID))
        return response

    return endpoint


def _device_round(transport: Transport, parse: Callable[[bytes], object],
                  handle: Callable[..., Awaitable[object]],
                  error: Callable[[ResponseCode, str], object],
                  check: Callable[[object, str | None], Awaitable[str | None]] | None = None) -> _Endpoint:
    """One endpoint: bounded read → verify/parse → guard (``check``: a RequestError reason or None) → rules →
    reply; faults become SystemError replies."""

    async def answer(request: web.Request, body: bytes) -> web.Response:
        try:
            message = parse(body)
        except ProtocolError as exc:
            transport.faults.report("refused body", str(request.remote), f"{request.path}: {exc}")
            return _reply(error(ResponseCode.RequestError, str(exc)))
        if transport.traffic.per_device:  # the simulated clock reads a device's counted sizes
            request[_FL_ID] = fl_id = getattr(message, "fl_id", None)
            transport.traffic.received(request.path.lstrip("/"), fl_id, len(body))
        try:
            if check is not None:
                problem = await check(message, request.remote)
                if problem is not None:
                    return _reply(error(ResponseCode.RequestError, problem))
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


def build_app(rounds: Rounds | AsyncRounds, transport: Transport, guard: RequestGuard | None = None,
              metrics: watch.ServerMetrics | None = None) -> web.Application:
    """The aiohttp application of one server process (all its ports share it); ``metrics`` observes
    its device endpoints (the watch routes are added by :class:`ServerCore`)."""
    config = rounds.config
    guard = guard or RequestGuard(config, transport.faults)
    app = web.Application(client_max_size=transport.max_body_bytes)
    if isinstance(rounds, AsyncRounds):  # server_mode ASYNC_FEDERATED_LEARNING: its own device rounds
        checks = {"startFLJob": guard.start_fl_job}
        for name, (parse, handle, error) in rounds.device_rounds().items():
            app.router.add_post(f"/{name}", _device_round(transport, parse, handle, error,
                                                          checks.get(name)))  # type: ignore[arg-type]
        return app
    parse_upload = UpdateModelRequest.from_bytes
    if metrics is not None:
        endpoints = {"startFLJob", "updateModel", "getModel", "pushMetrics", *protocol.SECURE_AGGREGATION_ROUNDS}
        app.middlewares.append(watch.observe_requests(metrics, endpoints))
        parse_upload = watch.timed_decode(metrics, parse_upload)  # type: ignore[assignment]
    app.router.add_post("/startFLJob", _device_round(
        transport, StartFLJobRequest.from_bytes, rounds.start_fl_job,  # type: ignore[arg-type]
        lambda code, why: StartFLJobResponse(code, why, timestamp=str(now_ms())), guard.start_fl_job))  # type: ignore[arg-type]
    app.router.add_post("/updateModel", _device_round(
        transport, parse_upload, rounds.update_model,  # type: ignore[arg-type]
        lambda code, why: UpdateModelResponse(code, why, timestamp=str(now_ms())), guard.update_model))  # type: ignore[arg-type]
    app.router.add_post("/getModel", _device_round(
        transport, GetModelRequest.from_bytes, rounds.get_model,  # type: ignore[arg-type]
        lambda code, why: GetModelResponse(code, why, timestamp=str(now_ms())), guard.get_model))  # type: ignore[arg-type]
    for round_name in protocol.SECURE_AGGREGATION_ROUNDS:
        app.router.add_post(f"/{round_name}", _secure_aggregation_round(transport, round_name, config, rounds))

    async def push(req: PushMetricsRequest, *, remote: str | None = None) -> PushMetricsResponse:
        return await watch.push_metrics(rounds.store, metrics, req)

    app.router.add_post("/pushMetrics", _device_round(  # r1.6's endpoint of its RequestPushMetrics
        transport, PushMetricsRequest.from_bytes, push, lambda code, why: PushMetricsResponse(code)))
    if rounds.simulated is not None:
        _add_simulated_clock(app, rounds)
    return app


def _add_simulated_clock(app: web.Application, rounds: Rounds) -> None:
    """``/simulatedClock``, the simulation harness's view of the simulated clock (not a device round; see
    docs/devices.md): ``GET [?after=k]`` the running iteration and when it opened (held until an iteration
    after ``k`` is open), ``POST {"iteration", "askers", "offline"}`` how many of the simulation's devices
    ask in it (the others are offline and do not ask)."""

    async def state(request: web.Request) -> web.Response:
        after = request.query.get("after")
        try:
            k = None if after is None else int(after)
        except ValueError:
            return web.json_response({"error": f"after must be an iteration number, got {after!r}"}, status=400)
        return web.json_response(await rounds.simulated_state(k))

    async def census(request: web.Request) -> web.Response:
        try:
            doc = await request.json()
            iteration, askers, offline = (int(doc[k]) for k in ("iteration", "askers", "offline"))
            if min(iteration, askers, offline) < 0:
                raise ValueError("negative")
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"expected {{\"iteration\", \"askers\", \"offline\"}} as numbers "
                                               f">= 0 ({type(exc).__name__}: {exc})"}, status=400)
        await rounds.simulated_census(iteration, askers, offline)
        return web.json_response(await rounds.simulated_state())

    app.router.add_get("/simulatedClock", state)
    app.router.add_post("/simulatedClock", census)


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
        checkpoints = watch.ObservedCheckpoints(config.checkpoint_dir) if config.checkpoint_dir else None
        self.checkpoints: Checkpoints | None = checkpoints
        #: the process's counters and the dashboard's history (None with metrics=off)
        self.metrics = watch.ServerMetrics(config, checkpoints) if config.metrics == "on" else None
        store = store or _store_of(config)
        if self.metrics is not None:
            if checkpoints is not None:
                checkpoints.metrics = self.metrics
            store = watch.ObservedStore(store, self.metrics)  # type: ignore[assignment]
            on_iteration = self._observed(on_iteration)
        rules = AsyncRounds if config.server_mode == ASYNC_SERVER_MODE else Rounds
        self.rounds = rules(config, store, model, self.checkpoints, on_iteration=on_iteration)
        self._watch_tasks: set[asyncio.Task[None]] = set()
        #: the sockets' policy: timeouts, body bound, connection cap, client-fault log
        self.transport = Transport(config, model, masked=self.rounds.mode.MASKED,
                                   control_variate=self.rounds.control_variates, traffic=self.rounds.traffic)
        #: the checks before the round's rules: fl_name, data_size, the device's signature (pki_verify)
        self.guard = RequestGuard(config, self.transport.faults)
        self.ports: list[int] = []
        self.watch_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._watch_runner: web.AppRunner | None = None

    def _observed(self, then: Callable[[IterationResult], None] | None) -> Callable[[IterationResult], None]:
        """The iteration callback with the metrics first: its line, and the previous model's device reports
        settled into device_metrics.jsonl (its devices have moved on to this one)."""
        metrics = self.metrics
        assert metrics is not None

        def observed(result: IterationResult) -> None:
            metrics.iteration_finished(result)
            task = asyncio.ensure_future(metrics.settle_device_summary(self.rounds.store, result.iteration - 1))
            self._watch_tasks.add(task)
            task.add_done_callback(self._watch_tasks.discard)
            if then is not None:
                then(result)

        return observed

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
        app = build_app(self.rounds, self.transport, self.guard, self.metrics)
        watch_app = None
        if self.metrics is not None:
            from pyflclient.server.dashboard import add_watch_routes

            watch_app = app if not self.config.metrics_port else web.Application()
            add_watch_routes(watch_app, self.config, self.rounds.store, self.metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        for sock in socks:
            await ListenSite(self._runner, sock, self.transport, ssl_context=ctx).start()
        self.ports = [s.getsockname()[1] for s in socks]
        if self.metrics is not None:
            self.metrics.urls = self.urls
            self.watch_url = self.urls[0] + "/"
            if watch_app is not app and watch_app is not None:  # metrics_port: an aiohttp site of its own
                host = self.config.metrics_ip or self.config.fl_server_ip
                self._watch_runner = web.AppRunner(watch_app, access_log=None, handle_signals=False)
                await self._watch_runner.setup()
                await web.TCPSite(self._watch_runner, host, self.config.metrics_port, ssl_context=ctx).start()
                shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
                self.watch_url = f"{self.scheme}://{shown}:{self.config.metrics_port}/"
            self._watch_tasks.add(asyncio.ensure_future(watch.announce(self.rounds.store, self.metrics)))
        log.info("FL server listening on %s (%d iterations, threshold %d, %s)", ", ".join(self.urls),
                 self.config.fl_iteration_num, self.config.start_fl_job_threshold, self.config.fl_name)
        return self.ports

    async def stop(self) -> None:
        self.rounds.close()
        if self.metrics is not None and self.ports:  # the final model's device reports: its devices are done
            try:
                if (await self.rounds.view()).finished:
                    await self.metrics.settle_device_summary(self.rounds.store, await self.rounds.latest_iteration())
            except StoreUnavailable:
                pass
        for task in list(self._watch_tasks):
            task.cancel()
        self._watch_tasks.clear()
        if self._watch_runner is not None:
            await self._watch_runner.cleanup()
            self._watch_runner = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.transport.close()
        if isinstance(self.rounds, AsyncRounds):
            await self.rounds.shared.aclose()
        await self.guard.aclose()
        await self.rounds.store.aclose()


def _store_of(config: ServerConfig) -> StateStore:
    """The state of the job: in Redis with ``distributed_cache_address`` (several processes, one job), else here."""
    if config.distributed_cache_address is None:
        return MemoryStore()
    from pyflclient.server.redis_store import RedisStore  # needs the redis extra

    return RedisStore(config.distributed_cache_address, fl_name=config.fl_name)
