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
    "FLParameter": "client.params", "DataFiles": "client.params",
    "FLJob": "client.job", "JobResult": "client.job", "ResponseCode": "wire.protocol",
    "Simulation": "client.simulation", "params_for_clients": "client.simulation",
    "SimulationResults": "client.results",
    "PyflclientError": "client.errors", "InvalidParameterError": "client.errors", "JVMError": "client.errors",
    "JarNotFoundError": "client.errors", "JavaError": "client.errors", "ModelFormatError": "client.errors",
    "JavaIOError": "client.errors", "JavaParameterError": "client.errors", "FLJobError": "client.errors",
    "start_jvm": "client.jvm",
    "Server": "server", "ServerConfig": "server",
}


def __getattr__(name: str):  # PEP 562
    module = _BRIDGE_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyflclient' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
