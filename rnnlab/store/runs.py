"""Run directories: one run's files (RunDir), its event log (EventWriter, EventReader), and creating,
finding and listing runs."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptRun, RunNotFound
from ..literal import visible
from ..worker import is_gone
from .files import ACTIVATIONS, CHECKPOINTS, CONFIG, EVENTS, RESUME_LOG, STATES, STATUS, atomic_write, safe_name
from .status import STATUS_TYPES, Status
from .labels import LABELS, read_labels


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name

    config_path = property(lambda self: self.path / CONFIG)
    status_path = property(lambda self: self.path / STATUS)
    events_path = property(lambda self: self.path / EVENTS)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    resume_log_path = property(lambda self: self.path / RESUME_LOG)  # the TUI's continue key: the trainer's output

    def checkpoint(self, which: str) -> Path:
        return self.checkpoints / f"{which}.pt"

    def write_activations(self, name: str, data: bytes) -> Path:
        """activations/<name>.pt (name made path-safe by `safe_name`), written atomically."""
        folder = self.path / ACTIVATIONS
        folder.mkdir(exist_ok=True)
        path = folder / f"{safe_name(name)}.pt"
        atomic_write(path, data)
        return path

    def write_config(self, text: str) -> None:
        """config.toml: the resolved config (on creation, and rewritten by a resume with its overrides)."""
        atomic_write(self.config_path, text.encode())

    # -- status ----------------------------------------------------------------
    def write_status(self, status: Status) -> None:
        atomic_write(self.status_path, (json.dumps(status, indent=1) + "\n").encode())

    def update_status(self, **fields) -> Status:
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
        if status.get("state") == "running" and is_gone(status):
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
                run.write_config(config_text)
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
    tags: tuple[str, ...] = ()  # the user's (labels.json)
    note: str = ""


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
    try:
        labels = read_labels(run.path)
        summary.tags, summary.note = labels.tags, labels.note
    except CorruptRun:  # listed without its labels; `rnnlab runs tag` says what is wrong with the file
        pass
    return summary


def _number(value) -> float | None:
    """A float from a status field, or a TypeError that flags the run corrupt (never a crash later)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def list_runs(runs_dir: Path, cache: dict | None = None) -> list[RunSummary]:
    """Every run directory, newest first; corrupt ones included and flagged.

    `cache` (path -> (stamp, summary)) is for a caller that lists again and again (the runs browser, every
    2 s): a run whose status.json and labels.json are the same files as last time is not read again (with
    10,000 runs, a refresh costs their stats, not their JSON). A running run is always read: its duration
    grows, and its pid may have died since."""
    paths = _run_paths(Path(runs_dir))
    if cache is None:
        summaries = [summarize(p) for p in paths]
    else:
        summaries = []
        for path in paths:
            stamp, known = _stamp(path), cache.get(path)
            if known is None or known[0] != stamp or known[1].state == "running":
                known = cache[path] = (stamp, summarize(path))
            summaries.append(known[1])
        for gone in set(cache) - set(paths):
            del cache[gone]
    # Start time first: ids of runs started in the same second do not sort by time.
    return sorted(summaries, key=lambda s: (s.started or 0.0, s.id), reverse=True)


def _stamp(path: Path) -> tuple:
    """What changes when a run's listed files do: each one's inode, size and mtime (an atomic write is a new
    inode), or None while it is absent."""
    def stat(name: str):
        try:
            info = os.stat(path / name)
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns
    return stat(STATUS), stat(LABELS)


def remove_run(run: RunDir, ignore_errors: bool = False) -> None:
    """The whole run directory (`runs rm`; a Ray actor's temporary copy once shipped, ignore_errors)."""
    shutil.rmtree(run.path, ignore_errors=ignore_errors)
