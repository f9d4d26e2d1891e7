"""Where a :class:`~.simulation.Simulation`'s clients run: the one seam between the simulation and its backends.

A simulation validates its options, completes each client's parameters, records events,
draws the bars and collects the results; *where* the clients run is a backend's business.
:class:`ClientBackend` is everything the simulation asks of one, and both backends keep to it:

* ``"threads"`` — :class:`~.threads_backend.EngineClients`: every client an :class:`~.job.FLJob`
  on one Java ``ClientEngine`` of this process's JVM;
* ``"ray"`` — :class:`~.ray_backend.RayClients`: the clients split over Ray actors, each a
  process with its own JVM running its share as ``EngineClients``, their events relayed here.

A backend calls the simulation's :data:`EventSink` with ``(client, kind, args)`` for every event
of a client (the thread backend on the Java threads, the Ray backend on the waiting thread) and
is otherwise driven only from the thread that waits. This module imports neither JPype nor Ray,
so the two backend modules and the simulation can all import it without importing each other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .job import FLJob, JobResult

__all__ = ["BACKENDS", "EventSink", "ActorInfo", "ClientBackend"]

#: the names ``Simulation(backend=...)`` and ``pyflclient simulate --backend`` accept
BACKENDS = ("threads", "ray")

#: ``sink(client, kind, args)``: one event of one client (``kind``: loss, accuracy, iteration, progress, finish,
#: traffic)
EventSink = Callable[[str, str, tuple[Any, ...]], None]


@dataclass
class ActorInfo:
    """One worker process of a backend that spreads the clients (a Ray actor), as the driver last heard of it.

    ``state``: ``starting`` (not answered yet), ``running``, ``restarting`` (died; Ray starts it
    again), ``done`` (its clients have ended), ``dead`` (died for good; its clients FAILED).
    """

    index: int
    clients: list[str]
    pid: int | None = None
    node: str | None = None
    restarts: int = 0
    state: str = "starting"
    peak_rss_mib: float = math.nan

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "restarting")


@runtime_checkable
class ClientBackend(Protocol):
    """What a :class:`~.simulation.Simulation` asks of the place its clients run.

    Created with the clients' complete parameters and the simulation's sink; nothing runs
    before :meth:`start`. Every method is called from the simulation's waiting thread.
    """

    def start(self) -> None:
        """Start every client's round loop and return at once."""
        ...

    def is_running(self) -> bool:
        """Whether any client has not ended yet (False before :meth:`start`)."""
        ...

    def join(self, timeout: float | None, on_tick: Callable[[], None]) -> bool:
        """Wait for every client in short slices (``on_tick`` after each); False on timeout."""
        ...

    def results(self) -> dict[str, JobResult]:
        """Every client's result by name, once all have ended; the backend's threads (processes) go."""
        ...

    def stop(self, timeout: float) -> tuple[bool, dict[str, JobResult]]:
        """Stop every client, waiting up to ``timeout`` s for all together; (all ended, the ended ones' results)."""
        ...

    def actors(self) -> list[ActorInfo]:
        """A snapshot of the worker processes (empty when the clients run in this process)."""
        ...

    def local_jobs(self) -> list[FLJob]:
        """The :class:`~.job.FLJob` objects that live in this process (none when they live in actors)."""
        ...
