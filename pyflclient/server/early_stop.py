r"""Ending a job early: r1.6's ``FLPlan.early_stop`` (``early_stop_type``, ``early_stop_weight``, ``early_stop_rounds``).

After each iteration *k* the server measures one number and compares it with the
threshold :math:`\epsilon` = ``early_stop_weight``:

* ``loss_diff``: :math:`|L_k - L_{k-1}| < \epsilon`,
* ``loss_abs``: :math:`L_k < \epsilon`,
* ``weight_diff``: :math:`\lVert w_k - w_{k-1} \rVert_2 < \epsilon` over all weights (float64),

where :math:`L_k = \sum_i n_i \ell_i / \sum_i n_i` is the data-size-weighted mean of
the ``upload_loss`` :math:`\ell_i` the devices of *k* sent (each one's mean training
loss at the model it received). Once the criterion held for ``early_stop_rounds``
iterations in a row the job ends after *k*. An invalid iteration (previous model kept,
no loss) does not meet it and starts the count again; ``loss_diff`` needs the loss of
the iteration before. The count and the last loss are the state, kept with each
published model (the store and the checkpoints), so a restarted server counts on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from pyflclient.server.config import ServerConfig
from pyflclient.server.strategies.base import DeviceUpload, Model, State

__all__ = ["EarlyStop", "weighted_loss"]


def weighted_loss(uploads: Mapping[str, DeviceUpload]) -> float | None:
    """:math:`\\sum_i n_i \\ell_i / \\sum_i n_i` over the uploads that carry a loss (fl_id order), or None."""
    pairs = [(uploads[f].data_size, uploads[f].loss) for f in sorted(uploads) if uploads[f].loss is not None]
    if not pairs:
        return None
    return math.fsum(n * float(loss) for n, loss in pairs) / sum(n for n, _ in pairs)  # type: ignore[arg-type]


def _weight_diff(previous: Model, model: Model) -> float:
    return math.sqrt(math.fsum(float(np.sum(np.square(np.asarray(model[n], np.float64) - np.asarray(previous[n], np.float64))))
                               for n in sorted(model)))


#: what each type measures, as its reason says it
_SAID = {"loss_diff": "|loss - previous loss|", "loss_abs": "loss", "weight_diff": "||w - previous w||"}


@dataclass
class EarlyStop:
    """The early stop of one job (see the module docstring)."""

    name: str
    weight: float
    rounds: int
    streak: int = 0
    last_loss: float | None = None

    @classmethod
    def of(cls, config: ServerConfig) -> "EarlyStop | None":
        row = config.early_stop_row
        if row is None:
            return None
        assert config.early_stop_weight is not None  # the configuration requires it with a type
        return cls(row.name, float(config.early_stop_weight), int(config.early_stop_rounds))

    def state(self) -> dict[str, np.ndarray]:
        return {"streak": np.array(self.streak, np.int64),
                "last_loss": np.array(np.nan if self.last_loss is None else self.last_loss, np.float64)}

    def load(self, state: State) -> None:
        self.streak = int(state["streak"]) if "streak" in state else 0
        loss = float(state["last_loss"]) if "last_loss" in state else math.nan
        self.last_loss = None if math.isnan(loss) else loss

    def measure(self, uploads: Mapping[str, DeviceUpload] | None, previous: Model, model: Model) -> float | None:
        """The number compared with ``early_stop_weight`` for iteration *k*; None when there is none (an
        invalid iteration, no loss, or ``loss_diff`` without the previous iteration's loss)."""
        if uploads is None:
            return None
        if self.name == "weight_diff":
            return _weight_diff(previous, model)
        loss = weighted_loss(uploads)
        if loss is None or self.name == "loss_abs":
            return loss
        return None if self.last_loss is None else abs(loss - self.last_loss)

    def observe(self, uploads: Mapping[str, DeviceUpload] | None, previous: Model, model: Model) -> str | None:
        """Count iteration *k* (``uploads``: None when it was invalid); the reason to end the job, or None."""
        value = self.measure(uploads, previous, model)
        self.streak = self.streak + 1 if value is not None and value < self.weight else 0
        self.last_loss = weighted_loss(uploads) if uploads is not None else None
        if self.streak >= self.rounds:
            return (f"early stop {self.name}: {_SAID[self.name]} {value:.6g} < early_stop_weight {self.weight:g} "
                    f"for {self.streak} iteration(s) in a row (early_stop_rounds {self.rounds})")
        return None
