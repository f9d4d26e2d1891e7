"""What PW_ENCRYPT costs per iteration: Java clients (LeNet, 66,404 weights) against the loopback server,
NOT_ENCRYPT and PW_ENCRYPT side by side at each population size.

    python benchmarks/secagg_bench.py --clients 8,50,500 [--iterations 2] [--out /tmp/secagg]

Every client takes part in every iteration (start_fl_job_threshold = clients), 64 bundled digits each
(two batches of 32), one local epoch, 2 trainers. The per-iteration time is the server's (metrics.jsonl:
first admission to publication), averaged over the iterations; the run's wall time and peak RSS of this
process (server + JVM) are printed too. PW_ENCRYPT's windows are opened wide (cipher_time_window 20 min):
at 500 clients the key phases alone take minutes on two cores. docs/benchmarks.md quotes the table.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

WINDOW_MS = 20 * 60 * 1000


def run(n: int, encrypt: str, iterations: int, out: Path) -> tuple[float, float]:
    import pyflclient as fl
    from pyflclient.data import copy_models
    from pyflclient.data.population import build_population
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server

    data = out / f"data{n}"
    if not data.exists():
        build_population(data, n, source="bundled", samples_per_client=80, size_cv=0.0, seed=0)
    from pyflclient.data.binfiles import discover_clients

    clients = discover_clients(data)[:n]
    folder = out / f"{encrypt}_{n}"
    models = copy_models(LENET_TRAIN_MS, n, folder / "ms")
    t0 = time.perf_counter()
    with Server(LENET_TRAIN_MS, start_fl_job_threshold=n, fl_iteration_num=iterations, client_epoch_num=1,
                encrypt_type=encrypt, start_fl_job_time_window=WINDOW_MS, update_model_time_window=WINDOW_MS,
                cipher_time_window=WINDOW_MS, checkpoint_dir=folder / "ckpt") as srv:
        params = fl.params_for_clients(clients, models, srv.url, batch_size=32, sleep_time_ms=200)
        results = fl.Simulation(params, output_dir=folder / "run", max_trainers=2, progress=False).run()
        assert srv.wait_finished(timeout=120)
        assert set(results.status.values()) == {"SUCCESS"}, set(results.status.values())
        metrics = srv.metrics()
    wall = time.perf_counter() - t0
    assert all(m["valid"] and m["uploaded"] == n for m in metrics), metrics
    return sum(m["seconds"] for m in metrics) / len(metrics), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="8,50,500")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/secagg"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for n in (int(x) for x in args.clients.split(",")):
        per = {}
        for encrypt in ("NOT_ENCRYPT", "PW_ENCRYPT"):
            per[encrypt] = run(n, encrypt, args.iterations, args.out)
            print(json.dumps({"clients": n, "encrypt_type": encrypt, "s_per_iteration": round(per[encrypt][0], 2),
                              "wall_s": round(per[encrypt][1], 1),
                              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)
        plain, masked = per["NOT_ENCRYPT"][0], per["PW_ENCRYPT"][0]
        rows.append(f"| {n} | {plain:.1f} s | {masked:.1f} s | {masked / plain:.1f}x |")
    print("\n| clients | NOT_ENCRYPT s/iteration | PW_ENCRYPT s/iteration | ratio |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
