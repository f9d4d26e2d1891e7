"""DP_ENCRYPT's price in accuracy: the demo's final AVG test accuracy for several dp_eps.

    python benchmarks/dp_sweep.py --out /tmp/dpsweep [--clients 50 --iterations 30 --epochs 10]

Runs ``pyflclient demo`` (the same data, model and seed) once per epsilon with DP_ENCRYPT
(dp_delta 0.01, dp_norm_clip 1.0; inf = clipping only) and once with NOT_ENCRYPT, and prints a
markdown table: epsilon, σ of the Gaussian mechanism, final AVG / LOW5, wall time. docs/benchmarks.md
quotes it.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's pyflclient, installed or not


def main() -> None:
    from pyflclient.client.results import SimulationResults
    from pyflclient.demo import run_demo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dpsweep"))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eps", default="plain,inf,100,50,10,1", help="comma-separated; 'plain' = NOT_ENCRYPT")
    ap.add_argument("--delta", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=1.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for eps in args.eps.split(","):
        settings = {} if eps == "plain" else {"encrypt_type": "DP_ENCRYPT", "dp_eps": float(eps),
                                              "dp_delta": args.delta, "dp_norm_clip": args.clip}
        t0 = time.perf_counter()
        run_demo(args.out / f"eps_{eps}", clients=args.clients, iterations=args.iterations,
                           epochs=args.epochs, progress=False, server_settings=settings)
        wall = time.perf_counter() - t0
        sigma = 0.0 if eps in ("plain", "inf") else args.clip * math.sqrt(2 * math.log(1.25 / args.delta)) / float(eps)
        last = SimulationResults.load_json(args.out / f"eps_{eps}" / "results.json").summary()[-1]
        row = (eps, f"{sigma:.4g}", f"{last.avg:.4f}", f"{last.low5:.4f}", f"{wall:.0f} s")
        rows.append(row)
        print("| " + " | ".join(row) + " |", flush=True)
    print("\n| dp_eps | σ | final AVG | final LOW5 | wall |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
