"""Where the iteration state lives: a small async interface and its in-memory implementation.

Everything several server processes would have to agree on goes through
:class:`StateStore`: the current iteration, who was admitted with which
``data_size``, every accepted upload (held until the iteration closes, so that FedAvg
can sum them in fl_id order: the aggregate then does not depend on which upload
arrived first, or through which process), when the windows began, and the published
model of every finished iteration. Each method is one atomic step
(a Redis store implements each as one Lua script / MULTI block), and the rules
that decide *what* to do (thresholds, windows, validity) stay in
:mod:`pyflclient.server.rounds`, so swapping the store changes no rule.

Methods are ``async`` because a networked store is; the in-memory store never
suspends, so on one event loop each call is trivially atomic. :class:`MemoryStore`
is the default (one process, any number of ports);
:class:`~pyflclient.server.redis_store.RedisStore` is the shared one (several
processes, one job). A store that cannot be reached raises :class:`StoreUnavailable`
(devices get ``SystemError`` and retry).
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from pyflclient.server.strategies.base import DeviceUpload, State

__all__ = ["Model", "Admission", "Upload", "IterationView", "ClosedIteration", "StateStore", "MemoryStore",
           "StoreUnavailable", "CipherAdd", "Frozen"]

Model = Mapping[str, np.ndarray]


class StoreUnavailable(ConnectionError):
    """The shared store cannot be reached right now; nothing was changed by the failed call
    (or the change is all there: each call is one atomic step). Retry later."""


class Admission(enum.Enum):
    ADMITTED = "admitted"
    ALREADY_ADMITTED = "already admitted"   # a retry of the same fl_id: answered like the first time
    FULL = "threshold reached"
    WINDOW_OVER = "start_fl_job_time_window is over"
    ADDRESS_FULL = "the device's address holds its share of the seats"  # max_admissions_per_address
    CLOSED = "iteration closed"             # aggregating / publishing, or not the current iteration


class Upload(enum.Enum):
    ACCEPTED = "accepted"
    NOT_ADMITTED = "fl_id was not admitted in this iteration"
    DUPLICATE = "fl_id already uploaded in this iteration"
    CLOSED = "iteration closed"


class CipherAdd(enum.Enum):
    """Outcome of one device's entry into a PW_ENCRYPT phase (``StateStore.cipher_add``)."""

    ADDED = "added"
    DUPLICATE = "already sent in this phase"
    FROZEN = "this phase is over"
    CLOSED = "iteration closed"


@dataclass(frozen=True)
class Frozen:
    """A PW_ENCRYPT phase that is over: when, and the fl_ids that made it (sorted)."""

    at_ms: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class IterationView:
    """A snapshot of the current iteration, for replies and timers."""

    iteration: int
    finished: bool                 # the whole job is over
    closed: bool                   # no more admissions/uploads for this iteration
    admitted: int
    uploaded: int
    start_window_began_ms: int | None
    update_window_began_ms: int | None


@dataclass
class ClosedIteration:
    """What :meth:`StateStore.close` hands to the one caller that closed the iteration."""

    iteration: int
    admitted: int
    uploaded: int
    data_size: int
    uploads: dict[str, DeviceUpload]   # fl_id -> upload; the aggregator reads them in fl_id order
    start_window_began_ms: int | None


