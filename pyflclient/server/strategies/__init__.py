"""The server's aggregation types, one module each (see :mod:`.base` for the seam).

Each module of this package that defines an :class:`~.base.Aggregator` subclass with its own
``NAME`` (its row's name in ``schema/round_plugins.json``) is an aggregation type; modules
whose name starts with ``_`` hold what several types share. :func:`aggregator` builds the one
the configuration names; adding a type is adding a module and a row, nothing here.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Mapping

from pyflclient.server.strategies.base import Aggregator, DeviceUpload, PlanExtras
from pyflclient.wire.plugins import table

__all__ = ["aggregator", "aggregator_types", "Aggregator", "DeviceUpload", "PlanExtras"]


@functools.lru_cache(maxsize=1)
def aggregator_types() -> dict[str, type[Aggregator]]:
    """NAME → class of every aggregation type of this package (imported once)."""
    found: dict[str, type[Aggregator]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Aggregator) and value.__module__ == module.__name__
                    and "NAME" in vars(value)):
                if value.NAME in found:
                    raise TypeError(f"two aggregation types named {value.NAME!r}: {found[value.NAME]} and {value}")
                if value.NAME not in table().aggregation:
                    raise TypeError(f"{value} names {value.NAME!r}, which is no row of schema/round_plugins.json")
                found[value.NAME] = value
    return {name: found[name] for name in table().aggregation if name in found}


def aggregator(name: str, shapes: Mapping[str, tuple[int, ...]],
               params: Mapping[str, float] | None = None) -> Aggregator:
    """The aggregation type ``name`` for a model of ``shapes`` with ``params`` (the row's defaults
    for those not given); a ValueError naming the allowed types for an unknown or refused one."""
    types = aggregator_types()
    if name not in types:
        row = table().aggregation.get(name)
        if row is not None and row.refused:
            raise ValueError(f"--aggregation-type {name} is not offered: {row.refused}")
        raise ValueError(f"--aggregation-type {name!r} is unknown; allowed: {', '.join(types)}")
    return types[name](shapes, params)
