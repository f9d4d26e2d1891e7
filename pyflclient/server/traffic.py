"""Bytes on the wire, as the server counts them: the HTTP body of every device request and of its reply.

One :class:`Traffic` per server process. The endpoints :meth:`record` each exchange (the body read, the
body answered; the FlatBuffers of the protocol, HTTP headers not included, about 150-300 bytes an
exchange); :meth:`take` hands over and resets what was counted since the previous take. The round rules
take at each iteration's close, so an iteration's line in ``metrics.jsonl`` counts the bytes this
process received and sent while that iteration was open: its startFLJob, updateModel and cipher
exchanges, and the getModel of the previous iteration's model (which the devices fetch after the
close). In a group (a shared store) every process adds its counts to the store's tally of the
iteration then open (on each turn of its follow loop, every 20 ms) and the closing process takes
the iteration's tally, summed over the processes: a count made in the last moments before a close
may go to the next iteration's line, none is lost.

With ``per_device`` (the simulated clock, :mod:`pyflclient.server.simulated`) it also keeps, per
(endpoint, fl_id), the body size of the device's newest request (noted by :meth:`received` as soon as
the body is read, before it is answered) and of the newest reply it was sent: the bytes a device's
download and upload cost on its simulated link are these counts, not an estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["Traffic", "TrafficCount"]


@dataclass
class TrafficCount:
    """What :meth:`Traffic.take` hands over: totals and per endpoint (``round -> [requests, up, down]``)."""

    requests: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    by_round: dict[str, list[int]] = field(default_factory=dict)

    def as_counts(self) -> dict[str, int]:
        """Flat counts for a store's tally (``<round>|requests``, ``<round>|bytes_up`` …)."""
        out = {"requests": self.requests, "bytes_up": self.bytes_up, "bytes_down": self.bytes_down}
        for name, (n, up, down) in self.by_round.items():
            out.update({f"{name}|requests": n, f"{name}|bytes_up": up, f"{name}|bytes_down": down})
        return out

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> "TrafficCount":
        out = cls(counts.get("requests", 0), counts.get("bytes_up", 0), counts.get("bytes_down", 0))
        keys = ("requests", "bytes_up", "bytes_down")
        for key, value in counts.items():
            name, _, what = key.rpartition("|")
            if name and what in keys:
                out.by_round.setdefault(name, [0, 0, 0])[keys.index(what)] += int(value)
        return out

    def as_dict(self) -> dict[str, object]:
        return {"requests": self.requests, "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "by_round": {k: {"requests": v[0], "bytes_up": v[1], "bytes_down": v[2]}
                             for k, v in sorted(self.by_round.items())}}


class Traffic:
    """The body bytes of one process's device exchanges since the last :meth:`take` (event loop only)."""

    def __init__(self, per_device: bool = False) -> None:
        self._count = TrafficCount()
        #: keep each device's newest request and reply sizes per endpoint (the simulated clock reads them)
        self.per_device = per_device
        self._requests: dict[tuple[str, str], int] = {}
        self._replies: dict[tuple[str, str], int] = {}
        #: since the process started
        self.total_up = 0
        self.total_down = 0

    def received(self, round_name: str, fl_id: str | None, bytes_up: int) -> None:
        """``fl_id``'s request body of ``bytes_up`` bytes was read (kept with ``per_device``; counted by
        :meth:`record` once answered)."""
        if self.per_device and fl_id:
            self._requests[(round_name, fl_id)] = bytes_up

    def request_bytes(self, round_name: str, fl_id: str) -> int | None:
        """The body size of ``fl_id``'s newest ``round_name`` request (None: none seen, or not ``per_device``)."""
        return self._requests.get((round_name, fl_id))

    def reply_bytes(self, round_name: str, fl_id: str) -> int | None:
        """The body size of the newest ``round_name`` reply sent to ``fl_id`` (None: none, or not ``per_device``)."""
        return self._replies.get((round_name, fl_id))

    def record(self, round_name: str, bytes_up: int, bytes_down: int, fl_id: str | None = None) -> None:
        """One exchange answered: ``bytes_up`` received, ``bytes_down`` sent (to ``fl_id``, if known)."""
        if self.per_device and fl_id:
            self._replies[(round_name, fl_id)] = bytes_down
        c = self._count
        c.requests += 1
        c.bytes_up += bytes_up
        c.bytes_down += bytes_down
        row = c.by_round.setdefault(round_name, [0, 0, 0])
        row[0] += 1
        row[1] += bytes_up
        row[2] += bytes_down
        self.total_up += bytes_up
        self.total_down += bytes_down

    def take(self) -> TrafficCount:
        """What was counted since the previous take; counting starts again from zero."""
        count, self._count = self._count, TrafficCount()
        return count

    def put_back(self, count: TrafficCount) -> None:
        """Count again what a take handed over but could not pass on (the store was unreachable)."""
        c = self._count
        c.requests += count.requests
        c.bytes_up += count.bytes_up
        c.bytes_down += count.bytes_down
        for name, (n, up, down) in count.by_round.items():
            row = c.by_round.setdefault(name, [0, 0, 0])
            row[0] += n
            row[1] += up
            row[2] += down
