"""``Simulation(..., backend="ray")``: the clients spread over Ray actors, each a process with its own JVM.

The clients are split round-robin by index over N actors (client *i* goes to actor
*i mod N*). Each actor (:class:`ClientActor`) starts a JVM in its own process and runs
its share as the thread backend does (:class:`~.threads_backend.EngineClients`: one
``ClientEngine``, ``max_trainers`` trainer threads, ``client_i/client.log``). The
driver — the process that made the :class:`~.simulation.Simulation`, which needs no
JVM — polls every actor every 200 ms (:data:`POLL_S`); a poll returns the events
its clients reported since the last one, which the driver feeds to the same
results, bars, log lines and callbacks as the thread backend.

Two facts make a run over several engines the same as one over one engine:

* the availability sample (``clients_per_iteration``) is drawn from the fl_ids of
  the *whole* simulation in every actor (``ClientEngine.setCheckIn(n, seed,
  population)``), so each actor lets ask exactly its part of the one sample;
* a waiting client wakes when a client of its engine receives a new global model.
  With several engines, an actor none of whose clients took part in an iteration
  would never see that model; each poll therefore carries the newest model any
  actor has seen, and the actor tells its engine (``ClientEngine.modelSeen``).

FedAvg on the server sums in fl_id order, the evaluation sample is seeded by (seed,
fl_id, iteration) and training is deterministic per client: the same seed gives the
same per-iteration results with threads and with Ray.

Data: by default the actors read the bin files and ``.ms`` files at the paths the
driver gives (one machine, or a filesystem every node mounts at the same path: no
copy at all). With ``ship_data`` the driver puts each client's files into Ray's
object store and the actor writes them to a local temporary folder and works there
(its own copy of the model file, which getModel overwrites).

Failure: an actor that dies is reported once, with the clients it held. With
``max_actor_restarts`` Ray starts it again; its constructor re-creates its clients,
which start over with startFLJob. The server admits a re-asking fl_id again, but
refuses a second upload of one: when the driver heard that some of them uploaded
to the running iteration before they died, they rejoin at the next one (the
running one then ends at its ``update_model_time_window`` without the others);
otherwise they rejoin the running one. (An upload made in the last instants before
the death, whose event had not reached the driver yet, is refused the second time as a
duplicate, which the client takes as "the server holds my upload" and goes on to
getModel.) Without restarts the actor's clients end FAILED and the others go on.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import jvm
from .backend import ActorInfo, EventSink
from .errors import PyflclientError
from .job import FLJob, JobResult
from .params import FLParameter
from .threads_backend import EngineClients
from ..wire.protocol import ResponseCode

log = logging.getLogger("pyflclient.client.simulation")

#: how often the driver asks every actor for its clients' events
POLL_S = 0.2
#: how long a stop waits for the actors' answers beyond the clients' own stop timeout
STOP_GRACE_S = 5.0



def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it.

    Ray's C++ core installs a SIGSEGV handler of its own (absl's failure signal handler) over the
    JVM's, which takes SIGSEGV as part of normal work (safepoints, implicit null checks): a process
    with a JVM running would crash at the JVM's next such fault. Ray reads its switch when it is
    imported, so it is set before (in the driver and, through the environment, in the actors).
    """
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise PyflclientError("backend 'ray' needs Ray, which is not installed: "
                              "pip install 'pyflclient[ray]'") from None
    return ray


def split_round_robin(n_clients: int, n_actors: int) -> list[list[int]]:
    """Client indices per actor: client *i* goes to actor *i mod n_actors*."""
    return [list(range(a, n_clients, n_actors)) for a in range(n_actors)]


