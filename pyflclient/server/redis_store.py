"""The job's state in Redis, so that several server processes act as one server.

Every :class:`~pyflclient.server.store.StateStore` step is one Lua script run by Redis
(atomic: no other command runs in between), so the rules of ``rounds.py`` hold across
processes exactly as on one event loop: the threshold-th admission, the per-address
seats, the one upload per ``fl_id``, the close that only one caller gets, the
publication that begins the next iteration. One Redis (not Redis Cluster: the scripts
touch keys they derive from the iteration). Keys, under ``pyflclient:<fl_name>:``:

========================  ==========================================================
``job``                   hash: ``iteration`` (current), ``latest`` (newest published),
                          ``finished``, ``closed``, ``start_began`` / ``update_began``
                          (window begin, epoch ms), ``closer`` / ``lease_until`` (who is
                          finishing the closed iteration, until when), ``shapes`` (JSON)
``it:<k>:admitted``       hash ``fl_id`` → ``data_size`` of iteration *k*
``it:<k>:uploads``        hash ``fl_id`` → ``<upload_loss as float.hex, or ''>|<1 if a
                          control variate follows the weights, else 0>``: who uploaded
                          (kept until *k* is published)
``it:<k>:upload:<fl_id>`` the upload: the model's float32 bytes, weights in sorted name
                          order, then the control variate's the same way if it has one
                          (kept until *k* is published)
``it:<k>:seats``          hash remote address → seats taken (``max_admissions_per_address``)
``it:<k>:cipher:<phase>`` PW_ENCRYPT: hash ``fl_id`` → the device's entry of the phase
                          (``<phase>>holder``: the entries filed for one holder, e.g. shares)
``it:<k>:frozen:<phase>`` PW_ENCRYPT: the frozen phase, JSON ``{"at": ms, "members": [...]}``
``it:<k>:cipherkeys``     set of the ``cipher``/``frozen`` keys of *k* (deleted with them on publish)
``model:<k>``             the published model of *k* (float32 bytes); the newest
                          :data:`KEEP_MODELS` are kept, older ones come from the checkpoints
``state:<k>``             the job's state published with *k* (an uncompressed ``.npz``: the
                          aggregator's and the early stop's arrays; absent when empty), kept
                          as the models are
========================  ==========================================================

An upload is in Redis before ``add_upload`` returns, so before the device is answered
``SUCCEED``. Its bytes travel as a plain ``SET`` of a staging key in the same MULTI
transaction as the script that accepts it (renaming the key) or refuses it (deleting it):
a 266 KB argument costs Redis ≈ 2 µs as a ``SET`` and ≈ 600 µs through a Lua script or
``HSETNX``, which copy it. A process that dies after ``close`` and before ``publish`` leaves a lease
(:data:`CLOSE_LEASE_MS`); after it, ``close`` hands the same uploads to the next caller,
which computes the same model (the uploads in fl_id order, the state of *k - 1*) and publishes it; a late
publication of an iteration already published is ignored. A Redis that cannot be
reached raises :class:`~pyflclient.server.store.StoreUnavailable`; the first failure of
an outage is logged (WARNING) and its end (INFO), nothing in between.
"""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import time
import uuid
from typing import Any, Awaitable, Callable, Mapping, Sequence

import numpy as np

from pyflclient.server.strategies.base import DeviceUpload, State
from pyflclient.server.config import redis_url
from pyflclient.server.store import (
    Admission, CipherAdd, ClosedIteration, Frozen, IterationView, Model, StateStore, StoreUnavailable, Upload,
)

__all__ = ["RedisStore", "CLOSE_LEASE_MS", "KEEP_MODELS"]

log = logging.getLogger(__name__)

#: how long the process that closed an iteration has to publish it before another may take over
CLOSE_LEASE_MS = 10_000
#: published models kept in Redis (the newest); older ones are read from the checkpoint folder
KEEP_MODELS = 8


