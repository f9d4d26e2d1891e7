"""Federated averaging of the devices' uploads (the only aggregation of r1.6's FL server mode)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["FedAvg", "DeviceUpload"]


@dataclass(frozen=True)
class DeviceUpload:
    """One device's upload in one iteration: ``weights`` = data_size × its trained weights, as sent."""

    data_size: int
    weights: Mapping[str, np.ndarray]


class FedAvg:
    r"""Weighted average of device models, weighted by each device's number of samples.

    Device *i* trains on :math:`n_i` samples (the ``data_size`` of its startFLJob)
    and uploads its weights already multiplied by :math:`n_i`, :math:`u_i = n_i w_i`.
    The new global model is

    .. math::  w = \frac{\sum_i u_i}{\sum_i n_i}

    summed in float64 over the uploads **sorted by fl_id**, one ``np.add`` per weight
    per upload, and returned as float32 (the wire type). Float64 addition is not
    associative, so summing in arrival order (as this class did before) gave models
    that differed in the last bits between two runs of the same job; in fl_id order
    the same uploads give the bit-identical model whatever the order, timing or
    number of server processes they arrived through. The price is holding every
    upload until the iteration closes (the model's float32 bytes × uploaders, e.g.
    266 KB × 50 for LeNet) instead of one running sum (docs/server.md, "FedAvg").
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]]):
        self.shapes = dict(shapes)

    def aggregate(self, uploads: Mapping[str, DeviceUpload]) -> dict[str, np.ndarray]:
        """The averaged model (name → float32 array of the model's shape) of ``uploads`` (fl_id → upload)."""
        if not uploads:
            raise ValueError("FedAvg of zero uploads is undefined")
        order = sorted(uploads)
        for fl_id in order:
            upload = uploads[fl_id]
            if upload.data_size < 1:
                raise ValueError(f"{fl_id!r}: data_size must be >= 1, got {upload.data_size}")
            if set(upload.weights) != set(self.shapes):
                raise KeyError(f"{fl_id!r}: upload names {sorted(upload.weights)} differ from the model's "
                               f"{sorted(self.shapes)}")
        data_size = sum(uploads[fl_id].data_size for fl_id in order)
        model = {}
        for name, shape in self.shapes.items():
            total = np.zeros(int(np.prod(shape)), dtype=np.float64)
            for fl_id in order:
                np.add(total, np.reshape(uploads[fl_id].weights[name], -1), out=total)
            model[name] = (total / data_size).astype(np.float32).reshape(shape)
        return model
