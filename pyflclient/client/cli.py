"""``pyflclient simulate`` and ``pyflclient stop``: the seed's ``run_client_x86.py``, as threads.

The seed started one ``java -jar`` process per client from a shell loop and
stopped them with ``ps | grep | kill`` on a name pattern. Here one Python
process runs every client as a Java thread of one JVM (:class:`Simulation`),
with the seed's flags; it records its pid (and the process start time, so a
recycled pid is never signalled) in ``<output_dir>/pyflclient-simulate.pid``.
``pyflclient stop`` reads that file and sends SIGTERM, which the simulation
turns into a clean stop of every client (within 2 s); only if the process is
still alive after ``--timeout`` is it killed.

Tasks (``--task``): ``train`` (the round loop of every client, results saved as
``results.json`` / ``results.csv`` / ``accuracy.png``), ``inference`` (each
client predicts its test data with its model: ``client_i/inference_labels.txt``),
``getModel`` (each client downloads the latest global model into its ``.ms``).

Past one machine (``--backend ray``): the clients are split over Ray actors, each a
process with its own JVM, on a local Ray or on a cluster (``--ray_address``); the
bars, results and exit codes are the same (docs/cluster.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..cli_parser import SuggestingArgumentParser
from . import r16
from .backend import BACKENDS
from .errors import PyflclientError
from .params import DEFAULT_FL_NAME
from .r16 import null as _null

log = logging.getLogger(__name__)

PID_FILE = "pyflclient-simulate.pid"


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    """The seed's flags (same names and meaning), then pyflclient's own."""
    seed = p.add_argument_group("the seed's run_client_x86.py flags")
    seed.add_argument("--jarPath", type=_null, default=None, help="mindspore-lite-java-flclient.jar (default: the one shipped in the package)")
    seed.add_argument("--case_jarPath", type=_null, default=None, help="quick_start_flclient.jar (default: shipped)")
    seed.add_argument("--train_dataset", required=True, type=Path,
                      help="folder with one sub-folder per client (<user>_bn_<B>_train_data.bin ...), e.g. data/bundled")
    seed.add_argument("--test_dataset", type=_null, default=None,
                      help="same layout for evaluation data; default (null): the test files in each client's train folder")
    seed.add_argument("--flName", default=DEFAULT_FL_NAME, help="case class in the case jar")
    seed.add_argument("--train_model_path", required=True, type=Path,
                      help="folder of the per-client models <train_ms_name><i>.ms (pyflclient copy-models)")
    seed.add_argument("--infer_model_path", type=_null, default=None,
                      help="folder of the inference models (default: --train_model_path)")
    seed.add_argument("--train_ms_name", default="lenet_train", help="model file stem: <train_ms_name><i>.ms")
    seed.add_argument("--infer_ms_name", type=_null, default=None, help="inference model stem (default: --train_ms_name)")
    seed.add_argument("--domain_name", default="http://127.0.0.1:6666", help="the FL server, http(s)://IP:port")
    seed.add_argument("--cert_path", type=_null, default=None, help="CA certificate (PEM) for https")
    seed.add_argument("--use_elb", type=_bool, default=False, help="spread requests over --server_num servers (true/false)")
    seed.add_argument("--server_num", type=int, default=1, help="servers on consecutive ports with --use_elb")
    seed.add_argument("--client_num", type=int, default=0, help="clients to simulate (0: one per data folder)")
    seed.add_argument("--thread_num", type=int, default=1, help="intra-op threads per client")
    seed.add_argument("--server_mode", default="FEDERATED_LEARNING", choices=["FEDERATED_LEARNING", "HYBRID_TRAINING"])
    seed.add_argument("--batch_size", type=int, default=None,
                      help="the model's batch (default: read from the .ms model; another value is refused)")
    seed.add_argument("--task", default="train", choices=["train", "inference", "getModel"])
    r16.add_arguments(seed)
    own = p.add_argument_group("pyflclient")
    own.add_argument("--output_dir", type=Path, default=Path("."),
                     help="client_i/client.log, results and the pid file go here (default: .)")
    own.add_argument("--max_trainers", type=int, default=None,
                     help="clients training at the same time (default: number of cores)")
    own.add_argument("--iterations", type=int, default=None, help="the server's iteration count, for the progress bars")
    own.add_argument("--retry_timeout_s", type=int, default=None,
                     help="seconds a client keeps retrying a failing or unreachable server (from the first failure) "
                          "before it fails; the waits grow from the poll interval to 10 s with jitter "
                          "(default: 300, so clients outlive a server restart)")
    own.add_argument("--max_retries", type=int, default=None,
                     help="also fail after this many retries in a row, whichever comes first "
                          "(default: no count bound, only --retry_timeout_s)")
    own.add_argument("--eval_every", type=int, default=1,
                     help="evaluate the new global model after every k-th iteration and the last one (default: 1, "
                          "as r1.6)")
    own.add_argument("--eval_fraction", type=float, default=1.0,
                     help="in those iterations, the share of clients that evaluate, a sample drawn from --seed, "
                          "the client's fl_id and the iteration (default: 1.0, all)")
    own.add_argument("--clients_per_iteration", type=int, default=None,
                     help="simulated availability: only this many clients, a sample drawn from --seed, ask to take "
                          "part in each iteration; with the server's start_fl_job_threshold the run is reproducible "
                          "and participation uniform (default: every client asks)")
    own.add_argument("--seed", type=int, default=0,
                     help="seed of the evaluation and availability samples and of the order in which waiting "
                          "clients ask (default: 0)")
    own.add_argument("--device_profiles", default=None, metavar="FILE|NAME",
                     help="the device profiles the server's simulated clock runs on (its device_profiles: uniform, "
                          "mobile, a JSON file, FedScale's capacity file; docs/devices.md): checked here, and the "
                          "clients then leave the ask order to the server (default: none)")
    own.add_argument("--device_availability", default=None, metavar="FILE",
                     help="FedScale's client behaviour trace, as the server's device_availability: the clients "
                          "stay silent while it says they are offline (default: none)")
    own.add_argument("--no_progress", action="store_true", help="no progress bars")
    own.add_argument("--pki_dir", type=Path, default=None,
                     help="sign as r1.6's pkiVerify (for a server with pki_verify true): device i signs with the "
                          "folder DIR/<its fl_id> made by `pyflclient pki issue --device <fl_id> --out DIR` "
                          "(fl_ids are f<i>_<data folder name>)")
    cluster = p.add_argument_group("cluster (Ray; pip install 'pyflclient[ray]'; see docs/cluster.md)")
    cluster.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                         help="threads: every client in this process's JVM (default); ray: the clients split over "
                              "Ray actors, each a process with its own JVM")
    cluster.add_argument("--ray_address", default=None,
                         help="the Ray cluster to run on: auto or HOST:PORT of `ray start --head` (default: start a "
                              "local Ray for this run)")
    cluster.add_argument("--ray_actors", type=int, default=None,
                         help="actors to split the clients over (default: the cluster's CPUs / --ray_cpus_per_actor)")
    cluster.add_argument("--ray_cpus_per_actor", type=float, default=None,
                         help="CPUs Ray reserves for each actor; also its trainers unless --max_trainers (default: 1)")
    cluster.add_argument("--ship_data", action="store_true",
                         help="send each client's bin files and model through Ray's object store to its actor "
                              "(default: the actors read the paths as given: one machine or a shared filesystem)")
    cluster.add_argument("--max_actor_restarts", type=int, default=None,
                         help="restart a dead actor up to this many times; its clients start over and rejoin "
                              "(default: 0: they end FAILED, the others go on)")
    own.add_argument("--detach", action="store_true",
                     help="run in the background (like the seed's `&`); output in <output_dir>/simulate.log")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sim = subparsers.add_parser(
        "simulate", help="run N clients as threads of one JVM against an FL server (the seed's run_client_x86.py)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_simulate_arguments(sim)
    sim.set_defaults(func=simulate_main)
    stop = subparsers.add_parser("stop", help="stop the simulation started in --output_dir (by its recorded pid)")
    stop.add_argument("--output_dir", type=Path, default=Path("."), help="the simulation's --output_dir (default: .)")
    stop.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a clean stop before killing")
    stop.set_defaults(func=stop_main)
    plot = subparsers.add_parser(
        "plot", help="draw several runs on one figure: AVG accuracy against the iteration and against the "
                     "cumulative MB communicated",
        description="Each RUN is a run's output folder (holding results.json) or a results.json; the figure "
                    "has AVG test accuracy per iteration (left) and against the cumulative MB the clients sent "
                    "and received (right), so compressed and uncompressed runs compare on one figure.")
    plot.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="a run's folder or its results.json")
    plot.add_argument("--labels", default=None, help="comma-separated legend labels, one per RUN (default: the "
                                                      "folder names)")
    plot.add_argument("--out", type=Path, default=Path("comparison.png"), help="the PNG to write "
                                                                               "(default: comparison.png)")
    plot.set_defaults(func=plot_main)


def plot_main(args: argparse.Namespace) -> int:
    """``pyflclient plot RUN_A RUN_B ... [--labels A,B] [--out comparison.png]``."""
    from .results import SimulationResults, plot_runs

    files = [r / "results.json" if r.is_dir() else r for r in args.runs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"pyflclient plot: no results.json at {', '.join(missing)}; give a run's --output_dir "
                         f"or its results.json")
    labels = args.labels.split(",") if args.labels else [f.parent.name or str(f) for f in files]
    if len(labels) != len(files):
        raise SystemExit(f"pyflclient plot: --labels names {len(labels)} runs, {len(files)} RUNs given")
    runs = []
    for label, f in zip(labels, files):
        try:
            runs.append((label, SimulationResults.load_json(f)))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"pyflclient plot: {f} is not a results.json ({exc})") from None
    print(plot_runs(runs, args.out))
    return 0


# -- building the clients ----------------------------------------------------------------------
def _model_paths(folder: Path, stem: str, n: int, flag: str) -> list[Path]:
    if folder.is_file():
        if n == 1:
            return [folder]
        raise SystemExit(f"{flag} {folder} is one file but {n} clients need one copy each; "
                         f"`pyflclient copy-models --model {folder} --num {n} --out <folder>` and pass the folder")
    paths = [folder / f"{stem}{i}.ms" for i in range(n)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} of {n} model files missing under {folder} (first: {missing[0]}); "
                         f"`pyflclient copy-models --model <{stem}.ms> --num {n} --out {folder}`")
    return paths


def build_params(args: argparse.Namespace) -> tuple[list[str], list[Any]]:
    """Client names and FLParameters from the seed's flags (one client per data folder, in name order)."""
    from ..data.binfiles import discover_clients
    from .simulation import params_for_clients

    r16.apply(args)
    train = discover_clients(args.train_dataset, require_test=False)
    n = args.client_num or len(train)
    if n < 1 or n > len(train):
        raise SystemExit(f"--client_num {args.client_num}: {args.train_dataset} holds {len(train)} client folders")
    train = train[:n]
    tests: dict[str, Any] = {}
    if args.test_dataset is not None:
        tests = {c.name: c for c in discover_clients(args.test_dataset, require_test=True)}
    train_models = _model_paths(args.train_model_path, args.train_ms_name, n, "--train_model_path")
    infer_models = _model_paths(Path(args.infer_model_path), args.infer_ms_name or args.train_ms_name, n,
                                "--infer_model_path") if args.infer_model_path else train_models
    if args.test_dataset is not None:
        missing = [c.name for c in train if c.name not in tests]
        if missing:
            raise SystemExit(f"--test_dataset {args.test_dataset} has no folder for clients {missing[:5]}")
        train = [dataclasses.replace(c, test_data=tests[c.name].test_data, test_label=tests[c.name].test_label)
                 for c in train]
    out = args.output_dir.resolve()
    names = [f"client_{i}" for i in range(n)]
    params = params_for_clients(train, train_models, args.domain_name, infer_model_path=None, fl_name=args.flName,
                                batch_size=args.batch_size, thread_num=args.thread_num, server_mode=args.server_mode,
                                use_elb=args.use_elb, server_num=args.server_num, cert_path=args.cert_path,
                                retry_timeout_s=args.retry_timeout_s, max_retries=args.max_retries,
                                **r16.parameter_fields(args))
    params = [p.replace(infer_model_path=im, log_path=out / name / "client.log")
              for p, im, name in zip(params, infer_models, names)]
    if getattr(args, "pki_dir", None) is not None:
        missing = [p.client_id for p in params if not (args.pki_dir / p.client_id).is_dir()]
        if missing:
            raise SystemExit(f"--pki_dir {args.pki_dir}: no folder for the devices {missing[:5]} (make them with "
                             f"pyflclient pki issue --device {missing[0]} --out {args.pki_dir})")
        params = [p.replace(pki_verify=True, pki_path=args.pki_dir / p.client_id) for p in params]
    return names, params