# Each script gets the key prefix as ARGV[1]; -1 stands for "not begun" (a Lua nil would end the reply).
_PRELUDE = """
local P = ARGV[1]
local J = P .. 'job'
local function it_key(k, what) return P .. 'it:' .. k .. ':' .. what end
local function view(status)
  local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed', 'start_began', 'update_began', 'latest')
  return {status, tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), redis.call('HLEN', it_key(f[1], 'admitted')),
          redis.call('HLEN', it_key(f[1], 'uploads')), tonumber(f[4] or -1), tonumber(f[5] or -1), tonumber(f[6])}
end
if redis.call('EXISTS', J) == 0 then return {'nojob'} end
"""

_BEGIN = """
local P = ARGV[1]
local J = P .. 'job'
if redis.call('EXISTS', J) == 1 then
  return {'joined', redis.call('HGET', J, 'shapes'), redis.call('HGET', J, 'latest')}
end
local k, finished = tonumber(ARGV[2]), ARGV[5]
redis.call('SET', P .. 'model:' .. (k - 1), ARGV[3])
if ARGV[6] ~= '' then redis.call('SET', P .. 'state:' .. (k - 1), ARGV[6]) end
local current = k
if finished == '1' then current = k - 1 end
redis.call('HSET', J, 'iteration', current, 'latest', k - 1, 'finished', finished, 'closed', finished,
           'shapes', ARGV[4])
return {'began', ARGV[4], k - 1}
"""

_VIEW = _PRELUDE + "return view('ok')"

