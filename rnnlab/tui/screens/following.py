"""A screen that follows its run: from its mount, the run directory is tailed in a thread worker
(watch.py) and each change arrives as a RunUpdate message for the screen's on_run_update."""

from __future__ import annotations

from textual import work
from textual.screen import Screen
from textual.worker import get_current_worker

from ...store import RunDir
from ..watch import watch_run


class FollowsRun(Screen):
    run: RunDir  # set by the screen's __init__

    def on_mount(self) -> None:  # Textual runs a subclass's on_mount as well as this one
        self.watch()

    @work(thread=True, exclusive=True, group="watch")
    def watch(self) -> None:
        current = get_current_worker()
        watch_run(lambda: current.is_cancelled, self.post_message, self.run)