# -- pid file ------------------------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/pid/stat), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def write_pid_file(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PID_FILE
    path.write_text(json.dumps({"pid": os.getpid(), "start_time": _start_time(os.getpid()),
                                "argv": sys.argv}) + "\n")
    return path


def _recorded_process(out_dir: Path) -> tuple[int, Path] | None:
    path = out_dir / PID_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(info["pid"])
    if _start_time(pid) != info.get("start_time"):
        return None  # that simulation is gone (the pid may belong to another process now)
    return pid, path


# -- commands ---------------------------------------------------------------------------------------------
def simulate_main(args: argparse.Namespace) -> int:
    out = args.output_dir.resolve()
    running = _recorded_process(out)
    if running is not None:
        print(f"pyflclient simulate: a simulation (pid {running[0]}) already runs in {out}; "
              f"stop it with `pyflclient stop --output_dir {out}` or choose another --output_dir", file=sys.stderr)
        return 2
    if args.detach:
        return _detach(args)
    # A shell starts `cmd &` with SIGINT ignored; take Ctrl-C and SIGTERM back so a
    # stop always runs the clean path (stop every client, save what was measured).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    out = args.output_dir.resolve()
    pid_file = write_pid_file(out)
    from . import jvm

    try:
        # the handlers above run only between Java calls (jvm.signals_deferred), never inside one
        with jvm.signals_deferred():
            check_backend(args)
            names, params = build_params(args)
            jvm.deliver_signals()
            if args.backend == "threads":  # with Ray the JVMs are the actors'
                jvm.start_jvm(args.jarPath, args.case_jarPath)
                jvm.deliver_signals()
            if args.task == "train":
                return _train(args, names, params, out)
            return _per_client(args.task, names, params, out)
    except KeyboardInterrupt:
        log.warning("stopped")
        return 130
    except (ValueError, OSError, PyflclientError) as exc:
        # wrong flags or files: the message says which and what to do; no traceback
        print(f"pyflclient simulate: {exc}", file=sys.stderr)
        return 2
    finally:
        pid_file.unlink(missing_ok=True)


RAY_FLAGS = ("ray_address", "ray_actors", "ray_cpus_per_actor", "ship_data", "max_actor_restarts")


def check_backend(args: argparse.Namespace) -> None:
    """One-line errors for flags that do not go together (before any file is read)."""
    given = [f for f in RAY_FLAGS if getattr(args, f) not in (None, False)]
    if args.backend == "threads" and given:
        raise ValueError(f"--{given[0]} is a flag of --backend ray; add --backend ray or leave it out")
    if args.backend == "ray":
        if args.task != "train":
            raise ValueError(f"--backend ray runs --task train; --task {args.task} runs in this process "
                             f"(leave --backend out)")
        if args.ray_actors is not None and args.ray_actors < 1:
            raise ValueError(f"--ray_actors {args.ray_actors}: need at least 1")
        if args.ray_cpus_per_actor is not None and args.ray_cpus_per_actor <= 0:
            raise ValueError(f"--ray_cpus_per_actor {args.ray_cpus_per_actor:g}: need a number > 0")
        if args.max_actor_restarts is not None and args.max_actor_restarts < 0:
            raise ValueError(f"--max_actor_restarts {args.max_actor_restarts}: need 0 or more")
        from . import ray_backend

        ray_backend.import_ray()
        if args.ray_address is not None:
            ray_backend.check_reachable(args.ray_address, name="--ray_address")


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend == "threads":
        return {}
    return dict(backend="ray", ray_address=args.ray_address, ray_actors=args.ray_actors,
                ray_cpus_per_actor=args.ray_cpus_per_actor or 1, ship_data=args.ship_data,
                max_actor_restarts=args.max_actor_restarts or 0, jar_path=args.jarPath,
                case_jar_path=args.case_jarPath)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _train(args: argparse.Namespace, names: list[str], params: list[Any], out: Path) -> int:
    from .simulation import Simulation

    def show(s: Any) -> None:
        line = f"iteration {s.iteration}: AVG {s.avg:.4f}  TOP5 {s.top5:.4f}  LOW5 {s.low5:.4f}  ({s.clients} clients)"
        if args.no_progress:  # with bars the progress writes its own line per iteration above them
            print(line, flush=True)

    try:
        sim = Simulation(params, names=names, output_dir=out, max_trainers=args.max_trainers,
                         progress=not args.no_progress, iterations=args.iterations, on_round=show,
                         eval_every=args.eval_every, eval_fraction=args.eval_fraction, seed=args.seed,
                         clients_per_iteration=args.clients_per_iteration, device_profiles=args.device_profiles,
                         device_availability=args.device_availability,
                         **_backend_options(args))
    except ValueError as exc:
        raise ValueError(f"--{str(exc).split(':')[0]}: {str(exc).split(':', 1)[1].strip()}") from None
    try:
        sim.run()
    finally:
        files = sim.save(out)
        print(f"results: {files['json']}, {files['csv']}, {files.get('png')}", flush=True)
    took_part, idle = sim.results.participants()
    not_selected = sum(1 for s in sim.results.status.values() if s == "NOT_SELECTED")
    print(f"{took_part} of {len(names)} clients took part in at least one iteration, {idle} in none; "
          f"{not_selected} ended NOT_SELECTED (the job ended while they waited to be admitted)", flush=True)
    for a in sim.actors():
        if a.state == "dead" or a.restarts:
            fate = "died; its clients ended FAILED" if a.state == "dead" else f"was restarted {a.restarts} time(s)"
            print(f"Ray actor {a.index} (clients {', '.join(a.clients[:5])}{' ...' if len(a.clients) > 5 else ''}) "
                  f"{fate}", file=sys.stderr, flush=True)
    failed = {n: s for n, s in sim.results.status.items() if s not in ("SUCCESS", "NOT_SELECTED")}
    if failed:
        print(f"{len(failed)} of {len(names)} clients failed: {dict(list(failed.items())[:5])}; "
              f"see {out}/client_*/client.log", file=sys.stderr)
        return 1
    print(f"{len(names)} clients finished in {sim.wall_time_s:.1f} s", flush=True)
    return 0


