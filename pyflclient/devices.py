"""Device profiles: how fast each simulated device trains, how fast its link is, when it is online.

A :class:`DeviceProfile` holds one device's numbers; a :class:`DeviceProfiles` maps fl_ids to
profiles and is what the simulated clock (:mod:`pyflclient.clock`) reads. Profiles come from

* a built-in seeded **population** by name (:data:`POPULATIONS`): ``uniform`` (every device
  equally fast, always online, free links: the behaviour without profiles) and ``mobile`` (the
  heterogeneous default of ``pyflclient demo --realistic``; its distributions and where they come
  from are in docs/devices.md). A device's profile is drawn from a generator seeded with
  ``(seed, fl_id)``, so it does not depend on the other devices nor on their order;
* a **JSON file** of our own: ``{"devices": {"<fl_id>": {"ms_per_sample": .., "download_kbps": ..,
  "upload_kbps": .., "latency_ms": .., "availability": {"period_s": .., "online": [[start_s,
  end_s], ...]}}}, "default": {...}}`` (``default``, optional, for devices the file does not name);
* **FedScale's trace files, as they are**: the device capacity pickle (``{client_id:
  {"computation": ms per sample of inference, "communication": kbit/s}}``) and the client
  behaviour trace pickle (``{client_id: {"active": [s...], "inactive": [s...], "finish_time": s,
  ...}}``, availability repeating every ``finish_time``). As FedScale does, training costs three
  times the inference latency (forward + backward), the one bandwidth serves both directions, and
  a device is given the entry of position ``crc32(fl_id) mod len`` of the file's keys (stateless:
  the server and every engine agree without knowing the whole population).

Every problem with a file is one :class:`ProfileError` line naming the file, the device and the field.
"""
from __future__ import annotations

import json
import math
import pickle
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["DeviceProfile", "DeviceProfiles", "ProfileError", "POPULATIONS", "REALISTIC_POPULATION", "load_profiles",
           "read_fedscale_capacity", "read_fedscale_availability", "FEDSCALE_TRAIN_FACTOR"]

#: FedScale's training cost per sample as a multiple of its traced inference latency (forward + backward ≈ 3×)
FEDSCALE_TRAIN_FACTOR = 3.0


class ProfileError(ValueError):
    """A device profile that cannot be used; the message is one line naming file, device and field."""


@dataclass(frozen=True)
class Availability:
    """When a device is online: the intervals ``online`` (seconds, half-open ``[start, end)``, sorted,
    disjoint, within ``[0, period_s]``), repeating every ``period_s``."""

    period_s: float
    online: tuple[tuple[float, float], ...]

    def is_online(self, t_s: float) -> bool:
        phase = t_s % self.period_s
        return any(a <= phase < b for a, b in self.online)

    def next_online(self, t_s: float) -> float | None:
        """The first time >= ``t_s`` at which the device is online (None: never)."""
        if not self.online:
            return None
        base = math.floor(t_s / self.period_s) * self.period_s
        phase = t_s - base
        for a, b in self.online:
            if phase < b:
                return base + max(a, phase)
        return base + self.period_s + self.online[0][0]

    def online_until(self, t_s: float) -> float:
        """The end of the online session that contains ``t_s`` (``t_s`` itself when offline then;
        ``inf`` when always online). A session ending at the period's end and one starting at 0 are one."""
        if self.online == ((0.0, self.period_s),):
            return math.inf
        base = math.floor(t_s / self.period_s) * self.period_s
        phase = t_s - base
        for a, b in self.online:
            if a <= phase < b:
                if b >= self.period_s and self.online[0][0] <= 0.0:
                    return base + self.period_s + self.online[0][1]
                return base + b
        return t_s


