"""Writer-like non-IID partitioning: exact cover, FEMNIST-like sizes, measurable skew."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyflclient.data.partition import client_sizes, dirichlet_label_partition, label_skew, train_test_sizes


def test_sizes_add_up_to_the_pool_and_respect_the_minimum() -> None:
    sizes = client_sizes(5000, 50, 64, 0.39, np.random.default_rng(0))
    assert sizes.sum() == 5000 and sizes.min() >= 64


def test_sizes_vary_when_there_is_room_above_the_minimum() -> None:
    sizes = client_sizes(20000, 100, 64, 0.39, np.random.default_rng(0))
    cv = sizes.std() / sizes.mean()
    assert 0.2 < cv < 0.6


def test_sizes_are_equal_when_cv_is_zero() -> None:
    assert set(client_sizes(1000, 10, 32, 0.0, np.random.default_rng(0))) == {100}


def test_too_many_clients_for_the_pool_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot give 100 clients at least 64 samples"):
        client_sizes(5000, 100, 64, 0.39, np.random.default_rng(0))


@settings(max_examples=40, deadline=None)
@given(
    num_classes=st.integers(1, 12),
    num_clients=st.integers(1, 15),
    alpha=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_sample_is_in_exactly_one_client_with_the_requested_sizes(num_classes, num_clients, alpha, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_clients * 7 + int(rng.integers(0, 50)))
    sizes = client_sizes(labels.size, num_clients, 3, 0.4, rng)
    parts = dirichlet_label_partition(labels, sizes, alpha, rng)
    assert [len(p) for p in parts] == sizes.tolist()
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(labels.size))


def test_partition_is_a_function_of_the_seed() -> None:
    labels = np.repeat(np.arange(10), 100)
    sizes = np.full(10, 100)
    a = dirichlet_label_partition(labels, sizes, 0.5, np.random.default_rng(4))
    b = dirichlet_label_partition(labels, sizes, 0.5, np.random.default_rng(4))
    c = dirichlet_label_partition(labels, sizes, 0.5, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_small_alpha_gives_more_label_skew_than_large_alpha() -> None:
    labels = np.repeat(np.arange(10), 500)
    sizes = np.full(50, 100)
    skew = {
        alpha: label_skew([labels[p] for p in dirichlet_label_partition(labels, sizes, alpha, np.random.default_rng(0))])
        for alpha in (0.1, 0.5, 1000.0)
    }
    assert skew[0.1].mean_tv_distance > skew[0.5].mean_tv_distance > skew[1000.0].mean_tv_distance
    assert skew[0.1].mean_classes_per_client < skew[1000.0].mean_classes_per_client
    assert skew[1000.0].mean_tv_distance < 0.2


def test_label_skew_is_zero_for_identical_mixes_and_half_for_two_single_class_clients() -> None:
    iid = label_skew([np.array([0, 1, 2, 3]), np.array([3, 2, 1, 0])])
    assert iid.mean_tv_distance == 0.0 and iid.mean_entropy_bits == iid.global_entropy_bits == 2.0
    split = label_skew([np.zeros(5, int), np.ones(5, int)])
    assert split.mean_tv_distance == 0.5 and split.mean_entropy_bits == 0.0 and split.mean_classes_per_client == 1.0


@pytest.mark.parametrize(("size", "expected"), [(64, (32, 32)), (100, (68, 32)), (200, (168, 32)), (400, (336, 64)), (65, (33, 32))])
def test_test_split_is_whole_batches_of_about_the_fraction_and_train_keeps_a_batch(size, expected) -> None:
    assert train_test_sizes(size, 32, 0.2) == expected


def test_client_smaller_than_two_batches_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="at least 64 samples"):
        train_test_sizes(63, 32, 0.2)
