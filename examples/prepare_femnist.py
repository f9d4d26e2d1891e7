"""FEMNIST (LEAF json) → the 3500_clients_bin layout, from Python.

Run LEAF's ``./preprocess.sh -s niid --sf 1.0 -k 0 -t sample`` in
``leaf/data/femnist`` first; then

    python examples/prepare_femnist.py leaf/data/femnist/data data/femnist/3500_clients_bin

(the same as ``pyflclient data femnist --leaf-dir ... --out ...``).
"""
from __future__ import annotations

import argparse
import logging

from pyflclient.data.femnist import convert_leaf_femnist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("leaf_dir", help="LEAF's femnist/data (holding train/ and test/)")
    ap.add_argument("out_dir", help="output root, one folder per writer")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    writers = convert_leaf_femnist(args.leaf_dir, args.out_dir, batch_size=args.batch_size)
    print(f"{len(writers)} writers with train and test data in {args.out_dir}: "
          f"{sum(w.num_train for w in writers)} train, {sum(w.num_test for w in writers)} test samples")


if __name__ == "__main__":
    main()