class StateStore(abc.ABC):
    """The shared state of one FL job (see the module docstring)."""

    #: True when other server processes change this state too: their windows, closes and
    #: publications are then only learnt from the store (``Rounds`` follows it)
    shared: bool = False

    @abc.abstractmethod
    async def begin(self, iteration: int, previous_model: Model, finished: bool = False,
                    state: State | None = None) -> None:
        """Start (or resume) the job at ``iteration`` whose starting model is ``previous_model``, published
        with the job's ``state`` (the aggregator's and the early stop's; {} at the job's start)."""

    @abc.abstractmethod
    async def view(self) -> IterationView:
        """The current iteration's state."""

    @abc.abstractmethod
    async def admit(self, iteration: int, fl_id: str, data_size: int, now_ms: int, threshold: int,
                    window_ms: int, *, remote: str | None = None, per_address: int = 0
                    ) -> tuple[Admission, IterationView]:
        """Admit ``fl_id`` while fewer than ``threshold`` are admitted, the window (begun now by
        the first admission) is open and, when ``per_address`` > 0, ``remote`` holds fewer than
        ``per_address`` seats of the iteration."""

    @abc.abstractmethod
    async def data_size(self, iteration: int, fl_id: str) -> int | None:
        """The ``data_size`` ``fl_id`` was admitted with in ``iteration``; None if it was not admitted."""

    @abc.abstractmethod
    async def add_upload(self, iteration: int, fl_id: str, weights: Model, now_ms: int, *,
                         loss: float | None = None, control_variate: Model | None = None
                         ) -> tuple[Upload, IterationView]:
        """Keep an admitted device's upload until the iteration closes (begins the update window):
        its weights, its ``upload_loss`` and its control variate (Scaffold's Δc_i), as sent.

        ``weights`` may be read-only views into the request body: a store keeps them (or their
        bytes) as they are and never writes into them."""

    @abc.abstractmethod
    async def begin_update_window(self, iteration: int, now_ms: int) -> bool:
        """Begin the update window now if it has not begun; True when this call began it."""

    @abc.abstractmethod
    async def close(self, iteration: int) -> ClosedIteration | None:
        """Close ``iteration`` to admissions and uploads; only the first caller gets its uploads.

        A shared store hands them again to a later caller if the iteration is still unpublished
        when the first caller's lease has run out (that process died while finishing)."""

    @abc.abstractmethod
    async def publish(self, iteration: int, model: Model, finished: bool, state: State | None = None) -> None:
        """Make ``model`` the served model of ``iteration``, with the job's ``state`` after it; the next
        iteration (if any) begins.

        A shared store ignores the publication of an iteration already published (a closer whose
        lease ran out and was taken over publishes the same model, computed from the same uploads)."""

    @abc.abstractmethod
    async def model(self, iteration: int) -> Model | None:
        """The published model of ``iteration`` (0: the starting model), or None if not held."""

    @abc.abstractmethod
    async def latest(self) -> tuple[int, Model]:
        """The newest published model and its iteration."""

    @abc.abstractmethod
    async def state(self, iteration: int) -> State:
        """The job's state published with the model of ``iteration`` ({} when there is none, or it is no
        longer kept: the newest is always kept)."""

    # -- PW_ENCRYPT phases (pyflclient.server.secure_aggregation) -------------------------
    # A phase of iteration k holds one entry per fl_id (plus "fanout" entries filed under other
    # devices: the shares a device made for each holder) until it is frozen; the frozen member list
    # never changes. All of it goes when k is published.

    @abc.abstractmethod
    async def cipher_add(self, iteration: int, phase: str, fl_id: str, value: bytes,
                         fanout: Mapping[str, bytes] | None = None) -> CipherAdd:
        """File ``value`` under (phase, fl_id) and each ``fanout[holder]`` under (phase>holder, fl_id),
        atomically, unless fl_id already did, the phase is frozen or the iteration is not current."""

    @abc.abstractmethod
    async def cipher_freeze(self, iteration: int, phase: str, now_ms: int) -> Frozen | None:
        """Freeze ``phase`` with the fl_ids filed under it now (phase ``admitted``: the admitted devices)
        unless it is frozen already; returns the frozen state, None when ``iteration`` is not current."""

    @abc.abstractmethod
    async def cipher_frozen(self, iteration: int, phase: str) -> Frozen | None:
        """The frozen state of ``phase``, None while it is open (or the iteration is not current)."""

    @abc.abstractmethod
    async def cipher_values(self, iteration: int, phase: str) -> dict[str, bytes]:
        """fl_id → value of ``phase`` (or of ``phase>holder`` for fanout entries)."""

    @abc.abstractmethod
    async def cipher_count(self, iteration: int, phase: str) -> int:
        """How many fl_ids are filed under ``phase``."""

    # -- traffic (pyflclient.server.traffic): the byte counts of every process of a shared store ----------
    # Unshared stores keep none: the one process's own count is the iteration's.

    async def add_traffic(self, iteration: int, counts: Mapping[str, int]) -> None:
        """Add one process's counts (``requests``, ``bytes_up``, ``bytes_down``, ``<round>|requests`` …) to
        ``iteration``'s tally, or to the first later iteration whose tally is not taken yet."""

    async def take_traffic(self, iteration: int) -> dict[str, int]:
        """``iteration``'s tally, summed over the processes, taken once: later counts go to the next one."""
        return {}

    # -- what the devices report and who serves (pyflclient.server.metrics); optional for a store

    async def push_device_metrics(self, iteration: int, loss: float, accuracy: float) -> None:
        """File one device's pushMetrics (loss, accuracy) under the model of ``iteration``."""

    async def device_metrics(self, iteration: int) -> list[tuple[float, float]]:
        """The (loss, accuracy) pushes filed under ``iteration``, in arrival order."""
        return []

    async def announce_process(self, process: str, status: Mapping[str, Any]) -> None:
        """Record this server process's ``status`` (a JSON-able mapping with ``seen_ms``) in the group."""

    async def processes(self) -> dict[str, dict[str, Any]]:
        """The last announced status of every process of the group, by process name."""
        return {}

    async def aclose(self) -> None:
        """Let go of connections (the server is stopping); nothing to do for the in-memory store."""


