"""What the asynchronous mode keeps beside the store's versions: the seats, the buffer and the one-writer lock.

The versions themselves (model and state of each, the newest, finished) live in the
:class:`~pyflclient.server.store.StateStore` as the synchronous iterations do (version *v* is
published as iteration *v*). What the asynchronous rules add is here, with the same two
homes: :class:`MemorySeats` (one process) and :class:`RedisSeats` (a group of processes on one
Redis, under ``pyflclient:<fl_name>:async:``):

==================  =================================================================
``seats``           hash ``fl_id`` → admitted at (ms): the devices training now
``buffer``          hash ``(iteration, fl_id)`` key → the buffered upload (``.npz`` bytes)
``lock``            the writer's token, with a lease: one process at a time turns
                    uploads into a version (the lease ends a dead holder's turn)
==================  =================================================================

A buffered upload is in Redis before the device is answered SUCCEED, as a synchronous
upload is.
"""
from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import socket
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

from pyflclient.server.store import StoreUnavailable

__all__ = ["AsyncShared", "MemorySeats", "RedisSeats", "LOCK_LEASE_MS"]

#: how long a writer may hold the lock before another process may take it (it died mid-version)
LOCK_LEASE_MS = 30_000

# drop the expired seats, then take one if fewer than the concurrency are taken (or it is held already)
_TAKE_SEAT = """
local seats = KEYS[1]
local fl_id, now, concurrency, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local held = redis.call('HGETALL', seats)
for i = 1, #held, 2 do
  if tonumber(held[i + 1]) + lease <= now then redis.call('HDEL', seats, held[i]) end
end
if redis.call('HEXISTS', seats, fl_id) == 0 and redis.call('HLEN', seats) >= concurrency then return 0 end
redis.call('HSET', seats, fl_id, now)
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AsyncShared(abc.ABC):
    """The seats, the buffer and the writer's lock of one asynchronous job (module docstring)."""

    shared: bool = False

    @abc.abstractmethod
    async def take_seat(self, fl_id: str, now_ms: int, concurrency: int, lease_ms: int) -> bool:
        """Give ``fl_id`` a seat (seats older than ``lease_ms`` given back first) unless ``concurrency`` are
        taken by others; True when it holds one."""

    @abc.abstractmethod
    async def free_seat(self, fl_id: str) -> None:
        """Give back ``fl_id``'s seat (its upload arrived)."""

    @abc.abstractmethod
    async def seats(self) -> int:
        """Seats taken now."""

    @abc.abstractmethod
    async def buffer_add(self, key: str, entry: bytes) -> bool:
        """Keep a buffered upload under ``key``; False when the key is there already."""

    @abc.abstractmethod
    async def buffer(self) -> dict[str, bytes]:
        """Every buffered upload, by key."""

    @abc.abstractmethod
    async def buffer_clear(self) -> None:
        """Empty the buffer (its uploads are in the version just published)."""

    @abc.abstractmethod
    def writer(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while uploads become a version: one writer at a time in the whole job."""

    async def aclose(self) -> None:
        """Let go of connections (the server is stopping)."""


class MemorySeats(AsyncShared):
    """All of it in this process."""

    def __init__(self) -> None:
        self._seats: dict[str, int] = {}
        self._buffer: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    async def take_seat(self, fl_id: str, now_ms: int, concurrency: int, lease_ms: int) -> bool:
        for held in [f for f, at in self._seats.items() if at + lease_ms <= now_ms]:
            del self._seats[held]
        if fl_id not in self._seats and len(self._seats) >= concurrency:
            return False
        self._seats[fl_id] = now_ms
        return True

    async def free_seat(self, fl_id: str) -> None:
        self._seats.pop(fl_id, None)

    async def seats(self) -> int:
        return len(self._seats)

    async def buffer_add(self, key: str, entry: bytes) -> bool:
        if key in self._buffer:
            return False
        self._buffer[key] = entry
        return True

    async def buffer(self) -> dict[str, bytes]:
        return dict(self._buffer)

    async def buffer_clear(self) -> None:
        self._buffer.clear()

    def writer(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._lock


class RedisSeats(AsyncShared):
    """The same in the Redis of a server group (``distributed_cache_address``), under the job's prefix."""

    shared = True

    def __init__(self, address: str, fl_name: str, lease_ms: int = LOCK_LEASE_MS, timeout_s: float = 5.0):
        import redis.asyncio as aioredis
        import redis.exceptions

        from pyflclient.server.config import redis_url

        self.address = redis_url(address)
        self._redis = aioredis.Redis.from_url(self.address, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s, retry=None)
        self._unreachable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
        prefix = f"pyflclient:{fl_name}:async:"
        self._seats_key, self._buffer_key, self._lock_key = prefix + "seats", prefix + "buffer", prefix + "lock"
        self._take = self._redis.register_script(_TAKE_SEAT)
        self._release = self._redis.register_script(_RELEASE)
        self._lease_ms = lease_ms
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._local = asyncio.Lock()  # this process's writers queue here, not on Redis

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """One Redis call (tried twice: a restarted Redis fails each pooled connection once); unreachable:
        StoreUnavailable (the store logs outages; the device gets SystemError and retries)."""
        try:
            try:
                return await make()
            except self._unreachable:
                return await make()
        except self._unreachable as exc:
            raise StoreUnavailable(f"distributed cache {self.address} unreachable: {exc}") from None

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def take_seat(self, fl_id: str, now_ms: int, concurrency: int, lease_ms: int) -> bool:
        return bool(await self._call(lambda: self._take(keys=[self._seats_key],
                                                        args=[fl_id, now_ms, concurrency, lease_ms])))

    async def free_seat(self, fl_id: str) -> None:
        await self._call(lambda: self._redis.hdel(self._seats_key, fl_id))

    async def seats(self) -> int:
        return int(await self._call(lambda: self._redis.hlen(self._seats_key)))

    async def buffer_add(self, key: str, entry: bytes) -> bool:
        return bool(await self._call(lambda: self._redis.hsetnx(self._buffer_key, key, entry)))

    async def buffer(self) -> dict[str, bytes]:
        found = await self._call(lambda: self._redis.hgetall(self._buffer_key))
        return {k.decode(): v for k, v in found.items()}

    async def buffer_clear(self) -> None:
        await self._call(lambda: self._redis.delete(self._buffer_key))

    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[None]:
        async with self._local:
            token = f"{self._me}:{uuid.uuid4().hex[:8]}"
            delay = 0.002
            while not await self._call(lambda: self._redis.set(self._lock_key, token, nx=True, px=self._lease_ms)):
                await asyncio.sleep(delay)
                delay = min(0.05, delay * 2)
            try:
                yield
            finally:
                try:
                    await self._call(lambda: self._release(keys=[self._lock_key], args=[token]))
                except StoreUnavailable:  # the lease ends it
                    pass
