"""One op table (schema/ops.json): the converter, the numpy reference, the Java runtime and the
format page list exactly its ops."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyflclient.model import converter, reference
from pyflclient.model.ops import op_names, op_table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "ms-format.md"


def test_the_converter_has_a_handler_for_exactly_the_tables_ops():
    assert set(converter.HANDLERS) - converter.MINDIR_ONLY_OPS == op_names()
    assert not converter.MINDIR_ONLY_OPS & op_names()


def test_the_numpy_reference_runs_exactly_the_tables_ops():
    assert set(reference.OPS) == op_names()


def test_the_java_registry_runs_exactly_the_tables_ops():
    from pyflclient.client import jvm

    registry = jvm.jclass("com.mindspore.flclient.runtime.ops.OpRegistry")
    assert {str(n) for n in registry.supportedOps()} == op_names()


def test_the_format_page_documents_exactly_the_tables_ops():
    text = DOCS.read_text()
    section = text[text.index("## Ops"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    documented: set[str] = set()
    for line in section.splitlines():
        m = re.match(r"\|\s*([A-Za-z0-9 /]+?)\s*\|", line)
        if m and m.group(1) not in ("op_type",):
            documented.update(part.strip() for part in m.group(1).split("/"))
    assert documented == op_names()


def test_every_gradient_names_a_forward_op_of_the_table():
    table = op_table()
    for spec in table.values():
        if spec.grad_of is not None:
            assert spec.phase == "backward" and table[spec.grad_of].phase in ("forward", "any"), spec
        for k in spec.in_place:
            assert 0 <= k < len(spec.inputs), spec


@pytest.mark.parametrize("op", sorted(op_names()))
def test_in_place_ops_agree_between_the_table_and_the_converter(op):
    assert converter.IN_PLACE_OPS.get(op, ()) == op_table()[op].in_place
