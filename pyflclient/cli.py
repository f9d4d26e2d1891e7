"""The ``pyflclient`` console script: one sub-command per step of the tutorial.

Each sub-command lives beside the code it drives and registers itself through a
``register(subparsers)`` function; this module only assembles them, so ``--help``
is the reference.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .cli_parser import SuggestingArgumentParser

# module path -> exposes register(subparsers) that adds one or more sub-commands
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "pyflclient.data.cli",
    "pyflclient.server.cli",
    "pyflclient.model.cli",
    "pyflclient.demo",
    "pyflclient.client.cli",
    "pyflclient.pki.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingArgumentParser(
        prog="pyflclient",
        description="Cross-device federated learning (MindSpore r1.6 compatible) driven from Python.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)  # INFO with -v, DEBUG with -vv
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
