"""The upload-protection seam of the server: one :class:`RoundMode` per encrypt type.

``encrypt_type`` (a row of ``schema/round_plugins.json``'s ``encrypt_types``) decides
what the server sees of an upload: the upload itself (NOT_ENCRYPT), each upload
clipped and noised on the device (DP_ENCRYPT), or only the sum of the uploads, masked
until extra cipher phases let the server remove the masks (PW_ENCRYPT). A mode says
the plan's CipherPublicParams, the extra endpoints it answers, whether it decides
when an iteration ends, and turns a closed iteration's uploads into what the
aggregator reads. :mod:`pyflclient.server.rounds` calls these steps and never names
an encrypt type; :mod:`pyflclient.server.round_modes` maps the names to the modes.

A mode reaches the round through :class:`RoundHost` (the configuration, the store,
the model's shapes, its timers), not through the ``Rounds`` class, so that the modes
and the round rules do not import each other.
"""
from __future__ import annotations

import abc
from typing import Any, Awaitable, Callable, ClassVar, Mapping, Protocol

from pyflclient.server.config import ServerConfig
from pyflclient.server.store import ClosedIteration, StateStore
from pyflclient.server.strategies.base import DeviceUpload
from pyflclient.wire.plugins import EncryptType, table

__all__ = ["RoundHost", "RoundMode", "Endpoint"]

#: an extra round of a mode: the decoded request → the reply's bytes (or the plain-text state reply)
Endpoint = Callable[[Mapping[str, Any]], Awaitable["bytes | str"]]


class RoundHost(Protocol):
    """What a mode may use of the round rules of its server process."""

    config: ServerConfig
    store: StateStore
    shapes: Mapping[str, tuple[int, ...]]

    def arm_phase(self, iteration: int, phase: str, window_ms: int, began_ms: int,
                  callback: Callable[[int], Awaitable[None]]) -> None:
        """Run ``callback(iteration)`` when the mode's ``phase`` window (from ``began_ms``) ends."""

    def finish_soon(self, iteration: int) -> None:
        """Finish ``iteration`` in the background (aggregate, checkpoint, publish)."""


class RoundMode(abc.ABC):
    """One encrypt type on the server (see the module docstring). Subclasses set ``NAME`` to their row's name.

    The default steps are those of uploads in the clear: nothing in the plan, no extra round, the
    iteration ends at ``update_model_threshold`` uploads or at its update window, and the aggregator
    reads every upload."""

    NAME: ClassVar[str]
    #: uploads are ring elements, two float32 slots per value, whose masks only cancel in the sum
    MASKED: ClassVar[bool] = False
    #: the mode's phases decide when an iteration ends (not the upload count and the update window)
    DECIDES_END: ClassVar[bool] = False

    def __init__(self, host: RoundHost):
        self.host = host
        self.config = host.config
        self.store = host.store

    @classmethod
    def row(cls) -> EncryptType:
        return table().encrypt[cls.NAME]

    def plan_fields(self) -> dict[str, Any]:
        """The plan's CipherPublicParams of this mode (beyond ``encrypt_type``), as FLPlan keywords."""
        return {}

    def endpoints(self) -> Mapping[str, Endpoint]:
        """The extra rounds this mode answers (round name → handler); the others are refused."""
        return {}

    async def admission_full(self, iteration: int) -> None:
        """``start_fl_job_threshold`` devices are admitted to ``iteration`` (a :data:`DECIDES_END` mode's
        next phase may begin)."""

    async def admission_over(self, iteration: int, now_ms: int) -> None:
        """The admission window of ``iteration`` ended (a :data:`DECIDES_END` mode: its phases go on)."""

    async def follow(self, iteration: int) -> None:
        """Another process may have moved the open ``iteration`` on (a shared store; a :data:`DECIDES_END`
        mode catches up with its phases and windows)."""

    async def may_upload(self, iteration: int, fl_id: str) -> str | None:
        """Why ``fl_id`` cannot upload now beyond the round's rules, or None."""
        return None

    async def uploaded(self, iteration: int, fl_id: str) -> str | None:
        """``fl_id``'s upload of ``iteration`` is stored (a :data:`DECIDES_END` mode moves its phases on); why it
        does not count after all (the phase ended meanwhile: the device is answered OutOfTime), or None."""
        return None

    async def combine(self, closed: ClosedIteration) -> Mapping[str, DeviceUpload] | None:
        """What the aggregator reads of a closed iteration (fl_id → upload), or None when the iteration is
        invalid and keeps the previous model: here, every upload once ``update_model_threshold`` came in."""
        return closed.uploads if closed.uploaded >= self.config.update_model_threshold else None
