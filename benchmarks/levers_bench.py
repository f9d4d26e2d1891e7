"""Issue 27's levers side by side in one process and one JVM: local training, then the simulation
with the levers off and on, alternately, so that the machine's load hits all three alike.

* off: every program built afresh from its .ms (``flclient.runtime.reuse=false``), every trained
  model in its ``.trained`` scratch file (``TrainedModels`` budget 0), the server's update norms
  through BLAS (``np.vdot``, as before issue 27);
* on: the defaults (a program reused per trainer thread, trained models in memory up to the
  budget, norms without BLAS).

    python benchmarks/levers_bench.py CLIENTS ITERATIONS EPOCHS REPEAT TRAINERS
    python benchmarks/levers_bench.py 50 3 10 3 2

Prints per repetition the wall times, the ratio to local training and the CPU seconds per thread
group (see overhead_bench.py), then the medians. The upload-body read (joined chunks) cannot be
switched off and counts in both.
"""
import sys, tempfile, logging, os, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import overhead_bench as ob
from pyflclient.client import jvm
from pyflclient.data.bundled import build_bundled_clients
from pyflclient.model import LENET_TRAIN_MS
import pyflclient.server.update_bound as ub
import pyflclient.server.rounds as rounds
logging.basicConfig(level=logging.WARNING)
n, iters, ep, reps, trainers = (int(a) for a in sys.argv[1:6])
einsum = ub.sum_of_squares
def blas(d): return float(np.vdot(d, d))
with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    clients = build_bundled_clients(root / "data", num_clients=n, batch_size=32, seed=0)
    jvm.start_jvm()
    System = jvm.jclass("java.lang.System"); TM = jvm.jclass("com.mindspore.flclient.cases.TrainedModels")
    default_budget = TM.budget()
    def config(on):
        System.setProperty("flclient.runtime.reuse", "true" if on else "false")
        TM.setBudget(default_budget if on else 0)
        ub.sum_of_squares = rounds.sum_of_squares = einsum if on else blas
    batches = [ob.java_batches(c, 32) for c in clients]
    ob.local_training(LENET_TRAIN_MS, batches, 1, ep, 0.01, trainers)
    for on in (False, True):
        config(on); ob.simulation(root, clients, f"warm{on}", 2, 1, 0.01, trainers)
    res = {"local": [], "off": [], "on": []}
    for r in range(reps):
        res["local"].append(ob.local_training(LENET_TRAIN_MS, batches, iters, ep, 0.01, trainers))
        for on in (False, True):
            config(on)
            m = ob.ThreadCpu().start()
            s, _ = ob.simulation(root, clients, f"m{r}{on}", iters, ep, 0.01, trainers)
            cpu = m.stop()
            res["on" if on else "off"].append(s)
            print(f"rep {r} levers {'on ' if on else 'off'} sim {s:6.2f}s local {res['local'][-1]:6.2f}s ratio {s/res['local'][-1]:.3f} "
                  f"load {os.getloadavg()[0]:.1f} cpu", {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0.2}, flush=True)
    for k in ("off", "on"):
        print(f"levers {k}: median sim {statistics.median(res[k]):.2f}s, median ratio to local "
              f"{statistics.median(s/l for s, l in zip(res[k], res['local'])):.3f}; on/off per rep",
              [round(a/b, 3) for a, b in zip(res['on'], res['off'])] if k == "on" else "")
    config(True)