def _per_client(task: str, names: list[str], params: list[Any], out: Path) -> int:
    from .errors import PyflclientError
    from .job import FLJob

    bad = 0
    for name, p in zip(names, params):
        job = FLJob(p, name=name)
        try:
            if task == "inference":
                labels = job.infer()
                target = out / name / "inference_labels.txt"
                target.write_text(" ".join(str(int(x)) for x in labels) + "\n")
                print(f"{name}: {len(labels)} labels -> {target}", flush=True)
            else:
                weights = job.get_model()
                print(f"{name}: {len(weights)} weights -> {p.train_model_path}", flush=True)
        except PyflclientError as exc:
            bad += 1
            print(f"{name}: {exc}", file=sys.stderr, flush=True)
    return 1 if bad else 0


def _detach(args: argparse.Namespace) -> int:
    out = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a != "--detach"]
    if not argv or "simulate" not in argv:
        raise SystemExit("--detach works from the pyflclient command line")
    if "--no_progress" not in argv:
        argv.append("--no_progress")  # bars redrawn with \r only clutter a log file
    if not any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv[:argv.index("simulate")]):
        argv.insert(0, "-v")  # the log file keeps the INFO lines a terminal shows only with -v
    with open(out / "simulate.log", "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "pyflclient.cli", *argv], stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _recorded_process(out) is not None:
            print(f"simulation running in the background (pid {proc.pid}); log: {out / 'simulate.log'}; "
                  f"stop it with `pyflclient stop --output_dir {out}`")
            return 0
        time.sleep(0.1)
    print(f"the background simulation did not start (exit code {proc.poll()}); see {out / 'simulate.log'}",
          file=sys.stderr)
    return 1


def stop_main(args: argparse.Namespace) -> int:
    out = args.output_dir.resolve()
    found = _recorded_process(out)
    if found is None:
        print(f"no running simulation recorded in {out / PID_FILE}", file=sys.stderr)
        return 1
    pid, path = found
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if _start_time(pid) is None or _is_zombie(pid):
            print(f"stopped the simulation (pid {pid})")
            return 0
        time.sleep(0.05)
    log.warning("pid %d did not stop within %.1f s; killing it", pid, args.timeout)
    os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    print(f"killed the simulation (pid {pid})")
    return 0


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main(argv: Sequence[str] | None = None, prog: str = "pyflclient simulate") -> int:
    """``python -m pyflclient.client.cli`` (and ``python -m pyflclient.run_client_x86``) runs ``simulate`` directly."""
    parser = SuggestingArgumentParser(prog=prog, description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_simulate_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return simulate_main(args)


if __name__ == "__main__":
    sys.exit(main())
