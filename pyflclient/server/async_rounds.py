"""The asynchronous server mode (``server_mode`` ASYNC_FEDERATED_LEARNING): FedAsync and FedBuff over r1.6's
async tables.

There are no iterations with windows here, only *versions* of the global model: version 0
is the starting model, and each new global model is the next version (``iteration`` on the
wire). The job ends after ``fl_iteration_num`` versions. The rounds:

* **startFLJob** admits a device while fewer than ``async_concurrency`` devices are training
  (a seat is taken at admission and given back at the device's upload, or
  ``update_model_time_window`` ms after the admission, so a device that vanished frees it);
  the admitted device gets the plan (``server_mode`` tells it to run its asynchronous loop)
  and the newest model, ``iteration`` = its version. Otherwise ``OutOfTime`` with
  ``next_req_time`` = now + ``retry_interval``. Under a clock that plans (the simulated clock),
  seats go by a seeded draw among the waiting devices instead, whose startFLJob is held until
  it is drawn (:meth:`AsyncRounds._draw_seats`).
* **asyncUpdateModel** (``RequestAsyncUpdateModel``: the version trained on as
  ``iteration``, ``data_size``, the trained weights × ``data_size``) is checked (names,
  sizes, finite values, ``1 ≤ data_size ≤ max_data_size``, a version not from the future);
  an upload whose staleness ``τ = version − iteration`` is above ``max_staleness`` is refused
  with ``OutOfTime`` and the reason. An accepted one is mixed in at once (FedAsync) or joins
  the buffer (FedBuff), whose K-th upload makes the next version
  (:mod:`~pyflclient.server.asynchrony` has the maths). The reply's ``iteration`` is the
  server's version after it.
* **asyncGetModel** answers the newest model and its version at once (so does getModel).

Determinism. What the server mixes never depends on the order in which the uploads of one
version arrived: FedBuff's buffer is handed to the aggregator keyed ``(iteration trained
on, fl_id, n-th upload of that device on that version)`` (zero-padded, so the aggregator's key
order is that order; the same weights sent again are refused as a duplicate), and every sum
runs in float64. FedAsync's version *is* one upload, so on the wall clock its sequence is the
uploads' arrival sequence; under a clock that plans (:class:`Clock`, the one seam of time: with
``device_profiles`` the simulated clock of :mod:`~pyflclient.server.async_clock`) the uploads are
taken in the order of their planned arrival, ``(planned time, iteration trained on, fl_id)``,
whatever the host does (docs/async.md, "Determinism").

State and durability (nothing acknowledged is lost). Version *v* is published in the
:class:`~pyflclient.server.store.StateStore` as iteration *v* (model and the aggregator's
state), so the memory store and a Redis group hold versions as they hold iterations; the
seats, the buffer and the one-writer lock are :mod:`~pyflclient.server.async_state`'s (in this
process, or in the group's Redis). With ``checkpoint_dir`` every version is checkpointed
before it is served. A buffered FedBuff upload is kept before its SUCCEED: in Redis for a
group, else in ``checkpoint_dir/async_buffer/`` (fsynced, atomically renamed); a restarted
server resumes at the newest version with its buffer. Seats are not kept over a restart of a
lone process: a device that loses its seat simply uploads (an upload needs no seat).

Results: every version is one line of ``metrics.jsonl`` (with its uploads' staleness);
:meth:`AsyncRounds.results` gives the staleness histogram and the devices' idle time (from
an upload, or the first ask, to the next admission).
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from pyflclient.server.admission import draw_order
from pyflclient.server.async_clock import async_clock_of
from pyflclient.server.async_state import AsyncShared, MemorySeats, RedisSeats
from pyflclient.server.asynchrony import FEDBUFF, fedasync_mix, rebased_upload, staleness
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.config import ServerConfig
from pyflclient.server.round_modes import round_mode
from pyflclient.server.rounds import AGGREGATOR_STATE, IterationResult, Rounds
from pyflclient.server.store import IterationView, Model, StateStore, Upload
from pyflclient.server.strategies import aggregator
from pyflclient.server.traffic import Traffic
from pyflclient.server.strategies.base import Aggregator, DeviceUpload
from pyflclient.wire import protocol
from pyflclient.wire.protocol import (
    PLAIN_TEXT_JOB_FINISHED, AsyncGetModelRequest, AsyncGetModelResponse, AsyncUpdateModelRequest,
    AsyncUpdateModelResponse, FLPlan, GetModelRequest, GetModelResponse, ResponseCode, StartFLJobRequest,
    StartFLJobResponse,
)

__all__ = ["AsyncRounds", "Clock", "WallClock", "BUFFER_FOLDER"]

log = logging.getLogger(__name__)

#: the buffered FedBuff uploads, one file each, under checkpoint_dir
BUFFER_FOLDER = "async_buffer"
#: the middle of a returning device's key in the plan: after any upload planned at the same time
_RETURNING = sys.maxsize
#: under a planning clock, the longest a startFLJob waits for its seat (wall s; the device's HTTP timeout is 60 s):
#: then it is told to ask again at once
HOLD_S = 20.0


class Clock(Protocol):
    """Where the asynchronous rounds read the time, and the order in which they take the uploads: the seam
    of the simulated clock (:class:`~pyflclient.server.async_clock.SimulatedAsyncClock` with ``device_profiles``,
    else :class:`WallClock`).

    A clock that *plans* (``upload_ms`` not None) makes the order of the uploads its own: an upload is
    taken only when its planned time is the earliest of the devices training (ties: the version trained
    on, then fl_id); an earlier-planned device still training holds the later ones' replies, and a
    device that vanishes stops holding them when its seat's lease (update_model_time_window, wall time)
    ends. Then FedAsync's sequence, and so every version, depends on the plan and not on the host."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch (simulated ones for a simulated clock)."""

    def upload_ms(self, fl_id: str, data_size: int, admitted_ms: int) -> int | None:
        """When the upload of ``fl_id``, admitted at ``admitted_ms`` (this clock's time), is planned to
        arrive; None: take it when it comes."""

    def advance(self, to_ms: int) -> None:
        """The rounds took an upload planned at ``to_ms``: this clock's time is at least that now."""

    def refusal(self, fl_id: str) -> str | None:
        """Why the upload of ``fl_id`` that arrived does not count on this clock (its device went offline
        before it), or None."""

    #: True for a clock that plans (``upload_ms`` gives times): seats then go by a seeded draw (AsyncRounds)
    PLANS: bool

    def offline(self, fl_id: str, at_ms: int) -> str | None:
        """Why ``fl_id`` cannot be admitted at ``at_ms`` on this clock (it is not online then), or None."""

    def online_from(self, fl_id: str, at_ms: int) -> int | None:
        """The first time ≥ ``at_ms`` at which ``fl_id`` is online on this clock (None: never again)."""

    def hours(self, at_ms: int) -> float | None:
        """Simulated hours since the job's start at ``at_ms`` (None on the wall clock)."""


