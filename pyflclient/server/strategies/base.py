"""The aggregation seam: what every aggregation type of the server implements.

An :class:`Aggregator` turns the uploads of one finished iteration into the next
global model. It is built once per server process from the configuration (its
parameters already checked against ``schema/round_plugins.json``), and it owns no
hidden state: whatever it carries from one iteration to the next (server momentum,
Adam moments, Scaffold's control variate) is returned by :meth:`Aggregator.state`
and handed back through :meth:`Aggregator.load` before every aggregation, so that
the store (memory or Redis) and every checkpoint hold it beside the model it
belongs to, and a restarted or another process of a group carries on
bit-identically.

Uploads follow r1.6: ``DeviceUpload.weights`` are the device's trained weights
× its ``data_size``; ``loss`` is the device's mean training loss at the received
model (``reports_loss`` types only) and ``control_variate`` Scaffold's Δc_i.
Aggregation iterates uploads in fl_id order and sums in float64, so that the same
uploads give the same model whatever their order of arrival.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar, Mapping

import numpy as np

from pyflclient.wire.plugins import AggregationType, table

__all__ = ["Model", "State", "DeviceUpload", "Aggregator", "PlanExtras"]

Model = Mapping[str, np.ndarray]
#: an aggregator's state between iterations: named float arrays (and 0-d arrays for scalars)
State = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class DeviceUpload:
    """One device's upload in one iteration: ``weights`` = data_size × its trained weights, as sent."""

    data_size: int
    weights: Mapping[str, np.ndarray]
    #: the device's mean training loss at the received model (sent when the plan asks for it)
    loss: float | None = None
    #: Scaffold's Δc_i (empty for every other type)
    control_variate: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanExtras:
    """What an aggregator adds to every admitted device's startFLJob reply."""

    #: ``FLPlan.aggregation.weights``: the row's device_params, in order
    aggregation_weights: tuple[float, ...] = ()
    #: ``ResponseFLJob.control_variate`` (Scaffold's c)
    control_variate: Model = field(default_factory=dict)


class Aggregator(abc.ABC):
    """One aggregation type (see the module docstring). Subclasses set ``NAME`` to their row's name."""

    NAME: ClassVar[str]

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        self.shapes = dict(shapes)
        row = self.row()
        self.params = {**row.params, **(params or {})}

    @classmethod
    def row(cls) -> AggregationType:
        return table().aggregation[cls.NAME]

    def check(self, upload: DeviceUpload) -> str | None:
        """Why this upload cannot be aggregated by this type (beyond names, sizes and finiteness, which the
        round checks for every type), or None. Called when it arrives: a refusal changes nothing."""
        return None

    @abc.abstractmethod
    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        """The model of ``iteration`` (float32, the model's shapes) from the previous global model and
        the uploads (fl_id → upload, at least one). Updates the state returned by :meth:`state`."""

    def state(self) -> dict[str, np.ndarray]:
        """The state to keep with the model of the iteration just aggregated ({} for stateless types)."""
        return {}

    def load(self, state: State) -> None:
        """Continue from ``state`` (as returned by :meth:`state`; {} at the job's start)."""

    def plan_extras(self) -> PlanExtras:
        """What the next iteration's admitted devices are told (after :meth:`load` of the current state):
        by default the row's device_params from this aggregator's parameters."""
        return PlanExtras(tuple(float(self.params[name]) for name in self.row().device_params))
