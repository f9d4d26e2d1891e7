"""pyflclient: cross-device federated learning for image classification, driven from Python.

The cloud side (an FL server speaking MindSpore r1.6's device protocol) runs in
Python; every device is a Java thread running ``mindspore-lite-java-flclient.jar``
in one JVM that pyflclient starts through JPype.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# The bridge (FLParameter, FLJob, Simulation, errors) is imported lazily, so
# `import pyflclient` for the server or the data tools does not import JPype.
_BRIDGE_EXPORTS = {
    "FLParameter": "params", "DataFiles": "params",
    "FLJob": "job", "JobResult": "job", "ResponseCode": "job",
    "Simulation": "simulation", "params_for_clients": "simulation", "SimulationResults": "results",
    "PyflclientError": "errors", "InvalidParameterError": "errors", "JVMError": "errors",
    "JarNotFoundError": "errors", "JavaError": "errors", "ModelFormatError": "errors",
    "JavaIOError": "errors", "JavaParameterError": "errors", "FLJobError": "errors",
    "start_jvm": "_jvm",
    "Server": "server", "ServerConfig": "server",
}


def __getattr__(name: str):  # PEP 562
    module = _BRIDGE_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyflclient' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
