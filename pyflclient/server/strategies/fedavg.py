r"""FedAvg: federated averaging weighted by data size (McMahan et al., AISTATS 2017); r1.6's only aggregation.

Device *i* trains on :math:`n_i` samples (the ``data_size`` of its startFLJob) and
uploads its weights already multiplied by :math:`n_i`, :math:`u_i = n_i w_i`. The new
global model is

.. math::  w = \frac{\sum_i u_i}{\sum_i n_i}

summed in float64 over the uploads **sorted by fl_id**, one ``np.add`` per weight per
upload, divided once, and returned as float32 (the wire type); the same as Flower 1.42's
``aggregate`` (which multiplies each model by its ``num_examples`` itself). Float64
addition is not associative, so summing in arrival order gave models that differed in
the last bits between two runs of the same job; in fl_id order the same uploads give
the bit-identical model whatever the order, timing or number of server processes they
arrived through. The price is holding every upload until the iteration closes (the
model's float32 bytes × uploaders, e.g. 266 KB × 50 for LeNet) instead of one running
sum (docs/server.md, "FedAvg").

:func:`weighted_average` is this average for the other types built on it (FedAvgM, the
adaptive ones, FedProx, Scaffold, Multi-Krum).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import Shapes, in_order
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model

__all__ = ["FedAvg", "weighted_average"]


def weighted_average(shapes: Shapes, uploads: Mapping[str, DeviceUpload], name: str) -> dict[str, np.ndarray]:
    r""":math:`\sum_i u_i / \sum_i n_i` of ``uploads`` (fl_id → upload) as float32 arrays of the model's shapes
    (``name``: the aggregation type asking, for the messages)."""
    ordered = in_order(name, shapes, uploads)
    data_size = sum(upload.data_size for upload in ordered)
    model = {}
    for weight, shape in shapes.items():
        total = np.zeros(int(np.prod(shape)), dtype=np.float64)
        for upload in ordered:
            np.add(total, np.reshape(upload.weights[weight], -1), out=total)
        model[weight] = (total / data_size).astype(np.float32).reshape(shape)
    return model


class FedAvg(Aggregator):
    """Federated averaging (see the module docstring); stateless, ``previous`` is not read."""

    NAME = "FedAvg"

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        return weighted_average(self.shapes, uploads, self.NAME)
