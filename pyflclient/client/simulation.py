"""Many clients in one JVM: the seed's N ``java -jar`` processes as N Java threads.

A :class:`Simulation` turns one :class:`FLParameter` per client into one
:class:`FLJob` each, all sharing the process's JVM, and submits them (one Java
call) to a ``com.mindspore.flclient.ClientEngine``: the round loops are state
machines run by two control threads, and ``max_trainers`` trainer threads
(default: the number of cores) load a model, train and evaluate, so 50 clients
on 2 cores do not thrash. A client waiting for the server — for admission, for
``next_req_time``, for the iteration's end — holds no thread and no tensors.
Every client writes its own ``client_i/client.log``.

Events from the client threads are recorded in a :class:`SimulationResults`
(thread safe) and queued; the thread that waits (``run()`` / ``wait()``)
drains the queue between 200 ms join slices to draw one tqdm bar per
iteration (clients admitted, trained and uploaded, samples/s, ETA: see
:mod:`.progress`), to log one line per iteration and to call ``on_round``
with each evaluated iteration's AVG / TOP5 / LOW5 — so drawing never happens
on a Java thread, and Ctrl-C reaches the waiting thread within one slice and
stops every client.

Backends: ``backend="threads"`` (default) runs every client in this process's JVM
(:class:`~.threads_backend.EngineClients`); ``backend="ray"`` splits them over Ray
actors, each a process with its own JVM running its share the same way, and relays
their events here (:mod:`.ray_backend`, imported only then: Ray is the optional extra
``pyflclient[ray]``). The simulation uses either through one typed seam,
:class:`~.backend.ClientBackend`, so bars, log lines, callbacks and results are the same.

Evaluation: r1.6 evaluates every client after every iteration, which with
thousands of clients costs as much as training them. ``eval_every=k`` evaluates
after every k-th iteration (and the last), ``eval_fraction=f`` only a seeded
sample of the clients (each with chance f, drawn from ``(seed, fl_id,
iteration)``: the same clients for the same seed, whatever the threads).
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from . import jvm
from .backend import BACKENDS, ActorInfo, ClientBackend
from .errors import FLJobError
from .job import STOP_TIMEOUT_S, AccuracyCallback, FinishCallback, FLJob, IterationCallback, JobResult, \
    LossCallback
from .params import FLParameter
from .progress import IterationCounts, RoundProgress
from .results import IterationSummary, SimulationResults
from .threads_backend import EngineClients

log = logging.getLogger(__name__)

#: the devices' HTTP timeout (s) on the simulated clock unless given: the server holds each updateModel
#: until every admitted device's upload is in (their counted bytes decide who is late), which takes as
#: long as the engine needs to train them all (r1.6's default of 60 s is too short for large iterations)
SIMULATED_CLOCK_TIMEOUT_S = 600

RoundCallback = Callable[[IterationSummary], Any]


def params_for_clients(clients: Sequence[Any], models: Sequence[str | os.PathLike[str]], domain_name: str,
                       **fields: Any) -> list[FLParameter]:
    """One :class:`FLParameter` per client of a data folder (``pyflclient.data``'s ``ClientData``).

    Client *i* trains on its ``train_data``/``train_label``, evaluates on its
    ``test_data``/``test_label`` (when it has them) and owns ``models[i]``; its
    ``client_id`` (the fl_id the server sees) is ``f<i>_<name>``. ``fields`` are
    further FLParameter fields, the same for every client (``batch_size=32``, ...).
    """
    clients, models = list(clients), list(models)
    if len(models) < len(clients):
        raise ValueError(f"models: {len(clients)} clients need {len(clients)} model files, got {len(models)}")
    params = []
    for i, (c, m) in enumerate(zip(clients, models)):
        test = (c.test_data, c.test_label) if getattr(c, "test_data", None) is not None else None
        values = dict(domain_name=domain_name, train_dataset=(c.train_data, c.train_label), test_dataset=test,
                      train_model_path=m, client_id=f"f{i}_{c.name}")
        values.update(fields)
        params.append(FLParameter(**values))
    return params


class Simulation:
    """N federated-learning clients as Java daemon threads in this process's JVM, or spread over Ray actors.

    Args:
        params: one :class:`FLParameter` per client (each with its own model file).
        output_dir: where ``client_i/client.log`` (and, with :meth:`save`, the
            results) go; created if needed.
        max_trainers: how many clients may train locally at the same time
            (default: ``os.cpu_count()``; with Ray: per actor, default ``ray_cpus_per_actor``).
        progress: draw a tqdm bar per iteration (stderr) while waiting.
        iterations: total iterations for the bar titles (the server's plan decides
            the real number; this is only for display).
        names: the clients' names (default ``client_0`` ...).
        poll_interval_ms: the wait between two getModel polls while an iteration
            runs, for clients whose ``sleep_time_ms`` is not set. r1.6's 1000 ms
            leaves every client idle up to a second after each iteration ends; much
            shorter polls cost server CPU (50 clients at 100 ms: 500 requests/s). It is
            also the first backoff wait after a failed exchange; how long a client keeps
            retrying a server that is away is ``retry_timeout_s`` (Java default 300 s).
        on_loss / on_accuracy / on_iteration / on_finish: per-client callbacks as in
            :class:`FLJob` (called on the client threads; with Ray, on the waiting thread
            of this process as the actors' events arrive).
        on_round: called on the waiting thread with the :class:`IterationSummary`
            of each evaluated iteration once it is over.
        eval_every: evaluate the new global model after every k-th iteration and the last one.
        eval_fraction: in those, each client evaluates with this chance (a seeded sample).
        clients_per_iteration: simulated availability: in each iteration only this many clients,
            a sample drawn from ``seed``, ask to take part (the others wait for the next model). Set
            it to the server's ``start_fl_job_threshold`` and the server's first-come rule admits
            exactly the sample: participation is uniform and reproducible. None (default): every
            client asks, and a client that was not admitted asks again as soon as the next
            global model is out.
        seed: the seed of the evaluation sample, of the availability sample and of the order in which
            waiting clients ask: without ``clients_per_iteration`` every client asks, one after the
            other in a seeded uniform shuffle per iteration (never the threads' scheduling), so the
            server's first-come rule gives fair participation and a run replays with its seed.
        device_profiles: the device profiles the server runs its simulated clock on (its
            ``device_profiles``: a population name, a JSON file, FedScale's capacity file;
            docs/devices.md). Checked here (one line naming file, device, field); the server then
            orders the askers itself, so the clients all ask at once instead of taking turns — each only
            while it is online: an offline client sends nothing and waits on the simulated clock until
            an iteration in which it is online (:mod:`.availability`; same ``seed`` as the server's
            ``device_seed``).
        device_availability: FedScale's client behaviour trace, as the server's ``device_availability``
            (the clients need it to know when they are offline).
        durable_model_files: force each client's model file to disk after getModel, as a device does
            (some 6 ms of fsync per client and iteration on a trainer thread). Default False: a
            simulation's model copies are scratch; the write stays atomic (temp file + rename), so a
            crash of the process leaves the old or the new model, never a torn one.
        trained_model_memory_mb: MiB of a round's scratch state (trained models and accepted uploads,
            upload → getModel) each JVM keeps in memory instead of their ``.trained`` / ``.upload``
            scratch files, which only what is past it goes to (Java's ``TrainedModels``; default None:
            the JVM's ``-Dflclient.trainedModelMemoryMb``, else 48; 0 keeps none). For the whole JVM of
            this process (or of each Ray actor). Results do not depend on it.
        jar_path / case_jar_path: jars if the JVM is not running yet (with Ray: paths on the actors' nodes).
        backend: ``"threads"`` (this process's JVM) or ``"ray"`` (Ray actors, each a JVM of clients;
            needs ``pip install pyflclient[ray]``; see docs/cluster.md).
        ray_address: the Ray cluster to join (``"auto"``, ``"HOST:PORT"``); None: join the Ray of this
            process if ``ray.init`` ran, else start a local one (ended with the simulation).
        ray_actors: how many actors (default: the cluster's CPUs / ``ray_cpus_per_actor``, at most one
            per client).
        ray_cpus_per_actor: CPUs Ray reserves per actor (default 1).
        ship_data: send each client's bin files and model file through Ray's object store to its actor,
            which works on a local copy; default False: the actors read the paths as given (one
            machine, or a shared filesystem).
        max_actor_restarts: how many times Ray restarts a dead actor; its clients start over and rejoin
            the job (default 0: they end FAILED and the others go on).
    """

    def __init__(self, params: Sequence[FLParameter], *, output_dir: str | os.PathLike[str] = ".",
                 max_trainers: int | None = None, progress: bool = True, iterations: int | None = None,
                 names: Sequence[str] | None = None, poll_interval_ms: int | None = 250,
                 on_loss: Optional[LossCallback] = None, on_accuracy: Optional[AccuracyCallback] = None,
                 on_iteration: Optional[IterationCallback] = None, on_finish: Optional[FinishCallback] = None,
                 on_round: Optional[RoundCallback] = None, eval_every: int = 1, eval_fraction: float = 1.0,
                 clients_per_iteration: int | None = None, seed: int = 0, durable_model_files: bool = False,
                 trained_model_memory_mb: int | None = None, jar_path: str | None = None,
                 case_jar_path: str | None = None, backend: str = "threads",
                 ray_address: str | None = None, ray_actors: int | None = None, ray_cpus_per_actor: float = 1,
                 ship_data: bool = False, max_actor_restarts: int = 0,
                 device_profiles: str | os.PathLike[str] | None = None,
                 device_availability: str | os.PathLike[str] | None = None) -> None:
        params = list(params)
        if not params:
            raise ValueError("params: give one FLParameter per client (got none)")
        names = list(names) if names is not None else [f"client_{i}" for i in range(len(params))]
        if len(names) != len(params) or len(set(names)) != len(names):
            raise ValueError(f"names: need {len(params)} distinct names, got {names!r}")
        models = [p.train_model_path for p in params]
        if len(set(models)) != len(models):
            raise ValueError("params: two clients share a train_model_path; getModel overwrites it, so each "
                             "client needs its own copy (pyflclient copy-models)")
        if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
            raise ValueError(f"eval_every: {eval_every!r}; expected an integer >= 1 (1: after every iteration)")
        if not 0.0 < float(eval_fraction) <= 1.0:
            raise ValueError(f"eval_fraction: {eval_fraction!r}; expected a number in (0, 1]")
        if clients_per_iteration is not None and (isinstance(clients_per_iteration, bool) or not isinstance(
                clients_per_iteration, int) or not 1 <= clients_per_iteration <= len(params)):
            raise ValueError(f"clients_per_iteration: {clients_per_iteration!r}; expected 1..{len(params)} "
                             f"(the clients simulated) or None (all ask)")
        if backend not in BACKENDS:
            raise ValueError(f"backend: {backend!r}; expected one of {', '.join(BACKENDS)}")
        if backend == "threads":
            given = {"ray_address": ray_address, "ray_actors": ray_actors, "ship_data": ship_data or None,
                     "max_actor_restarts": max_actor_restarts or None}
            extra = [k for k, v in given.items() if v is not None]
            if extra:
                raise ValueError(f"{extra[0]}: {given[extra[0]]!r} is an option of backend='ray'; "
                                 f"add backend='ray' or leave it out")
        if max_trainers is None:
            max_trainers = (os.cpu_count() or 1) if backend == "threads" else max(1, int(ray_cpus_per_actor))
        if isinstance(max_trainers, bool) or not isinstance(max_trainers, int) or max_trainers < 1:
            raise ValueError(f"max_trainers: {max_trainers!r}; expected an integer >= 1")
        self.output_dir = Path(output_dir).resolve()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self.max_trainers = max_trainers
        self.progress = progress
        self.iterations = iterations
        self.on_round = on_round
        self.results = SimulationResults(names)
        self._events: "queue.SimpleQueue[tuple[str, str, tuple[Any, ...]]]" = queue.SimpleQueue()
        self.eval_every, self.eval_fraction, self.seed = eval_every, float(eval_fraction), int(seed)
        self.clients_per_iteration = clients_per_iteration
        params = [self._complete(p, name, poll_interval_ms, device_profiles is not None)
                  for p, name in zip(params, names)]
        callbacks = dict(on_loss=on_loss, on_accuracy=on_accuracy, on_iteration=on_iteration, on_finish=on_finish)
        if device_profiles is not None and clients_per_iteration is not None:
            raise ValueError(f"clients_per_iteration: {clients_per_iteration!r} with device_profiles; the server's "
                             f"simulated clock decides who takes part (every client must ask): leave it out")
        if device_profiles is not None:
            from ..devices import ProfileError, load_profiles

            try:
                self.device_profiles = load_profiles(device_profiles, self.seed, availability=device_availability)
                for p in params:
                    if p.client_id is not None:
                        self.device_profiles[p.client_id]  # a file without this device (and no default) says so now
            except ProfileError as exc:
                raise ProfileError(f"device_profiles: {exc}") from None
        else:
            self.device_profiles = None
        if trained_model_memory_mb is not None and (isinstance(trained_model_memory_mb, bool)
                                                    or not isinstance(trained_model_memory_mb, int)
                                                    or trained_model_memory_mb < 0):
            raise ValueError(f"trained_model_memory_mb: {trained_model_memory_mb!r}; expected an integer >= 0 (MiB)")
        engine_options = dict(max_trainers=max_trainers, eval_every=eval_every, eval_fraction=self.eval_fraction,
                              seeded_turns=device_profiles is None, device_profiles=self.device_profiles,
                              seed=self.seed, clients_per_iteration=clients_per_iteration,
                              durable_model_files=durable_model_files, trained_model_memory_mb=trained_model_memory_mb,
                              jar_path=jar_path, case_jar_path=case_jar_path)
        self._clients: ClientBackend
        if backend == "ray":
            from .ray_backend import RayClients  # Ray is an optional extra: imported only when asked for

            self._clients = RayClients(params, names, sink=self._record, callbacks=callbacks, address=ray_address,
                                       actors=ray_actors, cpus_per_actor=ray_cpus_per_actor, ship_data=ship_data,
                                       max_restarts=max_actor_restarts, **engine_options)
        else:
            self._clients = EngineClients(params, names, sink=self._record, callbacks=callbacks, **engine_options)
        #: the FLJob of each client (threads only: with Ray they live in the actors)
        self.jobs: list[FLJob] = self._clients.local_jobs()
        self._started = False
        self._started_at = 0.0
        self.wall_time_s = 0.0
        self._progress = RoundProgress(iterations, progress, self._summary, self._closed_iteration)
        jvm.register_stopper(self)

    def _complete(self, p: FLParameter, name: str, poll_interval_ms: int | None, simulated_clock: bool = False
                  ) -> FLParameter:
        """The simulation's defaults for one client: its log under output_dir, a fixed fl_id, the poll interval,
        and on the simulated clock a longer HTTP timeout (:data:`SIMULATED_CLOCK_TIMEOUT_S`)."""
        changes: dict[str, Any] = {}
        if simulated_clock and p.time_out_s is None:
            changes["time_out_s"] = SIMULATED_CLOCK_TIMEOUT_S
        if p.log_path is None:
            changes["log_path"] = self.output_dir / name / "client.log"
        if p.client_id is None:
            changes["client_id"] = name  # a fixed fl_id: FedAvg's order and the samples depend on it
        if p.sleep_time_ms is None and poll_interval_ms is not None:
            changes["sleep_time_ms"] = poll_interval_ms
        # one replace: each validates the whole parameter set again (paths, files, the model's batch),
        # ~1 ms a client, seconds for the seed's 3,500
        return p.replace(**changes) if changes else p

    # -- events (client threads; with Ray, the waiting thread) ----------------------------
    def _record(self, client: str, kind: str, args: tuple[Any, ...]) -> None:
        if kind == "loss":
            self.results.record_loss(client, args[0], args[1], args[2])
        elif kind == "accuracy":
            self.results.record_accuracy(client, args[0], args[1])
        elif kind == "traffic":
            self.results.record_traffic(client, args[0], args[1], args[2])
        elif kind == "progress" and args[1] == "admitted":
            self.results.record_admitted(client, args[0])
        self._events.put((client, kind, args))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start every client's round loop and return at once."""
        if self._started:
            raise FLJobError("this Simulation was already started; create a new one")
        self._started = True
        self._started_at = time.monotonic()
        log.info("starting %d clients (at most %d training at once%s), logs in %s/client_*/client.log",
                 len(self.results.clients), self.max_trainers, " per actor" if self.backend == "ray" else "",
                 self.output_dir)
        self._clients.start()

    def is_running(self) -> bool:
        return bool(self._clients.is_running())

    def actors(self) -> list[ActorInfo]:
        """With ``backend="ray"``: an :class:`~pyflclient.client.backend.ActorInfo` per actor (its
        clients, pid, node, restarts, peak memory); with threads: an empty list."""
        return self._clients.actors()

    def wait(self, timeout: float | None = None) -> dict[str, JobResult] | None:
        """Wait for every client; their results by name, or None on timeout.

        Draws the progress bars and calls ``on_round`` meanwhile. Ctrl-C stops
        every client (within 2 s) and re-raises KeyboardInterrupt.
        """
        if not self._started:
            raise FLJobError("the Simulation was not started; call run() or start()")
        try:
            with _log_beside_bars(self.progress):
                done = self._clients.join(timeout, on_tick=self._drain)
        except KeyboardInterrupt:
            log.warning("interrupted: stopping %d clients", len(self.results.clients))
            self.stop()
            raise
        if not done:
            return None
        self.wall_time_s = time.monotonic() - self._started_at
        results = self._clients.results()  # every client has ended: its threads (actors) go too
        for name, r in results.items():
            if r is not None:
                self.results.record_status(name, r.status)
                self.results.record_participation(name, r.participated)
        self._drain(final=True)
        return results

    def run(self, timeout: float | None = None) -> SimulationResults:
        """Start all clients, wait for all, return the results (Ctrl-C: stop all, re-raise)."""
        self.start()
        if self.wait(timeout) is None:
            self.stop()
            raise FLJobError(f"the simulation did not finish within {timeout} s; stopped every client")
        return self.results

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop every client and wait (together, not one after the other) up to ``timeout`` s.

        Returns True when no client thread is left running.
        """
        ended, done = self._clients.stop(timeout)
        for name, r in done.items():
            self.results.record_status(name, r.status)
        self._drain(final=True)
        return ended

    def _stop_for_exit(self, timeout: float) -> None:
        if self.is_running():
            self.stop(timeout)

    def save(self, out_dir: str | os.PathLike[str] | None = None, plot: bool = True) -> dict[str, Path]:
        """Write ``results.json``, ``results.csv`` and ``accuracy.png`` (default: ``output_dir``)."""
        return self.results.save(out_dir if out_dir is not None else self.output_dir, plot=plot)

    # -- progress (waiting thread only) ---------------------------------------------------------
    def _drain(self, final: bool = False) -> None:
        while True:
            try:
                client, kind, args = self._events.get_nowait()
            except queue.Empty:
                break
            self._progress.event(client, kind, args)
        self._progress.settle(final)

    def _summary(self, iteration: int) -> Optional[IterationSummary]:
        return next((s for s in self.results.summary() if s.iteration == iteration), None)

    def _closed_iteration(self, counts: IterationCounts, summary: Optional[IterationSummary]) -> None:
        if self.on_round is not None and summary is not None and summary.clients:
            try:
                self.on_round(summary)
            except Exception:
                log.exception("the on_round callback raised; the simulation goes on")


@contextlib.contextmanager
def _log_beside_bars(bars: bool) -> Iterator[None]:
    """While bars are drawn, log records go through tqdm.write, so lines and bars never interleave."""
    if not bars:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield
