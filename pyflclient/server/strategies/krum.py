r"""Krum and Multi-Krum (Blanchard et al., "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent", NeurIPS 2017), as Flower 1.42's ``aggregate_krum`` computes them.

With :math:`K` devices, :math:`w_k = u_k / n_k` device *k*'s own model (all weights as one
vector), :math:`f` = ``krum_byzantine`` (Flower's ``num_malicious_clients``) and
:math:`m` = ``krum_keep`` (Flower's ``num_clients_to_keep``), each device scores

.. math::  s(k) = \sum_{l \in N_k} \lVert w_k - w_l \rVert^2

over the :math:`\max(1, K - f - 2)` other devices :math:`N_k` closest to it. Krum
(:math:`m \le 1`) publishes the model of the lowest score; Multi-Krum (:math:`m > 1`) the
:func:`~pyflclient.server.strategies.fedavg.weighted_average` (by data size, as Flower's
``aggregate``) of the :math:`\min(m, K)` lowest scores' uploads. Ties go to the smaller
fl_id (a stable sort over the fl_id order). It needs each upload in the clear. Distances
in float64; the model float32.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import device_models, in_order
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model
from pyflclient.server.strategies.fedavg import weighted_average

__all__ = ["Krum"]


class Krum(Aggregator):
    """(Multi-)Krum (see the module docstring); stateless."""

    NAME = "Krum"

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.byzantine = int(self.params["krum_byzantine"])
        self.keep = int(self.params["krum_keep"])

    def scores(self, uploads: Mapping[str, DeviceUpload]) -> dict[str, float]:
        """fl_id → Krum score :math:`s(k)` (lower: closer to its neighbours)."""
        ordered = in_order(self.NAME, self.shapes, uploads)
        models = device_models(self.shapes, ordered)
        vectors = np.concatenate([models[name] for name in self.shapes], axis=1)
        devices = len(ordered)
        closest = max(1, devices - self.byzantine - 2)
        scores = {}
        for k, fl_id in enumerate(sorted(uploads)):
            difference = vectors - vectors[k]
            distances = np.delete(np.einsum("ij,ij->i", difference, difference), k)
            scores[fl_id] = float(np.sum(np.sort(distances)[:closest]))
        return scores

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        scores = self.scores(uploads)
        chosen = sorted(scores, key=scores.__getitem__)[:max(1, self.keep)]
        return weighted_average(self.shapes, {fl_id: uploads[fl_id] for fl_id in chosen}, self.NAME)
