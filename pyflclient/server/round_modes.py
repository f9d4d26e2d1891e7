"""The encrypt types of the server, by name: uploads in the clear, differential privacy, pairwise masking.

Each class is one row of ``schema/round_plugins.json``'s ``encrypt_types`` (the seam is
:mod:`pyflclient.server.round_modes_base`); PW_ENCRYPT's mode lives with its cipher rounds in
:mod:`pyflclient.server.secure_aggregation`. :func:`round_mode` picks the configured one.
"""
from __future__ import annotations

from typing import Any

from pyflclient.server.round_modes_base import RoundHost, RoundMode
from pyflclient.server.secure_aggregation import PairwiseMode
from pyflclient.wire.plugins import table

__all__ = ["PlainUploads", "DifferentialPrivacy", "MODES", "round_mode"]


class PlainUploads(RoundMode):
    """Uploads in the clear: the round's own rules, nothing else (r1.6's default)."""

    NAME = "NOT_ENCRYPT"


class DifferentialPrivacy(RoundMode):
    """Each device clips its update to ``dp_norm_clip`` and adds Gaussian noise of (``dp_eps``, ``dp_delta``)
    before it uploads (docs/secure-aggregation.md); the server tells it the three in the plan and
    aggregates the noised uploads as they come."""

    NAME = "DP_ENCRYPT"

    def plan_fields(self) -> dict[str, Any]:
        cfg = self.config
        return {"dp_eps": cfg.dp_eps, "dp_delta": cfg.dp_delta, "dp_norm_clip": cfg.dp_norm_clip}


#: encrypt type name → its mode
MODES: dict[str, type[RoundMode]] = {cls.NAME: cls for cls in (PlainUploads, DifferentialPrivacy, PairwiseMode)}
if set(MODES) != set(table().encrypt):  # pragma: no cover - a row without a mode, or a mode without a row
    raise ImportError(f"encrypt types {sorted(table().encrypt)} of round_plugins.json vs modes {sorted(MODES)}")


def round_mode(host: RoundHost) -> RoundMode:
    """The mode of ``host.config.encrypt_type`` (checked against the table by the configuration)."""
    return MODES[host.config.encrypt_type](host)
