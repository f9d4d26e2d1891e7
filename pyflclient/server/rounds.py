"""The iteration rules of the FL server: admission, uploads, windows, validity, publishing.

This module reads like the "Round semantics" of docs/protocol.md:

* **startFLJob** admits a device while fewer than ``start_fl_job_threshold`` are
  admitted and the ``start_fl_job_time_window`` (begun by the first admission) is
  open; the admitted device gets the plan and the current global model. Nobody
  admitted means no window: an iteration never burns while no device is there.
  With ``admission_policy=sample`` the startFLJob requests of the iteration's first
  ``admission_window_ms`` are held instead, and then ``start_fl_job_threshold`` of
  them are drawn (:mod:`~pyflclient.server.admission`); the others are refused until
  the end of the iteration's windows, and later askers are admitted first-come.
* **updateModel** takes one upload per admitted ``fl_id``; the update window begins
  at the first upload (or when the admission window ends with no upload, so an
  iteration whose devices vanished still ends). At
  ``ceil(start_fl_job_threshold × update_model_ratio)`` uploads the iteration
  finishes with the aggregation of the uploads by the ``aggregation_type``'s
  :class:`~pyflclient.server.strategies.base.Aggregator` (FedAvg by default; every type
  reads them in fl_id order, so the same uploads give the same model whatever their
  order of arrival); when the update window ends first it is *invalid* and keeps the
  previous model; either way it counts. The aggregator's state (momentum, moments,
  control variates) is published with each model and loaded from the newest one before
  the next aggregation, in whichever process of a group does it.
* Finishing writes the checkpoint (model and state), then publishes them (getModel
  answers ``SucNotReady`` until then), then the next iteration begins, or the job ends
  after ``fl_iteration_num``, or earlier by the ``early_stop_type``
  (:mod:`~pyflclient.server.early_stop`).

Update sanity, so that one device cannot steer or block the job on its own:
a ``data_size`` above ``max_data_size`` is refused (FedAvg weights by it); with
``max_update_norm`` an update whose L2 norm ``‖u/data_size − global‖`` exceeds it is
refused or clipped (``update_norm_action``); non-finite values are refused; one
remote address takes at most ``max_admissions_per_address`` seats of an iteration
(0: half of them, loopback exempt, as simulations run every device there).

The ``encrypt_type`` is a :class:`~pyflclient.server.round_modes_base.RoundMode`: with
pairwise masking the uploads are masked and the iteration runs through the cipher phases
of :mod:`~pyflclient.server.secure_aggregation` (keys, shares, uploads, reconstructed
secrets), which decide when it ends and unmask the sum that the aggregator reads; the
rules above about admission still hold, those about update norms cannot (the server
sees no update).

Windows end on asyncio timers, never on a device's next request. The state itself
lives behind :class:`~pyflclient.server.store.StateStore`. When the store is shared
by several server processes (Redis), each process also *follows* it every
:data:`FOLLOW_INTERVAL_S`: it arms the window timers from the begin times in the
store (so a window ends even if the process that began it died), finishes an
iteration whose uploads are all in (its last uploader's process may have died) or
whose closer's lease ran out, and wakes its held getModel requests when another
process published. Duplicated timers are harmless: only one caller gets the close.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import dataclasses
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, TypeVar

import numpy as np

from pyflclient.wire.protocol import (
    PLAIN_TEXT_JOB_FINISHED, FLPlan, GetModelRequest, GetModelResponse, ResponseCode, StartFLJobRequest,
    StartFLJobResponse, UpdateModelRequest, UpdateModelResponse, now_ms,
)
from pyflclient.server.admission import draw_order
from pyflclient.server.checkpoint import Checkpoints, ModelFileError
from pyflclient.server.config import ServerConfig
from pyflclient.server.early_stop import EarlyStop
from pyflclient.server.round_modes import round_mode
from pyflclient.clock import IterationPlan
from pyflclient.server.simulated import SimulatedRounds, clock_of
from pyflclient.server.store import Admission, IterationView, Model, StateStore, StoreUnavailable, Upload
from pyflclient.server.strategies import aggregator
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, PlanExtras, State
from pyflclient.server.faults import ClientFaults
from pyflclient.server.update_bound import UpdateNormBound, sum_of_squares
from pyflclient.server.traffic import Traffic, TrafficCount
from pyflclient.server.codecs import ServerCodec

__all__ = ["Rounds", "IterationResult", "FOLLOW_INTERVAL_S"]

log = logging.getLogger(__name__)

#: the job's state kept with each model: the aggregator's entries and the early stop's, under these prefixes
AGGREGATOR_STATE, EARLY_STOP_STATE = "aggregator/", "early_stop/"
#: how often a process reads a shared store's state (windows, closes, publications of other processes):
#: a held getModel learns of another process's publication within this
FOLLOW_INTERVAL_S = 0.02
T = TypeVar("T")


@dataclass(frozen=True)
class IterationResult:
    """One line of metrics.jsonl."""

    iteration: int
    admitted: int
    uploaded: int
    data_size: int
    valid: bool
    seconds: float
    finished_at_ms: int
    #: the job ended after this iteration (its last one, or an early stop)
    job_finished: bool = False
    #: why the job stopped early (early_stop_type), None otherwise
    early_stop: str | None = None
    #: the body bytes this process received and sent while the iteration was open (pyflclient.server.traffic)
    traffic: TrafficCount = field(default_factory=TrafficCount)
    #: on the simulated clock (device_profiles): simulated start/end and the devices admitted, finished,
    #: late, offline (:meth:`pyflclient.clock.IterationPlan.summary`); None on the wall clock
    simulated: Mapping[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        t = self.traffic
        per_client = max(1, self.admitted)
        out: dict[str, object] = {
            "iteration": self.iteration, "admitted": self.admitted, "uploaded": self.uploaded,
            "data_size": self.data_size, "valid": self.valid, "seconds": round(self.seconds, 3),
            "finished_at_ms": self.finished_at_ms}
        if self.early_stop is not None:
            out["early_stop"] = self.early_stop
        out.update({"requests": t.requests, "bytes_up": t.bytes_up, "bytes_down": t.bytes_down,
                    "bytes_up_per_client": round(t.bytes_up / per_client, 1),
                    "bytes_down_per_client": round(t.bytes_down / per_client, 1),
                    "bytes_by_round": t.as_dict()["by_round"]})
        if self.simulated is not None:
            out.update(self.simulated)
        return out


@dataclass
class _Draw:
    """The startFLJob requests of one iteration held until its draw (admission_policy sample)."""

    iteration: int
    askers: dict[str, tuple[int, str | None]]  # fl_id -> (data_size, remote address), the first ask's
    answers: "asyncio.Future[dict[str, StartFLJobResponse]]"


class Rounds:
    """The server's rules over a store; one instance per server process, shared by all its ports."""

    def __init__(self, config: ServerConfig, store: StateStore, initial_model: Model,
                 checkpoints: Checkpoints | None = None,
                 on_iteration: Callable[[IterationResult], None] | None = None):
        self.config = config
        self.store = store
        #: refused requests as rate-limited INFO lines (one per kind every 10 s, the rest counted)
        self.refusals = ClientFaults(logger=log)
        #: the default bound on an update's norm (None: off, PW_ENCRYPT, or max_update_norm set)
        self.checkpoints = checkpoints
        self.shapes = {name: tuple(np.shape(a)) for name, a in initial_model.items()}
        self.sizes = {name: int(np.size(a)) for name, a in initial_model.items()}
        #: the encrypt type's steps (plan fields, extra rounds, what the aggregator reads)
        self.mode = round_mode(self)
        #: the aggregation type; its state is loaded before each aggregation (off the event loop)
        self.aggregator: Aggregator = aggregator(config.aggregation_type, self.shapes, config.aggregation_params)
        # a second one, on the event loop, answers startFLJob (plan_extras from the newest state) and checks
        # uploads while the first aggregates in a worker thread
        self._replier: Aggregator = aggregator(config.aggregation_type, self.shapes, config.aggregation_params)
        # the type's own upload check, on uploads in the clear (a masked one's values are ring elements)
        self._checks_uploads = type(self.aggregator).check is not Aggregator.check and not self.mode.MASKED
        #: the default bound on an update's norm (None: off, masked uploads, or max_update_norm set)
        self.norm_bound = (UpdateNormBound(config.update_norm_factor) if config.update_norm_factor
                           and not self.mode.MASKED else None)
        #: the type sends devices a control variate (Scaffold's c) and reads theirs back (Δc_i)
        self.control_variates = bool(self._replier.plan_extras().control_variate)
        self._extras: tuple[int, PlanExtras] | None = None  # the replier's extras and the iteration of its state
        self.early_stop = EarlyStop.of(config)
        #: the simulated clock's rounds (device_profiles), None on the wall clock; its origin is now
        clock = clock_of(config, now_ms())
        #: the device exchanges' body bytes (the transport records, finish() takes them per iteration)
        self.traffic = Traffic()
        self.simulated = None if clock is None else SimulatedRounds(config, clock, self.traffic)
        self._initial = initial_model
        self._on_iteration = on_iteration
        #: compressed uploads decoded, the served model encoded (upload_compress_type, download_compress_type)
        self.codec = ServerCodec(config)
        self._timers: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._published: asyncio.Event | None = None  # set (and replaced) each time a model is published
        self.held_get_models = 0  # getModel requests waiting for a model right now
        self.held_start_fl_jobs = 0  # startFLJob requests waiting for the draw (admission_policy sample)
        self._draw: _Draw | None = None  # the running iteration's askers, until its draw
        self._drawn_through = 0  # the newest iteration whose draw is over
        self._scratch: dict[str, np.ndarray] | None = None  # bound_update's buffers (max_update_norm)
        #: the newest SUCCEED replies carrying a model, by what makes them differ: every device of an
        #: iteration gets the same one, whose bytes are built once (their timestamp is the first asker's)
        self._model_reply: tuple[int, GetModelResponse] | None = None
        self._admit_reply: tuple[tuple[int, int], StartFLJobResponse] | None = None
        stop = config.early_stop_row
        #: the plan, built once: every admitted device of the job is told the same
        self.plan = FLPlan(iterations=config.fl_iteration_num, epochs=config.client_epoch_num,
                           mini_batch=config.client_batch_size, lr=config.client_learning_rate,
                           fl_name=config.fl_name, server_mode=config.server_mode,
                           encrypt_type=config.encrypt_type, aggregation=config.aggregation_row.wire,
                           aggregation_weights=self._replier.plan_extras().aggregation_weights,
                           early_stop=None if stop is None else (stop.wire, float(config.early_stop_weight or 0),
                                                                 config.early_stop_rounds),
                           **self.mode.plan_fields())

    # -- life cycle -------------------------------------------------------------------

    async def begin(self) -> int:
        """Start the job, resuming after the newest checkpoint if there is one; returns the first iteration
        to run (``fl_iteration_num + 1`` when the checkpointed job is already finished)."""
        start, model, state = 1, self._initial, {}
        finished = False
        if self.checkpoints is not None:
            found = self.checkpoints.latest()
            if found is not None:
                last, model = found
                self._check_same_model(model, self.checkpoints.path(last))
                state = self.checkpoints.state(last)
                start = last + 1
                finished = self.checkpoints.job_finished(last)
                log.info("resuming after iteration %d from %s", last, self.checkpoints.folder)
        finished = finished or start > self.config.fl_iteration_num
        await self.store.begin(start, model, finished=finished, state=state)
        if self.store.shared:
            self._spawn(self._follow, start)
        return start

    def _check_same_model(self, model: Model, where: object) -> None:
        shapes = {n: tuple(np.shape(a)) for n, a in model.items()}
        if shapes != self.shapes:
            raise ModelFileError(f"{where} holds a different model than the one given (names/shapes "
                             f"{sorted(shapes.items())} vs {sorted(self.shapes.items())}); use another "
                             f"checkpoint_dir or the matching model")

    def close(self) -> None:
        """Cancel the window timers (the server is stopping)."""
        self.refusals.close()
        if self.norm_bound is not None and self.norm_bound.closest:
            log.info("update norm bound: %d update(s) refused; the largest accepted update was %.1f%% of its bound",
                     self.norm_bound.refused, 100 * self.norm_bound.closest)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        if self.simulated is not None:
            self.simulated.close()
        if self._draw is not None and not self._draw.answers.done():
            self._draw.answers.cancel()

    # -- questions --------------------------------------------------------------------

    async def view(self) -> IterationView:
        """A snapshot of the current iteration (admitted, uploaded, windows, finished)."""
        return await self.store.view()

    async def model(self, iteration: int | None = None) -> Model | None:
        """The published model of ``iteration`` (None: the newest), from the store or, once the
        store no longer keeps it, from its checkpoint; None when neither has it."""
        if iteration is None:
            return (await self.store.latest())[1]
        found = await self.store.model(iteration)
        if found is None and self.checkpoints is not None:
            found = self.checkpoints.served(iteration)
        return found

    async def latest_iteration(self) -> int:
        """The iteration of the newest published model (0: the starting model)."""
        return (await self.store.latest())[0]

    # -- the three rounds -------------------------------------------------------------

    async def start_fl_job(self, req: StartFLJobRequest, *, remote: str | None = None) -> StartFLJobResponse | str:
        """The admission rules (:meth:`_start_fl_job`), the reply through the codec: the plan's compression
        fields, the model quantised for a device that decodes it."""
        return self.codec.admit_reply(await self._start_fl_job(req, remote=remote), req.download_compress_types)

    async def _start_fl_job(self, req: StartFLJobRequest, *, remote: str | None = None) -> StartFLJobResponse | str:
        """``remote``: the device's address (aiohttp's ``request.remote``), for max_admissions_per_address."""
        now = now_ms()
        view = await self.store.view()
        if view.finished:
            return PLAIN_TEXT_JOB_FINISHED
        if not req.fl_id:
            return StartFLJobResponse(ResponseCode.RequestError, "fl_id is empty", view.iteration,
                                      timestamp=str(now))
        if req.data_size < 1:
            return self._refuse_job(view, now, f"data_size must be >= 1, got {req.data_size}")
        cfg = self.config
        if req.data_size > cfg.max_data_size:
            self.refusals.report("startFLJob refused (data_size)", str(remote), f"{req.fl_id!r}: data_size "
                                 f"{req.data_size} > max_data_size {cfg.max_data_size}")
            return StartFLJobResponse(ResponseCode.RequestError, f"data_size {req.data_size} is above this "
                                      f"server's max_data_size {cfg.max_data_size}", view.iteration,
                                      timestamp=str(now))
        if self.simulated is not None and not view.closed:
            return await self._simulated_start(view, req.fl_id, req.data_size)
        if cfg.admission_policy == "sample" and not view.closed:
            draw = self._pending_draw(view.iteration)
            if draw is not None:  # held until the draw: answered with the rest of the window's askers
                draw.askers.setdefault(req.fl_id, (req.data_size, remote))
                self.held_start_fl_jobs += 1
                try:
                    answers = await asyncio.shield(draw.answers)
                finally:
                    self.held_start_fl_jobs -= 1
                return answers[req.fl_id]
        return await self._admit(view, req.fl_id, req.data_size, remote, now)

    async def _simulated_start(self, view: IterationView, fl_id: str, data_size: int) -> StartFLJobResponse:
        """startFLJob on the simulated clock (:mod:`~pyflclient.server.simulated`): held until the
        iteration's plan, whose devices are admitted in its order at their simulated ask times."""
        sim = self.simulated
        assert sim is not None
        iteration = view.iteration
        self.held_start_fl_jobs += 1
        try:
            plan = await sim.ask(iteration, fl_id, data_size) or sim.planned(iteration)
        finally:
            self.held_start_fl_jobs -= 1
        assert plan is not None
        if sim.first_to_admit(iteration):  # once per iteration: the planned devices, in the plan's order
            try:
                for d in plan.admitted:
                    await self.store.admit(iteration, d, sim.data_size(iteration, d), plan.asks[d],
                                           self.config.start_fl_job_threshold, self.config.start_fl_job_time_window)
            finally:
                sim.admitted(iteration)
            if plan.admitted:
                self._spawn(self._simulated_watchdog, iteration)
            else:  # nobody to wait for: the iteration ends at its windows' end, invalid
                sim.decide(iteration)
                self._spawn(self.finish, iteration)
        await sim.wait_admitted(iteration)
        view = await self.store.view()
        if view.iteration != iteration or fl_id not in plan.admitted:
            return self._refuse_job(view, now_ms(), sim.refusal(plan, fl_id))
        return await self._admit(view, fl_id, data_size, None, plan.asks[fl_id])

    async def _simulated_watchdog(self, iteration: int) -> None:
        """Decide a simulated iteration whose admitted devices stopped uploading (a device died), then end
        it if its planned uploads stop coming, each after a quiet spell of update_model_time_window wall ms
        (at least 60 s: the devices' training is wall time)."""
        sim = self.simulated
        assert sim is not None
        quiet = max(self.config.update_model_time_window, 60_000) / 1000
        seen = (-1, -1)
        while True:
            view = await self.store.view()
            if view.iteration != iteration or view.closed or view.finished:
                return
            plan = sim.planned(iteration)
            now = (sim.arrived(iteration), view.uploaded)
            if now == seen and plan is not None:
                if not plan.decided:
                    log.warning("iteration %d: %d of %d admitted devices uploaded, none for %.0f s (a device "
                                "stopped?): deciding without the others; the run no longer depends on its seed "
                                "alone", iteration, now[0], len(plan.admitted), quiet)
                    self._simulated_decided(iteration, sim.decide(iteration))
                else:
                    log.warning("iteration %d: no planned upload for %.0f s (a device stopped?): ending it with "
                                "%d uploads; the run no longer depends on its seed alone", iteration, quiet, now[1])
                    await self.finish(iteration)
                    return
            seen = now
            await asyncio.sleep(quiet)

    async def simulated_state(self, after: int | None = None, wait_s: float = 30.0) -> dict[str, object]:
        """The simulated clock as a simulation's devices read it (:meth:`SimulatedRounds.state`); with
        ``after``, held (at most ``wait_s``) until an iteration after it is open or the job is over."""
        sim = self.simulated
        assert sim is not None
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            view = await self.store.view()
            ready = view.finished or (not view.closed and (after is None or view.iteration > after))
            if ready or asyncio.get_running_loop().time() >= deadline:
                return sim.state(view.iteration, view.closed, view.finished)
            await asyncio.sleep(0.02)

    async def simulated_census(self, iteration: int, askers: int, offline: int) -> None:
        """A simulation's devices announce how many of them ask in ``iteration`` (:meth:`SimulatedRounds.census`);
        when none does, the iteration is planned and ends now (invalid, at its windows' end)."""
        sim = self.simulated
        assert sim is not None
        view = await self.store.view()
        if view.finished or view.iteration != iteration or view.closed:
            return
        plan = sim.census(iteration, askers, offline)
        if plan is not None and not plan.admitted and sim.first_to_admit(iteration):
            sim.admitted(iteration)
            sim.decide(iteration)
            self._spawn(self.finish, iteration)

    def _simulated_decided(self, iteration: int, plan: IterationPlan) -> None:
        """A simulated iteration's uploads are decided: with none to take it ends now."""
        if not plan.finished:
            self._spawn(self.finish, iteration)

    async def _admit(self, view: IterationView, fl_id: str, data_size: int, remote: str | None, now: int
                     ) -> StartFLJobResponse:
        """Give ``fl_id`` a seat of ``view.iteration`` if the store and max_admissions_per_address allow."""
        cfg = self.config
        limit = self._address_limit(remote)
        outcome, view = await self.store.admit(view.iteration, fl_id, data_size, now, cfg.start_fl_job_threshold,
                                               cfg.start_fl_job_time_window, remote=remote, per_address=limit or 0)
        if outcome is Admission.ADDRESS_FULL:
            return self._refuse_job(view, now, f"{remote} already holds {limit} of the {cfg.start_fl_job_threshold} "
                                               f"seats of iteration {view.iteration} (max_admissions_per_address "
                                               f"{limit})")
        if outcome not in (Admission.ADMITTED, Admission.ALREADY_ADMITTED):
            return self._refuse_job(view, now, f"not admitted to iteration {view.iteration}: {outcome.value}")
        if outcome is Admission.ADMITTED:
            if view.admitted == 1:
                self._arm(view.iteration, "start", cfg.start_fl_job_time_window, self._start_window_over,
                          began_ms=view.start_window_began_ms)
            log.debug("iteration %d: admitted %s (data_size %d, %d/%d)", view.iteration, fl_id,
                      data_size, view.admitted, cfg.start_fl_job_threshold)
            if self.mode.DECIDES_END and view.admitted >= cfg.start_fl_job_threshold:
                self._spawn(self.mode.admission_full, view.iteration)
        key = (view.iteration, self._window_end(view, now))
        cached = self._admit_reply
        if cached is not None and cached[0] == key:
            return cached[1]
        latest, model = await self.store.latest()
        extras = await self._plan_extras(latest)
        reply = StartFLJobResponse(ResponseCode.SUCCEED, "admitted", view.iteration, True, str(key[1]), self.plan,
                                   model, str(now), control_variate=extras.control_variate)
        self._admit_reply = (key, reply)  # its model and extras are those of the newest model, as is the key's
        return reply

    async def _plan_extras(self, latest: int) -> PlanExtras:
        """What the aggregator adds to the replies while ``latest`` is the newest model (from its state)."""
        if self._extras is None or self._extras[0] != latest:
            state = await self.store.state(latest)
            self._replier.load(_part(state, AGGREGATOR_STATE))
            self._extras = (latest, self._replier.plan_extras())
        return self._extras[1]

    def _pending_draw(self, iteration: int) -> "_Draw | None":
        """The draw that a startFLJob of ``iteration`` joins (the first asker opens it and its window),
        or None once the iteration's draw is over."""
        if iteration <= self._drawn_through:
            return None
        if self._draw is None or self._draw.iteration != iteration:
            self._draw = _Draw(iteration, {}, asyncio.get_running_loop().create_future())
            self._arm(iteration, "draw", self.config.admission_window_ms, self._draw_seats)
        return self._draw

    async def _draw_seats(self, iteration: int) -> None:
        """admission_window_ms after the first asker: admit the drawn askers in the draw's order until the
        seats are taken, refuse the others (they come back at the end of the iteration's windows)."""
        draw = self._draw
        self._timers.pop((iteration, "draw"), None)
        if draw is None or draw.iteration != iteration:
            return
        self._draw, self._drawn_through = None, iteration
        cfg = self.config
        order = draw_order(cfg.admission_seed, iteration, draw.askers)
        answers: dict[str, StartFLJobResponse] = {}
        try:
            now = now_ms()
            for fl_id in order:
                view = await self.store.view()
                if view.admitted < cfg.start_fl_job_threshold:
                    data_size, remote = draw.askers[fl_id]
                    answers[fl_id] = await self._admit(view, fl_id, data_size, remote, now)
                else:
                    answers[fl_id] = self._refuse_job(view, now, f"not drawn for iteration {iteration}: {len(order)} "
                                                                 f"devices asked for {cfg.start_fl_job_threshold} "
                                                                 f"seats (admission_policy sample)")
        except BaseException as exc:  # a bug or cancellation: the held devices get SystemError, not a hang
            draw.answers.set_exception(exc)
            raise
        draw.answers.set_result(answers)
        log.info("iteration %d: drew %d of %d devices that asked (admission_policy sample, seed %d)", iteration,
                 sum(a.retcode == ResponseCode.SUCCEED for a in answers.values()), len(order), cfg.admission_seed)

    async def update_model(self, req: UpdateModelRequest, *, remote: str | None = None
                           ) -> UpdateModelResponse | str:
        """``remote``: the device's address, for the log line of a refusal (the three rounds take it alike)."""
        now = now_ms()
        view = await self.store.view()
        if view.finished:
            return PLAIN_TEXT_JOB_FINISHED
        if req.iteration != view.iteration:
            return self._refuse_upload(ResponseCode.OutOfTime, view, now,
                                       f"upload for iteration {req.iteration}, current is {view.iteration}", remote)
        plan = None if self.simulated is None else self.simulated.planned(req.iteration)
        if plan is not None and self.simulated is not None:
            if req.fl_id in plan.admitted:  # held until every admitted device's upload is in: its bytes decide
                plan = await self.simulated.uploaded(req.iteration, req.fl_id)
                self._simulated_decided(req.iteration, plan)
            late = self.simulated.late(plan, req.fl_id)
            if late:
                return self._refuse_upload(ResponseCode.OutOfTime, view, now, f"{req.fl_id!r}: {late}", remote)
            now = self.simulated.upload_time(plan, req.fl_id)
        if self.codec.compressed(req):  # the r1.6 upload data_size x w0 + d' (pyflclient.server.codecs)
            data_size = await self.store.data_size(req.iteration, req.fl_id)
            if data_size is None:
                return self._refuse_upload(ResponseCode.OutOfTime, view, now,
                                           f"{req.fl_id!r}: not admitted to iteration {req.iteration}", remote)
            _, current = await self.store.latest()
            decoded, problem = self.codec.decode(req, current, data_size)
            if problem:
                return self._refuse_upload(ResponseCode.RequestError, view, now, f"{req.fl_id!r}: {problem}", remote)
            req = dataclasses.replace(req, weights=decoded)
        problem = await self.mode.may_upload(req.iteration, req.fl_id) or self.check_upload(req)
        if problem:
            return self._refuse_upload(ResponseCode.RequestError, view, now, problem, remote)
        weights = req.weights
        if self.config.max_update_norm or self._checks_uploads:  # never with masked uploads (the config's rule)
            data_size = await self.store.data_size(req.iteration, req.fl_id)
            if data_size is not None:  # not admitted: the store refuses it below
                if self.config.max_update_norm:
                    _, current = await self.store.latest()
                    weights, problem = self.bound_update(weights, data_size, current)
                if problem is None and self._checks_uploads:
                    # the replier's check: the aggregator itself may be aggregating in a worker thread
                    problem = self._replier.check(DeviceUpload(data_size, weights, req.upload_loss,
                                                               req.control_variate))
                if problem:
                    return self._refuse_upload(ResponseCode.RequestError, view, now, f"{req.fl_id!r}: {problem}",
                                               remote)
        norm = None
        if self.norm_bound is not None and not self.config.max_update_norm:  # the default bound (update_bound.py)
            data_size = await self.store.data_size(req.iteration, req.fl_id)
            if data_size is not None:
                _, current = await self.store.latest()
                norm, problem = self.norm_bound.check(weights, data_size, current)
                if problem:
                    return self._refuse_upload(ResponseCode.RequestError, view, now, f"{req.fl_id!r}: {problem}",
                                               remote)
        outcome, view = await self.store.add_upload(req.iteration, req.fl_id, weights, now, loss=req.upload_loss,
                                                    control_variate=req.control_variate)
        if outcome is Upload.DUPLICATE:
            return self._refuse_upload(ResponseCode.RequestError, view, now,
                                       f"{req.fl_id!r}: {outcome.value} {req.iteration}", remote)
        if outcome is not Upload.ACCEPTED:
            return self._refuse_upload(ResponseCode.OutOfTime, view, now,
                                       f"{req.fl_id!r}: {outcome.value} {req.iteration}", remote)
        if norm is not None:
            self.norm_bound.accepted(norm)  # type: ignore[union-attr]
        if self.mode.DECIDES_END:
            late = await self.mode.uploaded(req.iteration, req.fl_id)
            if late is not None:  # PW_ENCRYPT: another process froze the phase between storing and filing it
                return self._refuse_upload(ResponseCode.OutOfTime, view, now, f"{req.fl_id!r}: {late}", remote)
        elif plan is not None and self.simulated is not None:
            if self.simulated.complete(plan, view.uploaded):  # every planned upload is in: it ends
                self._spawn(self.finish, view.iteration)
        else:
            if view.uploaded == 1:
                self._arm(view.iteration, "update", self.config.update_model_time_window, self._update_window_over,
                          began_ms=view.update_window_began_ms)
            if view.uploaded >= self.config.update_model_threshold:
                # in the background: the uploader's reply does not wait for aggregation and the checkpoint
                # (getModel says SucNotReady until they are done), and a device hanging up cannot cancel them
                self._spawn(self.finish, view.iteration)
        return UpdateModelResponse(ResponseCode.SUCCEED, "accepted", str(self._window_end(view, now)), str(now))

    def arm_phase(self, iteration: int, phase: str, window_ms: int, began_ms: int,
                  callback: Callable[[int], Awaitable[None]]) -> None:
        """Run ``callback(iteration)`` when PW_ENCRYPT's ``phase`` window (from ``began_ms``) ends."""
        self._arm(iteration, f"pw:{phase}", window_ms, callback, began_ms=began_ms)

    def finish_soon(self, iteration: int) -> None:
        """Finish ``iteration`` in the background (the caller's reply does not wait for the aggregation)."""
        self._spawn(self.finish, iteration)

    async def get_model(self, req: GetModelRequest, *, remote: str | None = None) -> GetModelResponse:
        """:meth:`_get_model`, the model quantised for a device that decodes it."""
        return self.codec.model_reply(await self._get_model(req, remote=remote), req.download_compress_types)

    async def _get_model(self, req: GetModelRequest, *, remote: str | None = None) -> GetModelResponse:
        """``remote`` is accepted as by the other rounds and not used: getModel changes nothing."""
        now = now_ms()
        view = await self.store.view()
        latest, model = await self.store.latest()
        if req.iteration == 0:  # pyflclient extension: "the newest model", whatever its iteration
            return GetModelResponse(ResponseCode.SUCCEED, "latest model", latest, model, str(now))
        if req.iteration == view.iteration + 1 and not view.finished:  # as r1.6: a client a step ahead waits
            return GetModelResponse(ResponseCode.SucNotReady, f"iteration {req.iteration} has not started yet",
                                    req.iteration, timestamp=str(now))
        if req.iteration < 0 or req.iteration > view.iteration:
            return GetModelResponse(ResponseCode.RequestError,
                                    f"iteration {req.iteration} does not exist yet (current {view.iteration})",
                                    view.iteration, timestamp=str(now))
        if req.iteration > latest and await self._wait_published(req.iteration):
            latest, _ = await self.store.latest()
        if req.iteration > latest:
            return GetModelResponse(ResponseCode.SucNotReady, f"iteration {req.iteration} is still running",
                                    req.iteration, timestamp=str(now_ms()))
        cached = self._model_reply
        if cached is not None and cached[0] == req.iteration:
            return cached[1]
        found = await self.model(req.iteration)
        if found is None:
            return GetModelResponse(ResponseCode.RequestError, f"the model of iteration {req.iteration} is no "
                                    f"longer kept (newest: {latest})", req.iteration, timestamp=str(now))
        reply = GetModelResponse(ResponseCode.SUCCEED, "", req.iteration, found, str(now))
        self._model_reply = (req.iteration, reply)  # a published model never changes
        return reply

    async def _wait_published(self, iteration: int) -> bool:
        """Hold a getModel of a running iteration until a model is published or the hold ends.

        A long poll: without it every device learns of the new model only at its next
        ``sleepTime`` poll, which idles all of them for up to a poll interval per iteration.
        """
        deadline = asyncio.get_running_loop().time() + self.config.get_model_hold_ms / 1000
        while True:
            latest, _ = await self.store.latest()
            remaining = deadline - asyncio.get_running_loop().time()
            if latest >= iteration or remaining <= 0:
                return latest >= iteration
            if self._published is None:
                self._published = asyncio.Event()
            self.held_get_models += 1
            try:
                await asyncio.wait_for(self._published.wait(), remaining)
            except asyncio.TimeoutError:
                return False
            finally:
                self.held_get_models -= 1

    def _announce_published(self) -> None:
        event, self._published = self._published, None
        if event is not None:
            event.set()

    def check_upload(self, req: UpdateModelRequest) -> str | None:
        """Why an upload cannot be aggregated by any type (weights and control variate: names, sizes,
        finiteness; ``upload_loss`` when the plan asks for it), or None."""
        problem = self.check_weights(req.weights, masked=self.mode.MASKED)
        if problem is None and bool(req.control_variate) != self.control_variates:
            problem = (f"control_variate is missing: aggregation_type {self.config.aggregation_type} reads each "
                       f"device's delta c_i" if self.control_variates else
                       f"control_variate sent, but aggregation_type {self.config.aggregation_type} reads none")
        if problem is None and req.control_variate:
            problem = self.check_weights(req.control_variate, masked=self.mode.MASKED, what="control_variate")
        if problem is None and req.upload_loss is not None:
            if not (math.isfinite(req.upload_loss) and req.upload_loss >= 0):
                problem = f"upload_loss {req.upload_loss!r} must be a finite number >= 0"
        if problem is None and req.upload_loss is None and self.config.reports_loss:
            stop = self.config.early_stop_row
            readers = [f"aggregation_type {self.config.aggregation_type}"] if self.config.aggregation_row.reports_loss else []
            readers += [f"early_stop_type {stop.name}"] if stop is not None and stop.reports_loss else []
            problem = (f"upload_loss is missing: {' and '.join(readers)} read each device's mean training loss at "
                       f"the received model")
        return problem

    def check_weights(self, weights: Mapping[str, np.ndarray], masked: bool = False, what: str = "weight"
                      ) -> str | None:
        """Why uploaded ``weights`` (or a control variate, ``what``) cannot be aggregated (names, sizes,
        non-finite values), or None.

        ``masked``: each value is a ring element in two float32 slots, any bits."""
        missing = sorted(set(self.sizes) - set(weights))
        unknown = sorted(set(weights) - set(self.sizes))
        if unknown:
            return f"unknown {what} names {unknown[:5]}; the model has {sorted(self.sizes)[:5]}..."
        if missing:
            return f"missing {what}s {missing[:5]}"
        slots = 2 if masked else 1
        for name, array in weights.items():
            if array.size != slots * self.sizes[name]:
                return (f"{what} {name!r} has {array.size} values, the model has {self.sizes[name]}"
                        + (f" (x 2 float32 slots per masked value with {self.config.encrypt_type})" if masked else ""))
        if masked:
            return None
        for name, array in weights.items():
            if not np.isfinite(array).all():
                return f"{what} {name!r} holds NaN or Inf"
        return None

    def bound_update(self, weights: Mapping[str, np.ndarray], data_size: int, current: Model
                     ) -> tuple[Mapping[str, np.ndarray], str | None]:
        """Hold an upload to ``max_update_norm``: (weights to aggregate, why it is refused or None).

        The device uploads ``u = data_size × w``; its update is ``d = u / data_size − global``
        and ``‖d‖`` is the L2 norm over all weights (float64). Beyond the bound, ``refuse``
        gives the reason; ``clip`` returns ``data_size × (global + d × bound / ‖d‖)``.
        """
        bound = self.config.max_update_norm
        if self._scratch is None:  # float64 buffers reused per upload: fresh 0.5 MB arrays cost page faults
            self._scratch = {name: np.empty(size, np.float64) for name, size in self.sizes.items()}
        for name, u in weights.items():
            d = self._scratch[name]
            np.divide(np.reshape(u, -1), data_size, out=d)
            np.subtract(d, np.reshape(current[name], -1), out=d)
        norm = math.sqrt(sum(sum_of_squares(d) for d in self._scratch.values()))  # no BLAS: see sum_of_squares
        if norm <= bound:
            return weights, None
        if self.config.update_norm_action == "refuse":
            return weights, f"update norm {norm:.4g} is above max_update_norm {bound:g}"
        log.info("update of norm %.4g clipped to max_update_norm %g", norm, bound)
        clipped = {}
        for name, d in self._scratch.items():
            d *= bound / norm
            d += np.reshape(current[name], -1)
            d *= data_size
            clipped[name] = d.astype(np.float32)
        return clipped, None

    def _address_limit(self, remote: str | None) -> int | None:
        """Seats of an iteration one address may take, or None when the rule does not apply."""
        cfg = self.config
        if remote is None:  # the transport did not say (tests calling Rounds directly, a Unix socket)
            return None
        if cfg.max_admissions_per_address:
            limit = cfg.max_admissions_per_address
        elif _is_loopback(remote):
            return None
        else:
            limit = max(1, cfg.start_fl_job_threshold // 2)
        return limit if limit < cfg.start_fl_job_threshold else None

    # -- replies ----------------------------------------------------------------------

    def _window_end(self, view: IterationView, now: int) -> int:
        """Epoch ms at which this iteration's windows end at the latest: when to come back."""
        cfg = self.config
        if view.update_window_began_ms is not None:
            end = view.update_window_began_ms + cfg.update_model_time_window
        elif view.start_window_began_ms is not None:
            end = view.start_window_began_ms + cfg.start_fl_job_time_window + cfg.update_model_time_window
        else:
            end = now + cfg.retry_interval
        return max(end, now + 1)

    def _refuse_job(self, view: IterationView, now: int, reason: str) -> StartFLJobResponse:
        if self.simulated is not None:
            when = self.simulated.next_req_wall_ms(now_ms())
        elif view.closed:  # finishing right now: the next iteration opens in moments
            when = now + self.config.retry_interval
        else:
            when = self._window_end(view, now)
        # the plan rides along on refusals too, as r1.6 sends it: a stock client may read it either way
        return StartFLJobResponse(ResponseCode.OutOfTime, reason, view.iteration, False, str(when), self.plan,
                                  timestamp=str(now))

    def _refuse_upload(self, code: ResponseCode, view: IterationView, now: int, reason: str,
                       remote: str | None = None) -> UpdateModelResponse:
        self.refusals.report(f"updateModel refused ({code.name})", remote or "?", reason)
        when = self._window_end(view, now) if self.simulated is None else self.simulated.next_req_wall_ms(now_ms())
        return UpdateModelResponse(code, reason, str(when), str(now))

    # -- windows and finishing --------------------------------------------------------

    def _arm(self, iteration: int, which: str, window_ms: int, callback: Callable[[int], object],
             began_ms: int | None = None) -> None:
        """Run ``callback(iteration)`` when the window ends (once per iteration and window)."""
        key = (iteration, which)
        if key in self._timers or (self.simulated is not None and which in ("start", "update")):
            return  # on the simulated clock the plan decides when the windows end
        loop = asyncio.get_running_loop()
        delay = max(0.0, ((began_ms or now_ms()) + window_ms - now_ms()) / 1000)
        self._timers[key] = loop.call_later(delay, self._spawn, callback, iteration, key)

    def _spawn(self, callback: Callable[[int], object], iteration: int, timer: tuple[int, str] | None = None
               ) -> None:
        task = asyncio.ensure_future(callback(iteration))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._done, timer))

    def _done(self, timer: tuple[int, str] | None, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), StoreUnavailable):  # logged by the store; following it re-arms the timer
            if timer is not None:
                self._timers.pop(timer, None)
            return
        log.error("window/finish task failed", exc_info=task.exception())  # a bug: say so loudly, keep serving

    async def _follow(self, _iteration: int) -> None:
        """Keep up with a store shared by other processes (see the module docstring); runs until close()."""
        cfg = self.config
        announced = -1
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            try:
                view = await self.store.view()
                latest = await self.latest_iteration()
            except StoreUnavailable:
                continue
            await self._pass_on_traffic(view.iteration + 1 if view.closed else view.iteration)
            if latest > announced:
                announced = latest
                self._announce_published()
            if view.finished:
                continue
            if self.mode.DECIDES_END and not view.closed:
                self._spawn(self.mode.follow, view.iteration)  # another process's phases, its windows
                continue
            if view.closed or view.uploaded >= cfg.update_model_threshold:
                self._spawn(self.finish, view.iteration)  # None from close() unless it is ours to finish
                continue
            if view.start_window_began_ms is not None:
                self._arm(view.iteration, "start", cfg.start_fl_job_time_window, self._start_window_over,
                          began_ms=view.start_window_began_ms)
            if view.update_window_began_ms is not None:
                self._arm(view.iteration, "update", cfg.update_model_time_window, self._update_window_over,
                          began_ms=view.update_window_began_ms)

    async def _pass_on_traffic(self, iteration: int) -> None:
        """Add this process's byte counts to the shared store's tally of ``iteration`` (kept when it is away)."""
        count = self.traffic.take()
        if not count.requests:
            return
        try:
            await self.store.add_traffic(iteration, count.as_counts())
        except StoreUnavailable:
            self.traffic.put_back(count)

    async def _iteration_traffic(self, iteration: int) -> TrafficCount:
        """The bytes of ``iteration``: this process's count, or with a shared store every process's tally."""
        if not self.store.shared:
            return self.traffic.take()
        await self._pass_on_traffic(iteration)
        try:
            return TrafficCount.from_counts(await self.store.take_traffic(iteration))
        except StoreUnavailable:
            return TrafficCount()  # (the tally stays in the store; the next close does not take it)

    async def _start_window_over(self, iteration: int) -> None:
        now = now_ms()
        if self.mode.DECIDES_END:
            await self.mode.admission_over(iteration, now)
            return
        if await self.store.begin_update_window(iteration, now):
            log.info("iteration %d: admission window over with no upload yet; update window begins", iteration)
            self._arm(iteration, "update", self.config.update_model_time_window, self._update_window_over,
                      began_ms=now)

    async def _update_window_over(self, iteration: int) -> None:
        await self.finish(iteration)

    async def _until_stored(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run one store step of a closed iteration, again every retry_interval while the store is unreachable:
        the uploads are only in this process now (and in the store until its close lease runs out)."""
        while True:
            try:
                return await step()
            except StoreUnavailable:
                await asyncio.sleep(self.config.retry_interval / 1000)

    async def finish(self, iteration: int) -> None:
        """Close ``iteration``, aggregate (or keep the previous model), count the early stop, checkpoint,
        publish (model and state)."""
        closed = await self.store.close(iteration)
        if closed is None:
            return  # already finished by the other trigger
        for key in [key for key in self._timers if key[0] == iteration]:
            self._timers.pop(key).cancel()
        uploads = await self.mode.combine(closed)
        valid = uploads is not None
        latest, previous = await self._until_stored(self.store.latest)
        state = dict(await self._until_stored(lambda: self.store.state(latest)))
        model: Model = previous
        if uploads is not None:
            # off the event loop: K × (weights) float64 adds (≈ 3 ms for 50 LeNet uploads); numpy frees the GIL
            model, aggregated = await asyncio.get_running_loop().run_in_executor(
                None, self._aggregate, previous, uploads, iteration, _part(state, AGGREGATOR_STATE))
            state = {**_part(state, EARLY_STOP_STATE, keep_prefix=True), **_prefixed(aggregated, AGGREGATOR_STATE)}
        stopped = None
        if self.early_stop is not None:
            self.early_stop.load(_part(state, EARLY_STOP_STATE))
            stopped = self.early_stop.observe(closed.uploads if valid else None, previous, model)
            state = {**_part(state, AGGREGATOR_STATE, keep_prefix=True),
                     **_prefixed(self.early_stop.state(), EARLY_STOP_STATE)}
        finished = iteration >= self.config.fl_iteration_num or stopped is not None
        while True:
            try:
                if self.checkpoints is not None:
                    await asyncio.get_running_loop().run_in_executor(None, self.checkpoints.save, iteration, model,
                                                                     state, finished)
                break
            except OSError:  # disk full, permissions: keep the iteration closed, never serve unsaved
                log.exception("iteration %d: cannot write its checkpoint; retrying", iteration)
                await asyncio.sleep(self.config.retry_interval / 1000)
        # the next simulated iteration opens at this one's simulated end: set before the publication lets
        # devices ask for it
        simulated = None if self.simulated is None else self.simulated.finished(iteration)
        await self._until_stored(lambda: self.store.publish(iteration, model, finished, state))
        self._announce_published()
        began = closed.start_window_began_ms
        now = now_ms()
        result = IterationResult(iteration, closed.admitted, closed.uploaded, closed.data_size, valid,
                                 (now - began) / 1000 if began and simulated is None else 0.0, now, finished,
                                 stopped, await self._iteration_traffic(iteration), simulated)
        if self.checkpoints is not None:
            try:
                self.checkpoints.append_metrics(result.as_dict())
            except OSError:
                log.exception("iteration %d: cannot append to %s", iteration, self.checkpoints.metrics_path)
        log.info("iteration %d/%d %s: %d admitted, %d uploaded, %.1f s, %.2f MB up / %.2f MB down%s", iteration,
                 self.config.fl_iteration_num, "valid" if valid else "INVALID (previous model kept)",
                 closed.admitted, closed.uploaded, result.seconds, result.traffic.bytes_up / 1e6,
                 result.traffic.bytes_down / 1e6,
                 f"; job finished ({stopped})" if stopped else "; job finished" if finished else "")
        if self._on_iteration is not None:
            self._on_iteration(result)

    def _aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int, state: State
                   ) -> tuple[Model, dict[str, np.ndarray]]:
        """The model of ``iteration`` and the aggregator's state after it, from the state before it."""
        self.aggregator.load(state)
        model = self.aggregator.aggregate(previous, uploads, iteration)
        return model, self.aggregator.state()


def _part(state: State, prefix: str, keep_prefix: bool = False) -> dict[str, np.ndarray]:
    """The entries of ``state`` under ``prefix`` (without it, unless ``keep_prefix``)."""
    return {(key if keep_prefix else key[len(prefix):]): value for key, value in state.items() if key.startswith(prefix)}


def _prefixed(state: State, prefix: str) -> dict[str, np.ndarray]:
    return {prefix + key: value for key, value in state.items()}


def _is_loopback(remote: str) -> bool:
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))
