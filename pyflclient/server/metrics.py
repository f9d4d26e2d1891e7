"""Watching a running job: Prometheus metrics, the devices' pushMetrics, and the dashboard's numbers.

Everything here observes the round from outside its rules: :class:`ObservedStore` wraps the
state store (admissions, uploads and their refusals by the store's own outcome, closes,
publications, store errors), :class:`ObservedCheckpoints` times the checkpoint writes, and
the HTTP layer (:func:`observe_requests`) counts each device request by endpoint and
retcode with its latency and bytes. :class:`ServerMetrics` holds them in a
``prometheus_client`` registry of its own (one per server process; ``/metrics`` renders it)
and keeps the per-iteration history the dashboard draws.

r1.6's ``/pushMetrics`` (``RequestPushMetrics {loss, accuracy}``) is served by
:func:`push_metrics`: the table names neither the device nor the iteration, so a push is
filed under the newest published model, the one a device evaluates right after its
getModel. The pushes live in the store (a Redis group shares them) and are summarised per
iteration as the seed's figure does: AVG, TOP5 (mean of the 5 best), LOW5 (mean of the 5
worst) and the count, in ``/metrics``, on the dashboard and in ``device_metrics.jsonl``
beside the checkpoints.

One process of a group reports its own counters (requests, bytes, refusals it answered);
the iteration's admitted and uploaded devices and the device reports are the group's,
read from the store.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from pyflclient.client.results import summarize
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.config import ServerConfig
from pyflclient.server.store import Admission, ClosedIteration, IterationView, StateStore, StoreUnavailable, Upload
from pyflclient.wire.protocol import PushMetricsRequest, PushMetricsResponse, ResponseCode

__all__ = ["ServerMetrics", "ObservedStore", "ObservedCheckpoints", "DeviceSummary", "push_metrics",
           "observe_requests", "DEVICE_METRICS_FILE", "PHASES"]

log = logging.getLogger(__name__)

#: beside metrics.jsonl: one line per iteration whose model the devices reported on
DEVICE_METRICS_FILE = "device_metrics.jsonl"
#: what an iteration is doing, as /metrics and the dashboard name it
PHASES = ("waiting", "admission", "upload", "aggregating", "finished")
#: how often a process tells the group (through the store) that it serves, and what it counted
ANNOUNCE_INTERVAL_S = 2.0
#: latency buckets (s): a held getModel waits up to get_model_hold_ms
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WORK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

#: the store's verdict on the request being answered (set by ObservedStore, read by the HTTP layer)
_refusal: contextvars.ContextVar[str | None] = contextvars.ContextVar("pyflclient_refusal", default=None)
_retcode: contextvars.ContextVar[str | None] = contextvars.ContextVar("pyflclient_retcode", default=None)


@dataclass(frozen=True)
class DeviceSummary:
    """The pushes of one iteration's model: AVG / TOP5 / LOW5 accuracy, mean loss, and how many."""

    iteration: int
    count: int
    avg: float
    top5: float
    low5: float
    loss: float

    @classmethod
    def of(cls, iteration: int, pushes: list[tuple[float, float]]) -> "DeviceSummary":
        avg, top5, low5 = summarize([acc for _, acc in pushes])
        loss = math.fsum(loss for loss, _ in pushes) / len(pushes) if pushes else math.nan
        return cls(iteration, len(pushes), avg, top5, low5, loss)

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {"iteration": self.iteration, "count": self.count, "accuracy_avg": num(self.avg),
                "accuracy_top5": num(self.top5), "accuracy_low5": num(self.low5), "loss_avg": num(self.loss)}


@dataclass
class _Timings:
    """Wall-clock marks of one iteration seen by this process (epoch ms)."""

    admission_began: int | None = None
    upload_began: int | None = None
    closed: int | None = None
    checkpoint_s: float = 0.0


@dataclass
class _History:
    """What the dashboard draws: finished iterations (metrics.jsonl's lines plus timings)."""

    iterations: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[int, DeviceSummary] = field(default_factory=dict)  # settled summaries only


