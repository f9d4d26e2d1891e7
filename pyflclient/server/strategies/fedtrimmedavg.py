r"""FedTrimmedAvg: the coordinate-wise trimmed mean of the device models (Yin et al.,
"Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018), as
Flower 1.42's ``aggregate_trimmed_avg`` (its scipy-free ``_trim_mean``) computes it.

With :math:`K` devices, :math:`w_k = u_k / n_k` device *k*'s own model and
:math:`\beta` = ``trim_beta``, cut :math:`c = \lfloor \beta K \rfloor` values at each end of
every coordinate and average the rest:

.. math::  w_j = \frac{1}{K - 2c} \sum_{r=c+1}^{K-c} (w_{(r)})_j

where :math:`(w_{(r)})_j` is the *r*-th smallest of the devices' *j*-th coordinates.
Data sizes do not weigh, as in Flower. The values kept are sorted (Flower partitions), so
the sum runs in a fixed order. It needs each upload in the clear. Float64, the model float32.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import device_models, in_order, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model

__all__ = ["FedTrimmedAvg"]


class FedTrimmedAvg(Aggregator):
    """Coordinate-wise trimmed mean (see the module docstring); stateless."""

    NAME = "FedTrimmedAvg"

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.beta = float(self.params["trim_beta"])

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        models = device_models(self.shapes, in_order(self.NAME, self.shapes, uploads))
        devices = len(uploads)
        cut = int(self.beta * devices)
        # trim_beta < 0.5 keeps at least one value (Flower raises "Proportion too big" otherwise)
        return shaped({name: np.mean(np.sort(stack, axis=0)[cut:devices - cut], axis=0)
                       for name, stack in models.items()}, self.shapes)
