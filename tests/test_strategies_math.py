"""Each aggregation type of pyflclient.server.strategies against a numpy transcription of its paper
(with Flower 1.42's conventions where the brief says so), written here from the equations.

Every algorithm runs 3 iterations on hand-made uploads (4 devices with different data sizes and
losses, 2 weights); after iteration 2 its state goes through ``np.savez`` bytes into a fresh
instance, which must give the bit-identical iteration 3 of one instance running all three.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Mapping

import numpy as np
import pytest

from pyflclient.server.strategies import Aggregator, DeviceUpload, aggregator, aggregator_types
from pyflclient.server.strategies.fedadagrad import FedAdagrad
from pyflclient.server.strategies.fedadam import FedAdam
from pyflclient.server.strategies.fedavg import FedAvg
from pyflclient.server.strategies.fedavgm import FedAvgM
from pyflclient.server.strategies.fedmedian import FedMedian
from pyflclient.server.strategies.fedprox import FedProx
from pyflclient.server.strategies.fedtrimmedavg import FedTrimmedAvg
from pyflclient.server.strategies.fedyogi import FedYogi
from pyflclient.server.strategies.krum import Krum
from pyflclient.server.strategies.qffl import QFFL
from pyflclient.server.strategies.scaffold import Scaffold
from pyflclient.wire.plugins import table

SHAPES: dict[str, tuple[int, ...]] = {"conv.weight": (2, 3), "fc.bias": (4,)}
#: fl_id → data_size, deliberately not in fl_id order
DATA_SIZES = {"f3": 5, "f1": 17, "f4": 2, "f2": 40}
ITERATIONS = 3

Weights = dict[str, np.ndarray]


def initial_model() -> Weights:
    rng = np.random.default_rng(7)
    return {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in SHAPES.items()}


def device_round(iteration: int, previous: Weights) -> dict[str, tuple[Weights, float, Weights]]:
    """fl_id → (trained model, loss at the received model, Δc_i) of each device in ``iteration``."""
    rng = np.random.default_rng(100 + iteration)
    out = {}
    for fl_id in DATA_SIZES:
        drift = rng.normal(0, 0.3)
        model = {name: (previous[name] + drift + rng.normal(0, 0.2, shape)).astype(np.float32)
                 for name, shape in SHAPES.items()}
        delta_c = {name: rng.normal(0, 0.05, shape).astype(np.float32) for name, shape in SHAPES.items()}
        out[fl_id] = (model, float(rng.uniform(0.2, 2.5)), delta_c)
    return out


def uploads_of(devices: Mapping[str, tuple[Weights, float, Weights]]) -> dict[str, DeviceUpload]:
    """As r1.6 sends them: data_size × trained weights in float32 (flat, as on the wire)."""
    return {fl_id: DeviceUpload(n, {name: (n * w).astype(np.float32).reshape(-1) for name, w in model.items()},
                                loss, delta_c)
            for fl_id, (model, loss, delta_c) in devices.items() for n in [DATA_SIZES[fl_id]]}


def run(name: str, params: Mapping[str, float] | None = None, restart: bool = True
        ) -> tuple[list[Weights], list[dict[str, DeviceUpload]], Aggregator]:
    """Three iterations of ``name``; with ``restart`` a fresh instance loads the state saved after iteration 2."""
    agg = aggregator(name, SHAPES, params)
    agg.load({})
    model = initial_model()
    models, rounds = [model], []
    for iteration in range(1, ITERATIONS + 1):
        if restart and iteration == 3:
            buffer = io.BytesIO()
            np.savez(buffer, **agg.state())
            buffer.seek(0)
            agg = aggregator(name, SHAPES, params)
            agg.load(dict(np.load(buffer)))
        uploads = uploads_of(device_round(iteration, model))
        rounds.append(uploads)
        model = agg.aggregate(model, uploads, iteration)
        for weight, shape in SHAPES.items():
            assert model[weight].dtype == np.float32 and model[weight].shape == shape
        models.append(model)
    return models, rounds, agg


def reference_run(step: Callable[[int, Weights, dict[str, DeviceUpload], dict[str, Any]], Weights],
                  rounds: list[dict[str, DeviceUpload]], memory: dict[str, Any] | None = None) -> list[Weights]:
    """The transcription ``step`` (iteration, previous model, uploads, its own ``memory``) over the same uploads;
    the model is published as float32 after every iteration, as the server does."""
    memory = {} if memory is None else memory
    model = initial_model()
    models = [model]
    for iteration, uploads in enumerate(rounds, start=1):
        new = step(iteration, {k: v.astype(np.float64) for k, v in model.items()}, uploads, memory)
        model = {k: np.asarray(v).astype(np.float32).reshape(SHAPES[k]) for k, v in new.items()}
        models.append(model)
    return models


def assert_models_close(got: list[Weights], expected: list[Weights], rtol: float = 1e-6) -> None:
    for iteration, (g, e) in enumerate(zip(got, expected)):
        for name in SHAPES:
            np.testing.assert_allclose(g[name], e[name], rtol=rtol, atol=1e-7, err_msg=f"iteration {iteration}, {name}")


def assert_models_equal(got: list[Weights], expected: list[Weights]) -> None:
    for iteration, (g, e) in enumerate(zip(got, expected)):
        for name in SHAPES:
            np.testing.assert_array_equal(g[name], e[name], err_msg=f"iteration {iteration}, {name}")


def own_models(uploads: dict[str, DeviceUpload]) -> list[Weights]:
    """w_k = u_k / n_k in fl_id order."""
    return [{n: np.asarray(u.weights[n], np.float64).reshape(SHAPES[n]) / u.data_size for n in SHAPES}
            for _, u in sorted(uploads.items())]


# -- the transcriptions ------------------------------------------------------------------

def old_fedavg(uploads: dict[str, DeviceUpload]) -> Weights:
    """pyflclient/server/aggregation.py's FedAvg before the seam, operation for operation."""
    order = sorted(uploads)
    data_size = sum(uploads[f].data_size for f in order)
    model = {}
    for name, shape in SHAPES.items():
        total = np.zeros(int(np.prod(shape)), dtype=np.float64)
        for f in order:
            np.add(total, np.reshape(uploads[f].weights[name], -1), out=total)
        model[name] = (total / data_size).astype(np.float32).reshape(shape)
    return model


