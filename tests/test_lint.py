"""pyflakes' rules over the Python sources (``[tool.ruff.lint]`` in pyproject.toml).

They find, in a second, what otherwise surfaces as a failure at run time, if a test happens to
reach it: an undefined name in a rarely taken branch, a function or import defined twice, an
import or a variable that no longer serves.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_rules_hold_over_the_package_benchmarks_and_tests() -> None:
    pytest.importorskip("ruff", reason="ruff comes with the test extra: pip install -e '.[test]'")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "pyflclient", "benchmarks", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
