"""The one place that imports MindSpore: lazily, with the CPU environment it needs.

MindSpore is an optional extra (``pip install pyflclient[mindspore]``): the converter,
the LeNet definition and the export need it, nothing else in pyflclient does. Two facts
of MindSpore 2.10 on x86 CPUs are handled here once:

- its oneDNN convolutions run 40–50× slower unless ``ONEDNN_MAX_CPU_ISA=AVX2`` is in the
  environment *before* the import, so it is set (unless the user set it already);
- graph mode is what ``mindspore.export`` traces and what is fast, so it is selected.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

INSTALL_HINT = "MindSpore is not installed: pip install 'pyflclient[mindspore]' (mindspore==2.10.0)"


class MindSporeMissingError(ImportError):
    """The mindspore extra is needed for this step and is not installed."""


def import_mindspore() -> ModuleType:
    """``import mindspore`` (CPU, graph mode), or MindSporeMissingError with the install command."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    try:
        ms = importlib.import_module("mindspore")
    except ImportError as e:
        raise MindSporeMissingError(f"{INSTALL_HINT} ({e})") from e
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    return ms


def import_mind_ir_pb2() -> ModuleType:
    """MindSpore's MindIR protobuf classes (``mindspore.train.mind_ir_pb2``), without a graph context.

    Importing ``mindspore.train`` imports mindspore itself, so the environment is prepared
    the same way; the error names the extra to install.
    """
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    try:
        return importlib.import_module("mindspore.train.mind_ir_pb2")
    except ImportError as e:
        raise MindSporeMissingError(f"{INSTALL_HINT}; it provides the MindIR reader ({e})") from e
