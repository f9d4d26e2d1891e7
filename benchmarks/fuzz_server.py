#!/usr/bin/env python3
"""Fuzzing of every endpoint's request decoder and of the round rules behind it, in-process.

One input is an endpoint selector byte (modulo the nine device rounds: startFLJob,
updateModel, getModel and the six secure-aggregation rounds) followed by a request
body. The target makes the calls the endpoint makes (``pyflclient/server/app.py``),
without HTTP: it decodes the body with the server's decoder (``*Request.from_bytes``,
``protocol.verify_request`` for the cipher rounds), hands what decodes to the round
rules (``Rounds`` over a ``MemoryStore`` holding a three-weight model, on one asyncio
loop) and encodes the reply, or the refusal carrying the decoder's message. A
``ProtocolError`` (a clean refusal) or a reply is the expected outcome; any other
exception is a **crash**, and its input is saved to a file.

The store starts as in ``tests/test_server_fuzz.py``: iteration 1's three seats are
taken by fl_ids that no mutation of the seed bodies reaches, so no fuzzed request can
legitimately change anything. After every input the iteration's view and the newest
model are compared with the state before; a difference is a **state change** (its
input saved too, and the store seeded afresh).

Engines: ``atheris`` (libFuzzer, coverage-guided over ``pyflclient.wire``,
``pyflclient._fbs`` and ``pyflclient.server``; ``pip install .[fuzz]``) when it is
installed, else ``hypothesis`` mutating the same seed bodies with the property test's
mutator (``mutated`` in ``tests/test_server_fuzz.py``), which is not coverage-guided.
The seed corpus is one valid body of every round (two for updateModel).

    python benchmarks/fuzz_server.py --runs 100000
    python benchmarks/fuzz_server.py --runs 2000 --engine hypothesis --seed 3
    python benchmarks/fuzz_server.py --replay fuzz-findings/crash-updateModel-0123456789ab.bin

Exit status 1 when a crash or a state change was found.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# pyflclient is imported inside the functions below, never at the top: the atheris engine must
# import it under ``atheris.instrument_imports`` to see its coverage
if TYPE_CHECKING:
    from pyflclient.server.rounds import Rounds

log = logging.getLogger("fuzz_server")

DEVICE_ROUNDS = ("startFLJob", "updateModel", "getModel")
SECURE_AGGREGATION_ROUNDS = ("exchangeKeys", "getKeys", "shareSecrets", "getSecrets", "getClientList",
                             "reconstructSecrets")  # pyflclient.wire.protocol.SECURE_AGGREGATION_ROUNDS
ENDPOINTS = DEVICE_ROUNDS + SECURE_AGGREGATION_ROUNDS
INSTRUMENTED = ("pyflclient.wire", "pyflclient._fbs", "pyflclient.server")

#: the seated devices: long random-looking ids, many byte edits away from the seeds' ``zzzz-fuzz-zzzz``
SEATED = {"seat-3f9c2a7be1d04c58a6e0b1f2d3c4a5b6": 3, "seat-8d1e6f0a2b3c4d5e6f708192a3b4c5d6": 5,
          "seat-c0ffee15deadbeef0badc0de13572468": 8}
SHAPES = {"conv.weight": (2, 1, 3, 3), "fc.weight": (4, 3), "fc.bias": (4,)}
WINDOW_MS = 24 * 3600 * 1000  # no window ends during a run
REMOTE = "192.0.2.1"  # the fuzzed requests' address (TEST-NET-1), as the HTTP layer passes request.remote


def small_model(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in SHAPES.items()}


def fuzz_input(endpoint: str, body: bytes) -> bytes:
    """The one input the target reads: the endpoint's selector byte, then the body."""
    return bytes([ENDPOINTS.index(endpoint)]) + body


