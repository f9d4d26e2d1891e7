"""What a simulation measured: per iteration, per client, test accuracy and training loss.

The seed judged a run by three curves over iterations, computed from the
clients' evaluation accuracy after each global model: AVG (mean over clients),
TOP5 (mean of the 5 best clients) and LOW5 (mean of the 5 worst). This module
collects the numbers as the clients report them (from Java threads, so every
``record_*`` is thread safe), summarises them, and writes ``results.json``,
``results.csv`` and the figure.
"""
from __future__ import annotations

import csv
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

TOP_K = 5


@dataclass(frozen=True)
class IterationSummary:
    """AVG / TOP5 / LOW5 test accuracy (and mean loss) over the clients that reported an iteration."""

    iteration: int
    clients: int
    avg: float
    top5: float
    low5: float
    avg_loss: float


def summarize(values: Sequence[float], k: int = TOP_K) -> tuple[float, float, float]:
    """(mean, mean of the k largest, mean of the k smallest); with fewer than k values all are used."""
    if not values:
        return (math.nan, math.nan, math.nan)
    ordered = sorted(values)
    k = min(k, len(ordered))
    return (sum(ordered) / len(ordered), sum(ordered[-k:]) / k, sum(ordered[:k]) / k)


class SimulationResults:
    """Per-iteration, per-client accuracy and loss, filled while clients run.

    ``accuracy[iteration][client]`` is the client's test accuracy with the
    global model of that iteration; ``loss[iteration][client]`` is the average
    training loss of its last local epoch in that iteration; ``epoch_losses``
    keeps every epoch's.
    """

    def __init__(self, clients: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self.clients: list[str] = list(clients)
        self.accuracy: dict[int, dict[str, float]] = {}
        self.loss: dict[int, dict[str, float]] = {}
        self.epoch_losses: dict[int, dict[str, list[float]]] = {}
        self.status: dict[str, str] = {}
        self.participation: dict[str, int] = {}

    # -- recording (called from client threads) -----------------------------------
    def record_loss(self, client: str, iteration: int, epoch: int, loss: float) -> None:
        with self._lock:
            self.epoch_losses.setdefault(iteration, {}).setdefault(client, []).append(float(loss))
            self.loss.setdefault(iteration, {})[client] = float(loss)

    def record_accuracy(self, client: str, iteration: int, accuracy: float) -> None:
        with self._lock:
            self.accuracy.setdefault(iteration, {})[client] = float(accuracy)

    def record_status(self, client: str, status: str) -> None:
        with self._lock:
            self.status[client] = status

    def record_participation(self, client: str, iterations: int) -> None:
        with self._lock:
            self.participation[client] = int(iterations)

    def participants(self) -> tuple[int, int]:
        """(clients that took part in at least one iteration, clients that took part in none)."""
        with self._lock:
            took_part = sum(1 for c in self.clients if self.participation.get(c, 0) > 0)
            return took_part, len(self.clients) - took_part

    # -- reading --------------------------------------------------------------------
    @property
    def iterations(self) -> list[int]:
        with self._lock:
            return sorted(set(self.accuracy) | set(self.loss))

    def summary(self) -> list[IterationSummary]:
        """One :class:`IterationSummary` per iteration that at least one client evaluated, in order.

        An iteration that was trained but never evaluated (the run failed or was stopped
        before its global model came back) has no AVG to show; its losses stay in
        :attr:`loss` and in ``results.json``.
        """
        rows = []
        with self._lock:
            for it in sorted(it for it, accs in self.accuracy.items() if accs):
                accs = list(self.accuracy.get(it, {}).values())
                losses = list(self.loss.get(it, {}).values())
                avg, top, low = summarize(accs)
                avg_loss = sum(losses) / len(losses) if losses else math.nan
                rows.append(IterationSummary(it, len(accs), avg, top, low, avg_loss))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the summary curve and every per-client number."""
        summary = self.summary()
        with self._lock:
            return {
                "clients": list(self.clients),
                "summary": [s.__dict__ for s in summary],
                "accuracy": {str(it): dict(v) for it, v in sorted(self.accuracy.items())},
                "loss": {str(it): dict(v) for it, v in sorted(self.loss.items())},
                "epoch_losses": {str(it): {c: list(l) for c, l in v.items()}
                                 for it, v in sorted(self.epoch_losses.items())},
                "status": dict(self.status),
                "participation": dict(self.participation),
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimulationResults":
        res = cls(data.get("clients", []))
        res.accuracy = {int(it): {c: float(a) for c, a in v.items()} for it, v in data.get("accuracy", {}).items()}
        res.loss = {int(it): {c: float(a) for c, a in v.items()} for it, v in data.get("loss", {}).items()}
        res.epoch_losses = {int(it): {c: [float(x) for x in l] for c, l in v.items()}
                            for it, v in data.get("epoch_losses", {}).items()}
        res.status = dict(data.get("status", {}))
        res.participation = {c: int(n) for c, n in data.get("participation", {}).items()}
        return res

    # -- files ----------------------------------------------------------------------
    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=1) + "\n")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> "SimulationResults":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def save_csv(self, path: str | Path) -> Path:
        """One row per iteration: the summary, then each client's accuracy (``acc_<client>``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        with self._lock:
            clients = list(self.clients) or sorted({c for v in self.accuracy.values() for c in v})
            accuracy = {it: dict(v) for it, v in self.accuracy.items()}
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["iteration", "clients", "avg_accuracy", "top5_accuracy", "low5_accuracy",
                             "avg_loss"] + [f"acc_{c}" for c in clients])
            for s in summary:
                per = accuracy.get(s.iteration, {})
                writer.writerow([s.iteration, s.clients, _fmt(s.avg), _fmt(s.top5), _fmt(s.low5),
                                 _fmt(s.avg_loss)] + [_fmt(per.get(c, math.nan)) for c in clients])
        return path

    def plot(self, path: str | Path, title: str = "Test accuracy over iterations") -> Path:
        """The seed's figure: AVG, TOP5 and LOW5 test accuracy over iterations, as a PNG."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        rows = [s for s in self.summary() if s.clients > 0]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        its = [s.iteration for s in rows]
        ax.plot(its, [s.avg for s in rows], label="AVG", color="tab:blue")
        ax.plot(its, [s.top5 for s in rows], label="TOP5", color="tab:green")
        ax.plot(its, [s.low5 for s in rows], label="LOW5", color="tab:red")
        ax.set_xlabel("iteration")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0.0, 1.0)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def save(self, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
        """Write ``results.json``, ``results.csv`` and (with ``plot``) ``accuracy.png`` into ``out_dir``."""
        out = Path(out_dir)
        files = {"json": self.save_json(out / "results.json"), "csv": self.save_csv(out / "results.csv")}
        if plot:
            files["png"] = self.plot(out / "accuracy.png")
        return files


def _fmt(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.6f}"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj
