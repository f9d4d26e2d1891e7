"""The data files the package ships: ``pyflclient/package_data/`` and the ``package-data`` globs of pyproject.toml.

A file placed there but not matched by a glob would be missing from ``pip install .``; the
shipped model is reached through ``pyflclient.model.LENET_TRAIN_MS``, never through its path.
"""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pyflclient
from pyflclient.model import LENET_TRAIN_MS, PACKAGE_DATA, msfile

PACKAGE = Path(pyflclient.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def test_every_file_in_package_data_is_shipped_by_a_package_data_glob():
    globs = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["pyflclient"]
    files = [f.relative_to(PACKAGE).as_posix() for f in PACKAGE_DATA.rglob("*") if f.is_file()]
    assert files, f"{PACKAGE_DATA} holds no file"
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


def test_package_data_is_files_not_a_package():
    assert not (PACKAGE_DATA / "__init__.py").exists()
    assert PACKAGE_DATA.parent == PACKAGE


def test_the_shipped_model_is_the_lenet_train_model_in_package_data():
    assert LENET_TRAIN_MS.parent == PACKAGE_DATA
    assert msfile.load(LENET_TRAIN_MS).learning_rate >= 0
