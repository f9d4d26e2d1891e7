"""The Java unit tests (JUnit 5, Maven Surefire) as part of the one test command.

The whole Maven reactor (runtime, flclient, quick_start) runs `mvn test` once, so
`python -m pytest` is the single entry point that CI and the README use;
Surefire's own report is shown on failure.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


MODULES = ("flclient-runtime", "mindspore-lite-java-flclient", "quick_start_flclient")


def test_junit_suites_of_every_module_pass() -> None:
    mvn = shutil.which("mvn")
    assert mvn, "Maven (mvn) is needed to run the Java unit tests"
    proc = subprocess.run(
        [mvn, "-B", "-f", str(ROOT / "jars" / "pom.xml"), f"-Dpython.executable={sys.executable}", "-Dsurefire.failIfNoSpecifiedTests=false", "test"],
        capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mvn test failed:\n{out[-8000:]}"
    # One "Results:" block per module that ran tests, each closed by its totals line.
    blocks = re.findall(r"Results:\s*\n(?:.*\n)*?.*Tests run: (\d+), Failures: 0, Errors: 0, Skipped: \d+", out)
    assert len(blocks) == len(MODULES), f"expected a JUnit suite in each of {MODULES}:\n{out[-4000:]}"
    assert all(int(n) > 0 for n in blocks), f"a module ran no JUnit test: {blocks}"
