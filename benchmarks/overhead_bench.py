"""Overhead of federated learning: a simulation vs. the same training steps done locally.

Both sides run in one process and one JVM, on the same data and the same `.ms`
runtime, with the same number of concurrent trainers (default: the cores):

* **local** — every client's training steps of every iteration, straight into
  ``TrainSession.trainStep`` from Python threads (data already in Java arrays):
  the floor of what the machine can do for this work;
* **simulation** — ``pyflclient.Simulation`` against the in-process server: the
  same steps plus everything FL adds (HTTP + FlatBuffers, loading and saving each
  client's model, evaluation after each iteration, FedAvg, checkpoints, waiting
  for the slowest client).

It prints both wall times and their ratio (goal ≤ 1.10). Both sides are warmed
before anything is measured (a short local run and a short simulation, so neither
pays for JIT compilation or class loading that the other already paid for), and
with ``--repeat N`` the two are measured alternately N times (local, simulation,
local, ...) so that a change in the machine's load hits both; the medians and the
median of the per-pair ratios are printed.

    python benchmarks/overhead_bench.py --clients 50 --iterations 3 --epochs 10 --repeat 3 [--threads]

``--eval_every k`` has the simulation's clients evaluate after every k-th iteration and the last
only (with k > iterations: the last only), to see the overhead without most of the evaluation,
which the local side does not do. ``--trainers 1`` on a 2-core machine leaves a core to the
server and the HTTP threads, as a machine with a core to spare beside its trainers would.

``--threads`` adds where the CPU went on each side (per thread group: the trainers, the JIT
compiler threads, Python — the in-process server's event loop included —, the HTTP client,
the engine's control threads, GC).
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's pyflclient, installed or not

import numpy as np


def stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from the text of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat file."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ThreadCpu:
    """CPU seconds per thread group of this process over a stretch of time, read from /proc (Linux):
    ``start()`` before, ``stop()`` after; threads that end in between are counted up to their last
    reading (every 0.1 s). Groups are thread names with digits removed (``fl-engine-trainer-N``,
    ``C2 CompilerThreN``, ``python`` for the Python threads, the in-process server's included)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}
        self._base: dict[str, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _read() -> dict[str, tuple[str, float]]:
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            except OSError:
                continue
            out[tid] = (stat[stat.index("(") + 1:stat.rindex(")")], stat_cpu_seconds(stat))
        return out

    def start(self) -> "ThreadCpu":
        self._base = self._read()
        self._seen = dict(self._base)
        self._stop.clear()

        def poll() -> None:
            while not self._stop.wait(0.1):
                self._seen.update(self._read())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._seen.update(self._read())
        groups: dict[str, float] = {}
        for tid, (name, cpu) in self._seen.items():
            group = re.sub(r"[-#]?\d+", "N", name)
            groups[group] = groups.get(group, 0.0) + cpu - self._base.get(tid, (name, 0.0))[1]
        return groups


def java_batches(client, batch: int):  # -> list of (float[] NCHW, int[])
    """The client's batches as the Java client makes them: a last partial batch is completed
    with samples from the start of the set, so both sides run the same number of steps."""
    import jpype

    x, y = client.load_train()
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # bin files are NHWC; the model is NCHW
    out = []
    for s in range(0, len(y), batch):
        idx = np.arange(s, s + batch) % len(y) if s + batch > len(y) else slice(s, s + batch)
        out.append((jpype.JArray(jpype.JFloat)(np.ascontiguousarray(x[idx]).ravel()),
                    jpype.JArray(jpype.JInt)(np.ascontiguousarray(y[idx]))))
    return out


def train_clients(model: Path, items: list, batches_of, epochs: int, lr: float, trainers: int) -> None:
    """`epochs` local epochs of each item's batches (`batches_of(item)`: (float[] NCHW, int[]) pairs), a
    fresh session of `model` per item, on `trainers` threads taking items from one queue."""
    from pyflclient.client import jvm

    TrainSession = jvm.jclass("com.mindspore.flclient.runtime.TrainSession")
    Paths = jvm.jclass("java.nio.file.Paths")
    work: "queue.SimpleQueue" = queue.SimpleQueue()
    for item in items:
        work.put(item)

    def worker() -> None:
        jvm.attach_current_thread()
        while True:
            try:
                mine = batches_of(work.get_nowait())
            except queue.Empty:
                return
            session = TrainSession.load(Paths.get(str(model)))
            session.setLearningRate(lr)
            for _ in range(epochs):
                for xb, yb in mine:
                    session.trainStep(xb, yb)
            session.close()

    threads = [threading.Thread(target=worker) for _ in range(trainers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def local_training(model: Path, batches: list, iterations: int, epochs: int, lr: float, trainers: int) -> float:
    """Wall time of iterations × clients × epochs × batches train steps on `trainers` threads."""
    t0 = time.perf_counter()
    for _ in range(iterations):
        train_clients(model, batches, lambda b: b, epochs, lr, trainers)
    return time.perf_counter() - t0


def simulation(root: Path, clients: list, tag: str, iterations: int, epochs: int, lr: float,
               trainers: int, eval_every: int = 1) -> tuple[float, float]:
    """Wall time of a Simulation of `clients` (fresh model copies and server); and its rounds' time."""
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.client.params import FLParameter
    from pyflclient.server import Server
    from pyflclient.client.simulation import Simulation

    models = copy_models(LENET_TRAIN_MS, len(clients), root / f"ms_{tag}")
    with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=len(clients), fl_iteration_num=iterations,
                client_epoch_num=epochs, client_batch_size=32, client_learning_rate=lr,
                start_fl_job_time_window=600_000, update_model_time_window=600_000) as srv:
        params = [FLParameter(domain_name=srv.url, train_dataset=(c.train_data, c.train_label),
                              test_dataset=(c.test_data, c.test_label), train_model_path=m)
                  for c, m in zip(clients, models)]
        sim = Simulation(params, output_dir=root / f"sim_{tag}", max_trainers=trainers, progress=False,
                         eval_every=eval_every)
        t0 = time.perf_counter()
        sim.run()
        sim_s = time.perf_counter() - t0
        assert srv.wait_finished(60), "the server did not finish"
        rounds_s = sum(m["seconds"] for m in srv.metrics())
    return sim_s, rounds_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--trainers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1, help="measure local and simulation alternately this many times")
    ap.add_argument("--warmup", type=int, default=1, help="full-size warm-up simulations before measuring")
    ap.add_argument("--eval_every", type=int, default=1,
                    help="the simulation's clients evaluate after every k-th iteration and the last (default 1: "
                         "r1.6's every iteration; the local side never evaluates)")
    ap.add_argument("--threads", action="store_true",
                    help="also print the CPU seconds of each thread group on both sides (last pair, Linux)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from pyflclient.client import jvm
    from pyflclient.data.bundled import build_bundled_clients
    from pyflclient.model import LENET_TRAIN_MS

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clients = build_bundled_clients(root / "data", num_clients=args.clients, batch_size=32, seed=0)
        jvm.start_jvm()
        batches = [java_batches(c, 32) for c in clients]
        steps = args.iterations * args.epochs * sum(len(b) for b in batches)
        # warm both paths (JIT of the kernels, class loading of the client, HTTP and server) before measuring either
        # (the simulation's warm-up is a full-size run: at 16 client-iterations C2 was still compiling the
        # client's model loading and saving during the measured runs, seconds of compiler threads)
        # C2 goes on compiling for several runs (the client's steps inline the whole training graph):
        # --warmup N full-size simulations first measures the steady state
        local_training(LENET_TRAIN_MS, batches, 1, args.epochs, args.lr, args.trainers)
        for w in range(max(1, args.warmup)):
            simulation(root, clients, f"warm{w}", 2, 1, args.lr, args.trainers)

        local, sims, rounds = [], [], []
        cpu: dict[str, dict[str, float]] = {}
        for r in range(max(1, args.repeat)):
            meter = ThreadCpu().start()
            local.append(local_training(LENET_TRAIN_MS, batches, args.iterations, args.epochs, args.lr, args.trainers))
            cpu["local"] = meter.stop()
            meter = ThreadCpu().start()
            sim_s, rounds_s = simulation(root, clients, str(r), args.iterations, args.epochs, args.lr, args.trainers,
                                         args.eval_every)
            cpu["simulation"] = meter.stop()
            sims.append(sim_s)
            rounds.append(rounds_s)

    local_s, sim_s, rounds_s = (statistics.median(v) for v in (local, sims, rounds))
    print(f"clients={args.clients} iterations={args.iterations} epochs={args.epochs} trainers={args.trainers} "
          f"train steps={steps} (batch 32) eval_every={args.eval_every}")
    if len(local) > 1:
        print("runs (local / simulation s): " + ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(local, sims)))
    median = " (median)" if len(local) > 1 else ""
    print(f"local training     : {local_s:8.2f} s  ({steps / local_s:7.1f} steps/s){median}")
    print(f"FL simulation      : {sim_s:8.2f} s  ({steps / sim_s:7.1f} steps/s){median}")
    print(f"  of which rounds  : {rounds_s:8.2f} s  (server: first admission to model published, summed)")
    ratio = statistics.median(b / a for a, b in zip(local, sims))
    print(f"overhead ratio     : {ratio:8.3f}  (simulation / local{', median of the pairs' if median else ''}; "
          f"goal <= 1.10)")
    if args.threads:
        loc, sim = cpu["local"], cpu["simulation"]
        print(f"CPU s by thread group, last pair (local {sum(loc.values()):.2f}, simulation {sum(sim.values()):.2f}; "
              f"the simulation's span includes its model copies and server start):")
        for group in sorted(set(loc) | set(sim), key=lambda g: -max(loc.get(g, 0), sim.get(g, 0))):
            if max(loc.get(group, 0), sim.get(group, 0)) >= 0.05:
                print(f"  {group:24s} local {loc.get(group, 0):7.2f}  simulation {sim.get(group, 0):7.2f}")


if __name__ == "__main__":
    main()
