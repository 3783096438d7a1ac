"""Tail a run directory from a thread: only new bytes are read, never the history twice."""

from __future__ import annotations

import time

from ..store import RunDir
from .messages import RunUpdate

POLL_SECONDS = 0.25  # a new event reaches the screen within ~0.3 s


def watch_run(worker_is_cancelled, post, run: RunDir, poll: float = POLL_SECONDS) -> None:
    """Loop until cancelled: post a RunUpdate whenever the run has new events or a new status.

    `worker_is_cancelled` is a callable (the Textual worker's flag), `post` the
    screen's post_message; both keep this module free of screen details.
    """
    reader = run.event_reader()
    last_status, last_problem = None, None
    while not worker_is_cancelled():
        problem = None
        events = reader.read_new()
        try:
            status = run.read_status()
        except FileNotFoundError:
            status = None
            problem = "the run directory was deleted" if not run.path.exists() else "status.json is missing"
        except (OSError, ValueError) as error:
            status, problem = None, f"status.json unreadable ({error.__class__.__name__})"
        if reader.skipped and problem is None:  # a deleted directory matters more than old bad lines
            problem = f"{reader.skipped} corrupt line(s) in events.jsonl skipped"
        if events or status != last_status or problem != last_problem:
            post(RunUpdate(events, status, problem))
            last_status, last_problem = status, problem
        time.sleep(poll)
