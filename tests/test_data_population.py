"""The offline population: IDX files, thousands of writer-like clients, augmented copies."""
from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from pyflclient.data import DataFormatError, discover_clients, read_split
from pyflclient.data.bundled import load_mnist_5k
from pyflclient.data.images import to_lenet_input
from pyflclient.data.population import FASHION_MNIST_FILES, _shifted, build_population, load_fashion_mnist, read_idx


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    magic = 0x00000803 if array.ndim == 3 else 0x00000801
    header = struct.pack(">II", magic, array.shape[0]) + b"".join(struct.pack(">I", d) for d in array.shape[1:])
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if compress else path
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    """A small Fashion-MNIST-shaped folder (real digits: the first 600 of the bundled set), as IDX files."""
    pixels, labels = load_mnist_5k()
    folder = tmp_path_factory.mktemp("fashion")
    for (images_stem, labels_stem), rows in zip(FASHION_MNIST_FILES, (slice(0, 500), slice(500, 600))):
        write_idx(folder / images_stem, pixels[rows], compress=True)
        write_idx(folder / labels_stem, labels[rows].astype(np.uint8), compress=False)
    return folder


def test_idx_files_read_back_exactly(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(read_idx(write_idx(tmp_path / "x", images)), images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "y", np.array([3, 7], np.uint8), compress=False)), [3, 7])


@pytest.mark.parametrize("damage,says", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b"\x00\x00\x09\x99" + b[4:], "not an IDX file"),
    (lambda b: b[:5], "too short"),
])
def test_a_damaged_idx_file_is_one_clear_error(tmp_path, damage, says):
    good = write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8), compress=False)
    good.write_bytes(damage(good.read_bytes()))
    with pytest.raises(DataFormatError, match=says):
        read_idx(good)


def test_fashion_mnist_loads_train_then_test(fashion_dir):
    pixels, labels = load_fashion_mnist(fashion_dir)
    assert pixels.shape == (600, 28, 28) and labels.shape == (600,) and labels.dtype == np.int32
    assert np.array_equal(pixels, load_mnist_5k()[0][:600])


def test_a_missing_source_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.fixture(scope="module")
def population(fashion_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pop") / "clients"
    return out, build_population(out, 60, source_dir=fashion_dir, samples_per_client=128, batch_size=32, seed=3)


def test_more_clients_than_the_pool_holds_get_augmented_copies(population):
    out, clients = population
    manifest = json.loads((out / "bundled.json").read_text())
    assert len(clients) == 60 and manifest["pool"] == 600
    assert manifest["copies"] == 13  # 60 x 128 = 7,680 samples from 600 images
    rows = [r for c in manifest["clients"] for key in ("train_indices", "test_indices") for r in c[key]]
    assert len(rows) == len(set(rows)) == 7680  # every (image, copy) in at most one client, once


def test_client_sizes_spread_like_femnist_in_whole_batches(population):
    _, clients = population
    sizes = np.array([c.num_train + c.num_test for c in clients])
    assert (sizes % 32 == 0).all() and sizes.min() >= 64
    assert 0.2 < sizes.std() / sizes.mean() < 0.6  # FEMNIST's coefficient of variation is 0.39
    assert [c.name for c in discover_clients(population[0])] == [c.name for c in clients]


def test_first_copies_are_the_images_and_later_copies_shifted_ones(population, fashion_dir):
    out, clients = population
    manifest = json.loads((out / "bundled.json").read_text())
    pixels, _ = load_fashion_mnist(fashion_dir)
    same = moved = 0
    for record, client in zip(manifest["clients"][:5], clients[:5]):
        images, _ = read_split(client.test_data, client.test_label)
        for k, row in enumerate(record["test_indices"]):
            base = to_lenet_input(pixels[row % 600][None].astype(np.float32) / np.float32(255.0))[0]
            if row < 600:
                assert np.array_equal(images[k], base)
            else:
                same += np.array_equal(images[k], base)
                moved += not np.array_equal(images[k], base)
    assert moved > same  # 24 of the 25 shifts within 2 px move the image


def test_a_shift_moves_pixels_and_fills_the_border_with_background():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4) + 1
    out = _shifted(image, np.array([[1, -2]]))
    assert np.array_equal(out[0], [[0, 0, 0, 0], [3, 4, 0, 0], [7, 8, 0, 0], [11, 12, 0, 0]])


def test_the_same_arguments_write_the_same_bytes(fashion_dir, tmp_path, population):
    out, clients = population
    again = build_population(tmp_path / "again", 60, source_dir=fashion_dir, samples_per_client=128, seed=3)
    for a, b in zip(clients, again):
        assert a.train_data.read_bytes() == b.train_data.read_bytes()
        assert a.test_label.read_bytes() == b.test_label.read_bytes()


def test_too_few_samples_per_client_is_refused(tmp_path, fashion_dir):
    with pytest.raises(ValueError, match="at least two batches"):
        build_population(tmp_path / "x", 10, source_dir=fashion_dir, samples_per_client=40)
