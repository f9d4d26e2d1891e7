"""The server's side of r1.6's device authentication (``pki_verify``): who may join and upload.

A startFLJob is accepted only when, in this order (each refusal names its check, RequestError, nothing
changed):

1. it carries ``sign_data``, ``key_attestation``, ``equip_cert`` and ``equip_ca_cert``;
2. its fl_id is the equip_cert's: the certificate's common name, or (r1.6) the SHA-256 hex of its PEM;
3. the chain holds: key_attestation issued by equip_cert, equip_cert by equip_ca_cert (both CAs), equip_ca_cert
   by ``root_first_ca_path`` or ``root_second_ca_path``, each within its validity period now;
4. equip_cert is not in ``equip_crl_path`` (a CRL signed by the equipment CA; re-read when the file changes);
5. ``sign_data`` is key_attestation's RSA-PSS signature of ``fl_id + " " + timestamp``;
6. ``timestamp`` is within ``replay_attack_time_diff`` of the server's clock;
7. this signature was not accepted before (a replay) within twice that window.

The key attestation of an accepted startFLJob is kept for its fl_id; an updateModel must then carry that key's
signature of ``timestamp + str(iteration)`` (checks 5-7, and 4 again: a device revoked meanwhile is refused).
In a Redis group (``distributed_cache_address``) the kept keys and the seen signatures are in Redis, so every
process of the group refuses a replay accepted by another. Chains already verified are cached per process
(by the SHA-256 of the three certificates), so a device's second startFLJob costs one RSA verification.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pyflclient.pki import cert_sha256, fl_id_of_cert, start_message, update_message
from pyflclient.server.config import ServerConfig, redis_url
from pyflclient.server.store import StoreUnavailable
from pyflclient.wire.protocol import StartFLJobRequest, UpdateModelRequest, now_ms

__all__ = ["DeviceAuth", "ReplayWindow", "MemoryWindow", "RedisWindow"]

log = logging.getLogger(__name__)

#: a verified chain is cached per process for this many distinct chains (least recently used dropped)
_CHAIN_CACHE = 10_000
#: a kept key attestation (for updateModel) lives this long after its device's last startFLJob
_KEY_TTL_MS = 24 * 3600 * 1000


class ReplayWindow(Protocol):
    """Where the group keeps seen signatures and each device's key attestation."""

    async def first_time(self, digest: str, ttl_ms: int) -> bool:
        """True the first time ``digest`` is offered within ``ttl_ms``; False for a replay."""

    async def keep_key(self, fl_id: str, pem: str, serial: int) -> None: ...

    async def key(self, fl_id: str) -> tuple[str, int] | None: ...

    async def aclose(self) -> None: ...


class MemoryWindow:
    """The window of one process (no Redis): dicts with expiry times."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._keys: dict[str, tuple[str, int, float]] = {}
        self._next_sweep = 0.0

    async def first_time(self, digest: str, ttl_ms: int) -> bool:
        now = time.monotonic()
        if now >= self._next_sweep:  # drop expired entries at most once a second: O(1) amortized
            self._seen = {d: t for d, t in self._seen.items() if t > now}
            self._next_sweep = now + 1.0
        if self._seen.get(digest, 0.0) > now:
            return False
        self._seen[digest] = now + ttl_ms / 1000
        return True

    async def keep_key(self, fl_id: str, pem: str, serial: int) -> None:
        self._keys[fl_id] = (pem, serial, time.monotonic() + _KEY_TTL_MS / 1000)

    async def key(self, fl_id: str) -> tuple[str, int] | None:
        found = self._keys.get(fl_id)
        if found is None or found[2] < time.monotonic():
            return None
        return found[0], found[1]

    async def aclose(self) -> None:
        pass


class RedisWindow:
    """The window of a Redis group: ``SET NX PX`` per signature, a key per device's attestation."""

    def __init__(self, address: str, fl_name: str):
        import redis.asyncio as aioredis
        import redis.exceptions

        self._redis = aioredis.Redis.from_url(redis_url(address), socket_timeout=5, socket_connect_timeout=5)
        self._prefix = f"pyflclient:{fl_name}:pki:"
        self._down = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

    async def _call(self, work):  # type: ignore[no-untyped-def]
        try:
            return await work()
        except self._down as exc:
            raise StoreUnavailable(f"the Redis of the replay window is unreachable ({exc})") from None

    async def first_time(self, digest: str, ttl_ms: int) -> bool:
        return bool(await self._call(lambda: self._redis.set(f"{self._prefix}seen:{digest}", b"1", nx=True,
                                                             px=ttl_ms)))

    async def keep_key(self, fl_id: str, pem: str, serial: int) -> None:
        await self._call(lambda: self._redis.set(f"{self._prefix}key:{fl_id}", f"{serial}\n{pem}".encode(),
                                                 px=_KEY_TTL_MS))

    async def key(self, fl_id: str) -> tuple[str, int] | None:
        raw = await self._call(lambda: self._redis.get(f"{self._prefix}key:{fl_id}"))
        if raw is None:
            return None
        serial, pem = raw.decode().split("\n", 1)
        return pem, int(serial)

    async def aclose(self) -> None:
        await self._redis.aclose()


