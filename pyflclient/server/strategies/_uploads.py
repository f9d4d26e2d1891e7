"""What every aggregation type reads from the uploads: fl_id order, checks, each device's model.

Shared by the aggregation modules of this package (none of them is an aggregation
type itself, so the registry of :mod:`pyflclient.server.strategies` skips this module).
Uploads are taken in **fl_id order** and every sum runs in float64, so that the same
uploads give the bit-identical model whatever their order of arrival.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies.base import DeviceUpload, Model, State

__all__ = ["in_order", "device_models", "flat", "shaped", "flat_state", "Shapes"]

Shapes = Mapping[str, tuple[int, ...]]


def in_order(name: str, shapes: Shapes, uploads: Mapping[str, DeviceUpload]) -> list[DeviceUpload]:
    """The uploads sorted by fl_id, after checking that there is one and that each has a
    ``data_size`` >= 1 and exactly the model's names (``name``: the aggregation type, for the message)."""
    if not uploads:
        raise ValueError(f"{name} of zero uploads is undefined")
    order = sorted(uploads)
    for fl_id in order:
        upload = uploads[fl_id]
        if upload.data_size < 1:
            raise ValueError(f"{fl_id!r}: data_size must be >= 1, got {upload.data_size}")
        if set(upload.weights) != set(shapes):
            raise KeyError(f"{fl_id!r}: upload names {sorted(upload.weights)} differ from the model's "
                           f"{sorted(shapes)}")
    return [uploads[fl_id] for fl_id in order]


def device_models(shapes: Shapes, ordered: list[DeviceUpload]) -> dict[str, np.ndarray]:
    r"""Each device's own model :math:`w_i = u_i / n_i` (float64), per weight name as a
    (devices in fl_id order) × (weight size) matrix: what the robust types and qffl read."""
    return {name: np.stack([np.reshape(u.weights[name], -1).astype(np.float64) / u.data_size for u in ordered])
            for name in shapes}


def flat(model: Model, shapes: Shapes) -> dict[str, np.ndarray]:
    """``model`` (e.g. the previous global model) as flat float64 vectors, checked against the model's names."""
    if set(model) != set(shapes):
        raise KeyError(f"model names {sorted(model)} differ from the model's {sorted(shapes)}")
    return {name: np.reshape(model[name], -1).astype(np.float64) for name in shapes}


def shaped(vectors: Mapping[str, np.ndarray], shapes: Shapes) -> dict[str, np.ndarray]:
    """The float32 model of the flat float64 ``vectors`` (the wire's type, the model's shapes)."""
    return {name: np.asarray(vectors[name], dtype=np.float64).astype(np.float32).reshape(shape)
            for name, shape in shapes.items()}


def flat_state(owner: str, state: State, keys: Mapping[str, int]) -> dict[str, np.ndarray]:
    """``state`` as float64 vectors of the expected ``keys`` (key → size); {} when ``state`` is empty
    (the job's start). A state of other keys or sizes (another type's, another model's) is refused."""
    if not state:
        return {}
    if set(state) != set(keys):
        raise ValueError(f"{owner}: the state to load has keys {sorted(state)}, expected {sorted(keys)}")
    out = {}
    for key, size in keys.items():
        value = np.asarray(state[key], dtype=np.float64).reshape(-1)
        if value.size != size:
            raise ValueError(f"{owner}: state {key!r} has {value.size} values, expected {size}")
        out[key] = value.copy()
    return out
