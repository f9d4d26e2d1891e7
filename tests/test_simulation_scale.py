"""500 registered clients, 20 seats an iteration: `pyflclient simulate` as a user runs it, measured.

The clients are LeNet devices of 80 bundled digits each (two and a half batches of 32),
one local epoch; the server admits 20 of them an iteration for 3 iterations. Those never
(or no longer) admitted end NOT_SELECTED, which is not a failure: exit 0, nobody FAILED.
The peak RSS of the simulating process is held to a bound measured with headroom.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import LENET_MS

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 500
THRESHOLD = 20
#: Measured 2026-12: ~0.9 GiB peak RSS for 500 clients (the JVM's heap grows lazily); the
#: one-HttpClient-per-client, thread-per-client client died at 2 GiB of heap with 500.
PEAK_RSS_BOUND_MIB = 1600


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def test_500_registered_clients_20_seats_nobody_fails(tmp_path):
    from pyflclient.data import copy_models
    from pyflclient.data.population import build_population
    from pyflclient.server import Server

    build_population(tmp_path / "data", CLIENTS, source="bundled", samples_per_client=100, size_cv=0.0, seed=0)
    models = copy_models(LENET_MS, CLIENTS, tmp_path / "ms")
    srv = Server(LENET_MS, start_fl_job_threshold=THRESHOLD, fl_iteration_num=3, client_epoch_num=1,
                 start_fl_job_time_window=3000, update_model_time_window=10000).start()
    out = tmp_path / "out"
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyflclient.cli", "simulate", "--train_dataset", str(tmp_path / "data"),
             "--train_model_path", str(models[0].parent), "--domain_name", srv.url, "--client_num", str(CLIENTS),
             "--output_dir", str(out), "--no_progress", "--max_trainers", "2"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0.0
        while proc.poll() is None and time.monotonic() - t0 < 300:
            peak = max(peak, _peak_rss_mib(proc.pid))
            time.sleep(0.5)
        stdout, stderr = proc.communicate(timeout=60)
        wall = time.monotonic() - t0
    finally:
        srv.stop()
    assert proc.returncode == 0, stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    statuses = results["status"]
    assert len(statuses) == CLIENTS and "FAILED" not in statuses.values() and "STOPPED" not in statuses.values()
    took_part = [c for c, n in results["participation"].items() if n > 0]
    assert sum(results["participation"].values()) == 3 * THRESHOLD  # every seat of every iteration was used
    assert len(took_part) > THRESHOLD, "the devices not admitted ask again at the next model and win seats"
    assert f"{len(took_part)} of {CLIENTS} clients took part" in stdout
    print(f"\n{CLIENTS} clients: {wall:.1f} s, peak RSS {peak:.0f} MiB, {len(took_part)} took part")
    assert peak < PEAK_RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB"
