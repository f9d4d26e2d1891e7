"""The asynchronous mode on the simulated clock: the device profiles plan when each upload arrives.

With ``device_profiles`` set, :class:`~pyflclient.server.async_rounds.AsyncRounds` reads its time
from :class:`SimulatedAsyncClock`, a planning :class:`~pyflclient.server.async_rounds.Clock` over
:class:`pyflclient.clock.SimulatedClock` (issue 23). A device admitted at simulated time ``t``
asks at its next online time ``a = ask_time(t)``, downloads the model, trains
``client_epoch_num`` epochs of its ``data_size`` and uploads, each at its profile's speed:
its upload is planned at ``a + download + training + upload``
(:meth:`~pyflclient.clock.SimulatedClock.device_times`). The rounds take the uploads in the order of
the plan, and the clock's time is that of the last upload taken: admissions happen then, and
every version, metric and time-to-accuracy is on this clock. A device that is offline when it asks
is not admitted (``OutOfTime``, the reason says until when), and one whose online session ends
before its planned upload has *dropped*: its upload is refused (``OutOfTime``), as a synchronous
round refuses both, and it asks again.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.clock import SimulatedClock, transfer_bytes
from pyflclient.server.config import ServerConfig
from pyflclient.server.simulated import clock_of
from pyflclient.wire.protocol import now_ms

__all__ = ["SimulatedAsyncClock", "async_clock_of"]


class SimulatedAsyncClock:
    """A planning clock from the device profiles (module docstring)."""

    def __init__(self, clock: SimulatedClock, epochs: int, model: Mapping[str, np.ndarray]):
        self.simulated = clock
        self.epochs = epochs
        self.model_bytes = transfer_bytes(model)
        self.t = clock.origin_ms
        self._dropped: dict[str, str] = {}  # fl_id -> why its planned upload does not count

    def now_ms(self) -> int:
        return self.t

    def upload_ms(self, fl_id: str, data_size: int, admitted_ms: int) -> int | None:
        asked = self.simulated.ask_time(fl_id, admitted_ms)
        if asked is None:  # never online again: it cannot upload; refused if it does
            self._dropped[fl_id] = "the device is never online again on the simulated clock"
            return None
        times = self.simulated.device_times(fl_id, asked, data_size, self.epochs, self.model_bytes,
                                            self.model_bytes)
        self._dropped.pop(fl_id, None)
        if times.online_until_ms < times.uploaded_ms:
            self._dropped[fl_id] = (f"the device went offline at {self.hours(int(times.online_until_ms)):.3f} h "
                                    f"before its upload at {self.hours(times.uploaded_ms):.3f} h (simulated)")
        return times.uploaded_ms

    #: a planning clock (async_rounds.Clock.PLANS)
    PLANS = True

    def online_from(self, fl_id: str, at_ms: int) -> int | None:
        return self.simulated.ask_time(fl_id, at_ms)

    def offline(self, fl_id: str, at_ms: int) -> str | None:
        asked = self.simulated.ask_time(fl_id, at_ms)
        if asked == at_ms:
            return None
        when = "never again" if asked is None else f"until {self.hours(asked):.3f} h"
        return f"the device is offline on the simulated clock at {self.hours(at_ms):.3f} h ({when})"

    def refusal(self, fl_id: str) -> str | None:
        return self._dropped.pop(fl_id, None)

    def advance(self, to_ms: int) -> None:
        self.t = max(self.t, to_ms)

    def hours(self, at_ms: int) -> float | None:
        return self.simulated.hours(at_ms)


def async_clock_of(config: ServerConfig, model: Mapping[str, np.ndarray]) -> SimulatedAsyncClock | None:
    """The simulated clock of ``device_profiles`` (None: the wall clock), its origin now."""
    clock = clock_of(config, now_ms())
    return None if clock is None else SimulatedAsyncClock(clock, config.client_epoch_num, model)