# ARGV: prefix, iteration, fl_id, data_size, now, threshold, window, remote, per_address
_ADMIT = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed', 'start_began')
if f[2] == '1' or f[3] == '1' or f[1] ~= ARGV[2] then return view('closed') end
local A = it_key(ARGV[2], 'admitted')
if redis.call('HEXISTS', A, ARGV[3]) == 1 then return view('already') end
if redis.call('HLEN', A) >= tonumber(ARGV[6]) then return view('full') end
local now = tonumber(ARGV[5])
if f[4] and now >= tonumber(f[4]) + tonumber(ARGV[7]) then return view('window') end
-- PW_ENCRYPT froze the admitted devices (another process's window ended first): no seat outside that list
if redis.call('EXISTS', it_key(ARGV[2], 'frozen:admitted')) == 1 then return view('window') end
local limit = tonumber(ARGV[9])
if limit > 0 then
  local S = it_key(ARGV[2], 'seats')
  if tonumber(redis.call('HGET', S, ARGV[8]) or '0') >= limit then return view('address') end
  redis.call('HINCRBY', S, ARGV[8], 1)
end
if not f[4] then redis.call('HSET', J, 'start_began', ARGV[5]) end
redis.call('HSET', A, ARGV[3], ARGV[4])
return view('admitted')
"""

# ARGV: prefix, iteration, fl_id, now, staging key (SET just before, in the same MULTI), loss|control variate
_ADD_UPLOAD = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed', 'update_began')
local outcome = 'accepted'
if f[2] == '1' or f[3] == '1' or f[1] ~= ARGV[2] then outcome = 'closed'
elseif redis.call('HEXISTS', it_key(ARGV[2], 'admitted'), ARGV[3]) == 0 then outcome = 'not_admitted'
elseif redis.call('HEXISTS', it_key(ARGV[2], 'uploads'), ARGV[3]) == 1 then outcome = 'duplicate'
-- PW_ENCRYPT's upload phase was frozen (by any process): a later upload could not be unmasked
elseif redis.call('EXISTS', it_key(ARGV[2], 'frozen:uploads')) == 1 then outcome = 'closed'
else redis.call('HSET', it_key(ARGV[2], 'uploads'), ARGV[3], ARGV[6]) end
if outcome ~= 'accepted' then
  redis.call('DEL', ARGV[5])
  return view(outcome)
end
redis.call('RENAME', ARGV[5], it_key(ARGV[2], 'upload:' .. ARGV[3]))
if not f[4] then redis.call('HSET', J, 'update_began', ARGV[4]) end
return view('accepted')
"""

# ARGV: prefix, iteration, now
_BEGIN_UPDATE_WINDOW = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed', 'update_began')
if f[2] == '1' or f[3] == '1' or f[1] ~= ARGV[2] or f[4] then return {'no'} end
redis.call('HSET', J, 'update_began', ARGV[3])
return {'began'}
"""

# ARGV: prefix, iteration, lease_ms, closer. The lease runs on Redis's clock: the processes' may differ.
_CLOSE = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed', 'lease_until', 'start_began')
if f[2] == '1' or f[1] ~= ARGV[2] then return {'no'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if f[3] == '1' and now < tonumber(f[4] or 0) then return {'no'} end
local taken_over = f[3] == '1'
redis.call('HSET', J, 'closed', 1, 'closer', ARGV[4], 'lease_until', now + tonumber(ARGV[3]))
return {'closed', tonumber(f[5] or -1), redis.call('HGETALL', it_key(ARGV[2], 'admitted')),
        redis.call('HGETALL', it_key(ARGV[2], 'uploads')), taken_over and 1 or 0}
"""

# ARGV: prefix, iteration, model, finished, keep, state ('' for none)
_PUBLISH = _PRELUDE + """
local k = tonumber(ARGV[2])
local f = redis.call('HMGET', J, 'iteration', 'closed', 'latest')
if tonumber(f[3]) >= k then return {'already'} end
if tonumber(f[1]) ~= k or f[2] ~= '1' then return {'not_closed', tonumber(f[1])} end
redis.call('SET', P .. 'model:' .. k, ARGV[3])
redis.call('DEL', P .. 'model:' .. (k - tonumber(ARGV[5])), P .. 'state:' .. (k - tonumber(ARGV[5])))
if ARGV[6] ~= '' then redis.call('SET', P .. 'state:' .. k, ARGV[6]) end
redis.call('HSET', J, 'latest', k, 'finished', ARGV[4])
for _, fl_id in ipairs(redis.call('HKEYS', it_key(k, 'uploads'))) do
  redis.call('DEL', it_key(k, 'upload:' .. fl_id))
end
redis.call('DEL', it_key(k, 'admitted'), it_key(k, 'uploads'), it_key(k, 'seats'))
for _, key in ipairs(redis.call('SMEMBERS', it_key(k, 'cipherkeys'))) do redis.call('DEL', key) end
redis.call('DEL', it_key(k, 'cipherkeys'))
if ARGV[4] == '0' then
  redis.call('HSET', J, 'iteration', k + 1, 'closed', 0)
  redis.call('HDEL', J, 'start_began', 'update_began', 'closer', 'lease_until')
end
return {'published'}
"""

# ARGV: prefix, iteration, then field/count pairs: into the first tally from `iteration` on not taken yet
_ADD_TRAFFIC = """
local k = tonumber(ARGV[2])
while redis.call('HEXISTS', ARGV[1] .. 'traffic:' .. k, 'taken') == 1 do k = k + 1 end
local key = ARGV[1] .. 'traffic:' .. k
for i = 3, #ARGV, 2 do redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1]) end
return {k}
"""

# ARGV: prefix, iteration: the tally, marked taken (the one before the previous goes)
_TAKE_TRAFFIC = """
local key = ARGV[1] .. 'traffic:' .. ARGV[2]
redis.call('HSET', key, 'taken', 1)
redis.call('DEL', ARGV[1] .. 'traffic:' .. (tonumber(ARGV[2]) - 2))
return redis.call('HGETALL', key)
"""

# ARGV: prefix, iteration, phase, fl_id, value, then holder/value pairs (fanout)
_CIPHER_ADD = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished', 'closed')
if f[2] == '1' or f[3] == '1' or f[1] ~= ARGV[2] then return {'closed'} end
if redis.call('EXISTS', it_key(ARGV[2], 'frozen:' .. ARGV[3])) == 1 then return {'frozen'} end
local K = it_key(ARGV[2], 'cipher:' .. ARGV[3])
if redis.call('HSETNX', K, ARGV[4], ARGV[5]) == 0 then return {'duplicate'} end
local index = it_key(ARGV[2], 'cipherkeys')
redis.call('SADD', index, K)
for i = 6, #ARGV, 2 do
  local H = it_key(ARGV[2], 'cipher:' .. ARGV[3] .. '>' .. ARGV[i])
  redis.call('HSET', H, ARGV[4], ARGV[i + 1])
  redis.call('SADD', index, H)
end
return {'added'}
"""

# ARGV: prefix, iteration, phase, now
_CIPHER_FREEZE = _PRELUDE + """
local f = redis.call('HMGET', J, 'iteration', 'finished')
if f[2] == '1' or f[1] ~= ARGV[2] then return {'no'} end
local F = it_key(ARGV[2], 'frozen:' .. ARGV[3])
local held = redis.call('GET', F)
if held then return {'frozen', held} end
local members
if ARGV[3] == 'admitted' then members = redis.call('HKEYS', it_key(ARGV[2], 'admitted'))
else members = redis.call('HKEYS', it_key(ARGV[2], 'cipher:' .. ARGV[3])) end
table.sort(members)
local state = cjson.encode({at = tonumber(ARGV[4]), members = members})
if #members == 0 then state = '{"at":' .. ARGV[4] .. ',"members":[]}' end
redis.call('SET', F, state)
redis.call('SADD', it_key(ARGV[2], 'cipherkeys'), F)
return {'frozen', state}
"""

_ADMISSION = {"admitted": Admission.ADMITTED, "already": Admission.ALREADY_ADMITTED, "full": Admission.FULL,
              "window": Admission.WINDOW_OVER, "address": Admission.ADDRESS_FULL, "closed": Admission.CLOSED}
_UPLOAD = {"accepted": Upload.ACCEPTED, "not_admitted": Upload.NOT_ADMITTED, "duplicate": Upload.DUPLICATE,
           "closed": Upload.CLOSED}


_CIPHER_ADD_OUTCOME = {"added": CipherAdd.ADDED, "duplicate": CipherAdd.DUPLICATE, "frozen": CipherAdd.FROZEN,
                       "closed": CipherAdd.CLOSED}


def _state_bytes(state: State | None) -> bytes:
    """The job's state as an uncompressed .npz (b'' when empty: nothing is stored)."""
    if not state:
        return b""
    buf = io.BytesIO()
    np.savez(buf, **{key: np.asarray(value) for key, value in state.items()})
    return buf.getvalue()


def _state_of(data: bytes | None) -> dict[str, np.ndarray]:
    if not data:
        return {}
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: np.array(npz[key]) for key in npz.files}