@dataclass(frozen=True)
class DeviceProfile:
    """One device: training speed, link and availability. Times in ms, bandwidths in kbit/s
    (``math.inf``: the link costs nothing), ``availability`` None: always online."""

    ms_per_sample: float = 0.0
    download_kbps: float = math.inf
    upload_kbps: float = math.inf
    latency_ms: float = 0.0
    availability: Availability | None = None

    def train_ms(self, samples: int, epochs: int) -> float:
        """Local training time: ``ms_per_sample × samples × epochs``."""
        return self.ms_per_sample * samples * epochs

    def download_ms(self, nbytes: int) -> float:
        """``latency_ms + 8 × nbytes / 1000 / download_kbps`` (kbit/s = bits per ms)."""
        return self.latency_ms + (0.0 if math.isinf(self.download_kbps) else 8.0 * nbytes / self.download_kbps)

    def upload_ms(self, nbytes: int) -> float:
        """``latency_ms + 8 × nbytes / upload_kbps`` (ms; kbit/s = bits per ms)."""
        return self.latency_ms + (0.0 if math.isinf(self.upload_kbps) else 8.0 * nbytes / self.upload_kbps)


@dataclass(frozen=True)
class DeviceProfiles:
    """fl_id → :class:`DeviceProfile`: the named ones, else ``default``, else drawn by ``draw``."""

    name: str
    by_id: Mapping[str, DeviceProfile] = field(default_factory=dict)
    default: DeviceProfile | None = None
    seed: int = 0
    population: str | None = None  # a built-in population drawing the devices not named
    table: tuple[DeviceProfile, ...] = ()  # FedScale capacity rows: device fl_id takes row _entry(fl_id)
    sessions: tuple[Availability, ...] = ()  # FedScale availability rows, replacing the profiles' own

    def __getitem__(self, fl_id: str) -> DeviceProfile:
        found = self._base(fl_id)
        if self.sessions:
            found = replace(found, availability=self.sessions[_entry(fl_id, len(self.sessions))])
        return found

    def _base(self, fl_id: str) -> DeviceProfile:
        found = self.by_id.get(fl_id)
        if found is not None:
            return found
        if self.default is not None:
            return self.default
        if self.table:
            return self.table[_entry(fl_id, len(self.table))]
        if self.population is not None:
            return POPULATIONS[self.population](_rng(self.seed, fl_id))
        raise ProfileError(f"{self.name}: device {fl_id!r}: no profile (the file names no such device and has "
                           f"no \"default\")")

    @property
    def uniform(self) -> bool:
        """Every device equally fast, always online, free links (no simulated time passes)."""
        return self.population == "uniform" and not self.by_id and not self.sessions


def _rng(seed: int, fl_id: str) -> np.random.Generator:
    """A device's own generator: depends on (seed, fl_id) only."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(fl_id.encode())])


def _uniform(rng: np.random.Generator) -> DeviceProfile:
    return DeviceProfile()


def _mobile(rng: np.random.Generator) -> DeviceProfile:
    """The heterogeneous population; its numbers and their sources: docs/devices.md."""
    ms_per_sample = 5.0 * float(rng.lognormal(1.0, 0.6))  # FedScale's lognormal device speed × 5 ms/sample
    download = float(np.clip(rng.lognormal(math.log(20_000.0), 0.9), 500.0, 500_000.0))
    upload = float(np.clip(rng.lognormal(math.log(5_000.0), 0.9), 100.0, 200_000.0))
    latency = float(np.clip(rng.lognormal(math.log(60.0), 0.5), 5.0, 2_000.0))
    # one online session a day: starts at a uniform hour, lasts lognormal(median 2 h); 10% always online
    if rng.random() < 0.1:
        return DeviceProfile(ms_per_sample, download, upload, latency)
    start = float(rng.uniform(0.0, 86_400.0))
    length = float(np.clip(rng.lognormal(math.log(7_200.0), 0.8), 600.0, 43_200.0))
    end = start + length
    online = ((start, end),) if end <= 86_400.0 else ((0.0, end - 86_400.0), (start, 86_400.0))
    return DeviceProfile(ms_per_sample, download, upload, latency, Availability(86_400.0, online))


#: the built-in populations: name → how one device's profile is drawn from its generator
POPULATIONS = {"uniform": _uniform, "mobile": _mobile}
#: the population of ``pyflclient demo --realistic`` (heterogeneous speeds, links and availability)
REALISTIC_POPULATION = "mobile"


def load_profiles(spec: str | Path | None, seed: int = 0, *, availability: str | Path | None = None
                  ) -> DeviceProfiles:
    """The profiles named by ``spec``: a :data:`POPULATIONS` name, a JSON file, or a FedScale device
    capacity pickle; ``availability``, optional, is FedScale's behaviour trace (its sessions replace
    the profiles' own). None: ``uniform``."""
    if spec is None or str(spec) in POPULATIONS:
        name = "uniform" if spec is None else str(spec)
        profiles = DeviceProfiles(name, seed=seed, population=name)
        return profiles if availability is None else _with_fedscale_availability(profiles, availability)
    path = Path(spec)
    if not path.is_file():
        raise ProfileError(f"device_profiles {str(spec)!r}: no such file, nor one of the populations "
                           f"{sorted(POPULATIONS)}")
    raw = path.read_bytes()
    if raw[:1] in (b"{", b" ", b"\n"):
        profiles = _read_json(path, raw)
    else:
        capacity = read_fedscale_capacity(path)
        profiles = DeviceProfiles(str(path), seed=seed, table=tuple(capacity.values()))
    if availability is not None:
        profiles = _with_fedscale_availability(profiles, availability)
    return profiles


