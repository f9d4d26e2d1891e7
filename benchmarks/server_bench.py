#!/usr/bin/env python3
"""FL server throughput with K concurrent LeNet-size clients, and the cost of aggregation.

Part 1 (HTTP): starts ``pyflclient server`` as its own process (so the clients of
this process do not share its GIL), then per iteration K asyncio clients
(aiohttp) each startFLJob (download the 66,404-float model), all upload at once
(updateModel, data_size × weights) and getModel. Reported: uploads/s over the
upload phase and over whole iterations.

Part 2 (in-process, same run, same arrays): the cost per upload and at the close of
the iteration of

* before: float64 running sums in arrival order (8 ``np.add`` per upload; the close
  only divides) — the server's FedAvg until it summed in fl_id order;
* after: the upload kept by the ``MemoryStore`` (``add_upload``), then at the close
  ``FedAvg.aggregate`` (the server's default aggregator): the K uploads summed in fl_id order;
* the server's whole non-HTTP upload path (verify + decode the FlatBuffer, check
  names/sizes/finite, then either of the above),

beside a plain numpy weighted add of the same upload (one float32 ``acc += n * w``
over the concatenated 66,404 floats).

With ``--processes 1 2 4``, part 1 runs instead against a group of that many
``pyflclient server`` processes sharing one job through one ``redis-server``
(``--distributed-cache-address``; client k talks to process k mod N), one group
after the other, and part 2 adds the ``RedisStore`` path: ``add_upload`` (encode +
one Lua script, the upload written to Redis) per upload and ``close`` (the K uploads
read back and decoded) + FedAvg at the close.

With ``--pki``, part 1 is instead the cost of device authentication (``pki_verify``): the same K
devices, each with its own certificate (``pyflclient.pki``), one request at a time, against a server
without and then with verification; reported: the median and 90th percentile latency of startFLJob
and updateModel (signing done before the clock starts), the server's verification alone in-process,
and the Java client's RSASSA-PSS signing time per request (the shipped jar, JCA).

    python benchmarks/server_bench.py --clients 16 --iterations 5
    python benchmarks/server_bench.py --clients 16 --iterations 5 --processes 1 2 4
    python benchmarks/server_bench.py --clients 16 --iterations 5 --pki

With ``--metrics-compare R``, part 1 runs R rounds of two servers each, one with
``--metrics off --dashboard off`` and one with the default (``/metrics`` and the dashboard
on, every request observed), in alternating order, and reports the median time per
upload in the upload phase of each, and the server process's CPU seconds per upload over
whole iterations (read from /proc, so less at the mercy of a busy machine than the wall
clock): the cost of watching the job (docs/server.md).

    python benchmarks/server_bench.py --clients 16 --iterations 5 --metrics-compare 3
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyflclient.wire.protocol import (  # noqa: E402
    GetModelRequest, GetModelResponse, ResponseCode, StartFLJobRequest, StartFLJobResponse, UpdateModelRequest,
    UpdateModelResponse,
)

LENET = {"conv1.weight": (6, 3, 5, 5), "conv2.weight": (16, 6, 5, 5), "fc1.weight": (120, 400), "fc1.bias": (120,),
         "fc2.weight": (84, 120), "fc2.bias": (84,), "fc3.weight": (62, 84), "fc3.bias": (62,)}


def lenet(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0, 0.1, s).astype(np.float32) for n, s in LENET.items()}


async def http_part(urls: list[str], clients: int, iterations: int) -> dict[str, float]:
    """K clients; client k talks to ``urls[k % len(urls)]`` (getModel: the first)."""
    import aiohttp

    async def post(session: aiohttp.ClientSession, rnd: str, body: bytes, k: int = 0) -> bytes:
        async with session.post(f"{urls[k % len(urls)]}/{rnd}", data=body) as resp:
            assert resp.status == 200, resp.status
            return await resp.read()

    upload_s = total_s = 0.0
    uploads = 0
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        for it in range(1, iterations + 1):
            t0 = time.perf_counter()
            joined = await asyncio.gather(*(post(session, "startFLJob", StartFLJobRequest(
                "Lenet", f"dev-{k}", it, 32 * (k + 1)).to_bytes(), k) for k in range(clients)))
            replies = [StartFLJobResponse.from_bytes(b) for b in joined]
            assert all(r.retcode == ResponseCode.SUCCEED and r.iteration == it for r in replies)
            bodies = []
            for k, r in enumerate(replies):
                n = np.float32(32 * (k + 1))
                bodies.append(UpdateModelRequest("Lenet", f"dev-{k}", it,
                                                 {name: w * n for name, w in r.weights.items()}).to_bytes())
            t1 = time.perf_counter()
            done = await asyncio.gather(*(post(session, "updateModel", b, k) for k, b in enumerate(bodies)))
            t2 = time.perf_counter()
            assert all(UpdateModelResponse.from_bytes(b).retcode == ResponseCode.SUCCEED for b in done)
            while True:  # as a device does: SucNotReady until the server has aggregated and checkpointed
                got = GetModelResponse.from_bytes(
                    await post(session, "getModel", GetModelRequest("Lenet", it).to_bytes()))
                if got.retcode != ResponseCode.SucNotReady:
                    break
                await asyncio.sleep(0.002)
            assert got.retcode == ResponseCode.SUCCEED, got.reason
            t3 = time.perf_counter()
            upload_s += t2 - t1
            total_s += t3 - t0  # whole iteration, client-side encoding included
            uploads += clients
    return {"uploads": uploads, "upload_phase_per_s": uploads / upload_s, "iteration_per_s": uploads / total_s}


class ArrivalOrderSums:
    """The server's FedAvg before it summed in fl_id order, kept here as the baseline: float64 running
    sums, one ``np.add`` per weight as each upload arrives (so the result depended on arrival order)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.shapes = shapes
        self.sums = {n: np.zeros(int(np.prod(s)), np.float64) for n, s in shapes.items()}
        self.data_size = 0

    def add(self, upload: dict[str, np.ndarray], data_size: int) -> None:
        for name, total in self.sums.items():
            np.add(total, np.reshape(upload[name], -1), out=total)
        self.data_size += data_size

    def result(self) -> dict[str, np.ndarray]:
        return {n: (t / self.data_size).astype(np.float32).reshape(self.shapes[n]) for n, t in self.sums.items()}


