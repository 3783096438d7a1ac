"""The run directory's ground rules: its file names and states, safe names, atomic writes, live pids."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path


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
