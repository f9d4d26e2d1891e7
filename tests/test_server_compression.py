"""The server's codec step (pyflclient.server.codecs) over HTTP with protocol devices: the plan announces
the upload codec, QUANT goes only to devices that decode it, DIFF_SPARSE_QUANT uploads are decoded into
data_size x w0 + d' and aggregated (FedAvg against a numpy transcription), and every bad compressed
upload is refused with its reason, the model unchanged; r1.6 devices keep working."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fedavg_of
from pyflclient.server.config import ConfigError, ServerConfig
from pyflclient.wire import compression as c
from pyflclient.wire.protocol import ResponseCode

DSQ = c.TABLE.upload["DIFF_SPARSE_QUANT"].wire
DSQ_EF = c.TABLE.upload["DIFF_SPARSE_QUANT_EF"].wire
QUANT = c.TABLE.download["QUANT"].wire
RATE = 0.4


def transcribed_upload(w0, d, iteration, rate, data_size):  # type: ignore[no-untyped-def]
    """D w0 + d': one mask over the concatenation (names in order), each tensor's kept entries
    quantised between their min and max and back (the equations of docs/compression.md)."""
    names = list(d)
    flat = np.concatenate([d[n].ravel() for n in names])
    keep = c.mask(iteration, rate, flat.size)
    out, at = {}, 0
    for n in names:
        size = d[n].size
        k = keep[at:at + size]
        vals = d[n].ravel()[k].astype(np.float64)
        lo, hi = np.float32(vals.min()), np.float32(vals.max())
        step = np.float32(np.float32(hi - lo) / np.float32(255)) + np.float32(1e-10)
        q = np.clip(np.floor((((vals.astype(np.float32) - lo) / step).astype(np.float64)) + 0.5), 0, 255)
        back = np.zeros(size, dtype=np.float32)
        back[k] = ((q.astype(np.float32)) * step + lo).astype(np.float32)
        out[n] = (w0[n].ravel() * np.float32(data_size) + back).reshape(w0[n].shape)
        at += size
    return out


@pytest.mark.parametrize("download", ["NO_COMPRESS", "QUANT"])
def test_compressed_uploads_aggregate_to_the_fedavg_of_their_decoding(start_server, small_model, device, download):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=2,
                       upload_compress_type="DIFF_SPARSE_QUANT", upload_sparse_rate=RATE,
                       download_compress_type=download)
    devices = [device(srv.url, data_size=5 + 3 * i, fl_id=f"d{i}") for i in range(3)]
    rng = np.random.default_rng(0)
    for iteration in (1, 2):
        joined = [d.start_fl_job(download_compress_types=(QUANT,)) for d in devices]
        assert all(j.retcode == ResponseCode.SUCCEED for j in joined)
        j = joined[0]
        assert (j.upload_compress_type, j.upload_sparse_rate) == (DSQ, np.float32(RATE))
        if download == "QUANT":
            assert not j.weights and j.download_compress_type == QUANT
            held = c.decode_model(j.compressed, {n: a.shape for n, a in small_model.items()})
            expected_held = c.served_model(srv.global_model(iteration - 1))
            assert all(held[n].ravel().tobytes() == expected_held[n].ravel().tobytes() for n in held)
        else:
            assert not j.compressed and j.download_compress_type == 0
            held = {n: np.array(a) for n, a in j.weights.items()}
        uploads = []
        for i, d in enumerate(devices):
            D = np.float32(d.data_size)
            trained = {n: (a + rng.normal(0, 0.05, a.shape)).astype(np.float32) for n, a in held.items()}
            diff = {n: trained[n] * D - held[n] * D for n in held}
            reply = d.update_model_compressed(iteration, diff, DSQ_EF if i == 2 else DSQ, RATE)
            assert reply.retcode == ResponseCode.SUCCEED, reply.reason
            # the server adds the change to its own model (full precision), not to the quantised one
            base = {n: np.asarray(a).reshape(small_model[n].shape)
                    for n, a in srv.global_model(iteration - 1).items()}
            uploads.append(transcribed_upload(base, diff, iteration, RATE, d.data_size))
        assert srv.wait_iteration(iteration, timeout=30)
        expected = fedavg_of(uploads, [d.data_size for d in devices])
        got = srv.global_model(iteration)
        for n in expected:
            np.testing.assert_allclose(got[n].ravel(), expected[n].ravel(), rtol=0, atol=1e-6)


def test_an_r16_device_without_compression_still_works(start_server, small_model, device, run_round):
    srv = start_server(small_model, start_fl_job_threshold=2, fl_iteration_num=1,
                       upload_compress_type="DIFF_SPARSE_QUANT", download_compress_type="QUANT")
    devices = [device(srv.url, data_size=4, fl_id=f"r{i}") for i in range(2)]
    expected = run_round(srv, devices, seed=3)  # plain startFLJob (no download types), plain uploads
    got = srv.global_model(1)
    for n in expected:
        np.testing.assert_allclose(got[n].ravel(), expected[n].ravel(), rtol=0, atol=1e-6)
    plain = devices[0].get_model(1)
    assert plain.weights and not plain.compressed
    quant = devices[0].get_model(1, download_compress_types=(QUANT,))
    assert not quant.weights and quant.download_compress_type == QUANT
    assert c.decode_model(quant.compressed, {n: a.shape for n, a in small_model.items()})["fc.bias"].tobytes() == \
        c.served_model(got)["fc.bias"].tobytes()


def _bad(tensors, which, **change):  # type: ignore[no-untyped-def]
    import dataclasses

    return tuple(dataclasses.replace(t, **change) if t.name == which else t for t in tensors)


@pytest.mark.parametrize("case,reason", [
    ("rate", "upload_sparse_rate 0.3 is not the plan's 0.4"),
    ("size", "'fc.weight' holds"),
    ("nan", "min_val/max_val must be finite"),
    ("type", "upload_compress_type 2 is not a CompressType of an upload"),
    ("names", "name_vec must name each weight"),
    ("both", "not in feature_map"),
])
def test_a_bad_compressed_upload_is_refused_with_its_reason_and_the_model_unchanged(
        start_server, small_model, device, case, reason):
    from pyflclient.wire.protocol import UpdateModelRequest, UpdateModelResponse, now_ms

    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=1,
                       upload_compress_type="DIFF_SPARSE_QUANT", upload_sparse_rate=RATE)
    d = device(srv.url, data_size=3, fl_id="x")
    j = d.start_fl_job()
    names = tuple(small_model)
    diff = {n: np.full(small_model[n].shape, 0.5, np.float32) for n in names}
    tensors, _ = c.encode_upload(diff, names, j.iteration, 0.3 if case == "rate" else RATE)
    kw = dict(upload_compress_type=DSQ, upload_sparse_rate=RATE, name_vec=names, compressed=tuple(tensors))
    weights = {}
    if case == "rate":
        kw["upload_sparse_rate"] = 0.3
    elif case == "size":
        kw["compressed"] = _bad(tensors, "fc.weight", data=tensors[1].data[:-1])
    elif case == "nan":
        kw["compressed"] = _bad(tensors, "fc.weight", max_val=float("nan"))
    elif case == "type":
        kw["upload_compress_type"] = QUANT
    elif case == "names":
        kw["name_vec"] = names[:-1] + ("other",)
    elif case == "both":
        weights = dict(small_model)
    req = UpdateModelRequest(d.fl_name, d.fl_id, j.iteration, weights, str(now_ms()), **kw)
    status, body = d.post("updateModel", req.to_bytes())
    reply = UpdateModelResponse.from_bytes(body)
    assert reply.retcode == ResponseCode.RequestError and reason in reply.reason, reply.reason
    assert srv.iteration == 1 and not srv.wait_iteration(1, timeout=0.2)
    for n, a in srv.global_model(0).items():
        assert a.tobytes() == small_model[n].tobytes()


def test_a_compressed_upload_the_plan_did_not_announce_is_refused(start_server, small_model, device):
    srv = start_server(small_model, start_fl_job_threshold=1, fl_iteration_num=1)
    d = device(srv.url, data_size=3, fl_id="y")
    j = d.start_fl_job(download_compress_types=(QUANT,))
    assert j.upload_compress_type == 0 and j.weights and not j.compressed  # compression off: r1.6's reply
    diff = {n: np.ones(a.shape, np.float32) for n, a in small_model.items()}
    reply = d.update_model_compressed(j.iteration, diff, DSQ, RATE)
    assert reply.retcode == ResponseCode.RequestError and "the plan announced NO_COMPRESS" in reply.reason


def test_the_settings_are_checked_against_the_table():
    with pytest.raises(ConfigError, match=r"^upload_compress_type='ZIP': one of NO_COMPRESS, DIFF_SPARSE_QUANT"):
        ServerConfig(upload_compress_type="ZIP")
    with pytest.raises(ConfigError, match=r"^upload_sparse_rate=1.5: must be in \(0, 1\]$"):
        ServerConfig(upload_sparse_rate=1.5)
    with pytest.raises(ConfigError, match="not with encrypt_type=PW_ENCRYPT"):
        ServerConfig(upload_compress_type="DIFF_SPARSE_QUANT_EF", encrypt_type="PW_ENCRYPT")
    assert ServerConfig(download_compress_type="QUANT", encrypt_type="PW_ENCRYPT").download_codec.wire == QUANT


def test_the_yaml_compression_section(tmp_path):
    from pyflclient.server.config import flat_settings, load_yaml

    path = tmp_path / "s.yaml"
    path.write_text("compression:\n  upload_compress_type: DIFF_SPARSE_QUANT\n  upload_sparse_rate: 0.1\n"
                    "  download_compress_type: QUANT\n")
    cfg = ServerConfig.from_mapping(flat_settings(load_yaml(path), path))
    assert (cfg.upload_compress_type, cfg.upload_sparse_rate, cfg.download_compress_type) == (
        "DIFF_SPARSE_QUANT", 0.1, "QUANT")
    path.write_text("compression:\n  upload_rate: 0.1\n")
    with pytest.raises(ConfigError, match="compression.upload_rate is not a compression setting"):
        flat_settings(load_yaml(path), path)
