"""The device side of availability on the simulated clock: an offline device does not ask.

On a real deployment a device that is offline sends nothing; it asks to take part when it is online.
A simulation's devices do the same: before a device of the Java engine sends startFLJob, the engine's
check-in gate (``CheckInGate``) asks this hook (``com.mindspore.flclient.AskHook``). The hook reads the
simulated clock from the server (``GET /simulatedClock``: the running iteration *k* and the simulated
time ``O_k`` it opened at) and applies the same seeded availability as the server's clock
(:meth:`pyflclient.clock.SimulatedClock.asking`, the devices' own profiles loaded with the same seed):

* the devices of the simulation's population that are online at some time of iteration *k*'s start
  window — it opens at the first of them to come online, ``min_d next_online(d, O_k)``, and lasts
  ``start_fl_job_time_window`` — ask; the hook lets them (``mayAsk`` returns null);
* the others are offline for the whole window: the hook hands their device a future that completes
  when a later iteration opens (a background thread long-polls ``GET /simulatedClock?after=k``), and
  the device looks again then — it waits on the simulated clock until its next online session.

Because the server's barrier holds the askers of an iteration until all have asked, it must know how
many will: the hook announces it once per iteration, before any of its devices asks (``POST
/simulatedClock {"iteration": k, "askers": n, "offline": m}``; every engine of a simulation computes
the same numbers over the whole population, and the server keeps the first). This is the simulation
harness talking to the server, not a device: the offline devices send no request of the protocol.
"""
from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import urllib.request
from typing import Any, Sequence

import jpype

from ..clock import SimulatedClock
from ..devices import DeviceProfiles
from . import jvm

__all__ = ["AvailabilityHook", "make_hook"]

log = logging.getLogger(__name__)

#: after the job is over, how long a silent device waits for its engine to learn it before asking
_FINISHED_GRACE_S = 30.0
#: how long one long poll of the server's clock may be held (the server holds it at most 30 s)
_POLL_TIMEOUT_S = 45.0


class _Clock:
    """The server's ``/simulatedClock``, over plain HTTP(S) from the simulation's process."""

    def __init__(self, url: str, cert_path: str | None = None):
        self.url = url.rstrip("/") + "/simulatedClock"
        self._ctx = None
        if self.url.startswith("https"):
            self._ctx = ssl.create_default_context(cafile=cert_path) if cert_path else ssl.create_default_context()
            self._ctx.check_hostname = False

    def state(self, after: int | None = None) -> dict[str, Any]:
        url = self.url if after is None else f"{self.url}?after={after}"
        with urllib.request.urlopen(url, timeout=_POLL_TIMEOUT_S, context=self._ctx) as r:
            return json.loads(r.read())

    def census(self, iteration: int, askers: int, offline: int) -> None:
        body = json.dumps({"iteration": iteration, "askers": askers, "offline": offline}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=_POLL_TIMEOUT_S, context=self._ctx) as r:
            r.read()


