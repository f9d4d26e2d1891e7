"""Reference FedAvg curve of the LeNet on the bundled clients, in MindSpore directly.

What accuracy the default demo data allows, without the Java runtime or the server:
50 bundled clients (Dirichlet 0.5, seed 0), the tutorial's LeNet5 (HeUniform default
initialisation, Momentum lr 0.01 / 0.9, batch 32), every client every round,
``--epochs`` local epochs from the global weights (momentum reset each round),
FedAvg weighted by train samples; after each round the global model is scored on
every client's own test split and AVG / TOP5 / LOW5 of those accuracies printed
(the demo's measures). Needs the mindspore extra; run from an empty folder
(MindSpore writes ``rank_0/`` into the cwd)::

    ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=/path/to/repo python /path/to/benchmarks/bundled_fedavg_reference.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # before mindspore: convs are 40x slower otherwise
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's pyflclient, installed or not

import numpy as np

from pyflclient.data import build_bundled_clients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import mindspore as ms
    from mindspore import nn

    from pyflclient.model.lenet import build_lenet5

    ms.set_seed(1)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    with tempfile.TemporaryDirectory() as d:
        clients = build_bundled_clients(d, num_clients=args.clients, alpha=args.alpha, seed=args.seed)
        data = []
        for c in clients:
            (xtr, ytr), (xte, yte) = c.load_train(), c.load_test()
            data.append((xtr.transpose(0, 3, 1, 2).copy(), ytr, xte.transpose(0, 3, 1, 2).copy(), yte))
    net = build_lenet5()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    step.set_train()
    weights = net.trainable_params()
    moments = list(opt.moments)
    global_w = [p.asnumpy().copy() for p in weights]
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for rnd in range(1, args.rounds + 1):
        acc_sum = [np.zeros_like(w) for w in global_w]
        total = 0
        for xtr, ytr, _, _ in data:
            for p, w in zip(weights, global_w):
                p.set_data(ms.Tensor(w))
            for m in moments:
                m.set_data(ms.Tensor(np.zeros(m.shape, np.float32)))
            for _ in range(args.epochs):
                order = rng.permutation(len(ytr))
                for b in range(0, len(ytr), 32):
                    idx = order[b : b + 32]
                    step(ms.Tensor(xtr[idx]), ms.Tensor(ytr[idx]))
            for a, p in zip(acc_sum, weights):
                a += p.asnumpy() * len(ytr)
            total += len(ytr)
        global_w = [a / total for a in acc_sum]
        for p, w in zip(weights, global_w):
            p.set_data(ms.Tensor(w))
        accs = []
        for _, _, xte, yte in data:
            logits = np.concatenate([net(ms.Tensor(xte[b : b + 32])).asnumpy() for b in range(0, len(yte), 32)])
            accs.append(float((logits.argmax(1) == yte).mean()))
        accs_sorted = sorted(accs)
        print(f"round {rnd:3d}  AVG {np.mean(accs):.3f}  TOP5 {np.mean(accs_sorted[-5:]):.3f}  "
              f"LOW5 {np.mean(accs_sorted[:5]):.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