def _cipher_request(table: str, **values: Any) -> bytes:
    """A secure-aggregation request built with the generated code (str, bytes, [str], [ClientShare])."""
    import flatbuffers

    from pyflclient._fbs import cipher_generated as cfb

    def camel(name: str) -> str:
        return "".join(part[:1].upper() + part[1:] for part in name.split("_"))

    def offsets(b: flatbuffers.Builder, refs: list[int]) -> int:
        b.StartVector(4, len(refs), 4)
        for ref in reversed(refs):
            b.PrependUOffsetTRelative(ref)
        return b.EndVector()

    b = flatbuffers.Builder(256)
    refs: dict[str, int] = {}
    for name, value in values.items():
        if isinstance(value, str):
            refs[name] = b.CreateString(value)
        elif isinstance(value, bytes):
            refs[name] = b.CreateByteVector(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            refs[name] = offsets(b, [b.CreateString(v) for v in value])
        elif isinstance(value, list):  # ClientShare (fl_id, share, index)
            shares = []
            for fl_id, share, index in value:
                fl_id_ref, share_ref = b.CreateString(fl_id), b.CreateByteVector(share)
                cfb.ClientShareStart(b)
                cfb.ClientShareAddFlId(b, fl_id_ref)
                cfb.ClientShareAddShare(b, share_ref)
                cfb.ClientShareAddIndex(b, index)
                shares.append(cfb.ClientShareEnd(b))
            refs[name] = offsets(b, shares)
    getattr(cfb, f"{table}Start")(b)
    for name, value in values.items():
        getattr(cfb, f"{table}Add{camel(name)}")(b, refs.get(name, value))
    b.Finish(getattr(cfb, f"{table}End")(b))
    return bytes(b.Output())


def seed_bodies(model: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
    """Valid bodies of every round (by endpoint), from a device that is not admitted."""
    from pyflclient.wire.protocol import GetModelRequest, StartFLJobRequest, UpdateModelRequest

    fl_id, stamp, sig = "zzzz-fuzz-zzzz", "1700000000000", bytes(range(16))
    upload = {n: (a * np.float32(4)).reshape(-1) for n, a in model.items()}
    short = dict(upload, **{"fc.weight": upload["fc.weight"][:5]})
    return {
        "startFLJob": [StartFLJobRequest("Lenet", fl_id, 1, 4, stamp).to_bytes()],
        "updateModel": [UpdateModelRequest("Lenet", fl_id, 1, upload, stamp).to_bytes(),
                        UpdateModelRequest("Lenet", fl_id, 1, short).to_bytes()],
        "getModel": [GetModelRequest("Lenet", 1, stamp).to_bytes()],
        "exchangeKeys": [_cipher_request("RequestExchangeKeys", fl_id=fl_id, c_pk=bytes(32), s_pk=bytes(32),
                                         iteration=1, timestamp=stamp, ind_iv=bytes(16), pw_iv=bytes(16),
                                         pw_salt=bytes(32), signature=sig, certificate_chain=["leaf", "ca"])],
        "getKeys": [_cipher_request("GetExchangeKeys", fl_id=fl_id, iteration=1, timestamp=stamp, signature=sig)],
        "shareSecrets": [_cipher_request("RequestShareSecrets", fl_id=fl_id, iteration=1, timestamp=stamp,
                                         encrypted_shares=[("peer-1", bytes(24), 1), ("peer-2", bytes(24), 2)],
                                         signature=sig)],
        "getSecrets": [_cipher_request("GetShareSecrets", fl_id=fl_id, iteration=1, timestamp=stamp, signature=sig)],
        "getClientList": [_cipher_request("GetClientList", fl_id=fl_id, iteration=1, timestamp=stamp,
                                          signature=sig)],
        "reconstructSecrets": [b"no table in the schema: the server answers HTTP 400 text unread"],
    }


@dataclass
class Findings:
    """What a run found; ``decoded`` counts inputs that got past the decoder into the round rules."""

    runs: int = 0
    crashes: int = 0
    state_changes: int = 0
    by_endpoint: collections.Counter[str] = field(default_factory=collections.Counter)
    decoded: collections.Counter[str] = field(default_factory=collections.Counter)
    saved: list[Path] = field(default_factory=list)
    slowest_s: float = 0.0


class FuzzTarget:
    """Call with one input (:func:`fuzz_input`); counts outcomes in :attr:`findings`.

    ``artifacts``: where the input of each distinct crash / state change is written
    (None: nowhere). Each crash is logged with its traceback the first time it is seen.
    """

    def __init__(self, artifacts: Path | None = None):
        self.artifacts = artifacts
        self.findings = Findings()
        self._seen: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._model = small_model()
        self._rounds = self._run(self._seated_rounds())
        self._before = self._run(self._state())

    def close(self) -> None:
        self._rounds.close()
        self._loop.close()

    def __call__(self, data: bytes) -> None:
        endpoint = ENDPOINTS[data[0] % len(ENDPOINTS)] if data else ENDPOINTS[0]
        body = data[1:]
        self.findings.runs += 1
        self.findings.by_endpoint[endpoint] += 1
        began = time.perf_counter()
        try:
            if self._run(self._answer(endpoint, body)):
                self.findings.decoded[endpoint] += 1
            after = self._run(self._state())
        except Exception as exc:  # noqa: BLE001 - anything but a ProtocolError is what we look for
            self.findings.crashes += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self._keep("crash", endpoint, data, f"{type(exc).__name__} at {where.filename}:{where.lineno}",
                       exc_info=exc)
            return
        finally:
            self.findings.slowest_s = max(self.findings.slowest_s, time.perf_counter() - began)
        if after != self._before:
            self.findings.state_changes += 1
            self._keep("state", endpoint, data, f"{endpoint}: {self._before} -> {after}")
            self._rounds.close()  # seat the devices again, so later inputs meet the same state
            self._rounds = self._run(self._seated_rounds())
            self._before = self._run(self._state())

    # -- the server's calls ----------------------------------------------------------

    def _run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    async def _seated_rounds(self) -> "Rounds":
        from pyflclient.server.config import ServerConfig
        from pyflclient.server.rounds import Rounds
        from pyflclient.server.store import MemoryStore
        from pyflclient.wire.protocol import ResponseCode, StartFLJobRequest

        # the update sanity rules on, so that their code is fuzzed too
        config = ServerConfig(start_fl_job_threshold=len(SEATED), fl_iteration_num=2, get_model_hold_ms=0,
                              start_fl_job_time_window=WINDOW_MS, update_model_time_window=WINDOW_MS,
                              max_admissions_per_address=1, max_update_norm=100.0, update_norm_action="refuse")
        rounds = Rounds(config=config, store=MemoryStore(), initial_model=self._model)
        await rounds.begin()
        for fl_id, data_size in SEATED.items():
            reply = await rounds.start_fl_job(StartFLJobRequest("Lenet", fl_id, 1, data_size), remote=fl_id)
            if getattr(reply, "retcode", None) != ResponseCode.SUCCEED:
                raise RuntimeError(f"cannot seat {fl_id}: {reply}")
        return rounds

    async def _state(self) -> tuple[object, ...]:
        """What no input may change: the iteration's view, the newest model (iteration, names, bytes), and
        the refusal a newcomer from the fuzzing address gets (the threshold; the address's own limit of
        one seat would answer instead if a refused request had kept its seat reservation)."""
        from pyflclient.wire.protocol import StartFLJobRequest

        view = await self._rounds.view()
        latest = await self._rounds.latest_iteration()
        model = await self._rounds.model()
        newcomer = await self._rounds.start_fl_job(StartFLJobRequest("Lenet", "newcomer", 1, 1), remote=REMOTE)
        return (view, latest, tuple((n, np.asarray(a).tobytes()) for n, a in sorted((model or {}).items())),
                getattr(newcomer, "retcode", newcomer), getattr(newcomer, "reason", ""))

    async def _answer(self, endpoint: str, body: bytes) -> bool:
        """What the endpoint does with ``body``, reply encoded; True when the body decoded."""
        from pyflclient.wire import protocol

        if endpoint in SECURE_AGGREGATION_ROUNDS:
            request_table, response_table = protocol.SECURE_AGGREGATION_ROUNDS[endpoint]
            if request_table is None:
                return False  # the server answers HTTP 400 text without reading the body
            why, decoded = "secure aggregation is not enabled on this server", True
            try:
                protocol.verify_request(body, request_table)
            except protocol.ProtocolError as exc:
                why, decoded = f"{exc}; and {why}", False
            view = await self._rounds.view()
            protocol.secure_aggregation_refusal(response_table, why, view.iteration, str(protocol.now_ms()))
            return decoded
        request, handle, response = {
            "startFLJob": (protocol.StartFLJobRequest, self._rounds.start_fl_job, protocol.StartFLJobResponse),
            "updateModel": (protocol.UpdateModelRequest, self._rounds.update_model, protocol.UpdateModelResponse),
            "getModel": (protocol.GetModelRequest, self._rounds.get_model, protocol.GetModelResponse),
        }[endpoint]
        try:
            message = request.from_bytes(body)
        except protocol.ProtocolError as exc:
            response(protocol.ResponseCode.RequestError, str(exc)).to_bytes()
            return False
        reply = await handle(message, remote=REMOTE)
        if not isinstance(reply, str):  # the plain-text replies travel as they are
            reply.to_bytes()
        return True

    def _keep(self, kind: str, endpoint: str, data: bytes, signature: str, exc_info: BaseException | None = None
              ) -> None:
        if signature in self._seen:
            return
        self._seen.add(signature)
        path = None
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            path = self.artifacts / f"{kind}-{endpoint}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
            path.write_bytes(data)
            self.findings.saved.append(path)
        log.error("%s (%s), input %s: %s", "crash" if kind == "crash" else "state change", endpoint,
                  path or data.hex(), signature, exc_info=exc_info)


# -- engines ------------------------------------------------------------------------------

def run_hypothesis(target: FuzzTarget, runs: int, seed: int) -> None:
    """``runs`` inputs drawn by hypothesis: mutants of the seed bodies (not coverage-guided)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st

    sys.path.insert(0, str(ROOT / "tests"))
    from test_server_fuzz import mutated

    seeds = seed_bodies(small_model())
    everything = [b for bodies in seeds.values() for b in bodies]

    @fixed_seed(seed)
    @settings(max_examples=runs, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(endpoint=st.sampled_from(ENDPOINTS), data=st.data())
    def one(endpoint: str, data: st.DataObject) -> None:
        target(fuzz_input(endpoint, data.draw(mutated(seeds[endpoint], everything))))

    one()


def run_atheris(target: FuzzTarget, runs: int, seed: int, corpus: Path | None,
                report: Callable[[], int]) -> None:
    """libFuzzer over the seed corpus (written into ``corpus``, which it grows); ends the process
    with ``report()``'s exit status after ``runs`` inputs (libFuzzer itself never returns)."""
    import atheris

    folder = corpus or Path(tempfile.mkdtemp(prefix="fuzz-server-corpus-"))
    folder.mkdir(parents=True, exist_ok=True)
    for endpoint, bodies in seed_bodies(small_model()).items():
        for i, body in enumerate(bodies):
            (folder / f"seed-{endpoint}-{i}").write_bytes(fuzz_input(endpoint, body))

    def one(data: bytes) -> None:
        target(data)
        if target.findings.runs >= runs:
            status = report()
            if corpus is None:
                shutil.rmtree(folder, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    atheris.Setup([sys.argv[0], f"-seed={seed}", "-max_len=4096", str(folder)], one)
    atheris.Fuzz()


def summary(findings: Findings, engine: str, seconds: float) -> str:
    rows = [("engine", engine),
            ("runs", f"{findings.runs:,}"),
            ("crashes", str(findings.crashes)),
            ("state changes", str(findings.state_changes)),
            ("wall time", f"{seconds:.1f} s"),
            ("exec/s", f"{findings.runs / seconds:,.0f}" if seconds > 0 else "-"),
            ("slowest input", f"{findings.slowest_s * 1000:.1f} ms"),
            ("decoded / runs", ", ".join(f"{e} {findings.decoded[e]:,}/{findings.by_endpoint[e]:,}"
                                         for e in ENDPOINTS))]
    rows += [("saved", str(p)) for p in findings.saved]
    return "\n".join(f"{k:15} {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000, help="inputs to run (default 100,000)")
    ap.add_argument("--engine", choices=("atheris", "hypothesis"), default=None,
                    help="atheris (coverage-guided) when installed, else hypothesis")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the engine (default 1)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="atheris: corpus folder, seeded with the valid bodies and grown by libFuzzer "
                         "(default: a temporary folder)")
    ap.add_argument("--artifacts", type=Path, default=Path("fuzz-findings"),
                    help="where the input of each distinct crash / state change is written (default fuzz-findings/)")
    ap.add_argument("--replay", type=Path, default=None, help="run one saved input and say what it does")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    if engine == "atheris" and args.replay is None:
        import atheris

        with atheris.instrument_imports(include=list(INSTRUMENTED)):
            import pyflclient.server.rounds  # noqa: F401 - imports wire, _fbs and the store under instrumentation
        from importlib.metadata import version

        label = f"atheris {version('atheris')} (libFuzzer, coverage-guided over {', '.join(INSTRUMENTED)})"
    else:
        label = "hypothesis (mutants of the seed bodies, not coverage-guided)"

    target = FuzzTarget(artifacts=None if args.replay else args.artifacts)
    if args.replay is not None:
        target(args.replay.read_bytes())
        print(summary(target.findings, "replay", 0.0))
        return 1 if target.findings.crashes or target.findings.state_changes else 0

    began = time.perf_counter()

    def report() -> int:
        print(summary(target.findings, label, time.perf_counter() - began))
        return 1 if target.findings.crashes or target.findings.state_changes else 0

    if engine == "atheris":
        run_atheris(target, args.runs, args.seed, args.corpus, report)  # does not return
    run_hypothesis(target, args.runs, args.seed)
    return report()


if __name__ == "__main__":
    sys.exit(main())
