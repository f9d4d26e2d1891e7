"""Writer-like non-IID partitioning of a labelled pool into N clients.

FEMNIST is non-IID because each writer writes only so many characters and in
their own mix; a pool like MNIST has neither property. We imitate both:

* **Sizes** vary like FEMNIST's (226.83 ± 88.94 samples a writer, a
  coefficient of variation ≈ 0.39): every client gets ``min_size`` samples
  plus a log-normal share of the rest, with the log-normal σ chosen so that
  the sizes' coefficient of variation is ``size_cv`` (when the minimum leaves
  room for it). Sizes sum to the pool exactly.
* **Labels**: each client draws a label mix ``p ~ Dirichlet(alpha · 1)``
  (small ``alpha`` → few classes per client) and takes its samples class by
  class from what is left of the pool; when a class runs out, the client's
  remaining draws go to its other classes in proportion to ``p`` (or evenly
  when all of those are gone). Clients are served in a seeded random order
  so the last ones (which get what is left) are not always the same.

Every sample lands in exactly one client, and the result is a function of
``seed`` alone. ``label_skew`` measures how non-IID the result is.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

FEMNIST_SIZE_MEAN = 226.83
FEMNIST_SIZE_STD = 88.94
FEMNIST_SIZE_CV = FEMNIST_SIZE_STD / FEMNIST_SIZE_MEAN


def client_sizes(
    total: int, num_clients: int, min_size: int, size_cv: float, rng: np.random.Generator
) -> np.ndarray:
    """Sample counts (int64, sum == total, each >= min_size) varying log-normally.

    The share above the minimum is log-normal with σ set so that the final
    counts' coefficient of variation is about ``size_cv``; the largest-remainder
    rule makes the integer counts add up to ``total``.
    """
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
    if min_size * num_clients > total:
        raise ValueError(
            f"{total} samples cannot give {num_clients} clients at least {min_size} samples each; "
            f"use at most {total // max(min_size, 1)} clients or a smaller batch size"
        )
    spare = total - min_size * num_clients
    mean = total / num_clients
    extra_mean = mean - min_size
    if spare == 0 or size_cv <= 0 or extra_mean <= 0:
        weights = np.ones(num_clients)
    else:
        extra_cv = size_cv * mean / extra_mean  # std of the counts all comes from the extra share
        sigma = math.sqrt(math.log1p(extra_cv**2))
        weights = rng.lognormal(mean=0.0, sigma=sigma, size=num_clients)
    share = spare * weights / weights.sum()
    extra = np.floor(share).astype(np.int64)
    short = spare - int(extra.sum())
    if short:
        extra[np.argsort(-(share - extra), kind="stable")[:short]] += 1
    return min_size + extra


def dirichlet_label_partition(
    labels: np.ndarray, sizes: np.ndarray, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Indices into ``labels`` for each client: ``len(result[i]) == sizes[i]``.

    Every index appears in exactly one client. See the module docstring for
    how class exhaustion is handled.
    """
    labels = np.asarray(labels)
    sizes = np.asarray(sizes, dtype=np.int64)
    if int(sizes.sum()) != labels.shape[0]:
        raise ValueError(f"sizes sum to {int(sizes.sum())} but there are {labels.shape[0]} samples")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    classes, inverse = np.unique(labels, return_inverse=True)
    k = classes.shape[0]
    # a seeded shuffle of each class's pool; clients pop from the front
    pools = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(k)]
    taken = np.zeros(k, dtype=np.int64)
    mixes = rng.dirichlet(np.full(k, alpha), size=sizes.shape[0])
    parts: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * sizes.shape[0]
    for client in rng.permutation(sizes.shape[0]):
        remaining = np.array([len(p) for p in pools]) - taken
        counts = np.zeros(k, dtype=np.int64)
        need = int(sizes[client])
        while need > 0:
            avail = remaining - counts
            q = mixes[client] * (avail > 0)
            if q.sum() <= 0:
                q = (avail > 0).astype(np.float64)
            draw = np.minimum(rng.multinomial(need, q / q.sum()), avail)
            counts += draw
            need -= int(draw.sum())
        chunks = [pools[c][taken[c] : taken[c] + counts[c]] for c in range(k)]
        taken += counts
        parts[client] = rng.permutation(np.concatenate(chunks))
    return parts


@dataclasses.dataclass(frozen=True)
class LabelSkew:
    """How far clients' label mixes are from the pool's.

    ``mean_tv_distance`` is the mean over clients of the total-variation
    distance between a client's label distribution and the global one (the
    earth mover's distance under a 0/1 ground metric): 0 for IID, near 1 for
    single-class clients. ``mean_entropy_bits`` vs ``global_entropy_bits``:
    a client with few classes has a low label entropy.
    """

    mean_tv_distance: float
    mean_entropy_bits: float
    global_entropy_bits: float
    mean_classes_per_client: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def label_skew(client_labels: list[np.ndarray]) -> LabelSkew:
    """Non-IID measure of a partition, from each client's label array."""
    nonempty = [np.asarray(y) for y in client_labels if len(y)]
    if not nonempty:
        raise ValueError("label_skew needs at least one non-empty client")
    classes = np.unique(np.concatenate(nonempty))
    glob = np.zeros(classes.shape[0])
    dists = []
    for y in nonempty:
        h = np.bincount(np.searchsorted(classes, y), minlength=classes.shape[0]).astype(np.float64)
        glob += h
        dists.append(h / h.sum())
    glob /= glob.sum()
    tv = [0.5 * float(np.abs(d - glob).sum()) for d in dists]
    return LabelSkew(
        mean_tv_distance=float(np.mean(tv)),
        mean_entropy_bits=float(np.mean([_entropy_bits(d) for d in dists])),
        global_entropy_bits=_entropy_bits(glob),
        mean_classes_per_client=float(np.mean([np.count_nonzero(d) for d in dists])),
    )


def train_test_sizes(size: int, batch_size: int, test_fraction: float) -> tuple[int, int]:
    """(unique train samples, unique test samples) of a client of ``size`` samples.

    The test split is a whole number of batches of distinct samples (at
    least one batch, about ``test_fraction`` of the client), so test
    accuracy is never computed on repeated images; the train split is the
    rest and is topped up to whole batches by repeating its own samples.
    Needs ``size >= 2 * batch_size``.
    """
    if size < 2 * batch_size:
        raise ValueError(f"a client needs at least {2 * batch_size} samples (one train and one test batch), got {size}")
    test_batches = max(1, round(test_fraction * size / batch_size))
    test_batches = min(test_batches, (size - batch_size) // batch_size)
    test = test_batches * batch_size
    return size - test, test
