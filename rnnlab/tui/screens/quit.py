"""Quitting while trainers started from this app still run: stop them, leave them running, or stay.

The trainers are in process groups of their own, so they outlive the app; quitting without a word
left them training unseen. This modal names them and asks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...store import RunDir, list_runs
from ..literal import plain

STOP, LEAVE, CANCEL = "stop", "leave", "cancel"


def describe(processes: list[subprocess.Popen], runs_dir: Path) -> list[str]:
    """One line per trainer: its pid and, when its run directory says so, the run it trains."""
    runs = {}
    try:
        for summary in list_runs(runs_dir):
            if summary.state == "running":
                pid = RunDir(summary.path).read_status_raw().get("pid")
                runs[pid] = summary.id
    except (OSError, ValueError, TypeError):  # a listing problem must not stop the app from quitting
        pass
    return [f"pid {process.pid}: " + (runs.get(process.pid) or "starting (no run directory yet)")
            for process in processes]


class QuitScreen(ModalScreen[str]):
    """Dismisses with STOP, LEAVE or CANCEL."""

    BINDINGS = [Binding("s", "answer('stop')", "Stop them"), Binding("l", "answer('leave')", "Leave them running"),
                Binding("escape,c", "answer('cancel')", "Cancel")]
    AUTO_FOCUS = "#cancel"  # a stray enter must neither stop training nor abandon it
    def __init__(self, lines: list[str]):
        super().__init__(classes="dialog")  # app.tcss
        self.lines = lines

    def compose(self) -> ComposeResult:
        count = len(self.lines)
        with Vertical():
            yield Static(f"{count} trainer{'s' if count > 1 else ''} started here {'are' if count > 1 else 'is'} "
                         "still running. Quit anyway?", classes="title")
            yield Static(plain("\n".join(self.lines), keep="\n"), classes="hint", id="trainers")
            yield Static("Stopping lets each finish its step and checkpoint (it can continue later); left running, "
                         "it trains on and shows in the runs browser next time.", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Stop them (s)", variant="error", id="stop", action=f"screen.answer('{STOP}')")
                yield Button("Leave running (l)", variant="warning", id="leave", action=f"screen.answer('{LEAVE}')")
                yield Button("Cancel (esc)", variant="primary", id="cancel", action=f"screen.answer('{CANCEL}')")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
