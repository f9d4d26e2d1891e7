r"""FedYogi: Yogi on the server over the pseudo-gradient (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2), with Flower 1.42's ``FedYogi`` conventions.

On top of :mod:`._fedopt` (:math:`\Delta_t = \bar w_t - x_{t-1}`, :math:`m_0 = v_0 = 0`,
:math:`m_t = \beta_1 m_{t-1} + (1-\beta_1)\Delta_t`), Yogi's sign rule keeps the second
moment from growing faster than the squared pseudo-gradient:

.. math::

    v_t = v_{t-1} - (1 - \beta_2)\, \Delta_t^2 \operatorname{sign}(v_{t-1} - \Delta_t^2), \qquad
    x_t = x_{t-1} + \eta \frac{m_t}{\sqrt{v_t} + \tau}

without bias correction (as the paper and Flower). Parameters: ``server_learning_rate``
:math:`\eta`, ``server_beta1``, ``server_beta2``, ``server_tau``.
"""
from __future__ import annotations

import numpy as np

from pyflclient.server.strategies._fedopt import ServerOptimizer

__all__ = ["FedYogi"]


class FedYogi(ServerOptimizer):
    """Yogi on the server (see the module docstring); state: the moments ``m`` and ``v``."""

    NAME = "FedYogi"

    def second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        square = delta * delta
        return v - (1.0 - self.beta2) * square * np.sign(v - square)
