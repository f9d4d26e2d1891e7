"""The issue's main proof: a converted LeNet trains in the Java runtime exactly as in MindSpore.

LeNet5 is exported from MindSpore (TrainOneStepCell, Momentum 0.01/0.9, batch 32) and
converted; then the same 5 batches are trained by MindSpore itself and by the Java
runtime (``RuntimeTool train`` on the .ms file, from the same initial weights). Losses
and every Parameter (weights and momentum accumulators) must agree to a relative 1e-3
(max |a − b| / max |a| per tensor), and the Java runtime's predictions on the untrained
model must be MindSpore's forward-pass predictions. Smaller networks (AvgPool, Sigmoid, Tanh,
Dense without bias, dilated/grouped/padded convolutions, an MLP; SGD, Adam, weight
decay) get the same check:
a user's own network of such layers trains on the device as in MindSpore.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # before mindspore is imported: 40× faster convolutions
ms = pytest.importorskip("mindspore")

from _model_support import (SMALL_NETWORKS, Trained, predict_java, random_batches,  # noqa: E402
                            relative_difference, train_java, train_mindspore, working_directory,
                            worst_difference)

from pyflclient.model import converter, export, lenet, msfile  # noqa: E402

pytestmark = pytest.mark.mindspore
log = logging.getLogger(__name__)

STEPS = 5
TOLERANCE = 1e-3


@dataclass
class MindSporeRun:
    ms_file: Path
    images: np.ndarray          # [STEPS, 32, 3, 32, 32]
    labels: np.ndarray          # [STEPS, 32]
    initial_logits: np.ndarray  # MindSpore's forward pass of images[0] before training
    trained: Trained            # after STEPS steps in MindSpore


@pytest.fixture(scope="module")
def mindspore_run(tmp_path_factory: pytest.TempPathFactory) -> MindSporeRun:
    scratch = tmp_path_factory.mktemp("parity")
    with working_directory(scratch):
        ms.set_seed(21)
        net = lenet.build_lenet5()
        train = export.make_train_cell(net)
        mindir = export.export_train_cell(train, scratch / "lenet_train.mindir", batch_size=32,
                                          input_shape=lenet.IMAGE_SHAPE)
        ms_file = converter.convert(mindir, scratch / "lenet_train")
        x, y = random_batches(STEPS, 32, lenet.IMAGE_SHAPE, lenet.NUM_CLASS, seed=5)
        initial_logits = net(ms.Tensor(x[0])).asnumpy()
        trained = train_mindspore(train, x, y)
    return MindSporeRun(ms_file, x, y, initial_logits, trained)


def test_java_runtime_trains_five_batches_like_mindspore(mindspore_run, tmp_path, record_property):
    java = train_java(mindspore_run.ms_file, mindspore_run.images.reshape(-1, *lenet.IMAGE_SHAPE),
                      mindspore_run.labels.reshape(-1), tmp_path)
    assert len(java.losses) == STEPS
    names = [t.name for t in msfile.load(mindspore_run.ms_file).tensors
             if t.role == msfile.Role.PARAMETER and t.dtype == msfile.DataType.FLOAT32]
    name, worst = worst_difference(mindspore_run.trained, java, names)
    record_property("largest_relative_difference", f"{worst:.3e} ({name})")
    log.info("Java vs MindSpore after %d steps: largest relative difference %.3e (%s)", STEPS, worst, name)
    assert worst < TOLERANCE, (f"{name} differs by {worst:.2e} (relative); losses MindSpore "
                               f"{mindspore_run.trained.losses} Java {java.losses}")


def test_java_runtime_counts_the_global_step(mindspore_run, tmp_path):
    java = train_java(mindspore_run.ms_file, mindspore_run.images[:2].reshape(-1, *lenet.IMAGE_SHAPE),
                      mindspore_run.labels[:2].reshape(-1), tmp_path)
    assert java.params["global_step"].tolist() == [2]


def test_java_predictions_are_mindspore_forward_pass_predictions(mindspore_run, tmp_path):
    labels, logits = predict_java(mindspore_run.ms_file, mindspore_run.images[0], tmp_path)
    assert relative_difference(mindspore_run.initial_logits, logits) < TOLERANCE
    np.testing.assert_array_equal(labels, mindspore_run.initial_logits.argmax(axis=1))


@pytest.mark.parametrize("network", sorted(SMALL_NETWORKS))
def test_java_runtime_trains_other_small_networks_like_mindspore(network, tmp_path):
    build, options = SMALL_NETWORKS[network]
    with working_directory(tmp_path):
        ms.set_seed(3)
        train = export.make_train_cell(build(), **options)
        mindir = export.export_train_cell(train, tmp_path / network, batch_size=8, input_shape=(3, 16, 16))
        ms_file = converter.convert(mindir, tmp_path / network)
        x, y = random_batches(STEPS, 8, (3, 16, 16), 5, seed=4)
        expected = train_mindspore(train, x, y)
    java = train_java(ms_file, x.reshape(-1, 3, 16, 16), y.reshape(-1), tmp_path)
    names = [t.name for t in msfile.load(ms_file).tensors
             if t.role == msfile.Role.PARAMETER and t.dtype == msfile.DataType.FLOAT32]
    name, worst = worst_difference(expected, java, names)
    assert worst < TOLERANCE, f"{name} differs by {worst:.2e} (relative) after {STEPS} steps"
