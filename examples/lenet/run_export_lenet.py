#!/usr/bin/env python3
"""Export the LeNet5 train graph as MindIR: the first step of "generating a device model file".

    python examples/lenet/run_export_lenet.py --mindir_path ms/lenet/lenet_train.mindir
    pyflclient convert --fmk=MINDIR --trainModel=true \\
        --modelFile=ms/lenet/lenet_train.mindir --outputFile=ms/lenet/lenet_train

Needs the mindspore extra (pip install 'pyflclient[mindspore]'). The network is
LeNet5 (3×32×32 → num_class) with MindSpore's default HeUniform initialisation, in
TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits(sparse=True,
reduction="mean")), Momentum(lr=0.01, momentum=0.9)).
"""
from __future__ import annotations

import argparse
import logging
import sys

from pyflclient.model._mindspore import MindSporeMissingError
from pyflclient.model.export import export_lenet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mindir_path", default="ms/lenet/lenet_train.mindir",
                        help="MindIR file to write (default: %(default)s)")
    parser.add_argument("--num_class", type=int, default=62, help="number of classes (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=32,
                        help="batch size baked into the graph; the devices train in batches of it (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the initial weights (default: MindSpore's, i.e. not reproducible)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = export_lenet(args.mindir_path, num_class=args.num_class, batch_size=args.batch_size, seed=args.seed)
    except MindSporeMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
