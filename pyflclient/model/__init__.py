"""The device model: LeNet in MindSpore, its export as a train MindIR, the MindIR → ``.ms``
converter, and the ``.ms`` file itself (read/write with numpy in :mod:`pyflclient.model.msfile`).

Only :mod:`~pyflclient.model.msfile` is imported eagerly: everything that needs MindSpore
imports it lazily, since MindSpore is an optional extra (``pip install pyflclient[mindspore]``).
"""
from __future__ import annotations

from pyflclient.model.msfile import (MsFormatError, MsModel, MsNode, MsTensor, load, save,
                                     trainable_weights, write_weights)

__all__ = ["MsFormatError", "MsModel", "MsNode", "MsTensor", "load", "save", "trainable_weights",
           "write_weights"]
