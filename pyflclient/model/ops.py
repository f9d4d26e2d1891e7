"""The op table of the ``.ms`` format, read from the one source both languages use.

``schema/ops.json`` (shipped as ``pyflclient/_fbs/ops.json``) lists every op a ``.ms``
model may hold: its MindSpore primitive name, the phase it belongs to, the forward op
it is the gradient of, its inputs and the inputs it updates in place. The Java
runtime's ``OpRegistry`` is checked against the generated ``OpTable`` when it loads;
the converter's handlers, the numpy reference and docs/ms-format.md are checked
against this table by ``tests/test_op_table.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pyflclient.wire.verify import schema_table

__all__ = ["OpSpec", "op_table", "op_names", "in_place_inputs"]


@dataclass(frozen=True)
class OpSpec:
    name: str
    phase: str                    # forward | backward | optimizer | any
    grad_of: str | None           # the forward op this one is a gradient of
    inputs: tuple[str, ...]
    in_place: tuple[int, ...]     # input indices the op updates in place


@lru_cache(maxsize=1)
def op_table() -> dict[str, OpSpec]:
    """Every op of the format by name, in the table's order."""
    rows = schema_table("ops.json", "ops", "the op table")
    return {r["name"]: OpSpec(r["name"], r["phase"], r.get("grad_of"), tuple(r.get("inputs") or ()),
                              tuple(r.get("in_place") or ())) for r in rows}


def op_names() -> frozenset[str]:
    return frozenset(op_table())


def in_place_inputs() -> dict[str, tuple[int, ...]]:
    """Op name -> the input indices it updates in place (only ops that update any)."""
    return {name: spec.in_place for name, spec in op_table().items() if spec.in_place}
