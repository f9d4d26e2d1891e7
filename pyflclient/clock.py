"""The simulated clock: when each device asks, trains, uploads, and what the round's rules make of it.

Devices of a simulation are Java threads that all train at the host's speed, always online, on a free
link. With device profiles (:mod:`pyflclient.devices`) the server runs its rules on a **simulated
clock** instead of the wall clock. This module is that clock, pure and deterministic: no I/O, no
wall time, no threads — the server (:mod:`pyflclient.server.rounds`) and the asynchronous round type
both call it, and the tests and the benchmark call it directly.

Time is in **simulated epoch milliseconds**; the clock starts at ``origin_ms`` (the server uses the
wall time at which the job began, so simulated times read like dates and a stock device's
``next_req_time`` arithmetic still works).

One iteration (:meth:`SimulatedClock.plan`), opened at ``opened_ms`` (the end of the previous one):

1. device *d* that asks (it is a device of the simulation waiting for this iteration) asks at
   ``ask_d = next_online(d, opened_ms)``; never online again: *offline*;
2. the start window opens at the first ask, ``first = min ask_d``, and lasts
   ``start_fl_job_time_window``; a device asking after it is *offline* (it came online too late);
   the others are taken in order of ``(ask_d, rank_d)`` — ``rank`` a seeded uniform shuffle of the
   iteration's askers, so ties (every device with the ``uniform`` population) are fair and
   reproducible — and the first ``start_fl_job_threshold`` are *admitted*, the rest *refused*;
3. admitted *d* receives the model with the startFLJob reply, trains, uploads:
   ``up_d = ask_d + download_ms(down_bytes) + train_ms(data_size, epochs) + upload_ms(up_bytes)``;
   if its online session ends before ``up_d`` it is *dropped* (gone offline; its upload never counts);
4. the update window begins at the first upload, or at the end of the start window if no upload
   came by then, and lasts ``update_model_time_window``, ending at ``W``;
5. uploads are taken in order of ``(up_d, rank_d)``: one arriving at or after ``W``, or after the
   iteration already has ``needed = ceil(threshold × update_model_ratio)`` uploads, is *late* (the
   server answers it OutOfTime); the iteration ends at the ``needed``-th upload (*valid*) or at ``W``
   with fewer (*invalid*: the previous model is kept), as the server's rules say.

The plan is made in two steps: :meth:`SimulatedClock.admit` (steps 1-2, when the devices have asked)
and :meth:`SimulatedClock.decide` (steps 3-5, once the admitted devices' bytes are known).

Bytes: the server passes each device's **counted** bytes (:class:`pyflclient.server.traffic.Traffic`
is the one place that says them): ``down_bytes`` the body of the startFLJob reply it received (the
model, QUANT-quantised if it listed QUANT), ``up_bytes`` the body of its updateModel request
(DIFF_SPARSE_QUANT-encoded if so). :func:`transfer_bytes` — an estimate from the model size — remains
only for the asynchronous round type (``pyflclient/server/async_clock.py``), which schedules an
upload's arrival before the device has sent it.

Device side: a simulation's devices stay silent while offline. Before a device of the Java engine
asks, its ``AskHook`` (``pyflclient/client/availability.py``) reads the running iteration and its
opening time from the server and applies :meth:`SimulatedClock.asking` — the rule of steps 1-2 —
over the whole population; the devices that do not ask wait until a later iteration opens. The
engine leaves the ask order to the server (``ClientEngine.setSeededTurns(false)``, set by
``Simulation(device_profiles=...)``) and brings a refused device back once the model of the iteration
that refused it is out (``CheckInGate.modelOfOr``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import numpy as np

from pyflclient.devices import DeviceProfiles

__all__ = ["SimulatedClock", "IterationPlan", "DeviceTimes", "transfer_bytes", "ask_rank"]

#: FlatBuffers framing of one weight (its name, vector header, table) — an estimate until bytes are counted
_PER_TENSOR_OVERHEAD = 64


def transfer_bytes(model: Mapping[str, np.ndarray]) -> int:
    """An estimate of the bytes a model costs on the link, one way: float32 values plus framing per tensor.

    Only for what has no counted size: the asynchronous round type's schedule
    (``pyflclient/server/async_clock.py``). The synchronous simulated rounds use the counted bodies
    (``pyflclient/server/traffic.py``, see the module docstring).
    """
    return int(sum(4 * int(np.size(a)) + _PER_TENSOR_OVERHEAD for a in model.values()))


def ask_rank(seed: int, iteration: int, fl_ids: Mapping[str, object] | list[str]) -> dict[str, int]:
    """A uniformly random permutation of the sorted ``fl_ids`` from a generator seeded with
    ``(seed, iteration)``, as ``fl_id → position``: who asks first among devices asking at the same time."""
    ids = sorted(set(fl_ids))
    order = np.random.default_rng([seed & 0xFFFFFFFF, iteration]).permutation(len(ids))
    return {ids[j]: pos for pos, j in enumerate(order)}


@dataclass(frozen=True)
class DeviceTimes:
    """One admitted device's iteration on the simulated clock (epoch ms)."""

    asked_ms: int
    downloaded_ms: int
    trained_ms: int
    uploaded_ms: int
    online_until_ms: float