def aggregation_part(clients: int, repeats: int, redis_address: str | None = None) -> dict[str, float]:
    from pyflclient.server.config import ServerConfig
    from pyflclient.server.rounds import Rounds
    from pyflclient.server.store import MemoryStore

    uploads = [{n: w * np.float32(32 * (k + 1)) for n, w in lenet(k).items()} for k in range(clients)]
    flat = [np.concatenate([u[n].reshape(-1) for n in LENET]) for u in uploads]
    sizes = [32 * (k + 1) for k in range(clients)]
    trained = [f / np.float32(s) for f, s in zip(flat, sizes)]
    bodies = [UpdateModelRequest("Lenet", f"dev-{k}", 1, u).to_bytes() for k, u in enumerate(uploads)]
    rounds = Rounds(ServerConfig(), MemoryStore(), lenet(0))
    fedavg = rounds.aggregator  # the default aggregation type: FedAvg

    def numpy_weighted_add() -> None:
        acc = np.zeros_like(trained[0])
        for w, s in zip(trained, sizes):
            acc += np.float32(s) * w
        acc /= np.float32(sum(sizes))

    def best(variant) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Best over the repeats of (seconds per upload, seconds at the close)."""
        runs = [variant() for _ in range(repeats)]
        return min(r[0] for r in runs), min(r[1] for r in runs)

    def arrival_order(weights_of) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        agg = ArrivalOrderSums(LENET)
        t0 = time.perf_counter()
        for k, s in enumerate(sizes):
            agg.add(weights_of(k), s)
        t1 = time.perf_counter()
        agg.result()
        return (t1 - t0) / clients, time.perf_counter() - t1

    async def through_store(st, weights_of) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """K uploads through a store (add_upload), then its close + FedAvg in fl_id order: (per upload, close)."""
        await st.begin(1, lenet(0))
        for k, s in enumerate(sizes):
            await st.admit(1, f"dev-{k}", s, 0, clients, 10 ** 9)
        t0 = time.perf_counter()
        for k in range(clients):
            await st.add_upload(1, f"dev-{k}", weights_of(k), 0)
        t1 = time.perf_counter()
        closed = await st.close(1)
        assert closed is not None and closed.uploaded == clients
        fedavg.aggregate(lenet(0), closed.uploads, 1)
        return (t1 - t0) / clients, time.perf_counter() - t1

    def fl_id_order(weights_of) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """A real MemoryStore: uploads kept, summed in fl_id order at close."""
        return asyncio.run(through_store(MemoryStore(), weights_of))

    def decoded(k: int) -> dict[str, np.ndarray]:  # the server path: verify + decode + checks
        req = UpdateModelRequest.from_bytes(bodies[k])
        assert rounds.check_weights(req.weights) is None
        return req.weights

    def numpy_only() -> tuple[float, float]:
        t0 = time.perf_counter()
        numpy_weighted_add()
        return (time.perf_counter() - t0) / clients, 0.0

    def redis_store(weights_of) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """A RedisStore: uploads written to Redis, read back at close (a fresh job each repeat)."""
        from pyflclient.server.redis_store import RedisStore

        async def run() -> tuple[float, float]:
            st = RedisStore(redis_address, fl_name=f"bench-{time.perf_counter_ns()}")
            try:
                return await through_store(st, weights_of)
            finally:
                await st.aclose()
        return asyncio.run(run())

    base, _ = best(numpy_only)
    b_add, b_close = best(lambda: arrival_order(lambda k: uploads[k]))
    a_add, a_close = best(lambda: fl_id_order(lambda k: uploads[k]))
    bp_add, _ = best(lambda: arrival_order(decoded))
    ap_add, _ = best(lambda: fl_id_order(decoded))
    r_add, r_close = best(lambda: redis_store(lambda k: uploads[k])) if redis_address else (float("nan"),) * 2
    return {"numpy_us": base * 1e6, "before_add_us": b_add * 1e6, "before_close_ms": b_close * 1e3,
            "redis_add_us": r_add * 1e6, "redis_close_ms": r_close * 1e3,
            "after_add_us": a_add * 1e6, "after_close_ms": a_close * 1e3,
            "before_path_us": bp_add * 1e6, "after_path_us": ap_add * 1e6,
            "held_mb": clients * sum(int(np.prod(s)) for s in LENET.values()) * 4 / 1e6}


def start_server(clients: int, iterations: int, folder: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    if not (folder / "lenet.npz").exists():
        np.savez(folder / "lenet.npz", **lenet(0))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pyflclient.cli import main; sys.exit(main())", "server",
         "--model", str(folder / "lenet.npz"), "--start-fl-job-threshold", str(clients),
         "--fl-iteration-num", str(iterations), "--checkpoint-dir", str(folder / "ckpt"), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("listening on "):
            return proc, line.split()[2]
    raise SystemExit("the server did not start")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on a free loopback port, no persistence (Debian's: apt-get install redis-server)."""
    import redis

    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return proc, f"127.0.0.1:{port}"
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def group_part(processes: int, clients: int, iterations: int, folder: Path) -> dict[str, float]:
    """Part 1 against ``processes`` server processes on one Redis (a fresh Redis and checkpoint folder)."""
    folder.mkdir()
    redis_proc, address = start_redis(folder)
    procs = []
    try:
        urls = []
        for _ in range(processes):  # one at a time: the first begins the job, the others join it
            proc, url = start_server(clients, iterations, folder, "--distributed-cache-address", address)
            procs.append(proc)
            urls.append(url)
        return asyncio.run(http_part(urls, clients, iterations))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        redis_proc.terminate()
        redis_proc.wait(timeout=30)


async def pki_http_part(url: str, signers: dict[str, object] | None, iterations: int) -> dict[str, list[float]]:
    """One request at a time: each device's startFLJob, then each one's updateModel, then getModel; the
    latency of each request (ms), signing before the clock starts."""
    import aiohttp

    from pyflclient.wire.protocol import now_ms

    names = sorted(signers) if signers else list(LENET_DEVICES)
    lat: dict[str, list[float]] = {"startFLJob": [], "updateModel": []}
    async with aiohttp.ClientSession() as session:
        async def post(rnd: str, body: bytes) -> bytes:
            async with session.post(f"{url}/{rnd}", data=body) as resp:
                assert resp.status == 200, resp.status
                return await resp.read()

        for it in range(1, iterations + 1):
            replies = {}
            for k, fl_id in enumerate(names):
                ts = str(now_ms())
                signed = signers[fl_id].start_fields(fl_id, ts) if signers else {}  # type: ignore[attr-defined]
                body = StartFLJobRequest("Lenet", fl_id, it, 32 * (k + 1), ts, **signed).to_bytes()
                t0 = time.perf_counter()
                replies[fl_id] = StartFLJobResponse.from_bytes(await post("startFLJob", body))
                lat["startFLJob"].append((time.perf_counter() - t0) * 1e3)
                assert replies[fl_id].retcode == ResponseCode.SUCCEED, replies[fl_id].reason
            for k, fl_id in enumerate(names):
                n = np.float32(32 * (k + 1))
                ts = str(now_ms())
                sig = signers[fl_id].update_signature(ts, it) if signers else b""  # type: ignore[attr-defined]
                body = UpdateModelRequest("Lenet", fl_id, it, {name: w * n for name, w in
                                                             replies[fl_id].weights.items()}, ts,
                                          signature=sig).to_bytes()
                t0 = time.perf_counter()
                reply = UpdateModelResponse.from_bytes(await post("updateModel", body))
                lat["updateModel"].append((time.perf_counter() - t0) * 1e3)
                assert reply.retcode == ResponseCode.SUCCEED, reply.reason
            while GetModelResponse.from_bytes(await post("getModel", GetModelRequest("Lenet", it).to_bytes())
                                              ).retcode == ResponseCode.SucNotReady:
                await asyncio.sleep(0.002)
    return lat


