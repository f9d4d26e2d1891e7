"""Threads in one JVM vs one JVM process per client (the seed's way): wall time and peak RSS.

The same federated job — N clients (default 16) of the bundled digits, LeNet,
3 iterations, every client in every iteration — is run twice against a fresh
FL server in its own process:

* **threads**: one Python process, one JVM, N clients as Java threads
  (``pyflclient.Simulation``; at most ``--max_trainers`` train at once, default: cores);
* **processes**: N ``java -cp <jars> com.mindspore.flclient.SyncFLJob --task train ...``
  processes, as the seed's ``run_client_x86.py`` launched them (default JVM heap).

Wall time runs from launching the clients to the last one's exit (JVM start-up
included). Peak RSS is the largest sum, over the client process(es), of
``VmRSS`` sampled every 50 ms (the server is not counted). One run each::

    python benchmarks/threads_vs_processes.py [--clients 16] [--iterations 3] [--out /tmp/tvp]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyflclient.client import jvm  # noqa: E402
from pyflclient.data import build_bundled_clients, copy_models  # noqa: E402
from pyflclient.model import LENET_TRAIN_MS as MODEL  # noqa: E402

SERVER = textwrap.dedent("""
    import sys
    from pyflclient.server import Server
    n, iterations, epochs, model = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    srv = Server(model, start_fl_job_threshold=n, fl_iteration_num=iterations, client_epoch_num=epochs,
                 start_fl_job_time_window=600000, update_model_time_window=600000).start()
    print(srv.url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
    srv.stop()
""")

THREADS = textwrap.dedent("""
    import sys, json
    import pyflclient as fl
    from pyflclient.data import discover_clients
    data, models, url, out, trainers = sys.argv[1:6]
    clients = discover_clients(data)
    params = [fl.FLParameter(domain_name=url, train_dataset=c.folder, train_model_path=f"{models}/lenet_train{i}.ms",
                             sleep_time_ms=100) for i, c in enumerate(clients)]
    sim = fl.Simulation(params, output_dir=out, max_trainers=int(trainers), progress=False)
    sim.run()
    ok = sum(s == "SUCCESS" for s in sim.results.status.values())
    print(json.dumps({"ok": ok, "final_avg": sim.results.summary()[-1].avg}))
""")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Samples the summed RSS of a set of pids every 50 ms in a background thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_kib = max(self.peak_kib, sum(rss_kib(p) for p in self.pids))

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak_kib


def start_server(n: int, iterations: int, epochs: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(n), str(iterations), str(epochs), str(MODEL)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def run_threads(data: Path, models: Path, url: str, out: Path, trainers: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", THREADS, str(data), str(models), url, str(out), str(trainers)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    sampler = PeakRss([proc.pid])
    stdout, _ = proc.communicate()
    wall = time.monotonic() - t0
    peak = sampler.stop()
    info = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_rss_mib": peak / 1024, "clients_ok": info["ok"], "final_avg_accuracy": info["final_avg"]}


def run_processes(clients: list, models: Path, url: str, out: Path) -> dict:
    client_jar, case_jar = jvm.find_jars()
    cp = f"{client_jar}{os.pathsep}{case_jar}"
    vector = ["--add-modules=jdk.incubator.vector"] if jvm._has_vector_module() else []
    procs = []
    t0 = time.monotonic()
    for i, c in enumerate(clients):
        log = out / f"client_{i}" / "client.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["java", *vector, "-cp", cp, "com.mindspore.flclient.SyncFLJob", "--task", "train",
               "--flName", "com.mindspore.flclient.demo.lenet.LenetClient",
               "--trainModelPath", str(models / f"lenet_train{i}.ms"), "--domainName", url,
               "--trainData", f"{c.train_data},{c.train_label}", "--evalData", f"{c.test_data},{c.test_label}",
               "--batchSize", "32", "--clientID", f"p{i}", "--logPath", str(log), "--sleepTime", "100"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    sampler = PeakRss([p.pid for p in procs])
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - t0
    peak = sampler.stop()
    return {"wall_s": wall, "peak_rss_mib": peak / 1024, "clients_ok": sum(c == 0 for c in codes)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max_trainers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/pyflclient-threads-vs-processes"))
    args = ap.parse_args()
    out = args.out.resolve()
    clients = build_bundled_clients(out / "data", num_clients=args.clients, batch_size=32, seed=0)
    report: dict = {"clients": args.clients, "iterations": args.iterations, "epochs": args.epochs,
                    "cores": os.cpu_count(), "samples_per_client": [c.num_train for c in clients]}
    for mode in ("threads", "processes"):
        models = out / mode / "ms"
        copy_models(MODEL, args.clients, models)
        server, url = start_server(args.clients, args.iterations, args.epochs)
        try:
            if mode == "threads":
                report[mode] = run_threads(out / "data", models, url, out / mode / "run", args.max_trainers)
            else:
                report[mode] = run_processes(clients, models, url, out / mode / "run")
        finally:
            server.stdin.close()
            server.wait(timeout=30)
        print(f"{mode:9s}: {report[mode]}", flush=True)
    t, p = report["threads"], report["processes"]
    report["wall_ratio_processes_over_threads"] = p["wall_s"] / t["wall_s"]
    report["rss_ratio_processes_over_threads"] = p["peak_rss_mib"] / t["peak_rss_mib"]
    print(f"| mode | wall time | peak RSS (clients) | clients OK |\n|---|---|---|---|\n"
          f"| {args.clients} threads, 1 JVM | {t['wall_s']:.1f} s | {t['peak_rss_mib']:.0f} MiB | {t['clients_ok']} |\n"
          f"| {args.clients} JVM processes | {p['wall_s']:.1f} s | {p['peak_rss_mib']:.0f} MiB | {p['clients_ok']} |\n"
          f"| ratio processes / threads | {report['wall_ratio_processes_over_threads']:.2f}x | "
          f"{report['rss_ratio_processes_over_threads']:.2f}x | |")
    (out / "threads_vs_processes.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
