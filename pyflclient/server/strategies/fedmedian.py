r"""FedMedian: the coordinate-wise median of the device models (Yin et al., "Byzantine-Robust
Distributed Learning: Towards Optimal Statistical Rates", ICML 2018), as Flower 1.42's
``aggregate_median`` computes it.

With :math:`w_k = u_k / n_k` device *k*'s own model, each coordinate *j* of the new model is

.. math::  w_j = \operatorname{median}_k\, (w_k)_j

(the mean of the two middle values for an even number of devices, ``np.median``); data
sizes do not weigh, as in Flower. It needs each upload in the clear (the row's
``needs_single_uploads``). Float64, the model float32.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import device_models, in_order, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model

__all__ = ["FedMedian"]


class FedMedian(Aggregator):
    """Coordinate-wise median (see the module docstring); stateless."""

    NAME = "FedMedian"

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        models = device_models(self.shapes, in_order(self.NAME, self.shapes, uploads))
        return shaped({name: np.median(stack, axis=0) for name, stack in models.items()}, self.shapes)
