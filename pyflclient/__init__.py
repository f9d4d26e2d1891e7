"""pyflclient: cross-device federated learning for image classification, driven from Python.

The cloud side (an FL server speaking MindSpore r1.6's device protocol) runs in
Python; every device is a Java thread running ``mindspore-lite-java-flclient.jar``
in one JVM that pyflclient starts through JPype.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
