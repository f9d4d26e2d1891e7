"""One federated-learning client driven from Python: ``FLJob(params).run()``.

An :class:`FLJob` wraps the Java ``SyncFLJob`` of the client jar. Its round
loop runs on a Java daemon thread (it trains without the GIL), while the
calling Python thread waits in short slices so Ctrl-C stops the client instead
of killing the process. Progress comes back through the Java ``TrainListener``
and ``IFLJobResultCallback`` interfaces, implemented here in Python: each
event is recorded in the job's :class:`JobResult` and handed to the user's
callbacks; an exception in a user callback is logged and never reaches the
Java client, which keeps training.

Callback signatures (all called on the client's Java thread, keep them short)::

    on_loss(client: str, iteration: int, epoch: int, loss: float)
    on_accuracy(client: str, iteration: int, accuracy: float)
    on_iteration(client: str, iteration: int, status: ResponseCode | int)
    on_finish(client: str, iterations: int, status: ResponseCode | int)
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jpype
import numpy as np

from . import jvm
from .errors import FLJobError, InvalidParameterError, from_java, java_errors
from .params import FLParameter
from ..wire.protocol import ResponseCode

log = logging.getLogger(__name__)

LossCallback = Callable[[str, int, int, float], Any]
AccuracyCallback = Callable[[str, int, float], Any]
IterationCallback = Callable[[str, int, Any], Any]
FinishCallback = Callable[[str, int, Any], Any]

#: JobResult.status of a client the server's job ended without (never or no longer admitted).
NOT_SELECTED = "NOT_SELECTED"

#: How long stop() waits for the Java round loop (the client jar promises < 1 s).
STOP_TIMEOUT_S = 2.0


def _code(value: int) -> "ResponseCode | int":
    try:
        return ResponseCode(int(value))
    except ValueError:
        return int(value)


@dataclass
class JobResult:
    """What one client's ``run()`` did.

    Attributes:
        client: the client's name.
        status: the Java ``FLClientStatus`` name returned by ``flJobRun``
            (``"SUCCESS"``, ``"FAILED"`` or ``"NOT_SELECTED"`` — the server's job ended while
            this client waited to be admitted or before its upload arrived, not a failure), or ``"STOPPED"`` after
            :meth:`FLJob.stop`.
        iterations: how many iterations this client completed (its round ended SUCCEED).
        participated: how many iterations this client took part in (upload accepted, model received).
        plan_iterations: the server plan's number of iterations (0 if no plan arrived).
        losses: iteration -> the average loss of each local epoch, in order.
        accuracy: iteration -> test accuracy of the global model (when test data is set).
        iteration_codes: iteration -> the last response code of that round.
        wall_time_s: seconds from start to end.
        error: the message of the exception that ended the client's thread, if any.
    """

    client: str
    status: str = "RUNNING"
    iterations: int = 0
    participated: int = 0
    plan_iterations: int = 0
    losses: dict[int, list[float]] = field(default_factory=dict)
    accuracy: dict[int, float] = field(default_factory=dict)
    iteration_codes: dict[int, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The job did not fail: it did the plan (``SUCCESS``) or the job ended without it (``NOT_SELECTED``)."""
        return self.status in ("SUCCESS", NOT_SELECTED)

    @property
    def final_accuracy(self) -> float | None:
        return self.accuracy[max(self.accuracy)] if self.accuracy else None

    def loss_history(self) -> list[tuple[int, int, float]]:
        """Every (iteration, epoch, loss), in order."""
        return [(it, ep + 1, l) for it in sorted(self.losses) for ep, l in enumerate(self.losses[it])]


@jpype.JImplements("com.mindspore.flclient.TrainListener",
                   "com.mindspore.flclient.IFLJobResultCallback", deferred=True)
