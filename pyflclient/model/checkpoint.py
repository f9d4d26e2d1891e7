"""Weights between ``.ms`` device models and MindSpore checkpoints (``.ckpt``).

Federated training ends with weights in a ``.ms`` file (a device's model, or the
server's global model written with :func:`pyflclient.model.msfile.write_weights`);
evaluating them in MindSpore, or starting a federation from weights pre-trained in
MindSpore, needs them as a checkpoint. Names are MindSpore's parameter names
(``conv1.weight``, ...) on both sides, so the mapping is by name; only the trainable
weights move (optimizer state stays with the device model). Needs the mindspore extra.

    ms_to_checkpoint("global.ms", "lenet.ckpt")
    mindspore.load_param_into_net(net, mindspore.load_checkpoint("lenet.ckpt"))
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
