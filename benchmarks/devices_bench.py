#!/usr/bin/env python3
"""Devices as they are: uniform vs heterogeneous profiles, with and without over-commitment, on the simulated clock.

A ``pyflclient.Server`` in this process runs its windows on the simulated clock
(``device_profiles``); a ``Simulation`` of real Java clients (LeNet, Debian's Fashion-MNIST by
default, ``--samples`` per client, non-IID) trains. Four runs: a **uniform** population (``median``:
every device the median ``mobile`` phone — 13.6 ms a sample, 20 Mbit/s down, 5 Mbit/s up, 60 ms
latency — always online; ``uniform``, the free population of today's behaviour, where no simulated
time passes, can be asked for with ``--runs``) and the heterogeneous **mobile** one
(docs/devices.md), each with ``--seats`` seats and ``update_model_ratio`` 1, and over-committed
(admit ``ceil(seats × (1 + o))``, the first ``seats`` uploads end the iteration). Reported per run:
simulated hours to the target AVG, simulated hours in all, devices cut per iteration (late + gone
offline), devices offline per iteration (they do not ask), distinct participants, wall time, wall
seconds per simulated hour; then the ratios side by side (over-committed / not, mobile / median) and
a figure of AVG against simulated hours (``--figure``).

    python benchmarks/devices_bench.py                       # 500 devices, 50 seats, 30 iterations
    python benchmarks/devices_bench.py --iterations 10       # shorter
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyflclient.client.simulation import Simulation, params_for_clients  # noqa: E402
from pyflclient.client.timeline import read_metrics, save_timeline, time_to_accuracy, timeline  # noqa: E402
from pyflclient.data.copymodels import copy_models  # noqa: E402
from pyflclient.data.population import build_population  # noqa: E402
from pyflclient.model import LENET_TRAIN_MS  # noqa: E402
from pyflclient.server import Server  # noqa: E402


#: the uniform population of the comparison: every device the median phone of ``mobile`` (docs/devices.md)
MEDIAN_PHONE = {"ms_per_sample": 13.6, "download_kbps": 20_000, "upload_kbps": 5_000, "latency_ms": 60}


def run(root: Path, data, profiles: str, seats: int, overcommit: float, args) -> dict[str, object]:
    threshold = math.ceil(seats * (1 + overcommit))
    ratio = 1.0 if overcommit == 0 else (seats - 0.25) / threshold  # ceil(threshold × ratio) = seats
    tag = f"{profiles}{'+oc' if overcommit else ''}"
    spec = profiles
    if profiles == "median":
        spec = str(root / "median.json")
        Path(spec).write_text(json.dumps({"devices": {}, "default": MEDIAN_PHONE}))
    models = copy_models(LENET_TRAIN_MS, len(data), root / tag / "ms")
    ckpt = root / tag / "ckpt"
    t0 = time.perf_counter()
    with Server(LENET_TRAIN_MS, start_fl_job_threshold=threshold, update_model_ratio=ratio,
                fl_iteration_num=args.iterations, client_epoch_num=args.epochs,
                client_learning_rate=args.lr,
                start_fl_job_time_window=args.start_window_s * 1000, update_model_time_window=args.update_window_s * 1000,
                checkpoint_dir=str(ckpt), device_profiles=spec, device_seed=args.seed,
                device_count=len(data)) as srv:
        sim = Simulation(params_for_clients(data, models, srv.url), output_dir=root / tag / "sim", progress=False,
                         seed=args.seed, max_trainers=args.trainers, eval_fraction=args.eval_fraction,
                         device_profiles=spec)
        results = sim.run()
        srv.wait_finished(timeout=60)
    wall = time.perf_counter() - t0
    metrics = read_metrics(ckpt / "metrics.jsonl")
    rows = timeline(metrics, results.summary())
    save_timeline(rows, Path(args.out) / tag, args.target)
    hours = rows[-1]["sim_end_h"] if rows else 0.0
    cut = [m["late"] for m in metrics]
    return {"run": tag, "threshold": threshold, "needed": math.ceil(threshold * ratio), "hours_to_target": time_to_accuracy(rows, args.target), "sim_hours": hours,
            "cut_per_iteration": sum(cut) / max(1, len(cut)), "offline_per_iteration":
                sum(m["offline"] for m in metrics) / max(1, len(metrics)),
            "valid": sum(bool(m["valid"]) for m in metrics), "iterations": len(metrics),
            "distinct": sum(1 for v in results.participation.values() if v > 0),
            "final_avg": rows[-1]["avg"] if rows else None, "wall_s": wall, "rows": rows,
            "wall_s_per_sim_hour": wall / hours if hours else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--seats", type=int, default=50, help="uploads an iteration needs")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01, help="client_learning_rate")
    ap.add_argument("--samples", type=int, default=128, help="training samples per device")
    ap.add_argument("--source", default="fashion-mnist", help="the population's images: fashion-mnist or bundled")
    ap.add_argument("--overcommit", type=float, default=0.3)
    ap.add_argument("--start-window-s", type=int, default=300)
    ap.add_argument("--update-window-s", type=int, default=600)
    ap.add_argument("--target", type=float, default=0.5, help="AVG test accuracy for time-to-accuracy")
    ap.add_argument("--trainers", type=int, default=2)
    ap.add_argument("--eval-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="median,median+oc,mobile,mobile+oc")
    ap.add_argument("--figure", default=None, help="write AVG against simulated hours of every run here (PNG)")
    ap.add_argument("--out", default="devices-bench")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{args.devices} devices, {args.seats} seats, {args.iterations} iterations × {args.epochs} epoch(s), "
          f"{args.samples} samples each; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_population(root / "data", args.devices, source=args.source, samples_per_client=args.samples,
                                size_cv=0.5, seed=args.seed)
        for name in args.runs.split(","):
            profiles, _, oc = name.partition("+")
            r = run(root, data, profiles, args.seats, args.overcommit if oc else 0.0, args)
            out.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "rows"}), flush=True)
    print(f"\n| run | admitted / needed | valid | simulated h | h to AVG {args.target} | cut / iteration | "
          f"offline / iteration | distinct | final AVG | wall s | wall s per simulated h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        def f(x, spec):
            return "—" if x is None else format(x, spec)
        print(f"| {r['run']} | {r['threshold']} / {args.seats} | {r['valid']}/{r['iterations']} | "
              f"{f(r['sim_hours'], '.3f')} | {f(r['hours_to_target'], '.3f')} | {r['cut_per_iteration']:.1f} | "
              f"{r['offline_per_iteration']:.0f} | {r['distinct']} | {f(r['final_avg'], '.3f')} | {r['wall_s']:.0f} | "
              f"{f(r['wall_s_per_sim_hour'], '.0f')} |")
    print_ratios(out)
    if args.figure:
        figure(out, args.figure, args.target)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def _ratio(a, b) -> str:  # type: ignore[no-untyped-def]
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def print_ratios(out: list[dict[str, object]]) -> None:
    """Over-committed / not for each population, and mobile / median for each admission rule."""
    by = {r["run"]: r for r in out}
    pairs = [(f"{p}+oc / {p}", f"{p}+oc", p) for p in ("median", "uniform", "mobile")]
    pairs += [(f"mobile{o} / median{o}", f"mobile{o}", f"median{o}") for o in ("", "+oc")]
    rows = [(label, by[a], by[b]) for label, a, b in pairs if a in by and b in by]
    if not rows:
        return
    print("\n| ratio | h to target | simulated h | cut / iteration | distinct | wall s | wall s per simulated h |")
    print("|---|---|---|---|---|---|---|")
    for label, a, b in rows:
        print(f"| {label} | {_ratio(a['hours_to_target'], b['hours_to_target'])} | "
              f"{_ratio(a['sim_hours'], b['sim_hours'])} | {_ratio(a['cut_per_iteration'], b['cut_per_iteration'])} | "
              f"{_ratio(a['distinct'], b['distinct'])} | {_ratio(a['wall_s'], b['wall_s'])} | "
              f"{_ratio(a['wall_s_per_sim_hour'], b['wall_s_per_sim_hour'])} |")


def figure(out: list[dict[str, object]], path: str, target: float) -> None:
    """AVG against simulated hours (left) and against iterations (right), one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in out:
        pts = [(row["sim_end_h"], row["iteration"], row["avg"]) for row in r["rows"]  # type: ignore[union-attr]
               if row.get("avg") is not None and row.get("sim_end_h") is not None]
        ax.plot([p[0] for p in pts], [p[2] for p in pts], marker=".", label=str(r["run"]))
        ax2.plot([p[1] for p in pts], [p[2] for p in pts], marker=".", label=str(r["run"]))
    for a in (ax, ax2):
        a.axhline(target, color="grey", linestyle=":", label=f"target {target}")
        a.set_ylabel("AVG test accuracy")
        a.legend(fontsize=8)
    ax.set_xlabel("simulated hours")
    ax2.set_xlabel("iteration")
    fig.suptitle("devices_bench: uniform (median phone) vs mobile, with and without over-commitment")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    sys.exit(main())