class _Crl:
    """The revoked serials of ``equip_crl_path``, read again when the file's mtime or size changes."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self._stamp: tuple[float, int] | None = None
        self._crl: x509.CertificateRevocationList | None = None

    def current(self) -> x509.CertificateRevocationList | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise RuntimeError(f"equip_crl_path {self.path}: cannot read it ({exc.strerror})") from None
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            data = self.path.read_bytes()
            try:
                crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                       else x509.load_der_x509_crl(data))
            except ValueError as exc:
                if self._crl is None:
                    raise RuntimeError(f"equip_crl_path {self.path}: not a CRL ({exc})") from None
                log.warning("equip_crl_path %s: not a CRL (%s); keeping the one read before", self.path, exc)
                return self._crl
            self._crl, self._stamp = crl, stamp
            log.info("equip_crl_path %s: %d revoked certificate(s)", self.path, len(crl))
        return self._crl


def _cert(pem: str, field: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise _Refused(f"{field} is not a PEM certificate ({exc})") from None


class _Refused(Exception):
    """A request that fails one of the checks; the text is the RequestError reason."""


def _load_root(path: str | None, key: str) -> x509.Certificate | None:
    if not path:
        return None
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{key}={path}: not a readable PEM certificate ({exc})") from None


class DeviceAuth:
    """``pki_verify``: the checks of the module docstring, for one server process."""

    def __init__(self, config: ServerConfig, window: ReplayWindow | None = None):
        self.window_ms = config.replay_attack_time_diff
        self.roots = [r for r in (_load_root(config.root_first_ca_path, "root_first_ca_path"),
                                  _load_root(config.root_second_ca_path, "root_second_ca_path")) if r is not None]
        self.crl = _Crl(config.equip_crl_path)
        self.crl.current()  # a bad CRL fails at start, naming the key
        self.window: ReplayWindow = window or (
            RedisWindow(config.distributed_cache_address, config.fl_name)
            if config.distributed_cache_address else MemoryWindow())
        self._chains: OrderedDict[str, tuple[str, int, str]] = OrderedDict()  # digest → (CN, serial, equip sha)

    # -- the checks ---------------------------------------------------------------------------

    def _chain(self, req: StartFLJobRequest) -> tuple[str, int, str, x509.Certificate]:
        """(common name, serial, PEM sha256) of equip_cert once the chain is verified (cached), and the attestation."""
        digest = hashlib.sha256("\0".join((req.key_attestation, req.equip_cert, req.equip_ca_cert)).encode()).hexdigest()
        attestation = _cert(req.key_attestation, "key_attestation")
        cached = self._chains.get(digest)
        if cached is not None:
            self._chains.move_to_end(digest)
            self._valid_now(attestation, "key_attestation")
            return (*cached, attestation)
        equip = _cert(req.equip_cert, "equip_cert")
        equip_ca = _cert(req.equip_ca_cert, "equip_ca_cert")
        for cert, what in ((attestation, "key_attestation"), (equip, "equip_cert"), (equip_ca, "equip_ca_cert")):
            self._valid_now(cert, what)
        self._issued_by(attestation, equip, "key_attestation", "equip_cert")
        self._issued_by(equip, equip_ca, "equip_cert", "equip_ca_cert")
        for root in self.roots:
            try:
                self._issued_by(equip_ca, root, "equip_ca_cert", "root CA")
                break
            except _Refused:
                continue
        else:
            raise _Refused("certificate chain: equip_ca_cert is not issued by root_first_ca_path or "
                           "root_second_ca_path")
        found = (fl_id_of_cert(equip), equip.serial_number, cert_sha256(req.equip_cert))
        self._chains[digest] = found
        if len(self._chains) > _CHAIN_CACHE:
            self._chains.popitem(last=False)
        return (*found, attestation)

    @staticmethod
    def _valid_now(cert: x509.Certificate, what: str) -> None:
        now = _dt.datetime.now(_dt.timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise _Refused(f"certificate chain: {what} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} "
                           f"to {cert.not_valid_after_utc:%Y-%m-%d})")

    @staticmethod
    def _issued_by(child: x509.Certificate, parent: x509.Certificate, child_name: str, parent_name: str) -> None:
        try:
            constraints = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise _Refused(f"certificate chain: {parent_name} is not a CA certificate, it cannot issue {child_name}")
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise _Refused(f"certificate chain: {child_name} is not issued by {parent_name}") from None

    def _not_revoked(self, serial: int, fl_id: str) -> None:
        crl = self.crl.current()
        if crl is not None and crl.get_revoked_certificate_by_serial_number(serial) is not None:
            raise _Refused(f"the certificate of {fl_id!r} (serial {serial:x}) is revoked (equip_crl_path)")

    @staticmethod
    def _signed(attestation_pem_or_cert: x509.Certificate, signature: bytes, message: bytes, what: str) -> None:
        key = attestation_pem_or_cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise _Refused("key_attestation: r1.6 signs with RSA-PSS; its key is not RSA")
        try:
            key.verify(signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                       salt_length=padding.PSS.AUTO), hashes.SHA256())
        except InvalidSignature:
            raise _Refused(f"{what} does not match the request (not signed by key_attestation's key)") from None

    def _recent(self, timestamp: str) -> None:
        try:
            sent = int(timestamp)
        except ValueError:
            raise _Refused(f"timestamp {timestamp[:40]!r} is not ms since the epoch") from None
        skew = now_ms() - sent
        if abs(skew) > self.window_ms:
            raise _Refused(f"timestamp {sent} is {skew / 1000:+.0f} s from the server's clock, outside "
                           f"replay_attack_time_diff ({self.window_ms} ms)")

    async def _once(self, round_name: str, signature: bytes) -> None:
        digest = hashlib.sha256(round_name.encode() + b"\0" + signature).hexdigest()
        if not await self.window.first_time(digest, 2 * self.window_ms):
            raise _Refused(f"a replayed {round_name}: this signature was accepted before")

    # -- the rounds ---------------------------------------------------------------------------

    async def start_fl_job(self, req: StartFLJobRequest) -> str | None:
        """None when the request may go on to the round's rules, else the RequestError reason."""
        try:
            missing = [name for name in ("sign_data", "key_attestation", "equip_cert", "equip_ca_cert")
                       if not getattr(req, name)]
            if missing:
                raise _Refused(f"pki_verify is on and the request carries no {', '.join(missing)} (an unsigned "
                               f"device: give it a certificate, pyflclient pki issue, and pkiVerify true)")
            name, serial, equip_sha, attestation = self._chain(req)
            if req.fl_id not in (name, equip_sha):
                raise _Refused(f"fl_id {req.fl_id[:80]!r} is not the one in equip_cert (CN {name[:80]!r})")
            self._not_revoked(serial, req.fl_id)
            self._signed(attestation, req.sign_data, start_message(req.fl_id, req.timestamp), "sign_data")
            self._recent(req.timestamp)
            await self._once("startFLJob", req.sign_data)
        except _Refused as refused:
            return str(refused)
        await self.window.keep_key(req.fl_id, req.key_attestation, serial)
        return None

    async def update_model(self, req: UpdateModelRequest) -> str | None:
        try:
            if not req.signature:
                raise _Refused("pki_verify is on and the upload carries no signature")
            kept = await self.window.key(req.fl_id)
            if kept is None:
                raise _Refused(f"no signed startFLJob of {req.fl_id[:80]!r} was accepted: its signature cannot "
                               f"be checked")
            pem, serial = kept
            self._not_revoked(serial, req.fl_id)
            self._signed(_cert(pem, "key_attestation"), req.signature,
                         update_message(req.timestamp, req.iteration), "signature")
            self._recent(req.timestamp)
            await self._once("updateModel", req.signature)
        except _Refused as refused:
            return str(refused)
        return None

    async def aclose(self) -> None:
        await self.window.aclose()