class WallClock:
    """The machine's clock: no plan, uploads are taken as they come."""

    def now_ms(self) -> int:
        return protocol.now_ms()

    def upload_ms(self, fl_id: str, data_size: int, admitted_ms: int) -> int | None:
        return None

    def advance(self, to_ms: int) -> None:
        pass

    def refusal(self, fl_id: str) -> str | None:
        return None

    PLANS = False

    def offline(self, fl_id: str, at_ms: int) -> str | None:
        return None

    def online_from(self, fl_id: str, at_ms: int) -> int | None:
        return at_ms

    def hours(self, at_ms: int) -> float | None:
        return None


@dataclass(frozen=True)
class _Buffered:
    """One FedBuff upload waiting in the buffer of ``generation`` (the version it arrived at)."""

    generation: int
    fl_id: str
    iteration: int
    data_size: int
    weights: Mapping[str, np.ndarray]  # × data_size, as uploaded
    #: this device's how-many-th upload trained on ``iteration`` in this buffer (a fast device trains again
    #: on the same version while the buffer fills)
    seq: int = 0

    @staticmethod
    def prefix(iteration: int, fl_id: str) -> str:
        return f"{iteration:010d}\t{fl_id}\t"

    @property
    def key(self) -> str:
        """The aggregator's key: its sort order is (iteration trained on, fl_id, seq) ("\\t" sorts below any
        character of an fl_id, so a prefix of an fl_id sorts first, as in a tuple)."""
        return f"{self.prefix(self.iteration, self.fl_id)}{self.seq:06d}"

    def same_upload(self, other: "_Buffered") -> bool:
        """The same weights from the same device and version: a resend, not a new upload."""
        return (other.fl_id, other.iteration, other.data_size) == (self.fl_id, self.iteration, self.data_size) and \
            other.weights.keys() == self.weights.keys() and \
            all(np.array_equal(np.ravel(other.weights[n]), np.ravel(w)) for n, w in self.weights.items())

    def to_bytes(self) -> bytes:
        """An uncompressed ``.npz``: the weights (float32) and (generation, iteration, data_size, seq, fl_id)."""
        buf = io.BytesIO()
        np.savez(buf, **{f"w/{n}": np.asarray(w, np.float32) for n, w in self.weights.items()},
                 meta=np.array([self.generation, self.iteration, self.data_size, self.seq], np.int64),
                 fl_id=np.frombuffer(self.fl_id.encode(), np.uint8))
        return buf.getvalue()

    @classmethod
    def of(cls, data: bytes) -> "_Buffered":
        with np.load(io.BytesIO(data)) as z:
            generation, iteration, data_size, seq = (int(x) for x in z["meta"])
            weights = {k[2:]: z[k] for k in z.files if k.startswith("w/")}
            return cls(generation, bytes(z["fl_id"]).decode(), iteration, data_size, weights, seq)


