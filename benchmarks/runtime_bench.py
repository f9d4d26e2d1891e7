#!/usr/bin/env python3
"""LeNet training speed: the pure-Java .ms runtime against MindSpore 2.10 CPU (and PyTorch CPU).

One run measures, side by side, the training step of the tutorial's LeNet5 (3×32×32 → 62
classes, batch 32, Momentum 0.01/0.9, sparse softmax cross-entropy):

* **one thread** — samples/s of
    - the Java runtime (``RuntimeTool bench``) with the JDK Vector API kernels
      (``--add-modules jdk.incubator.vector``) and with the plain-Java kernels;
    - MindSpore 2.10 graph mode on CPU (``ONEDNN_MAX_CPU_ISA=AVX2``, one op thread): the train
      cell called from Python, and the exported train MindIR reloaded as a ``GraphCell``;
    - PyTorch CPU with one thread (``torch.set_num_threads(1)``), when ``torch`` is installed
      (skipped otherwise): the same LeNet (no conv bias, dense bias), batch, Momentum 0.9 and
      uniform [0, 1) images with random labels. Its runs alternate with the Java Vector API
      runs (Java, PyTorch, Java, PyTorch, ...) so load that comes and goes hits both, and the
      report prints the Java ÷ PyTorch speed from the best medians and per pair;
* **the whole machine** — two Java sessions training at once (one thread each, one per core)
  against MindSpore with its default threads.

Every figure is the median step time over ``--steps`` timed steps after ``--warmup`` steps,
repeated ``--repeats`` times (the best median is kept: other work on a shared machine only ever
slows a run down). The machine's load average is printed before and after, because the
numbers mean little on a busy machine. The Java model is the converter's output for a LeNet
freshly exported from MindSpore (or ``--model``), so both sides train the same graph.

    python benchmarks/runtime_bench.py                     # everything available
    python benchmarks/runtime_bench.py --skip-mindspore    # Java only (shipped LeNet model)
    python benchmarks/runtime_bench.py --json bench.json   # also write the numbers
    python benchmarks/runtime_bench.py --java-vs-torch --repeats 5   # only the Java/PyTorch pairs

MindSpore writes a ``rank_0/`` folder into its working directory: its runs happen in a
temporary folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_TOOL = "com.mindspore.flclient.runtime.RuntimeTool"
CLIENT_JAR = "mindspore-lite-java-flclient.jar"
SHIPPED_MODEL = ROOT / "pyflclient" / "package_data" / "lenet_train.ms"  # pyflclient.model.LENET_TRAIN_MS
BATCH = 32
VECTOR_OPTS = ["--add-modules", "jdk.incubator.vector"]

log = logging.getLogger("runtime_bench")


@dataclass
class Result:
    """One configuration's speed: median ms per step and samples per second (all threads)."""
    name: str
    ms_per_step: float | None
    samples_per_s: float | None
    threads: str
    note: str = ""
    runs: list[float] = field(default_factory=list)


# ---- the Java runtime ----------------------------------------------------------------------------

def _jar_has_tool(jar: Path) -> bool:
    try:
        with zipfile.ZipFile(jar) as z:
            return RUNTIME_TOOL.replace(".", "/") + ".class" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def runtime_classpath() -> str:
    """$PYFLCLIENT_JAR, the packaged or built client jar, else the runtime module's classes."""
    for jar in [os.environ.get("PYFLCLIENT_JAR"), ROOT / "pyflclient" / "jars" / CLIENT_JAR,
                ROOT / "jars" / "flclient" / "target" / CLIENT_JAR]:
        if jar and Path(jar).is_file() and _jar_has_tool(Path(jar)):
            return str(jar)
    classes = ROOT / "jars" / "runtime" / "target" / "classes"
    fb = sorted((Path.home() / ".m2" / "repository" / "com" / "google" / "flatbuffers" / "flatbuffers-java")
                .glob("*/flatbuffers-java-*.jar"))
    if (classes / RUNTIME_TOOL.replace(".", "/")).with_suffix(".class").is_file() and fb:
        return f"{classes}{os.pathsep}{fb[-1]}"
    sys.exit(f"no {CLIENT_JAR} with {RUNTIME_TOOL} found: build it with "
             f"`mvn -q -B -f jars/pom.xml -pl runtime install` (or set PYFLCLIENT_JAR)")


