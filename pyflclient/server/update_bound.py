"""The default bound on a device's update, on unless ``max_update_norm`` sets an explicit one.

A device uploads ``u = data_size × w``; its update is ``d = u / data_size − g`` (``g`` the global model it
was sent) and ``‖d‖`` the L2 norm over all weights, in float64. FedAvg trusts ``u`` blindly, so one device
admitted with data_size 1 and uploading ``1e9 × w`` used to move the model by 1e9. With
``update_norm_factor = k`` (default 10,000) an update is refused (RequestError) when

    ‖d‖ > k × median(‖d‖ of the last 256 accepted updates)          once 8 were accepted,
    ‖d‖ > k × (‖g‖ + 1)                                               before (the warm-up),

The default is high on purpose: an honest job whose model a server optimizer knocked off course
(FedAdam at Flower's default step on the bundled LeNet) uploaded updates 1,200 x the median of the
iteration before, and a bound of 100 x failed its devices; a poisoned update that owns the model
(1e9 x w, 3e38) is still a billion times above it. So the bound follows the job's own scale (an honest update is rarely larger than the model itself, so
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

__all__ = ["UpdateNormBound", "update_norm", "sum_of_squares", "HISTORY", "WARMUP"]

#: accepted norms the median is taken over (the most recent)
HISTORY = 256
#: accepted updates before the median is used; until then the bound is factor × (‖g‖ + 1)
WARMUP = 8


def sum_of_squares(d: np.ndarray) -> float:
    """Σ dᵢ² of a 1-D float64 array, without BLAS.

    ``np.vdot`` / ``np.dot`` call OpenBLAS's ddot, which splits arrays above a size threshold over
    its threads: on the shared 2-core machine a 48,000-float LeNet weight took 1.5–15 ms that way
    (the threads spin for cores the trainers hold), ~24 ms per upload in the server's event loop,
    against 15 µs for ``einsum``'s own loop (``optimize`` off: no BLAS)."""
    return float(np.einsum("i,i->", d, d))


def update_norm(weights: Mapping[str, np.ndarray], data_size: int, current: Mapping[str, np.ndarray]) -> float:
    """‖u / data_size − g‖ over all weights, in float64 (inf when it overflows)."""
    total = 0.0
    for name, u in weights.items():
        d = np.reshape(u, -1).astype(np.float64)
        d /= data_size
        d -= np.reshape(current[name], -1)
        total += sum_of_squares(d)
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
        model_norm = math.sqrt(sum(sum_of_squares(np.reshape(a, -1).astype(np.float64)) for a in current.values()))
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