class _JavaCallbacks:
    """The Java-facing side of a job's callbacks: converts types, never throws into Java."""

    def __init__(self, job: "FLJob") -> None:
        # A weak link would let the job be collected while Java still calls back;
        # the job owns this object and Java only holds it while the job runs.
        self._job = job

    @jpype.JOverride
    def onEpochLoss(self, iteration: Any, epoch: Any, loss: Any) -> None:
        self._job._dispatch("loss", int(iteration), int(epoch), float(loss))

    @jpype.JOverride
    def onIterationAccuracy(self, iteration: Any, accuracy: Any) -> None:
        self._job._dispatch("accuracy", int(iteration), float(accuracy))

    @jpype.JOverride
    def onRoundProgress(self, iteration: Any, stage: Any, samples: Any) -> None:
        self._job._dispatch("progress", int(iteration), str(stage), int(samples))

    @jpype.JOverride
    def onTraffic(self, round_name: Any, bytes_up: Any, bytes_down: Any) -> None:
        self._job._dispatch("traffic", str(round_name), int(bytes_up), int(bytes_down))

    @jpype.JOverride
    def onFlJobIterationFinished(self, modelName: Any, iterationSeq: Any, resultCode: Any) -> None:
        self._job._dispatch("iteration", int(iterationSeq), _code(resultCode))

    @jpype.JOverride
    def onFlJobFinished(self, modelName: Any, iterationCount: Any, resultCode: Any) -> None:
        self._job._dispatch("finish", int(iterationCount), _code(resultCode))


@jpype.JImplements("java.lang.Runnable", deferred=True)
class _JavaCall:
    """The body of a Java thread that makes one blocking Java call and keeps its result or exception.

    Used for the round loop (``flJobRun``) and for getModel / inference: a Java
    exception is kept, converted, for the waiting Python thread to raise, instead of
    escaping to Java's default handler (a stack trace on stderr, the cause lost). The
    call releases the GIL while it runs.
    """

    def __init__(self, fn: Callable[[], Any], context: str) -> None:
        self._fn = fn
        self._context = context
        self.result: Any = None
        self.error: BaseException | None = None

    @jpype.JOverride
    def run(self) -> None:
        try:
            self.result = self._fn()
        except jpype.JException as exc:
            self.error = from_java(exc, self._context)
        except BaseException as exc:  # never let anything escape into the Java thread
            self.error = exc


class _EngineRun:
    """A job's run on a Java ``ClientEngine``: the same ``result`` / ``error`` as :class:`_JavaCall`."""

    def __init__(self, run: Any, context: str) -> None:
        self._run = run
        self._context = context

    def is_running(self) -> bool:
        return not bool(self._run.isDone())

    @property
    def result(self) -> Any:
        return self._run.getStatus()

    @property
    def error(self) -> BaseException | None:
        exc = self._run.getError()
        return None if exc is None else from_java(exc, self._context)


