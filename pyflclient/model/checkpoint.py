"""Weights between ``.ms`` device models and MindSpore checkpoints (``.ckpt``).

Federated training ends with weights in a ``.ms`` file (a device's model, or the
server's global model written with :func:`pyflclient.model.msfile.write_weights`);
evaluating them in MindSpore, or starting a federation from weights pre-trained in
MindSpore, needs them as a checkpoint. Names are MindSpore's parameter names
(``conv1.weight``, ...) on both sides, so the mapping is by name; only the trainable
weights move (optimizer state stays with the device model). Needs the mindspore extra.

    ms_to_checkpoint("global.ms", "lenet.ckpt")
    mindspore.load_param_into_net(net, mindspore.load_checkpoint("lenet.ckpt"))

The server's global models (one ``iteration_NNNNNN.npz`` per finished iteration in its
``checkpoint_dir``) leave the project through :func:`export_global_model`
(``pyflclient export``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from pyflclient.model import msfile
from pyflclient.model._mindspore import import_mindspore

log = logging.getLogger(__name__)


def save_checkpoint(weights: Mapping[str, np.ndarray], ckpt_path: str | Path) -> Path:
    """Write ``weights`` (name → array) as a MindSpore checkpoint; returns the file written."""
    ms = import_mindspore()
    path = Path(ckpt_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint([{"name": name, "data": ms.Tensor(np.asarray(value))} for name, value in weights.items()],
                       str(path))
    return path


def load_checkpoint(ckpt_path: str | Path) -> dict[str, np.ndarray]:
    """All parameters of a MindSpore checkpoint as numpy arrays, in checkpoint order."""
    ms = import_mindspore()
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"MindSpore checkpoint {path} does not exist")
    return {name: param.asnumpy() for name, param in ms.load_checkpoint(str(path)).items()}


def ms_to_checkpoint(ms_path: str | Path, ckpt_path: str | Path) -> Path:
    """The trainable weights of a ``.ms`` file as a MindSpore checkpoint."""
    return save_checkpoint(msfile.trainable_weights(ms_path), ckpt_path)


def checkpoint_to_ms(ckpt_path: str | Path, ms_path: str | Path, out: str | Path | None = None) -> Path:
    """Copy the ``.ms`` model at ``ms_path`` with its trainable weights taken from a checkpoint.

    Every trainable weight of the model must be in the checkpoint (KeyError listing the
    missing ones); other checkpoint entries (optimizer state, ``global_step``, ...) are
    ignored. Writes ``out`` (default: ``ms_path`` in place) atomically.
    """
    model = msfile.load(ms_path)
    ckpt = load_checkpoint(ckpt_path)
    missing = [name for name in model.weight_names if name not in ckpt]
    if missing:
        raise KeyError(f"checkpoint {ckpt_path} lacks weight(s) {', '.join(missing)} of {ms_path}")
    model.set_weights({name: ckpt[name] for name in model.weight_names}, strict=True)
    written = model.save(out if out is not None else ms_path)
    log.info("wrote %s with the weights of %s", written, ckpt_path)
    return written


#: the formats ``pyflclient export`` writes
EXPORT_FORMATS = ("ckpt", "npz")


class ExportError(ValueError):
    """The server checkpoint to export is missing or damaged; the message says which and what to do."""


def export_global_model(checkpoint_dir: str | Path, out: str | Path, *, iteration: int | None = None,
                        fmt: str = "ckpt") -> tuple[int, Path]:
    """Write the server's global model of ``iteration`` (None: the newest) as a MindSpore checkpoint
    (``fmt="ckpt"``, loadable with ``mindspore.load_checkpoint`` into :func:`~pyflclient.model.lenet.build_lenet5`)
    or a ``.npz``; returns (iteration, file written). Reads the folder only (a damaged checkpoint is
    reported, never renamed or replaced by an older one unless ``iteration`` asks for it)."""
    from pyflclient.server.checkpoint import Checkpoints, CorruptCheckpoint

    folder = Path(checkpoint_dir)
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format {fmt}: one of {', '.join(EXPORT_FORMATS)}")
    if not folder.is_dir():
        raise ExportError(f"--checkpoint-dir {folder}: no such folder; give the server's checkpoint_dir")
    found = Checkpoints(folder).iterations()
    if not found:
        raise ExportError(f"--checkpoint-dir {folder}: holds no iteration_*.npz; the server writes one per finished "
                          f"iteration when it runs with checkpoint_dir")
    chosen = found[-1] if iteration is None else iteration
    if chosen not in found:
        raise ExportError(f"--iteration {iteration}: no checkpoint of it in {folder} (it has iterations "
                          f"{found[0]}..{found[-1]})")
    try:
        weights = Checkpoints(folder).load(chosen)
    except CorruptCheckpoint as exc:
        older = [i for i in found if i < chosen]
        hint = f"; give --iteration {older[-1]} for the one before" if older else ""
        raise ExportError(f"{exc}{hint}") from None
    assert weights is not None
    path = Path(out)
    if fmt == "npz":
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:  # the name as given (np.savez would append .npz to a path)
            np.savez(f, **weights)
        return chosen, path
    return chosen, save_checkpoint(weights, path)
