"""A large offline population: N writer-like clients (3,500 and more) from a real image set.

FEMNIST's 3,500 writers cannot be downloaded here, but the scale can still be tried
with real images. ``build_population`` spreads a pool over N clients in the
``3500_clients_bin`` layout, with FEMNIST's spread of client sizes and a Dirichlet
label mix per client (``partition.py``):

* **Sources**: Debian's ``dataset-fashion-mnist`` (70,000 28×28 images in IDX files
  under ``/usr/share/datasets/fashion-mnist``; ``--source-dir`` for another copy) or
  the bundled 5,000 MNIST digits.
* **More samples than the pool**: when N clients × ``samples_per_client`` exceed the
  pool, the pool is replicated; every copy after the first is augmented with a seeded
  shift of up to ``max_shift`` pixels per image (a fresh shift per copy), so a client
  rarely holds the same pixels twice. Every (image, copy) lands in exactly one client.
* Sizes are whole batches, at least two per client (one train, one test), log-normal
  with FEMNIST's coefficient of variation around ``samples_per_client``.
* Images are converted client by client, so memory stays at the pool plus one client
  (the 70,000 converted images would take 860 MB).

On disk a sample is 12,288 bytes (32×32×3 float32): 3,500 clients × 128 samples ≈
5.5 GB. The result is a function of the arguments alone; the manifest (``bundled.json``,
as for the bundled set) records them and every client's rows.
"""
from __future__ import annotations

import gzip
import json
import logging
import math
import os
import struct
from pathlib import Path
from typing import Literal

import numpy as np

from .binfiles import ClientData, DataFormatError
from .bundled import MANIFEST, client_names, load_mnist_5k, prepare_out_dir, write_clients
from .images import Geometry, to_lenet_input
from .partition import FEMNIST_SIZE_CV, client_sizes, dirichlet_label_partition, label_skew

log = logging.getLogger(__name__)

Source = Literal["fashion-mnist", "bundled"]
SOURCES: tuple[str, ...] = ("fashion-mnist", "bundled")
#: where Debian's dataset-fashion-mnist package puts the IDX files
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (``.gz`` or raw) of unsigned bytes: images ``(n, rows, cols)`` or labels ``(n,)``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot read the IDX file ({exc})") from exc
    if len(data) < 8:
        raise DataFormatError(f"{path}: {len(data)} bytes is too short for an IDX file")
    magic, n = struct.unpack(">II", data[:8])
    if magic == _IDX_LABELS:
        dims, header = (n,), 8
    elif magic == _IDX_IMAGES:
        if len(data) < 16:
            raise DataFormatError(f"{path}: an IDX image file needs a 16-byte header")
        rows, cols = struct.unpack(">II", data[8:16])
        dims, header = (n, rows, cols), 16
    else:
        raise DataFormatError(f"{path}: magic number {magic:#010x} is not an IDX file of unsigned bytes "
                              f"(expected {_IDX_IMAGES:#010x} for images or {_IDX_LABELS:#010x} for labels)")
    expected = header + math.prod(dims)
    if len(data) != expected:
        raise DataFormatError(f"{path}: {len(data)} bytes, the header announces {expected} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder / stem}(.gz) not found: install Debian's dataset-fashion-mnist "
                            f"(apt-get install dataset-fashion-mnist) or give --source-dir")


