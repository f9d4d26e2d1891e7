"""A federated-learning client inside an application's own loop, reacting to callbacks.

The app here is a small "device": its main loop keeps doing its own work (here:
printing a status line twice a second) while the FL client trains on a Java
thread of the same process. Callbacks come from that Java thread; they only
put events on a queue, and the app's loop reacts to them: it shows the loss,
shows each new global model's accuracy, and stops the client early once the
accuracy is good enough (``--target``). Ctrl-C stops the client cleanly.

Self-contained: it starts a loopback FL server in this process and makes the
bundled data for a few clients, so it runs as is::

    python examples/embed_in_app.py [--iterations 10] [--target 0.8]

Against a real server, drop the server part and give its URL to ``domain_name``.
"""
from __future__ import annotations

import argparse
import logging
import queue
import tempfile
from pathlib import Path

import pyflclient as fl
from pyflclient.data import build_bundled_clients, copy_models
from pyflclient.model import LENET_TRAIN_MS as MODEL
from pyflclient.server import Server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=10, help="server iterations")
    ap.add_argument("--target", type=float, default=0.8, help="stop once the global model reaches this accuracy")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="pyflclient-app-"))
    client = build_bundled_clients(work / "data", num_clients=4, batch_size=32, seed=0)[0]
    model = copy_models(MODEL, 1, work / "ms")[0]
    events: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()

    # Callbacks run on the client's Java thread: keep them short, hand over to the app.
    def on_loss(name: str, iteration: int, epoch: int, loss: float) -> None:
        events.put(("loss", iteration, epoch, loss))

    def on_accuracy(name: str, iteration: int, accuracy: float) -> None:
        events.put(("accuracy", iteration, accuracy))

    def on_finish(name: str, iterations: int, status: object) -> None:
        events.put(("finish", iterations, status))

    with Server(MODEL, start_fl_job_threshold=1, fl_iteration_num=args.iterations, client_epoch_num=2) as server:
        params = (fl.FLParameter.builder()
                  .domain_name(server.url)
                  .train_dataset(client.folder)          # the client's own data folder (train + test files)
                  .train_model_path(model)
                  .batch_size(32)
                  .log_path(work / "client.log")
                  .build())
        job = fl.FLJob(params, on_loss=on_loss, on_accuracy=on_accuracy, on_finish=on_finish, name="my-device")
        job.start()
        print(f"client started; log: {work / 'client.log'}")
        ticks = 0
        try:
            while job.is_running():
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    ticks += 1
                    print(f"  [app] still responsive (tick {ticks})")
                    continue
                if event[0] == "loss":
                    print(f"  iteration {event[1]} epoch {event[2]}: loss {event[3]:.4f}")
                elif event[0] == "accuracy":
                    print(f"iteration {event[1]}: global model accuracy on my test data {event[2]:.3f}")
                    if event[2] >= args.target:
                        print(f"target {args.target} reached: stopping the client")
                        job.stop()
                elif event[0] == "finish":
                    print(f"job finished after {event[1]} iterations ({event[2]!r})")
        except KeyboardInterrupt:
            print("Ctrl-C: stopping the client")
            job.stop()
        result = job.wait()
        print(f"result: {result.status}, {result.iterations} iterations, accuracy by iteration "
              f"{ {k: round(v, 3) for k, v in result.accuracy.items()} }")
        labels = job.infer()
        print(f"inference on my test data: first labels {labels[:10].tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
