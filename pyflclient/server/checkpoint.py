"""Model files of the server: the initial model in, one checkpoint per iteration out.

Nothing is lost on a crash: the model of iteration *k* is written to
``iteration_<k>.npz`` (temp file, fsync, atomic rename, fsync of the folder) before
any device can download it, together with the job's state after *k* (the aggregator's
arrays and the early stop's, under the reserved names :data:`STATE_PREFIX` ``<key>``, in
their own dtypes) and, for the iteration that ended the job, :data:`JOB_FINISHED`; with its SHA-256 beside it in ``iteration_<k>.npz.sha256``
(``sha256sum`` format, so ``sha256sum -c`` checks it by hand), and ``metrics.jsonl``
gets one line per iteration. A server started on the same folder resumes at the
iteration after the newest *valid* checkpoint: one whose bytes do not match their
checksum or do not parse is set aside as ``<name>.corrupt-<timestamp>`` (with a
WARNING saying why) and the one before is used; the ``metrics.jsonl`` lines of the
iterations set aside are dropped, since they run again. A checkpoint without a ``.sha256``
(written before checksums, or by a crash between the two renames) is accepted when
it parses, and so is one whose ``.sha256`` is damaged (not a ``sha256sum`` line: the
sidecar is what broke, a WARNING says so and it is written anew). The initial model comes from a ``.npz`` (name → array) or from the
trainable weights of a ``.ms`` device model file.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["ModelFileError", "CorruptCheckpoint", "load_model", "Checkpoints", "STATE_PREFIX", "JOB_FINISHED"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^iteration_(\d+)\.npz$")
_CHECKSUM = re.compile(r"^([0-9a-f]{64}) [ *]?(\S+)$")
# what np.load raises on a damaged .npz: cut (EOFError, BadZipFile), bytes inserted (BadZipFile,
# ValueError), a member's CRC wrong (BadZipFile)
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError)
#: names of a checkpoint's entries that are not weights: the job's state (``<prefix><key>``), and a marker
#: present in the checkpoint of the iteration that ended the job (the last one, or an early stop)
RESERVED = "__pyflclient__/"
STATE_PREFIX = RESERVED + "state/"
JOB_FINISHED = RESERVED + "job_finished"


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; says which file and why."""


class CorruptCheckpoint(ModelFileError):
    """A checkpoint whose bytes differ from its checksum or do not parse as a model."""


def _read_npz(data: bytes | Path, dtype: type | None = np.float32) -> dict[str, np.ndarray]:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with np.load(source, allow_pickle=False) as npz:
        return {k: np.array(npz[k], dtype=dtype) for k in npz.files}


