"""Client faults and refusals as rate-limited INFO lines: a flood of them costs one line per kind per interval.

Used by the transport (connection faults), the guard and the round rules (refused requests); it sits below
them all (it needs only the event loop), so each floor of the server can report without importing a higher one.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

__all__ = ["ClientFaults"]

log = logging.getLogger("pyflclient.server.transport")


class ClientFaults:
    """Client faults as INFO lines: at most one per kind every ``interval`` seconds.

    The faults of a kind seen meanwhile are counted and told in one line when the interval
    ends, so a flood of them costs a line per kind per interval, and none is lost from the
    count. ``counts`` holds the totals per kind since the start."""

    def __init__(self, interval: float = 10.0, logger: logging.Logger = log):
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._log = logger
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._flushes: dict[str, asyncio.TimerHandle] = {}

    def report(self, kind: str, peer: str, detail: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) >= self.interval:
            self._last[kind] = now
            self._log.info("%s from %s: %s", kind, peer, detail)
            return
        self._suppressed[kind] += 1
        if kind not in self._flushes:
            self._flushes[kind] = asyncio.get_running_loop().call_later(
                self._last[kind] + self.interval - now, self._flush, kind)

    def _flush(self, kind: str) -> None:
        self._flushes.pop(kind, None)
        more = self._suppressed.pop(kind, 0)
        if more:
            self._last[kind] = time.monotonic()
            self._log.info("%s: %d more in the last %.0f s", kind, more, self.interval)

    def close(self) -> None:
        """Tell the counts still held back (at shutdown)."""
        for kind in list(self._flushes):
            self._flushes[kind].cancel()
            self._flush(kind)
