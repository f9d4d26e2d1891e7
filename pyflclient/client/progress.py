"""Progress of a simulation, iteration by iteration, from the clients' events.

The clients tell each stage of their round (Java ``TrainListener.onRoundProgress``):
admitted, trained, uploaded, evaluated, then the round's end. :class:`RoundProgress`
counts them per iteration and draws two tqdm bars: the job's (iterations done, with
tqdm's ETA for the rest) over a live bar of the current iteration whose total is the
clients admitted so far and whose count is the uploads, with the trained count, the
training throughput (samples of all local epochs per second) and the MB uploaded
beside it, so the bar moves while clients train instead of jumping at evaluation time.

An iteration is over when every client admitted to it has ended its round and a
later iteration has begun (or the simulation has ended); then its bar goes away and
one line above the bars sums it up (AVG / TOP5 / LOW5 over the clients that
evaluated, the counts, the time); the same line is logged at INFO (``-v``).
Everything here runs on the thread that waits for the simulation (never on a Java
thread), which drains the event queue between join slices.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .results import IterationSummary

log = logging.getLogger("pyflclient.client.simulation")


@dataclass
class IterationCounts:
    """What the clients told of one iteration."""

    iteration: int
    admitted: set[str] = field(default_factory=set)
    trained: int = 0
    uploaded: int = 0
    trained_samples: int = 0
    ended: set[str] = field(default_factory=set)
    began: float = field(default_factory=time.monotonic)
    #: request / reply body bytes of the iteration's clients (the startFLJob that admitted them included)
    bytes_up: int = 0
    bytes_down: int = 0

    @property
    def traffic_text(self) -> str:
        return f"{self.bytes_up / 1e6:.2f} MB up / {self.bytes_down / 1e6:.2f} MB down"

    @property
    def over_for_its_clients(self) -> bool:
        return bool(self.admitted) and self.admitted <= self.ended


class RoundProgress:
    """Counts round events per iteration; draws the bars and closes iterations (waiting thread only).

    Args:
        iterations: the plan's iterations, for titles only (None: unknown).
        bars: draw tqdm bars (stderr).
        summary_of: the :class:`IterationSummary` of an iteration, or None when no client evaluated it.
        on_close: called with each closed iteration's counts and summary.
    """

    def __init__(self, iterations: int | None, bars: bool,
                 summary_of: Callable[[int], Optional[IterationSummary]],
                 on_close: Callable[[IterationCounts, Optional[IterationSummary]], None]) -> None:
        self.iterations = iterations
        self.bars = bars
        self.summary_of = summary_of
        self.on_close = on_close
        self.open: dict[int, IterationCounts] = {}
        self.closed: set[int] = set()
        self._bars: dict[int, Any] = {}
        self._job_bar: Any = None
        self._newest = 0
        self._client_iteration: dict[str, int] = {}  # the iteration each client is in (its traffic goes there)
        self._pending_bytes: dict[str, list[int]] = {}  # startFLJob bytes until the client is admitted

    def event(self, client: str, kind: str, args: tuple[Any, ...]) -> None:
        if kind == "progress":
            iteration, stage, samples = args
            if iteration < 1 or iteration in self.closed:
                return
            c = self.open.setdefault(iteration, IterationCounts(iteration))
            if stage == "admitted":
                c.admitted.add(client)
                self._newest = max(self._newest, iteration)
                self._client_iteration[client] = iteration
                up, down = self._pending_bytes.pop(client, (0, 0))
                c.bytes_up += up
                c.bytes_down += down
            elif stage == "trained":
                c.trained += 1
                c.trained_samples += samples
            elif stage == "uploaded":
                c.uploaded += 1  # (who evaluated is counted by the results' summary)
            self._draw(c)
        elif kind == "traffic":
            round_name, up, down = args
            it = self._client_iteration.get(client)
            c = self.open.get(it) if it is not None and round_name != "startFLJob" else None
            if c is None:
                if it is None or round_name == "startFLJob":
                    pending = self._pending_bytes.setdefault(client, [0, 0])
                    pending[0] += up
                    pending[1] += down
                return
            c.bytes_up += up
            c.bytes_down += down
        elif kind == "iteration":
            c = self.open.get(args[0])
            if c is not None and client in c.admitted:
                c.ended.add(client)
        elif kind == "finish":
            for c in self.open.values():
                if client in c.admitted:
                    c.ended.add(client)

    def settle(self, final: bool = False) -> None:
        """Close the iterations that are over (all of them when ``final``)."""
        for it in sorted(self.open):
            c = self.open[it]
            later_began = self._newest > it
            if final or (c.over_for_its_clients and later_began) or self._newest >= it + 2:
                self._close(c)
        if final and self._job_bar is not None:
            self._job_bar.close()
            self._job_bar = None

    def _title(self, iteration: int) -> str:
        return f"iteration {iteration}/{self.iterations}" if self.iterations else f"iteration {iteration}"

    def _draw(self, c: IterationCounts) -> None:
        if not self.bars:
            return
        from tqdm import tqdm

        if self._job_bar is None:
            self._job_bar = tqdm(total=self.iterations, desc="job", unit="iteration", position=0, leave=True,
                                 dynamic_ncols=True)
        bar = self._bars.get(c.iteration)
        if bar is None:
            bar = tqdm(total=max(1, len(c.admitted)), desc=self._title(c.iteration), unit="upload", position=1,
                       leave=False, dynamic_ncols=True)
            self._bars[c.iteration] = bar
        if bar.total != len(c.admitted) and c.admitted:
            bar.total = len(c.admitted)
        elapsed = max(1e-6, time.monotonic() - c.began)
        bar.set_postfix_str(f"admitted {len(c.admitted)}, trained {c.trained}, "
                            f"{c.trained_samples / elapsed:,.0f} samples/s, {c.traffic_text}", refresh=False)
        bar.update(c.uploaded - bar.n)  # redraws at most every tqdm mininterval

    def _close(self, c: IterationCounts) -> None:
        del self.open[c.iteration]
        self.closed.add(c.iteration)
        summary = self.summary_of(c.iteration)
        bar = self._bars.pop(c.iteration, None)
        seconds = time.monotonic() - c.began
        rate = c.trained_samples / max(seconds, 1e-6)
        if bar is not None:
            bar.close()  # leave=False: the live bar goes, the line below stays
        if summary is not None and summary.clients:
            evaluated = f"AVG {summary.avg:.4f} TOP5 {summary.top5:.4f} LOW5 {summary.low5:.4f} " \
                        f"({summary.clients} of {len(c.admitted)} clients evaluated)"
        else:
            evaluated = "not evaluated"
        line = (f"iteration {c.iteration}: {evaluated}; {len(c.admitted)} admitted, {c.trained} trained, "
                f"{c.uploaded} uploaded; {seconds:.1f} s, {rate:.0f} samples/s; {c.traffic_text}")
        log.info("%s", line)
        if self._job_bar is not None:
            from tqdm import tqdm

            tqdm.write(line)
            self._job_bar.update(1)
        self.on_close(c, summary)

