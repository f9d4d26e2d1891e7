"""The device side of the round's plug-ins, through a real JVM: the generated RoundPlugins table
against schema/round_plugins.json, and Java's FedProx training step and forward-only loss on the
bundled LeNet .ms model against a numpy transcription (the gradient from the numpy reference
interpreter of pyflclient.model.reference, the proximal term and ApplyMomentum written here).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pyflclient.model import LENET_TRAIN_MS
from pyflclient.client import jvm
from pyflclient.model import msfile
from pyflclient.model.reference import Interpreter

ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads((ROOT / "schema" / "round_plugins.json").read_text())
LENET = LENET_TRAIN_MS


@pytest.fixture(scope="module")
def plugins():
    return jvm.jclass("com.mindspore.flclient.runtime.schema.RoundPlugins")


def test_generated_aggregation_rows_match_the_table(plugins):
    rows = list(plugins.AGGREGATION_TYPES)
    assert [str(r.name) for r in rows] == [a["name"] for a in TABLE["aggregation_types"]]
    for row, a in zip(rows, TABLE["aggregation_types"]):
        assert int(row.wire) == a["wire"]
        assert plugins.aggregation(a["wire"]).equals(row)
        assert str(row.wireName) == a.get("wire_name", a["name"])
        assert str(row.device) == a["device"]
        assert [str(p) for p in row.deviceParams] == a["device_params"]
        assert bool(row.needsSingleUploads) == a["needs_single_uploads"]
        assert bool(row.reportsLoss) == a["reports_loss"]
        assert (None if row.refused is None else str(row.refused)) == a.get("refused")


def test_generated_encrypt_and_early_stop_rows_match_the_table(plugins):
    for row, e in zip(plugins.ENCRYPT_TYPES, TABLE["encrypt_types"], strict=True):
        assert (str(row.name), [str(p) for p in row.params], bool(row.seesSingleUploads)) == (
            e["name"], e["params"], e["sees_single_uploads"])
    for row, e in zip(plugins.EARLY_STOP_TYPES, TABLE["early_stop_types"], strict=True):
        assert (str(row.name), int(row.wire), bool(row.reportsLoss)) == (e["name"], e["wire"], e["reports_loss"])
        assert plugins.earlyStop(e["wire"]).equals(row)


def _python_accepts(p: dict, v: float) -> bool:
    """The parameter rule of the table, transcribed: bounds, open ends, integers, +inf where allowed."""
    if math.isnan(v):
        return False
    if math.isinf(v):
        return bool(p.get("allow_inf")) and v > 0 and p.get("max") is None
    if p["kind"] == "int" and v != round(v):
        return False
    lo, hi = p.get("min"), p.get("max")
    if lo is not None and (v <= lo if p.get("min_open") else v < lo):
        return False
    return hi is None or (v < hi if p.get("max_open") else v <= hi)


def test_generated_parameter_rules_accept_what_the_table_accepts(plugins):
    probes = [-1.0, 0.0, 1e-9, 0.2, 0.5, 0.99, 1.0, 1.5, 2.0, 7.0, math.inf, -math.inf, math.nan]
    rules = plugins.parameters()
    assert [str(k) for k in rules.keySet()] == [p["name"] for p in TABLE["parameters"]]
    for p in TABLE["parameters"]:
        row = plugins.parameter(p["name"])
        assert str(row.rule) == p["rule"]
        for v in probes:
            assert bool(row.accepts(v)) == _python_accepts(p, v), (p["name"], v)


def _java_map(values: dict[str, np.ndarray]):
    import jpype

    out = jpype.JClass("java.util.HashMap")()
    for name, v in values.items():
        out.put(name, jpype.JArray(jpype.JFloat)(np.ascontiguousarray(v, dtype=np.float32).ravel()))
    return out


@pytest.fixture(scope="module")
def batch():
    session = _java_session()
    shape = tuple(int(s) for s in session.inputShape())
    classes = int(session.numClasses())
    rng = np.random.default_rng(21)
    x = rng.random(shape, dtype=np.float32)
    y = rng.integers(0, classes, shape[0]).astype(np.int32)
    return x, y


def _java_session():
    return jvm.jclass("com.mindspore.flclient.runtime.TrainSession").load(
        jvm.jclass("java.nio.file.Path").of(str(LENET)))


def test_java_fedprox_step_is_the_numpy_gradient_step_with_the_proximal_term(batch):
    """FedProx (Li et al. 2020): one local step on F(w) + mu/2 ||w - w_t||^2 with the model's
    ApplyMomentum: g' = dF/dw + mu (w - w_t); accum <- momentum accum + g'; w <- w - lr accum."""
    import jpype

    x, y = batch
    mu = 1.0
    model = msfile.load(LENET)
    optimizers = [n for n in model.nodes if n.op_type == "ApplyMomentum"]
    assert optimizers, "lenet_train.ms trains with ApplyMomentum"
    tensors = model.tensors
    before = {tensors[n.inputs[0]].name: (np.array(tensors[n.inputs[0]].data, dtype=np.float32).ravel().copy(),
                                          np.array(tensors[n.inputs[1]].data, dtype=np.float32).ravel().copy(),
                                          float(np.ravel(tensors[n.inputs[2]].data)[0]),
                                          float(np.ravel(tensors[n.inputs[4]].data)[0]))
              for n in optimizers}
    rng = np.random.default_rng(7)
    w_global = {name: (w + rng.normal(0, 0.05, w.shape)).astype(np.float32) for name, (w, *_) in before.items()}

    interp = Interpreter(model)
    interp.train_step(x, y)  # the plain step; its gradients stay in the tensor table
    expected, plain = {}, {}
    for n in optimizers:
        name = tensors[n.inputs[0]].name
        w, accum, lr, momentum = (before[name][0].astype(np.float64), before[name][1].astype(np.float64),
                                  before[name][2], before[name][3])
        g = np.asarray(interp.values[n.inputs[3]], dtype=np.float64).ravel()
        g_prox = g + mu * (w - w_global[name])
        expected[name] = w - lr * (momentum * accum + g_prox)
        plain[name] = w - lr * (momentum * accum + g)

    session = _java_session()
    session.setGradientHook(jvm.jclass("com.mindspore.flclient.FedProxTraining").proximalTerm(
        jpype.JFloat(mu), _java_map(w_global)))
    session.trainStep(jpype.JArray(jpype.JFloat)(x.ravel()), jpype.JArray(jpype.JInt)(y))
    for name in expected:
        got = np.array(session.getWeight(name), dtype=np.float64)
        step, plain_step = expected[name] - before[name][0], plain[name] - before[name][0]
        scale = np.abs(step).max()
        assert np.abs((got - before[name][0]) - step).max() <= 1e-3 * scale + 1e-7, name
        assert np.abs(step - plain_step).max() > 0.05 * scale, f"{name}: the proximal term must show"


def test_java_loss_is_the_numpy_forward_loss_and_moves_nothing(batch):
    import jpype

    x, y = batch
    interp = Interpreter(msfile.load(LENET))
    expected = interp.train_step(x, y)  # the loss is computed at the weights before the update
    session = _java_session()
    saved = bytes(session.toBytes())
    loss = float(session.loss(jpype.JArray(jpype.JFloat)(x.ravel()), jpype.JArray(jpype.JInt)(y)))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert bytes(session.toBytes()) == saved


# -- end to end: a Java client process against a scripted loopback server --------------------

def _scripted_server(plan, weights: dict[str, np.ndarray], c: dict[str, np.ndarray]):
    """A raw-FlatBuffers server on loopback for one iteration: admits, records the upload, serves
    the model. Only for asserting what the device sends (the real server's side of upload_loss and
    control_variate is the server's own tests')."""
    import http.server
    import threading

    from pyflclient.wire import protocol as wire

    uploads: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            round_ = self.path.rstrip("/").rsplit("/", 1)[-1]
            if round_ == "startFLJob":
                reply = wire.StartFLJobResponse(wire.ResponseCode.SUCCEED, iteration=1, is_selected=True,
                                                plan=plan, weights=weights, control_variate=c).to_bytes()
            elif round_ == "updateModel":
                uploads.append(body)
                reply = wire.UpdateModelResponse(wire.ResponseCode.SUCCEED).to_bytes()
            else:
                reply = wire.GetModelResponse(wire.ResponseCode.SUCCEED, iteration=1, weights=weights).to_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, uploads


def _softmax_ce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]


R16_SOURCES = Path(__file__).resolve().parent / "r16_client"


def _case_class_path(case: str, tmp_path: Path) -> tuple[str, str]:
    """(class path, flName) of the project's LeNet case or of the r1.6 custom case (compiled here)."""
    import subprocess

    from pyflclient.client.jvm import find_jars

    client_jar, case_jar = find_jars()
    if case == "lenet":
        return f"{client_jar}:{case_jar}", "com.mindspore.flclient.demo.lenet.LenetClient"
    classes = tmp_path / "classes"
    javac = subprocess.run(["javac", "-d", str(classes), "-cp", str(client_jar),
                            *map(str, sorted(R16_SOURCES.rglob("*.java")))], capture_output=True, text=True)
    assert javac.returncode == 0, javac.stdout + javac.stderr
    return f"{client_jar}:{classes}", "com.example.r16.ModelClient"