def load_model(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The initial global model: name → float32 array, from a dict, a ``.npz`` or a ``.ms`` file."""
    if isinstance(source, Mapping):
        model = {str(k): np.array(v, dtype=np.float32) for k, v in source.items()}
        origin = "the model dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file (give a .ms device model or a .npz of name -> array)")
        if path.suffix not in (".npz", ".ms"):
            raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; use .ms or .npz")
        try:
            if path.suffix == ".npz":
                model = _read_npz(path)
            else:
                from pyflclient.model import msfile  # the .ms reader; only needed for this path

                model = {k: np.array(v, dtype=np.float32) for k, v in msfile.trainable_weights(path).items()}
        except _UNREADABLE as exc:  # msfile's MsFormatError is a ValueError
            raise ModelFileError(f"{path}: cannot read it as a {path.suffix} model ({exc}); give a .ms device "
                                 f"model or a .npz of name -> array") from exc
        origin = str(path)
    if not model:
        raise ModelFileError(f"{origin}: holds no weights")
    for name, array in model.items():
        if not name:
            raise ModelFileError(f"{origin}: a weight has an empty name")
        if name.startswith(RESERVED):
            raise ModelFileError(f"{origin}: weight name {name!r} is reserved for the server's checkpoints "
                                 f"(names starting {RESERVED!r}); give the initial model, not a checkpoint")
        if array.size == 0 or not np.isfinite(array).all():
            raise ModelFileError(f"{origin}: weight {name!r} is empty or not finite")
    return model


def check_plan_batch(source: str | os.PathLike[str] | Mapping[str, Any], client_batch_size: int) -> None:
    """A ``.ms`` model's batch is fixed at export: a plan that says another is refused at start."""
    if isinstance(source, Mapping) or Path(source).suffix != ".ms":
        return
    from pyflclient.model import msfile

    exported = msfile.model_batch(source)
    if exported is not None and exported != client_batch_size:
        raise ModelFileError("client_batch_size: " + msfile.batch_mismatch(client_batch_size, exported,
                                                                            Path(source).name))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(folder: Path, final: Path, data: bytes) -> str:
    """``data`` in a fsynced temp file beside ``final``; returns its path (the caller renames it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


class Checkpoints:
    """One folder: ``iteration_000001.npz`` with ``iteration_000001.npz.sha256`` … and ``metrics.jsonl``."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFileError(f"checkpoint_dir {self.folder}: cannot use it as a folder "
                                 f"({exc.strerror or exc}); give a folder path") from exc
        self.metrics_path = self.folder / "metrics.jsonl"
        self._read: tuple[int, dict[str, np.ndarray], dict[str, np.ndarray], bool] | None = None  # the last one read

    def path(self, iteration: int) -> Path:
        return self.folder / f"iteration_{iteration:06d}.npz"

    @staticmethod
    def checksum_path(path: Path) -> Path:
        """``<name>.sha256`` beside a checkpoint: one ``sha256sum`` line, ``<64 hex>  <name>``."""
        return path.with_name(path.name + ".sha256")

    def save(self, iteration: int, model: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray] | None = None,
             job_finished: bool = False) -> Path:
        """Write the model of ``iteration``, the job's ``state`` after it (and whether the job ended with it)
        and its checksum atomically; returns its path.

        The ``.npz`` is renamed into place before its ``.sha256``: a crash between the two renames
        leaves a complete (fsynced) checkpoint without a checksum, which loads like an old one."""
        final = self.path(iteration)
        self._read = None
        buf = io.BytesIO()
        entries = {k: np.asarray(v, dtype=np.float32) for k, v in model.items()}
        entries.update({STATE_PREFIX + k: np.asarray(v) for k, v in (state or {}).items()})
        if job_finished:
            entries[JOB_FINISHED] = np.array(True)
        np.savez(buf, **entries)
        data = buf.getvalue()
        line = f"{hashlib.sha256(data).hexdigest()}  {final.name}\n".encode()
        tmp_model = _write_synced(self.folder, final, data)
        try:
            tmp_sum = _write_synced(self.folder, self.checksum_path(final), line)
        except BaseException:
            Path(tmp_model).unlink(missing_ok=True)
            raise
        try:
            os.replace(tmp_model, final)
            os.replace(tmp_sum, self.checksum_path(final))
        except BaseException:
            Path(tmp_model).unlink(missing_ok=True)
            Path(tmp_sum).unlink(missing_ok=True)
            raise
        _fsync_dir(self.folder)
        return final

    def iterations(self) -> list[int]:
        """Iterations with a checkpoint file (valid or not), ascending."""
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load(self, iteration: int) -> dict[str, np.ndarray] | None:
        """The model of ``iteration``, None if it has no checkpoint; :class:`CorruptCheckpoint` when its
        bytes differ from its ``.sha256`` or do not parse."""
        found = self._load(iteration)
        return None if found is None else found[0]

    def served(self, iteration: int) -> dict[str, np.ndarray] | None:
        """The model of ``iteration`` to serve once the store no longer keeps it: :meth:`load`, but a
        checkpoint damaged since it was written is logged and not served (None), not fatal."""
        try:
            return self.load(iteration)
        except CorruptCheckpoint as exc:
            log.warning("%s", exc)
            return None

    def state(self, iteration: int) -> dict[str, np.ndarray]:
        """The job's state saved with the model of ``iteration`` ({} without one, or without a checkpoint)."""
        found = self._load(iteration)
        return {} if found is None else found[1]

    def job_finished(self, iteration: int) -> bool:
        """The job ended with ``iteration`` (its checkpoint says so: the last iteration or an early stop)."""
        found = self._load(iteration)
        return found is not None and found[2]

    def _load(self, iteration: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool] | None:
        """(model, state, job finished) of ``iteration``'s checkpoint, checked; the last one read is kept."""
        if self._read is not None and self._read[0] == iteration:
            return self._read[1:]
        path = self.path(iteration)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptCheckpoint(f"{path}: unreadable ({exc.strerror or exc})") from exc
        expected = self._expected_sha256(path)
        if expected is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise CorruptCheckpoint(f"{path}: SHA-256 {actual[:12]}… differs from {expected[:12]}… in "
                                        f"{self.checksum_path(path).name} ({len(data)} bytes)")
        try:
            entries = _read_npz(data, dtype=None)
        except _UNREADABLE as exc:
            raise CorruptCheckpoint(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from exc
        model = {k: v.astype(np.float32) for k, v in entries.items() if not k.startswith(RESERVED)}
        state = {k[len(STATE_PREFIX):]: v for k, v in entries.items() if k.startswith(STATE_PREFIX)}
        if not model:
            raise CorruptCheckpoint(f"{path}: holds no weights")
        for name, array in model.items():
            if not np.isfinite(array).all():
                raise CorruptCheckpoint(f"{path}: weight {name!r} is not finite")
        self._read = (iteration, model, state, JOB_FINISHED in entries)
        return self._read[1:]

    def _expected_sha256(self, path: Path, *, quiet: bool = False) -> str | None:
        """The digest in ``path``'s sidecar; None without one, or (WARNING) when the sidecar itself is damaged
        (unreadable, not a ``sha256sum`` line): the checkpoint is then judged by parsing, as one written before
        checksums. A well-formed line naming another file is the checkpoint's fault: CorruptCheckpoint."""
        sidecar = self.checksum_path(path)
        try:
            text = sidecar.read_bytes().decode("ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            if not quiet:
                log.warning("%s: damaged (%s); ignored, %s is checked by parsing", sidecar, exc, path.name)
            return None
        m = _CHECKSUM.match(text)
        if m is None:
            if not quiet:
                log.warning("%s: damaged (not a sha256sum line); ignored, %s is checked by parsing", sidecar,
                            path.name)
            return None
        if m.group(2) != path.name:
            raise CorruptCheckpoint(f"{sidecar}: the sha256sum line of {m.group(2)}, not of {path.name}")
        return m.group(1)

    def _rewrite_checksum(self, path: Path) -> None:
        """A sidecar written anew for the checkpoint's bytes (which parsed), when it was missing its line."""
        sidecar = self.checksum_path(path)
        line = f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n".encode()
        os.replace(_write_synced(self.folder, sidecar, line), sidecar)
        _fsync_dir(self.folder)

    def _drop_metrics_after(self, iteration: int) -> None:
        """Drop the metrics.jsonl lines of iterations after ``iteration`` (set aside, so run again): each
        iteration keeps one line."""
        if not self.metrics_path.exists():
            return
        kept, dropped = [], 0
        for line in self.metrics_path.read_text().splitlines(keepends=True):
            try:
                later = int(json.loads(line)["iteration"]) > iteration
            except (ValueError, KeyError, TypeError):
                later = False  # an unreadable line is left as it is (read_metrics skips it)
            dropped += later
            if not later:
                kept.append(line)
        if dropped:
            tmp = _write_synced(self.folder, self.metrics_path, "".join(kept).encode())
            os.replace(tmp, self.metrics_path)
            _fsync_dir(self.folder)
            log.info("%s: %d line(s) of iterations after %d dropped (they run again)", self.metrics_path,
                     dropped, iteration)

    def set_aside(self, iteration: int, reason: str) -> Path:
        """Rename a corrupt checkpoint (and its ``.sha256``) to ``<name>.corrupt-<timestamp>``."""
        path = self.path(iteration)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, aside)
        checksum = self.checksum_path(path)
        if checksum.exists():
            os.replace(checksum, checksum.with_name(f"{checksum.name}.corrupt-{stamp}"))
        _fsync_dir(self.folder)
        log.warning("checkpoint of iteration %d set aside as %s: %s", iteration, aside.name, reason)
        return aside

    def latest(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """The newest valid checkpoint (iteration, model), or None for a folder without checkpoints.

        Newer corrupt ones are set aside (renamed, WARNING logged); when none is valid nothing is
        renamed and :class:`CorruptCheckpoint` says so, naming each file and its fault."""
        its = self.iterations()
        faults: list[tuple[int, str]] = []
        for iteration in reversed(its):
            try:
                model = self.load(iteration)
            except CorruptCheckpoint as exc:
                faults.append((iteration, str(exc)))
                continue
            assert model is not None
            sidecar = self.checksum_path(self.path(iteration))
            if not sidecar.exists():
                log.info("%s has no .sha256 (written before checksums): accepted because it parses",
                         self.path(iteration))
            elif self._expected_sha256(self.path(iteration), quiet=True) is None:  # damaged; the checkpoint parsed
                self._rewrite_checksum(self.path(iteration))
            for bad, reason in faults:
                self.set_aside(bad, reason)
            if faults:
                self._drop_metrics_after(iteration)
            return iteration, model
        if faults:
            raise CorruptCheckpoint(f"no valid checkpoint in {self.folder} ({len(faults)} corrupt, newest: "
                                    f"{faults[0][1]}); restore one or move the folder away to start over")
        return None

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(dict(record), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash: the checkpoint is what counts
                log.warning("%s: skipping an unreadable line", self.metrics_path)
        return out
