#!/usr/bin/env python3
"""Update compression on the same jobs, one table: bytes per client-iteration, final accuracy, time.

For each codec setting and each job, a ``pyflclient.Server`` with those ``upload_compress_type`` /
``upload_sparse_rate`` / ``download_compress_type`` serves a ``Simulation`` of LeNet Java devices in this
process, from the same initial model, data and seed (docs/compression.md):

* ``NO_COMPRESS``: r1.6's wire, float32 both ways;
* ``DSQ 0.4`` / ``DSQ 0.1``: DIFF_SPARSE_QUANT uploads at that rate, QUANT downloads;
* ``DSQ_EF 0.1``: the same with error feedback (the residual beside each device's model).

Jobs: ``bundled``, the bundled digits over 50 devices, all in every iteration (the demo's job), and
``population``, 500 writer-like devices (``pyflclient data population``), 50 per iteration.

Reported per setting and job: the bytes each device counted (request and reply bodies), up and down,
per client-iteration (mean over the iterations) and their ratio to NO_COMPRESS; final AVG / LOW5 test
accuracy and its difference to NO_COMPRESS; seconds per iteration. The machine's load average is
printed with the table. ``--figure`` draws every run of a job on one figure (``pyflclient plot``'s
two panels: accuracy per iteration and per cumulative MB).

    python benchmarks/compression_bench.py --jobs bundled,population --iterations 20 --epochs 5 --figure docs/img/compression.png
    python benchmarks/compression_bench.py --jobs bundled --clients 10 --iterations 3 --epochs 1   # a short check
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

from pyflclient.wire.compression import table  # noqa: E402

_UP = {c.name: c for c in table().upload.values()}
_DOWN = list(table().download)
#: label -> server settings; the rows of schema/compression.json, no name typed twice
SETTINGS: dict[str, dict[str, Any]] = {
    _DOWN[0]: {},
    "DSQ 0.4": {"upload_compress_type": list(_UP)[1], "upload_sparse_rate": 0.4, "download_compress_type": _DOWN[1]},
    "DSQ 0.1": {"upload_compress_type": list(_UP)[1], "upload_sparse_rate": 0.1, "download_compress_type": _DOWN[1]},
    "DSQ_EF 0.1": {"upload_compress_type": list(_UP)[2], "upload_sparse_rate": 0.1, "download_compress_type": _DOWN[1]},
}


def _data(job: str, work: Path, seed: int, clients: int | None) -> tuple[list[Any], int]:
    """(clients, seats per iteration) of a job, built once under ``work``."""
    if job == "bundled":
        from pyflclient.data.bundled import build_bundled_clients

        n = clients or 50
        return build_bundled_clients(work / "bundled", num_clients=n, seed=seed), n
    if job == "population":
        from pyflclient.data.population import build_population

        n = clients or 500
        try:
            built = build_population(work / "population", n, seed=seed)
        except FileNotFoundError:
            built = build_population(work / "population", n, source="bundled", seed=seed)
        return built, max(1, n // 10)
    raise SystemExit(f"--jobs: unknown job {job!r}; known: bundled, population")


def run_one(label: str, clients: Sequence[Any], seats: int, work: Path, *, iterations: int, epochs: int,
            seed: int) -> tuple[dict[str, Any], Any, Path]:
    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server

    out = Path(tempfile.mkdtemp(prefix=label.replace(" ", "_") + "-", dir=work))
    models = copy_models(LENET_TRAIN_MS, len(clients), out / "ms")
    with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=seats, fl_iteration_num=iterations,
                client_epoch_num=epochs, client_batch_size=32, client_learning_rate=0.01,
                start_fl_job_time_window=600_000, update_model_time_window=600_000, **SETTINGS[label]) as srv:
        params = params_for_clients(clients, models, srv.url, batch_size=32)
        per_iteration = seats if seats < len(clients) else None
        t0 = time.perf_counter()
        results = Simulation(params, output_dir=out, progress=False, iterations=iterations, seed=seed,
                             clients_per_iteration=per_iteration).run()
        wall = time.perf_counter() - t0
        srv.wait_finished(timeout=60)
    results.save(out, plot=False)
    traffic = results.traffic_rows()
    rows = results.summary()
    last = rows[-1] if rows else None
    mean = (lambda key: sum(t[key] for t in traffic) / len(traffic) if traffic else None)
    return ({"setting": label, "iterations": len(rows), "avg": last.avg if last else None,
             "low5": last.low5 if last else None, "up": mean("bytes_up_per_client"),
             "down": mean("bytes_down_per_client"), "s_per_iteration": wall / iterations}, results, out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default=",".join(SETTINGS), help="codec settings, comma-separated")
    ap.add_argument("--jobs", default="bundled,population", help="bundled and/or population")
    ap.add_argument("--clients", type=int, default=None, help="devices per job (default: 50 / 500)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="folder for data and runs (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the unreported 1-iteration run that warms the JVM up before the first setting")
    ap.add_argument("--figure", default=None, help="a PNG per job with every setting's curves (JOB is inserted "
                                                   "before the suffix when there are several jobs)")
    args = ap.parse_args(argv)
    labels = [s for s in args.settings.split(",") if s]
    unknown = sorted(set(labels) - set(SETTINGS))
    if unknown:
        ap.error(f"--settings: unknown {unknown}; known: {', '.join(SETTINGS)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="compression-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs = [j for j in args.jobs.split(",") if j]
    rows = []
    for job in jobs:
        clients, seats = _data(job, work, args.seed, args.clients)
        if not args.no_warmup:  # the JIT compiles the client's hot loops once: not the first setting's cost
            run_one(labels[0], clients, seats, work / job, iterations=1, epochs=1, seed=args.seed)
        runs = []
        for label in labels:
            row, results, _ = run_one(label, clients, seats, work / job, iterations=args.iterations,
                                      epochs=args.epochs, seed=args.seed)
            row["job"] = job
            rows.append(row)
            runs.append((label, results))
            print(json.dumps(row), flush=True)
        if args.figure:
            from pyflclient.client.results import plot_runs

            path = Path(args.figure)
            if len(jobs) > 1:
                path = path.with_name(f"{path.stem}-{job}{path.suffix}")
            plot_runs(runs, path, title=f"AVG test accuracy, {job} ({len(clients)} devices, {seats} per iteration)")
            print(f"figure: {path}")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.iterations} iterations x "
          f"{args.epochs} epochs")
    print("| job | setting | KB up / client-iteration | x smaller | KB down / client-iteration | x smaller | "
          "final AVG | vs uncompressed | LOW5 | s/iteration |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fmt = (lambda v, d=4: "-" if v is None else f"{v:.{d}f}")
    for r in rows:
        base = next((b for b in rows if b["job"] == r["job"] and b["setting"] == labels[0]), r)
        ratio = (lambda key: "-" if not r[key] or not base[key] else f"{base[key] / r[key]:.1f}")
        diff = None if r["avg"] is None or base["avg"] is None else r["avg"] - base["avg"]
        print(f"| {r['job']} | {r['setting']} | {fmt(r['up'] and r['up'] / 1e3, 1)} | {ratio('up')} | "
              f"{fmt(r['down'] and r['down'] / 1e3, 1)} | {ratio('down')} | {fmt(r['avg'])} | "
              f"{'-' if diff is None else f'{diff:+.4f}'} | {fmt(r['low5'])} | {r['s_per_iteration']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