def java_bench(model: Path, *, vector: bool, sessions: int, steps: int, warmup: int) -> dict[str, Any]:
    java = shutil.which("java")
    if java is None:
        sys.exit("java not found: a JDK 17 is needed for the Java runtime")
    cmd = [java, *(VECTOR_OPTS if vector else ["-Dflclient.runtime.vector=false"]), "-cp", runtime_classpath(),
           RUNTIME_TOOL, "bench", "--model", str(model), "--steps", str(steps), "--warmup", str(warmup),
           "--sessions", str(sessions)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


# ---- MindSpore and PyTorch, each in a child process (own environment, own threads) ---------------

def _median_step_ms(step: Callable[[], Any], steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def worker_mindspore(args: argparse.Namespace) -> dict[str, Any]:
    """Runs inside a child: ONEDNN_MAX_CPU_ISA is set before mindspore is imported."""
    import numpy as np
    import mindspore as ms
    from mindspore import nn

    sys.path.insert(0, str(ROOT))
    from pyflclient.model import export, lenet

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if args.threads > 0:
        from mindspore.device_context.cpu import op_tuning
        op_tuning.threads_num(args.threads)
    ms.set_seed(1)
    rng = np.random.default_rng(1)
    x = ms.Tensor(rng.random((BATCH, *lenet.IMAGE_SHAPE), dtype=np.float32))
    y = ms.Tensor(rng.integers(0, lenet.NUM_CLASS, BATCH).astype(np.int32))
    train = export.make_train_cell(lenet.build_lenet5())
    out: dict[str, Any] = {}
    out["python_graph_ms"] = _median_step_ms(lambda: train(x, y).asnumpy(), args.steps, args.warmup)
    mindir = export.export_train_cell(train, Path.cwd() / "lenet_train", batch_size=BATCH,
                                      input_shape=lenet.IMAGE_SHAPE)
    cell = nn.GraphCell(ms.load(str(mindir)))
    out["mindir_graph_ms"] = _median_step_ms(lambda: cell(x, y).asnumpy(), args.steps, args.warmup)
    if args.convert_to:
        from pyflclient.model import converter
        out["ms_file"] = str(converter.convert(mindir, Path(args.convert_to)))
    return out


def worker_torch(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch import nn

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    net = nn.Sequential(nn.Conv2d(3, 6, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 16, 5, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 62))
    # RuntimeTool bench trains at learning rate 1e-4 (Momentum 0.9); the rate does not change the work
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(42)
    x = torch.rand(BATCH, 3, 32, 32)
    y = torch.randint(0, 62, (BATCH,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    return {"ms": _median_step_ms(step, args.steps, args.warmup), "version": torch.__version__}


def run_worker(kind: str, *, threads: int, steps: int, warmup: int, convert_to: Path | None = None) -> dict[str, Any]:
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", GLOG_v="3", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--threads", str(threads),
           "--steps", str(steps), "--warmup", str(warmup)]
    if convert_to is not None:
        cmd += ["--convert-to", str(convert_to)]
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as cwd:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


# ---- the report ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "java": java[0] if java else "?", "load_before": os.getloadavg()}


def best(runs: list[float]) -> float:
    return min(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="LeNet train .ms to time in Java (default: convert a fresh "
                    "MindSpore export, or the shipped pyflclient/package_data/lenet_train.ms without MindSpore)")
    ap.add_argument("--steps", type=int, default=100, help="timed steps per measurement (default 100)")
    ap.add_argument("--warmup", type=int, default=60, help="untimed steps first (JIT, caches; default 60)")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per configuration, best median kept")
    ap.add_argument("--skip-mindspore", action="store_true")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--java-vs-torch", action="store_true",
                    help="only the alternating Java (Vector API) / PyTorch one-thread pairs and their ratio")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", choices=["mindspore", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--convert-to", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        out = worker_mindspore(args) if args.worker == "mindspore" else worker_torch(args)
        print(json.dumps(out))
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()
    log.info("machine: %s, %d cores, %s; load average %s", info["cpu"], info["cores"], info["java"],
             " ".join(f"{v:.2f}" for v in info["load_before"]))
    use_torch = not args.skip_torch and has_module("torch")
    if args.java_vs_torch and not use_torch:
        sys.exit("--java-vs-torch needs torch (pip install torch, or the [torch] extra)")
    use_ms = not args.skip_mindspore and not args.java_vs_torch and has_module("mindspore")
    pairs: list[tuple[float, float]] = []
    results: list[Result] = []
    scratch = Path(tempfile.mkdtemp(prefix="runtime-bench-"))
    try:
        model = args.model
        ms_runs: list[dict[str, Any]] = []
        if use_ms:
            log.info("MindSpore 2.10 graph mode, 1 op thread (exporting and converting LeNet) ...")
            first = run_worker("mindspore", threads=1, steps=args.steps, warmup=args.warmup,
                               convert_to=None if model else scratch / "lenet_train")
            ms_runs.append(first)
            model = model or Path(first["ms_file"])
            for _ in range(args.repeats - 1):
                ms_runs.append(run_worker("mindspore", threads=1, steps=args.steps, warmup=args.warmup))
        model = model or SHIPPED_MODEL
        if not model.is_file():
            sys.exit(f"no LeNet model: {model} does not exist (install mindspore or pass --model)")
        log.info("Java model: %s", model)

        torch_runs: list[dict[str, Any]] = []
        for vector, label in ((True, "Java runtime, Vector API kernels"), (False, "Java runtime, plain-Java kernels")):
            if not vector and args.java_vs_torch:
                continue
            runs = []
            for _ in range(args.repeats):
                runs.append(java_bench(model, vector=vector, sessions=1, steps=args.steps, warmup=args.warmup))
                if vector and use_torch:  # alternate: Java, PyTorch, Java, PyTorch, ...
                    torch_runs.append(run_worker("torch", threads=1, steps=args.steps, warmup=args.warmup))
                    pairs.append((runs[-1]["median_ms_per_step"], torch_runs[-1]["ms"]))
                    log.info("  pair %d: Java %.2f ms, PyTorch %.2f ms", len(pairs), *pairs[-1])
            ms = [r["median_ms_per_step"] for r in runs]
            results.append(Result(label, best(ms), BATCH * 1000 / best(ms), "1", runs=ms))
        if ms_runs:
            py = [r["python_graph_ms"] for r in ms_runs]
            mi = [r["mindir_graph_ms"] for r in ms_runs]
            results.append(Result("MindSpore 2.10 graph mode, reloaded train MindIR", best(mi), BATCH * 1000 / best(mi),
                                  "1", runs=mi))
            results.append(Result("MindSpore 2.10 graph mode, train cell from Python", best(py), BATCH * 1000 / best(py),
                                  "1", runs=py))
        elif not args.java_vs_torch:
            results.append(Result("MindSpore 2.10", None, None, "1", "not installed or skipped"))
        if use_torch:
            ms = [r["ms"] for r in torch_runs]
            results.append(Result(f"PyTorch {torch_runs[0]['version']} CPU", best(ms), BATCH * 1000 / best(ms), "1",
                                  runs=ms))
        else:
            results.append(Result("PyTorch CPU", None, None, "1", "torch not installed or skipped"))

        # the whole machine: one Java session per core against MindSpore's own threading
        cores = os.cpu_count() or 2
        for vector, label in ((True, "Java runtime, Vector API"), (False, "Java runtime, plain Java")):
            if args.java_vs_torch:
                break
            runs = [java_bench(model, vector=vector, sessions=cores, steps=args.steps, warmup=args.warmup)
                    for _ in range(args.repeats)]
            sps = max(r["samples_per_s"] for r in runs)
            results.append(Result(f"{label}, {cores} sessions at once", BATCH * 1000 * cores / sps, sps,
                                  f"{cores}×1", runs=[r["samples_per_s"] for r in runs]))
        if use_ms:
            runs = [run_worker("mindspore", threads=0, steps=args.steps, warmup=args.warmup)
                    for _ in range(args.repeats)]
            mi = [r["mindir_graph_ms"] for r in runs]
            results.append(Result("MindSpore 2.10 reloaded train MindIR, default threads", best(mi),
                                  BATCH * 1000 / best(mi), "default", runs=mi))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    info["load_after"] = os.getloadavg()
    print()
    print(f"LeNet5 train step, batch {BATCH} — {info['cpu']}, {info['cores']} cores; "
          f"load average before {info['load_before'][0]:.2f}, after {info['load_after'][0]:.2f}")
    print(f"{'configuration':58} {'threads':>8} {'ms/step':>9} {'samples/s':>10}")
    for r in results:
        if r.ms_per_step is None:
            print(f"{r.name:58} {r.threads:>8} {'—':>9} {'—':>10}  ({r.note})")
        else:
            print(f"{r.name:58} {r.threads:>8} {r.ms_per_step:9.2f} {r.samples_per_s:10.0f}")
    by_name = {r.name: r for r in results}

    def ratio(a: str, b: str) -> None:
        ra, rb = by_name.get(a), by_name.get(b)
        if ra and rb and ra.samples_per_s and rb.samples_per_s:
            print(f"  {a}  vs  {b}: {ra.samples_per_s / rb.samples_per_s:.2f}×")

    print("ratios (samples/s, > 1 means Java is faster):")
    ref = "MindSpore 2.10 graph mode, reloaded train MindIR"
    for java_name in ("Java runtime, Vector API kernels", "Java runtime, plain-Java kernels"):
        ratio(java_name, ref)
        ratio(java_name, "MindSpore 2.10 graph mode, train cell from Python")
        if use_torch:
            ratio(java_name, next(n for n in by_name if n.startswith("PyTorch")))
    cores = os.cpu_count() or 2
    for label in ("Java runtime, Vector API", "Java runtime, plain Java"):
        ratio(f"{label}, {cores} sessions at once", "MindSpore 2.10 reloaded train MindIR, default threads")
    if pairs:
        java_best = min(j for j, _ in pairs)
        torch_best = min(t for _, t in pairs)
        print(f"Java (Vector API) vs PyTorch, one thread, {len(pairs)} alternating pairs: "
              f"best median {java_best:.2f} ms vs {torch_best:.2f} ms → Java {torch_best / java_best:.2f}× as fast; "
              f"per pair {' / '.join(f'{t / j:.2f}' for j, t in pairs)}×, median "
              f"{statistics.median(t / j for j, t in pairs):.2f}×")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": [asdict(r) for r in results],
                                         "java_torch_pairs_ms": pairs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