class AvailabilityHook:
    """Which devices of ``population`` ask in the running iteration (see the module docstring); the Java
    ``AskHook`` is :func:`make_hook`'s proxy of it. Thread-safe: the engine's threads call :meth:`may_ask`."""

    def __init__(self, url: str, profiles: DeviceProfiles, population: Sequence[str], cert_path: str | None = None):
        self._clock = _Clock(url, cert_path)
        self._sim = SimulatedClock(profiles)
        self._population = sorted(set(population))
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._asking: dict[int, frozenset[str]] = {}
        self._waiting: list[tuple[int, Any]] = []  # (iteration it waited out, its Java future)
        self._poller: threading.Thread | None = None
        self._broken = False
        self._finished_at: float | None = None
        self.closed = False

    # -- what the engine asks -------------------------------------------------------------------

    def may_ask(self, fl_id: str, iteration: int) -> Any:
        """None: ``fl_id`` asks now (for ``iteration`` or the server's newer running one); else a Java
        ``CompletableFuture`` completed when a later iteration opens."""
        with self._lock:
            if self._broken:
                return None
            try:
                state = self._state_from(iteration)
            except (OSError, ValueError) as exc:  # no /simulatedClock (an older server) or it is down: ask
                self._broken = True
                log.warning("simulated availability: cannot read %s (%s); devices ask as if always online",
                            self._clock.url, exc)
                return None
            future = jvm.jclass("java.util.concurrent.CompletableFuture")()
            if state["finished"]:
                return self._after_finish(future)
            if fl_id in self._asking_in(state):
                return None
            self._waiting.append((int(state["iteration"]), future))
            if self._poller is None or not self._poller.is_alive():
                self._poller = threading.Thread(target=self._poll, name="simulated-availability", daemon=True)
                self._poller.start()
            return future

    def _after_finish(self, future: Any) -> Any:
        """The job is over: the device looks again in a moment, when a device of its engine has received the
        last model (it then ends without asking, as the engine's gate says); after
        :data:`_FINISHED_GRACE_S` it asks and the server tells it. Holds the lock."""
        if self._finished_at is None:
            self._finished_at = time.monotonic()
        if time.monotonic() - self._finished_at > _FINISHED_GRACE_S:
            return None
        timer = threading.Timer(0.5, future.complete, [None])
        timer.daemon = True
        timer.start()
        return future

    def asking(self, iteration: int) -> frozenset[str] | None:
        """The devices that ask in ``iteration`` (None: not computed here yet)."""
        with self._lock:
            return self._asking.get(iteration)

    # -- the server's clock ------------------------------------------------------------------------

    def _state_from(self, iteration: int) -> dict[str, Any]:
        """The server's clock once iteration >= ``iteration`` is open (or the job is over). Holds the lock."""
        state = self._state
        while state is None or not (state["finished"] or (int(state["iteration"]) >= iteration and
                                                          not state["closed"])):
            state = self._clock.state(after=iteration - 1)
        if self._state is None or int(state["iteration"]) >= int(self._state["iteration"]):
            self._state = state
        return state

    def _asking_in(self, state: dict[str, Any]) -> frozenset[str]:
        """The population's askers of ``state``'s iteration, computed and announced once. Holds the lock."""
        k = int(state["iteration"])
        found = self._asking.get(k)
        if found is None:
            self._sim.origin_ms = int(state["origin_ms"])
            found = self._sim.asking(int(state["opened_ms"]), self._population, int(state["start_window_ms"]))
            self._clock.census(k, len(found), len(self._population) - len(found))
            self._asking[k] = found
            for old in [i for i in self._asking if i < k - 2]:
                del self._asking[old]
        return found

    def _poll(self) -> None:
        """Wake the waiting devices when a later iteration than the one they waited out opens."""
        while not self.closed:
            with self._lock:
                if not self._waiting:
                    return
                lowest = min(k for k, _ in self._waiting)
            try:
                state = self._clock.state(after=lowest)
            except (OSError, ValueError) as exc:
                log.debug("simulated availability: polling the clock: %s", exc)
                state = None
            with self._lock:
                if state is None:  # the server is gone: let them ask (and be told)
                    wake, self._waiting = self._waiting, []
                else:
                    if self._state is None or int(state["iteration"]) >= int(self._state["iteration"]):
                        self._state = state
                    k = int(state["iteration"])
                    if not state["finished"] and not state["closed"]:
                        try:
                            self._asking_in(state)  # announced before any woken device asks
                        except (OSError, ValueError) as exc:
                            log.debug("simulated availability: census of iteration %d: %s", k, exc)
                    done = state["finished"]
                    wake = [(i, f) for i, f in self._waiting if done or i < k]
                    self._waiting = [(i, f) for i, f in self._waiting if not (done or i < k)]
            for _, future in wake:
                future.complete(None)
            if state is None:
                return

    def close(self) -> None:
        self.closed = True


def make_hook(hook: AvailabilityHook) -> Any:
    """The Java ``com.mindspore.flclient.AskHook`` proxy of ``hook``."""

    @jpype.JImplements("com.mindspore.flclient.AskHook")
    class _Proxy:
        @jpype.JOverride
        def mayAsk(self, client_id: Any, iteration: Any) -> Any:  # noqa: N802 - the Java interface's name
            return hook.may_ask(str(client_id), int(iteration))

    return _Proxy()
