#!/usr/bin/env python3
"""Synchronous FedAvg vs FedAsync vs FedBuff on one population, the same budget of local trainings.

Each mode runs a ``pyflclient.Server`` and a ``Simulation`` of LeNet devices of a
``pyflclient data population`` (writer-like, non-IID, sizes spread as FEMNIST's; Debian's
Fashion-MNIST when installed, else the bundled digits) in this process, from the same
initial model, data and seed, with the same number of local trainings (``--budget`` uploads):

* ``FedAvg`` (sync): ``budget / seats`` iterations of ``--seats`` devices (a seeded sample);
* ``FedAsync``: ``budget`` versions, ``--seats`` devices training at once;
* ``FedBuff``: ``budget / K`` versions of K = ``--buffer`` uploads, ``--seats`` training at once.

With ``--device-profiles`` (default ``mobile``: issue 23's heterogeneous devices) the server runs
on the simulated clock: the synchronous iterations wait for their slowest seat in simulated
time, the asynchronous modes take the uploads in the order of their simulated arrival
(docs/async.md), and every time reported is simulated hours (``none``: wall seconds).

Every version's checkpoint is the model the job had at that moment; the benchmark evaluates
about twelve of them (and the initial model and the last) with the Java runtime and reports
their AVG: the mean over the first ``--eval-devices`` devices of each one's test accuracy (the
devices' own AVG, for every version, not only for those some device evaluated). The table has
the final AVG, the first (simulated) time at each of ``--targets``, the time at the end, the
AVG of each mode at the earliest end of the three (the same simulated budget), the wall time,
and for the asynchronous modes the staleness histogram and the devices' mean idle time (from
an upload, or the first ask, to the draw of its next seat). ``--figure`` draws AVG over time
and the staleness histograms. The load average is printed with the table (the machine is shared).

    python benchmarks/async_bench.py --clients 500 --budget 600 --seats 10 --buffer 10 --epochs 5 --lr 0.01 \
        --figure docs/img/async_bench.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyflclient.server.asynchrony import ASYNC_SERVER_MODE, FEDASYNC, FEDBUFF  # noqa: E402

SYNC = "FedAvg (sync)"


def _population(work: Path, clients: int, seed: int) -> list[Any]:
    from pyflclient.data.population import build_population

    try:
        return build_population(work / "population", clients, seed=seed)
    except FileNotFoundError:
        return build_population(work / "population", clients, source="bundled", seed=seed)


def _test_sets(clients: Sequence[Any], count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The test sets (images NCHW, labels) of the first ``count`` devices that have one."""
    from pyflclient.data.binfiles import read_split

    out = []
    for c in clients:
        if c.test_data is not None and len(out) < count:
            x, y = read_split(c.test_data, c.test_label)
            out.append((np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y))  # the bin files are NHWC, LeNet NCHW
    return out


class Evaluator:
    """AVG of a global model, as the devices report it: the mean over devices of each device's test accuracy
    (its whole batches), with the Java runtime (one session, weights set)."""

    def __init__(self, tests: Sequence[tuple[np.ndarray, np.ndarray]]):
        import jpype

        from pyflclient.client import jvm
        from pyflclient.model import LENET_TRAIN_MS

        self.jpype = jpype
        self.session = jvm.jclass("com.mindspore.flclient.runtime.TrainSession").load(
            jvm.jclass("java.nio.file.Path").of(str(LENET_TRAIN_MS)))
        batch = int(self.session.batchSize())
        self.devices = []
        for x, y in tests:
            n = len(y) // batch * batch
            if n:
                self.devices.append([(jpype.JArray(jpype.JFloat)(x[i:i + batch].ravel()),
                                      jpype.JArray(jpype.JInt)(y[i:i + batch])) for i in range(0, n, batch)])

    def accuracy(self, model: dict[str, np.ndarray]) -> float:
        for name, w in model.items():
            self.session.setWeight(name, self.jpype.JArray(self.jpype.JFloat)(np.ravel(w).astype(np.float32)))
        return float(np.mean([np.mean([float(self.session.accuracy(x, y)) for x, y in batches])
                              for batches in self.devices]))


