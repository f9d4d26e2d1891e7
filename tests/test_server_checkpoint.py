"""Nothing lost: per-iteration checkpoints, metrics.jsonl, resume after a restart, initial model files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyflclient.wire.protocol import ResponseCode
from pyflclient.server import Server
from pyflclient.server.checkpoint import Checkpoints, CorruptCheckpoint, ModelFileError, load_model


def test_each_iteration_is_checkpointed_before_its_model_is_served(start_server, device, run_round, small_model,
                                                                   tmp_path):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=2, checkpoint_dir=str(tmp_path))
    d = device(srv.url, data_size=3)
    expected = run_round(srv, [d], seed=1)
    # getModel can only succeed after publish, and publish comes after the atomic write
    assert d.get_model(1).retcode == ResponseCode.SUCCEED
    saved = Checkpoints(tmp_path).load(1)
    for name, want in expected.items():
        np.testing.assert_array_equal(saved[name].reshape(-1), want)
        assert saved[name].shape == small_model[name].shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iteration_000001.npz", "iteration_000001.npz.sha256",
                                                          "metrics.jsonl"]  # no temp left


def test_metrics_jsonl_has_one_line_per_iteration(start_server, device, run_round, small_model, tmp_path):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=2, checkpoint_dir=str(tmp_path))
    d = device(srv.url, data_size=3)
    run_round(srv, [d], seed=1)
    run_round(srv, [d], seed=2)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["iteration"], m["admitted"], m["uploaded"], m["valid"]) for m in lines] == [(1, 1, 1, True),
                                                                                           (2, 1, 1, True)]
    assert all(m["seconds"] >= 0 for m in lines)
    assert srv.metrics() == lines


def test_restarted_server_resumes_at_the_next_iteration_with_the_checkpointed_model(
        device, run_round, small_model, tmp_path):
    settings = dict(start_fl_job_threshold=1, fl_iteration_num=3, checkpoint_dir=str(tmp_path))
    with Server(small_model, **settings) as first:
        after_1 = run_round(first, [device(first.url, data_size=2)], seed=1)
    with Server(small_model, **settings) as second:
        assert second.iteration == 2
        joined = device(second.url, data_size=2).start_fl_job()
        assert joined.iteration == 2
        for name, want in after_1.items():
            np.testing.assert_array_equal(joined.weights[name], want)
        assert [m["iteration"] for m in second.metrics()] == [1]
        assert device(second.url).get_model(1).retcode == ResponseCode.SUCCEED  # served from the checkpoint


def test_restart_of_a_finished_job_serves_the_final_model(device, run_round, small_model, tmp_path):
    settings = dict(start_fl_job_threshold=1, fl_iteration_num=1, checkpoint_dir=str(tmp_path))
    with Server(small_model, **settings) as first:
        final = run_round(first, [device(first.url, data_size=2)])
    with Server(small_model, **settings) as second:
        assert second.finished and second.wait_finished(timeout=0)
        assert second.iteration == 1
        reply = device(second.url).get_model(1)
        assert reply.retcode == ResponseCode.SUCCEED
        for name, want in final.items():
            np.testing.assert_array_equal(reply.weights[name], want)


def test_checkpoint_dir_of_another_model_is_refused(small_model, tmp_path):
    Checkpoints(tmp_path).save(1, {"other.weight": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="different model"):
        Server(small_model, checkpoint_dir=str(tmp_path)).start()


def test_initial_model_from_npz(start_server, device, small_model, tmp_path):
    path = tmp_path / "init.npz"
    np.savez(path, **small_model)
    srv = start_server(str(path))
    for name, want in small_model.items():
        np.testing.assert_array_equal(srv.global_model()[name], want)


def test_initial_model_from_ms_file_is_its_trainable_weights(start_server, tmp_path):
    msfile = pytest.importorskip("pyflclient.model.msfile", reason="the .ms reader is not in this tree yet")
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = msfile.MsModel([
        msfile.MsTensor("fc.weight", (2, 3), role=msfile.Role.PARAMETER, trainable=True, data=weight),
        msfile.MsTensor("moments.fc.weight", (2, 3), role=msfile.Role.PARAMETER, data=np.zeros((2, 3), np.float32)),
    ], [])
    model.save(tmp_path / "m.ms")
    srv = start_server(str(tmp_path / "m.ms"))
    served = srv.global_model()
    assert list(served) == ["fc.weight"]  # optimizer state is not aggregated
    np.testing.assert_array_equal(served["fc.weight"], weight)


@pytest.mark.parametrize("bad, words", [
    ("missing.npz", "no such model file"),
    ("model.txt", "unknown model file type"),
])
def test_unusable_initial_model_file_says_what_to_give(tmp_path, bad, words):
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(ModelFileError, match=words):
        load_model(tmp_path / bad)


def test_initial_model_with_non_finite_weights_is_refused():
    with pytest.raises(ModelFileError, match="not finite"):
        load_model({"w": np.array([1.0, np.nan], np.float32)})


def test_a_model_whose_checkpoint_cannot_be_written_is_not_served_until_it_is(
        start_server, device, small_model, tmp_path):
    folder = tmp_path / "ckpt"
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=2, checkpoint_dir=str(folder),
                       retry_interval=50)
    d = device(srv.url, data_size=2)
    assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    folder.rename(tmp_path / "away")
    folder.write_text("not a folder: every write fails")  # a disk that refuses the checkpoint
    assert d.update_model(1, {n: a.reshape(-1) * 2 for n, a in small_model.items()}).retcode == ResponseCode.SUCCEED
    assert not srv.wait_iteration(1, timeout=0.5)  # several retries fail meanwhile
    assert d.get_model(1).retcode == ResponseCode.SucNotReady
    assert d.start_fl_job().retcode == ResponseCode.OutOfTime  # iteration 1 closed, 2 not open
    folder.unlink()
    (tmp_path / "away").rename(folder)
    assert srv.wait_iteration(1, timeout=10)
    assert Checkpoints(folder).iterations() == [1]
    assert d.get_model(1).retcode == ResponseCode.SUCCEED


# -- damaged checkpoints: the newest is set aside, the one before is used --------------------

def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _zero_bytes(data: bytes) -> bytes:
    return b""


def _garbage_inserted(data: bytes) -> bytes:
    return data[:100] + b"\x00garbage\xff" * 8 + data[100:]


def _one_byte_flipped(data: bytes) -> bytes:  # same size, still a zip: only the checksum tells
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


DAMAGES = [_truncated, _zero_bytes, _garbage_inserted, _one_byte_flipped]


def two_checkpoints(folder, model):
    """Iterations 1 and 2 of ``model``'s shapes, different values; returns their models."""
    first = {n: (a + 1).astype(np.float32) for n, a in model.items()}
    second = {n: (a + 2).astype(np.float32) for n, a in model.items()}
    ckpt = Checkpoints(folder)
    ckpt.save(1, first)
    ckpt.save(2, second)
    return ckpt, first, second


