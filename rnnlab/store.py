"""Contract 2: the run directory. The only module that reads or writes one.

    runs/<run-id>/
      config.toml      the resolved config
      status.json      state, pid, host, device, versions, step, times, error
      events.jsonl     append-only, one JSON object per line
      checkpoints/     last.pt, best.pt (written by rnnlab.train.checkpoint
                       through `atomic_write`)
    runs/sweeps/<sweep-id>/sweep.json   a sweep's record: its spec and trials
                       (no status.json or config.toml there: never a run dir)
    runs/studies/<study>-<size>/        study.json (its sweep's id), experiment.toml, result.json

A run id is `YYYYMMDD-HHMMSS-<name>-<4 hex>`, created with an exclusive
mkdir so concurrent starts never share a directory. See docs/run-directory.md.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptRun, RunNotFound, SweepNotFound
from .literal import visible

STATES = ("running", "finished", "stopped", "diverged", "failed", "crashed")
CONFIG, STATUS, EVENTS, CHECKPOINTS = "config.toml", "status.json", "events.jsonl", "checkpoints"


# The types of the status fields rnnlab acts on (None is allowed for each: unknown yet)
STATUS_TYPES = {"state": (str,), "pid": (int,), "pid_start": (str,), "host": (str,), "step": (int,),
                "total_steps": (int,), "started": (int, float), "elapsed": (int, float),
                "best_val": (int, float), "error": (str,)}


def default_runs_dir() -> Path:
    return Path(os.environ.get("RNNLAB_RUNS_DIR", "runs"))


def safe_name(name: str) -> str:
    """A config name as it may appear in a path: lowercase [a-z0-9-], at most 40 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:40].strip("-") or "run"


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell a live run from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the "(comm)" field


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    if isinstance(pid, bool) or pid <= 0:
        return False  # os.kill(0 or -1, 0) would probe a process group / every process and succeed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    if start_time is not None:
        current = process_start_time(pid)
        return current is None or current == start_time
    return True


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name

    config_path = property(lambda self: self.path / CONFIG)
    status_path = property(lambda self: self.path / STATUS)
    events_path = property(lambda self: self.path / EVENTS)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)

    def checkpoint(self, which: str) -> Path:
        return self.checkpoints / f"{which}.pt"

    # -- status ----------------------------------------------------------------
    def write_status(self, status: dict) -> None:
        atomic_write(self.status_path, (json.dumps(status, indent=1) + "\n").encode())

    def update_status(self, **fields) -> dict:
        status = self.read_status_raw()
        status.update(fields)
        self.write_status(status)
        return status

    def read_status_raw(self) -> dict:
        status = json.loads(self.status_path.read_text())
        if not isinstance(status, dict):
            raise ValueError(f"{STATUS} holds {type(status).__name__}, not an object")
        return status

    def read_status(self) -> dict:
        """The status with `crashed` inferred: 'running' here but its process is gone."""
        status = self.read_status_raw()
        if status.get("state") == "running" and status.get("host") == socket.gethostname():
            pid = status.get("pid")
            if not isinstance(pid, int) or not pid_alive(pid, status.get("pid_start")):
                status["state"] = "crashed"
                status["error"] = status.get("error") or "the trainer process is gone (killed or crashed)"
        return status

    def checked_status(self) -> dict:
        """`read_status` for a command that acts on the run (resume): every field it may use has the type
        rnnlab writes, or one CorruptRun line names the file and the field. (Listings and the live view
        read odd statuses leniently and flag them instead.)"""
        try:
            status = self.read_status()
        except ValueError as error:  # not JSON, not UTF-8, not an object
            raise CorruptRun(f"{self.status_path}: unreadable ({visible(str(error))[:200]})") from None
        except OSError as error:  # missing (a run not started yet), or not readable
            raise CorruptRun(f"{self.status_path}: {error.strerror or error.__class__.__name__}") from None
        for key, kinds in STATUS_TYPES.items():
            value = status.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise CorruptRun(f"{self.status_path}: {key} is {visible(repr(value))[:80]}, not "
                                 f"{' or '.join(kind.__name__ for kind in kinds)}")
        if status.get("state") not in STATES:
            raise CorruptRun(f"{self.status_path}: state is {visible(repr(status.get('state')))[:80]}, "
                             f"not one of {', '.join(STATES)}")
        return status

    def is_live(self) -> bool:
        try:
            return self.read_status().get("state") == "running"
        except (OSError, ValueError):
            return False

    # -- events ----------------------------------------------------------------
    def version(self) -> tuple:
        """Changes whenever status.json is rewritten or events.jsonl grows: a reader's cache key."""
        def stamp(path: Path):
            try:
                info = path.stat()
            except OSError:
                return None
            return info.st_mtime_ns, info.st_size
        return stamp(self.status_path), stamp(self.events_path)

    def event_writer(self) -> EventWriter:
        return EventWriter(self.events_path)

    def event_reader(self, offset: int = 0) -> EventReader:
        return EventReader(self.events_path, offset)

    def read_events(self) -> list[dict]:
        """Every complete event, with history replaced after a resume (see `history`)."""
        return history(self.event_reader().read_new())


