"""``pyflclient.Server``: the FL server in a background thread of the calling Python process.

The aiohttp server needs an event loop; a notebook or a simulation script has its
own work to do on the main thread. So :class:`Server` runs :class:`ServerCore` on its
own loop in a daemon thread, and every method here is a thread-safe question to
that loop (``run_coroutine_threadsafe``) or a wait on a condition the loop signals
when an iteration finishes — never polling.

    with pyflclient.Server(model="lenet_train.ms", start_fl_job_threshold=2, fl_iteration_num=5) as srv:
        run_clients(srv.url)
        srv.wait_finished(timeout=600)
        weights = srv.global_model()
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from typing import Any, Coroutine, Mapping, TypeVar

import numpy as np

from pyflclient.server.app import ServerCore
from pyflclient.server.checkpoint import Checkpoints, check_plan_batch, load_model
from pyflclient.server.config import ServerConfig
from pyflclient.server.rounds import IterationResult
from pyflclient.server.store import IterationView, StateStore

__all__ = ["Server"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Server:
    """A running FL server; use as a context manager (or ``start()`` / ``stop()``).

    ``model`` is a ``.ms`` device model, a ``.npz`` of name → array, or such a dict.
    Keyword arguments are :class:`~pyflclient.server.config.ServerConfig` settings
    (MindSpore ``set_fl_context`` names); ``config=`` gives a whole one to start from.
    ``store`` replaces the in-memory state store (one instance per job).
    """

    def __init__(self, model: str | os.PathLike[str] | Mapping[str, Any], *, config: ServerConfig | None = None,
                 store: StateStore | None = None, **settings: Any):
        self.config = ServerConfig.from_mapping(settings, base=config)
        self._model = load_model(model)
        check_plan_batch(model, self.config.client_batch_size)
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._core: ServerCore | None = None
        self._stop: asyncio.Event | None = None
        self._changed = threading.Condition()
        self._results: list[dict[str, Any]] = []
        self._last_finished = 0
        self._job_finished = False
        self._early_stop: str | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> "Server":
        if self._thread is not None:
            raise RuntimeError("this Server is already started")
        if self.config.checkpoint_dir:
            self._results = Checkpoints(self.config.checkpoint_dir).read_metrics()
            self._early_stop = next((r["early_stop"] for r in reversed(self._results) if "early_stop" in r), None)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="pyflclient-server", daemon=True)
        self._thread.start()
        try:
            ready.result()  # re-raises a failure to start (port busy, bad checkpoint) in the caller
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        return self

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            self._core = ServerCore(self.config, self._model, store=self._store, on_iteration=self._on_iteration)
            await self._core.start()
            view = await self._core.rounds.view()
            latest = await self._core.rounds.latest_iteration()
            with self._changed:
                self._last_finished, self._job_finished = latest, view.finished
                if self.config.checkpoint_dir:  # as resumed: a fallback dropped the set-aside iterations' lines
                    self._results = [r for r in self._results if r.get("iteration", 0) <= latest]
        except BaseException as exc:
            if self._core is not None:
                await self._core.stop()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self._core.stop()

    def _on_iteration(self, result: IterationResult) -> None:
        with self._changed:
            self._results.append(result.as_dict())
            self._last_finished = result.iteration
            self._job_finished = result.job_finished
            self._early_stop = result.early_stop or self._early_stop
            self._changed.notify_all()

    def stop(self) -> None:
        """Stop listening and end the thread (idempotent)."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- questions --------------------------------------------------------------------

    def _ask(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("the server is not running: use `with Server(...) as srv:` or srv.start()")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def core(self) -> ServerCore:
        if self._core is None:
            raise RuntimeError("the server is not running")
        return self._core

    @property
    def urls(self) -> list[str]:
        """One URL per listening port (``server_num`` of them)."""
        return self.core.urls

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT`` of the first port: the client's ``domainName``."""
        return self.core.urls[0]

    @property
    def port(self) -> int:
        return self.core.ports[0]

    @property
    def iteration(self) -> int:
        """The iteration now running (the last one once the job is finished)."""
        return self.state().iteration

    def state(self) -> IterationView:
        """A snapshot of the current iteration (admitted, uploaded, windows, finished)."""
        return self._ask(self.core.rounds.view())

    @property
    def finished(self) -> bool:
        with self._changed:
            return self._job_finished

    @property
    def early_stop(self) -> str | None:
        """Why the job ended before ``fl_iteration_num`` (``early_stop_type``), None if it did not."""
        with self._changed:
            return self._early_stop

    def wait_iteration(self, iteration: int, timeout: float | None = None) -> bool:
        """Block until ``iteration`` is finished (valid or not), or the job ended before it (early stop);
        False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._done(iteration) or self._thread is None,
                                          timeout) and self._done(iteration)

    def _done(self, iteration: int) -> bool:
        return self._last_finished >= iteration or self._job_finished

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Block until the job is finished (all ``fl_iteration_num`` iterations, or an early stop);
        False on timeout."""
        return self.wait_iteration(self.config.fl_iteration_num, timeout)

    def global_model(self, iteration: int | None = None) -> dict[str, np.ndarray]:
        """The served model (name → float32 array, a copy): the newest, or that of ``iteration``."""
        model = self._ask(self.core.rounds.model(iteration))
        if model is None:
            raise KeyError(f"no model of iteration {iteration} (finished so far: {self._last_finished})")
        return {name: np.array(a, dtype=np.float32) for name, a in model.items()}

    @property
    def held_get_models(self) -> int:
        """getModel requests the server holds open right now, waiting for a model (the long poll)."""
        return self.core.rounds.held_get_models

    @property
    def held_start_fl_jobs(self) -> int:
        """startFLJob requests the server holds open right now, waiting for the draw (admission_policy sample)."""
        return self.core.rounds.held_start_fl_jobs

    def async_results(self) -> dict[str, Any]:
        """server_mode ASYNC_FEDERATED_LEARNING: the staleness histogram of the uploads this process accepted
        ({staleness: uploads}) and each device's idle time in ms (``idle_ms``; docs/async.md)."""
        results = getattr(self.core.rounds, "results", None)
        if results is None:
            raise RuntimeError(f"async_results: this server runs server_mode {self.config.server_mode}")
        return self._ask(results())

    def device_reports(self, iteration: int) -> list[tuple[float, float]]:
        """The (loss, accuracy) pairs the devices pushed (``/pushMetrics``) about the model of ``iteration``."""
        return self._ask(self.core.rounds.store.device_metrics(iteration))

    @property
    def dashboard_url(self) -> str | None:
        """Where the live dashboard (and ``/metrics``) is served; None with ``metrics=off``."""
        return self.core.watch_url

    def metrics(self) -> list[dict[str, Any]]:
        """One dict per finished iteration: iteration, admitted, uploaded, data_size, valid, seconds (and
        early_stop, the reason, in the one that ended the job early)."""
        with self._changed:
            return [dict(r) for r in self._results]
