"""LEAF FEMNIST json → the per-writer bin layout of ``3500_clients_bin``.

Input: LEAF's ``data/femnist/data`` after ``preprocess.sh`` — ``train/*.json``
and ``test/*.json``, each ``{"users": [...], "num_samples": [...],
"user_data": {user: {"x": [[784 floats]], "y": [ints]}}}``. The per-writer
files of MindSpore's tutorial (``3500_client_json/{train,test}/<user>.json``
with ``"user_data": {"x": ..., "y": ...}``) are accepted too; the user is
then the file name.

Per writer and split the transform is:

1. pixels kept as LEAF wrote them: 28×28 grey in [0, 1] where **1.0 is the
   white paper and ink is dark** (LEAF divides the NIST PNG by 255 and does
   not invert). The seed's archive kept that polarity too, so we do not
   invert; values outside [0, 1] are refused.
2. 28×28 → 32×32 by bilinear resize and the grey channel repeated to 3
   (``images.to_lenet_input``: what the seed's PIL ``Resize`` + ``Grayscale(3)``
   did; ``geometry="pad"`` pads 2 white pixels instead).
3. counts made a multiple of the batch. ``remainder="drop"`` (default) is
   the seed's recipe, so batch counts match the published archive: a split
   with fewer samples than one batch is topped up to one batch by repeating
   its own samples (the seed's "random expansion"); otherwise samples are
   shuffled (seeded per writer) and the ones past the last full batch are
   dropped. ``remainder="pad"`` keeps every sample and tops the last batch up
   with repeats instead.

Labels are LEAF's 0–61 (digits, then upper case, then lower case) as int32.
"""
from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
from tqdm import tqdm

from .binfiles import BIN_NAME, SPLITS, ClientData, DataFormatError, write_split
from .images import Geometry, to_lenet_input

log = logging.getLogger(__name__)

Remainder = Literal["drop", "pad"]
REMAINDERS: tuple[str, ...] = ("drop", "pad")
NUM_CLASSES = 62
PIXELS = 28 * 28


def find_split_dirs(leaf_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``{"train": dir, "test": dir}`` under ``leaf_dir`` or ``leaf_dir/data``."""
    root = Path(leaf_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"LEAF folder {root} does not exist; pass the folder holding train/ and test/ "
            "(LEAF's data/femnist/data after ./preprocess.sh)"
        )
    for base in (root, root / "data"):
        dirs = {s: base / s for s in SPLITS}
        if all(d.is_dir() for d in dirs.values()):
            return dirs
    raise FileNotFoundError(
        f"{root} has no train/ and test/ sub-folders (nor data/train, data/test); pass LEAF's "
        "data/femnist/data after ./preprocess.sh (e.g. -s niid --sf 1.0 -k 0 -t sample)"
    )


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{path} is not valid json ({exc}); the file is truncated or corrupt — re-run LEAF's preprocess.sh "
            "or remove it"
        ) from exc


def iter_users(path: Path) -> Iterator[tuple[str, Any, Any]]:
    """(user, x, y) of every writer in one LEAF json file (either format)."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("user_data"), dict):
        raise DataFormatError(f"{path} has no 'user_data' object; it is not a LEAF FEMNIST json file")
    user_data = doc["user_data"]
    if "x" in user_data and "y" in user_data and not isinstance(user_data["x"], dict):
        yield path.stem, user_data["x"], user_data["y"]  # the seed's one-writer-per-file json
        return
    users = doc.get("users", list(user_data))
    for user in users:
        entry = user_data.get(user)
        if not isinstance(entry, dict) or "x" not in entry or "y" not in entry:
            raise DataFormatError(f"{path}: user {user!r} is listed but has no user_data[{user!r}] with 'x' and 'y'")
        yield str(user), entry["x"], entry["y"]


def _as_arrays(path: Path, user: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        gray = np.asarray(x, dtype=np.float32)
        labels = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: user {user!r}: x must be a list of 784-float images and y a list of ints ({exc})"
        ) from exc
    if gray.size == 0:
        gray = gray.reshape(0, PIXELS)
    if gray.ndim != 2 or gray.shape[1] != PIXELS:
        raise DataFormatError(f"{path}: user {user!r} x must be a list of 784-float images, got shape {gray.shape}")
    if labels.shape != (gray.shape[0],):
        raise DataFormatError(f"{path}: user {user!r} has {gray.shape[0]} images but {labels.size} labels")
    if gray.size and (not np.isfinite(gray).all() or gray.min() < 0.0 or gray.max() > 1.0):
        raise DataFormatError(f"{path}: user {user!r} has pixel values outside [0, 1]; LEAF FEMNIST json holds 0..1")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"{path}: user {user!r} has labels outside 0..{NUM_CLASSES - 1}")
    return gray, labels.astype(np.int32)


