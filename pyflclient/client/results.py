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
    #: body bytes the clients sent / received in this iteration (see :meth:`SimulationResults.record_traffic`)
    bytes_up: int = 0
    bytes_down: int = 0
    #: over the clients that exchanged bytes in this iteration
    bytes_up_per_client: float = math.nan
    bytes_down_per_client: float = math.nan
    #: up + down, every iteration through this one
    cumulative_bytes: int = 0


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
        #: ``traffic[iteration][client] = [bytes up, bytes down]`` (request and reply bodies)
        self.traffic: dict[int, dict[str, list[int]]] = {}
        self._traffic_iteration: dict[str, int] = {}  # the iteration each client is in
        self._traffic_pending: dict[str, list[int]] = {}  # its startFLJob bytes until it is admitted

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

    def record_traffic(self, client: str, round_name: str, bytes_up: int, bytes_down: int) -> None:
        """One exchange of ``client``. Its bytes count for the iteration the client is in; a startFLJob's
        (answered or not) for the iteration the client is admitted to next."""
        with self._lock:
            if round_name == "startFLJob" or client not in self._traffic_iteration:
                row = self._traffic_pending.setdefault(client, [0, 0])
            else:
                row = self.traffic.setdefault(self._traffic_iteration[client], {}).setdefault(client, [0, 0])
            row[0] += int(bytes_up)
            row[1] += int(bytes_down)

    def record_admitted(self, client: str, iteration: int) -> None:
        """``client`` is in ``iteration`` from now on (its pending startFLJob bytes go there)."""
        with self._lock:
            self._traffic_iteration[client] = iteration
            pending = self._traffic_pending.pop(client, None)
            if pending is not None:
                row = self.traffic.setdefault(iteration, {}).setdefault(client, [0, 0])
                row[0] += pending[0]
                row[1] += pending[1]

    def traffic_rows(self) -> list[dict[str, Any]]:
        """Per iteration with traffic: bytes up/down, mean per client, cumulative (up + down, and each)."""
        rows, cum_up, cum_down = [], 0, 0
        with self._lock:
            for it in sorted(self.traffic):
                per = self.traffic[it]
                up, down = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
                cum_up += up
                cum_down += down
                rows.append({"iteration": it, "clients": len(per), "bytes_up": up, "bytes_down": down,
                             "bytes_up_per_client": up / len(per), "bytes_down_per_client": down / len(per),
                             "cumulative_bytes_up": cum_up, "cumulative_bytes_down": cum_down,
                             "cumulative_bytes": cum_up + cum_down})
        return rows

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
        traffic = {r["iteration"]: r for r in self.traffic_rows()}
        cumulative = 0
        with self._lock:
            for it in sorted(it for it, accs in self.accuracy.items() if accs):
                accs = list(self.accuracy.get(it, {}).values())
                losses = list(self.loss.get(it, {}).values())
                avg, top, low = summarize(accs)
                avg_loss = sum(losses) / len(losses) if losses else math.nan
                t = traffic.get(it)
                cumulative = max([cumulative] + [r["cumulative_bytes"] for i, r in traffic.items() if i <= it])
                rows.append(IterationSummary(it, len(accs), avg, top, low, avg_loss,
                                             t["bytes_up"] if t else 0, t["bytes_down"] if t else 0,
                                             t["bytes_up_per_client"] if t else math.nan,
                                             t["bytes_down_per_client"] if t else math.nan, cumulative))
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
                "traffic": {str(it): {c: list(v) for c, v in per.items()} for it, per in sorted(self.traffic.items())},
                # startFLJob exchanges that admitted the client to no iteration (e.g. after the job finished)
                "traffic_not_admitted": {c: list(v) for c, v in self._traffic_pending.items()},
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
        res.traffic = {int(it): {c: [int(v[0]), int(v[1])] for c, v in per.items()}
                       for it, per in data.get("traffic", {}).items()}
        res._traffic_pending = {c: [int(v[0]), int(v[1])] for c, v in data.get("traffic_not_admitted", {}).items()}
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
                             "avg_loss", "bytes_up", "bytes_down", "bytes_up_per_client", "bytes_down_per_client",
                             "cumulative_bytes"] + [f"acc_{c}" for c in clients])
            for s in summary:
                per = accuracy.get(s.iteration, {})
                writer.writerow([s.iteration, s.clients, _fmt(s.avg), _fmt(s.top5), _fmt(s.low5),
                                 _fmt(s.avg_loss), s.bytes_up, s.bytes_down, _fmt(s.bytes_up_per_client, 1),
                                 _fmt(s.bytes_down_per_client, 1), s.cumulative_bytes]
                                + [_fmt(per.get(c, math.nan)) for c in clients])
        return path

    def plot(self, path: str | Path, title: str = "Test accuracy over iterations") -> Path:
        """The seed's figure: AVG, TOP5 and LOW5 test accuracy over iterations, as a PNG; with traffic
        recorded, a second panel: the same curves against the cumulative MB communicated (up + down)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        rows = [s for s in self.summary() if s.clients > 0]
        with_bytes = any(s.cumulative_bytes for s in rows)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(1, 2 if with_bytes else 1, figsize=(12 if with_bytes else 7, 4.5), squeeze=False)
        panels = [(axes[0][0], [s.iteration for s in rows], "iteration")]
        if with_bytes:
            panels.append((axes[0][1], [s.cumulative_bytes / 1e6 for s in rows], "cumulative MB communicated"))
        for ax, xs, label in panels:
            ax.plot(xs, [s.avg for s in rows], label="AVG", color="tab:blue")
            ax.plot(xs, [s.top5 for s in rows], label="TOP5", color="tab:green")
            ax.plot(xs, [s.low5 for s in rows], label="LOW5", color="tab:red")
            _axes(ax, label)
        axes[0][0].set_title(title)
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


def _axes(ax: Any, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")


def plot_runs(runs: Sequence[tuple[str, "SimulationResults"]], path: str | Path,
              title: str = "AVG test accuracy") -> Path:
    """Several runs on one figure (``pyflclient plot RUN_A RUN_B ...``): each run's AVG accuracy against
    the iteration (left) and against the cumulative MB its clients communicated, up + down (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, res in runs:
        rows = [s for s in res.summary() if s.clients > 0]
        line, = left.plot([s.iteration for s in rows], [s.avg for s in rows], label=label)
        if any(s.cumulative_bytes for s in rows):
            right.plot([s.cumulative_bytes / 1e6 for s in rows], [s.avg for s in rows], label=label,
                       color=line.get_color())
    _axes(left, "iteration")
    _axes(right, "cumulative MB communicated (up + down)")
    left.set_title(title)
    right.set_title("accuracy per MB")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(x: float, digits: int = 6) -> str:
    return "" if math.isnan(x) else f"{x:.{digits}f}"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj
