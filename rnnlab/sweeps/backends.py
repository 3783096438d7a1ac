"""The backend seam: where a sweep's trials run.

A backend takes trial jobs (`submit`), reports what happens to them as messages (`poll`), stops every
trial cleanly on request (`stop`: each trainer records `stopped` through its StopSignal) and shuts
down (`close`). Messages are tuples:

    ("created", key, run_id)               the trial's run directory exists
    ("ended", key, state, error)           its trainer returned (state: finished, stopped, diverged, failed)
    ("skipped", key)                       not started (a stop came first)
    ("error", key, message)                it could not start (a one-line error)
    ("lost", key)                          its worker died under it (killed, out of memory)

`LocalPool` runs them in N long-lived worker processes on this machine (torch imported once per
worker); `ray_backend.RayBackend` runs them on Ray actors, locally or on a cluster.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time

from .trial import TrialJob, run_trial


class Backend:
    def submit(self, job: TrialJob) -> None:
        raise NotImplementedError

    def poll(self, timeout: float) -> list[tuple]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def idle(self) -> bool:
        """True when nothing submitted is still to report."""
        raise NotImplementedError

    def close(self, now: bool = False) -> None:
        """Shut down once every trial has reported; `now`: at once (nothing was submitted)."""
        raise NotImplementedError


BACKENDS = ("local", "ray")


def check_backend(name: str):
    """The backend's module, or the one-line error (unknown, or Ray not installed) before anything is written."""
    import sys

    from ..errors import ConfigError

    if name == "local":
        return sys.modules[__name__]
    if name == "ray":
        try:
            from . import ray_backend
        except ImportError as error:
            if not (error.name or "").startswith("ray"):
                raise
            raise ConfigError("--backend", name, 'Ray is not installed: pip install "rnnlab[ray]"', "local") from None
        return ray_backend
    raise ConfigError("--backend", name, "unknown backend", ", ".join(BACKENDS))


def cluster_cpus(name: str, address: str | None = None) -> int:
    """The cores trials may use: this machine's, or (ray) the Ray cluster's, joined or started here."""
    if name == "ray":
        return check_backend(name).connect(address)
    return os.cpu_count() or 1


def make_backend(name: str, workers: int, threads: int, address: str | None = None) -> Backend:
    module = check_backend(name)
    if name == "ray":
        return module.RayBackend(workers, threads, address)
    return LocalPool(workers, threads)


class LocalPool(Backend):
    """N worker processes ('spawn': a clean interpreter, torch imported once each), each in a process
    group of its own so a Ctrl-C in the terminal reaches the driver only; the driver forwards one
    SIGINT per worker, which its trainer's StopSignal turns into a clean `stopped`."""

    def __init__(self, workers: int, threads: int):
        context = multiprocessing.get_context("spawn")
        self.jobs, self.messages = context.Queue(), context.Queue()
        self.processes = [context.Process(target=worker_main, args=(self.jobs, self.messages, threads),
                                          name=f"rnnlab-sweep-worker-{i}", daemon=True) for i in range(workers)]
        for process in self.processes:
            process.start()
        self.pending: set[str] = set()  # submitted, not yet ended/skipped/failed
        self.running: dict[int, str] = {}  # worker pid -> the trial key it is running
        self.stopping = False

    def submit(self, job: TrialJob) -> None:
        self.pending.add(job.key)
        self.jobs.put(job)

    def poll(self, timeout: float) -> list[tuple]:
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            out.append(self._track(message))
            if not self.messages.empty():
                continue
            break
        out += self._lost()
        return out

    def _track(self, message: tuple) -> tuple:
        pid, message = message
        kind, key = message[0], message[1]
        if kind == "taken":
            self.running[pid] = key
        elif kind in ("ended", "skipped", "error"):
            self.running.pop(pid, None)
            self.pending.discard(key)
        return message

    def _lost(self) -> list[tuple]:
        """The trials of workers that died without reporting (the driver marks them; resume continues them)."""
        lost = []
        for process in self.processes:
            if process.exitcode is not None and process.pid in self.running:
                if not self.messages.empty():
                    continue  # its last messages are still on the way
                key = self.running.pop(process.pid)
                self.pending.discard(key)
                lost.append(("lost", key))
        if not any(p.is_alive() for p in self.processes) and self.messages.empty():
            for key in list(self.pending):  # queued jobs nobody is left to take
                lost.append(("skipped", key))
            self.pending.clear()
        return lost

    def idle(self) -> bool:
        return not self.pending

    def stop(self) -> None:
        """Ask every worker to stop its trial (SIGINT once each time this is called) and take no more."""
        self.stopping = True
        for process in self.processes:
            if process.is_alive():
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass

    def close(self, now: bool = False) -> None:
        if now:
            for process in self.processes:
                process.kill()
        for _ in self.processes:
            try:
                self.jobs.put(None)
            except (OSError, ValueError):
                pass
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        self.jobs.cancel_join_thread()
        self.jobs.close()


def worker_main(jobs, messages, threads: int) -> None:
    """A worker: import torch once, then run trials one after another until told to stop or no job is left."""
    os.setsid()  # its own process group: the terminal's Ctrl-C goes to the driver, which forwards it
    _stop_with_parent()
    stop = {"requested": False}

    def on_signal(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    from ..train.threads import assign

    assign(threads)  # imports torch, once per worker; trials with threads = 0 keep this share
    pid = os.getpid()

    def send(message):
        messages.put((pid, message))

    while not stop["requested"]:
        try:
            job = jobs.get()
        except (EOFError, OSError):  # the driver is gone
            break
        if job is None:
            break
        if stop["requested"]:
            send(("skipped", job.key))
            break
        send(("taken", job.key))
        try:
            outcome = run_trial(job, send, lambda: not stop["requested"])
        except Exception as error:  # a config or checkpoint problem: one line, the sweep goes on
            from ..errors import first_line

            send(("error", job.key, f"{error.__class__.__name__}: {first_line(error)}"))
            continue
        if outcome is None:
            send(("skipped", job.key))
            break
        send(("ended", job.key, outcome.state, outcome.error))
        if outcome.state == "stopped":  # the trainer's StopSignal had the SIGINT: this worker is done
            break
    # drain nothing: the driver counts jobs never taken as skipped once every worker has gone
    messages.close()
    messages.join_thread()


def _stop_with_parent() -> None:
    """Linux: SIGINT this worker when the driver dies (even by SIGKILL), so its trial stops cleanly
    (checkpointed, `stopped`) instead of training on unwatched; `rnnlab sweep --resume` continues it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the driver died before the line above
        os.kill(os.getpid(), signal.SIGINT)
