"""The 3500_clients_bin layout: the published archive reads as is; bad files say what is wrong."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pyflclient.data import ClientData, DataFormatError, discover_clients, read_split, write_split

B = 32


def seed_img2bin(root: Path, user: str, split: str, batch_num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Write a split exactly as MindSpore r1.6's img2bin did: (batch_num, 32, 32,32,3) float32 .tofile."""
    imgs = rng.random((batch_num, B, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 62, size=(batch_num, B)).astype(np.int32)
    folder = root / user
    folder.mkdir(parents=True, exist_ok=True)
    imgs.tofile(folder / f"{user}_bn_{batch_num}_{split}_data.bin")
    labels.tofile(folder / f"{user}_bn_{batch_num}_{split}_label.bin")
    return imgs.reshape(-1, 32, 32, 3), labels.reshape(-1)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(1)
    root = tmp_path / "3500_clients_bin"
    arrays = {
        "f0000_14/train": seed_img2bin(root, "f0000_14", "train", 9, rng),
        "f0000_14/test": seed_img2bin(root, "f0000_14", "test", 1, rng),
        "f0178_39/train": seed_img2bin(root, "f0178_39", "train", 3, rng),
        "f0178_39/test": seed_img2bin(root, "f0178_39", "test", 2, rng),
    }
    return root, arrays


def test_published_archive_layout_is_discovered_with_counts_from_file_sizes(archive) -> None:
    root, _ = archive
    clients = discover_clients(root)
    assert [c.name for c in clients] == ["f0000_14", "f0178_39"]
    first = clients[0]
    assert (first.num_train, first.num_test) == (9 * B, 1 * B)
    assert first.train_data.name == "f0000_14_bn_9_train_data.bin"
    assert first.test_label.name == "f0000_14_bn_1_test_label.bin"
    assert first.train_dataset == f"{first.train_data},{first.train_label}"


def test_published_archive_files_read_back_as_nhwc_float32_and_int32(archive) -> None:
    root, arrays = archive
    client = discover_clients(root)[1]
    x, y = client.load_train()
    assert x.dtype == np.float32 and x.shape == (3 * B, 32, 32, 3)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(x, arrays["f0178_39/train"][0])
    np.testing.assert_array_equal(y, arrays["f0178_39/train"][1])


def test_write_split_names_files_by_number_of_batches(tmp_path: Path) -> None:
    x = np.zeros((96, 32, 32, 3), np.float32)
    y = np.arange(96, dtype=np.int32) % 62
    data, label = write_split(tmp_path / "w", "w", "train", x, y, batch_size=32)
    assert data.name == "w_bn_3_train_data.bin" and label.name == "w_bn_3_train_label.bin"
    np.testing.assert_array_equal(read_split(data, label)[1], y)


def test_write_split_refuses_a_count_that_is_not_a_whole_number_of_batches(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not a multiple of the batch size 32"):
        write_split(tmp_path, "w", "train", np.zeros((40, 32, 32, 3), np.float32), np.zeros(40, np.int32), 32)


def test_data_file_of_the_wrong_size_is_reported_with_its_name(archive) -> None:
    root, _ = archive
    bad = root / "f0178_39" / "f0178_39_bn_3_train_data.bin"
    bad.write_bytes(bad.read_bytes()[:-4])
    with pytest.raises(DataFormatError, match="f0178_39_bn_3_train_data.bin has .* bytes"):
        discover_clients(root)


def test_label_file_that_is_not_whole_int32s_is_reported(archive) -> None:
    root, _ = archive
    bad = root / "f0000_14" / "f0000_14_bn_1_test_label.bin"
    bad.write_bytes(bad.read_bytes() + b"\0")
    with pytest.raises(DataFormatError, match="not a whole number of int32 labels"):
        discover_clients(root)


def test_batch_count_in_the_name_must_divide_the_samples(tmp_path: Path) -> None:
    folder = tmp_path / "u"
    folder.mkdir()
    np.zeros((50, 32, 32, 3), np.float32).tofile(folder / "u_bn_3_train_data.bin")
    np.zeros(50, np.int32).tofile(folder / "u_bn_3_train_label.bin")
    with pytest.raises(DataFormatError, match="says 3 batches but holds 50 samples"):
        discover_clients(tmp_path, require_test=False)


def test_two_train_files_in_one_folder_are_refused_as_stale(archive) -> None:
    root, _ = archive
    folder = root / "f0000_14"
    (folder / "f0000_14_bn_2_train_data.bin").write_bytes(b"")
    with pytest.raises(DataFormatError, match="two train data files"):
        discover_clients(root)


def test_client_without_test_split_is_skipped_with_a_warning(archive, caplog) -> None:
    root, _ = archive
    for f in (root / "f0178_39").glob("*_test_*.bin"):
        f.unlink()
    with caplog.at_level(logging.WARNING):
        clients = discover_clients(root)
    assert [c.name for c in clients] == ["f0000_14"]
    assert "skipping client f0178_39" in caplog.text


def test_empty_bn_0_split_of_the_seeds_img2bin_counts_as_missing(archive, caplog) -> None:
    root, _ = archive
    for f in (root / "f0178_39").glob("*_test_*.bin"):
        f.rename(f.with_name(f.name.replace("_bn_2_", "_bn_0_")))
        f.with_name(f.name.replace("_bn_2_", "_bn_0_")).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert [c.name for c in discover_clients(root)] == ["f0000_14"]
    assert "no test samples" in caplog.text
    assert discover_clients(root, require_test=False)[1].test_data is None


def test_client_without_test_split_is_kept_when_test_is_not_required(archive) -> None:
    root, _ = archive
    for f in (root / "f0178_39").glob("*_test_*.bin"):
        f.unlink()
    client = discover_clients(root, require_test=False)[1]
    assert client.test_data is None and client.num_test == 0 and client.test_dataset is None
    with pytest.raises(DataFormatError, match="no test split"):
        client.load_test()


def test_missing_root_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pyflclient data bundled"):
        discover_clients(tmp_path / "nowhere")


def test_root_without_client_folders_says_where_to_point(tmp_path: Path) -> None:
    (tmp_path / "3500_clients_bin").mkdir()
    with pytest.raises(DataFormatError, match="directly holds the per-client folders"):
        discover_clients(tmp_path)


def test_client_data_is_immutable(archive) -> None:
    client: ClientData = discover_clients(archive[0])[0]
    with pytest.raises(AttributeError):
        client.num_train = 1  # type: ignore[misc]
