"""Checks of a device request that come before the round's rules, answered RequestError and changing nothing.

- ``fl_name``: r1.6's devices send their case class (``com.mindspore.flclient.demo.lenet.LenetClient``), not
  the job's name, so a name is accepted when it is this server's ``fl_name`` or a Java class name (dotted
  identifiers, at most 256 characters); anything else (empty, spaces, bytes, a URL) is refused.
- startFLJob's ``data_size`` must be at least 1: a device without data has nothing to train on (it used to be
  told OutOfTime, "come back later", which it would do forever).
- with ``pki_verify``, the device's signature (:mod:`pyflclient.server.pki`).

Every refusal is reported through the transport's rate-limited client-fault log (one line per kind every
10 s, the rest counted).
"""
from __future__ import annotations

import re

from pyflclient.server.config import ServerConfig
from pyflclient.server.pki import DeviceAuth
from pyflclient.server.faults import ClientFaults
from pyflclient.wire.protocol import GetModelRequest, StartFLJobRequest, UpdateModelRequest

__all__ = ["RequestGuard", "fl_name_problem"]

_JAVA_CLASS = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")
_MAX_NAME = 256


def fl_name_problem(name: str, job: str) -> str | None:
    """Why ``name`` cannot name this job (``job`` = the server's fl_name), or None."""
    if name == job or (len(name) <= _MAX_NAME and _JAVA_CLASS.match(name)):
        return None
    shown = name if len(name) <= 60 else name[:60] + "…"
    return (f"fl_name {shown!r} is neither this server's fl_name {job!r} nor a case class name "
            f"(dotted Java identifiers, at most {_MAX_NAME} characters)")


class RequestGuard:
    """The pre-round checks of one server process."""

    def __init__(self, config: ServerConfig, faults: ClientFaults):
        self.config = config
        self.faults = faults
        self.auth: DeviceAuth | None = DeviceAuth(config) if config.pki_verify else None

    def _refused(self, round_name: str, remote: str | None, problem: str) -> str:
        self.faults.report(f"{round_name} refused", remote or "?", problem)
        return problem

    async def start_fl_job(self, req: StartFLJobRequest, remote: str | None) -> str | None:
        problem = fl_name_problem(req.fl_name, self.config.fl_name)
        if problem is None and req.data_size < 1:
            problem = f"data_size must be at least 1 (a device without data has nothing to train), got {req.data_size}"
        if problem is None and self.auth is not None:
            problem = await self.auth.start_fl_job(req)
        return None if problem is None else self._refused("startFLJob", remote, problem)

    async def update_model(self, req: UpdateModelRequest, remote: str | None) -> str | None:
        problem = fl_name_problem(req.fl_name, self.config.fl_name)
        if problem is None and self.auth is not None:
            problem = await self.auth.update_model(req)
        return None if problem is None else self._refused("updateModel", remote, problem)

    async def get_model(self, req: GetModelRequest, remote: str | None) -> str | None:
        problem = fl_name_problem(req.fl_name, self.config.fl_name)
        return None if problem is None else self._refused("getModel", remote, problem)

    async def aclose(self) -> None:
        if self.auth is not None:
            await self.auth.aclose()
