"""The server's rounds on the simulated clock (``device_profiles`` set): who is admitted, whose upload counts.

How the clock reaches the server: it **is in the server process**. Devices do not need to know
any simulated time; each iteration the server

1. holds the startFLJob requests until every device of the simulation has asked (``device_count``,
   else every fl_id seen so far) or ``admission_window_ms`` (wall; at least 20 s with
   ``device_count``) passed without a new asker —
   the *barrier* that makes the outcome independent of the host's scheduling;
2. asks :meth:`pyflclient.clock.SimulatedClock.admit` who of those askers has a seat on the
   simulated clock (their profiles and availability, the start window, the threshold);
3. admits the planned devices (the store sees their simulated ask times) and refuses the others
   (``OutOfTime``; offline devices are refused as *offline* without taking part in the draw — a
   simulation's devices do not ask while offline, so this refusal is only a guard);
4. holds each admitted device's updateModel until every admitted device has uploaded (a second
   barrier), then asks :meth:`~pyflclient.clock.SimulatedClock.decide` whose uploads count: each
   device's download is the **counted** body of the startFLJob reply it received (the model, QUANT
   when it listed it) and its upload the counted body of its updateModel request
   (:class:`~pyflclient.server.traffic.Traffic`, ``per_device``) — the bytes actually sent, so
   compression shortens the simulated transfers exactly as much as it shrinks the bodies;
5. takes the planned uploads (stored with their simulated arrival times), refuses the late and
   dropped ones ``OutOfTime``, and finishes the iteration when the planned uploads are in — at the
   simulated time the plan says. Nothing waits for simulated time to pass: the wall time is the
   training's.

The next iteration opens at the previous one's simulated end. Replies carry simulated times in
their ``timestamp``; ``next_req_time`` stays a wall-clock hint (the engine's devices come back when a
device of theirs sees the next model). The getModel that fetches the new model comes after the
iteration's end and is not on any device's simulated path. An admitted device whose upload never
arrives (it died) is decided *dropped* after a quiet spell of ``update_model_time_window`` wall ms
(at least 60 s) without a new upload, logged: from there the run is no longer a pure function of its
seed.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pyflclient.clock import IterationPlan, SimulatedClock
from pyflclient.devices import DeviceProfiles, ProfileError, load_profiles
from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.server.traffic import Traffic

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


@dataclass
class _Uploads:
    """The updateModel requests of one iteration's admitted devices, held until the outcome is decided."""

    down: dict[str, int] = field(default_factory=dict)  # fl_id -> its startFLJob reply's body bytes
    up: dict[str, int] = field(default_factory=dict)  # fl_id -> its updateModel request's body bytes
    decided: "asyncio.Future[IterationPlan]" = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class SimulatedRounds:
    """The per-iteration bookkeeping of the simulated clock for :class:`~pyflclient.server.rounds.Rounds`."""

    def __init__(self, config: ServerConfig, clock: SimulatedClock, traffic: Traffic):
        """``traffic``: the server's byte counts; kept per device from here on (the devices' link costs)."""
        self.config = config
        self.clock = clock
        self.traffic = traffic
        traffic.per_device = True
        self._uploads: dict[int, _Uploads] = {}
        #: iteration -> (devices that ask, devices offline), as a simulation's devices announce it (:meth:`census`)
        self._census: dict[int, tuple[int, int]] = {}
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
        for held in self._uploads.values():
            if not held.decided.done():
                held.decided.cancel()

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
        if len(hold.askers) >= self._expected(iteration) and not hold.plan.done():
            self._make_plan(hold)
        return await asyncio.shield(hold.plan)

    def _expected(self, iteration: int) -> int:
        """The askers ``iteration``'s plan waits for: the simulation's census, else every device."""
        if iteration in self._census:
            return self._census[iteration][0]
        return max(self.config.device_count, len(self.population)) if self.config.device_count else \
            len(self.population)

    def census(self, iteration: int, askers: int, offline: int) -> IterationPlan | None:
        """A simulation's devices tell how many of them ask in ``iteration`` (the others are offline on the
        simulated clock and stay silent: :meth:`pyflclient.clock.SimulatedClock.asking`, the rule the plan
        uses). The first census of an iteration counts (every engine of a simulation sends the same). The
        plan when it can be made now: nobody asks (an empty plan) or every announced asker has asked."""
        if iteration in self._census or iteration in self.plans:
            return self.plans.get(iteration)
        self._census[iteration] = (askers, offline)
        hold = self._hold
        if hold is None or hold.iteration != iteration:
            if askers > 0:
                return None
            hold = self._hold = _Hold(iteration)
        if len(hold.askers) >= askers and not hold.plan.done():
            self._make_plan(hold)
        return self.plans.get(iteration)

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
                            len(hold.askers), self._expected(hold.iteration), quiet)
                self._make_plan(hold)
                return
            await asyncio.sleep(wait)

    def _make_plan(self, hold: _Hold) -> None:
        cfg = self.config
        plan = self.clock.admit(hold.iteration, self.opened_ms, hold.askers, threshold=cfg.start_fl_job_threshold,
                                start_window_ms=cfg.start_fl_job_time_window)
        self.plans[hold.iteration] = plan
        self._askers[hold.iteration] = dict(hold.askers)
        log.info("iteration %d (simulated from %.3f h): %d asked, %d admitted, %d refused, %d offline",
                 hold.iteration, self.clock.hours(plan.start_ms), len(hold.askers), len(plan.admitted),
                 len(plan.refused), len(plan.offline) + self._census.get(hold.iteration, (0, 0))[1])
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
        if fl_id in plan.dropped:
            return f"its upload came after iteration {plan.iteration}'s uploads were decided without it"
        if fl_id in plan.late and t is not None:
            return (f"upload at simulated {self.clock.hours(t.uploaded_ms):.4f} h, after the iteration ended "
                    f"({self.clock.hours(plan.end_ms):.4f} h)")
        return None

    async def uploaded(self, iteration: int, fl_id: str) -> IterationPlan:
        """Hold admitted ``fl_id``'s updateModel of ``iteration`` until every admitted device's is in (or
        :meth:`decide` is called); the decided plan. Its bytes: the counted body of the startFLJob reply it
        received and of this request."""
        plan = self.plans[iteration]
        if plan.decided:
            return plan
        held = self._uploads.setdefault(iteration, _Uploads())
        if fl_id not in held.up:
            down = self.traffic.reply_bytes("startFLJob", fl_id)
            up = self.traffic.request_bytes("updateModel", fl_id)
            if down is None or up is None:  # the transport did not count them: a bug, not a device's fault
                raise RuntimeError(f"simulated clock: no counted startFLJob reply / updateModel request of {fl_id!r}")
            held.down[fl_id], held.up[fl_id] = down, up
        if len(held.up) >= len(plan.admitted):
            self.decide(iteration)
        return await asyncio.shield(held.decided)

    def arrived(self, iteration: int) -> int:
        """How many admitted devices' uploads of ``iteration`` are held (for the watchdog)."""
        held = self._uploads.get(iteration)
        return 0 if held is None else len(held.up)

    def decide(self, iteration: int) -> IterationPlan:
        """Decide ``iteration``'s uploads with the ones held so far (an admitted device without one is
        *dropped*) and answer the held requests."""
        plan = self.plans[iteration]
        if plan.decided:
            return plan
        held = self._uploads.setdefault(iteration, _Uploads())
        cfg = self.config
        plan = self.clock.decide(plan, self._askers[iteration], epochs=cfg.client_epoch_num,
                                 update_window_ms=cfg.update_model_time_window, needed=cfg.update_model_threshold,
                                 down_bytes=held.down, up_bytes=held.up)
        self.plans[iteration] = plan
        log.info("iteration %d (simulated %.3f h -> %.3f h): %d admitted, %d finish, %d late, %d dropped; "
                 "%d B down, %d B up per device (median, counted)", iteration, self.clock.hours(plan.start_ms),
                 self.clock.hours(plan.end_ms), len(plan.admitted), len(plan.finished), len(plan.late),
                 len(plan.dropped), _median(held.down.values()), _median(held.up.values()))
        if not held.decided.done():
            held.decided.set_result(plan)
        return plan

    def upload_time(self, plan: IterationPlan, fl_id: str) -> int:
        t = plan.times.get(fl_id)
        return t.uploaded_ms if t is not None else plan.end_ms

    def complete(self, plan: IterationPlan, uploaded: int) -> bool:
        """All planned uploads are in (the uploads decided): the iteration ends (at ``plan.end_ms`` simulated)."""
        return plan.decided and uploaded >= len(plan.finished)

    def finished(self, iteration: int) -> dict[str, object] | None:
        """The iteration ended: the next one opens at its simulated end; its results' simulated fields."""
        plan = self.plans.get(iteration)
        if plan is None:
            return None
        self.opened_ms = max(self.opened_ms, plan.end_ms)
        out = plan.summary()
        out["offline"] = int(out["offline"]) + self._census.get(iteration, (0, 0))[1]  # type: ignore[call-overload]
        out["sim_start_h"] = round(self.clock.hours(plan.start_ms), 6)
        out["sim_end_h"] = round(self.clock.hours(plan.end_ms), 6)
        for old in [k for k in self.plans if k < iteration - 2]:
            del self.plans[old]
            self._askers.pop(old, None)
            self._admissions.pop(old, None)
            self._uploads.pop(old, None)
            self._census.pop(old, None)
        return out

    def state(self, iteration: int, closed: bool, finished: bool) -> dict[str, object]:
        """What a simulation's devices read of the simulated clock (``GET /simulatedClock``): the running
        iteration, when it opened (simulated epoch ms), the origin and the start window."""
        return {"iteration": iteration, "opened_ms": self.opened_ms, "origin_ms": self.clock.origin_ms,
                "start_window_ms": self.config.start_fl_job_time_window, "closed": closed, "finished": finished}

    def next_req_wall_ms(self, now_wall_ms: int) -> int:
        """The wall-clock hint of a refusal: well after the iteration (the engine wakes its devices earlier)."""
        return now_wall_ms + self.config.start_fl_job_time_window + self.config.update_model_time_window


def _median(values: object) -> int:
    xs = sorted(values)  # type: ignore[call-overload]
    return int(xs[len(xs) // 2]) if xs else 0
