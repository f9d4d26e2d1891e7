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

It prints both wall times and their ratio (goal ≤ 1.10).

    python benchmarks/overhead_bench.py --clients 50 --iterations 3 --epochs 5
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def java_batches(client, batch: int):  # -> list of (float[] NCHW, int[])
    import jpype

    x, y = client.load_train()
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # bin files are NHWC; the model is NCHW
    out = []
    for s in range(0, len(y) - len(y) % batch, batch):
        out.append((jpype.JArray(jpype.JFloat)(x[s:s + batch].ravel()), jpype.JArray(jpype.JInt)(y[s:s + batch])))
    return out


def local_training(model: Path, batches: list, iterations: int, epochs: int, lr: float, trainers: int) -> float:
    """Wall time of iterations × clients × epochs × batches train steps on `trainers` threads."""
    from pyflclient import _jvm

    TrainSession = _jvm.jclass("com.mindspore.flclient.runtime.TrainSession")
    Paths = _jvm.jclass("java.nio.file.Paths")
    t0 = time.perf_counter()
    for _ in range(iterations):
        work: "queue.SimpleQueue[list]" = queue.SimpleQueue()
        for b in batches:
            work.put(b)

        def worker() -> None:
            _jvm.attach_current_thread()
            while True:
                try:
                    mine = work.get_nowait()
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
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--trainers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from pyflclient import _jvm
    from pyflclient.data.bundled import build_bundled_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.params import FLParameter
    from pyflclient.server import Server
    from pyflclient.simulation import Simulation

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clients = build_bundled_clients(root / "data", num_clients=args.clients, batch_size=32, seed=0)
        _jvm.start_jvm()
        batches = [java_batches(c, 32) for c in clients]
        steps = args.iterations * args.epochs * sum(len(b) for b in batches)
        # warm the JIT on both paths' kernels before measuring either
        local_training(LENET_TRAIN_MS, batches[:4], 1, 1, args.lr, args.trainers)

        local_s = local_training(LENET_TRAIN_MS, batches, args.iterations, args.epochs, args.lr, args.trainers)

        models = copy_models(LENET_TRAIN_MS, args.clients, root / "ms")
        with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=args.clients, fl_iteration_num=args.iterations,
                    client_epoch_num=args.epochs, client_batch_size=32, client_learning_rate=args.lr,
                    start_fl_job_time_window=600_000, update_model_time_window=600_000) as srv:
            params = [FLParameter(domain_name=srv.url, train_dataset=(c.train_data, c.train_label),
                                  test_dataset=(c.test_data, c.test_label), train_model_path=m)
                      for c, m in zip(clients, models)]
            sim = Simulation(params, output_dir=root / "sim", max_trainers=args.trainers, progress=False)
            t0 = time.perf_counter()
            sim.run()
            sim_s = time.perf_counter() - t0
            assert srv.wait_finished(60), "the server did not finish"
            rounds_s = sum(m["seconds"] for m in srv.metrics())

    print(f"clients={args.clients} iterations={args.iterations} epochs={args.epochs} trainers={args.trainers} "
          f"train steps={steps} (batch 32)")
    print(f"local training     : {local_s:8.2f} s  ({steps / local_s:7.1f} steps/s)")
    print(f"FL simulation      : {sim_s:8.2f} s  ({steps / sim_s:7.1f} steps/s)")
    print(f"  of which rounds  : {rounds_s:8.2f} s  (server: first admission to model published, summed)")
    print(f"overhead ratio     : {sim_s / local_s:8.3f}  (simulation / local; goal <= 1.10)")


if __name__ == "__main__":
    main()
