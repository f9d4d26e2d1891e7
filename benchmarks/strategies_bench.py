#!/usr/bin/env python3
"""Every aggregation type on the same jobs, one table: final accuracy, iterations to a target, time.

For each aggregation type of ``schema/round_plugins.json`` (the refused FedMeta aside) and each
job, a ``pyflclient.Server`` with that ``aggregation_type`` (its table defaults, or the
overrides below) serves a ``Simulation`` of LeNet devices in this process, from the same
initial model, data and seed:

* ``bundled``: the bundled digits over 50 devices, every one in every iteration (the demo's job);
* ``population``: a ``pyflclient data population`` of 500 writer-like devices (Debian's
  Fashion-MNIST when installed, else the bundled digits), 50 per iteration
  (``clients_per_iteration``: a seeded uniform sample).

Reported per type and job: final AVG / TOP5 / LOW5 test accuracy over the evaluated devices,
the first iteration whose AVG reaches ``--target`` (``-`` if none), and seconds per
iteration (wall time of the simulation / iterations). The machine's load average is printed
with the table, as every timing here depends on it.

    python benchmarks/strategies_bench.py --jobs bundled,population --iterations 20 --epochs 5
    python benchmarks/strategies_bench.py --types FedAvg,FedAdam --jobs bundled --iterations 10
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyflclient.wire.plugins import table  # noqa: E402

#: per-type settings that differ from the table's defaults in this benchmark (documented in the table's notes)
OVERRIDES: dict[str, dict[str, float]] = {
    "Krum": {"krum_keep": 45},  # Multi-Krum, m = n - f of 50 seats: plain Krum keeps one non-IID device's model
}


def _data(job: str, work: Path, seed: int) -> tuple[list[Any], int]:
    """(clients, seats per iteration) of a job, built once under ``work``."""
    if job == "bundled":
        from pyflclient.data.bundled import build_bundled_clients

        return build_bundled_clients(work / "bundled", num_clients=50, seed=seed), 50
    if job == "population":
        from pyflclient.data.population import build_population

        try:
            clients = build_population(work / "population", 500, seed=seed)
        except FileNotFoundError:
            clients = build_population(work / "population", 500, source="bundled", seed=seed)
        return clients, 50
    raise SystemExit(f"--jobs: unknown job {job!r}; known: bundled, population")


def run_one(aggregation_type: str, clients: Sequence[Any], seats: int, work: Path, *, iterations: int, epochs: int,
            seed: int, target: float, settings: dict[str, float]) -> dict[str, Any]:
    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server

    out = Path(tempfile.mkdtemp(prefix=f"{aggregation_type}-", dir=work))
    models = copy_models(LENET_TRAIN_MS, len(clients), out / "ms")
    with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=seats, fl_iteration_num=iterations,
                client_epoch_num=epochs, client_batch_size=32, client_learning_rate=0.01,
                start_fl_job_time_window=600_000, update_model_time_window=600_000,
                aggregation_type=aggregation_type, **settings) as srv:
        params = params_for_clients(clients, models, srv.url, batch_size=32)
        per_iteration = seats if seats < len(clients) else None
        t0 = time.perf_counter()
        results = Simulation(params, output_dir=out, progress=False, iterations=iterations, seed=seed,
                             clients_per_iteration=per_iteration).run()
        wall = time.perf_counter() - t0
        srv.wait_finished(timeout=60)
    rows = results.summary()
    reached = next((r.iteration for r in rows if r.avg >= target), None)
    last = rows[-1] if rows else None
    return {"type": aggregation_type, "iterations": len(rows), "avg": last.avg if last else None,
            "top5": last.top5 if last else None, "low5": last.low5 if last else None, "reached": reached,
            "s_per_iteration": wall / iterations, "settings": settings}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [a.name for a in table().aggregation.values() if a.refused is None]
    ap.add_argument("--types", default=",".join(names), help="aggregation types, comma-separated")
    ap.add_argument("--jobs", default="bundled,population", help="bundled and/or population")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.8, help="AVG accuracy whose first iteration is reported")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="folder for data and runs (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    types = [t for t in args.types.split(",") if t]
    unknown = sorted(set(types) - set(names))
    if unknown:
        ap.error(f"--types: unknown or refused {unknown}; known: {', '.join(names)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="strategies-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for job in args.jobs.split(","):
        clients, seats = _data(job, work, args.seed)
        for name in types:
            row = run_one(name, clients, seats, work / job, iterations=args.iterations, epochs=args.epochs,
                          seed=args.seed, target=args.target, settings=OVERRIDES.get(name, {}))
            row["job"] = job
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.iterations} iterations x "
          f"{args.epochs} epochs, target AVG {args.target}")
    print("| job | aggregation_type | final AVG | TOP5 | LOW5 | first iteration at target | s/iteration |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = (lambda v: "-" if v is None else f"{v:.4f}")
        print(f"| {r['job']} | {r['type']}{' ' + str(r['settings']) if r['settings'] else ''} | {fmt(r['avg'])} | "
              f"{fmt(r['top5'])} | {fmt(r['low5'])} | {r['reached'] or '-'} | {r['s_per_iteration']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
