"""The one owner of the process's JVM: finding the jars, starting, stopping.

JPype can start a JVM once per process and never restart it, so every FLJob,
Simulation and helper shares the JVM started here; nothing else in pyflclient
calls ``jpype.startJVM``. Three choices made here keep a Python program that
embeds the FL client well behaved:

* ``interrupt=False``: with JPype's default SIGINT handling, Ctrl-C kills the
  process at once (exit 130) and no ``finally``/``atexit`` runs. Without it,
  KeyboardInterrupt reaches the main thread as soon as it is back in Python,
  so callers wait for Java work in short slices (:func:`join_java_threads`)
  and stop the clients themselves.
* Exit never hangs and never aborts. Client threads are daemons. An ``atexit``
  hook (run before JPype's own) stops every client still running, then looks
  at the Java threads left: with none but daemons it lets JPype destroy the
  JVM (``DestroyJavaVM`` stops the daemon threads first — without it, a Java
  thread calling into Python, such as JPype's proxy reference queue, can hit
  the finalizing interpreter and abort the process with "FATAL: exception not
  rethrown", seen here at exit about one run in six); with a non-daemon Java
  thread still running (user code), ``DestroyJavaVM`` would wait for it forever,
  so ``jpype.config.destroy_jvm = False`` skips it and the process just exits.
* The JVM's SIGSEGV/SIGBUS handlers stay on top. HotSpot takes those signals
  in normal operation (implicit null checks, safepoint polls), so a handler
  installed over the JVM's kills the process at the next one: Python's
  ``faulthandler`` enabled after the JVM started (``ray.init()`` enables it if it
  is off) re-raised such a SIGSEGV, "sent by kill", and the JVM aborted (exit
  134). So faulthandler is enabled *before* the JVM starts, beneath it (the JVM
  passes it the signals that are not its own, a real crash gets a Python
  traceback), and a later ``faulthandler.enable()`` is a no-op. A tool that
  saved the handlers before the JVM started and puts them back later leaves
  ``SIG_DFL`` under a running JVM: pytest's faulthandler plugin does that at a
  session's end, and the Java code that runs at exit died ("996 passed", then
  "Segmentation fault", exit 139, in CI; jpype-project/jpype#1261). The JVM's
  handlers are saved when it starts and put back, if replaced, first thing in
  the exit hook.

Jars are looked up in this order: the explicit ``jar_path=`` / ``case_jar_path=``
arguments (the seed's ``--jarPath`` / ``--case_jarPath``), the environment
(``PYFLCLIENT_JAR`` / ``PYFLCLIENT_CASE_JAR``), the jars shipped in the
installed package (``pyflclient/jars/``), and finally a source checkout's
Maven output (``jars/*/target/``).
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import JarNotFoundError, JVMError

log = logging.getLogger(__name__)

CLIENT_JAR_NAME = "mindspore-lite-java-flclient.jar"
CASE_JAR_NAME = "quick_start_flclient.jar"
ENV_CLIENT_JAR = "PYFLCLIENT_JAR"
ENV_CASE_JAR = "PYFLCLIENT_CASE_JAR"
ENV_JVM_OPTIONS = "PYFLCLIENT_JVM_OPTIONS"
#: Set to 1 to keep JPype's link from Python's garbage collector to Java's (see _unlink_jpype_gc).
ENV_JPYPE_GC_LINK = "PYFLCLIENT_JPYPE_GC_LINK"
#: Default maximum heap: 50 LeNet clients with their data fit in well under 1 GiB.
DEFAULT_MAX_HEAP = "2g"

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # pyflclient/
_PACKAGE_JARS = _PACKAGE_ROOT / "jars"
_CHECKOUT_JARS = _PACKAGE_ROOT.parent / "jars"
_CHECKOUT_TARGETS = {
    CLIENT_JAR_NAME: _CHECKOUT_JARS / "flclient" / "target" / CLIENT_JAR_NAME,
    CASE_JAR_NAME: _CHECKOUT_JARS / "quick_start" / "target" / CASE_JAR_NAME,
}


@dataclass(frozen=True)
class JVMInfo:
    """What the running JVM was started with (for logs and conflict messages)."""

    client_jar: Path
    case_jar: Path
    options: tuple[str, ...]


_lock = threading.RLock()
_info: JVMInfo | None = None
# Everything that owns running Java client threads registers a stop callback
# here, so exit and Ctrl-C can stop them all (weak: a finished job drops out).
_stoppers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _find_one(name: str, explicit: str | os.PathLike[str] | None, env: str, what: str) -> Path:
    tried: list[str] = []
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path.resolve()
        raise JarNotFoundError(f"{what} not found at {path} (given as an argument); "
                               f"build it with `mvn -q -B -f jars/pom.xml package -DskipTests` "
                               f"or pass the path of an existing {name}")
    env_value = os.environ.get(env)
    if env_value:
        path = Path(env_value).expanduser()
        if path.is_file():
            return path.resolve()
        raise JarNotFoundError(f"{what} not found at {path} (from ${env}); fix or unset {env}")
    for candidate in (_PACKAGE_JARS / name, _CHECKOUT_TARGETS[name]):
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate.resolve()
    raise JarNotFoundError(
        f"{what} ({name}) not found; looked in: {', '.join(tried)}. Install pyflclient with "
        f"`pip install .` (it builds the jars), build them with "
        f"`mvn -q -B -f jars/pom.xml package -DskipTests`, or set {env}")


def _unlink_jpype_gc() -> None:
    """Take JPype's hook out of Python's garbage collector callbacks.

    JPype calls ``System.gc()`` after a Python collection when the process has grown
    since the last one — it reads the process size, so the Java heap growing under
    the clients' own work counts as "Python memory". In a 50-client simulation that
    meant several full collections of the loaded clients per run (50-60 ms each,
    every training thread stopped) and, measured with a 10 ms ticker on the
    in-process server's event loop, stalls over 50 ms summing 2-3 s per run instead
    of 0.5-0.8 s without the hook, most of them at iteration boundaries, when 50
    clients ask the server for the next round.
    Java collects its own heap when it needs to; Python objects holding Java objects
    are released by reference counting (and cycles by Python's collector, which
    still runs). ``PYFLCLIENT_JPYPE_GC_LINK=1`` keeps the hook.
    """
    try:
        import _jpype
    except ImportError:  # pragma: no cover - jpype always has it
        return
    hook = getattr(_jpype, "_collect", None)
    if hook is not None:
        gc.callbacks[:] = [cb for cb in gc.callbacks if cb is not hook]


def find_jars(jar_path: str | os.PathLike[str] | None = None,
              case_jar_path: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Return the absolute paths of (client jar, case jar), in the documented search order."""
    return (_find_one(CLIENT_JAR_NAME, jar_path, ENV_CLIENT_JAR, "the FL client jar"),
            _find_one(CASE_JAR_NAME, case_jar_path, ENV_CASE_JAR, "the case jar"))


