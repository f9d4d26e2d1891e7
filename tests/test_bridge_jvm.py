"""The JVM owner: where the jars are found, one JVM per process, exit never hangs, Java errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyflclient as fl
from pyflclient.client import jvm
from pyflclient.client.errors import java_errors

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_layout(tmp_path, monkeypatch):
    """Empty package and checkout jar locations, no env override: each test puts jars where it wants."""
    pkg, checkout = tmp_path / "pkg", tmp_path / "checkout"
    pkg.mkdir()
    monkeypatch.setattr(jvm, "_PACKAGE_JARS", pkg)
    monkeypatch.setattr(jvm, "_CHECKOUT_TARGETS", {n: checkout / n for n in (jvm.CLIENT_JAR_NAME, jvm.CASE_JAR_NAME)})
    monkeypatch.delenv(jvm.ENV_CLIENT_JAR, raising=False)
    monkeypatch.delenv(jvm.ENV_CASE_JAR, raising=False)

    def put(folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = (folder / jvm.CLIENT_JAR_NAME, folder / jvm.CASE_JAR_NAME)
        for p in paths:
            p.write_bytes(b"PK")
        return paths

    return pkg, checkout, put


def test_jars_shipped_in_the_package_come_before_a_checkout_build(fake_layout):
    pkg, checkout, put = fake_layout
    built = put(checkout)
    assert jvm.find_jars() == built
    shipped = put(pkg)
    assert jvm.find_jars() == shipped


def test_environment_overrides_the_package_and_arguments_override_the_environment(fake_layout, tmp_path, monkeypatch):
    pkg, _, put = fake_layout
    put(pkg)
    env_jars = put(tmp_path / "env")
    monkeypatch.setenv(jvm.ENV_CLIENT_JAR, str(env_jars[0]))
    monkeypatch.setenv(jvm.ENV_CASE_JAR, str(env_jars[1]))
    assert jvm.find_jars() == env_jars
    arg_jars = put(tmp_path / "arg")
    assert jvm.find_jars(*arg_jars) == arg_jars


def test_missing_jar_says_where_it_looked_and_how_to_build_it(fake_layout):
    with pytest.raises(fl.JarNotFoundError) as info:
        jvm.find_jars()
    assert isinstance(info.value, FileNotFoundError)
    assert "mvn -q -B -f jars/pom.xml package" in str(info.value) and "looked in" in str(info.value)


def test_a_wrong_environment_override_is_named(fake_layout, monkeypatch, tmp_path):
    monkeypatch.setenv(jvm.ENV_CLIENT_JAR, str(tmp_path / "nope.jar"))
    with pytest.raises(fl.JarNotFoundError, match=jvm.ENV_CLIENT_JAR):
        jvm.find_jars()


def test_the_jvm_cannot_be_restarted_with_other_jars(tmp_path):
    info = jvm.start_jvm()
    assert jvm.start_jvm() is info  # idempotent
    other = tmp_path / "other"
    other.mkdir()
    copies = [shutil.copy(info.client_jar, other), shutil.copy(info.case_jar, other)]
    with pytest.raises(fl.JVMError, match="new Python process"):
        jvm.start_jvm(*copies)


def test_java_exceptions_become_pyflclient_errors_with_the_java_message():
    jvm.start_jvm()
    Integer = jvm.jclass("java.lang.Integer")
    with pytest.raises(fl.JavaParameterError) as info:
        with java_errors("parsing the port"):
            Integer.parseInt("66x")
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, fl.JavaError)
    assert str(err) == 'parsing the port: For input string: "66x" (NumberFormatException)'
    assert err.java_class == "java.lang.NumberFormatException" and "parseInt" in err.java_stacktrace


def test_exit_does_not_hang_on_a_running_non_daemon_java_thread(tmp_path):
    script = tmp_path / "leave_a_thread.py"
    script.write_text(textwrap.dedent("""
        import jpype
        from pyflclient.client import jvm
        jvm.start_jvm()

        @jpype.JImplements("java.lang.Runnable")
        class Forever:
            @jpype.JOverride
            def run(self):
                jpype.JClass("java.lang.Thread").sleep(10**9)

        t = jpype.JClass("java.lang.Thread")(Forever())
        t.setDaemon(False)
        t.start()
        print("LEFT A THREAD", flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "LEFT A THREAD" in run.stdout, run.stderr


# a script's handler(): the address of the process's SIGSEGV handler now (0: SIG_DFL)
_WITH_SIGSEGV_HANDLER = """
        import ctypes, signal

        def handler():
            buf = ctypes.create_string_buffer(512)
            assert ctypes.CDLL(None).sigaction(signal.SIGSEGV, None, buf) == 0
            return ctypes.c_void_p.from_buffer(buf).value or 0
"""


def test_the_jvm_keeps_its_crash_handlers_at_exit_under_pytest_faulthandler(tmp_path):
    """pytest's faulthandler plugin saves SIGSEGV's handler before the JVM starts and puts it back at the
    session's end: SIG_DFL under a running JVM, whose exit code then dies of HotSpot's own SIGSEGVs (CI:
    "996 passed", then exit 139). The exit hook puts the JVM's handlers back before any Java code runs."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(_WITH_SIGSEGV_HANDLER + """
        import atexit
        from pyflclient.client import jvm

        # registered before the JVM starts, so it runs after pyflclient's exit hook
        atexit.register(lambda: print("AT EXIT", handler(), flush=True))

        def test_start():
            jvm.start_jvm()
            jvm.jclass("java.lang.System").gc()
            print("STARTED", handler(), flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_inner.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    started = [ln.split()[-1] for ln in run.stdout.splitlines() if ln.startswith("STARTED")]
    at_exit = [ln.split()[-1] for ln in run.stdout.splitlines() if ln.startswith("AT EXIT")]
    assert started and at_exit, run.stdout
    assert started[0] != "0" and at_exit[0] == started[0], run.stdout


def test_faulthandler_enabled_later_does_not_cover_the_jvms_handler(tmp_path):
    """HotSpot takes SIGSEGV in normal operation; faulthandler installed over its handler (``ray.init()`` enables
    it when it is off) re-raised one and the JVM aborted (CI, exit 134). faulthandler is enabled beneath the JVM,
    so a later enable() changes nothing."""
    script = tmp_path / "later.py"
    script.write_text(textwrap.dedent(_WITH_SIGSEGV_HANDLER + """
        import faulthandler
        from pyflclient.client import jvm

        jvm.start_jvm()
        started = handler()
        faulthandler.enable()  # what ray.init() does when it is off
        print("HANDLERS", started, handler(), faulthandler.is_enabled(), flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    started, after, enabled = [ln.split()[1:] for ln in run.stdout.splitlines() if ln.startswith("HANDLERS")][0]
    assert started != "0" and after == started and enabled == "True", run.stdout


def test_a_value_the_java_side_refuses_names_the_python_field(tmp_path):
    model = tmp_path / "m.ms"
    model.write_bytes(b"x")
    params = fl.FLParameter(domain_name="http://127.0.0.1:6666", train_model_path=model)
    object.__setattr__(params, "server_num", 1001)  # past Python's check (the same rulebook refuses it)
    with pytest.raises(fl.InvalidParameterError) as info:
        params.to_java()
    assert info.value.field == "server_num" and "between 1 and 1000" in str(info.value)
