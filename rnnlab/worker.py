"""Contract 3: a run as a child process (what the TUI uses to launch and stop runs).

The child is the very same `rnnlab run` a user types, in its own process
group so a Ctrl-C in the parent's terminal does not reach it by accident;
stopping sends SIGINT, and the trainer finishes its step, checkpoints and
records `stopped`. Everything else is learnt from the run directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .store import RunDir, SweepDir, is_run_dir, list_sweeps


def run_command(config: Path | None, overrides: list[str] = (), resume: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "rnnlab", "run", "--quiet"]
    if resume is not None:
        command += ["--resume", resume]
    elif config is not None:
        command.append(str(config))
    for text in overrides:
        command += ["--set", text]
    return command


def start(runs_dir: Path, config: Path | None = None, overrides: list[str] = (), resume: str | None = None,
          log: Path | None = None) -> subprocess.Popen:
    """Start `rnnlab run` in its own process group; stdout/stderr go to `log` (or are dropped)."""
    return _spawn(run_command(config, overrides, resume), runs_dir, log)


def sweep_command(config: Path, sweeps: list[str] = (), overrides: list[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "rnnlab", "sweep", str(config), "--quiet"]
    for text in sweeps:
        command += ["--sweep", text]
    for text in overrides:
        command += ["--set", text]
    return command


def start_sweep(runs_dir: Path, config: Path, sweeps: list[str] = (), overrides: list[str] = (),
                log: Path | None = None) -> subprocess.Popen:
    """Start `rnnlab sweep` (the driver and, under it, its workers) in its own process group, like `start`:
    `stop(pid)` sends the group SIGINT, which stops every trial cleanly."""
    return _spawn(sweep_command(config, sweeps, overrides), runs_dir, log)


def reproduce_command(name: str, size: str = "quick", studies: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "rnnlab", "reproduce", name, f"--{size}"]
    return command + (["--studies", str(studies)] if studies is not None else [])


def start_reproduce(runs_dir: Path, name: str, size: str = "quick", studies: Path | None = None,
                    log: Path | None = None) -> subprocess.Popen:
    """Start `rnnlab reproduce NAME` (its sweep driver and workers) in its own process group, like a sweep."""
    return _spawn(reproduce_command(name, size, studies), runs_dir, log)


def _spawn(command: list[str], runs_dir: Path, log: Path | None) -> subprocess.Popen:
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(command + ["--runs-dir", str(runs_dir)], stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=sink, start_new_session=True)
    finally:
        if log is not None:
            sink.close()


def find_new_sweep(runs_dir: Path, before: set[str], process: subprocess.Popen,
                   timeout: float = 60.0) -> SweepDir | None:
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


def find_new_run(runs_dir: Path, before: set[str], process: subprocess.Popen, timeout: float = 60.0) -> RunDir | None:
    """Wait for the run directory a just-started child creates (None if it exits first, e.g. a config error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in Path(runs_dir).iterdir() if p.name not in before and is_run_dir(p)]
        if new and (new[0] / "status.json").exists():
            return RunDir(new[0])
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def stop(pid: int) -> None:
    """Ask a trainer to stop after its current step (SIGINT to its process group)."""
    try:
        if os.getpgid(pid) == pid:  # a group of its own (started by `start`): reach its children too
            os.killpg(pid, signal.SIGINT)
        else:  # started from a shell: signal the trainer alone, not the shell's job
            os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        pass
