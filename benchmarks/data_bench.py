"""Wall time of the data steps: the bundled 50-client build (the demo's first step)
and LEAF FEMNIST conversion per writer (to extrapolate to the 3,500 writers).

    PYTHONPATH=. python benchmarks/data_bench.py [--writers 100]   (or after pip install)

One run each, no warm-up except where said; prints seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's pyflclient, installed or not

import numpy as np

from pyflclient.data import build_bundled_clients, convert_leaf_femnist
from pyflclient.data.bundled import _load_mnist_5k_cached


def bench_bundled(tmp: Path) -> None:
    _load_mnist_5k_cached.cache_clear()
    t = time.perf_counter()
    clients = build_bundled_clients(tmp / "bundled", num_clients=50)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    build_bundled_clients(tmp / "bundled", num_clients=50)
    warm = time.perf_counter() - t
    print(f"bundled, 50 clients ({sum(c.num_train + c.num_test for c in clients)} samples written): "
          f"{cold:.2f} s cold (csv parse included), {warm:.2f} s with the pool cached")


def bench_femnist(tmp: Path, writers: int) -> None:
    rng = np.random.default_rng(0)
    root = tmp / "leaf"
    for split, n in (("train", 204), ("test", 23)):  # FEMNIST's mean 226.83 a writer, 90/10
        (root / split).mkdir(parents=True)
        users = [f"f{i:04d}_00" for i in range(writers)]
        doc = {"users": users, "num_samples": [n] * writers,
               "user_data": {u: {"x": rng.random((n, 784)).round(6).tolist(), "y": rng.integers(0, 62, n).tolist()}
                             for u in users}}
        (root / split / f"all_data_0_niid_{split}.json").write_text(json.dumps(doc))
    t = time.perf_counter()
    convert_leaf_femnist(root, tmp / "bin", progress=False)
    dt = time.perf_counter() - t
    print(f"FEMNIST, {writers} writers of 227 samples: {dt:.2f} s ({dt / writers * 1000:.1f} ms a writer, "
          f"~{dt / writers * 3500 / 60:.1f} min for 3,500 writers)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        bench_bundled(Path(d))
        bench_femnist(Path(d), args.writers)


if __name__ == "__main__":
    main()
