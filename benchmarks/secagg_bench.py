"""What PW_ENCRYPT costs per iteration: Java clients (LeNet, 66,404 weights) against the loopback server,
NOT_ENCRYPT and PW_ENCRYPT side by side at each population size.

    python benchmarks/secagg_bench.py --clients 8,50,500 [--iterations 2] [--out /tmp/secagg]
    python benchmarks/secagg_bench.py --clients "" --device-costs 8,50,500,3500

``--device-costs`` times the O(n) parts of one device and of the server at n devices per iteration,
without a simulation: the device's shareSecrets (n X25519 agreements and seals, two Shamir splits of
degree t − 1 = n/2 at n points) and its masking (n agreements and n AES-CTR mask streams of the model's
size), through the jar's classes; the server's Lagrange coefficients (once: every secret comes back from the same
devices), the combination of one secret and one mask stream (it does n + dropouts and n + n·dropouts). Multiply by n for the iteration's total.

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
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's pyflclient, installed or not

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
    shutil.rmtree(folder, ignore_errors=True)  # a fresh job, not a resume of the last run's checkpoints
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


def device_costs(n: int, weights: int = 66_404) -> dict[str, float]:
    """Seconds of one device's shareSecrets and masking, and of the server's work per device, at n devices."""
    from pyflclient.client import jvm

    jvm.start_jvm()
    import jpype

    from pyflclient.wire import secagg

    keys = jpype.JClass("com.mindspore.flclient.cipher.X25519Keys")
    masker_class = jpype.JClass("com.mindspore.flclient.cipher.PairwiseMasker")
    prg = jpype.JClass("com.mindspore.flclient.cipher.MaskPrg")
    tree = jpype.JClass("java.util.TreeMap")()
    me = masker_class("d00000", 1, jpype.JClass("java.security.SecureRandom")())
    tree.put("d00000", jpype.JArray(jpype.JArray(jpype.JByte))([me.cPublicKey(), me.sPublicKey()]))
    peers = [keys.generate() for _ in range(n - 1)]
    for i, k in enumerate(peers):
        tree.put(f"d{i + 1:05d}", jpype.JArray(jpype.JArray(jpype.JByte))([k.publicKey, k.publicKey]))
    me.setPeers(tree)
    into = jpype.JArray(jpype.JLong)(weights)
    own = keys.generate()
    share = mask = float("inf")
    for _ in range(3):  # the least of three: the machine is shared, the work is not
        t0 = time.perf_counter()
        me.shares(n // 2 + 1)
        share = min(share, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for k in peers:
            prg.addMask(keys.agree(own.privateKey, k.publicKey), "pyflclient/pw-mask", 1, 1, into)
        mask = min(mask, time.perf_counter() - t0)
    t = n // 2 + 1
    points = secagg.split(secrets_int := 12345, t, list(range(1, n + 1)))
    chosen = dict(list(points.items())[:t])
    t0 = time.perf_counter()
    lam = secagg.lagrange_at_zero(chosen)  # once per iteration: every secret comes back from the same devices
    coefficients = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert secagg.combine(chosen, lam) == secrets_int
    combine = time.perf_counter() - t0
    t0 = time.perf_counter()
    secagg.prg(bytes(32), "pyflclient/self-mask", 1, weights)
    stream = time.perf_counter() - t0
    return {"devices": n, "device_share_secrets_s": round(share, 3), "device_mask_s": round(mask, 3),
            "server_lagrange_coefficients_once_s": round(coefficients, 4),
            "server_combine_one_secret_s": round(combine, 5), "server_one_mask_stream_s": round(stream, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device-costs", default="", help="comma-separated device counts (see the docstring)")
    ap.add_argument("--clients", default="8,50,500")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/secagg"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.device_costs:
        device_costs(200)  # warm-up: the JIT compiles AES-CTR, XDH and BigInteger paths (the first run is 3-6x slower)
    for n in (int(x) for x in args.device_costs.split(",") if x):
        print(json.dumps(device_costs(n)), flush=True)
    rows = []
    if args.clients:
        run(8, "NOT_ENCRYPT", 1, args.out / "warmup")  # JVM start and JIT: not in the first measured run
    for n in (int(x) for x in args.clients.split(",") if x):
        per = {}
        for encrypt in ("NOT_ENCRYPT", "PW_ENCRYPT"):
            per[encrypt] = run(n, encrypt, args.iterations, args.out)
            print(json.dumps({"clients": n, "encrypt_type": encrypt, "s_per_iteration": round(per[encrypt][0], 2),
                              "wall_s": round(per[encrypt][1], 1),
                              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)
        plain, masked = per["NOT_ENCRYPT"][0], per["PW_ENCRYPT"][0]
        rows.append(f"| {n} | {plain:.1f} s | {masked:.1f} s | {masked / plain:.1f}x |")
    if rows:
        print("\n| clients | NOT_ENCRYPT s/iteration | PW_ENCRYPT s/iteration | ratio |\n|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
