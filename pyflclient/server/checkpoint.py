"""Model files of the server: the initial model in, one checkpoint per iteration out.

Nothing is lost on a crash: the model of iteration *k* is written to
``iteration_<k>.npz`` (temp file, fsync, atomic rename, fsync of the folder) before
any device can download it, and ``metrics.jsonl`` gets one line per iteration. A
server started on the same folder resumes at the iteration after the newest
checkpoint, with that model. The initial model comes from a ``.npz`` (name → array)
or from the trainable weights of a ``.ms`` device model file.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["ModelFileError", "load_model", "Checkpoints"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^iteration_(\d+)\.npz$")


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; says which file and why."""


def load_model(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The initial global model: name → float32 array, from a dict, a ``.npz`` or a ``.ms`` file."""
    if isinstance(source, Mapping):
        model = {str(k): np.array(v, dtype=np.float32) for k, v in source.items()}
        origin = "the model dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file (give a .ms device model or a .npz of name -> array)")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                model = {k: np.array(npz[k], dtype=np.float32) for k in npz.files}
        elif path.suffix == ".ms":
            from pyflclient.model import msfile  # the .ms reader; only needed for this path

            model = {k: np.array(v, dtype=np.float32) for k, v in msfile.trainable_weights(path).items()}
        else:
            raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; use .ms or .npz")
        origin = str(path)
    if not model:
        raise ModelFileError(f"{origin}: holds no weights")
    for name, array in model.items():
        if not name:
            raise ModelFileError(f"{origin}: a weight has an empty name")
        if array.size == 0 or not np.isfinite(array).all():
            raise ModelFileError(f"{origin}: weight {name!r} is empty or not finite")
    return model


def check_plan_batch(source: str | os.PathLike[str] | Mapping[str, Any], client_batch_size: int) -> None:
    """A ``.ms`` model's batch is fixed at export: a plan that says another is refused at start."""
    if isinstance(source, Mapping) or Path(source).suffix != ".ms":
        return
    from pyflclient.model import msfile

    exported = msfile.model_batch(source)
    if exported is not None and exported != client_batch_size:
        raise ModelFileError("client_batch_size: " + msfile.batch_mismatch(client_batch_size, exported,
                                                                            Path(source).name))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoints:
    """One folder: ``iteration_000001.npz`` … and ``metrics.jsonl``."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.folder / "metrics.jsonl"

    def path(self, iteration: int) -> Path:
        return self.folder / f"iteration_{iteration:06d}.npz"

    def save(self, iteration: int, model: Mapping[str, np.ndarray]) -> Path:
        """Write the model of ``iteration`` atomically; returns its path."""
        final = self.path(iteration)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{k: np.asarray(v, dtype=np.float32) for k, v in model.items()})
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.folder)
        return final

    def iterations(self) -> list[int]:
        """Iterations with a complete checkpoint, ascending."""
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load(self, iteration: int) -> dict[str, np.ndarray] | None:
        path = self.path(iteration)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: np.array(npz[k], dtype=np.float32) for k in npz.files}
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: unreadable checkpoint ({exc}); move it away to resume from the one "
                                 f"before") from exc

    def latest(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """The newest checkpoint (iteration, model), or None for a fresh folder."""
        its = self.iterations()
        if not its:
            return None
        model = self.load(its[-1])
        assert model is not None
        return its[-1], model

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(dict(record), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash: the checkpoint is what counts
                log.warning("%s: skipping an unreadable line", self.metrics_path)
        return out
