"""The plan values the device checks keep the rows of schema/round_plugins.json.

The learning rate reaches the device as ``FLPlan.lr``, a FlatBuffers ``float`` (32 bits); the
device (its ``Plan``, through the rule generated into ``RoundPlugins``) takes it only when the ``client_learning_rate`` row
allows it: one rule, the table's, applied to the value as it travels. A value the server's
float64 check would pass but that is 0 or infinite in 32 bits (1e-50, 1e39) is refused by the
row as well, once rounded to what the wire carries.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pyflclient.wire.plugins import table

LEARNING_RATES = [0.01, 1.0, 5e-3, 100.0, float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny),
                  1e-45, 0.0, -0.0, -0.01, math.nan, math.inf, -math.inf, 1e-50, 1e39]


def as_sent(value: float) -> float:
    """The value a FlatBuffers float field carries."""
    with np.errstate(over="ignore", under="ignore"):
        return float(np.float32(value))


@pytest.mark.parametrize("value", LEARNING_RATES, ids=repr)
def test_the_device_takes_exactly_the_learning_rates_the_table_row_allows(value):
    """The device's Plan checks the plan's lr (a float32) with the rule generated from the same row; 0 is the
    FlatBuffers default, "not sent", and keeps the model's learning rate."""
    from pyflclient.client import jvm

    row = table().parameters["client_learning_rate"]
    java_rule = jvm.jclass("com.mindspore.flclient.runtime.schema.RoundPlugins").parameter("client_learning_rate")
    assert bool(java_rule.accepts(as_sent(value))) == (row.problem(as_sent(value)) is None), row.rule
