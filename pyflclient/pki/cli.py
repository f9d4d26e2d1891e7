"""``pyflclient pki init|issue|revoke``: the files of device authentication (``pki_verify``, docs/security.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyflclient.pki import CRL, EQUIP_CA, ROOT_CA, PkiError, init_authority, issue_device, revoke_device


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("pki", help="device certificates for pki_verify: init, issue, revoke",
                              description="Make the root CA, device certificates and CRL that a server with "
                                          "pki_verify true checks (r1.6's device authentication).")
    sub = p.add_subparsers(dest="pki_command", metavar="ACTION")
    sub.required = True
    init = sub.add_parser("init", help="a root CA, an equipment CA and an empty CRL in --out")
    init.add_argument("--out", default="pki", help="folder of the authority (default: pki)")
    init.add_argument("--days", type=int, default=3650, help="validity of the CA certificates (default: 3650)")
    init.set_defaults(func=_init)
    issue = sub.add_parser("issue", help="a device key and certificates bound to its fl_id, in --out/<ID>/")
    issue.add_argument("--device", required=True, metavar="ID", help="the device's fl_id (the certificate's CN)")
    issue.add_argument("--out", default=None, help="where the device's folder goes (default: <authority>/devices)")
    issue.add_argument("--authority", default="pki", help="folder of `pki init` (default: pki)")
    issue.add_argument("--days", type=int, default=365, help="validity of the device certificate (default: 365)")
    issue.set_defaults(func=_issue)
    revoke = sub.add_parser("revoke", help="put a device's certificate in the CRL")
    revoke.add_argument("device", metavar="ID", help="the fl_id to revoke")
    revoke.add_argument("--authority", default="pki", help="folder of `pki init` (default: pki)")
    revoke.set_defaults(func=_revoke)


def _fail(exc: Exception) -> int:
    print(f"pyflclient pki: {exc}", file=sys.stderr)
    return 2


def _init(args: argparse.Namespace) -> int:
    try:
        init_authority(args.out, days=args.days)
    except PkiError as exc:
        return _fail(exc)
    out = Path(args.out)
    print(f"authority in {out}: give the server pki_verify: true, root_first_ca_path: {out / ROOT_CA}, "
          f"equip_crl_path: {out / CRL} (devices chain to {out / EQUIP_CA})")
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        folder = issue_device(args.authority, args.device, args.out or Path(args.authority) / "devices",
                              days=args.days)
    except PkiError as exc:
        return _fail(exc)
    print(f"device {args.device}: {folder} (give the Java client --pkiVerify true --pkiPath {folder})")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        crl = revoke_device(args.authority, args.device)
    except PkiError as exc:
        return _fail(exc)
    print(f"{args.device} revoked in {crl}: a server reading it refuses the device from its next request")
    return 0
