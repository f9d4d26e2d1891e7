"""Every byte accounted for, on the server: the body of each device request and reply is counted
(pyflclient.server.traffic), per iteration in metrics.jsonl and the iteration's log line, and the
counts equal what the devices sent and received, byte for byte."""
from __future__ import annotations

import json
import logging

from pyflclient.server.device import DeviceClient


class CountingDevice(DeviceClient):
    """A protocol device that counts the bodies it posts and the bodies it gets back."""

    def __init__(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(url, **kwargs)
        self.up = 0
        self.down = 0

    def post(self, round_name: str, body: bytes) -> tuple[int, bytes]:
        status, data = super().post(round_name, body)
        self.up += len(body)
        self.down += len(data)
        return status, data


def test_metrics_count_the_bodies_the_devices_sent_and_received(start_server, small_model, run_round, tmp_path,
                                                                caplog):
    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=2, checkpoint_dir=str(tmp_path))
    devices = [CountingDevice(srv.url, data_size=10 + i, fl_id=f"d{i}") for i in range(3)]
    try:
        with caplog.at_level(logging.INFO, logger="pyflclient.server.rounds"):
            run_round(srv, devices, seed=1)
            first = (sum(d.up for d in devices), sum(d.down for d in devices))
            for d in devices:
                d.get_model(1)
            run_round(srv, devices, seed=2)
        total = (sum(d.up for d in devices), sum(d.down for d in devices))
    finally:
        for d in devices:
            d.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["bytes_up"], m["bytes_down"]) for m in lines] == [first, (total[0] - first[0], total[1] - first[1])]
    assert lines[0]["requests"] == 6 and lines[1]["requests"] == 9
    assert lines[0]["bytes_up_per_client"] == round(first[0] / 3, 1)
    assert lines[1]["bytes_by_round"]["getModel"]["requests"] == 3
    # an upload of the three-weight model carries its 25 floats: more than 100 bytes up per device
    assert lines[0]["bytes_by_round"]["updateModel"]["bytes_up"] > 3 * 100
    assert srv.metrics()[1]["bytes_down"] == total[1] - first[1]
    said = [r.getMessage() for r in caplog.records if "MB up" in r.getMessage()]
    assert len(said) == 2 and f"{first[0] / 1e6:.2f} MB up / {first[1] / 1e6:.2f} MB down" in said[0]
