"""The Simulation's backends behind one typed seam, and no import circle in the device side.

``pyflclient.client.backend.ClientBackend`` (a ``typing.Protocol``) is all a ``Simulation`` asks
of the place its clients run; the thread backend (``EngineClients``) and the Ray backend
(``RayClients``) both keep to it, and neither imports the simulation that uses them.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import pyflclient
from pyflclient.client.backend import ClientBackend
from pyflclient.client.ray_backend import RayClients
from pyflclient.client.threads_backend import EngineClients

PACKAGE = Path(pyflclient.__file__).resolve().parent


@pytest.mark.parametrize("backend", [EngineClients, RayClients])
def test_each_backend_has_every_method_of_the_seam_with_its_signature(backend):
    assert issubclass(backend, ClientBackend)
    for name, member in inspect.getmembers(ClientBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(member).parameters)
        assert list(inspect.signature(getattr(backend, name)).parameters) == wanted, name


def _imports(path: Path, module: str) -> set[str]:
    """The pyflclient modules ``path`` imports anywhere in its text (type-checking imports included)."""
    package = module.rpartition(".")[0] if path.name != "__init__.py" else module
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("pyflclient.")}


def _graph() -> dict[str, set[str]]:
    files = {}
    for f in PACKAGE.rglob("*.py"):
        if "_fbs" in f.parts:
            continue
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        files[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    graph = {}
    for module, f in files.items():
        targets = set()
        for name in _imports(f, module):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        graph[module] = targets
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_device_side_module_imports_itself_back_through_others():
    graph = _graph()
    circles = sorted(m for m in graph if m.startswith("pyflclient.client") and m in _reaches(graph, m))
    assert circles == []


def test_the_backends_do_not_import_the_simulation():
    graph = _graph()
    for backend in ("pyflclient.client.threads_backend", "pyflclient.client.ray_backend"):
        assert "pyflclient.client.simulation" not in _reaches(graph, backend)
