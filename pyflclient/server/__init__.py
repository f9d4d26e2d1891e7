"""The cloud-side FL server: MindSpore r1.6's device protocol, iteration rounds, aggregation types, checkpoints.

``Server`` runs it in a background thread of this process (the Python API);
``pyflclient server ...`` runs it from a shell (:mod:`pyflclient.server.cli`).
docs/server.md is the user's guide, docs/protocol.md the wire reference.
"""
from __future__ import annotations

from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.server.runner import Server

__all__ = ["Server", "ServerConfig", "ConfigError"]
