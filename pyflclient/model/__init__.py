"""The device model: LeNet in MindSpore, its export as a train MindIR, the MindIR → ``.ms``
converter, and the ``.ms`` file itself (read/write with numpy in :mod:`pyflclient.model.msfile`).

Only :mod:`~pyflclient.model.msfile` is imported eagerly: everything that needs MindSpore
imports it lazily, since MindSpore is an optional extra (``pip install pyflclient[mindspore]``).
"""
from __future__ import annotations

from pathlib import Path

from pyflclient.model.msfile import (MsFormatError, MsModel, MsNode, MsTensor, load, save,
                                     trainable_weights, write_weights)

#: The data files pyflclient ships inside the package (``package-data`` in pyproject.toml): files, not
#: code, so the folder is no package and its name cannot be taken for this one, ``pyflclient.model``.
PACKAGE_DATA = Path(__file__).resolve().parent.parent / "package_data"

#: The LeNet5 device model shipped with pyflclient (62 classes, batch 32, Momentum lr 0.01 / 0.9,
#: HeUniform initial weights from seed 1); docs/model.md has the command that regenerates it.
LENET_TRAIN_MS = PACKAGE_DATA / "lenet_train.ms"

__all__ = ["LENET_TRAIN_MS", "PACKAGE_DATA", "MsFormatError", "MsModel", "MsNode", "MsTensor", "load", "save", "trainable_weights",
           "write_weights"]