class AsyncRounds:
    """The asynchronous rules over one process's view of the job (module docstring); the same surface as
    :class:`~pyflclient.server.rounds.Rounds` for :class:`~pyflclient.server.app.ServerCore` and ``Server``."""

    #: one reason for a second upload of one device on one version in the buffer (the Java client reads it)
    DUPLICATE = Upload.DUPLICATE.value

    def __init__(self, config: ServerConfig, store: StateStore, initial_model: Model,
                 checkpoints: Checkpoints | None = None,
                 on_iteration: Callable[[IterationResult], None] | None = None, clock: Clock | None = None,
                 shared: AsyncShared | None = None):
        self.config = config
        self.store = store
        self.checkpoints = checkpoints
        #: the simulated clock of device_profiles (a planning one), else the wall clock
        self.clock: Clock = clock or async_clock_of(config, initial_model) or WallClock()
        self.shapes = {name: tuple(np.shape(a)) for name, a in initial_model.items()}
        self.sizes = {name: int(np.size(a)) for name, a in initial_model.items()}
        self.mode = round_mode(self)
        self.aggregator: Aggregator = aggregator(config.aggregation_type, self.shapes, config.aggregation_params)
        if self.aggregator.plan_extras().control_variate:
            raise ValueError(f"aggregation_type={config.aggregation_type!r}: its control variates need synchronous "
                             f"iterations; not with server_mode {config.server_mode}")
        self.control_variates = False
        #: the body bytes of this process's device exchanges (the transport counts them)
        self.traffic = Traffic()
        self.staleness = staleness(config.staleness_function, config.staleness_a, config.staleness_b)
        self.buffered = config.async_aggregation == FEDBUFF
        if store.shared and self.buffered and checkpoints is None:
            from pyflclient.server.redis_store import KEEP_MODELS

            if config.max_staleness >= KEEP_MODELS:
                raise ValueError(f"max_staleness={config.max_staleness}: a group on Redis keeps the newest "
                                 f"{KEEP_MODELS} versions; FedBuff rebases uploads on the version they trained on, "
                                 f"so set max_staleness < {KEEP_MODELS} or a checkpoint_dir (older versions come "
                                 f"from there)")
        if shared is None:
            shared = MemorySeats() if not store.shared else RedisSeats(config.distributed_cache_address or "",
                                                                       config.fl_name)
        self.shared = shared
        self.plan = FLPlan(iterations=config.fl_iteration_num, epochs=config.client_epoch_num,
                           mini_batch=config.client_batch_size, lr=config.client_learning_rate,
                           fl_name=config.fl_name, server_mode=config.server_mode,
                           encrypt_type=config.encrypt_type, aggregation=config.aggregation_row.wire,
                           aggregation_weights=self.aggregator.plan_extras().aggregation_weights,
                           **self.mode.plan_fields())
        self._initial = initial_model
        self._on_iteration = on_iteration
        self._idle_since: dict[str, int] = {}  # fl_id -> since when it waits for a seat (this process's view)
        self._idle_ms: dict[str, int] = collections.defaultdict(int)
        self._staleness: collections.Counter[int] = collections.Counter()
        self._version_began_ms = 0
        self._replies: tuple[int, StartFLJobResponse, AsyncGetModelResponse] | None = None
        #: under a planning clock: fl_id -> ((planned upload ms, version trained on, fl_id), admitted at (wall ms));
        #: a device back from an upload: ((its next possible upload's ms, _RETURNING, fl_id), wall ms) until it asks
        self._planned: dict[str, tuple[tuple[int, int, str], int]] = {}
        self._order = asyncio.Condition()
        #: under a planning clock: a device back from an upload -> (that upload's time, the version after it)
        self._returning: dict[str, tuple[int, int]] = {}
        self._asked: set[str] = set()  # every fl_id that asked (device_count's barrier)
        self._last_new_ask_ms = protocol.now_ms()
        self._arrived: set[str] = set()  # planned uploads (and returning askers) here, waiting for their turn
        #: a clock that plans: seats go by a seeded draw among the waiting devices (see :meth:`_draw_seats`)
        self._planning = bool(getattr(self.clock, "PLANS", False))
        self._seated: set[str] = set()  # under a planning clock: drawn or training (a seat each)
        self._sizes: dict[str, int] = {}  # fl_id -> data_size of its last ask
        self._waiters: dict[str, asyncio.Future[None]] = {}  # held startFLJob requests, woken when drawn
        self._draws = 0  # draws so far: the draw's stream is (device_seed, this count)
        self._taking = 0  # uploads being taken now (from their turn to their draw)
        self.held_get_models = 0
        self.held_start_fl_jobs = 0

    # -- life cycle -------------------------------------------------------------------

    async def begin(self) -> int:
        """Resume after the newest checkpoint (with its buffer) if there is one, or join the group's job;
        returns the next version."""
        version, model, state, finished = 0, self._initial, {}, False
        if self.checkpoints is not None:
            found = self.checkpoints.latest()
            if found is not None:
                version, model = found
                state = self.checkpoints.state(version)
                finished = self.checkpoints.job_finished(version)
                log.info("resuming after version %d from %s", version, self.checkpoints.folder)
            if not self.shared.shared:
                for key, data in self._read_buffer(version).items():
                    await self.shared.buffer_add(key, data)
        finished = finished or version >= self.config.fl_iteration_num
        await self.store.begin(version + 1, model, finished=finished, state=state)
        self._version_began_ms = self.clock.now_ms()
        return (await self.store.latest())[0] + 1

    def close(self) -> None:
        """Nothing runs in the background here."""

    # -- questions (the surface of Rounds) --------------------------------------------------

    async def view(self) -> IterationView:
        """The version being built: seats taken as ``admitted``, buffered uploads as ``uploaded``."""
        view = await self.store.view()
        return IterationView(view.iteration, view.finished, view.finished, await self.shared.seats(),
                             len(await self.shared.buffer()), None, None)

    async def latest_iteration(self) -> int:
        return (await self.store.latest())[0]

    async def model(self, iteration: int | None = None) -> Model | None:
        """The model of version ``iteration`` (None: the newest), from the store or its checkpoint."""
        if iteration is None:
            return (await self.store.latest())[1]
        found = await self.store.model(iteration)
        if found is None and self.checkpoints is not None:
            found = self.checkpoints.served(iteration)
        if found is None and iteration == 0:  # the starting model: never a checkpoint
            found = self._initial
        return found

    async def results(self) -> dict[str, Any]:
        """The asynchronous run as this process saw it: the staleness histogram of the uploads it accepted
        ({τ: count}) and the devices' idle time (ms from an upload, or the first ask, to the next
        admission), on the clock."""
        idle = dict(sorted(self._idle_ms.items()))
        return {"staleness_histogram": dict(sorted(self._staleness.items())), "idle_ms": idle,
                "idle_ms_total": sum(idle.values())}

    # -- the rounds ---------------------------------------------------------------------

    def device_rounds(self) -> dict[str, tuple[Callable[[bytes], object], Callable[..., Any],
                                               Callable[[ResponseCode, str], object]]]:
        """Round name → (parse, handle, error reply) of every device round of this mode."""
        now = self.clock.now_ms
        return {
            "startFLJob": (StartFLJobRequest.from_bytes, self.start_fl_job,
                           lambda code, why: StartFLJobResponse(code, why, timestamp=str(now()))),
            AsyncUpdateModelRequest.ROUND: (AsyncUpdateModelRequest.from_bytes, self.async_update_model,
                                            lambda code, why: AsyncUpdateModelResponse(code, why)),
            AsyncGetModelRequest.ROUND: (AsyncGetModelRequest.from_bytes, self.async_get_model,
                                         lambda code, why: AsyncGetModelResponse(code, why)),
            GetModelRequest.ROUND: (GetModelRequest.from_bytes, self.get_model,
                                    lambda code, why: GetModelResponse(code, why, timestamp=str(now()))),
        }

    async def start_fl_job(self, req: StartFLJobRequest, *, remote: str | None = None) -> StartFLJobResponse | str:
        now = self.clock.now_ms()
        version, finished = await self._newest()
        if finished:
            return PLAIN_TEXT_JOB_FINISHED
        if not req.fl_id:
            return StartFLJobResponse(ResponseCode.RequestError, "fl_id is empty", version, timestamp=str(now))
        if not 1 <= req.data_size <= self.config.max_data_size:
            return StartFLJobResponse(ResponseCode.RequestError, f"data_size must be in 1..max_data_size "
                                      f"{self.config.max_data_size}, got {req.data_size}", version,
                                      timestamp=str(now))
        if req.fl_id not in self._returning:  # a drawn device's wait ended at its draw
            self._idle_since.setdefault(req.fl_id, now)
        if req.fl_id not in self._asked:
            self._asked.add(req.fl_id)
            self._last_new_ask_ms = protocol.now_ms()
            async with self._order:  # the first asks may be complete: held uploads look again
                self._order.notify_all()
        if self._planning and req.fl_id not in self._returning:  # a seat only by the draw: held until drawn
            held = await self._hold(req.fl_id, req.data_size)
            if held is not None:
                return held
            version = (await self._newest())[0]
        back = self._returning.get(req.fl_id)  # back from an upload: it asks at that upload's time, and gets
        asks_at, reply_version = back if back is not None else (now, version)  # the version of that time
        away = self.clock.offline(req.fl_id, asks_at)
        if away is not None:  # not online on the simulated clock: as a synchronous round, it is not admitted
            await self._unreserve(req.fl_id)
            return StartFLJobResponse(ResponseCode.OutOfTime, away, version, False,
                                      str(protocol.now_ms() + self.config.retry_interval), self.plan,
                                      timestamp=str(now))
        if not await self.shared.take_seat(req.fl_id, protocol.now_ms(), self.config.async_concurrency,
                                           self.config.update_model_time_window):  # leases end on the wall
            await self._unreserve(req.fl_id)
            return StartFLJobResponse(ResponseCode.OutOfTime, f"async_concurrency {self.config.async_concurrency} "
                                      f"devices are training", version, False,
                                      str(now + self.config.retry_interval), self.plan, timestamp=str(now))
        admitted = await self._plan(req.fl_id, req.data_size, reply_version, asks_at)
        since = self._idle_since.pop(req.fl_id, None)
        if since is not None:
            self._idle_ms[req.fl_id] += max(0, admitted - since)
        return (await self._replies_of(reply_version))[0]

    async def async_update_model(self, req: AsyncUpdateModelRequest, *, remote: str | None = None
                                 ) -> AsyncUpdateModelResponse | str:
        version, finished = await self._newest()
        if finished:
            return PLAIN_TEXT_JOB_FINISHED
        problem = self.check_weights(req.weights)
        if problem is None and not 1 <= req.data_size <= self.config.max_data_size:
            problem = f"data_size must be in 1..max_data_size {self.config.max_data_size}, got {req.data_size}"
        if problem is None and not 0 <= req.iteration <= version:
            problem = f"iteration {req.iteration} is no version of this job (the newest is {version})"
        if problem is not None:
            log.info("asyncUpdateModel of %r from %s refused: %s", req.fl_id, remote, problem)
            return AsyncUpdateModelResponse(ResponseCode.RequestError, problem, version)
        await self._turn(req.fl_id)
        self._taking += 1  # no draw from a held startFLJob until its draw is made (_draw_seats)
        try:
            planned = self._planned.get(req.fl_id)
            if planned is not None and not (await self._newest())[1]:  # after the job's end no upload moves the clock
                self.clock.advance(planned[0][0])  # its time has come: the version it makes is of this time
            try:
                return await self._take(req)
            finally:
                await self._turn_done(req.fl_id, req.data_size)
        finally:
            self._taking -= 1

    async def _take(self, req: AsyncUpdateModelRequest) -> AsyncUpdateModelResponse | str:
        """A checked upload: refused as too stale or a duplicate, or mixed in / buffered."""
        await self.shared.free_seat(req.fl_id)
        async with self.shared.writer():  # one version at a time in the whole job
            version, finished = await self._newest()
            if finished:
                return PLAIN_TEXT_JOB_FINISHED
            tau = version - req.iteration
            dropped = self.clock.refusal(req.fl_id)
            if dropped is not None:
                self._idle_since.setdefault(req.fl_id, self.clock.now_ms())
                log.info("asyncUpdateModel of %r refused: %s", req.fl_id, dropped)
                return AsyncUpdateModelResponse(ResponseCode.OutOfTime, dropped, version)
            if tau > self.config.max_staleness:
                self._idle_since.setdefault(req.fl_id, self.clock.now_ms())
                why = (f"staleness {tau} (trained on version {req.iteration}, the server is at {version}) is "
                       f"above max_staleness {self.config.max_staleness}")
                log.info("asyncUpdateModel of %r refused: %s", req.fl_id, why)
                return AsyncUpdateModelResponse(ResponseCode.OutOfTime, why, version)
            entry = _Buffered(version, req.fl_id, req.iteration, req.data_size, req.weights)
            if self.buffered:
                held = {k: _Buffered.of(v) for k, v in (await self.shared.buffer()).items()}
                mine = [e for k, e in held.items() if k.startswith(entry.prefix(entry.iteration, entry.fl_id))]
                if any(entry.same_upload(e) for e in mine):  # sent again (an outage): the buffer holds it
                    return AsyncUpdateModelResponse(ResponseCode.RequestError, f"{req.fl_id!r}: {self.DUPLICATE} "
                                                    f"{req.iteration}", version)
                entry = dataclasses.replace(entry, seq=len(mine))
                data = entry.to_bytes()
                if not self.shared.shared:  # a lone process: on disk before the SUCCEED (a group: in Redis)
                    await self._run(self._keep, entry, data)
                await self.shared.buffer_add(entry.key, data)
                held[entry.key] = entry
                if len(held) >= self.config.fedbuff_buffer_size:
                    await self._next_version(version, held)
            else:
                await self._next_version(version, {entry.key: entry})
            self._staleness[tau] += 1
            self._idle_since.setdefault(req.fl_id, self.clock.now_ms())
            return AsyncUpdateModelResponse(ResponseCode.SUCCEED, "", (await self._newest())[0])

    async def _turn(self, fl_id: str) -> None:
        """Under a planning clock: wait until ``fl_id``'s planned upload is the earliest of the devices training
        (see :class:`Clock`). Returns at once for an unplanned upload."""
        if fl_id not in self._planned:
            return
        lease = self.config.update_model_time_window
        async with self._order:
            self._arrived.add(fl_id)  # here: never given up, until its upload is taken (or its ask answered)
            await self._wait_turn(fl_id, lease)

    async def _wait_turn(self, fl_id: str, lease: int) -> None:
        """The wait of :meth:`_turn`, under its condition."""
        while True:
            if (await self._newest())[1]:
                return  # the job is over: nothing waits for a plan any more
            wall = protocol.now_ms()
            for gone in [f for f, (_, at) in self._planned.items()
                         if f != fl_id and f not in self._arrived and at + lease <= wall]:
                log.info("planned upload of %r given up: no upload within update_model_time_window", gone)
                del self._planned[gone]
                self._returning.pop(gone, None)
                self._seated.discard(gone)
            if fl_id not in self._planned or (self._everyone_asked(wall) and
                                              self._planned[fl_id][0] == min(k for k, _ in self._planned.values())):
                return  # its turn (or its own plan ran out meanwhile: taken as it comes)
            try:  # woken by each taken upload; the timeout re-checks the leases
                await asyncio.wait_for(self._order.wait(), timeout=self.config.retry_interval / 1000)
            except asyncio.TimeoutError:
                pass

    def _everyone_asked(self, wall: int) -> bool:
        """The first asks are in: ``device_count`` devices have asked (or none new for ``admission_window_ms`` of
        wall time), so that every first ask is placed at the job's start, not wherever the host put it."""
        count = self.config.device_count
        return (count <= 0 or len(self._asked) >= count
                or wall - self._last_new_ask_ms >= self.config.admission_window_ms)

    async def _turn_done(self, fl_id: str, data_size: int) -> None:
        """``fl_id``'s planned upload is taken (or refused) at its time ``t``; the device comes back at ``t``, to
        be given the version of that time. Until it has asked again it is *reserved* at its next possible
        upload (``upload_ms`` from ``t``: :data:`_RETURNING`), so that no upload planned after that is taken
        before its own next upload is planned; the uploads planned in between go on (a lookahead)."""
        self._arrived.discard(fl_id)
        version, finished = await self._newest()
        # from here to the draw nothing yields: no other upload is taken, no other draw made, in between
        self._seated.discard(fl_id)
        found = self._planned.pop(fl_id, None)
        if found is None:
            return
        self._sizes[fl_id] = data_size
        if not finished:
            self._draw_now(found[0][0], version)  # its seat, and any other free one, drawn at its upload's time
        async with self._order:
            self._order.notify_all()

    def _grant(self, fl_id: str, at: int, version: int) -> None:
        """``fl_id`` drawn for a seat at ``at`` (simulated): it is admitted at ``at`` to ``version`` when it asks,
        and until then *reserved* at its next possible upload (``upload_ms`` from ``at``: :data:`_RETURNING`),
        so that no upload planned after that is taken before its own upload is planned; the uploads planned in
        between go on (a lookahead)."""
        following = self.clock.upload_ms(fl_id, self._sizes.get(fl_id, 1), at)
        since = self._idle_since.pop(fl_id, None)  # its wait for a seat ends here, whenever it asks in wall time
        if since is not None:
            self._idle_ms[fl_id] += max(0, at - since)
        self._seated.add(fl_id)
        self._returning[fl_id] = (at, version)
        self._planned[fl_id] = ((at if following is None else following, _RETURNING, fl_id), protocol.now_ms())
        waiter = self._waiters.pop(fl_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # only the drawn device is woken

    async def _draw_seats(self) -> None:
        """:meth:`_draw_now` at the clock's now and the newest version, from a held startFLJob (the job's start,
        a device's first ask, a seat whose lease ended): never while an upload is being taken (it would see the
        clock at that upload's time and the version before it; that upload's own draw comes after it). Between
        uploads it sees what the last upload's draw saw, and draws no one unless a device asked for the first
        time or a lease ended (both the host's timing)."""
        if self._taking:
            return
        version, finished = await self._newest()
        if not finished:
            self._draw_now(self.clock.now_ms(), version)

    def _draw_now(self, at: int, version: int) -> None:
        """Under a planning clock, give the free seats (``async_concurrency`` minus the devices drawn or
        training) at simulated time ``at`` to ``version`` by a seeded draw: a uniform permutation
        of the sorted fl_ids of the waiting devices (every device that asked and holds no seat, the one whose
        upload just freed its seat included) online at ``at``, from the generator of
        (``device_seed``, the number of draws so far) — :func:`~pyflclient.server.admission.draw_order`,
        the synchronous draw. The first of it take the seats. When no waiting device is online at ``at`` and
        none trains (nothing else would move the clock), the seat goes to the first to come online (ties: the
        draw). Nothing waits for the first asks: no draw before ``device_count`` devices asked."""
        if not self._planning or not self._everyone_asked(protocol.now_ms()):
            return
        free = self.config.async_concurrency - len(self._seated)
        if free <= 0:
            return
        waiting = sorted(self._asked - self._seated)
        online = [f for f in waiting if self.clock.offline(f, at) is None]
        if not online and not self._planned:
            comes = {f: self.clock.online_from(f, at) for f in waiting}
            comes = {f: t for f, t in comes.items() if t is not None}
            if comes:
                at = min(comes.values())
                online = [f for f in waiting if comes.get(f) == at]
                log.debug("no waiting device online and none training: the seat goes to the first to come online, "
                          "at %d ms: %s", at, online)
        if not online:
            return
        order = draw_order(self.config.device_seed, self._draws, online)
        log.debug("draw %d at %d ms (version %d): %d seat(s), %s online of %d waiting -> %s", self._draws, at,
                  version, free, online, len(waiting), order[:free])
        self._draws += 1
        for fl_id in order[:free]:
            self._grant(fl_id, at, version)

    async def _hold(self, fl_id: str, data_size: int) -> StartFLJobResponse | str | None:
        """Under a planning clock: hold ``fl_id``'s startFLJob until the draw gives it a seat (None: go on to
        its admission), the job ends (the finished reply) or :data:`HOLD_S` passed (``OutOfTime``, ask again
        at once: the HTTP request must not time out)."""
        self._sizes[fl_id] = data_size
        give_up = protocol.now_ms() + int(HOLD_S * 1000)
        loop = asyncio.get_running_loop()
        self.held_start_fl_jobs += 1
        try:
            while fl_id not in self._returning:
                version, finished = await self._newest()
                if finished:
                    return PLAIN_TEXT_JOB_FINISHED
                await self._draw_seats()
                if fl_id in self._returning:
                    break
                left = give_up - protocol.now_ms()
                if left <= 0:
                    now = self.clock.now_ms()
                    return StartFLJobResponse(ResponseCode.OutOfTime, f"waiting for one of async_concurrency "
                                              f"{self.config.async_concurrency} seats (a seeded draw)", version,
                                              False, str(protocol.now_ms()), self.plan, timestamp=str(now))
                waiter = self._waiters.get(fl_id)
                if waiter is None or waiter.done():
                    waiter = self._waiters[fl_id] = loop.create_future()
                try:  # woken by its draw; the timeout looks again (the first asks' window, leases)
                    await asyncio.wait_for(asyncio.shield(waiter), timeout=min(left / 1000, 1.0))
                except asyncio.TimeoutError:
                    pass
            return None
        finally:
            self.held_start_fl_jobs -= 1
            if fl_id not in self._returning:
                self._waiters.pop(fl_id, None)

    def _wake_all(self) -> None:
        """The job is over: every held startFLJob is answered."""
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _plan(self, fl_id: str, data_size: int, version: int, now: int) -> int:
        """Plan the upload of an admitted device (a planning clock); returns its admission time: its return
        time when it comes back from an upload, else the clock's now."""
        self._arrived.discard(fl_id)
        self._returning.pop(fl_id, None)
        reserved = self._planned.pop(fl_id, None)
        admitted = now
        planned = self.clock.upload_ms(fl_id, data_size, admitted)
        if planned is not None:
            self._planned[fl_id] = ((planned, version, fl_id), protocol.now_ms())
        if reserved is not None:
            async with self._order:
                self._order.notify_all()
        return admitted

    async def _unreserve(self, fl_id: str) -> None:
        """A returning device got no seat: it waits like the others and holds no upload back."""
        self._arrived.discard(fl_id)
        self._returning.pop(fl_id, None)
        self._seated.discard(fl_id)
        found = self._planned.get(fl_id)
        if found is not None and found[0][1] == _RETURNING:
            del self._planned[fl_id]
            async with self._order:
                self._order.notify_all()

    async def async_get_model(self, req: AsyncGetModelRequest, *, remote: str | None = None) -> AsyncGetModelResponse:
        return (await self._replies_of((await self._newest())[0]))[1]

    async def get_model(self, req: GetModelRequest, *, remote: str | None = None) -> GetModelResponse:
        reply = (await self._replies_of((await self._newest())[0]))[1]
        return GetModelResponse(ResponseCode.SUCCEED, "", reply.iteration, reply.weights, str(self.clock.now_ms()))

    check_weights = Rounds.check_weights  # names, sizes, finite values: the synchronous rule, not a copy of it

    # -- versions -----------------------------------------------------------------------

    async def _newest(self) -> tuple[int, bool]:
        """(newest version, the job is finished), from the store."""
        view = await self.store.view()
        return (await self.store.latest())[0], view.finished

    async def _replies_of(self, version: int) -> tuple[StartFLJobResponse, AsyncGetModelResponse]:
        """The replies carrying the model of ``version``, built once per version."""
        if self._replies is None or self._replies[0] != version:
            model = await self.model(version)
            assert model is not None
            now = str(self.clock.now_ms())
            self._replies = (version, StartFLJobResponse(ResponseCode.SUCCEED, "", version, True, now, self.plan,
                                                         model, now),
                             AsyncGetModelResponse(ResponseCode.SUCCEED, "", version, model))
        return self._replies[1], self._replies[2]

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` off the event loop (float64 sums, file writes)."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _next_version(self, version: int, entries: Mapping[str, _Buffered]) -> None:
        """Mix ``entries`` (the buffer of ``version``) into version + 1; checkpoint it, then publish it."""
        current = await self.model(version)
        assert current is not None
        stored = await self.store.state(version)
        previous_state = {k[len(AGGREGATOR_STATE):]: v for k, v in stored.items() if k.startswith(AGGREGATOR_STATE)}
        trained_on = {}
        for key, e in entries.items():
            model = await self.model(e.iteration)
            if model is None:
                raise RuntimeError(f"the model of version {e.iteration} is gone (no checkpoint_dir?)")
            trained_on[key] = model
        model, state = await self._run(self._mix, version, current, entries, trained_on, previous_state)
        new = version + 1
        finished = new >= self.config.fl_iteration_num
        full_state = {AGGREGATOR_STATE + k: v for k, v in state.items()}
        if self.checkpoints is not None:
            await self._run(self.checkpoints.save, new, model, full_state, finished)
        await self.store.close(new)
        await self.store.publish(new, model, finished, full_state)
        await self.shared.buffer_clear()
        if self.checkpoints is not None and not self.shared.shared:
            await self._run(self._forget_buffer, new)
        now = self.clock.now_ms()
        taus = sorted(version - e.iteration for e in entries.values())
        result = IterationResult(new, await self.shared.seats(), len(entries),
                                 sum(e.data_size for e in entries.values()), True,
                                 (now - self._version_began_ms) / 1000, now, finished)
        self._version_began_ms = now
        if self.checkpoints is not None:
            try:
                hours = self.clock.hours(now)
                self.checkpoints.append_metrics({**result.as_dict(), "staleness": taus,
                                                 **({} if hours is None else {"sim_end_h": round(hours, 6)})})
            except OSError:
                log.exception("version %d: cannot append to %s", new, self.checkpoints.metrics_path)
        log.info("version %d/%d: %d upload(s), staleness %s%s", new, self.config.fl_iteration_num, len(entries),
                 taus, "; job finished" if finished else "")
        if finished:
            self._wake_all()
        if self._on_iteration is not None:
            self._on_iteration(result)

    def _mix(self, version: int, current: Model, entries: Mapping[str, _Buffered], trained_on: Mapping[str, Model],
             state: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Version + 1 and the aggregator's state after it (asynchrony's module docstring)."""
        if not self.buffered:
            (e,) = entries.values()
            alpha_t = self.config.fedasync_alpha * self.staleness.weight(version - e.iteration)
            trained = {n: np.asarray(w, np.float64) / e.data_size for n, w in e.weights.items()}
            return fedasync_mix(current, trained, alpha_t), {}
        uploads = {key: DeviceUpload(e.data_size, rebased_upload(current, trained_on[key], e.weights, e.data_size,
                                                                 self.staleness.weight(version - e.iteration)))
                   for key, e in entries.items()}
        self.aggregator.load(state)
        model = self.aggregator.aggregate(current, uploads, version + 1)
        return model, self.aggregator.state()

    # -- a lone process's buffer on disk -----------------------------------------------------

    def _buffer_dir(self) -> Path:
        assert self.checkpoints is not None
        return self.checkpoints.folder / BUFFER_FOLDER

    def _keep(self, e: _Buffered, data: bytes) -> None:
        """Write a buffered upload (fsynced, renamed into place) before it is acknowledged."""
        if self.checkpoints is None:
            return
        folder = self._buffer_dir()
        folder.mkdir(exist_ok=True)
        final = folder / f"v{e.generation:06d}_{e.iteration:06d}_{e.fl_id.encode().hex()}_{e.seq}.npz"
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _forget_buffer(self, version: int) -> None:
        """Delete the buffered uploads of versions before ``version`` (they are in its checkpoint)."""
        folder = self._buffer_dir()
        if not folder.is_dir():
            return
        for path in folder.glob("v*.npz"):
            if int(path.name[1:7]) < version:
                path.unlink(missing_ok=True)

    def _read_buffer(self, version: int) -> dict[str, bytes]:
        """The buffer of the checkpointed ``version`` (older generations were aggregated: deleted)."""
        self._forget_buffer(version)
        folder = self._buffer_dir()
        out = {}
        for path in sorted(folder.glob("v*.npz")) if folder.is_dir() else []:
            data = path.read_bytes()
            out[_Buffered.of(data).key] = data
        if out:
            log.info("resuming with %d buffered upload(s) of version %d", len(out), version)
        return out
