"""The Java unit tests (JUnit 5, Maven Surefire) as part of the one test command.

Each Maven module's suite runs as one pytest test, so `python -m pytest` is the
single entry point that CI and the README use; Surefire's own report is printed
on failure.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["runtime", "flclient", "quick_start"])
def test_junit_suite_of_module_passes(module: str) -> None:
    mvn = shutil.which("mvn")
    assert mvn, "Maven (mvn) is needed to run the Java unit tests"
    proc = subprocess.run(
        [mvn, "-B", "-f", str(ROOT / "jars" / "pom.xml"), "-pl", module, "-am",
         f"-Dpython.executable={sys.executable}", "-Dsurefire.failIfNoSpecifiedTests=false", "test"],
        capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    totals = re.findall(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", out, re.M)
    assert proc.returncode == 0, f"mvn test -pl {module} failed:\n{out[-8000:]}"
    assert totals, f"no Surefire summary for {module}:\n{out[-4000:]}"
    run = int(totals[-1][0])
    assert run > 0, f"module {module} ran no JUnit test"
