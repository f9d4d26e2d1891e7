"""Scale of one simulating process: clients registered / admitted per iteration, memory, time, overhead.

One row per ``N:T`` (N clients registered, T admitted per iteration; ``N:N`` is the
seed's style, every client in every iteration), each measured in a fresh child process
so its peak RSS is its own (JVM, Python and data included; the server runs in a process of
its own, ``pyflclient server``, as in the seed's set-up):

* **peak RSS** — the child's VmHWM at the end;
* **idle B/client** — live Java heap (``jcmd GC.class_histogram``, a full collection) in the
  middle of the run, minus the live heap before the clients were created, divided by N
  (N:T rows, where N − T clients wait; an upper bound: the T admitted ones, their models
  and uploads are counted too);
* **s/iteration** — simulation wall time / iterations;
* **overhead** — the simulation's wall time / the wall time of the same training steps
  done locally (the same clients' data read from their bin files, the same ``.ms`` loaded
  per client and iteration, ``TrainSession.trainStep`` on the same number of trainer
  threads), measured right after it in the same warm JVM.

With T < N the simulation uses ``clients_per_iteration=T`` (seeded availability), the
documented reproducible way to run registered ≫ admitted. Data: a ``pyflclient data
population`` of the largest N (Fashion-MNIST when Debian's set is installed, else the
bundled digits), built once under ``--work``.

    python benchmarks/scale_bench.py --rows 50:50,500:500,3500:3500,500:50,3500:50 --iterations 2

``--cpu`` adds where the CPU went, in ms per client-iteration: the local side's process, and the
simulation's client process by thread group (trainers, JIT compilers, HTTP client, the engine's
control threads, GC, Python) beside the server process — what the FL protocol costs next to the
training it carries:

    python benchmarks/scale_bench.py --rows 500:500 --iterations 2 --cpu

``--backend ray`` runs each row twice in the same run: with threads (``--trainers``
trainer threads in one JVM) and on a local Ray with ``--ray_actors`` actors × 1 CPU
(one trainer each, a JVM each), and prints the Ray run's wall time over the threads
run's (Ray's overhead: actor and JVM start-up, event relay) and each actor's peak RSS.
The Ray time counts from ``start()`` to the end, the actors' JVM start included
(Ray itself is started before, as a cluster would be):

    python benchmarks/scale_bench.py --backend ray --rows 50:50,500:50 --iterations 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # overhead_bench: the local side
sys.path.insert(0, str(HERE.parent))  # this checkout's pyflclient, installed or not


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _live_heap() -> int:
    """Bytes of live Java objects: ``jcmd GC.class_histogram`` runs a full collection and counts them
    (System.gc() only starts a concurrent cycle under pyflclient's -XX:+ExplicitGCInvokesConcurrent)."""
    out = subprocess.run(["jcmd", str(os.getpid()), "GC.class_histogram"], capture_output=True, text=True,
                         check=True).stdout
    total = next(line for line in reversed(out.splitlines()) if line.startswith("Total"))
    return int(total.split()[2])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout} s")


def _start_server(args: argparse.Namespace, t: int, port: int, root: Path) -> subprocess.Popen:
    """`pyflclient server` in a process of its own, as in the seed's set-up: threshold t, windows of an hour."""
    from pyflclient.model import LENET_TRAIN_MS

    return subprocess.Popen(
        [sys.executable, "-m", "pyflclient.cli", "server", "--model", str(LENET_TRAIN_MS), "--fl-server-port",
         str(port), "--start-fl-job-threshold", str(t), "--fl-iteration-num", str(args.iterations),
         "--client-epoch-num", str(args.epochs), "--client-learning-rate", str(args.lr),
         "--start-fl-job-time-window", "3600000", "--update-model-time-window", "3600000", "--linger", "600"],
        stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "wb"),
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))))


def local_training(model: Path, clients: list, epochs: int, lr: float, trainers: int) -> float:
    """Wall time of `epochs` local epochs of each client in `clients` (a list with repeats: one per
    client-iteration), data read from its bin file and the model loaded per client, on `trainers` threads."""
    from overhead_bench import java_batches, train_clients

    t0 = time.perf_counter()
    train_clients(model, clients, lambda c: java_batches(c, 32), epochs, lr, trainers)
    return time.perf_counter() - t0