def start_jvm(jar_path: str | os.PathLike[str] | None = None,
              case_jar_path: str | os.PathLike[str] | None = None,
              *, max_heap: str | None = None,
              options: Sequence[str] = ()) -> JVMInfo:
    """Start the JVM with both jars, once per process; later calls check and return.

    Args:
        jar_path: the client jar (``--jarPath``); default: see the module docstring.
        case_jar_path: the case jar with the ``flName`` class (``--case_jarPath``).
        max_heap: ``-Xmx`` value, e.g. ``"4g"``; default 2g, or ``-Xmx`` in ``options``.
        options: extra JVM options (also read, space separated, from
            ``$PYFLCLIENT_JVM_OPTIONS``).

    Raises:
        JarNotFoundError: a jar is missing (the message says where it looked).
        JVMError: the JVM already runs with other jars (JPype cannot restart
            it: start a new Python process), or was started by someone else
            without the client jar.
    """
    global _info
    import jpype
    import jpype.config

    with _lock:
        if _info is not None:
            if jar_path is not None or case_jar_path is not None:
                wanted = find_jars(jar_path, case_jar_path)
                if wanted != (_info.client_jar, _info.case_jar):
                    raise JVMError(
                        f"the JVM already runs with {_info.client_jar} and {_info.case_jar}; "
                        f"JPype cannot restart it with {wanted[0]} and {wanted[1]}: "
                        f"use a new Python process for other jars")
            return _info
        client_jar, case_jar = find_jars(jar_path, case_jar_path)
        if jpype.isJVMStarted():
            # Started outside pyflclient (e.g. by an application that embeds
            # other Java code): usable only if our jars are on its class path.
            try:
                jpype.JClass("com.mindspore.flclient.SyncFLJob")
            except Exception as exc:
                raise JVMError("a JVM was started before pyflclient without the FL client jar on "
                               f"its class path; start it with classpath=[{client_jar}, {case_jar}] "
                               "or let pyflclient start it") from exc
            _info = JVMInfo(client_jar, case_jar, ())
            _save_jvm_signal_handlers()
            atexit.register(_at_exit)
            return _info
        opts = list(options) + os.environ.get(ENV_JVM_OPTIONS, "").split()
        if not any(o.startswith("-Xmx") for o in opts):
            opts.append(f"-Xmx{max_heap or DEFAULT_MAX_HEAP}")
        if not any("ExplicitGC" in o for o in opts):
            # JPype links Python's garbage collector to Java's: when the process grows (the Java
            # heap included) it calls System.gc(), by default a full stop-the-world collection of
            # the whole heap (60 ms with 50 loaded clients, every training thread stopped); as a
            # concurrent cycle it costs the trainers next to nothing
            opts.append("-XX:+ExplicitGCInvokesConcurrent")
        if not any("G1HeapRegionSize" in o for o in opts):
            # a client's .ms file (LeNet: 542 KB), the buffer its model is written into and a
            # batch's activations are >= half of G1's default 1 MB region: "humongous" objects,
            # each allocated in whole fresh regions and starting a concurrent cycle (400 cycles
            # in a 500-client iteration, a fifth of the trainers' CPU in page faults and zeroing).
            # With 4 MB regions they are ordinary young objects.
            opts.append("-XX:G1HeapRegionSize=4m")
        if not any("jdk.incubator.vector" in o for o in opts) and _has_vector_module():
            # the runtime's convolution kernels use the Vector API when it is there (about 2x)
            opts.append("--add-modules=jdk.incubator.vector")
        # Until the exit hook has looked at the threads left, assume the safe choice
        # against a hang (see the module docstring).
        jpype.config.destroy_jvm = False
        _faulthandler_beneath_the_jvm()
        log.debug("starting the JVM: %s %s %s", client_jar, case_jar, opts)
        try:
            jpype.startJVM(*opts, classpath=[str(client_jar), str(case_jar)],
                           convertStrings=False, interrupt=False)
        except OSError as exc:
            raise JVMError(f"the JVM did not start ({exc}); check that Java 17+ is installed "
                           f"(JAVA_HOME) and the options {opts}") from exc
        _info = JVMInfo(client_jar, case_jar, tuple(opts))
        _save_jvm_signal_handlers()
        if os.environ.get(ENV_JPYPE_GC_LINK, "") != "1":
            _unlink_jpype_gc()
        # Registered after jpype's own atexit hook, so it runs first (LIFO).
        atexit.register(_at_exit)
        log.info("JVM started with %s and %s", client_jar.name, case_jar.name)
        return _info