def check_reachable(address: str, name: str = "ray_address", timeout: float = 5.0) -> None:
    """Fail at once, in one line, when nothing listens at a ``HOST:PORT`` (or ``ray://HOST:PORT``) address.

    ``ray.init`` itself keeps retrying an address where no cluster answers for minutes. ``auto``
    (the cluster this node belongs to) is left to Ray, which answers at once when there is none.
    ``name``: the argument's name in the message (``--ray_address`` on the command line).
    """
    import socket

    if address in ("auto", "local"):
        return
    host, sep, port = (address.split("://", 1)[1] if "://" in address else address).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{name}: {address!r}; expected auto or HOST:PORT (the head node's `ray start --head` "
                         f"address, port 6379 by default)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"{name} {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                              f"with `ray start --head` or leave {name} out for a local Ray") from None


# -- ship_data: a client's files through the object store --------------------------------------------
_DATASETS = ("train_dataset", "test_dataset", "infer_dataset")
_MODELS = ("train_model_path", "infer_model_path")


def pack_files(p: FLParameter) -> dict[str, tuple[str, bytes]]:
    """The bytes of a client's data and model files, by role (``train_dataset.data`` ...)."""
    files: dict[str, tuple[str, bytes]] = {}
    for role in _DATASETS:
        ds = getattr(p, role)
        if ds is not None:
            files[f"{role}.data"] = (ds.data.name, ds.data.read_bytes())
            files[f"{role}.label"] = (ds.label.name, ds.label.read_bytes())
    for role in _MODELS:
        path = getattr(p, role)
        if path is not None and not (role == "infer_model_path" and path == p.train_model_path):
            files[role] = (path.name, path.read_bytes())
    return files


def unpack_files(p: FLParameter, files: dict[str, tuple[str, bytes]], folder: Path) -> FLParameter:
    """Write ``files`` (from :func:`pack_files`) into ``folder``; ``p`` pointing at the local copies."""
    folder.mkdir(parents=True, exist_ok=True)
    local = {}
    for role, (name, data) in files.items():
        path = folder / name
        path.write_bytes(data)
        local[role] = path
    changes: dict[str, Any] = {}
    for role in _DATASETS:
        if f"{role}.data" in local:
            changes[role] = (local[f"{role}.data"], local[f"{role}.label"])
    for role in _MODELS:
        if role in local:
            changes[role] = local[role]
    if p.infer_model_path is not None and p.infer_model_path == p.train_model_path:
        changes["infer_model_path"] = local["train_model_path"]
    return p.replace(**changes)


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# -- the actor ----------------------------------------------------------------------------------------
class ClientActor:
    """A Ray actor: one process, one JVM, its share of the clients on one ``ClientEngine``.

    Ray re-runs the constructor after a restart: the clients are created again from the same
    arguments; they start at the next :meth:`poll`, which carries the newest model seen anywhere.
    """

    def __init__(self, index: int, names: Sequence[str], params: Sequence[FLParameter],
                 shipped: Sequence[Any] | None, population: Sequence[str], options: dict[str, Any]) -> None:
        self.index = index
        self._folder: Path | None = None
        params = list(params)
        if shipped is not None:
            import ray

            self._folder = Path(tempfile.mkdtemp(prefix=f"pyflclient-actor{index}-"))
            params = [unpack_files(p, files, self._folder / name)
                      for p, name, files in zip(params, names, ray.get(list(shipped)))]
        self._events: deque[tuple[str, str, tuple[Any, ...]]] = deque()
        self._clients = EngineClients(params, names, sink=self._sink, population=population, **options)
        self._started = False
        self._node = _node_address()
        self._restarted = _was_restarted()

    def _sink(self, client: str, kind: str, args: tuple[Any, ...]) -> None:
        self._events.append((client, kind, args))  # deque.append: safe from the Java threads

    def _take_events(self) -> list[tuple[str, str, tuple[Any, ...]]]:
        out = []
        while True:
            try:
                out.append(self._events.popleft())
            except IndexError:
                return out

    def poll(self, newest_model: int, plan_iterations: int, uploaded: int = 0) -> dict[str, Any]:
        """Relay the newest model seen anywhere, start the clients (first poll), return what happened.

        ``uploaded``: the newest iteration this actor's clients uploaded to, as far as the driver heard.
        """
        if newest_model > 0:
            self._clients.model_seen(newest_model, plan_iterations)
        if not self._started:
            self._started = True
            if self._restarted and uploaded > newest_model:
                # before it died, some of this actor's clients uploaded to the running iteration, and the
                # server refuses a second upload of one fl_id: they rejoin at the next one
                self._clients.rejoin_after_model(uploaded)
            self._clients.start()
        done = not self._clients.is_running()  # before taking the events: a client's last event precedes its end
        reply: dict[str, Any] = {"pid": os.getpid(), "node": self._node, "events": self._take_events(),
                                 "model": self._clients.newest_model(), "done": done,
                                 "peak_rss_mib": _peak_rss_mib()}
        if done:
            reply["results"] = self._clients.results()
        return reply

    def stop(self, timeout: float) -> tuple[bool, dict[str, JobResult], list[tuple[str, str, tuple[Any, ...]]]]:
        """Stop every client (bounded by ``timeout``); (all ended, the ended ones' results, the last events)."""
        ended, done = self._clients.stop(timeout) if self._started else (True, {})
        return ended, done, self._take_events()

    def close(self) -> None:
        """Remove the local copies of shipped files."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _was_restarted() -> bool:
    """Whether Ray is running this actor's constructor again, after the actor died."""
    import ray

    return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def _node_address() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # pragma: no cover - only for display
        return "?"


# -- the driver's side ----------------------------------------------------------------------------------
@dataclass
class _Relay:
    """The newest global model any actor's clients have seen, and the plan's length."""

    newest: int = 0
    plan: int = 0
    succeeded: dict[str, set[int]] = field(default_factory=dict)
    uploaded: dict[str, int] = field(default_factory=dict)

    def uploaded_by(self, clients: Sequence[str]) -> int:
        """The newest iteration any of ``clients`` uploaded to (0: none)."""
        return max((self.uploaded.get(c, 0) for c in clients), default=0)


class RayClients:
    """The driver's side of the Ray backend: actors created, polled, relayed, stopped.

    It keeps to :class:`~.backend.ClientBackend`, as :class:`~.threads_backend.EngineClients` does,
    so :class:`~.simulation.Simulation` waits, draws and records alike for both.
    """

    def __init__(self, params: Sequence[FLParameter], names: Sequence[str], *, sink: EventSink,
                 callbacks: dict[str, Any], address: str | None, actors: int | None, cpus_per_actor: float,
                 ship_data: bool, max_restarts: int, **engine_options: Any) -> None:
        if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
            raise ValueError(f"ray_actors: {actors!r}; expected an integer >= 1")
        if isinstance(cpus_per_actor, bool) or not isinstance(cpus_per_actor, (int, float)) or cpus_per_actor <= 0:
            raise ValueError(f"ray_cpus_per_actor: {cpus_per_actor!r}; expected a number > 0")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_actor_restarts: {max_restarts!r}; expected an integer >= 0")
        ray = import_ray()
        self._ray = ray
        self._own_ray = False
        self._handles: list[Any] = []
        self._shipped: list[Any] | None = None
        if not ray.is_initialized():
            self._own_ray = True
            self._init_ray(ray, address)
        try:
            cpus = float(ray.cluster_resources().get("CPU", 0))
            if actors is None:
                actors = max(1, int(cpus // cpus_per_actor))
            actors = min(actors, len(params))
            if actors * cpus_per_actor > cpus:
                raise ValueError(f"ray_actors: {actors} actors × ray_cpus_per_actor {cpus_per_actor:g} need "
                                 f"{actors * cpus_per_actor:g} CPUs; the Ray cluster has {cpus:g}: lower one of them")
            self._sink, self._callbacks = sink, callbacks
            self._max_restarts = max_restarts
            self._relay = _Relay()
            self._results: dict[str, JobResult] = {}
            self._pending: dict[int, Any] = {}
            self._started = False
            self._names = list(names)
            shares = split_round_robin(len(params), actors)
            self.infos = [ActorInfo(a, [names[i] for i in share]) for a, share in enumerate(shares)]
            # kept here, not only in the actors' arguments: a restarted actor gets its files again
            self._shipped = [ray.put(pack_files(p)) for p in params] if ship_data else None
            population = [str(p.client_id) for p in params]
            remote = ray.remote(ClientActor).options(num_cpus=cpus_per_actor, max_restarts=max_restarts,
                                                     max_task_retries=0, scheduling_strategy="SPREAD")
            self._handles = [remote.remote(a, [names[i] for i in share], [params[i] for i in share],
                                           None if self._shipped is None else [self._shipped[i] for i in share],
                                           population, engine_options)
                             for a, share in enumerate(shares)]
        except BaseException:
            self._shutdown()
            raise
        log.info("%d clients over %d Ray actors (%g CPU each, at most %d training per actor)%s", len(params),
                 actors, cpus_per_actor, engine_options["max_trainers"], ", data shipped" if ship_data else "")

    @staticmethod
    def _init_ray(ray: Any, address: str | None) -> None:
        if address is not None:
            check_reachable(address)
        # ray.init gives the driver a SIGTERM handler that calls sys.exit: `pyflclient stop` would
        # skip the clean stop (clients stopped, results saved, actors ended). The handlers stay ours.
        saved = {}
        if threading.current_thread() is threading.main_thread():
            saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if address is None:
                raise PyflclientError(f"could not start a local Ray: {first}") from None
            raise PyflclientError(f"ray_address {address}: no Ray cluster answers there ({first}); start one "
                                  f"with `ray start --head` or leave ray_address out for a local Ray") from None
        finally:
            for sig, handler in saved.items():
                if handler is not None and signal.getsignal(sig) is not handler:
                    signal.signal(sig, handler)

    def actors(self) -> list[ActorInfo]:
        """A snapshot of every actor (copies: later news does not change them)."""
        return [dataclasses.replace(info, clients=list(info.clients)) for info in self.infos]

    def local_jobs(self) -> list[FLJob]:
        """None: the clients' FLJob objects live in the actors."""
        return []

    # -- lifecycle (the Simulation's waiting thread) --------------------------------------------------
    def start(self) -> None:
        self._started = True
        self._poll(wait=0.0)  # the first poll starts each actor's clients

    def is_running(self) -> bool:
        return self._started and any(info.active for info in self.infos)

    def join(self, timeout: float | None, on_tick: Callable[[], None]) -> bool:
        """Poll the actors every :data:`POLL_S` (``on_tick`` after each) until all are done; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            jvm.deliver_signals()  # a SIGINT / SIGTERM noted by `pyflclient simulate` is raised here
            began = time.monotonic()
            self._poll(wait=POLL_S)
            on_tick()
            if not self.is_running():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(max(0.0, POLL_S - (time.monotonic() - began)))

    def results(self) -> dict[str, JobResult]:
        """Every client's result (FAILED for the clients of an actor that died for good); the actors go."""
        for info in self.infos:
            if info.state == "dead":
                for name in info.clients:
                    self._results.setdefault(name, self._lost_result(name, info))
        self._shutdown()
        return {name: self._results[name] for name in self._names}

    def stop(self, timeout: float) -> tuple[bool, dict[str, JobResult]]:
        """Stop every actor's clients (one bounded wait for all), then end the actors."""
        ray = self._ray
        asked = {info.index: self._handles[info.index].stop.remote(timeout) for info in self.infos if info.active}
        ended = True
        if asked:
            ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=timeout + STOP_GRACE_S)
            for index, ref in asked.items():
                if ref not in ready:
                    ended = False
                    continue
                try:
                    all_ended, done, events = ray.get(ref)
                except ray.exceptions.RayActorError:
                    continue  # it died meanwhile: its clients are gone too
                self._take_events(events)
                self._results.update(done)
                ended = ended and all_ended
        for info in self.infos:
            if info.active:
                info.state = "done" if ended else info.state
        done = dict(self._results)
        for info in self.infos:
            if info.state == "dead":
                for name in info.clients:
                    done.setdefault(name, self._lost_result(name, info))
        self._shutdown()
        return ended, done

    # -- polling --------------------------------------------------------------------------------------
    def _poll(self, wait: float) -> None:
        ray = self._ray
        for info in self.infos:
            if info.active and info.index not in self._pending:
                self._pending[info.index] = self._handles[info.index].poll.remote(
                    self._relay.newest, self._relay.plan, self._relay.uploaded_by(info.clients))
        if not self._pending:
            return
        ready, _ = ray.wait(list(self._pending.values()), num_returns=len(self._pending), timeout=wait)
        ready_set = set(ready)
        for index, ref in list(self._pending.items()):
            if ref not in ready_set:
                continue  # busy (a JVM starting, a restart): asked again once it answers
            del self._pending[index]
            try:
                reply = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._lost(self.infos[index], exc)
                continue
            self._answered(self.infos[index], reply)

    def _answered(self, info: ActorInfo, reply: dict[str, Any]) -> None:
        if info.state == "restarting":
            log.info("Ray actor %d is back (pid %s on %s): its %d clients start over and rejoin the job",
                        info.index, reply["pid"], reply["node"], len(info.clients))
        info.pid, info.node, info.peak_rss_mib = reply["pid"], reply["node"], reply["peak_rss_mib"]
        info.state = "running"
        self._take_events(reply["events"])
        newest, plan = reply["model"]
        if newest > self._relay.newest:
            self._relay.newest = newest
        if plan > 0:
            self._relay.plan = plan
        if reply["done"]:
            info.state = "done"
            self._results.update(reply["results"])

    def _lost(self, info: ActorInfo, exc: BaseException) -> None:
        ray = self._ray
        gone_for_good = isinstance(exc, ray.exceptions.ActorDiedError) and info.state == "restarting"
        if info.state == "restarting" and not gone_for_good:
            return  # still coming back: already reported
        held = ", ".join(info.clients[:10]) + (" ..." if len(info.clients) > 10 else "")
        if info.restarts < self._max_restarts and not gone_for_good:
            info.restarts += 1
            info.state = "restarting"
            log.warning("Ray actor %d (pid %s on %s) died holding %d clients (%s); restarting it (%d of %d)",
                        info.index, info.pid, info.node, len(info.clients), held, info.restarts,
                        self._max_restarts)
        else:
            info.state = "dead"
            log.warning("Ray actor %d (pid %s on %s) died holding %d clients (%s); they end FAILED%s", info.index,
                        info.pid, info.node, len(info.clients), held,
                        "" if self._max_restarts == 0 else f" (restarted {info.restarts} times already)")

    def _lost_result(self, name: str, info: ActorInfo) -> JobResult:
        return JobResult(name, status="FAILED", participated=len(self._relay.succeeded.get(name, ())),
                         error=f"Ray actor {info.index} died")

    def _take_events(self, events: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        for client, kind, args in events:
            if kind == "iteration" and args[1] == ResponseCode.SUCCEED:
                self._relay.succeeded.setdefault(client, set()).add(args[0])
            elif kind == "progress" and args[1] == "uploaded":
                self._relay.uploaded[client] = max(args[0], self._relay.uploaded.get(client, 0))
            self._sink(client, kind, args)
            callback = self._callbacks.get(f"on_{kind}")
            if callback is not None:
                try:
                    callback(client, *args)
                except Exception:
                    log.exception("client %s: the on_%s callback raised; the simulation goes on", client, kind)

    def _shutdown(self) -> None:
        """End the actors (and the local Ray this simulation started)."""
        ray = self._ray
        handles = self._handles
        if self._shipped is not None and handles:
            closing = [h.close.remote() for h in handles]
            ray.wait(closing, num_returns=len(closing), timeout=STOP_GRACE_S)
        for h in handles:
            try:
                ray.kill(h)
            except Exception:  # already gone
                pass
        self._handles = []
        self._pending = {}
        if self._own_ray and ray.is_initialized():
            ray.shutdown()
