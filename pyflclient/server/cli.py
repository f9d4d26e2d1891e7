"""``pyflclient server``: run the FL server from a shell.

Flags are MindSpore's ``set_fl_context`` names with dashes (``--start-fl-job-threshold``);
``--config server.yaml`` takes the same keys with underscores (plus ``model``), and
flags given on the command line override the file. One line is printed per finished
iteration; Ctrl-C or SIGTERM stops the server cleanly (every finished iteration is
already checkpointed).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from pyflclient.server.app import ServerCore
from pyflclient.server.checkpoint import ModelFileError, check_plan_batch, load_model
from pyflclient.server.config import ConfigError, ServerConfig, flat_settings, load_yaml
from pyflclient.server.rounds import IterationResult
from pyflclient.server.transport import raise_open_file_limit

log = logging.getLogger(__name__)

def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("server", help="run the cloud-side FL server",
                              description="Run the cloud-side FL server (MindSpore r1.6 device protocol). "
                                          "Flags are set_fl_context names with dashes.")
    p.add_argument("--model", help="initial model: a .ms device model or a .npz of name -> array")
    p.add_argument("--config", help="YAML file of settings (same keys, underscores); flags override it")
    p.add_argument("--linger", type=float, default=None, metavar="SECONDS",
                   help="exit SECONDS after the last iteration (default: serve getModel until stopped)")
    add_setting_flags(p)
    p.add_argument("--no-dashboard", dest="dashboard", action="store_const", const="off", help="same as --dashboard off")
    p.set_defaults(func=run)


def add_setting_flags(p: argparse.ArgumentParser, keys: tuple[str, ...] | None = None) -> None:
    """``--the-key`` for each ServerConfig key (``keys``: only these), each with its help and default; a flag
    not given is None, so only flags given on the command line override a file (or the caller's defaults)."""
    defaults = ServerConfig()
    for f in dataclasses.fields(ServerConfig):
        if keys is not None and f.name not in keys:
            continue
        default = getattr(defaults, f.name)
        said = f.metadata["help"] if "(default:" in f.metadata["help"] else f"{f.metadata['help']} (default: {default})"
        # "%(default).0s" prints nothing: it keeps ArgumentDefaultsHelpFormatter (the demo's) from adding
        # "(default: None)" after the default said here
        # taken as text and converted by ServerConfig.from_mapping: a bad number is its one-line error naming
        # the key and the rule, not argparse's usage block
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                       metavar=f.metadata["kind"].__name__.upper(), help=said + "%(default).0s")


def settings_from(args: argparse.Namespace) -> tuple[Any, ServerConfig]:
    """The model source and the merged configuration: defaults < --config file < flags."""
    values: dict[str, Any] = flat_settings(load_yaml(args.config), args.config) if args.config else {}
    model = values.pop("model", None)
    cache = values.pop("distributed_cache", None)  # MindSpore Federated's yaml: distributed_cache: {address: ...}
    if cache is not None:
        if not isinstance(cache, dict) or set(cache) != {"address"}:
            raise ConfigError(f"{args.config}: distributed_cache must be a mapping with one key, address "
                              f"(distributed_cache: {{address: 127.0.0.1:6379}})")
        values.setdefault("distributed_cache_address", cache["address"])
    config = ServerConfig.from_mapping(values)
    flags = {k: getattr(args, k) for k in ServerConfig.keys() if getattr(args, k, None) is not None}
    config = ServerConfig.from_mapping(flags, base=config)
    model = args.model or model
    if model is None:
        raise ConfigError("no initial model: give --model lenet_train.ms (or model: in the --config file)")
    return model, config


def _print_iteration(result: IterationResult) -> None:
    print(f"iteration {result.iteration}: {'valid' if result.valid else 'invalid (previous model kept)'}, "
          f"{result.admitted} admitted, {result.uploaded} uploaded, {result.seconds:.1f} s", flush=True)


async def _serve(config: ServerConfig, model: Any, linger: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_iteration(result: IterationResult) -> None:
        _print_iteration(result)
        if result.job_finished:
            why = f" ({result.early_stop})" if result.early_stop else ""
            print(f"job finished after {result.iteration} iterations{why}; still serving getModel", flush=True)
            if linger is not None:
                loop.call_later(linger, stop.set)

    server = ServerCore(config, model, on_iteration=on_iteration)
    await server.start()
    print("listening on " + " ".join(server.urls), flush=True)
    if server.watch_url is not None:
        print(f"dashboard: {server.watch_url} (metrics: {server.watch_url}metrics)", flush=True)
    view = await server.rounds.view()
    if view.finished:
        print(f"the job in {config.checkpoint_dir} is already finished; serving getModel", flush=True)
        if linger is not None:
            loop.call_later(linger, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print("server stopped", flush=True)


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    """One line on stderr saying what is wrong and what to do; the traceback only with ``pyflclient -v``."""
    if getattr(args, "verbose", 0):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the exception's text
    print(f"pyflclient server: {message}", file=sys.stderr, flush=True)
    return code


def run(args: argparse.Namespace) -> int:
    """Exit 0 when stopped; 2 for bad input (settings, model file, checkpoint folder); 1 when the
    server cannot run (port in use, certificate unreadable)."""
    try:
        model_source, config = settings_from(args)
        model = load_model(model_source)
        check_plan_batch(model_source, config.client_batch_size)
        for key in ("ssl_cert", "ssl_key"):  # ssl's own error would not name the file
            if getattr(config, key) and not Path(getattr(config, key)).is_file():
                raise ConfigError(f"{key}={getattr(config, key)!r}: no such file; give a PEM file")
    except (ConfigError, ModelFileError, OSError) as exc:  # OSError: the --config file
        return _fail(args, exc, 2)
    try:
        raise_open_file_limit()  # this process is the server: a connection per device needs a descriptor
        asyncio.run(_serve(config, model, args.linger))
    except (ConfigError, ModelFileError) as exc:  # the checkpoint folder: another model, none valid
        return _fail(args, exc, 2)
    except OSError as exc:  # port in use, certificate files
        return _fail(args, exc, 1)
    return 0
