"""Results on the simulated clock: per iteration its simulated start and end, who took part, and accuracy.

The server writes each iteration's simulated fields into ``metrics.jsonl`` (``sim_start_h``,
``sim_end_h``, ``admitted``, ``finished``, ``late``, ``dropped``, ``offline``, ``refused``: see
:meth:`pyflclient.clock.IterationPlan.summary`); a :class:`~.results.SimulationResults` holds the
devices' accuracy per iteration. :func:`timeline` joins the two, :func:`time_to_accuracy` reads the
simulated hours at which AVG first reaches a target, :func:`save_timeline` writes ``timeline.json``
and ``accuracy_vs_time.png`` (accuracy against simulated hours, beside the seed's accuracy against
iterations).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .results import IterationSummary

__all__ = ["timeline", "time_to_accuracy", "save_timeline", "read_metrics"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The server's ``metrics.jsonl`` (one JSON object per finished iteration)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def timeline(metrics: Iterable[Mapping[str, Any]], summary: Sequence[IterationSummary]) -> list[dict[str, Any]]:
    """One row per iteration the server finished: its simulated fields and the devices' AVG/TOP5/LOW5
    (None where no device evaluated that iteration)."""
    acc = {s.iteration: s for s in summary}
    rows = []
    for m in metrics:
        s = acc.get(int(m["iteration"]))
        rows.append({**{k: m.get(k) for k in ("iteration", "sim_start_h", "sim_end_h", "admitted", "finished", "late",
                                               "dropped", "offline", "refused", "valid", "seconds")},
                     "avg": None if s is None else s.avg, "top5": None if s is None else s.top5,
                     "low5": None if s is None else s.low5})
    return rows


def time_to_accuracy(rows: Sequence[Mapping[str, Any]], target: float) -> float | None:
    """The simulated hours at the end of the first iteration whose AVG reached ``target`` (None: never)."""
    for r in rows:
        avg, end = r.get("avg"), r.get("sim_end_h")
        if avg is not None and end is not None and not math.isnan(avg) and avg >= target:
            return float(end)
    return None


def save_timeline(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, target: float | None = None,
                  plot: bool = True) -> dict[str, Path]:
    """``timeline.json`` (rows and, with ``target``, the time to it) and ``accuracy_vs_time.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"iterations": list(rows)}
    if target is not None:
        doc["target_avg"] = target
        doc["hours_to_target"] = time_to_accuracy(rows, target)
    files = {"timeline": out / "timeline.json"}
    files["timeline"].write_text(json.dumps(doc, indent=1))
    points = [(r["sim_end_h"], r["avg"]) for r in rows if r.get("avg") is not None and r.get("sim_end_h") is not None]
    if plot and points:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="AVG")
        if target is not None:
            ax.axhline(target, color="grey", linestyle=":", label=f"target {target}")
        ax.set_xlabel("simulated hours")
        ax.set_ylabel("test accuracy")
        ax.set_title("Test accuracy over simulated time")
        ax.legend()
        fig.tight_layout()
        files["accuracy_vs_time"] = out / "accuracy_vs_time.png"
        fig.savefig(files["accuracy_vs_time"])
        plt.close(fig)
    return files
