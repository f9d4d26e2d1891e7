r"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020): FedAvg on the server.

What changes is local training: every local step of device *k* minimises

.. math::  h_k(w) = F_k(w) + \frac{\mu}{2} \lVert w - w^t \rVert^2

with :math:`w^t` the model it received, i.e. its gradient gains :math:`\mu (w - w^t)`.
That term is added on the device (the row's ``device: fedprox``); ``fedprox_mu`` travels
to it in ``FLPlan.aggregation.weights`` (the row's ``device_params``, sent by the default
:meth:`~pyflclient.server.strategies.base.Aggregator.plan_extras`). The server averages
the uploads exactly as :class:`~pyflclient.server.strategies.fedavg.FedAvg` does, as
Flower 1.42's ``FedProx`` (a ``FedAvg`` that sends ``proximal_mu``) does.
"""
from __future__ import annotations

from pyflclient.server.strategies.fedavg import FedAvg

__all__ = ["FedProx"]


class FedProx(FedAvg):
    """FedAvg on the server; the proximal term on the device (see the module docstring)."""

    NAME = "FedProx"
