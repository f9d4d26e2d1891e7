"""One rulebook for client parameters (schema/client_parameters.json): Python's FLParameter and the
Java FLParameter accept and refuse the same values, with the rule's own words."""
from __future__ import annotations

from typing import Any

import pytest

from pyflclient.client import rules
from pyflclient.client.errors import InvalidParameterError
from pyflclient.wire.protocol import ResponseCode

URLS = ["http://127.0.0.1:6666", "https://example.org", "HTTP://10.0.0.1:1", "http://127.0.0.1:6666/",
        "http://127.0.0.1:6666/fl", "http://127.0.0.1:6666?x=1", "ftp://127.0.0.1:21", "127.0.0.1:6666",
        "http://:6666", "http://127.0.0.1:0", "http://127.0.0.1:70000", "", "   ", "http://u@h:1", "http://h:",
        "http://h:06666", "http://[::1]:6666", "http://exa mple.org", "http://h_1.local:80"]


def samples(rule: rules.Rule) -> list[Any]:
    if rule.kind == "int":
        low = rule.min if rule.min is not None else 0
        values = [low - 1, low, low + 1]
        values += [rule.max - 1, rule.max, rule.max + 1] if rule.max is not None else [2**31 - 1, 2**31]
        return values
    if rule.kind == "enum":
        return [*rule.choices, "bogus", rule.choices[0].lower(), ""]
    if rule.kind == "url":
        return URLS
    if rule.kind == "class_name":
        return ["com.example.MyClient", "  com.example.MyClient ", "", "  ", "com.example.My Client"]
    if rule.kind == "nonempty":
        return ["f0_client", "", "   "]
    raise AssertionError(f"a sample set for kind {rule.kind}")


CASES = [(r.python, v) for r in rules.rules().values() for v in samples(r)]


def python_verdict(field: str, value: Any) -> str | None:
    try:
        rules.check(field, value)
        return None
    except InvalidParameterError as exc:
        return str(exc)


@pytest.mark.parametrize("field,value", CASES, ids=[f"{f}={v!r}" for f, v in CASES])
def test_python_and_java_agree_on_every_rule(field, value):
    from pyflclient.client import jvm

    JFLParameter = jvm.jclass("com.mindspore.flclient.FLParameter")
    rule = rules.rules()[field]
    java = JFLParameter.checkRule(rule.java, str(value))
    java = None if java is None else str(java)
    python = python_verdict(field, value)
    assert (python is None) == (java is None), f"Python: {python}; Java: {java}"
    if python is not None:
        assert rule.rule in python and rule.rule in java
    elif rule.kind in ("url", "class_name"):  # the same normalised value on both sides
        target = JFLParameter()
        getattr(target, "set" + rule.java[0].upper() + rule.java[1:])(value)
        assert str(getattr(target, "get" + rule.java[0].upper() + rule.java[1:])()) == rules.check(field, value)


def test_every_rulebook_field_is_a_python_parameter():
    from dataclasses import fields

    from pyflclient.client.params import FLParameter

    names = {f.name for f in fields(FLParameter)}
    assert set(rules.rules()) <= names


def test_a_java_refusal_names_the_python_field():
    from pyflclient.client.params import _java_field

    assert _java_field("FLParameter.timeOut = 0: must be at least 1 second") == "time_out_s"
    assert _java_field("FLParameter.serverMod = X: only FEDERATED_LEARNING") == "server_mode"


def test_one_response_code_in_both_languages():
    from pyflclient.client import jvm

    JResponseCode = jvm.jclass("mindspore.schema.ResponseCode")
    java = {str(f.getName()): int(f.getInt(None)) for f in JResponseCode.class_.getDeclaredFields()}
    assert java == {code.name: int(code) for code in ResponseCode}