def mean_by_data_size(uploads: dict[str, DeviceUpload]) -> Weights:
    """McMahan et al.: sum_k n_k w_k / sum_k n_k, in float32 as published."""
    n = sum(u.data_size for u in uploads.values())
    return {name: (sum(np.asarray(u.weights[name], np.float64) for _, u in sorted(uploads.items())) / n)
            .astype(np.float32).reshape(SHAPES[name]).astype(np.float64) for name in SHAPES}


def avgm_step(lr: float, beta: float):
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        avg = mean_by_data_size(uploads)
        out = {}
        for n in SHAPES:
            g = x[n] - avg[n]                                  # pseudo-gradient (Flower: initial - fedavg)
            mem[n] = beta * mem.get(n, np.zeros_like(g)) + g   # m_t = beta m_{t-1} + g_t, m_0 = 0
            out[n] = x[n] - lr * mem[n]
        return out
    return step


def adaptive_step(kind: str, eta: float, b1: float, b2: float, tau: float):
    """Reddi et al. 2021, Algorithm 2 (FedAdagrad / FedAdam / FedYogi), Flower's conventions."""
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        avg = mean_by_data_size(uploads)
        out = {}
        for n in SHAPES:
            d = avg[n] - x[n]
            m = mem.get("m" + n, np.zeros_like(d))
            v = mem.get("v" + n, np.zeros_like(d))
            m = b1 * m + (1 - b1) * d
            if kind == "adagrad":
                v = v + d ** 2
            elif kind == "adam":
                v = b2 * v + (1 - b2) * d ** 2
            else:
                v = v - (1 - b2) * d ** 2 * np.sign(v - d ** 2)
            mem["m" + n], mem["v" + n] = m, v
            eta_t = eta * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1)) if kind == "adam" else eta
            out[n] = x[n] + eta_t * m / (np.sqrt(v) + tau)
        return out
    return step


def qffl_step(q: float, lr: float):
    """Li et al. 2020 / Flower's QFedAvg: Lipschitz-scaled q-weighted update, F_k each device's loss."""
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        deltas, hs = [], []
        for (_, u), w in zip(sorted(uploads.items()), own_models(uploads)):
            f = u.loss + 1e-10
            grads = [(x[n] - w[n]) / lr for n in SHAPES]
            deltas.append([f ** q * g for g in grads])
            hs.append(q * f ** (q - 1) * np.sum(np.concatenate([g.ravel() for g in grads]) ** 2) + f ** q / lr)
        h = np.sum(hs)
        return {n: x[n] - sum(d[i] / h for d in deltas) for i, n in enumerate(SHAPES)}
    return step


