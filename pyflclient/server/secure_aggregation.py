"""The PW_ENCRYPT rounds of the server (r1.6's cipher rounds; Bonawitz et al., CCS 2017), over the state store.

An iteration with ``encrypt_type=PW_ENCRYPT`` goes through five phases; each one's
members are a subset of the previous one's, and each phase is *frozen* (its member
list fixed, in the store) once enough devices are in or its window is over:

=============  ===========================  ==========================================  ==================
phase          filled by                    frozen when                                 window from
=============  ===========================  ==========================================  ==================
``admitted``   startFLJob                   start_fl_job_threshold admitted, or the     (admission rules)
                                            start_fl_job_time_window is over
``keys``       exchangeKeys (U1)            every admitted device sent its keys         cipher_time_window
``shares``     shareSecrets (U2)            ceil(share_secrets_ratio × |U1|) shared     cipher_time_window
``uploads``    updateModel (U3)             ceil(update_model_ratio × |U2|) uploaded    update_model_time_window
``reconstruct`` reconstructSecrets (U4)     every member of U3 returned its shares      cipher_time_window
=============  ===========================  ==========================================  ==================

getKeys, getSecrets and getClientList are held (up to ``get_model_hold_ms``, as getModel is)
while the phase they read is open, answered the moment it is frozen, else ``SucNotReady``. A phase frozen with fewer than t (``reconstruct_secrets_threshold``) members makes
the iteration invalid at once (the previous model is kept). After the reconstruct phase the server rebuilds, from t shares
each, the self-mask seed of every device of U3 and the ``s`` private key of every device
of U2 that did not upload, removes those masks from the sum of U3's masked uploads and
publishes ``Σ x / Σ data_size`` (:func:`unmask`). The arithmetic is
:mod:`pyflclient.wire.secagg`; docs/secure-aggregation.md has the design.

Every request is checked before anything is stored: the iteration, a timestamp within
``cipher_time_window`` of the server's clock (a replayed old request fails), membership of
the previous phase, key and share lengths, the share commitments. A refusal changes no
state; a second request of a device in one phase is refused as a replay.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import math
from typing import Any, Mapping

import numpy as np

from pyflclient.server.round_modes_base import Endpoint, RoundHost, RoundMode
from pyflclient.server.store import CipherAdd, ClosedIteration, Frozen, StateStore
from pyflclient.server.strategies.base import DeviceUpload
from pyflclient.wire import secagg
from pyflclient.wire.protocol import PLAIN_TEXT_JOB_FINISHED, ResponseCode, cipher_message, now_ms

__all__ = ["PairwiseMasking", "PairwiseMode", "SEALED_SHARE_BYTES", "CONTROL_VARIATE_PREFIX", "SUM_OF_UPLOADS",
           "unmask"]

log = logging.getLogger(__name__)

#: commitment of the b share ‖ commitment of the s-key share ‖ AES-GCM nonce ‖ both shares ‖ GCM tag
SEALED_SHARE_BYTES = 2 * secagg.PARAMS["commitment_bytes"] + secagg.NONCE_BYTES + 2 * secagg.SHARE_BYTES + 16
_COMMIT = secagg.PARAMS["commitment_bytes"]
_PHASES = ("admitted", "keys", "shares", "uploads", "reconstruct")
#: Scaffold's control variate rides in the one masked vector as extra entries of these names (the contract
#: of docs/protocol.md): masked and unmasked together with the weights, summed like them
CONTROL_VARIATE_PREFIX = "control_variate/"
#: the key of the one "upload" the aggregator reads under PW_ENCRYPT: the unmasked sum of the uploads
SUM_OF_UPLOADS = "sum of the uploads"


class _Refused(Exception):
    def __init__(self, code: ResponseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class PairwiseMasking:
    """The cipher rounds of one server process (see the module docstring)."""

    def __init__(self, rounds: RoundHost):
        self.rounds = rounds
        self.config = rounds.config
        self.store: StateStore = rounds.store
        self.t = self.config.secret_threshold
        self._frozen_seen: set[tuple[int, str]] = set()  # phases this process knows are over
        self._changed: asyncio.Event | None = None  # set (and replaced) when one more phase is known over
        #: getKeys / getSecrets / getClientList requests held right now, waiting for their phase to end
        self.held = 0

    # -- helpers ---------------------------------------------------------------------------

    def _reply(self, table: str, code: int, reason: str, iteration: int, **values: Any) -> bytes:
        fields: dict[str, Any] = {"retcode": int(code), "iteration": iteration,
                                  "next_req_time": str(now_ms() + self.config.retry_interval)}
        if table in ("ResponseExchangeKeys", "ResponseShareSecrets", "ReturnClientList", "ReconstructSecret"):
            fields["reason"] = reason
        return cipher_message(table, **fields, **values)

    async def _checked(self, req: Mapping[str, Any], prior: str, writes: bool = False) -> tuple[int, Frozen | None]:
        """The current iteration after the checks every cipher request passes; the prior phase if frozen.

        ``writes``: the request stores something, so its timestamp must be recent (a replay of an old
        write is refused); the read-only rounds are re-sent unchanged while the server says SucNotReady."""
        view = await self.store.view()
        if req["iteration"] != view.iteration:
            raise _Refused(ResponseCode.OutOfTime, f"request for iteration {req['iteration']}, current is "
                                                   f"{view.iteration}")
        try:
            stamp = int(req["timestamp"])
        except ValueError:
            raise _Refused(ResponseCode.RequestError, f"timestamp {req['timestamp']!r} is not epoch ms") from None
        if writes and abs(now_ms() - stamp) > self.config.cipher_time_window:
            raise _Refused(ResponseCode.RequestError, f"timestamp {stamp} is more than cipher_time_window "
                                                      f"{self.config.cipher_time_window} ms from the server's clock "
                                                      f"(a replayed request?)")
        fl_id = req["fl_id"]
        if not fl_id:
            raise _Refused(ResponseCode.RequestError, "fl_id is empty")
        if await self.store.data_size(view.iteration, fl_id) is None:
            raise _Refused(ResponseCode.RequestError, f"{fl_id!r} was not admitted to iteration {view.iteration}")
        frozen = await self.store.cipher_frozen(view.iteration, prior)
        if frozen is not None and fl_id not in frozen.members:
            raise _Refused(ResponseCode.RequestError, f"{fl_id!r} is not among the {len(frozen.members)} devices of "
                                                      f"iteration {view.iteration}'s {prior} phase")
        return view.iteration, frozen

    async def _frozen_or_hold(self, iteration: int, phase: str) -> Frozen | None:
        """The frozen ``phase``; while it is open the request is held up to get_model_hold_ms (as getModel
        is), so a device learns of the phase's end at once rather than at its next sleepTime poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.get_model_hold_ms / 1000
        while True:
            frozen = await self.store.cipher_frozen(iteration, phase)
            remaining = deadline - loop.time()
            if frozen is not None or remaining <= 0:
                return frozen
            if self._changed is None:
                self._changed = asyncio.Event()
            self.held += 1
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                self.held -= 1

    def _seen(self, iteration: int, phase: str) -> None:
        """Wake the held requests the first time this process learns that ``phase`` is over."""
        if (iteration, phase) in self._frozen_seen:
            return
        self._frozen_seen = {key for key in self._frozen_seen if key[0] >= iteration}
        self._frozen_seen.add((iteration, phase))
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    async def _add(self, iteration: int, phase: str, fl_id: str, value: bytes,
                   fanout: Mapping[str, bytes] | None = None) -> None:
        outcome = await self.store.cipher_add(iteration, phase, fl_id, value, fanout)
        if outcome is CipherAdd.DUPLICATE:
            raise _Refused(ResponseCode.RequestError, f"{fl_id!r} already sent its {phase} in iteration {iteration} "
                                                      f"(a replay?)")
        if outcome is not CipherAdd.ADDED:
            raise _Refused(ResponseCode.OutOfTime, f"the {phase} phase of iteration {iteration} is over "
                                                   f"({outcome.value})")
        await self.advance(iteration)

    async def _answer(self, round_name: str, table: str, req: Mapping[str, Any], work: Any) -> bytes | str:
        if (await self.store.view()).finished:
            return PLAIN_TEXT_JOB_FINISHED
        try:
            return await work()
        except _Refused as refused:
            self.rounds.refusals.report(f"{round_name} refused ({refused.code.name})", repr(req.get("fl_id")),
                                        refused.reason)
            return self._reply(table, refused.code, refused.reason, (await self.store.view()).iteration)

    # -- the six rounds ---------------------------------------------------------------------

    async def exchange_keys(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, _ = await self._checked(req, "admitted", writes=True)
            for key in ("c_pk", "s_pk"):
                if len(req[key]) != secagg.KEY_BYTES:
                    raise _Refused(ResponseCode.RequestError, f"{key} is {len(req[key])} bytes; an X25519 public "
                                                              f"key is {secagg.KEY_BYTES}")
                try:
                    secagg.agree(_PROBE.private, req[key])
                except secagg.SecAggError:
                    raise _Refused(ResponseCode.RequestError, f"{key} is not a usable X25519 public key "
                                                              f"(low-order point)") from None
            await self._add(iteration, "keys", req["fl_id"], req["c_pk"] + req["s_pk"])
            return self._reply("ResponseExchangeKeys", ResponseCode.SUCCEED, "keys kept", iteration)
        return await self._answer("exchangeKeys", "ResponseExchangeKeys", req, work)

    async def get_keys(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, _ = await self._checked(req, "admitted")
            keys = await self._frozen_or_hold(iteration, "keys")
            if keys is None:
                return self._reply("ReturnExchangeKeys", ResponseCode.SucNotReady, "", iteration)
            if req["fl_id"] not in keys.members:
                raise _Refused(ResponseCode.RequestError, f"{req['fl_id']!r} sent no keys in iteration {iteration}")
            values = await self.store.cipher_values(iteration, "keys")
            return self._reply("ReturnExchangeKeys", ResponseCode.SUCCEED, "", iteration, remote_publickeys=[
                {"fl_id": f, "c_pk": values[f][:secagg.KEY_BYTES], "s_pk": values[f][secagg.KEY_BYTES:]}
                for f in keys.members])
        return await self._answer("getKeys", "ReturnExchangeKeys", req, work)

    async def share_secrets(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, keys = await self._checked(req, "keys", writes=True)
            if keys is None:
                raise _Refused(ResponseCode.RequestError, "shareSecrets before the exchangeKeys phase ended (getKeys "
                                                          "first)")
            shares = req["encrypted_shares"]
            holders = [s["fl_id"] for s in shares]
            if sorted(holders) != list(keys.members):
                raise _Refused(ResponseCode.RequestError, f"encrypted_shares must hold one share for each of the "
                                                          f"{len(keys.members)} devices that exchanged keys (itself "
                                                          f"included); got {len(shares)}")
            rank = {f: i + 1 for i, f in enumerate(keys.members)}
            for s in shares:
                if s["index"] != rank[s["fl_id"]]:
                    raise _Refused(ResponseCode.RequestError, f"the share for {s['fl_id']!r} has index {s['index']}; "
                                                              f"its point is {rank[s['fl_id']]}")
                if len(s["share"]) != SEALED_SHARE_BYTES:
                    raise _Refused(ResponseCode.RequestError, f"the share for {s['fl_id']!r} is {len(s['share'])} "
                                                              f"bytes, a sealed share pair is {SEALED_SHARE_BYTES}")
            await self._add(iteration, "shares", req["fl_id"], b"", {s["fl_id"]: s["share"] for s in shares})
            return self._reply("ResponseShareSecrets", ResponseCode.SUCCEED, "shares kept", iteration)
        return await self._answer("shareSecrets", "ResponseShareSecrets", req, work)

    async def get_secrets(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, keys = await self._checked(req, "keys")
            shares = await self._frozen_or_hold(iteration, "shares")
            if shares is None:
                return self._reply("ReturnShareSecrets", ResponseCode.SucNotReady, "", iteration)
            fl_id = req["fl_id"]
            if fl_id not in shares.members:
                raise _Refused(ResponseCode.RequestError, f"{fl_id!r} shared no secrets in iteration {iteration}")
            held = await self.store.cipher_values(iteration, f"shares>{fl_id}")
            point = list(keys.members).index(fl_id) + 1 if keys else 0
            return self._reply("ReturnShareSecrets", ResponseCode.SUCCEED, "", iteration, encrypted_shares=[
                {"fl_id": owner, "share": held[owner][2 * _COMMIT:], "index": point} for owner in shares.members])
        return await self._answer("getSecrets", "ReturnShareSecrets", req, work)

    async def get_client_list(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, _ = await self._checked(req, "shares")
            uploads = await self._frozen_or_hold(iteration, "uploads")
            if uploads is None:
                return self._reply("ReturnClientList", ResponseCode.SucNotReady, "uploads still arriving", iteration)
            if req["fl_id"] not in uploads.members:
                raise _Refused(ResponseCode.RequestError, f"{req['fl_id']!r} has no upload in iteration {iteration}")
            return self._reply("ReturnClientList", ResponseCode.SUCCEED, "", iteration, clients=list(uploads.members))
        return await self._answer("getClientList", "ReturnClientList", req, work)

    async def reconstruct_secrets(self, req: Mapping[str, Any]) -> bytes | str:
        async def work() -> bytes:
            iteration, _ = await self._checked(req, "uploads", writes=True)
            uploads = await self.store.cipher_frozen(iteration, "uploads")
            if uploads is None:
                raise _Refused(ResponseCode.RequestError, "reconstructSecrets before the upload phase ended "
                                                          "(getClientList first)")
            shares = await self.store.cipher_frozen(iteration, "shares")
            keys = await self.store.cipher_frozen(iteration, "keys")
            assert shares is not None and keys is not None  # frozen before uploads
            fl_id = req["fl_id"]
            sent = req["reconstruct_secret_shares"]
            if sorted(s["fl_id"] for s in sent) != list(shares.members):
                raise _Refused(ResponseCode.RequestError, f"reconstruct_secret_shares must hold one share of each of "
                                                          f"the {len(shares.members)} devices that shared secrets; "
                                                          f"got {len(sent)}")
            point = list(keys.members).index(fl_id) + 1
            commitments = await self.store.cipher_values(iteration, f"shares>{fl_id}")
            fanout = {}
            for s in sent:
                owner, share = s["fl_id"], s["share"]
                if s["index"] != point:
                    raise _Refused(ResponseCode.RequestError, f"the share of {owner!r} has index {s['index']}; "
                                                              f"{fl_id!r} holds point {point}")
                if len(share) != secagg.SHARE_BYTES:
                    raise _Refused(ResponseCode.RequestError, f"the share of {owner!r} is {len(share)} bytes, a "
                                                              f"share is {secagg.SHARE_BYTES}")
                which = 0 if owner in uploads.members else 1  # b share of an uploader, s-key share of a dropout
                expected = commitments.get(owner, b"")[which * _COMMIT:(which + 1) * _COMMIT]
                if secagg.commitment(share) != expected:
                    raise _Refused(ResponseCode.RequestError, f"the {'self-mask' if which == 0 else 's-key'} share "
                                                              f"of {owner!r} does not match the commitment its owner "
                                                              f"made (forged?)")
                fanout[owner] = share
            await self._add(iteration, "reconstruct", fl_id, b"", fanout)
            return self._reply("ReconstructSecret", ResponseCode.SUCCEED, "shares kept", iteration)
        return await self._answer("reconstructSecrets", "ReconstructSecret", req, work)

    # -- uploads ------------------------------------------------------------------------------

    async def may_upload(self, iteration: int, fl_id: str) -> str | None:
        """Why ``fl_id`` cannot upload masked weights now (it must be in the frozen shares phase), or None."""
        shares = await self.store.cipher_frozen(iteration, "shares")
        if shares is None or fl_id not in shares.members:
            return f"{fl_id!r} is not among the devices that shared secrets in iteration {iteration}"
        if await self.store.cipher_frozen(iteration, "uploads") is not None:
            return f"the upload phase of iteration {iteration} is over"
        return None

    async def uploaded(self, iteration: int, fl_id: str) -> str | None:
        """File the stored upload in the upload phase; why it does not count (the phase froze in between,
        in this or another process: the upload is left out of the sum, the device is a dropout), or None."""
        outcome = await self.store.cipher_add(iteration, "uploads", fl_id, b"")
        await self.advance(iteration)
        if outcome is CipherAdd.ADDED:
            return None
        return f"the upload phase of iteration {iteration} ended before this upload was counted ({outcome.value})"

    # -- phases -------------------------------------------------------------------------------

    async def advance(self, iteration: int) -> None:
        """Freeze what is due (counts reached or windows over), arm the timer of the next deadline, and
        finish the iteration when the reconstruct phase froze or a phase froze below t. Idempotent."""
        store, cfg, now = self.store, self.config, now_ms()
        view = await store.view()
        if view.iteration != iteration or view.closed:
            return
        previous = await store.cipher_frozen(iteration, "admitted")
        if previous is None:
            if view.admitted >= cfg.start_fl_job_threshold:
                previous = await store.cipher_freeze(iteration, "admitted", now)
            if previous is None:
                return
        for phase in _PHASES[1:]:
            frozen = await store.cipher_frozen(iteration, phase)
            if frozen is None:
                window = cfg.update_model_time_window if phase == "uploads" else cfg.cipher_time_window
                ratio = {"shares": cfg.share_secrets_ratio, "uploads": cfg.update_model_ratio}.get(phase, 1.0)
                need = max(1, math.ceil(len(previous.members) * ratio - 1e-9))
                if await store.cipher_count(iteration, phase) >= need or now >= previous.at_ms + window:
                    frozen = await store.cipher_freeze(iteration, phase, now)
                if frozen is None:
                    self.rounds.arm_phase(iteration, phase, window, previous.at_ms, self.advance)
                    return
                log.info("iteration %d: %s phase over with %d devices", iteration, phase, len(frozen.members))
            self._seen(iteration, phase)  # frozen here or by another process: wake the held get requests
            if len(frozen.members) < self.t:
                log.warning("iteration %d: only %d devices in the %s phase, fewer than reconstruct_secrets_threshold "
                            "%d: the iteration is invalid", iteration, len(frozen.members), phase, self.t)
                self.rounds.finish_soon(iteration)
                return
            previous = frozen
        self.rounds.finish_soon(iteration)

    async def aggregate(self, closed: ClosedIteration) -> DeviceUpload | None:
        """The unmasked sum of a closed iteration's uploads as one upload (the weights' sum × data_size as
        float64, the control variates' sum, the total data_size), or None when the iteration is invalid
        (see :func:`unmask`)."""
        k, store = closed.iteration, self.store
        frozen = {p: await store.cipher_frozen(k, p) for p in _PHASES[1:]}
        if any(f is None or len(f.members) < self.t for f in frozen.values()):
            return None
        shares, uploads = frozen["shares"], frozen["uploads"]
        assert shares is not None and uploads is not None and frozen["keys"] is not None
        points = {f: i + 1 for i, f in enumerate(frozen["keys"].members)}
        returned = {owner: {points[h]: secagg.share_to_int(v) for h, v in
                            (await store.cipher_values(k, f"reconstruct>{owner}")).items()}
                    for owner in shares.members}
        keys = await store.cipher_values(k, "keys")
        masked = {f: closed.uploads[f] for f in uploads.members if f in closed.uploads}
        shapes = dict(self.rounds.shapes)
        if any(u.control_variate for u in masked.values()):
            shapes.update({CONTROL_VARIATE_PREFIX + n: s for n, s in self.rounds.shapes.items()})
        work = functools.partial(unmask, {f: masked_entries(u) for f, u in masked.items()}, returned,
                                 {f: keys[f][secagg.KEY_BYTES:] for f in shares.members}, k, self.t, shapes)
        try:  # off the event loop: |U3| + dropouts × |U3| mask streams of the model's size
            total = await asyncio.get_running_loop().run_in_executor(None, work)
        except secagg.SecAggError as exc:
            log.error("iteration %d cannot be unmasked: %s; the iteration is invalid", k, exc)
            return None
        weights = {n: total[n] for n in self.rounds.shapes}
        variates = {n: total[CONTROL_VARIATE_PREFIX + n] for n in self.rounds.shapes if CONTROL_VARIATE_PREFIX + n in total}
        return DeviceUpload(sum(masked[f].data_size for f in masked), weights, control_variate=variates)


def masked_entries(upload: DeviceUpload) -> dict[str, Any]:
    """The entries of one masked vector: the weights and, under :data:`CONTROL_VARIATE_PREFIX`, the control
    variate (ring elements, two float32 slots each)."""
    return {**upload.weights, **{CONTROL_VARIATE_PREFIX + n: v for n, v in upload.control_variate.items()}}


class PairwiseMode(RoundMode):
    """PW_ENCRYPT: pairwise masking (the module docstring); the aggregator reads the unmasked sum of the
    uploads as one upload, :data:`SUM_OF_UPLOADS`."""

    NAME = "PW_ENCRYPT"
    MASKED = True
    DECIDES_END = True

    def __init__(self, host: RoundHost):
        super().__init__(host)
        self.masking = PairwiseMasking(host)

    def plan_fields(self) -> dict[str, Any]:
        return {"t": self.config.secret_threshold, "prime": secagg.PRIME.to_bytes(secagg.SHARE_BYTES, "big")}

    def endpoints(self) -> Mapping[str, Endpoint]:
        m = self.masking
        return {"exchangeKeys": m.exchange_keys, "getKeys": m.get_keys, "shareSecrets": m.share_secrets,
                "getSecrets": m.get_secrets, "getClientList": m.get_client_list,
                "reconstructSecrets": m.reconstruct_secrets}

    async def admission_full(self, iteration: int) -> None:
        await self.masking.advance(iteration)  # admission is over: the keys phase begins

    async def admission_over(self, iteration: int, now_ms: int) -> None:
        if await self.store.cipher_freeze(iteration, "admitted", now_ms) is not None:
            await self.masking.advance(iteration)  # the keys phase begins with whoever was admitted

    async def follow(self, iteration: int) -> None:
        await self.masking.advance(iteration)

    async def may_upload(self, iteration: int, fl_id: str) -> str | None:
        return await self.masking.may_upload(iteration, fl_id)

    async def uploaded(self, iteration: int, fl_id: str) -> str | None:
        return await self.masking.uploaded(iteration, fl_id)

    async def combine(self, closed: ClosedIteration) -> Mapping[str, DeviceUpload] | None:
        total = await self.masking.aggregate(closed)
        return None if total is None else {SUM_OF_UPLOADS: total}


def unmask(masked: Mapping[str, Mapping[str, Any]], shares: Mapping[str, Mapping[int, int]],
           s_pks: Mapping[str, bytes], iteration: int, t: int, shapes: Mapping[str, tuple[int, ...]]
           ) -> dict[str, np.ndarray]:
    """The sum of the masked uploads of U3 (``masked``: fl_id → entry name → ring slots, entries in sorted name
    order as the devices masked them) from the shares returned for each device of U2 (``shares``: owner →
    point → share) and U2's ``s`` public keys: entry name → float64 sum, of ``shapes``.

    Σ_{U3} y − Σ_{U3} PRG(b_i) − Σ_{d ∈ U2∖U3} Σ_{i ∈ U3} sign(i, d)·PRG(s_id), decoded from the ring."""
    count = sum(int(np.prod(s)) for s in shapes.values())
    total = np.zeros(count, dtype=np.uint64)
    for fl_id in sorted(masked):
        entries = masked[fl_id]
        total += np.concatenate([secagg.wire_to_ring(np.reshape(entries[n], -1)) for n in sorted(shapes)])
    pw, own = secagg.PARAMS["pairwise_mask_info"], secagg.PARAMS["self_mask_info"]
    coefficients: dict[frozenset[int], dict[int, int]] = {}  # the same returners share one set of λ
    for owner in sorted(s_pks):
        held = shares.get(owner, {})
        if len(held) < t:
            raise secagg.SecAggError(f"{len(held)} shares of {owner!r} returned, t is {t}")
        points = frozenset(held)
        if points not in coefficients:
            coefficients[points] = secagg.lagrange_at_zero(points)
        secret = secagg.combine(held, coefficients[points])
        if secret >= 2 ** (8 * secagg.SECRET_BYTES):
            raise secagg.SecAggError(f"the shares of {owner!r} do not combine to a secret")
        seed = secret.to_bytes(secagg.SECRET_BYTES, "big")
        if owner in masked:
            total -= secagg.prg(seed, own, iteration, count)
            continue
        if secagg.public_key_of(seed) != s_pks[owner]:
            raise secagg.SecAggError(f"the rebuilt s key of {owner!r} does not match its public key")
        for fl_id in masked:  # the masks the uploaders drew with the dropped device, one at a time
            pair = secagg.prg(secagg.agree(seed, s_pks[fl_id]), pw, iteration, count)
            if secagg.sign_of(fl_id, owner) > 0:
                total -= pair
            else:
                total += pair
    return dict(secagg.unflatten(secagg.dequantise(total), shapes))


#: a fixed key pair to test an offered public key against (a low-order point gives an all-zero agreement)
_PROBE = secagg.new_key_pair()