def _has_vector_module() -> bool:
    """Whether the JDK that JPype will start has the ``jdk.incubator.vector`` module (JDK 16+)."""
    import jpype

    try:
        jvm = Path(jpype.getDefaultJVMPath()).resolve()
    except Exception:  # no JVM found: startJVM will report it
        return False
    for home in (jvm.parent.parent, jvm.parent.parent.parent):
        modules = home / "lib" / "modules"
        if modules.is_file():
            jmods = home / "jmods" / "jdk.incubator.vector.jmod"
            release = home / "release"
            if jmods.is_file():
                return True
            try:
                return "jdk.incubator.vector" in release.read_text()
            except OSError:
                return False
    return False


def jclass(name: str) -> Any:
    """``jpype.JClass(name)`` after making sure the JVM runs (default jars)."""
    import jpype

    if _info is None:
        start_jvm()
    return jpype.JClass(name)


def register_stopper(owner: Any) -> None:
    """Register an object with a ``_stop_for_exit()`` method, called at exit and by :func:`stop_all_clients`."""
    _stoppers.add(owner)


def stop_all_clients(timeout: float = 2.0) -> None:
    """Stop every client still running in this process (exit hook; safe to call any time)."""
    for owner in list(_stoppers):
        try:
            owner._stop_for_exit(timeout)
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("stopping %r at exit failed", owner)