def median_step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
    models = own_models(uploads)
    return {n: np.median(np.array([w[n] for w in models]), axis=0) for n in SHAPES}


def trimmed_step(beta: float):
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        models = own_models(uploads)
        k = len(models)
        cut = int(beta * k)
        out = {}
        for n in SHAPES:
            values = np.sort(np.array([w[n] for w in models]), axis=0)   # per coordinate
            out[n] = values[cut:k - cut].sum(axis=0) / (k - 2 * cut)
        return out
    return step


def krum_step(f: int, keep: int):
    """Blanchard et al. 2017 / Flower's aggregate_krum (Multi-Krum: data-size weighted mean of the kept)."""
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        ids = sorted(uploads)
        models = own_models(uploads)
        flat = np.array([np.concatenate([w[n].ravel() for n in SHAPES]) for w in models])
        k = len(models)
        dist = np.array([[np.linalg.norm(a - b) ** 2 for b in flat] for a in flat])
        closest = max(1, k - f - 2)
        scores = [np.sum(np.sort(np.delete(dist[i], i))[:closest]) for i in range(k)]
        best = list(np.argsort(scores, kind="stable")[:max(1, keep)])
        n = sum(uploads[ids[i]].data_size for i in best)
        return {name: sum(uploads[ids[i]].data_size * models[i][name] for i in best) / n for name in SHAPES}
    return step


def scaffold_step(lr: float, num_clients: int):
    """Karimireddy et al. 2020: x += eta_g (mean - x); c += (1/N) sum_i delta c_i."""
    def step(t: int, x: Weights, uploads: dict[str, DeviceUpload], mem: dict[str, Any]) -> Weights:
        avg = mean_by_data_size(uploads)
        big_n = num_clients or len(uploads)
        for n in SHAPES:
            delta_c = [np.asarray(u.control_variate[n], np.float64).reshape(SHAPES[n]) for u in uploads.values()]
            mem[n] = mem.get(n, np.zeros(SHAPES[n])) + sum(delta_c) / big_n
        return {n: x[n] + lr * (avg[n] - x[n]) for n in SHAPES}
    return step


# -- each algorithm against its transcription, with a restart before iteration 3 ----------

CASES: list[tuple[str, dict[str, float], Callable[..., Weights]]] = [
    (FedAvgM.NAME, {"server_learning_rate": 0.7, "server_momentum": 0.9}, avgm_step(0.7, 0.9)),
    (FedAvgM.NAME, {"server_learning_rate": 1.5, "server_momentum": 0.0}, avgm_step(1.5, 0.0)),
    (FedAdam.NAME, {"server_learning_rate": 0.05, "server_beta1": 0.9, "server_beta2": 0.99, "server_tau": 1e-3},
     adaptive_step("adam", 0.05, 0.9, 0.99, 1e-3)),
    (FedYogi.NAME, {"server_learning_rate": 0.05, "server_beta1": 0.8, "server_beta2": 0.95, "server_tau": 1e-3},
     adaptive_step("yogi", 0.05, 0.8, 0.95, 1e-3)),
    (FedAdagrad.NAME, {"server_learning_rate": 0.1, "server_tau": 1e-2}, adaptive_step("adagrad", 0.1, 0.0, 0.0, 1e-2)),
    (QFFL.NAME, {"qffl_q": 0.2, "qffl_learning_rate": 0.1}, qffl_step(0.2, 0.1)),
    (QFFL.NAME, {"qffl_q": 2.0, "qffl_learning_rate": 0.5}, qffl_step(2.0, 0.5)),
    (FedMedian.NAME, {}, median_step),
    (FedTrimmedAvg.NAME, {"trim_beta": 0.25}, trimmed_step(0.25)),
    (Krum.NAME, {"krum_byzantine": 1, "krum_keep": 0}, krum_step(1, 0)),
    (Krum.NAME, {"krum_byzantine": 0, "krum_keep": 3}, krum_step(0, 3)),
    (Scaffold.NAME, {"server_learning_rate": 0.5, "scaffold_num_clients": 10}, scaffold_step(0.5, 10)),
    (Scaffold.NAME, {"server_learning_rate": 1.0, "scaffold_num_clients": 0}, scaffold_step(1.0, 0)),
]


