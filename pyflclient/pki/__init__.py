"""Device authentication as MindSpore r1.6 defines it: the files, the signed messages, and a device's signer.

The chain a device presents (r1.6's ``RequestFLJob`` fields)::

    root CA (root_ca.pem)  ──signs──▶  equipment CA (equip_ca.pem, the CRL's issuer)
        ──signs──▶  equip_cert (CN = the device's fl_id)  ──signs──▶  key_attestation (an RSA key's certificate)

and the device signs with the key of ``key_attestation`` (RSA-PSS, SHA-256, MGF1-SHA-256):

- startFLJob: ``sign_data`` = sign(``fl_id + " " + timestamp``)
- updateModel: ``signature`` = sign(``timestamp + str(iteration)``)

``timestamp`` is the device's clock in ms; the server accepts it within ``replay_attack_time_diff`` of its own and
each signature once. r1.6 binds the fl_id as the SHA-256 (hex) of the equip_cert PEM; the server accepts that
too, beside the certificate's common name. On Android the key attestation comes from the hardware keystore;
here ``pyflclient pki issue`` makes it, so a device's folder holds the same five items an Android device has.

:func:`init_authority` / :func:`issue_device` / :func:`revoke_device` are ``pyflclient pki init|issue|revoke``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

__all__ = ["PkiError", "DeviceSigner", "init_authority", "issue_device", "revoke_device", "start_message",
           "update_message", "pss", "DEVICE_FILES", "ROOT_CA", "EQUIP_CA", "CRL", "fl_id_of_cert"]

#: the authority's files (``pki init``): the root CA, the equipment CA that issues device certificates, its CRL
ROOT_CA, ROOT_KEY, EQUIP_CA, EQUIP_KEY, CRL, ISSUED = ("root_ca.pem", "root_ca.key", "equip_ca.pem", "equip_ca.key",
                                                      "crl.pem", "issued.json")
#: a device's folder (``pki issue``), read by the Java client (FLParameter.pkiPath) and DeviceSigner
DEVICE_FILES = {"key": "key.pem", "key_attestation": "key_attestation.pem", "equip_cert": "equip_cert.pem",
                "equip_ca_cert": "equip_ca_cert.pem", "root_cert": "root_cert.pem"}
_DAY = _dt.timedelta(days=1)


class PkiError(ValueError):
    """A PKI file or request that cannot be used; says which and why."""


def start_message(fl_id: str, timestamp: str) -> bytes:
    """What a startFLJob's ``sign_data`` signs (r1.6: ``flID + " " + timeStamp``)."""
    return f"{fl_id} {timestamp}".encode()


def update_message(timestamp: str, iteration: int) -> bytes:
    """What an updateModel's ``signature`` signs (r1.6: ``timestamp + std::to_string(iteration)``)."""
    return f"{timestamp}{iteration}".encode()


def pss() -> padding.PSS:
    """RSA-PSS with MGF1-SHA-256 and a 32-byte salt as signed (verified with any salt, as r1.6's -2)."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def fl_id_of_cert(cert: x509.Certificate) -> str:
    """The fl_id a certificate names: its subject's common name ('' if none)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: object) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _cert(subject: str, public_key: object, issuer: x509.Name | None, signer: object, days: int, *, ca: bool,
          path_length: int | None = None, serial: int | None = None) -> x509.Certificate:
    now = _dt.datetime.now(_dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(public_key)  # type: ignore[arg-type]
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + days * _DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True))
    key_usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                     encipher_only=False, decipher_only=False)
    builder = builder.add_extension(x509.KeyUsage(**key_usage), critical=True)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: not a readable PEM certificate ({exc})") from exc


def _load_key(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"{path}: not a readable unencrypted PEM private key ({exc})") from exc


def init_authority(out: str | os.PathLike[str], *, days: int = 3650) -> dict[str, Path]:
    """``pyflclient pki init``: a root CA, an equipment CA signed by it, an empty CRL; returns the paths.

    Refuses a folder that already holds a root CA (it would orphan every certificate issued)."""
    folder = Path(out)
    if (folder / ROOT_CA).exists():
        raise PkiError(f"{folder / ROOT_CA} exists: this folder already holds an authority (give another --out)")
    folder.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("pyflclient root CA", root_key.public_key(), None, root_key, days, ca=True)
    equip_key = ec.generate_private_key(ec.SECP256R1())
    equip = _cert("pyflclient equipment CA", equip_key.public_key(), root.subject, root_key, days, ca=True,
                  path_length=1)
    _write_key(folder / ROOT_KEY, root_key)
    _write_key(folder / EQUIP_KEY, equip_key)
    (folder / ROOT_CA).write_bytes(_pem(root))
    (folder / EQUIP_CA).write_bytes(_pem(equip))
    (folder / ISSUED).write_text("{}\n")
    _write_crl(folder, {})
    return {"root": folder / ROOT_CA, "equip_ca": folder / EQUIP_CA, "crl": folder / CRL}


def _issued(folder: Path) -> dict[str, dict[str, object]]:
    try:
        return json.loads((folder / ISSUED).read_text())
    except FileNotFoundError:
        raise PkiError(f"{folder}: no {ISSUED}; run `pyflclient pki init --out {folder}` first") from None