# -- the JVM's fatal-signal handlers (module docstring) ------------------------------------------

_JVM_SIGNALS = ("SIGSEGV", "SIGBUS")
# glibc's struct sigaction is 152 bytes on x86-64 and aarch64 (handler first); room to spare
_SIGACTION_BYTES = 512
_jvm_signal_actions: dict[int, Any] = {}


def _sigaction(signum: int, new: Any = None) -> Any:
    """The current ``struct sigaction`` of ``signum`` as a buffer (handler pointer first); sets ``new`` first if given."""
    libc = ctypes.CDLL(None, use_errno=True)
    old = ctypes.create_string_buffer(_SIGACTION_BYTES)
    if libc.sigaction(signum, new, old) != 0:
        raise OSError(ctypes.get_errno(), f"sigaction({signum})")
    return old


def _handler_address(action: Any) -> int:
    return ctypes.c_void_p.from_buffer(action).value or 0


def _faulthandler_beneath_the_jvm() -> None:
    """Enable faulthandler before the JVM installs its handlers (module docstring); no stderr file: skipped."""
    if faulthandler.is_enabled():
        return
    try:
        faulthandler.enable()
    except (AttributeError, ValueError, RuntimeError, OSError) as exc:  # e.g. no real stderr (io.UnsupportedOperation)
        log.debug("faulthandler not enabled before the JVM: %s", exc)


def _save_jvm_signal_handlers() -> None:
    """Remember the SIGSEGV/SIGBUS handlers the JVM just installed (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    for name in _JVM_SIGNALS:
        signum = int(getattr(signal, name))
        try:
            _jvm_signal_actions[signum] = _sigaction(signum)
        except (OSError, AttributeError):  # pragma: no cover - no libc sigaction: nothing to restore later
            log.debug("could not read the %s handler", name, exc_info=True)


def _restore_jvm_signal_handlers() -> list[str]:
    """Put back each JVM handler replaced since the JVM started; returns the signals restored."""
    restored = []
    for signum, saved in _jvm_signal_actions.items():
        try:
            if _handler_address(_sigaction(signum)) != _handler_address(saved):
                _sigaction(signum, saved)
                restored.append(signal.Signals(signum).name)
        except OSError:  # pragma: no cover - best effort at exit
            log.debug("could not restore the handler of signal %d", signum, exc_info=True)
    if restored:
        log.debug("put back the JVM's %s handler(s), replaced after it started (e.g. by pytest's faulthandler "
                  "plugin)", "/".join(restored))
    return restored


def _at_exit() -> None:
    """Stop the clients, then choose how JPype ends the JVM (module docstring)."""
    import jpype
    import jpype.config

    _restore_jvm_signal_handlers()  # before any Java code runs at exit
    stop_all_clients()
    try:
        if not jpype.isJVMStarted():
            return
        Thread = jpype.JClass("java.lang.Thread")
        me = Thread.currentThread()
        blocking = [str(t.getName()) for t in Thread.getAllStackTraces().keySet()
                    if t.isAlive() and not t.isDaemon() and not t.equals(me)
                    and str(t.getName()) != "DestroyJavaVM"]
    except Exception:  # pragma: no cover - best effort at exit
        log.debug("could not list the Java threads at exit", exc_info=True)
        return
    if blocking:
        log.warning("non-daemon Java threads still running at exit: %s; exiting without destroying the "
                    "JVM so they cannot block it", blocking[:5])
        jpype.config.destroy_jvm = False
    else:
        jpype.config.destroy_jvm = True


def new_daemon_thread(runnable: Any, name: str) -> Any:
    """A Java daemon ``Thread`` running ``runnable``; daemon so it never blocks exit."""
    Thread = jclass("java.lang.Thread")
    thread = Thread(runnable, name)
    thread.setDaemon(True)
    return thread


def join_java_threads(threads: Sequence[Any], timeout: float | None = None,
                      slice_s: float = 0.2, on_tick: Callable[[], None] | None = None,
                      absorb_interrupts: bool = False) -> bool:
    """Wait for Java threads in short slices, so Ctrl-C reaches Python within ``slice_s``.

    One long ``Thread.join()`` would keep the main thread inside Java, where a
    KeyboardInterrupt cannot be delivered. Returns True when all threads ended,
    False on timeout. ``on_tick`` runs on the calling thread after every slice
    (progress bars, event draining). With ``absorb_interrupts`` (used while
    stopping, which is bounded by ``timeout``), a further Ctrl-C does not cut
    the stop short. SIGINT/SIGTERM handlers are deferred to the slice boundaries
    (:func:`signals_deferred`).
    """
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    millis = max(1, int(slice_s * 1000))
    with signals_deferred():
        for thread in threads:
            while True:
                try:
                    deliver_signals()
                    if not thread.isAlive():
                        break
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        _interruptible_join(thread, max(1, min(millis, int(left * 1000))))
                    else:
                        _interruptible_join(thread, millis)
                    if on_tick is not None:
                        on_tick()
                except KeyboardInterrupt:
                    if not absorb_interrupts or deadline is None:
                        raise
                    log.warning("already stopping; waiting up to %.1f s more",
                                max(0.0, deadline - time.monotonic()))
        deliver_signals()
    if on_tick is not None:
        on_tick()
    return True


# -- signals while the main thread waits in Java ---------------------------------------------------
# A Python signal handler runs wherever the main thread next executes Python bytecode, and
# JPype executes some (its own glue) inside a Java call such as Thread.join: a handler that
# raises there (KeyboardInterrupt from Ctrl-C, or `pyflclient simulate`'s SIGTERM handler)
# leaves an exception pending in the middle of JPype's call and ends in
# "RuntimeError: Fatal error occurred" instead of a clean stop (seen in about 1 stop in 6
# under load). While the main thread waits for Java, the handlers therefore only note the
# signal; deliver_signals() runs the real handler between two Java calls.
_DEFERRED_SIGNALS = ("SIGINT", "SIGTERM")
_saved_handlers: dict[int, Callable[[int, Any], Any]] = {}
_pending_signals: list[int] = []


def _note_signal(signum: int, frame: Any) -> None:
    _pending_signals.append(signum)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM only note themselves (main thread; nests)."""
    import signal

    if threading.current_thread() is not threading.main_thread() or _saved_handlers:
        yield
        return
    for name in _DEFERRED_SIGNALS:
        signum = getattr(signal, name)
        handler = signal.getsignal(signum)
        if callable(handler):  # SIG_DFL / SIG_IGN keep their meaning
            _saved_handlers[signum] = handler
            signal.signal(signum, _note_signal)
    try:
        yield
    finally:
        saved = dict(_saved_handlers)
        _saved_handlers.clear()
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        while _pending_signals:
            signum = _pending_signals.pop(0)
            saved[signum](signum, None)


