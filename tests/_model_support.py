"""Shared pieces of the device-model tests: export in a scratch directory, train the same
batches in MindSpore / the numpy reference / the Java runtime, compare.

Not a test module (no ``test_`` prefix); imported by tests/test_converter*.py and
tests/test_runtime_parity.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIENT_JAR = "mindspore-lite-java-flclient.jar"
RUNTIME_TOOL = "com.mindspore.flclient.runtime.RuntimeTool"


@contextmanager
def working_directory(path: Path) -> Iterator[Path]:
    """MindSpore writes ``rank_0/`` into the cwd when it compiles: keep that in a scratch dir."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


@dataclass
class Trained:
    """Losses of each step and every Parameter after the last one (name → array)."""

    losses: np.ndarray
    params: dict[str, np.ndarray]


def random_batches(steps: int, batch: int, image_shape: tuple[int, ...], num_class: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of images in [0, 1) (NCHW) and labels: X [steps, batch, C, H, W], Y [steps, batch]."""
    rng = np.random.default_rng(seed)
    x = rng.random((steps, batch, *image_shape), dtype=np.float32)
    y = rng.integers(0, num_class, (steps, batch)).astype(np.int32)
    return x, y


def train_mindspore(train_cell: Any, x: np.ndarray, y: np.ndarray) -> Trained:
    import mindspore as ms

    losses = [float(train_cell(ms.Tensor(xb), ms.Tensor(yb)).asnumpy()) for xb, yb in zip(x, y)]
    return Trained(np.array(losses), {p.name: p.asnumpy().copy() for p in train_cell.get_parameters()})


def train_reference(model: Any, x: np.ndarray, y: np.ndarray) -> Trained:
    from pyflclient.model.msfile import Role
    from pyflclient.model.reference import Interpreter

    interp = Interpreter(model)
    losses = [interp.train_step(xb, yb) for xb, yb in zip(x, y)]
    return Trained(np.array(losses), {t.name: np.array(t.data) for t in model.tensors
                                      if t.role == Role.PARAMETER})


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |a| (0 when both are all zero): one number per tensor, scale-free."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = float(np.abs(a).max()) if a.size else 0.0
    diff = float(np.abs(a - b).max()) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def worst_difference(expected: Trained, actual: Trained, names: list[str] | None = None) -> tuple[str, float]:
    """The tensor (or ``loss``) with the largest relative difference, and that difference."""
    rows = [("loss", relative_difference(expected.losses, actual.losses))]
    for name in names if names is not None else sorted(actual.params):
        rows.append((name, relative_difference(expected.params[name], actual.params[name])))
    return max(rows, key=lambda r: r[1])


# ---- small networks beyond LeNet (input 3×16×16, 5 classes) -----------------------------------------

def small_cnn(pool_pad_mode: str = "valid"):
    """Conv (same, stride 2, bias) → AvgPool → Sigmoid → Dense without bias → Tanh → Dense."""
    import mindspore as ms

    nn = ms.nn

    class SmallCNN(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, pad_mode="same", stride=2, has_bias=True)
            self.pool = nn.AvgPool2d(kernel_size=3 if pool_pad_mode == "same" else 2, stride=2,
                                     pad_mode=pool_pad_mode)
            self.act = nn.Sigmoid()
            self.flat = nn.Flatten()
            self.fc1 = nn.Dense(4 * 4 * 4, 16, has_bias=False)
            self.tanh = nn.Tanh()
            self.fc2 = nn.Dense(16, 5)

        def construct(self, x):
            return self.fc2(self.tanh(self.fc1(self.flat(self.act(self.pool(self.conv(x)))))))

    return SmallCNN()


def exotic_cnn():
    """Explicit pad + dilation 2, grouped conv with same padding, 3×3/2 max-pool with same padding
    (input 3×16×16, 5 classes)."""
    import mindspore as ms

    nn = ms.nn

    class Exotic(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, pad_mode="pad", padding=1, dilation=2)
            self.c2 = nn.Conv2d(4, 4, 3, pad_mode="same", group=2)
            self.pool = nn.MaxPool2d(3, stride=2, pad_mode="same")
            self.relu = nn.ReLU()
            self.flat = nn.Flatten()
            self.fc = nn.Dense(4 * 7 * 7, 5)

        def construct(self, x):
            return self.fc(self.flat(self.pool(self.relu(self.c2(self.relu(self.c1(x)))))))

    return Exotic()


def mlp():
    """Flatten → Dense(768 → 32, ReLU activation) → Dense(32 → 5) (input 3×16×16, 5 classes)."""
    import mindspore as ms

    nn = ms.nn

    class MLP(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.flat = nn.Flatten()
            self.fc1 = nn.Dense(3 * 16 * 16, 32, activation="relu")
            self.fc2 = nn.Dense(32, 5)

        def construct(self, x):
            return self.fc2(self.fc1(self.flat(x)))

    return MLP()


#: (network builder, make_train_cell keyword arguments): what the small-network tests run
SMALL_NETWORKS = {
    "cnn_avgpool_sgd": (lambda: small_cnn("valid"), dict(optimizer="sgd", learning_rate=0.05)),
    # Adam's steps are ±lr whatever the gradient's size, so float rounding differences of
    # near-zero gradients grow step by step; its usual small lr keeps 5 steps comparable
    "cnn_avgpool_adam": (lambda: small_cnn("valid"), dict(optimizer="adam", learning_rate=0.001)),
    "cnn_avgpool_same_momentum": (lambda: small_cnn("same"), dict(optimizer="momentum", learning_rate=0.05)),
    "cnn_dilated_grouped_momentum": (exotic_cnn, dict(optimizer="momentum", learning_rate=0.05)),
    "mlp_adam_weight_decay": (mlp, dict(optimizer="adam", learning_rate=0.001, weight_decay=0.01)),
    "mlp_sgd_nesterov_weight_decay": (mlp, dict(optimizer="sgd", learning_rate=0.05, weight_decay=0.01,
                                                nesterov=True)),
}


# ---- the Java runtime through its command-line tool --------------------------------------------

def _has_runtime_tool(jar: Path) -> bool:
    try:
        with zipfile.ZipFile(jar) as z:
            return RUNTIME_TOOL.replace(".", "/") + ".class" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def client_jar() -> Path:
    """The fat client jar with the runtime: $PYFLCLIENT_JAR, the installed package's, the checkout's,
    or built here with Maven (``-pl runtime,flclient -am package -DskipTests``)."""
    candidates = [Path(p) for p in (os.environ.get("PYFLCLIENT_JAR"),) if p]
    candidates += [ROOT / "pyflclient" / "jars" / CLIENT_JAR, ROOT / "jars" / "flclient" / "target" / CLIENT_JAR]
    for jar in candidates:
        if jar.is_file() and _has_runtime_tool(jar):
            return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"no {CLIENT_JAR} with {RUNTIME_TOOL} found ({', '.join(map(str, candidates))}) "
                           f"and Maven is not installed to build it")
    proc = subprocess.run([mvn, "-q", "-B", "-f", str(ROOT / "jars" / "pom.xml"), "-pl", "runtime,flclient",
                           "-am", "package", "-DskipTests"], capture_output=True, text=True, timeout=900)
    jar = ROOT / "jars" / "flclient" / "target" / CLIENT_JAR
    if proc.returncode != 0 or not _has_runtime_tool(jar):
        raise RuntimeError(f"building {jar} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return jar


def run_runtime_tool(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    java = shutil.which("java")
    assert java, "a JDK (java) is needed to run the Java runtime"
    cmd = [java, "-cp", str(client_jar()), RUNTIME_TOOL, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def train_java(ms_file: Path, x: np.ndarray, y: np.ndarray, workdir: Path) -> Trained:
    """``RuntimeTool train``, one step per batch of x [N, C, H, W] / y [N] in order (N a multiple of
    the model's batch); the Parameters are read back from the model file it writes."""
    from pyflclient.model import msfile

    model = msfile.load(ms_file)
    batch = model.tensors[model.data_input].shape[0]
    assert len(y) % batch == 0, f"{len(y)} samples are not whole batches of {batch}"
    data, label = workdir / "train_x.bin", workdir / "train_y.bin"
    out, losses = workdir / "java_trained.ms", workdir / "java_losses.txt"
    x.astype("<f4").tofile(data)
    y.astype("<i4").tofile(label)
    run_runtime_tool("train", "--model", ms_file, "--data", data, "--label", label, "--steps", len(y) // batch,
                     "--out", out, "--losses", losses)
    model = msfile.load(out)
    return Trained(np.loadtxt(losses, dtype=np.float64, ndmin=1),
                   {t.name: np.array(t.data) for t in model.tensors if t.role == msfile.Role.PARAMETER})


def predict_java(ms_file: Path, x: np.ndarray, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``RuntimeTool predict`` of the images x [N, C, H, W] (N a multiple of the batch): (labels, logits)."""
    data, pred, logits = workdir / "pred_x.bin", workdir / "pred.bin", workdir / "logits.bin"
    x.astype("<f4").tofile(data)
    run_runtime_tool("predict", "--model", ms_file, "--data", data, "--out", pred, "--logits", logits)
    labels = np.fromfile(pred, dtype="<i4")
    return labels, np.fromfile(logits, dtype="<f4").reshape(len(labels), -1)