def _write_crl(folder: Path, issued: dict[str, dict[str, object]]) -> Path:
    """The equipment CA's CRL of every revoked device certificate, valid for a year (re-signed on each change)."""
    equip = _load_cert(folder / EQUIP_CA)
    key = _load_key(folder / EQUIP_KEY)
    now = _dt.datetime.now(_dt.timezone.utc)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(equip.subject).last_update(now)
               .next_update(now + 365 * _DAY))
    for entry in issued.values():
        if entry.get("revoked"):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(str(entry["serial"])))
                .revocation_date(_dt.datetime.fromtimestamp(float(str(entry["revoked"])), _dt.timezone.utc)).build())
    crl = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    path = folder / CRL
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)
    return path


def issue_device(authority: str | os.PathLike[str], fl_id: str, out: str | os.PathLike[str], *,
                 days: int = 365) -> Path:
    """``pyflclient pki issue``: ``out/<fl_id>/`` with the device's RSA key and its four certificates
    (:data:`DEVICE_FILES`); returns that folder. The fl_id is the equip_cert's common name."""
    folder = Path(authority)
    if not fl_id or any(c in fl_id for c in "/\\\0") or fl_id in (".", ".."):
        raise PkiError(f"--device {fl_id!r}: an fl_id must be non-empty, without / \\ or NUL")
    issued = _issued(folder)
    equip_ca = _load_cert(folder / EQUIP_CA)
    equip_ca_key = _load_key(folder / EQUIP_KEY)
    device_key = ec.generate_private_key(ec.SECP256R1())  # the device's identity key: it only signs the attestation
    equip = _cert(fl_id, device_key.public_key(), equip_ca.subject, equip_ca_key, days, ca=True, path_length=0)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attestation = _cert(f"{fl_id} key attestation", signing_key.public_key(), equip.subject, device_key, days,
                        ca=False)
    target = Path(out) / fl_id
    target.mkdir(parents=True, exist_ok=True)
    _write_key(target / DEVICE_FILES["key"], signing_key)
    (target / DEVICE_FILES["key_attestation"]).write_bytes(_pem(attestation))
    (target / DEVICE_FILES["equip_cert"]).write_bytes(_pem(equip))
    (target / DEVICE_FILES["equip_ca_cert"]).write_bytes(_pem(equip_ca))
    (target / DEVICE_FILES["root_cert"]).write_bytes((folder / ROOT_CA).read_bytes())
    issued[fl_id] = {"serial": str(equip.serial_number), "revoked": issued.get(fl_id, {}).get("revoked", None)}
    if issued[fl_id]["revoked"]:  # a new certificate for a revoked fl_id: the old serial stays revoked
        issued[f"{fl_id}#{equip.serial_number}"] = issued.pop(fl_id)
        issued[fl_id] = {"serial": str(equip.serial_number), "revoked": None}
    (folder / ISSUED).write_text(json.dumps(issued, indent=1, sort_keys=True) + "\n")
    return target


def revoke_device(authority: str | os.PathLike[str], fl_id: str) -> Path:
    """``pyflclient pki revoke``: the fl_id's certificate into the CRL (re-signed); returns the CRL's path. A server
    with ``equip_crl_path`` on that file refuses the device from its next request on."""
    folder = Path(authority)
    issued = _issued(folder)
    if fl_id not in issued:
        raise PkiError(f"{fl_id!r}: no certificate issued by {folder} for it (issued: {sorted(issued)[:10]})")
    issued[fl_id]["revoked"] = str(_dt.datetime.now(_dt.timezone.utc).timestamp())
    (folder / ISSUED).write_text(json.dumps(issued, indent=1, sort_keys=True) + "\n")
    return _write_crl(folder, issued)


@dataclass(frozen=True)
class DeviceSigner:
    """A device's key and certificates (a ``pki issue`` folder), signing as r1.6's client does."""

    key: rsa.RSAPrivateKey
    key_attestation: str
    equip_cert: str
    equip_ca_cert: str
    root_cert: str

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "DeviceSigner":
        path = Path(folder)
        key = _load_key(path / DEVICE_FILES["key"])
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PkiError(f"{path / DEVICE_FILES['key']}: r1.6 signs with RSA-PSS; this is not an RSA key")
        texts = {}
        for name in ("key_attestation", "equip_cert", "equip_ca_cert", "root_cert"):
            try:
                texts[name] = (path / DEVICE_FILES[name]).read_text()
            except OSError as exc:
                raise PkiError(f"{path / DEVICE_FILES[name]}: cannot read it ({exc.strerror or exc})") from exc
        return cls(key, **texts)

    @property
    def fl_id(self) -> str:
        return fl_id_of_cert(x509.load_pem_x509_certificate(self.equip_cert.encode()))

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, pss(), hashes.SHA256())

    def start_fields(self, fl_id: str, timestamp: str) -> dict[str, object]:
        """The RequestFLJob PKI fields (StartFLJobRequest keyword arguments)."""
        return dict(sign_data=self.sign(start_message(fl_id, timestamp)), key_attestation=self.key_attestation,
                    equip_cert=self.equip_cert, equip_ca_cert=self.equip_ca_cert, root_cert=self.root_cert)

    def update_signature(self, timestamp: str, iteration: int) -> bytes:
        return self.sign(update_message(timestamp, iteration))


def cert_sha256(pem: str) -> str:
    """r1.6's fl_id of a device: the SHA-256 (hex) of its equip_cert PEM text."""
    return hashlib.sha256(pem.encode()).hexdigest()
