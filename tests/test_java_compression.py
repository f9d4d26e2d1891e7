"""Compression end to end with the real Java client (com.mindspore.flclient): the plan announces
DIFF_SPARSE_QUANT (with and without error feedback) and QUANT, the devices decode the quantised model,
upload the masked 8-bit difference, the server decodes and aggregates; the bytes each device counts
shrink as the codec says, and the residual of error feedback lies beside each device's model."""
from __future__ import annotations

import numpy as np
import pytest

import pyflclient as fl
from conftest import LENET_MS
from pyflclient.wire import compression as c

CLIENTS, ITERATIONS = 3, 2


def run(bundled_clients, tmp_path, name, **server):  # type: ignore[no-untyped-def]
    from pyflclient.client.simulation import params_for_clients
    from pyflclient.data import copy_models
    from _recording import RecordingServer

    out = tmp_path / name
    models = copy_models(LENET_MS, CLIENTS, out / "ms")
    with RecordingServer(LENET_MS, start_fl_job_threshold=CLIENTS, fl_iteration_num=ITERATIONS, client_epoch_num=1,
                         checkpoint_dir=str(out / "ckpt"), **server) as srv:
        params = params_for_clients(bundled_clients[:CLIENTS], models, srv.url, batch_size=32)
        res = fl.Simulation(params, output_dir=out / "run", max_trainers=2, progress=False).run(timeout=600)
        assert srv.wait_finished(timeout=60)
        assert set(res.status.values()) == {"SUCCESS"}, res.status
        for k in range(1, ITERATIONS + 1):
            srv.assert_global_model_is_fedavg(k)
        held = {k: srv.global_model(k) for k in range(ITERATIONS + 1)}
        uploads = {k: srv.uploads(k) for k in range(1, ITERATIONS + 1)}
    return res, held, uploads, models


@pytest.fixture(scope="module")
def plain(bundled_clients, tmp_path_factory):  # type: ignore[no-untyped-def]
    return run(bundled_clients, tmp_path_factory.mktemp("plain"), "plain")


@pytest.mark.parametrize("upload", ["DIFF_SPARSE_QUANT", "DIFF_SPARSE_QUANT_EF"])
def test_java_devices_compress_both_ways_and_the_bytes_shrink(bundled_clients, tmp_path, plain, upload):
    res, held, uploads, models = run(bundled_clients, tmp_path, upload, upload_compress_type=upload,
                                     upload_sparse_rate=0.4, download_compress_type="QUANT")
    base, _, _, _ = plain
    for k in range(1, ITERATIONS + 1):
        # every decoded upload is D * (the server's model of the iteration) on the entries the mask left out
        served = held[k - 1]
        n = sum(a.size for a in served.values())
        keep = c.mask(k, 0.4, n)
        for u in uploads[k]:
            flat_w0 = np.concatenate([served[name].ravel() for name in u.weights])
            flat_u = np.concatenate([np.asarray(u.weights[name]).ravel() for name in u.weights])
            dropped = ~keep  # the names' order of the upload is the devices' (the server's startFLJob order)
            np.testing.assert_array_equal(flat_u[dropped], (flat_w0 * np.float32(u.data_size))[dropped])
    rows, base_rows = res.traffic_rows(), base.traffic_rows()
    for r, b in zip(rows, base_rows):
        assert b["bytes_up_per_client"] / r["bytes_up_per_client"] >= 9.0, (r, b)
        assert b["bytes_down_per_client"] / r["bytes_down_per_client"] >= 3.9, (r, b)
    residuals = [m.parent / (m.name + ".ef_residual") for m in models]
    assert all(p.is_file() for p in residuals) == (upload == "DIFF_SPARSE_QUANT_EF")
    if upload == "DIFF_SPARSE_QUANT_EF":
        assert residuals[0].stat().st_size > 4 * 60_000  # one float per weight of LeNet


def test_dp_encrypt_noise_is_compressed_like_any_update(bundled_clients, tmp_path):
    """DP_ENCRYPT's clipped and noised weights go through the codec (post-processing keeps the guarantee):
    the job runs, the uploads are the codec's (D x the server's model off the mask)."""
    res, held, uploads, _ = run(bundled_clients, tmp_path, "dp", encrypt_type="DP_ENCRYPT", dp_eps=50.0,
                                dp_norm_clip=1.0, upload_compress_type="DIFF_SPARSE_QUANT", upload_sparse_rate=0.4,
                                download_compress_type="QUANT")
    served = held[0]
    keep = c.mask(1, 0.4, sum(a.size for a in served.values()))
    u = uploads[1][0]
    flat_w0 = np.concatenate([served[name].ravel() for name in u.weights])
    flat_u = np.concatenate([np.asarray(u.weights[name]).ravel() for name in u.weights])
    np.testing.assert_array_equal(flat_u[~keep], (flat_w0 * np.float32(u.data_size))[~keep])
    assert all(r["bytes_up_per_client"] < 30_000 for r in res.traffic_rows())
