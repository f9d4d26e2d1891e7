"""`pyflclient copy-models`: the seed's one-.ms-per-client copy step."""
from __future__ import annotations

from pathlib import Path

import pytest

from pyflclient.cli import main
from pyflclient.data import copy_models


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "lenet_train.ms"
    path.write_bytes(b"\x18\x00\x00\x00MSL2" + bytes(range(256)))
    return path


def test_cli_copies_the_model_once_per_client_with_the_seeds_names(model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ms" / "lenet"
    assert main(["copy-models", "--model", str(model), "--num", "8", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"lenet_train{i}.ms" for i in range(8))
    assert all((out / f"lenet_train{i}.ms").read_bytes() == model.read_bytes() for i in range(8))
    assert "8 copies" in capsys.readouterr().out


def test_copies_are_independent_files_not_links(model: Path, tmp_path: Path) -> None:
    paths = copy_models(model, 2, tmp_path / "out")
    paths[0].write_bytes(b"trained")
    assert paths[1].read_bytes() == model.read_bytes()


def test_rerun_resets_existing_copies_to_the_model(model: Path, tmp_path: Path) -> None:
    paths = copy_models(model, 2, tmp_path / "out")
    paths[0].write_bytes(b"trained")
    copy_models(model, 2, tmp_path / "out")
    assert paths[0].read_bytes() == model.read_bytes()


def test_missing_model_exits_with_code_2_and_says_how_to_make_one(tmp_path: Path, capsys) -> None:
    rc = main(["copy-models", "--model", str(tmp_path / "none.ms"), "--num", "2", "--out", str(tmp_path)])
    assert rc == 2
    assert "export + convert" in capsys.readouterr().err


def test_zero_copies_is_refused(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        copy_models(model, 0, tmp_path / "out")
