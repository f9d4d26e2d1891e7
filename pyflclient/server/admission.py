"""The draw of ``admission_policy=sample``: which of the devices that asked get an iteration's seats.

r1.6 admits the first ``start_fl_job_threshold`` devices to ask, so with more devices
than seats the same fastest ones win every iteration. With ``sample`` the server holds
the startFLJob requests of an admission window and then draws. The draw is a
uniformly random permutation of the askers' fl_ids **sorted**, from a generator seeded
with ``(admission_seed, iteration)``; the first ``start_fl_job_threshold`` of it are
admitted (the rest only if one of those cannot take its seat). So each asker has the
same chance ``threshold / askers``, and the same devices asking in any order, at any
speed, get the same picks: a job is reproducible from its seed.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["draw_order"]


def draw_order(seed: int, iteration: int, fl_ids: Iterable[str]) -> list[str]:
    """The distinct ``fl_ids`` in the order of iteration ``iteration``'s draw under ``seed``."""
    askers = sorted(set(fl_ids))
    rng = np.random.default_rng([seed, iteration])
    return [askers[i] for i in rng.permutation(len(askers))]
