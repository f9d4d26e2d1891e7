"""Build hooks: generate the FlatBuffers code and build the two jars with Maven.

`pip install .` and `pip install -e .` both run them, so a user never calls flatc or
Maven by hand; a built wheel carries pyflclient/jars/*.jar and pyflclient/_fbs/*.py.
Set PYFLCLIENT_SKIP_MAVEN=1 to reuse jars already in pyflclient/jars/.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
JARS = {
    "mindspore-lite-java-flclient.jar": ROOT / "jars" / "flclient" / "target" / "mindspore-lite-java-flclient.jar",
    "quick_start_flclient.jar": ROOT / "jars" / "quick_start" / "target" / "quick_start_flclient.jar",
}


def _env_with_build_bin() -> dict[str, str]:
    env = dict(os.environ)
    # flatc comes from the build requirements; make sure Maven's exec step finds it too.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHON", sys.executable)
    return env


def generate_and_build() -> None:
    env = _env_with_build_bin()
    subprocess.run([sys.executable, str(ROOT / "schema" / "generate.py"), "--python", str(ROOT / "pyflclient" / "_fbs")],
                   check=True, env=env)
    out = ROOT / "pyflclient" / "jars"
    out.mkdir(exist_ok=True)
    if os.environ.get("PYFLCLIENT_SKIP_MAVEN") and all((out / n).exists() for n in JARS):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("Maven (mvn) is needed to build the jars: apt-get install maven (Java 17+)")
    subprocess.run([mvn, "-q", "-B", "-f", str(ROOT / "jars" / "pom.xml"), "-DskipTests",
                    f"-Dpython.executable={sys.executable}", "package"], check=True, env=env)
    for name, built in JARS.items():
        shutil.copy2(built, out / name)


class BuildPy(build_py):
    def run(self) -> None:
        generate_and_build()
        super().run()


setup(cmdclass={"build_py": BuildPy})
