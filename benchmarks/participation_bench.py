#!/usr/bin/env python3
"""How often each device takes part, under admission_policy first_come (r1.6) and sample.

Starts a ``pyflclient.Server`` in this process with a tiny model (participation does
not depend on the model) and drives it with protocol-level devices
(``pyflclient.server.device.DeviceClient``, one thread each, no training): every
iteration all devices ask startFLJob at once, the admitted ones upload a fixed update,
and the next iteration begins when the server has published. Reported per policy:
participations per device (min / median / max / mean), devices never admitted, and
how many askers each draw saw (all of them, unless some asked after the window).

    python benchmarks/participation_bench.py --devices 500 --threshold 50 --iterations 100

With ``--simulation`` the devices are real simulated clients instead (``Simulation``:
the Java engine, LeNet, one local epoch on 64 bundled digits each) against a
first-come server, in the engine's two modes: every device asks (a refused one asks
again as soon as the next model is out), and ``clients_per_iteration = threshold``
(seeded availability).

    python benchmarks/participation_bench.py --simulation --devices 500 --threshold 50 --iterations 100
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyflclient.server import Server  # noqa: E402
from pyflclient.server.device import DeviceClient  # noqa: E402
from pyflclient.wire.protocol import ResponseCode  # noqa: E402

MODEL = {"fc.weight": np.zeros((4, 3), np.float32), "fc.bias": np.zeros(4, np.float32)}


def run(policy: str, devices: int, threshold: int, iterations: int, window_ms: int, seed: int) -> dict[str, object]:
    counts: Counter[str] = Counter()
    late = 0  # askers that missed the window: refused as after a draw
    with Server(MODEL, start_fl_job_threshold=threshold, fl_iteration_num=iterations, admission_policy=policy,
                admission_window_ms=window_ms, admission_seed=seed) as srv, \
            ThreadPoolExecutor(devices) as pool:
        clients = [DeviceClient(srv.url, fl_id=f"device-{i:03d}", data_size=1) for i in range(devices)]
        t0 = time.perf_counter()
        for it in range(1, iterations + 1):
            replies = list(pool.map(lambda d: d.start_fl_job(), clients))
            admitted = [d for d, r in zip(clients, replies) if r.retcode == ResponseCode.SUCCEED]
            assert len(admitted) == threshold, (it, len(admitted))
            late += sum(policy == "sample" and r.retcode != ResponseCode.SUCCEED and "not drawn" not in r.reason
                        for r in replies)
            for d in admitted:
                counts[d.fl_id] += 1
            list(pool.map(lambda d: d.update_model(it, MODEL), admitted))
            if not srv.wait_iteration(it, timeout=60):
                raise SystemExit(f"iteration {it} did not finish")
        seconds = time.perf_counter() - t0
        for d in clients:
            d.close()
    per_device = np.array([counts[f"device-{i:03d}"] for i in range(devices)])
    return {"min": int(per_device.min()), "median": float(np.median(per_device)), "max": int(per_device.max()),
            "mean": float(per_device.mean()), "never": int((per_device == 0).sum()), "late": late,
            "seconds": seconds}


def run_simulation(mode: str, devices: int, threshold: int, iterations: int, seed: int) -> dict[str, object]:
    import tempfile

    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.data.population import build_population
    from pyflclient.model import LENET_TRAIN_MS

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_population(root / "data", devices, source="bundled", samples_per_client=64, size_cv=0.0,
                                seed=seed)
        models = copy_models(LENET_TRAIN_MS, devices, root / "ms")
        with Server(LENET_TRAIN_MS, start_fl_job_threshold=threshold, fl_iteration_num=iterations,
                    client_epoch_num=1, start_fl_job_time_window=600_000, update_model_time_window=600_000) as srv:
            sim = Simulation(params_for_clients(data, models, srv.url), output_dir=root / "sim", progress=False,
                             clients_per_iteration=threshold if mode == "availability" else None, seed=seed)
            t0 = time.perf_counter()
            results = sim.run()
            seconds = time.perf_counter() - t0
    per_device = np.array([results.participation.get(f"client_{i}", 0) for i in range(devices)])
    return {"min": int(per_device.min()), "median": float(np.median(per_device)), "max": int(per_device.max()),
            "mean": float(per_device.mean()), "never": int((per_device == 0).sum()), "late": 0,
            "seconds": seconds, "statuses": sorted(set(results.status.values()))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--threshold", type=int, default=50, help="start_fl_job_threshold")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--window-ms", type=int, default=1500, help="admission_window_ms (sample)")
    ap.add_argument("--seed", type=int, default=0, help="admission_seed (sample)")
    ap.add_argument("--policy", choices=("first_come", "sample", "both"), default="both")
    ap.add_argument("--simulation", action="store_true",
                    help="simulated Java clients (first-come server): every device asks vs seeded availability")
    args = ap.parse_args()
    # every device holds a connection, and so does the server, in this one process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * args.devices + 100:
        raise SystemExit(f"open-file limit {hard} is too low for {args.devices} devices; raise ulimit -n")
    print(f"{args.devices} devices, start_fl_job_threshold {args.threshold}, {args.iterations} iterations "
          f"(expected mean {args.iterations * args.threshold / args.devices:g}); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.simulation:
        for mode in ("everyone asks", "availability"):
            r = run_simulation(mode, args.devices, args.threshold, args.iterations, args.seed)
            print(f"{mode:>14}: participations per device min {r['min']}, median {r['median']:g}, max {r['max']}, "
                  f"mean {r['mean']:.2f}; never admitted {r['never']}; statuses {r['statuses']}; "
                  f"{r['seconds']:.0f} s", flush=True)
        return 0
    for policy in (("first_come", "sample") if args.policy == "both" else (args.policy,)):
        r = run(policy, args.devices, args.threshold, args.iterations, args.window_ms, args.seed)
        print(f"{policy:>10}: participations per device min {r['min']}, median {r['median']:g}, max {r['max']}, "
              f"mean {r['mean']:.2f}; never admitted {r['never']}; askers after the window {r['late']}; "
              f"{r['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