class ServerMetrics:
    """The counters of one server process, in a registry of its own, and the dashboard's history."""

    def __init__(self, config: ServerConfig, checkpoints: Checkpoints | None = None):
        self.config = config
        self.checkpoints = checkpoints
        self.process = f"{socket.gethostname()}:{os.getpid()}:{id(self) & 0xffff:04x}"
        self.started_ms = int(time.time() * 1000)
        self.urls: list[str] = []
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.iteration = Gauge("pyflclient_iteration", "the iteration now running (the last one once finished)",
                               registry=r)
        self.phase = Gauge("pyflclient_phase", "1 for the phase the current iteration is in", ["phase"], registry=r)
        self.iteration_admitted = Gauge("pyflclient_iteration_admitted_devices",
                                        "devices admitted to the current iteration (the group's, from the store)",
                                        registry=r)
        self.iteration_uploaded = Gauge("pyflclient_iteration_uploaded_devices",
                                        "uploads of the current iteration (the group's, from the store)", registry=r)
        self.threshold = Gauge("pyflclient_update_model_threshold_devices", "uploads that finish an iteration",
                               registry=r)
        self.admitted = Counter("pyflclient_devices_admitted", "admissions this process granted", registry=r)
        self.uploaded = Counter("pyflclient_devices_uploaded", "uploads this process accepted", registry=r)
        self.refused = Counter("pyflclient_devices_refused", "startFLJob / updateModel refusals by reason",
                               ["round", "reason"], registry=r)
        self.late = Counter("pyflclient_uploads_late", "uploads for an iteration that was over or not current",
                            registry=r)
        self.requests = Counter("pyflclient_requests", "device requests by endpoint and retcode",
                                ["endpoint", "retcode"], registry=r)
        self.latency = Histogram("pyflclient_request_duration_seconds", "device request latency by endpoint",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.bytes_in = Counter("pyflclient_received_bytes", "request body bytes by endpoint", ["endpoint"],
                                registry=r)
        self.bytes_out = Counter("pyflclient_sent_bytes", "response body bytes by endpoint", ["endpoint"],
                                 registry=r)
        self.decode = Histogram("pyflclient_upload_decode_seconds", "verifying and decoding an updateModel body",
                                buckets=_WORK_BUCKETS, registry=r)
        self.aggregation = Histogram("pyflclient_aggregation_seconds", "from an iteration's close to its "
                                     "publication, less its checkpoint write", buckets=_WORK_BUCKETS, registry=r)
        self.checkpoint_writes = Counter("pyflclient_checkpoint_writes", "checkpoints written", registry=r)
        self.checkpoint_seconds = Histogram("pyflclient_checkpoint_write_seconds", "writing one checkpoint",
                                            buckets=_WORK_BUCKETS, registry=r)
        self.store_errors = Counter("pyflclient_store_errors", "store calls that failed (Redis unreachable)",
                                    registry=r)
        self.iterations = Counter("pyflclient_iterations", "iterations this process finished", ["valid"],
                                  registry=r)
        self.iteration_seconds = Gauge("pyflclient_last_iteration_duration_seconds",
                                       "the last finished iteration, from its first admission", registry=r)
        self.pushes = Counter("pyflclient_device_reports_received", "pushMetrics this process accepted",
                              registry=r)
        self.device_iteration = Gauge("pyflclient_device_metrics_iteration",
                                      "the iteration whose model the device_* gauges are about", registry=r)
        self.device_count = Gauge("pyflclient_device_reports", "devices that reported on that model", registry=r)
        self.device_accuracy = Gauge("pyflclient_device_accuracy_ratio", "device-reported accuracy of that model",
                                     ["stat"], registry=r)
        self.device_loss = Gauge("pyflclient_device_loss", "mean device-reported loss of that model", registry=r)
        self.threshold.set(config.update_model_threshold)
        self._timings: dict[int, _Timings] = {}
        self.history = _History()
        if checkpoints is not None:
            self.history.iterations = checkpoints.read_metrics()
            for line in _read_jsonl(checkpoints.folder / DEVICE_METRICS_FILE):
                try:
                    self.history.devices[int(line["iteration"])] = DeviceSummary(
                        int(line["iteration"]), int(line["count"]), *(_num(line.get(k)) for k in (
                            "accuracy_avg", "accuracy_top5", "accuracy_low5", "loss_avg")))
                except (KeyError, TypeError, ValueError):
                    log.warning("%s: skipping an unreadable line", checkpoints.folder / DEVICE_METRICS_FILE)

    # -- what the observers report ------------------------------------------------------

    def timings(self, iteration: int) -> _Timings:
        found = self._timings.get(iteration)
        if found is None:
            found = self._timings[iteration] = _Timings()
            for old in [k for k in self._timings if k < iteration - 4]:
                del self._timings[old]
        return found

    def iteration_finished(self, result: Any) -> dict[str, Any]:
        """A finished iteration (``IterationResult``): counters, and its line in the dashboard's history."""
        self.iterations.labels(valid=str(bool(result.valid)).lower()).inc()
        self.iteration_seconds.set(result.seconds)
        t = self.timings(result.iteration)
        line = dict(result.as_dict())
        if t.admission_began and t.upload_began:
            line["admission_seconds"] = round((t.upload_began - t.admission_began) / 1000, 3)
        if t.upload_began and t.closed:
            line["upload_seconds"] = round((t.closed - t.upload_began) / 1000, 3)
        if t.closed:
            aggregation = max(0.0, (result.finished_at_ms - t.closed) / 1000 - t.checkpoint_s)
            line["aggregation_seconds"] = round(aggregation, 4)
            line["checkpoint_seconds"] = round(t.checkpoint_s, 4)
            self.aggregation.observe(aggregation)
        self.history.iterations.append(line)
        return line

    # -- the group's numbers, read from the store --------------------------------------

    async def refresh(self, store: StateStore) -> dict[str, Any]:
        """Read the current iteration and the newest device reports from the store into the gauges;
        returns the view as a dict (the dashboard's "now")."""
        view = await store.view()
        phase = phase_of(view)
        self.iteration.set(view.iteration)
        for name in PHASES:
            self.phase.labels(phase=name).set(1.0 if name == phase else 0.0)
        self.iteration_admitted.set(view.admitted)
        self.iteration_uploaded.set(view.uploaded)
        summary = await self.newest_device_summary(store, view)
        if summary is not None:
            self.device_iteration.set(summary.iteration)
            self.device_count.set(summary.count)
            for stat, value in (("avg", summary.avg), ("top5", summary.top5), ("low5", summary.low5)):
                self.device_accuracy.labels(stat=stat).set(value)
            self.device_loss.set(summary.loss)
        return {"iteration": view.iteration, "phase": phase, "finished": view.finished, "admitted": view.admitted,
                "uploaded": view.uploaded, "start_window_began_ms": view.start_window_began_ms,
                "update_window_began_ms": view.update_window_began_ms}

    async def newest_device_summary(self, store: StateStore, view: IterationView) -> DeviceSummary | None:
        """The summary of the newest model any device reported on (None: no report yet)."""
        newest = view.iteration if view.finished else view.iteration - 1
        for iteration in (newest, newest - 1):
            if iteration < 0:
                continue
            pushes = await store.device_metrics(iteration)
            if pushes:
                return DeviceSummary.of(iteration, pushes)
        return None

    async def device_summaries(self, store: StateStore, view: IterationView) -> list[DeviceSummary]:
        """Every iteration's summary: settled ones from memory, the two newest from the store."""
        newest = view.iteration if view.finished else view.iteration - 1
        out = dict(self.history.devices)
        for iteration in range(max(0, newest - 1), newest + 1):
            pushes = await store.device_metrics(iteration)
            if pushes:
                out[iteration] = DeviceSummary.of(iteration, pushes)
        return [out[k] for k in sorted(out)]

    async def settle_device_summary(self, store: StateStore, iteration: int) -> None:
        """Write the summary of ``iteration``'s model to device_metrics.jsonl (its devices have moved on)."""
        if iteration in self.history.devices:
            return
        pushes = await store.device_metrics(iteration)
        if not pushes:
            return
        summary = DeviceSummary.of(iteration, pushes)
        self.history.devices[iteration] = summary
        if self.checkpoints is not None:
            try:
                with (self.checkpoints.folder / DEVICE_METRICS_FILE).open("a") as f:
                    f.write(json.dumps(summary.as_dict(), sort_keys=True) + "\n")
            except OSError:
                log.exception("cannot append to %s", self.checkpoints.folder / DEVICE_METRICS_FILE)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def totals(self) -> dict[str, Any]:
        """This process's counters, for the dashboard and the group's process list."""
        def by(metric: Any, label: str) -> dict[str, float]:
            out: dict[str, float] = {}
            for sample in metric.collect()[0].samples:
                if sample.name.endswith("_total"):
                    key = sample.labels.get(label, "")
                    out[key] = out.get(key, 0.0) + sample.value
            return out

        refused: dict[str, float] = {}
        for sample in self.refused.collect()[0].samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['round']}: {sample.labels['reason']}"
                refused[key] = refused.get(key, 0.0) + sample.value
        return {"requests": by(self.requests, "endpoint"), "retcodes": by(self.requests, "retcode"),
                "bytes_in": sum(by(self.bytes_in, "endpoint").values()),
                "bytes_out": sum(by(self.bytes_out, "endpoint").values()),
                "refused": refused, "late": _value(self.late), "admitted": _value(self.admitted),
                "uploaded": _value(self.uploaded), "store_errors": _value(self.store_errors),
                "checkpoint_writes": _value(self.checkpoint_writes), "device_reports": _value(self.pushes)}

    def status(self) -> dict[str, Any]:
        """What this process announces to the group."""
        return {"urls": self.urls, "pid": os.getpid(), "started_ms": self.started_ms,
                "seen_ms": int(time.time() * 1000), **self.totals()}


