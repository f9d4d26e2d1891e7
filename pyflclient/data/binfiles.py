"""The client bin-file layout of the published ``3500_clients_bin`` archive.

This module owns the on-disk contract between data preparation (Python) and
the device case jar (Java): one folder per client (a FEMNIST writer such as
``f0000_14``) holding four raw little-endian files::

    <user>_bn_<batches>_train_data.bin   float32, NHWC (N, 32, 32, 3), in [0, 1]
    <user>_bn_<batches>_train_label.bin  int32, (N,)
    <user>_bn_<batches>_test_data.bin
    <user>_bn_<batches>_test_label.bin

``bn`` is the *number of batches* in the file, not the batch size: MindSpore
r1.6's ``img2bin`` batched every split by 32 with ``drop_remainder=True`` and
wrote ``bn_<batch_num>`` (so ``f0000_14_bn_9_train_data.bin`` holds 9 × 32 =
288 images). The batch size is therefore ``N / bn``; it is not in the name.
Files carry no header, so a reader can only check sizes; it does so and says
which file is wrong and why.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SHAPE: tuple[int, int, int] = (32, 32, 3)
"""Height, width, channels of one sample in a data file (NHWC)."""
SAMPLE_FLOATS: int = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
DATA_DTYPE = np.dtype("<f4")
LABEL_DTYPE = np.dtype("<i4")
SPLITS: tuple[str, str] = ("train", "test")

BIN_NAME = re.compile(r"^(?P<user>.+)_bn_(?P<bn>\d+)_(?P<split>train|test)_(?P<kind>data|label)\.bin$")
"""Matches every file of the layout; ``user`` is greedy so user ids may contain ``_``."""


class DataFormatError(ValueError):
    """A data file or folder does not have the layout or content this project needs."""


def bin_name(user: str, num_batches: int, split: str, kind: str) -> str:
    """File name of one split/kind of a client, e.g. ``f0000_14_bn_9_train_data.bin``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if kind not in ("data", "label"):
        raise ValueError(f"kind must be 'data' or 'label', got {kind!r}")
    return f"{user}_bn_{num_batches}_{split}_{kind}.bin"


