"""The exceptions pyflclient raises, and the one place Java exceptions become them.

A user of the bridge should never have to catch ``jpype.JException`` or read a
Java stack trace to learn what went wrong: every Java exception that crosses the
bridge is turned into one of the classes below, carrying the Java message as its
own message (the Java class and stack trace stay reachable as attributes, and
as the ``__cause__``, for bug reports).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


class PyflclientError(Exception):
    """Base class of every error pyflclient raises on purpose."""


class InvalidParameterError(PyflclientError, ValueError):
    """A client parameter is wrong; ``field`` names it (e.g. ``"batch_size"``).

    Raised by :class:`pyflclient.FLParameter` before the JVM sees the value, and
    for ``IllegalArgumentException`` from the Java ``FLParameter.validate()``.
    A ``ValueError``, so plain ``except ValueError`` keeps working.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class JVMError(PyflclientError):
    """The JVM could not be started, or was started with other jars."""


class JarNotFoundError(JVMError, FileNotFoundError):
    """One of the two jars (client jar, case jar) is not where it was looked for."""


class JavaError(PyflclientError):
    """A Java exception raised by the client jar, with its message.

    Attributes:
        java_class: the fully qualified Java class name, e.g.
            ``java.lang.IllegalStateException``.
        java_message: the exception's own message (may be empty).
        java_stacktrace: the Java stack trace as text, for bug reports.
    """

    def __init__(self, message: str, *, java_class: str = "", java_message: str = "",
                 java_stacktrace: str = "") -> None:
        super().__init__(message)
        self.java_class = java_class
        self.java_message = java_message
        self.java_stacktrace = java_stacktrace


class ModelFormatError(JavaError):
    """A ``.ms`` model file is corrupt, truncated or uses an unsupported op."""


class JavaIOError(JavaError, OSError):
    """The Java side failed to read or write a file, or to reach the server."""


class JavaParameterError(JavaError, ValueError):
    """The Java side refused an argument (``IllegalArgumentException``)."""


class FLJobError(PyflclientError):
    """A federated-learning job ended in a state the caller asked to treat as an error."""


# Java class (simple or qualified name) -> pyflclient class; the first match in
# the exception's class hierarchy wins, so subclasses of these map too.
_JAVA_TO_PYTHON: dict[str, type[JavaError]] = {
    "com.mindspore.flclient.runtime.ModelFormatException": ModelFormatError,
    "java.lang.IllegalArgumentException": JavaParameterError,
    "java.io.IOException": JavaIOError,
    "java.io.UncheckedIOException": JavaIOError,
}


def _java_hierarchy(exc: Any) -> list[str]:
    names: list[str] = []
    cls = exc.getClass()
    while cls is not None:
        names.append(str(cls.getName()))
        cls = cls.getSuperclass()
    return names


def from_java(exc: Any, context: str = "") -> JavaError:
    """Turn a ``jpype.JException`` into the matching :class:`JavaError` subclass.

    The message is ``"<context>: <Java message> (<Java class>)"``; when the
    exception only wraps another one (no message of its own), the innermost
    cause's message is used, because that is the one that says what was wrong.
    """
    inner = exc
    message = exc.getMessage()
    while (message is None or str(message) == "" or str(message) == str(inner.getCause())) \
            and inner.getCause() is not None:
        inner = inner.getCause()
        message = inner.getMessage()
    java_message = "" if message is None else str(message)
    hierarchy = _java_hierarchy(inner)
    java_class = hierarchy[0]
    py_cls: type[JavaError] = JavaError
    for name in hierarchy:
        if name in _JAVA_TO_PYTHON:
            py_cls = _JAVA_TO_PYTHON[name]
            break
    text = java_message or "(no message)"
    text = f"{text} ({java_class.rsplit('.', 1)[-1]})"
    if context:
        text = f"{context}: {text}"
    try:
        trace = str(exc.stacktrace())
    except Exception:  # pragma: no cover - stacktrace() exists on every JException
        trace = ""
    return py_cls(text, java_class=java_class, java_message=java_message, java_stacktrace=trace)


@contextlib.contextmanager
def java_errors(context: str = "") -> Iterator[None]:
    """Run a block of Java calls; any Java exception leaves it as a :class:`JavaError`.

    ``context`` says what was being done ("loading the model", ...), so the
    message reads as a sentence for the user.
    """
    import jpype  # imported here: this module must stay importable without a JVM

    try:
        yield
    except jpype.JException as exc:
        raise from_java(exc, context) from exc
