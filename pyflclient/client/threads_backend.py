"""``Simulation(..., backend="threads")``: every client a Java thread of this process's JVM.

:class:`EngineClients` makes one :class:`~.job.FLJob` per client and submits them all (one Java
call) to a ``com.mindspore.flclient.ClientEngine``: the round loops are state machines run by two
control threads, and ``max_trainers`` trainer threads load a model, train and evaluate. A Ray actor
(:mod:`.ray_backend`) runs its share of a simulation's clients with one of these, which is why
the availability ``population`` and the model relay (:meth:`EngineClients.model_seen`) are here.
It keeps to :class:`~.backend.ClientBackend`, the seam a :class:`~.simulation.Simulation` uses.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from . import jvm
from .backend import ActorInfo, EventSink
from .errors import FLJobError, java_errors
from .job import FLJob, JobResult
from .params import FLParameter

log = logging.getLogger("pyflclient.client.simulation")

__all__ = ["EngineClients"]


class EngineClients:
    """The thread backend: the clients as :class:`FLJob` objects on one Java ``ClientEngine`` of this JVM.

    A :class:`~.simulation.Simulation` with ``backend="threads"`` holds one; with ``backend="ray"`` each Ray
    actor holds one for its share of the clients, with ``population`` the fl_ids of the whole
    simulation, so every actor draws the same availability sample.

    Args:
        params / names: the clients (parameters complete: log path, fl_id, poll interval).
        sink: called with ``(client, kind, args)`` for every event, on the Java threads.
        callbacks: ``on_loss`` ... ``on_finish`` for :class:`FLJob`.
        population: the fl_ids the availability sample is drawn from (default: these clients').
        seeded_turns: when every client asks, they ask one after the other in a seeded order (fair,
            reproducible participation); off when the server orders the askers (its simulated clock).
        device_profiles: the simulated clock's profiles (loaded with the server's seed): a device asks only
            while online (:mod:`.availability`; the population's availability, read at the first
            client's server).
        trained_model_memory_mb: the JVM's budget for trained models kept in memory (None: unchanged).
    """

    def __init__(self, params: Sequence[FLParameter], names: Sequence[str], *, max_trainers: int,
                 sink: EventSink, callbacks: dict[str, Any] | None = None, eval_every: int = 1,
                 eval_fraction: float = 1.0, seed: int = 0, clients_per_iteration: int | None = None,
                 population: Sequence[str] | None = None, durable_model_files: bool = False,
                 trained_model_memory_mb: int | None = None,
                 seeded_turns: bool = True, device_profiles: Any = None,
                 jar_path: str | None = None, case_jar_path: str | None = None) -> None:
        jvm.start_jvm(jar_path, case_jar_path)
        self.max_trainers = max_trainers
        self._engine = jvm.jclass("com.mindspore.flclient.ClientEngine")(max_trainers)
        self._engine.setEvaluation(jvm.jclass("com.mindspore.flclient.EvaluationPlan")(
            eval_every, float(eval_fraction), int(seed)))
        java_population = None
        if population is not None:
            java_population = jvm.jclass("java.util.ArrayList")(len(population))
            for fl_id in population:
                java_population.add(fl_id)
        self._engine.setCheckIn(clients_per_iteration or 0, int(seed), java_population)
        # fair by default: devices that all ask take seeded turns (ClientEngine.setSeededTurns)
        self._engine.setSeededTurns(bool(seeded_turns))
        self.availability = None
        if device_profiles is not None and params:
            from .availability import AvailabilityHook, make_hook

            first = params[0]
            self.availability = AvailabilityHook(first.domain_name, device_profiles,
                                                 population if population is not None else
                                                 [str(p.client_id) for p in params],
                                                 None if first.cert_path is None else str(first.cert_path))
            self._engine.setAskHook(make_hook(self.availability))
        self._engine.setDurableModelFiles(bool(durable_model_files))
        if trained_model_memory_mb is not None:  # JVM-wide: Java's TrainedModels (Simulation checked the value)
            jvm.jclass("com.mindspore.flclient.cases.TrainedModels").setBudget(int(trained_model_memory_mb) << 20)
        self._waiter: Any = None
        self.jobs: list[FLJob] = []
        callbacks = callbacks or {}
        for name, p in zip(names, params):
            jvm.deliver_signals()  # a safe point: Ctrl-C while thousands of clients are set up
            job = FLJob(p, callbacks.get("on_loss"), callbacks.get("on_accuracy"), callbacks.get("on_iteration"),
                        callbacks.get("on_finish"), name=name)
            job.add_listener(sink)
            self.jobs.append(job)

    def start(self) -> None:
        for job in self.jobs:
            if job.params.train_dataset is None:
                raise FLJobError(f"client {job.name}: train_dataset is required to train")
        java_jobs = jvm.jclass("java.util.ArrayList")(len(self.jobs))
        for job in self.jobs:
            java_jobs.add(job.java_job)
        with java_errors("starting the clients"):
            self._waiter = self._engine.submitAll(java_jobs)
        for job, run in zip(self.jobs, self._engine.runs()):
            job.start_on(run)

    def is_running(self) -> bool:
        return self._waiter is not None and bool(self._waiter.isAlive())

    def join(self, timeout: float | None, on_tick: Callable[[], None]) -> bool:
        """Wait for every client in 200 ms slices (``on_tick`` after each); False on timeout."""
        return jvm.join_java_threads([self._waiter], timeout, on_tick=on_tick)

    def results(self) -> dict[str, JobResult]:
        """Every client's result once all have ended; the engine's threads go."""
        self._engine.close()
        return {job.name: job.wait(0) for job in self.jobs}  # type: ignore[misc]

    def stop(self, timeout: float) -> tuple[bool, dict[str, JobResult]]:
        """Stop every client, wait up to ``timeout`` s together; (all ended, results of the ended ones)."""
        for job in self.jobs:
            job.mark_stopped()
        self._engine.stopAll()
        ended = self._waiter is None or jvm.join_java_threads([self._waiter], timeout, absorb_interrupts=True)
        done: dict[str, JobResult] = {}
        for job in self.jobs:
            if self._waiter is not None and not job.is_running():
                r = job.wait(0)
                if r is not None:
                    done[job.name] = r
        if self.availability is not None:
            self.availability.close()
        if ended:
            self._engine.close()
        else:
            alive = [job.name for job in self.jobs if job.is_running()]
            log.warning("%d clients still running %.1f s after stop: %s", len(alive), timeout, alive[:10])
        return ended, done

    def actors(self) -> list[ActorInfo]:
        """None: the clients run in this process."""
        return []

    def local_jobs(self) -> list[FLJob]:
        """Every client's :class:`FLJob` (the same list each call)."""
        return self.jobs

    def model_seen(self, iteration: int, plan_iterations: int) -> None:
        """A client elsewhere (another actor) received the model of ``iteration``: wake the waiting ones."""
        self._engine.modelSeen(int(iteration), int(plan_iterations))

    def rejoin_after_model(self, iteration: int) -> None:
        """The clients ask to take part only once the model of ``iteration`` is out (a restarted actor's)."""
        self._engine.rejoinAfterModel(int(iteration))

    def newest_model(self) -> tuple[int, int]:
        """(the newest iteration whose model a client here received or was told of, the plan's iterations)."""
        return int(self._engine.newestModelSeen()), int(self._engine.planIterations())