@pytest.mark.parametrize("name,params,step", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_algorithm_matches_its_transcription_across_a_restart(name: str, params: dict[str, float],
                                                              step: Callable[..., Weights]) -> None:
    models, rounds, _ = run(name, params)
    assert_models_close(models, reference_run(step, rounds))
    continuous, _, _ = run(name, params, restart=False)
    assert_models_equal(models, continuous)


def test_fedavg_is_bit_identical_to_the_old_aggregation_module() -> None:
    models, rounds, agg = run(FedAvg.NAME)
    assert_models_equal(models[1:], [old_fedavg(u) for u in rounds])
    assert agg.state() == {}


@pytest.mark.parametrize("name,params", [(FedProx.NAME, {"fedprox_mu": 0.3}),
                                         (FedAvgM.NAME, {}),  # Flower's defaults: no server optimisation
                                         (Scaffold.NAME, {"server_learning_rate": 1.0})])
def test_types_that_reduce_to_fedavg_give_its_bit_identical_model(name: str, params: dict[str, float]) -> None:
    models, rounds, _ = run(name, params)
    assert_models_equal(models[1:], [old_fedavg(u) for u in rounds])


def test_fedavg_does_not_depend_on_the_order_uploads_arrive_in() -> None:
    uploads = uploads_of(device_round(1, initial_model()))
    reversed_arrival = dict(reversed(list(uploads.items())))
    a = aggregator(FedAvg.NAME, SHAPES).aggregate(initial_model(), uploads, 1)
    b = aggregator(FedAvg.NAME, SHAPES).aggregate(initial_model(), reversed_arrival, 1)
    assert_models_equal([a], [b])


def test_fedprox_sends_mu_in_the_plan() -> None:
    assert aggregator(FedProx.NAME, SHAPES, {"fedprox_mu": 0.3}).plan_extras().aggregation_weights == (0.3,)
    assert aggregator(FedAvg.NAME, SHAPES).plan_extras().aggregation_weights == ()


def test_stateful_types_keep_float_arrays_only() -> None:
    for name, params in [(FedAvgM.NAME, {"server_momentum": 0.5}), (FedAdam.NAME, {}), (FedYogi.NAME, {}),
                         (FedAdagrad.NAME, {}), (Scaffold.NAME, {})]:
        _, _, agg = run(name, params, restart=False)
        state = agg.state()
        assert state and all(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in state.values()), name


def test_a_state_of_another_shape_is_refused() -> None:
    _, _, agg = run(FedAdam.NAME, {}, restart=False)
    other = aggregator(FedAdam.NAME, {"conv.weight": (3, 3), "fc.bias": (4,)})
    with pytest.raises(ValueError, match="has 6 values, expected 9"):
        other.load(agg.state())


# -- robustness against poisoned uploads -----------------------------------------------

def poisoned_uploads() -> tuple[Weights, dict[str, DeviceUpload]]:
    """8 devices near one model, one of them uploading it scaled ×50, one sign-flipped ×5."""
    rng = np.random.default_rng(3)
    target = {n: rng.uniform(0.5, 1.0, s) * rng.choice([-1, 1], s) for n, s in SHAPES.items()}
    devices = {}
    for i in range(8):
        model = {n: (target[n] + rng.normal(0, 0.02, SHAPES[n])).astype(np.float32) for n in SHAPES}
        if i == 2:
            model = {n: 50 * w for n, w in model.items()}
        if i == 5:
            model = {n: -5 * w for n, w in model.items()}
        devices[f"d{i}"] = model
    uploads = {f: DeviceUpload(10 + 7 * i, {n: ((10 + 7 * i) * w).astype(np.float32) for n, w in m.items()})
               for i, (f, m) in enumerate(devices.items())}
    return target, uploads


@pytest.mark.parametrize("name,params", [(FedMedian.NAME, {}), (FedTrimmedAvg.NAME, {"trim_beta": 0.2}),
                                         (Krum.NAME, {"krum_byzantine": 2}),
                                         (Krum.NAME, {"krum_byzantine": 2, "krum_keep": 4})])
def test_robust_types_resist_a_scaled_and_a_sign_flipped_upload(name: str, params: dict[str, float]) -> None:
    target, uploads = poisoned_uploads()
    robust = aggregator(name, SHAPES, params).aggregate(target, uploads, 1)
    averaged = aggregator(FedAvg.NAME, SHAPES).aggregate(target, uploads, 1)
    for n in SHAPES:
        assert np.max(np.abs(robust[n] - target[n])) < 0.1, n
    assert max(np.max(np.abs(averaged[n] - target[n])) for n in SHAPES) > 1.0


# -- refusals ------------------------------------------------------------------------------

def test_qffl_refuses_an_upload_without_loss() -> None:
    agg = aggregator(QFFL.NAME, SHAPES)
    upload = DeviceUpload(3, {n: np.zeros(s, np.float32) for n, s in SHAPES.items()})
    reason = agg.check(upload)
    assert reason is not None and reason.startswith(f"{QFFL.NAME} needs upload_loss") and "\n" not in reason
    assert agg.check(DeviceUpload(3, upload.weights, loss=0.4)) is None
    assert agg.check(DeviceUpload(3, upload.weights, loss=float("nan"))) is not None
    with pytest.raises(ValueError, match="needs upload_loss"):
        agg.aggregate(initial_model(), {"a": upload}, 1)


def test_scaffold_refuses_a_control_variate_that_is_not_the_models() -> None:
    agg = aggregator(Scaffold.NAME, SHAPES)
    weights = {n: np.zeros(s, np.float32) for n, s in SHAPES.items()}
    good = {n: np.zeros(int(np.prod(s)), np.float32) for n, s in SHAPES.items()}
    assert agg.check(DeviceUpload(3, weights, control_variate=good)) is None
    for bad in ({}, {"conv.weight": good["conv.weight"]}, {**good, "extra": np.zeros(1, np.float32)},
                {**good, "fc.bias": np.zeros(5, np.float32)}, {**good, "fc.bias": np.full(4, np.inf, np.float32)}):
        reason = agg.check(DeviceUpload(3, weights, control_variate=bad))
        assert reason is not None and reason.startswith(Scaffold.NAME) and "\n" not in reason, bad


def test_scaffold_sends_a_zero_control_variate_at_the_start() -> None:
    agg = aggregator(Scaffold.NAME, SHAPES)
    agg.load({})
    extras = agg.plan_extras()
    assert {n: v.shape for n, v in extras.control_variate.items()} == SHAPES
    assert all(v.dtype == np.float32 and not v.any() for v in extras.control_variate.values())


@pytest.mark.parametrize("num_clients", [0, 10])
def test_scaffold_control_variate_matches_its_transcription_across_a_restart(num_clients: int) -> None:
    params = {"server_learning_rate": 0.5, "scaffold_num_clients": num_clients}
    _, rounds, agg = run(Scaffold.NAME, params)
    c: dict[str, Any] = {}
    reference_run(scaffold_step(0.5, num_clients), rounds, c)
    for n in SHAPES:
        np.testing.assert_allclose(agg.plan_extras().control_variate[n], c[n], rtol=1e-6, atol=1e-8)
    _, _, continuous = run(Scaffold.NAME, params, restart=False)
    assert set(agg.state()) == set(continuous.state()) == {"c/" + n for n in SHAPES}
    for key, value in continuous.state().items():
        np.testing.assert_array_equal(agg.state()[key], value)


# -- the registry ------------------------------------------------------------------------------

def test_the_registry_offers_every_row_that_is_not_refused() -> None:
    offered = {name for name, row in table().aggregation.items() if not row.refused}
    assert set(aggregator_types()) == offered
    for name, cls in aggregator_types().items():
        assert cls.NAME == name and cls.__doc__ and __import__(cls.__module__, fromlist=["_"]).__doc__


def test_the_registry_names_the_allowed_types_for_an_unknown_one() -> None:
    with pytest.raises(ValueError) as error:
        aggregator("FedNothing", SHAPES)
    message = str(error.value)
    assert "--aggregation-type" in message and "FedNothing" in message and "\n" not in message
    assert all(name in message for name in aggregator_types())


def test_the_registry_says_why_a_refused_row_is_not_offered() -> None:
    refused = [row for row in table().aggregation.values() if row.refused]
    assert refused
    for row in refused:
        with pytest.raises(ValueError, match="not offered"):
            aggregator(row.name, SHAPES)
