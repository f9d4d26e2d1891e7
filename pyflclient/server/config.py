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

import numpy as np

from pyflclient.server.asynchrony import (
    ASYNC_AGGREGATIONS, ASYNC_SERVER_MODE, DEFAULT_STALENESS, FEDASYNC, STALENESS_FUNCTIONS,
)
from pyflclient.wire import compression as _compression
from pyflclient.wire.plugins import AggregationType, EarlyStopType, EncryptType, table

__all__ = ["ServerConfig", "ConfigError", "load_yaml", "redis_url", "AGGREGATION_SECTION", "COMPRESSION_SECTION",
           "COMPRESSION_KEYS"]

SUPPORTED_SERVER_MODES = ("FEDERATED_LEARNING", ASYNC_SERVER_MODE)
#: MindSpore Federated's YAML section of the aggregation settings: ``aggregation: {aggregation_type: ...}``
AGGREGATION_SECTION = "aggregation"
#: the value of early_stop_type that means no early stop (YAML ``none`` and ``null`` alike)
NO_EARLY_STOP = "none"
UPDATE_NORM_ACTIONS = ("refuse", "clip")
ADMISSION_POLICIES = ("first_come", "sample")
SWITCH = ("on", "off")
#: the devices' HTTP timeout is 60 s: a startFLJob held for the draw must be answered well before it
MAX_ADMISSION_WINDOW_MS = 30_000
#: MindSpore Federated's YAML section of the compression settings: ``compression: {upload_compress_type: ...}``
COMPRESSION_SECTION = "compression"
COMPRESSION_KEYS = ("upload_compress_type", "upload_sparse_rate", "download_compress_type")
_CODECS = _compression.table()
_NO_COMPRESS = next(iter(_CODECS.upload))  # the tables' first rows: r1.6's uncompressed wire


def _codec_help(rows: Mapping[str, Any]) -> str:
    return "; ".join(f"{c.name}: {c.help}" for c in rows.values()) + " (docs/compression.md)"


def setting(default: Any, help: str, kind: type | None = None) -> Any:  # noqa: A002 - argparse's word
    """A configuration key with its default and the one sentence ``pyflclient server --help`` shows
    (``kind``: the value's type where the default, None, does not say it)."""
    kind = kind or (str if default is None else type(default))
    return dataclasses.field(default=default, metadata={"help": help, "kind": kind})


def plugin_setting(name: str, default: Any = None) -> Any:
    """A key that is a parameter of schema/round_plugins.json: its help and kind come from the table's row
    (``default`` None: the aggregation type's own default, from its row)."""
    row = table().parameters[name]
    users = [a.name for a in table().aggregation.values() if name in a.params]
    said = f"{row.help}; {row.rule}"
    if default is None and users:
        said += " (default: the type's, " + ", ".join(f"{a} {table().aggregation[a].params[name]:g}" for a in users) + ")"
    return setting(default, said, kind=float if row.kind == "float" else int)


def _plugin_names(rows: Mapping[str, Any]) -> str:
    return ", ".join(name for name, row in rows.items() if not getattr(row, "refused", None))


