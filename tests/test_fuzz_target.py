"""The fuzz target of benchmarks/fuzz_server.py: a short budget of it, and proof that it can fail.

The target decodes one (endpoint, body) input as the server does and hands what
decodes to the round rules of a store whose seats are taken; a crash is any exception
but ProtocolError, a state change any difference in the iteration's view or the newest
model. CI runs the hypothesis engine (atheris is the optional ``fuzz`` extra); the
atheris CLI run is tested when atheris is installed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from pyflclient.wire.protocol import StartFLJobRequest, UpdateModelRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_server  # noqa: E402
from fuzz_server import ENDPOINTS, SEATED, FuzzTarget, fuzz_input, seed_bodies, small_model  # noqa: E402


@pytest.fixture
def target(tmp_path: Path) -> Iterator[FuzzTarget]:
    made = FuzzTarget(artifacts=tmp_path / "findings")
    yield made
    made.close()


def test_every_seed_body_gets_past_the_decoder_into_the_round_rules(target):
    seeds = seed_bodies(small_model())
    assert sorted(seeds) == sorted(ENDPOINTS)
    for endpoint, bodies in seeds.items():
        for body in bodies:
            target(fuzz_input(endpoint, body))
    tabled = [e for e in ENDPOINTS if e != "reconstructSecrets"]  # the one round without a table is never read
    assert {e: target.findings.decoded[e] for e in tabled} == {e: len(seeds[e]) for e in tabled}
    assert (target.findings.crashes, target.findings.state_changes) == (0, 0)


def test_two_thousand_mutated_inputs_crash_nothing_and_change_nothing(target):
    fuzz_server.run_hypothesis(target, runs=2000, seed=0)
    found = target.findings
    assert found.runs == 2000
    assert (found.crashes, found.state_changes) == (0, 0), found.saved
    assert set(found.by_endpoint) == set(ENDPOINTS)
    # worth something only if many inputs get past the decoders, into the rules and the reply encoders
    assert sum(found.decoded.values()) >= 200, found.decoded


def test_a_decoder_raising_anything_but_protocol_error_is_a_crash_with_its_input_saved(target, monkeypatch):
    def broken(cls, body):  # type: ignore[no-untyped-def]
        raise KeyError("feature_map")

    monkeypatch.setattr(UpdateModelRequest, "from_bytes", classmethod(broken))
    data = fuzz_input("updateModel", seed_bodies(small_model())["updateModel"][0])
    target(data)
    target(fuzz_input("startFLJob", b"\x00" * 12))  # a clean refusal after the crash: still counted right
    assert (target.findings.runs, target.findings.crashes, target.findings.state_changes) == (2, 1, 0)
    [saved] = target.findings.saved
    assert saved.read_bytes() == data
    assert fuzz_server.main(["--replay", str(saved)]) == 1


def test_an_upload_by_a_seated_device_is_a_state_change_and_the_seats_are_taken_again(target):
    seated = next(iter(SEATED))
    upload = {n: np.ones(a.size, np.float32) for n, a in small_model().items()}
    target(fuzz_input("updateModel", UpdateModelRequest("Lenet", seated, 1, upload).to_bytes()))
    assert target.findings.state_changes == 1
    assert target.findings.saved[0].name.startswith("state-updateModel-")
    # the store was seated afresh: a newcomer is refused again and nothing else changes
    target(fuzz_input("startFLJob", StartFLJobRequest("Lenet", "newcomer", 1, 4).to_bytes()))
    assert (target.findings.state_changes, target.findings.crashes) == (1, 0)


def test_the_atheris_engine_runs_from_the_command_line(tmp_path):
    pytest.importorskip("atheris")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_server.py"), "--runs", "3000",
                           "--engine", "atheris", "--corpus", str(tmp_path / "corpus"),
                           "--artifacts", str(tmp_path / "findings")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "engine          atheris" in done.stdout
    assert "runs            3,000\ncrashes         0\nstate changes   0\n" in done.stdout
    assert len(list((tmp_path / "corpus").iterdir())) > len(ENDPOINTS)  # libFuzzer grew the seed corpus
