"""Client parameters: a frozen dataclass checked in Python before the JVM sees it.

:class:`FLParameter` mirrors the Java ``com.mindspore.flclient.FLParameter`` of
MindSpore r1.6 (``domainName``, ``flName``, ``trainModelPath``, ``batchSize``,
the data sets, ...) with Python names. It is validated on construction, so a
typo in a path or a URL fails at once with an :class:`InvalidParameterError`
(a ``ValueError``) that names the field and says what to do, instead of a Java
stack trace minutes later from a client thread. Paths become absolute, so a
parameter object stays valid when the working directory changes (the seed's
client ran in ``client_i/``).

Two spellings, the same object::

    FLParameter(domain_name="http://127.0.0.1:6666", train_dataset="data/f0000_14/",
                train_model_path="ms/lenet/lenet_train0.ms")
    FLParameter.builder().domain_name("http://127.0.0.1:6666").train_dataset("data/f0000_14/") \\
        .train_model_path("ms/lenet/lenet_train0.ms").build()
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlsplit

from ..model.msfile import batch_mismatch, model_batch

from . import rules
from .errors import InvalidParameterError

DEFAULT_FL_NAME = "com.mindspore.flclient.demo.lenet.LenetClient"

PathLike = Union[str, "os.PathLike[str]"]
DatasetSpec = Union[PathLike, "tuple[PathLike, PathLike]", "DataFiles"]


@dataclass(frozen=True)
class DataFiles:
    """One data set of a client: the float32 image file and the int32 label file.

    ``num_samples`` is read from the label file's size (4 bytes a label).
    """

    data: Path
    label: Path
    num_samples: int

    @classmethod
    def resolve(cls, spec: DatasetSpec, role: str, field_name: str) -> "DataFiles":
        """Find the files of ``role`` ("train", "test") given a folder, a data file or a pair.

        A folder must hold exactly one ``*<role>_data.bin`` and one
        ``*<role>_label.bin`` (the ``<user>_bn_<B>_<role>_data.bin`` layout of the
        seed's ``3500_clients_bin``); a single ``*_data.bin`` file finds its
        ``*_label.bin`` beside it.
        """
        if isinstance(spec, DataFiles):  # checked before (or built by hand): its absolute paths are kept as they are
            return cls._checked(spec.data, spec.label, field_name, canonical=True)
        if isinstance(spec, (tuple, list)):
            if len(spec) != 2:
                raise InvalidParameterError(field_name, f"expected (data_file, label_file), got {spec!r}")
            return cls._checked(Path(spec[0]), Path(spec[1]), field_name)
        path = Path(spec).expanduser()
        if path.is_dir():
            data = sorted(path.glob(f"*{role}_data.bin"))
            label = sorted(path.glob(f"*{role}_label.bin"))
            if len(data) != 1 or len(label) != 1:
                raise InvalidParameterError(
                    field_name,
                    f"folder {path.resolve()} must hold exactly one *{role}_data.bin and one "
                    f"*{role}_label.bin (found {len(data)} and {len(label)}); "
                    f"or pass (data_file, label_file)")
            return cls._checked(data[0], label[0], field_name)
        if path.name.endswith("_data.bin"):
            return cls._checked(path, path.with_name(path.name[: -len("_data.bin")] + "_label.bin"), field_name)
        if not path.exists():
            raise InvalidParameterError(field_name, f"{path.resolve()} does not exist; give the client's "
                                                    f"data folder or (data_file, label_file)")
        raise InvalidParameterError(field_name, f"{path.resolve()} is neither a folder nor a *_data.bin file; "
                                                f"give the client's data folder or (data_file, label_file)")

    @classmethod
    def _checked(cls, data: Path, label: Path, field_name: str, canonical: bool = False) -> "DataFiles":
        def full(path: Path) -> Path:
            path = Path(path).expanduser()
            # resolve() walks every component (an lstat each); FLParameter.replace checks again what
            # it checked before, for thousands of clients in a Simulation
            return path if canonical and path.is_absolute() else path.resolve()

        data, label = full(data), full(label)
        for what, p in (("data file", data), ("label file", label)):
            if not p.is_file():
                raise InvalidParameterError(field_name, f"{what} {p} does not exist")
        label_bytes, data_bytes = label.stat().st_size, data.stat().st_size
        if label_bytes == 0 or label_bytes % 4:
            raise InvalidParameterError(field_name, f"label file {label} has {label_bytes} bytes; "
                                                    f"expected a non-empty array of int32 labels")
        n = label_bytes // 4
        if data_bytes == 0 or data_bytes % (4 * n):
            raise InvalidParameterError(
                field_name, f"data file {data} ({data_bytes} bytes) does not hold {n} float32 samples, "
                            f"one per label in {label.name}: are the two files of the same client?")
        return cls(data, label, n)


@dataclass(frozen=True)
class FLParameter:
    """The parameters of one federated-learning client (Java ``FLParameter``).

    Attributes:
        domain_name: the FL server, ``http(s)://host:port`` (r1.6 ``domainName``).
        fl_name: the case class in the case jar (r1.6 ``flName``).
        train_dataset: training data: a client folder, a ``*_train_data.bin``
            file or ``(data_file, label_file)``; becomes :class:`DataFiles`.
        test_dataset: evaluation data (accuracy after each iteration), same forms
            with ``test`` files; default: the ``test`` files in the train folder
            when there are any.
        infer_dataset: data for :meth:`FLJob.infer`; default: ``test_dataset``.
        train_model_path: this client's own ``.ms`` file; getModel overwrites it.
        infer_model_path: the ``.ms`` used for inference; default: ``train_model_path``.
        batch_size: samples per training step; default (None): the batch the ``.ms`` model
            was exported with. A different value is refused (the model's batch is fixed).
        thread_num: intra-op threads of this client's runtime.
        cpu_bind_mode: r1.6 ``cpuBindMode`` (kept for compatibility; only logged).
        server_mode: r1.6 ``serverMod``; only ``FEDERATED_LEARNING`` is implemented.
        use_elb: spread requests over ``server_num`` servers on consecutive ports.
        server_num: number of servers behind ``domain_name`` with ``use_elb``.
        cert_path: CA certificate (PEM) that signed an https server's certificate.
        ssl_protocol: TLS version for https.
        deploy_env: r1.6 ``deployEnv`` (``x86`` or ``android``; only x86 behaviour exists).
        client_id: the client's ``fl_id``; default: a random UUID chosen by Java.
        sleep_time_ms: wait between getModel polls while the iteration runs; also the first
            backoff ceiling after a failed exchange.
        time_out_s: HTTP timeout.
        retry_timeout_s: how long a streak of failed exchanges (unreachable server,
            SystemError, ...) is tolerated, from its first failure, before the job fails;
            the waits grow from ``sleep_time_ms`` to 10 s with full jitter. None: Java's 300 s.
        max_retries: an extra bound, when set: the job also fails after this many retries
            in a row, whichever bound comes first. None: only ``retry_timeout_s`` bounds them.
        log_path: this client's log file (``client_i/client.log``).
        pki_verify: r1.6 ``pkiVerify`` (device-cloud PKI authentication): sign startFLJob and
            updateModel with the key and certificates of ``pki_path``, for a server with
            ``pki_verify`` true (docs/security.md).
        equip_crl_path: r1.6 ``equipCrlPath``, the device certificates' CRL: with ``pki_verify`` a
            revoked device ends at start, saying so.
        valid_interval: r1.6 ``validInterval`` (ms) the device's certificates must stay valid
            (``pki_verify``). None: Java's default (1 h).
        pki_path: the device's folder from ``pyflclient pki issue`` (key.pem and four
            certificates); needed with ``pki_verify``.
    """

    domain_name: str
    fl_name: str = DEFAULT_FL_NAME
    train_dataset: DataFiles | None = None
    test_dataset: DataFiles | None = None
    infer_dataset: DataFiles | None = None
    train_model_path: Path | None = None
    infer_model_path: Path | None = None
    batch_size: int | None = None
    thread_num: int = 1
    cpu_bind_mode: str = "NOT_BINDING_CORE"
    server_mode: str = "FEDERATED_LEARNING"
    use_elb: bool = False
    server_num: int = 1
    cert_path: Path | None = None
    ssl_protocol: str = "TLSv1.2"
    deploy_env: str = "x86"
    client_id: str | None = None
    sleep_time_ms: int | None = None
    time_out_s: int | None = None
    max_retries: int | None = None
    retry_timeout_s: int | None = None
    log_path: Path | None = field(default=None, compare=False)
    pki_verify: bool = False
    equip_crl_path: Path | None = None
    valid_interval: int | None = None
    pki_path: Path | None = None

    # -- validation ---------------------------------------------------------------
    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("domain_name", rules.check("domain_name", self.domain_name))
        put("fl_name", rules.check("fl_name", self.fl_name))
        if self.train_dataset is not None:
            put("train_dataset", DataFiles.resolve(self.train_dataset, "train", "train_dataset"))
        if self.test_dataset is not None:
            put("test_dataset", DataFiles.resolve(self.test_dataset, "test", "test_dataset"))
        elif isinstance(self.train_dataset, DataFiles):
            folder = self.train_dataset.data.parent
            if any(folder.glob("*test_data.bin")) and any(folder.glob("*test_label.bin")):
                put("test_dataset", DataFiles.resolve(folder, "test", "test_dataset"))
        if self.infer_dataset is not None:
            put("infer_dataset", DataFiles.resolve(self.infer_dataset, "test", "infer_dataset"))
        else:
            put("infer_dataset", self.test_dataset)
        if self.train_model_path is None:
            raise InvalidParameterError("train_model_path", "required: the client's .ms model file "
                                                            "(one copy per client: pyflclient copy-models)")
        put("train_model_path", self._check_file("train_model_path", self.train_model_path))
        if self.infer_model_path is None:
            put("infer_model_path", self.train_model_path)
        else:
            put("infer_model_path", self._check_file("infer_model_path", self.infer_model_path))
        if self.batch_size is not None:
            rules.check("batch_size", self.batch_size)
            exported = model_batch(self.train_model_path)
            if exported is not None and exported != self.batch_size:
                raise InvalidParameterError("batch_size", batch_mismatch(self.batch_size, exported,
                                                                         self.train_model_path.name))
        for name in ("thread_num", "server_num", "cpu_bind_mode", "server_mode", "ssl_protocol", "deploy_env"):
            rules.check(name, getattr(self, name))
        for name in ("sleep_time_ms", "time_out_s", "max_retries", "retry_timeout_s", "client_id"):
            if getattr(self, name) is not None:  # None: the Java default (the model's batch, r1.6's times)
                rules.check(name, getattr(self, name))
        if self.train_dataset is not None:
            batch = self.batch_size if self.batch_size is not None else model_batch(self.train_model_path)
            if batch is not None and self.train_dataset.num_samples < batch:
                raise InvalidParameterError(
                    "train_dataset", f"{self.train_dataset.num_samples} training samples in "
                                     f"{self.train_dataset.data} are fewer than one batch of {batch}; "
                                     f"nothing would be trained")
        if not isinstance(self.pki_verify, bool):
            raise InvalidParameterError("pki_verify", f"{self.pki_verify!r} is not a bool")
        rules.check("pki_verify", str(self.pki_verify).lower())
        if self.pki_verify and self.pki_path is None:
            raise InvalidParameterError("pki_path", "None: pki_verify needs the device's folder of key and "
                                                    "certificates (pyflclient pki issue --device ID)")
        if self.valid_interval is not None and (isinstance(self.valid_interval, bool)
                                                or not isinstance(self.valid_interval, int)):
            raise InvalidParameterError("valid_interval", f"{self.valid_interval!r} is not an integer (milliseconds)")
        if not isinstance(self.use_elb, bool):
            raise InvalidParameterError("use_elb", f"{self.use_elb!r} is not a bool")
        if self.use_elb and urlsplit(self.domain_name).port is None:
            raise InvalidParameterError("domain_name", f"{self.domain_name} has no port; with use_elb "
                                                       f"requests go to port + (random % server_num)")
        if self.cert_path is not None:
            put("cert_path", self._check_file("cert_path", self.cert_path))
        if self.log_path is not None:
            put("log_path", Path(self.log_path).expanduser().resolve())

    @staticmethod
    def _check_file(name: str, value: Any) -> Path:
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise InvalidParameterError(name, f"{path} does not exist or is not a file")
        return path

    # -- construction helpers -------------------------------------------------------
    @staticmethod
    def builder() -> "FLParameterBuilder":
        """A fluent builder; ``build()`` validates like the constructor."""
        return FLParameterBuilder()

    def replace(self, **changes: Any) -> "FLParameter":
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    # -- the Java side ----------------------------------------------------------------
    def to_java(self, *, listener: Any = None, result_callback: Any = None, permits: Any = None) -> Any:
        """A new Java ``com.mindspore.flclient.FLParameter`` with these values.

        ``listener`` (a ``TrainListener``), ``result_callback`` (an
        ``IFLJobResultCallback``) and ``permits`` (a ``java.util.concurrent.Semaphore``)
        are set when given. The Java ``validate()`` runs last; its
        ``IllegalArgumentException`` comes back as :class:`InvalidParameterError`.
        """
        from . import jvm
        from .errors import from_java
        import jpype

        JFLParameter = jvm.jclass("com.mindspore.flclient.FLParameter")
        RunType = jvm.jclass("com.mindspore.flclient.model.RunType")
        BindMode = jvm.jclass("com.mindspore.flclient.BindMode")
        ServerMod = jvm.jclass("com.mindspore.flclient.ServerMod")
        HashMap = jpype.JClass("java.util.HashMap")
        ArrayList = jpype.JClass("java.util.ArrayList")
        try:
            p = JFLParameter()
            p.setDomainName(self.domain_name)
            p.setFlName(self.fl_name)
            p.setTrainModelPath(str(self.train_model_path))
            p.setInferModelPath(str(self.infer_model_path))
            if self.batch_size is not None:
                p.setBatchSize(self.batch_size)
            p.setThreadNum(self.thread_num)
            p.setCpuBindMode(BindMode.valueOf(self.cpu_bind_mode))
            p.setServerMod(ServerMod.valueOf(self.server_mode))
            p.setUseElb(self.use_elb)
            p.setServerNum(self.server_num)
            p.setSslProtocol(self.ssl_protocol)
            p.setDeployEnv(self.deploy_env)
            if self.cert_path is not None:
                p.setCertPath(str(self.cert_path))
            if self.client_id is not None:
                p.setClientID(self.client_id)
            if self.sleep_time_ms is not None:
                p.setSleepTime(self.sleep_time_ms)
            if self.time_out_s is not None:
                p.setTimeOut(self.time_out_s)
            if self.max_retries is not None:
                p.setMaxRetries(self.max_retries)
            if self.retry_timeout_s is not None:
                p.setRetryTimeout(self.retry_timeout_s)
            if self.log_path is not None:
                p.setLogPath(str(self.log_path))
            p.setPkiVerify(self.pki_verify)
            if self.equip_crl_path is not None:
                p.setEquipCrlPath(str(self.equip_crl_path))
            if self.valid_interval is not None:
                p.setValidInterval(self.valid_interval)
            if self.pki_path is not None:
                p.setPkiPath(str(self.pki_path))
            data_map = HashMap()
            for run_type, files in (("TRAINMODE", self.train_dataset), ("EVALMODE", self.test_dataset),
                                    ("INFERMODE", self.infer_dataset)):
                if files is not None:
                    pair = ArrayList()
                    pair.add(str(files.data))
                    pair.add(str(files.label))
                    data_map.put(getattr(RunType, run_type), pair)
            p.setDataMap(data_map)
            if listener is not None:
                p.setTrainListener(listener)
            if result_callback is not None:
                p.setIflJobResultCallback(result_callback)
            if permits is not None:
                p.setTrainingPermits(permits)
            if self.train_dataset is not None:
                # validate() insists on training data; inference-only jobs skip it
                p.validate()
        except jpype.JException as exc:
            err = from_java(exc)
            raise InvalidParameterError(_java_field(err.java_message),
                                        f"the Java client refused it: {err.java_message}") from exc
        return p


def _java_field(message: str) -> str:
    """``"FLParameter.timeOut = 0: ..."`` -> ``"time_out_s"`` (the Python field name)."""
    m = re.match(r"FLParameter\.(\w+)", message or "")
    if not m:
        return "FLParameter"
    known = rules.python_name(m.group(1))
    if known is not None:
        return known
    name = {"dataMap": "train_dataset"}.get(m.group(1), m.group(1))
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class FLParameterBuilder:
    """Fluent construction of :class:`FLParameter` (the r1.6 setter style, chained)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def _set(self, name: str, value: Any) -> "FLParameterBuilder":
        self._values[name] = value
        return self

    def domain_name(self, url: str) -> "FLParameterBuilder":
        return self._set("domain_name", url)

    def fl_name(self, class_name: str) -> "FLParameterBuilder":
        return self._set("fl_name", class_name)

    def train_dataset(self, folder_or_data: PathLike, label: PathLike | None = None) -> "FLParameterBuilder":
        return self._set("train_dataset", folder_or_data if label is None else (folder_or_data, label))

    def test_dataset(self, folder_or_data: PathLike, label: PathLike | None = None) -> "FLParameterBuilder":
        return self._set("test_dataset", folder_or_data if label is None else (folder_or_data, label))

    def infer_dataset(self, folder_or_data: PathLike, label: PathLike | None = None) -> "FLParameterBuilder":
        return self._set("infer_dataset", folder_or_data if label is None else (folder_or_data, label))

    def train_model_path(self, path: PathLike) -> "FLParameterBuilder":
        return self._set("train_model_path", path)

    def infer_model_path(self, path: PathLike) -> "FLParameterBuilder":
        return self._set("infer_model_path", path)

    def batch_size(self, n: int) -> "FLParameterBuilder":
        return self._set("batch_size", n)

    def thread_num(self, n: int) -> "FLParameterBuilder":
        return self._set("thread_num", n)

    def cpu_bind_mode(self, mode: str) -> "FLParameterBuilder":
        return self._set("cpu_bind_mode", mode)

    def server_mode(self, mode: str) -> "FLParameterBuilder":
        return self._set("server_mode", mode)

    def use_elb(self, flag: bool = True) -> "FLParameterBuilder":
        return self._set("use_elb", flag)

    def server_num(self, n: int) -> "FLParameterBuilder":
        return self._set("server_num", n)

    def cert_path(self, path: PathLike) -> "FLParameterBuilder":
        return self._set("cert_path", path)

    def ssl_protocol(self, protocol: str) -> "FLParameterBuilder":
        return self._set("ssl_protocol", protocol)

    def deploy_env(self, env: str) -> "FLParameterBuilder":
        return self._set("deploy_env", env)

    def client_id(self, fl_id: str) -> "FLParameterBuilder":
        return self._set("client_id", fl_id)

    def sleep_time_ms(self, ms: int) -> "FLParameterBuilder":
        return self._set("sleep_time_ms", ms)

    def time_out_s(self, seconds: int) -> "FLParameterBuilder":
        return self._set("time_out_s", seconds)

    def max_retries(self, n: int) -> "FLParameterBuilder":
        return self._set("max_retries", n)

    def retry_timeout_s(self, seconds: int) -> "FLParameterBuilder":
        return self._set("retry_timeout_s", seconds)

    def log_path(self, path: PathLike) -> "FLParameterBuilder":
        return self._set("log_path", path)

    def pki_verify(self, flag: bool) -> "FLParameterBuilder":
        return self._set("pki_verify", flag)

    def equip_crl_path(self, path: PathLike) -> "FLParameterBuilder":
        return self._set("equip_crl_path", path)

    def valid_interval(self, ms: int) -> "FLParameterBuilder":
        return self._set("valid_interval", ms)

    def build(self) -> FLParameter:
        if "domain_name" not in self._values:
            raise InvalidParameterError("domain_name", "required; call .domain_name('http://host:port')")
        return FLParameter(**self._values)
