"""The default bound on a device's update, on unless ``max_update_norm`` sets an explicit one.

A device uploads ``u = data_size × w``; its update is ``d = u / data_size − g`` (``g`` the global model it
was sent) and ``‖d‖`` the L2 norm over all weights, in float64. FedAvg trusts ``u`` blindly, so one device
admitted with data_size 1 and uploading ``1e9 × w`` used to move the model by 1e9. With
``update_norm_factor = k`` (default 100) an update is refused (RequestError) when

    ‖d‖ > k × median(‖d‖ of the last 256 accepted updates)          once 8 were accepted,
    ‖d‖ > k × (‖g‖ + 1)                                               before (the warm-up),

so the bound follows the job's own scale (an honest update is rarely larger than the model itself, so
the warm-up bound is loose; it is there for an update that owns the model in the first iteration): honest updates within a run differ by the learning rate, the
number of local steps (data_size / batch × epochs) and the data, a factor of tens at most, while a poisoned
update that owns the model is orders of magnitude larger. The median is robust: the refused updates never
enter it and a minority of large accepted ones cannot raise it. The measured false-refusal rate on the
bundled run is in docs/security.md. It bounds how far one update moves the model (a robust aggregation
type, e.g. Krum or the trimmed mean of the strategy table, is the stronger choice against colluding
devices); in a Redis group each process keeps its own history. Off with PW_ENCRYPT (the server sees
masked uploads only) and with ``update_norm_factor = 0``.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Mapping

import numpy as np

__all__ = ["UpdateNormBound", "update_norm", "HISTORY", "WARMUP"]

#: accepted norms the median is taken over (the most recent)
HISTORY = 256
#: accepted updates before the median is used; until then the bound is factor × (‖g‖ + 1)
WARMUP = 8


def update_norm(weights: Mapping[str, np.ndarray], data_size: int, current: Mapping[str, np.ndarray]) -> float:
    """‖u / data_size − g‖ over all weights, in float64 (inf when it overflows)."""
    total = 0.0
    for name, u in weights.items():
        d = np.reshape(u, -1).astype(np.float64) / data_size - np.reshape(current[name], -1)
        total += float(np.vdot(d, d))  # vdot, not dot: the BLAS dot was ~200x slower here on small arrays
    return math.sqrt(total)


class UpdateNormBound:
    """The bound of one server process: :meth:`limit` for the next upload, :meth:`accepted` after one is taken."""

    def __init__(self, factor: float):
        self.factor = factor
        self._norms: deque[float] = deque(maxlen=HISTORY)
        self.refused = 0
        #: the largest norm / bound of an accepted update so far: how close honest updates came to the bound
        self.closest = 0.0

    def limit(self, current: Mapping[str, np.ndarray]) -> float:
        if len(self._norms) >= WARMUP:
            return self.factor * float(np.median(np.fromiter(self._norms, np.float64)))
        model_norm = math.sqrt(sum(float(np.vdot(np.reshape(a, -1).astype(np.float64),
                                                 np.reshape(a, -1).astype(np.float64))) for a in current.values()))
        return self.factor * (model_norm + 1.0)

    def check(self, weights: Mapping[str, np.ndarray], data_size: int, current: Mapping[str, np.ndarray]
              ) -> tuple[float, str | None]:
        """(the update's norm, why it is refused or None)."""
        norm = update_norm(weights, data_size, current)
        bound = self.limit(current)
        if norm <= bound:
            self.closest = max(self.closest, norm / bound if bound > 0 else 0.0)
            return norm, None
        self.refused += 1
        basis = (f"{self.factor:g} x the median of the last {len(self._norms)} accepted updates"
                 if len(self._norms) >= WARMUP else f"{self.factor:g} x (the global model's norm + 1), "
                                                     f"until {WARMUP} updates were accepted")
        return norm, (f"update norm {norm:.4g} is above the bound {bound:.4g} ({basis}; update_norm_factor); "
                      f"a poisoned or broken upload?")

    def accepted(self, norm: float) -> None:
        self._norms.append(norm)
