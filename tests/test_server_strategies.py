"""Every aggregation type through a real server on loopback, driven by protocol-level devices.

Each test runs :class:`pyflclient.Server` (a thread, real HTTP) or ``pyflclient server`` processes
with raw Python devices (:class:`pyflclient.server.device.DeviceClient`, the server's own codec) and
holds the published models to the same aggregator driven directly with the same uploads, bit for
bit: the rounds, the stores, the state kept with each model and the checkpoints must add nothing and
lose nothing. The aggregators themselves are held to numpy transcriptions of their papers in
tests/test_strategies_math.py.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

from pyflclient.server import Server
from pyflclient.server.checkpoint import Checkpoints
from pyflclient.server.cli import settings_from
from pyflclient.server.config import ServerConfig
from pyflclient.server.device import DeviceClient
from pyflclient.server.strategies import aggregator
from pyflclient.wire.plugins import table
from pyflclient.wire.protocol import PLAIN_TEXT_JOB_FINISHED, ResponseCode

SHAPES: dict[str, tuple[int, ...]] = {"conv.weight": (2, 3), "fc.bias": (4,)}
#: fl_id → data_size (not growing with the fl_id: the order of the sums matters)
DATA_SIZES = {"dev-0": 5, "dev-1": 17, "dev-2": 2, "dev-3": 40}
ITERATIONS = 3
OFFERED = [name for name, row in table().aggregation.items() if not row.refused]
#: parameters that make a type do more than its defaults with 4 devices (a trimmed share, Multi-Krum)
PARAMS: dict[str, dict[str, float]] = {
    "FedTrimmedAvg": {"trim_beta": 0.25}, "Krum": {"krum_byzantine": 1, "krum_keep": 2},
    "FedAvgM": {"server_momentum": 0.9}, "FedProx": {"fedprox_mu": 0.5}, "Scaffold": {"server_learning_rate": 0.5},
}

Weights = dict[str, np.ndarray]


def initial_model() -> Weights:
    rng = np.random.default_rng(7)
    return {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in SHAPES.items()}


def trained(iteration: int, fl_id: str, received: Mapping[str, np.ndarray]) -> tuple[Weights, float, Weights]:
    """What device ``fl_id`` sends in ``iteration`` from the model it received: data_size × its trained
    weights (flat float32, as on the wire), its loss at the received model, its Δc_i."""
    rng = np.random.default_rng(1000 * iteration + int(fl_id.split("-")[1]))
    n = DATA_SIZES[fl_id]
    drift = rng.normal(0, 0.3)
    upload = {name: (np.float32(n) * (np.reshape(received[name], -1) + np.float32(drift)
                                      + rng.normal(0, 0.2, int(np.prod(shape))).astype(np.float32))).astype(np.float32)
              for name, shape in SHAPES.items()}
    delta_c = {name: rng.normal(0, 0.05, int(np.prod(shape))).astype(np.float32) for name, shape in SHAPES.items()}
    return upload, float(rng.uniform(0.2, 2.5)), delta_c


def run_iteration(url: str, iteration: int, *, scaffold: bool = False, loss: bool = True
                  ) -> tuple[dict[str, tuple[Weights, float, Weights]], Any]:
    """Every device joins ``iteration``, uploads; returns fl_id → what it sent, and one startFLJob reply."""
    sent, first = {}, None
    devices = [DeviceClient(url, fl_id=f, data_size=n) for f, n in DATA_SIZES.items()]
    try:
        replies = [d.start_fl_job(iteration) for d in devices]
        for d, reply in zip(devices, replies):
            assert not isinstance(reply, str) and reply.retcode == ResponseCode.SUCCEED, reply
            assert reply.iteration == iteration
            first = first or reply
            upload, device_loss, delta_c = trained(iteration, d.fl_id, reply.weights)
            sent[d.fl_id] = (upload, device_loss, delta_c)
            answer = d.update_model(iteration, upload, upload_loss=device_loss if loss else None,
                                    control_variate=delta_c if scaffold else None)
            assert not isinstance(answer, str) and answer.retcode == ResponseCode.SUCCEED, answer
    finally:
        for d in devices:
            d.close()
    return sent, first


def direct(name: str, params: Mapping[str, float], sent_by_iteration: list[dict[str, tuple[Weights, float, Weights]]]
           ) -> tuple[list[Weights], list[Weights]]:
    """The models of the iterations and the control variate each one's devices were sent, from the aggregator
    driven directly: a fresh instance each iteration, loaded with the state the previous one left (as a
    restarted server or another process of a group does)."""
    from pyflclient.server.strategies import DeviceUpload

    model, state, models, variates = initial_model(), {}, [], []
    for k, sent in enumerate(sent_by_iteration, start=1):
        agg = aggregator(name, SHAPES, params)
        agg.load(state)
        variates.append(dict(agg.plan_extras().control_variate))
        uploads = {f: DeviceUpload(DATA_SIZES[f], up, loss, cv if agg.row().device == "scaffold" else {})
                   for f, (up, loss, cv) in sent.items()}
        model = agg.aggregate(model, uploads, k)
        state = agg.state()
        models.append(model)
    return models, variates


def assert_identical(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray], what: str) -> None:
    assert set(got) == set(want), what
    for name in want:
        assert np.array_equal(np.reshape(got[name], -1), np.reshape(want[name], -1)), f"{what}: {name} differs"


def server(folder: Path, name: str, **settings: Any) -> Server:
    return Server(initial_model(), start_fl_job_threshold=len(DATA_SIZES), fl_iteration_num=ITERATIONS,
                  checkpoint_dir=str(folder), aggregation_type=name, **PARAMS.get(name, {}), **settings)


@pytest.mark.parametrize("name", OFFERED)
def test_each_type_through_a_real_server_restarted_after_iteration_2_gives_the_aggregators_models(tmp_path, name):
    row = table().aggregation[name]
    scaffold = row.device == "scaffold"
    sent: list[dict[str, tuple[Weights, float, Weights]]] = []
    replies = []
    with server(tmp_path, name) as srv:
        for k in (1, 2):
            got, reply = run_iteration(srv.url, k, scaffold=scaffold)
            sent.append(got)
            replies.append(reply)
            assert srv.wait_iteration(k, timeout=30)
        published = [srv.global_model(k) for k in (1, 2)]
    with server(tmp_path, name) as srv:  # a new server on the same checkpoints: model and state resumed
        got, reply = run_iteration(srv.url, 3, scaffold=scaffold)
        sent.append(got)
        replies.append(reply)
        assert srv.wait_finished(timeout=30)
        published.append(srv.global_model(3))
    params = ServerConfig(aggregation_type=name, **PARAMS.get(name, {})).aggregation_params
    models, variates = direct(name, params, sent)
    for k in range(ITERATIONS):
        assert_identical(published[k], models[k], f"{name}, iteration {k + 1}")
        plan = replies[k].plan
        assert plan.aggregation == row.wire
        assert plan.aggregation_weights == pytest.approx([params[p] for p in row.device_params])
        assert_identical(replies[k].control_variate, variates[k], f"{name}, c sent in iteration {k + 1}")


def test_scaffold_refuses_an_upload_without_its_control_variate_and_changes_nothing(tmp_path):
    name = next(n for n in OFFERED if table().aggregation[n].device == "scaffold")
    with server(tmp_path, name) as srv, DeviceClient(srv.url, fl_id="dev-0", data_size=5) as d:
        reply = d.start_fl_job(1)
        upload, _, delta_c = trained(1, d.fl_id, reply.weights)
        answer = d.update_model(1, upload)
        assert answer.retcode == ResponseCode.RequestError and "control_variate" in answer.reason
        short = {n: v[:-1] for n, v in delta_c.items()}
        answer = d.update_model(1, upload, control_variate=short)
        assert answer.retcode == ResponseCode.RequestError and "control_variate" in answer.reason
        nan = {n: np.full_like(v, np.nan) for n, v in delta_c.items()}
        answer = d.update_model(1, upload, control_variate=nan)
        assert answer.retcode == ResponseCode.RequestError and "NaN" in answer.reason
        assert srv.state().uploaded == 0
        assert d.update_model(1, upload, control_variate=delta_c).retcode == ResponseCode.SUCCEED


def test_a_type_that_reads_the_loss_refuses_an_upload_without_upload_loss(tmp_path):
    name = next(n for n in OFFERED if table().aggregation[n].reports_loss)
    with server(tmp_path, name) as srv, DeviceClient(srv.url, fl_id="dev-0", data_size=5) as d:
        reply = d.start_fl_job(1)
        upload, loss, _ = trained(1, d.fl_id, reply.weights)
        answer = d.update_model(1, upload)
        assert answer.retcode == ResponseCode.RequestError
        assert "upload_loss is missing" in answer.reason and name in answer.reason
        answer = d.update_model(1, upload, upload_loss=float("nan"))
        assert answer.retcode == ResponseCode.RequestError and "upload_loss" in answer.reason
        assert d.update_model(1, upload, upload_loss=loss).retcode == ResponseCode.SUCCEED


def test_the_default_plan_is_r16s_fedavg_without_early_stop_or_control_variate(tmp_path):
    with Server(initial_model()) as srv, DeviceClient(srv.url, fl_id="dev-0") as d:
        reply = d.start_fl_job(1)
    assert reply.plan.aggregation == table().aggregation[ServerConfig().aggregation_type].wire == 0
    assert reply.plan.aggregation_weights == () and reply.plan.early_stop is None
    assert reply.control_variate == {}


# -- early stop -----------------------------------------------------------------------------------------


def weighted_loss(sent: Mapping[str, tuple[Weights, float, Weights]]) -> float:
    return sum(DATA_SIZES[f] * loss for f, (_, loss, _) in sorted(sent.items())) / sum(DATA_SIZES.values())


def test_loss_abs_ends_the_job_after_early_stop_rounds_iterations_with_the_reason_everywhere(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pyflclient.server.rounds")
    first = {f: trained(1, f, initial_model()) for f in DATA_SIZES}
    threshold = weighted_loss(first) + 10.0  # every iteration's loss is below it: the job ends after 2
    with Server(initial_model(), start_fl_job_threshold=len(DATA_SIZES), fl_iteration_num=10,
                checkpoint_dir=str(tmp_path), early_stop_type="loss_abs", early_stop_weight=threshold,
                early_stop_rounds=2) as srv:
        reply = None
        for k in (1, 2):
            _, reply = run_iteration(srv.url, k)
            assert srv.wait_iteration(k, timeout=30)
        assert reply.plan.early_stop == (table().early_stop["loss_abs"].wire, pytest.approx(threshold), 2)
        assert srv.wait_finished(timeout=30) and srv.finished
        assert srv.early_stop is not None and "loss_abs" in srv.early_stop and "2 iteration(s)" in srv.early_stop
        assert [m.get("early_stop") for m in srv.metrics()] == [None, srv.early_stop]
        with DeviceClient(srv.url, fl_id="late", data_size=3) as d:
            assert d.start_fl_job(3) == PLAIN_TEXT_JOB_FINISHED
    assert any(srv.early_stop in r.getMessage() for r in caplog.records)
    assert Checkpoints(tmp_path).read_metrics()[-1]["early_stop"] == srv.early_stop
    with Server(initial_model(), start_fl_job_threshold=len(DATA_SIZES), fl_iteration_num=10,
                checkpoint_dir=str(tmp_path), early_stop_type="loss_abs", early_stop_weight=threshold,
                early_stop_rounds=2) as again:  # a restart does not reopen a job that stopped early
        assert again.finished and again.early_stop is not None
        with DeviceClient(again.url, fl_id="late", data_size=3) as d:
            assert d.start_fl_job(3) == PLAIN_TEXT_JOB_FINISHED


def test_loss_diff_counts_on_across_a_restart(tmp_path):
    sent1 = {f: trained(1, f, initial_model()) for f in DATA_SIZES}
    settings = dict(start_fl_job_threshold=len(DATA_SIZES), fl_iteration_num=10, checkpoint_dir=str(tmp_path),
                    early_stop_type="loss_diff", early_stop_rounds=1)
    with Server(initial_model(), early_stop_weight=1e-9, **settings) as srv:
        run_iteration(srv.url, 1)
        assert srv.wait_iteration(1, timeout=30) and not srv.finished
        model1 = srv.global_model(1)
    sent2 = {f: trained(2, f, model1) for f in DATA_SIZES}
    diff = abs(weighted_loss(sent2) - weighted_loss(sent1))
    # the restarted server needs iteration 1's loss (kept in the checkpoint's state) to stop after iteration 2
    with Server(initial_model(), early_stop_weight=diff * 1.0001, **settings) as srv:
        run_iteration(srv.url, 2)
        assert srv.wait_finished(timeout=30)
        assert srv.early_stop is not None and "loss_diff" in srv.early_stop
        assert [m["iteration"] for m in srv.metrics()] == [1, 2]


def test_weight_diff_stops_when_the_model_no_longer_moves_and_not_on_an_invalid_iteration(tmp_path):
    with Server(initial_model(), start_fl_job_threshold=1, fl_iteration_num=10, early_stop_type="weight_diff",
                early_stop_weight=1e-6, early_stop_rounds=2, update_model_time_window=300) as srv:
        with DeviceClient(srv.url, fl_id="dev-0", data_size=4) as d:
            for k in (1, 2):
                reply = d.start_fl_job(k)
                same = {n: np.float32(4) * np.asarray(w) for n, w in reply.weights.items()}
                assert d.update_model(k, same).retcode == ResponseCode.SUCCEED
                assert srv.wait_iteration(k, timeout=30)
        assert srv.finished and "weight_diff" in (srv.early_stop or "")
        assert [m["iteration"] for m in srv.metrics()] == [1, 2]


# -- bad configurations: one line, exit 2 ------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyflclient.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def npz_model(tmp_path: Path) -> str:
    path = tmp_path / "model.npz"
    np.savez(path, **initial_model())
    return str(path)


REFUSED = next(n for n, row in table().aggregation.items() if row.refused)
SINGLE = next(n for n in OFFERED if table().aggregation[n].needs_single_uploads)
SUMMING = next(n for n, row in table().encrypt.items() if not row.sees_single_uploads)


@pytest.mark.parametrize("args, words", [
    (["--aggregation-type", "FedNothing"], ["aggregation_type='FedNothing'", "one of", OFFERED[0], OFFERED[-1]]),
    (["--aggregation-type", REFUSED], [f"aggregation_type='{REFUSED}'", "not offered"]),
    (["--server-learning-rate", "0.1"], ["server_learning_rate=0.1", "does not use it"]),
    (["--aggregation-type", "FedAdam", "--server-learning-rate", "0"], ["server_learning_rate=0.0", "> 0"]),
    (["--aggregation-type", "FedAvgM", "--server-momentum", "1"], ["server_momentum=1.0", "[0, 1)"]),
    (["--aggregation-type", "Krum", "--krum-keep", "1.5"], ["krum_keep"]),
    (["--aggregation-type", SINGLE, "--encrypt-type", SUMMING, "--start-fl-job-threshold", "3"],
     [f"aggregation_type='{SINGLE}'", f"encrypt_type='{SUMMING}'"]),
    (["--aggregation-type", "Scaffold", "--encrypt-type", "PW_ENCRYPT", "--start-fl-job-threshold", "3"],
     ["scaffold_num_clients", "PW_ENCRYPT", "> 0"]),
    (["--encrypt-type", "ROT13"], ["encrypt_type='ROT13'", "one of"]),
    (["--dp-norm-clip", "inf"], ["dp_norm_clip=inf", "finite"]),
    (["--dp-eps", "0"], ["dp_eps=0.0", "> 0"]),
    (["--early-stop-type", "loss_abs"], ["early_stop_weight", "needs a value"]),
    (["--early-stop-type", "accuracy", "--early-stop-weight", "1"], ["early_stop_type='accuracy'", "loss_diff"]),
    (["--early-stop-weight", "0.1"], ["early_stop_weight=0.1", "needs an early_stop_type"]),
    (["--early-stop-type", "loss_abs", "--early-stop-weight", "1", "--early-stop-rounds", "0"],
     ["early_stop_rounds=0", ">= 1"]),
])
def test_a_bad_aggregation_encrypt_or_early_stop_setting_is_one_line_and_exit_2(npz_model, args, words):
    run = cli("server", "--model", npz_model, *args)
    lines = run.stderr.splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("pyflclient server: "), run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_the_demo_refuses_a_bad_aggregation_setting_in_one_line(tmp_path):
    run = cli("demo", "--out", str(tmp_path / "demo"), "--aggregation-type", "FedAdam", "--server-momentum", "0.5")
    lines = run.stderr.splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0].startswith("pyflclient demo: server_momentum=0.5") and "FedAdam" in lines[0]
    assert not (tmp_path / "demo").exists()


def yaml_settings(tmp_path: Path, text: str, *flags: str) -> ServerConfig:
    from pyflclient.cli import build_parser

    (tmp_path / "server.yaml").write_text(text)
    args = build_parser().parse_args(["server", "--model", "m.npz", "--config", str(tmp_path / "server.yaml"),
                                      *flags])
    return settings_from(args)[1]


def test_yaml_takes_mindspore_federateds_aggregation_section_and_flags_override_it(tmp_path):
    config = yaml_settings(tmp_path, "aggregation:\n  aggregation_type: FedAdam\n  server_learning_rate: 0.5\n"
                                     "early_stop_type: loss_diff\nearly_stop_weight: 0.01\n",
                           "--server-beta1", "0.8")
    assert config.aggregation_type == "FedAdam" and config.early_stop_type == "loss_diff"
    assert config.aggregation_params == {"server_learning_rate": 0.5, "server_beta1": 0.8, "server_beta2": 0.99,
                                         "server_tau": 1e-9}


def test_yaml_refuses_a_setting_given_flat_and_in_the_section(tmp_path):
    from pyflclient.server.config import ConfigError

    with pytest.raises(ConfigError, match="both flat and in the aggregation section"):
        yaml_settings(tmp_path, "aggregation_type: FedAvgM\naggregation:\n  aggregation_type: FedAdam\n")



# -- a group of server processes on one Redis ------------------------------------------------------------

STATEFUL = [n for n in OFFERED if table().aggregation[n].device == "scaffold"
            or "server_beta2" in table().aggregation[n].params][:2]  # Scaffold and FedAdam: c, and Adam's moments


def wait_model(url: str, iteration: int) -> dict[str, np.ndarray]:
    import time

    deadline = time.monotonic() + 60
    with DeviceClient(url) as d:
        while time.monotonic() < deadline:
            reply = d.get_model(iteration)
            if not isinstance(reply, str) and reply.retcode == ResponseCode.SUCCEED:
                return dict(reply.weights)
            time.sleep(0.05)
    raise AssertionError(f"no model of iteration {iteration} from {url}")


def group_iteration(ports: list[int], iteration: int, scaffold: bool, dead: set[int]
                    ) -> dict[str, tuple[Weights, float, Weights]]:
    """Each device joins and uploads through another process of the group (never a dead one)."""
    import time

    live = [p for p in ports if p not in dead]
    sent = {}
    for i, (fl_id, n) in enumerate(DATA_SIZES.items()):
        url = f"http://127.0.0.1:{live[(i + iteration) % len(live)]}"
        with DeviceClient(url, fl_id=fl_id, data_size=n) as d:
            deadline = time.monotonic() + 60
            while True:
                reply = d.start_fl_job(iteration)
                if not isinstance(reply, str) and reply.retcode == ResponseCode.SUCCEED and reply.iteration == iteration:
                    break
                assert time.monotonic() < deadline, reply
                time.sleep(0.05)
            upload, loss, delta_c = trained(iteration, fl_id, reply.weights)
            sent[fl_id] = (upload, loss, delta_c)
            answer = d.update_model(iteration, upload, upload_loss=loss, control_variate=delta_c if scaffold else None)
            assert answer.retcode == ResponseCode.SUCCEED, answer.reason
    return sent


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", STATEFUL)
def test_four_processes_on_one_redis_give_the_models_of_one_process_with_one_killed_along_the_way(
        tmp_path, redis_server, name):
    from test_server_group import ServerGroup

    args = ("--aggregation-type", name, *[x for k, v in PARAMS.get(name, {}).items()
                                          for x in ("--" + k.replace("_", "-"), str(v))])
    group = ServerGroup(tmp_path, redis_server.address, initial_model(), threshold=len(DATA_SIZES),
                        iterations=ITERATIONS, args=args).start()
    try:
        scaffold = table().aggregation[name].device == "scaffold"
        dead: set[int] = set()
        sent, published = [], []
        for k in range(1, ITERATIONS + 1):
            sent.append(group_iteration(group.ports, k, scaffold, dead))
            if k == 2:  # the last uploader's process (it closes iteration 2) is killed: the others go on
                closer = group.ports[(len(DATA_SIZES) - 1 + k) % len(group.ports)]
                group.kill(group.ports.index(closer))
                dead.add(closer)
            live = next(p for p in group.ports if p not in dead)
            published.append(wait_model(f"http://127.0.0.1:{live}", k))
    finally:
        group.stop()
    params = ServerConfig(aggregation_type=name, **PARAMS.get(name, {})).aggregation_params
    models, _ = direct(name, params, sent)
    for k in range(ITERATIONS):
        assert_identical(published[k], models[k], f"{name} in a group, iteration {k + 1}")
    assert Checkpoints(tmp_path / "ckpt").state(ITERATIONS)  # the state after the last iteration, with its model
    assert "Traceback" not in group.log()


# -- pairwise masking: the aggregator reads the unmasked sum ---------------------------------------------

SUMMABLE = [n for n in STATEFUL]  # Scaffold (its control variates masked with the weights) and FedAdam


@pytest.mark.parametrize("name", SUMMABLE)
def test_pairwise_masking_gives_the_model_of_the_plain_uploads(tmp_path, name):
    from pyflclient.server.device import MaskingDevice
    from pyflclient.server.secure_aggregation import CONTROL_VARIATE_PREFIX
    from test_server_secure_aggregation import ready

    scaffold = table().aggregation[name].device == "scaffold"
    # N of Scaffold's c update: the aggregator reads one upload, the sum, so N is given (here every device)
    extra = {"scaffold_num_clients": len(DATA_SIZES)} if scaffold else {}
    sent = []
    with server(tmp_path, name, encrypt_type=SUMMING, **extra) as srv:
        devices = [MaskingDevice(srv.url, fl_id=f, data_size=n) for f, n in DATA_SIZES.items()]
        try:
            for k in (1, 2):
                joined = [d.start_fl_job(k) for d in devices]
                assert all(j.retcode == ResponseCode.SUCCEED for j in joined), [j.reason for j in joined]
                for d in devices:
                    assert d.exchange_keys(k)["retcode"] == ResponseCode.SUCCEED
                for d in devices:
                    assert ready(d.get_keys, k)["retcode"] == ResponseCode.SUCCEED
                for d in devices:
                    assert d.share_secrets(k, joined[0].plan.t)["retcode"] == ResponseCode.SUCCEED
                for d in devices:
                    assert ready(d.get_secrets, k)["retcode"] == ResponseCode.SUCCEED
                iteration = {}
                for d, j in zip(devices, joined):
                    upload, loss, delta_c = trained(k, d.fl_id, j.weights)
                    iteration[d.fl_id] = (upload, loss, delta_c)
                    entries = {**upload, **({CONTROL_VARIATE_PREFIX + n: v for n, v in delta_c.items()} if scaffold else {})}
                    masked = d.masked(k, entries)
                    weights = {n: masked[n] for n in upload}
                    variate = {n: masked[CONTROL_VARIATE_PREFIX + n] for n in upload} if scaffold else None
                    reply = d.update_model(k, weights, control_variate=variate)
                    assert reply.retcode == ResponseCode.SUCCEED, reply.reason
                for d in devices:
                    listed = ready(d.get_client_list, k)
                    assert d.reconstruct_secrets(k, listed["clients"])["retcode"] == ResponseCode.SUCCEED
                assert srv.wait_iteration(k, timeout=30)
                sent.append(iteration)
            published = [srv.global_model(k) for k in (1, 2)]
        finally:
            for d in devices:
                d.close()
    params = ServerConfig(aggregation_type=name, **PARAMS.get(name, {}), **extra).aggregation_params
    models, _ = direct(name, params, sent)
    for k in range(2):  # the masks' fixed-point ring rounds each upload: close, not identical
        for n in SHAPES:
            np.testing.assert_allclose(np.reshape(published[k][n], -1), np.reshape(models[k][n], -1),
                                       rtol=1e-4, atol=1e-5, err_msg=f"{name}, iteration {k + 1}, {n}")


def test_docs_strategies_names_every_type_with_its_flags_and_the_tables_defaults():
    text = (Path(__file__).resolve().parents[1] / "docs" / "strategies.md").read_text()
    for name, row in table().aggregation.items():
        assert f"`{name}`" in text, name
        line = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        for parameter, default in row.params.items():
            flag = table().parameters[parameter].flag
            assert f"`{flag}` ({default!r}" in line, f"{name}: {flag} ({default!r}) not in docs/strategies.md"


@pytest.mark.parametrize("masked", [False, True])
def test_redis_keeps_loss_control_variate_and_state_exactly(redis_server, masked):
    import asyncio

    from pyflclient.server.redis_store import RedisStore

    slots = 2 if masked else 1  # a masked value is two float32 slots of any bits
    rng = np.random.default_rng(3)
    weights = {n: rng.normal(0, 1, slots * int(np.prod(s))).astype(np.float32) for n, s in SHAPES.items()}
    variate = {n: rng.normal(0, 1, slots * int(np.prod(s))).astype(np.float32) for n, s in SHAPES.items()}
    state = {"aggregator/m/fc.bias": rng.normal(0, 1, 4), "early_stop/streak": np.array(2, np.int64)}

    async def scenario() -> None:
        one, other = RedisStore(redis_server.address), RedisStore(redis_server.address)
        try:
            await one.begin(1, initial_model())
            await other.begin(1, initial_model())
            await one.admit(1, "a", 5, 0, 2, 10 ** 9)
            await one.admit(1, "b", 7, 0, 2, 10 ** 9)
            await one.add_upload(1, "a", weights, 0, loss=0.1 + 1e-17, control_variate=variate)
            await other.add_upload(1, "b", weights, 0)
            closed = await other.close(1)
            assert closed is not None
            a, b = closed.uploads["a"], closed.uploads["b"]
            assert (a.data_size, a.loss, b.loss, b.control_variate) == (5, 0.1 + 1e-17, None, {})
            for n in SHAPES:
                assert np.array_equal(np.reshape(a.weights[n], -1), weights[n])
                assert np.array_equal(np.reshape(a.control_variate[n], -1), variate[n])
            await other.publish(1, initial_model(), False, state)
            got = await one.state(1)
            assert set(got) == set(state) and all(np.array_equal(got[k], state[k]) for k in state)
            assert got["aggregator/m/fc.bias"].dtype == np.float64
            assert await one.state(0) == {}
        finally:
            await one.aclose()
            await other.aclose()

    asyncio.run(scenario())


def test_a_checkpoint_holds_the_state_in_its_own_dtypes_under_reserved_names_and_is_no_initial_model(tmp_path):
    from pyflclient.server.checkpoint import ModelFileError, load_model

    checkpoints = Checkpoints(tmp_path)
    state = {"aggregator/c/fc.bias": np.arange(4, dtype=np.float64) / 3, "early_stop/last_loss": np.array(np.nan)}
    path = checkpoints.save(1, initial_model(), state, job_finished=True)
    again = Checkpoints(tmp_path)
    assert set(again.load(1)) == set(SHAPES)
    got = again.state(1)
    assert got["aggregator/c/fc.bias"].dtype == np.float64
    assert np.array_equal(got["aggregator/c/fc.bias"], state["aggregator/c/fc.bias"])
    assert np.isnan(got["early_stop/last_loss"]) and again.job_finished(1)
    assert not Checkpoints(tmp_path).job_finished(2)
    with pytest.raises(ModelFileError, match="reserved"):
        load_model(path)
