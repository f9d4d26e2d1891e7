"""Export a MindSpore network's training step as a *train* MindIR, the converter's input.

The device trains whatever ``mindspore.export`` traced: the network, its loss and one
optimizer step, wrapped as ``TrainOneStepCell(WithLossCell(net, loss), optimizer)``
exactly like the r1.6 tutorial's ``lenet_export.py``. The graph is traced with a zero
batch of the right shape: the batch size is baked into the exported (and converted)
graph, so the devices train and infer in batches of that size.

MindSpore writes a ``rank_0/`` folder into the working directory when it compiles; run
exports from a scratch directory if that matters (the tests do).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pyflclient.model._mindspore import import_mindspore

log = logging.getLogger(__name__)

OPTIMIZERS = ("momentum", "sgd", "adam")


def make_train_cell(net: Any, *, optimizer: str = "momentum", learning_rate: float = 0.01,
                    momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = False) -> Any:
    """``TrainOneStepCell(WithLossCell(net, SparseSoftmaxCE(mean)), optimizer)`` in train mode.

    ``optimizer``: ``momentum`` (the tutorial's ``nn.Momentum(lr, momentum)``), ``sgd``
    (``nn.SGD(lr, momentum)``) or ``adam`` (``nn.Adam(lr)``); ``weight_decay`` and
    ``nesterov`` are passed to the optimizer (Adam has no nesterov here). Note that
    MindSpore 2.10's CPU kernel of ApplyMomentum ignores ``use_nesterov`` (see
    docs/ms-format.md), so a nesterov Momentum graph trains differently on the device.
    """
    ms = import_mindspore()
    nn = ms.nn
    params = net.trainable_params()
    if optimizer == "momentum":
        opt = nn.Momentum(params, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                          use_nesterov=nesterov)
    elif optimizer == "sgd":
        opt = nn.SGD(params, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                     nesterov=nesterov)
    elif optimizer == "adam":
        opt = nn.Adam(params, learning_rate=learning_rate, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer {optimizer!r} unknown: choose one of {', '.join(OPTIMIZERS)}")
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    train.set_train()
    return train


def export_train_cell(train_cell: Any, mindir_path: str | Path, *, batch_size: int,
                      input_shape: Sequence[int]) -> Path:
    """Trace ``train_cell(x, y)`` with a zero batch and write it as MindIR; returns the file written.

    ``mindir_path`` may end in ``.mindir`` or not (MindSpore always appends it).
    """
    ms = import_mindspore()
    path = Path(mindir_path)
    stem = path.with_suffix("") if path.suffix == ".mindir" else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    x = ms.Tensor(np.zeros((batch_size, *input_shape), np.float32))
    y = ms.Tensor(np.zeros((batch_size,), np.int32))
    ms.export(train_cell, x, y, file_name=str(stem), file_format="MINDIR")
    out = stem.with_name(stem.name + ".mindir")
    if not out.exists():
        raise RuntimeError(f"mindspore.export reported no error but {out} was not written")
    log.info("exported the train graph (batch %d, input %s) to %s", batch_size, tuple(input_shape), out)
    return out


def export_lenet(mindir_path: str | Path, *, num_class: int = 62, batch_size: int = 32,
                 learning_rate: float = 0.01, momentum: float = 0.9, seed: int | None = None) -> Path:
    """Export the tutorial's LeNet5 train graph (Momentum, sparse softmax CE) as MindIR.

    ``seed`` makes the initial weights reproducible (``mindspore.set_seed``); weights are
    MindSpore's default HeUniform initialisation (see :mod:`pyflclient.model.lenet`).
    """
    from pyflclient.model.lenet import IMAGE_SHAPE, build_lenet5

    ms = import_mindspore()
    if seed is not None:
        ms.set_seed(seed)
    net = build_lenet5(num_class=num_class)
    train = make_train_cell(net, learning_rate=learning_rate, momentum=momentum)
    return export_train_cell(train, mindir_path, batch_size=batch_size, input_shape=IMAGE_SHAPE)