@dataclass
class _Iteration:
    number: int
    shapes: dict[str, tuple[int, ...]]
    admitted: dict[str, int] = field(default_factory=dict)
    seats: dict[str, int] = field(default_factory=dict)  # remote address -> seats taken (max_admissions_per_address)
    start_window_began_ms: int | None = None
    update_window_began_ms: int | None = None
    closed: bool = False
    uploads: dict[str, DeviceUpload] = field(default_factory=dict)
    cipher: dict[str, dict[str, bytes]] = field(default_factory=dict)  # phase (or phase>holder) -> fl_id -> value
    frozen: dict[str, Frozen] = field(default_factory=dict)


class MemoryStore(StateStore):
    """All state in this process: one server process, any number of ports."""

    def __init__(self) -> None:
        self._models: dict[int, Model] = {}
        self._states: dict[int, State] = {}
        self._latest = 0
        self._finished = False
        self._it: _Iteration | None = None
        self._pushed: dict[int, list[tuple[float, float]]] = {}  # iteration -> pushMetrics (loss, accuracy)
        self._processes: dict[str, dict[str, Any]] = {}

    def _current(self) -> _Iteration:
        if self._it is None:
            raise RuntimeError("the store has not begun a job: call begin() first")
        return self._it

    def _view(self) -> IterationView:
        it = self._current()
        return IterationView(it.number, self._finished, it.closed or self._finished, len(it.admitted),
                             len(it.uploads), it.start_window_began_ms, it.update_window_began_ms)

    async def begin(self, iteration: int, previous_model: Model, finished: bool = False,
                    state: State | None = None) -> None:
        self._models = {iteration - 1: previous_model}
        self._states = {iteration - 1: dict(state or {})}
        self._latest = iteration - 1
        self._finished = finished
        shapes = {n: np.shape(a) for n, a in previous_model.items()}
        # a finished job stays on its last iteration, as it does when it finishes in this process
        self._it = _Iteration(iteration - 1, shapes, closed=True) if finished else _Iteration(iteration, shapes)

    async def view(self) -> IterationView:
        return self._view()

    async def admit(self, iteration: int, fl_id: str, data_size: int, now_ms: int, threshold: int,
                    window_ms: int, *, remote: str | None = None, per_address: int = 0
                    ) -> tuple[Admission, IterationView]:
        it = self._current()
        if self._finished or it.closed or iteration != it.number:
            return Admission.CLOSED, self._view()
        if fl_id in it.admitted:
            return Admission.ALREADY_ADMITTED, self._view()
        if len(it.admitted) >= threshold:
            return Admission.FULL, self._view()
        if (it.start_window_began_ms is not None and now_ms >= it.start_window_began_ms + window_ms
                or "admitted" in it.frozen):  # PW_ENCRYPT froze the admitted devices (window over elsewhere)
            return Admission.WINDOW_OVER, self._view()
        if per_address > 0 and remote is not None:
            if it.seats.get(remote, 0) >= per_address:
                return Admission.ADDRESS_FULL, self._view()
            it.seats[remote] = it.seats.get(remote, 0) + 1
        if it.start_window_began_ms is None:
            it.start_window_began_ms = now_ms
        it.admitted[fl_id] = data_size
        return Admission.ADMITTED, self._view()

    async def data_size(self, iteration: int, fl_id: str) -> int | None:
        it = self._current()
        return it.admitted.get(fl_id) if it.number == iteration else None

    async def add_upload(self, iteration: int, fl_id: str, weights: Model, now_ms: int, *,
                         loss: float | None = None, control_variate: Model | None = None
                         ) -> tuple[Upload, IterationView]:
        it = self._current()
        if self._finished or it.closed or iteration != it.number:
            return Upload.CLOSED, self._view()
        if fl_id not in it.admitted:
            return Upload.NOT_ADMITTED, self._view()
        if fl_id in it.uploads:
            return Upload.DUPLICATE, self._view()
        if "uploads" in it.frozen:  # PW_ENCRYPT's upload phase is over: a later upload could not be unmasked
            return Upload.CLOSED, self._view()
        it.uploads[fl_id] = DeviceUpload(it.admitted[fl_id], weights, loss, control_variate or {})
        if it.update_window_began_ms is None:
            it.update_window_began_ms = now_ms
        return Upload.ACCEPTED, self._view()

    async def begin_update_window(self, iteration: int, now_ms: int) -> bool:
        it = self._current()
        if it.number != iteration or it.closed or it.update_window_began_ms is not None:
            return False
        it.update_window_began_ms = now_ms
        return True

    async def close(self, iteration: int) -> ClosedIteration | None:
        it = self._current()
        if it.number != iteration or it.closed or self._finished:
            return None
        it.closed = True
        return ClosedIteration(it.number, len(it.admitted), len(it.uploads),
                               sum(u.data_size for u in it.uploads.values()), dict(it.uploads),
                               it.start_window_began_ms)

    async def publish(self, iteration: int, model: Model, finished: bool, state: State | None = None) -> None:
        it = self._current()
        if it.number != iteration or not it.closed:
            raise RuntimeError(f"publish({iteration}) while iteration {it.number} is current "
                               f"({'closed' if it.closed else 'open'})")
        self._models[iteration] = model
        self._states[iteration] = dict(state or {})
        self._latest = iteration
        self._finished = finished
        if not finished:
            self._it = _Iteration(iteration + 1, it.shapes)

    async def model(self, iteration: int) -> Model | None:
        return self._models.get(iteration)

    async def latest(self) -> tuple[int, Model]:
        return self._latest, self._models[self._latest]

    async def state(self, iteration: int) -> State:
        return self._states.get(iteration, {})

    def _cipher_iteration(self, iteration: int) -> _Iteration | None:
        it = self._current()
        return None if self._finished or it.number != iteration else it

    async def cipher_add(self, iteration: int, phase: str, fl_id: str, value: bytes,
                         fanout: Mapping[str, bytes] | None = None) -> CipherAdd:
        it = self._cipher_iteration(iteration)
        if it is None or it.closed:
            return CipherAdd.CLOSED
        if phase in it.frozen:
            return CipherAdd.FROZEN
        entries = it.cipher.setdefault(phase, {})
        if fl_id in entries:
            return CipherAdd.DUPLICATE
        entries[fl_id] = bytes(value)
        for holder, data in (fanout or {}).items():
            it.cipher.setdefault(f"{phase}>{holder}", {})[fl_id] = bytes(data)
        return CipherAdd.ADDED

    async def cipher_freeze(self, iteration: int, phase: str, now_ms: int) -> Frozen | None:
        it = self._cipher_iteration(iteration)
        if it is None:
            return None
        if phase not in it.frozen:
            members = it.admitted if phase == "admitted" else it.cipher.get(phase, {})
            it.frozen[phase] = Frozen(now_ms, tuple(sorted(members)))
        return it.frozen[phase]

    async def cipher_frozen(self, iteration: int, phase: str) -> Frozen | None:
        it = self._cipher_iteration(iteration)
        return None if it is None else it.frozen.get(phase)

    async def cipher_values(self, iteration: int, phase: str) -> dict[str, bytes]:
        it = self._cipher_iteration(iteration)
        return {} if it is None else dict(it.cipher.get(phase, {}))

    async def cipher_count(self, iteration: int, phase: str) -> int:
        it = self._cipher_iteration(iteration)
        return 0 if it is None else len(it.cipher.get(phase, {}))

    async def push_device_metrics(self, iteration: int, loss: float, accuracy: float) -> None:
        self._pushed.setdefault(iteration, []).append((float(loss), float(accuracy)))

    async def device_metrics(self, iteration: int) -> list[tuple[float, float]]:
        return list(self._pushed.get(iteration, ()))

    async def announce_process(self, process: str, status: Mapping[str, Any]) -> None:
        self._processes[process] = dict(status)

    async def processes(self) -> dict[str, dict[str, Any]]:
        return {name: dict(status) for name, status in self._processes.items()}