#: the parameters of the aggregation types (each a ServerConfig key), in the table's order
AGGREGATION_PARAMETERS = tuple(dict.fromkeys(p for a in table().aggregation.values() for p in a.params))
#: the table's first rows are the defaults: FedAvg (r1.6's only aggregation) and uploads in the clear
_DEFAULT_AGGREGATION = next(iter(table().aggregation))
_DEFAULT_ENCRYPT = next(iter(table().encrypt))


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
    server_mode: str = setting("FEDERATED_LEARNING", f"FEDERATED_LEARNING: synchronous iterations (r1.6); "
                                                     f"{ASYNC_SERVER_MODE}: asynchronous, FedAsync or FedBuff "
                                                     f"(async_aggregation; docs/async.md)")
    async_aggregation: str = setting(FEDASYNC, f"{ASYNC_SERVER_MODE}: {' or '.join(ASYNC_AGGREGATIONS)}: each "
                                               f"upload mixed in at once (Xie et al. 2019), or a buffer of "
                                               f"fedbuff_buffer_size uploads aggregated by aggregation_type "
                                               f"(Nguyen et al. 2022)")
    fedasync_alpha: float = setting(0.6, "FedAsync: the mixing weight alpha in (0, 1]; an upload of staleness tau "
                                         "is mixed in with alpha x s(tau)")
    staleness_function: str = setting(DEFAULT_STALENESS, f"{ASYNC_SERVER_MODE}: s(tau), the weight of an upload "
                                                    f"trained tau versions ago: "
                                                    f"{', '.join(STALENESS_FUNCTIONS)} (1; (tau+1)^-a; 1 up to "
                                                    f"b, then 1/(a(tau-b)+1))")
    staleness_a: float = setting(0.5, "the staleness function's a (polynomial's exponent, hinge's slope), >= 0")
    staleness_b: float = setting(4.0, "hinge: the staleness up to which uploads count fully, >= 0")
    fedbuff_buffer_size: int = setting(10, "FedBuff: K, the uploads aggregated into each new version")
    max_staleness: int = setting(10, f"{ASYNC_SERVER_MODE}: an upload trained on a model more than this many "
                                     f"versions old is refused (OutOfTime, with the reason)")
    async_concurrency: int = setting(10, f"{ASYNC_SERVER_MODE}: devices training at once; startFLJob admits while "
                                         f"fewer are (a seat is free again at the device's upload, or "
                                         f"update_model_time_window ms after its admission)")
    encrypt_type: str = setting(_DEFAULT_ENCRYPT, "; ".join(f"{e.name}: {e.help}" for e in table().encrypt.values()))
    share_secrets_ratio: float = setting(1.0, "PW_ENCRYPT: the shareSecrets phase ends once ceil(ratio x the devices "
                                              "that exchanged keys) have shared their secrets (or at its window's end)")
    reconstruct_secrets_threshold: int = setting(0, "PW_ENCRYPT: t, the shares needed to rebuild a device's secret; an "
                                                    "iteration with fewer than t devices sharing, uploading or "
                                                    "returning shares is invalid (0: a majority of "
                                                    "start_fl_job_threshold, floor(n/2)+1)")
    cipher_time_window: int = setting(30_000, "PW_ENCRYPT: ms each cipher phase (exchangeKeys, shareSecrets, "
                                              "reconstructSecrets) stays open after the previous one ended")
    dp_eps: float = plugin_setting("dp_eps", 50.0)
    dp_delta: float = plugin_setting("dp_delta", 0.01)
    dp_norm_clip: float = plugin_setting("dp_norm_clip", 1.0)
    aggregation_type: str = setting(_DEFAULT_AGGREGATION, "how the uploads become the next model: "
                                    + _plugin_names(table().aggregation) + " (docs/strategies.md)")
    server_learning_rate: float | None = plugin_setting("server_learning_rate")
    server_momentum: float | None = plugin_setting("server_momentum")
    server_beta1: float | None = plugin_setting("server_beta1")
    server_beta2: float | None = plugin_setting("server_beta2")
    server_tau: float | None = plugin_setting("server_tau")
    fedprox_mu: float | None = plugin_setting("fedprox_mu")
    qffl_q: float | None = plugin_setting("qffl_q")
    qffl_learning_rate: float | None = plugin_setting("qffl_learning_rate")
    trim_beta: float | None = plugin_setting("trim_beta")
    krum_byzantine: int | None = plugin_setting("krum_byzantine")
    krum_keep: int | None = plugin_setting("krum_keep")
    scaffold_num_clients: int | None = plugin_setting("scaffold_num_clients")
    early_stop_type: str = setting(NO_EARLY_STOP, "end the job early (r1.6's FLPlan.early_stop): "
                                   + "; ".join(f"{e.name}: {e.help}" for e in table().early_stop.values())
                                   + f"; {NO_EARLY_STOP}: run all fl_iteration_num iterations")
    early_stop_weight: float | None = plugin_setting("early_stop_weight")
    early_stop_rounds: int = plugin_setting("early_stop_rounds", 1)
    upload_compress_type: str = setting(_NO_COMPRESS, "how devices upload: " + _codec_help(_CODECS.upload))
    upload_sparse_rate: float = setting(_CODECS.parameters["upload_sparse_rate"].default,
                                        _CODECS.parameters["upload_sparse_rate"].help + "; "
                                        + _CODECS.parameters["upload_sparse_rate"].rule)
    download_compress_type: str = setting(next(iter(_CODECS.download)),
                                          "how the model travels to devices that can decode it: "
                                          + _codec_help(_CODECS.download))
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
                                           "(HTTP 408 otherwise), and its reply be taken by the client within "
                                           "as long (the connection is closed otherwise)")
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
    update_norm_factor: float = setting(10_000.0, "with max_update_norm 0: refuse an update whose norm is above "
                                               "this x the median of the last 256 accepted updates (before 8: this "
                                               "x (the model's norm + 1)); 0: off (docs/security.md)")
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

    device_profiles: str | None = setting(None, "simulated devices: a population name (uniform, mobile), a JSON "
                                                "profile file or FedScale's device capacity pickle; the server then "
                                                "runs its windows on the simulated clock (docs/devices.md; None: the "
                                                "wall clock)")
    device_availability: str | None = setting(None, "device_profiles: FedScale's client behaviour trace (pickle) "
                                                    "giving each device its online sessions")
    device_seed: int = setting(0, "device_profiles: seed of the drawn profiles and of the ask order of devices "
                                  "asking at the same simulated time")
    device_count: int = setting(0, "device_profiles: devices of the simulation; each iteration's admission waits "
                                   "until they all asked (0: those seen so far, and admission_window_ms of quiet)")
    # r1.6's device authentication (docs/security.md), MindSpore's key names
    pki_verify: bool = setting(False, "refuse startFLJob/updateModel without a valid device signature: a chain to "
                                      "root_first_ca_path or root_second_ca_path, not revoked in equip_crl_path, the "
                                      "fl_id in the certificate, the timestamp within replay_attack_time_diff, each "
                                      "signed request once (pyflclient pki init/issue/revoke makes the files)")
    root_first_ca_path: str | None = setting(None, "pki_verify: PEM root CA certificate the device chains end in")
    root_second_ca_path: str | None = setting(None, "pki_verify: a second accepted root CA (e.g. while rotating)")
    equip_crl_path: str | None = setting(None, "pki_verify: the CRL of revoked device certificates (PEM or DER); "
                                               "read again when the file changes")
    replay_attack_time_diff: int = setting(600_000, "pki_verify: ms a signed request's timestamp may differ from "
                                                    "the server's clock; a signature is accepted once within it")

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
        need(self.server_mode in SUPPORTED_SERVER_MODES, "server_mode", f"supported: {SUPPORTED_SERVER_MODES}")
        self._check_plugins()
        if self.server_mode == ASYNC_SERVER_MODE:
            self._check_async(need)
        need(0 < self.share_secrets_ratio <= 1, "share_secrets_ratio", "must be in (0, 1]")
        need(0 <= self.reconstruct_secrets_threshold <= self.start_fl_job_threshold, "reconstruct_secrets_threshold",
             f"must be in 0..start_fl_job_threshold ({self.start_fl_job_threshold}); 0: a majority")
        need(not self.masked_uploads or self.secret_threshold >= 2 or self.start_fl_job_threshold == 1,
             "reconstruct_secrets_threshold", f"must be at least 2 with {self.encrypt_type}: with t = 1 any one "
             f"device could rebuild every other device's masks")
        need(not self.masked_uploads or self.max_update_norm == 0, "max_update_norm",
             f"must be 0 with {self.encrypt_type}: the server sees masked uploads only, their norms are noise")
        need(self.cipher_time_window >= 100, "cipher_time_window", "must be at least 100 ms")
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
        need(math.isfinite(self.update_norm_factor) and (self.update_norm_factor == 0 or self.update_norm_factor >= 2),
             "update_norm_factor", "must be 0 (off) or a finite number >= 2")
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
        need(self.device_count >= 0, "device_count", "must be >= 0 (0: the devices seen so far)")
        need(self.device_profiles is None or (self.distributed_cache_address is None and not self.masked_uploads),
             "device_profiles", "the simulated clock runs in one server process (no distributed_cache_address) "
             "with uploads in the clear (encrypt_type without its own phases)")
        need(self.device_profiles is not None or self.device_availability is None, "device_availability",
             "needs device_profiles (a population name or a capacity file)")
        need(self.max_admissions_per_address >= 0, "max_admissions_per_address",
             "must be >= 0 (0: half the seats for non-loopback addresses)")
        need(not self.pki_verify or bool(self.root_first_ca_path), "root_first_ca_path",
             "pki_verify needs the root CA certificate (pyflclient pki init writes root_ca.pem)")
        for key in ("root_first_ca_path", "root_second_ca_path", "equip_crl_path"):
            need(not self.pki_verify or getattr(self, key) is None or Path(getattr(self, key)).is_file(), key,
                 "no such file")
        need(self.replay_attack_time_diff >= 1000, "replay_attack_time_diff", "must be at least 1000 ms")
        need(self.metrics in SWITCH, "metrics", f"one of {SWITCH}")
        need(self.dashboard in SWITCH, "dashboard", f"one of {SWITCH}")
        need(self.metrics == "on" or self.dashboard == "off", "dashboard", "needs metrics=on (the dashboard shows them)")
        need(0 <= self.metrics_port <= 65535, "metrics_port", "must be a port number (0: on the FL ports)")
        need(self.metrics_ip is None or self.metrics_port != 0, "metrics_ip", "needs metrics_port (the FL ports "
             "listen on fl_server_ip)")
        need(self.metrics_token is None or len(self.metrics_token) >= 8, "metrics_token", "must be at least 8 characters")
        self._check_compression()

    def _check_compression(self) -> None:
        """The compression settings against schema/compression.json's rows."""
        def fail(key: str, what: str) -> None:
            raise ConfigError(f"{key}={getattr(self, key)!r}: {what}")

        upload = _CODECS.upload.get(self.upload_compress_type)
        if upload is None:
            fail("upload_compress_type", f"one of {', '.join(_CODECS.upload)}")
        if _CODECS.download.get(self.download_compress_type) is None:
            fail("download_compress_type", f"one of {', '.join(_CODECS.download)}")
        rate = _CODECS.parameters["upload_sparse_rate"]
        if rate.problem(self.upload_sparse_rate):
            fail("upload_sparse_rate", rate.problem(self.upload_sparse_rate) or "")
        if upload is not None and upload.compresses and self.masked_uploads:
            fail("upload_compress_type", f"not with encrypt_type={self.encrypt_type}: the server sees only the sum "
                                         f"of masked uploads, and each device's 8-bit ranges do not add up; use "
                                         f"{_NO_COMPRESS} (download_compress_type may stay compressed)")

    @property
    def upload_codec(self) -> _compression.Codec:
        """The row of ``upload_compress_type`` in schema/compression.json."""
        return _CODECS.upload[self.upload_compress_type]

    @property
    def download_codec(self) -> _compression.Codec:
        """The row of ``download_compress_type`` in schema/compression.json."""
        return _CODECS.download[self.download_compress_type]

    def _check_plugins(self) -> None:
        """The aggregation, encrypt and early-stop settings against schema/round_plugins.json's rows, once."""
        plugins = table()

        def fail(key: str, what: str) -> None:
            raise ConfigError(f"{key}={getattr(self, key)!r}: {what}")

        def check(key: str, on_the_wire: bool = False) -> None:
            """``on_the_wire``: the value travels in the plan as a FlatBuffers float (32 bits) and the device
            checks that: the row is applied to it as sent (1e-50 is 0 there, 1e39 infinite)."""
            value = getattr(self, key)
            if on_the_wire and isinstance(value, float):
                with np.errstate(over="ignore", under="ignore"):
                    value = float(np.float32(value))
            problem = plugins.parameters[key].problem(value)
            if problem:
                fail(key, problem + (" (as the plan's 32-bit float)" if value != getattr(self, key) else ""))

        aggregation = plugins.aggregation.get(self.aggregation_type)
        if aggregation is None:
            fail("aggregation_type", f"one of {_plugin_names(plugins.aggregation)}")
        assert aggregation is not None
        if aggregation.refused:
            fail("aggregation_type", aggregation.refused)
        for key in AGGREGATION_PARAMETERS:
            if getattr(self, key) is None:
                continue
            if key not in aggregation.params:
                fail(key, f"aggregation_type {aggregation.name} does not use it; its parameters: "
                          f"{', '.join(aggregation.params) or 'none'}")
            check(key, on_the_wire=key in aggregation.device_params)
        encrypt = plugins.encrypt.get(self.encrypt_type)
        if encrypt is None:
            fail("encrypt_type", f"one of {_plugin_names(plugins.encrypt)}")
        assert encrypt is not None
        check("client_learning_rate", on_the_wire=True)
        for row in plugins.encrypt.values():  # every type's, as they all have defaults: a bad one is a typo
            for key in row.params:
                if key in plugins.parameters:
                    check(key, on_the_wire=True)
        if aggregation.needs_single_uploads and not encrypt.sees_single_uploads:
            raise ConfigError(f"aggregation_type={aggregation.name!r} reads each device's upload, but with "
                              f"encrypt_type={encrypt.name!r} the server sees {encrypt.server_sees}; use "
                              f"{', '.join(a.name for a in plugins.aggregation.values() if not a.needs_single_uploads and not a.refused)} "
                              f"with {encrypt.name}, or another encrypt_type with {aggregation.name}")
        if ("reconstruct_secrets_threshold" in encrypt.params and "scaffold_num_clients" in aggregation.params
                and not self.aggregation_params["scaffold_num_clients"]):
            # the aggregator reads one upload, the unmasked sum: how many devices it holds is not in it
            raise ConfigError(f"scaffold_num_clients={self.scaffold_num_clients!r}: {aggregation.name} with "
                              f"encrypt_type={encrypt.name!r} needs it > 0 (N of c <- c + (1/N) sum of delta c_i: the "
                              f"server sees only the sum of the uploads, not how many there were)")
        if self.early_stop_type == NO_EARLY_STOP:
            if self.early_stop_weight is not None:
                fail("early_stop_weight", f"needs an early_stop_type ({_plugin_names(plugins.early_stop)})")
        else:
            if self.early_stop_type not in plugins.early_stop:
                fail("early_stop_type", f"one of {_plugin_names(plugins.early_stop)}, {NO_EARLY_STOP}")
            if self.early_stop_weight is None:
                fail("early_stop_weight", f"needs a value with early_stop_type {self.early_stop_type} "
                                          f"({plugins.parameters['early_stop_weight'].rule})")
            check("early_stop_weight")
        check("early_stop_rounds")

    def _check_async(self, need: Any) -> None:
        """The asynchronous mode's keys, and what it does not combine with (yet)."""
        mode = f"with server_mode {ASYNC_SERVER_MODE}"
        need(self.async_aggregation in ASYNC_AGGREGATIONS, "async_aggregation", f"one of {ASYNC_AGGREGATIONS}")
        need(0 < self.fedasync_alpha <= 1, "fedasync_alpha", "must be in (0, 1]")
        need(self.staleness_function in STALENESS_FUNCTIONS, "staleness_function",
             f"one of {tuple(STALENESS_FUNCTIONS)}")
        need(math.isfinite(self.staleness_a) and self.staleness_a >= 0, "staleness_a", "must be a finite number >= 0")
        need(math.isfinite(self.staleness_b) and self.staleness_b >= 0, "staleness_b", "must be a finite number >= 0")
        need(self.fedbuff_buffer_size >= 1, "fedbuff_buffer_size", "must be at least 1")
        need(self.max_staleness >= 0, "max_staleness", "must be >= 0")
        need(self.async_concurrency >= 1, "async_concurrency", "must be at least 1")
        need(self.encrypt_type == _DEFAULT_ENCRYPT, "encrypt_type", f"must be {_DEFAULT_ENCRYPT} {mode} (the "
             f"asynchronous uploads travel in the clear; docs/async.md)")
        need(self.early_stop_type == NO_EARLY_STOP, "early_stop_type", f"must be {NO_EARLY_STOP} {mode}")
        need(self.upload_compress_type == _NO_COMPRESS, "upload_compress_type", f"must be {_NO_COMPRESS} {mode} "
             f"(asyncUpdateModel carries the weights uncompressed)")
        need(not self.aggregation_row.reports_loss, "aggregation_type", f"{self.aggregation_type} reads upload_loss, "
             f"which asyncUpdateModel does not carry; choose another {mode}")
        need(self.async_aggregation != FEDASYNC or self.aggregation_type == _DEFAULT_AGGREGATION, "aggregation_type",
             f"must be {_DEFAULT_AGGREGATION} with async_aggregation {FEDASYNC} (FedAsync mixes each upload "
             f"itself; FedBuff aggregates its buffer with aggregation_type)")

    @property
    def aggregation_row(self) -> AggregationType:
        """The row of ``aggregation_type`` in schema/round_plugins.json."""
        return table().aggregation[self.aggregation_type]

    @property
    def encrypt_row(self) -> EncryptType:
        return table().encrypt[self.encrypt_type]

    @property
    def early_stop_row(self) -> EarlyStopType | None:
        """The row of ``early_stop_type``; None without early stop."""
        return table().early_stop.get(self.early_stop_type)

    @property
    def aggregation_params(self) -> dict[str, float]:
        """The aggregation type's parameters: its row's defaults with the given ones over them."""
        row = self.aggregation_row
        return {key: (row.params[key] if getattr(self, key) is None else getattr(self, key)) for key in row.params}

    @property
    def masked_uploads(self) -> bool:
        """The encrypt type masks every upload with secret-shared seeds (it has a reconstruct threshold t):
        the server sees only their sum."""
        return "reconstruct_secrets_threshold" in self.encrypt_row.params

    @property
    def reports_loss(self) -> bool:
        """The devices send ``upload_loss`` (the aggregation type or the early stop type reads it)."""
        stop = self.early_stop_row
        return self.aggregation_row.reports_loss or (stop is not None and stop.reports_loss)

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
                coerced[f.name] = _coerce(f.name, values[f.name], f.default, f.metadata["kind"])
        return dataclasses.replace(base or cls(), **coerced)

    @classmethod
    def kind_of(cls, key: str) -> type:
        """The type of ``key``'s values (int, float, str)."""
        return next(f.metadata["kind"] for f in fields(cls) if f.name == key)

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