@dataclass(frozen=True)
class IterationPlan:
    """What the round's rules make of an iteration on the simulated clock (see the module docstring).

    Made in two steps: :meth:`SimulatedClock.admit` (who asks, who gets a seat: ``decided`` False, the
    upload fields empty) and :meth:`SimulatedClock.decide` (each admitted device's times from its
    bytes, whose uploads count: ``decided`` True)."""

    iteration: int
    opened_ms: int
    admitted: tuple[str, ...]  # in admission order
    refused: tuple[str, ...]  # asked in the window, no seat left
    offline: tuple[str, ...]  # not online while the start window was open
    finished: tuple[str, ...]  # uploads the server takes, in arrival order
    late: tuple[str, ...]  # uploads after the window or after the iteration ended: OutOfTime
    dropped: tuple[str, ...]  # went offline before their upload was through (or their upload never came)
    end_ms: int
    valid: bool
    times: Mapping[str, DeviceTimes] = field(default_factory=dict)
    #: the admitted devices' simulated ask times (epoch ms)
    asks: Mapping[str, int] = field(default_factory=dict)
    #: the admitted devices' places in the iteration's seeded ask order (:func:`ask_rank`): ties of arrival
    ranks: Mapping[str, int] = field(default_factory=dict)
    #: the end of the start window (epoch ms): the update window begins by then at the latest
    start_end_ms: int = 0
    #: the uploads' outcome is known (False: admission only)
    decided: bool = True

    @property
    def start_ms(self) -> int:
        """When the iteration's first device asked (its opening when none did)."""
        return min(self.asks.values(), default=self.opened_ms)

    def summary(self) -> dict[str, object]:
        """The per-iteration fields of the results (simulated start/end in ms and hours since ``origin``)."""
        return {"sim_start_ms": self.start_ms, "sim_end_ms": self.end_ms, "admitted": len(self.admitted),
                "finished": len(self.finished), "late": len(self.late) + len(self.dropped),
                "dropped": len(self.dropped), "offline": len(self.offline), "refused": len(self.refused)}


def _of(nbytes: int | Mapping[str, int], fl_id: str) -> int | None:
    return nbytes if isinstance(nbytes, int) else nbytes.get(fl_id)