@dataclasses.dataclass(frozen=True)
class ClientData:
    """The files of one client (device) and how many samples each split holds.

    ``train_dataset`` / ``test_dataset`` give the comma-joined ``data,label``
    form that the seed's ``FLParameter.setTrainDataset`` and ``run_client_x86.py``
    take. ``test_*`` are ``None`` only for clients discovered without a test
    split (``discover_clients(..., require_test=False)``).
    """

    name: str
    train_data: Path
    train_label: Path
    test_data: Path | None
    test_label: Path | None
    num_train: int
    num_test: int

    @property
    def folder(self) -> Path:
        return self.train_data.parent

    @property
    def train_dataset(self) -> str:
        return f"{self.train_data},{self.train_label}"

    @property
    def test_dataset(self) -> str | None:
        if self.test_data is None or self.test_label is None:
            return None
        return f"{self.test_data},{self.test_label}"

    def load_train(self) -> tuple[np.ndarray, np.ndarray]:
        """(images (N,32,32,3) float32, labels (N,) int32) of the train split."""
        return read_split(self.train_data, self.train_label)

    def load_test(self) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the test split; raises if the client has none."""
        if self.test_data is None or self.test_label is None:
            raise DataFormatError(f"client {self.name!r} in {self.folder} has no test split")
        return read_split(self.test_data, self.test_label)


def write_split(
    folder: str | os.PathLike[str],
    user: str,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
) -> tuple[Path, Path]:
    """Write one split of one client; returns (data path, label path).

    The caller decides how counts became a multiple of ``batch_size`` (drop or
    repeat); this function refuses anything else, because the device runtime
    trains and infers in whole batches of the exported graph's static batch.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataFormatError(f"images of {user}/{split} must be (N, 32, 32, 3), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataFormatError(
            f"labels of {user}/{split} must be ({images.shape[0]},) to match the images, got {labels.shape}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = images.shape[0]
    if n % batch_size:
        raise DataFormatError(f"{user}/{split} has {n} samples, not a multiple of the batch size {batch_size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bn = n // batch_size
    data_path = folder / bin_name(user, bn, split, "data")
    label_path = folder / bin_name(user, bn, split, "label")
    np.ascontiguousarray(images, dtype=DATA_DTYPE).tofile(data_path)
    np.ascontiguousarray(labels, dtype=LABEL_DTYPE).tofile(label_path)
    return data_path, label_path


def _count_samples(data_path: Path, label_path: Path) -> int:
    """Sample count of a data/label pair, checked from file sizes alone (no read)."""
    label_bytes = label_path.stat().st_size
    data_bytes = data_path.stat().st_size
    if label_bytes % LABEL_DTYPE.itemsize:
        raise DataFormatError(
            f"{label_path} has {label_bytes} bytes, not a whole number of int32 labels; "
            "the file is truncated or not a label file"
        )
    n = label_bytes // LABEL_DTYPE.itemsize
    expected = n * SAMPLE_FLOATS * DATA_DTYPE.itemsize
    if data_bytes != expected:
        raise DataFormatError(
            f"{data_path} has {data_bytes} bytes but its label file {label_path.name} holds {n} labels, "
            f"which needs {expected} bytes of float32 (N, 32, 32, 3) images; "
            "the pair is truncated, mismatched, or not in this layout (regenerate it)"
        )
    m = BIN_NAME.match(data_path.name)
    if m is not None:
        bn = int(m["bn"])
        if (bn == 0) != (n == 0) or (bn and n % bn):
            raise DataFormatError(
                f"{data_path.name} says {bn} batches but holds {n} samples, which is not a whole number of batches"
            )
    return n


def read_split(data_path: str | os.PathLike[str], label_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a data/label pair into ((N,32,32,3) float32, (N,) int32), size-checked."""
    data_path, label_path = Path(data_path), Path(label_path)
    for p in (data_path, label_path):
        if not p.is_file():
            raise FileNotFoundError(f"bin file {p} does not exist")
    n = _count_samples(data_path, label_path)
    images = np.fromfile(data_path, dtype=DATA_DTYPE).reshape((n, *IMAGE_SHAPE))
    labels = np.fromfile(label_path, dtype=LABEL_DTYPE)
    return images, labels


def _client_from_folder(folder: Path, require_test: bool) -> ClientData | None:
    found: dict[tuple[str, str], Path] = {}
    users: set[str] = set()
    for entry in folder.iterdir():
        m = BIN_NAME.match(entry.name)
        if m is None or not entry.is_file():
            continue
        key = (m["split"], m["kind"])
        if key in found:
            raise DataFormatError(
                f"{folder} holds two {m['split']} {m['kind']} files ({found[key].name}, {entry.name}); "
                "remove the stale one (left from an earlier conversion with another batch size?)"
            )
        found[key] = entry
        users.add(m["user"])
    if not found:
        return None
    name = folder.name
    if len(users) > 1:
        raise DataFormatError(f"{folder} mixes files of several users {sorted(users)}; one folder per client")
    train = (found.get(("train", "data")), found.get(("train", "label")))
    test = (found.get(("test", "data")), found.get(("test", "label")))
    if None in train:
        raise DataFormatError(f"{folder} has no complete train split (need both *_train_data.bin and *_train_label.bin)")
    if None in test and test != (None, None):
        raise DataFormatError(f"{folder} has only half of the test split (need both *_test_data.bin and *_test_label.bin)")
    num_train = _count_samples(train[0], train[1])  # type: ignore[arg-type]
    num_test = _count_samples(test[0], test[1]) if test[0] is not None else 0  # type: ignore[arg-type]
    if num_train == 0:
        # the seed's img2bin wrote empty bn_0 files for splits below one batch
        log.warning("skipping client %s: its train split is empty (bn_0) in %s", name, folder)
        return None
    if num_test == 0:
        if require_test:
            log.warning("skipping client %s: no test samples in %s", name, folder)
            return None
        test = (None, None)
    return ClientData(name, train[0], train[1], test[0], test[1], num_train, num_test)  # type: ignore[arg-type]


def iter_client_folders(root: Path) -> Iterator[Path]:
    """Sub-folders of ``root`` in name order (the archive has one per writer)."""
    return iter(sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name))


def discover_clients(root: str | os.PathLike[str], require_test: bool = True) -> list[ClientData]:
    """Every client under ``root`` (a ``3500_clients_bin``-style folder), sorted by name.

    Files are found by pattern, so the published archive works as is, as do the
    folders written by ``pyflclient data femnist`` and ``pyflclient data bundled``.
    Sizes are checked against each other (no file is read). Clients without a
    test split are skipped with a warning unless ``require_test`` is False.
    Sub-folders holding no ``*_bn_*`` file are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"client data folder {root} does not exist; create it with `pyflclient data bundled --out {root}` "
            "or `pyflclient data femnist --leaf-dir ... --out ...`, or unzip 3500_clients_bin.zip there"
        )
    clients = [c for f in iter_client_folders(root) if (c := _client_from_folder(f, require_test)) is not None]
    if not clients:
        raise DataFormatError(
            f"no client folders with <user>_bn_<batches>_train_data.bin files under {root}; "
            "point at the folder that directly holds the per-client folders (e.g. .../3500_clients_bin)"
        )
    return clients
