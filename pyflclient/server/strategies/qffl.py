r"""qffl: q-FedAvg (Li et al., "Fair Resource Allocation in Federated Learning", ICLR 2020,
Algorithm 2), as Flower 1.42's ``QFedAvg.aggregate_fit`` and ``aggregate_qffl`` compute it.

Devices with a higher loss weigh more. With :math:`w^t` the previous global model,
:math:`w_k = u_k / n_k` device *k*'s trained model, :math:`q` = ``qffl_q``, :math:`L` =
``qffl_learning_rate`` (the inverse of the Lipschitz estimate, Flower's ``learning_rate``)
and :math:`F_k` device *k*'s ``upload_loss`` (its mean training loss at :math:`w^t`, before
local training) plus :math:`10^{-10}` (Flower's guard):

.. math::

    g_k = \frac{w^t - w_k}{L}, \qquad
    \Delta_k = F_k^{\,q}\, g_k, \qquad
    h_k = q\, F_k^{\,q-1} \lVert g_k \rVert^2 + \frac{1}{L} F_k^{\,q}, \qquad
    w^{t+1} = w^t - \frac{\sum_k \Delta_k}{\sum_k h_k}

:math:`\lVert g_k \rVert^2` runs over every weight of the model. The one difference from
Flower: Flower evaluates a single loss (its server-side ``evaluate`` of :math:`w^t`) for
every device, whereas here each device reports its own :math:`F_k(w^t)`, as the paper's
Algorithm 2 has it. An upload without ``upload_loss`` (or with a negative or non-finite
one) is refused by :meth:`QFFL.check`. Sums in fl_id order, float64; the model float32.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import device_models, flat, in_order, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model

__all__ = ["QFFL"]

#: added to every loss before its powers, as Flower does (a zero loss with q < 1)
LOSS_GUARD = 1e-10


class QFFL(Aggregator):
    """q-FedAvg (see the module docstring); stateless, reads each upload's loss."""

    NAME = "qffl"

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.q = float(self.params["qffl_q"])
        self.lipschitz_lr = float(self.params["qffl_learning_rate"])

    def check(self, upload: DeviceUpload) -> str | None:
        if upload.loss is None:
            return (f"{self.NAME} needs upload_loss (the device's loss at the received model) in every "
                    f"upload; this one has none")
        if not math.isfinite(upload.loss) or upload.loss < 0:
            return f"{self.NAME} needs upload_loss to be a finite number >= 0, got {upload.loss}"
        return None

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        ordered = in_order(self.NAME, self.shapes, uploads)
        for upload in ordered:
            problem = self.check(upload)
            if problem:
                raise ValueError(problem)
        x = flat(previous, self.shapes)
        models = device_models(self.shapes, ordered)
        deltas = {name: np.zeros_like(x[name]) for name in self.shapes}
        h_total = 0.0
        for k, upload in enumerate(ordered):
            loss = float(upload.loss) + LOSS_GUARD
            grads = {name: (x[name] - models[name][k]) / self.lipschitz_lr for name in self.shapes}
            norm2 = sum(float(np.dot(g, g)) for g in grads.values())
            for name in self.shapes:
                deltas[name] += loss ** self.q * grads[name]
            h_total += self.q * loss ** (self.q - 1.0) * norm2 + loss ** self.q / self.lipschitz_lr
        return shaped({name: x[name] - deltas[name] / h_total for name in self.shapes}, self.shapes)
