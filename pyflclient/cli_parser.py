"""The ArgumentParser of pyflclient's command lines: an unknown flag is an error naming the closest known one.

MindSpore r1.6's ``run_client_x86.py`` parsed with ``parse_known_args``: a misspelt flag
was dropped and its default silently used. Every pyflclient command line refuses it and
says which flag was probably meant.
"""
from __future__ import annotations

import argparse
import difflib
import typing
from typing import Sequence


class SuggestingArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose error for an unknown flag names the closest known one.

    r1.6's script ignored unknown flags; a misspelt flag then silently kept its default.
    Here it is an error, and the message says which flag was probably meant.
    """

    #: errors as one line (``prog: message; `prog --help` lists the flags``), without argparse's usage block
    one_line_errors: bool = False

    def error(self, message: str) -> "typing.NoReturn":  # type: ignore[override]
        if self.one_line_errors:
            hint = "" if "--help" in message else f"; `{self.prog} --help` lists the flags"
            self.exit(2, f"{self.prog}: {message}{hint}\n")
        super().error(message)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        unknown = [a for a in extra if a.startswith("--")]
        if unknown and self._subparsers is None:
            self.error(self._unknown_message(unknown))
        return parsed, extra

    def _unknown_message(self, unknown: list[str]) -> str:
        known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        parts = []
        for arg in unknown:
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            parts.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
        return f"unrecognized arguments: {', '.join(parts)}; `{self.prog} --help` lists every flag"
