r"""FedAvgM: FedAvg with server momentum (Hsu et al., "Measuring the Effects of Non-Identical Data
Distribution for Federated Visual Classification", 2019), as Flower 1.42's ``FedAvgM`` computes it.

With :math:`x` the previous global model, :math:`\bar w` the
:func:`~pyflclient.server.strategies.fedavg.weighted_average` of the uploads (float32, as
FedAvg publishes it), :math:`\eta` = ``server_learning_rate`` and :math:`\beta` =
``server_momentum``, iteration *t* computes the pseudo-gradient and the heavy-ball step
(PyTorch's SGD convention, no Nesterov, as Flower)

.. math::

    g_t = x_{t-1} - \bar w_t, \qquad m_t = \beta\, m_{t-1} + g_t, \qquad x_t = x_{t-1} - \eta\, m_t

with :math:`m_0 = 0` (so :math:`m_1 = g_1`, Flower's first round). Flower's other
conventions: with :math:`\beta = 0` no momentum is kept (:math:`m_t = g_t`), and with
:math:`\eta = 1, \beta = 0` the result is :math:`\bar w_t` itself (Flower's
``server_opt`` off), so that FedAvgM's defaults give FedAvg's bit-identical models.
:math:`m` is the state (float64, ``m/<weight name>``); sums run in float64 and the model
is float32.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import flat, flat_state, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model, State
from pyflclient.server.strategies.fedavg import weighted_average

__all__ = ["FedAvgM"]


class FedAvgM(Aggregator):
    """FedAvg with server momentum (see the module docstring); state: the momentum ``m``."""

    NAME = "FedAvgM"

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.learning_rate = float(self.params["server_learning_rate"])
        self.momentum = float(self.params["server_momentum"])
        self._m: dict[str, np.ndarray] = {}

    def _keys(self) -> dict[str, int]:
        if self.momentum == 0.0:
            return {}
        return {"m/" + name: int(np.prod(shape)) for name, shape in self.shapes.items()}

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        average = weighted_average(self.shapes, uploads, self.NAME)
        if self.learning_rate == 1.0 and self.momentum == 0.0:
            return average
        x = flat(previous, self.shapes)
        new = {}
        for name in self.shapes:
            step = x[name] - np.reshape(average[name], -1).astype(np.float64)
            if self.momentum > 0.0:
                step = self.momentum * self._m.get("m/" + name, 0.0) + step
                self._m["m/" + name] = step
            new[name] = x[name] - self.learning_rate * step
        return shaped(new, self.shapes)

    def state(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self._m.items()}

    def load(self, state: State) -> None:
        self._m = flat_state(self.NAME, state, self._keys())
