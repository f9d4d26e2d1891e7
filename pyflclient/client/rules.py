"""The client parameter rules, read from the one rulebook both languages use.

``schema/client_parameters.json`` (shipped as ``pyflclient/_fbs/client_parameters.json``)
lists every checked client parameter with its Python and Java names, its kind
(``int`` with bounds, ``enum`` with choices, ``url``, ``class_name``, ``nonempty``) and
the rule text a user reads when a value breaks it. ``schema/generate.py`` turns the same
file into the Java ``com.mindspore.flclient.rules.ParameterRules`` that ``FLParameter``'s
setters call, and ``tests/test_parameter_rules.py`` feeds the same values to both sides.
So a bound or a choice is changed in one place, and the two clients cannot drift apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..wire.verify import schema_table
from .errors import InvalidParameterError

__all__ = ["Rule", "rules", "check", "java_name", "python_name"]



@dataclass(frozen=True)
class Rule:
    """One row of the rulebook."""

    python: str
    java: str
    kind: str
    rule: str
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    host: str = ""   # url: the pattern of the host part
    port: str = ""   # url: the pattern of the port part


@lru_cache(maxsize=1)
def rules() -> dict[str, Rule]:
    """The rulebook by Python field name."""
    rows = schema_table("client_parameters.json", "parameters", "the client parameter rulebook")
    out = {}
    for row in rows:
        out[row["python"]] = Rule(python=row["python"], java=row["java"], kind=row["kind"], rule=row["rule"],
                                  min=row.get("min"), max=row.get("max"),
                                  choices=tuple(row.get("choices") or ()), schemes=tuple(row.get("schemes") or ()),
                                  host=row.get("host", ""), port=row.get("port", ""))
    return out


def java_name(python: str) -> str:
    return rules()[python].java


def python_name(java: str) -> str | None:
    """The Python field of a Java ``FLParameter`` field, or None when the rulebook does not list it."""
    return next((r.python for r in rules().values() if r.java == java), None)


def check(field: str, value: Any) -> Any:
    """``value`` normalised (URLs, class names) if it keeps ``field``'s rule; else InvalidParameterError."""
    r = rules()[field]
    if r.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterError(field, f"{value!r} is not an integer: {r.rule}")
        if (r.min is not None and value < r.min) or (r.max is not None and value > r.max) \
                or not -2**31 <= value < 2**31:  # the Java field is an int
            raise InvalidParameterError(field, f"{value!r}: {r.rule}")
        return value
    if r.kind == "enum":
        if value not in r.choices:
            raise InvalidParameterError(field, f"{value!r}: {r.rule}")
        return value
    if r.kind == "nonempty":
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameterError(field, f"{value!r}: {r.rule}")
        return value
    if r.kind == "class_name":
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
            raise InvalidParameterError(field, f"{value!r}: {r.rule}")
        return value.strip()
    if r.kind == "url":
        return _check_url(r, value)
    raise RuntimeError(f"rulebook: kind {r.kind!r} of {field} is unknown to this pyflclient")


def _check_url(r: Rule, value: Any) -> str:
    """The Java ``ParameterRules.checkUrl`` step by step: scheme, then ``host[:port]`` with the
    row's host and port patterns, one trailing slash tolerated, nothing else after the port."""
    url = _normalise_url(value.strip(), r) if isinstance(value, str) else None
    if url is None:
        raise InvalidParameterError(r.python, f"{value!r}: {r.rule}")
    return url


def _normalise_url(text: str, r: Rule) -> str | None:
    sep = text.find("://")
    if sep <= 0 or text[:sep].lower() not in r.schemes:
        return None
    authority = text[sep + 3:]
    if authority.endswith("/"):
        authority = authority[:-1]
    colon = authority.rfind(":")
    if colon < authority.rfind("]"):
        colon = -1
    host = authority if colon < 0 else authority[:colon]
    port = None if colon < 0 else authority[colon + 1:]
    if not re.fullmatch(r.host, host):
        return None
    if port is not None:
        if not re.fullmatch(r.port, port) or not 1 <= int(port) <= 65535:
            return None
        port = str(int(port))
    return text[:sep].lower() + "://" + host + ("" if port is None else ":" + port)
