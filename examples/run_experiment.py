"""The 50-client FedAvg experiment from Python: data, server, simulated devices, figure.

What ``pyflclient demo`` does, spelled out with the library's pieces so you can
change any of them (your own data folder, model, server settings, callbacks):

    python examples/run_experiment.py                                   # bundled digits, 50 clients
    python examples/run_experiment.py --data data/femnist/3500_clients_bin --clients 100
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pyflclient as fl
from pyflclient.data import build_bundled_clients, copy_models, discover_clients
from pyflclient.model import LENET_TRAIN_MS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a 3500_clients_bin-style folder (default: build the bundled set)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("out/experiment"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    clients = (discover_clients(args.data)[: args.clients] if args.data
               else build_bundled_clients(args.out / "data", num_clients=args.clients))
    models = copy_models(LENET_TRAIN_MS, len(clients), args.out / "ms")

    with fl.Server(model=LENET_TRAIN_MS, start_fl_job_threshold=len(clients), fl_iteration_num=args.iterations,
                   client_epoch_num=args.epochs, client_batch_size=32, client_learning_rate=0.01,
                   start_fl_job_time_window=600_000, update_model_time_window=600_000,
                   checkpoint_dir=args.out / "ckpt") as server:
        params = fl.params_for_clients(clients, models, server.url)
        sim = fl.Simulation(params, output_dir=args.out, iterations=args.iterations,
                            on_round=lambda s: print(f"iteration {s.iteration}: AVG {s.avg:.3f}"))
        results = sim.run()
    for kind, path in results.save(args.out).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
