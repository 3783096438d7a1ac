"""status.json: its keys (Status), their types, and the three moments the trainer writes it.

The trainer says what happened (its step, its losses, its end state); which keys that makes, in which
order, is decided here, so status.json has one home. The JSON on disk is what older rnnlab wrote: a
saved run lists, resumes and samples unchanged (docs/run-directory.md, status.json).
"""

from __future__ import annotations

import platform
import time
from typing import TypedDict

from .. import __version__
from ..worker import identity


class Status(TypedDict, total=False):
    """Every key status.json holds (the order below is the order a fresh run writes them)."""

    id: str
    name: str
    arch: str
    task: str
    state: str  # one of files.STATES, except `crashed`, which readers infer
    pid: int
    pid_start: str | None  # the kernel's start time of pid: a recycled pid is not the trainer
    host: str
    device: str
    total_steps: int
    versions: dict  # {"rnnlab", "torch", "python"}
    params: int
    error: str | None
    ended: float | None
    sweep: str  # only a sweep's trials: its sweep id,
    trial: str  # the trial key (canonical JSON of point and seed),
    point: dict  # and the point (swept key -> value, with seed)
    started: float
    step: int
    best_val: float | None
    last_val: float | None
    elapsed: float  # seconds of training, summed over resumes
    updated: float
    clipped_share: float


# The types of the status fields rnnlab acts on (None is allowed for each: unknown yet)
STATUS_TYPES = {"state": (str,), "pid": (int,), "pid_start": (str,), "host": (str,), "step": (int,),
                "total_steps": (int,), "started": (int, float), "elapsed": (int, float),
                "best_val": (int, float), "error": (str,)}


def running(*, run_id: str, name: str, arch: str, task: str, device: str, total_steps: int, params: int,
            torch_version: str, trial: dict | None = None) -> Status:
    """What a trainer writes as it starts (or resumes): who the run is and which process trains it.
    `trial`: a sweep trial's `sweep`, `trial`, `point` (written on a fresh start only, kept on resume)."""
    return Status(id=run_id, name=name, arch=arch, task=task, state="running", **identity(), device=device,
                  total_steps=total_steps,
                  versions={"rnnlab": __version__, "torch": torch_version, "python": platform.python_version()},
                  params=params, error=None, ended=None, **(trial or {}))


def progress(*, step: int, best_val: float | None, last_val: float | None, elapsed: float) -> Status:
    """What a trainer rewrites as it goes (every evaluation, checkpoint, few seconds, and at the end)."""
    return Status(step=step, best_val=best_val, last_val=last_val, elapsed=round(elapsed, 3), updated=time.time())


def ended(*, state: str, error: str | None, clipped_share: float) -> Status:
    """The end state, written once with the last progress."""
    return Status(state=state, error=error, ended=time.time(), clipped_share=clipped_share)