class FLJob:
    """A federated-learning client: ``run()`` trains, ``infer()`` predicts, ``get_model()`` downloads.

    Args:
        params: the client's :class:`FLParameter`.
        on_loss / on_accuracy / on_iteration / on_finish: optional callbacks (see
            the module docstring), called on the client's Java thread.
        name: the client's name in callbacks, logs and results (default:
            ``params.client_id`` or ``"client"``).
        jar_path / case_jar_path: jars for the JVM if it is not running yet.
        training_permits: a Java ``Semaphore`` shared by clients that must not all
            train at once (used by :class:`pyflclient.Simulation`).
    """

    def __init__(self, params: FLParameter,
                 on_loss: Optional[LossCallback] = None,
                 on_accuracy: Optional[AccuracyCallback] = None,
                 on_iteration: Optional[IterationCallback] = None,
                 on_finish: Optional[FinishCallback] = None,
                 *, name: str | None = None,
                 jar_path: str | None = None, case_jar_path: str | None = None,
                 training_permits: Any = None) -> None:
        if not isinstance(params, FLParameter):
            raise TypeError(f"params must be a pyflclient.FLParameter, not {type(params).__name__}")
        self.params = params
        self.name = name or params.client_id or "client"
        self._callbacks: dict[str, Optional[Callable[..., Any]]] = {
            "loss": on_loss, "accuracy": on_accuracy, "iteration": on_iteration, "finish": on_finish}
        for kind, cb in self._callbacks.items():
            if cb is not None and not callable(cb):
                raise TypeError(f"on_{kind} must be callable, not {type(cb).__name__}")
        self._extra_sinks: list[Callable[[str, str, tuple[Any, ...]], None]] = []
        self._lock = threading.Lock()
        self._result = JobResult(self.name)
        self._stopped = False
        self._thread: Any = None
        self._runner: _JavaCall | _EngineRun | None = None
        self._started_at = 0.0
        jvm.start_jvm(jar_path, case_jar_path)
        self._java_callbacks = _JavaCallbacks(self)
        self._jparams = params.to_java(listener=self._java_callbacks, result_callback=self._java_callbacks,
                                       permits=training_permits)
        with java_errors(f"creating the client {self.name}"):
            self._job = jvm.jclass("com.mindspore.flclient.SyncFLJob")(self._jparams)
        jvm.register_stopper(self)

    # -- events from Java -------------------------------------------------------------
    def _dispatch(self, kind: str, *args: Any) -> None:
        """Record an event, then call the user's callback; nothing here may raise into Java."""
        try:
            with self._lock:
                r = self._result
                if kind == "loss":
                    r.losses.setdefault(args[0], []).append(args[2])
                elif kind == "accuracy":
                    r.accuracy[args[0]] = args[1]
                elif kind == "iteration":
                    r.iteration_codes[args[0]] = args[1]
                elif kind == "finish":
                    r.plan_iterations = args[0]
            for sink in self._extra_sinks:
                sink(self.name, kind, args)
        except Exception:  # pragma: no cover - a bug here must not kill the client either
            log.exception("client %s: recording a %s event failed", self.name, kind)
        cb = self._callbacks.get(kind)
        if cb is None:
            return
        try:
            cb(self.name, *args)
        except Exception:
            log.exception("client %s: the on_%s callback raised; the client goes on", self.name, kind)

    def add_listener(self, listener: Callable[[str, str, tuple[Any, ...]], None]) -> None:
        """Another listener of every event: ``listener(client, kind, args)`` with ``kind`` one of
        ``loss``, ``accuracy``, ``iteration``, ``finish`` and ``args`` the callback's arguments
        after the client's name, or ``progress`` with ``(iteration, stage, samples)``, ``stage`` one of
        ``admitted``, ``trained``, ``uploaded``, ``evaluated`` (see Java's ``TrainListener.onRoundProgress``);
        called on the client's Java thread (keep it short)."""
        self._extra_sinks.append(listener)

    # -- training -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the round loop (``flJobRun``) on a Java daemon thread and return at once."""
        if self.params.train_dataset is None:
            raise InvalidParameterError("train_dataset", "required to train; set it in the FLParameter")
        if self.is_running():
            raise FLJobError(f"client {self.name} is already running")
        with self._lock:
            self._result = JobResult(self.name)
            self._stopped = False
        self._started_at = time.monotonic()
        self._runner = _JavaCall(self._job.flJobRun, "the client's round loop failed")
        self._thread = jvm.new_daemon_thread(self._runner, f"pyflclient-{self.name}")
        self._thread.start()

    def start_on(self, run: Any) -> None:
        """Follow a run of this job's round loop on a Java ``ClientEngine`` (``engine.submit``'s
        ``Run``), as :meth:`start` follows its own thread; used by :class:`pyflclient.Simulation`."""
        with self._lock:
            self._result = JobResult(self.name)
            self._stopped = False
        self._started_at = time.monotonic()
        self._thread = None
        self._runner = _EngineRun(run, "the client's round loop failed")

    @property
    def java_job(self) -> Any:
        """The Java ``SyncFLJob`` (to submit it to a ``ClientEngine``)."""
        return self._job

    def is_running(self) -> bool:
        if isinstance(self._runner, _EngineRun):
            return self._runner.is_running()
        return self._thread is not None and bool(self._thread.isAlive())

    @property
    def thread(self) -> Any:
        """The Java thread of the running round loop (None before :meth:`start`), for callers that
        wait for many jobs at once with :func:`pyflclient.client.jvm.join_java_threads`."""
        return self._thread

    def mark_stopped(self) -> None:
        """Record that this job is being stopped (its result will say STOPPED) without calling Java."""
        with self._lock:
            self._stopped = True

    def request_stop(self) -> None:
        """Ask the round loop to end (``stopFLJob``) and return at once; :meth:`stop` also waits."""
        with self._lock:
            self._stopped = True
        self._job.stopFLJob()

    def wait(self, timeout: float | None = None) -> JobResult | None:
        """Wait for the round loop to end; the result, or None on timeout. Ctrl-C stops the client."""
        if isinstance(self._runner, _EngineRun):  # the Simulation waits for the engine
            return None if self._runner.is_running() else self._finish()
        if self._thread is None:
            raise FLJobError(f"client {self.name} was not started; call run() or start()")
        try:
            done = jvm.join_java_threads([self._thread], timeout)
        except KeyboardInterrupt:
            self.stop()
            raise
        return self._finish() if done else None

    def run(self, timeout: float | None = None) -> JobResult:
        """Train: the whole round loop (``SyncFLJob.flJobRun``) until the plan's iterations are done.

        A job that ends ``FAILED`` (server unreachable, stopped, ...) is a result
        with ``ok == False``; its log says why.

        Raises:
            JavaError: the Java client threw (a bad parameter, a corrupt model, ...).
            FLJobError: on ``timeout`` (the client is stopped first).
        """
        self.start()
        result = self.wait(timeout)
        if result is None:
            self.stop()
            raise FLJobError(f"client {self.name} did not finish within {timeout} s; stopped it")
        if self.error is not None:
            raise self.error
        return result

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the last run's Java thread, if any."""
        return self._runner.error if self._runner is not None else None

    def _finish(self) -> JobResult:
        with self._lock:
            r = self._result
            if r.status == "RUNNING":
                status = None
                if self._runner is not None and self._runner.error is None and self._runner.result is not None:
                    status = str(self._runner.result.name())  # FLClientStatus
                r.status = "STOPPED" if self._stopped else (status or "FAILED")
                r.error = None if self.error is None else str(self.error)
                r.iterations = sum(1 for it, code in r.iteration_codes.items()
                                   if it > 0 and code == ResponseCode.SUCCEED)
                r.participated = int(self._job.getParticipatedIterations())
                r.wall_time_s = time.monotonic() - self._started_at
            return r

    @property
    def result(self) -> JobResult:
        """The result so far (complete once the job has ended)."""
        return self._result

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Ask the round loop to end (``stopFLJob``) and wait up to ``timeout`` s; True if it ended.

        Safe from any thread, including inside a callback (then it does not wait).
        """
        self.request_stop()
        if self._thread is None:
            return True
        Thread = jpype.JClass("java.lang.Thread")
        if Thread.currentThread().equals(self._thread):
            return False
        ended = jvm.join_java_threads([self._thread], timeout, absorb_interrupts=True)
        if not ended:
            log.warning("client %s did not stop within %.1f s", self.name, timeout)
        return ended

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` (Java calls that may wait on the server) on a Java thread, joined in slices.

        getModel can retry an unreachable server for many seconds; on the main
        thread that would be one long Java call that Ctrl-C cannot interrupt.
        On Ctrl-C the call is stopped (``stopFLJob`` ends it within a second).
        """
        call = _JavaCall(fn, f"{what} of client {self.name}")
        thread = jvm.new_daemon_thread(call, f"pyflclient-{self.name}-{what}")
        thread.start()
        try:
            jvm.join_java_threads([thread])
        except KeyboardInterrupt:
            self._job.stopFLJob()
            jvm.join_java_threads([thread], STOP_TIMEOUT_S, absorb_interrupts=True)
            raise
        if call.error is not None:
            raise call.error
        return call.result

    def _stop_for_exit(self, timeout: float) -> None:
        if self.is_running():
            self.stop(timeout)

    # -- inference and the model --------------------------------------------------------
    def infer(self, data: np.ndarray | None = None) -> np.ndarray:
        """Predicted labels (int32) with the inference model (``modelInference``).

        Args:
            data: images as float32 ``(N, 32, 32, 3)`` (NHWC, values in [0, 1], the
                bin layout); default: the files of ``params.infer_dataset``.
        """
        if data is None:
            if self.params.infer_dataset is None:
                raise InvalidParameterError("infer_dataset", "no inference data: set infer_dataset or "
                                                             "test_dataset, or pass data=")
            labels = self._call("inference", lambda: self._job.modelInference())
        else:
            arr = np.ascontiguousarray(data, dtype=np.float32)
            if arr.ndim != 4 or arr.shape[1:] != (32, 32, 3):
                raise ValueError(f"data: expected float32 images of shape (N, 32, 32, 3) (NHWC), "
                                 f"got shape {np.shape(data)}")
            if arr.shape[0] == 0:
                return np.zeros(0, dtype=np.int32)
            jdata = jpype.JArray(jpype.JFloat)(arr.reshape(-1))
            count = int(arr.shape[0])
            labels = self._call("inference", lambda: self._job.modelInference(jdata, count))
        if labels is None:
            raise FLJobError(f"client {self.name}: inference returned nothing; see its log")
        # An explicit copy: np.asarray of a Java array can go stale (module docstring of jvm).
        return np.array(labels, dtype=np.int32)

    def get_model(self) -> dict[str, np.ndarray]:
        """Download the latest global model (``getModel``) and return its weights by name.

        The model file ``params.train_model_path`` is updated too. Arrays have the
        weights' shapes (conv ``OIHW``, dense ``[out, in]``).

        Raises:
            FLJobError: the server did not give a model (its status is in the message).
        """
        status = self._call("getModel", lambda: self._job.getModel())
        if status is None or str(status.name()) != "SUCCESS":
            raise FLJobError(f"client {self.name}: getModel returned {status}; is the server at "
                             f"{self.params.domain_name} running and has it finished an iteration?")
        return self.weights()

    def weights(self) -> dict[str, np.ndarray]:
        """The weights of the model file after the last run/getModel, by name, shaped."""
        with java_errors(f"reading the weights of client {self.name}"):
            jweights = self._job.getModelWeights()
            shapes = _weight_shapes(str(self.params.train_model_path))
        out: dict[str, np.ndarray] = {}
        for entry in jweights.entrySet():
            name = str(entry.getKey())
            arr = np.array(entry.getValue(), dtype=np.float32)
            shape = shapes.get(name)
            out[name] = arr.reshape(shape) if shape is not None and int(np.prod(shape)) == arr.size else arr
        return out

    def __repr__(self) -> str:
        state = "running" if self.is_running() else self._result.status.lower()
        return f"<FLJob {self.name} {state} {self.params.domain_name}>"


def _weight_shapes(model_path: str) -> dict[str, tuple[int, ...]]:
    TrainSession = jvm.jclass("com.mindspore.flclient.runtime.TrainSession")
    Paths = jpype.JClass("java.nio.file.Paths")
    session = TrainSession.load(Paths.get(model_path))
    try:
        return {str(n): tuple(int(d) for d in session.weightShape(n)) for n in session.weightNames()}
    finally:
        session.close()
