"""LeNet5 in MindSpore, as the r1.6 federated-learning tutorial trains it on FEMNIST.

Input N×3×32×32 (NCHW), ``num_class`` outputs (62 for FEMNIST): conv 5×5 ×6 → ReLU →
max-pool 2 → conv 5×5 ×16 → ReLU → max-pool 2 → flatten → dense 120 → ReLU → dense 84 →
ReLU → dense ``num_class``. The convolutions have no bias (MindSpore's LeNet5), so the
trainable weights are, in this order: ``conv1.weight``, ``conv2.weight``, ``fc1.weight``,
``fc1.bias``, ``fc2.weight``, ``fc2.bias``, ``fc3.weight``, ``fc3.bias``.

Initialisation is MindSpore's default for ``nn.Conv2d`` / ``nn.Dense`` (HeUniform with
a=√5 for weights, uniform ±1/√fan_in for biases). The model zoo's ``Normal(0.02)`` /
TruncatedNormal(0.02) weights are deliberately not used: with them FedAvg over FEMNIST
clients stays at chance accuracy for 30+ rounds, the gradients of a 5-layer ReLU network
with such small weights being too small for lr 0.01.

The classes are built by :func:`build_lenet5` so that importing this module does not
import MindSpore (an optional extra).
"""
from __future__ import annotations

from typing import Any

from pyflclient.model._mindspore import import_mindspore

NUM_CLASS = 62
IMAGE_SHAPE = (3, 32, 32)
WEIGHT_NAMES = ("conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias",
                "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")


def build_lenet5(num_class: int = NUM_CLASS, num_channel: int = 3) -> Any:
    """A fresh ``mindspore.nn.Cell`` LeNet5 with default (HeUniform) initialisation."""
    ms = import_mindspore()
    nn = ms.nn

    class LeNet5(nn.Cell):
        """MindSpore's LeNet5 (bias-free convolutions), default initialisers."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(num_channel, 6, 5, pad_mode="valid")
            self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
            self.fc1 = nn.Dense(16 * 5 * 5, 120)
            self.fc2 = nn.Dense(120, 84)
            self.fc3 = nn.Dense(84, num_class)
            self.relu = nn.ReLU()
            self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
            self.flatten = nn.Flatten()

        def construct(self, x):  # noqa: D102 - MindSpore's forward
            x = self.max_pool2d(self.relu(self.conv1(x)))
            x = self.max_pool2d(self.relu(self.conv2(x)))
            x = self.flatten(x)
            x = self.relu(self.fc1(x))
            x = self.relu(self.fc2(x))
            return self.fc3(x)

    return LeNet5()