def test_each_checkpoint_has_its_sha256_beside_it_in_sha256sum_format(small_model, tmp_path):
    import hashlib

    path = Checkpoints(tmp_path).save(3, small_model)
    digest, name = (tmp_path / "iteration_000003.npz.sha256").read_text().split()
    assert (digest, name) == (hashlib.sha256(path.read_bytes()).hexdigest(), "iteration_000003.npz")


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(
        damage, device, small_model, tmp_path, caplog):
    ckpt, first, _ = two_checkpoints(tmp_path, small_model)
    newest = ckpt.path(2)
    newest.write_bytes(damage(newest.read_bytes()))
    with caplog.at_level("WARNING"), Server(small_model, fl_iteration_num=5, checkpoint_dir=str(tmp_path)) as srv:
        assert srv.iteration == 2  # resumed after iteration 1
        joined = device(srv.url).start_fl_job()
        for name, want in first.items():
            np.testing.assert_array_equal(joined.weights[name].reshape(want.shape), want)
    assert ckpt.iterations() == [1]
    aside = sorted(p.name for p in tmp_path.glob("iteration_000002.npz*.corrupt-*"))
    assert [n.split(".corrupt-")[0] for n in aside] == ["iteration_000002.npz", "iteration_000002.npz.sha256"]
    warning, = [r for r in caplog.records if r.levelname == "WARNING" and "set aside" in r.getMessage()]
    assert "iteration_000002.npz" in warning.getMessage()


@pytest.mark.parametrize("damage", [_truncated, _zero_bytes, _garbage_inserted], ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_checkpoint_without_checksum_is_found_by_parsing(damage, small_model, tmp_path):
    ckpt, first, _ = two_checkpoints(tmp_path, small_model)
    for it in (1, 2):
        Checkpoints.checksum_path(ckpt.path(it)).unlink()  # as written before checksums
    ckpt.path(2).write_bytes(damage(ckpt.path(2).read_bytes()))
    iteration, model = ckpt.latest()
    assert iteration == 1
    for name, want in first.items():
        np.testing.assert_array_equal(model[name], want)


def test_a_checkpoint_written_before_checksums_is_resumed_from(device, small_model, tmp_path):
    np.savez(tmp_path / "iteration_000004.npz", **small_model)  # what the code before checksums wrote
    with Server(small_model, fl_iteration_num=9, checkpoint_dir=str(tmp_path)) as srv:
        assert srv.iteration == 5


def test_a_checksum_file_of_another_checkpoint_makes_it_corrupt(small_model, tmp_path):
    ckpt, first, second = two_checkpoints(tmp_path, small_model)
    sums = Checkpoints.checksum_path
    sums(ckpt.path(2)).write_text(sums(ckpt.path(1)).read_text().replace("000001", "000002"))
    assert ckpt.latest()[0] == 1


def test_no_valid_checkpoint_is_one_error_and_nothing_is_renamed(small_model, tmp_path):
    ckpt, _, _ = two_checkpoints(tmp_path, small_model)
    for it in (1, 2):
        ckpt.path(it).write_bytes(_truncated(ckpt.path(it).read_bytes()))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CorruptCheckpoint, match="no valid checkpoint in .*2 corrupt.*move the folder away"):
        Server(small_model, checkpoint_dir=str(tmp_path)).start()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_damaged_old_checkpoint_is_not_served_and_the_server_keeps_running(device, run_round, small_model,
                                                                              tmp_path):
    with Server(small_model, fl_iteration_num=3, checkpoint_dir=str(tmp_path)) as first_run:
        run_round(first_run, [device(first_run.url)], seed=1)
        run_round(first_run, [device(first_run.url)], seed=2)
    ckpt = Checkpoints(tmp_path)
    ckpt.path(1).write_bytes(_one_byte_flipped(ckpt.path(1).read_bytes()))
    with Server(small_model, fl_iteration_num=3, checkpoint_dir=str(tmp_path)) as srv:  # holds only model 2
        reply = device(srv.url).get_model(1)
        assert reply.retcode == ResponseCode.RequestError and "no longer kept" in reply.reason
        assert device(srv.url).get_model(2).retcode == ResponseCode.SUCCEED