def _entry(fl_id: str, n: int) -> int:
    """The row of a FedScale file (of ``n`` rows) that device ``fl_id`` takes."""
    return zlib.crc32(fl_id.encode()) % n


def _number(where: str, device: str, name: str, value: Any, *, allow_inf: bool = False, positive: bool = False
            ) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    x = float(value) if ok else math.nan
    if not ok or math.isnan(x) or (math.isinf(x) and not allow_inf) or x < 0 or (positive and x == 0):
        rule = "> 0" if positive else ">= 0"
        raise ProfileError(f"{where}: device {device!r}: field {name!r} must be a number {rule}, got {value!r}")
    return x


def _profile_from(where: str, device: str, row: Any) -> DeviceProfile:
    if not isinstance(row, Mapping):
        raise ProfileError(f"{where}: device {device!r}: expected an object of fields, got {type(row).__name__}")
    known = {"ms_per_sample", "speed_factor", "download_kbps", "upload_kbps", "latency_ms", "availability"}
    extra = sorted(set(row) - known)
    if extra:
        raise ProfileError(f"{where}: device {device!r}: unknown field {extra[0]!r} (known: {sorted(known)})")
    ms = _number(where, device, "ms_per_sample", row.get("ms_per_sample", 0.0))
    if "speed_factor" in row:  # a factor on a reference device's ms_per_sample (given as ms_per_sample)
        ms *= _number(where, device, "speed_factor", row["speed_factor"], positive=True)
    avail = None
    if row.get("availability") is not None:
        a = row["availability"]
        if not isinstance(a, Mapping) or "online" not in a:
            raise ProfileError(f"{where}: device {device!r}: field 'availability' must be "
                               f"{{\"period_s\": .., \"online\": [[start_s, end_s], ...]}}")
        period = _number(where, device, "availability.period_s", a.get("period_s", 86_400.0), positive=True)
        avail = _availability(where, device, "availability.online", period, a["online"])
    return DeviceProfile(ms, _number(where, device, "download_kbps", row.get("download_kbps", math.inf),
                                     allow_inf=True, positive=True),
                         _number(where, device, "upload_kbps", row.get("upload_kbps", math.inf), allow_inf=True,
                                 positive=True),
                         _number(where, device, "latency_ms", row.get("latency_ms", 0.0)), avail)


def _availability(where: str, device: str, name: str, period: float, pairs: Any) -> Availability:
    try:
        spans = [(float(a), float(b)) for a, b in pairs]
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: device {device!r}: field {name!r} must be a list of [start_s, end_s] pairs, "
                           f"got {pairs!r}"[:300]) from None
    last = -math.inf
    for a, b in spans:
        if not (0.0 <= a < b <= period) or a < last:
            raise ProfileError(f"{where}: device {device!r}: field {name!r}: [{a}, {b}] must satisfy 0 <= start < end "
                               f"<= period {period} and come after the previous session (ends {last})")
        last = b
    return Availability(period, tuple(spans))