def run_row(args: argparse.Namespace) -> dict:
    """The child: one N:T row, printed as one JSON line."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    from pyflclient.client import jvm
    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.binfiles import discover_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS
    from pyflclient.server import Server
    from overhead_bench import ThreadCpu, stat_cpu_seconds

    n, t = args.n, args.t
    work = Path(args.work)
    data = discover_clients(work / "data")[:n]
    assert len(data) == n, f"{work / 'data'} holds {len(data)} clients, need {n}"
    jvm.start_jvm()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp)
        # warm the JIT, the client classes, HTTP and the server on 8 clients, as the local side is warmed below
        warm = copy_models(LENET_TRAIN_MS, 8, root / "ms_warm")
        with Server(model=LENET_TRAIN_MS, start_fl_job_threshold=8, fl_iteration_num=2, client_epoch_num=1) as srv:
            Simulation(params_for_clients(data[:8], warm, srv.url), output_dir=root / "warm", max_trainers=args.trainers,
                       progress=False).run()
        local_training(LENET_TRAIN_MS, data[:8], 1, args.lr, args.trainers)

        models = copy_models(LENET_TRAIN_MS, n, root / "ms")
        heap0 = _live_heap()
        idle_bytes = None
        paused = 0.0
        port = _free_port()
        server = _start_server(args, t, port, root)
        try:
            _wait_listening(port)
            params = params_for_clients(data, models, f"http://127.0.0.1:{port}")
            sim = Simulation(params, output_dir=root / "sim", max_trainers=args.trainers, progress=False,
                             clients_per_iteration=t if t < n else None, seed=args.seed)
            meter = ThreadCpu().start() if args.cpu else None
            server_stat = Path(f"/proc/{server.pid}/stat")
            server_cpu0 = stat_cpu_seconds(server_stat.read_text()) if args.cpu else 0.0
            t0 = time.perf_counter()
            sim.start()
            if t < n:
                while len(sim.results.accuracy.get(1, {})) < t and sim.is_running():
                    time.sleep(0.2)  # iteration 1 is evaluated: N - T clients wait, T train
                paused = time.perf_counter()
                idle_bytes = (_live_heap() - heap0) / n
                paused = time.perf_counter() - paused  # the full collection stops every thread: not the simulation's
            sim.wait()
            sim_s = time.perf_counter() - t0 - paused
            server_cpu = stat_cpu_seconds(server_stat.read_text()) - server_cpu0 if args.cpu else 0.0
            sim_cpu = meter.stop() if meter else None
        finally:
            server.terminate()
            server.wait(30)
        results = sim.results
        statuses = sorted(set(results.status.values()))
        trained = [c for it in sorted(results.loss) for c in results.loss[it]]
        by_name = {f"client_{i}": c for i, c in enumerate(data)}
        meter = ThreadCpu().start() if args.cpu else None
        local_s = local_training(LENET_TRAIN_MS, [by_name[c] for c in trained], args.epochs, args.lr, args.trainers)
        local_cpu = meter.stop() if meter else None
    took_part = sum(1 for v in results.participation.values() if v > 0)
    return {"n": n, "t": t, "iterations": args.iterations, "epochs": args.epochs, "sim_s": sim_s,
            "local_s": local_s, "overhead": sim_s / local_s, "peak_rss_mib": _vm_hwm_mib(),
            "idle_bytes_per_client": idle_bytes, "statuses": statuses, "took_part": took_part,
            "client_iterations": len(trained), "final_avg": results.summary()[-1].avg if results.summary() else None,
            "cpu": None if sim_cpu is None else {"local": sum(local_cpu.values()), "server": server_cpu,
                                                  **_cpu_groups(sim_cpu)}}


#: --cpu: the client process's thread groups (ThreadCpu's names) gathered into what they do
CPU_GROUPS = {"trainers": ("fl-engine-train",), "JIT": ("CN CompilerThre",),
              "HTTP": ("fl-http", "HttpClient"), "control": ("fl-engine-contr",), "GC": ("GC ThreadN", "GN "),
              "python": ("python",)}


def _cpu_groups(groups: dict[str, float]) -> dict[str, float]:
    out = {k: 0.0 for k in CPU_GROUPS}
    out["other"] = 0.0
    for name, cpu in groups.items():
        key = next((k for k, prefixes in CPU_GROUPS.items() if name.startswith(prefixes)), "other")
        out[key] += cpu
    return out


def run_row_ray(args: argparse.Namespace) -> dict:
    """The child of a Ray row: the N:T simulation over ``args.ray_actors`` actors on a local Ray."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from pyflclient.client.simulation import Simulation, params_for_clients
    from pyflclient.data.binfiles import discover_clients
    from pyflclient.data.copymodels import copy_models
    from pyflclient.model import LENET_TRAIN_MS

    n, t = args.n, args.t
    work = Path(args.work)
    data = discover_clients(work / "data")[:n]
    ray.init(num_cpus=args.ray_actors, include_dashboard=False, logging_level=logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            root = Path(tmp)
            models = copy_models(LENET_TRAIN_MS, n, root / "ms")
            port = _free_port()
            server = _start_server(args, t, port, root)
            try:
                _wait_listening(port)
                params = params_for_clients(data, models, f"http://127.0.0.1:{port}")
                sim = Simulation(params, output_dir=root / "sim", progress=False, backend="ray",
                                 ray_actors=args.ray_actors, ray_cpus_per_actor=1,
                                 clients_per_iteration=t if t < n else None, seed=args.seed)
                t0 = time.perf_counter()
                sim.run()
                sim_s = time.perf_counter() - t0
                actors = sim.actors()
            finally:
                server.terminate()
                server.wait(30)
    finally:
        ray.shutdown()
    results = sim.results
    return {"n": n, "t": t, "iterations": args.iterations, "sim_s": sim_s,
            "actor_rss_mib": [a.peak_rss_mib for a in actors], "driver_rss_mib": _vm_hwm_mib(),
            "statuses": sorted(set(results.status.values())),
            "final_avg": results.summary()[-1].avg if results.summary() else None}


def _child(args: argparse.Namespace, work: Path, n: int, t: int, backend: str) -> tuple[dict | None, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--n", str(n), "--t", str(t),
           "--iterations", str(args.iterations), "--epochs", str(args.epochs), "--lr", str(args.lr),
           "--trainers", str(args.trainers), "--seed", str(args.seed), "--work", str(work), "--backend", backend,
           "--ray_actors", str(args.ray_actors)]
    if args.cpu:
        cmd.append("--cpu")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("ROW ")), None)
    if proc.returncode != 0 or line is None:
        return None, f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(line[4:]), ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="50:50,500:500,3500:3500,500:50,3500:50",
                    help="comma-separated N:T (registered:admitted per iteration)")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--trainers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--samples", type=int, default=96, help="mean samples per client of the population")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="folder for the population (reused) and the runs")
    ap.add_argument("--backend", choices=["threads", "ray"], default="threads",
                    help="ray: each row also on a local Ray, --ray_actors actors x 1 trainer, vs threads")
    ap.add_argument("--ray_actors", type=int, default=2)
    ap.add_argument("--cpu", action="store_true",
                    help="threads: also where the CPU went, ms per client-iteration: the client process's thread "
                         "groups, the server process, and the local side")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--t", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("ROW " + json.dumps(run_row_ray(args) if args.backend == "ray" else run_row(args)), flush=True)
        return

    rows = [tuple(int(v) for v in r.split(":")) for r in args.rows.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="scale_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    biggest = max(n for n, _ in rows)
    from pyflclient.data.binfiles import discover_clients
    from pyflclient.data.population import build_population

    have = len(discover_clients(work / "data")) if (work / "data").is_dir() else 0
    if have < biggest:
        t0 = time.perf_counter()
        source = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").is_dir() else "bundled"
        build_population(work / "data", biggest, source=source, samples_per_client=args.samples, seed=args.seed)
        print(f"population: {biggest} clients from {source} in {time.perf_counter() - t0:.0f} s under {work}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.iterations} iterations x {args.epochs} epoch(s), {args.trainers} trainers")
    if args.backend == "ray":
        print(f"{'N':>6} {'T':>6} {'threads s':>10} {'ray s':>8} {'ray/threads':>12}  per-actor peak RSS (MiB), "
              f"driver; statuses")
        for n, t in rows:
            th, why = _child(args, work, n, t, "threads")
            ry, why_ray = _child(args, work, n, t, "ray")
            if th is None or ry is None:
                print(f"{n:>6} {t:>6}  {why or why_ray}")
                continue
            rss = ", ".join(f"{m:.0f}" for m in ry["actor_rss_mib"])
            print(f"{n:>6} {t:>6} {th['sim_s']:>10.1f} {ry['sim_s']:>8.1f} {ry['sim_s'] / th['sim_s']:>12.2f}  "
                  f"{rss}; driver {ry['driver_rss_mib']:.0f}; {','.join(ry['statuses'])}", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        return
    cpu: dict[tuple[int, int], tuple[int, dict[str, float]]] = {}
    print(f"{'N':>6} {'T':>6} {'peak RSS':>10} {'idle B/client':>14} {'s/iter':>8} {'sim s':>8} {'local s':>8} "
          f"{'overhead':>9} {'took part':>10}  statuses")
    for n, t in rows:
        r, why = _child(args, work, n, t, "threads")
        if r is None:
            print(f"{n:>6} {t:>6}  {why}")
            continue
        idle = f"{r['idle_bytes_per_client']:,.0f}" if r["idle_bytes_per_client"] is not None else "-"
        print(f"{n:>6} {t:>6} {r['peak_rss_mib']:>7.0f} MiB {idle:>14} {r['sim_s'] / r['iterations']:>8.1f} "
              f"{r['sim_s']:>8.1f} {r['local_s']:>8.1f} {r['overhead']:>9.3f} {r['took_part']:>10}  "
              f"{','.join(r['statuses'])}", flush=True)
        if r.get("cpu"):
            cpu[(n, t)] = (r["client_iterations"], r["cpu"])
    if cpu:
        keys = ["local", "trainers", "JIT", "HTTP", "control", "GC", "python", "other", "server"]
        print("CPU ms per client-iteration (local: the same training steps; the rest: the simulation's client "
              "process by thread group, and the server process):")
        print(f"{'N':>6} {'T':>6} " + " ".join(f"{k:>8}" for k in keys) + f" {'sim all':>8}")
        for (n, t), (count, c) in cpu.items():
            sim_all = sum(v for k, v in c.items() if k != "local")
            print(f"{n:>6} {t:>6} " + " ".join(f"{1000 * c[k] / count:>8.2f}" for k in keys)
                  + f" {1000 * sim_all / count:>8.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
