"""The records beside the runs: a sweep's (runs/sweeps/<id>/sweep.json) and a study's
(runs/studies/<study>-<size>/)."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

from ..errors import CorruptRun, SweepNotFound
from ..literal import visible
from ..worker import is_gone
from .files import atomic_write, safe_name
from .runs import RunDir, _run_paths


# -- sweeps -------------------------------------------------------------------------
SWEEPS, SWEEP_RECORD = "sweeps", "sweep.json"


class SweepDir:
    """A sweep's record, runs/sweeps/<sweep-id>/sweep.json, owned by the sweep driver (rnnlab/sweeps/).

    Its trials are ordinary run directories beside every other run; each trial's status.json names
    its sweep (`sweep`) and its trial key (`trial`), so a trial can be found even when the driver was
    killed between creating the run and recording its id."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name

    record_path = property(lambda self: self.path / SWEEP_RECORD)
    runs_dir = property(lambda self: self.path.parent.parent)

    def read(self) -> dict:
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CorruptRun(f"{visible(self.record_path)}: unreadable "
                             f"({visible(getattr(error, 'strerror', None) or str(error))[:200]})") from None
        if not isinstance(record, dict) or not isinstance(record.get("trials"), list):
            raise CorruptRun(f"{visible(self.record_path)}: not a sweep record (no trials list)")
        driver = record.get("driver")
        if record.get("state") == "running" and isinstance(driver, dict) and is_gone(driver):
            record["state"] = "crashed"  # never written, as for runs: its driver is gone
        return record

    def write(self, record: dict) -> None:
        atomic_write(self.record_path, (json.dumps(record, indent=1) + "\n").encode())

    def trial_runs(self) -> dict[str, list[RunDir]]:
        """trial key -> the run directories whose status.json says they belong to this sweep."""
        found: dict[str, list[RunDir]] = {}
        for path in _run_paths(self.runs_dir):
            try:
                status = RunDir(path).read_status_raw()
            except (OSError, ValueError):
                continue
            if status.get("sweep") == self.id and isinstance(status.get("trial"), str):
                found.setdefault(status["trial"], []).append(RunDir(path))
        return found


def create_sweep(runs_dir: Path, name: str, record: dict, now: float | None = None) -> SweepDir:
    """A new sweep record with an id like a run's (`YYYYMMDD-HHMMSS-<name>-<4 hex>`), made by exclusive mkdir."""
    root = Path(runs_dir) / SWEEPS
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for _ in range(100):
        path = root / f"{stamp}-{safe_name(name)}-{secrets.token_hex(2)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        sweep = SweepDir(path)
        record["id"] = sweep.id
        try:
            sweep.write(record)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return sweep
    raise RuntimeError(f"could not create a unique sweep directory in {root}")


def _sweep_paths(runs_dir: Path) -> list[Path]:
    root = Path(runs_dir) / SWEEPS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if not p.name.startswith(".") and (p / SWEEP_RECORD).is_file()),
                  key=lambda p: p.name)


def list_sweeps(runs_dir: Path) -> list[SweepDir]:
    """Every sweep record, newest id first."""
    return [SweepDir(p) for p in reversed(_sweep_paths(runs_dir))]


def find_sweep(runs_dir: Path, ref: str) -> SweepDir:
    """SWEEP as a path to its folder, a full id, or a unique id prefix."""
    as_path = Path(ref)
    if (as_path / SWEEP_RECORD).is_file():
        return SweepDir(as_path)
    paths = _sweep_paths(runs_dir) if ref else []
    exact = [p for p in paths if p.name == ref]
    matches = exact or [p for p in paths if p.name.startswith(ref)]
    if len(matches) == 1:
        return SweepDir(matches[0])
    shown = visible(repr(ref))
    if not matches:
        raise SweepNotFound(f"no sweep matches {shown} in {visible(Path(runs_dir) / SWEEPS)} (try `rnnlab sweep ls`)")
    ids = ", ".join(visible(p.name) for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise SweepNotFound(f"{shown} matches {len(matches)} sweeps ({ids}); give more of the id")


# -- studies ------------------------------------------------------------------------
STUDIES, STUDY_RECORD, STUDY_RESULT, STUDY_FILE = "studies", "study.json", "result.json", "experiment.toml"


class StudyDir:
    """runs/studies/<study>-<size>/: which sweep a study's size runs (study.json: its id and the
    fingerprint of what it runs), the experiment file that sweep was made from, and the last verdict
    (result.json), owned by rnnlab/studies/. No status.json or config.toml: never a run dir."""

    def __init__(self, runs_dir: Path, name: str, size: str):
        self.path = Path(runs_dir) / STUDIES / f"{safe_name(name)}-{size}"
        self.runs_dir = Path(runs_dir)

    experiment_path = property(lambda self: self.path / STUDY_FILE)

    def _read(self, name: str) -> dict | None:
        try:
            data = json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise CorruptRun(f"{visible(self.path / name)}: unreadable ({visible(str(error))[:200]})") from None
        return data if isinstance(data, dict) else None

    def _write(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / name, data)

    def read_record(self) -> dict | None:
        return self._read(STUDY_RECORD)

    def write_record(self, record: dict) -> None:
        self._write(STUDY_RECORD, (json.dumps(record, indent=1) + "\n").encode())

    def read_result(self) -> dict | None:
        return self._read(STUDY_RESULT)

    def write_result(self, result: dict) -> None:
        self._write(STUDY_RESULT, (json.dumps(result, indent=1) + "\n").encode())

    def write_experiment(self, text: str) -> Path:
        self._write(STUDY_FILE, text.encode())
        return self.experiment_path
