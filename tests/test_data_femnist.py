"""LEAF FEMNIST json → 3500_clients_bin: round trip, the seed's batching, clear errors, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyflclient.cli import main
from pyflclient.data import DataFormatError, convert_leaf_femnist, discover_clients
from pyflclient.data.images import to_lenet_input

B = 32
# writer -> (split -> number of samples); two LEAF files per split like preprocess.sh writes
LAYOUT = {
    "all_data_0": {"f0000_14": {"train": 70, "test": 9}, "f0001_41": {"train": 64, "test": 40}},
    "all_data_1": {"f0002_07": {"train": 10, "test": 33}},
}


def leaf_user(rng: np.random.Generator, n: int) -> dict:
    """n random 28×28 images in [0, 1] (distinct, so each output row maps back to one input)."""
    return {"x": rng.random((n, 784)).round(6).tolist(), "y": rng.integers(0, 62, n).tolist()}


@pytest.fixture
def leaf_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    root = tmp_path / "femnist" / "data"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        for stem, users in LAYOUT.items():
            doc = {"users": list(users), "num_samples": [u[split] for u in users.values()],
                   "user_data": {name: leaf_user(rng, u[split]) for name, u in users.items()}}
            (root / split / f"{stem}_niid_{split}_9.json").write_text(json.dumps(doc))
    return root


def leaf_arrays(leaf_dir: Path, user: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    for f in (leaf_dir / split).glob("*.json"):
        data = json.loads(f.read_text())["user_data"]
        if user in data:
            return np.asarray(data[user]["x"], np.float32), np.asarray(data[user]["y"], np.int32)
    raise KeyError(user)


def match_rows(out_x: np.ndarray, out_y: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    """Index of the source sample each output sample is, after the documented transform."""
    expected = to_lenet_input(src_x, geometry="resize")
    lookup = {expected[i].tobytes(): i for i in range(len(expected))}
    rows = np.array([lookup[img.tobytes()] for img in out_x])  # KeyError = a pixel changed
    np.testing.assert_array_equal(out_y, src_y[rows])
    return rows


def test_round_trip_pad_keeps_every_sample_pixel_exact_with_its_label(leaf_dir: Path, tmp_path: Path) -> None:
    clients = convert_leaf_femnist(leaf_dir, tmp_path / "bin", remainder="pad", progress=False)
    assert [c.name for c in clients] == ["f0000_14", "f0001_41", "f0002_07"]
    for c in clients:
        for split, (x, y) in (("train", c.load_train()), ("test", c.load_test())):
            src_x, src_y = leaf_arrays(leaf_dir, c.name, split)
            rows = match_rows(x, y, src_x, src_y)
            assert set(rows) == set(range(len(src_y)))  # nothing lost
            assert len(rows) % B == 0 and len(rows) - len(src_y) < B  # topped up by less than a batch


def test_drop_is_the_seeds_batching_topping_up_small_writers_and_dropping_the_tail(leaf_dir: Path, tmp_path: Path) -> None:
    clients = {c.name: c for c in convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)}
    counts = {name: (c.num_train, c.num_test) for name, c in clients.items()}
    # 70 -> 64 (2 batches), 9 -> 32, 64 -> 64, 40 -> 32, 10 -> 32, 33 -> 32
    assert counts == {"f0000_14": (64, 32), "f0001_41": (64, 32), "f0002_07": (32, 32)}
    assert clients["f0000_14"].train_data.name == "f0000_14_bn_2_train_data.bin"
    x, y = clients["f0000_14"].load_train()
    rows = match_rows(x, y, *leaf_arrays(leaf_dir, "f0000_14", "train"))
    assert len(set(rows)) == 64  # dropped samples, no repeats
    x, y = clients["f0002_07"].load_train()
    rows = match_rows(x, y, *leaf_arrays(leaf_dir, "f0002_07", "train"))
    assert set(rows) == set(range(10))  # a writer below one batch is repeated up to it


def test_converted_folder_reads_back_through_discovery(leaf_dir: Path, tmp_path: Path) -> None:
    written = convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)
    assert discover_clients(tmp_path / "bin") == written


def test_conversion_is_reproducible_from_the_seed(leaf_dir: Path, tmp_path: Path) -> None:
    a = convert_leaf_femnist(leaf_dir, tmp_path / "a", seed=5, progress=False)
    b = convert_leaf_femnist(leaf_dir, tmp_path / "b", seed=5, progress=False)
    for ca, cb in zip(a, b):
        assert ca.train_data.read_bytes() == cb.train_data.read_bytes()
        assert ca.test_label.read_bytes() == cb.test_label.read_bytes()


def test_rerun_with_another_batch_size_replaces_the_old_files(leaf_dir: Path, tmp_path: Path) -> None:
    convert_leaf_femnist(leaf_dir, tmp_path / "bin", batch_size=32, progress=False)
    convert_leaf_femnist(leaf_dir, tmp_path / "bin", batch_size=16, progress=False)
    client = discover_clients(tmp_path / "bin")[0]
    assert client.train_data.name == "f0000_14_bn_4_train_data.bin"
    assert len(list(client.folder.iterdir())) == 4


def test_one_writer_per_file_json_of_the_mindspore_tutorial_is_accepted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "f0644_19.json").write_text(
            json.dumps({"num_samples": 40, "user_data": leaf_user(rng, 40)}))
    clients = convert_leaf_femnist(tmp_path, tmp_path / "bin", progress=False)
    assert [(c.name, c.num_train, c.num_test) for c in clients] == [("f0644_19", 32, 32)]


def test_corrupt_json_names_the_file(leaf_dir: Path, tmp_path: Path) -> None:
    bad = next((leaf_dir / "test").glob("*.json"))
    bad.write_text(bad.read_text()[:100])
    with pytest.raises(DataFormatError, match=f"{bad.name} is not valid json"):
        convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)


def test_missing_leaf_dir_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_leaf_femnist(tmp_path / "nowhere", tmp_path / "bin", progress=False)


def test_leaf_dir_without_train_and_test_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="no train/ and test/"):
        convert_leaf_femnist(tmp_path, tmp_path / "bin", progress=False)


def test_images_that_are_not_784_pixels_are_refused(leaf_dir: Path, tmp_path: Path) -> None:
    f = leaf_dir / "train" / "all_data_1_niid_train_9.json"
    doc = json.loads(f.read_text())
    doc["user_data"]["f0002_07"]["x"][0] = [0.5] * 783
    f.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match="784-float images"):
        convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)


@pytest.mark.parametrize(("field", "value", "message"), [("x", 255.0, r"outside \[0, 1\]"), ("y", 62, "outside 0..61")])
def test_pixels_or_labels_out_of_range_are_refused(leaf_dir: Path, tmp_path: Path, field: str, value: float, message: str) -> None:
    f = leaf_dir / "train" / "all_data_1_niid_train_9.json"
    doc = json.loads(f.read_text())
    entry = doc["user_data"]["f0002_07"]
    if field == "x":
        entry["x"][0][0] = value
    else:
        entry["y"][0] = value
    f.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=message):
        convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)


def test_a_writer_in_two_files_of_one_split_is_refused(leaf_dir: Path, tmp_path: Path) -> None:
    src = leaf_dir / "train" / "all_data_1_niid_train_9.json"
    (leaf_dir / "train" / "copy.json").write_text(src.read_text())
    with pytest.raises(DataFormatError, match="appears twice"):
        convert_leaf_femnist(leaf_dir, tmp_path / "bin", progress=False)


def test_cli_data_femnist_writes_the_layout(leaf_dir: Path, tmp_path: Path, capsys) -> None:
    rc = main(["data", "femnist", "--leaf-dir", str(leaf_dir.parent), "--out", str(tmp_path / "bin"), "--no-progress"])
    assert rc == 0
    assert "3 clients" in capsys.readouterr().out
    assert len(discover_clients(tmp_path / "bin")) == 3


def test_cli_data_femnist_reports_a_missing_folder_with_exit_code_2(tmp_path: Path, capsys) -> None:
    rc = main(["data", "femnist", "--leaf-dir", str(tmp_path / "none"), "--out", str(tmp_path / "bin")])
    assert rc == 2
    assert "pyflclient data femnist: error:" in capsys.readouterr().err