def _value(counter: Any) -> float:
    return sum(s.value for s in counter.collect()[0].samples if s.name.endswith("_total"))


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _read_jsonl(path: Any) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping an unreadable line", path)
    return out


def phase_of(view: IterationView) -> str:
    """One of :data:`PHASES` for a snapshot of the store."""
    if view.finished:
        return "finished"
    if view.closed:
        return "aggregating"
    if view.update_window_began_ms is not None:
        return "upload"
    if view.start_window_began_ms is not None:
        return "admission"
    return "waiting"


# -- observers around the round's parts ----------------------------------------------------

#: the refusal label of each store outcome
_ADMISSION_REASONS = {Admission.FULL: "threshold_reached", Admission.WINDOW_OVER: "window_over",
                      Admission.ADDRESS_FULL: "address_full", Admission.CLOSED: "iteration_closed"}
_UPLOAD_REASONS = {Upload.NOT_ADMITTED: "not_admitted", Upload.DUPLICATE: "duplicate",
                   Upload.CLOSED: "iteration_closed"}


class ObservedStore:
    """A :class:`StateStore` seen by :class:`ServerMetrics`: every call is the wrapped store's.

    Admissions and uploads are counted by the store's outcome (so also those a draw grants off
    any request), the outcome of a refusal is left for the HTTP layer to label the reply with,
    closes and publications mark the iteration's timings, and StoreUnavailable is counted."""

    def __init__(self, store: StateStore, metrics: ServerMetrics):
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not asyncio.iscoroutinefunction(value):
            return value

        async def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return await value(*args, **kwargs)
            except StoreUnavailable:
                self._metrics.store_errors.inc()
                raise

        return counted

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except StoreUnavailable:
            self._metrics.store_errors.inc()
            raise

    async def admit(self, iteration: int, *args: Any, **kwargs: Any) -> tuple[Admission, IterationView]:
        outcome, view = await self._call(self._store.admit, iteration, *args, **kwargs)
        if outcome is Admission.ADMITTED:
            self._metrics.admitted.inc()
            if view.admitted == 1 or self._metrics.timings(view.iteration).admission_began is None:
                self._metrics.timings(view.iteration).admission_began = view.start_window_began_ms
        elif outcome in _ADMISSION_REASONS:
            _refusal.set(_ADMISSION_REASONS[outcome])
        return outcome, view

    async def add_upload(self, iteration: int, *args: Any, **kwargs: Any) -> tuple[Upload, IterationView]:
        outcome, view = await self._call(self._store.add_upload, iteration, *args, **kwargs)
        if outcome is Upload.ACCEPTED:
            self._metrics.uploaded.inc()
            t = self._metrics.timings(view.iteration)
            if t.upload_began is None:
                t.upload_began = view.update_window_began_ms
        else:
            _refusal.set(_UPLOAD_REASONS.get(outcome, outcome.name.lower()))
        return outcome, view

    async def begin_update_window(self, iteration: int, now_ms: int) -> bool:
        began = await self._call(self._store.begin_update_window, iteration, now_ms)
        if began:
            self._metrics.timings(iteration).upload_began = now_ms
        return began

    async def close(self, iteration: int) -> ClosedIteration | None:
        closed = await self._call(self._store.close, iteration)
        if closed is not None:
            t = self._metrics.timings(iteration)
            t.closed = int(time.time() * 1000)
            t.admission_began = t.admission_began or closed.start_window_began_ms
        return closed


