"""Weights between .ms files and MindSpore checkpoints (pyflclient.model.checkpoint)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # before mindspore is imported
ms = pytest.importorskip("mindspore")

from _model_support import working_directory  # noqa: E402

from pyflclient.model import LENET_TRAIN_MS, checkpoint, lenet, msfile  # noqa: E402
from pyflclient.model.reference import Interpreter  # noqa: E402

pytestmark = pytest.mark.mindspore


def test_a_device_model_loads_into_mindspore_and_predicts_the_same(tmp_path):
    with working_directory(tmp_path):
        ckpt = checkpoint.ms_to_checkpoint(LENET_TRAIN_MS, tmp_path / "lenet.ckpt")
        net = lenet.build_lenet5()
        not_loaded, _ = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)))
        assert not_loaded == []
        x = np.random.default_rng(0).random((32, 3, 32, 32), dtype=np.float32)
        ms_logits = net(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(ms_logits, Interpreter(msfile.load(LENET_TRAIN_MS)).logits(x), rtol=1e-4, atol=1e-5)


def test_checkpoint_weights_replace_the_trainable_weights_only(tmp_path):
    new = {k: np.full(v.shape, 0.25, np.float32) for k, v in msfile.trainable_weights(LENET_TRAIN_MS).items()}
    checkpoint.save_checkpoint({**new, "moments.fc1.weight": np.ones((120, 400), np.float32)}, tmp_path / "w.ckpt")
    out = checkpoint.checkpoint_to_ms(tmp_path / "w.ckpt", LENET_TRAIN_MS, tmp_path / "from_ckpt.ms")
    model = msfile.load(out)
    for name, value in model.trainable_weights().items():
        np.testing.assert_array_equal(value, new[name])
    assert not model.tensor("moments.fc1.weight").data.any()


def test_a_checkpoint_missing_weights_is_refused_naming_them(tmp_path):
    weights = msfile.trainable_weights(LENET_TRAIN_MS)
    checkpoint.save_checkpoint({k: v for k, v in weights.items() if not k.startswith("fc3")}, tmp_path / "p.ckpt")
    with pytest.raises(KeyError, match="fc3.weight, fc3.bias"):
        checkpoint.checkpoint_to_ms(tmp_path / "p.ckpt", LENET_TRAIN_MS, tmp_path / "x.ms")
    assert not (tmp_path / "x.ms").exists()
