"""The arithmetic of PW_ENCRYPT (pairwise masking) that device and server must agree on, bit for bit.

The constants come from ``schema/secure_aggregation.json`` (the Java device has them generated
from the same file). The design is docs/secure-aggregation.md; in short, for device *i* of the
devices ``U2`` that shared their secrets:

* its upload ``x = data_size × weights`` (float, all weights in **sorted name** order, flattened)
  is quantised to the ring Z_2^64: ``q = round(x · 2^scale_bits) mod 2^64``, refused when
  ``|x| > max_abs_upload``; the server's sum of q over the devices decodes as a signed 64-bit
  integer / 2^scale_bits, exact while ``|Σ x| < 2^(63 − scale_bits)``;
* masked: ``y = q + PRG(b_i) + Σ_{j ∈ U2, j ≠ i} ±PRG(s_ij)  (mod 2^64)``, + when
  ``fl_id_i < fl_id_j``, − otherwise, so pairs cancel in the sum; ``s_ij`` is the X25519 agreement
  of i's and j's ``s`` keys, ``b_i`` a random 32-byte seed;
* ``PRG(seed)`` = AES-256-CTR (zero counter block) keystream read as little-endian uint64, keyed by
  HKDF-SHA256(seed, info = label ‖ iteration as 4 big-endian bytes), so a mask is new every iteration;
* on the wire each ring element is 8 little-endian bytes, i.e. two float32 slots of the
  ``FeatureMap`` (the bytes are not floats: the server reads them as uint64);
* ``b_i`` and i's ``s`` private key are Shamir-shared (threshold t) over the prime field
  GF(2^521 − 1), one share per device of U1 at x = its 1-based rank among U1's sorted fl_ids;
  a share travels AES-256-GCM encrypted under HKDF(X25519(c keys)), with SHA-256 commitments the
  server checks the returned shares against.

Crypto primitives are the ``cryptography`` package's (X25519, HKDF, AES-CTR, AES-GCM); Shamir and the
ring arithmetic are here, tested with property tests (tests/test_secagg_math.py).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pyflclient.wire.verify import schema_dir

__all__ = ["PARAMS", "PRIME", "SecAggError", "split", "combine", "lagrange_at_zero", "quantise", "dequantise", "prg", "agree",
           "KeyPair", "new_key_pair", "public_key_of", "share_key", "seal", "open_sealed", "commitment",
           "int_to_share", "share_to_int", "ring_to_wire", "wire_to_ring", "flatten", "unflatten", "sign_of"]


def _load() -> dict:
    import json

    return json.loads((schema_dir() / "secure_aggregation.json").read_text())


#: schema/secure_aggregation.json
PARAMS: dict = _load()
PRIME: int = int(PARAMS["prime_hex"], 16)
SHARE_BYTES: int = PARAMS["share_bytes"]
SECRET_BYTES: int = PARAMS["secret_bytes"]
KEY_BYTES: int = PARAMS["public_key_bytes"]
SCALE: float = float(2 ** PARAMS["scale_bits"])
MAX_ABS_UPLOAD: float = float(PARAMS["max_abs_upload"])
NONCE_BYTES: int = PARAMS["gcm_nonce_bytes"]
assert PARAMS["ring_bits"] == 64, "the ring arithmetic below is uint64"


class SecAggError(ValueError):
    """A value that cannot take part in pairwise masking (out of range, wrong length, forged)."""


# -- Shamir over GF(PRIME) ---------------------------------------------------------------

def split(secret: int, threshold: int, xs: Sequence[int]) -> dict[int, int]:
    """Shares ``x -> f(x)`` of a random polynomial f of degree threshold−1 with ``f(0) = secret``."""
    if not 0 <= secret < PRIME:
        raise SecAggError("the secret must be in [0, prime)")
    if not 1 <= threshold <= len(xs):
        raise SecAggError(f"threshold {threshold} must be in 1..{len(xs)} (the number of shares)")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise SecAggError("share points must be distinct and non-zero")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    out = {}
    for x in xs:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        out[x] = y
    return out


def lagrange_at_zero(xs: Iterable[int]) -> dict[int, int]:
    """The Lagrange coefficients λ_x at 0 of the points ``xs``: f(0) = Σ λ_x f(x). They depend on the points
    only, so the server computes them once for all the secrets returned by the same devices (O(t²) once,
    then O(t) a secret, instead of O(t²) a secret)."""
    xs = sorted(set(xs))
    out = {}
    for xi in xs:
        num, den = 1, 1
        for xj in xs:
            if xj != xi:
                num = num * xj % PRIME
                den = den * (xj - xi) % PRIME
        out[xi] = num * pow(den, -1, PRIME) % PRIME
    return out


def combine(points: Mapping[int, int], coefficients: Mapping[int, int] | None = None) -> int:
    """f(0) of the polynomial through ``points`` (Lagrange); the secret when they are ≥ t true shares.
    ``coefficients``: :func:`lagrange_at_zero` of exactly these points, if already known."""
    if not points:
        raise SecAggError("no share to combine")
    lam = coefficients if coefficients is not None else lagrange_at_zero(points)
    return sum(points[x] * lam[x] for x in points) % PRIME


def int_to_share(value: int) -> bytes:
    return value.to_bytes(SHARE_BYTES, "big")


def share_to_int(data: bytes) -> int:
    if len(data) != SHARE_BYTES:
        raise SecAggError(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise SecAggError("a share must be below the prime")
    return value


def commitment(share: bytes) -> bytes:
    """What the owner publishes of a share so the server can check the share returned later."""
    return hashlib.sha256(share).digest()


# -- the ring ----------------------------------------------------------------------------

def quantise(x: np.ndarray) -> np.ndarray:
    """float upload values → uint64 ring elements (round half to even, two's complement)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise SecAggError("an upload value is NaN or Inf")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > MAX_ABS_UPLOAD:
        raise SecAggError(f"an upload value of magnitude {peak:.4g} is beyond max_abs_upload {MAX_ABS_UPLOAD:.4g}")
    return np.rint(x * SCALE).astype(np.int64).view(np.uint64)


def dequantise(q: np.ndarray) -> np.ndarray:
    """A ring sum → float64 (signed 64-bit reading / 2^scale_bits)."""
    return np.asarray(q, dtype=np.uint64).view(np.int64).astype(np.float64) / SCALE


def ring_to_wire(q: np.ndarray) -> np.ndarray:
    """uint64 ring elements → the float32 slots of a FeatureMap (2 per element, the same bytes)."""
    return np.ascontiguousarray(q, dtype="<u8").view("<f4")


def wire_to_ring(slots: np.ndarray) -> np.ndarray:
    """The float32 slots of a FeatureMap → uint64 ring elements; SecAggError on an odd count."""
    raw = np.ascontiguousarray(slots, dtype="<f4")
    if raw.size % 2:
        raise SecAggError(f"{raw.size} float32 slots cannot hold uint64 ring elements (odd count)")
    return raw.view("<u8")


def flatten(weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """All weights in sorted name order, one float64 vector (the order masks are laid over)."""
    return np.concatenate([np.reshape(np.asarray(weights[n], dtype=np.float64), -1) for n in sorted(weights)])


def unflatten(vector: np.ndarray, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for name in sorted(shapes):
        size = int(np.prod(shapes[name]))
        out[name] = np.reshape(vector[at:at + size], shapes[name])
        at += size
    return out


def prg(seed: bytes, label: str, iteration: int, count: int) -> np.ndarray:
    """``count`` uint64 mask elements from ``seed`` for ``iteration`` (see the module docstring)."""
    key = HKDF(hashes.SHA256(), 32, None, label.encode() + iteration.to_bytes(4, "big")).derive(seed)
    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(stream.update(bytes(8 * count)), dtype="<u8")


def sign_of(me: str, other: str) -> int:
    """+1 when ``me`` adds the pair's mask, −1 when it subtracts it (fl_id order decides)."""
    return 1 if me < other else -1


# -- keys ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    private: bytes  # raw X25519 private key
    public: bytes   # raw X25519 public key


def new_key_pair() -> KeyPair:
    sk = X25519PrivateKey.generate()
    return KeyPair(sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption()),
                   sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def public_key_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def agree(private: bytes, public: bytes) -> bytes:
    """The X25519 shared secret; SecAggError for keys of the wrong length or a degenerate point."""
    if len(private) != KEY_BYTES or len(public) != KEY_BYTES:
        raise SecAggError(f"X25519 keys are {KEY_BYTES} bytes, got {len(private)} and {len(public)}")
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # the all-zero shared secret of a low-order point
        raise SecAggError(f"key agreement failed: {exc}") from None


def share_key(c_private: bytes, c_public_other: bytes) -> bytes:
    """The AES-256-GCM key two devices encrypt shares for each other with."""
    return HKDF(hashes.SHA256(), 32, None, PARAMS["share_key_info"].encode()).derive(agree(c_private, c_public_other))


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise SecAggError("a share does not decrypt (wrong key or tampered)") from None


def share_aad(owner: str, holder: str, iteration: int) -> bytes:
    """What a sealed share is bound to: who made it, for whom, in which iteration (no replay elsewhere)."""
    return f"{owner}\n{holder}\n{iteration}".encode()


def mask_sum(seeds: Iterable[tuple[int, bytes]], label: str, iteration: int, count: int) -> np.ndarray:
    """Σ sign · PRG(seed) (mod 2^64) over ``(sign, seed)`` pairs, generated one at a time."""
    total = np.zeros(count, dtype=np.uint64)
    for sign, seed in seeds:
        if sign > 0:
            total += prg(seed, label, iteration, count)
        else:
            total -= prg(seed, label, iteration, count)
    return total
