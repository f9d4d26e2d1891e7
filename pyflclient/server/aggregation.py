"""Federated averaging of the devices' uploads (the only aggregation of r1.6's FL server mode)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["FedAvg"]


class FedAvg:
    r"""Weighted average of device models, weighted by each device's number of samples.

    Device *i* trains on :math:`n_i` samples (the ``data_size`` of its startFLJob)
    and uploads its weights already multiplied by :math:`n_i`, :math:`u_i = n_i w_i`.
    The new global model is

    .. math::  w = \frac{\sum_i u_i}{\sum_i n_i}

    The sums are accumulated in float64, one ``np.add`` per weight per upload, so
    the result does not depend on the order of arrival beyond float64 rounding and
    holding K uploads costs one model's worth of memory, not K. The result is
    float32, the wire type.
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]]):
        self.shapes = dict(shapes)
        self._sums = {name: np.zeros(int(np.prod(shape)), dtype=np.float64) for name, shape in self.shapes.items()}
        self.data_size = 0
        self.count = 0

    def add(self, upload: Mapping[str, np.ndarray], data_size: int) -> None:
        """Add one device's upload ``u_i`` (name → data_size × weights, any shape of the right size)."""
        if data_size < 1:
            raise ValueError(f"data_size must be >= 1, got {data_size}")
        if set(upload) != set(self._sums):
            raise KeyError(f"upload names {sorted(upload)} differ from the model's {sorted(self._sums)}")
        for name, total in self._sums.items():
            np.add(total, np.reshape(upload[name], -1), out=total)
        self.data_size += data_size
        self.count += 1

    def result(self) -> dict[str, np.ndarray]:
        """The averaged model (name → float32 array of the model's shape); needs at least one upload."""
        if self.count == 0:
            raise ValueError("FedAvg of zero uploads is undefined")
        return {name: (total / self.data_size).astype(np.float32).reshape(self.shapes[name])
                for name, total in self._sums.items()}
