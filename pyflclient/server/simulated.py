"""The server's rounds on the simulated clock (``device_profiles`` set): who is admitted, whose upload counts.

How the clock reaches the server: it **is in the server process**. Devices do not need to know
any simulated time; each iteration the server

1. holds the startFLJob requests until every device of the simulation has asked (``device_count``,
   else every fl_id seen so far) or ``admission_window_ms`` (wall; at least 20 s with
   ``device_count``) passed without a new asker —
   the *barrier* that makes the outcome independent of the host's scheduling;
2. asks :meth:`pyflclient.clock.SimulatedClock.plan` what the round's rules make of those askers on
   the simulated clock (their profiles, the model's bytes, the windows, the threshold, the ratio);
3. admits the planned devices (the store sees their simulated ask times), refuses the others
   (``OutOfTime``; offline devices are refused as *offline* without taking part in the draw), takes the
   planned uploads (stored with their simulated arrival times), refuses the late and dropped ones
   ``OutOfTime``, and finishes the iteration when the planned uploads are in — at the simulated time
   the plan says. Nothing waits for simulated time to pass: the wall time is the training's.

The next iteration opens at the previous one's simulated end. Replies carry simulated times in
their ``timestamp``; ``next_req_time`` stays a wall-clock hint (the engine's devices come back when a
device of theirs sees the next model). A planned upload that never arrives (a device died) ends the
iteration after ``update_model_time_window`` wall ms without any upload, logged: from there the run is
no longer a pure function of its seed.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pyflclient.clock import IterationPlan, SimulatedClock, transfer_bytes
from pyflclient.devices import DeviceProfiles, ProfileError, load_profiles
from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.server.store import Model

__all__ = ["SimulatedRounds", "clock_of"]

log = logging.getLogger(__name__)

#: with ``device_count`` set, the wall seconds without a new asker after which an iteration is planned anyway
QUIET_WITH_COUNT_S = 20.0


def clock_of(config: ServerConfig, origin_ms: int) -> SimulatedClock | None:
    """The job's simulated clock (None: the wall clock); a bad profile file is one ConfigError line."""
    if config.device_profiles is None:
        return None
    try:
        profiles: DeviceProfiles = load_profiles(config.device_profiles, config.device_seed,
                                                 availability=config.device_availability)
    except ProfileError as exc:
        raise ConfigError(f"device_profiles: {exc}") from None
    return SimulatedClock(profiles, config.device_seed, origin_ms)


@dataclass
class _Hold:
    """The startFLJob requests of one iteration held until its plan."""

    iteration: int
    askers: dict[str, int] = field(default_factory=dict)  # fl_id -> data_size
    plan: "asyncio.Future[IterationPlan]" = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    last_ask: float = 0.0