def _read_json(path: Path, raw: bytes) -> DeviceProfiles:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ProfileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("devices", {}), Mapping):
        raise ProfileError(f"{path}: expected {{\"devices\": {{fl_id: {{...}}}}, \"default\": {{...}}}}")
    by_id = {str(k): _profile_from(str(path), str(k), v) for k, v in doc.get("devices", {}).items()}
    default = _profile_from(str(path), "default", doc["default"]) if doc.get("default") is not None else None
    return DeviceProfiles(str(path), by_id, default)


def _unpickle(path: Path, what: str) -> Mapping[Any, Any]:
    try:
        with open(path, "rb") as f:
            doc = pickle.load(f)  # FedScale's own format; only open trace files you trust
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is one line
        raise ProfileError(f"{path}: not a FedScale {what} pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, Mapping) or not doc:
        raise ProfileError(f"{path}: a FedScale {what} file is a non-empty dict {{client_id: {{...}}}}, got "
                           f"{type(doc).__name__}")
    return doc


def read_fedscale_capacity(path: str | Path) -> dict[Any, DeviceProfile]:
    """FedScale's device capacity file: ``{client_id: {"computation": inference ms per sample,
    "communication": kbit/s}}`` → profiles (training = :data:`FEDSCALE_TRAIN_FACTOR` × inference; the
    one bandwidth both ways; no latency), in the file's key order."""
    path = Path(path)
    out: dict[Any, DeviceProfile] = {}
    for key, row in _unpickle(path, "device capacity").items():
        if not isinstance(row, Mapping):
            raise ProfileError(f"{path}: device {str(key)!r}: expected {{'computation': .., 'communication': ..}}")
        for name in ("computation", "communication"):
            if name not in row:
                raise ProfileError(f"{path}: device {str(key)!r}: field {name!r} is missing")
        comp = _number(str(path), str(key), "computation", row["computation"])
        comm = _number(str(path), str(key), "communication", row["communication"], positive=True)
        out[key] = DeviceProfile(FEDSCALE_TRAIN_FACTOR * comp, comm, comm, 0.0)
    return out


def read_fedscale_availability(path: str | Path) -> dict[Any, Availability]:
    """FedScale's client behaviour trace: ``{client_id: {"active": [s, ...], "inactive": [s, ...],
    "finish_time": s}}``: online from ``active[i]`` to ``inactive[i]``, repeating every ``finish_time``."""
    path = Path(path)
    out: dict[Any, Availability] = {}
    for key, row in _unpickle(path, "availability trace").items():
        if not isinstance(row, Mapping):
            raise ProfileError(f"{path}: device {str(key)!r}: expected {{'active': [..], 'inactive': [..], "
                               f"'finish_time': ..}}")
        for name in ("active", "inactive", "finish_time"):
            if name not in row:
                raise ProfileError(f"{path}: device {str(key)!r}: field {name!r} is missing")
        period = _number(str(path), str(key), "finish_time", row["finish_time"], positive=True)
        active, inactive = list(row["active"]), list(row["inactive"])
        if len(active) != len(inactive):
            raise ProfileError(f"{path}: device {str(key)!r}: field 'inactive' has {len(inactive)} entries, 'active' "
                               f"{len(active)}")
        spans = []
        for a, b in zip(active, inactive):
            a = _number(str(path), str(key), "active", a)
            b = min(_number(str(path), str(key), "inactive", b), period)
            if a < b:  # the traces hold some empty sessions (active == inactive): nothing online
                spans.append((a, b))
        out[key] = _availability(str(path), str(key), "active/inactive", period, spans)
    return out


def _with_fedscale_availability(profiles: DeviceProfiles, trace: str | Path) -> DeviceProfiles:
    sessions = tuple(read_fedscale_availability(trace).values())
    return replace(profiles, name=f"{profiles.name}+{trace}", sessions=sessions)
