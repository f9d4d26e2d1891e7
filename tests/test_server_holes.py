"""Small holes of issue 26, each held by a test that failed before its fix: a damaged checksum sidecar, a
duplicate metrics.jsonl line after a checkpoint fallback, data_size <= 0 and a malformed fl_name answered
RequestError (not OutOfTime), and rate-limited refusal log lines."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from pyflclient.server import Server
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.wire.protocol import ResponseCode


@pytest.mark.parametrize("garbled", [b"", b"not a checksum\n", b"\xff\xfe\x00garbage", b"0123abcd  iteration"],
                         ids=["empty", "words", "binary", "cut"])
def test_a_damaged_sidecar_does_not_discard_an_intact_checkpoint(garbled, small_model, tmp_path, caplog):
    """Iteration 2's .npz intact, its .sha256 garbled: iteration 2 is resumed (not set aside), one WARNING
    names the sidecar, and the sidecar is written anew (the next start is clean)."""
    ckpt = Checkpoints(tmp_path)
    ckpt.save(1, {n: a + 1 for n, a in small_model.items()})
    second = {n: (a + 2).astype(np.float32) for n, a in small_model.items()}
    ckpt.save(2, second)
    sidecar = Checkpoints.checksum_path(ckpt.path(2))
    sidecar.write_bytes(garbled)
    with caplog.at_level(logging.WARNING):
        iteration, model = ckpt.latest()
    assert iteration == 2
    for name, want in second.items():
        np.testing.assert_array_equal(model[name], want)
    assert not list(tmp_path.glob("*.corrupt-*"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and sidecar.name in warnings[0] and "damaged" in warnings[0], warnings
    digest, name = sidecar.read_text().split()
    assert name == ckpt.path(2).name and len(digest) == 64


def test_no_duplicate_metrics_line_after_a_checkpoint_fallback(device, run_round, small_model, tmp_path):
    """Iterations 1 and 2 run, iteration 2's checkpoint damaged: the restart resumes at 2 and runs it again;
    metrics.jsonl then has one line per iteration (1, 2), not two lines for iteration 2."""
    settings = dict(start_fl_job_threshold=1, fl_iteration_num=3, checkpoint_dir=str(tmp_path))
    with Server(small_model, **settings) as first:
        run_round(first, [device(first.url)], seed=1)
        run_round(first, [device(first.url)], seed=2)
    path = Checkpoints(tmp_path).path(2)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with Server(small_model, **settings) as second:
        assert second.iteration == 2
        run_round(second, [device(second.url)], seed=3)
        lines = [json.loads(x)["iteration"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
        assert lines == [1, 2], lines
        assert [m["iteration"] for m in second.metrics()] == [1, 2]
