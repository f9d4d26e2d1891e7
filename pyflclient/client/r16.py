"""The flags of MindSpore r1.6's ``run_client_x86.py`` that ``pyflclient simulate`` adds to its own.

r1.6's script takes every flag below and passes them on to each ``java -jar`` client
(positional arguments of ``SyncFLJob.main``). Here one process runs every client, so
each flag either sets the same :class:`~pyflclient.client.params.FLParameter` field as
in r1.6 (``--ssl_protocol``, ``--deploy_env``, ``--cpu_bind_mode``) or has nothing to
act on for image classification — those are accepted with r1.6's defaults, and a
value other than the default is logged once at debug level. ``"null"`` means absent,
as in r1.6. ``--cert_path`` is read only for an ``https://`` ``--domain_name`` (r1.6
reads it only then; the seed's command passes a certificate path with ``http://``).

Unlike r1.6 (``parse_known_args``), a flag nobody knows is an error that names the
closest known flag (:class:`pyflclient.cli_parser.SuggestingArgumentParser`).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NULL = "null"


def null(text: str) -> str | None:
    """r1.6's ``"null"`` (and an empty value) as absent."""
    return None if text in ("", NULL, "None") else text


@dataclass(frozen=True)
class R16Flag:
    """One r1.6 flag this module adds: its r1.6 default and what it does here."""

    name: str
    default: str | None
    help: str
    field: str | None = None  # the FLParameter field it sets, or None: nothing to act on here


#: The r1.6 flags ``pyflclient simulate`` did not have already (same names, r1.6 defaults).
FLAGS: tuple[R16Flag, ...] = (
    R16Flag("vocal_file", None, "r1.6: the vocabulary file of the Albert case (null for LeNet); "
                                "no Albert case ships here, so only null or a non-Albert flName"),
    R16Flag("ids_file", None, "r1.6: the token-ids file of the Albert case (null for LeNet); as --vocal_file"),
    R16Flag("path_regex", ",", "r1.6: the separator of data and label paths in the java command line; "
                               "the clients here get the paths as a list, so it has nothing to separate"),
    R16Flag("ssl_protocol", "TLSv1.2", "TLS version for an https --domain_name (TLSv1.2 or TLSv1.3)",
            field="ssl_protocol"),
    R16Flag("deploy_env", "x86", "r1.6 deployEnv (x86 or android); the x86 behaviour runs", field="deploy_env"),
    R16Flag("cpu_bind_mode", "NOT_BINDING_CORE", "r1.6 cpuBindMode (NOT_BINDING_CORE, BIND_LARGE_CORE, "
                                                 "BIND_MIDDLE_CORE); accepted and logged, a JVM thread is not pinned",
            field="cpu_bind_mode"),
    R16Flag("train_weight_name", None, "r1.6: the weights trained on the device in HYBRID_TRAINING "
                                       "(null for FEDERATED_LEARNING, the only mode here)"),
    R16Flag("infer_weight_name", None, "r1.6: the weights of the inference model in HYBRID_TRAINING (null here)"),
    R16Flag("name_regex", ",", "r1.6: the separator of --train_weight_name / --infer_weight_name lists"),
    R16Flag("input_shape", None, "r1.6 later versions: a dynamic input shape for inference; the model's "
                                 "shape is fixed here, so only null"),
)


def add_arguments(group: argparse._ArgumentGroup) -> None:  # type: ignore[name-defined]
    """Adds the flags of :data:`FLAGS` to the seed's group of ``simulate``."""
    for f in FLAGS:
        kind = str if f.field is not None else null
        group.add_argument(f"--{f.name}", type=kind, default=f.default, help=f.help)


def apply(args: argparse.Namespace) -> None:
    """Checks the r1.6 flags of a parsed ``simulate`` command line and logs those with nothing to act on.

    ``args.cert_path`` is dropped (None) for an ``http://`` ``--domain_name``, as r1.6 reads
    it only for https. Raises SystemExit with a one-line reason for a value that would
    need a behaviour this project does not have.
    """
    if "AlbertClient" in args.flName:
        raise SystemExit(f"--flName {args.flName}: r1.6's Albert case (and its --vocal_file/--ids_file) is not "
                         f"part of pyflclient; use com.mindspore.flclient.demo.lenet.LenetClient or your own case")
    if args.input_shape is not None:
        raise SystemExit(f"--input_shape {args.input_shape}: not supported, the .ms model's input shape is fixed "
                         f"(re-export the model for another shape); pass null")
    if args.server_mode != "FEDERATED_LEARNING" and (args.train_weight_name or args.infer_weight_name):
        raise SystemExit("--train_weight_name/--infer_weight_name: HYBRID_TRAINING is not implemented")
    for f in FLAGS:
        value = getattr(args, f.name)
        if f.field is None and value != f.default:
            log.debug("--%s %s: accepted for r1.6 compatibility; it has nothing to act on here (%s)",
                      f.name, value, f.help)
    if args.cert_path is not None and not args.domain_name.lower().startswith("https://"):
        log.debug("--cert_path %s: not read, --domain_name %s is plain http (r1.6 reads it only for https)",
                  args.cert_path, args.domain_name)
        args.cert_path = None


def parameter_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The FLParameter fields the r1.6 flags set (the same for every client)."""
    return {f.field: getattr(args, f.name) for f in FLAGS if f.field is not None}