class EventWriter:
    """Appends one JSON object per line, flushed at once so readers tail it live.

    A log that ends without its newline was cut mid-write (a killed trainer):
    the writer first ends that line, so its own first event is not glued onto
    it. The cut line becomes one complete corrupt line that readers skip.
    """

    def __init__(self, path: Path):
        self.handle = open(path, "a", encoding="utf-8")
        if _ends_mid_line(Path(path)):
            self.handle.write("\n")
            self.handle.flush()

    def write(self, event: dict) -> None:
        self.handle.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _ends_mid_line(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


class EventReader:
    """Tails events.jsonl from a byte offset; never re-reads what it has read.

    A last line without its newline (a writer mid-write, or killed) is left for
    the next call; a complete line that is not valid JSON is skipped and counted.
    """

    def __init__(self, path: Path, offset: int = 0):
        self.path, self.offset, self.skipped = Path(path), offset, 0

    def read_new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # only whole lines
        events = []
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                self.skipped += 1
                continue
            if isinstance(event, dict) and "kind" in event:
                events.append(event)
            else:
                self.skipped += 1
        self.offset += end
        return events


def history(events: list[dict]) -> list[dict]:
    """Apply `resume` events: a run resumed from step N drops the events it wrote after N.

    (A trainer killed after its last checkpoint wrote steps that the resumed run
    writes again; the curve must show them once.)
    """
    out: list[dict] = []
    for event in events:
        if event["kind"] == "resume":
            step = event.get("step", 0)
            out = [e for e in out if e.get("step", 0) <= step and e["kind"] != "end"]
        out.append(event)
    return out


# -- creating, finding, listing ---------------------------------------------------
def create_run(runs_dir: Path, name: str, now: float | None = None, config_text: str | None = None) -> RunDir:
    """A new run directory, with its config.toml when `config_text` is given.

    If that first write fails (a full disk), the directory is removed again: it held nothing, and an
    empty folder in the runs directory would only be listed as a broken run.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for _ in range(100):
        path = runs_dir / f"{stamp}-{safe_name(name)}-{secrets.token_hex(2)}"
        try:
            path.mkdir()  # exclusive: two starters can never get the same directory
        except FileExistsError:
            continue
        run = RunDir(path)
        try:
            (path / CHECKPOINTS).mkdir()
            if config_text is not None:
                atomic_write(run.config_path, config_text.encode())
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return run
    raise RuntimeError(f"could not create a unique run directory in {runs_dir}")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / STATUS).exists() or (path / CONFIG).exists())


def find_run(runs_dir: Path, ref: str) -> RunDir:
    """RUN as a path, a full id, a unique id prefix, or else the unique run of that name (the config's
    `name` in its status, or the name part of its id: `seq2seq-reverse` for 20261122-142501-seq2seq-reverse-3f9a).

    Messages show every id and name literally (`visible`): a directory name may hold escape sequences.
    """
    as_path = Path(ref)
    if (os.sep in ref or ref.startswith(".")) and is_run_dir(as_path):
        return RunDir(as_path)
    runs_dir = Path(runs_dir)
    if is_run_dir(runs_dir / ref):
        return RunDir(runs_dir / ref)
    if is_run_dir(as_path):
        return RunDir(as_path)
    def names(path: Path) -> set[str]:
        """What a run answers to besides its id: the name part of the id, and its config name."""
        found = set()
        match = re.match(r"^\d{8}-\d{6}-(.+)-[0-9a-f]{4}$", path.name)
        if match:
            found.add(match.group(1))
        try:
            name = RunDir(path).read_status_raw().get("name")
        except (OSError, ValueError):
            name = None
        if isinstance(name, str) and name:
            found.add(name)
        return found

    paths = _run_paths(runs_dir) if ref else []
    matches, how = [p for p in paths if p.name.startswith(ref)], "matches"
    if not matches:
        matches, how = [p for p in paths if ref in names(p)], "names"
    if len(matches) == 1:
        return RunDir(matches[0])
    from .literal import visible  # here, not at the top: this function is all of store.py this change touches

    shown = visible(repr(ref))
    if not matches:
        raise RunNotFound(f"no run matches {shown} in {visible(runs_dir)} (try `rnnlab runs ls`)")
    candidates = ", ".join(f"{visible(s.id)} ({visible(s.state)})" for s in map(summarize, matches[:5]))
    more = ", ..." if len(matches) > 5 else ""
    raise RunNotFound(f"{shown} {how} {len(matches)} runs ({candidates}{more}); "
                      + ("give more of the id" if how == "matches" else "give its id"))


def _run_paths(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    return sorted((p for p in runs_dir.iterdir() if not p.name.startswith(".") and is_run_dir(p)),
                  key=lambda p: p.name)


@dataclass
class RunSummary:
    """One row of `rnnlab runs ls`; `problem` is set for an unreadable directory."""

    id: str
    path: Path
    name: str = ""
    arch: str = "?"
    task: str = "?"
    state: str = "corrupt"
    step: int = 0
    total_steps: int = 0
    best_val: float | None = None
    started: float | None = None
    duration: float | None = None
    problem: str | None = None
    sweep: str | None = None  # a sweep's trial: its sweep id (status.json `sweep`)


def summarize(path: Path) -> RunSummary:
    run = RunDir(path)
    summary = RunSummary(id=run.id, path=run.path)
    try:
        status = run.read_status()
    except (OSError, ValueError) as error:
        summary.problem = f"unreadable {STATUS}: {error.__class__.__name__}"
        return summary
    try:
        summary.name = str(status.get("name", ""))
        summary.arch, summary.task = str(status.get("arch", "?")), str(status.get("task", "?"))
        summary.state = str(status.get("state", "corrupt"))
        summary.step, summary.total_steps = int(status.get("step", 0)), int(status.get("total_steps", 0))
        summary.best_val = _number(status.get("best_val"))
        summary.sweep = status["sweep"] if isinstance(status.get("sweep"), str) else None
        summary.started = _number(status.get("started"))
        ended = _number(status.get("ended")) or (time.time() if summary.state == "running"
                                                 else _number(status.get("updated")))
        summary.duration = _number(status.get("elapsed")) or (ended - summary.started if ended and summary.started
                                                                else None)
    except (TypeError, ValueError) as error:  # a field of the wrong type: list it, flagged, never raise
        return RunSummary(id=run.id, path=run.path, problem=f"bad field in {STATUS}: {error}")
    return summary


def _number(value) -> float | None:
    """A float from a status field, or a TypeError that flags the run corrupt (never a crash later)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run directory, newest first; corrupt ones included and flagged."""
    # Start time first: ids of runs started in the same second do not sort by time.
    return sorted((summarize(p) for p in _run_paths(Path(runs_dir))),
                  key=lambda s: (s.started or 0.0, s.id), reverse=True)


def remove_run(run: RunDir) -> None:
    shutil.rmtree(run.path)


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
        if record.get("state") == "running" and isinstance(driver, dict) and driver.get("host") == socket.gethostname():
            pid = driver.get("pid")
            if not isinstance(pid, int) or not pid_alive(pid, driver.get("pid_start")):
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


# -- shipping a run directory between machines (the Ray backend, where nodes share no filesystem) --------
def pack_run(run: RunDir) -> bytes:
    """A run directory as tar bytes (gzip), its members named `<run-id>/...`."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run.path, arcname=run.id)
    return buffer.getvalue()


def unpack_run(runs_dir: Path, data: bytes, replace: bool = False) -> RunDir:
    """Unpack `pack_run` bytes into `runs_dir` as `<runs_dir>/<run-id>`, safely: one top folder with a
    run id's shape, only plain files and folders inside it (no absolute paths, `..`, links or devices).
    An existing run of that id is an error unless `replace` (a resumed trial coming back): then the
    new copy is unpacked beside it and swapped in by rename, so a failure leaves the old one whole."""
    import io
    import tarfile

    runs_dir = Path(runs_dir)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        members = tar.getmembers()
        tops = {Path(m.name).parts[0] if Path(m.name).parts else "" for m in members}
        if len(tops) != 1:
            raise CorruptRun(f"a shipped run directory holds {len(tops)} top-level entries, not one")
        [run_id] = tops
        if not re.fullmatch(r"[0-9]{8}-[0-9]{6}-[a-z0-9-]+-[0-9a-f]{4}", run_id):
            raise CorruptRun(f"a shipped run directory is named {visible(repr(run_id))[:80]}, not a run id")
        for member in members:
            parts = Path(member.name).parts
            if member.name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
                raise CorruptRun(f"shipped run {run_id}: refused member {visible(repr(member.name))[:120]}")
        target = runs_dir / run_id
        if target.exists() and not replace:
            raise CorruptRun(f"shipped run {run_id}: {visible(target)} already exists")
        runs_dir.mkdir(parents=True, exist_ok=True)
        incoming = runs_dir / f".incoming-{run_id}-{secrets.token_hex(3)}"
        incoming.mkdir()
        try:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: the same refusals, by tarfile itself
                tar.extractall(incoming, filter="data")
            else:
                tar.extractall(incoming)
            if target.exists():
                old = runs_dir / f".replaced-{run_id}-{secrets.token_hex(3)}"
                os.replace(target, old)
                os.replace(incoming / run_id, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(incoming / run_id, target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    return RunDir(target)


def write_probe(runs_dir: Path) -> tuple[str, str]:
    """A marker file in `runs_dir` (dot-named: never listed) that a worker on another machine reads to
    tell whether it sees this runs directory; returns (its absolute path, the token it holds)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    path = runs_dir.resolve() / f".rnnlab-probe-{token}"
    atomic_write(path, token.encode())
    return str(path), token


def remove_probe(path: str) -> None:
    Path(path).unlink(missing_ok=True)