class ObservedCheckpoints(Checkpoints):
    """:class:`Checkpoints` whose writes are counted and timed (the aggregation time excludes them)."""

    def __init__(self, folder: Any, metrics: ServerMetrics | None = None):
        super().__init__(folder)
        self.metrics = metrics

    def save(self, iteration: int, model: Mapping[str, Any], state: Mapping[str, Any] | None = None,
             job_finished: bool = False) -> Any:
        began = time.perf_counter()
        path = super().save(iteration, model, state, job_finished)
        if self.metrics is not None:
            seconds = time.perf_counter() - began
            self.metrics.checkpoint_writes.inc()
            self.metrics.checkpoint_seconds.observe(seconds)
            self.metrics.timings(iteration).checkpoint_s += seconds
        return path


# -- the HTTP side ---------------------------------------------------------------------------

def observe_requests(metrics: ServerMetrics, endpoints: set[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: each device request's latency, bytes, endpoint and retcode; refusals
    of startFLJob / updateModel by the store's reason (or by retcode), late uploads."""

    # the labelled children, looked up once (prometheus_client's labels() takes a lock and builds a key)
    per_endpoint = {e: (metrics.latency.labels(e), metrics.bytes_in.labels(e), metrics.bytes_out.labels(e))
                    for e in endpoints}
    requests: dict[tuple[str, str], Any] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        endpoint = request.path[1:]
        children = per_endpoint.get(endpoint)
        if children is None:
            return await handler(request)
        began = time.perf_counter()
        _refusal.set(None)
        _retcode.set(None)
        response = await handler(request)
        latency, bytes_in, bytes_out = children
        latency.observe(time.perf_counter() - began)
        bytes_in.inc(request.content_length or 0)
        body = getattr(response, "body", None)
        bytes_out.inc(len(body) if isinstance(body, (bytes, bytearray)) else 0)
        retcode = _retcode.get() or (f"http_{response.status}" if response.status != 200 else "unknown")
        counter = requests.get((endpoint, retcode))
        if counter is None:
            counter = requests[(endpoint, retcode)] = metrics.requests.labels(endpoint, retcode)
        counter.inc()
        if endpoint in ("startFLJob", "updateModel") and retcode != ResponseCode.SUCCEED.name:
            reason = _refusal.get() or {ResponseCode.RequestError.name: "invalid",
                                        ResponseCode.OutOfTime.name: "out_of_time",
                                        "job_finished": "job_finished"}.get(retcode, retcode.lower())
            metrics.refused.labels(endpoint, reason).inc()
            if endpoint == "updateModel" and (retcode == ResponseCode.OutOfTime.name or reason == "iteration_closed"):
                metrics.late.inc()
        return response

    return middleware


def note_reply(reply: object) -> None:
    """Tell the middleware the retcode of the reply being sent (a plain text: ``job_finished``/``safemode``)."""
    if isinstance(reply, str):
        _retcode.set("job_finished" if "finished" in reply else "safemode")
        return
    if isinstance(reply, (bytes, bytearray)):  # a cipher round's buffer: each of those tables begins with retcode
        reply = _FirstField(bytes(reply))
    code = getattr(reply, "retcode", None)
    if code is not None:
        try:
            _retcode.set(ResponseCode(int(code)).name)
        except ValueError:
            _retcode.set(str(int(code)))


class _FirstField:
    """The ``retcode`` of a finished response buffer whose root table's first field is it (0 when absent)."""

    def __init__(self, buf: bytes):
        from flatbuffers import encode, number_types, table

        try:
            t = table.Table(buf, encode.Get(number_types.UOffsetTFlags.packer_type, buf, 0))
            offset = t.Offset(4)
            self.retcode = t.Get(number_types.Int32Flags, offset + t.Pos) if offset else 0
        except Exception:  # not ours to judge here: the reply is sent as it is
            self.retcode = None


def timed_decode(metrics: ServerMetrics, parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``parse`` with its time observed (the updateModel body's verification and decoding)."""

    def timed(body: bytes) -> Any:
        began = time.perf_counter()
        try:
            return parse(body)
        finally:
            metrics.decode.observe(time.perf_counter() - began)

    return timed


async def push_metrics(store: StateStore, metrics: ServerMetrics | None, req: PushMetricsRequest
                       ) -> PushMetricsResponse:
    """``/pushMetrics``: file the device's (loss, accuracy) under the newest published model.

    A non-finite value, a negative loss or an accuracy outside [0, 1] is a RequestError and
    is not kept (one device must not bend the AVG)."""
    if not (math.isfinite(req.loss) and math.isfinite(req.accuracy) and req.loss >= 0
            and 0 <= req.accuracy <= 1):
        return PushMetricsResponse(ResponseCode.RequestError)
    latest, _ = await store.latest()
    await store.push_device_metrics(latest, req.loss, req.accuracy)
    if metrics is not None:
        metrics.pushes.inc()
    return PushMetricsResponse(ResponseCode.SUCCEED)


async def announce(store: StateStore, metrics: ServerMetrics) -> None:
    """Tell the group this process serves, every :data:`ANNOUNCE_INTERVAL_S` (runs until cancelled)."""
    while True:
        try:
            await store.announce_process(metrics.process, metrics.status())
        except StoreUnavailable:
            pass
        await asyncio.sleep(ANNOUNCE_INTERVAL_S)
