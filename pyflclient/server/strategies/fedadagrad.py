r"""FedAdagrad: Adagrad on the server over the pseudo-gradient (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2), with Flower 1.42's ``FedAdagrad`` conventions.

On top of :mod:`._fedopt` (:math:`\Delta_t = \bar w_t - x_{t-1}`, :math:`v_0 = 0`), with
Flower's :math:`\beta_1 = 0` (so :math:`m_t = \Delta_t`, no first moment kept):

.. math::

    v_t = v_{t-1} + \Delta_t^2, \qquad
    x_t = x_{t-1} + \eta \frac{\Delta_t}{\sqrt{v_t} + \tau}

Parameters: ``server_learning_rate`` :math:`\eta`, ``server_tau``.
"""
from __future__ import annotations

import numpy as np

from pyflclient.server.strategies._fedopt import ServerOptimizer

__all__ = ["FedAdagrad"]


class FedAdagrad(ServerOptimizer):
    """Adagrad on the server (see the module docstring); state: the sum of squares ``v``."""

    NAME = "FedAdagrad"
    KEEPS_FIRST_MOMENT = False

    def second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return v + delta * delta
