"""The maths of asynchronous FL: staleness weights, FedAsync's mixing and FedBuff's rebased uploads.

An upload trained on the global model of version ``i`` arrives while the server is at
version ``t`` ≥ ``i``; its *staleness* is ``τ = t − i``. Every rule here is a pure function
of the models, the uploads and τ (float64 arithmetic, float32 results), so that the same
inputs give the same bits; :mod:`~pyflclient.server.async_rounds` owns when they are applied.

Staleness functions ``s(τ)`` (Xie, Koyejo, Gupta 2019, "Asynchronous Federated
Optimization", §5.2), chosen by ``staleness_function`` with the parameters
``staleness_a`` and ``staleness_b``:

* ``constant``:   ``s(τ) = 1``
* ``polynomial``: ``s(τ) = (τ + 1)^(−a)``
* ``hinge``:      ``s(τ) = 1`` if ``τ ≤ b``, else ``1 / (a (τ − b) + 1)``

The two asynchronous aggregations (``async_aggregation``):

* **FedAsync** (Xie et al. 2019, Algorithm 1, "updater"): each upload is mixed into the
  global model at once, ``x_{t+1} = (1 − α_t) x_t + α_t x_new`` with
  ``α_t = α · s(t − i)`` (``fedasync_alpha`` = α); every upload makes a new version.
* **FedBuff** (Nguyen et al. AISTATS 2022, Algorithm 1): uploads wait in a buffer until
  ``fedbuff_buffer_size`` = K are in; then the buffer becomes one new version through the
  server's ``aggregation_type`` (its :class:`~pyflclient.server.strategies.base.Aggregator`,
  FedAvg by default), each upload *rebased* on the current model and weighted by its
  staleness: the device's update ``Δ_k = x_k − x_{i_k}`` (against the model it trained on)
  is handed to the aggregator as the model ``x_t + s(τ_k) Δ_k`` (× data_size, as r1.6 uploads
  are). With FedAvg that is ``x_{t+1} = x_t + Σ n_k s(τ_k) Δ_k / Σ n_k``: FedBuff's
  ``x ← x + η_g · mean_k s(τ_k) Δ_k`` weighted by data size, η_g = 1; FedAvgM, FedAdam, …
  read the pseudo-gradient ``x_t − that average`` and apply their own server step.

The names of the mode, the aggregations and the staleness functions live here only.
"""
from __future__ import annotations

import abc
from typing import ClassVar, Mapping

import numpy as np

__all__ = ["ASYNC_SERVER_MODE", "ASYNC_AGGREGATIONS", "FEDASYNC", "FEDBUFF", "STALENESS_FUNCTIONS",
           "DEFAULT_STALENESS", "Staleness", "staleness", "fedasync_mix", "rebased_upload"]

#: ``server_mode`` of the asynchronous server (FLPlan.server_mode tells the device to run its async loop;
#: the Java client's ``AsyncRounds.SERVER_MODE`` is the same string, tests/test_async_java.py holds them together)
ASYNC_SERVER_MODE = "ASYNC_FEDERATED_LEARNING"
FEDASYNC, FEDBUFF = "FedAsync", "FedBuff"
#: ``async_aggregation``'s values
ASYNC_AGGREGATIONS = (FEDASYNC, FEDBUFF)

Model = Mapping[str, np.ndarray]


class Staleness(abc.ABC):
    """A staleness function ``s(τ)`` (module docstring); ``a`` and ``b`` are its parameters."""

    NAME: ClassVar[str]

    def __init__(self, a: float, b: float):
        self.a, self.b = float(a), float(b)

    @abc.abstractmethod
    def weight(self, tau: int) -> float:
        """``s(τ)`` for a staleness ``tau`` ≥ 0."""


class Constant(Staleness):
    """``s(τ) = 1``: every upload counts fully, however stale."""

    NAME = "constant"

    def weight(self, tau: int) -> float:
        return 1.0


class Polynomial(Staleness):
    """``s(τ) = (τ + 1)^(−a)``."""

    NAME = "polynomial"

    def weight(self, tau: int) -> float:
        return float((tau + 1.0) ** (-self.a))


class Hinge(Staleness):
    """``s(τ) = 1`` for ``τ ≤ b``, else ``1 / (a (τ − b) + 1)``."""

    NAME = "hinge"

    def weight(self, tau: int) -> float:
        return 1.0 if tau <= self.b else float(1.0 / (self.a * (tau - self.b) + 1.0))


#: ``staleness_function``'s values → their class
STALENESS_FUNCTIONS: dict[str, type[Staleness]] = {cls.NAME: cls for cls in (Constant, Polynomial, Hinge)}


#: ``staleness_function``'s default
DEFAULT_STALENESS = Polynomial.NAME


def staleness(name: str, a: float, b: float) -> Staleness:
    """The staleness function ``name`` with parameters ``a``, ``b``."""
    return STALENESS_FUNCTIONS[name](a, b)


def fedasync_mix(current: Model, trained: Model, alpha_t: float) -> dict[str, np.ndarray]:
    """FedAsync's update ``(1 − α_t) x_t + α_t x_new`` in float64, as float32 (``trained``: the device's
    model, not × data_size)."""
    out = {}
    for name, x in current.items():
        mixed = (1.0 - alpha_t) * np.asarray(x, np.float64) + alpha_t * np.asarray(trained[name], np.float64).reshape(
            np.shape(x))
        out[name] = mixed.astype(np.float32)
    return out


def rebased_upload(current: Model, trained_on: Model, uploaded: Model, data_size: int, weight: float
                   ) -> dict[str, np.ndarray]:
    """FedBuff's upload as the aggregator reads it: ``n (x_t + s Δ)`` with ``Δ = uploaded/n − x_i``
    (``uploaded`` is the device's weights × ``data_size`` = n, ``trained_on`` = x_i, ``current`` = x_t,
    ``weight`` = s(τ)); float64 arithmetic, float64 result (the aggregator sums in float64)."""
    out = {}
    for name, x in current.items():
        delta = np.asarray(uploaded[name], np.float64).reshape(np.shape(x)) / data_size \
            - np.asarray(trained_on[name], np.float64)
        out[name] = data_size * (np.asarray(x, np.float64) + weight * delta)
    return out
