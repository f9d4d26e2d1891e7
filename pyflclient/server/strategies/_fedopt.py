r"""What FedAdam, FedYogi and FedAdagrad share (Reddi et al., "Adaptive Federated Optimization",
ICLR 2021, Algorithm 2; Flower 1.42's ``FedOpt``): the pseudo-gradient and the moments.

Iteration *t* (1-based, Flower's ``server_round``) turns the previous global model
:math:`x_{t-1}` and the :func:`~pyflclient.server.strategies.fedavg.weighted_average`
:math:`\bar w_t` of the uploads (float32, as FedAvg publishes it) into

.. math::

    \Delta_t = \bar w_t - x_{t-1}, \qquad
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) \Delta_t, \qquad
    x_t = x_{t-1} + \eta_t \frac{m_t}{\sqrt{v_t} + \tau}

with :math:`m_0 = v_0 = 0` (Flower's convention; the paper leaves the start open), the
second moment :math:`v_t` and the step :math:`\eta_t` of each type. The moments are the
state (float64, ``m/<weight name>`` and ``v/<weight name>``); sums run in float64 and the
model is float32.
"""
from __future__ import annotations

import abc
from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import flat, flat_state, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model, State
from pyflclient.server.strategies.fedavg import weighted_average

__all__ = ["ServerOptimizer"]


class ServerOptimizer(Aggregator):
    """An adaptive server optimizer over the pseudo-gradient (see the module docstring); no type itself."""

    #: False: :math:`\beta_1 = 0`, :math:`m_t = \Delta_t`, not kept (FedAdagrad)
    KEEPS_FIRST_MOMENT: bool = True

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.eta = float(self.params["server_learning_rate"])
        self.tau = float(self.params["server_tau"])
        self.beta1 = float(self.params.get("server_beta1", 0.0)) if self.KEEPS_FIRST_MOMENT else 0.0
        self.beta2 = float(self.params.get("server_beta2", 0.0))
        self._moments: dict[str, np.ndarray] = {}
        self.load({})

    def _keys(self) -> dict[str, int]:
        kinds = ("m/", "v/") if self.KEEPS_FIRST_MOMENT else ("v/",)
        return {kind + name: int(np.prod(shape)) for kind in kinds for name, shape in self.shapes.items()}

    @abc.abstractmethod
    def second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """:math:`v_t` from :math:`v_{t-1}` and :math:`\\Delta_t`."""

    def step_size(self, iteration: int) -> float:
        """:math:`\\eta_t` (the server learning rate unless the type corrects it)."""
        return self.eta

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        average = weighted_average(self.shapes, uploads, self.NAME)
        x = flat(previous, self.shapes)
        eta = self.step_size(iteration)
        new = {}
        for name in self.shapes:
            delta = np.reshape(average[name], -1).astype(np.float64) - x[name]
            if self.KEEPS_FIRST_MOMENT:
                m = self.beta1 * self._moments["m/" + name] + (1.0 - self.beta1) * delta
                self._moments["m/" + name] = m
            else:
                m = delta
            v = self.second_moment(self._moments["v/" + name], delta)
            self._moments["v/" + name] = v
            new[name] = x[name] + eta * m / (np.sqrt(v) + self.tau)
        return shaped(new, self.shapes)

    def state(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self._moments.items()}

    def load(self, state: State) -> None:
        keys = self._keys()
        self._moments = flat_state(self.NAME, state, keys) or {key: np.zeros(size) for key, size in keys.items()}
