"""The FL server's configuration: MindSpore's ``set_fl_context`` names, one frozen dataclass.

The same keys come from three places, merged in this order: the defaults below, a
YAML file (``--config server.yaml``), then command-line flags or keyword arguments
(``--start-fl-job-threshold 50`` / ``start_fl_job_threshold=50``). Every value is
checked once, here, so the rest of the server can trust it; a bad value fails with
the key's name and what would be accepted.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

__all__ = ["ServerConfig", "ConfigError", "load_yaml", "redis_url"]

SUPPORTED_SERVER_MODES = ("FEDERATED_LEARNING",)
SUPPORTED_ENCRYPT_TYPES = ("NOT_ENCRYPT", "PW_ENCRYPT", "DP_ENCRYPT")
UPDATE_NORM_ACTIONS = ("refuse", "clip")
ADMISSION_POLICIES = ("first_come", "sample")
SWITCH = ("on", "off")
#: the devices' HTTP timeout is 60 s: a startFLJob held for the draw must be answered well before it
MAX_ADMISSION_WINDOW_MS = 30_000


def setting(default: Any, help: str) -> Any:  # noqa: A002 - argparse's word
    """A configuration key with its default and the one sentence ``pyflclient server --help`` shows."""
    return dataclasses.field(default=default, metadata={"help": help})


class ConfigError(ValueError):
    """A configuration key or value the server cannot run with."""


@dataclass(frozen=True)
class ServerConfig:
    """Server settings. Times are milliseconds, as in MindSpore; each one's help is the CLI's."""

    fl_server_port: int = setting(0, "first port to listen on (0: a free one, the Python API's default)")
    fl_server_ip: str = setting("127.0.0.1", "interface to listen on (0.0.0.0 for every interface)")
    server_num: int = setting(1, "listen on N consecutive ports sharing one state (ELB clients)")
    start_fl_job_threshold: int = setting(1, "devices admitted per iteration")
    start_fl_job_time_window: int = setting(30_000, "admission window in ms, from the first admitted "
                                                    "startFLJob of the iteration")
    update_model_ratio: float = setting(1.0, "an iteration finishes at ceil(threshold x ratio) uploads")
    update_model_time_window: int = setting(30_000, "upload window in ms, from the first upload (or the end "
                                                    "of the admission window if nobody uploaded)")
    fl_iteration_num: int = setting(20, "iterations of the job")
    client_epoch_num: int = setting(1, "local epochs per iteration (sent in the plan)")
    client_batch_size: int = setting(32, "local batch size (sent in the plan); must be the .ms model's batch")
    client_learning_rate: float = setting(0.01, "local learning rate (sent in the plan)")
    fl_name: str = setting("Lenet", "name of the FL job")
    server_mode: str = setting("FEDERATED_LEARNING", "only FEDERATED_LEARNING")
    encrypt_type: str = setting("NOT_ENCRYPT", "NOT_ENCRYPT; PW_ENCRYPT: pairwise masking, the server learns only the "
                                               "sum of the uploads (docs/secure-aggregation.md); DP_ENCRYPT: each "
                                               "device clips its update to dp_norm_clip and adds Gaussian noise")
    share_secrets_ratio: float = setting(1.0, "PW_ENCRYPT: the shareSecrets phase ends once ceil(ratio x the devices "
                                              "that exchanged keys) have shared their secrets (or at its window's end)")
    reconstruct_secrets_threshold: int = setting(0, "PW_ENCRYPT: t, the shares needed to rebuild a device's secret; an "
                                                    "iteration with fewer than t devices sharing, uploading or "
                                                    "returning shares is invalid (0: a majority of "
                                                    "start_fl_job_threshold, floor(n/2)+1)")
    cipher_time_window: int = setting(30_000, "PW_ENCRYPT: ms each cipher phase (exchangeKeys, shareSecrets, "
                                              "reconstructSecrets) stays open after the previous one ended")
    dp_eps: float = setting(50.0, "DP_ENCRYPT: epsilon of the Gaussian mechanism per device and iteration (inf: "
                                  "clipping only)")
    dp_delta: float = setting(0.01, "DP_ENCRYPT: delta of the Gaussian mechanism, in (0, 1)")
    dp_norm_clip: float = setting(1.0, "DP_ENCRYPT: L2 bound of a device's update (trained - received weights)")
    checkpoint_dir: str | None = setting(None, "write each iteration's model and metrics.jsonl here and resume "
                                               "from it (None: everything in memory)")
    max_body_bytes: int = setting(0, "refuse larger request bodies with HTTP 413, from Content-Length before a "
                                     "byte is read (0: 2 x the model's float32 bytes + 64 KiB, at most 1 GiB)")
    ssl_cert: str | None = setting(None, "PEM certificate: serve HTTPS (with ssl_key)")
    ssl_key: str | None = setting(None, "PEM private key of ssl_cert")
    retry_interval: int = setting(1_000, "ms a refused device is told to wait when no window end is known")
    get_model_hold_ms: int = setting(5_000, "ms a getModel of a still-running iteration is held open, so the "
                                            "device gets the model the moment it is published (0: answer at "
                                            "once, as r1.6); keep it well under the devices' HTTP timeout. PW_ENCRYPT's "
                                            "getKeys, getSecrets and getClientList are held alike")
    header_timeout_ms: int = setting(10_000, "a request's headers (and a TLS handshake) must arrive within this "
                                             "many ms of the connection, or of the request's first byte on a "
                                             "kept-alive connection")
    body_timeout_ms: int = setting(30_000, "a request's body must arrive within this many ms of its headers "
                                           "(HTTP 408 otherwise)")
    keep_alive_timeout_ms: int = setting(15_000, "an idle kept-alive connection is closed after this many ms "
                                                 "(a request being answered, e.g. a held getModel, is not idle)")
    max_connections: int = setting(0, "open connections per server process; at the cap a new one displaces the "
                                      "longest-idle or stalled one, or is closed (0: 7/8 of the open-file "
                                      "limit, at most 10000)")
    max_data_size: int = setting(1_000_000, "a startFLJob announcing a larger data_size is refused "
                                            "(RequestError): FedAvg weights each upload by it, so one device "
                                            "claiming 10^9 samples would make the model its own")
    max_update_norm: float = setting(0.0, "L2 bound on a device's update, uploaded weights / data_size - global "
                                          "model, over all weights (0: no bound)")
    update_norm_action: str = setting("refuse", "what an update beyond max_update_norm gets: refuse "
                                                "(RequestError) or clip (scaled down to the bound)")
    admission_policy: str = setting("first_come", "first_come: the first start_fl_job_threshold devices to ask "
                                                  "are admitted (r1.6); sample: the devices that ask within "
                                                  "admission_window_ms are held, then start_fl_job_threshold of "
                                                  "them are drawn at random (admission_seed)")
    admission_window_ms: int = setting(3_000, "sample: ms from an iteration's first startFLJob to its draw; the "
                                              "askers wait that long for their answer (at most 30000, well under "
                                              "the devices' 60 s HTTP timeout)")
    admission_seed: int = setting(0, "sample: seed of the draws; iteration k's draw depends only on (seed, k) and "
                                     "the set of fl_ids that asked, not on their order")
    max_admissions_per_address: int = setting(0, "seats of one iteration a single remote address may take; 0: "
                                                 "half the seats (at least 1) for every address but loopback")
    distributed_cache_address: str | None = setting(None, "Redis that holds the job's state (host:port or "
                                                          "redis://host:port/db): every server process given the "
                                                          "same address, model and settings serves one job (None: "
                                                          "the state is in this process)")
    # -- watching the job (pyflclient.server.metrics, docs/server.md "Metrics, dashboard, access")
    metrics: str = setting("on", "on: count requests, bytes, phases and device reports and serve them at /metrics "
                                 "(Prometheus); off: none of it, and no dashboard")
    dashboard: str = setting("on", "on: the live dashboard at / (read-only); off: none (--no-dashboard)")
    metrics_port: int = setting(0, "serve /metrics and the dashboard on this port instead of the FL ports (0: on "
                                   "the FL ports)")
    metrics_ip: str | None = setting(None, "interface of metrics_port (None: fl_server_ip)")
    metrics_token: str | None = setting(None, "bearer token that /metrics and the dashboard require (Authorization: "
                                              "Bearer <token>, or ?token= in the dashboard's address); the device "
                                              "endpoints never ask for it")

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"{key}={getattr(self, key)!r}: {what}")

        need(0 <= self.fl_server_port <= 65535, "fl_server_port", "must be a port number (0 picks a free one)")
        need(self.server_num >= 1, "server_num", "must be at least 1")
        need(self.fl_server_port == 0 or self.fl_server_port + self.server_num - 1 <= 65535, "server_num",
             "fl_server_port + server_num - 1 must be a port number")
        need(self.start_fl_job_threshold >= 1, "start_fl_job_threshold", "must be at least 1")
        need(self.start_fl_job_time_window > 0, "start_fl_job_time_window", "must be > 0 ms")
        need(0 < self.update_model_ratio <= 1, "update_model_ratio", "must be in (0, 1]")
        need(self.update_model_time_window > 0, "update_model_time_window", "must be > 0 ms")
        need(self.fl_iteration_num >= 1, "fl_iteration_num", "must be at least 1")
        need(self.client_epoch_num >= 1, "client_epoch_num", "must be at least 1")
        need(self.client_batch_size >= 1, "client_batch_size", "must be at least 1")
        need(math.isfinite(self.client_learning_rate) and self.client_learning_rate > 0, "client_learning_rate",
             "must be a positive number")
        need(self.server_mode in SUPPORTED_SERVER_MODES, "server_mode", f"supported: {SUPPORTED_SERVER_MODES}")
        need(self.encrypt_type in SUPPORTED_ENCRYPT_TYPES, "encrypt_type",
             f"supported: {SUPPORTED_ENCRYPT_TYPES}")
        need(0 < self.share_secrets_ratio <= 1, "share_secrets_ratio", "must be in (0, 1]")
        need(0 <= self.reconstruct_secrets_threshold <= self.start_fl_job_threshold, "reconstruct_secrets_threshold",
             f"must be in 0..start_fl_job_threshold ({self.start_fl_job_threshold}); 0: a majority")
        need(self.encrypt_type != "PW_ENCRYPT" or self.secret_threshold >= 2 or self.start_fl_job_threshold == 1,
             "reconstruct_secrets_threshold", "must be at least 2 with PW_ENCRYPT: with t = 1 any one device "
             "could rebuild every other device's masks")
        need(self.encrypt_type != "PW_ENCRYPT" or self.max_update_norm == 0, "max_update_norm",
             "must be 0 with PW_ENCRYPT: the server sees masked uploads only, their norms are noise")
        need(self.cipher_time_window >= 100, "cipher_time_window", "must be at least 100 ms")
        need(self.dp_eps > 0 and not math.isnan(self.dp_eps), "dp_eps", "must be > 0 (inf: no noise)")
        need(0 < self.dp_delta < 1, "dp_delta", "must be in (0, 1)")
        need(math.isfinite(self.dp_norm_clip) and self.dp_norm_clip > 0, "dp_norm_clip", "must be a positive number")
        need(self.max_body_bytes == 0 or self.max_body_bytes >= 1024, "max_body_bytes",
             "must be at least 1024 (0: derived from the model)")
        need((self.ssl_cert is None) == (self.ssl_key is None), "ssl_cert",
             "HTTPS needs both ssl_cert and ssl_key")
        need(self.retry_interval > 0, "retry_interval", "must be > 0 ms")
        need(self.get_model_hold_ms >= 0, "get_model_hold_ms", "must be >= 0 ms")
        for key in ("header_timeout_ms", "body_timeout_ms", "keep_alive_timeout_ms"):
            need(getattr(self, key) >= 100, key, "must be at least 100 ms")
        need(self.max_connections == 0 or self.max_connections >= 2, "max_connections",
             "must be at least 2 (0: derived from the open-file limit)")
        need(self.max_data_size >= 1, "max_data_size", "must be at least 1")
        need(math.isfinite(self.max_update_norm) and self.max_update_norm >= 0, "max_update_norm",
             "must be a finite number >= 0 (0: no bound)")
        need(self.update_norm_action in UPDATE_NORM_ACTIONS, "update_norm_action", f"one of {UPDATE_NORM_ACTIONS}")
        need(self.admission_policy in ADMISSION_POLICIES, "admission_policy", f"one of {ADMISSION_POLICIES}")
        need(0 < self.admission_window_ms <= MAX_ADMISSION_WINDOW_MS, "admission_window_ms",
             f"must be in 1..{MAX_ADMISSION_WINDOW_MS} ms (held startFLJob requests must be answered well "
             f"before the devices' 60 s HTTP timeout)")
        need(self.admission_seed >= 0, "admission_seed", "must be >= 0")
        if self.distributed_cache_address is not None:
            try:
                redis_url(self.distributed_cache_address)
            except ValueError as exc:
                need(False, "distributed_cache_address", str(exc))
        need(self.max_admissions_per_address >= 0, "max_admissions_per_address",
             "must be >= 0 (0: half the seats for non-loopback addresses)")
        need(self.metrics in SWITCH, "metrics", f"one of {SWITCH}")
        need(self.dashboard in SWITCH, "dashboard", f"one of {SWITCH}")
        need(self.metrics == "on" or self.dashboard == "off", "dashboard", "needs metrics=on (the dashboard shows them)")
        need(0 <= self.metrics_port <= 65535, "metrics_port", "must be a port number (0: on the FL ports)")
        need(self.metrics_ip is None or self.metrics_port != 0, "metrics_ip", "needs metrics_port (the FL ports "
             "listen on fl_server_ip)")
        need(self.metrics_token is None or len(self.metrics_token) >= 8, "metrics_token", "must be at least 8 characters")

    @property
    def update_model_threshold(self) -> int:
        """Uploads that finish an iteration: ceil(start_fl_job_threshold × update_model_ratio)."""
        return max(1, math.ceil(self.start_fl_job_threshold * self.update_model_ratio - 1e-9))

    @property
    def secret_threshold(self) -> int:
        """t of PW_ENCRYPT: reconstruct_secrets_threshold, or a majority of start_fl_job_threshold."""
        return self.reconstruct_secrets_threshold or self.start_fl_job_threshold // 2 + 1

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: "ServerConfig | None" = None) -> "ServerConfig":
        """``base`` (or the defaults) with ``values`` on top; unknown keys and wrong types are errors."""
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise ConfigError(f"unknown server setting(s) {unknown}; known: {', '.join(cls.keys())}")
        coerced = {}
        for f in fields(cls):
            if f.name in values:
                coerced[f.name] = _coerce(f.name, values[f.name], f.default)
        return dataclasses.replace(base or cls(), **coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def redis_url(address: str) -> str:
    """``host:port``, ``redis://host:port/db`` or ``rediss://…`` → a redis URL; ValueError if neither."""
    url = address if "://" in address else "redis://" + address
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("expected host:port or redis://host:port/db")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises
    except ValueError:
        raise ValueError("expected host:port or redis://host:port/db (the port is not a number)") from None
    return url


def _coerce(key: str, value: Any, default: Any) -> Any:
    """YAML gives ints for floats and strings for paths; refuse what cannot be meant (e.g. '10x')."""
    if value is None:
        if default is None:
            return None
        raise ConfigError(f"{key}: a value is needed")
    kind = type(default) if default is not None else str
    try:
        if kind is bool:
            raise TypeError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: expected {kind.__name__}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file (keys as in ServerConfig, plus ``model``)."""
    import yaml

    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of setting: value")
    return data