def deliver_signals() -> None:
    """Run the real handler of each signal noted since the last call (may raise KeyboardInterrupt)."""
    while _pending_signals:
        signum = _pending_signals.pop(0)
        handler = _saved_handlers.get(signum)
        if handler is not None:
            handler(signum, None)


def _interruptible_join(thread: Any, millis: int) -> None:
    """``thread.join(millis)``; a Ctrl-C that lands inside the Java call becomes KeyboardInterrupt.

    JPype turns a SIGINT that arrives while the main thread is inside Java into a
    Java ``InterruptedException`` (and sets the thread's interrupt flag); callers
    should see the same KeyboardInterrupt as anywhere else in Python.
    """
    import jpype

    try:
        thread.join(millis)
    except jpype.JException as exc:
        if str(exc.getClass().getName()) != "java.lang.InterruptedException":
            raise
        jpype.JClass("java.lang.Thread").interrupted()  # clear the flag, or the next join fails at once
        # Python's own SIGINT handler is pending too: let it run here, so the
        # caller sees one KeyboardInterrupt, not a second one in its except block.
        try:
            _let_signal_handlers_run()
        except KeyboardInterrupt:
            pass
        raise KeyboardInterrupt() from None


def _let_signal_handlers_run() -> None:
    for _ in range(3):  # calls and backward jumps are where CPython runs pending handlers
        _noop()


def _noop() -> None:
    pass


def attach_current_thread() -> None:
    """Attach a Python thread to the JVM as a daemon (JPype does this on first use too)."""
    import jpype

    if not jpype.java.lang.Thread.isAttached():
        jpype.java.lang.Thread.attachAsDaemon()
