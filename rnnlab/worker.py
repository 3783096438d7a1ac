"""Contract 3: processes. Every rule about a trainer (or sweep driver) as a process lives here: who it is
(pid, kernel start time, host), whether it is alive, how it is asked to stop, and what its exit code means.

The TUI starts the very same `rnnlab run` a user types, in its own process group so a Ctrl-C in the
parent's terminal does not reach it by accident; stopping sends SIGINT, and the trainer (StopSignal)
finishes its step, checkpoints and records `stopped`. Everything else is learnt from the run directory
(rnnlab.store, which asks this module whether a `running` run's process is still there).

This module sits below the store: it never reads or writes a run directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path


# -- exit codes: the one table the trainer, the CLI, sweeps and the TUI read ----------------------------------
EXIT_CODES = {"finished": 0, "stopped": 130, "diverged": 3, "failed": 1}
FINISHED, STOPPED = EXIT_CODES["finished"], EXIT_CODES["stopped"]


def ended_cleanly(code: int | None) -> bool:
    """A child that finished or was stopped on request (nothing to show from its log)."""
    return code in (FINISHED, STOPPED)


# -- who a process is, and whether it is still there ------------------------------------------------------------
def this_host() -> str:
    return socket.gethostname()


def on_this_host(host) -> bool:
    """A pid recorded on another machine means nothing here: it can be neither probed nor signalled."""
    return host == this_host()


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell a live run from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the "(comm)" field


def identity() -> dict:
    """This process as status.json and sweep.json record it: `pid`, `pid_start`, `host`."""
    return {"pid": os.getpid(), "pid_start": process_start_time(os.getpid()), "host": this_host()}


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


def is_gone(record: dict) -> bool:
    """A process recorded as {pid, pid_start, host} (a `running` run or sweep driver) that has died: on this
    machine, and its pid is not alive (or belongs to a newer process). One on another host is never gone."""
    if not on_this_host(record.get("host")):
        return False
    pid = record.get("pid")
    return not isinstance(pid, int) or not pid_alive(pid, record.get("pid_start"))


# -- stopping ---------------------------------------------------------------------------------------------------
class StopSignal:
    """SIGINT/SIGTERM ask the loop to finish its step; a second SIGINT interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def stop(pid: int) -> None:
    """Ask a trainer to stop after its current step (SIGINT to its process group)."""
    try:
        if os.getpgid(pid) == pid:  # a group of its own (started by `start`): reach its children too
            os.killpg(pid, signal.SIGINT)
        else:  # started from a shell: signal the trainer alone, not the shell's job
            os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        pass


# -- starting ---------------------------------------------------------------------------------------------------
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
    """The child in a session (and process group) of its own. `log` is a path its caller chose (the store
    names the ones in a runs directory: store.launch_log, RunDir.resume_log_path); this only points the
    child's output at it. The child creates the runs directory itself if it has to."""
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(command + ["--runs-dir", str(runs_dir)], stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=sink, start_new_session=True)
    finally:
        if log is not None:
            sink.close()
