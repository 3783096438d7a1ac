"""What a process started from the TUI leaves in the runs directory: its launch files (dot-names, so
never listed as runs) and the run or sweep it creates, which its parent waits for.

    runs/.launch-<stamp>.toml         the launch form's defaults, written out for `rnnlab sweep`
    runs/.launch-<stamp>[-sweep].log  the output of a run or sweep the launch form started
    runs/.reproduce-<study>-<size>.log  the output of `rnnlab reproduce` started by the Studies screen
"""

from __future__ import annotations

import time
from pathlib import Path

from .files import atomic_write
from .runs import RunDir, is_run_dir
from .sweeps import SweepDir, list_sweeps


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _runs_dir(runs_dir: Path) -> Path:
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    return runs_dir


def write_launch_preset(runs_dir: Path, toml_text: str) -> Path:
    """The launch form's config as a file (`rnnlab sweep` needs one): runs/.launch-<stamp>.toml."""
    path = _runs_dir(runs_dir) / f".launch-{_stamp()}.toml"
    atomic_write(path, toml_text.encode())
    return path


def launch_log(runs_dir: Path, sweep: bool = False) -> Path:
    """Where a run (or sweep) started by the launch form writes its output: runs/.launch-<stamp>[-sweep].log."""
    return _runs_dir(runs_dir) / f".launch-{_stamp()}{'-sweep' * sweep}.log"


def reproduce_log(runs_dir: Path, study: str, size: str) -> Path:
    """Where `rnnlab reproduce` started by the Studies screen writes its output (one per study and size)."""
    return _runs_dir(runs_dir) / f".reproduce-{study}-{size}.log"


def entry_names(runs_dir: Path) -> set[str]:
    """The names in the runs directory now (none if it does not exist yet): `find_new_run`'s `before`."""
    runs_dir = Path(runs_dir)
    return {path.name for path in runs_dir.iterdir()} if runs_dir.is_dir() else set()


def find_new_run(runs_dir: Path, before: set[str], process, timeout: float = 60.0) -> RunDir | None:
    """Wait for the run directory a just-started child (`process`: a Popen) creates, with its status.json
    (None if the child exits first, e.g. a config error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [RunDir(path) for path in map(Path(runs_dir).joinpath, entry_names(runs_dir) - before)
               if is_run_dir(path)]
        if new and new[0].status_path.exists():
            return new[0]
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def find_new_sweep(runs_dir: Path, before: set[str], process, timeout: float = 60.0) -> SweepDir | None:
    """Wait for the sweep record a just-started `rnnlab sweep` creates (None if it exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [sweep for sweep in list_sweeps(runs_dir) if sweep.id not in before]
        if new:
            return new[0]
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None