def run_one(mode: str, clients: Sequence[Any], work: Path, evaluator: Evaluator, *, budget: int, seats: int,
            buffer: int, epochs: int, lr: float, seed: int, targets: Sequence[float], max_trainers: int,
            profiles: str | None, points: int = 12) -> dict[str, Any]:
    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server
    from pyflclient.server.checkpoint import Checkpoints

    out = Path(tempfile.mkdtemp(prefix=f"{mode.split()[0]}-", dir=work))
    models = copy_models(LENET_TRAIN_MS, len(clients), out / "ms")
    common = dict(client_epoch_num=epochs, client_batch_size=32, client_learning_rate=lr, retry_interval=200,
                  start_fl_job_time_window=600_000, update_model_time_window=600_000, checkpoint_dir=str(out / "ckpt"))
    if profiles is not None:  # the simulated clock: every time below is simulated hours
        common.update(device_profiles=profiles, device_seed=seed, device_count=len(clients))
    if mode == SYNC:
        versions = budget // seats
        settings: dict[str, Any] = dict(start_fl_job_threshold=seats, fl_iteration_num=versions)
    else:
        versions = budget // buffer if mode == FEDBUFF else budget
        settings = dict(server_mode=ASYNC_SERVER_MODE, async_aggregation=mode, fedbuff_buffer_size=buffer,
                        async_concurrency=seats, max_staleness=4 * seats, fl_iteration_num=versions)
    with Server(model=LENET_TRAIN_MS, **common, **settings) as srv:
        params = params_for_clients(clients, models, srv.url, batch_size=32)
        t0 = time.time()
        availability = {"device_profiles": profiles} if profiles is not None else {"clients_per_iteration": seats}
        Simulation(params, output_dir=out, progress=False, seed=seed, max_trainers=max_trainers, **availability,
                   **({"iterations": versions} if mode == SYNC else {})).run()
        wall = time.time() - t0
        srv.wait_finished(timeout=60)
        report = srv.async_results() if mode != SYNC else {}
    ckpt = Checkpoints(out / "ckpt")
    lines = ckpt.read_metrics()
    step = max(1, len(lines) // points)
    picked = sorted({*range(step, len(lines) + 1, step), len(lines)})
    curve = [(0, 0.0, evaluator.accuracy(ckpt_model(ckpt, 0)))]  # the initial model, at the job's start
    for v in picked:
        line = lines[v - 1]
        at = line["sim_end_h"] if profiles is not None else line["finished_at_ms"] / 1000 - t0
        curve.append((v, at, evaluator.accuracy(ckpt_model(ckpt, v))))
    reached = {target: next((t for _, t, acc in curve if acc >= target), None) for target in targets}
    staleness = report.get("staleness_histogram", {})
    idle = report.get("idle_ms", {})
    uploads = sum(int(line.get("uploaded", line.get("uploads", 0)) or 0) for line in lines)
    return {"mode": mode, "versions": len(lines), "uploads": uploads, "final_accuracy": curve[-1][2],
            "to_target": reached, "end": curve[-1][1], "wall_s": wall, "curve": curve,
            "staleness_histogram": {int(k): v for k, v in staleness.items()},
            "mean_idle_s": (sum(idle.values()) / len(idle) / 1000) if idle else None}


def ckpt_model(ckpt: Any, version: int) -> dict[str, np.ndarray]:
    """The global model of ``version`` (0: the shipped LeNet's weights)."""
    if version == 0:
        from pyflclient.model import LENET_TRAIN_MS
        from pyflclient.server.checkpoint import load_model

        return load_model(LENET_TRAIN_MS)
    model = ckpt.load(version)
    assert model is not None, f"no checkpoint of version {version}"
    return model


def at_time(curve: Sequence[tuple[int, float, float]], hours: float) -> float:
    """AVG of the newest evaluated version made at or before ``hours``."""
    return [acc for _, t, acc in curve if t <= hours + 1e-12][-1]


def figure(rows: Sequence[dict[str, Any]], path: Path, unit: str, targets: Sequence[float]) -> None:
    """AVG over time for each mode, and the asynchronous modes' staleness histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hx) = plt.subplots(1, 2, figsize=(11, 4))
    colour = {r["mode"]: f"C{i}" for i, r in enumerate(rows)}
    for r in rows:
        ax.plot([t for _, t, _ in r["curve"]], [a for _, _, a in r["curve"]], marker="o", ms=3, label=r["mode"],
                color=colour[r["mode"]])
    for target in targets:
        ax.axhline(target, color="grey", lw=0.6, ls="--")
    ax.set_xlabel(unit)
    ax.set_ylabel("AVG test accuracy of the global model")
    ax.legend()
    ax.grid(alpha=0.3)
    width = 0.4
    for i, r in enumerate(x for x in rows if x["staleness_histogram"]):
        h = r["staleness_histogram"]
        hx.bar([k + (i - 0.5) * width for k in h], list(h.values()), width=width, label=r["mode"],
               color=colour[r["mode"]])
    hx.set_xlabel("staleness τ (versions)")
    hx.set_ylabel("uploads")
    hx.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--budget", type=int, default=200, help="local trainings (uploads) per mode")
    ap.add_argument("--seats", type=int, default=10, help="sync: devices per iteration; async: async_concurrency")
    ap.add_argument("--buffer", type=int, default=10, help="FedBuff's K (fedbuff_buffer_size)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01, help="client_learning_rate")
    ap.add_argument("--max-trainers", type=int, default=2)
    ap.add_argument("--targets", default="0.5,0.6,0.7", help="AVGs whose first (simulated) time is reported")
    ap.add_argument("--eval-devices", type=int, default=100, help="AVG over the test sets of this many devices")
    ap.add_argument("--modes", default=f"{SYNC},{FEDASYNC},{FEDBUFF}")
    ap.add_argument("--device-profiles", default="mobile",
                    help="the simulated clock's device profiles (a population name or file); 'none': wall time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=None, help="write the figure here (PNG)")
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="async-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    clients = _population(work, args.clients, args.seed)
    evaluator = Evaluator(_test_sets(clients, args.eval_devices))
    profiles = None if args.device_profiles == "none" else args.device_profiles
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    for mode in args.modes.split(","):
        row = run_one(mode, clients, work, evaluator, budget=args.budget, seats=args.seats, buffer=args.buffer,
                      epochs=args.epochs, lr=args.lr, seed=args.seed, targets=targets, max_trainers=args.max_trainers,
                      profiles=profiles)
        rows.append(row)
        print(json.dumps({**row, "to_target": {str(k): v for k, v in row["to_target"].items()}}), flush=True)
    load = os.getloadavg()
    common_t = min(r["end"] for r in rows)
    unit = "simulated h" if profiles is not None else "wall s"
    print(f"\nload average {load_before[0]:.2f} at the start, {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; "
          f"{args.clients} clients, {args.budget} uploads per mode, {args.seats} seats, K={args.buffer}, "
          f"{args.epochs} epoch(s), lr {args.lr}, device_profiles {args.device_profiles}; "
          f"AVG over {len(evaluator.devices)} devices' test sets")
    print("| mode | versions | uploads | final AVG | " + "".join(f"{unit} to AVG {t} | " for t in targets) +
          f"{unit} at the end | "
          f"AVG at {common_t:.4g} {unit} | wall s | staleness (τ: uploads) | mean idle per device "
          f"({'simulated ' if profiles is not None else ''}s) |")
    print("|---" * (9 + len(targets)) + "|")
    for r in rows:
        fmt = (lambda v, p=3: "-" if v is None else f"{v:.{p}f}")
        hist = ", ".join(f"{k}: {v}" for k, v in r["staleness_histogram"].items()) or "-"
        reached = "".join(f"{fmt(r['to_target'][t], 4)} | " for t in targets)
        print(f"| {r['mode']} | {r['versions']} | {r['uploads']} | {fmt(r['final_accuracy'])} | {reached}"
              f"{fmt(r['end'], 4)} | {fmt(at_time(r['curve'], common_t))} | {r['wall_s']:.1f} | {hist} | "
              f"{fmt(r['mean_idle_s'], 1)} |")
    if args.figure:
        figure(rows, Path(args.figure), unit, targets)
    if args.json:
        Path(args.json).write_text(json.dumps([{**r, "to_target": {str(k): v for k, v in r["to_target"].items()}}
                                               for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