def load_fashion_mnist(folder: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (n, 28, 28) uint8, labels (n,) int32) of the train and test files together (70,000)."""
    folder = Path(folder) if folder is not None else FASHION_MNIST_DIR
    pixels, labels = [], []
    for images_stem, labels_stem in FASHION_MNIST_FILES:
        x = read_idx(_idx_file(folder, images_stem))
        y = read_idx(_idx_file(folder, labels_stem))
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataFormatError(f"{folder}: {images_stem} holds {x.shape}, {labels_stem} {y.shape}; "
                                  f"expected n images and n labels")
        pixels.append(x)
        labels.append(y.astype(np.int32))
    return np.concatenate(pixels), np.concatenate(labels)


def _shifted(gray: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each image moved by its (dy, dx), the uncovered border filled with the background 0."""
    out = np.zeros_like(gray)
    h, w = gray.shape[1:]
    for dy, dx in {(int(a), int(b)) for a, b in shifts}:
        sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        src = gray[sel][:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        out[sel, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] = src
    return out


def build_population(
    out_dir: str | os.PathLike[str],
    num_clients: int,
    source: Source = "fashion-mnist",
    source_dir: str | os.PathLike[str] | None = None,
    samples_per_client: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    alpha: float = 0.5,
    test_fraction: float = 0.2,
    size_cv: float = FEMNIST_SIZE_CV,
    max_shift: int = 2,
    geometry: Geometry = "resize",
    progress: bool = False,
) -> list[ClientData]:
    """Write ``num_clients`` non-IID clients of about ``samples_per_client`` samples each.

    ``out_dir`` is created, or emptied of an earlier build (recognised by its manifest);
    any other non-empty folder is refused.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if num_clients < 1:
        raise ValueError(f"the number of clients must be >= 1, got {num_clients}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if samples_per_client < 2 * batch_size:
        raise ValueError(f"samples_per_client must be at least two batches ({2 * batch_size}): one train and "
                         f"one test batch per client; got {samples_per_client}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= max_shift < 14:
        raise ValueError(f"max_shift must be between 0 and 13 pixels, got {max_shift}")
    pixels, labels = load_fashion_mnist(source_dir) if source == "fashion-mnist" else load_mnist_5k()
    pool = labels.shape[0]
    rng = np.random.default_rng(seed)
    batches = client_sizes(num_clients * (samples_per_client // batch_size), num_clients, 2, size_cv, rng)
    sizes = batches * batch_size
    copies = max(1, math.ceil(int(sizes.sum()) / pool))
    if copies > 1 and max_shift == 0:
        log.warning("%d clients x %d samples need %d copies of the %d-image pool and max_shift is 0: "
                    "clients will hold identical images", num_clients, samples_per_client, copies, pool)
    # copy r of image i is row r * pool + i; copy 0 is the image itself
    shifts = rng.integers(-max_shift, max_shift + 1, size=(copies, pool, 2))
    shifts[0] = 0
    all_labels = np.tile(labels, copies)
    # the clients' rows are a seeded draw of sizes.sum() distinct (image, copy) rows
    used = rng.permutation(copies * pool)[: int(sizes.sum())]
    parts = [used[p] for p in dirichlet_label_partition(all_labels[used], sizes, alpha, rng)]

    def images_of(rows_: np.ndarray) -> np.ndarray:
        base, copy = rows_ % pool, rows_ // pool
        gray = pixels[base].astype(np.float32) / np.float32(255.0)
        moved = copy > 0
        if moved.any():
            gray[moved] = _shifted(gray[moved], shifts[copy[moved], base[moved]])
        return to_lenet_input(gray, geometry=geometry, background=0.0)

    out = Path(out_dir)
    prepare_out_dir(out)
    names = client_names(num_clients)
    clients, records = write_clients(out, names, parts, all_labels, images_of, batch_size, test_fraction, rng,
                                     progress=progress)
    skew = label_skew([all_labels[p] for p in parts])
    manifest = {
        "complete": True,
        "source": source if source == "bundled" else f"fashion-mnist ({source_dir or FASHION_MNIST_DIR})",
        "pool": pool, "copies": copies, "max_shift": max_shift,
        "num_clients": num_clients, "samples_per_client": samples_per_client, "batch_size": batch_size,
        "seed": seed, "alpha": alpha, "test_fraction": test_fraction, "size_cv": size_cv, "geometry": geometry,
        "label_skew": skew.as_dict(), "clients": records,
    }
    (out / MANIFEST).write_text(json.dumps(manifest))
    log.info("population: %d clients in %s from %s (%d copies of %d images), %d train + %d test samples, "
             "label TV distance %.3f", num_clients, out, source, copies, pool, sum(c.num_train for c in clients),
             sum(c.num_test for c in clients), skew.mean_tv_distance)
    return clients

