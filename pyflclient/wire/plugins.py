"""The round's plug-in table, ``schema/round_plugins.json``, as typed rows.

One table names every aggregation type, encrypt type and early-stop type with its
parameters (defaults, ranges, rules) and what it asks of the device; the Java client
has the same rows generated (``com.mindspore.flclient.runtime.schema.RoundPlugins``).
The server's configuration validates against these rows, the plan carries their wire
values, and each plug-in module looks up its own row by its own name: no other module
names a plug-in.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from pyflclient.wire.verify import schema_dir

__all__ = ["Parameter", "AggregationType", "EncryptType", "EarlyStopType", "PluginTable", "table"]


@dataclass(frozen=True)
class Parameter:
    """A plug-in parameter with its range and the rule a refusal quotes."""

    name: str
    kind: str                 # "float" | "int"
    min: float | None
    min_open: bool
    max: float | None
    max_open: bool
    allow_inf: bool
    rule: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (the row's rule), or None."""
        if isinstance(value, bool):
            return self.rule
        if self.kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                return self.rule
        else:
            if not isinstance(value, (int, float)):
                return self.rule
            value = float(value)
            if math.isnan(value) or (math.isinf(value) and not (self.allow_inf and value > 0)):
                return self.rule
        if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
            return self.rule
        if self.max is not None and (value > self.max or (self.max_open and value == self.max)):
            return self.rule
        return None


@dataclass(frozen=True)
class AggregationType:
    name: str
    wire: int
    wire_name: str
    device: str                          # "plain" | "fedprox" | "scaffold"
    params: Mapping[str, float]          # name -> default
    device_params: tuple[str, ...]       # travel in FLPlan.aggregation.weights, in this order
    needs_single_uploads: bool
    reports_loss: bool
    refused: str | None
    help: str


@dataclass(frozen=True)
class EncryptType:
    name: str
    params: tuple[str, ...]
    server_sees: str
    #: the server reads each upload in the clear (not masked, not noised): what needs_single_uploads needs
    sees_single_uploads: bool
    help: str


@dataclass(frozen=True)
class EarlyStopType:
    name: str
    wire: int
    reports_loss: bool
    help: str


@dataclass(frozen=True)
class PluginTable:
    aggregation: Mapping[str, AggregationType]
    encrypt: Mapping[str, EncryptType]
    early_stop: Mapping[str, EarlyStopType]
    parameters: Mapping[str, Parameter]

    def aggregation_by_wire(self, wire: int) -> AggregationType | None:
        return next((a for a in self.aggregation.values() if a.wire == wire), None)

    def early_stop_by_wire(self, wire: int) -> EarlyStopType | None:
        return next((e for e in self.early_stop.values() if e.wire == wire), None)


@functools.lru_cache(maxsize=1)
def table() -> PluginTable:
    """The rows of schema/round_plugins.json (read once)."""
    raw = json.loads((schema_dir() / "round_plugins.json").read_text(encoding="utf-8"))
    params = {p["name"]: Parameter(p["name"], p["kind"], p.get("min"), bool(p.get("min_open")), p.get("max"),
                                   bool(p.get("max_open")), bool(p.get("allow_inf")), p["rule"], p["help"])
              for p in raw["parameters"]}
    aggregation = {a["name"]: AggregationType(a["name"], a["wire"], a.get("wire_name", a["name"]), a["device"],
                                              dict(a["params"]), tuple(a["device_params"]),
                                              a["needs_single_uploads"], a["reports_loss"], a.get("refused"),
                                              a["help"])
                   for a in raw["aggregation_types"]}
    for a in aggregation.values():
        unknown = (set(a.params) | set(a.device_params)) - set(params)
        if unknown:
            raise ValueError(f"round_plugins.json: {a.name} names unknown parameters {sorted(unknown)}")
    encrypt = {e["name"]: EncryptType(e["name"], tuple(e["params"]), e["server_sees"], e["sees_single_uploads"],
                                       e["help"])
               for e in raw["encrypt_types"]}
    early = {e["name"]: EarlyStopType(e["name"], e["wire"], e["reports_loss"], e["help"])
             for e in raw["early_stop_types"]}
    return PluginTable(aggregation, encrypt, early, params)
