r"""FedAdam: Adam on the server over the pseudo-gradient (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2), with Flower 1.42's ``FedAdam`` conventions.

On top of :mod:`._fedopt` (:math:`\Delta_t = \bar w_t - x_{t-1}`, :math:`m_0 = v_0 = 0`,
:math:`m_t = \beta_1 m_{t-1} + (1-\beta_1)\Delta_t`):

.. math::

    v_t = \beta_2 v_{t-1} + (1 - \beta_2) \Delta_t^2, \qquad
    x_t = x_{t-1} + \eta_t \frac{m_t}{\sqrt{v_t} + \tau}, \qquad
    \eta_t = \eta \frac{\sqrt{1 - \beta_2^{\,t+1}}}{1 - \beta_1^{\,t+1}}

The bias-corrected step :math:`\eta_t` (Kingma & Ba's :math:`\alpha_t`) is not in the
paper's Algorithm 2; it is Flower's, with :math:`t` the 1-based iteration as Flower's
``server_round`` (hence the exponent :math:`t+1`, as Flower writes it). Parameters:
``server_learning_rate`` :math:`\eta`, ``server_beta1``, ``server_beta2``, ``server_tau``.
"""
from __future__ import annotations

import math

import numpy as np

from pyflclient.server.strategies._fedopt import ServerOptimizer

__all__ = ["FedAdam"]


class FedAdam(ServerOptimizer):
    """Adam on the server (see the module docstring); state: the moments ``m`` and ``v``."""

    NAME = "FedAdam"

    def second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return self.beta2 * v + (1.0 - self.beta2) * (delta * delta)

    def step_size(self, iteration: int) -> float:
        return self.eta * math.sqrt(1.0 - self.beta2 ** (iteration + 1.0)) / (1.0 - self.beta1 ** (iteration + 1.0))