LENET_DEVICES: list[str] = []

_JAVA_SIGN_BENCH = """
import java.lang.reflect.*;
public class SignBench {
    public static void main(String[] a) throws Exception {
        Class<?> c = Class.forName("com.mindspore.flclient.DeviceSigner");
        Method load = c.getDeclaredMethod("load", String.class, String.class, long.class);
        load.setAccessible(true);
        Object signer = load.invoke(null, a[0], null, 0L);
        Method sign = c.getDeclaredMethod("sign", byte[].class);
        sign.setAccessible(true);
        byte[] m = "device-0 1700000000000".getBytes();
        for (int i = 0; i < 200; i++) sign.invoke(signer, (Object) m);  // the JIT's warm-up
        int n = 500;
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) sign.invoke(signer, (Object) m);
        System.out.println((System.nanoTime() - t0) / 1e3 / n);
    }
}
"""


def pki_part(clients: int, iterations: int, folder: Path) -> None:
    """Latency of startFLJob and updateModel without and with pki_verify; verification and Java signing alone."""
    from pyflclient.pki import DeviceSigner, init_authority, issue_device

    authority = folder / "pki"
    init_authority(authority)
    signers = {f"dev-{k}": DeviceSigner.load(issue_device(authority, f"dev-{k}", authority / "devices"))
               for k in range(clients)}
    LENET_DEVICES[:] = sorted(signers)
    flags = ["--pki-verify", "true", "--root-first-ca-path", str(authority / "root_ca.pem"),
             "--equip-crl-path", str(authority / "crl.pem")]
    results = {}
    for verify in (False, True):
        run = folder / ("verify" if verify else "plain")
        run.mkdir()
        proc, url = start_server(clients, iterations, run, *(flags if verify else []))
        try:
            results[verify] = asyncio.run(pki_http_part(url, signers if verify else None, iterations))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"pki_verify: one request at a time, {clients} devices x {iterations} iterations (ms)")
    print(f"  {'':12} {'without: median':>16} {'p90':>7} {'with: median':>14} {'p90':>7}")
    for rnd in ("startFLJob", "updateModel"):
        a, b = np.array(results[False][rnd]), np.array(results[True][rnd])
        print(f"  {rnd:12} {np.median(a):16.2f} {np.percentile(a, 90):7.2f} {np.median(b):14.2f} "
              f"{np.percentile(b, 90):7.2f}")
    # the verification alone, in-process: a new chain (first startFLJob), a cached one, an updateModel
    from pyflclient.server.config import ServerConfig
    from pyflclient.server.pki import DeviceAuth
    from pyflclient.wire.protocol import now_ms

    auth = DeviceAuth(ServerConfig(pki_verify=True, root_first_ca_path=str(authority / "root_ca.pem"),
                                   equip_crl_path=str(authority / "crl.pem")))

    async def verify_alone() -> tuple[float, float, float]:
        first = cached = update = 0.0
        for fl_id, s in signers.items():
            for rnd in range(2):
                ts = str(now_ms() + rnd)
                req = StartFLJobRequest("Lenet", fl_id, 1, 1, ts, **s.start_fields(fl_id, ts))  # type: ignore[arg-type]
                t0 = time.perf_counter()
                assert await auth.start_fl_job(req) is None
                if rnd == 0:
                    first += time.perf_counter() - t0
                else:
                    cached += time.perf_counter() - t0
            ts = str(now_ms())
            up = UpdateModelRequest("Lenet", fl_id, 1, {}, ts, signature=s.update_signature(ts, 1))
            t0 = time.perf_counter()
            assert await auth.update_model(up) is None
            update += time.perf_counter() - t0
        n = len(signers)
        return first / n * 1e6, cached / n * 1e6, update / n * 1e6

    first, cached, update = asyncio.run(verify_alone())
    print(f"  server verification alone: startFLJob {first:.0f} us (new chain), {cached:.0f} us (chain cached); "
          f"updateModel {update:.0f} us")
    jar = ROOT / "pyflclient" / "jars" / "mindspore-lite-java-flclient.jar"
    if jar.exists():
        src = folder / "SignBench.java"
        src.write_text(_JAVA_SIGN_BENCH)
        out = subprocess.run(["java", "-cp", str(jar), str(src), str(authority / "devices" / "dev-0")],
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            print(f"  Java client signing (RSASSA-PSS 2048, JCA): {float(out.stdout.split()[-1]):.0f} us per request")
        else:
            print(f"  Java client signing: not measured ({out.stderr.strip()[-200:]})")


def metrics_part(clients: int, iterations: int, rounds: int, folder: Path
                 ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(ms per upload in the upload phase, server CPU ms per upload over whole iterations), with metrics off
    and on, ``rounds`` times each, alternating."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from overhead_bench import stat_cpu_seconds

    per_upload: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):
        for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
            run_dir = folder / f"{mode}-{r}"
            run_dir.mkdir()
            flags = ("--metrics", "off", "--dashboard", "off") if mode == "off" else ()
            proc, url = start_server(clients, iterations, run_dir, *flags)
            stat = Path(f"/proc/{proc.pid}/stat")
            try:
                before = stat_cpu_seconds(stat.read_text())
                http = asyncio.run(http_part([url], clients, iterations))
                used = stat_cpu_seconds(stat.read_text()) - before
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            per_upload[mode].append(1000 / http["upload_phase_per_s"])
            cpu[mode].append(1000 * used / http["uploads"])
    return per_upload, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16, help="K concurrent clients (= start_fl_job_threshold)")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20, help="repeats of the in-process timing (best is kept)")
    ap.add_argument("--processes", type=int, nargs="+", metavar="N",
                    help="server groups of N processes on one redis-server (e.g. 1 2 4) instead of one "
                         "process with the in-memory store")
    ap.add_argument("--pki", action="store_true", help="the cost of pki_verify instead (latency, one request at "
                                                        "a time, without and with verification)")
    ap.add_argument("--metrics-compare", type=int, default=0, metavar="R",
                    help="only compare the upload phase with metrics off and on, R rounds of each (alternating)")
    args = ap.parse_args()
    print(f"LeNet: {len(LENET)} weights, {sum(int(np.prod(s)) for s in LENET.values()):,} floats; "
          f"K={args.clients} clients, {args.iterations} iterations; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    if args.metrics_compare:
        import statistics

        with tempfile.TemporaryDirectory() as tmp:
            times, cpu = metrics_part(args.clients, args.iterations, args.metrics_compare, Path(tmp))
        for mode in ("off", "on"):
            print(f"metrics {mode:3}: wall {' '.join(f'{t:.3f}' for t in times[mode])} ms per upload (upload "
                  f"phase; median {statistics.median(times[mode]):.3f}); server CPU "
                  f"{' '.join(f'{t:.3f}' for t in cpu[mode])} ms per upload (whole iterations; median "
                  f"{statistics.median(cpu[mode]):.3f})")
        print(f"metrics on / off: wall {statistics.median(times['on']) / statistics.median(times['off']):.3f}, "
              f"server CPU {statistics.median(cpu['on']) / statistics.median(cpu['off']):.3f} (medians); "
              f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        return 0
    redis_address = None
    if args.pki:
        with tempfile.TemporaryDirectory() as tmp:
            pki_part(args.clients, args.iterations, Path(tmp))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.processes:
            for n in args.processes:
                http = group_part(n, args.clients, args.iterations, Path(tmp) / f"group-{n}")
                print(f"HTTP, {n} process(es) + Redis: {http['uploads']} uploads; {http['upload_phase_per_s']:.0f} "
                      f"updates/s in the upload phase, {http['iteration_per_s']:.0f} updates/s over whole "
                      f"iterations", flush=True)
            redis_proc, redis_address = start_redis(Path(tmp))
        else:
            proc, url = start_server(args.clients, args.iterations, Path(tmp))
            try:
                http = asyncio.run(http_part([url], args.clients, args.iterations))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            print(f"HTTP: {http['uploads']} uploads; {http['upload_phase_per_s']:.0f} updates/s in the upload "
                  f"phase, {http['iteration_per_s']:.0f} updates/s over whole iterations (startFLJob + "
                  f"updateModel + getModel + checkpoint)")
        try:
            agg = aggregation_part(args.clients, args.repeats, redis_address)
        finally:
            if redis_address:
                redis_proc.terminate()
                redis_proc.wait(timeout=30)
    print(f"aggregation, K={args.clients} LeNet uploads (numpy weighted add, float32, one array: "
          f"{agg['numpy_us']:.0f} us per upload)")
    print(f"  {'':44} {'per upload':>12} {'at close':>10}")
    print(f"  {'before: float64 running sums, arrival order':44} {agg['before_add_us']:9.1f} us "
          f"{agg['before_close_ms']:7.2f} ms")
    print(f"  {'after: uploads kept, summed in fl_id order':44} {agg['after_add_us']:9.1f} us "
          f"{agg['after_close_ms']:7.2f} ms   (held until close: {agg['held_mb']:.1f} MB)")
    if redis_address:
        print(f"  {'RedisStore: upload written to Redis, read at close':44} {agg['redis_add_us']:9.1f} us "
              f"{agg['redis_close_ms']:7.2f} ms")
    print(f"  server path (verify + decode + checks + the above): before {agg['before_path_us']:.0f} us, "
          f"after {agg['after_path_us']:.0f} us per upload")
    return 0


if __name__ == "__main__":
    sys.exit(main())