@pytest.mark.parametrize("case", ["lenet", "r16"])
def test_a_java_client_sends_scaffolds_delta_c_and_the_loss_its_plan_asks_for(case: str, tmp_path: Path) -> None:
    """Scaffold with an early stop on the loss, for the project's LeNet case and an r1.6 case
    (through R16Case): the upload carries upload_loss (the mean loss at the received model, numpy
    forward pass) and control_variate Δc_i = c_i⁺ − c_i with c_i⁺ = (1/K) Σ_k g(y_k), the mean raw
    gradient of the K local steps (c_i = 0 at first), and c_i⁺ is kept beside the model.

    The numpy transcription runs the two local steps of Karimireddy et al. 2020 under the model's
    own ApplyMomentum (Sutskever form): a_k = m a_{k-1} + g(y_{k-1}) + c − c_i, y_k = y_{k-1} − lr a_k.
    One batch of n = batch_size samples per epoch and 2 epochs make both steps see the same samples
    whatever the device's shuffle. Option II's (x − y_K)/(K lr) − c differs from the mean gradient by
    the momentum (m = 0.9 here), so the test tells the two apart."""
    import subprocess

    from pyflclient.wire import protocol as wire

    scaffold = next(a for a in TABLE["aggregation_types"] if a["device"] == "scaffold")
    stop = next(e for e in TABLE["early_stop_types"] if e["reports_loss"])
    batch, n, lr, epochs = 32, 32, 0.01, 2
    rng = np.random.default_rng(3)
    images = rng.random((n, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 62, n).astype(np.int32)
    data, label = tmp_path / f"f0_bn_{n}_train_data.bin", tmp_path / f"f0_bn_{n}_train_label.bin"
    images.tofile(data)
    labels.tofile(label)
    model = tmp_path / "lenet_train0.ms"
    model.write_bytes(LENET.read_bytes())
    x = msfile.trainable_weights(LENET)
    c = {k: rng.normal(0, 0.01, v.shape).astype(np.float32) for k, v in x.items()}
    plan = wire.FLPlan(iterations=1, epochs=epochs, mini_batch=batch, lr=lr, aggregation=scaffold["wire"],
                       early_stop=(stop["wire"], 0.001, 2))
    class_path, fl_name = _case_class_path(case, tmp_path)
    httpd, uploads = _scripted_server(plan, x, c)
    try:
        log = tmp_path / "client.log"
        proc = subprocess.run(
            ["java", "-Xmx256m", "-cp", class_path, "com.mindspore.flclient.SyncFLJob",
             "--task", "train", "--flName", fl_name,
             "--trainModelPath", str(model), "--domainName", f"http://127.0.0.1:{httpd.server_address[1]}",
             "--trainData", f"{data},{label}", "--evalData", f"{data},{label}", "--batchSize", str(batch),
             "--clientID", "f0", "--logPath", str(log)],
            capture_output=True, text=True, timeout=300)
    finally:
        httpd.shutdown()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    assert len(uploads) == 1
    up = wire.UpdateModelRequest.from_bytes(uploads[0])

    interp = Interpreter(msfile.load(LENET))
    nchw = images.transpose(0, 3, 1, 2)
    losses = np.concatenate([_softmax_ce(interp.logits(nchw[i:i + batch]), labels[i:i + batch])
                             for i in range(0, n, batch)])
    assert up.upload_loss == pytest.approx(losses.mean(), rel=1e-4)

    # the two local steps in numpy: raw gradients g_k from the reference interpreter, the corrected
    # momentum step by hand (the interpreter's own update is overwritten before each step)
    model_np = msfile.load(LENET)
    interp = Interpreter(model_np)
    tensors = model_np.tensors
    momentum_nodes = [nd for nd in model_np.nodes if nd.op_type == "ApplyMomentum"]
    assert {tensors[nd.inputs[0]].name for nd in momentum_nodes} == set(x)
    state = {tensors[nd.inputs[0]].name: (x[tensors[nd.inputs[0]].name].astype(np.float64).ravel(),
                                          np.asarray(tensors[nd.inputs[1]].data, np.float64).ravel().copy())
             for nd in momentum_nodes}
    raw_sum = {name: np.zeros_like(w) for name, (w, _) in state.items()}
    for _ in range(epochs):
        for nd in momentum_nodes:
            name = tensors[nd.inputs[0]].name
            interp.values[nd.inputs[0]][...] = state[name][0].reshape(interp.values[nd.inputs[0]].shape)
        interp.train_step(nchw, labels)
        for nd in momentum_nodes:
            name = tensors[nd.inputs[0]].name
            m = float(np.ravel(interp.values[nd.inputs[4]])[0])
            g = np.asarray(interp.values[nd.inputs[3]], np.float64).ravel()
            raw_sum[name] += g
            w, a = state[name]
            a = m * a + g + c[name].astype(np.float64).ravel()
            state[name] = (w - lr * a, a)
    steps = epochs
    assert set(up.control_variate) == set(x)
    for name, xv in x.items():
        expected = raw_sum[name] / steps
        got = np.asarray(up.control_variate[name], dtype=np.float64).ravel()
        option_ii = -c[name].astype(np.float64).ravel() + (xv.astype(np.float64).ravel() - state[name][0]) / (steps * lr)
        tol = 1e-3 * (np.abs(expected).max() + 1e-6) + 2e-4
        assert np.abs(got - expected).max() <= tol, name
        assert np.abs(option_ii - expected).max() > 10 * tol, f"{name}: momentum must tell option II apart"
        y = np.asarray(up.weights[name], dtype=np.float64).ravel() / n
        assert np.abs(y - state[name][0]).max() <= 1e-4 * (np.abs(xv).max() + 1e-6), f"{name}: the local steps"
    assert (tmp_path / "lenet_train0.ms.scaffold").exists(), "c_i is kept beside the model file"
    assert not (tmp_path / "lenet_train0.ms.scaffold.trained").exists()
