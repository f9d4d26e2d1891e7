"""Ctrl-C on a running Simulation: every client stops within 2 s and no client thread is left.

Run in a child process: SIGINT must reach a real main thread, and the child's JVM is its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import LENET_MS

CHILD = textwrap.dedent('''
    import signal, sys, threading
    import jpype
    import pyflclient as fl
    from pyflclient.data import copy_models, discover_clients
    from pyflclient.server import Server

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    data, model, out = sys.argv[1:4]
    clients = discover_clients(data)[:4]
    models = copy_models(model, 4, out + "/ms")
    srv = Server(model, start_fl_job_threshold=4, fl_iteration_num=100, client_epoch_num=500).start()
    once = threading.Event()

    def training(*args):
        if not once.is_set():
            once.set()
            print("TRAINING", flush=True)

    params = [fl.FLParameter(domain_name=srv.url, train_dataset=c.folder, train_model_path=m, sleep_time_ms=50)
              for c, m in zip(clients, models)]
    sim = fl.Simulation(params, output_dir=out, max_trainers=2, progress=False, on_loss=training)
    try:
        sim.run()
    except KeyboardInterrupt:
        Thread = jpype.JClass("java.lang.Thread")
        left = [str(t.getName()) for t in Thread.getAllStackTraces().keySet()
                if str(t.getName()).startswith("pyflclient-") and t.isAlive()]
        print("STOPPED", len(left), flush=True)
        sys.exit(130)
    print("FINISHED", flush=True)
''')


def test_ctrl_c_stops_every_client_within_two_seconds(bundled_clients, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, str(script), str(bundled_clients[0].folder.parent), str(LENET_MS),
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # blocks until the first local epoch ended
        assert line.strip() == "TRAINING", proc.stderr.read()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline()
        elapsed = time.monotonic() - t0
        assert line.split() == ["STOPPED", "0"], proc.stderr.read()  # no client thread left
        assert elapsed < 2.0
        assert proc.wait(timeout=10) == 130  # and the process exits (no hang on Java threads)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