def _upload_meta(loss: float | None, control_variate: Model | None) -> str:
    """The uploads hash's value of one upload: its loss (exact, as float.hex) and whether a control variate
    follows its weights."""
    return f"{'' if loss is None else float(loss).hex()}|{1 if control_variate else 0}"


def _frozen(state: bytes) -> Frozen:
    held = json.loads(state)
    members = held["members"] if isinstance(held["members"], list) else []  # cjson writes {} for an empty table
    return Frozen(int(held["at"]), tuple(members))


class RedisStore(StateStore):
    """The state of one FL job in one Redis, shared by every server process given the same address
    and ``fl_name`` (see the module docstring for the keys and the failure rules)."""

    shared = True

    def __init__(self, address: str, *, fl_name: str = "Lenet", close_lease_ms: int = CLOSE_LEASE_MS,
                 timeout_s: float = 5.0):
        try:
            import redis.asyncio as aioredis
        except ImportError:  # pragma: no cover - the extra is not installed
            raise StoreUnavailable("the distributed cache needs the redis client: pip install 'pyflclient[redis]'"
                                   ) from None
        import redis.exceptions

        self.address = redis_url(address)
        self.prefix = f"pyflclient:{fl_name}:"
        self.close_lease_ms = close_lease_ms
        #: who holds a close lease: host, pid and a random part (a restarted process is another closer)
        self.closer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = aioredis.Redis.from_url(self.address, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s, retry=None)
        self._unreachable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
        self._scripts = {name: self._redis.register_script(code) for name, code in (
            ("begin", _BEGIN), ("view", _VIEW), ("admit", _ADMIT), ("add_upload", _ADD_UPLOAD),
            ("begin_update_window", _BEGIN_UPDATE_WINDOW), ("close", _CLOSE), ("publish", _PUBLISH),
            ("cipher_add", _CIPHER_ADD), ("cipher_freeze", _CIPHER_FREEZE), ("add_traffic", _ADD_TRAFFIC),
            ("take_traffic", _TAKE_TRAFFIC))}
        self._names: list[str] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._models: dict[int, Model] = {}  # published models never change: decoded once per process
        self._states: dict[int, State] = {}  # nor do their states
        self._down_since: float | None = None

    # -- the wire between this process and Redis -------------------------------------

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run one Redis call; an unreachable Redis becomes StoreUnavailable, logged once per outage.

        A failed call is tried once more at once: after a Redis restart every pooled connection fails
        once ("Connection closed by server") and the second try reconnects."""
        try:
            try:
                result = await call()
            except self._unreachable:
                result = await call()
        except self._unreachable as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("distributed cache %s unreachable (%s); device requests get SystemError until it "
                            "is back", self.address, exc)
            raise StoreUnavailable(f"distributed cache {self.address} unreachable: {exc}") from None
        if self._down_since is not None:
            log.info("distributed cache %s reachable again after %.1f s", self.address,
                     time.monotonic() - self._down_since)
            self._down_since = None
        return result

    async def _run(self, script: str, *args: Any) -> list[Any]:
        reply = await self._call(lambda: self._scripts[script](args=[self.prefix, *args]))
        if reply and reply[0] == b"nojob":
            raise StoreUnavailable(f"distributed cache {self.address} holds no job {self.prefix!r} (was it "
                                   f"restarted without persistence?); restart the server group to resume from "
                                   f"the checkpoints")
        return reply

    def _encode(self, weights: Model) -> bytes:
        return b"".join(np.ascontiguousarray(weights[n], dtype=np.float32).tobytes() for n in self._names)

    def _upload(self, data_size: int, meta: str, data: bytes) -> DeviceUpload:
        """One stored upload: its weights, then its control variate if ``meta`` says one follows."""
        loss, has_variate = meta.split("|")
        if has_variate == "1":
            half = len(data) // 2
            weights, variate = self._decode(data[:half]), self._decode(data[half:])
        else:
            weights, variate = self._decode(data), {}
        return DeviceUpload(data_size, weights, float.fromhex(loss) if loss else None, variate)

    def _decode(self, data: bytes) -> dict[str, np.ndarray]:
        """A model, or an upload: PW_ENCRYPT's masked uploads hold two float32 slots per value (kept flat)."""
        flat = np.frombuffer(data, dtype=np.float32)
        slots = flat.size // max(1, sum(int(np.prod(s)) for s in self._shapes.values()))
        out, at = {}, 0
        for name in self._names:
            shape = self._shapes[name]
            size = int(np.prod(shape)) * slots
            out[name] = flat[at:at + size].reshape(shape if slots == 1 else (size,))
            at += size
        return out

    @staticmethod
    def _view(reply: Sequence[Any]) -> IterationView:
        iteration, finished, closed, admitted, uploaded, start, update = (int(x) for x in reply[1:8])
        return IterationView(iteration, bool(finished), bool(closed or finished), admitted, uploaded,
                             start if start >= 0 else None, update if update >= 0 else None)

    # -- StateStore ----------------------------------------------------------------------

    async def begin(self, iteration: int, previous_model: Model, finished: bool = False,
                    state: State | None = None) -> None:
        """Begin the job in Redis, or join the one it holds (then ``iteration``, the model and the state
        are not used)."""
        self._names = sorted(previous_model)
        self._shapes = {n: tuple(int(d) for d in np.shape(previous_model[n])) for n in self._names}
        shapes = json.dumps([[n, list(self._shapes[n])] for n in self._names])
        reply = await self._run("begin", iteration, self._encode(previous_model), shapes, int(finished),
                                _state_bytes(state))
        status, held, latest = reply[0].decode(), reply[1].decode(), int(reply[2])
        if held != shapes:
            raise ValueError(f"distributed cache {self.address} holds job {self.prefix!r} of another model "
                             f"(names/shapes {held}); give the same model to every process of the group, or "
                             f"another fl_name")
        log.info("%s job %r in %s after iteration %d", "began" if status == "began" else "joined", self.prefix,
                 self.address, latest)

    async def view(self) -> IterationView:
        return self._view(await self._run("view"))

    async def admit(self, iteration: int, fl_id: str, data_size: int, now_ms: int, threshold: int,
                    window_ms: int, *, remote: str | None = None, per_address: int = 0
                    ) -> tuple[Admission, IterationView]:
        per_address = per_address if remote is not None else 0
        reply = await self._run("admit", iteration, fl_id, data_size, now_ms, threshold, window_ms, remote or "",
                                per_address)
        return _ADMISSION[reply[0].decode()], self._view(reply)

    async def data_size(self, iteration: int, fl_id: str) -> int | None:
        found = await self._call(lambda: self._redis.hget(f"{self.prefix}it:{iteration}:admitted", fl_id))
        return None if found is None else int(found)

    async def add_upload(self, iteration: int, fl_id: str, weights: Model, now_ms: int, *,
                         loss: float | None = None, control_variate: Model | None = None
                         ) -> tuple[Upload, IterationView]:
        data = self._encode(weights) + (self._encode(control_variate) if control_variate else b"")
        meta = _upload_meta(loss, control_variate)

        async def transaction() -> list[Any]:
            staging = f"{self.prefix}staging:{uuid.uuid4().hex}"
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(staging, data)
                await self._scripts["add_upload"](args=[self.prefix, iteration, fl_id, now_ms, staging, meta],
                                                  client=pipe)
                return (await pipe.execute())[1]

        reply = await self._call(transaction)
        if reply[0] == b"nojob":
            await self._run("view")  # raises the "holds no job" error
        return _UPLOAD[reply[0].decode()], self._view(reply)

    async def begin_update_window(self, iteration: int, now_ms: int) -> bool:
        return (await self._run("begin_update_window", iteration, now_ms))[0] == b"began"

    async def close(self, iteration: int) -> ClosedIteration | None:
        reply = await self._run("close", iteration, self.close_lease_ms, self.closer)
        if reply[0] != b"closed":
            return None
        start, admitted_flat, uploaders, taken_over = int(reply[1]), reply[2], reply[3], int(reply[4])
        sizes = {admitted_flat[i].decode(): int(admitted_flat[i + 1]) for i in range(0, len(admitted_flat), 2)}
        metas = {uploaders[i].decode(): uploaders[i + 1].decode() for i in range(0, len(uploaders), 2)}
        fl_ids = sorted(metas)
        # read after the close: no upload can be added any more, and only a publication deletes them
        data = await self._call(lambda: self._redis.mget([f"{self.prefix}it:{iteration}:upload:{f}" for f in fl_ids])
                                ) if fl_ids else []
        if any(d is None for d in data):
            return None  # published meanwhile by the closer whose lease this call took over
        uploads = {f: self._upload(sizes[f], metas[f], d) for f, d in zip(fl_ids, data)}
        if taken_over:
            log.warning("iteration %d: closed by another process that did not publish it within %d ms; finishing "
                        "it here", iteration, self.close_lease_ms)
        return ClosedIteration(iteration, len(sizes), len(uploads), sum(u.data_size for u in uploads.values()),
                               uploads, start if start >= 0 else None)

    async def publish(self, iteration: int, model: Model, finished: bool, state: State | None = None) -> None:
        reply = await self._run("publish", iteration, self._encode(model), int(finished), KEEP_MODELS,
                                _state_bytes(state))
        if reply[0] == b"not_closed":
            raise RuntimeError(f"publish({iteration}) while iteration {int(reply[1])} is current and not closed")
        if reply[0] == b"published":  # "already": another process's model (the same, from the same uploads) is served
            self._keep(iteration, {n: np.asarray(a, dtype=np.float32) for n, a in model.items()})
            self._states[iteration] = dict(state or {})

    async def model(self, iteration: int) -> Model | None:
        if iteration in self._models:
            return self._models[iteration]
        data = await self._call(lambda: self._redis.get(f"{self.prefix}model:{iteration}"))
        if data is None:
            return None
        return self._keep(iteration, self._decode(data))

    async def latest(self) -> tuple[int, Model]:
        found = await self._call(lambda: self._redis.hget(f"{self.prefix}job", "latest"))
        if found is None:
            await self._run("view")  # raises the "holds no job" error
        latest = int(found)
        model = await self.model(latest)
        if model is None:  # the newest model is always kept (KEEP_MODELS >= 1)
            raise RuntimeError(f"distributed cache {self.address}: model of iteration {latest} is missing")
        return latest, model

    async def state(self, iteration: int) -> State:
        if iteration not in self._states:
            data = await self._call(lambda: self._redis.get(f"{self.prefix}state:{iteration}"))
            self._states[iteration] = _state_of(data)
            while len(self._states) > 3:
                del self._states[min(self._states)]
        return self._states[iteration]

    async def cipher_add(self, iteration: int, phase: str, fl_id: str, value: bytes,
                         fanout: Mapping[str, bytes] | None = None) -> CipherAdd:
        pairs = [x for holder, data in (fanout or {}).items() for x in (holder, bytes(data))]
        reply = await self._run("cipher_add", iteration, phase, fl_id, bytes(value), *pairs)
        return _CIPHER_ADD_OUTCOME[reply[0].decode()]

    async def cipher_freeze(self, iteration: int, phase: str, now_ms: int) -> Frozen | None:
        reply = await self._run("cipher_freeze", iteration, phase, now_ms)
        return _frozen(reply[1]) if reply[0] == b"frozen" else None

    async def cipher_frozen(self, iteration: int, phase: str) -> Frozen | None:
        held = await self._call(lambda: self._redis.get(f"{self.prefix}it:{iteration}:frozen:{phase}"))
        return None if held is None else _frozen(held)

    async def cipher_values(self, iteration: int, phase: str) -> dict[str, bytes]:
        found = await self._call(lambda: self._redis.hgetall(f"{self.prefix}it:{iteration}:cipher:{phase}"))
        return {k.decode(): v for k, v in found.items()}

    async def cipher_count(self, iteration: int, phase: str) -> int:
        return int(await self._call(lambda: self._redis.hlen(f"{self.prefix}it:{iteration}:cipher:{phase}")))

    async def push_device_metrics(self, iteration: int, loss: float, accuracy: float) -> None:
        """RPUSH of 8 bytes (float32 loss, accuracy) onto ``pushed:<iteration>``; kept as long as the job's keys."""
        value = np.asarray([loss, accuracy], dtype="<f4").tobytes()
        await self._call(lambda: self._redis.rpush(f"{self.prefix}pushed:{iteration}", value))

    async def device_metrics(self, iteration: int) -> list[tuple[float, float]]:
        found = await self._call(lambda: self._redis.lrange(f"{self.prefix}pushed:{iteration}", 0, -1))
        return [(float(a[0]), float(a[1])) for a in (np.frombuffer(v, dtype="<f4") for v in found) if a.size == 2]

    async def announce_process(self, process: str, status: Mapping[str, Any]) -> None:
        """``processes`` hash: process name -> its status as JSON (the dashboard shows the group)."""
        text = json.dumps(dict(status), sort_keys=True)
        await self._call(lambda: self._redis.hset(f"{self.prefix}processes", process, text))

    async def processes(self) -> dict[str, dict[str, Any]]:
        found = await self._call(lambda: self._redis.hgetall(f"{self.prefix}processes"))
        return {k.decode(): json.loads(v) for k, v in found.items()}

    def _keep(self, iteration: int, model: Model) -> Model:
        self._models[iteration] = model
        while len(self._models) > 3:  # the newest and the few a slow device may still ask for
            del self._models[min(self._models)]
        return model

    async def add_traffic(self, iteration: int, counts: Mapping[str, int]) -> None:
        pairs = [x for key, value in counts.items() if value for x in (key, int(value))]
        if pairs:
            await self._call(lambda: self._scripts["add_traffic"](args=[self.prefix, iteration, *pairs]))

    async def take_traffic(self, iteration: int) -> dict[str, int]:
        flat = await self._call(lambda: self._scripts["take_traffic"](args=[self.prefix, iteration]))
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2) if flat[i] != b"taken"}

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()
