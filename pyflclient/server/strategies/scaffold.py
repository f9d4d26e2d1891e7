r"""Scaffold: the server side of SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled
Averaging for Federated Learning", ICML 2020, Algorithm 1, option II on the device).

The server keeps the control variate :math:`c` (:math:`c = 0` at the job's start) and sends
it to every admitted device (``ResponseFLJob.control_variate``). Device *i* trains with the
correction :math:`c - c_i` in every local step, updates its own :math:`c_i` and uploads
:math:`u_i = n_i y_i` as every device does plus :math:`\Delta c_i = c_i^+ - c_i` (not
multiplied by :math:`n_i`). With :math:`x` the previous global model, :math:`\bar w` the
:func:`~pyflclient.server.strategies.fedavg.weighted_average` of the uploads, :math:`\eta_g`
= ``server_learning_rate`` and :math:`N` = ``scaffold_num_clients`` (0: the number of
uploads of the iteration, i.e. full participation):

.. math::

    x \leftarrow x + \eta_g (\bar w - x), \qquad
    c \leftarrow c + \frac{1}{N} \sum_{i} \Delta c_i

The paper averages :math:`\Delta y_i` without weights; like MindSpore Federated, the model
step here uses FedAvg's data-size weights (so that :math:`\eta_g = 1` gives FedAvg's
bit-identical model). :math:`c` is the state (float64, ``c/<weight name>``); sums in fl_id
order, float64; the model and the :math:`c` sent are float32.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pyflclient.server.strategies._uploads import flat, flat_state, in_order, shaped
from pyflclient.server.strategies.base import Aggregator, DeviceUpload, Model, PlanExtras, State
from pyflclient.server.strategies.fedavg import weighted_average

__all__ = ["Scaffold"]


class Scaffold(Aggregator):
    """SCAFFOLD's server (see the module docstring); state: the server control variate ``c``."""

    NAME = "Scaffold"

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, float] | None = None):
        super().__init__(shapes, params)
        self.learning_rate = float(self.params["server_learning_rate"])
        self.num_clients = int(self.params["scaffold_num_clients"])
        self._c: dict[str, np.ndarray] = {}
        self.load({})

    def _keys(self) -> dict[str, int]:
        return {"c/" + name: int(np.prod(shape)) for name, shape in self.shapes.items()}

    def check(self, upload: DeviceUpload) -> str | None:
        delta_c = upload.control_variate
        if set(delta_c) != set(self.shapes):
            return (f"{self.NAME} needs control_variate (the device's delta c_i) with exactly the model's "
                    f"weights {sorted(self.shapes)}, got {sorted(delta_c)}")
        for name, shape in self.shapes.items():
            values = np.asarray(delta_c[name])
            if values.size != int(np.prod(shape)):
                return (f"{self.NAME}: control_variate {name!r} has {values.size} values, the weight has "
                        f"{int(np.prod(shape))}")
            if not np.all(np.isfinite(values)):
                return f"{self.NAME}: control_variate {name!r} has non-finite values"
        return None

    def aggregate(self, previous: Model, uploads: Mapping[str, DeviceUpload], iteration: int) -> dict[str, np.ndarray]:
        ordered = in_order(self.NAME, self.shapes, uploads)
        for upload in ordered:
            problem = self.check(upload)
            if problem:
                raise ValueError(problem)
        average = weighted_average(self.shapes, uploads, self.NAME)
        n = self.num_clients or len(ordered)
        for name in self.shapes:
            total = np.zeros(self._c["c/" + name].size, dtype=np.float64)
            for upload in ordered:
                np.add(total, np.reshape(upload.control_variate[name], -1), out=total)
            self._c["c/" + name] = self._c["c/" + name] + total / n
        if self.learning_rate == 1.0:
            return average
        x = flat(previous, self.shapes)
        return shaped({name: x[name] + self.learning_rate * (np.reshape(average[name], -1).astype(np.float64) - x[name])
                       for name in self.shapes}, self.shapes)

    def state(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self._c.items()}

    def load(self, state: State) -> None:
        keys = self._keys()
        self._c = flat_state(self.NAME, state, keys) or {key: np.zeros(size) for key, size in keys.items()}

    def plan_extras(self) -> PlanExtras:
        base = super().plan_extras()
        return PlanExtras(base.aggregation_weights,
                          shaped({name: self._c["c/" + name] for name in self.shapes}, self.shapes))
