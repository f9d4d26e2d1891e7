"""Compression across a 4-process Redis group (devices send each request to a random process, as r1.6's
ELB client) and across a restart of the whole group: every process decodes the same uploads into the
same FedAvg (the mask is the iteration's, the base the published model), and a restarted group goes
on from its checkpoints with the devices' quantised model."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import LENET_SHAPES, fedavg_of, random_model
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.wire import compression as c
from pyflclient.wire.protocol import ResponseCode
from test_server_compression import transcribed_upload
from test_server_group import ElbDevice, server_group  # noqa: F401  (the fixture)

DSQ_EF = c.TABLE.upload["DIFF_SPARSE_QUANT_EF"].wire
QUANT = c.TABLE.download["QUANT"].wire
RATE = 0.4
ARGS = ("--upload-compress-type", "DIFF_SPARSE_QUANT_EF", "--upload-sparse-rate", str(RATE),
        "--download-compress-type", "QUANT")


def compressed_iteration(devices: list[ElbDevice], iteration: int, base: dict) -> tuple[dict, list[dict]]:
    """Each device joins (QUANT), uploads its compressed difference from the model it decoded, gets the new
    model (QUANT); returns the FedAvg of the transcribed decodings on ``base`` (the server's model of the
    iteration; fl_id order) and what each device got."""
    shapes = {n: s for n, s in LENET_SHAPES.items()}
    uploads: dict[str, tuple[dict, int]] = {}

    def device_round(i: int) -> dict:
        d = devices[i]
        while True:
            joined = d.call("start_fl_job", 0, (QUANT,))
            if joined.retcode == ResponseCode.SUCCEED and joined.iteration == iteration:
                break
        assert not joined.weights and joined.upload_compress_type == DSQ_EF
        held = c.decode_model(joined.compressed, shapes)
        rng = np.random.default_rng(iteration * 100 + i)
        D = np.float32(d.data_size)
        diff = {n: ((held[n] + rng.normal(0, 0.05, held[n].shape).astype(np.float32)) * D - held[n] * D)
                for n in held}
        uploads[d.fl_id] = (transcribed_upload(base, diff, iteration, RATE, d.data_size), d.data_size)
        reply = d.call("update_model_compressed", iteration, diff, DSQ_EF, RATE)
        assert reply.retcode == ResponseCode.SUCCEED or "already uploaded" in reply.reason, reply.reason
        while True:
            got = d.call("get_model", iteration, (QUANT,))
            if got.retcode == ResponseCode.SUCCEED:
                return c.decode_model(got.compressed, shapes)
            assert got.retcode == ResponseCode.SucNotReady, got.reason

    with ThreadPoolExecutor(len(devices)) as pool:
        got = list(pool.map(device_round, range(len(devices))))
    order = sorted(uploads)
    return fedavg_of([uploads[f][0] for f in order], [uploads[f][1] for f in order]), got


def check(group, iteration: int, want: dict, got: list[dict]) -> None:  # type: ignore[no-untyped-def]
    published = Checkpoints(group.folder / "ckpt").load(iteration)
    served = c.served_model(published)
    for n in want:
        np.testing.assert_allclose(np.asarray(published[n]).ravel(), want[n].ravel(), rtol=0, atol=1e-6)
        for model in got:  # every device decoded the same quantised model, whichever process served it
            assert model[n].tobytes() == served[n].reshape(model[n].shape).tobytes()


@pytest.mark.timeout(180)
def test_four_processes_and_a_restart_with_compression_on(redis_server, server_group):  # noqa: F811
    model = random_model(LENET_SHAPES, seed=5)
    group = server_group(redis_server.address, model, iterations=3, args=ARGS)
    devices = [ElbDevice(group.ports, f"dev-{i}", data_size=16 * (i + 1), seed=i) for i in range(8)]
    base = model
    for iteration in (1, 2):
        want, got = compressed_iteration(devices, iteration, base)
        check(group, iteration, want, got)
        base = {n: np.asarray(a).reshape(LENET_SHAPES[n]) for n, a in
                Checkpoints(group.folder / "ckpt").load(iteration).items()}
    group.stop()
    redis_server.stop()
    redis_server.start()  # empty: the checkpoints are all that is left
    group = server_group(redis_server.address, model, iterations=3, args=ARGS)
    for d in devices:
        d.ports = group.ports
    want, got = compressed_iteration(devices, 3, base)
    check(group, 3, want, got)
    assert "Traceback" not in group.log()


@pytest.mark.timeout(120)
def test_a_group_counts_every_byte_its_devices_sent_in_metrics(redis_server, server_group, monkeypatch):  # noqa: F811
    """Every process adds its counts to the store's tally of the open iteration; the closing process writes
    the sum: the lines of metrics.jsonl plus the tally not taken yet (the exchanges after the last close)
    are the devices' own counts, byte for byte."""
    import asyncio
    import json
    import threading
    import time

    from pyflclient.server.device import DeviceClient
    from pyflclient.server.redis_store import RedisStore

    sent = {"up": 0, "down": 0}
    lock = threading.Lock()
    post = DeviceClient.post

    def counted(client, name, body):  # type: ignore[no-untyped-def]
        status, data = post(client, name, body)  # the devices' own count of what went each way
        with lock:
            sent["up"] += len(body)
            sent["down"] += len(data)
        return status, data

    monkeypatch.setattr(DeviceClient, "post", counted)

    model = random_model(LENET_SHAPES, seed=6)
    group = server_group(redis_server.address, model, threshold=4, iterations=2, args=ARGS)
    devices = [ElbDevice(group.ports, f"dev-{i}", data_size=16 * (i + 1), seed=i) for i in range(4)]
    base = model
    for iteration in (1, 2):
        compressed_iteration(devices, iteration, base)
        base = {n: np.asarray(a).reshape(LENET_SHAPES[n]) for n, a in
                Checkpoints(group.folder / "ckpt").load(iteration).items()}
    time.sleep(0.5)  # every process's follow loop has passed its last counts on
    lines = [json.loads(x) for x in (group.folder / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [1, 2]

    async def rest() -> dict[str, int]:
        store = RedisStore(redis_server.address)
        try:
            return await store.take_traffic(3)
        finally:
            await store.aclose()

    left = asyncio.run(rest())
    assert sum(m["bytes_up"] for m in lines) + left.get("bytes_up", 0) == sent["up"]
    assert sum(m["bytes_down"] for m in lines) + left.get("bytes_down", 0) == sent["down"]
    # per round too (a count made as an iteration closes may fall into the next line, never out of all)
    uploads = sum(m["bytes_by_round"].get("updateModel", {}).get("requests", 0) for m in lines)
    assert uploads + left.get("updateModel|requests", 0) == 8
