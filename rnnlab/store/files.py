"""The run directory's ground rules: its file names and states, safe names, atomic writes. (Whether a
recorded pid is alive is a process rule: rnnlab.worker.)"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path


STATES = ("running", "finished", "stopped", "diverged", "failed", "crashed")
CONFIG, STATUS, EVENTS, CHECKPOINTS = "config.toml", "status.json", "events.jsonl", "checkpoints"
RESUME_LOG = "resume.log"  # the output of a trainer the TUI's continue key started
ACTIVATIONS = "activations"  # `rnnlab activations` records, one .pt per request


def default_runs_dir() -> Path:
    return Path(os.environ.get("RNNLAB_RUNS_DIR", "runs"))


def safe_name(name: str) -> str:
    """A name (a config's, an activations record's) as it may appear in a path: lowercase [a-z0-9-],
    at most 40 chars."""
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