def _coerce(key: str, value: Any, default: Any, kind: type) -> Any:
    """YAML gives ints for floats and strings for paths; refuse what cannot be meant (e.g. '10x')."""
    if value is None:
        if default is None:
            return None
        if key == "early_stop_type":  # YAML's null
            return NO_EARLY_STOP
        raise ConfigError(f"{key}: a value is needed")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
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
        row = table().parameters.get(key)
        said = row.rule if row else "expected " + ("true or false" if kind is bool else kind.__name__)
        raise ConfigError(f"{key}={value!r}: {said}") from None


def flat_settings(values: Mapping[str, Any], source: object) -> dict[str, Any]:
    """A config file's mapping with MindSpore Federated's ``aggregation:`` and ``compression:`` sections merged
    into the flat keys (``aggregation: {aggregation_type: FedAdam, server_learning_rate: 0.01}``,
    ``compression: {upload_compress_type: DIFF_SPARSE_QUANT, upload_sparse_rate: 0.4}``); a key given both
    ways is an error, as is a section key that is not a setting of its section."""
    out = _merge_section(dict(values), source, COMPRESSION_SECTION, COMPRESSION_KEYS, "a compression")
    return _merge_section(out, source, AGGREGATION_SECTION, ("aggregation_type", *AGGREGATION_PARAMETERS),
                          "an aggregation")


def _merge_section(out: dict[str, Any], source: object, section_name: str, allowed: tuple[str, ...],
                   what: str) -> dict[str, Any]:
    section = out.pop(section_name, None)
    if section is None:
        return out
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: {section_name} must be a mapping of {', '.join(allowed)}")
    for key, value in section.items():
        if key not in allowed:
            raise ConfigError(f"{source}: {section_name}.{key} is not {what} setting; known: {', '.join(allowed)}")
        if key in out:
            raise ConfigError(f"{source}: {key} is given both flat and in the {section_name} section")
        out[key] = value
    return out


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