class SimulatedRounds:
    """The per-iteration bookkeeping of the simulated clock for :class:`~pyflclient.server.rounds.Rounds`."""

    def __init__(self, config: ServerConfig, clock: SimulatedClock, model: Model):
        self.config = config
        self.clock = clock
        self.down_bytes = self.up_bytes = transfer_bytes(model)
        self.population: set[str] = set()
        self.plans: dict[int, IterationPlan] = {}
        self.opened_ms = clock.origin_ms
        self._hold: _Hold | None = None
        self._askers: dict[int, dict[str, int]] = {}  # iteration -> its planned askers' data sizes
        self._admissions: dict[int, asyncio.Event] = {}  # iteration -> set once its planned devices are admitted
        self._tasks: set[asyncio.Future[None]] = set()

    def close(self) -> None:
        """The server is stopping: no more planning."""
        for task in list(self._tasks):
            task.cancel()
        if self._hold is not None and not self._hold.plan.done():
            self._hold.plan.cancel()

    def data_size(self, iteration: int, fl_id: str) -> int:
        return self._askers[iteration][fl_id]

    def first_to_admit(self, iteration: int) -> bool:
        """True for the one caller that admits ``iteration``'s planned devices (the others wait for it)."""
        if iteration in self._admissions:
            return False
        self._admissions[iteration] = asyncio.Event()
        return True

    def admitted(self, iteration: int) -> None:
        self._admissions[iteration].set()

    async def wait_admitted(self, iteration: int) -> None:
        await self._admissions[iteration].wait()

    def planned(self, iteration: int) -> IterationPlan | None:
        return self.plans.get(iteration)

    async def ask(self, iteration: int, fl_id: str, data_size: int) -> IterationPlan | None:
        """Hold ``fl_id``'s startFLJob until ``iteration``'s plan; None if the plan was made without it."""
        if iteration in self.plans:
            self.population.add(fl_id)
            return None
        hold = self._hold
        if hold is None or hold.iteration != iteration:
            hold = self._hold = _Hold(iteration)
            task = asyncio.ensure_future(self._quiet_watch(hold))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if fl_id not in hold.askers:
            hold.askers[fl_id] = data_size
            hold.last_ask = asyncio.get_running_loop().time()
            self.population.add(fl_id)
        if len(hold.askers) >= self._expected() and not hold.plan.done():
            self._make_plan(hold)
        return await asyncio.shield(hold.plan)

    def _expected(self) -> int:
        return max(self.config.device_count, len(self.population)) if self.config.device_count else \
            len(self.population)

    async def _quiet_watch(self, hold: _Hold) -> None:
        """Plan with the askers so far once ``admission_window_ms`` (wall) passed without a new one (with
        ``device_count``, at least :data:`QUIET_WITH_COUNT_S`: the missing devices are expected, maybe busy
        evaluating on a loaded host)."""
        quiet = self.config.admission_window_ms / 1000
        if self.config.device_count:
            quiet = max(quiet, QUIET_WITH_COUNT_S)
        loop = asyncio.get_running_loop()
        while not hold.plan.done():
            wait = hold.last_ask + quiet - loop.time()
            if wait <= 0:
                log.warning("iteration %d: %d of %d devices asked, none for %.1f s: planning without the others "
                            "(this iteration no longer depends on the seed alone)", hold.iteration,
                            len(hold.askers), self._expected(), quiet)
                self._make_plan(hold)
                return
            await asyncio.sleep(wait)

    def _make_plan(self, hold: _Hold) -> None:
        cfg = self.config
        plan = self.clock.plan(hold.iteration, self.opened_ms, hold.askers, threshold=cfg.start_fl_job_threshold,
                               start_window_ms=cfg.start_fl_job_time_window,
                               update_window_ms=cfg.update_model_time_window, needed=cfg.update_model_threshold,
                               epochs=cfg.client_epoch_num, down_bytes=self.down_bytes, up_bytes=self.up_bytes)
        self.plans[hold.iteration] = plan
        self._askers[hold.iteration] = dict(hold.askers)
        log.info("iteration %d (simulated %.3f h -> %.3f h): %d asked, %d admitted, %d finish, %d late, %d dropped, "
                 "%d offline", hold.iteration, self.clock.hours(plan.start_ms), self.clock.hours(plan.end_ms),
                 len(hold.askers), len(plan.admitted), len(plan.finished), len(plan.late), len(plan.dropped),
                 len(plan.offline))
        hold.plan.set_result(plan)
        if self._hold is hold:
            self._hold = None

    def refusal(self, plan: IterationPlan, fl_id: str) -> str:
        """Why ``fl_id`` is not admitted to ``plan``'s iteration."""
        if fl_id in plan.offline:
            return f"offline during iteration {plan.iteration}'s start window (simulated clock)"
        if fl_id in plan.refused:
            return f"iteration {plan.iteration} full: {len(plan.admitted)} devices asked earlier (simulated clock)"
        return f"asked after iteration {plan.iteration}'s admission was decided"

    def late(self, plan: IterationPlan, fl_id: str) -> str | None:
        """Why ``fl_id``'s upload is refused OutOfTime (None: it counts)."""
        t = plan.times.get(fl_id)
        if fl_id in plan.dropped and t is not None:
            return (f"went offline at simulated {self.clock.hours(int(t.online_until_ms)):.4f} h before its upload "
                    f"finished at {self.clock.hours(t.uploaded_ms):.4f} h")
        if fl_id in plan.late and t is not None:
            return (f"upload at simulated {self.clock.hours(t.uploaded_ms):.4f} h, after the iteration ended "
                    f"({self.clock.hours(plan.end_ms):.4f} h)")
        return None

    def upload_time(self, plan: IterationPlan, fl_id: str) -> int:
        t = plan.times.get(fl_id)
        return t.uploaded_ms if t is not None else plan.end_ms

    def complete(self, plan: IterationPlan, uploaded: int) -> bool:
        """All planned uploads are in: the iteration ends (at ``plan.end_ms`` simulated)."""
        return uploaded >= len(plan.finished)

    def finished(self, iteration: int) -> dict[str, object] | None:
        """The iteration ended: the next one opens at its simulated end; its results' simulated fields."""
        plan = self.plans.get(iteration)
        if plan is None:
            return None
        self.opened_ms = max(self.opened_ms, plan.end_ms)
        out = plan.summary()
        out["sim_start_h"] = round(self.clock.hours(plan.start_ms), 6)
        out["sim_end_h"] = round(self.clock.hours(plan.end_ms), 6)
        for old in [k for k in self.plans if k < iteration - 2]:
            del self.plans[old]
            self._askers.pop(old, None)
            self._admissions.pop(old, None)
        return out

    def next_req_wall_ms(self, now_wall_ms: int) -> int:
        """The wall-clock hint of a refusal: well after the iteration (the engine wakes its devices earlier)."""
        return now_wall_ms + self.config.start_fl_job_time_window + self.config.update_model_time_window