def batch_rows(n: int, batch_size: int, remainder: Remainder, rng: np.random.Generator) -> np.ndarray:
    """Row order of ``n`` samples made a whole number of batches (see module docstring)."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = rng.permutation(n)
    if n < batch_size:
        return np.concatenate([order, rng.choice(n, size=batch_size - n, replace=True)])
    if remainder == "drop":
        return order[: n - n % batch_size]
    if remainder == "pad":
        top_up = (-n) % batch_size
        return np.concatenate([order, rng.choice(n, size=top_up, replace=False)])
    raise ValueError(f"remainder must be one of {REMAINDERS}, got {remainder!r}")


def _remove_split(folder: Path, user: str, split: str) -> None:
    """Delete bins of this user/split left by an earlier run (possibly another batch size)."""
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        m = BIN_NAME.match(f.name)
        if m is not None and m["user"] == user and m["split"] == split:
            f.unlink()


def convert_leaf_femnist(
    leaf_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    batch_size: int = 32,
    remainder: Remainder = "drop",
    geometry: Geometry = "resize",
    seed: int = 0,
    progress: bool = True,
) -> list[ClientData]:
    """Convert LEAF FEMNIST json to one bin folder per writer; return the writers.

    Returns the writers that got both splits, sorted by name (writers with
    only one split are written but reported in a warning). Deterministic for
    a given ``seed``: each writer's shuffle is seeded by (seed, writer id), so
    the result does not depend on file order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder must be one of {REMAINDERS}, got {remainder!r}")
    dirs = find_split_dirs(leaf_dir)
    out = Path(out_dir)
    written: dict[str, dict[str, tuple[Path, Path, int]]] = {}
    empty: list[str] = []
    for split, split_dir in dirs.items():
        files = sorted(split_dir.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{split_dir} holds no *.json files; run LEAF's preprocess.sh first")
        bar = tqdm(files, desc=f"FEMNIST {split}", unit="file", disable=not progress)
        for path in bar:
            for user, x, y in iter_users(path):
                if split in written.get(user, {}):
                    raise DataFormatError(f"user {user!r} appears twice in the {split} json files (again in {path})")
                gray, labels = _as_arrays(path, user, x, y)
                if gray.shape[0] == 0:
                    empty.append(f"{user}/{split}")
                    continue
                rng = np.random.default_rng([seed, zlib.crc32(user.encode()), SPLITS.index(split)])
                rows = batch_rows(gray.shape[0], batch_size, remainder, rng)
                images = to_lenet_input(gray[rows], geometry=geometry, background=1.0)
                folder = out / user
                _remove_split(folder, user, split)
                d, lab = write_split(folder, user, split, images, labels[rows], batch_size)
                written.setdefault(user, {})[split] = (d, lab, int(rows.shape[0]))
            bar.set_postfix(writers=len(written))
    if empty:
        log.warning("%d writer splits had no samples and were skipped: %s", len(empty), ", ".join(empty[:10]))
    incomplete = sorted(u for u, s in written.items() if len(s) < 2)
    if incomplete:
        log.warning(
            "%d writers have only one split (written, but not returned): %s", len(incomplete), ", ".join(incomplete[:10])
        )
    clients = []
    for user in sorted(written):
        s = written[user]
        if len(s) < 2:
            continue
        tr, te = s["train"], s["test"]
        clients.append(ClientData(user, tr[0], tr[1], te[0], te[1], tr[2], te[2]))
    log.info("FEMNIST: %d writers with train and test written to %s", len(clients), out)
    return clients