class SimulatedClock:
    """The simulated clock of one job: device profiles, a seed, an origin (epoch ms)."""

    def __init__(self, profiles: DeviceProfiles, seed: int = 0, origin_ms: int = 0):
        self.profiles = profiles
        self.seed = seed
        self.origin_ms = origin_ms

    def ask_time(self, fl_id: str, opened_ms: int) -> int | None:
        """When ``fl_id`` asks in an iteration opened at ``opened_ms``: at once if online, else when it
        next comes online (None: never)."""
        avail = self.profiles[fl_id].availability
        if avail is None:
            return opened_ms
        t = avail.next_online((opened_ms - self.origin_ms) / 1000.0)
        return None if t is None else self.origin_ms + math.ceil(t * 1000.0)

    def online_until(self, fl_id: str, at_ms: int) -> float:
        """The end (epoch ms) of ``fl_id``'s online session that contains ``at_ms`` (inf: always online)."""
        avail = self.profiles[fl_id].availability
        if avail is None:
            return math.inf
        end = avail.online_until((at_ms - self.origin_ms) / 1000.0)
        return math.inf if math.isinf(end) else self.origin_ms + end * 1000.0

    def device_times(self, fl_id: str, asked_ms: int, data_size: int, epochs: int, down_bytes: int,
                     up_bytes: int) -> DeviceTimes:
        """Download, training and upload of an admitted device, end to end (ms rounded up)."""
        p = self.profiles[fl_id]
        down = asked_ms + math.ceil(p.download_ms(down_bytes))
        trained = down + math.ceil(p.train_ms(data_size, epochs))
        up = trained + math.ceil(p.upload_ms(up_bytes))
        return DeviceTimes(asked_ms, down, trained, up, self.online_until(fl_id, asked_ms))

    def start_window(self, opened_ms: int, fl_ids: Iterable[str], start_window_ms: int
                     ) -> tuple[dict[str, int | None], int | None]:
        """Steps 1-2's times for the devices ``fl_ids`` in an iteration opened at ``opened_ms``: each one's ask
        time (None: never online again) and the end of the start window, ``min ask + start_window_ms`` (None:
        nobody asks). A device asks in the iteration iff its ask time is before that end: the server plans with
        this rule (:meth:`admit`) and a simulation's devices use it to stay silent while offline
        (:meth:`asking`)."""
        asks = {d: self.ask_time(d, opened_ms) for d in fl_ids}
        first = min((t for t in asks.values() if t is not None), default=None)
        return asks, None if first is None else first + start_window_ms

    def asking(self, opened_ms: int, fl_ids: Iterable[str], start_window_ms: int) -> frozenset[str]:
        """The devices of ``fl_ids`` (a simulation's whole population) that ask in the iteration opened at
        ``opened_ms``: online at some time of its start window (:meth:`start_window`)."""
        asks, end = self.start_window(opened_ms, fl_ids, start_window_ms)
        return frozenset(d for d, t in asks.items() if t is not None and end is not None and t < end)

    def admit(self, iteration: int, opened_ms: int, askers: Mapping[str, object] | list[str], *, threshold: int,
              start_window_ms: int) -> IterationPlan:
        """Steps 1-2 of the module docstring: who of ``askers`` (fl_ids) asks in the start window of the
        iteration opened at ``opened_ms``, and who gets a seat (``decided`` False)."""
        rank = ask_rank(self.seed, iteration, list(askers))
        asks, start_end = self.start_window(opened_ms, askers, start_window_ms)
        online = sorted((t, rank[d], d) for d, t in asks.items() if t is not None)
        if start_end is None:
            return IterationPlan(iteration, opened_ms, (), (), tuple(sorted(asks)), (), (), (), opened_ms, False,
                                 start_end_ms=opened_ms + start_window_ms, decided=False)
        in_window = [(t, r, d) for t, r, d in online if t < start_end]
        offline = sorted(d for d, t in asks.items() if t is None or t >= start_end)
        admitted = tuple(d for _, _, d in in_window[:threshold])
        refused = tuple(d for _, _, d in in_window[threshold:])
        return IterationPlan(iteration, opened_ms, admitted, refused, tuple(offline), (), (), (), start_end, False,
                             asks={d: int(asks[d]) for d in admitted},  # type: ignore[arg-type]
                             ranks={d: rank[d] for d in admitted}, start_end_ms=start_end, decided=False)

    def decide(self, plan: IterationPlan, data_sizes: Mapping[str, int], *, epochs: int, update_window_ms: int,
               needed: int, down_bytes: int | Mapping[str, int], up_bytes: int | Mapping[str, int]
               ) -> IterationPlan:
        """Steps 3-5 of the module docstring for an admission ``plan``: each admitted device's times from the
        bytes it received (``down_bytes``) and sent (``up_bytes``), one number for all or per fl_id; an
        admitted device without both counts (its upload never came) is *dropped*."""
        if not plan.admitted:
            return replace(plan, end_ms=plan.start_end_ms + update_window_ms, decided=True)
        rank = plan.ranks
        times = {}
        for d in plan.admitted:
            down, up = _of(down_bytes, d), _of(up_bytes, d)
            if down is not None and up is not None:
                times[d] = self.device_times(d, plan.asks[d], data_sizes[d], epochs, down, up)
        dropped = sorted(d for d in plan.admitted if d not in times or times[d].online_until_ms < times[d].uploaded_ms)
        arriving = sorted((times[d].uploaded_ms, rank[d], d) for d in times if d not in dropped)
        update_begin = min(arriving[0][0], plan.start_end_ms) if arriving else plan.start_end_ms
        window_end = update_begin + update_window_ms
        finished: list[str] = []
        late: list[str] = []
        end_ms = window_end
        for t, _, d in arriving:
            if t >= window_end or len(finished) >= needed:
                late.append(d)
                continue
            finished.append(d)
            if len(finished) == needed:
                end_ms = t
        return replace(plan, finished=tuple(finished), late=tuple(late), dropped=tuple(dropped), end_ms=int(end_ms),
                       valid=len(finished) >= needed, times=times, decided=True)

    def plan(self, iteration: int, opened_ms: int, askers: Mapping[str, int], *, threshold: int,
             start_window_ms: int, update_window_ms: int, needed: int, epochs: int,
             down_bytes: int | Mapping[str, int], up_bytes: int | Mapping[str, int]) -> IterationPlan:
        """The iteration ``iteration`` opened at ``opened_ms`` with ``askers`` (fl_id → data_size), both steps."""
        admission = self.admit(iteration, opened_ms, askers, threshold=threshold, start_window_ms=start_window_ms)
        return self.decide(admission, askers, epochs=epochs, update_window_ms=update_window_ms, needed=needed,
                           down_bytes=down_bytes, up_bytes=up_bytes)

    def hours(self, at_ms: int) -> float:
        """Simulated hours since the origin."""
        return (at_ms - self.origin_ms) / 3_600_000.0
